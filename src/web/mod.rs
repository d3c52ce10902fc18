//! The HTTP side: application state, middleware, routes by audience (only `public` so far).

pub mod account;
pub mod admin;
pub mod api;
pub mod bearer;
pub mod catalogue;
pub mod charts;
pub mod claim_reports;
pub mod claims;
pub mod claims_staff;
pub mod counts;
pub mod error;
pub mod genealogy;
pub mod imports;
pub mod integration;
pub mod labels;
pub mod metrics;
pub mod multipart;
pub mod panics;
pub mod pictures;
pub mod public;
pub mod ratelimit;
pub mod recall_reports;
pub mod recalls;
pub mod recalls_admin;
pub mod register;
pub mod request_id;
pub mod resolver;
pub mod sales;
pub mod second_factor;
pub mod session;
pub mod staff;
pub mod stations;
pub mod tokens_admin;
pub mod transfers;
mod views;
pub mod warranty;

use std::net::TcpListener;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use askama::Template;

use crate::config::Config;
use crate::db::DbPool;
use crate::db::catalogue::ProductModel;
pub use error::AppError;
use ratelimit::{LookupLimiter, TokenLimiter};

/// How often each process reloads the catalogue it validates serial formats against.
const CATALOGUE_REFRESH: Duration = Duration::from_secs(30);
/// How often expired drafts and stray proof files are cleared away.
const TIDY_EVERY: Duration = Duration::from_secs(600);

/// Shared by every worker.
pub struct AppState {
    pub pool: DbPool,
    pub limiter: LookupLimiter,
    /// Sign-in, sign-up and reset attempts per client IP.
    pub auth_limiter: LookupLimiter,
    /// API lookups made with an integration token, per token.
    pub token_limiter: TokenLimiter,
    /// Token API writes run on connections of their own: at most this many at once.
    pub api_writes: tokio::sync::Semaphore,
    pub sessions: session::SessionSettings,
    pub config: Config,
    /// Requests by route, for `/metrics`.
    pub metrics: metrics::Metrics,
    catalogue: RwLock<Arc<Vec<ProductModel>>>,
}

impl AppState {
    pub fn new(pool: DbPool, config: &Config) -> Self {
        AppState {
            pool,
            limiter: LookupLimiter::new(
                config.lookup_rate_per_minute,
                config.lookup_burst,
                config.trusted_proxies.0.clone(),
            ),
            auth_limiter: LookupLimiter::new(
                config.auth_rate_per_minute,
                config.auth_rate_per_minute.max(1),
                config.trusted_proxies.0.clone(),
            ),
            token_limiter: TokenLimiter::new(
                config.token_lookup_rate_per_minute,
                config.token_lookup_burst,
            ),
            api_writes: tokio::sync::Semaphore::new(config.db_pool_size.max(1)),
            sessions: session::SessionSettings {
                idle: chrono::Duration::minutes(config.session_idle_minutes.max(1).into()),
                max: chrono::Duration::hours(config.session_max_hours.max(1).into()),
                secure: config.secure_cookies(),
                origin: origin_of(&config.base_url()),
            },
            config: config.clone(),
            metrics: metrics::Metrics::default(),
            catalogue: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// The product models as last loaded (at most [`CATALOGUE_REFRESH`] old).
    pub fn catalogue(&self) -> Arc<Vec<ProductModel>> {
        self.catalogue
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default()
    }

    /// A connection of its own for bulk work (binary COPY, long transactions), outside the pool.
    pub async fn bulk_client(&self) -> Result<tokio_postgres::Client, AppError> {
        let url = self.config.database_url.as_deref().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "the database URL is not known to the web app"
            ))
        })?;
        crate::db::import::connect(url)
            .await
            .map_err(|e| AppError::Unavailable(format!("{e:#}")))
    }

    /// A diesel connection of its own for bulk work (a recall launch), outside the pool, its
    /// backend at the bulk priority (`db::priority`); closed when dropped.
    pub async fn bulk_connection(&self) -> Result<diesel_async::AsyncPgConnection, AppError> {
        let url = self.config.database_url.as_deref().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "the database URL is not known to the web app"
            ))
        })?;
        let mut conn = crate::db::tls::connect(url)
            .await
            .map_err(|e| AppError::Unavailable(format!("connecting to the database: {e}")))?;
        crate::db::priority::lower_diesel_backend(&mut conn).await;
        Ok(conn)
    }

    pub async fn reload_catalogue(&self) -> Result<(), AppError> {
        let mut conn = self.pool.get().await?;
        let models = ProductModel::all(&mut conn).await?;
        if let Ok(mut c) = self.catalogue.write() {
            *c = Arc::new(models);
        }
        Ok(())
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

/// A file a customer sent (a receipt, a claim photo), answered with the type it was judged to
/// be: pictures shown, PDFs downloaded (a PDF viewer is a plugin the content policy does not let
/// run), never kept by shared caches. `stem` names the download.
pub fn private_file(
    bytes: Vec<u8>,
    kind: crate::domain::proof::ProofType,
    stem: &str,
) -> HttpResponse {
    use crate::domain::proof::ProofType;
    let how = if kind == ProofType::Pdf {
        "attachment"
    } else {
        "inline"
    };
    HttpResponse::Ok()
        .content_type(kind.media_type())
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("{how}; filename=\"{stem}.{}\"", kind.extension()),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "private, no-store"))
        .body(bytes)
}

/// Percent-encodes a query-string value.
pub fn encode_query(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A message with its first letter in upper case (domain errors read as sentence fragments).
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One line of a textarea of scans: what a scanner typed (a GS1 element string with GS
/// characters, a Digital Link) or a person typed (a bare serial).
pub struct ScannedLine {
    /// 1-based line in the textarea.
    pub line: u64,
    /// The model the line's GTIN names, if it carries one: (id, serials case-sensitive).
    pub model: Option<(i64, bool)>,
    pub serial: String,
}

/// Reads a textarea of scans, one per line (blank lines skipped); every unreadable line and
/// every unknown GTIN is reported with its line number.
pub fn scanned_lines(
    state: &AppState,
    text: &str,
) -> Result<Vec<ScannedLine>, Vec<crate::domain::import::RowError>> {
    use crate::domain::import::{RowError, shorten};
    let catalogue = state.catalogue();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let mut refuse = |reason: String| {
            errors.push(RowError {
                line,
                column: shorten(raw.trim()),
                reason,
            })
        };
        let q = match crate::domain::lookup::LookupQuery::parse(raw, None) {
            Ok(q) => q,
            Err(e) => {
                refuse(e.message);
                continue;
            }
        };
        let model = match q.gtin.map(|g| g.as_string()) {
            None => None,
            Some(g) => match catalogue.iter().find(|m| m.gtin == g) {
                Some(m) => Some((m.id, m.serials_case_sensitive)),
                None => {
                    refuse(format!("No product model has GTIN {g}"));
                    continue;
                }
            },
        };
        lines.push(ScannedLine {
            line,
            model,
            serial: q.serial.as_str().to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// A CSV file download (reports): a header line, then one record per row.
pub fn csv_download(
    filename: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<HttpResponse, AppError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)
        .map_err(|e| AppError::Internal(e.into()))?;
    for r in rows {
        w.write_record(&r)
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    let body = w
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body))
}

/// A 303 redirect (the answer to every successful POST).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location.to_owned()))
        .finish()
}

/// Renders a template with a status. A template that fails to render is a bug: 500, logged.
pub fn render<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal error")
        }
    }
}

/// Content Security Policy: nothing inline, nothing from elsewhere.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; \
form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The headers every response carries.
const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    (
        "Permissions-Policy",
        "camera=(), geolocation=(), microphone=()",
    ),
];

/// [`SECURITY_HEADERS`]; with an https base URL also HSTS (a year, subdomains included), so
/// that browsers never try plain http again.
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = if https {
        DefaultHeaders::new().add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        DefaultHeaders::new()
    };
    SECURITY_HEADERS
        .into_iter()
        .fold(headers, |headers, h| headers.add(h))
}

fn bad_input_page(message: String) -> actix_web::Error {
    AppError::BadRequest(message).into()
}

/// Registers every route; shared by the server and nothing else, so tests exercise the real app.
pub fn configure(cfg: &mut web::ServiceConfig, config: &Config) {
    cfg.app_data(web::PayloadConfig::new(config.max_body_bytes))
        .app_data(
            web::FormConfig::default()
                .limit(config.max_body_bytes)
                .error_handler(|e, _| bad_input_page(e.to_string())),
        )
        .app_data(web::JsonConfig::default().limit(config.max_body_bytes))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            bad_input_page(format!("The address has a malformed query: {e}"))
        }))
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| bad_input_page(format!("The address is malformed: {e}"))),
        );
    cfg.route("/metrics", web::get().to(metrics::metrics));
    api::routes(cfg);
    public::routes(cfg);
    account::routes(cfg);
    second_factor::routes(cfg);
    register::routes(cfg);
    claims::routes(cfg);
    recalls::routes(cfg);
    cfg.service(
        web::scope("/staff")
            .wrap(from_fn(|req, next| {
                session::require_role(crate::domain::account::Role::Staff, req, next)
            }))
            .configure(staff::routes),
    )
    .service(
        web::scope("/admin")
            .wrap(from_fn(|req, next| {
                session::require_role(crate::domain::account::Role::Admin, req, next)
            }))
            .configure(admin::routes),
    );
}

pub fn worker_settings(config: &Config) -> crate::jobs::outbox::WorkerSettings {
    crate::jobs::outbox::WorkerSettings {
        max_attempts: config.outbox_max_attempts.max(1) as i32,
        base_backoff_ms: config.outbox_retry_base_ms as i64,
        rate_per_sec: config.mail_rate_per_sec,
        lease_secs: i32::try_from(config.outbox_lease_secs).unwrap_or(i32::MAX),
        ..Default::default()
    }
}

async fn not_found(_req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::not_found(
        "Page not found",
        "There is no page at this address. To check a product, enter its serial number on the home page.",
    ))
}

/// Forgets registrations typed before signing in that nobody came back for, with their files,
/// and removes proof files a crash left without a row (only files more than an hour old, so an
/// upload in progress is never touched).
async fn tidy_proofs(state: &AppState) {
    use crate::files::{self, Store};
    let Ok(mut conn) = state.pool.get().await else {
        return;
    };
    let data_dir = &state.config.data_dir;
    match crate::db::registrations::Draft::purge_expired(&mut conn).await {
        Ok(gone) => files::remove(data_dir, Store::Proofs, &gone).await,
        Err(e) => tracing::warn!(error = %e, "registration draft clean-up failed"),
    }
    for store in [Store::Proofs, Store::ClaimPhotos] {
        let recent = match files::recent(data_dir, store, Duration::from_secs(3600)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not list stored files");
                continue;
            }
        };
        let (partial, whole): (Vec<String>, Vec<String>) =
            recent.into_iter().partition(|n| files::is_partial(n));
        files::remove(data_dir, store, &partial).await;
        let orphans = match store {
            Store::Proofs => crate::db::registrations::unreferenced_proofs(&mut conn, &whole).await,
            Store::ClaimPhotos => crate::db::claims::unreferenced_photos(&mut conn, &whole).await,
        };
        match orphans {
            Ok(orphans) => {
                if !orphans.is_empty() {
                    tracing::info!(count = orphans.len(), "removing stored files no row names");
                }
                files::remove(data_dir, store, &orphans).await
            }
            Err(e) => tracing::warn!(error = %e, "stored file sweep failed"),
        }
    }
}

/// Deletes new-token secrets nobody came to see and Idempotency-Keys past their day.
async fn forget_expired_api_records(state: &AppState) {
    let Ok(mut conn) = state.pool.get().await else {
        return;
    };
    if let Err(e) = crate::db::api_tokens::purge_expired(&mut conn).await {
        tracing::warn!(error = %e, "clean-up of API tokens' records failed");
    }
}

/// A bound, ready-to-run portal server.
pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
    worker: Option<(
        crate::jobs::outbox::Mailer,
        crate::jobs::outbox::WorkerSettings,
    )>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port: tests use that) and builds the server.
    pub async fn build(config: &Config, pool: DbPool) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(&config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        // Without a configured base URL, links in mails point at the address actually bound
        // (which matters when the port was 0).
        let mut config = config.clone();
        if config.base_url.is_none() {
            config.base_url = Some(format!("http://{}", listener.local_addr()?));
        }
        let config = &config;
        crate::jobs::import::sweep_uploads(&config.data_dir.join("imports"));
        let state = web::Data::new(AppState::new(pool, config));
        if let Err(e) = state.reload_catalogue().await {
            tracing::warn!(error = %e, "could not load the catalogue at start; lookups will retry");
        }
        let worker = if config.run_worker {
            let mailer = crate::jobs::outbox::Mailer::new(
                config.smtp_url.as_deref(),
                config.data_dir.join("mail"),
                &config.mail_from,
            )?;
            Some((mailer, worker_settings(config)))
        } else {
            None
        };
        let app_state = state.clone();
        let app_config = config.clone();
        let mut server = HttpServer::new(move || {
            // Each worker's own lookup connections, driven on its thread (`db::readers`).
            let readers = crate::db::readers::Readers::new(
                app_config.database_url.clone(),
                app_config.lookup_connections,
            );
            App::new()
                .app_data(app_state.clone())
                .app_data(web::Data::new(readers))
                .wrap(from_fn(panics::middleware))
                .wrap(from_fn(session::cookie_middleware))
                .wrap(security_headers(
                    app_config.base_url().starts_with("https://"),
                ))
                .wrap(from_fn(request_id::middleware))
                .configure(|cfg| configure(cfg, &app_config))
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        // Signals are handled by the caller, which drains and then stops PostgreSQL.
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout_secs);
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        Ok(Application {
            server: server.run(),
            port,
            state,
            worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until stopped through [`Application::handle`], with the housekeeping tasks beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let housekeeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CATALOGUE_REFRESH);
            let mut registrations = crate::jobs::reminders::Schedule::new(
                state.config.base_url(),
                state.config.audit_retention_days,
            );
            let mut last_tidy = None;
            loop {
                tick.tick().await;
                if let Err(e) = state.reload_catalogue().await {
                    tracing::warn!(error = %e, "catalogue reload failed");
                }
                state.limiter.retain_recent();
                state.auth_limiter.retain_recent();
                state.token_limiter.retain_recent();
                if let Ok(mut conn) = state.pool.get().await
                    && let Err(e) = crate::db::accounts::SessionRow::delete_stale(
                        &mut conn,
                        state.sessions.idle,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "session clean-up failed");
                }
                if last_tidy.is_none_or(|t: std::time::Instant| t.elapsed() >= TIDY_EVERY) {
                    last_tidy = Some(std::time::Instant::now());
                    tidy_proofs(&state).await;
                    forget_expired_api_records(&state).await;
                }
                registrations.run_if_due(&state.pool).await;
            }
        });
        let worker = self.worker.map(|(mailer, settings)| {
            tokio::spawn(crate::jobs::outbox::run(
                self.state.pool.clone(),
                mailer,
                settings,
            ))
        });
        let result = self.server.await;
        housekeeping.abort();
        if let Some(w) = worker {
            w.abort();
        }
        result
    }
}
