//! Sales linkage: units linked to sales from a CSV file or a form, set-based.
//!
//! Both ways stage their lines with binary COPY into a temporary table, resolve them to units
//! with one join, check them set-based (unknown, duplicate, already sold, scrapped, sold before
//! it was made, an order given two dates) and link them with four statements. All in one
//! transaction: everything links or nothing does.

use std::io::Read;

use anyhow::Result;
use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use super::import::{CsvInput, ImportOutcome, MAX_REPORTED, Next, PROGRESS_EVERY, load_catalogue};
use crate::domain::import::RowError;
use crate::domain::sales::{SaleColumns, SaleHeader};

/// One line to link: a unit named by model and key, or by its serial alone (`model_id`
/// `None`: resolved against every model's case rule, refused when several models have it).
#[derive(Debug, Clone)]
pub struct SaleLine {
    pub line: u64,
    pub model_id: Option<i64>,
    pub serial: String,
    pub serial_key: String,
    pub sale: SaleHeader,
}

const STAGING: &str = "CREATE TEMP TABLE sale_staging (
    line bigint NOT NULL, model_id bigint, serial text NOT NULL, serial_key text NOT NULL,
    order_ref text NOT NULL, channel text NOT NULL, sold_on date NOT NULL, email text
) ON COMMIT DROP";

const COPY: &str = "COPY sale_staging FROM STDIN BINARY";
const TYPES: [Type; 8] = [
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::DATE,
    Type::TEXT,
];

async fn stage(w: std::pin::Pin<&mut BinaryCopyInWriter>, l: &SaleLine) -> Result<()> {
    w.write(&[
        &(l.line as i64),
        &l.model_id,
        &l.serial,
        &l.serial_key,
        &l.sale.order_ref,
        &l.sale.channel,
        &l.sale.sold_on,
        &l.sale.customer_email,
    ])
    .await?;
    Ok(())
}

/// Imports sales from CSV (see `domain::sales` for the columns). `progress(rows, bytes)` is
/// called every 50,000 rows. Nothing is written unless every line is valid.
pub async fn import_sales<R: Read>(
    client: &mut Client,
    input: R,
    actor: &str,
    today: NaiveDate,
    mut progress: impl FnMut(u64, u64),
) -> Result<ImportOutcome> {
    let catalogue = load_catalogue(client, None).await?;
    let mut outcome = ImportOutcome::default();
    let tx = client.transaction().await?;
    tx.batch_execute(STAGING).await?;
    {
        let writer = BinaryCopyInWriter::new(tx.copy_in(COPY).await?, &TYPES);
        pin_mut!(writer);
        let mut input = CsvInput::new(input);
        let mut columns: Option<(SaleColumns, usize)> = None;
        loop {
            let (line, bytes, fields) = match input.next(&mut outcome) {
                Next::End => break,
                Next::Skip => continue,
                Next::Row(line, bytes, fields) => (line, bytes, fields),
            };
            let Some((cols, width)) = columns else {
                match SaleColumns::from_header(&fields) {
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
            let row = match cols.parse(line, &fields, width, today) {
                Ok(r) => r,
                Err(errors) => {
                    errors.into_iter().for_each(|e| outcome.reject(e));
                    continue;
                }
            };
            let Some(model) = catalogue.models.get(&row.gtin) else {
                outcome.reject(RowError {
                    line,
                    column: "gtin".into(),
                    reason: format!("no product model has GTIN {}", row.gtin),
                });
                continue;
            };
            let serial_key = if model.case_sensitive {
                row.serial.clone()
            } else {
                row.serial.to_ascii_uppercase()
            };
            let staged = SaleLine {
                line,
                model_id: Some(model.id),
                serial: row.serial,
                serial_key,
                sale: row.sale,
            };
            stage(writer.as_mut(), &staged).await?;
        }
        writer.finish().await?;
        if columns.is_none() && outcome.ok() {
            outcome.reject(RowError {
                line: 1,
                column: String::new(),
                reason: "the file is empty: it needs a header line and at least one row".into(),
            });
        } else if outcome.rows == 0 && outcome.ok() {
            outcome.reject(RowError {
                line: 2,
                column: String::new(),
                reason: "the file has a header but no rows".into(),
            });
        }
    }
    check_and_link(&tx, &mut outcome, actor).await?;
    if outcome.ok() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(outcome)
}

/// Links the given lines (from a form or a scan list) the same way as an import.
pub async fn link_lines(
    client: &mut Client,
    lines: &[SaleLine],
    actor: &str,
) -> Result<ImportOutcome> {
    let tx = client.transaction().await?;
    let outcome = link_lines_in(&tx, lines, actor).await?;
    if outcome.ok() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(outcome)
}

/// [`link_lines`] inside a transaction the caller commits (the token API records its
/// Idempotency-Key answer in the same one). When the outcome is not ok, nothing but this
/// transaction's temporary tables was written.
pub async fn link_lines_in(
    tx: &Transaction<'_>,
    lines: &[SaleLine],
    actor: &str,
) -> Result<ImportOutcome> {
    let mut outcome = ImportOutcome {
        rows: lines.len() as u64,
        ..Default::default()
    };
    tx.batch_execute(STAGING).await?;
    {
        let writer = BinaryCopyInWriter::new(tx.copy_in(COPY).await?, &TYPES);
        pin_mut!(writer);
        for l in lines {
            stage(writer.as_mut(), l).await?;
        }
        writer.finish().await?;
    }
    check_and_link(tx, &mut outcome, actor).await?;
    Ok(outcome)
}

/// Every problem found by one query, as (line, column, reason) rows.
async fn problems(
    tx: &Transaction<'_>,
    outcome: &mut ImportOutcome,
    column: &str,
    sql: &str,
) -> Result<()> {
    let limit = MAX_REPORTED as i64;
    for r in tx.query(sql, &[&limit]).await? {
        outcome.reject(RowError {
            line: r.get::<_, i64>(0) as u64,
            column: column.into(),
            reason: r.get(1),
        });
    }
    Ok(())
}

async fn check_and_link(
    tx: &Transaction<'_>,
    outcome: &mut ImportOutcome,
    actor: &str,
) -> Result<()> {
    // One linker at a time: the "already sold" check then sees every link committed before it
    // (a form sent twice cannot link a unit twice).
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('sale_units'))", &[])
        .await?;
    // Serials given without a GTIN: found under each model's case rule; unique or refused.
    tx.batch_execute(
        "CREATE TEMP TABLE sale_bare ON COMMIT DROP AS
         SELECT s.line, u.model_id, u.serial_key
         FROM sale_staging s
         JOIN units u ON u.serial_key IN (s.serial, upper(s.serial))
         JOIN product_models m ON m.id = u.model_id
         WHERE s.model_id IS NULL
           AND CASE WHEN m.serials_case_sensitive THEN u.serial = s.serial
                    ELSE u.serial_key = upper(s.serial) END;
         UPDATE sale_staging s SET model_id = b.model_id, serial_key = b.serial_key
         FROM sale_bare b
         WHERE b.line = s.line AND s.model_id IS NULL
           AND (SELECT count(*) FROM sale_bare o WHERE o.line = s.line) = 1;",
    )
    .await?;
    problems(
        tx,
        outcome,
        "serial",
        "SELECT s.line, s.serial || ' exists on ' || count(*) || ' product models; scan the code with the GTIN, or give the GTIN'
         FROM sale_staging s JOIN sale_bare b ON b.line = s.line
         WHERE s.model_id IS NULL GROUP BY s.line, s.serial ORDER BY s.line LIMIT $1",
    )
    .await?;
    problems(
        tx,
        outcome,
        "serial",
        "SELECT line, 'the same unit is already on line ' || first FROM (
             SELECT line, min(line) OVER (PARTITION BY model_id, serial_key) AS first
             FROM sale_staging WHERE model_id IS NOT NULL
         ) d WHERE line <> first ORDER BY line LIMIT $1",
    )
    .await?;
    tx.batch_execute(
        "CREATE TEMP TABLE sale_links ON COMMIT DROP AS
         SELECT s.line, s.serial, s.order_ref, s.channel, s.sold_on, s.email,
                u.id AS unit_id, u.status, u.location_id,
                coalesce(u.manufactured_on, l.production_date) AS made
         FROM sale_staging s
         JOIN units u ON u.serial_key = s.serial_key AND u.model_id = s.model_id
         LEFT JOIN lots l ON l.id = u.lot_id;
         ANALYZE sale_links;",
    )
    .await?;
    problems(
        tx,
        outcome,
        "serial",
        "SELECT s.line, 'there is no unit ' || s.serial || CASE WHEN s.model_id IS NULL THEN '' ELSE ' of this model' END
         FROM sale_staging s
         WHERE NOT EXISTS (SELECT 1 FROM sale_links l WHERE l.line = s.line)
           AND NOT EXISTS (SELECT 1 FROM sale_bare b WHERE b.line = s.line AND s.model_id IS NULL)
         ORDER BY s.line LIMIT $1",
    )
    .await?;
    problems(
        tx,
        outcome,
        "serial",
        "SELECT l.line, l.serial || ' is already sold (order ' || sa.order_ref || ', ' || sa.channel || ', ' || sa.sold_on || '); unlink it first'
         FROM sale_links l
         JOIN sale_units su ON su.unit_id = l.unit_id AND su.unlinked_at IS NULL
         JOIN sales sa ON sa.id = su.sale_id
         ORDER BY l.line LIMIT $1",
    )
    .await?;
    problems(
        tx,
        outcome,
        "serial",
        "SELECT line, serial || ' is ' || status || ' and cannot be sold'
         FROM sale_links WHERE status IN ('scrapped', 'replaced', 'missing') ORDER BY line LIMIT $1",
    )
    .await?;
    problems(
        tx,
        outcome,
        "sold_on",
        "SELECT line, 'the sale date ' || sold_on || ' is before ' || serial || ' was made (' || made || ')'
         FROM sale_links WHERE sold_on < made ORDER BY line LIMIT $1",
    )
    .await?;
    problems(
        tx,
        outcome,
        "sold_on",
        "SELECT s.line, 'order ' || s.order_ref || ' (' || s.channel || ') is on line ' || f.line || ' with another sale date or customer email'
         FROM sale_staging s
         JOIN (SELECT DISTINCT ON (channel, order_ref) channel, order_ref, sold_on, email, line
               FROM sale_staging ORDER BY channel, order_ref, line) f
           ON f.channel = s.channel AND f.order_ref = s.order_ref
         WHERE (s.sold_on, s.email) IS DISTINCT FROM (f.sold_on, f.email)
         ORDER BY s.line LIMIT $1",
    )
    .await?;
    problems(
        tx,
        outcome,
        "sold_on",
        "SELECT s.line, 'order ' || s.order_ref || ' (' || s.channel || ') is already recorded with sale date ' || sa.sold_on || ' and another customer email or date'
         FROM sale_staging s
         JOIN sales sa ON sa.channel = s.channel AND sa.order_ref = s.order_ref
         WHERE (s.sold_on, s.email) IS DISTINCT FROM (sa.sold_on, sa.customer_email)
         ORDER BY s.line LIMIT $1",
    )
    .await?;
    if !outcome.ok() {
        outcome.errors.sort_by_key(|e| e.line);
        return Ok(());
    }
    tx.execute(
        "INSERT INTO sales (order_ref, channel, sold_on, customer_email, created_by)
         SELECT DISTINCT ON (channel, order_ref) order_ref, channel, sold_on, email, $1
         FROM sale_staging ORDER BY channel, order_ref, line
         ON CONFLICT (channel, order_ref) DO NOTHING",
        &[&actor],
    )
    .await?;
    let linked = tx
        .execute(
            "INSERT INTO sale_units (sale_id, unit_id, linked_by)
             SELECT sa.id, l.unit_id, $1 FROM sale_links l
             JOIN sales sa ON sa.channel = l.channel AND sa.order_ref = l.order_ref",
            &[&actor],
        )
        .await?;
    tx.execute(
        "UPDATE units u SET sold_on = l.sold_on, updated_at = now(),
                status = CASE WHEN u.status = 'registered' THEN u.status ELSE 'sold' END
         FROM sale_links l WHERE u.id = l.unit_id",
        &[],
    )
    .await?;
    tx.execute(
        "INSERT INTO unit_events (unit_id, kind, actor, location_id, reference)
         SELECT unit_id, 'sold', $1, location_id, 'order ' || order_ref || ' · ' || channel || ' · ' || sold_on
         FROM sale_links",
        &[&actor],
    )
    .await?;
    outcome.inserted = linked;
    Ok(())
}

/// A unit's sales, the current one first.
#[derive(Debug, Clone, QueryableByName)]
pub struct UnitSale {
    #[diesel(sql_type = BigInt)]
    pub sale_id: i64,
    #[diesel(sql_type = Text)]
    pub order_ref: String,
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Date)]
    pub sold_on: NaiveDate,
    #[diesel(sql_type = Nullable<Text>)]
    pub customer_email: Option<String>,
    #[diesel(sql_type = Text)]
    pub linked_by: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub unlinked_at: Option<chrono::DateTime<chrono::Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub unlink_reason: Option<String>,
}

impl UnitSale {
    pub async fn of_unit(
        conn: &mut AsyncPgConnection,
        unit_id: i64,
    ) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(
            "SELECT sa.id AS sale_id, sa.order_ref, sa.channel, sa.sold_on, sa.customer_email,
                    su.linked_by, su.unlinked_at, su.unlink_reason
             FROM sale_units su JOIN sales sa ON sa.id = su.sale_id
             WHERE su.unit_id = $1
             ORDER BY su.unlinked_at IS NULL DESC, su.linked_at DESC",
        )
        .bind::<BigInt, _>(unit_id)
        .load(conn)
        .await
    }
}

/// Unlinks a unit from its current sale: the link is kept with who, when and why; the unit
/// loses its sale date (a sold unit becomes `returned`) and its history records it.
/// `Ok(false)`: it had no current sale.
pub async fn unlink(
    conn: &mut AsyncPgConnection,
    unit_id: i64,
    reason: &str,
    actor: &str,
) -> diesel::QueryResult<bool> {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let n = diesel::sql_query(
            "WITH gone AS (
                 UPDATE sale_units SET unlinked_at = now(), unlinked_by = $2, unlink_reason = $3
                 WHERE unit_id = $1 AND unlinked_at IS NULL RETURNING sale_id
             ), unit AS (
                 UPDATE units SET sold_on = NULL, updated_at = now(),
                        status = CASE WHEN status = 'sold' THEN 'returned' ELSE status END
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM gone) RETURNING id
             )
             INSERT INTO unit_events (unit_id, kind, actor, reference, note)
             SELECT $1, 'unsold', $2, 'order ' || sa.order_ref || ' · ' || sa.channel, $3
             FROM gone JOIN sales sa ON sa.id = gone.sale_id",
        )
        .bind::<BigInt, _>(unit_id)
        .bind::<Text, _>(actor)
        .bind::<Text, _>(reason)
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
    .await
}

/// A sale as listed for admins: its order and how many units it covers now.
#[derive(Debug, Clone, QueryableByName)]
pub struct SaleSummary {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub order_ref: String,
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Date)]
    pub sold_on: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub units: i64,
}

impl SaleSummary {
    /// The most recently recorded sales.
    pub async fn recent(
        conn: &mut AsyncPgConnection,
        limit: i64,
    ) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(
            "SELECT sa.id, sa.order_ref, sa.channel, sa.sold_on,
                    (SELECT count(*) FROM sale_units su WHERE su.sale_id = sa.id AND su.unlinked_at IS NULL) AS units
             FROM sales sa ORDER BY sa.id DESC LIMIT $1",
        )
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
    }
}
