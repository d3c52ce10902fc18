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

/// The editable fields of a product model (the GTIN is set at creation and never changes:
/// printed codes depend on it).
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = product_models)]
pub struct ModelFields {
    pub sku: String,
    pub name: String,
    pub brand: String,
    pub model_number: String,
    pub description: String,
    pub warranty_months: i32,
    pub warranty_start_rule: String,
    pub warranty_grace_days: i32,
    pub serials_case_sensitive: bool,
    #[diesel(treat_none_as_null = true)]
    pub serial_format: Option<String>,
    pub serial_hint: String,
}

/// Why a catalogue write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogueConflict {
    GtinTaken,
    SkuTaken,
    /// Switching to case-insensitive serials would make two serials of this model equal.
    CaseCollision,
}

fn unique_violation(e: &diesel::result::Error) -> Option<String> {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) => Some(info.constraint_name().unwrap_or("").to_owned()),
        _ => None,
    }
}

impl ProductModel {
    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Self>> {
        product_models::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn insert(
        conn: &mut AsyncPgConnection,
        gtin: &Gtin,
        fields: &ModelFields,
    ) -> QueryResult<Result<Self, CatalogueConflict>> {
        let r = diesel::insert_into(product_models::table)
            .values((product_models::gtin.eq(gtin.as_string()), fields))
            .returning(Self::as_returning())
            .get_result(conn)
            .await;
        match r {
            Ok(m) => Ok(Ok(m)),
            Err(e) => match unique_violation(&e).as_deref() {
                Some(c) if c.contains("gtin") => Ok(Err(CatalogueConflict::GtinTaken)),
                Some(_) => Ok(Err(CatalogueConflict::SkuTaken)),
                None => Err(e),
            },
        }
    }

    /// Updates a model. When the case rule changes, every unit's lookup key is recomputed in
    /// the same statement set (call inside a transaction).
    pub async fn update(
        conn: &mut AsyncPgConnection,
        id: i64,
        fields: &ModelFields,
    ) -> QueryResult<Result<(), CatalogueConflict>> {
        let before = Self::find(conn, id).await?;
        let r = diesel::update(product_models::table.find(id))
            .set((fields, product_models::updated_at.eq(chrono::Utc::now())))
            .execute(conn)
            .await;
        if let Err(e) = r {
            return match unique_violation(&e) {
                Some(_) => Ok(Err(CatalogueConflict::SkuTaken)),
                None => Err(e),
            };
        }
        if before.is_some_and(|b| b.serials_case_sensitive != fields.serials_case_sensitive) {
            let rekey = diesel::sql_query(
                "UPDATE units SET serial_key = CASE WHEN $2 THEN serial ELSE upper(serial) END, updated_at = now() WHERE model_id = $1",
            )
            .bind::<diesel::sql_types::BigInt, _>(id)
            .bind::<diesel::sql_types::Bool, _>(fields.serials_case_sensitive)
            .execute(conn)
            .await;
            if let Err(e) = rekey {
                return match unique_violation(&e) {
                    Some(_) => Ok(Err(CatalogueConflict::CaseCollision)),
                    None => Err(e),
                };
            }
        }
        Ok(Ok(()))
    }
}

impl Lot {
    pub async fn for_model(conn: &mut AsyncPgConnection, model_id: i64) -> QueryResult<Vec<Self>> {
        lots::table
            .filter(lots::model_id.eq(model_id))
            .order(lots::production_date.desc())
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// The model's lot with this code.
    pub async fn find_by_code(
        conn: &mut AsyncPgConnection,
        model_id: i64,
        code: &str,
    ) -> QueryResult<Option<Self>> {
        lots::table
            .filter(lots::model_id.eq(model_id).and(lots::code.eq(code)))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Creates a lot; `None` when the model already has a lot with this code.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        model_id: i64,
        code: &str,
        production_date: chrono::NaiveDate,
        expiry_date: Option<chrono::NaiveDate>,
    ) -> QueryResult<Option<Self>> {
        diesel::insert_into(lots::table)
            .values((
                lots::model_id.eq(model_id),
                lots::code.eq(code),
                lots::production_date.eq(production_date),
                lots::expiry_date.eq(expiry_date),
            ))
            .on_conflict_do_nothing()
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::locations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Location {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
}

pub const LOCATION_KINDS: [&str; 4] = ["factory", "warehouse", "store", "service_centre"];

impl Location {
    pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Self>> {
        use super::schema::locations;
        locations::table
            .order(locations::code)
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Creates a location; `None` when the code is taken.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        code: &str,
        name: &str,
        kind: &str,
    ) -> QueryResult<Option<Self>> {
        use super::schema::locations;
        diesel::insert_into(locations::table)
            .values((
                locations::code.eq(code),
                locations::name.eq(name),
                locations::kind.eq(kind),
            ))
            .on_conflict_do_nothing()
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }
}

/// The first running number free for new serials of `format` on a model: one past the highest
/// serial of that format already recorded (so generated serials never collide).
pub async fn next_serial_number(
    conn: &mut AsyncPgConnection,
    model: &ProductModel,
    format: &SerialFormat,
) -> QueryResult<u64> {
    use super::schema::units;
    let highest: Option<String> = units::table
        .filter(units::model_id.eq(model.id))
        .filter(units::serial_key.like(format.like_pattern(!model.serials_case_sensitive)))
        .select(diesel::dsl::max(units::serial_key))
        .first(conn)
        .await?;
    Ok(highest
        .and_then(|s| format.number_of(&s))
        .map(|n| n + 1)
        .unwrap_or(1))
}

/// Records newly generated units of one lot in one statement; `Ok(false)` if any serial was
/// taken meanwhile (nothing is written then, the caller's transaction rolls back).
pub async fn insert_generated(
    conn: &mut AsyncPgConnection,
    model: &ProductModel,
    lot: &Lot,
    location_id: Option<i64>,
    serials: Vec<String>,
    actor: &str,
) -> QueryResult<bool> {
    use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
    let r = diesel::sql_query(
        "INSERT INTO units (model_id, serial, serial_key, lot_id, status, manufactured_on, location_id, created_by)
         SELECT $1, s, CASE WHEN $2 THEN s ELSE upper(s) END, $3,
                CASE WHEN $4::bigint IS NULL THEN 'manufactured' ELSE 'in_stock' END, l.production_date, $4, $6
         FROM unnest($5::text[]) AS s, lots l WHERE l.id = $3",
    )
    .bind::<BigInt, _>(model.id)
    .bind::<Bool, _>(model.serials_case_sensitive)
    .bind::<BigInt, _>(lot.id)
    .bind::<Nullable<BigInt>, _>(location_id)
    .bind::<Array<Text>, _>(serials)
    .bind::<Text, _>(actor)
    .execute(conn)
    .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if unique_violation(&e).is_some() => Ok(false),
        Err(e) => Err(e),
    }
}
