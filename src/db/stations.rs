//! Scanner stations: a batch of scans for one operation (receive into a location, move into a
//! location, ship from a location), each scan checked as it arrives, all committed at once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::schema::{locations, scan_batch_items, scan_batches};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationKind {
    Receive,
    Move,
    Ship,
}

impl StationKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "receive" => Some(StationKind::Receive),
            "move" => Some(StationKind::Move),
            "ship" => Some(StationKind::Ship),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StationKind::Receive => "receive",
            StationKind::Move => "move",
            StationKind::Ship => "ship",
        }
    }

    /// What a unit must be for this operation, as (statuses allowed, must it be at the batch's
    /// location, must it be elsewhere).
    fn rule(self) -> (&'static [&'static str], bool, bool) {
        match self {
            StationKind::Receive => (
                &["manufactured", "returned", "shipped", "missing"],
                false,
                false,
            ),
            StationKind::Move => (&["in_stock"], false, true),
            // A unit sold (linked to a sale) before it is picked is still on the shelf.
            StationKind::Ship => (&["in_stock", "sold"], true, false),
        }
    }

    /// Why a unit in `status` at `location` (code) cannot take part, if it cannot.
    pub fn problem(
        self,
        status: &str,
        location_id: Option<i64>,
        location_code: Option<&str>,
        batch_location: i64,
        batch_location_code: &str,
    ) -> Option<String> {
        let (allowed, here, elsewhere) = self.rule();
        let at = |c: Option<&str>| c.map(|c| format!(" at {c}")).unwrap_or_default();
        if !allowed.contains(&status) {
            return Some(match (self, status) {
                (StationKind::Receive, "in_stock") if location_id == Some(batch_location) => {
                    format!("already in stock at {batch_location_code}")
                }
                (StationKind::Receive, "in_stock") => format!(
                    "in stock{}: use a move station to move it here",
                    at(location_code)
                ),
                (StationKind::Receive, "sold" | "registered") => {
                    "sold: to take it back, unlink it from its sale on its unit page first".into()
                }
                (_, "sold" | "registered") => "already sold".into(),
                (_, "shipped") => "already shipped".into(),
                (_, "manufactured") => "not received into stock yet".into(),
                (_, s) => format!("{}: it cannot be {}", s.replace('_', " "), self.verb()),
            });
        }
        if self == StationKind::Ship && status == "sold" && location_id.is_none() {
            return Some("already sold and shipped".into());
        }
        if here && location_id != Some(batch_location) {
            return Some(format!(
                "wrong location: recorded{}, not at {batch_location_code}",
                if location_code.is_some() {
                    at(location_code)
                } else {
                    " at no location".into()
                }
            ));
        }
        if elsewhere && location_id == Some(batch_location) {
            return Some(format!("already at {batch_location_code}"));
        }
        None
    }

    fn verb(self) -> &'static str {
        match self {
            StationKind::Receive => "received",
            StationKind::Move => "moved",
            StationKind::Ship => "shipped",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scan_batches)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ScanBatch {
    pub id: i64,
    pub kind: String,
    pub location_id: i64,
    pub reference: Option<String>,
    pub status: String,
    pub account_id: i64,
    pub created_at: DateTime<Utc>,
    pub committed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scan_batch_items)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ScanItem {
    pub id: i64,
    pub raw: String,
    pub unit_id: Option<i64>,
    pub problem: Option<String>,
    pub scanned_at: DateTime<Utc>,
}

impl ScanBatch {
    pub fn kind(&self) -> StationKind {
        StationKind::parse(&self.kind).unwrap_or(StationKind::Receive)
    }

    pub async fn create(
        conn: &mut AsyncPgConnection,
        kind: StationKind,
        location_id: i64,
        reference: Option<&str>,
        account_id: i64,
    ) -> QueryResult<i64> {
        diesel::insert_into(scan_batches::table)
            .values((
                scan_batches::kind.eq(kind.as_str()),
                scan_batches::location_id.eq(location_id),
                scan_batches::reference.eq(reference),
                scan_batches::account_id.eq(account_id),
            ))
            .returning(scan_batches::id)
            .get_result(conn)
            .await
    }

    /// The batch with its location code, if it belongs to `account_id`.
    pub async fn find_own(
        conn: &mut AsyncPgConnection,
        id: i64,
        account_id: i64,
    ) -> QueryResult<Option<(Self, String)>> {
        scan_batches::table
            .inner_join(locations::table)
            .filter(scan_batches::id.eq(id))
            .filter(scan_batches::account_id.eq(account_id))
            .select((Self::as_select(), locations::code))
            .first(conn)
            .await
            .optional()
    }

    /// The account's open batches, newest first, with their location codes and scan counts.
    pub async fn open_of(
        conn: &mut AsyncPgConnection,
        account_id: i64,
    ) -> QueryResult<Vec<(Self, String, i64)>> {
        let batches: Vec<(Self, String)> = scan_batches::table
            .inner_join(locations::table)
            .filter(scan_batches::account_id.eq(account_id))
            .filter(scan_batches::status.eq("open"))
            .order(scan_batches::id.desc())
            .limit(20)
            .select((Self::as_select(), locations::code))
            .load(conn)
            .await?;
        let ids: Vec<i64> = batches.iter().map(|(b, _)| b.id).collect();
        let counts: Vec<(i64, i64)> = scan_batch_items::table
            .filter(scan_batch_items::batch_id.eq_any(&ids))
            .group_by(scan_batch_items::batch_id)
            .select((scan_batch_items::batch_id, diesel::dsl::count_star()))
            .load(conn)
            .await?;
        Ok(batches
            .into_iter()
            .map(|(b, code)| {
                let n = counts
                    .iter()
                    .find(|(id, _)| *id == b.id)
                    .map(|c| c.1)
                    .unwrap_or(0);
                (b, code, n)
            })
            .collect())
    }

    /// Scans, newest first.
    pub async fn items(&self, conn: &mut AsyncPgConnection) -> QueryResult<Vec<ScanItem>> {
        scan_batch_items::table
            .filter(scan_batch_items::batch_id.eq(self.id))
            .order(scan_batch_items::id.desc())
            .select(ScanItem::as_select())
            .load(conn)
            .await
    }

    pub async fn add(
        &self,
        conn: &mut AsyncPgConnection,
        raw: &str,
        unit_id: Option<i64>,
        problem: Option<&str>,
    ) -> QueryResult<()> {
        diesel::insert_into(scan_batch_items::table)
            .values((
                scan_batch_items::batch_id.eq(self.id),
                scan_batch_items::raw.eq(raw),
                scan_batch_items::unit_id.eq(unit_id),
                scan_batch_items::problem.eq(problem),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Whether the unit was already scanned (without a problem) in this batch.
    pub async fn has_unit(&self, conn: &mut AsyncPgConnection, unit_id: i64) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            scan_batch_items::table
                .filter(scan_batch_items::batch_id.eq(self.id))
                .filter(scan_batch_items::unit_id.eq(unit_id))
                .filter(scan_batch_items::problem.is_null()),
        ))
        .get_result(conn)
        .await
    }

    pub async fn remove_item(&self, conn: &mut AsyncPgConnection, item: i64) -> QueryResult<usize> {
        diesel::delete(
            scan_batch_items::table
                .filter(scan_batch_items::batch_id.eq(self.id))
                .filter(scan_batch_items::id.eq(item)),
        )
        .execute(conn)
        .await
    }

    pub async fn cancel(&self, conn: &mut AsyncPgConnection) -> QueryResult<usize> {
        diesel::update(
            scan_batches::table
                .filter(scan_batches::id.eq(self.id))
                .filter(scan_batches::status.eq("open")),
        )
        .set(scan_batches::status.eq("cancelled"))
        .execute(conn)
        .await
    }

    /// Applies every scan without a problem, set-based, in one transaction: the units change
    /// and each gets one history event. Each unit is checked again (it may have changed since
    /// it was scanned): if any no longer qualifies, nothing is applied and `Err(n)` says how
    /// many. `Ok(n)`: units changed.
    pub async fn commit(
        &self,
        conn: &mut AsyncPgConnection,
        actor: &str,
    ) -> QueryResult<Result<usize, usize>> {
        let kind = self.kind();
        let (allowed, here, elsewhere) = kind.rule();
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let id = self.id;
        let location = self.location_id;
        let reference = self.reference.clone().unwrap_or_default();
        let actor = actor.to_owned();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            // Lock the batch: two commits of one batch cannot both apply it.
            let open: Option<i64> = scan_batches::table
                .filter(scan_batches::id.eq(id))
                .filter(scan_batches::status.eq("open"))
                .select(scan_batches::id)
                .for_update()
                .first(conn)
                .await
                .optional()?;
            if open.is_none() {
                return Ok(Err(0));
            }
            // Lock the units (in id order, so two commits cannot deadlock): the check below and
            // the writes after it then see the same rows, and a sale or another station that
            // changes one meanwhile waits for this commit or is waited for.
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            let ids: Vec<i64> = diesel::sql_query(
                "SELECT u.id FROM units u
                 WHERE u.id IN (SELECT unit_id FROM scan_batch_items WHERE batch_id = $1 AND problem IS NULL)
                 ORDER BY u.id FOR UPDATE",
            )
            .bind::<BigInt, _>(id)
            .load::<Id>(conn)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
            #[derive(QueryableByName)]
            struct N {
                #[diesel(sql_type = BigInt)]
                n: i64,
            }
            let stale: N = diesel::sql_query(
                "SELECT count(*) AS n FROM units u
                 WHERE u.id = ANY($1)
                   AND NOT (u.status = ANY($2)
                            AND (NOT $3 OR u.location_id IS NOT DISTINCT FROM $4)
                            AND (NOT $5 OR u.location_id IS DISTINCT FROM $4))",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Text>, _>(&allowed)
            .bind::<diesel::sql_types::Bool, _>(here)
            .bind::<BigInt, _>(location)
            .bind::<diesel::sql_types::Bool, _>(elsewhere)
            .get_result(conn)
            .await?;
            if stale.n > 0 {
                return Ok(Err(stale.n as usize));
            }
            // The same two statements as every other movement (the token API's too).
            let (events, update) = super::stock::movement_statements(kind);
            diesel::sql_query(events)
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<BigInt, _>(location)
                .bind::<Text, _>(&actor)
                .bind::<Text, _>(&reference)
                .execute(conn)
                .await?;
            let n = diesel::sql_query(update)
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<BigInt, _>(location)
                .execute(conn)
                .await?;
            diesel::update(scan_batches::table.filter(scan_batches::id.eq(id)))
                .set((
                    scan_batches::status.eq("committed"),
                    scan_batches::committed_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            Ok(Ok(n))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_station_says_why_a_unit_cannot_take_part() {
        use StationKind::*;
        let p = |k: StationKind, status: &str, loc: Option<i64>, code: Option<&str>| {
            k.problem(status, loc, code, 1, "WH-EU")
        };
        assert_eq!(p(Receive, "manufactured", None, None), None);
        assert_eq!(p(Receive, "returned", None, None), None);
        assert_eq!(
            p(Receive, "in_stock", Some(1), Some("WH-EU")).as_deref(),
            Some("already in stock at WH-EU")
        );
        assert!(
            p(Receive, "in_stock", Some(2), Some("WH-US"))
                .unwrap()
                .contains("use a move station")
        );
        assert!(
            p(Receive, "sold", None, None)
                .unwrap()
                .contains("unlink it from its sale")
        );
        assert_eq!(
            p(Ship, "sold", Some(1), Some("WH-EU")),
            None,
            "sold, still on the shelf"
        );
        assert_eq!(
            p(Ship, "sold", None, None).as_deref(),
            Some("already sold and shipped")
        );
        assert_eq!(
            p(Move, "sold", Some(1), Some("WH-EU")).as_deref(),
            Some("already sold")
        );
        assert_eq!(p(Move, "in_stock", Some(2), Some("WH-US")), None);
        assert_eq!(
            p(Move, "in_stock", Some(1), Some("WH-EU")).as_deref(),
            Some("already at WH-EU")
        );
        assert_eq!(
            p(Move, "shipped", None, None).as_deref(),
            Some("already shipped")
        );
        assert_eq!(
            p(Move, "manufactured", None, None).as_deref(),
            Some("not received into stock yet")
        );
        assert_eq!(p(Ship, "in_stock", Some(1), Some("WH-EU")), None);
        assert_eq!(
            p(Ship, "in_stock", Some(2), Some("WH-US")).as_deref(),
            Some("wrong location: recorded at WH-US, not at WH-EU")
        );
        assert_eq!(
            p(Ship, "shipped", None, None).as_deref(),
            Some("already shipped")
        );
        assert_eq!(
            p(Ship, "scrapped", None, None).as_deref(),
            Some("scrapped: it cannot be shipped")
        );
    }
}
