//! The serial lookup: every unit whose serial matches what the customer gave, on any model.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::catalogue::{Lot, ProductModel};
use super::schema::{lots, product_models, units};
use crate::domain::SerialNumber;
use crate::domain::warranty::{UnitDates, WarrantyStatus};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = units)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UnitRow {
    pub id: i64,
    pub serial: String,
    pub serial_key: String,
    pub status: String,
    pub manufactured_on: Option<NaiveDate>,
}

/// One unit that matches a looked-up serial, with its model and lot. Carries nothing about an
/// owner: lookup answers never reveal one.
#[derive(Debug, Clone)]
pub struct UnitMatch {
    pub unit: UnitRow,
    pub model: ProductModel,
    pub lot: Option<Lot>,
}

impl UnitMatch {
    /// All units whose serial is `serial` under their model's case rule, optionally on one GTIN.
    ///
    /// One indexed query (`serial_key = ANY(ARRAY[as typed, upper case])`) fetches the few
    /// candidates across models; the case rule of each model is then applied here.
    pub async fn find(
        conn: &mut AsyncPgConnection,
        serial: &SerialNumber,
        gtin: Option<&str>,
    ) -> QueryResult<Vec<Self>> {
        let typed = serial.as_str().to_owned();
        let folded = serial.folded();
        let keys = if typed == folded {
            vec![typed.clone()]
        } else {
            vec![typed.clone(), folded.clone()]
        };
        let rows: Vec<(UnitRow, ProductModel, Option<Lot>)> = units::table
            .inner_join(product_models::table)
            .left_join(lots::table)
            .filter(units::serial_key.eq_any(keys))
            .select((
                UnitRow::as_select(),
                ProductModel::as_select(),
                Option::<Lot>::as_select(),
            ))
            .load(conn)
            .await?;
        let mut out: Vec<UnitMatch> = rows
            .into_iter()
            .filter(|(u, m, _)| {
                if m.serials_case_sensitive {
                    u.serial == typed
                } else {
                    u.serial_key == folded
                }
            })
            .filter(|(_, m, _)| gtin.is_none_or(|g| m.gtin == g))
            .map(|(unit, model, lot)| UnitMatch { unit, model, lot })
            .collect();
        out.sort_by(|a, b| (&a.model.brand, &a.model.name).cmp(&(&b.model.brand, &b.model.name)));
        Ok(out)
    }

    pub fn dates(&self) -> UnitDates {
        UnitDates {
            // Sales and registrations arrive with later issues; until then only manufacture.
            sold_on: None,
            purchased_on: None,
            manufactured_on: self
                .unit
                .manufactured_on
                .or(self.lot.as_ref().map(|l| l.production_date)),
        }
    }

    pub fn warranty(&self, today: NaiveDate) -> WarrantyStatus {
        self.model.terms().status(&self.dates(), today)
    }
}
