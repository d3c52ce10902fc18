//! Recall campaigns for admins (`/admin/recalls`): draft the notice (checked for missing parts
//! and banned words), choose the affected units (any union of serial lists, ranges, lots,
//! models, manufacture windows and component lots), preview the exact count and a sample,
//! launch (one transaction), then say when the remedy is available, record remedies, close.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::multipart::CsrfMultipart;
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, encode_query, render, see_other};
use crate::db::catalogue::{Lot, ProductModel};
use crate::db::recalls::{self as db, Campaign, NewTarget, NoticeMail, Target};
use crate::domain::SerialNumber;
use crate::domain::recall::{NoticeText, Problem, check, heading, parse_code};
use crate::mail::Message;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/recalls", web::get().to(list))
        .route("/recalls", web::post().to(create))
        .route("/recalls/{id}", web::get().to(editor))
        .route("/recalls/{id}/notice", web::post().to(save_notice))
        .route("/recalls/{id}/targets", web::post().to(add_target))
        .route(
            "/recalls/{id}/targets/{target}/remove",
            web::post().to(remove_target),
        )
        .route("/recalls/{id}/launch", web::post().to(launch))
        .route("/recalls/{id}/remedy", web::post().to(remedy_available))
        .route("/recalls/{id}/remedied", web::post().to(remedied))
        .route("/recalls/{id}/close", web::post().to(close));
}

/// Largest serial list uploaded with a target.
const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;
/// Serials in one list.
const MAX_LIST_SERIALS: usize = 1_000_000;

fn no_campaign() -> AppError {
    AppError::not_found(
        "No such campaign",
        "There is no recall campaign with this number.",
    )
}

#[derive(Template)]
#[template(path = "admin/recalls.html")]
struct ListPage {
    csrf_token: String,
    rows: Vec<Campaign>,
    code: String,
    title: String,
    error: Option<String>,
}

async fn list(user: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let rows = Campaign::all(&mut conn).await?;
    Ok(render(
        StatusCode::OK,
        &ListPage {
            csrf_token: user.session.csrf_token.clone(),
            rows,
            code: String::new(),
            title: String::new(),
            error: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    title: String,
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<CreateForm>,
) -> Result<HttpResponse, AppError> {
    let Some(account) = f.session.account.clone() else {
        return Err(AppError::SignInRequired("/admin/recalls".into()));
    };
    let title = f.form.title.trim();
    let again = |error: String| async {
        let mut conn = state.pool.get().await?;
        let rows = Campaign::all(&mut conn).await?;
        Ok::<_, AppError>(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ListPage {
                csrf_token: f.session.csrf_token.clone(),
                rows,
                code: f.form.code.clone(),
                title: f.form.title.clone(),
                error: Some(error),
            },
        ))
    };
    let code = match parse_code(&f.form.code) {
        Ok(c) => c,
        Err(e) => return again(super::capitalise(&e)).await,
    };
    if title.is_empty() || title.chars().count() > 200 {
        return again(
            "Give the campaign a title naming the product (at most 200 characters).".into(),
        )
        .await;
    }
    let mut conn = state.pool.get().await?;
    let Some(id) = Campaign::create(&mut conn, &code, title, account.id).await? else {
        drop(conn);
        return again(format!(
            "A campaign with the code {code} exists already: choose another."
        ))
        .await;
    };
    drop(conn);
    super::catalogue::audit(&req, &state, account.id, "recall_created", &code).await?;
    Ok(see_other(&format!("/admin/recalls/{id}")))
}

/// The counts of a launched campaign, by state.
#[derive(Default)]
struct Progress {
    affected: i64,
    reachable: i64,
    notified: i64,
    delivered: i64,
    acknowledged: i64,
    remedied: i64,
    unreachable: i64,
}

#[derive(Template)]
#[template(path = "admin/recall.html")]
struct EditorPage {
    c: Campaign,
    csrf_token: String,
    draft: bool,
    problems: Vec<Problem>,
    targets: Vec<Target>,
    models: Vec<(i64, String)>,
    preview: Option<(db::Preview, Vec<(String, String)>)>,
    progress: Option<Progress>,
    notice: Option<&'static str>,
    error: Option<String>,
    heading: String,
}

#[derive(Deserialize)]
pub struct EditorQuery {
    notice: Option<String>,
    error: Option<String>,
    detail: Option<String>,
}

async fn load(state: &AppState, id: i64) -> Result<Campaign, AppError> {
    let mut conn = state.pool.get().await?;
    Campaign::find(&mut conn, id).await?.ok_or_else(no_campaign)
}

async fn editor(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<EditorQuery>,
) -> Result<HttpResponse, AppError> {
    let c = load(&state, path.into_inner()).await?;
    let mut conn = state.pool.get().await?;
    let targets = db::targets(&mut conn, c.id).await?;
    let draft = c.status == "draft";
    let problems = if draft {
        check(&c.text(), !targets.is_empty())
    } else {
        Vec::new()
    };
    let preview = if draft && !targets.is_empty() {
        Some(db::preview(&mut conn, c.id, 20).await?)
    } else {
        None
    };
    let progress = if draft {
        None
    } else {
        Some(progress(&mut conn, c.id).await?)
    };
    drop(conn);
    let notice = match q.notice.as_deref() {
        Some("saved") => Some("Notice saved."),
        Some("target") => Some("Target added; the preview below counts it."),
        Some("removed") => Some("Target removed."),
        Some("launched") => {
            Some("Launched: the affected units are recorded and the notices are on their way.")
        }
        Some("remedy") => Some("Saved: the lookup shows it at once."),
        Some("remedied") => Some("Recorded as remedied."),
        Some("closed") => Some("Campaign closed."),
        _ => None,
    };
    let error = q.error.as_deref().map(|e| match e {
        "not-draft" => {
            "The campaign is launched: its notice and targets can no longer change.".to_owned()
        }
        "problems" => "The notice is not ready: see what is missing above.".to_owned(),
        "target" => format!(
            "That target could not be added: {}.",
            q.detail.as_deref().map_or("check the fields", |d| match d {
                "model" => "choose a model",
                "lot" => "that model has no lot with that code",
                "serials" => "give the serial numbers, one per line (or a file of them), all valid",
                "too-many" => "at most 1,000,000 serial numbers in one list",
                "range" =>
                    "give the first and the last serial number, the first not after the last",
                "dates" => "give both dates, the first not after the last",
                _ => "check the fields",
            })
        ),
        "remedied" => {
            "No unit of this campaign has that serial number (or it was remedied already)."
                .to_owned()
        }
        _ => "That did not work.".to_owned(),
    });
    let models = state
        .catalogue()
        .iter()
        .map(|m: &ProductModel| (m.id, format!("{} {} ({})", m.brand, m.name, m.gtin)))
        .collect();
    Ok(render(
        StatusCode::OK,
        &EditorPage {
            heading: heading(&c.title),
            csrf_token: user.session.csrf_token.clone(),
            draft,
            problems,
            targets,
            models,
            preview,
            progress,
            notice,
            error,
            c,
        },
    ))
}

async fn progress(
    conn: &mut diesel_async::AsyncPgConnection,
    id: i64,
) -> Result<Progress, AppError> {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        affected: i64,
        #[diesel(sql_type = BigInt)]
        reachable: i64,
        #[diesel(sql_type = BigInt)]
        notified: i64,
        #[diesel(sql_type = BigInt)]
        delivered: i64,
        #[diesel(sql_type = BigInt)]
        acknowledged: i64,
        #[diesel(sql_type = BigInt)]
        remedied: i64,
        #[diesel(sql_type = BigInt)]
        unreachable: i64,
    }
    let r: Row = diesel::sql_query(
        "SELECT count(*) AS affected,
                count(*) FILTER (WHERE ru.notice_id IS NOT NULL) AS reachable,
                count(*) FILTER (WHERE ru.notice_id IS NOT NULL) AS notified,
                count(*) FILTER (WHERE o.status = 'sent' OR o2.status = 'sent') AS delivered,
                count(*) FILTER (WHERE ru.acknowledged_at IS NOT NULL) AS acknowledged,
                count(*) FILTER (WHERE ru.state = 'remedied') AS remedied,
                count(*) FILTER (WHERE ru.notice_id IS NULL AND ru.state <> 'remedied') AS unreachable
         FROM recall_units ru
         LEFT JOIN recall_notices n ON n.id = ru.notice_id
         LEFT JOIN outbox o ON o.id = n.outbox_id
         LEFT JOIN outbox o2 ON o2.id = n.second_outbox_id
         WHERE ru.campaign_id = $1",
    )
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .await?;
    Ok(Progress {
        affected: r.affected,
        reachable: r.reachable,
        notified: r.notified,
        delivered: r.delivered,
        acknowledged: r.acknowledged,
        remedied: r.remedied,
        unreachable: r.unreachable,
    })
}

fn back(id: i64, q: &str) -> HttpResponse {
    see_other(&format!("/admin/recalls/{id}?{q}"))
}

#[derive(Deserialize)]
pub struct NoticeForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    hazard: String,
    #[serde(default)]
    what_to_do: String,
    #[serde(default)]
    sold_where: String,
    #[serde(default)]
    contact: String,
    remedy_repair: Option<String>,
    remedy_replace: Option<String>,
    remedy_refund: Option<String>,
    #[serde(default)]
    remedy_reason: String,
    #[serde(default)]
    second_notice_days: String,
}

/// Text as typed, trimmed and cut to `max` characters (the page says the limits).
fn text(s: &str, max: usize) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(max)
        .collect::<String>()
        .replace('\r', "")
}

async fn save_notice(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<NoticeForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let n = &f.form;
    let mut title = text(&n.title, 200);
    if title.is_empty() {
        title = load(&state, id).await?.title;
    }
    let t = NoticeText {
        title,
        hazard: text(&n.hazard, 4000),
        what_to_do: text(&n.what_to_do, 4000),
        sold_where: text(&n.sold_where, 2000),
        contact: text(&n.contact, 2000),
        remedy_repair: n.remedy_repair.is_some(),
        remedy_replace: n.remedy_replace.is_some(),
        remedy_refund: n.remedy_refund.is_some(),
        remedy_reason: text(&n.remedy_reason, 2000),
    };
    let days = n
        .second_notice_days
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|d| (1..=365).contains(d))
        .unwrap_or(14);
    let mut conn = state.pool.get().await?;
    if Campaign::find(&mut conn, id).await?.is_none() {
        return Err(no_campaign());
    }
    if !Campaign::save_text(&mut conn, id, &t, days).await? {
        return Ok(back(id, "error=not-draft"));
    }
    Ok(back(id, "notice=saved#notice-form"))
}

#[derive(Deserialize, Default)]
pub struct TargetForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    serials: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    made_from: String,
    #[serde(default)]
    made_to: String,
}

/// A serial as the model keys it (folded unless its serials are case-sensitive).
fn key(model: &ProductModel, raw: &str) -> Option<String> {
    let s = SerialNumber::parse_typed(raw).ok()?;
    Some(if model.serials_case_sensitive {
        s.as_str().to_owned()
    } else {
        s.folded()
    })
}

async fn add_target(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let c = load(&state, id).await?;
    let sent = CsrfMultipart::<TargetForm>::read(&req, body, MAX_LIST_BYTES, 1).await?;
    if c.status != "draft" {
        return Ok(back(id, "error=not-draft"));
    }
    let f = &sent.form;
    let fail = |detail: &str| back(id, &format!("error=target&detail={detail}#targets"));
    let catalogue = state.catalogue();
    let model = f
        .model
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|m| catalogue.iter().find(|x| x.id == m));
    let date = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    let mut conn = state.pool.get().await?;
    let (target, label) = match f.kind.as_str() {
        "serials" => {
            let Some(m) = model else {
                return Ok(fail("model"));
            };
            let mut text = f.serials.clone();
            for file in sent.files.iter().filter(|x| x.field == "file") {
                if file.too_large {
                    return Ok(fail("too-many"));
                }
                let Ok(s) = std::str::from_utf8(&file.bytes) else {
                    return Ok(fail("serials"));
                };
                text.push('\n');
                text.push_str(s);
            }
            let mut keys = Vec::new();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                // A CSV of serials may have a header or more columns: the first column counts.
                let first = line.split([',', ';', '\t']).next().unwrap_or("").trim();
                if first.eq_ignore_ascii_case("serial") {
                    continue;
                }
                match key(m, first) {
                    Some(k) => keys.push(k),
                    None => return Ok(fail("serials")),
                }
                if keys.len() > MAX_LIST_SERIALS {
                    return Ok(fail("too-many"));
                }
            }
            keys.sort();
            keys.dedup();
            if keys.is_empty() {
                return Ok(fail("serials"));
            }
            let label = format!(
                "{} {}: {} listed serial number{}",
                m.brand,
                m.name,
                keys.len(),
                if keys.len() == 1 { "" } else { "s" }
            );
            (
                NewTarget::Serials {
                    model_id: m.id,
                    keys,
                },
                label,
            )
        }
        "range" => {
            let Some(m) = model else {
                return Ok(fail("model"));
            };
            let (Some(from), Some(to)) = (key(m, &f.from), key(m, &f.to)) else {
                return Ok(fail("range"));
            };
            if from > to {
                return Ok(fail("range"));
            }
            let label = format!("{} {}: serial numbers {from} to {to}", m.brand, m.name);
            (
                NewTarget::Range {
                    model_id: m.id,
                    from,
                    to,
                },
                label,
            )
        }
        "lot" | "component_lot" => {
            let Some(m) = model else {
                return Ok(fail("model"));
            };
            let Some(l) = Lot::find_by_code(&mut conn, m.id, f.lot.trim()).await? else {
                return Ok(fail("lot"));
            };
            if f.kind == "lot" {
                (
                    NewTarget::Lot { lot_id: l.id },
                    format!("{} {}: lot {}", m.brand, m.name, l.code),
                )
            } else {
                (
                    NewTarget::ComponentLot { lot_id: l.id },
                    format!(
                        "every product containing {} {} from lot {}",
                        m.brand, m.name, l.code
                    ),
                )
            }
        }
        "model" => {
            let Some(m) = model else {
                return Ok(fail("model"));
            };
            (
                NewTarget::Model { model_id: m.id },
                format!("every {} {} (GTIN {})", m.brand, m.name, m.gtin),
            )
        }
        "made" => {
            let (Some(from), Some(to)) = (date(&f.made_from), date(&f.made_to)) else {
                return Ok(fail("dates"));
            };
            if from > to {
                return Ok(fail("dates"));
            }
            let of = model.map_or("products".to_owned(), |m| format!("{} {}", m.brand, m.name));
            (
                NewTarget::Made {
                    model_id: model.map(|m| m.id),
                    from,
                    to,
                },
                format!("{of} made from {from} to {to}"),
            )
        }
        _ => return Ok(fail("kind")),
    };
    if !db::add_target(&mut conn, id, &target, &label).await? {
        return Ok(back(id, "error=not-draft"));
    }
    Ok(back(id, "notice=target#targets"))
}

async fn remove_target(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    _f: CsrfForm<super::pictures::Empty>,
) -> Result<HttpResponse, AppError> {
    let (id, target) = path.into_inner();
    load(&state, id).await?;
    let mut conn = state.pool.get().await?;
    if !db::remove_target(&mut conn, id, target).await? {
        return Ok(back(id, "error=not-draft"));
    }
    Ok(back(id, "notice=removed#targets"))
}

/// The notice mail, rendered once for every owner: `%%UNITS%%` and `%%LINK%%` are filled in
/// per owner when it is sent. The second notice (`second`) says first that it writes again.
fn notice_mail(base: &str, c: &Campaign, second: bool) -> Result<NoticeMail, AppError> {
    let head = heading(&c.title);
    let mut remedies = Vec::new();
    if c.remedy_repair {
        remedies.push("a free repair");
    }
    if c.remedy_replace {
        remedies.push("a free replacement");
    }
    if c.remedy_refund {
        remedies.push("a refund");
    }
    let mut paragraphs = Vec::new();
    if second {
        paragraphs
            .push("We have not heard from you about this safety recall, so we write again.".into());
    }
    paragraphs.extend([
        format!("{head}."),
        "You registered this product with us, and it is affected:".to_owned(),
        "%%UNITS%%".to_owned(),
        format!("The hazard: {}", c.hazard),
        format!("What to do now: {}", c.what_to_do),
    ]);
    if !remedies.is_empty() {
        paragraphs.push(format!("We offer {}.", remedies.join(", or ")));
    }
    if !c.remedy_available {
        paragraphs.push(
            "The remedy is not available yet: we will write again as soon as it is.".to_owned(),
        );
    }
    let mail = Message {
        greeting: "Hello,".into(),
        paragraphs,
        action: Some((
            "Tell us you read this and choose a remedy".into(),
            "%%LINK%%".into(),
        )),
        after: vec![
            format!("Contact: {}", c.contact),
            format!("The full notice: {base}/recalls/{}", encode_query(&c.code)),
        ],
    }
    .into_mail("recall_notice", "owner@example.invalid", &head)?;
    let subject = match second {
        true => format!("Second notice: {}", mail.subject),
        false => mail.subject,
    };
    Ok(NoticeMail {
        subject,
        text: mail.text,
        html: mail.html,
    })
}

async fn launch(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<super::pictures::Empty>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let Some(account) = f.session.account.clone() else {
        return Err(AppError::SignInRequired(format!("/admin/recalls/{id}")));
    };
    let c = load(&state, id).await?;
    if c.status != "draft" {
        return Ok(back(id, "error=not-draft"));
    }
    // The launch's own connection, its backend yielding the CPU to lookups (`db::priority`).
    let mut conn = state.bulk_connection().await?;
    let targets = db::targets(&mut conn, id).await?;
    if !check(&c.text(), !targets.is_empty()).is_empty() {
        return Ok(back(id, "error=problems"));
    }
    let base = state.config.base_url();
    let (first, second) = (
        notice_mail(&base, &c, false)?,
        notice_mail(&base, &c, true)?,
    );
    let started = std::time::Instant::now();
    let Some(done) = db::launch(&mut conn, id, account.id, &base, &first, &second).await? else {
        return Ok(back(id, "error=not-draft"));
    };
    drop(conn);
    super::catalogue::audit(
        &req,
        &state,
        account.id,
        "recall_launched",
        &format!(
            "{}: {} units affected, {} notices to owners of {} units, in {} ms",
            c.code,
            done.affected,
            done.notices,
            done.notified_units,
            started.elapsed().as_millis()
        ),
    )
    .await?;
    Ok(back(id, "notice=launched"))
}

#[derive(Deserialize)]
pub struct RemedyForm {
    #[serde(default)]
    available: String,
}

async fn remedy_available(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<RemedyForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    load(&state, id).await?;
    let mut conn = state.pool.get().await?;
    Campaign::set_remedy_available(&mut conn, id, f.form.available == "yes").await?;
    Ok(back(id, "notice=remedy"))
}

#[derive(Deserialize)]
pub struct RemediedForm {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    gtin: String,
}

async fn remedied(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<RemediedForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let Some(account) = f.session.account.clone() else {
        return Err(AppError::SignInRequired(format!("/admin/recalls/{id}")));
    };
    let c = load(&state, id).await?;
    if c.status == "draft" {
        return Ok(back(id, "error=not-draft"));
    }
    let gtin = Some(f.form.gtin.as_str()).filter(|g| !g.trim().is_empty());
    let Ok(q) = crate::domain::lookup::LookupQuery::parse(&f.form.serial, gtin) else {
        return Ok(back(id, "error=remedied"));
    };
    let mut conn = state.pool.get().await?;
    let g = q.gtin.map(|g| g.as_string());
    let found =
        crate::db::lookup::UnitMatch::find(&conn, &state.catalogue(), &q.serial, g.as_deref())
            .await?;
    let today = chrono::Utc::now().date_naive();
    for m in &found {
        if db::mark_remedied(
            &mut conn,
            id,
            m.unit.id,
            today,
            &format!("staff:{}", account.id),
        )
        .await?
        {
            return Ok(back(id, "notice=remedied"));
        }
    }
    Ok(back(id, "error=remedied"))
}

async fn close(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    _f: CsrfForm<super::pictures::Empty>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    load(&state, id).await?;
    let mut conn = state.pool.get().await?;
    Campaign::close(&mut conn, id).await?;
    Ok(back(id, "notice=closed"))
}
