//! Gives every request an id: logged with the request, sent as `X-Request-Id`, shown on error
//! pages. Error pages are rendered deep inside actix, so the id travels in a task-local.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, or `-` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".to_owned())
}

fn new_id() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = new_id();
    let state = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .cloned();
    let method = req.method().clone();
    // A debug-level span: at the default `info` filter it is disabled and costs nothing on the
    // hot lookup path; warnings and errors name the request id themselves.
    let span =
        tracing::debug_span!("request", id = %id, method = %req.method(), path = %req.path());
    let start = Instant::now();
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    let _enter = span.enter();
    let took = start.elapsed();
    if let Some(state) = &state {
        let (route, status) = match &result {
            Ok(res) => (state.metrics.route_of(res.request()), res.status().as_u16()),
            Err(e) => (None, e.as_response_error().status_code().as_u16()),
        };
        state
            .metrics
            .record(route.as_deref(), &method, status, took);
    }
    match result {
        Ok(mut res) => {
            let status = res.status().as_u16();
            let ms = took.as_secs_f64() * 1000.0;
            if status >= 500 {
                tracing::warn!(request_id = %id, status, ms, "request failed");
            } else {
                tracing::debug!(status, ms, "request");
            }
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), v);
            }
            Ok(res)
        }
        Err(e) => {
            tracing::warn!(request_id = %id, error = %e, "request error");
            Err(e)
        }
    }
}
