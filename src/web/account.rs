//! Customer accounts: sign up, confirm email, sign in and out, forgotten password, settings
//! (password, email, sessions), data export, deletion, and accepting an invitation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::session::{CsrfForm, Session, SignedIn};
use super::{AppError, AppState, capitalise, render, see_other};
use crate::db::accounts::{
    Account, AccountToken, AuditEntry, AuditEvent, SessionRow, TokenPurpose,
};
use crate::db::outbox::OutboxMail;
use crate::domain::account::{Email, Role, check_password};
use crate::mail::{Mail, messages};
use crate::passwords;
use crate::tokens::{hash_token, new_token};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/signup", web::get().to(signup_page))
        .route("/signup", web::post().to(signup))
        .route("/signup/sent", web::get().to(signup_sent))
        .route("/password/forgot", web::get().to(forgot_page))
        .route("/password/forgot", web::post().to(forgot))
        .route("/password/forgot/sent", web::get().to(forgot_sent))
        .route("/password/reset", web::get().to(reset_page))
        .route("/password/reset", web::post().to(reset))
        .route("/account", web::get().to(settings_page))
        .route("/account/verify", web::get().to(verify_page))
        .route("/account/verify", web::post().to(verify))
        .route(
            "/account/verify/resend",
            web::post().to(resend_verification),
        )
        .route("/account/password", web::post().to(change_password))
        .route("/account/email", web::post().to(change_email))
        .route("/account/email/confirm", web::get().to(confirm_email_page))
        .route("/account/email/confirm", web::post().to(confirm_email))
        .route(
            "/account/sessions/revoke",
            web::post().to(sign_out_everywhere),
        )
        .route("/account/export", web::get().to(export))
        .route("/account/delete", web::post().to(delete_account))
        .route("/invite/accept", web::get().to(invite_page))
        .route("/invite/accept", web::post().to(accept_invite));
}

/// One input of a form page.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub autocomplete: &'static str,
    pub hint: Option<String>,
    pub error: Option<String>,
    pub autofocus: bool,
    pub required: bool,
}

impl Field {
    pub fn new(
        name: &'static str,
        label: &'static str,
        kind: &'static str,
        autocomplete: &'static str,
    ) -> Self {
        Field {
            name,
            label,
            kind,
            value: String::new(),
            autocomplete,
            hint: None,
            error: None,
            autofocus: false,
            required: true,
        }
    }
    pub fn value(mut self, v: impl Into<String>) -> Self {
        self.value = v.into();
        self
    }
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
    pub fn error(mut self, e: Option<String>) -> Self {
        self.autofocus = e.is_some();
        self.error = e;
        self
    }
}

/// A page with one form: sign in, sign up, reset, confirm a link, accept an invitation.
#[derive(Template)]
#[template(path = "account/form.html")]
pub struct FormPage {
    pub title: String,
    pub intro: Vec<String>,
    pub notice: Option<String>,
    pub form_error: Option<String>,
    pub action: String,
    pub csrf_token: String,
    pub hidden: Vec<(String, String)>,
    pub fields: Vec<Field>,
    pub submit: String,
    pub links: Vec<(String, String)>,
}

impl FormPage {
    fn has_errors(&self) -> bool {
        self.form_error.is_some() || self.fields.iter().any(|f| f.error.is_some())
    }
}

#[derive(Template)]
#[template(path = "account/message.html")]
pub struct MessagePage {
    pub title: String,
    pub paragraphs: Vec<String>,
    pub link: Option<(String, String)>,
}

fn message(
    status: StatusCode,
    title: &str,
    paragraphs: &[&str],
    link: Option<(&str, &str)>,
) -> HttpResponse {
    render(
        status,
        &MessagePage {
            title: title.to_owned(),
            paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
            link: link.map(|(a, b)| (a.to_owned(), b.to_owned())),
        },
    )
}

fn expired_link() -> HttpResponse {
    message(
        StatusCode::GONE,
        "This link has expired or was already used",
        &[
            "Links in our mails work once, and only for a limited time. Ask for a new one and use the newest mail.",
        ],
        Some(("Go to sign in", "/login")),
    )
}

/// Fixed messages for `?notice=` after a redirect (codes, never free text from the address).
fn notice_text(code: Option<&str>) -> Option<String> {
    Some(
        match code? {
            "signed-out" => "You are signed out.",
            "signed-out-everywhere" => "You are signed out on every device.",
            "verified" => "Your email address is confirmed. Sign in to continue.",
            "password-reset" => "Your password is changed. Sign in with the new one.",
            "password-changed" => "Your password is changed. Every other device has been signed out.",
            "email-sent" => "We sent a confirmation link to your new address. Your email changes when you follow it.",
            "email-changed" => "Your email address is changed.",
            "verification-sent" => "We sent you a new confirmation link.",
            "deleted" => "Your account is deleted.",
            "invite-accepted" => "Your password is set. Sign in to continue.",
            "code-expired" => "The sign-in code was not typed in time. Sign in again.",
            "locked" => "Too many wrong codes: the account is locked for a while. Try again later.",
            _ => return None,
        }
        .to_owned(),
    )
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
    next: Option<String>,
    token: Option<String>,
}

/// A return path that stays on this site: a local absolute path, nothing else.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let n = next?.trim();
    let local = n.starts_with('/')
        && !n.starts_with("//")
        && !n.starts_with("/\\")
        && !n.chars().any(|c| c.is_control() || c == '\\');
    (local && n.len() <= 500).then(|| n.to_owned())
}

/// Where a sign-in without a return path lands: the person's own area.
pub(super) fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Staff => "/staff",
        Role::Customer => "/account",
    }
}

/// `path` with `?next=` when there is a return path.
fn with_next(path: &str, next: Option<&str>) -> String {
    match next {
        Some(n) => format!("{path}?next={}", super::encode_query(n)),
        None => path.to_owned(),
    }
}

pub(super) fn ip(req: &HttpRequest, state: &AppState) -> Option<String> {
    state.limiter.client_ip(req).map(|i| i.to_string())
}

async fn audit(state: &AppState, e: AuditEvent<'_>) -> Result<(), AppError> {
    let mut conn = state.pool.get().await?;
    AuditEntry::record(&mut conn, e).await?;
    Ok(())
}

// ---- sign in / out ----------------------------------------------------------------------

fn login_form(
    session: &Session,
    email: &str,
    next: Option<&str>,
    notice: Option<String>,
    error: Option<String>,
) -> FormPage {
    FormPage {
        title: "Sign in".into(),
        intro: vec![],
        notice,
        form_error: error.clone(),
        action: "/login".into(),
        csrf_token: session.csrf_token.clone(),
        hidden: next
            .map(|n| vec![("next".to_owned(), n.to_owned())])
            .unwrap_or_default(),
        fields: vec![
            Field::new("email", "Email address", "email", "username").value(email),
            Field::new("password", "Password", "password", "current-password"),
        ],
        submit: "Sign in".into(),
        links: vec![
            ("Forgotten your password?".into(), "/password/forgot".into()),
            ("Create an account".into(), with_next("/signup", next)),
        ],
    }
}

async fn login_page(session: Session, q: web::Query<NoticeQuery>) -> HttpResponse {
    let next = safe_next(q.next.as_deref());
    render(
        StatusCode::OK,
        &login_form(
            &session,
            "",
            next.as_deref(),
            notice_text(q.notice.as_deref()),
            None,
        ),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

const LOGIN_FAILED: &str = "That email address and password do not match an account, or the account is locked for a while after too many attempts. Check them and try again, or reset your password.";

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    state.auth_limiter.check(&req)?;
    let CsrfForm { session, form } = f;
    let next = safe_next(form.next.as_deref());
    let ip = ip(&req, &state);
    let email = Email::parse(&form.email).ok();
    let account = match &email {
        Some(e) => {
            let mut conn = state.pool.get().await?;
            Account::find_by_email(&mut conn, e).await?
        }
        None => None,
    };
    // Always one argon2 verification, against a dummy hash when there is no account, so the
    // answer takes as long whether or not the email exists.
    let password_ok = passwords::verify(
        form.password.clone(),
        account.as_ref().and_then(|a| a.password_hash.clone()),
    )
    .await;
    let now = Utc::now();
    match account {
        Some(a) if password_ok && !a.is_locked(now) && a.email_verified_at.is_none() => {
            // Only someone who knows the password learns that the address is unconfirmed.
            let base = state.config.base_url();
            let mut conn = state.pool.get().await?;
            conn.transaction::<_, AppError, _>(async |conn| {
                let token = new_token();
                AccountToken::create(
                    conn,
                    &hash_token(&token),
                    a.id,
                    TokenPurpose::VerifyEmail,
                    None,
                )
                .await?;
                OutboxMail::enqueue(
                    conn,
                    &messages::verify_email(&base, &a.email, &token, next.as_deref())?,
                )
                .await?;
                Ok(())
            })
            .await?;
            let message = "Confirm your email address first: we have sent a new link to it. Follow the link, then sign in.";
            Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &login_form(
                    &session,
                    &form.email,
                    next.as_deref(),
                    None,
                    Some(message.into()),
                ),
            ))
        }
        Some(a)
            if password_ok && !a.is_locked(now) && {
                let mut conn = state.pool.get().await?;
                crate::db::second_factor::Totp::of(&mut conn, a.id)
                    .await?
                    .is_some()
            } =>
        {
            // The password is right; the code comes next, on a new anonymous session that
            // remembers whose code it waits for (and nothing else) for a few minutes.
            let mut conn = state.pool.get().await?;
            SessionRow::delete(&mut conn, &session.token_hash).await?;
            drop(conn);
            let waiting = Session::start(&req, None).await?;
            let mut conn = state.pool.get().await?;
            crate::db::second_factor::Pending::start(
                &mut conn,
                &waiting.token_hash,
                a.id,
                crate::db::second_factor::Purpose::SignIn,
                None,
            )
            .await?;
            Ok(see_other(&with_next("/login/code", next.as_deref())))
        }
        Some(a)
            if password_ok && !a.is_locked(now) && {
                // The lock is decided in the database at this moment, not from the read above, so
                // parallel guesses cannot slip past a lock set by their siblings.
                let mut conn = state.pool.get().await?;
                Account::record_login(&mut conn, a.id).await?
            } =>
        {
            {
                let mut conn = state.pool.get().await?;
                // A new session id at sign-in: the anonymous session is thrown away.
                SessionRow::delete(&mut conn, &session.token_hash).await?;
                AuditEntry::record(
                    &mut conn,
                    AuditEvent {
                        event: "login_success",
                        actor_id: Some(a.id),
                        subject_id: Some(a.id),
                        ip: ip.as_deref(),
                        ..Default::default()
                    },
                )
                .await?;
            }
            let home = home_of(a.role());
            Session::start(&req, Some(a)).await?;
            Ok(see_other(next.as_deref().unwrap_or(home)))
        }
        found => {
            let mut conn = state.pool.get().await?;
            if let Some(a) = &found
                && !a.is_locked(now)
            {
                let locked = Account::record_failed_login(
                    &mut conn,
                    a.id,
                    state.config.lockout_threshold as i32,
                    state.config.lockout_minutes as i32,
                )
                .await?;
                if locked {
                    AuditEntry::record(
                        &mut conn,
                        AuditEvent {
                            event: "lockout",
                            subject_id: Some(a.id),
                            ip: ip.as_deref(),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
            }
            let detail = match &found {
                None => Some("unknown email"),
                Some(a) if a.is_locked(now) => Some("account locked"),
                Some(_) => Some("wrong password"),
            };
            AuditEntry::record(
                &mut conn,
                AuditEvent {
                    event: "login_failure",
                    subject_id: found.as_ref().map(|a| a.id),
                    email: Some(&form.email.trim().to_lowercase()),
                    ip: ip.as_deref(),
                    detail,
                    ..Default::default()
                },
            )
            .await?;
            Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &login_form(
                    &session,
                    &form.email,
                    next.as_deref(),
                    None,
                    Some(LOGIN_FAILED.into()),
                ),
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    if let Some(id) = f.session.account_id() {
        audit(
            &state,
            AuditEvent {
                event: "logout",
                actor_id: Some(id),
                subject_id: Some(id),
                ip: ip(&req, &state).as_deref(),
                ..Default::default()
            },
        )
        .await?;
    }
    f.session.end(&req).await?;
    Ok(see_other("/login?notice=signed-out"))
}

// ---- sign up and confirm ------------------------------------------------------------------

fn signup_form(
    session: &Session,
    email: &str,
    email_error: Option<String>,
    password_error: Option<String>,
    next: Option<&str>,
) -> FormPage {
    FormPage {
        title: "Create an account".into(),
        intro: vec![
            "With an account you can register your products, so we can tell you directly about a safety recall, and claim warranty.".into(),
        ],
        notice: None,
        form_error: None,
        action: "/signup".into(),
        csrf_token: session.csrf_token.clone(),
        hidden: next
            .map(|n| vec![("next".to_owned(), n.to_owned())])
            .unwrap_or_default(),
        fields: vec![
            Field::new("email", "Email address", "email", "email").value(email).error(email_error),
            Field::new("password", "Choose a password", "password", "new-password")
                .hint("At least 12 characters. A few unrelated words make a strong password that is easy to remember.")
                .error(password_error),
        ],
        submit: "Create account".into(),
        links: vec![(
            "Already have an account? Sign in".into(),
            with_next("/login", next),
        )],
    }
}

async fn signup_page(session: Session, q: web::Query<NoticeQuery>) -> HttpResponse {
    let next = safe_next(q.next.as_deref());
    render(
        StatusCode::OK,
        &signup_form(&session, "", None, None, next.as_deref()),
    )
}

#[derive(Deserialize)]
pub struct SignupForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<SignupForm>,
) -> Result<HttpResponse, AppError> {
    state.auth_limiter.check(&req)?;
    let CsrfForm { session, form } = f;
    let next = safe_next(form.next.as_deref());
    let email = match Email::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &signup_form(
                    &session,
                    &form.email,
                    Some(capitalise(&e.to_string())),
                    None,
                    next.as_deref(),
                ),
            ));
        }
    };
    if let Err(why) = check_password(&form.password, &[email.as_str()]) {
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &signup_form(&session, &form.email, None, Some(why), next.as_deref()),
        ));
    }
    // Hashed whether or not the address is taken, so both answers take as long.
    let hash = passwords::hash(form.password.clone()).await?;
    let base = state.config.base_url();
    let ip = ip(&req, &state);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        match Account::create(conn, &email, Some(&hash), Role::Customer, false).await? {
            Some(account) => {
                super::register::draft_meant_for(conn, next.as_deref(), account.id).await?;
                let token = new_token();
                AccountToken::create(
                    conn,
                    &hash_token(&token),
                    account.id,
                    TokenPurpose::VerifyEmail,
                    None,
                )
                .await?;
                OutboxMail::enqueue(
                    conn,
                    &messages::verify_email(&base, email.as_str(), &token, next.as_deref())?,
                )
                .await?;
                AuditEntry::record(
                    conn,
                    AuditEvent {
                        event: "signup",
                        actor_id: Some(account.id),
                        subject_id: Some(account.id),
                        ip: ip.as_deref(),
                        ..Default::default()
                    },
                )
                .await?;
            }
            None => {
                // The owner of the address may finish a registration typed before signing in.
                if let Some(existing) = Account::find_by_email(conn, &email).await? {
                    super::register::draft_meant_for(conn, next.as_deref(), existing.id).await?;
                }
                OutboxMail::enqueue(
                    conn,
                    &messages::signup_existing(&base, email.as_str(), next.as_deref())?,
                )
                .await?;
                AuditEntry::record(
                    conn,
                    AuditEvent {
                        event: "signup_existing_email",
                        email: Some(email.as_str()),
                        ip: ip.as_deref(),
                        ..Default::default()
                    },
                )
                .await?;
            }
        }
        Ok(())
    })
    .await?;
    Ok(see_other(&with_next("/signup/sent", next.as_deref())))
}

async fn signup_sent(q: web::Query<NoticeQuery>) -> HttpResponse {
    let next = safe_next(q.next.as_deref());
    let waiting = next
        .as_deref()
        .and_then(super::register::draft_in)
        .is_some();
    let mut paragraphs = vec![
        "We sent a message to the address you gave. Follow the link in it to confirm your address, then sign in.",
    ];
    if waiting {
        paragraphs.push("Your product registration is kept: after signing in you confirm it with one click, on this device or on the one where you open the mail.");
    }
    paragraphs.push("Nothing there after a few minutes? Look in your spam folder, or sign up again to get a new mail.");
    let login = with_next("/login", next.as_deref());
    message(
        StatusCode::OK,
        "Check your email",
        &paragraphs,
        Some(("Go to sign in", &login)),
    )
}

/// A page with one button that confirms a link from a mail. Following the link does not change
/// anything by itself: mail scanners open links too.
fn confirm_form(
    session: &Session,
    title: &str,
    intro: &str,
    action: &str,
    token: &str,
    submit: &str,
) -> FormPage {
    FormPage {
        title: title.into(),
        intro: vec![intro.into()],
        notice: None,
        form_error: None,
        action: action.into(),
        csrf_token: session.csrf_token.clone(),
        hidden: vec![("token".into(), token.into())],
        fields: vec![],
        submit: submit.into(),
        links: vec![],
    }
}

async fn token_valid(
    state: &AppState,
    token: Option<&str>,
    purpose: TokenPurpose,
) -> Result<Option<(String, AccountToken)>, AppError> {
    let Some(token) = token.filter(|t| t.len() == 43) else {
        return Ok(None);
    };
    let mut conn = state.pool.get().await?;
    Ok(AccountToken::peek(&mut conn, &hash_token(token), purpose)
        .await?
        .map(|t| (token.to_owned(), t)))
}

async fn verify_page(
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    match token_valid(&state, q.token.as_deref(), TokenPurpose::VerifyEmail).await? {
        Some((token, _)) => {
            let mut page = confirm_form(
                &session,
                "Confirm your email address",
                "One click and your address is confirmed.",
                "/account/verify",
                &token,
                "Confirm my email address",
            );
            if let Some(next) = safe_next(q.next.as_deref()) {
                page.hidden.push(("next".into(), next));
            }
            Ok(render(StatusCode::OK, &page))
        }
        None => Ok(expired_link()),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
    next: Option<String>,
}

async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<TokenForm>,
) -> Result<HttpResponse, AppError> {
    let ip = ip(&req, &state);
    let mut conn = state.pool.get().await?;
    let done = conn
        .transaction::<_, AppError, _>(async |conn| {
            let Some(t) =
                AccountToken::consume(conn, &hash_token(&f.form.token), TokenPurpose::VerifyEmail)
                    .await?
            else {
                return Ok(false);
            };
            Account::mark_verified(conn, t.account_id).await?;
            AuditEntry::record(
                conn,
                AuditEvent {
                    event: "email_verified",
                    subject_id: Some(t.account_id),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
            )
            .await?;
            Ok(true)
        })
        .await?;
    if !done {
        return Ok(expired_link());
    }
    let next = safe_next(f.form.next.as_deref());
    Ok(see_other(&match (f.session.account.is_some(), next) {
        (true, Some(next)) => next,
        (true, None) => "/account?notice=verified".to_owned(),
        (false, Some(next)) => {
            format!("/login?notice=verified&next={}", super::encode_query(&next))
        }
        (false, None) => "/login?notice=verified".to_owned(),
    }))
}

async fn resend_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    state.auth_limiter.check(&req)?;
    let account = f
        .session
        .account
        .clone()
        .ok_or_else(|| AppError::SignInRequired("/account".into()))?;
    if account.email_verified_at.is_none() {
        let base = state.config.base_url();
        let mut conn = state.pool.get().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let token = new_token();
            AccountToken::create(
                conn,
                &hash_token(&token),
                account.id,
                TokenPurpose::VerifyEmail,
                None,
            )
            .await?;
            OutboxMail::enqueue(
                conn,
                &messages::verify_email(&base, &account.email, &token, None)?,
            )
            .await?;
            Ok(())
        })
        .await?;
    }
    Ok(see_other("/account?notice=verification-sent"))
}

// ---- forgotten password ----------------------------------------------------------------

fn forgot_form(session: &Session, email: &str, error: Option<String>) -> FormPage {
    FormPage {
        title: "Reset your password".into(),
        intro: vec!["Enter the email address of your account. We will send you a link to choose a new password.".into()],
        notice: None,
        form_error: None,
        action: "/password/forgot".into(),
        csrf_token: session.csrf_token.clone(),
        hidden: vec![],
        fields: vec![Field::new("email", "Email address", "email", "username").value(email).error(error)],
        submit: "Send reset link".into(),
        links: vec![("Back to sign in".into(), "/login".into())],
    }
}

async fn forgot_page(session: Session) -> HttpResponse {
    render(StatusCode::OK, &forgot_form(&session, "", None))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    state.auth_limiter.check(&req)?;
    let email = match Email::parse(&f.form.email) {
        Ok(e) => e,
        Err(e) => {
            return Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &forgot_form(&f.session, &f.form.email, Some(capitalise(&e.to_string()))),
            ));
        }
    };
    let base = state.config.base_url();
    let ip = ip(&req, &state);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        if let Some(account) = Account::find_by_email(conn, &email).await? {
            let token = new_token();
            AccountToken::create(
                conn,
                &hash_token(&token),
                account.id,
                TokenPurpose::ResetPassword,
                None,
            )
            .await?;
            OutboxMail::enqueue(
                conn,
                &messages::reset_password(&base, &account.email, &token)?,
            )
            .await?;
            AuditEntry::record(
                conn,
                AuditEvent {
                    event: "password_reset_requested",
                    subject_id: Some(account.id),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    // The same answer whether or not the address has an account.
    Ok(see_other("/password/forgot/sent"))
}

async fn forgot_sent() -> HttpResponse {
    message(
        StatusCode::OK,
        "Check your email",
        &[
            "If an account uses the address you gave, we sent it a link to choose a new password. The link works once and for one hour.",
        ],
        Some(("Back to sign in", "/login")),
    )
}

fn new_password_form(
    session: &Session,
    title: &str,
    action: &str,
    token: &str,
    error: Option<String>,
    submit: &str,
) -> FormPage {
    FormPage {
        title: title.into(),
        intro: vec![],
        notice: None,
        form_error: None,
        action: action.into(),
        csrf_token: session.csrf_token.clone(),
        hidden: vec![("token".into(), token.into())],
        fields: vec![
            Field::new("password", "New password", "password", "new-password")
                .hint("At least 12 characters. A few unrelated words make a strong password that is easy to remember.")
                .error(error),
        ],
        submit: submit.into(),
        links: vec![],
    }
}

async fn reset_page(
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    match token_valid(&state, q.token.as_deref(), TokenPurpose::ResetPassword).await? {
        Some((token, _)) => Ok(render(
            StatusCode::OK,
            &new_password_form(
                &session,
                "Choose a new password",
                "/password/reset",
                &token,
                None,
                "Set new password",
            ),
        )),
        None => Ok(expired_link()),
    }
}

#[derive(Deserialize)]
pub struct NewPasswordForm {
    token: String,
    password: String,
}

/// Sets a password through a mailed token (reset or invitation): the strength is checked before
/// the token is used, so a refused password does not burn the link.
async fn set_password_with_token(
    req: &HttpRequest,
    state: &AppState,
    f: &CsrfForm<NewPasswordForm>,
    purpose: TokenPurpose,
) -> Result<Result<(), Option<String>>, AppError> {
    let Some((_, peeked)) = token_valid(state, Some(&f.form.token), purpose).await? else {
        return Ok(Err(None));
    };
    let email = {
        let mut conn = state.pool.get().await?;
        Account::find(&mut conn, peeked.account_id)
            .await?
            .map(|a| a.email)
    };
    let Some(email) = email else {
        return Ok(Err(None));
    };
    if let Err(why) = check_password(&f.form.password, &[&email]) {
        return Ok(Err(Some(why)));
    }
    let hash = passwords::hash(f.form.password.clone()).await?;
    let base = state.config.base_url();
    let ip = ip(req, state);
    let mut conn = state.pool.get().await?;
    let done = conn
        .transaction::<_, AppError, _>(async |conn| {
            let Some(t) = AccountToken::consume(conn, &hash_token(&f.form.token), purpose).await?
            else {
                return Ok(false);
            };
            Account::set_password(conn, t.account_id, &hash).await?;
            SessionRow::delete_for_account(conn, t.account_id).await?;
            AccountToken::revoke_all(conn, t.account_id).await?;
            let event = if purpose == TokenPurpose::Invite {
                Account::mark_verified(conn, t.account_id).await?;
                "invite_accepted"
            } else {
                OutboxMail::enqueue(conn, &messages::password_changed(&base, &email)?).await?;
                "password_reset"
            };
            AuditEntry::record(
                conn,
                AuditEvent {
                    event,
                    subject_id: Some(t.account_id),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
            )
            .await?;
            Ok(true)
        })
        .await?;
    Ok(if done { Ok(()) } else { Err(None) })
}

async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<NewPasswordForm>,
) -> Result<HttpResponse, AppError> {
    state.auth_limiter.check(&req)?;
    match set_password_with_token(&req, &state, &f, TokenPurpose::ResetPassword).await? {
        Ok(()) => Ok(see_other("/login?notice=password-reset")),
        Err(None) => Ok(expired_link()),
        Err(Some(why)) => Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &new_password_form(
                &f.session,
                "Choose a new password",
                "/password/reset",
                &f.form.token,
                Some(why),
                "Set new password",
            ),
        )),
    }
}

async fn invite_page(
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    match token_valid(&state, q.token.as_deref(), TokenPurpose::Invite).await? {
        Some((token, _)) => Ok(render(
            StatusCode::OK,
            &new_password_form(
                &session,
                "Accept your invitation",
                "/invite/accept",
                &token,
                None,
                "Set password",
            ),
        )),
        None => Ok(expired_link()),
    }
}

async fn accept_invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<NewPasswordForm>,
) -> Result<HttpResponse, AppError> {
    match set_password_with_token(&req, &state, &f, TokenPurpose::Invite).await? {
        Ok(()) => Ok(see_other("/login?notice=invite-accepted")),
        Err(None) => Ok(expired_link()),
        Err(Some(why)) => Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &new_password_form(
                &f.session,
                "Accept your invitation",
                "/invite/accept",
                &f.form.token,
                Some(why),
                "Set password",
            ),
        )),
    }
}

// ---- settings --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "account/settings.html")]
pub struct SettingsPage {
    email: String,
    verified: bool,
    role: String,
    since: String,
    notice: Option<String>,
    csrf_token: String,
    pw_current: Field,
    pw_new: Field,
    email_new: Field,
    email_current: Field,
    delete_current: Field,
}

impl SettingsPage {
    fn new(user: &SignedIn, notice: Option<String>) -> Self {
        let a = &user.account;
        SettingsPage {
            email: a.email.clone(),
            verified: a.email_verified_at.is_some(),
            role: a.role.clone(),
            since: super::views::long_date(a.created_at.date_naive()),
            notice,
            csrf_token: user.session.csrf_token.clone(),
            pw_current: Field::new(
                "current_password",
                "Current password",
                "password",
                "current-password",
            ),
            pw_new: Field::new("new_password", "New password", "password", "new-password")
                .hint("At least 12 characters."),
            email_new: Field::new("new_email", "New email address", "email", "email"),
            email_current: Field::new(
                "email_password",
                "Current password",
                "password",
                "current-password",
            ),
            delete_current: Field::new(
                "delete_password",
                "Current password",
                "password",
                "current-password",
            ),
        }
    }

    fn has_errors(&self) -> bool {
        [
            &self.pw_current,
            &self.pw_new,
            &self.email_new,
            &self.email_current,
            &self.delete_current,
        ]
        .iter()
        .any(|f| f.error.is_some())
    }
}

async fn settings_page(user: SignedIn, q: web::Query<NoticeQuery>) -> HttpResponse {
    render(
        StatusCode::OK,
        &SettingsPage::new(&user, notice_text(q.notice.as_deref())),
    )
}

/// Checks the current password for a sensitive change. Limited per IP like sign-in, and a wrong
/// password counts towards the account's lockout, so a stolen session cannot guess it.
pub(super) async fn current_password_ok(
    req: &HttpRequest,
    state: &AppState,
    account: &Account,
    password: &str,
) -> Result<bool, AppError> {
    state.auth_limiter.check(req)?;
    if account.is_locked(Utc::now()) {
        return Ok(false);
    }
    if passwords::verify(password.to_owned(), account.password_hash.clone()).await {
        return Ok(true);
    }
    let mut conn = state.pool.get().await?;
    Account::record_failed_login(
        &mut conn,
        account.id,
        state.config.lockout_threshold as i32,
        state.config.lockout_minutes as i32,
    )
    .await?;
    Ok(false)
}

/// The signed-in user behind a posted form (a form posted after sign-out goes to sign in).
pub(super) fn form_user<T>(f: &CsrfForm<T>) -> Result<SignedIn, AppError> {
    match &f.session.account {
        Some(a) => Ok(SignedIn {
            session: f.session.clone(),
            account: a.clone(),
        }),
        None => Err(AppError::SignInRequired("/account".into())),
    }
}

#[derive(Deserialize)]
pub struct ChangePasswordForm {
    current_password: String,
    new_password: String,
}

async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<ChangePasswordForm>,
) -> Result<HttpResponse, AppError> {
    let user = form_user(&f)?;
    let a = &user.account;
    let refuse = |field: &str, why: String| {
        let mut page = SettingsPage::new(&user, None);
        if field == "current" {
            page.pw_current = page.pw_current.clone().error(Some(why));
        } else {
            page.pw_new = page.pw_new.clone().error(Some(why));
        }
        render(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    if !current_password_ok(&req, &state, a, &f.form.current_password).await? {
        return Ok(refuse(
            "current",
            "That is not your current password.".into(),
        ));
    }
    if let Err(why) = check_password(&f.form.new_password, &[&a.email]) {
        return Ok(refuse("new", why));
    }
    let hash = passwords::hash(f.form.new_password.clone()).await?;
    let base = state.config.base_url();
    let ip = ip(&req, &state);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        Account::set_password(conn, a.id, &hash).await?;
        // Every session ends, this one included (a fresh one is started below), and every link
        // mailed before stops working.
        SessionRow::delete_for_account(conn, a.id).await?;
        AccountToken::revoke_all(conn, a.id).await?;
        OutboxMail::enqueue(conn, &messages::password_changed(&base, &a.email)?).await?;
        AuditEntry::record(
            conn,
            AuditEvent {
                event: "password_changed",
                actor_id: Some(a.id),
                subject_id: Some(a.id),
                ip: ip.as_deref(),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    })
    .await?;
    drop(conn);
    Session::start(&req, Some(a.clone())).await?;
    Ok(see_other("/account?notice=password-changed"))
}

#[derive(Deserialize)]
pub struct ChangeEmailForm {
    new_email: String,
    email_password: String,
}

async fn change_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<ChangeEmailForm>,
) -> Result<HttpResponse, AppError> {
    let user = form_user(&f)?;
    let a = &user.account;
    let refuse = |field: &str, why: String| {
        let mut page = SettingsPage::new(&user, None);
        page.email_new = page.email_new.clone().value(f.form.new_email.clone());
        if field == "current" {
            page.email_current = page.email_current.clone().error(Some(why));
        } else {
            page.email_new = page.email_new.clone().error(Some(why));
        }
        render(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let new_email = match Email::parse(&f.form.new_email) {
        Ok(e) if e.as_str() == a.email => {
            return Ok(refuse("new", "That is already your email address.".into()));
        }
        Ok(e) => e,
        Err(e) => return Ok(refuse("new", capitalise(&e.to_string()))),
    };
    if !current_password_ok(&req, &state, a, &f.form.email_password).await? {
        return Ok(refuse(
            "current",
            "That is not your current password.".into(),
        ));
    }
    let base = state.config.base_url();
    let ip = ip(&req, &state);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let token = new_token();
        AccountToken::create(
            conn,
            &hash_token(&token),
            a.id,
            TokenPurpose::ChangeEmail,
            Some(new_email.as_str()),
        )
        .await?;
        OutboxMail::enqueue(
            conn,
            &messages::confirm_new_email(&base, new_email.as_str(), &token)?,
        )
        .await?;
        OutboxMail::enqueue(
            conn,
            &messages::email_change_requested(&a.email, new_email.as_str())?,
        )
        .await?;
        AuditEntry::record(
            conn,
            AuditEvent {
                event: "email_change_requested",
                actor_id: Some(a.id),
                subject_id: Some(a.id),
                email: Some(new_email.as_str()),
                ip: ip.as_deref(),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(see_other("/account?notice=email-sent"))
}

async fn confirm_email_page(
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    match token_valid(&state, q.token.as_deref(), TokenPurpose::ChangeEmail).await? {
        Some((token, t)) => Ok(render(
            StatusCode::OK,
            &confirm_form(
                &session,
                "Confirm your new email address",
                &format!(
                    "Your account will use {} from now on.",
                    t.new_email.unwrap_or_default()
                ),
                "/account/email/confirm",
                &token,
                "Confirm the new address",
            ),
        )),
        None => Ok(expired_link()),
    }
}

async fn confirm_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<TokenForm>,
) -> Result<HttpResponse, AppError> {
    let ip = ip(&req, &state);
    let mut conn = state.pool.get().await?;
    let outcome = conn
        .transaction::<_, AppError, _>(async |conn| {
            let Some(t) =
                AccountToken::consume(conn, &hash_token(&f.form.token), TokenPurpose::ChangeEmail)
                    .await?
            else {
                return Ok(None);
            };
            let Some(email) = t.new_email.as_deref().and_then(|e| Email::parse(e).ok()) else {
                return Ok(None);
            };
            let changed = Account::set_email(conn, t.account_id, &email).await?;
            if changed {
                // Links mailed to the old address (a password reset) must not work any more.
                AccountToken::revoke_all(conn, t.account_id).await?;
                AuditEntry::record(
                    conn,
                    AuditEvent {
                        event: "email_changed",
                        subject_id: Some(t.account_id),
                        email: Some(email.as_str()),
                        ip: ip.as_deref(),
                        ..Default::default()
                    },
                )
                .await?;
            }
            Ok(Some(changed))
        })
        .await?;
    match outcome {
        None => Ok(expired_link()),
        Some(false) => Ok(message(
            StatusCode::CONFLICT,
            "That address is in use",
            &["Another account uses this email address now, so yours was not changed."],
            Some(("Your account", "/account")),
        )),
        Some(true) => Ok(see_other(if f.session.account.is_some() {
            "/account?notice=email-changed"
        } else {
            "/login?notice=email-changed"
        })),
    }
}

async fn sign_out_everywhere(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let user = form_user(&f)?;
    let ip = ip(&req, &state);
    {
        let mut conn = state.pool.get().await?;
        SessionRow::delete_for_account(&mut conn, user.account.id).await?;
        AuditEntry::record(
            &mut conn,
            AuditEvent {
                event: "signed_out_everywhere",
                actor_id: Some(user.account.id),
                subject_id: Some(user.account.id),
                ip: ip.as_deref(),
                ..Default::default()
            },
        )
        .await?;
    }
    super::session::set_cookie(&req, Session::removal_cookie(&state.sessions));
    Ok(see_other("/login?notice=signed-out-everywhere"))
}

/// Everything held about the signed-in person, as a JSON download.
async fn export(user: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let a = &user.account;
    let mut conn = state.pool.get().await?;
    let sessions = SessionRow::list_for_account(&mut conn, a.id).await?;
    let events = AuditEntry::search(&mut conn, None, Some(a.id), None, 10_000).await?;
    let products = crate::db::registrations::MyProduct::of_account(&mut conn, a.id).await?;
    let claims = crate::db::claims::Claim::of_account(&mut conn, a.id, None).await?;
    let body = serde_json::json!({
        "exported_at": Utc::now(),
        "account": {
            "email": a.email,
            "email_confirmed_at": a.email_verified_at,
            "role": a.role,
            "display_name": a.display_name,
            "created_at": a.created_at,
        },
        "sessions": sessions.iter().map(|s| serde_json::json!({
            "signed_in_at": s.created_at, "last_seen_at": s.last_seen_at, "expires_at": s.expires_at,
            "ip": s.ip, "user_agent": s.user_agent,
        })).collect::<Vec<_>>(),
        "security_events": events.iter().map(|e| serde_json::json!({
            "at": e.occurred_at, "event": e.event, "ip": e.ip, "detail": e.detail,
        })).collect::<Vec<_>>(),
        "registered_products": products.iter().map(|p| serde_json::json!({
            "gtin": p.gtin, "serial": p.serial, "product": format!("{} {}", p.brand, p.name),
            "status": p.status, "purchased_on": p.purchased_on,
            "place_of_purchase": p.place_of_purchase, "registered_at": p.created_at,
            "warranty_reminder": p.reminder_wanted, "marketing_consent": p.marketing_consent,
            "proof_of_purchase": p.proof_type,
        })).collect::<Vec<_>>(),
        "warranty_claims": claims.iter().map(|c| serde_json::json!({
            "number": c.number, "gtin": c.gtin, "serial": c.serial, "status": c.status,
            "category": c.category, "description": c.description, "noticed_on": c.noticed_on,
            "filed_at": c.filed_at, "contact_preference": c.contact_preference,
            "contact_phone": c.contact_phone, "estimated_completion": c.eta,
            "outcome": c.outcome_note,
        })).collect::<Vec<_>>(),
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"my-data.json\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(serde_json::to_string_pretty(&body).map_err(anyhow::Error::from)?))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    delete_password: String,
}

async fn delete_account(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<DeleteForm>,
) -> Result<HttpResponse, AppError> {
    let user = form_user(&f)?;
    let a = &user.account;
    if !current_password_ok(&req, &state, a, &f.form.delete_password).await? {
        let mut page = SettingsPage::new(&user, None);
        page.delete_current = page
            .delete_current
            .clone()
            .error(Some("That is not your current password.".into()));
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    if a.role() == Role::Admin {
        let mut conn = state.pool.get().await?;
        if Account::count_admins(&mut conn).await? <= 1 {
            return Ok(message(
                StatusCode::CONFLICT,
                "You are the last administrator",
                &[
                    "The portal needs at least one administrator. Make someone else an administrator first, then delete your account.",
                ],
                Some(("People", "/admin/users")),
            ));
        }
    }
    let ip = ip(&req, &state);
    let goodbye: Mail = messages::account_deleted(&a.email)?;
    let mut conn = state.pool.get().await?;
    let mut proofs = crate::db::retention::ErasedProofs::default();
    let mut photos = Vec::new();
    conn.transaction::<_, AppError, _>(async |conn| {
        OutboxMail::enqueue(conn, &goodbye).await?;
        proofs = Account::erase(conn, a.id).await?;
        photos = crate::db::claims::erase_for_account(conn, a.id).await?;
        AuditEntry::record(
            conn,
            AuditEvent {
                event: "account_deleted",
                actor_id: Some(a.id),
                subject_id: Some(a.id),
                ip: ip.as_deref(),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    })
    .await?;
    drop(conn);
    // Only now that the rows no longer name them: a file cannot be part of a transaction.
    proofs.remove(&state.config.data_dir).await;
    crate::files::remove(
        &state.config.data_dir,
        crate::files::Store::ClaimPhotos,
        &photos,
    )
    .await;
    super::session::set_cookie(&req, Session::removal_cookie(&state.sessions));
    Ok(see_other("/login?notice=deleted"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_next(Some("/account")), Some("/account".into()));
        assert_eq!(
            safe_next(Some("/admin/users?role=staff")),
            Some("/admin/users?role=staff".into())
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "",
            "/x\r\nSet-Cookie: a=b",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_next(None), None);
    }
}
