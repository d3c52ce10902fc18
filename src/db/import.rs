//! Bulk import of units: rows are checked in Rust against the catalogue and their keys streamed
//! into a staging table with binary COPY; duplicates (within the file and against the
//! database) are found set-based; then the file is read again and its rows go straight into
//! `units` with binary COPY. All in one transaction: a file loads whole or not at all.

use std::collections::HashMap;
use std::io::Read;
use std::pin::Pin;

use anyhow::Result;
use chrono::NaiveDate;
use futures_util::pin_mut;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::domain::import::{RowError, UNIT_STATUSES, UnitColumns, UnitRecord, shorten};
use crate::domain::serial_format::SerialFormat;

/// Rejected rows kept for the report (all are counted).
pub const MAX_REPORTED: usize = 10_000;

#[derive(Debug, Default)]
pub struct ImportOutcome {
    /// Data rows read (the header not counted).
    pub rows: u64,
    pub inserted: u64,
    /// Rejected rows, in file order, at most MAX_REPORTED.
    pub errors: Vec<RowError>,
    /// All problems found, including those beyond the report's limit.
    pub error_count: u64,
}

impl ImportOutcome {
    pub fn ok(&self) -> bool {
        self.error_count == 0
    }

    pub(crate) fn reject(&mut self, e: RowError) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(e);
        }
    }

    /// The report as CSV: line, column, reason.
    pub fn report_csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["line", "column", "reason"])?;
        for e in &self.errors {
            w.write_record([e.line.to_string(), e.column.clone(), e.reason.clone()])?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

pub(crate) struct Model {
    pub(crate) id: i64,
    pub(crate) case_sensitive: bool,
    pub(crate) format: Option<SerialFormat>,
}

pub(crate) struct Catalogue {
    pub(crate) models: HashMap<String, Model>,
    lots: HashMap<(i64, String), (i64, NaiveDate)>,
    locations: HashMap<String, i64>,
}

/// A checked row resolved against the catalogue: everything its `units` row needs.
#[derive(Debug, Clone)]
pub(crate) struct NewUnit {
    pub(crate) model_id: i64,
    pub(crate) serial: String,
    /// What lookups match on, by the model's case rule.
    pub(crate) serial_key: String,
    pub(crate) lot_id: Option<i64>,
    pub(crate) status: &'static str,
    /// As given, else the lot's production date.
    pub(crate) manufactured_on: Option<NaiveDate>,
    pub(crate) location_id: Option<i64>,
}

impl Catalogue {
    /// The catalogue rules of a new unit, however it arrives (an import line, a token API
    /// item): its GTIN names a model, its serial fits the model's format, its lot is one of the
    /// model's, its location exists.
    pub(crate) fn resolve(&self, row: UnitRecord) -> Result<NewUnit, RowError> {
        let refuse = |column: &str, reason: String| RowError {
            line: row.line,
            column: column.into(),
            reason,
        };
        let Some(model) = self.models.get(&row.gtin) else {
            return Err(refuse(
                "gtin",
                format!("no product model has GTIN {}", row.gtin),
            ));
        };
        if let Some(f) = &model.format
            && !f.matches(&row.serial, model.case_sensitive)
        {
            return Err(refuse(
                "serial",
                format!(
                    "“{}” does not fit this model's serial format {}",
                    row.serial,
                    f.pattern()
                ),
            ));
        }
        let lot = match &row.lot {
            None => None,
            Some(code) => match self.lots.get(&(model.id, code.clone())) {
                Some(l) => Some(*l),
                None => return Err(refuse("lot", format!("this model has no lot {code}"))),
            },
        };
        let location_id = match &row.location {
            None => None,
            Some(code) => match self.locations.get(code) {
                Some(id) => Some(*id),
                None => return Err(refuse("location", format!("there is no location {code}"))),
            },
        };
        // The row's status was checked against this list.
        let status = match &row.status {
            Some(s) => UNIT_STATUSES
                .iter()
                .copied()
                .find(|k| k == s)
                .unwrap_or("manufactured"),
            None if location_id.is_some() => "in_stock",
            None => "manufactured",
        };
        Ok(NewUnit {
            model_id: model.id,
            serial_key: model.serial_key(&row.serial),
            serial: row.serial,
            lot_id: lot.map(|l| l.0),
            status,
            manufactured_on: row.manufactured_on.or(lot.map(|l| l.1)),
            location_id,
        })
    }

    /// The location with this code (codes are stored in capitals).
    pub(crate) fn location(&self, code: &str) -> Option<i64> {
        self.locations.get(&code.to_ascii_uppercase()).copied()
    }
}

impl Model {
    /// What lookups match `serial` on: itself, or in capitals for case-insensitive models.
    pub(crate) fn serial_key(&self, serial: &str) -> String {
        if self.case_sensitive {
            serial.to_owned()
        } else {
            serial.to_ascii_uppercase()
        }
    }
}

/// The catalogue a batch of rows is checked against: every model and lot, or with `only_gtins`
/// just those models and their lots (a request naming a few units need not read them all).
pub(crate) async fn load_catalogue(
    client: &impl tokio_postgres::GenericClient,
    only_gtins: Option<&[String]>,
) -> Result<Catalogue> {
    let only: Option<Vec<&str>> = only_gtins.map(|g| g.iter().map(String::as_str).collect());
    let mut models = HashMap::new();
    for r in client
        .query(
            "SELECT id, gtin, serials_case_sensitive, serial_format FROM product_models
             WHERE $1::text[] IS NULL OR gtin = ANY($1)",
            &[&only],
        )
        .await?
    {
        let format: Option<String> = r.get(3);
        models.insert(
            r.get::<_, String>(1),
            Model {
                id: r.get(0),
                case_sensitive: r.get(2),
                format: format.and_then(|f| SerialFormat::parse(&f).ok()),
            },
        );
    }
    let model_ids: Vec<i64> = models.values().map(|m| m.id).collect();
    let mut lots = HashMap::new();
    for r in client
        .query(
            "SELECT id, model_id, code, production_date FROM lots
             WHERE $1::boolean OR model_id = ANY($2)",
            &[&only.is_none(), &model_ids],
        )
        .await?
    {
        lots.insert(
            (r.get::<_, i64>(1), r.get::<_, String>(2)),
            (r.get::<_, i64>(0), r.get::<_, NaiveDate>(3)),
        );
    }
    let mut locations = HashMap::new();
    for r in client.query("SELECT id, code FROM locations", &[]).await? {
        locations.insert(r.get::<_, String>(1), r.get::<_, i64>(0));
    }
    Ok(Catalogue {
        models,
        lots,
        locations,
    })
}

/// Inserts new units with one statement (`INSERT … SELECT` from arrays, never a statement per
/// unit), skipping each whose (model, serial key) exists already, also when a concurrent
/// request has just inserted it. `units` must not repeat a (model, key). Returns the
/// positions in `units` of those inserted.
pub(crate) async fn insert_new_units(
    tx: &tokio_postgres::Transaction<'_>,
    units: &[NewUnit],
    actor: &str,
) -> Result<Vec<usize>> {
    let model: Vec<i64> = units.iter().map(|u| u.model_id).collect();
    let serial: Vec<&str> = units.iter().map(|u| u.serial.as_str()).collect();
    let key: Vec<&str> = units.iter().map(|u| u.serial_key.as_str()).collect();
    let lot: Vec<Option<i64>> = units.iter().map(|u| u.lot_id).collect();
    let status: Vec<&str> = units.iter().map(|u| u.status).collect();
    let made: Vec<Option<NaiveDate>> = units.iter().map(|u| u.manufactured_on).collect();
    let location: Vec<Option<i64>> = units.iter().map(|u| u.location_id).collect();
    let rows = tx
        .query(
            "INSERT INTO units (model_id, serial, serial_key, lot_id, status, manufactured_on, location_id, created_by)
             SELECT model_id, serial, serial_key, lot_id, status, made, location_id, $8
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::date[], $7::bigint[])
                  WITH ORDINALITY AS t (model_id, serial, serial_key, lot_id, status, made, location_id, i)
             ORDER BY i
             ON CONFLICT (serial_key, model_id) DO NOTHING
             RETURNING model_id, serial_key",
            &[&model, &serial, &key, &lot, &status, &made, &location, &actor],
        )
        .await?;
    let at: HashMap<(i64, &str), usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| ((u.model_id, u.serial_key.as_str()), i))
        .collect();
    let mut created: Vec<usize> = rows
        .iter()
        .filter_map(|r| at.get(&(r.get::<_, i64>(0), r.get::<_, &str>(1))).copied())
        .collect();
    created.sort_unstable();
    Ok(created)
}

pub async fn connect(url: &str) -> Result<Client> {
    crate::db::tls::connect_client(url).await
}

/// How often (in rows) an import reports its progress.
pub const PROGRESS_EVERY: u64 = 50_000;

/// A CSV file read line by line for an import: unreadable lines are recorded as rejected rows
/// (and end the file when the CSV syntax itself is broken); blank lines are skipped.
pub(crate) struct CsvInput<R> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    line: u64,
}

pub(crate) enum Next<'a> {
    End,
    Skip,
    /// A line: its number, how far into the file it ends, and its fields (the first one
    /// returned is the header).
    Row(u64, u64, Vec<&'a str>),
}

impl<R: Read> CsvInput<R> {
    pub(crate) fn new(input: R) -> Self {
        CsvInput {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(input),
            record: csv::ByteRecord::new(),
            line: 0,
        }
    }

    pub(crate) fn next(&mut self, outcome: &mut ImportOutcome) -> Next<'_> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => return Next::End,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map(|p| p.line()).unwrap_or(self.line + 1);
                outcome.reject(RowError {
                    line: at,
                    column: String::new(),
                    reason: format!(
                        "the file cannot be read as CSV here: {}",
                        shorten(&e.to_string())
                    ),
                });
                return Next::End;
            }
        }
        self.line = self
            .record
            .position()
            .map(|p| p.line())
            .unwrap_or(self.line + 1);
        let fields: Result<Vec<&str>, _> = self.record.iter().map(std::str::from_utf8).collect();
        match fields {
            Err(_) => {
                outcome.reject(RowError {
                    line: self.line,
                    column: String::new(),
                    reason: "this line is not valid UTF-8 text; save the file as UTF-8 CSV".into(),
                });
                Next::Skip
            }
            // Blank lines are allowed anywhere after the header.
            Ok(f) if self.line > 1 && f.iter().all(|v| v.trim().is_empty()) => Next::Skip,
            Ok(f) => Next::Row(self.line, self.reader.position().byte(), f),
        }
    }
}

/// Keys of every valid row, for the duplicate checks (pass 1).
const STAGING: &str = "CREATE TEMP TABLE import_units_staging (
    line bigint NOT NULL, model_id bigint NOT NULL, serial text NOT NULL, serial_key text NOT NULL
) ON COMMIT DROP";

/// Where a pass over the file sends its valid rows.
enum Sink<'a> {
    /// Pass 1: (line, model, serial, key) into the staging table.
    Keys(Pin<&'a mut BinaryCopyInWriter>),
    /// Pass 2: whole rows straight into `units`. With fingerprints (the fast path), a repeated
    /// (model, key) within the file is recorded as a problem and reading stops at the first
    /// problem: the careful path then reports them all.
    Units(
        Pin<&'a mut BinaryCopyInWriter>,
        &'a str,
        Option<&'a mut Fingerprints>,
    ),
}

/// 128-bit fingerprints of (model, serial key), to find a repeated unit within a file without
/// keeping every serial in memory. A collision only sends the import down the careful path.
pub(crate) struct Fingerprints {
    seen: std::collections::HashSet<u128>,
    a: std::collections::hash_map::RandomState,
    b: std::collections::hash_map::RandomState,
}

impl Fingerprints {
    fn new() -> Self {
        Fingerprints {
            seen: std::collections::HashSet::new(),
            a: Default::default(),
            b: Default::default(),
        }
    }

    /// Whether (model, key) is new.
    fn insert(&mut self, model: i64, key: &str) -> bool {
        use std::hash::BuildHasher;
        let fp = (u128::from(self.a.hash_one((model, key))) << 64)
            | u128::from(self.b.hash_one((model, key)));
        self.seen.insert(fp)
    }
}

/// Reads the file once: every row checked against the catalogue, problems recorded in
/// `outcome`, valid rows sent to `sink`.
async fn pass<R: Read>(
    input: R,
    catalogue: &Catalogue,
    outcome: &mut ImportOutcome,
    progress: &mut dyn FnMut(u64, u64),
    mut sink: Sink<'_>,
) -> Result<()> {
    let mut input = CsvInput::new(input);
    let mut columns: Option<(UnitColumns, usize)> = None;
    let fast = matches!(sink, Sink::Units(_, _, Some(_)));
    loop {
        if fast && !outcome.ok() {
            break;
        }
        let (line, bytes, fields) = match input.next(outcome) {
            Next::End => break,
            Next::Skip => continue,
            Next::Row(line, bytes, fields) => (line, bytes, fields),
        };
        let Some((cols, width)) = columns else {
            match UnitColumns::from_header(&fields) {
                Ok(c) => columns = Some((c, fields.len())),
                Err(errors) => {
                    for e in errors {
                        outcome.reject(e);
                    }
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
                for e in errors {
                    outcome.reject(e);
                }
                continue;
            }
        };
        let unit = match catalogue.resolve(row) {
            Ok(u) => u,
            Err(e) => {
                outcome.reject(e);
                continue;
            }
        };
        // Valid rows are staged even when others were refused, so the report also lists their
        // duplicates; the transaction is rolled back at the end either way.
        match &mut sink {
            Sink::Keys(w) => {
                w.as_mut()
                    .write(&[
                        &(line as i64),
                        &unit.model_id,
                        &unit.serial,
                        &unit.serial_key,
                    ])
                    .await?
            }
            Sink::Units(w, actor, fingerprints) => {
                if let Some(f) = fingerprints
                    && !f.insert(unit.model_id, &unit.serial_key)
                {
                    outcome.reject(RowError {
                        line,
                        column: "serial".into(),
                        reason: "repeated within the file".into(),
                    });
                    break;
                }
                w.as_mut()
                    .write(&[
                        &unit.model_id,
                        &unit.serial,
                        &unit.serial_key,
                        &unit.lot_id,
                        &unit.status,
                        &unit.manufactured_on,
                        &unit.location_id,
                        actor,
                    ])
                    .await?
            }
        }
    }
    if columns.is_none() && outcome.error_count == 0 {
        outcome.reject(RowError {
            line: 1,
            column: String::new(),
            reason: "the file is empty: it needs a header line and at least one row".into(),
        });
    }
    Ok(())
}

const COPY_UNITS: &str = "COPY units (model_id, serial, serial_key, lot_id, status, manufactured_on, location_id, created_by) FROM STDIN BINARY";
const UNIT_TYPES: [Type; 8] = [
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::DATE,
    Type::INT8,
    Type::TEXT,
];

fn is_unique_violation(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.code())
            .is_some_and(|c| *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    })
}

/// The fast path, for the common case of a good file: one read, rows checked and sent straight
/// into `units` with binary COPY; a serial repeated within the file is caught by fingerprints,
/// one already in the database by the unique index. `None` (after rolling back) when anything
/// is wrong: the careful path then finds and reports every problem.
async fn import_fast<R: Read>(
    client: &mut Client,
    open: &mut impl FnMut() -> Result<R>,
    catalogue: &Catalogue,
    actor: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<ImportOutcome>> {
    let mut outcome = ImportOutcome::default();
    let tx = client.transaction().await?;
    let loaded = {
        let writer = BinaryCopyInWriter::new(tx.copy_in(COPY_UNITS).await?, &UNIT_TYPES);
        pin_mut!(writer);
        let mut fingerprints = Fingerprints::new();
        let read = pass(
            open()?,
            catalogue,
            &mut outcome,
            progress,
            Sink::Units(writer.as_mut(), actor, Some(&mut fingerprints)),
        )
        .await;
        match read {
            Err(e) if is_unique_violation(&e) => None,
            Err(e) => return Err(e),
            // Dropping the writer unfinished abandons the COPY.
            Ok(()) if !outcome.ok() || outcome.rows == 0 => None,
            Ok(()) => match writer.finish().await {
                Ok(n) => Some(n),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    None
                }
                Err(e) => return Err(e.into()),
            },
        }
    };
    match loaded {
        Some(n) => {
            tx.commit().await?;
            outcome.inserted = n;
            Ok(Some(outcome))
        }
        None => {
            // The transaction may already be aborted by the failed COPY; rolling back ends it
            // either way.
            let _ = tx.rollback().await;
            Ok(None)
        }
    }
}

/// Imports units from CSV. `open` opens the input; it is read twice: once to check every row
/// and stage its key for the duplicate checks, once to COPY the rows straight into `units`
/// (cheaper than staging whole rows and merging them). `progress(rows_read, bytes_read)` is
/// called every 50,000 rows of the first pass. Nothing is written unless every row is valid.
pub async fn import_units<R: Read>(
    client: &mut Client,
    mut open: impl FnMut() -> Result<R>,
    actor: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<ImportOutcome> {
    let started = std::time::Instant::now();
    let catalogue = load_catalogue(client, None).await?;
    if let Some(done) = import_fast(client, &mut open, &catalogue, actor, &mut progress).await? {
        tracing::info!(
            rows = done.rows,
            ms = started.elapsed().as_millis() as u64,
            "import: loaded in one pass"
        );
        return Ok(done);
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "import: the one-pass load found a problem; checking the file carefully"
    );
    let mut outcome = ImportOutcome::default();
    let tx = client.transaction().await?;
    tx.batch_execute(STAGING).await?;
    {
        let sink = tx
            .copy_in("COPY import_units_staging FROM STDIN BINARY")
            .await?;
        let writer =
            BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT]);
        pin_mut!(writer);
        pass(
            open()?,
            &catalogue,
            &mut outcome,
            &mut progress,
            Sink::Keys(writer.as_mut()),
        )
        .await?;
        writer.finish().await?;
    }
    tracing::info!(
        rows = outcome.rows,
        ms = started.elapsed().as_millis() as u64,
        "import: rows checked and keys staged"
    );
    if outcome.rows == 0 && outcome.ok() {
        outcome.reject(RowError {
            line: 2,
            column: String::new(),
            reason: "the file has a header but no rows".into(),
        });
        tx.rollback().await?;
        return Ok(outcome);
    }

    // Duplicates within the file (under each model's case rule) and against the database.
    let dups = tx
        .query(
            "SELECT line, first FROM (
                 SELECT line, min(line) OVER (PARTITION BY model_id, serial_key) AS first FROM import_units_staging
             ) d WHERE line <> first ORDER BY line LIMIT $1",
            &[&(MAX_REPORTED as i64)],
        )
        .await?;
    for r in dups {
        let (l, first): (i64, i64) = (r.get(0), r.get(1));
        outcome.reject(RowError {
            line: l as u64,
            column: "serial".into(),
            reason: format!("the same serial is already on line {first}"),
        });
    }
    let existing = tx
        .query(
            "SELECT s.line, s.serial FROM import_units_staging s
             JOIN units u ON u.model_id = s.model_id AND u.serial_key = s.serial_key
             ORDER BY s.line LIMIT $1",
            &[&(MAX_REPORTED as i64)],
        )
        .await?;
    for r in existing {
        let (l, serial): (i64, String) = (r.get(0), r.get(1));
        outcome.reject(RowError {
            line: l as u64,
            column: "serial".into(),
            reason: format!("{serial} already exists for this model"),
        });
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "import: duplicates checked"
    );
    if !outcome.ok() {
        outcome.errors.sort_by_key(|e| e.line);
        tx.rollback().await?;
        return Ok(outcome);
    }

    // Pass 2: the checked rows go straight into units with binary COPY. The unit row records
    // who created it. A file that changed between the passes is refused.
    let mut again = ImportOutcome::default();
    let sink = tx.copy_in(COPY_UNITS).await?;
    let writer = BinaryCopyInWriter::new(sink, &UNIT_TYPES);
    pin_mut!(writer);
    pass(
        open()?,
        &catalogue,
        &mut again,
        &mut |_, _| {},
        Sink::Units(writer.as_mut(), actor, None),
    )
    .await?;
    if !again.ok() || again.rows != outcome.rows {
        anyhow::bail!("the file changed while it was being imported; nothing was imported");
    }
    let inserted = writer.finish().await?;
    tracing::info!(ms = started.elapsed().as_millis() as u64, "import: merged");
    tx.commit().await?;
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "import: committed"
    );
    outcome.inserted = inserted;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads a whole file as an import does: (line, fields) of each row, and the outcome.
    fn read(bytes: &[u8]) -> (Vec<(u64, Vec<String>)>, ImportOutcome) {
        let mut input = CsvInput::new(bytes);
        let mut outcome = ImportOutcome::default();
        let mut rows = Vec::new();
        loop {
            match input.next(&mut outcome) {
                Next::End => break,
                Next::Skip => {}
                Next::Row(line, _, fields) => {
                    rows.push((line, fields.iter().map(|f| f.to_string()).collect()))
                }
            }
        }
        (rows, outcome)
    }

    proptest! {
        /// Any bytes at all: rows or reported problems, never a panic, lines in order.
        #[test]
        fn any_bytes_are_read_or_reported(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let (rows, outcome) = read(&bytes);
            prop_assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert!(outcome.errors.iter().all(|e| e.line >= 1));
        }

        /// Fields written by a CSV writer (quotes, commas, line breaks and all) come back
        /// exactly, with the line each row starts on.
        #[test]
        fn written_csv_reads_back_field_for_field(
            rows in proptest::collection::vec(proptest::collection::vec("[^\r]{0,12}", 3), 1..20),
        ) {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["a", "b", "c"]).unwrap();
            for r in &rows {
                w.write_record(r).unwrap();
            }
            let bytes = w.into_inner().unwrap();
            let (read_rows, outcome) = read(&bytes);
            prop_assert!(outcome.ok(), "{:?}", outcome.errors);
            // Rows whose fields are all blank are skipped, as blank lines are.
            let kept: Vec<&Vec<String>> = rows
                .iter()
                .filter(|r| !r.iter().all(|f| f.trim().is_empty()))
                .collect();
            prop_assert_eq!(read_rows.len(), kept.len() + 1);
            prop_assert_eq!(read_rows[0].0, 1);
            for (got, want) in read_rows[1..].iter().zip(kept) {
                prop_assert_eq!(&got.1, want);
            }
        }
    }
}
