//! The one error type handlers return: it decides the status and renders the error page, with
//! the request id so a user can quote it and an operator can find the log line.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::request_id::current_request_id;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound { title: String, message: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("sign-in required")]
    SignInRequired(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("payload too large")]
    PayloadTooLarge,
    /// Too much of the same work at once: try again in a little while.
    #[error("busy")]
    Busy,
    #[error("conflict: {0}")]
    Conflict(String),
    /// Something that was there (a link, a waiting form) is gone for good: title, message.
    #[error("gone: {0}")]
    Gone(String, String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn not_found(title: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::NotFound {
            title: title.into(),
            message: message.into(),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            AppError::Unavailable(e.to_string())
        } else {
            AppError::Internal(e.into())
        }
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for AppError {
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        AppError::Unavailable(e.to_string())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub title: String,
    pub message: String,
    pub request_id: String,
}

impl ErrorPage {
    pub fn response(status: StatusCode, title: &str, message: &str) -> HttpResponse {
        let page = ErrorPage {
            status: status.as_u16(),
            title: title.to_owned(),
            message: message.to_owned(),
            request_id: current_request_id(),
        };
        super::render(status, &page)
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::SignInRequired(_) => StatusCode::SEE_OTHER,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone(..) => StatusCode::GONE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            AppError::NotFound { title, message } => ErrorPage::response(status, title, message),
            AppError::BadRequest(m) => {
                ErrorPage::response(status, "That request could not be understood", m)
            }
            AppError::TooManyRequests { retry_after_secs } => {
                let mut res = ErrorPage::response(
                    status,
                    "Too many lookups",
                    &format!(
                        "You have made a lot of lookups in a short time. Please wait {retry_after_secs} seconds and try again."
                    ),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                res
            }
            AppError::Unavailable(detail) => {
                tracing::warn!(request_id = %current_request_id(), error = %detail, "database unavailable");
                let mut res = ErrorPage::response(
                    status,
                    "Temporarily unavailable",
                    "The portal cannot reach its database right now. Please try again in a minute.",
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(30u32));
                res
            }
            AppError::SignInRequired(next) => HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!("/login?next={}", super::encode_query(next)),
                ))
                .finish(),
            AppError::Forbidden(m) => ErrorPage::response(status, "Not allowed", m),
            AppError::Conflict(m) => {
                ErrorPage::response(status, "That clashes with what is there", m)
            }
            AppError::Gone(title, m) => ErrorPage::response(status, title, m),
            AppError::Busy => {
                let mut res = ErrorPage::response(
                    status,
                    "Busy right now",
                    "Many people are sending files at this moment. Please try again in a minute; nothing was saved.",
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(30u32));
                res
            }
            AppError::PayloadTooLarge => ErrorPage::response(
                status,
                "Too much data",
                "What you sent is larger than this page accepts. Send less at a time.",
            ),
            AppError::Internal(e) => {
                tracing::error!(request_id = %current_request_id(), error = ?e, "internal error");
                ErrorPage::response(
                    status,
                    "Something went wrong on our side",
                    "The problem has been logged. Please try again; if it keeps happening, contact support and quote the reference below.",
                )
            }
        }
    }
}
