//! Stock: the movements themselves (receive, move, ship: one path for scanner stations and the
//! token API), and the queries for admins: what expires soon, which units to pick first, what
//! is on hand, what turned over.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Date, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::stations::StationKind;

/// The two statements of a stock movement of the units `$1` (bigint[]) into (receive, move)
/// or out of (ship) the location `$2`, each unit already checked against the rule of `kind`
/// and locked: first one history event per unit, which records where it was (binds: `$1`
/// units, `$2` location, `$3` actor, `$4` reference or ''), then the units (binds `$1`, `$2`).
/// (`$2` is never NULL; the `$2 IS NOT NULL` terms give it a type where a statement does not
/// otherwise use it.)
pub(crate) fn movement_statements(kind: StationKind) -> (String, String) {
    let (event_kind, event_location, note) = match kind {
        StationKind::Receive => ("received", "$2::bigint", "NULL"),
        StationKind::Move => (
            "moved",
            "$2::bigint",
            "'from ' || coalesce((SELECT code FROM locations WHERE id = u.location_id), 'no location')",
        ),
        StationKind::Ship => ("shipped", "u.location_id", "NULL"),
    };
    let set = match kind {
        StationKind::Receive | StationKind::Move => "status = 'in_stock', location_id = $2",
        StationKind::Ship => {
            "status = CASE WHEN status = 'in_stock' THEN 'shipped' ELSE status END, location_id = NULL"
        }
    };
    (
        format!(
            "INSERT INTO unit_events (unit_id, kind, actor, location_id, reference, note)
             SELECT u.id, '{event_kind}', $3, {event_location}, nullif($4, ''), {note}
             FROM units u WHERE u.id = ANY($1::bigint[]) AND $2::bigint IS NOT NULL"
        ),
        format!(
            "UPDATE units SET {set}, updated_at = now()
             WHERE id = ANY($1::bigint[]) AND $2::bigint IS NOT NULL"
        ),
    )
}

/// One unit of a movement sent through the token API, named by its model and serial.
#[derive(Debug, Clone)]
pub struct MovementItem {
    /// Its position in the request.
    pub index: usize,
    pub model_id: i64,
    pub serial: String,
    pub serial_key: String,
}

/// A unit that cannot take part in a movement, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmovable {
    pub index: usize,
    pub reason: String,
}

/// The units of a movement of `items` into (receive, move) or out of (ship) the location
/// `location` (id, code), each locked (in id order, so two movements cannot deadlock) until the
/// transaction ends and checked by the scanner station's rule for `kind`: the ids of those that
/// may move, and why each other cannot. `items` must not repeat a unit.
pub async fn check_movement(
    tx: &tokio_postgres::Transaction<'_>,
    kind: StationKind,
    location: (i64, &str),
    items: &[MovementItem],
) -> anyhow::Result<(Vec<i64>, Vec<Unmovable>)> {
    let models: Vec<i64> = items.iter().map(|i| i.model_id).collect();
    let keys: Vec<&str> = items.iter().map(|i| i.serial_key.as_str()).collect();
    let rows = tx
        .query(
            "SELECT t.i, u.id, u.status, u.location_id, loc.code
             FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS t (model_id, serial_key, i)
             JOIN units u ON u.serial_key = t.serial_key AND u.model_id = t.model_id
             LEFT JOIN locations loc ON loc.id = u.location_id
             ORDER BY u.id
             FOR UPDATE OF u",
            &[&models, &keys],
        )
        .await?;
    // Position in `items` (ORDINALITY counts from 1) → (unit, status, location id, code).
    let found: HashMap<usize, (i64, String, Option<i64>, Option<String>)> = rows
        .into_iter()
        .map(|r| {
            let i: i64 = r.get(0);
            (
                usize::try_from(i - 1).unwrap_or(usize::MAX),
                (r.get(1), r.get(2), r.get(3), r.get(4)),
            )
        })
        .collect();
    let mut ids = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for (at, item) in items.iter().enumerate() {
        match found.get(&at) {
            None => refused.push(Unmovable {
                index: item.index,
                reason: format!("there is no unit {} of this model", item.serial),
            }),
            Some((id, status, location_id, code)) => {
                match kind.problem(
                    status,
                    *location_id,
                    code.as_deref(),
                    location.0,
                    location.1,
                ) {
                    Some(why) => refused.push(Unmovable {
                        index: item.index,
                        reason: format!("{}: {why}", item.serial),
                    }),
                    None => ids.push(*id),
                }
            }
        }
    }
    Ok((ids, refused))
}

/// Moves the units `ids`, checked and locked by [`check_movement`] in the same transaction:
/// the statements every movement uses. Returns how many moved.
pub async fn apply_movement(
    tx: &tokio_postgres::Transaction<'_>,
    kind: StationKind,
    location: i64,
    ids: &[i64],
    reference: Option<&str>,
    actor: &str,
) -> anyhow::Result<u64> {
    let (events, update) = movement_statements(kind);
    tx.execute(
        &events,
        &[&ids, &location, &actor, &reference.unwrap_or("")],
    )
    .await?;
    Ok(tx.execute(&update, &[&ids, &location]).await?)
}

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
