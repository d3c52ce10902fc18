//! Claim reports on the web: the staff queue (`/staff/claims`), the counts on the staff home
//! page, and for admins the service levels (`/admin/claims/service-levels`) and the analytics
//! (`/admin/claims/analytics`, with CSV). The SQL is in `db::claim_reports`.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Months, NaiveDate, Utc};
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::admin::admin_of;
use super::charts::{self, Measure};
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, encode_query, render, see_other};
use crate::db::accounts::{AuditEntry, AuditEvent};
use crate::db::claim_reports::{
    self as reports, AssigneeFilter, ClaimRate, Cursor, QueueFilter, QueueRow, RepairTime, Sort,
    StatusFilter, plural_days,
};
use crate::domain::claims::{Status, category_label};

pub fn staff_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/claims", web::get().to(queue));
}

pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/claims/service-levels", web::get().to(levels))
        .route("/claims/service-levels", web::post().to(save_levels))
        .route("/claims/analytics", web::get().to(analytics))
        .route("/claims/analytics.csv", web::get().to(analytics_csv));
}

/// Claims per page of the queue.
const PAGE: i64 = 50;
/// The widest age filter, in days (ten years).
const MAX_AGE_DAYS: i32 = 3650;

// ---- the queue ------------------------------------------------------------------------------

/// The queue's address, as typed or followed: every value is a string, so that nothing a user
/// can put in the address fails before the page can say what is wrong with it.
#[derive(Deserialize, Default)]
pub struct QueueQuery {
    status: Option<String>,
    model: Option<String>,
    lot: Option<String>,
    age: Option<String>,
    overdue: Option<String>,
    never_sold: Option<String>,
    not_owner: Option<String>,
    out_of_warranty: Option<String>,
    open_recall: Option<String>,
    assignee: Option<String>,
    sort: Option<String>,
    after: Option<String>,
    after_id: Option<String>,
}

/// A ticked box: present with any value but an explicit "no".
fn ticked(v: &Option<String>) -> bool {
    v.as_deref()
        .map(str::trim)
        .is_some_and(|v| !matches!(v, "" | "0" | "false" | "off" | "no"))
}

/// What the filter form shows: the values as typed, and a message per field.
#[derive(Default)]
struct QueueForm {
    status: String,
    model: String,
    lot: String,
    age: String,
    overdue: bool,
    never_sold: bool,
    not_owner: bool,
    out_of_warranty: bool,
    open_recall: bool,
    assignee: String,
    sort: String,
    status_error: Option<String>,
    model_error: Option<String>,
    lot_error: Option<String>,
    age_error: Option<String>,
    assignee_error: Option<String>,
    sort_error: Option<String>,
    page_error: Option<String>,
}

impl QueueForm {
    fn has_errors(&self) -> bool {
        self.status_error.is_some()
            || self.model_error.is_some()
            || self.lot_error.is_some()
            || self.age_error.is_some()
            || self.assignee_error.is_some()
            || self.sort_error.is_some()
            || self.page_error.is_some()
    }

    /// The filters as a query string (defaults left out), for page links.
    fn query_string(&self) -> String {
        let mut parts: Vec<(&str, &str)> = Vec::new();
        if self.status != "open" {
            parts.push(("status", &self.status));
        }
        for (k, v) in [
            ("model", &self.model),
            ("lot", &self.lot),
            ("age", &self.age),
            ("assignee", &self.assignee),
        ] {
            if !v.is_empty() {
                parts.push((k, v));
            }
        }
        for (k, on) in [
            ("overdue", self.overdue),
            ("never_sold", self.never_sold),
            ("not_owner", self.not_owner),
            ("out_of_warranty", self.out_of_warranty),
            ("open_recall", self.open_recall),
        ] {
            if on {
                parts.push((k, "1"));
            }
        }
        if self.sort != Sort::Oldest.code() {
            parts.push(("sort", &self.sort));
        }
        parts
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_query(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// One claim as the queue shows it.
struct QueueLine {
    id: i64,
    number: String,
    product: String,
    serial: String,
    lot: String,
    status: String,
    category: String,
    filed: String,
    age: String,
    in_status: String,
    eta: String,
    assignee: String,
    flags: Vec<&'static str>,
    /// Why it is overdue (the rule in `db::claim_reports::overdue`).
    overdue: Option<String>,
}

impl QueueLine {
    fn of(r: QueueRow, now: DateTime<Utc>) -> Self {
        let overdue = r.overdue(now).map(|o| o.reason());
        let mut flags = Vec::new();
        for (on, label) in [
            (r.flag_never_sold, "Never sold"),
            (r.flag_not_owner, "Not the registered owner"),
            (r.flag_out_of_warranty, "Out of warranty"),
            (r.flag_open_recall, "Open recall"),
        ] {
            if on {
                flags.push(label);
            }
        }
        QueueLine {
            id: r.id,
            status: Status::parse(&r.status)
                .map(|s| s.label().to_owned())
                .unwrap_or_else(|| r.status.clone()),
            category: category_label(&r.category)
                .map(str::to_owned)
                .unwrap_or_else(|| r.category.clone()),
            filed: r.filed_at.format("%Y-%m-%d").to_string(),
            age: plural_days((now - r.filed_at).num_days()),
            in_status: plural_days((now - r.status_since).num_days()),
            eta: r.eta.map(|d| d.to_string()).unwrap_or_default(),
            assignee: r.assignee.unwrap_or_default(),
            lot: r.lot.unwrap_or_default(),
            number: r.number,
            product: r.product,
            serial: r.serial,
            flags,
            overdue,
        }
    }
}

#[derive(Template)]
#[template(path = "staff/claims.html")]
struct QueuePage {
    form: QueueForm,
    /// (value, label)
    statuses: Vec<(String, String)>,
    models: Vec<(i64, String)>,
    staff: Vec<(i64, String)>,
    sorts: Vec<(&'static str, &'static str)>,
    rows: Vec<QueueLine>,
    /// Says what is listed, in which order, and how many match over all pages.
    caption: String,
    /// Whether any filter differs from the default (open claims, everyone's).
    filtered: bool,
    /// Admins get the link to the service levels.
    is_admin: bool,
    /// Query strings of the first page (when this is a later one) and of the next.
    first: Option<String>,
    next: Option<String>,
}

/// Reads the filters; what cannot be used gets its message in `form`.
async fn read_filters(
    q: &QueueQuery,
    user: &SignedIn,
    state: &AppState,
    staff: &[(i64, String)],
    conn: &mut crate::db::DbConn,
) -> Result<(QueueForm, QueueFilter, Sort, Option<Cursor>), AppError> {
    let mut form = QueueForm::default();
    let mut f = QueueFilter::default();

    form.status = q
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("open")
        .to_owned();
    f.status = match form.status.as_str() {
        "open" => StatusFilter::Open,
        "all" => StatusFilter::All,
        s => match Status::parse(s) {
            Some(s) => StatusFilter::One(s),
            None => {
                form.status_error = Some("Choose a status from the list.".into());
                StatusFilter::Open
            }
        },
    };

    let catalogue = state.catalogue();
    form.model = q.model.as_deref().unwrap_or("").trim().to_owned();
    if !form.model.is_empty() {
        match form
            .model
            .parse::<i64>()
            .ok()
            .filter(|id| catalogue.iter().any(|m| m.id == *id))
        {
            Some(id) => f.model_id = Some(id),
            None => form.model_error = Some("Choose a model from the list.".into()),
        }
    }

    form.lot = q
        .lot
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(40)
        .collect();
    if !form.lot.is_empty() {
        match f.model_id {
            None if form.model_error.is_none() => {
                form.lot_error = Some("Choose the model the lot belongs to.".into());
            }
            None => {}
            Some(model) => {
                match crate::db::catalogue::Lot::find_by_code(conn, model, &form.lot).await? {
                    Some(lot) => f.lot_id = Some(lot.id),
                    None => {
                        form.lot_error = Some(format!(
                            "This model has no lot “{}”: check the code on the label.",
                            form.lot
                        ))
                    }
                }
            }
        }
    }

    form.age = q
        .age
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(20)
        .collect();
    if !form.age.is_empty() {
        match form
            .age
            .parse::<i32>()
            .ok()
            .filter(|d| (0..=MAX_AGE_DAYS).contains(d))
        {
            Some(d) => f.older_than_days = Some(d),
            None => {
                form.age_error = Some(format!(
                    "Enter a whole number of days, from 0 to {MAX_AGE_DAYS}."
                ))
            }
        }
    }

    form.overdue = ticked(&q.overdue);
    form.never_sold = ticked(&q.never_sold);
    form.not_owner = ticked(&q.not_owner);
    form.out_of_warranty = ticked(&q.out_of_warranty);
    form.open_recall = ticked(&q.open_recall);
    f.overdue_only = form.overdue;
    f.never_sold = form.never_sold;
    f.not_owner = form.not_owner;
    f.out_of_warranty = form.out_of_warranty;
    f.open_recall = form.open_recall;

    form.assignee = q.assignee.as_deref().unwrap_or("").trim().to_owned();
    f.assignee = match form.assignee.as_str() {
        "" => AssigneeFilter::Anyone,
        "me" => AssigneeFilter::Account(user.account.id),
        "none" => AssigneeFilter::Unassigned,
        id => match id
            .parse::<i64>()
            .ok()
            .filter(|id| staff.iter().any(|(s, _)| s == id))
        {
            Some(id) => AssigneeFilter::Account(id),
            None => {
                form.assignee_error = Some("Choose someone from the list.".into());
                AssigneeFilter::Anyone
            }
        },
    };

    form.sort = q
        .sort
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(Sort::Oldest.code())
        .to_owned();
    let sort = Sort::parse(&form.sort).unwrap_or_else(|| {
        form.sort_error = Some("Choose an order from the list.".into());
        Sort::Oldest
    });

    let after = match (q.after.as_deref(), q.after_id.as_deref()) {
        (None, None) => None,
        (Some(key), Some(id)) => {
            let cursor = id
                .parse::<i64>()
                .ok()
                .and_then(|id| sort.parse_cursor(key, id));
            if cursor.is_none() {
                form.page_error = Some(
                    "This page link is damaged or was made for another order: start again from the first page."
                        .into(),
                );
            }
            cursor
        }
        _ => {
            form.page_error =
                Some("This page link is incomplete: start again from the first page.".into());
            None
        }
    };
    Ok((form, f, sort, after))
}

async fn queue(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    let now = reports::db_now();
    let mut conn = state.pool.get().await?;
    let staff = reports::staff_members(&mut conn).await?;
    let (form, filter, sort, after) = read_filters(&q, &user, &state, &staff, &mut conn).await?;
    let mut statuses = vec![
        (
            "open".to_owned(),
            "Open (not closed or cancelled)".to_owned(),
        ),
        ("all".to_owned(), "All statuses".to_owned()),
    ];
    statuses.extend(
        Status::ALL
            .into_iter()
            .map(|s| (s.as_str().to_owned(), s.label().to_owned())),
    );
    let models = state
        .catalogue()
        .iter()
        .map(|m| (m.id, format!("{} {}", m.brand, m.name)))
        .collect();
    let mut page = QueuePage {
        statuses,
        models,
        staff,
        sorts: Sort::ALL.iter().map(|s| (s.code(), s.label())).collect(),
        rows: Vec::new(),
        caption: String::new(),
        filtered: filter != QueueFilter::default(),
        is_admin: user.account.role() == crate::domain::account::Role::Admin,
        first: None,
        next: None,
        form,
    };
    if page.form.has_errors() {
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    let total = reports::queue_count(&mut conn, &filter, now).await?;
    let mut rows = reports::queue(&mut conn, &filter, sort, after, now, PAGE + 1).await?;
    drop(conn);
    let filters = page.form.query_string();
    let link = |extra: &str| match (filters.is_empty(), extra.is_empty()) {
        (true, _) => extra.to_owned(),
        (false, true) => filters.clone(),
        (false, false) => format!("{filters}&{extra}"),
    };
    if rows.len() as i64 > PAGE {
        rows.truncate(PAGE as usize);
        if let Some(last) = rows.last() {
            page.next = Some(link(&format!(
                "after={}&after_id={}",
                encode_query(&sort.cursor_of(last)),
                last.id
            )));
        }
    }
    if after.is_some() {
        page.first = Some(link(""));
    }
    let which = match filter.status {
        StatusFilter::Open => "Open claims".to_owned(),
        StatusFilter::All => "Claims".to_owned(),
        StatusFilter::One(s) => format!("Claims “{}”", s.label()),
    };
    let narrowed = {
        let mut beyond_status = filter.clone();
        beyond_status.status = StatusFilter::Open;
        beyond_status != QueueFilter::default()
    };
    page.caption = format!(
        "{which}{}, {}: {total} in all",
        if narrowed {
            " matching the filters"
        } else {
            ""
        },
        sort.label().to_lowercase()
    );
    page.rows = rows.into_iter().map(|r| QueueLine::of(r, now)).collect();
    Ok(render(StatusCode::OK, &page))
}

// ---- the dashboard --------------------------------------------------------------------------

/// One line of the dashboard: what, how many, and the queue filtered to them.
pub struct DashboardLine {
    pub label: String,
    pub count: i64,
    /// "1 claim", "3 claims": the links' accessible names.
    pub count_text: String,
    pub overdue: i64,
    pub link: String,
    pub overdue_link: String,
}

/// The claim counts on the staff home page.
pub struct DashboardView {
    pub lines: Vec<DashboardLine>,
    pub open: i64,
    pub overdue: i64,
    pub mine: i64,
    pub mine_overdue: i64,
    pub unassigned: i64,
}

/// The counts for the signed-in `viewer` (one query).
pub async fn dashboard(state: &AppState, viewer: i64) -> Result<DashboardView, AppError> {
    let mut conn = state.pool.get().await?;
    let d = reports::dashboard(&mut conn, viewer, reports::db_now()).await?;
    Ok(DashboardView {
        lines: d
            .per_status
            .iter()
            .map(|(s, count, overdue)| DashboardLine {
                label: s.label().to_owned(),
                count: *count,
                count_text: if *count == 1 {
                    "1 claim".to_owned()
                } else {
                    format!("{count} claims")
                },
                overdue: *overdue,
                link: format!("/staff/claims?status={}", s.as_str()),
                overdue_link: format!("/staff/claims?status={}&overdue=1", s.as_str()),
            })
            .collect(),
        open: d.open,
        overdue: d.overdue,
        mine: d.mine,
        mine_overdue: d.mine_overdue,
        unassigned: d.unassigned,
    })
}

// ---- service levels -------------------------------------------------------------------------

struct LevelField {
    /// The form field: `days_<status>`.
    name: String,
    label: &'static str,
    value: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/claim_levels.html")]
struct LevelsPage {
    csrf_token: String,
    notice: Option<&'static str>,
    fields: Vec<LevelField>,
    errors: usize,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn field_name(s: Status) -> String {
    format!("days_{}", s.as_str())
}

async fn levels(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let fields = reports::service_levels(&mut conn)
        .await?
        .into_iter()
        .map(|(s, days)| LevelField {
            name: field_name(s),
            label: s.label(),
            value: days.map(|d| d.to_string()).unwrap_or_default(),
            error: None,
        })
        .collect();
    let notice = match q.notice.as_deref() {
        Some("saved") => Some("Service levels saved. The queue and the dashboard use them now."),
        Some("unchanged") => Some("Nothing changed: every target was already as sent."),
        _ => None,
    };
    Ok(render(
        StatusCode::OK,
        &LevelsPage {
            csrf_token: user.session.csrf_token.clone(),
            notice,
            fields,
            errors: 0,
        },
    ))
}

/// Reads one target: a whole number of days from 1 to 365.
fn parse_target(label: &str, typed: Option<&String>) -> Result<i32, String> {
    let typed = typed.map(|t| t.trim()).unwrap_or("");
    if typed.is_empty() {
        return Err(format!("Enter the target days for “{label}”."));
    }
    typed
        .parse::<i32>()
        .ok()
        .filter(|d| (1..=365).contains(d))
        .ok_or_else(|| "Enter a whole number of days from 1 to 365.".to_owned())
}

async fn save_levels(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let mut fields = Vec::new();
    let mut levels = Vec::new();
    for s in reports::open_statuses() {
        let name = field_name(s);
        let typed = f.form.get(&name);
        let parsed = parse_target(s.label(), typed);
        if let Ok(d) = parsed {
            levels.push((s, d));
        }
        fields.push(LevelField {
            value: typed
                .map(|t| t.chars().take(20).collect())
                .unwrap_or_default(),
            error: parsed.err(),
            name,
            label: s.label(),
        });
    }
    let errors = fields.iter().filter(|f| f.error.is_some()).count();
    if errors > 0 {
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &LevelsPage {
                csrf_token: f.session.csrf_token.clone(),
                notice: None,
                fields,
                errors,
            },
        ));
    }
    let ip = state.limiter.client_ip(&req).map(|i| i.to_string());
    let mut conn = state.pool.get().await?;
    let changed = conn
        .transaction::<_, AppError, _>(async |conn| {
            let changed = reports::set_service_levels(conn, &levels).await?;
            if !changed.is_empty() {
                let detail = changed.join(", ");
                AuditEntry::record(
                    conn,
                    AuditEvent {
                        event: "claim_service_levels_changed",
                        actor_id: Some(admin.account.id),
                        detail: Some(&detail),
                        ip: ip.as_deref(),
                        ..Default::default()
                    },
                )
                .await?;
            }
            Ok(changed)
        })
        .await?;
    Ok(see_other(if changed.is_empty() {
        "/admin/claims/service-levels?notice=unchanged"
    } else {
        "/admin/claims/service-levels?notice=saved"
    }))
}

// ---- analytics ------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct WindowQuery {
    from: Option<String>,
    to: Option<String>,
    figure: Option<String>,
}

/// The date window: `[from, to]`, whole days, default the last 12 months up to today.
struct Window {
    from: NaiveDate,
    to: NaiveDate,
    error: Option<String>,
}

impl Window {
    fn read(q: &WindowQuery, today: NaiveDate) -> Self {
        let default_from = today
            .checked_sub_months(Months::new(12))
            .and_then(|d| d.succ_opt())
            .unwrap_or(today);
        let parse = |v: &Option<String>| -> Option<Result<NaiveDate, ()>> {
            let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
            Some(
                NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .ok()
                    .filter(|d| (1900..=9999).contains(&chrono::Datelike::year(d)))
                    .ok_or(()),
            )
        };
        match (parse(&q.from), parse(&q.to)) {
            (Some(Err(())), _) | (_, Some(Err(()))) => Window {
                from: default_from,
                to: today,
                error: Some(
                    "Enter dates as YYYY-MM-DD (years 1900 to 9999). The last 12 months are shown."
                        .into(),
                ),
            },
            (from, to) => {
                let from = from.and_then(Result::ok).unwrap_or(default_from);
                let to = to.and_then(Result::ok).unwrap_or(today);
                if from > to {
                    Window {
                        from: to,
                        to: from,
                        error: Some("The start was after the end; the dates were swapped.".into()),
                    }
                } else {
                    Window {
                        from,
                        to,
                        error: None,
                    }
                }
            }
        }
    }

    /// Whether the error means nothing the user asked for was shown.
    fn refused(&self) -> bool {
        self.error
            .as_deref()
            .is_some_and(|e| e.starts_with("Enter"))
    }
}

fn two_decimals(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_default()
}

fn one_decimal(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

struct RateLine {
    gtin: String,
    product: String,
    lot: String,
    claims: i64,
    sold: i64,
    /// Empty when nothing was sold (no rate).
    per_thousand: String,
}

impl From<&ClaimRate> for RateLine {
    fn from(r: &ClaimRate) -> Self {
        RateLine {
            gtin: r.gtin.clone(),
            product: r.product.clone(),
            lot: r.lot.clone().unwrap_or_default(),
            claims: r.claims,
            sold: r.sold,
            per_thousand: two_decimals(r.per_thousand),
        }
    }
}

struct CategoryLine {
    code: String,
    label: String,
    claims: i64,
    share: String,
}

struct RepairLine {
    gtin: String,
    product: String,
    repairs: i64,
    mean: String,
    p90: String,
}

impl From<&RepairTime> for RepairLine {
    fn from(r: &RepairTime) -> Self {
        RepairLine {
            gtin: r.gtin.clone().unwrap_or_default(),
            product: r.product.clone().unwrap_or_else(|| "All models".to_owned()),
            repairs: r.repairs,
            mean: one_decimal(r.mean_days),
            p90: one_decimal(r.p90_days),
        }
    }
}

/// Every figure of the analytics page, for the page and the CSV alike.
struct Figures {
    models: Vec<ClaimRate>,
    lots: Vec<ClaimRate>,
    categories: Vec<CategoryLine>,
    repairs: Vec<RepairTime>,
}

async fn figures(state: &AppState, w: &Window) -> Result<Figures, AppError> {
    let mut conn = state.pool.get().await?;
    let models = reports::claim_rates(&mut conn, w.from, w.to, false).await?;
    let lots = reports::claim_rates(&mut conn, w.from, w.to, true).await?;
    let counts = reports::top_categories(&mut conn, w.from, w.to).await?;
    let repairs = reports::repair_times(&mut conn, w.from, w.to).await?;
    let total: i64 = counts.iter().map(|c| c.claims).sum();
    let categories = counts
        .into_iter()
        .map(|c| CategoryLine {
            label: category_label(&c.category)
                .map(str::to_owned)
                .unwrap_or_else(|| c.category.clone()),
            share: if total > 0 {
                format!("{:.1}", 100.0 * c.claims as f64 / total as f64)
            } else {
                String::new()
            },
            code: c.category,
            claims: c.claims,
        })
        .collect();
    Ok(Figures {
        models,
        lots,
        categories,
        repairs,
    })
}

#[derive(Template)]
#[template(path = "admin/claim_analytics.html")]
struct AnalyticsPage {
    from: NaiveDate,
    to: NaiveDate,
    error: Option<String>,
    models: Vec<RateLine>,
    lots: Vec<RateLine>,
    categories: Vec<CategoryLine>,
    repairs: Vec<RepairLine>,
    /// The all-models line of the repair times (`None` when no repair ended in the window).
    all_repairs: Option<RepairLine>,
    /// SVG built by `charts`, which escapes every label and value; empty when there is no bar.
    rate_chart: String,
    lot_chart: String,
    category_chart: String,
    repair_chart: String,
    /// `from=…&to=…` for the CSV links.
    window: String,
}

/// A chart, or nothing when there is no bar to draw (the page then says so in words).
fn chart(id: &str, title: &str, bars: &[Measure]) -> String {
    if bars.is_empty() {
        String::new()
    } else {
        charts::measure_chart(id, title, bars)
    }
}

async fn analytics(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<WindowQuery>,
) -> Result<HttpResponse, AppError> {
    let w = Window::read(&q, Utc::now().date_naive());
    let f = figures(&state, &w).await?;
    let rate_bars = |rows: &[ClaimRate], with_lot: bool| -> Vec<Measure> {
        rows.iter()
            .filter_map(|r| {
                let v = r.per_thousand?;
                let label = match (&r.lot, with_lot) {
                    (Some(l), true) => format!("{l} ({})", r.product),
                    (None, true) => format!("no lot ({})", r.product),
                    _ => r.product.clone(),
                };
                Some(Measure {
                    label,
                    value: v,
                    text: format!("{v:.2}"),
                })
            })
            .collect()
    };
    let rate_chart = chart(
        "chart-rate-model",
        "Claims per 1,000 units sold, by model",
        &rate_bars(&f.models, false),
    );
    let lot_chart = chart(
        "chart-rate-lot",
        "Claims per 1,000 units sold, by lot",
        &rate_bars(&f.lots, true),
    );
    let category_chart = chart(
        "chart-categories",
        "Claims by problem category",
        &f.categories
            .iter()
            .map(|c| Measure {
                label: c.label.clone(),
                value: c.claims as f64,
                text: c.claims.to_string(),
            })
            .collect::<Vec<_>>(),
    );
    let per_model: Vec<&RepairTime> = f.repairs.iter().filter(|r| r.gtin.is_some()).collect();
    let repair_chart = chart(
        "chart-repair",
        "Mean days to repair, by model",
        &per_model
            .iter()
            .filter_map(|r| {
                let v = r.mean_days?;
                Some(Measure {
                    label: r.product.clone().unwrap_or_default(),
                    value: v,
                    text: format!("{v:.1} d"),
                })
            })
            .collect::<Vec<_>>(),
    );
    let all_repairs = f
        .repairs
        .iter()
        .find(|r| r.gtin.is_none() && r.repairs > 0)
        .map(RepairLine::from);
    let status = if w.refused() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &AnalyticsPage {
            window: format!("from={}&to={}", w.from, w.to),
            from: w.from,
            to: w.to,
            error: w.error,
            models: f.models.iter().map(RateLine::from).collect(),
            lots: f.lots.iter().map(RateLine::from).collect(),
            categories: f.categories,
            repairs: per_model.into_iter().map(RepairLine::from).collect(),
            all_repairs,
            rate_chart,
            lot_chart,
            category_chart,
            repair_chart,
        },
    ))
}

/// The analytics as CSV, one figure per file: `?figure=models|lots|categories|repairs`.
async fn analytics_csv(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<WindowQuery>,
) -> Result<HttpResponse, AppError> {
    let w = Window::read(&q, Utc::now().date_naive());
    if w.refused() {
        return Err(AppError::BadRequest(
            "Enter dates as YYYY-MM-DD (years 1900 to 9999).".into(),
        ));
    }
    let figure = q.figure.as_deref().unwrap_or("models");
    if !matches!(figure, "models" | "lots" | "categories" | "repairs") {
        return Err(AppError::BadRequest(
            "Say which figure to export: models, lots, categories or repairs.".into(),
        ));
    }
    let f = figures(&state, &w).await?;
    let (from, to) = (w.from.to_string(), w.to.to_string());
    let filename = format!("claims-{figure}-{from}-{to}.csv");
    let rates = |rows: Vec<ClaimRate>| {
        rows.into_iter()
            .map(|r| {
                vec![
                    r.gtin,
                    r.product,
                    r.lot.unwrap_or_default(),
                    from.clone(),
                    to.clone(),
                    r.claims.to_string(),
                    r.sold.to_string(),
                    two_decimals(r.per_thousand),
                ]
            })
            .collect::<Vec<_>>()
    };
    let rate_header = [
        "gtin",
        "product",
        "lot",
        "from",
        "to",
        "claims",
        "units_sold",
        "claims_per_1000_sold",
    ];
    match figure {
        "models" => super::csv_download(&filename, &rate_header, rates(f.models).into_iter()),
        "lots" => super::csv_download(&filename, &rate_header, rates(f.lots).into_iter()),
        "categories" => super::csv_download(
            &filename,
            &["category", "label", "from", "to", "claims", "share_percent"],
            f.categories.into_iter().map(|c| {
                vec![
                    c.code,
                    c.label,
                    from.clone(),
                    to.clone(),
                    c.claims.to_string(),
                    c.share,
                ]
            }),
        ),
        _ => super::csv_download(
            &filename,
            &[
                "gtin",
                "product",
                "from",
                "to",
                "repairs",
                "mean_days",
                "p90_days",
            ],
            f.repairs.into_iter().map(|r| {
                vec![
                    r.gtin.unwrap_or_else(|| "all".into()),
                    r.product.unwrap_or_else(|| "All models".into()),
                    from.clone(),
                    to.clone(),
                    r.repairs.to_string(),
                    r.mean_days.map(|v| format!("{v:.2}")).unwrap_or_default(),
                    r.p90_days.map(|v| format!("{v:.2}")).unwrap_or_default(),
                ]
            }),
        ),
    }
}
