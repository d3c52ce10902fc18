//! Integration tokens for administrators (`/admin/tokens`): the list (name, scopes, created,
//! last used, revoked), creating one and revoking one. A new token's secret is shown exactly
//! once, on the page the creation redirects to: until then it waits in the database sealed
//! (ChaCha20-Poly1305) with a key derived from the admin's session cookie, which the database
//! never holds, and it is deleted as it is shown. Only its SHA-256 stays.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::admin::admin_of;
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::accounts::{AuditEntry, AuditEvent};
use crate::db::api_tokens::{ApiToken, REVEAL_MINUTES, TokenReveal};
use crate::domain::api_token::{SECRET_PREFIX, Scope, scope_list, scopes, token_name};
use crate::tokens::{hash_token, new_token, seal, unseal};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(list))
        .route("/tokens", web::post().to(create))
        .route("/tokens/{id}/created", web::get().to(created))
        .route("/tokens/{id}/revoke", web::post().to(revoke));
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

struct TokenRow {
    id: i64,
    name: String,
    scopes: String,
    created: String,
    created_by: String,
    last_used: String,
    revoked: Option<String>,
}

/// One scope's box on the form.
struct ScopeBox {
    name: &'static str,
    value: &'static str,
    describe: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    notice: Option<&'static str>,
    csrf_token: String,
    rows: Vec<TokenRow>,
    name: String,
    name_error: Option<String>,
    scopes: Vec<ScopeBox>,
    scope_error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    scope_read: Option<String>,
    scope_stock_write: Option<String>,
    scope_sales_write: Option<String>,
}

impl TokenForm {
    fn ticked(&self) -> Vec<Scope> {
        [
            (Scope::Read, &self.scope_read),
            (Scope::StockWrite, &self.scope_stock_write),
            (Scope::SalesWrite, &self.scope_sales_write),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(s, _)| s)
        .collect()
    }
}

fn field_of(s: Scope) -> &'static str {
    match s {
        Scope::Read => "scope_read",
        Scope::StockWrite => "scope_stock_write",
        Scope::SalesWrite => "scope_sales_write",
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
}

async fn page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    form: &TokenForm,
    errors: (Option<String>, Option<String>),
    notice: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let rows = ApiToken::list(&mut conn)
        .await?
        .into_iter()
        .map(|(t, email)| TokenRow {
            id: t.id,
            name: t.name,
            scopes: scope_list(&t.scopes),
            created: when(t.created_at),
            created_by: email,
            last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
            revoked: t.revoked_at.map(when),
        })
        .collect();
    let ticked = form.ticked();
    Ok(render(
        status,
        &TokensPage {
            notice,
            csrf_token: user.session.csrf_token.clone(),
            rows,
            name: form.name.clone(),
            name_error: errors.0,
            scopes: Scope::ALL
                .into_iter()
                .map(|s| ScopeBox {
                    name: field_of(s),
                    value: s.as_str(),
                    describe: s.describe(),
                    checked: ticked.contains(&s),
                })
                .collect(),
            scope_error: errors.1,
        },
    ))
}

async fn list(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match q.notice.as_deref() {
        Some("revoked") => Some("Token revoked: requests with it are refused from now on."),
        _ => None,
    };
    page(
        &state,
        &user,
        StatusCode::OK,
        &TokenForm::default(),
        (None, None),
        notice,
    )
    .await
}

/// The session cookie of the request: the key a new secret is sealed with.
fn cookie_of(req: &HttpRequest) -> Result<String, AppError> {
    let name = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.sessions.cookie_name())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
    req.cookie(name)
        .map(|c| c.value().to_owned())
        .ok_or_else(|| AppError::Forbidden("Your session has expired: sign in again.".into()))
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<TokenForm>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let name = token_name(&f.form.name);
    let chosen = scopes(f.form.ticked());
    let (name, chosen) = match (name, chosen) {
        (Ok(n), Ok(s)) => (n, s),
        (n, s) => {
            let errors = (
                n.err().map(super::capitalise),
                s.err().map(super::capitalise),
            );
            return page(
                &state,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                &f.form,
                errors,
                None,
            )
            .await;
        }
    };
    let secret = format!("{SECRET_PREFIX}{}", new_token());
    let cookie = cookie_of(&req)?;
    let ip = state.limiter.client_ip(&req).map(|i| i.to_string());
    let session_hash = f.session.token_hash.clone();
    let mut conn = state.pool.get().await?;
    let token = conn
        .transaction::<_, AppError, _>(async |conn| {
            let token =
                ApiToken::create(conn, &hash_token(&secret), &name, &chosen, admin.account.id)
                    .await?;
            let (nonce, sealed) = seal(&cookie, &token.id.to_be_bytes(), &secret);
            TokenReveal::store(conn, token.id, &session_hash, &nonce, &sealed).await?;
            let detail = format!("#{} {} ({})", token.id, token.name, scope_list(&chosen));
            AuditEntry::record(
                conn,
                AuditEvent {
                    event: "api_token_created",
                    actor_id: Some(admin.account.id),
                    ip: ip.as_deref(),
                    detail: Some(&detail),
                    ..Default::default()
                },
            )
            .await?;
            Ok(token)
        })
        .await?;
    Ok(see_other(&format!("/admin/tokens/{}/created", token.id)))
}

#[derive(Template)]
#[template(path = "admin/token_created.html")]
struct CreatedPage {
    name: String,
    scopes: String,
    /// `None` once it was shown.
    secret: Option<String>,
    base_url: String,
    minutes: i64,
}

async fn created(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    let token = ApiToken::find(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such token", "This token does not exist."))?;
    let sealed = TokenReveal::take(&mut conn, id, &user.session.token_hash).await?;
    let cookie = cookie_of(&req)?;
    let mut secret =
        sealed.and_then(|(nonce, sealed)| unseal(&cookie, &id.to_be_bytes(), &nonce, &sealed));
    // What comes out must be this token's secret (its hash is the token's): a second check,
    // beside the seal's own tag.
    if let Some(s) = &secret {
        let owner = ApiToken::by_hash(&mut conn, &hash_token(s)).await?;
        if owner.is_none_or(|t| t.id != id) {
            secret = None;
        }
    }
    let mut res = render(
        StatusCode::OK,
        &CreatedPage {
            name: token.name,
            scopes: scope_list(&token.scopes),
            secret,
            base_url: state.config.base_url(),
            minutes: REVEAL_MINUTES,
        },
    );
    // The secret must not stay in any cache.
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<super::account::Empty>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let id = path.into_inner();
    let ip = state.limiter.client_ip(&req).map(|i| i.to_string());
    let mut conn = state.pool.get().await?;
    let token = ApiToken::find(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such token", "This token does not exist."))?;
    conn.transaction::<_, AppError, _>(async |conn| {
        if ApiToken::revoke(conn, id, admin.account.id).await? {
            let detail = format!("#{} {}", token.id, token.name);
            AuditEntry::record(
                conn,
                AuditEvent {
                    event: "api_token_revoked",
                    actor_id: Some(admin.account.id),
                    ip: ip.as_deref(),
                    detail: Some(&detail),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    Ok(see_other("/admin/tokens?notice=revoked"))
}
