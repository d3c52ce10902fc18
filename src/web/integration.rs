//! The token API (`/api/v1`, `Authorization: Bearer <token>`): new units, sales, stock
//! movements and a unit's history, for the manufacturer's systems, retailers and repair shops.
//!
//! Each write checks its items by the same rules as the import, the sales form and the scanner
//! stations (`UnitFields::check`, `Catalogue::resolve`, `SaleFields::check`, the station rule)
//! and writes set-based through the same paths (`insert_new_units`, `link_lines_in`,
//! `move_units`), in one transaction with its `Idempotency-Key` record: the same key with the
//! same request answers as the first time and writes nothing; with another request it is 409.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, Transaction};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::api::{ApiError, Product, Refusal, Warranty};
use super::bearer::{Authed, Read, SalesWrite, StockWrite};
use crate::db::api_tokens::ApiToken;
use crate::db::idempotency::{self, Claim};
use crate::db::import::{NewUnit, insert_new_units, load_catalogue};
use crate::db::lookup::UnitHistory;
use crate::db::sales::SaleLine;
use crate::db::stations::StationKind;
use crate::db::stock::{MovementItem, apply_movement, check_movement};
use crate::domain::api_token::idempotency_key;
use crate::domain::gtin::Gtin;
use crate::domain::import::{RowError, UnitFields};
use crate::domain::sales::SaleFields;
use crate::domain::serial::SerialNumber;

/// Most items (units, sale lines) in one write.
pub const WRITE_MAX_ITEMS: usize = 10_000;
/// Largest body of a write: 10,000 units with lot and date are about 1 MB.
pub const WRITE_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// How long a write waits for a database connection of its own before answering 503.
const CONNECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a write waits for a lock (another request with its Idempotency-Key, a sales
/// import) before it answers.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/units")
            .route(web::post().to(create_units))
            .default_service(web::to(super::api::method_not_allowed)),
    )
    .service(
        web::resource("/sales")
            .route(web::post().to(link_sales))
            .default_service(web::to(super::api::method_not_allowed)),
    )
    .service(
        web::resource("/movements")
            .route(web::post().to(move_stock))
            .default_service(web::to(super::api::method_not_allowed)),
    )
    .service(
        web::resource("/units/{gtin}/{serial}/history")
            .route(web::get().to(history))
            .default_service(web::to(super::api::method_not_allowed)),
    );
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// New units.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitsRequest {
    /// At most 10,000.
    #[schema(max_items = 10000)]
    pub units: Vec<NewUnitItem>,
}

/// A unit to create: its model's GTIN and its serial, and optionally its lot (one of the
/// model's lots) and manufacture date (else the lot's production date). It starts as
/// `manufactured`, at no location: a `receive` movement puts it in stock.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUnitItem {
    /// 8, 12, 13 or 14 digits, with a valid check digit.
    #[schema(example = "09506000134352", pattern = r"^([0-9]{8}|[0-9]{12,14})$")]
    pub gtin: String,
    /// 1–20 characters of GS1 character set 82; it must fit the model's serial format.
    #[schema(example = "SN9001", pattern = r#"^[!"%-?A-Z_a-z]{1,20}$"#)]
    pub serial: String,
    #[schema(example = "ABC123", pattern = r#"^[!"%-?A-Z_a-z]{1,20}$"#)]
    pub lot: Option<String>,
    #[schema(example = "2025-01-15", format = Date)]
    pub manufactured_on: Option<String>,
}

/// Which units were created and which were refused. Valid units are created even when others
/// are refused; a unit that exists already is refused, not changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitsAnswer {
    pub created: Vec<CreatedUnit>,
    pub refused: Vec<Refusal>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUnit {
    /// The item's position in the request, from 0.
    pub index: usize,
    /// As stored: 14 digits.
    #[schema(example = "09506000134352")]
    pub gtin: String,
    #[schema(example = "SN9001")]
    pub serial: String,
}

/// Units sold: one line per unit; lines with the same channel and order reference are one
/// sale and must agree on its date and customer email.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesRequest {
    /// At least 1, at most 10,000.
    #[schema(min_items = 1, max_items = 10000)]
    pub lines: Vec<SaleItem>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleItem {
    #[schema(example = "09506000134352", pattern = r"^([0-9]{8}|[0-9]{12,14})$")]
    pub gtin: String,
    #[schema(example = "SN0700", pattern = r#"^[!"%-?A-Z_a-z]{1,20}$"#)]
    pub serial: String,
    /// The order, invoice or receipt number, unique per channel.
    #[schema(example = "ORD-2026-1187", min_length = 1, max_length = 64)]
    pub order_ref: String,
    /// The channel or retailer that sold it.
    #[schema(example = "Web shop", min_length = 1, max_length = 100)]
    pub channel: String,
    /// Not in the future, nor before the unit was made.
    #[schema(example = "2026-11-20", format = Date)]
    pub sold_on: String,
    #[schema(example = "buyer@example.com")]
    pub customer_email: Option<String>,
}

/// Every line linked; with any problem, nothing is (422 with each refused line).
#[derive(Debug, Serialize, ToSchema)]
pub struct SalesAnswer {
    /// Units linked to their sale.
    pub linked: u64,
}

/// A stock movement: units received into a location, moved into it, or shipped from it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MovementRequest {
    pub kind: MovementKind,
    /// The location's code.
    #[schema(example = "WH-EU", pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub location: String,
    /// A shipment, delivery note or transfer reference.
    #[schema(example = "DN-4471", max_length = 64)]
    pub reference: Option<String>,
    /// At least 1, at most 10,000.
    #[schema(min_items = 1, max_items = 10000)]
    pub units: Vec<UnitRef>,
}

/// `receive`: into stock at the location (units manufactured, returned, shipped or missing);
/// `move`: from another location (units in stock); `ship`: out of the location (units in stock
/// there, or sold and still there).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    Receive,
    Move,
    Ship,
}

impl MovementKind {
    fn station(self) -> StationKind {
        match self {
            MovementKind::Receive => StationKind::Receive,
            MovementKind::Move => StationKind::Move,
            MovementKind::Ship => StationKind::Ship,
        }
    }
}

/// One unit, by its model's GTIN and its serial.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitRef {
    #[schema(example = "09506000134352", pattern = r"^([0-9]{8}|[0-9]{12,14})$")]
    pub gtin: String,
    #[schema(example = "SN0700", pattern = r#"^[!"%-?A-Z_a-z]{1,20}$"#)]
    pub serial: String,
}

/// Every unit moved; with any problem, none is (422 with each refused unit).
#[derive(Debug, Serialize, ToSchema)]
pub struct MovementAnswer {
    pub kind: MovementKind,
    #[schema(example = "WH-EU")]
    pub location: String,
    /// Units moved.
    pub moved: u64,
}

/// A unit and everything that happened to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryAnswer {
    #[schema(example = "09506000134352")]
    pub gtin: String,
    #[schema(example = "SN0700")]
    pub serial: String,
    pub product: Product,
    /// `manufactured`, `in_stock`, `shipped`, `sold`, `registered`, `returned`, `replaced`,
    /// `scrapped` or `missing`.
    #[schema(example = "in_stock")]
    pub status: String,
    #[schema(example = "ABC123")]
    pub lot: Option<String>,
    pub manufactured_on: Option<NaiveDate>,
    pub sold_on: Option<NaiveDate>,
    /// Where it is in stock (a location code).
    #[schema(example = "WH-EU")]
    pub location: Option<String>,
    pub warranty: Warranty,
    /// When and by whom the unit was recorded (an import, a form, a token), as `actor` of an
    /// event says it.
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Oldest first.
    pub events: Vec<HistoryEventJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEventJson {
    pub at: DateTime<Utc>,
    /// `received`, `moved`, `shipped`, `sold`, `unsold`, `registered`, `claimed`, `recalled`,
    /// `remedied`, `replaced`, `adjusted`, …
    #[schema(example = "received")]
    pub kind: String,
    /// Who, by kind only: `staff`, `customer`, `integration` (another token), this token as
    /// `token:<id> <name>`, or the name of a system job. People's emails and account numbers
    /// never leave the portal this way.
    #[schema(example = "staff")]
    pub actor: String,
    pub location: Option<String>,
    pub reference: Option<String>,
    pub note: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reading a write

/// A write's body, typed, with what identifies the request for its Idempotency-Key.
struct Write<T> {
    body: T,
    /// SHA-256 of the method and path and the typed body written out as JSON, so the same
    /// request sent with other spacing or key order is the same.
    hash: Vec<u8>,
    key: Option<String>,
}

fn bad(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

/// Reads a write after its token was checked: the Idempotency-Key, the media type, the size,
/// the JSON and its shape, in that order.
async fn read_write<T: DeserializeOwned + Serialize>(
    req: &HttpRequest,
    payload: web::Payload,
    operation: &str,
) -> Result<Write<T>, ApiError> {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| {
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_idempotency_key",
                    "An Idempotency-Key has visible ASCII characters only (a UUID, say).",
                )
            })?;
            let k = idempotency_key(v).map_err(|m| {
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_idempotency_key",
                    super::capitalise(m) + ".",
                )
            })?;
            Some(k.to_owned())
        }
    };
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !json {
        return Err(bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        ));
    }
    let bytes = match payload.to_bytes_limited(WRITE_BODY_LIMIT).await {
        Err(_) => {
            return Err(bad(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The body is larger than {WRITE_BODY_LIMIT} bytes."),
            ));
        }
        Ok(Err(e)) => {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("The body could not be read: {e}"),
            ));
        }
        Ok(Ok(b)) => b,
    };
    // Straight into the typed request: a body of the wrong shape stops at its first wrong
    // value instead of being built up as a tree first.
    let body: T = serde_json::from_slice(&bytes).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            bad(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("The body does not have the expected shape: {e}"),
            )
        } else {
            bad(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("The body is not valid JSON: {e}"),
            )
        }
    })?;
    // The typed request written out again is canonical: fields in one order, no spacing, an
    // absent optional field the same as null.
    let canonical = serde_json::to_vec(&body).map_err(internal)?;
    let hash = Sha256::new()
        .chain_update(operation.as_bytes())
        .chain_update(b"\n")
        .chain_update(&canonical)
        .finalize()
        .to_vec();
    Ok(Write { body, hash, key })
}

fn check_count(n: usize, what: &str) -> Result<(), ApiError> {
    if n > WRITE_MAX_ITEMS {
        return Err(bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("A request has at most {WRITE_MAX_ITEMS} {what}; this one has {n}."),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing, once per Idempotency-Key

/// A write's answer, recorded with its Idempotency-Key.
struct Answer {
    status: StatusCode,
    body: String,
}

impl Answer {
    fn ok<T: Serialize>(body: &T) -> Result<Self, ApiError> {
        Ok(Answer {
            status: StatusCode::OK,
            body: serde_json::to_string(body).map_err(internal)?,
        })
    }

    /// 422: the items were refused; nothing was written.
    fn refused(message: impl Into<String>, mut refused: Vec<Refusal>) -> Result<Self, ApiError> {
        refused.sort_by_key(|r| r.index);
        let e = bad(StatusCode::UNPROCESSABLE_ENTITY, "refused", message).refused(refused);
        Ok(Answer {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: serde_json::to_string(&e.body()).map_err(internal)?,
        })
    }

    /// 422 about the request as a whole (no item at fault).
    fn invalid(code: &'static str, message: impl Into<String>) -> Result<Self, ApiError> {
        let e = bad(StatusCode::UNPROCESSABLE_ENTITY, code, message);
        Ok(Answer {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: serde_json::to_string(&e.body()).map_err(internal)?,
        })
    }

    fn response(self, replayed: bool) -> HttpResponse {
        let mut res = HttpResponse::build(self.status)
            .content_type("application/json")
            .body(self.body);
        if replayed {
            res.headers_mut().insert(
                header::HeaderName::from_static("idempotency-replayed"),
                HeaderValue::from_static("true"),
            );
        }
        res
    }
}

/// A database failure as the API answers it: waiting too long for a lock is a 503 to retry
/// (nothing was written), anything else a 500.
fn internal(e: impl Into<anyhow::Error>) -> ApiError {
    let e: anyhow::Error = e.into();
    let lock_wait = e.chain().any(|c| {
        c.downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
            == Some(&SqlState::LOCK_NOT_AVAILABLE)
    });
    if lock_wait {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Another write holds what this one needs (a sales import, say); nothing was \
             written: try again in a few seconds.",
        )
        .retry_after(5);
    }
    ApiError::from(super::AppError::Internal(e))
}

/// Runs `work` in a transaction of its own connection (the sales path stages with COPY, which
/// the pool's connections cannot do), after claiming the write's Idempotency-Key in the same
/// transaction, and records its answer there before committing. An `Err` from `work` (the
/// database failed) rolls everything back, the key included, so the client may retry.
async fn write_once<T>(
    state: &AppState,
    token: &ApiToken,
    write: &Write<T>,
    work: impl AsyncFnOnce(&Transaction<'_>) -> Result<Answer, ApiError>,
) -> Result<HttpResponse, ApiError> {
    // At most as many of these connections as the pool has, so integrations cannot exhaust
    // the database's connections.
    let _slot = tokio::time::timeout(CONNECTION_WAIT, state.api_writes.acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::from(super::AppError::Unavailable(
                "every connection for API writes is busy".into(),
            ))
        })?;
    let mut client = state.bulk_client().await?;
    // The key's wait below relies on READ COMMITTED (a later statement sees the other
    // request's commit), whatever the database's default.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(internal)?;
    // No lock is waited for longer than this: a write held up by another one with the same
    // key, or by a sales import, answers instead of holding a connection.
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}s'",
        LOCK_WAIT.as_secs()
    ))
    .await
    .map_err(internal)?;
    // The token is still live, and stays so until this commits: a revocation waits for it.
    let live = tx
        .query_opt(
            "SELECT 1 FROM api_tokens WHERE id = $1 AND revoked_at IS NULL FOR SHARE",
            &[&token.id],
        )
        .await
        .map_err(internal)?;
    if live.is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "This integration token was revoked; ask an administrator for a new one.",
        )
        .challenge("Bearer realm=\"recall-portal\", error=\"invalid_token\""));
    }
    if let Some(key) = &write.key {
        match idempotency::claim(&tx, token.id, key, &write.hash)
            .await
            .map_err(internal)?
        {
            Claim::New => {}
            Claim::Replay { status, body } => {
                let status = StatusCode::from_u16(status).map_err(internal)?;
                return Ok(Answer { status, body }.response(true));
            }
            Claim::OtherRequest => {
                return Err(bad(
                    StatusCode::CONFLICT,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for another request in the last 24 hours; \
                     use a new key for a new request.",
                ));
            }
            Claim::InProgress => {
                return Err(bad(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still being processed; try again \
                     in a moment to get its answer.",
                )
                .retry_after(1));
            }
        }
    }
    let answer = work(&tx).await?;
    if let Some(key) = &write.key {
        idempotency::record(&tx, token.id, key, answer.status.as_u16(), &answer.body)
            .await
            .map_err(internal)?;
    }
    tx.commit().await.map_err(internal)?;
    Ok(answer.response(false))
}

/// The GTINs a request names, as stored (14 digits): the catalogue it needs. One that does not
/// parse is refused item by item later.
fn gtins_named<'a>(gtins: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = gtins
        .filter_map(|g| Gtin::parse(g.trim()).ok())
        .map(|g| g.as_string())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn refusals(errors: Vec<RowError>) -> Vec<Refusal> {
    errors
        .into_iter()
        .map(|e| Refusal {
            index: usize::try_from(e.line).unwrap_or(usize::MAX),
            field: e.column,
            // Shared checks count file lines; here the items are counted from 0.
            reason: e.reason.replace(" on line ", " at index "),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Creates units, up to 10,000 at once, checked by the import's rules and written with one
/// statement. Valid units are created even when others are refused.
#[utoipa::path(
    post,
    path = "/api/v1/units",
    tag = "integration",
    request_body = UnitsRequest,
    params(IdempotencyHeader),
    security(("bearer" = ["stock:write"])),
    responses(
        (status = 200, description = "Which units were created and which were refused, and why", body = UnitsAnswer),
        (status = 400, description = "The body is not JSON, or the Idempotency-Key is not valid", body = super::api::ErrorBody),
        (status = 401, description = "No token, or not a valid one", body = super::api::ErrorBody),
        (status = 403, description = "The token lacks the stock:write scope", body = super::api::ErrorBody),
        (status = 409, description = "The Idempotency-Key came with another request, or its request is still running", body = super::api::ErrorBody),
        (status = 413, description = "More than 10,000 units, or a body over 4 MiB", body = super::api::ErrorBody),
        (status = 415, description = "The body is not application/json", body = super::api::ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape, or has no units", body = super::api::ErrorBody),
        (status = 503, description = "The database cannot be reached, or another write holds what this one needs (`busy`, with Retry-After): nothing was written", body = super::api::ErrorBody),
    )
)]
pub(super) async fn create_units(
    auth: Authed<StockWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let write: Write<UnitsRequest> = read_write(&req, payload, "POST /api/v1/units").await?;
    let items = &write.body.units;
    check_count(items.len(), "units")?;
    let actor = auth.token.actor();
    write_once(&state, &auth.token, &write, async |tx| {
        if items.is_empty() {
            return Answer::invalid("invalid_body", "Send at least one unit.");
        }
        let gtins = gtins_named(items.iter().map(|i| i.gtin.as_str()));
        let catalogue = load_catalogue(tx, Some(&gtins)).await.map_err(internal)?;
        let mut refused = Vec::new();
        let mut new: Vec<NewUnit> = Vec::with_capacity(items.len());
        // Each new unit's position in the request and its GTIN as stored.
        let mut positions: Vec<(usize, String)> = Vec::with_capacity(items.len());
        let mut seen: HashMap<(i64, String), usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let fields = UnitFields {
                gtin: &item.gtin,
                serial: &item.serial,
                lot: item.lot.as_deref(),
                manufactured_on: item.manufactured_on.as_deref(),
                ..Default::default()
            };
            let unit = match fields.check(i as u64) {
                Err(errors) => {
                    refused.extend(refusals(errors));
                    continue;
                }
                Ok(row) => {
                    let gtin = row.gtin.clone();
                    match catalogue.resolve(row) {
                        Err(e) => {
                            refused.extend(refusals(vec![e]));
                            continue;
                        }
                        Ok(u) => (u, gtin),
                    }
                }
            };
            let (unit, gtin) = unit;
            if let Some(first) = seen.get(&(unit.model_id, unit.serial_key.clone())) {
                refused.push(Refusal {
                    index: i,
                    field: "serial".into(),
                    reason: format!("the same unit is already at index {first}"),
                });
                continue;
            }
            seen.insert((unit.model_id, unit.serial_key.clone()), i);
            new.push(unit);
            positions.push((i, gtin));
        }
        let inserted = if new.is_empty() {
            Vec::new()
        } else {
            insert_new_units(tx, &new, &actor).await.map_err(internal)?
        };
        let mut created = Vec::with_capacity(inserted.len());
        let mut inserted = inserted.into_iter().peekable();
        for (at, (unit, (i, gtin))) in new.iter().zip(positions).enumerate() {
            if inserted.next_if_eq(&at).is_some() {
                created.push(CreatedUnit {
                    index: i,
                    gtin,
                    serial: unit.serial.clone(),
                });
            } else {
                refused.push(Refusal {
                    index: i,
                    field: "serial".into(),
                    reason: format!("{} already exists for this model", unit.serial),
                });
            }
        }
        refused.sort_by_key(|r| r.index);
        Answer::ok(&UnitsAnswer { created, refused })
    })
    .await
}

/// Links units to their sales, up to 10,000 lines at once, through the same set-based path as
/// the sales file and form: every line links, or none does and each refused line says why.
#[utoipa::path(
    post,
    path = "/api/v1/sales",
    tag = "integration",
    request_body = SalesRequest,
    params(IdempotencyHeader),
    security(("bearer" = ["sales:write"])),
    responses(
        (status = 200, description = "Every line linked", body = SalesAnswer),
        (status = 400, description = "The body is not JSON, or the Idempotency-Key is not valid", body = super::api::ErrorBody),
        (status = 401, description = "No token, or not a valid one", body = super::api::ErrorBody),
        (status = 403, description = "The token lacks the sales:write scope", body = super::api::ErrorBody),
        (status = 409, description = "The Idempotency-Key came with another request, or its request is still running", body = super::api::ErrorBody),
        (status = 413, description = "More than 10,000 lines, or a body over 4 MiB", body = super::api::ErrorBody),
        (status = 415, description = "The body is not application/json", body = super::api::ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape, or lines were refused (`refused` lists each): nothing was linked", body = super::api::ErrorBody),
        (status = 503, description = "The database cannot be reached, or another write holds what this one needs (`busy`, with Retry-After): nothing was written", body = super::api::ErrorBody),
    )
)]
pub(super) async fn link_sales(
    auth: Authed<SalesWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let write: Write<SalesRequest> = read_write(&req, payload, "POST /api/v1/sales").await?;
    let items = &write.body.lines;
    check_count(items.len(), "lines")?;
    let actor = auth.token.actor();
    let today = Utc::now().date_naive();
    write_once(&state, &auth.token, &write, async |tx| {
        if items.is_empty() {
            return Answer::invalid("invalid_body", "Send at least one line.");
        }
        let gtins = gtins_named(items.iter().map(|i| i.gtin.as_str()));
        let catalogue = load_catalogue(tx, Some(&gtins)).await.map_err(internal)?;
        let mut refused = Vec::new();
        let mut lines = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let fields = SaleFields {
                gtin: &item.gtin,
                serial: &item.serial,
                order_ref: &item.order_ref,
                channel: &item.channel,
                sold_on: &item.sold_on,
                customer_email: item.customer_email.as_deref().unwrap_or(""),
            };
            let record = match fields.check(i as u64, today) {
                Ok(r) => r,
                Err(errors) => {
                    refused.extend(refusals(errors));
                    continue;
                }
            };
            let Some(model) = catalogue.models.get(&record.gtin) else {
                refused.push(Refusal {
                    index: i,
                    field: "gtin".into(),
                    reason: format!("no product model has GTIN {}", record.gtin),
                });
                continue;
            };
            lines.push(SaleLine {
                line: i as u64,
                model_id: Some(model.id),
                serial_key: model.serial_key(&record.serial),
                serial: record.serial,
                sale: record.sale,
            });
        }
        if !refused.is_empty() {
            return Answer::refused(
                format!(
                    "{} line(s) were refused; nothing was linked.",
                    refused.len()
                ),
                refused,
            );
        }
        let outcome = crate::db::sales::link_lines_in(tx, &lines, &actor)
            .await
            .map_err(internal)?;
        if !outcome.ok() {
            return Answer::refused(
                format!(
                    "{} line(s) were refused; nothing was linked.",
                    outcome.error_count
                ),
                refusals(outcome.errors),
            );
        }
        Answer::ok(&SalesAnswer {
            linked: outcome.inserted,
        })
    })
    .await
}

/// Receives units into a location, moves them into it or ships them from it, up to 10,000 at
/// once, by the scanner stations' rules: every unit moves, or none does and each refused unit
/// says why.
#[utoipa::path(
    post,
    path = "/api/v1/movements",
    tag = "integration",
    request_body = MovementRequest,
    params(IdempotencyHeader),
    security(("bearer" = ["stock:write"])),
    responses(
        (status = 200, description = "Every unit moved", body = MovementAnswer),
        (status = 400, description = "The body is not JSON, or the Idempotency-Key is not valid", body = super::api::ErrorBody),
        (status = 401, description = "No token, or not a valid one", body = super::api::ErrorBody),
        (status = 403, description = "The token lacks the stock:write scope", body = super::api::ErrorBody),
        (status = 409, description = "The Idempotency-Key came with another request, or its request is still running", body = super::api::ErrorBody),
        (status = 413, description = "More than 10,000 units, or a body over 4 MiB", body = super::api::ErrorBody),
        (status = 415, description = "The body is not application/json", body = super::api::ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape, the location or reference is not valid, or units were refused (`refused` lists each): nothing moved", body = super::api::ErrorBody),
        (status = 503, description = "The database cannot be reached, or another write holds what this one needs (`busy`, with Retry-After): nothing was written", body = super::api::ErrorBody),
    )
)]
pub(super) async fn move_stock(
    auth: Authed<StockWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let write: Write<MovementRequest> = read_write(&req, payload, "POST /api/v1/movements").await?;
    let m = &write.body;
    check_count(m.units.len(), "units")?;
    let actor = auth.token.actor();
    write_once(&state, &auth.token, &write, async |tx| {
        if m.units.is_empty() {
            return Answer::invalid("invalid_body", "Send at least one unit.");
        }
        let reference = m
            .reference
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if let Some(r) = reference
            && (r.chars().count() > 64 || r.chars().any(char::is_control))
        {
            return Answer::invalid(
                "invalid_reference",
                "A reference has at most 64 characters, on one line.",
            );
        }
        let gtins = gtins_named(m.units.iter().map(|u| u.gtin.as_str()));
        let catalogue = load_catalogue(tx, Some(&gtins)).await.map_err(internal)?;
        let code = m.location.trim().to_ascii_uppercase();
        let Some(location) = catalogue.location(&code) else {
            return Answer::invalid(
                "unknown_location",
                format!(
                    "There is no location “{}”.",
                    crate::domain::import::shorten(&code)
                ),
            );
        };
        let mut refused = Vec::new();
        let mut units: Vec<MovementItem> = Vec::with_capacity(m.units.len());
        let mut seen: HashMap<(i64, String), usize> = HashMap::new();
        for (i, u) in m.units.iter().enumerate() {
            let mut refuse = |field: &str, reason: String| {
                refused.push(Refusal {
                    index: i,
                    field: field.into(),
                    reason,
                })
            };
            let gtin = match Gtin::parse_exact(u.gtin.trim()) {
                Ok(g) => g.as_string(),
                Err(e) => {
                    refuse("gtin", e.to_string());
                    continue;
                }
            };
            let serial = match SerialNumber::parse(u.serial.trim()) {
                Ok(s) => s.to_string(),
                Err(e) => {
                    refuse("serial", e.to_string());
                    continue;
                }
            };
            let Some(model) = catalogue.models.get(&gtin) else {
                refuse("gtin", format!("no product model has GTIN {gtin}"));
                continue;
            };
            let key = model.serial_key(&serial);
            if let Some(first) = seen.get(&(model.id, key.clone())) {
                refuse(
                    "serial",
                    format!("the same unit is already at index {first}"),
                );
                continue;
            }
            seen.insert((model.id, key.clone()), i);
            units.push(MovementItem {
                index: i,
                model_id: model.id,
                serial,
                serial_key: key,
            });
        }
        // Every unit that was named properly is checked too, so one answer lists every
        // problem.
        let kind = m.kind.station();
        let (ids, unmovable) = check_movement(tx, kind, (location, &code), &units)
            .await
            .map_err(internal)?;
        refused.extend(unmovable.into_iter().map(|u| Refusal {
            index: u.index,
            field: "serial".into(),
            reason: u.reason,
        }));
        if !refused.is_empty() {
            return Answer::refused(
                format!("{} unit(s) were refused; nothing moved.", refused.len()),
                refused,
            );
        }
        let moved = apply_movement(tx, kind, location, &ids, reference, &actor)
            .await
            .map_err(internal)?;
        Answer::ok(&MovementAnswer {
            kind: m.kind,
            location: code,
            moved,
        })
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HistoryPath {
    /// The model's GTIN (8, 12, 13 or 14 digits).
    #[param(example = "09506000134352", pattern = r"^([0-9]{8}|[0-9]{12,14})$")]
    gtin: String,
    /// The serial exactly as printed (percent-encoded: `/` as `%2F`).
    #[param(example = "SN0700", pattern = r#"^[!"%-?A-Z_a-z]{1,20}$"#)]
    serial: String,
}

/// A unit's history: what it is, where it stands, and every event since it was recorded.
#[utoipa::path(
    get,
    path = "/api/v1/units/{gtin}/{serial}/history",
    tag = "integration",
    params(HistoryPath),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The unit and its history", body = HistoryAnswer),
        (status = 400, description = "The GTIN or serial is not valid", body = super::api::ErrorBody),
        (status = 401, description = "No token, or not a valid one", body = super::api::ErrorBody),
        (status = 403, description = "The token lacks the read scope", body = super::api::ErrorBody),
        (status = 404, description = "No unit of this model has this serial", body = super::api::ErrorBody),
        (status = 429, description = "Too many lookups with this token", body = super::api::ErrorBody),
        (status = 503, description = "The database cannot be reached", body = super::api::ErrorBody),
    )
)]
pub(super) async fn history(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<HistoryPath>,
) -> Result<HttpResponse, ApiError> {
    let HistoryPath { gtin, serial } = path.into_inner();
    state
        .token_limiter
        .check_n(auth.token.id, 1)
        .map_err(|e| ApiError::over_limit(e, true))?;
    let gtin = Gtin::parse(&gtin)
        .map_err(|e| {
            bad(
                StatusCode::BAD_REQUEST,
                "invalid_gtin",
                super::capitalise(&e.to_string()),
            )
        })?
        .as_string();
    let serial = SerialNumber::parse(&serial).map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            "invalid_serial",
            super::capitalise(&e.to_string()),
        )
    })?;
    let mut conn = state.pool.get().await?;
    let not_found = || {
        bad(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No unit of the model with GTIN {gtin} has the serial {serial}."),
        )
    };
    let id = UnitHistory::find(&mut conn, &gtin, &serial)
        .await?
        .ok_or_else(not_found)?;
    let h = UnitHistory::load(&mut conn, id)
        .await?
        .ok_or_else(not_found)?;
    drop(conn);
    let warranty = super::api::warranty_json(&h.warranty(Utc::now().date_naive()));
    Ok(HttpResponse::Ok().json(HistoryAnswer {
        gtin: h.model.gtin.clone(),
        product: Product {
            name: h.model.name.clone(),
            brand: h.model.brand.clone(),
            model: h.model.sku.clone(),
        },
        serial: h.serial,
        status: h.status,
        lot: h.lot.map(|l| l.code),
        manufactured_on: h.manufactured_on,
        sold_on: h.sold_on,
        location: h.location,
        warranty,
        created_at: h.created_at,
        created_by: actor_for(&h.created_by, &auth.token),
        events: h
            .events
            .into_iter()
            .map(|e| HistoryEventJson {
                at: e.at,
                kind: e.kind,
                actor: actor_for(&e.actor, &auth.token),
                location: e.location,
                reference: e.reference,
                note: e.note,
            })
            .collect(),
    }))
}

/// An event's actor as a token holder may see it: the kind of person, never who; the asking
/// token itself by name; system jobs as they are.
fn actor_for(actor: &str, token: &ApiToken) -> String {
    match actor.split_once(':').map(|(kind, _)| kind) {
        Some("admin" | "staff") => "staff".into(),
        Some("customer") => "customer".into(),
        Some("token") if actor == token.actor() => actor.into(),
        Some("token") => "integration".into(),
        _ => actor.into(),
    }
}

/// The `Idempotency-Key` header of a write.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// Any unique string (a UUID, say), 1–255 visible ASCII characters. The same key with the
    /// same request within 24 hours answers as the first time (marked `Idempotency-Replayed:
    /// true`) and writes nothing again; with another request it is 409. Keys are per token.
    #[serde(rename = "Idempotency-Key")]
    #[param(min_length = 1, max_length = 255, pattern = "^[!-~]+$")]
    #[allow(dead_code)] // read from the request by `read_write`; here for the document
    idempotency_key: Option<String>,
}
