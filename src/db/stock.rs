//! Stock queries for admins: what expires soon, and which units to pick first.

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Date, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(Debug, Clone, QueryableByName)]
pub struct ExpiringStock {
    #[diesel(sql_type = Text)]
    pub brand: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub lot: String,
    #[diesel(sql_type = Date)]
    pub expiry_date: NaiveDate,
    #[diesel(sql_type = Nullable<Text>)]
    pub location: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub units: i64,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct PickLine {
    #[diesel(sql_type = BigInt)]
    pub unit_id: i64,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    pub expiry_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub manufactured_on: Option<NaiveDate>,
}

/// Units in stock whose lot expires within `days` days (or has expired), grouped by lot and
/// location, soonest first.
pub async fn expiring(
    conn: &mut AsyncPgConnection,
    days: i32,
) -> diesel::QueryResult<Vec<ExpiringStock>> {
    diesel::sql_query(
        "SELECT m.brand, m.name, m.gtin, l.code AS lot, l.expiry_date, loc.code AS location, count(*) AS units
         FROM lots l
         JOIN units u ON u.lot_id = l.id AND u.status = 'in_stock'
         JOIN product_models m ON m.id = l.model_id
         LEFT JOIN locations loc ON loc.id = u.location_id
         WHERE l.expiry_date IS NOT NULL AND l.expiry_date <= current_date + $1
         GROUP BY m.brand, m.name, m.gtin, l.code, l.expiry_date, loc.code
         ORDER BY l.expiry_date, m.brand, m.name, l.code, loc.code",
    )
    .bind::<Integer, _>(days)
    .load(conn)
    .await
}

/// First-expired-first-out: the `quantity` units of a model at a location to pick first —
/// earliest lot expiry, then earliest manufacture, then serial; units without an expiry last.
pub async fn fefo_pick(
    conn: &mut AsyncPgConnection,
    location: &str,
    gtin: &str,
    quantity: i64,
) -> diesel::QueryResult<Vec<PickLine>> {
    diesel::sql_query(
        "SELECT u.id AS unit_id, u.serial, l.code AS lot, l.expiry_date, u.manufactured_on
         FROM units u
         JOIN product_models m ON m.id = u.model_id AND m.gtin = $2
         JOIN locations loc ON loc.id = u.location_id AND loc.code = $1
         LEFT JOIN lots l ON l.id = u.lot_id
         WHERE u.status = 'in_stock'
         ORDER BY l.expiry_date NULLS LAST, u.manufactured_on NULLS LAST, u.serial
         LIMIT $3",
    )
    .bind::<Text, _>(location)
    .bind::<Text, _>(gtin)
    .bind::<BigInt, _>(quantity)
    .load(conn)
    .await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct OnHand {
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub location: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub units: i64,
}

/// Units in stock by model, location and lot (one grouped scan).
pub async fn on_hand(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<OnHand>> {
    diesel::sql_query(
        "SELECT m.gtin, m.brand || ' ' || m.name AS product, loc.code AS location, l.code AS lot, count(*) AS units
         FROM units u
         JOIN product_models m ON m.id = u.model_id
         LEFT JOIN locations loc ON loc.id = u.location_id
         LEFT JOIN lots l ON l.id = u.lot_id
         WHERE u.status = 'in_stock'
         GROUP BY m.gtin, m.brand, m.name, loc.code, l.code
         ORDER BY m.brand, m.name, loc.code NULLS LAST, l.code NULLS LAST",
    )
    .load(conn)
    .await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Turnover {
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = BigInt)]
    pub shipped: i64,
    #[diesel(sql_type = BigInt)]
    pub sold: i64,
}

/// Units shipped and sold per model between two dates (inclusive), from the unit history.
pub async fn turnover(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> diesel::QueryResult<Vec<Turnover>> {
    diesel::sql_query(
        "SELECT m.gtin, m.brand || ' ' || m.name AS product,
                count(*) FILTER (WHERE e.kind = 'shipped') AS shipped,
                count(*) FILTER (WHERE e.kind = 'sold') AS sold
         FROM unit_events e
         JOIN units u ON u.id = e.unit_id
         JOIN product_models m ON m.id = u.model_id
         WHERE e.kind IN ('shipped', 'sold') AND e.occurred_at >= $1::date AND e.occurred_at < $2::date + 1
         GROUP BY m.gtin, m.brand, m.name
         ORDER BY m.brand, m.name",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
}
