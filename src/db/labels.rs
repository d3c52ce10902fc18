//! Queries behind printed label sheets: a lot with its model, one page of a lot's units, units
//! chosen by serial, and the lots to choose from.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::catalogue::{Lot, ProductModel};
use super::schema::{lots, product_models, units};

/// A unit as its label needs it.
#[derive(Debug, Clone, Queryable)]
pub struct LabelUnit {
    /// The key the serial is matched on (upper case for case-insensitive models).
    pub serial_key: String,
    pub serial: String,
    pub lot: Option<String>,
    pub expiry_date: Option<NaiveDate>,
}

/// A lot in the label chooser, with its model.
#[derive(Debug, Clone, Queryable)]
pub struct LotChoice {
    pub lot_id: i64,
    pub code: String,
    pub production_date: NaiveDate,
    pub model_id: i64,
    pub brand: String,
    pub name: String,
    pub gtin: String,
}

impl LabelUnit {
    /// The lot and the model it belongs to.
    pub async fn lot_with_model(
        conn: &mut AsyncPgConnection,
        lot_id: i64,
    ) -> QueryResult<Option<(Lot, ProductModel)>> {
        lots::table
            .inner_join(product_models::table)
            .filter(lots::id.eq(lot_id))
            .select((Lot::as_select(), ProductModel::as_select()))
            .first(conn)
            .await
            .optional()
    }

    pub async fn count_in_lot(conn: &mut AsyncPgConnection, lot_id: i64) -> QueryResult<i64> {
        units::table
            .filter(units::lot_id.eq(lot_id))
            .count()
            .get_result(conn)
            .await
    }

    /// One page of a lot's units in serial order.
    pub async fn page_of_lot(
        conn: &mut AsyncPgConnection,
        lot_id: i64,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<Self>> {
        units::table
            .inner_join(lots::table)
            .filter(units::lot_id.eq(lot_id))
            .order((units::serial_key, units::id))
            .offset(offset)
            .limit(limit)
            .select((
                units::serial_key,
                units::serial,
                lots::code.nullable(),
                lots::expiry_date,
            ))
            .load(conn)
            .await
    }

    /// The units of one model whose serial keys are among `keys`, in no particular order.
    pub async fn by_serial_keys(
        conn: &mut AsyncPgConnection,
        model_id: i64,
        keys: &[String],
    ) -> QueryResult<Vec<Self>> {
        units::table
            .left_join(lots::table)
            .filter(units::model_id.eq(model_id))
            .filter(units::serial_key.eq_any(keys))
            .select((
                units::serial_key,
                units::serial,
                lots::code.nullable(),
                lots::expiry_date.nullable(),
            ))
            .load(conn)
            .await
    }
}

impl LotChoice {
    /// Every lot, grouped by model, newest first within a model.
    pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Self>> {
        lots::table
            .inner_join(product_models::table)
            .order((
                product_models::brand,
                product_models::name,
                product_models::id,
                lots::production_date.desc(),
                lots::code,
            ))
            .select((
                lots::id,
                lots::code,
                lots::production_date,
                product_models::id,
                product_models::brand,
                product_models::name,
                product_models::gtin,
            ))
            .load(conn)
            .await
    }
}
