//! Server-side sessions, the signed-in user, CSRF protection and role guards.
//!
//! The browser holds a random token in an `HttpOnly`, `SameSite=Lax` cookie; PostgreSQL holds
//! its SHA-256, the account and the CSRF token, so every portal process sees every session.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{Duration, Utc};
use serde::de::DeserializeOwned;

use super::{AppError, AppState};
use crate::db::accounts::{Account, SessionRow};
use crate::domain::account::Role;
use crate::tokens::{constant_time_eq, hash_token, new_token};

/// The session cookie's name over plain http (a laptop, a test).
const COOKIE: &str = "portal_session";
/// Its name when cookies are `Secure`: with the `__Host-` prefix a browser accepts the cookie
/// only from this very host, over https, for the whole site, so neither a sibling subdomain nor
/// a plain-http page can plant or overwrite it.
const HOST_COOKIE: &str = "__Host-portal_session";
/// An anonymous session only carries a CSRF token for a sign-in or sign-up form.
const ANONYMOUS_LIFETIME_HOURS: i64 = 2;
/// `last_seen_at` is written at most this often, not on every request.
const TOUCH_EVERY_SECS: i64 = 60;

/// Session cookie settings, from the configuration.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub idle: Duration,
    pub max: Duration,
    pub secure: bool,
    /// scheme://host[:port] of the portal, for the Origin check.
    pub origin: String,
}

impl SessionSettings {
    /// The session cookie's name: `__Host-` prefixed when it is `Secure`.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure { HOST_COOKIE } else { COOKIE }
    }
}

/// The current session (anonymous or signed in). Extracting it creates an anonymous session
/// when the request has none, so a form can carry a CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: Vec<u8>,
    pub csrf_token: String,
    pub account: Option<Account>,
}

/// Where a handler or extractor leaves a cookie for the response. The middleware puts an empty
/// slot into the request before routing and reads it afterwards (the request itself cannot be
/// kept: actix needs it unshared while routing).
#[derive(Clone, Default)]
struct CookieSlot(std::rc::Rc<std::cell::RefCell<Option<Cookie<'static>>>>);

/// Sets `cookie` on the response to `req`.
pub fn set_cookie(req: &HttpRequest, cookie: Cookie<'static>) {
    if let Some(slot) = req.extensions().get::<CookieSlot>() {
        *slot.0.borrow_mut() = Some(cookie);
    }
}

/// A session as loaded for this request, cached so a guard and a handler share one query.
#[derive(Clone)]
struct LoadedSession(Option<Session>);

fn client_ip(req: &HttpRequest) -> Option<String> {
    let state = req.app_data::<web::Data<AppState>>()?;
    state.limiter.client_ip(req).map(|ip| ip.to_string())
}

impl Session {
    pub fn cookie(settings: &SessionSettings, token: &str, max_age: Duration) -> Cookie<'static> {
        Cookie::build(settings.cookie_name(), token.to_owned())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(settings.secure)
            .max_age(time::Duration::seconds(max_age.num_seconds()))
            .finish()
    }

    pub fn removal_cookie(settings: &SessionSettings) -> Cookie<'static> {
        let mut c = Self::cookie(settings, "", Duration::zero());
        c.make_removal();
        c
    }

    /// The signed-in account a request was answered for, if its session was loaded (by a
    /// handler, an extractor or a role check) while it was answered.
    pub fn account_id_of(req: &HttpRequest) -> Option<i64> {
        let extensions = req.extensions();
        let LoadedSession(session) = extensions.get::<LoadedSession>()?;
        session.as_ref()?.account.as_ref().map(|a| a.id)
    }

    /// The live session named by the request's cookie, if any.
    pub async fn load(req: &HttpRequest) -> Result<Option<Session>, AppError> {
        if let Some(LoadedSession(s)) = req.extensions().get::<LoadedSession>() {
            return Ok(s.clone());
        }
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
        let Some(token) = req
            .cookie(state.sessions.cookie_name())
            .map(|c| c.value().to_owned())
            .filter(|t| t.len() == 43)
        else {
            return Ok(None);
        };
        let hash = hash_token(&token);
        let mut conn = state.pool.get().await?;
        let found = SessionRow::find_live(&mut conn, &hash, state.sessions.idle).await?;
        let session = match found {
            Some((row, account)) => {
                // A session whose account was deleted or erased is no longer signed in.
                if row.account_id.is_some() && account.is_none() {
                    SessionRow::delete(&mut conn, &hash).await?;
                    None
                } else {
                    if (Utc::now() - row.last_seen_at).num_seconds() > TOUCH_EVERY_SECS {
                        SessionRow::touch(&mut conn, &hash).await?;
                    }
                    Some(Session {
                        token_hash: hash,
                        csrf_token: row.csrf_token,
                        account,
                    })
                }
            }
            None => None,
        };
        req.extensions_mut().insert(LoadedSession(session.clone()));
        Ok(session)
    }

    /// Starts a session (anonymous, or signed in as `account`) and queues its cookie. Used at
    /// sign-in with a fresh token, so a token planted before sign-in is worthless after it.
    pub async fn start(req: &HttpRequest, account: Option<Account>) -> Result<Session, AppError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
        let token = new_token();
        let hash = hash_token(&token);
        let csrf_token = new_token();
        let lifetime = if account.is_some() {
            state.sessions.max
        } else {
            Duration::hours(ANONYMOUS_LIFETIME_HOURS)
        };
        let ua = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok());
        let mut conn = state.pool.get().await?;
        SessionRow::create(
            &mut conn,
            &hash,
            account.as_ref().map(|a| a.id),
            &csrf_token,
            Utc::now() + lifetime,
            client_ip(req).as_deref(),
            ua,
        )
        .await?;
        let session = Session {
            token_hash: hash,
            csrf_token,
            account,
        };
        set_cookie(req, Self::cookie(&state.sessions, &token, lifetime));
        req.extensions_mut()
            .insert(LoadedSession(Some(session.clone())));
        Ok(session)
    }

    /// Ends this session and queues the cookie's removal.
    pub async fn end(&self, req: &HttpRequest) -> Result<(), AppError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
        let mut conn = state.pool.get().await?;
        SessionRow::delete(&mut conn, &self.token_hash).await?;
        set_cookie(req, Self::removal_cookie(&state.sessions));
        req.extensions_mut().insert(LoadedSession(None));
        Ok(())
    }

    pub fn account_id(&self) -> Option<i64> {
        self.account.as_ref().map(|a| a.id)
    }
}

impl FromRequest for Session {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match Session::load(&req).await? {
                Some(s) => Ok(s),
                None => Session::start(&req, None).await,
            }
        })
    }
}

/// A signed-in user; anonymous requests are sent to sign in and come back afterwards.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    pub account: Account,
}

fn return_path(req: &HttpRequest) -> String {
    match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_owned(),
    }
}

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match Session::load(&req).await? {
                Some(session) => match session.account.clone() {
                    Some(account) => Ok(SignedIn { session, account }),
                    None => Err(AppError::SignInRequired(return_path(&req))),
                },
                None => Err(AppError::SignInRequired(return_path(&req))),
            }
        })
    }
}

/// The role guard of the `/staff` and `/admin` areas: anonymous → sign in (and come back);
/// signed in without the role → 403.
pub async fn require_role(
    needed: Role,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    use actix_web::ResponseError;
    // Refusals are answered here as responses (not errors), so the outer middleware still add
    // the security headers and the request id.
    let refuse = |req: ServiceRequest, e: AppError| {
        Ok(req.into_response(e.error_response()).map_into_right_body())
    };
    let session = match Session::load(req.request()).await {
        Ok(s) => s,
        Err(e) => return refuse(req, e),
    };
    match session.and_then(|s| s.account) {
        None => {
            let next_path = return_path(req.request());
            refuse(req, AppError::SignInRequired(next_path))
        }
        Some(a) if !a.role().allows(needed) => {
            let who = if needed == Role::Admin {
                "administrators"
            } else {
                "service staff"
            };
            refuse(
                req,
                AppError::Forbidden(format!(
                    "This area is for {who} only. You are signed in as {} ({}).",
                    a.email, a.role
                )),
            )
        }
        Some(a) => {
            // A role that needs two-step sign-in opens only once it is set up.
            if let Some(state) = req.app_data::<web::Data<AppState>>()
                && state.config.require_2fa.requires(a.role())
            {
                let set_up = match state.pool.get().await {
                    Ok(mut conn) => crate::db::second_factor::Totp::of(&mut conn, a.id)
                        .await
                        .map(|t| t.is_some())
                        .map_err(AppError::from),
                    Err(e) => Err(AppError::from(e)),
                };
                match set_up {
                    Ok(true) => {}
                    Ok(false) => {
                        return Ok(req
                            .into_response(super::see_other("/account/2fa?required=1"))
                            .map_into_right_body());
                    }
                    Err(e) => return refuse(req, e),
                }
            }
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
    }
}

/// Sets the cookie a handler or extractor left in the request's extensions.
pub async fn cookie_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let slot = CookieSlot::default();
    req.extensions_mut().insert(slot.clone());
    let had_session = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| req.cookie(state.sessions.cookie_name()).is_some());
    let mut res = next.call(req).await?;
    let pending = slot.0.borrow_mut().take();
    let set_cookie = pending.is_some();
    if let Some(cookie) = pending {
        res.response_mut().add_cookie(&cookie)?;
    }
    // Pages seen in a session (or that start one) are personal: kept by no cache, the
    // browser's included, so the back button shows nothing after signing out. Answers that
    // chose their own caching (receipts, photos) keep it.
    let headers = res.headers_mut();
    if set_cookie || (had_session && !headers.contains_key(actix_web::http::header::CACHE_CONTROL))
    {
        headers.insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
    }
    Ok(res)
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

fn csrf_refused(why: &str) -> AppError {
    AppError::Forbidden(format!(
        "{why} Nothing was changed. Go back, reload the page and try again; if it keeps happening, make sure cookies are allowed for this site."
    ))
}

/// The origin half of [`check_csrf`], for a form whose body has not been read yet.
pub fn check_origin(req: &HttpRequest) -> Result<(), AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
    if same_origin(req, &state.sessions.origin) {
        Ok(())
    } else {
        Err(csrf_refused("This form was sent from another website."))
    }
}

/// The checks of a posted form, for forms read by hand (file uploads): it comes from our own
/// origin and carries the CSRF token of the session it is sent with. Returns that session.
pub async fn check_csrf(req: &HttpRequest, sent_token: &str) -> Result<Session, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
    if !same_origin(req, &state.sessions.origin) {
        return Err(csrf_refused("This form was sent from another website."));
    }
    let Some(session) = Session::load(req).await? else {
        return Err(csrf_refused("Your session has expired."));
    };
    if !constant_time_eq(sent_token, &session.csrf_token) {
        return Err(csrf_refused(
            "This form has expired or did not come from this site.",
        ));
    }
    Ok(session)
}

/// A form posted from one of our pages: same origin, and carrying the session's CSRF token.
/// Anything else is refused with a 403 before the handler runs, so it changes nothing.
pub struct CsrfForm<T> {
    pub session: Session,
    pub form: T,
}

fn same_origin(req: &HttpRequest, expected: &str) -> bool {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let host_origin = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(|h| {
            let scheme = if expected.starts_with("https://") {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{h}")
        });
    let matches = |origin: &str| origin == expected || host_origin.as_deref() == Some(origin);
    if let Some(origin) = header("origin") {
        return origin != "null" && matches(&origin);
    }
    if let Some(referer) = header("referer") {
        let origin: String = referer.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        return matches(&origin);
    }
    // Neither header: some privacy tools strip both. The token still has to match.
    true
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
            if !same_origin(&req, &state.sessions.origin) {
                return Err(csrf_refused("This form was sent from another website."));
            }
            let body = body.await.map_err(|e| {
                if e.as_response_error().status_code()
                    == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
                {
                    AppError::PayloadTooLarge
                } else {
                    AppError::BadRequest("The form could not be read.".into())
                }
            })?;
            let sent: CsrfField = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfField {
                csrf_token: String::new(),
            });
            let session = check_csrf(&req, &sent.csrf_token).await?;
            let form = serde_urlencoded::from_bytes(&body).map_err(|_| {
                AppError::BadRequest("The form was incomplete or malformed.".into())
            })?;
            Ok(CsrfForm { session, form })
        })
    }
}
