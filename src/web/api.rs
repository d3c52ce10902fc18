//! The public JSON API (PRODUCT.md §4): the lookup as JSON, one serial at a time or up to 1,000
//! at once, and the recalls. Everything under `/api` answers JSON, errors included (one body:
//! `{"error": {"code", "message"}}`), never an HTML page. The OpenAPI document at
//! `/api/openapi.json` is generated from these handlers and types, so it cannot drift.

use crate::db::readers::Readers;
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::bearer::MaybeToken;
use super::{AppError, AppState};
use crate::db::lookup::UnitMatch;
use crate::db::recalls::{Campaign, UnitRecall};
use crate::domain::lookup::LookupQuery;
use crate::domain::recall::LookupRecall;

/// Most items in one batch.
pub const BATCH_MAX: usize = 1000;
/// A batch costs one lookup of the client's allowance per this many items (rounded up).
pub const BATCH_ITEMS_PER_LOOKUP: usize = 100;
/// Largest request body under `/api` (a full batch is about 100 KB).
const BODY_LIMIT: usize = 256 * 1024;

/// Every API answer is data, never a page: a browser that opens one saves it instead of
/// rendering it (ASVS 14.4.2).
fn as_attachment() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new().add((
        header::CONTENT_DISPOSITION,
        "attachment; filename=\"api.json\"",
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(openapi))
        .service(
            web::scope("/api/v1")
                .wrap(as_attachment())
                .app_data(
                    web::JsonConfig::default()
                        .limit(BODY_LIMIT)
                        .error_handler(|e, _| json_body_error(e).into()),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("The query string is not valid: {e}"),
                    )
                    .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("The address is not valid: {e}"),
                    )
                    .into()
                }))
                .service(
                    web::resource("/status")
                        .route(web::get().to(status))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/status/batch")
                        .route(web::post().to(batch))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/recalls")
                        .route(web::get().to(recalls))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
                        .default_service(web::to(method_not_allowed)),
                )
                .configure(super::integration::routes)
                .default_service(web::to(no_such_endpoint)),
        )
        .service(
            web::scope("/api")
                .wrap(as_attachment())
                .default_service(web::to(no_such_endpoint)),
        );
}

// ---------------------------------------------------------------------------------------------
// Answers

/// What was asked: echoed in every answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Query {
    /// The serial number as sent.
    #[schema(example = "SN0001")]
    pub serial: String,
    /// The GTIN as sent, if any.
    #[schema(example = "09506000134352")]
    pub gtin: Option<String>,
}

/// The lookup of one serial number.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusAnswer {
    pub query: Query,
    /// Every unit with this serial (on the given GTIN's model, if one was given); empty when
    /// there is none.
    pub matches: Vec<Match>,
}

/// One unit: what it is, its recall state and its warranty. Never anything about an owner.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Match {
    #[schema(example = "09506000134352")]
    pub gtin: String,
    #[schema(example = "SN0001")]
    pub serial: String,
    pub product: Product,
    pub recall: Recall,
    pub warranty: Warranty,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    #[schema(example = "PowerCell 18V battery")]
    pub name: String,
    #[schema(example = "Acme")]
    pub brand: String,
    /// The model's stock-keeping unit.
    #[schema(example = "PC-18")]
    pub model: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recall {
    /// `open`: remedy available; `remedy_not_yet_available`; `remedied`; `none`.
    pub status: RecallStatus,
    /// The campaigns the unit is in, latest first.
    pub campaigns: Vec<RecallCampaign>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecallStatus {
    None,
    Open,
    RemedyNotYetAvailable,
    Remedied,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecallCampaign {
    #[schema(example = "R-2026-004")]
    pub code: String,
    #[schema(example = "PowerCell 18V battery packs")]
    pub title: String,
    /// For this unit: `available`, `not_yet_available` or `remedied`.
    pub remedy: UnitRemedy,
    /// When this unit was remedied.
    pub remedied_on: Option<NaiveDate>,
    /// What the owner should do now.
    pub what_to_do: String,
    /// The public notice.
    #[schema(example = "https://portal.example/recalls/R-2026-004")]
    pub url: String,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnitRemedy {
    Available,
    NotYetAvailable,
    Remedied,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Warranty {
    pub status: WarrantyCode,
    /// The last day of the warranty, when known.
    pub ends_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WarrantyCode {
    Active,
    Expired,
    NotStarted,
    Unknown,
}

/// A batch of lookups.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// At most 1,000.
    pub items: Vec<BatchItem>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BatchItem {
    #[schema(example = "09506000134352")]
    pub gtin: Option<String>,
    #[schema(example = "SN0001")]
    pub serial: String,
}

/// One entry per item, in the order of the items.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<BatchResult>,
}

/// An item's answer: the same object as a single status, or the reason it could not be looked up.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    Status(StatusAnswer),
    Invalid(InvalidItem),
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvalidItem {
    pub query: Query,
    pub error: ErrorDetail,
}

/// The recall notices in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecallsAnswer {
    pub recalls: Vec<RecallNotice>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecallNotice {
    #[schema(example = "R-2026-004")]
    pub code: String,
    #[schema(example = "PowerCell 18V battery packs")]
    pub title: String,
    pub hazard: String,
    pub what_to_do: String,
    /// Whether the remedy can be had now.
    pub remedy_available: bool,
    pub launched_on: Option<NaiveDate>,
    #[schema(example = "https://portal.example/recalls/R-2026-004")]
    pub url: String,
}

/// Every error under `/api`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Only when items of a write were refused (`error.code` `refused`): each of them and why.
    /// Nothing was written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
}

/// An item of a request that was refused, and why.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Refusal {
    /// The item's position in the request's list, counted from 0.
    #[schema(example = 3)]
    pub index: usize,
    /// The item's field at fault (`gtin`, `serial`, `lot`, `manufactured_on`, `order_ref`,
    /// `channel`, `sold_on`, `customer_email`), or empty when it is the item as a whole.
    #[schema(example = "serial")]
    pub field: String,
    #[schema(example = "SN0042 already exists for this model")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: e.g. `invalid_serial`, `not_found`, `too_many_requests`.
    #[schema(example = "invalid_serial")]
    pub code: &'static str,
    /// For people.
    #[schema(example = "A serial number has letters, digits and - . / only.")]
    pub message: String,
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// `WWW-Authenticate` of a 401 or 403 (RFC 6750).
    challenge: Option<String>,
    refused: Vec<Refusal>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            challenge: None,
            refused: Vec::new(),
        }
    }

    /// With a `WWW-Authenticate` header.
    pub fn challenge(mut self, challenge: impl Into<String>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    /// With a `Retry-After` header, in seconds.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// With the items that were refused.
    pub fn refused(mut self, refused: Vec<Refusal>) -> Self {
        self.refused = refused;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
            refused: self.refused.clone(),
        }
    }

    /// A 429 for a client over its lookup allowance (`with_token`: the token's, else the
    /// address's).
    pub fn too_many(retry_after_secs: u64, with_token: bool) -> Self {
        let whose = if with_token {
            "with this token"
        } else {
            "from this address"
        };
        ApiError {
            retry_after: Some(retry_after_secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("Too many lookups {whose}: wait {retry_after_secs} s."),
            )
        }
    }
}

impl ApiError {
    /// A limiter's refusal as the API answers it (`with_token`: the token's allowance).
    pub fn over_limit(e: AppError, with_token: bool) -> Self {
        match e {
            AppError::TooManyRequests { retry_after_secs } => {
                ApiError::too_many(retry_after_secs, with_token)
            }
            other => other.into(),
        }
    }

    /// A 429 for an address that sent too many wrong tokens.
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("Too many wrong tokens from this address: wait {retry_after_secs} s."),
            )
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status).json(self.body());
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(c) = self
            .challenge
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        res
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = e.status_code();
        match e {
            AppError::TooManyRequests { retry_after_secs } => {
                ApiError::too_many(retry_after_secs, false)
            }
            AppError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                ApiError {
                    retry_after: Some(30),
                    ..ApiError::new(
                        status,
                        "unavailable",
                        "The database cannot be reached right now; try again shortly.",
                    )
                }
            }
            AppError::NotFound { message, .. } => ApiError::new(status, "not_found", message),
            AppError::BadRequest(m) => ApiError::new(status, "bad_request", m),
            AppError::PayloadTooLarge => ApiError::new(
                status,
                "payload_too_large",
                "The request body is too large.",
            ),
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong on our side; it has been logged.",
                )
            }
            other => ApiError::new(status, "error", other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::from(e).into()
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for ApiError {
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        AppError::from(e).into()
    }
}

fn json_body_error(e: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match e {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The body is larger than {BODY_LIMIT} bytes."),
        ),
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        J::Deserialize(e) if e.is_data() => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("The body does not have the expected shape: {e}"),
        ),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("The body is not valid JSON: {other}"),
        ),
    }
}

async fn no_such_endpoint(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "There is no API endpoint at {}; see /api/openapi.json.",
            req.path()
        ),
    )
    .error_response()
}

pub(super) async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}.", req.method(), req.path()),
    )
    .error_response()
}

// ---------------------------------------------------------------------------------------------
// CORS: the public reads may be called from any web page.

fn cors(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

async fn preflight() -> HttpResponse {
    cors(
        HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, OPTIONS"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Accept, Content-Type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
            .insert_header((header::ALLOW, "GET, OPTIONS"))
            .finish(),
    )
}

// ---------------------------------------------------------------------------------------------
// Handlers

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusParams {
    /// The serial number (or a scanned GS1 element string or Digital Link).
    #[param(example = "SN0001")]
    serial: String,
    /// The product's GTIN, to look on one model only.
    #[param(example = "09506000134352")]
    gtin: Option<String>,
}

/// Looks up one serial number.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "lookup",
    params(StatusParams),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The units with this serial (none: `matches` is empty)", body = StatusAnswer),
        (status = 400, description = "The serial or GTIN is not valid", body = ErrorBody),
        (status = 401, description = "A token was sent and is not valid (revoked, unknown)", body = ErrorBody),
        (status = 429, description = "Too many lookups from this address (or with this token)", body = ErrorBody),
        (status = 503, description = "The database cannot be reached", body = ErrorBody),
    )
)]
async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
    readers: web::Data<Readers>,
    caller: MaybeToken,
    q: web::Query<StatusParams>,
) -> Result<HttpResponse, ApiError> {
    caller.charge(&state, &req, 1)?;
    let q = q.into_inner();
    let item = BatchItem {
        gtin: q.gtin,
        serial: q.serial,
    };
    let mut answers = answer(&state, Some(&readers), std::slice::from_ref(&item)).await?;
    match answers.pop() {
        Some(BatchResult::Status(s)) => Ok(cors(HttpResponse::Ok().json(s))),
        Some(BatchResult::Invalid(i)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            i.error.code,
            i.error.message,
        )),
        None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "No answer was made.",
        )),
    }
}

/// Looks up to 1,000 serial numbers at once, in two queries whatever their number. One invalid
/// item never fails the batch: its entry says why.
///
/// It only reads, so sending it again is always safe: it takes no `Idempotency-Key` (one sent
/// is ignored), and a repeat answers with the status as it is then.
#[utoipa::path(
    post,
    path = "/api/v1/status/batch",
    tag = "lookup",
    request_body = BatchRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One result per item, in order", body = BatchAnswer),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "A token was sent and is not valid (revoked, unknown)", body = ErrorBody),
        (status = 413, description = "More than 1,000 items, or a body over 256 KiB", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape", body = ErrorBody),
        (status = 429, description = "Too many lookups from this address (or with this token)", body = ErrorBody),
        (status = 503, description = "The database cannot be reached", body = ErrorBody),
    )
)]
async fn batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: MaybeToken,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let items = body.into_inner().items;
    if items.len() > BATCH_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!(
                "A batch has at most {BATCH_MAX} items; this one has {}.",
                items.len()
            ),
        ));
    }
    let cost = items.len().div_ceil(BATCH_ITEMS_PER_LOOKUP).max(1);
    caller.charge(&state, &req, u32::try_from(cost).unwrap_or(u32::MAX))?;
    let results = answer(&state, None, &items).await?;
    Ok(HttpResponse::Ok().json(BatchAnswer { results }))
}

/// The recall notices in force (launched, not closed), latest first.
#[utoipa::path(
    get,
    path = "/api/v1/recalls",
    tag = "recalls",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The recalls in force", body = RecallsAnswer),
        (status = 401, description = "A token was sent and is not valid (revoked, unknown)", body = ErrorBody),
        (status = 503, description = "The database cannot be reached", body = ErrorBody),
    )
)]
async fn recalls(
    state: web::Data<AppState>,
    _caller: MaybeToken,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let base = state.config.base_url();
    let recalls = Campaign::public(&mut conn)
        .await?
        .into_iter()
        .filter(|c| c.status == "launched")
        .map(|c| RecallNotice {
            // Codes are capitals, digits and dashes (a CHECK): safe in a path as they are.
            url: format!("{base}/recalls/{}", c.code),
            launched_on: c.launched_at.map(|d| d.date_naive()),
            code: c.code,
            title: c.title,
            hazard: c.hazard,
            what_to_do: c.what_to_do,
            remedy_available: c.remedy_available,
        })
        .collect();
    Ok(cors(HttpResponse::Ok().json(RecallsAnswer { recalls })))
}

/// The answers to `items`, in order: every valid item's candidates in one query, their recalls
/// in a second. With `readers` (a single lookup), both at once on the worker's shared lookup
/// connections; a batch takes a pooled connection of its own, so that its thousand serials do
/// not hold up the single lookups queued behind it.
async fn answer(
    state: &AppState,
    readers: Option<&Readers>,
    items: &[BatchItem],
) -> Result<Vec<BatchResult>, ApiError> {
    let parsed: Vec<Result<LookupQuery, ErrorDetail>> = items
        .iter()
        .map(|i| {
            LookupQuery::parse(&i.serial, i.gtin.as_deref()).map_err(|e| ErrorDetail {
                code: match e.field {
                    crate::domain::lookup::LookupField::Gtin => "invalid_gtin",
                    crate::domain::lookup::LookupField::Serial => "invalid_serial",
                },
                message: e.message,
            })
        })
        .collect();
    let mut keys: Vec<String> = parsed
        .iter()
        .flatten()
        .flat_map(|q| UnitMatch::keys(&q.serial))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let (candidates, recalls) = if keys.is_empty() {
        (Vec::new(), Vec::new())
    } else if let Some(readers) = readers {
        // One lookup: its units (their models from the catalogue) and the recalls under the
        // same keys, sent together.
        let catalogue = state.catalogue();
        readers
            .run(&state.pool, async |conn| {
                futures_util::future::try_join(
                    UnitMatch::candidates_in(conn, &catalogue, &keys),
                    crate::db::recalls::of_serial_keys(conn, &keys),
                )
                .await
            })
            .await?
    } else {
        // A batch: the units, then their models and lots, then their recalls.
        let conn = state.pool.get().await?;
        let candidates = UnitMatch::candidates_many(&conn, &keys).await?;
        let ids: Vec<i64> = candidates.iter().map(|c| c.unit.id).collect();
        let recalls = if ids.is_empty() {
            Vec::new()
        } else {
            crate::db::recalls::of_units(&conn, &ids).await?
        };
        (candidates, recalls)
    };
    // Each item looks only at the units stored under its own keys.
    let mut by_key: HashMap<&str, Vec<&UnitMatch>> = HashMap::new();
    for c in &candidates {
        by_key
            .entry(c.unit.serial_key.as_str())
            .or_default()
            .push(c);
    }
    let mut by_unit: HashMap<i64, Vec<UnitRecall>> = HashMap::new();
    for r in recalls {
        by_unit.entry(r.unit_id).or_default().push(r);
    }
    let today = chrono::Utc::now().date_naive();
    let base = state.config.base_url();
    Ok(items
        .iter()
        .zip(parsed)
        .map(|(item, parsed)| {
            let query = Query {
                serial: item.serial.clone(),
                gtin: item.gtin.clone(),
            };
            match parsed {
                Err(error) => BatchResult::Invalid(InvalidItem { query, error }),
                Ok(q) => {
                    let gtin = q.gtin.map(|g| g.as_string());
                    let keys = UnitMatch::keys(&q.serial);
                    let mine = keys
                        .iter()
                        .filter_map(|k| by_key.get(k.as_str()))
                        .flatten()
                        .copied();
                    let matches = UnitMatch::pick(mine, &q.serial, gtin.as_deref())
                        .into_iter()
                        .map(|m| {
                            let none = Vec::new();
                            let recalls = by_unit.get(&m.unit.id).unwrap_or(&none);
                            unit_match(m, recalls, today, &base)
                        })
                        .collect();
                    BatchResult::Status(StatusAnswer { query, matches })
                }
            }
        })
        .collect())
}

/// One unit as the API shows it (the same facts as the lookup page).
fn unit_match(m: &UnitMatch, recalls: &[UnitRecall], today: NaiveDate, base: &str) -> Match {
    let state = LookupRecall::of(
        &recalls
            .iter()
            .map(|r| (r.remedy_available, r.remedied_on))
            .collect::<Vec<_>>(),
    );
    let warranty = m.warranty(today);
    Match {
        gtin: m.model.gtin.clone(),
        serial: m.unit.serial.clone(),
        product: Product {
            name: m.model.name.clone(),
            brand: m.model.brand.clone(),
            model: m.model.sku.clone(),
        },
        recall: Recall {
            status: match state {
                LookupRecall::None => RecallStatus::None,
                LookupRecall::Open {
                    remedy_available: true,
                } => RecallStatus::Open,
                LookupRecall::Open {
                    remedy_available: false,
                } => RecallStatus::RemedyNotYetAvailable,
                LookupRecall::Remedied { .. } => RecallStatus::Remedied,
            },
            campaigns: recalls
                .iter()
                .map(|r| RecallCampaign {
                    code: r.code.clone(),
                    title: r.title.clone(),
                    remedy: match (r.remedied_on, r.remedy_available) {
                        (Some(_), _) => UnitRemedy::Remedied,
                        (None, true) => UnitRemedy::Available,
                        (None, false) => UnitRemedy::NotYetAvailable,
                    },
                    remedied_on: r.remedied_on,
                    what_to_do: r.what_to_do.clone(),
                    url: format!("{base}/recalls/{}", r.code),
                })
                .collect(),
        },
        warranty: warranty_json(&warranty),
    }
}

/// A warranty as the API shows it.
pub(super) fn warranty_json(w: &crate::domain::warranty::WarrantyStatus) -> Warranty {
    Warranty {
        status: match w.code() {
            "active" => WarrantyCode::Active,
            "expired" => WarrantyCode::Expired,
            "not_started" => WarrantyCode::NotStarted,
            _ => WarrantyCode::Unknown,
        },
        ends_on: w.ends_on(),
    }
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warranty and recall portal API",
        description = "Look up a product's recall and warranty status by serial number, one at a \
                       time or up to 1,000 at once, and list the recalls in force: no token \
                       needed. Answers never say anything about a product's owner. Every error \
                       has the body `{\"error\": {\"code\", \"message\"}}`. Lookups are \
                       limited per client address (a batch costs one lookup per 100 items); \
                       over the limit the answer is 429 with `Retry-After`.\n\n\
                       The manufacturer's systems, retailers and repair shops use an \
                       integration token (`Authorization: Bearer rpt_…`) that an administrator \
                       creates at `/admin/tokens` with one or more scopes: `read` (a unit's \
                       history), `stock:write` (new units, stock movements), `sales:write` \
                       (sales). A missing, unknown or revoked token is a 401, a missing scope a \
                       403. With any valid token the lookups count against the token's own, \
                       higher allowance. Every write takes an `Idempotency-Key`: the same key \
                       with the same request within 24 hours answers as the first time and \
                       writes nothing again; with another request it is a 409.",
        version = "1"
    ),
    paths(
        status,
        batch,
        recalls,
        super::integration::create_units,
        super::integration::link_sales,
        super::integration::move_stock,
        super::integration::history
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "lookup", description = "Recall and warranty status by serial number"),
        (name = "recalls", description = "Recall notices"),
        (name = "integration", description = "Units, sales, stock movements and histories, with an integration token")
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: integration tokens.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rpt_ followed by 43 characters")
                    .description(Some(
                        "An integration token, created by an administrator at /admin/tokens \
                         with its scopes (read, stock:write, sales:write) and shown once.",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /api/openapi.json`.
async fn openapi() -> HttpResponse {
    cors(
        HttpResponse::Ok()
            .insert_header((
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"openapi.json\"",
            ))
            .json(ApiDoc::openapi()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_endpoint() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/api/v1/status",
            "/api/v1/status/batch",
            "/api/v1/recalls",
            "/api/v1/units",
            "/api/v1/sales",
            "/api/v1/movements",
            "/api/v1/units/{gtin}/{serial}/history",
        ] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
        for schema in ["StatusAnswer", "BatchAnswer", "ErrorBody", "RecallsAnswer"] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(
            doc["paths"]["/api/v1/units"]["post"]["security"][0]["bearer"][0],
            "stock:write"
        );
        // The error body's list of refused items is optional.
        let required = &doc["components"]["schemas"]["ErrorBody"]["required"];
        assert_eq!(required, &serde_json::json!(["error"]));
    }
}
