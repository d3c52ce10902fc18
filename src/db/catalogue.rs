//! Product models: the catalogue a serial is looked up against.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{lots, product_models};
use crate::domain::Gtin;
use crate::domain::serial_format::SerialFormat;
use crate::domain::warranty::{StartRule, WarrantyTerms};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = product_models)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ProductModel {
    pub id: i64,
    pub gtin: String,
    pub sku: String,
    pub name: String,
    pub brand: String,
    pub model_number: String,
    pub description: String,
    pub warranty_months: i32,
    pub warranty_start_rule: String,
    pub warranty_grace_days: i32,
    pub serials_case_sensitive: bool,
    pub serial_format: Option<String>,
    pub serial_hint: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = lots)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Lot {
    pub id: i64,
    pub code: String,
    pub production_date: chrono::NaiveDate,
    pub expiry_date: Option<chrono::NaiveDate>,
}

impl ProductModel {
    pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Self>> {
        product_models::table
            .select(Self::as_select())
            .order((product_models::brand, product_models::name))
            .load(conn)
            .await
    }

    pub async fn find_by_gtin(
        conn: &mut AsyncPgConnection,
        gtin: &Gtin,
    ) -> QueryResult<Option<Self>> {
        product_models::table
            .filter(product_models::gtin.eq(gtin.as_string()))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub fn terms(&self) -> WarrantyTerms {
        WarrantyTerms {
            months: self.warranty_months.max(0) as u32,
            // The CHECK constraint admits only the two rules StartRule knows.
            start_rule: StartRule::parse(&self.warranty_start_rule).unwrap_or(StartRule::Sale),
            grace_days: self.warranty_grace_days.max(0) as u32,
        }
    }

    /// The declared serial format, if any (an unparsable stored pattern counts as none, so a bad
    /// catalogue entry can never block lookups).
    pub fn format(&self) -> Option<SerialFormat> {
        self.serial_format
            .as_deref()
            .and_then(|p| SerialFormat::parse(p).ok())
    }

    pub fn gtin(&self) -> Option<Gtin> {
        Gtin::parse(&self.gtin).ok()
    }
}
