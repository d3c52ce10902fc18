//! Recalls, the public side: `/recalls` and `/recalls/{code}` (the notice), and the owner's
//! acknowledgement with a remedy choice, from the link in the mail (`/recalls/{code}/ack?t=…`,
//! no sign-in needed: the link's secret is the key) or from their account
//! (`/account/recalls/{code}`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, Session, SignedIn};
use super::views::long_date;
use super::{AppError, AppState, encode_query, render, see_other};
use crate::db::recalls::{Campaign, Notice, Target};
use crate::domain::recall::heading;
use crate::tokens::hash_token;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/recalls", web::get().to(list))
        .route("/recalls/{code}", web::get().to(notice))
        .route("/recalls/{code}/ack", web::get().to(ack_page))
        .route("/recalls/{code}/ack", web::post().to(ack))
        .route("/account/recalls/{code}", web::get().to(own_page))
        .route("/account/recalls/{code}", web::post().to(own_ack));
}

fn no_recall() -> AppError {
    AppError::not_found(
        "No such recall",
        "There is no published recall with this code. See the list of recalls.",
    )
}

/// A launched or closed campaign by its code (drafts are nobody's business but admins').
async fn published(state: &AppState, code: &str) -> Result<Campaign, AppError> {
    if code.len() > 40 {
        return Err(no_recall());
    }
    let mut conn = state.pool.get().await?;
    Campaign::by_code(&mut conn, &code.to_uppercase())
        .await?
        .filter(|c| c.status != "draft")
        .ok_or_else(no_recall)
}

/// What a notice shows, worked out once for the page and the acknowledgement page.
pub(super) struct NoticeView {
    pub code: String,
    pub heading: String,
    pub date: String,
    pub hazard: String,
    pub what_to_do: String,
    pub sold_where: String,
    pub contact: String,
    pub remedies: Vec<(&'static str, &'static str)>,
    pub remedy_reason: String,
    pub remedy_available: bool,
    pub closed: bool,
    /// Which products and units: the targets as the editor described them.
    pub affects: Vec<String>,
    /// (brand and name, picture address) of each model named by a target.
    pub products: Vec<(String, Option<String>)>,
}

pub(super) async fn view(state: &AppState, c: &Campaign) -> Result<NoticeView, AppError> {
    let mut conn = state.pool.get().await?;
    let targets: Vec<Target> = crate::db::recalls::targets(&mut conn, c.id).await?;
    let catalogue = state.catalogue();
    let mut products = Vec::new();
    for model_id in targets.iter().filter_map(|t| t.model_id) {
        if products.iter().any(|(id, _, _)| *id == model_id) {
            continue;
        }
        if let Some(m) = catalogue.iter().find(|m| m.id == model_id) {
            let picture = crate::db::pictures::version(&mut conn, m.id)
                .await?
                .map(|v| format!("/models/{}/picture?v={}", m.id, v.timestamp()));
            products.push((
                model_id,
                format!(
                    "{} {} (model {}, GTIN {})",
                    m.brand, m.name, m.model_number, m.gtin
                ),
                picture,
            ));
        }
    }
    let mut remedies = Vec::new();
    if c.remedy_repair {
        remedies.push(("repair", "Free repair"));
    }
    if c.remedy_replace {
        remedies.push(("replace", "Free replacement"));
    }
    if c.remedy_refund {
        remedies.push(("refund", "Refund"));
    }
    Ok(NoticeView {
        code: c.code.clone(),
        heading: heading(&c.title),
        date: c
            .launched_at
            .map(|d| long_date(d.date_naive()))
            .unwrap_or_default(),
        hazard: c.hazard.clone(),
        what_to_do: c.what_to_do.clone(),
        sold_where: c.sold_where.clone(),
        contact: c.contact.clone(),
        remedies,
        remedy_reason: c.remedy_reason.clone(),
        remedy_available: c.remedy_available,
        closed: c.status == "closed",
        affects: targets.into_iter().map(|t| t.label).collect(),
        products: products.into_iter().map(|(_, n, p)| (n, p)).collect(),
    })
}

#[derive(Template)]
#[template(path = "public/recalls.html")]
struct ListPage {
    /// (code, heading, date, closed)
    rows: Vec<(String, String, String, bool)>,
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let rows = Campaign::public(&mut conn)
        .await?
        .into_iter()
        .map(|c| {
            (
                c.code.clone(),
                heading(&c.title),
                c.launched_at
                    .map(|d| long_date(d.date_naive()))
                    .unwrap_or_default(),
                c.status == "closed",
            )
        })
        .collect();
    Ok(render(StatusCode::OK, &ListPage { rows }))
}

#[derive(Template)]
#[template(path = "public/recall.html")]
struct NoticePage {
    n: NoticeView,
}

async fn notice(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let c = published(&state, &path.into_inner()).await?;
    let n = view(&state, &c).await?;
    Ok(render(StatusCode::OK, &NoticePage { n }))
}

#[derive(Template)]
#[template(path = "public/recall_ack.html")]
struct AckPage {
    n: NoticeView,
    csrf_token: String,
    /// Where the form posts (the link's address, or the account's).
    action: String,
    token: String,
    /// (gtin, serial, product, state)
    units: Vec<(String, String, String, String)>,
    acknowledged: bool,
    choice: Option<String>,
    error: bool,
}

#[derive(Deserialize)]
pub struct AckQuery {
    #[serde(default)]
    t: String,
    error: Option<String>,
}

fn is_link_secret(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

fn link_gone() -> AppError {
    AppError::not_found(
        "This link does not work",
        "The link may be incomplete: open it from the mail again, or sign in and see the recall under My products. You can also call the number on the recall notice.",
    )
}

async fn notice_by_link(state: &AppState, c: &Campaign, token: &str) -> Result<Notice, AppError> {
    if !is_link_secret(token) {
        return Err(link_gone());
    }
    let mut conn = state.pool.get().await?;
    Notice::by_token(&mut conn, c.id, &hash_token(token))
        .await?
        .ok_or_else(link_gone)
}

async fn ack_view(
    state: &AppState,
    c: &Campaign,
    notice: &Notice,
    session: &Session,
    action: String,
    token: String,
    error: bool,
) -> Result<HttpResponse, AppError> {
    let n = view(state, c).await?;
    let mut conn = state.pool.get().await?;
    let units = notice.units(&mut conn).await?;
    Ok(render(
        if error {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        &AckPage {
            n,
            csrf_token: session.csrf_token.clone(),
            action,
            token,
            units,
            acknowledged: notice.acknowledged_at.is_some(),
            choice: notice.remedy_choice.clone(),
            error,
        },
    ))
}

async fn ack_page(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<AckQuery>,
) -> Result<HttpResponse, AppError> {
    let c = published(&state, &path.into_inner()).await?;
    let notice = notice_by_link(&state, &c, &q.t).await?;
    ack_view(
        &state,
        &c,
        &notice,
        &session,
        format!("/recalls/{}/ack", c.code),
        q.t.clone(),
        q.error.is_some(),
    )
    .await
}

#[derive(Deserialize)]
pub struct AckForm {
    #[serde(default)]
    t: String,
    #[serde(default)]
    remedy: String,
}

/// The remedy chosen, if the campaign offers it.
fn offered(c: &Campaign, remedy: &str) -> bool {
    match remedy {
        "repair" => c.remedy_repair,
        "replace" => c.remedy_replace,
        "refund" => c.remedy_refund,
        _ => false,
    }
}

async fn ack(
    state: web::Data<AppState>,
    path: web::Path<String>,
    f: CsrfForm<AckForm>,
) -> Result<HttpResponse, AppError> {
    let c = published(&state, &path.into_inner()).await?;
    let notice = notice_by_link(&state, &c, &f.form.t).await?;
    let back = format!("/recalls/{}/ack?t={}", c.code, encode_query(&f.form.t));
    if !offered(&c, &f.form.remedy) {
        return Ok(see_other(&format!("{back}&error=remedy")));
    }
    let mut conn = state.pool.get().await?;
    Notice::acknowledge(&mut conn, notice.id, &f.form.remedy).await?;
    Ok(see_other(&back))
}

async fn own_notice(state: &AppState, c: &Campaign, account_id: i64) -> Result<Notice, AppError> {
    let mut conn = state.pool.get().await?;
    Notice::of_account(&mut conn, c.id, account_id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "Not one of yours",
                "None of your registered products is in this recall. The notice itself is public: see the list of recalls.",
            )
        })
}

async fn own_page(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<AckQuery>,
) -> Result<HttpResponse, AppError> {
    let c = published(&state, &path.into_inner()).await?;
    let notice = own_notice(&state, &c, user.account.id).await?;
    ack_view(
        &state,
        &c,
        &notice,
        &user.session,
        format!("/account/recalls/{}", c.code),
        String::new(),
        q.error.is_some(),
    )
    .await
}

async fn own_ack(
    state: web::Data<AppState>,
    path: web::Path<String>,
    f: CsrfForm<AckForm>,
) -> Result<HttpResponse, AppError> {
    let code = path.into_inner();
    let Some(account) = f.session.account.clone() else {
        return Err(AppError::SignInRequired(format!(
            "/account/recalls/{}",
            encode_query(&code)
        )));
    };
    let c = published(&state, &code).await?;
    let notice = own_notice(&state, &c, account.id).await?;
    let back = format!("/account/recalls/{}", c.code);
    if !offered(&c, &f.form.remedy) {
        return Ok(see_other(&format!("{back}?error=remedy")));
    }
    let mut conn = state.pool.get().await?;
    Notice::acknowledge(&mut conn, notice.id, &f.form.remedy).await?;
    Ok(see_other(&back))
}
