//! Genealogy: component units and component lots installed in units, from a form or a file,
//! checked and written set-based (the same path for one line and for a million).

use std::io::Read;

use anyhow::Result;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use super::import::{CsvInput, ImportOutcome, MAX_REPORTED, Next, PROGRESS_EVERY, load_catalogue};
use crate::domain::genealogy::ComponentColumns;
use crate::domain::import::RowError;

/// One component to install, already resolved to ids.
#[derive(Debug, Clone, Copy)]
pub struct ComponentLink {
    pub line: u64,
    pub parent_id: i64,
    pub unit_id: Option<i64>,
    pub lot_id: Option<i64>,
}

const STAGING: &str = "CREATE TEMP TABLE component_staging (
    line bigint NOT NULL, parent_id bigint NOT NULL, unit_id bigint, lot_id bigint
) ON COMMIT DROP";

/// Installs components given by id (the form), all or nothing.
pub async fn install(
    client: &mut Client,
    links: &[ComponentLink],
    actor: &str,
) -> Result<ImportOutcome> {
    let mut outcome = ImportOutcome {
        rows: links.len() as u64,
        ..Default::default()
    };
    let tx = client.transaction().await?;
    tx.batch_execute(STAGING).await?;
    {
        let writer = BinaryCopyInWriter::new(
            tx.copy_in("COPY component_staging FROM STDIN BINARY")
                .await?,
            &[Type::INT8, Type::INT8, Type::INT8, Type::INT8],
        );
        pin_mut!(writer);
        for l in links {
            writer
                .as_mut()
                .write(&[&(l.line as i64), &l.parent_id, &l.unit_id, &l.lot_id])
                .await?;
        }
        writer.finish().await?;
    }
    check_and_install(&tx, &mut outcome, actor).await?;
    finish(tx, outcome).await
}

async fn finish(tx: Transaction<'_>, outcome: ImportOutcome) -> Result<ImportOutcome> {
    if outcome.ok() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(outcome)
}

/// Imports components from CSV (see `domain::genealogy` for the columns).
pub async fn import_components<R: Read>(
    client: &mut Client,
    input: R,
    actor: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<ImportOutcome> {
    let catalogue = load_catalogue(client, None).await?;
    let mut outcome = ImportOutcome::default();
    let tx = client.transaction().await?;
    tx.batch_execute(
        "CREATE TEMP TABLE component_raw (
             line bigint NOT NULL, parent_model bigint NOT NULL, parent_key text NOT NULL, parent_serial text NOT NULL,
             component_model bigint NOT NULL, component_key text, component_serial text, component_lot text
         ) ON COMMIT DROP",
    )
    .await?;
    tx.batch_execute(STAGING).await?;
    {
        let writer = BinaryCopyInWriter::new(
            tx.copy_in("COPY component_raw FROM STDIN BINARY").await?,
            &[
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
            ],
        );
        pin_mut!(writer);
        let mut input = CsvInput::new(input);
        let mut columns: Option<(ComponentColumns, usize)> = None;
        loop {
            let (line, bytes, fields) = match input.next(&mut outcome) {
                Next::End => break,
                Next::Skip => continue,
                Next::Row(line, bytes, fields) => (line, bytes, fields),
            };
            let Some((cols, width)) = columns else {
                match ComponentColumns::from_header(&fields) {
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
            let model = |gtin: &str, column: &str, outcome: &mut ImportOutcome| {
                let m = catalogue.models.get(gtin);
                if m.is_none() {
                    outcome.reject(RowError {
                        line,
                        column: column.into(),
                        reason: format!("no product model has GTIN {gtin}"),
                    });
                }
                m
            };
            let parent = model(&row.parent_gtin, "parent_gtin", &mut outcome);
            let component = model(&row.component_gtin, "component_gtin", &mut outcome);
            let (Some(parent), Some(component)) = (parent, component) else {
                continue;
            };
            let key = |serial: &str, case_sensitive: bool| {
                if case_sensitive {
                    serial.to_owned()
                } else {
                    serial.to_ascii_uppercase()
                }
            };
            writer
                .as_mut()
                .write(&[
                    &(line as i64),
                    &parent.id,
                    &key(&row.parent_serial, parent.case_sensitive),
                    &row.parent_serial,
                    &component.id,
                    &row.component_serial
                        .as_deref()
                        .map(|s| key(s, component.case_sensitive)),
                    &row.component_serial,
                    &row.component_lot,
                ])
                .await?;
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
    // Resolve every line to ids with one join; what does not resolve is named.
    tx.batch_execute(
        "INSERT INTO component_staging (line, parent_id, unit_id, lot_id)
         SELECT r.line, p.id, c.id, l.id
         FROM component_raw r
         JOIN units p ON p.serial_key = r.parent_key AND p.model_id = r.parent_model
         LEFT JOIN units c ON c.serial_key = r.component_key AND c.model_id = r.component_model
         LEFT JOIN lots l ON l.code = r.component_lot AND l.model_id = r.component_model
         WHERE c.id IS NOT NULL OR l.id IS NOT NULL;
         ANALYZE component_staging;",
    )
    .await?;
    problems(
        &tx,
        &mut outcome,
        "parent_serial",
        "SELECT r.line, 'there is no unit ' || r.parent_serial || ' of this model' FROM component_raw r
         WHERE NOT EXISTS (SELECT 1 FROM units p WHERE p.serial_key = r.parent_key AND p.model_id = r.parent_model)
         ORDER BY r.line LIMIT $1",
    )
    .await?;
    problems(
        &tx,
        &mut outcome,
        "component_serial",
        "SELECT r.line, 'there is no unit ' || r.component_serial || ' of the component model' FROM component_raw r
         WHERE r.component_key IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM units c WHERE c.serial_key = r.component_key AND c.model_id = r.component_model)
         ORDER BY r.line LIMIT $1",
    )
    .await?;
    problems(
        &tx,
        &mut outcome,
        "component_lot",
        "SELECT r.line, 'the component model has no lot ' || r.component_lot FROM component_raw r
         WHERE r.component_lot IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM lots l WHERE l.code = r.component_lot AND l.model_id = r.component_model)
         ORDER BY r.line LIMIT $1",
    )
    .await?;
    check_and_install(&tx, &mut outcome, actor).await?;
    finish(tx, outcome).await
}

async fn problems(
    tx: &Transaction<'_>,
    outcome: &mut ImportOutcome,
    column: &str,
    sql: &str,
) -> Result<()> {
    for r in tx.query(sql, &[&(MAX_REPORTED as i64)]).await? {
        outcome.reject(RowError {
            line: r.get::<_, i64>(0) as u64,
            column: column.into(),
            reason: r.get(1),
        });
    }
    Ok(())
}

/// The checks every installation passes, then the writes: links and history events.
async fn check_and_install(
    tx: &Transaction<'_>,
    outcome: &mut ImportOutcome,
    actor: &str,
) -> Result<()> {
    // One installer at a time: the checks below then see every link committed before them
    // (two forms sent at once cannot both pass "not installed yet" or close a cycle together).
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('unit_components'))",
        &[],
    )
    .await?;
    let checks: [(&str, &str); 7] = [
        (
            "parent_serial",
            "SELECT line, 'there is no such unit to install into' FROM component_staging s
             WHERE NOT EXISTS (SELECT 1 FROM units u WHERE u.id = s.parent_id) ORDER BY line LIMIT $1",
        ),
        (
            "component_serial",
            "SELECT line, 'a unit cannot contain itself' FROM component_staging
             WHERE unit_id = parent_id ORDER BY line LIMIT $1",
        ),
        (
            "component_serial",
            "SELECT line, 'the same component unit is already on line ' || first FROM (
                 SELECT line, min(line) OVER (PARTITION BY unit_id) AS first FROM component_staging WHERE unit_id IS NOT NULL
             ) d WHERE line <> first ORDER BY line LIMIT $1",
        ),
        (
            "component_lot",
            "SELECT line, 'the same lot in the same unit is already on line ' || first FROM (
                 SELECT line, min(line) OVER (PARTITION BY parent_id, lot_id) AS first FROM component_staging WHERE lot_id IS NOT NULL
             ) d WHERE line <> first ORDER BY line LIMIT $1",
        ),
        (
            "component_serial",
            "SELECT s.line, c.serial || ' is already installed in ' || p.serial || '; remove it there first'
             FROM component_staging s
             JOIN unit_components uc ON uc.component_unit_id = s.unit_id AND uc.removed_at IS NULL
             JOIN units c ON c.id = s.unit_id JOIN units p ON p.id = uc.parent_unit_id
             ORDER BY s.line LIMIT $1",
        ),
        (
            "component_lot",
            "SELECT s.line, 'the unit already contains lot ' || l.code
             FROM component_staging s
             JOIN unit_components uc ON uc.parent_unit_id = s.parent_id AND uc.component_lot_id = s.lot_id AND uc.removed_at IS NULL
             JOIN lots l ON l.id = s.lot_id
             ORDER BY s.line LIMIT $1",
        ),
        // A unit cannot end up inside itself through others: follow what each new component
        // contains (existing links and the new ones) and look for its parent.
        (
            "component_serial",
            "WITH RECURSIVE edges AS (
                 SELECT parent_unit_id AS p, component_unit_id AS c FROM unit_components
                 WHERE removed_at IS NULL AND component_unit_id IS NOT NULL
                 UNION ALL
                 SELECT parent_id, unit_id FROM component_staging WHERE unit_id IS NOT NULL AND unit_id <> parent_id
             ), reach (line, node) AS (
                 SELECT line, unit_id FROM component_staging WHERE unit_id IS NOT NULL AND unit_id <> parent_id
                 UNION
                 SELECT r.line, e.c FROM reach r JOIN edges e ON e.p = r.node
             )
             SELECT s.line, 'this would put the unit inside itself: the component already contains it'
             FROM component_staging s JOIN reach r ON r.line = s.line AND r.node = s.parent_id
             ORDER BY s.line LIMIT $1",
        ),
    ];
    for (column, sql) in checks {
        problems(tx, outcome, column, sql).await?;
    }
    if !outcome.ok() {
        outcome.errors.sort_by_key(|e| e.line);
        return Ok(());
    }
    let n = tx
        .execute(
            "INSERT INTO unit_components (parent_unit_id, component_unit_id, component_lot_id, installed_by)
             SELECT parent_id, unit_id, lot_id, $1 FROM component_staging",
            &[&actor],
        )
        .await?;
    tx.execute(
        "INSERT INTO unit_events (unit_id, kind, actor, reference)
         SELECT s.parent_id, 'installed', $1,
                CASE WHEN s.unit_id IS NOT NULL THEN 'component ' || cm.gtin || ' ' || c.serial
                     ELSE 'component lot ' || l.code || ' of ' || lm.gtin END
         FROM component_staging s
         LEFT JOIN units c ON c.id = s.unit_id LEFT JOIN product_models cm ON cm.id = c.model_id
         LEFT JOIN lots l ON l.id = s.lot_id LEFT JOIN product_models lm ON lm.id = l.model_id
         UNION ALL
         SELECT s.unit_id, 'installed', $1, 'into ' || pm.gtin || ' ' || p.serial
         FROM component_staging s JOIN units p ON p.id = s.parent_id JOIN product_models pm ON pm.id = p.model_id
         WHERE s.unit_id IS NOT NULL",
        &[&actor],
    )
    .await?;
    outcome.inserted = n;
    Ok(())
}

/// Removes one installed component from a unit, keeping the record; `Ok(false)` when there
/// is no such current component in that unit.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    parent_id: i64,
    link_id: i64,
    reason: &str,
    actor: &str,
) -> diesel::QueryResult<bool> {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let n = diesel::sql_query(
            "WITH gone AS (
                 UPDATE unit_components SET removed_at = now(), removed_by = $3, remove_reason = $4
                 WHERE id = $2 AND parent_unit_id = $1 AND removed_at IS NULL
                 RETURNING parent_unit_id, component_unit_id, component_lot_id
             )
             INSERT INTO unit_events (unit_id, kind, actor, reference, note)
             SELECT g.parent_unit_id, 'removed', $3,
                    CASE WHEN g.component_unit_id IS NOT NULL THEN 'component ' || cm.gtin || ' ' || c.serial
                         ELSE 'component lot ' || l.code || ' of ' || lm.gtin END, $4
             FROM gone g
             LEFT JOIN units c ON c.id = g.component_unit_id LEFT JOIN product_models cm ON cm.id = c.model_id
             LEFT JOIN lots l ON l.id = g.component_lot_id LEFT JOIN product_models lm ON lm.id = l.model_id
             UNION ALL
             SELECT g.component_unit_id, 'removed', $3, 'from ' || pm.gtin || ' ' || p.serial, $4
             FROM gone g JOIN units p ON p.id = g.parent_unit_id JOIN product_models pm ON pm.id = p.model_id
             WHERE g.component_unit_id IS NOT NULL",
        )
        .bind::<BigInt, _>(parent_id)
        .bind::<BigInt, _>(link_id)
        .bind::<Text, _>(actor)
        .bind::<Text, _>(reason)
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
    .await
}

/// One line of "contains" or "contained in" on a unit's page.
#[derive(Debug, Clone, QueryableByName)]
pub struct GenealogyLine {
    #[diesel(sql_type = BigInt)]
    pub link_id: i64,
    /// The other unit (the component, or the unit it is in), if it is a unit.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub unit_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub serial: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = Text)]
    pub model: String,
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Timestamptz)]
    pub installed_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub installed_by: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub removed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub remove_reason: Option<String>,
}

/// A unit's genealogy both ways, current links first.
#[derive(Debug, Clone)]
pub struct Genealogy {
    pub contains: Vec<GenealogyLine>,
    /// Units this unit is (or was) inside.
    pub contained_in: Vec<GenealogyLine>,
    /// Units that contain this unit's lot as a component lot (at most 50), and how many.
    pub lot_in: Vec<GenealogyLine>,
    pub lot_in_count: i64,
}

const LINE: &str =
    "uc.id AS link_id, uc.installed_at, uc.installed_by, uc.removed_at, uc.remove_reason,
    m.brand || ' ' || m.name AS model, m.gtin";

impl Genealogy {
    pub async fn of(conn: &mut AsyncPgConnection, unit_id: i64) -> diesel::QueryResult<Self> {
        let contains = diesel::sql_query(format!(
            "SELECT {LINE}, u.id AS unit_id, u.serial, l.code AS lot
             FROM unit_components uc
             LEFT JOIN units u ON u.id = uc.component_unit_id
             LEFT JOIN lots l ON l.id = uc.component_lot_id
             JOIN product_models m ON m.id = coalesce(u.model_id, l.model_id)
             WHERE uc.parent_unit_id = $1
             ORDER BY uc.removed_at IS NOT NULL, uc.installed_at"
        ))
        .bind::<BigInt, _>(unit_id)
        .load(conn)
        .await?;
        let contained_in = diesel::sql_query(format!(
            "SELECT {LINE}, p.id AS unit_id, p.serial, NULL::text AS lot
             FROM unit_components uc JOIN units p ON p.id = uc.parent_unit_id
             JOIN product_models m ON m.id = p.model_id
             WHERE uc.component_unit_id = $1
             ORDER BY uc.removed_at IS NOT NULL, uc.installed_at"
        ))
        .bind::<BigInt, _>(unit_id)
        .load(conn)
        .await?;
        let lot_in = diesel::sql_query(format!(
            "SELECT {LINE}, p.id AS unit_id, p.serial, NULL::text AS lot
             FROM units me
             JOIN unit_components uc ON uc.component_lot_id = me.lot_id AND uc.removed_at IS NULL
             JOIN units p ON p.id = uc.parent_unit_id
             JOIN product_models m ON m.id = p.model_id
             WHERE me.id = $1
             ORDER BY uc.installed_at LIMIT 50"
        ))
        .bind::<BigInt, _>(unit_id)
        .load(conn)
        .await?;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let count: N = diesel::sql_query(
            "SELECT count(*) AS n FROM units me
             JOIN unit_components uc ON uc.component_lot_id = me.lot_id AND uc.removed_at IS NULL
             WHERE me.id = $1",
        )
        .bind::<BigInt, _>(unit_id)
        .get_result(conn)
        .await?;
        Ok(Genealogy {
            contains,
            contained_in,
            lot_in,
            lot_in_count: count.n,
        })
    }
}
