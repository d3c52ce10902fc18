//! Imports uploaded in the browser: each runs on a thread of its own (so parsing a million
//! rows never holds up a web worker), writing its progress to its `import_jobs` row every half
//! second for the job page to follow. The upload is deleted when the job ends.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Units,
    Sales,
    Components,
    /// Scans for a stock count (the job names the count).
    CountScans,
}

impl ImportKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "units" => Some(ImportKind::Units),
            "sales" => Some(ImportKind::Sales),
            "components" => Some(ImportKind::Components),
            "count_scans" => Some(ImportKind::CountScans),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Units => "units",
            ImportKind::Sales => "sales",
            ImportKind::Components => "components",
            ImportKind::CountScans => "count_scans",
        }
    }
}

/// An uploaded file that is removed when this is dropped: whatever happens to the request or
/// the job (an error, a panic), no upload stays on disk.
pub struct Upload(PathBuf);

impl Upload {
    pub fn new(path: PathBuf) -> Self {
        Upload(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "upload not removed");
        }
    }
}

/// Removes uploads left by a process that stopped mid-import. Only files untouched for six
/// hours go (an import takes seconds), so another process sharing the directory keeps its own.
pub fn sweep_uploads(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let old = |e: &std::fs::DirEntry| {
        e.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(6 * 3600))
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("upload-") && old(&e) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Imports running in this process; more are refused until one ends (each holds a thread,
/// two database connections and its upload).
pub const MAX_RUNNING: usize = 2;
static RUNNING: AtomicUsize = AtomicUsize::new(0);

pub fn running() -> usize {
    RUNNING.load(Ordering::SeqCst)
}

pub struct ImportJobSpec {
    pub id: i64,
    pub kind: ImportKind,
    /// For `CountScans`: the stock count.
    pub count_id: Option<i64>,
    /// The uploaded file; removed when the job ends.
    pub upload: Upload,
    /// Who, as recorded on units and events (`admin:<email>`).
    pub actor: String,
    pub account_id: i64,
    pub database_url: String,
}

/// Starts the job on its own thread and returns at once.
pub fn spawn(spec: ImportJobSpec) -> Result<()> {
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.fetch_sub(1, Ordering::SeqCst);
        }
    }
    RUNNING.fetch_add(1, Ordering::SeqCst);
    let running = Running;
    std::thread::Builder::new()
        .name(format!("import-{}", spec.id))
        .spawn(move || {
            let _running = running;
            // Two threads: this one reads and checks the file while the database connection's
            // task sends rows from the other (measured: 10.1 s → 6.9 s for 1,000,000 rows).
            // Both yield the CPU to lookups (`db::priority`), as does the import's backend.
            crate::db::priority::lower_this_thread();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .on_thread_start(crate::db::priority::lower_this_thread)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "import job: no runtime");
                    return;
                }
            };
            let id = spec.id;
            if let Err(e) = runtime.block_on(run(spec)) {
                tracing::error!(job = id, error = %format!("{e:#}"), "import job failed");
            }
        })
        .context("starting the import thread")?;
    Ok(())
}

async fn run(spec: ImportJobSpec) -> Result<()> {
    // One connection for the job's row (progress, then the outcome), one for the import.
    let status = Arc::new(crate::db::import::connect(&spec.database_url).await?);
    let rows = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (rows, bytes, status) = (rows.clone(), bytes.clone(), status.clone());
        let id = spec.id;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let (r, b) = (
                    rows.load(Ordering::Relaxed) as i64,
                    bytes.load(Ordering::Relaxed) as i64,
                );
                if let Err(e) = status
                    .execute(
                        "UPDATE import_jobs SET rows_read = $2, bytes_read = $3, heartbeat_at = now()
                         WHERE id = $1 AND status = 'running'",
                        &[&id, &r, &b],
                    )
                    .await
                {
                    tracing::warn!(job = id, error = %e, "import job: progress not saved");
                }
            }
        })
    };
    let progress = |r: u64, b: u64| {
        rows.store(r, Ordering::Relaxed);
        bytes.store(b, Ordering::Relaxed);
    };
    let result = import(&spec, progress).await;
    ticker.abort();
    let (state, rows_read, inserted, errors, report, message) = match &result {
        Ok(o) if o.ok() => (
            "done",
            o.rows,
            o.inserted,
            0,
            None,
            format!("Imported {} {}.", o.inserted, what(spec.kind)),
        ),
        Ok(o) => (
            "failed",
            o.rows,
            0,
            o.error_count,
            Some(o.report_csv()?),
            format!(
                "Nothing was imported: {} problem(s) in {} row(s).",
                o.error_count, o.rows
            ),
        ),
        Err(e) => {
            tracing::error!(job = spec.id, error = %format!("{e:#}"), "import job stopped");
            (
                "failed",
                rows.load(Ordering::Relaxed),
                0,
                0,
                None,
                format!(
                    "Nothing was imported: the import stopped on an error (logged with job {}). Try again; if it happens again, tell your administrator.",
                    spec.id
                ),
            )
        }
    };
    status
        .execute(
            "UPDATE import_jobs SET status = $2, rows_read = $3, inserted = $4, error_count = $5,
                    report = $6, message = $7, bytes_read = CASE WHEN $2 = 'done' THEN total_bytes ELSE bytes_read END,
                    heartbeat_at = now(), finished_at = now()
             WHERE id = $1",
            &[
                &spec.id,
                &state,
                &(rows_read as i64),
                &(inserted as i64),
                &(errors as i64),
                &report,
                &message,
            ],
        )
        .await?;
    status
        .execute(
            "INSERT INTO audit_log (event, actor_id, detail) VALUES ('import_finished', $1, $2)",
            &[
                &spec.account_id,
                &format!("job {} ({}): {message}", spec.id, spec.kind.as_str()),
            ],
        )
        .await?;
    Ok(())
}

fn what(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Units => "units",
        ImportKind::Sales => "sales links",
        ImportKind::Components => "components",
        ImportKind::CountScans => "scans",
    }
}

async fn import(
    spec: &ImportJobSpec,
    progress: impl FnMut(u64, u64),
) -> Result<crate::db::import::ImportOutcome> {
    let mut client = crate::db::import::connect(&spec.database_url).await?;
    crate::db::priority::lower_backend(&client).await;
    let open = || -> Result<_> {
        let f = std::fs::File::open(spec.upload.path()).context("opening the upload")?;
        Ok(std::io::BufReader::with_capacity(1 << 20, f))
    };
    match spec.kind {
        ImportKind::Units => {
            crate::db::import::import_units(&mut client, open, &spec.actor, progress).await
        }
        ImportKind::Sales => {
            let today = chrono::Utc::now().date_naive();
            crate::db::sales::import_sales(&mut client, open()?, &spec.actor, today, progress).await
        }
        ImportKind::Components => {
            crate::db::genealogy::import_components(&mut client, open()?, &spec.actor, progress)
                .await
        }
        ImportKind::CountScans => {
            let id = spec
                .count_id
                .ok_or_else(|| anyhow::anyhow!("a scan upload without its stock count"))?;
            let actor = crate::db::counts::Actor {
                account_id: Some(spec.account_id),
                name: spec.actor.clone(),
                ip: None,
            };
            match crate::db::counts::upload_scans(
                &mut client,
                id,
                open()?,
                &actor,
                "file upload",
                progress,
            )
            .await
            {
                Ok(o) => Ok(o),
                // A count closed meanwhile is the user's to know, not a failure to log.
                Err(crate::db::counts::CountError::Db(e)) => Err(e),
                Err(e) => {
                    let mut o = crate::db::import::ImportOutcome::default();
                    o.reject(crate::domain::import::RowError {
                        line: 0,
                        column: String::new(),
                        reason: crate::web::capitalise(&e.to_string()),
                    });
                    Ok(o)
                }
            }
        }
    }
}
