//! Registrations for staff (`/staff/registrations`): pending ownership transfers to approve or
//! reject (both parties told by mail, neither learns about the other), and registrations of
//! units that were never recorded as sold.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, encode_query, render, see_other};
use crate::db::catalogue::Lot;
use crate::db::registrations::{RegistrationCounts, StaffRegistration};
use crate::domain::account::Role;
use crate::mail::messages;

/// The export, admins only (it carries personal data): `/admin/registrations.csv?model=` or `?lot=`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/registrations.csv", web::get().to(export));
}

#[derive(Deserialize)]
pub struct ExportQuery {
    model: Option<i64>,
    lot: Option<i64>,
}

async fn export(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    if q.model.is_some() == q.lot.is_some() {
        return Err(AppError::BadRequest(
            "Say which model or which lot to export (one of them).".into(),
        ));
    }
    let mut conn = state.pool.get().await?;
    let lines = crate::db::registrations::export(&mut conn, q.model, q.lot).await?;
    drop(conn);
    let what = match (q.model, q.lot) {
        (Some(m), _) => format!("model-{m}"),
        (_, Some(l)) => format!("lot-{l}"),
        _ => String::new(),
    };
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "registrations_exported",
        &format!("{what}: {} registration(s)", lines.len()),
    )
    .await?;
    super::csv_download(
        &format!("registrations-{what}.csv"),
        &[
            "gtin",
            "serial",
            "lot",
            "status",
            "contact_email",
            "account_deleted",
            "purchased_on",
            "place_of_purchase",
            "registered_at",
        ],
        lines.into_iter().map(|l| {
            vec![
                l.gtin,
                l.serial,
                l.lot.unwrap_or_default(),
                l.status,
                l.contact_email,
                l.contact_retained.to_string(),
                l.purchased_on.to_string(),
                l.place_of_purchase,
                l.registered_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ]
        }),
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/registrations", web::get().to(list))
        .route("/registrations/{id}", web::get().to(show))
        .route("/registrations/{id}/proof", web::get().to(proof))
        .route("/registrations/{id}/decide", web::post().to(decide));
}

/// Registrations listed per page of the model or lot search.
const PAGE: i64 = 100;

/// The model-or-lot search of the registrations page.
struct Search {
    /// (id, name, selected)
    models: Vec<(i64, String, bool)>,
    model: Option<i64>,
    lot: String,
    error: Option<String>,
    counts: Option<RegistrationCounts>,
    rows: Vec<StaffRegistration>,
    /// The query string of the next page, when there is one.
    next: Option<String>,
    /// The admin export of the same selection.
    export: Option<String>,
}

#[derive(Template)]
#[template(path = "staff/registrations.html")]
struct ListPage {
    pending: Vec<StaffRegistration>,
    flagged: Vec<StaffRegistration>,
    notice: Option<String>,
    search: Search,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
    model: Option<String>,
    #[serde(default)]
    lot: String,
    after: Option<String>,
    after_id: Option<i64>,
}

async fn search(user: &SignedIn, state: &AppState, q: &ListQuery) -> Result<Search, AppError> {
    let catalogue = state.catalogue();
    let chosen = q.model.as_deref().and_then(|m| m.parse::<i64>().ok());
    let models = catalogue
        .iter()
        .map(|m| {
            (
                m.id,
                format!("{} {}", m.brand, m.name),
                chosen == Some(m.id),
            )
        })
        .collect();
    let mut s = Search {
        models,
        model: None,
        lot: q.lot.trim().chars().take(100).collect(),
        error: None,
        counts: None,
        rows: Vec::new(),
        next: None,
        export: None,
    };
    let Some(model_text) = q.model.as_deref().filter(|m| !m.is_empty()) else {
        if !s.lot.is_empty() {
            s.error = Some("Choose the model the lot belongs to.".into());
        }
        return Ok(s);
    };
    let Some(model) = model_text
        .parse::<i64>()
        .ok()
        .filter(|id| catalogue.iter().any(|m| m.id == *id))
    else {
        s.error = Some("Choose a model from the list.".into());
        return Ok(s);
    };
    s.model = Some(model);
    let mut conn = state.pool.get().await?;
    let lot_id = if s.lot.is_empty() {
        None
    } else {
        match Lot::find_by_code(&mut conn, model, &s.lot).await? {
            Some(l) => Some(l.id),
            None => {
                s.error = Some(format!(
                    "This model has no lot “{}”: check the code on the label.",
                    s.lot
                ));
                return Ok(s);
            }
        }
    };
    let after = q.after.as_deref().map(|a| (a, q.after_id.unwrap_or(0)));
    let (counts, mut rows) =
        crate::db::registrations::of_model(&mut conn, model, lot_id, after, PAGE + 1).await?;
    if rows.len() as i64 > PAGE {
        rows.truncate(PAGE as usize);
        if let Some(last) = rows.last() {
            s.next = Some(format!(
                "model={model}&lot={}&after={}&after_id={}",
                encode_query(&s.lot),
                encode_query(&last.serial_key),
                last.id
            ));
        }
    }
    if user.account.role() == Role::Admin {
        s.export = Some(match lot_id {
            Some(l) => format!("/admin/registrations.csv?lot={l}"),
            None => format!("/admin/registrations.csv?model={model}"),
        });
    }
    s.counts = Some(counts);
    s.rows = rows;
    Ok(s)
}

async fn list(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let search = search(&user, &state, &q).await?;
    let mut conn = state.pool.get().await?;
    let pending = StaffRegistration::pending(&mut conn).await?;
    let flagged = StaffRegistration::flagged(&mut conn).await?;
    let notice = match q.notice.as_deref() {
        Some("approved") => Some("Transfer approved; both owners were told by mail.".to_owned()),
        Some("rejected") => Some("Transfer rejected; both were told by mail.".to_owned()),
        _ => None,
    };
    Ok(render(
        StatusCode::OK,
        &ListPage {
            pending,
            flagged,
            notice,
            search,
        },
    ))
}

#[derive(Template)]
#[template(path = "staff/registration.html")]
struct ShowPage {
    r: StaffRegistration,
    history: Vec<StaffRegistration>,
    csrf_token: String,
    error: Option<String>,
}

async fn show(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let r = StaffRegistration::find(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "No such registration",
                "There is no registration with this number.",
            )
        })?;
    let history = StaffRegistration::of_unit(&mut conn, r.unit_id).await?;
    let error = q.error.as_deref().map(|e| match e {
        "reason" => {
            "Give the reason for a rejection (the customer reads it), in at most 200 characters."
                .to_owned()
        }
        _ => "Choose approve or reject.".to_owned(),
    });
    Ok(render(
        StatusCode::OK,
        &ShowPage {
            r,
            history,
            csrf_token: user.session.csrf_token.clone(),
            error,
        },
    ))
}

/// `GET /staff/registrations/{id}/proof`: the customer's receipt, for staff checking a claim
/// to the unit.
async fn proof(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let r = StaffRegistration::find(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "No such registration",
                "There is no registration with this number.",
            )
        })?;
    drop(conn);
    let res =
        super::register::proof_response(&state, r.proof_file.as_deref(), r.proof_type.as_deref())
            .await?;
    // A receipt carries personal data: who looked at it is in the security log.
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "proof_viewed",
        &format!("registration {}", r.id),
    )
    .await?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
}

async fn decide(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: CsrfForm<DecideForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let approve = match form.form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Ok(see_other(&format!(
                "/staff/registrations/{id}?error=decision"
            )));
        }
    };
    let note = form.form.note.trim().to_owned();
    if (!approve && note.is_empty())
        || note.chars().count() > 200
        || note.chars().any(char::is_control)
    {
        return Ok(see_other(&format!(
            "/staff/registrations/{id}?error=reason"
        )));
    }
    let base = state.config.base_url();
    let mut conn = state.pool.get().await?;
    let decided = crate::db::registrations::decide(
        &mut conn,
        id,
        approve,
        &note,
        user.account.id,
        |request, owner| {
            // A deleted account's retained contact is for safety and recall notices only.
            let owner = owner.filter(|o| !o.contact_retained);
            let mut mails = Vec::new();
            if approve {
                mails.push(messages::transfer_approved(
                    &base,
                    &request.contact_email,
                    &request.product,
                    &request.serial,
                )?);
                if let Some(o) = owner {
                    mails.push(messages::ownership_ended(
                        &o.contact_email,
                        &o.product,
                        &o.serial,
                    )?);
                }
            } else {
                mails.push(messages::transfer_rejected(
                    &base,
                    &request.contact_email,
                    &request.product,
                    &request.serial,
                    &note,
                )?);
                if let Some(o) = owner {
                    mails.push(messages::transfer_refused_owner(
                        &o.contact_email,
                        &o.product,
                        &o.serial,
                    )?);
                }
            }
            Ok(mails)
        },
    )
    .await?;
    drop(conn);
    if !decided {
        return Err(AppError::Conflict(
            "This request was already decided. Reload the list of pending transfers.".into(),
        ));
    }
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        if approve {
            "transfer_approved"
        } else {
            "transfer_rejected"
        },
        &format!("registration {id}: {note}"),
    )
    .await?;
    Ok(see_other(&format!(
        "/staff/registrations?notice={}",
        if approve { "approved" } else { "rejected" }
    )))
}
