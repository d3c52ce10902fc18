//! Registrations for staff (`/staff/registrations`): pending ownership transfers to approve or
//! reject (both parties told by mail, neither learns about the other), and registrations of
//! units that were never recorded as sold.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::registrations::StaffRegistration;
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
        .route("/registrations/{id}/decide", web::post().to(decide));
}

#[derive(Template)]
#[template(path = "staff/registrations.html")]
struct ListPage {
    pending: Vec<StaffRegistration>,
    flagged: Vec<StaffRegistration>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
    error: Option<String>,
}

async fn list(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
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
