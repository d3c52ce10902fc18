//! Administration (`/admin`): people and roles, invitations, the mail outbox, the security log
//! (integration tokens: `tokens_admin`).
//! Guarded in `web::configure`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::account::Field;
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::accounts::{Account, AccountToken, AuditEntry, AuditEvent, TokenPurpose};
use crate::db::outbox::{OutboxCounts, OutboxMail};
use crate::domain::account::{Email, Role};
use crate::mail::messages;
use crate::tokens::{hash_token, new_token};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(home))
        .route("/", web::get().to(home))
        .route("/users", web::get().to(users))
        .route("/users/invite", web::post().to(invite))
        .route("/users/{id}/role", web::post().to(change_role))
        .route("/outbox", web::get().to(outbox))
        .route("/outbox/{id}/retry", web::post().to(retry_mail))
        .route("/audit", web::get().to(audit))
        .configure(super::catalogue::routes)
        .configure(super::recalls_admin::routes)
        .configure(super::recall_reports::routes)
        .configure(super::sales::routes)
        .configure(super::imports::routes)
        .configure(super::genealogy::routes)
        .configure(super::pictures::admin_routes)
        .configure(super::labels::routes)
        .configure(super::counts::routes)
        .configure(super::warranty::routes)
        .configure(super::transfers::admin_routes)
        .configure(super::claim_reports::admin_routes)
        .configure(super::tokens_admin::routes);
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn notice_text(code: Option<&str>) -> Option<String> {
    Some(
        match code? {
            "invited" => "Invitation sent. It appears in the outbox below until it is delivered.",
            "role-changed" => "Role changed.",
            "retried" => "The mail is queued again.",
            _ => return None,
        }
        .to_owned(),
    )
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    notice: Option<String>,
    role: Option<String>,
    status: Option<String>,
    event: Option<String>,
    email: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct AdminHome {
    email: String,
    counts: OutboxCounts,
}

async fn home(user: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let counts = OutboxMail::counts(&mut conn).await?;
    Ok(render(
        StatusCode::OK,
        &AdminHome {
            email: user.account.email.clone(),
            counts,
        },
    ))
}

struct UserRow {
    id: i64,
    email: String,
    role: String,
    verified: bool,
    invited: bool,
    locked: bool,
    since: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    notice: Option<String>,
    error: Option<String>,
    csrf_token: String,
    rows: Vec<UserRow>,
    filter: String,
    invite_email: Field,
    invite_role: String,
    roles: [Role; 3],
}

async fn users_page(
    user: &SignedIn,
    state: &AppState,
    q: &ListQuery,
    status: StatusCode,
    invite_email: Field,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let role = q.role.as_deref().and_then(Role::parse);
    let mut conn = state.pool.get().await?;
    let now = chrono::Utc::now();
    let rows = Account::list(&mut conn, role, 500)
        .await?
        .into_iter()
        .map(|a| UserRow {
            id: a.id,
            verified: a.email_verified_at.is_some(),
            invited: a.password_hash.is_none(),
            locked: a.is_locked(now),
            since: a.created_at.format("%Y-%m-%d").to_string(),
            email: a.email,
            role: a.role,
        })
        .collect();
    Ok(render(
        status,
        &UsersPage {
            notice: notice_text(q.notice.as_deref()),
            error,
            csrf_token: user.session.csrf_token.clone(),
            rows,
            filter: role.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            invite_email,
            invite_role: "staff".into(),
            roles: Role::ALL,
        },
    ))
}

fn invite_field() -> Field {
    Field::new("email", "Email address", "email", "off")
}

async fn users(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    users_page(&user, &state, &q, StatusCode::OK, invite_field(), None).await
}

/// The administrator behind a posted form (the scope guard ran, but the session is re-checked
/// from the form's own load).
pub(super) fn admin_of<T>(f: &CsrfForm<T>) -> Result<SignedIn, AppError> {
    match &f.session.account {
        Some(a) if a.role() == Role::Admin => Ok(SignedIn {
            session: f.session.clone(),
            account: a.clone(),
        }),
        _ => Err(AppError::Forbidden(
            "Only administrators can do this.".into(),
        )),
    }
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

async fn invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let empty = ListQuery::default();
    let role =
        Role::parse(&f.form.role).ok_or_else(|| AppError::BadRequest("Unknown role.".into()))?;
    let email = match Email::parse(&f.form.email) {
        Ok(e) => e,
        Err(e) => {
            let field = invite_field()
                .value(f.form.email.clone())
                .error(Some(e.to_string()));
            return users_page(
                &admin,
                &state,
                &empty,
                StatusCode::UNPROCESSABLE_ENTITY,
                field,
                None,
            )
            .await;
        }
    };
    let base = state.config.base_url();
    let ip = state.limiter.client_ip(&req).map(|i| i.to_string());
    let mut conn = state.pool.get().await?;
    let created = conn
        .transaction::<_, AppError, _>(async |conn| {
            let Some(account) = Account::create(conn, &email, None, role, false).await? else {
                return Ok(false);
            };
            let token = new_token();
            AccountToken::create(
                conn,
                &hash_token(&token),
                account.id,
                TokenPurpose::Invite,
                None,
            )
            .await?;
            OutboxMail::enqueue(
                conn,
                &messages::invite(&base, email.as_str(), role.as_str(), &token)?,
            )
            .await?;
            AuditEntry::record(
                conn,
                AuditEvent {
                    event: "invite_sent",
                    actor_id: Some(admin.account.id),
                    subject_id: Some(account.id),
                    detail: Some(role.as_str()),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
            )
            .await?;
            Ok(true)
        })
        .await?;
    drop(conn);
    if !created {
        let field = invite_field().value(f.form.email.clone())            .error(Some("This address already has an account. Once it is confirmed, change its role in the list below.".into()));
        return users_page(
            &admin,
            &state,
            &empty,
            StatusCode::UNPROCESSABLE_ENTITY,
            field,
            None,
        )
        .await;
    }
    Ok(see_other("/admin/users?notice=invited"))
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

async fn change_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let id = path.into_inner();
    let role =
        Role::parse(&f.form.role).ok_or_else(|| AppError::BadRequest("Unknown role.".into()))?;
    let ip = state.limiter.client_ip(&req).map(|i| i.to_string());
    let mut conn = state.pool.get().await?;
    let target = Account::find(&mut conn, id).await?.ok_or_else(|| {
        AppError::not_found("No such account", "This account does not exist (any more).")
    })?;
    if target.role() == Role::Admin
        && role != Role::Admin
        && Account::count_admins(&mut conn).await? <= 1
    {
        drop(conn);
        let empty = ListQuery::default();
        return users_page(&admin, &state, &empty, StatusCode::CONFLICT, invite_field(), Some("The portal needs at least one administrator: make someone else an administrator first.".into())).await;
    }
    if role > target.role()
        && (target.email_verified_at.is_none() || target.password_hash.is_none())
    {
        drop(conn);
        let empty = ListQuery::default();
        return users_page(
            &admin,
            &state,
            &empty,
            StatusCode::CONFLICT,
            invite_field(),
            Some(format!("{} has not confirmed their email address or set a password yet, so it cannot be given more rights.", target.email)),
        )
        .await;
    }
    if target.role() != role {
        conn.transaction::<_, AppError, _>(async |conn| {
            Account::set_role(conn, id, role).await?;
            // The person signs in again under the new role.
            crate::db::accounts::SessionRow::delete_for_account(conn, id).await?;
            let detail = format!("{} -> {}", target.role, role);
            AuditEntry::record(
                conn,
                AuditEvent {
                    event: "role_changed",
                    actor_id: Some(admin.account.id),
                    subject_id: Some(id),
                    detail: Some(&detail),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    }
    Ok(see_other("/admin/users?notice=role-changed"))
}

struct MailRow {
    id: i64,
    kind: String,
    to: String,
    subject: String,
    status: String,
    attempts: i32,
    created: String,
    sent: String,
    next_attempt: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin/outbox.html")]
struct OutboxPage {
    notice: Option<String>,
    csrf_token: String,
    counts: OutboxCounts,
    filter: String,
    rows: Vec<MailRow>,
}

async fn outbox(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let status = q
        .status
        .as_deref()
        .filter(|s| matches!(*s, "queued" | "sent" | "failed"));
    let mut conn = state.pool.get().await?;
    let counts = OutboxMail::counts(&mut conn).await?;
    let rows = OutboxMail::list(&mut conn, status, 200)
        .await?
        .into_iter()
        .map(|m| MailRow {
            id: m.id,
            kind: m.kind,
            to: m.to_address,
            subject: m.subject,
            attempts: m.attempts,
            created: when(m.created_at),
            sent: m.sent_at.map(when).unwrap_or_default(),
            next_attempt: if m.status == "queued" {
                when(m.next_attempt_at)
            } else {
                String::new()
            },
            error: m.last_error.unwrap_or_default(),
            status: m.status,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &OutboxPage {
            notice: notice_text(q.notice.as_deref()),
            csrf_token: user.session.csrf_token.clone(),
            counts,
            filter: status.unwrap_or("").to_owned(),
            rows,
        },
    ))
}

async fn retry_mail(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<super::account::Empty>,
) -> Result<HttpResponse, AppError> {
    admin_of(&f)?;
    let mut conn = state.pool.get().await?;
    OutboxMail::retry(&mut conn, path.into_inner()).await?;
    Ok(see_other("/admin/outbox?notice=retried"))
}

struct AuditRow {
    at: String,
    event: String,
    actor: String,
    subject: String,
    email: String,
    ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    event: String,
    email: String,
    events: &'static [&'static str],
    rows: Vec<AuditRow>,
}

const AUDIT_EVENTS: &[&str] = &[
    "recall_created",
    "recall_launched",
    "recall_units_exported",
    "proof_viewed",
    "login_success",
    "login_failure",
    "lockout",
    "logout",
    "signup",
    "signup_existing_email",
    "email_verified",
    "password_reset_requested",
    "password_reset",
    "password_changed",
    "email_change_requested",
    "email_changed",
    "signed_out_everywhere",
    "invite_sent",
    "invite_accepted",
    "role_changed",
    "account_deleted",
    "admin_created",
    "model_created",
    "model_updated",
    "lot_created",
    "location_created",
    "units_generated",
    "sale_linked",
    "sale_unlinked",
    "import_started",
    "import_finished",
    "scan_batch_committed",
    "component_installed",
    "component_removed",
    "stock_count_opened",
    "stock_count_scanned",
    "stock_count_reconciled",
    "stock_count_applied",
    "stock_count_cancelled",
    "model_picture_changed",
    "warranty_extended",
    "transfer_approved",
    "transfer_rejected",
    "registrations_exported",
    "claim_service_levels_changed",
    "api_token_created",
    "api_token_revoked",
];

async fn audit(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let event = q.event.as_deref().filter(|e| AUDIT_EVENTS.contains(e));
    let email = q
        .email
        .as_deref()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty());
    let mut conn = state.pool.get().await?;
    // An email filter matches the account with that address as well as entries naming it.
    let account_id = match email.as_deref().and_then(|e| Email::parse(e).ok()) {
        Some(e) => Account::find_by_email(&mut conn, &e).await?.map(|a| a.id),
        None => None,
    };
    let entries = match (account_id, email.as_deref()) {
        (Some(id), _) => AuditEntry::search(&mut conn, event, Some(id), None, 500).await?,
        (None, Some(e)) => AuditEntry::search(&mut conn, event, None, Some(e), 500).await?,
        (None, None) => AuditEntry::search(&mut conn, event, None, None, 500).await?,
    };
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            at: when(e.occurred_at),
            event: e.event,
            actor: e.actor_id.map(|i| format!("#{i}")).unwrap_or_default(),
            subject: e.subject_id.map(|i| format!("#{i}")).unwrap_or_default(),
            email: e.email.unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &AuditPage {
            event: event.unwrap_or("").to_owned(),
            email: email.unwrap_or_default(),
            events: AUDIT_EVENTS,
            rows,
        },
    ))
}
