//! The warranty beyond a model's terms, as stored on the rows every lookup already reads: the
//! unit's registered purchase date, extensions and inheritance, and its lot's extensions.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{lots, units};
use crate::domain::warranty::Adjustments;

#[derive(Debug, Clone, Copy, Default, Queryable, Selectable)]
#[diesel(table_name = units)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UnitWarranty {
    pub purchased_on: Option<NaiveDate>,
    #[diesel(column_name = warranty_extra_months)]
    pub extra_months: i32,
    #[diesel(column_name = warranty_extended_to)]
    pub extended_to: Option<NaiveDate>,
    pub inherited_from: Option<NaiveDate>,
    pub inherited_end: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, Default, Queryable, Selectable)]
#[diesel(table_name = lots)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct LotWarranty {
    #[diesel(column_name = warranty_extra_months)]
    pub extra_months: i32,
    #[diesel(column_name = warranty_extended_to)]
    pub extended_to: Option<NaiveDate>,
}

/// The adjustments of a unit: its own and its lot's extensions added up, and what it inherited.
pub fn adjustments(unit: Option<&UnitWarranty>, lot: Option<&LotWarranty>) -> Adjustments {
    let months = |m: i32| u32::try_from(m).unwrap_or(0);
    Adjustments {
        extra_months: unit.map_or(0, |u| months(u.extra_months))
            + lot.map_or(0, |l| months(l.extra_months)),
        extended_to: unit
            .and_then(|u| u.extended_to)
            .max(lot.and_then(|l| l.extended_to)),
        inherited: unit.and_then(|u| Some((u.inherited_from?, u.inherited_end?))),
    }
}

/// A unit's stored warranty summary and its lot's.
pub async fn of_unit(
    conn: &mut AsyncPgConnection,
    unit_id: i64,
    lot_id: Option<i64>,
) -> QueryResult<(Option<UnitWarranty>, Option<LotWarranty>)> {
    let unit = units::table
        .find(unit_id)
        .select(UnitWarranty::as_select())
        .first(conn)
        .await
        .optional()?;
    let lot = match lot_id {
        Some(id) => lots::table
            .find(id)
            .select(LotWarranty::as_select())
            .first(conn)
            .await
            .optional()?,
        None => None,
    };
    Ok((unit, lot))
}

/// Records an extension for a unit or a lot and folds it into the summary the lookups read, in
/// one transaction.
pub async fn extend(
    conn: &mut AsyncPgConnection,
    target: Target,
    ext: crate::domain::warranty::Extension,
    reason: &str,
    admin: i64,
) -> QueryResult<()> {
    use super::schema::warranty_extensions;
    use crate::domain::warranty::Extension;
    use diesel_async::AsyncConnection;
    let (months, until) = match ext {
        Extension::Months(m) => (Some(m as i32), None),
        Extension::Until(d) => (None, Some(d)),
    };
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let (unit_id, lot_id) = match target {
            Target::Unit(id) => (Some(id), None),
            Target::Lot(id) => (None, Some(id)),
        };
        diesel::insert_into(warranty_extensions::table)
            .values((
                warranty_extensions::unit_id.eq(unit_id),
                warranty_extensions::lot_id.eq(lot_id),
                warranty_extensions::extra_months.eq(months),
                warranty_extensions::ends_on.eq(until),
                warranty_extensions::reason.eq(reason),
                warranty_extensions::created_by.eq(admin),
            ))
            .execute(conn)
            .await?;
        let add = months.unwrap_or(0);
        match target {
            Target::Unit(id) => {
                diesel::update(units::table.find(id))
                    .set(
                        (
                            units::warranty_extra_months.eq(units::warranty_extra_months + add),
                            units::warranty_extended_to.eq(diesel::dsl::sql::<
                                diesel::sql_types::Nullable<diesel::sql_types::Date>,
                            >(
                                "greatest(warranty_extended_to, "
                            )
                            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Date>, _>(until)
                            .sql(")")),
                        ),
                    )
                    .execute(conn)
                    .await?;
            }
            Target::Lot(id) => {
                diesel::update(lots::table.find(id))
                    .set(
                        (
                            lots::warranty_extra_months.eq(lots::warranty_extra_months + add),
                            lots::warranty_extended_to.eq(diesel::dsl::sql::<
                                diesel::sql_types::Nullable<diesel::sql_types::Date>,
                            >(
                                "greatest(warranty_extended_to, "
                            )
                            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Date>, _>(until)
                            .sql(")")),
                        ),
                    )
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    })
    .await
}

/// What an extension is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Unit(i64),
    Lot(i64),
}

/// One extension as listed.
#[derive(Debug, Clone, Queryable)]
pub struct ExtensionRow {
    pub extra_months: Option<i32>,
    pub ends_on: Option<NaiveDate>,
    pub reason: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub by: String,
}

/// The extensions of a unit and of its lot, newest first.
pub async fn extensions_of(
    conn: &mut AsyncPgConnection,
    unit_id: i64,
    lot_id: Option<i64>,
) -> QueryResult<Vec<ExtensionRow>> {
    use super::schema::{accounts, warranty_extensions as we};
    we::table
        .inner_join(accounts::table.on(accounts::id.eq(we::created_by)))
        .filter(
            we::unit_id
                .eq(unit_id)
                .or(we::lot_id.eq(lot_id.unwrap_or(-1))),
        )
        .order(we::id.desc())
        .select((
            we::extra_months,
            we::ends_on,
            we::reason,
            we::created_at,
            accounts::email,
        ))
        .load(conn)
        .await
}
