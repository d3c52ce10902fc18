//! The last resort: a handler that panics (a bug) answers with the 500 page, its request id and
//! the security headers, like any other internal error, instead of a dropped connection; the
//! panic is logged with that id. Everything a user sends is answered long before this.
//!
//! The request cannot be kept for the answer (actix routes it in place and needs it unshared),
//! so the answer leaves as an error, rendered here while the request id is known.

use std::panic::AssertUnwindSafe;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, body::MessageBody};
use askama::Template;
use futures_util::FutureExt;

use super::error::ErrorPage;
use super::request_id::current_request_id;

/// A panic's answer: the rendered error page for one request id.
#[derive(Debug)]
struct Panicked {
    page: String,
    request_id: String,
}

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a handler panicked (request {})", self.request_id)
    }
}

impl ResponseError for Panicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::InternalServerError()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(self.page.clone());
        let headers = res.headers_mut();
        for (name, value) in super::SECURITY_HEADERS {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert(HeaderName::from_static("x-request-id"), v);
        }
        res
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(answer) => answer,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            let request_id = current_request_id();
            tracing::error!(request_id = %request_id, panic = %what, "a handler panicked");
            let page = ErrorPage {
                status: 500,
                title: "Something went wrong on our side".into(),
                message: "The problem has been logged. Please try again; if it keeps happening, contact support and quote the reference below.".into(),
                request_id: request_id.clone(),
            }
            .render()
            .unwrap_or_else(|_| "Internal error".to_owned());
            Err(Panicked { page, request_id }.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    #[actix_web::test]
    async fn a_panicking_handler_answers_with_the_error_page_and_the_next_request_is_served() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(super::middleware))
                .route(
                    "/boom",
                    web::get().to(|| async {
                        if std::hint::black_box(true) {
                            panic!("a detail for the log only");
                        }
                        HttpResponse::Ok().finish()
                    }),
                )
                .route(
                    "/fine",
                    web::get().to(|| async { HttpResponse::Ok().body("fine") }),
                ),
        )
        .await;
        // The answer leaves as an error; the server sends its `error_response`.
        let request = test::TestRequest::get().uri("/boom").to_request();
        let Err(e) = test::try_call_service(&app, request).await else {
            panic!("a panic was answered as if nothing happened");
        };
        let res = e.error_response();
        assert_eq!(res.status().as_u16(), 500);
        assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
        assert!(res.headers().contains_key("content-security-policy"));
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains("Something went wrong on our side") && !body.contains("detail"),
            "{body}"
        );
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/fine").to_request()).await;
        assert_eq!(res.status().as_u16(), 200);
    }
}
