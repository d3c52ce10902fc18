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

/// Whether an answer is a refused access decision, logged for whoever watches for probing:
/// every 401 and 403 (no or wrong credentials, a role's area, a forged form), and a 404 for a
/// signed-in account on a route that names a record (someone else's, or a guessed id). Not the
/// anonymous 404s of the public lookup and its links: asking for an unknown serial is no attack.
fn refused_access(status: u16, route: Option<&str>, account: Option<i64>) -> bool {
    match status {
        401 | 403 => true,
        404 => account.is_some() && route.is_some_and(|r| r.contains('{')),
        _ => false,
    }
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
    let (route, status) = match &result {
        Ok(res) => (
            state
                .as_ref()
                .and_then(|s| s.metrics.route_of(res.request())),
            res.status().as_u16(),
        ),
        Err(e) => (None, e.as_response_error().status_code().as_u16()),
    };
    if let Some(state) = &state {
        state
            .metrics
            .record(route.as_deref(), &method, status, took);
    }
    if let Ok(res) = &result
        && matches!(status, 401 | 403 | 404)
    {
        let account = super::session::Session::account_id_of(res.request());
        if refused_access(status, route.as_deref(), account) {
            tracing::warn!(
                request_id = %id,
                status,
                method = %method,
                route = route.as_deref().unwrap_or("unmatched"),
                account,
                "access refused"
            );
        }
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

#[cfg(test)]
mod tests {
    use super::refused_access;

    #[test]
    fn refusals_and_a_signed_in_account_missing_a_record_are_logged_not_lookups() {
        assert!(refused_access(403, Some("/admin"), Some(1)));
        assert!(refused_access(401, Some("/api/v1/units"), None));
        assert!(refused_access(404, Some("/account/claims/{id}"), Some(1)));
        assert!(!refused_access(404, Some("/account/claims/{id}"), None));
        assert!(!refused_access(404, Some("/01/{tail:.*}"), None));
        assert!(!refused_access(404, None, Some(1)));
        assert!(!refused_access(200, Some("/check"), None));
        assert!(!refused_access(303, Some("/account"), None));
    }
}
