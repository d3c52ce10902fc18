//! Imports in the browser (`/admin/imports`): upload a CSV file of units or sales; it is
//! checked and loaded in the background while its page shows the progress, then the outcome
//! and, when rows were refused, a downloadable report (line, column, reason).

use actix_multipart::{Field, Multipart};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::session::{SignedIn, check_csrf};
use super::{AppError, AppState, render, see_other};
use crate::db::jobs::ImportJob;
use crate::domain::import::RowError;
use crate::jobs::import::{ImportJobSpec, ImportKind, MAX_RUNNING, Upload};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/imports", web::get().to(imports_page))
        .route("/imports", web::post().to(upload))
        .route("/imports/{id}", web::get().to(job_page))
        .route("/imports/{id}/report.csv", web::get().to(report));
}

struct JobRow {
    id: i64,
    kind: String,
    filename: String,
    status: String,
    started: String,
    message: String,
}

#[derive(Template)]
#[template(path = "admin/imports.html")]
struct ImportsPage {
    csrf_token: String,
    kind: String,
    error: Option<String>,
    max_mb: u64,
    jobs: Vec<JobRow>,
}

async fn page(
    state: &AppState,
    csrf_token: String,
    status: StatusCode,
    kind: &str,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let now = chrono::Utc::now();
    let jobs = ImportJob::recent(&mut conn, 20)
        .await?
        .into_iter()
        .map(|j| JobRow {
            id: j.id,
            kind: j.kind.clone(),
            filename: j.filename.clone(),
            status: j.effective_status(now).to_owned(),
            started: j.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            message: j.message.clone().unwrap_or_default(),
        })
        .collect();
    Ok(render(
        status,
        &ImportsPage {
            csrf_token,
            kind: kind.to_owned(),
            error,
            max_mb: state.config.max_upload_bytes / (1024 * 1024),
            jobs,
        },
    ))
}

async fn imports_page(
    user: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    page(
        &state,
        user.session.csrf_token.clone(),
        StatusCode::OK,
        "units",
        None,
    )
    .await
}

pub(super) fn unreadable() -> AppError {
    AppError::BadRequest("The upload could not be read. Choose the file again and send it.".into())
}

/// A small text field of the form (the token, the kind).
pub(super) async fn small_text(field: &mut Field) -> Result<String, AppError> {
    let bytes = field
        .bytes(1024)
        .await
        .map_err(|_| AppError::BadRequest("A form field is too long.".into()))?
        .map_err(|_| unreadable())?;
    String::from_utf8(bytes.to_vec()).map_err(|_| unreadable())
}

/// The name shown for an upload: its last path part, printable, at most 100 characters.
fn display_name(raw: Option<&str>) -> String {
    let name = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect::<String>();
    if name.trim().is_empty() {
        "upload.csv".into()
    } else {
        name
    }
}

/// Streams the file field to disk, refusing more than `limit` bytes.
async fn save(field: &mut Field, path: &std::path::Path, limit: u64) -> Result<u64, AppError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut size: u64 = 0;
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(AppError::PayloadTooLarge);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    file.flush()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(size)
}

/// The upload: `csrf_token` and `kind` come before `file` in the form, so the token is checked
/// before a byte of the file is stored.
async fn upload(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    mut form: Multipart,
) -> Result<HttpResponse, AppError> {
    let mut token = String::new();
    let mut kind_text = String::new();
    let mut count_text = String::new();
    let mut saved: Option<(Upload, String, u64)> = None;
    let mut chosen = false;
    let dir = state.config.data_dir.join("imports");
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|_| unreadable())?;
        match field.name() {
            Some("csrf_token") => token = small_text(&mut field).await?,
            Some("kind") => kind_text = small_text(&mut field).await?,
            Some("count_id") => count_text = small_text(&mut field).await?,
            Some("file") if saved.is_none() => {
                let session = check_csrf(&req, &token).await?;
                if crate::jobs::import::running() >= MAX_RUNNING {
                    return page(
                        &state,
                        session.csrf_token,
                        StatusCode::SERVICE_UNAVAILABLE,
                        &kind_text,
                        Some(format!("{MAX_RUNNING} imports are running already. Send the file again when one of them has finished (see the list below).")),
                    )
                    .await;
                }
                let raw_name = field
                    .content_disposition()
                    .and_then(|c| c.get_filename())
                    .map(str::to_owned);
                // A form sent without choosing a file still has the field, with no name.
                chosen = raw_name.as_deref().is_some_and(|n| !n.is_empty());
                let name = display_name(raw_name.as_deref());
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|e| AppError::Internal(e.into()))?;
                let upload =
                    Upload::new(dir.join(format!("upload-{}.csv", crate::tokens::new_token())));
                let size = save(&mut field, upload.path(), state.config.max_upload_bytes).await?;
                saved = Some((upload, name, size));
            }
            _ => {
                // Unknown fields are read and dropped.
                while let Some(chunk) = field.next().await {
                    chunk.map_err(|_| unreadable())?;
                }
            }
        }
    }
    let session = check_csrf(&req, &token).await?;
    let Some(kind) = ImportKind::parse(&kind_text) else {
        return page(
            &state,
            session.csrf_token,
            StatusCode::UNPROCESSABLE_ENTITY,
            "units",
            Some("Choose what the file holds: units, sales or components.".into()),
        )
        .await;
    };
    let (upload, name, size) = match saved {
        Some(s) if chosen => s,
        _ => {
            return page(
                &state,
                session.csrf_token,
                StatusCode::UNPROCESSABLE_ENTITY,
                kind.as_str(),
                Some("Choose a CSV file to import.".into()),
            )
            .await;
        }
    };
    // Scans for a stock count: the count must exist and still take scans.
    let count_id = if kind == ImportKind::CountScans {
        let id: i64 = count_text.trim().parse().map_err(|_| {
            AppError::BadRequest("The stock count is missing from the form.".into())
        })?;
        let mut conn = state.pool.get().await?;
        let count = crate::db::counts::StockCount::find(&mut conn, id)
            .await?
            .ok_or_else(|| {
                AppError::not_found(
                    "No such stock count",
                    "There is no stock count with this number.",
                )
            })?;
        if !count.is_writable() {
            return Err(AppError::Conflict(format!(
                "Stock count {id} is {} and takes no more scans; open a new count.",
                count.status
            )));
        }
        Some(id)
    } else {
        None
    };
    let database_url = state.config.database_url.clone().ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "the database URL is not known to the web app"
        ))
    })?;
    let mut conn = state.pool.get().await?;
    let id = ImportJob::create(
        &mut conn,
        kind.as_str(),
        count_id,
        &name,
        size as i64,
        user.account.id,
    )
    .await?;
    drop(conn);
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "import_started",
        &format!("job {id}: {} from {name} ({size} bytes)", kind.as_str()),
    )
    .await?;
    crate::jobs::import::spawn(ImportJobSpec {
        id,
        kind,
        count_id,
        upload,
        actor: format!("admin:{}", user.account.email),
        account_id: user.account.id,
        database_url,
    })?;
    Ok(see_other(&format!("/admin/imports/{id}")))
}

#[derive(Template)]
#[template(path = "admin/import_job.html")]
struct JobPage {
    job: ImportJob,
    status: String,
    percent: i64,
    started: String,
    errors: Vec<RowError>,
}

async fn load(state: &AppState, id: i64) -> Result<ImportJob, AppError> {
    let mut conn = state.pool.get().await?;
    ImportJob::find(&mut conn, id).await?.ok_or_else(|| {
        AppError::not_found("No such import", "There is no import with this number.")
    })
}

async fn job_page(
    _user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let job = load(&state, id).await?;
    let status = job.effective_status(chrono::Utc::now()).to_owned();
    let mut errors = Vec::new();
    if job.status == "failed" && job.error_count > 0 {
        let mut conn = state.pool.get().await?;
        if let Some(report) = ImportJob::report(&mut conn, id).await? {
            let mut r = csv::Reader::from_reader(report.as_bytes());
            for rec in r.records().take(50).flatten() {
                errors.push(RowError {
                    line: rec.get(0).and_then(|l| l.parse().ok()).unwrap_or(0),
                    column: rec.get(1).unwrap_or("").to_owned(),
                    reason: rec.get(2).unwrap_or("").to_owned(),
                });
            }
        }
    }
    Ok(render(
        StatusCode::OK,
        &JobPage {
            percent: job.percent(),
            started: job.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            status,
            job,
            errors,
        },
    ))
}

async fn report(
    _user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    let report = ImportJob::report(&mut conn, id).await?.ok_or_else(|| {
        AppError::not_found(
            "No report",
            "This import has no report of rejected rows (it is still running, or nothing was rejected).",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"import-{id}-errors.csv\""),
        ))
        .body(report))
}
