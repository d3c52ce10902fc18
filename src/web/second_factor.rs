//! Two-step sign-in: setting up an authenticator app (`/account/2fa`), the code asked after
//! the password (`/login/code`), and turning it off. Whose role needs it is
//! `PORTAL_REQUIRE_2FA` (`session::require_role` sends them here first).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::account::{Field, FormPage, current_password_ok, form_user, safe_next};
use super::session::{CsrfForm, Session, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::accounts::{Account, AuditEntry, AuditEvent, SessionRow};
use crate::db::outbox::OutboxMail;
use crate::db::second_factor::{Pending, Purpose, Totp};
use crate::domain::totp;
use crate::mail::messages;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/2fa", web::get().to(page))
        .route("/account/2fa/start", web::post().to(start))
        .route("/account/2fa/enable", web::post().to(enable))
        .route("/account/2fa/disable", web::post().to(disable))
        .route("/login/code", web::get().to(code_page))
        .route("/login/code", web::post().to(code));
}

/// The name authenticator apps show beside the code.
const ISSUER: &str = "Recall Portal";

#[derive(Template)]
#[template(path = "account/second_factor.html")]
struct SetupPage {
    csrf_token: String,
    notice: Option<String>,
    /// Sent here by the role check.
    required: bool,
    /// Whether the role needs it (then it cannot be turned off).
    needed: bool,
    enabled_since: Option<String>,
    /// A secret being set up: its QR code (SVG) and the key to type.
    qr: Option<String>,
    key: Option<String>,
    code: Field,
    password: Field,
    form_error: Option<String>,
}

impl SetupPage {
    fn has_errors(&self) -> bool {
        self.form_error.is_some() || self.code.error.is_some() || self.password.error.is_some()
    }
}

fn code_field(error: Option<String>) -> Field {
    Field::new(
        "code",
        "The 6-digit code your app shows now",
        "text",
        "one-time-code",
    )
    .hint("It changes every 30 seconds.")
    .error(error)
}

fn password_field(error: Option<String>) -> Field {
    Field::new(
        "password",
        "Your current password",
        "password",
        "current-password",
    )
    .error(error)
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
    required: Option<String>,
}

async fn setup_page(
    state: &AppState,
    user: &SignedIn,
    notice: Option<String>,
    required: bool,
    errors: (Option<String>, Option<String>, Option<String>),
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let enabled = Totp::enabled_at(&mut conn, user.account.id).await?;
    let pending = if enabled.is_none() {
        Pending::find(&mut conn, &user.session.token_hash, Purpose::Enrol).await?
    } else {
        None
    };
    drop(conn);
    let secret = pending.and_then(|p| p.secret);
    let qr = match &secret {
        Some(s) => Some(
            super::labels::codes::qr_svg_named(
                &totp::otpauth_uri(ISSUER, &user.account.email, s),
                "QR code for your authenticator app",
            )
            .map_err(|e| AppError::Internal(anyhow::anyhow!("QR code: {e:?}")))?,
        ),
        None => None,
    };
    let (code_error, password_error, form_error) = errors;
    let status = if code_error.is_some() || password_error.is_some() || form_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &SetupPage {
            csrf_token: user.session.csrf_token.clone(),
            notice,
            required,
            needed: state.config.require_2fa.requires(user.account.role()),
            enabled_since: enabled.map(|t| t.format("%-d %B %Y").to_string()),
            key: secret.as_deref().map(|s| totp::grouped(&totp::base32(s))),
            qr,
            code: code_field(code_error),
            password: password_field(password_error),
            form_error,
        },
    ))
}

async fn page(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match q.notice.as_deref() {
        Some("on") => Some("Two-step sign-in is on. From now on you type a code from your app after your password.".to_owned()),
        Some("off") => Some("Two-step sign-in is off.".to_owned()),
        _ => None,
    };
    setup_page(
        &state,
        &user,
        notice,
        q.required.is_some(),
        (None, None, None),
    )
    .await
}

#[derive(Deserialize)]
pub struct Empty {}

async fn start(state: web::Data<AppState>, f: CsrfForm<Empty>) -> Result<HttpResponse, AppError> {
    let user = form_user(&f)?;
    let secret: [u8; totp::SECRET_BYTES] = rand::random();
    let mut conn = state.pool.get().await?;
    if Totp::of(&mut conn, user.account.id).await?.is_some() {
        // On already: a new secret only after turning it off, which takes a code.
        return Ok(see_other("/account/2fa"));
    }
    Pending::start(
        &mut conn,
        &user.session.token_hash,
        user.account.id,
        Purpose::Enrol,
        Some(&secret),
    )
    .await?;
    Ok(see_other("/account/2fa#setup"))
}

#[derive(Deserialize)]
pub struct CodeAndPassword {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

const WRONG_CODE: &str = "That is not the code your app shows now (or it was used already). Type the newest code; if it keeps failing, check that your phone's clock is right.";

async fn enable(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<CodeAndPassword>,
) -> Result<HttpResponse, AppError> {
    let user = form_user(&f)?;
    let mut conn = state.pool.get().await?;
    let pending = Pending::find(&mut conn, &user.session.token_hash, Purpose::Enrol).await?;
    drop(conn);
    let Some(secret) = pending.and_then(|p| p.secret) else {
        let error = "Setting up took too long: start again, it takes a minute.".to_owned();
        return setup_page(&state, &user, None, false, (None, None, Some(error))).await;
    };
    if !current_password_ok(&req, &state, &user.account, &f.form.password).await? {
        let error = Some("That is not your current password.".to_owned());
        return setup_page(&state, &user, None, false, (None, error, None)).await;
    }
    let Some(step) = totp::matching_step(&secret, &f.form.code, Utc::now().timestamp()) else {
        return setup_page(
            &state,
            &user,
            None,
            false,
            (Some(WRONG_CODE.into()), None, None),
        )
        .await;
    };
    let (base, ip) = (state.config.base_url(), super::account::ip(&req, &state));
    let (token, account) = (user.session.token_hash.clone(), user.account.clone());
    let mut conn = state.pool.get().await?;
    // One transaction: the secret, the end of the other sessions, the mail and the audit entry.
    let enabled = conn
        .transaction::<_, AppError, _>(async |conn| {
            Pending::clear(conn, &token).await?;
            if !Totp::enable(conn, account.id, &secret, step).await? {
                return Ok(false);
            }
            // Sessions signed in with the password alone end: from now on each has shown a
            // code, or is this one, which just did (it gets a new id below).
            SessionRow::delete_for_account(conn, account.id).await?;
            tell_and_record(conn, &base, &account, ip.as_deref(), true).await?;
            Ok(true)
        })
        .await?;
    drop(conn);
    if !enabled {
        let error = "Two-step sign-in is already on for your account (set up elsewhere). To use another phone, turn it off first with a code from the first one.".to_owned();
        return setup_page(&state, &user, None, false, (None, None, Some(error))).await;
    }
    Session::start(&req, Some(user.account)).await?;
    Ok(see_other("/account/2fa?notice=on"))
}

/// The owner's mail and the audit entry for switching two-step sign-in `on` or off, inside the
/// change's transaction.
async fn tell_and_record(
    conn: &mut diesel_async::AsyncPgConnection,
    base: &str,
    account: &Account,
    ip: Option<&str>,
    on: bool,
) -> Result<(), AppError> {
    OutboxMail::enqueue(
        conn,
        &messages::second_factor_changed(base, &account.email, Some(on))?,
    )
    .await?;
    AuditEntry::record(
        conn,
        AuditEvent {
            event: if on { "mfa_enabled" } else { "mfa_disabled" },
            actor_id: Some(account.id),
            subject_id: Some(account.id),
            ip,
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<CodeAndPassword>,
) -> Result<HttpResponse, AppError> {
    let user = form_user(&f)?;
    if state.config.require_2fa.requires(user.account.role()) {
        let error = "Your role needs two-step sign-in, so it stays on. Lost your phone? An administrator can reset it (recall-portal admin reset-2fa).".to_owned();
        return setup_page(&state, &user, None, false, (None, None, Some(error))).await;
    }
    let mut conn = state.pool.get().await?;
    let Some(current) = Totp::of(&mut conn, user.account.id).await? else {
        return Ok(see_other("/account/2fa"));
    };
    drop(conn);
    if !current_password_ok(&req, &state, &user.account, &f.form.password).await? {
        let error = Some("That is not your current password.".to_owned());
        return setup_page(&state, &user, None, false, (None, error, None)).await;
    }
    let mut conn = state.pool.get().await?;
    let spent = match totp::matching_step(&current.secret, &f.form.code, Utc::now().timestamp()) {
        Some(step) => Totp::use_step(&mut conn, user.account.id, step).await?,
        None => false,
    };
    if !spent {
        // Counted like a wrong password: a stolen session cannot try the million codes.
        Account::record_failed_login(
            &mut conn,
            user.account.id,
            state.config.lockout_threshold as i32,
            state.config.lockout_minutes as i32,
        )
        .await?;
        drop(conn);
        return setup_page(
            &state,
            &user,
            None,
            false,
            (Some(WRONG_CODE.into()), None, None),
        )
        .await;
    }
    let (base, ip) = (state.config.base_url(), super::account::ip(&req, &state));
    let account = user.account.clone();
    conn.transaction::<_, AppError, _>(async |conn| {
        Totp::disable(conn, account.id).await?;
        tell_and_record(conn, &base, &account, ip.as_deref(), false).await
    })
    .await?;
    Ok(see_other("/account/2fa?notice=off"))
}

// ---- the code after the password ----------------------------------------------------------

#[derive(Deserialize)]
pub struct CodeQuery {
    next: Option<String>,
}

fn code_form(session: &Session, next: Option<&str>, error: Option<String>) -> FormPage {
    FormPage {
        title: "Type your sign-in code".into(),
        intro: vec![
            "Your password is right. Now open your authenticator app and type the code it shows for the Recall Portal.".into(),
        ],
        notice: None,
        form_error: error,
        action: "/login/code".into(),
        csrf_token: session.csrf_token.clone(),
        hidden: next
            .map(|n| vec![("next".to_owned(), n.to_owned())])
            .unwrap_or_default(),
        fields: vec![code_field(None)],
        submit: "Sign in".into(),
        links: vec![("Start again".into(), "/login".into())],
    }
}

/// A sign-in whose code did not come in time (or a page opened without one).
fn code_expired() -> HttpResponse {
    see_other("/login?notice=code-expired")
}

async fn code_page(
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<CodeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    if Pending::find(&mut conn, &session.token_hash, Purpose::SignIn)
        .await?
        .is_none()
    {
        return Ok(code_expired());
    }
    let next = safe_next(q.next.as_deref());
    Ok(render(
        StatusCode::OK,
        &code_form(&session, next.as_deref(), None),
    ))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    next: Option<String>,
}

async fn code(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<CodeForm>,
) -> Result<HttpResponse, AppError> {
    state.auth_limiter.check(&req)?;
    let CsrfForm { session, form } = f;
    let next = safe_next(form.next.as_deref());
    let ip = super::account::ip(&req, &state);
    let mut conn = state.pool.get().await?;
    let Some(pending) = Pending::find(&mut conn, &session.token_hash, Purpose::SignIn).await?
    else {
        return Ok(code_expired());
    };
    let (Some(account), Some(current)) = (
        Account::find(&mut conn, pending.account_id).await?,
        Totp::of(&mut conn, pending.account_id).await?,
    ) else {
        Pending::clear(&mut conn, &session.token_hash).await?;
        return Ok(code_expired());
    };
    let now = Utc::now();
    let spent = match totp::matching_step(&current.secret, &form.code, now.timestamp()) {
        Some(step) if !account.is_locked(now) => {
            Totp::use_step(&mut conn, account.id, step).await?
        }
        _ => false,
    };
    if spent && Account::record_login(&mut conn, account.id).await? {
        // A new session id now that the person is known: the waiting one is thrown away.
        SessionRow::delete(&mut conn, &session.token_hash).await?;
        AuditEntry::record(
            &mut conn,
            AuditEvent {
                event: "login_success",
                actor_id: Some(account.id),
                subject_id: Some(account.id),
                ip: ip.as_deref(),
                detail: Some("with a code"),
                ..Default::default()
            },
        )
        .await?;
        drop(conn);
        let home = super::account::home_of(account.role());
        Session::start(&req, Some(account)).await?;
        return Ok(see_other(next.as_deref().unwrap_or(home)));
    }
    // A wrong code counts like a wrong password: five lock the account for a while, so the
    // million codes cannot be tried.
    let locked = !account.is_locked(now)
        && Account::record_failed_login(
            &mut conn,
            account.id,
            state.config.lockout_threshold as i32,
            state.config.lockout_minutes as i32,
        )
        .await?;
    AuditEntry::record(
        &mut conn,
        AuditEvent {
            event: if locked { "lockout" } else { "login_failure" },
            subject_id: Some(account.id),
            ip: ip.as_deref(),
            detail: Some("wrong code"),
            ..Default::default()
        },
    )
    .await?;
    if locked || account.is_locked(now) {
        Pending::clear(&mut conn, &session.token_hash).await?;
        return Ok(see_other("/login?notice=locked"));
    }
    Ok(render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &code_form(&session, next.as_deref(), Some(WRONG_CODE.into())),
    ))
}
