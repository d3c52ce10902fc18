//! Integration tokens on the API (`Authorization: Bearer <token>`): the extractors that find
//! the token by the SHA-256 of its secret, refuse a revoked one and check its scope. A missing,
//! unknown or revoked token is a 401 with `WWW-Authenticate: Bearer`, a missing scope a 403;
//! both with the API's JSON error body (RFC 6750).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::api::ApiError;
use crate::db::api_tokens::ApiToken;
use crate::domain::api_token::{Scope, looks_like_secret};
use crate::tokens::hash_token;

const REALM: &str = "Bearer realm=\"recall-portal\"";

fn unauthorized(code: &'static str, message: &str) -> ApiError {
    let challenge = if code == "unauthorized" {
        REALM.to_owned()
    } else {
        format!("{REALM}, error=\"invalid_token\"")
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, message).challenge(challenge)
}

/// The token the request carries: `None` without an `Authorization: Bearer` header (another
/// scheme, such as the Basic credentials a browser sends to a site behind a password, is not
/// ours to judge); a 401 for anything but a live token. A wrong token counts as a failed sign-in
/// attempt of the client's address, so guessing runs into the same 429 as guessing passwords.
/// A use is recorded at most once a minute.
async fn token_of(req: &HttpRequest) -> Result<Option<ApiToken>, ApiError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = header.to_str().unwrap_or_default().trim();
    let (scheme, secret) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let secret = secret.trim();
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "No state."))?;
    let refuse = |e: ApiError| match state.auth_limiter.check(req) {
        Ok(()) => e,
        Err(super::AppError::TooManyRequests { retry_after_secs }) => {
            ApiError::too_many_attempts(retry_after_secs)
        }
        Err(other) => other.into(),
    };
    let invalid = || {
        unauthorized(
            "invalid_token",
            "The Authorization header does not name a valid integration token: send \
             `Authorization: Bearer <token>` with a token an administrator created.",
        )
    };
    if !looks_like_secret(secret) {
        return Err(refuse(invalid()));
    }
    let mut conn = state.pool.get().await?;
    let Some(token) = ApiToken::by_hash(&mut conn, &hash_token(secret)).await? else {
        return Err(refuse(invalid()));
    };
    if let Some(when) = token.revoked_at {
        return Err(refuse(unauthorized(
            "invalid_token",
            &format!(
                "This integration token was revoked on {}; ask an administrator for a new one.",
                when.format("%Y-%m-%d")
            ),
        )));
    }
    token.touch(&mut conn, chrono::Utc::now()).await?;
    Ok(Some(token))
}

/// A scope an endpoint needs, as a type, so a handler's signature says it.
pub trait NeedsScope {
    const SCOPE: Scope;
}

/// `read`: unit histories.
pub struct Read;
impl NeedsScope for Read {
    const SCOPE: Scope = Scope::Read;
}

/// `stock:write`: new units, stock movements.
pub struct StockWrite;
impl NeedsScope for StockWrite {
    const SCOPE: Scope = Scope::StockWrite;
}

/// `sales:write`: units linked to sales.
pub struct SalesWrite;
impl NeedsScope for SalesWrite {
    const SCOPE: Scope = Scope::SalesWrite;
}

/// A request authenticated with a live token that has the scope `S`.
pub struct Authed<S> {
    pub token: ApiToken,
    scope: PhantomData<S>,
}

impl<S: NeedsScope + 'static> FromRequest for Authed<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(token) = token_of(&req).await? else {
                return Err(unauthorized(
                    "unauthorized",
                    "This endpoint needs an integration token: send `Authorization: Bearer \
                     <token>` with a token an administrator created at /admin/tokens.",
                ));
            };
            if !token.has(S::SCOPE) {
                let scope = S::SCOPE.as_str();
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    format!(
                        "This token may not {}: it needs the {scope} scope.",
                        S::SCOPE.describe()
                    ),
                )
                .challenge(format!(
                    "{REALM}, error=\"insufficient_scope\", scope=\"{scope}\""
                )));
            }
            Ok(Authed {
                token,
                scope: PhantomData,
            })
        })
    }
}

/// The public reads: a token is optional and, when valid (whatever its scopes), earns the
/// token's own lookup allowance. A token that is sent but not valid is still a 401: the caller
/// should learn that it was revoked.
pub struct MaybeToken(pub Option<ApiToken>);

impl FromRequest for MaybeToken {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { token_of(&req).await.map(MaybeToken) })
    }
}

impl MaybeToken {
    /// Counts `n` lookups against the token's allowance, or the client address's without one.
    pub fn charge(&self, state: &AppState, req: &HttpRequest, n: u32) -> Result<(), ApiError> {
        let with_token = self.0.is_some();
        match &self.0 {
            Some(t) => state.token_limiter.check_n(t.id, n),
            None => state.limiter.check_n(req, n),
        }
        .map_err(|e| ApiError::over_limit(e, with_token))
    }
}
