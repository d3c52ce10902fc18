//! Stock counts for admins (`/admin/counts`): open a count of a location, add scans (typed or
//! scanned lines, or a pasted CSV; big files through `recall-portal count upload`), reconcile
//! against the records, look through the lines, apply chosen categories. The work is in
//! `db::counts`; this module parses forms and renders pages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, capitalise, render, see_other};
use crate::db::catalogue::Location;
use crate::db::counts::{self, Actor, CountError, CountLine, OpenRefusal, Scan, StockCount, Tally};
use crate::domain::counts::{Category, scan_key};
use crate::domain::import::{RowError, shorten};

/// Lines of one category per page.
const PER_PAGE: i64 = 200;
/// Scanned lines one form may add (the request size limit usually ends it first).
const MAX_FORM_LINES: usize = 10_000;
/// Rejected lines listed under a form (all are counted).
const MAX_SHOWN_ERRORS: usize = 200;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/counts", web::get().to(list))
        .route("/counts", web::post().to(open))
        .route("/counts/{id}", web::get().to(show))
        .route("/counts/{id}/scans", web::post().to(add_scans))
        .route("/counts/{id}/upload", web::post().to(upload))
        .route("/counts/{id}/reconcile", web::post().to(reconcile))
        .route("/counts/{id}/apply", web::post().to(apply))
        .route("/counts/{id}/cancel", web::post().to(cancel))
        .route("/counts/{id}/lines.csv", web::get().to(lines_csv));
}

impl From<CountError> for AppError {
    fn from(e: CountError) -> Self {
        match e {
            CountError::NotFound(id) => no_such_count(id),
            CountError::Db(e) => {
                let closed = e
                    .downcast_ref::<tokio_postgres::Error>()
                    .is_some_and(tokio_postgres::Error::is_closed);
                if closed {
                    AppError::Unavailable(format!("{e:#}"))
                } else {
                    AppError::Internal(e)
                }
            }
            refused => AppError::Conflict(format!("{}.", capitalise(&refused.to_string()))),
        }
    }
}

fn no_such_count(id: i64) -> AppError {
    AppError::not_found(
        "No such stock count",
        format!("There is no stock count {id}. The counts are listed under Stock counts."),
    )
}

fn actor(req: &HttpRequest, state: &AppState, user: &SignedIn) -> Actor {
    Actor {
        account_id: Some(user.account.id),
        name: format!("admin:{}", user.account.email),
        ip: state.limiter.client_ip(req).map(|i| i.to_string()),
    }
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

// ---- the list, and opening a count ---------------------------------------------------------

struct CountRow {
    id: i64,
    location: String,
    status: String,
    opened_by: String,
    opened_at: String,
    scans: i64,
}

#[derive(Template)]
#[template(path = "admin/counts.html")]
struct ListPage {
    csrf_token: String,
    notice: Option<String>,
    locations: Vec<Location>,
    location: String,
    location_error: Option<String>,
    rows: Vec<CountRow>,
}

/// What a count's status says in a list.
fn status_text(c: &StockCount) -> String {
    match (c.status.as_str(), c.reconciled_at) {
        ("open", Some(_)) => "open (scans added since the reconciliation)".into(),
        (s, _) => s.to_owned(),
    }
}

async fn list_page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    location: String,
    location_error: Option<String>,
    notice: Option<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let locations = Location::all(&mut conn).await?;
    let rows = StockCount::recent(&mut conn, 200)
        .await?
        .into_iter()
        .map(|c| CountRow {
            id: c.id,
            location: format!("{} {}", c.location_code, c.location_name),
            status: status_text(&c),
            opened_at: when(c.opened_at),
            scans: c.scan_count,
            opened_by: c.opened_by,
        })
        .collect();
    Ok(render(
        status,
        &ListPage {
            csrf_token: user.session.csrf_token.clone(),
            notice,
            locations,
            location,
            location_error,
            rows,
        },
    ))
}

#[derive(Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
}

async fn list(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = (q.notice.as_deref() == Some("cancelled"))
        .then(|| "The count was cancelled; nothing was adjusted.".to_owned());
    list_page(&state, &user, StatusCode::OK, String::new(), None, notice).await
}

#[derive(Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    location: String,
}

async fn open(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    form: CsrfForm<OpenForm>,
) -> Result<HttpResponse, AppError> {
    let typed = form.form.location.trim().to_owned();
    let Ok(location_id) = typed.parse::<i64>() else {
        return list_page(
            &state,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            typed,
            Some("Choose the location to count.".into()),
            None,
        )
        .await;
    };
    let mut conn = state.pool.get().await?;
    let opened = StockCount::open(&mut conn, location_id, &actor(&req, &state, &user)).await?;
    drop(conn);
    match opened {
        Ok(id) => Ok(see_other(&format!("/admin/counts/{id}?notice=opened"))),
        Err(OpenRefusal::UnknownLocation) => Err(AppError::not_found(
            "No such location",
            format!(
                "There is no location {location_id}. Choose one from the list, or add it in the catalogue."
            ),
        )),
        Err(OpenRefusal::AlreadyOpen(other)) => {
            list_page(
                &state,
                &user,
                StatusCode::CONFLICT,
                typed,
                Some(format!(
                    "Stock count {other} of this location is not finished yet: apply or cancel it first."
                )),
                None,
            )
            .await
        }
    }
}

// ---- one count -----------------------------------------------------------------------------

/// What the forms of a count page had typed in and what was wrong with it, to show again.
#[derive(Default)]
struct Entered {
    scans: String,
    scans_error: Option<String>,
    scan_errors: Vec<RowError>,
    csv: String,
    csv_error: Option<String>,
    csv_errors: Vec<RowError>,
    more_errors: u64,
    apply_error: Option<String>,
}

struct CategoryRow {
    name: &'static str,
    label: &'static str,
    meaning: &'static str,
    lines: i64,
    current: bool,
}

struct LineRow {
    serial: String,
    unit_id: Option<i64>,
    product: String,
    detail: String,
}

struct ApplyOption {
    name: &'static str,
    action: String,
    lines: i64,
}

#[derive(Template)]
#[template(path = "admin/count.html")]
struct CountPage {
    csrf_token: String,
    notice: Option<String>,
    id: i64,
    location: String,
    status: String,
    opened: String,
    scans: i64,
    reconciled: Option<String>,
    applied: Option<String>,
    writable: bool,
    stale: bool,
    entered: Entered,
    has_error: bool,
    categories: Vec<CategoryRow>,
    total_lines: i64,
    category_label: &'static str,
    lines: Vec<LineRow>,
    page: i64,
    pages: i64,
    prev: Option<String>,
    next: Option<String>,
    /// The apply form, when the count is reconciled and up to date.
    apply_options: Option<Vec<ApplyOption>>,
    stamp: String,
}

#[derive(Deserialize, Default)]
pub struct CountQuery {
    category: Option<String>,
    page: Option<String>,
    notice: Option<String>,
    added: Option<String>,
    moved: Option<String>,
    marked: Option<String>,
    restocked: Option<String>,
}

fn notice_of(q: &CountQuery, location: &str) -> Option<String> {
    let n = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<u64>().ok());
    if let Some(added) = n(&q.added) {
        return Some(format!("Added {added} scan(s)."));
    }
    if q.notice.as_deref() == Some("applied") {
        let parts: Vec<String> = [
            (n(&q.moved), "moved here"),
            (n(&q.marked), "marked missing"),
            (n(&q.restocked), "back in stock"),
        ]
        .into_iter()
        .filter_map(|(v, what)| v.map(|v| format!("{v} {what}")))
        .collect();
        return Some(if parts.is_empty() {
            "The count is closed without adjustments.".into()
        } else {
            format!(
                "Applied: {}. Each change is in the unit's history.",
                parts.join(", ")
            )
        });
    }
    Some(match q.notice.as_deref()? {
        "opened" => format!("Count opened. Scan every unit at {location}, then reconcile."),
        "reconciled" => "Reconciled. Check the lines, then choose what to apply.".into(),
        _ => return None,
    })
}

fn parse_category(v: Option<&str>) -> Result<Option<Category>, AppError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => Category::parse(v).map(Some).ok_or_else(|| {
            AppError::BadRequest(format!(
                "There is no category “{}”. The categories are {}.",
                shorten(v),
                Category::ALL.map(|c| c.as_str()).join(", ")
            ))
        }),
    }
}

fn parse_page(v: Option<&str>) -> Result<i64, AppError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(1),
        Some(v) => v.parse::<i64>().ok().filter(|p| *p >= 1).ok_or_else(|| {
            AppError::BadRequest("The page is a whole number from 1 (as in &page=2).".into())
        }),
    }
}

/// Renders a count page: its state, its forms (with what was entered), its reconciliation
/// and one page of lines of one category.
async fn count_page(
    state: &AppState,
    user: &SignedIn,
    id: i64,
    q: &CountQuery,
    status: StatusCode,
    entered: Entered,
) -> Result<HttpResponse, AppError> {
    let wanted = parse_category(q.category.as_deref())?;
    let page = parse_page(q.page.as_deref())?;
    let mut conn = state.pool.get().await?;
    let count = StockCount::find(&mut conn, id)
        .await?
        .ok_or_else(|| no_such_count(id))?;
    let tally = match count.reconciled_at {
        Some(_) => CountLine::tally(&mut conn, id).await?,
        None => Tally::default(),
    };
    let category = wanted.unwrap_or_else(|| {
        Category::ALL
            .into_iter()
            .find(|c| tally.get(*c) > 0)
            .unwrap_or(Category::Missing)
    });
    let in_category = tally.get(category);
    let pages = ((in_category + PER_PAGE - 1) / PER_PAGE).max(1);
    if page > pages {
        return Err(AppError::not_found(
            "No such page of lines",
            format!(
                "This category has {in_category} line(s), {pages} page(s) of {PER_PAGE}; there is no page {page}."
            ),
        ));
    }
    let lines = if count.reconciled_at.is_some() {
        CountLine::page(&mut conn, id, category, (page - 1) * PER_PAGE, PER_PAGE).await?
    } else {
        Vec::new()
    };
    drop(conn);
    let lines = lines
        .into_iter()
        .map(|l| LineRow {
            detail: line_detail(category, &l),
            product: match (&l.product, &l.gtin) {
                (Some(p), Some(g)) => format!("{p} · GTIN {g}"),
                _ => String::new(),
            },
            serial: l.serial,
            unit_id: l.unit_id,
        })
        .collect();
    let link = |p: i64| format!("/admin/counts/{id}?category={category}&page={p}");
    let stale = count.status == "open" && count.reconciled_at.is_some();
    let apply_options = (count.status == "reconciled").then(|| {
        Category::APPLICABLE
            .into_iter()
            .filter(|c| tally.get(*c) > 0)
            .map(|c| ApplyOption {
                name: c.as_str(),
                action: c.action(&count.location_code).unwrap_or_default(),
                lines: tally.get(c),
            })
            .collect()
    });
    let has_error = entered.scans_error.is_some()
        || entered.csv_error.is_some()
        || entered.apply_error.is_some();
    Ok(render(
        status,
        &CountPage {
            csrf_token: user.session.csrf_token.clone(),
            notice: notice_of(q, &count.location_code),
            id,
            location: format!("{} {}", count.location_code, count.location_name),
            status: status_text(&count),
            opened: format!("{} by {}", when(count.opened_at), count.opened_by),
            scans: count.scan_count,
            reconciled: count.reconciled_at.map(when),
            applied: count.applied_at.map(|t| {
                format!(
                    "{} by {}",
                    when(t),
                    count.applied_by.as_deref().unwrap_or("an administrator")
                )
            }),
            writable: count.is_writable(),
            stale,
            entered,
            has_error,
            categories: Category::ALL
                .into_iter()
                .map(|c| CategoryRow {
                    name: c.as_str(),
                    label: c.label(),
                    meaning: c.meaning(),
                    lines: tally.get(c),
                    current: c == category,
                })
                .collect(),
            total_lines: tally.total(),
            category_label: category.label(),
            lines,
            page,
            pages,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            apply_options,
            stamp: count
                .reconciled_at
                .map(counts::reconciled_stamp)
                .unwrap_or_default(),
        },
    ))
}

/// The detail column of a line, in words.
fn line_detail(category: Category, l: &CountLine) -> String {
    match (category, l.detail.as_deref()) {
        (Category::WrongLocation | Category::NotInStock, Some(d)) => format!("records: {d}"),
        (Category::Unexpected, _) if l.gtin.is_none() => "scanned without a GTIN".into(),
        (_, Some(d)) => d.to_owned(),
        (_, None) => String::new(),
    }
}

async fn show(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<CountQuery>,
) -> Result<HttpResponse, AppError> {
    count_page(
        &state,
        &user,
        path.into_inner(),
        &q,
        StatusCode::OK,
        Entered::default(),
    )
    .await
}

// ---- scans ---------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ScansForm {
    #[serde(default)]
    scans: String,
}

/// The scanned or typed lines of the form as scans; the GTIN, when a line carries one, names
/// the model.
fn scan_lines(state: &AppState, text: &str) -> Result<Vec<Scan>, Vec<RowError>> {
    Ok(super::scanned_lines(state, text)?
        .into_iter()
        .map(|l| Scan {
            model_id: l.model.map(|(id, _)| id),
            serial_key: scan_key(&l.serial, l.model.map(|(_, case_sensitive)| case_sensitive)),
            serial: l.serial,
        })
        .collect())
}

async fn add_scans(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: CsrfForm<ScansForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let text = form.form.scans;
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    let refuse = |scans_error: String, scan_errors: Vec<RowError>, text: String| Entered {
        scans: text,
        scans_error: Some(scans_error),
        scan_errors,
        ..Default::default()
    };
    let problem = if lines == 0 {
        Some("Scan or type at least one serial number.".to_owned())
    } else if lines > MAX_FORM_LINES {
        Some(format!(
            "At most {MAX_FORM_LINES} lines at once; upload a CSV file for more."
        ))
    } else {
        None
    };
    if let Some(p) = problem {
        return count_page(
            &state,
            &user,
            id,
            &CountQuery::default(),
            StatusCode::UNPROCESSABLE_ENTITY,
            refuse(p, vec![], text),
        )
        .await;
    }
    let scans = match scan_lines(&state, &text) {
        Ok(s) => s,
        Err(errors) => {
            let msg = format!(
                "{} line(s) cannot be read; nothing was added. Correct or remove them and send again.",
                errors.len()
            );
            return count_page(
                &state,
                &user,
                id,
                &CountQuery::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
                refuse(msg, errors, text),
            )
            .await;
        }
    };
    let mut client = state.bulk_client().await?;
    let added = counts::add_scans(&mut client, id, &scans, &actor(&req, &state, &user)).await?;
    Ok(see_other(&format!("/admin/counts/{id}?added={added}")))
}

#[derive(Deserialize)]
pub struct CsvForm {
    #[serde(default)]
    csv: String,
}

async fn upload(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: CsrfForm<CsvForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let text = form.form.csv;
    let mut client = state.bulk_client().await?;
    let outcome = counts::upload_scans(
        &mut client,
        id,
        text.as_bytes(),
        &actor(&req, &state, &user),
        "pasted CSV",
        |_, _| {},
    )
    .await?;
    if outcome.ok() {
        return Ok(see_other(&format!(
            "/admin/counts/{id}?added={}",
            outcome.inserted
        )));
    }
    let mut errors = outcome.errors;
    let shown = errors.len().min(MAX_SHOWN_ERRORS);
    errors.truncate(shown);
    count_page(
        &state,
        &user,
        id,
        &CountQuery::default(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Entered {
            csv: text,
            csv_error: Some(format!(
                "{} problem(s) in the pasted file; nothing was added. Correct them and send again.",
                outcome.error_count
            )),
            csv_errors: errors,
            more_errors: outcome.error_count.saturating_sub(shown as u64),
            ..Default::default()
        },
    )
    .await
}

// ---- reconcile, apply, cancel --------------------------------------------------------------

#[derive(Deserialize)]
pub struct EmptyForm {}

async fn reconcile(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    _form: CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let mut client = state.bulk_client().await?;
    counts::reconcile(&mut client, id, &actor(&req, &state, &user)).await?;
    Ok(see_other(&format!("/admin/counts/{id}?notice=reconciled")))
}

#[derive(Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    reconciled: String,
    wrong_location: Option<String>,
    missing: Option<String>,
    not_in_stock: Option<String>,
}

async fn apply(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: CsrfForm<ApplyForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let f = form.form;
    let chosen: Vec<Category> = [
        (Category::WrongLocation, &f.wrong_location),
        (Category::Missing, &f.missing),
        (Category::NotInStock, &f.not_in_stock),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .map(|(c, _)| c)
    .collect();
    let Some(seen) = counts::parse_reconciled_stamp(&f.reconciled) else {
        return Err(AppError::BadRequest(
            "The form does not say which reconciliation it applies. Reload the count page and apply from there.".into(),
        ));
    };
    if chosen.is_empty() {
        // Closing a count without adjustments is allowed only when there is nothing to adjust.
        let mut conn = state.pool.get().await?;
        let tally = CountLine::tally(&mut conn, id).await?;
        drop(conn);
        if Category::APPLICABLE.iter().any(|c| tally.get(*c) > 0) {
            return count_page(
                &state,
                &user,
                id,
                &CountQuery::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
                Entered {
                    apply_error: Some(
                        "Choose at least one kind of adjustment to apply, or cancel the count."
                            .into(),
                    ),
                    ..Default::default()
                },
            )
            .await;
        }
    }
    let mut client = state.bulk_client().await?;
    let applied = counts::apply(
        &mut client,
        id,
        &chosen,
        Some(seen),
        &actor(&req, &state, &user),
    )
    .await?;
    let mut target = format!("/admin/counts/{id}?notice=applied");
    for (c, n) in &applied.0 {
        let key = match c {
            Category::WrongLocation => "moved",
            Category::Missing => "marked",
            _ => "restocked",
        };
        target.push_str(&format!("&{key}={n}"));
    }
    Ok(see_other(&target))
}

async fn cancel(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    _form: CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let mut client = state.bulk_client().await?;
    StockCount::cancel(&mut client, id, &actor(&req, &state, &user)).await?;
    Ok(see_other("/admin/counts?notice=cancelled"))
}

async fn lines_csv(
    _user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    if StockCount::find(&mut conn, id).await?.is_none() {
        return Err(no_such_count(id));
    }
    drop(conn);
    let client = state.bulk_client().await?;
    let body = counts::lines_csv(client, id)
        .await?
        .map(|chunk| chunk.map(web::Bytes::from));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"stock-count-{id}-lines.csv\""),
        ))
        .streaming(body))
}
