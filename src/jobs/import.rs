//! Imports uploaded in the browser: each runs on a thread of its own (so parsing a million
//! rows never holds up a web worker), writing its progress to its `import_jobs` row every half
//! second for the job page to follow. The upload is deleted when the job ends.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Units,
    Sales,
    Components,
}

impl ImportKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "units" => Some(ImportKind::Units),
            "sales" => Some(ImportKind::Sales),
            "components" => Some(ImportKind::Components),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Units => "units",
            ImportKind::Sales => "sales",
            ImportKind::Components => "components",
        }
    }
}

pub struct ImportJobSpec {
    pub id: i64,
    pub kind: ImportKind,
    /// The uploaded file; removed when the job ends.
    pub path: PathBuf,
    /// Who, as recorded on units and events (`admin:<email>`).
    pub actor: String,
    pub account_id: i64,
    pub database_url: String,
}

/// Starts the job on its own thread and returns at once.
pub fn spawn(spec: ImportJobSpec) -> Result<()> {
    std::thread::Builder::new()
        .name(format!("import-{}", spec.id))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
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
    let status = crate::db::import::connect(&spec.database_url).await?;
    let rows = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (rows, bytes) = (rows.clone(), bytes.clone());
        let status = crate::db::import::connect(&spec.database_url).await?;
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
    if let Err(e) = std::fs::remove_file(&spec.path) {
        tracing::warn!(job = spec.id, error = %e, "import job: upload not removed");
    }
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
        Err(e) => (
            "failed",
            rows.load(Ordering::Relaxed),
            0,
            0,
            None,
            format!("Nothing was imported: {e:#}."),
        ),
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
    }
}

async fn import(
    spec: &ImportJobSpec,
    progress: impl FnMut(u64, u64),
) -> Result<crate::db::import::ImportOutcome> {
    let mut client = crate::db::import::connect(&spec.database_url).await?;
    let open = || -> Result<_> {
        let f = std::fs::File::open(&spec.path).context("opening the upload")?;
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
    }
}
