//! Stock counts (PRODUCT.md §3, "Stock audit"): the scans of a location go into
//! `stock_count_scans` with binary COPY; one statement reconciles them against `units` into
//! `stock_count_lines`; the categories an admin chooses are then applied with one statement
//! each, every change recorded as an `adjusted` unit event, in one transaction with its audit
//! entry.
//!
//! Every function that changes a count first locks its row (`FOR UPDATE`), so scans, a
//! reconciliation and an apply of one count never interleave. Adding scans to a reconciled
//! count sets it back to `open`: its lines are then out of date and cannot be applied until it
//! is reconciled again.

use std::io::Read;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
// diesel's RunQueryDsl is imported inside the diesel queries only: in scope here, its
// by-value `execute` would shadow tokio-postgres's `Transaction::execute`.
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::{Stream, StreamExt, pin_mut};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use super::accounts::{AuditEntry, AuditEvent};
use super::import::{CsvInput, ImportOutcome, Next, PROGRESS_EVERY, load_catalogue};
use crate::domain::counts::{Category, ScanColumns, scan_key};
use crate::domain::import::RowError;

/// Who changes a count: an admin in the browser, or the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The account (`None`: the command line).
    pub account_id: Option<i64>,
    /// As recorded on unit events: `admin:<email>`, or `cli`.
    pub name: String,
    pub ip: Option<String>,
}

/// Why a count operation was refused (everything but `Db` is the user's to fix).
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error("there is no stock count {0}")]
    NotFound(i64),
    #[error("stock count {id} is {status} and can no longer be changed; open a new count")]
    Closed { id: i64, status: String },
    #[error(
        "stock count {0} has not been reconciled yet: reconcile it, check the lines, then apply"
    )]
    NotReconciled(i64),
    #[error(
        "scans were added to stock count {0} after it was reconciled, so its lines are out of date: reconcile it again, check the lines, then apply"
    )]
    ScansAdded(i64),
    #[error(
        "stock count {0} was reconciled again after this page was loaded: check the new lines, then apply"
    )]
    ReconciledAgain(i64),
    #[error(
        "{changed} unit(s) of stock count {id} changed after it was reconciled (sold, moved or adjusted meanwhile), so nothing was applied: reconcile it again, check the lines, then apply"
    )]
    UnitsChanged { id: i64, changed: u64 },
    #[error(
        "the lines of stock counts are being read by a long operation (an apply or a download), so stock count {0} could not be reconciled: try again in a minute"
    )]
    Busy(i64),
    #[error(transparent)]
    Db(#[from] anyhow::Error),
}

impl From<tokio_postgres::Error> for CountError {
    fn from(e: tokio_postgres::Error) -> Self {
        CountError::Db(e.into())
    }
}

/// How long a reconciliation waits to swap its lines in: dropping the count's previous
/// partition waits for everyone reading `stock_count_lines` (and makes new readers wait behind
/// it), so it gives up rather than stall the count pages behind a long apply.
const SWAP_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '10s'";

impl From<diesel::result::Error> for CountError {
    fn from(e: diesel::result::Error) -> Self {
        CountError::Db(e.into())
    }
}

/// One scan to record: a unit named by model and key, or a bare serial (`model_id` `None`;
/// its key is the serial in upper case, see [`scan_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub model_id: Option<i64>,
    pub serial: String,
    pub serial_key: String,
}

/// The count row as locked by an operation.
struct Locked {
    location_id: i64,
    location: String,
    status: String,
    reconciled_at: Option<DateTime<Utc>>,
}

async fn lock(tx: &Transaction<'_>, id: i64) -> Result<Locked, CountError> {
    let row = tx
        .query_opt(
            "SELECT c.location_id, l.code, c.status, c.reconciled_at
             FROM stock_counts c JOIN locations l ON l.id = c.location_id
             WHERE c.id = $1 FOR UPDATE OF c",
            &[&id],
        )
        .await?
        .ok_or(CountError::NotFound(id))?;
    Ok(Locked {
        location_id: row.get(0),
        location: row.get(1),
        status: row.get(2),
        reconciled_at: row.get(3),
    })
}

impl Locked {
    /// Scans may be added and the count reconciled until it is applied or cancelled.
    fn writable(&self, id: i64) -> Result<(), CountError> {
        match self.status.as_str() {
            "open" | "reconciled" => Ok(()),
            s => Err(CountError::Closed {
                id,
                status: s.to_owned(),
            }),
        }
    }
}

async fn audit_tx(
    tx: &Transaction<'_>,
    actor: &Actor,
    event: &str,
    detail: &str,
) -> Result<(), CountError> {
    tx.execute(
        "INSERT INTO audit_log (event, actor_id, ip, detail) VALUES ($1, $2, $3, $4)",
        &[&event, &actor.account_id, &actor.ip, &detail],
    )
    .await?;
    Ok(())
}

const COPY_SCANS: &str =
    "COPY stock_count_scans (count_id, model_id, serial_key, serial) FROM STDIN BINARY";
const SCAN_TYPES: [Type; 4] = [Type::INT8, Type::INT8, Type::TEXT, Type::TEXT];

/// Records `n` new scans on the (locked) count: it is open again, with lines out of date if it
/// had been reconciled.
async fn scans_added(
    tx: &Transaction<'_>,
    id: i64,
    n: u64,
    actor: &Actor,
    how: &str,
) -> Result<(), CountError> {
    tx.execute(
        "UPDATE stock_counts SET scan_count = scan_count + $2, status = 'open' WHERE id = $1",
        &[&id, &(n as i64)],
    )
    .await?;
    audit_tx(
        tx,
        actor,
        "stock_count_scanned",
        &format!("stock count {id}: {n} scan(s) added ({how})"),
    )
    .await
}

/// Adds scans (already checked, from the form) to a count. Returns how many were added.
pub async fn add_scans(
    client: &mut Client,
    id: i64,
    scans: &[Scan],
    actor: &Actor,
) -> Result<u64, CountError> {
    let tx = client.transaction().await?;
    lock(&tx, id).await?.writable(id)?;
    let n = {
        let writer = BinaryCopyInWriter::new(tx.copy_in(COPY_SCANS).await?, &SCAN_TYPES);
        pin_mut!(writer);
        for s in scans {
            writer
                .as_mut()
                .write(&[&id, &s.model_id, &s.serial_key, &s.serial])
                .await?;
        }
        writer.finish().await?
    };
    scans_added(&tx, id, n, actor, "scanned or typed").await?;
    tx.commit().await?;
    Ok(n)
}

/// Adds the scans of a CSV file (`serial`, and optionally `gtin`) to a count with binary COPY.
/// Every line is checked; if any is wrong nothing is added and the outcome lists them all.
/// `progress(rows, bytes)` is called every 50,000 rows.
pub async fn upload_scans<R: Read>(
    client: &mut Client,
    id: i64,
    input: R,
    actor: &Actor,
    how: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<ImportOutcome, CountError> {
    let catalogue = load_catalogue(client, None).await?;
    let mut outcome = ImportOutcome::default();
    let tx = client.transaction().await?;
    lock(&tx, id).await?.writable(id)?;
    let n = {
        let writer = BinaryCopyInWriter::new(tx.copy_in(COPY_SCANS).await?, &SCAN_TYPES);
        pin_mut!(writer);
        let mut input = CsvInput::new(input);
        let mut columns: Option<(ScanColumns, usize)> = None;
        loop {
            let (line, bytes, fields) = match input.next(&mut outcome) {
                Next::End => break,
                Next::Skip => continue,
                Next::Row(line, bytes, fields) => (line, bytes, fields),
            };
            let Some((cols, width)) = columns else {
                match ScanColumns::from_header(&fields) {
                    Ok(c) => columns = Some((c, fields.len())),
                    Err(errors) => {
                        errors.into_iter().for_each(|e| outcome.reject(e));
                        break;
                    }
                }
                continue;
            };
            outcome.rows += 1;
            if outcome.rows.is_multiple_of(PROGRESS_EVERY) {
                progress(outcome.rows, bytes);
            }
            let row = match cols.parse(line, &fields, width) {
                Ok(r) => r,
                Err(errors) => {
                    errors.into_iter().for_each(|e| outcome.reject(e));
                    continue;
                }
            };
            let model = match &row.gtin {
                None => None,
                Some(g) => match catalogue.models.get(g) {
                    Some(m) => Some(m),
                    None => {
                        outcome.reject(RowError {
                            line,
                            column: "gtin".into(),
                            reason: format!("no product model has GTIN {g}"),
                        });
                        continue;
                    }
                },
            };
            let key = scan_key(&row.serial, model.map(|m| m.case_sensitive));
            writer
                .as_mut()
                .write(&[&id, &model.map(|m| m.id), &key, &row.serial])
                .await?;
        }
        if columns.is_none() && outcome.ok() {
            outcome.reject(RowError {
                line: 1,
                column: String::new(),
                reason: "the file is empty: it needs a header line (serial, or gtin,serial) and at least one row".into(),
            });
        } else if outcome.rows == 0 && outcome.ok() {
            outcome.reject(RowError {
                line: 2,
                column: String::new(),
                reason: "the file has a header but no rows".into(),
            });
        }
        writer.finish().await?
    };
    if !outcome.ok() {
        outcome.errors.sort_by_key(|e| e.line);
        tx.rollback().await?;
        return Ok(outcome);
    }
    scans_added(&tx, id, n, actor, how).await?;
    tx.commit().await?;
    outcome.inserted = n;
    Ok(outcome)
}

/// How many lines a reconciliation put into each category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally([i64; 6]);

impl Tally {
    fn slot(c: Category) -> usize {
        Category::ALL.iter().position(|x| *x == c).unwrap_or(0)
    }

    pub fn get(&self, c: Category) -> i64 {
        self.0[Self::slot(c)]
    }

    fn set(&mut self, c: Category, n: i64) {
        self.0[Self::slot(c)] = n;
    }

    pub fn total(&self) -> i64 {
        self.0.iter().sum()
    }

    /// "2 missing, 1 wrong location, …" (categories with lines only).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = Category::ALL
            .into_iter()
            .filter(|c| self.get(*c) > 0)
            .map(|c| format!("{} {}", self.get(c), c.label().to_lowercase()))
            .collect();
        if parts.is_empty() {
            "no lines".into()
        } else {
            parts.join(", ")
        }
    }

    fn from_rows(rows: &[tokio_postgres::Row]) -> Self {
        let mut t = Tally::default();
        for r in rows {
            if let Some(c) = Category::parse(r.get::<_, &str>(0)) {
                t.set(c, r.get(1));
            }
        }
        t
    }
}

/// Settings for the reconciliation (and its baseline in `bench/count`): the hash tables over a
/// million scans fit in memory at 256 MB (at the default 4 MB they spill to disk), and so does
/// the sort that builds the lines' index; compiling this one large statement with JIT costs
/// more than a second and saves nothing.
pub const RECONCILE_SETTINGS: &str =
    "SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL jit = off";

/// The reconciliation: one statement, so it reads units and scans in one snapshot. It writes
/// into `stock_count_lines_new` (renamed per count by [`reconcile`]).
/// $1 count, $2 its location, $3 ids of the models whose serials are case-sensitive.
///
/// - Scans with a GTIN, once per model and key, in one hash full join with `units`: a pair is
///   a unit scanned (matched, wrong location or not in stock, by its status and location); a
///   scan alone names no unit (unexpected); a unit alone, in stock here, was not scanned
///   (missing). One pass over `units` finds all three.
/// - `bare`: serials scanned without a GTIN (few, as a rule: an index lookup each). Their key
///   is upper case; they name the unit of any case-insensitive model with that key, or of a
///   case-sensitive one with exactly that serial. Naming units of several models, they are
///   ambiguous, and those units count as neither found nor missing until scanned with the
///   GTIN. A unit also scanned with its GTIN is listed once.
const RECONCILE: &str = "
WITH bare_scans AS MATERIALIZED (
    SELECT serial_key, serial FROM stock_count_scans
    WHERE count_id = $1 AND model_id IS NULL
    GROUP BY serial_key, serial
), bare AS MATERIALIZED (
    SELECT s.serial_key AS scan_key, s.serial AS scan_serial, u.id AS unit_id, u.model_id,
           u.serial_key AS unit_key, u.serial, u.status, u.location_id
    FROM bare_scans s
    JOIN units u ON u.serial_key = s.serial_key
    WHERE u.model_id <> ALL ($3::bigint[]) OR u.serial = s.serial
    UNION ALL
    SELECT s.serial_key, s.serial, u.id, u.model_id, u.serial_key, u.serial, u.status, u.location_id
    FROM bare_scans s
    JOIN units u ON u.serial_key = s.serial AND u.model_id = ANY ($3::bigint[])
    WHERE s.serial <> s.serial_key
), ambiguous AS MATERIALIZED (
    SELECT b.scan_key, b.scan_serial,
           'on ' || count(DISTINCT b.model_id) || ' products: GTIN '
               || string_agg(DISTINCT m.gtin, ', ' ORDER BY m.gtin) AS detail
    FROM bare b JOIN product_models m ON m.id = b.model_id
    GROUP BY b.scan_key, b.scan_serial
    HAVING min(b.model_id) <> max(b.model_id)
), joined AS (
    SELECT u.id AS unit_id, coalesce(u.model_id, s.model_id) AS model_id,
           coalesce(u.serial, s.serial) AS serial, u.status, u.location_id,
           s.serial_key IS NOT NULL AS scanned
    FROM (SELECT model_id, serial_key, min(serial) AS serial FROM stock_count_scans
          WHERE count_id = $1 AND model_id IS NOT NULL
          GROUP BY model_id, serial_key) s
    FULL JOIN units u ON u.model_id = s.model_id AND u.serial_key = s.serial_key
    WHERE s.serial_key IS NOT NULL
       OR (u.location_id = $2 AND u.status = 'in_stock'
           AND NOT EXISTS (SELECT 1 FROM bare b WHERE b.unit_id = u.id))
    UNION ALL
    SELECT DISTINCT b.unit_id, b.model_id, b.serial, b.status, b.location_id, true
    FROM bare b
    WHERE NOT EXISTS (SELECT 1 FROM ambiguous a
                      WHERE a.scan_key = b.scan_key AND a.scan_serial = b.scan_serial)
      AND NOT EXISTS (SELECT 1 FROM stock_count_scans g
                      WHERE g.count_id = $1 AND g.model_id = b.model_id AND g.serial_key = b.unit_key)
), lines AS (
    INSERT INTO stock_count_lines_new (count_id, category, unit_id, model_id, serial, detail)
    SELECT $1,
           CASE WHEN f.unit_id IS NULL THEN 'unexpected'
                WHEN NOT f.scanned THEN 'missing'
                WHEN f.status = 'in_stock' AND f.location_id = $2 THEN 'matched'
                WHEN f.status IN ('manufactured', 'in_stock', 'returned') THEN 'wrong_location'
                ELSE 'not_in_stock' END,
           f.unit_id, f.model_id, f.serial,
           CASE WHEN f.unit_id IS NULL OR NOT f.scanned THEN NULL
                WHEN f.status = 'in_stock' AND f.location_id = $2 THEN NULL
                WHEN f.status IN ('manufactured', 'in_stock', 'returned')
                    THEN coalesce(l.code, 'no location')
                         || CASE WHEN f.status = 'in_stock' THEN '' ELSE ' (' || f.status || ')' END
                ELSE f.status END
    FROM joined f LEFT JOIN locations l ON l.id = f.location_id
    UNION ALL
    SELECT $1, 'unexpected', NULL, NULL, x.serial, NULL
    FROM (SELECT DISTINCT ON (s.serial_key) s.serial
          FROM bare_scans s
          WHERE NOT EXISTS (SELECT 1 FROM bare b
                            WHERE b.scan_key = s.serial_key AND b.scan_serial = s.serial)
          ORDER BY s.serial_key, s.serial) x
    UNION ALL
    SELECT $1, 'ambiguous', NULL, NULL, a.scan_serial, a.detail FROM ambiguous a
    RETURNING category
)
SELECT category, count(*) FROM lines GROUP BY category";

/// Reconciles a count: its lines are replaced by a fresh reconciliation of its scans against
/// the records, and it is marked reconciled.
///
/// The lines go into a new table of their own, indexed once loaded, which then replaces the
/// count's partition of `stock_count_lines` (see migration 000005). The names in that DDL
/// carry the count's id, an integer read from its row: DDL takes no bind parameters. Dropping
/// the previous partition locks `stock_count_lines` against readers, so it comes last, just
/// before the commit.
pub async fn reconcile(client: &mut Client, id: i64, actor: &Actor) -> Result<Tally, CountError> {
    let started = std::time::Instant::now();
    // Fresh statistics for the scans just added, in a transaction of its own (ANALYZE holds
    // its lock until commit): without them a count of 50 scans after one of a million is
    // planned as a hash join over every unit.
    client.batch_execute("ANALYZE stock_count_scans").await?;
    let tx = client.transaction().await?;
    tx.batch_execute(RECONCILE_SETTINGS).await?;
    let count = lock(&tx, id).await?;
    count.writable(id)?;
    let part = format!("stock_count_lines_{id}");
    tx.batch_execute(&format!(
        "CREATE TABLE {part}_new (LIKE stock_count_lines INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                                  CHECK (count_id = {id}))"
    ))
    .await?;
    let case_sensitive: Vec<i64> = tx
        .query(
            "SELECT id FROM product_models WHERE serials_case_sensitive",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let rows = tx
        .query(
            &RECONCILE.replace("stock_count_lines_new", &format!("{part}_new")),
            &[&id, &count.location_id, &case_sensitive],
        )
        .await?;
    let tally = Tally::from_rows(&rows);
    tracing::info!(
        count = id,
        ms = started.elapsed().as_millis() as u64,
        "stock count: lines written"
    );
    tx.batch_execute(&format!(
        "CREATE INDEX {part}_page_new ON {part}_new (count_id, category, serial)"
    ))
    .await?;
    let swapped = tx
        .batch_execute(&format!(
            "{SWAP_LOCK_TIMEOUT};
             DROP TABLE IF EXISTS {part};
             ALTER TABLE {part}_new RENAME TO {part};
             ALTER INDEX {part}_page_new RENAME TO {part}_page;
             ALTER TABLE stock_count_lines ATTACH PARTITION {part} FOR VALUES IN ({id});"
        ))
        .await;
    if let Err(e) = swapped {
        if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return Err(CountError::Busy(id));
        }
        return Err(e.into());
    }
    tx.execute(
        "UPDATE stock_counts SET status = 'reconciled', reconciled_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    audit_tx(
        &tx,
        actor,
        "stock_count_reconciled",
        &format!(
            "stock count {id} at {}: {}",
            count.location,
            tally.describe()
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        count = id,
        lines = tally.total(),
        ms = started.elapsed().as_millis() as u64,
        "stock count reconciled"
    );
    Ok(tally)
}

/// The adjustment of each applicable category: one statement that locks the units still in
/// the state the reconciliation found them in, changes them and records one `adjusted` event
/// each. $1 count, $2 its location, $3 the actor, $4 the location's code.
fn apply_statement(c: Category) -> Option<&'static str> {
    Some(match c {
        Category::WrongLocation => {
            "WITH target AS (
                 SELECT u.id, u.status, u.location_id
                 FROM stock_count_lines l JOIN units u ON u.id = l.unit_id
                 WHERE l.count_id = $1 AND l.category = 'wrong_location'
                   AND u.status IN ('manufactured', 'in_stock', 'returned')
                   AND NOT (u.status = 'in_stock' AND u.location_id IS NOT DISTINCT FROM $2)
                 FOR UPDATE OF u
             ), changed AS (
                 UPDATE units u SET status = 'in_stock', location_id = $2, updated_at = now()
                 FROM target t WHERE u.id = t.id
                 RETURNING t.id, t.status, t.location_id
             )
             INSERT INTO unit_events (unit_id, kind, actor, location_id, note)
             SELECT c.id, 'adjusted', $3, $2,
                    'stock count ' || $1::bigint || ': found at ' || $4::text
                    || '; records had it at ' || coalesce(l.code, 'no location')
                    || CASE WHEN c.status = 'in_stock' THEN '' ELSE ' (' || c.status || ')' END
             FROM changed c LEFT JOIN locations l ON l.id = c.location_id"
        }
        Category::Missing => {
            "WITH target AS (
                 SELECT u.id
                 FROM stock_count_lines l JOIN units u ON u.id = l.unit_id
                 WHERE l.count_id = $1 AND l.category = 'missing'
                   AND u.status = 'in_stock' AND u.location_id = $2
                 FOR UPDATE OF u
             ), changed AS (
                 UPDATE units u SET status = 'missing', location_id = NULL, updated_at = now()
                 FROM target t WHERE u.id = t.id
                 RETURNING t.id
             )
             INSERT INTO unit_events (unit_id, kind, actor, location_id, note)
             SELECT c.id, 'adjusted', $3, $2,
                    'stock count ' || $1::bigint || ': not found at ' || $4::text || '; marked missing'
             FROM changed c"
        }
        Category::NotInStock => {
            "WITH target AS (
                 SELECT u.id, u.status
                 FROM stock_count_lines l JOIN units u ON u.id = l.unit_id
                 WHERE l.count_id = $1 AND l.category = 'not_in_stock'
                   AND u.status IN ('shipped', 'sold', 'registered', 'scrapped', 'replaced', 'missing')
                 FOR UPDATE OF u
             ), changed AS (
                 UPDATE units u SET status = 'in_stock', location_id = $2, updated_at = now()
                 FROM target t WHERE u.id = t.id
                 RETURNING t.id, t.status
             )
             INSERT INTO unit_events (unit_id, kind, actor, location_id, note)
             SELECT c.id, 'adjusted', $3, $2,
                    'stock count ' || $1::bigint || ': found at ' || $4::text
                    || ' although recorded as ' || c.status || '; back in stock'
             FROM changed c"
        }
        _ => return None,
    })
}

/// What an apply changed, per category.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied(pub Vec<(Category, u64)>);

impl Applied {
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(c, n)| match c {
                Category::WrongLocation => format!("{n} moved here"),
                Category::Missing => format!("{n} marked missing"),
                Category::NotInStock => format!("{n} back in stock"),
                c => format!("{n} {c}"),
            })
            .collect();
        if parts.is_empty() {
            "no adjustments".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Applies the chosen categories of a reconciled count and closes it (read-only from then
/// on). `seen` is when the reconciliation the admin looked at was made: a newer one is
/// refused, so nobody applies lines they have not seen. If any unit has changed since the
/// reconciliation in a way that makes its adjustment wrong, nothing is applied.
pub async fn apply(
    client: &mut Client,
    id: i64,
    chosen: &[Category],
    seen: Option<DateTime<Utc>>,
    actor: &Actor,
) -> Result<Applied, CountError> {
    let tx = client.transaction().await?;
    let count = lock(&tx, id).await?;
    match count.status.as_str() {
        "reconciled" => {}
        "open" if count.reconciled_at.is_some() => return Err(CountError::ScansAdded(id)),
        "open" => return Err(CountError::NotReconciled(id)),
        s => {
            return Err(CountError::Closed {
                id,
                status: s.to_owned(),
            });
        }
    }
    if let Some(seen) = seen
        && Some(seen) != count.reconciled_at
    {
        return Err(CountError::ReconciledAgain(id));
    }
    let names: Vec<&str> = chosen.iter().map(|c| c.as_str()).collect();
    let expected = Tally::from_rows(
        &tx.query(
            "SELECT category, count(*) FROM stock_count_lines
             WHERE count_id = $1 AND category = ANY ($2) GROUP BY category",
            &[&id, &names],
        )
        .await?,
    );
    let mut applied = Applied::default();
    let mut changed_since = 0u64;
    for c in Category::APPLICABLE {
        let Some(sql) = apply_statement(c).filter(|_| chosen.contains(&c)) else {
            continue;
        };
        let n = tx
            .execute(
                sql,
                &[&id, &count.location_id, &actor.name, &count.location],
            )
            .await?;
        changed_since += (expected.get(c).max(0) as u64).saturating_sub(n);
        applied.0.push((c, n));
    }
    if changed_since > 0 {
        tx.rollback().await?;
        return Err(CountError::UnitsChanged {
            id,
            changed: changed_since,
        });
    }
    tx.execute(
        "UPDATE stock_counts SET status = 'applied', applied_at = now(), applied_by = $2 WHERE id = $1",
        &[&id, &actor.account_id],
    )
    .await?;
    audit_tx(
        &tx,
        actor,
        "stock_count_applied",
        &format!(
            "stock count {id} at {}: {}",
            count.location,
            applied.describe()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(applied)
}

/// A count as listed and shown to admins.
#[derive(Debug, Clone, QueryableByName)]
pub struct StockCount {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub location_id: i64,
    #[diesel(sql_type = Text)]
    pub location_code: String,
    #[diesel(sql_type = Text)]
    pub location_name: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub opened_by: String,
    #[diesel(sql_type = Timestamptz)]
    pub opened_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub reconciled_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub applied_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub applied_by: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub scan_count: i64,
}

const COUNT_SELECT: &str = "
    SELECT c.id, c.location_id, l.code AS location_code, l.name AS location_name, c.status,
           o.email AS opened_by, c.opened_at, c.reconciled_at, c.applied_at,
           a.email AS applied_by, c.scan_count
    FROM stock_counts c
    JOIN locations l ON l.id = c.location_id
    JOIN accounts o ON o.id = c.opened_by
    LEFT JOIN accounts a ON a.id = c.applied_by";

/// Why a count could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenRefusal {
    UnknownLocation,
    /// A count of this location is still open (or reconciled, not applied): its id.
    AlreadyOpen(i64),
}

impl StockCount {
    pub async fn recent(
        conn: &mut AsyncPgConnection,
        limit: i64,
    ) -> diesel::QueryResult<Vec<Self>> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!(
            "{COUNT_SELECT} ORDER BY c.opened_at DESC, c.id DESC LIMIT $1"
        ))
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> diesel::QueryResult<Option<Self>> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!("{COUNT_SELECT} WHERE c.id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(conn)
            .await
            .optional()
    }

    /// Whether scans may still be added and the count reconciled.
    pub fn is_writable(&self) -> bool {
        matches!(self.status.as_str(), "open" | "reconciled")
    }

    /// Opens a count of a location, with its audit entry.
    pub async fn open(
        conn: &mut AsyncPgConnection,
        location_id: i64,
        actor: &Actor,
    ) -> Result<Result<i64, OpenRefusal>, CountError> {
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        #[derive(QueryableByName)]
        struct Code {
            #[diesel(sql_type = Text)]
            code: String,
        }
        let Some(account_id) = actor.account_id else {
            return Err(CountError::Db(anyhow::anyhow!(
                "a count is opened by an account"
            )));
        };
        let opened = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let code: Option<Code> =
                    diesel::sql_query("SELECT code FROM locations WHERE id = $1")
                        .bind::<BigInt, _>(location_id)
                        .get_result(conn)
                        .await
                        .optional()?;
                let Some(code) = code else {
                    return Ok(Err(OpenRefusal::UnknownLocation));
                };
                let new: Vec<Id> = diesel::sql_query(
                    "INSERT INTO stock_counts (location_id, opened_by) VALUES ($1, $2)
                     ON CONFLICT (location_id) WHERE status IN ('open', 'reconciled') DO NOTHING
                     RETURNING id",
                )
                .bind::<BigInt, _>(location_id)
                .bind::<BigInt, _>(account_id)
                .load(conn)
                .await?;
                let Some(new) = new.into_iter().next() else {
                    let open: Vec<Id> = diesel::sql_query(
                        "SELECT id FROM stock_counts
                         WHERE location_id = $1 AND status IN ('open', 'reconciled')",
                    )
                    .bind::<BigInt, _>(location_id)
                    .load(conn)
                    .await?;
                    return Ok(Err(OpenRefusal::AlreadyOpen(
                        open.into_iter().next().map(|o| o.id).unwrap_or(0),
                    )));
                };
                AuditEntry::record(
                    conn,
                    AuditEvent {
                        event: "stock_count_opened",
                        actor_id: Some(account_id),
                        ip: actor.ip.as_deref(),
                        detail: Some(&format!("stock count {} at {}", new.id, code.code)),
                        ..Default::default()
                    },
                )
                .await?;
                Ok(Ok(new.id))
            })
            .await?;
        Ok(opened)
    }

    /// Cancels a count that has not been applied (its scans and lines stay for the record).
    pub async fn cancel(client: &mut Client, id: i64, actor: &Actor) -> Result<(), CountError> {
        let tx = client.transaction().await?;
        let count = lock(&tx, id).await?;
        count.writable(id)?;
        tx.execute(
            "UPDATE stock_counts SET status = 'cancelled' WHERE id = $1",
            &[&id],
        )
        .await?;
        audit_tx(
            &tx,
            actor,
            "stock_count_cancelled",
            &format!("stock count {id} at {}", count.location),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// One line of a reconciliation, as shown on the count page.
#[derive(Debug, Clone, QueryableByName)]
pub struct CountLine {
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub unit_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub gtin: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub product: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub detail: Option<String>,
}

impl CountLine {
    /// Lines of one category, in serial order, a page at a time.
    pub async fn page(
        conn: &mut AsyncPgConnection,
        count_id: i64,
        category: Category,
        offset: i64,
        limit: i64,
    ) -> diesel::QueryResult<Vec<Self>> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(
            "SELECT l.serial, l.unit_id, m.gtin, m.brand || ' ' || m.name AS product, l.detail
             FROM stock_count_lines l LEFT JOIN product_models m ON m.id = l.model_id
             WHERE l.count_id = $1 AND l.category = $2
             ORDER BY l.serial, l.unit_id LIMIT $3 OFFSET $4",
        )
        .bind::<BigInt, _>(count_id)
        .bind::<Text, _>(category.as_str())
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset)
        .load(conn)
        .await
    }

    /// How many lines each category has.
    pub async fn tally(conn: &mut AsyncPgConnection, count_id: i64) -> diesel::QueryResult<Tally> {
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            category: String,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT category, count(*) AS n FROM stock_count_lines WHERE count_id = $1 GROUP BY category",
        )
        .bind::<BigInt, _>(count_id)
        .load(conn)
        .await?;
        let mut t = Tally::default();
        for r in rows {
            if let Some(c) = Category::parse(&r.category) {
                t.set(c, r.n);
            }
        }
        Ok(t)
    }
}

/// Every line of a count as CSV (`category, gtin, serial, product, detail`), streamed from
/// the database a batch of rows at a time; the stream keeps `client` alive.
pub async fn lines_csv(
    client: Client,
    count_id: i64,
) -> Result<impl Stream<Item = Result<Vec<u8>, anyhow::Error>> + 'static, CountError> {
    let rows = client
        .query_raw(
            "SELECT l.category, m.gtin, l.serial, m.brand || ' ' || m.name, l.detail
             FROM stock_count_lines l LEFT JOIN product_models m ON m.id = l.model_id
             WHERE l.count_id = $1 ORDER BY l.category, l.serial",
            [&count_id],
        )
        .await?;
    let header =
        futures_util::stream::once(async { Ok(b"category,gtin,serial,product,detail\n".to_vec()) });
    let body = Box::pin(rows).ready_chunks(1000).map(move |batch| {
        let _connection = &client;
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in batch {
            let row = row?;
            let field = |i: usize| row.get::<_, Option<&str>>(i).unwrap_or("").to_owned();
            w.write_record([field(0), field(1), field(2), field(3), field(4)])?;
        }
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
    });
    Ok(header.chain(body))
}

/// When a reconciliation was made, as the apply form carries it (microseconds since 1970).
pub fn reconciled_stamp(t: DateTime<Utc>) -> String {
    t.timestamp_micros().to_string()
}

/// Reads a stamp from [`reconciled_stamp`] back.
pub fn parse_reconciled_stamp(s: &str) -> Option<DateTime<Utc>> {
    let micros: i64 = s.trim().parse().ok()?;
    DateTime::<Utc>::from_timestamp_micros(micros)
}
