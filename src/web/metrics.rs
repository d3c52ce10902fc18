//! `GET /metrics` in Prometheus's text format (version 0.0.4), for the operator's monitoring:
//!
//! - `portal_http_requests_total{route, method, status}`: requests answered, by route pattern
//!   (`/account/claims/{id}` is one series, whatever the id; addresses no route matched are
//!   `unmatched`), method and status class (`2xx` …);
//! - `portal_http_request_duration_seconds{route, method}`: a latency histogram;
//! - `portal_db_pool_connections{state}`, `portal_db_pool_max`, `portal_db_pool_waiting`: the
//!   process's pool;
//! - `portal_db_up`, and from the database (shared by every process): `portal_outbox_mails
//!   {status="queued"|"failed"}`, `portal_outbox_oldest_due_seconds` (how late the most overdue
//!   queued mail is: an SMTP outage shows here), `portal_import_jobs{status="running"|"failed"}`.
//!
//! The counters are this process's since it started (`portal_start_time_seconds`); with several
//! processes, Prometheus sums them. The figures say how busy the portal is, so the route is
//! open only with `Authorization: Bearer <PORTAL_METRICS_TOKEN>`; without a token configured it
//! answers 404 (a reverse proxy on this host would make every client look local, so being on
//! loopback proves nothing).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::Method;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct RouteStats {
    /// Answers by status class: 1xx … 5xx.
    status: [AtomicU64; 5],
    /// Not cumulative: each request counts in the first bucket it fits (the last slot is +Inf).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// Route pattern → each method's figures.
type Routes = HashMap<String, Vec<(Method, Arc<RouteStats>)>>;

/// Most address shapes whose route pattern is remembered (see [`Metrics::route_of`]).
const MAX_SHAPES: usize = 4096;

/// Requests by route pattern and method, since the process started.
pub struct Metrics {
    routes: RwLock<Routes>,
    /// Address shape → the route pattern it matched (None: no route).
    patterns: RwLock<HashMap<String, Option<String>>>,
    started: SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: RwLock::new(HashMap::new()),
            patterns: RwLock::new(HashMap::new()),
            started: SystemTime::now(),
        }
    }
}

impl Metrics {
    /// The route pattern `req` matched (None: no route matched). actix finds it by walking
    /// every route again, dynamic ones by regular expression (`HttpRequest::match_pattern`), so
    /// the answer is remembered per address shape: the path with each matched segment replaced
    /// by its name (`/account/claims/{id}` for every claim). At most [`MAX_SHAPES`] shapes are
    /// kept; addresses beyond them (junk ones, typically) are walked each time, never stored.
    pub fn route_of(&self, req: &actix_web::HttpRequest) -> Option<String> {
        let shape = shape_of(req.path(), req.match_info());
        if let Ok(known) = self.patterns.read()
            && let Some(pattern) = known.get(&shape)
        {
            return pattern.clone();
        }
        let pattern = req.match_pattern();
        if let Ok(mut known) = self.patterns.write()
            && known.len() < MAX_SHAPES
        {
            known.insert(shape, pattern.clone());
        }
        pattern
    }

    /// Counts one answered request. `route` is the matched pattern (None: no route matched).
    pub fn record(&self, route: Option<&str>, method: &Method, status: u16, took: Duration) {
        let route = route.unwrap_or("unmatched");
        let stats = self.stats(route, method);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        stats.status[class].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        stats.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn stats(&self, route: &str, method: &Method) -> Arc<RouteStats> {
        let find = |routes: &Routes| {
            routes
                .get(route)
                .and_then(|ms| ms.iter().find(|(m, _)| m == method))
                .map(|(_, s)| Arc::clone(s))
        };
        if let Ok(routes) = self.routes.read()
            && let Some(s) = find(&routes)
        {
            return s;
        }
        // The first request of its route and method (a poisoned lock still holds the map).
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = find(&routes) {
            return s;
        }
        let s = Arc::new(RouteStats::default());
        routes
            .entry(route.to_owned())
            .or_default()
            .push((method.clone(), Arc::clone(&s)));
        s
    }

    /// The HTTP series, in the text format.
    fn render_http(&self, out: &mut String) {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut series: Vec<(&str, &Method, &RouteStats)> = routes
            .iter()
            .flat_map(|(r, ms)| ms.iter().map(move |(m, s)| (r.as_str(), m, &**s)))
            .collect();
        series.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
        out.push_str(
            "# HELP portal_http_requests_total HTTP requests answered, by route pattern, method and status class.\n\
             # TYPE portal_http_requests_total counter\n",
        );
        for (route, method, s) in &series {
            for (i, n) in s.status.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "portal_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}xx\"}} {n}",
                        escape(route),
                        method,
                        i + 1
                    );
                }
            }
        }
        out.push_str(
            "# HELP portal_http_request_duration_seconds Time from the request's arrival to its answer, by route pattern and method.\n\
             # TYPE portal_http_request_duration_seconds histogram\n",
        );
        for (route, method, s) in &series {
            let labels = format!("route=\"{}\",method=\"{}\"", escape(route), method);
            let mut cumulative = 0;
            for (i, n) in s.buckets.iter().enumerate() {
                cumulative += n.load(Ordering::Relaxed);
                let le = BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "portal_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "portal_http_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "portal_http_request_duration_seconds_count{{{labels}}} {cumulative}"
            );
        }
    }
}

/// `path` with each segment that holds the next matched value replaced by `{name}`.
fn shape_of(path: &str, info: &actix_web::dev::Path<actix_web::dev::Url>) -> String {
    let mut matched = info.iter();
    let mut next = matched.next();
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match next {
            Some((name, value)) if value == segment => {
                out.push('{');
                out.push_str(name);
                out.push('}');
                next = matched.next();
            }
            _ => out.push_str(segment),
        }
    }
    out
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Whether the request carries the configured token (compared in constant time).
fn authorized(req: &HttpRequest, token: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(diesel::QueryableByName)]
struct DbFigures {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    queued: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    failed: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest_due: f64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    imports_running: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    imports_failed: i64,
}

/// The figures kept in the database, read within two seconds (or not at all).
async fn db_figures(state: &AppState) -> Option<DbFigures> {
    use diesel_async::RunQueryDsl;
    let read = async {
        let mut conn = state.pool.get().await.ok()?;
        diesel::sql_query(
            "SELECT (SELECT count(*) FROM outbox WHERE status = 'queued') AS queued, \
                    (SELECT count(*) FROM outbox WHERE status = 'failed') AS failed, \
                    (SELECT coalesce(greatest(extract(epoch FROM now() - min(next_attempt_at)), 0), 0)::float8 \
                       FROM outbox WHERE status = 'queued') AS oldest_due, \
                    (SELECT count(*) FROM import_jobs WHERE status = 'running') AS imports_running, \
                    (SELECT count(*) FROM import_jobs WHERE status = 'failed') AS imports_failed",
        )
        .get_result::<DbFigures>(&mut conn)
        .await
        .map_err(|e| tracing::warn!(error = %e, "metrics: database figures unavailable"))
        .ok()
    };
    tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .ok()
        .flatten()
}

pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(token) = state
        .config
        .metrics_token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Metrics are off: set PORTAL_METRICS_TOKEN to turn them on.");
    };
    if !authorized(&req, token) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
            .content_type("text/plain; charset=utf-8")
            .body("Send Authorization: Bearer <PORTAL_METRICS_TOKEN>.");
    }
    let mut out = String::with_capacity(16 * 1024);
    state.metrics.render_http(&mut out);

    let pool = state.pool.status();
    let _ = write!(
        out,
        "# HELP portal_db_pool_connections This process's pooled database connections, in use or idle.\n\
         # TYPE portal_db_pool_connections gauge\n\
         portal_db_pool_connections{{state=\"in_use\"}} {}\n\
         portal_db_pool_connections{{state=\"idle\"}} {}\n\
         # HELP portal_db_pool_max The pool's size limit (PORTAL_DB_POOL_SIZE).\n\
         # TYPE portal_db_pool_max gauge\n\
         portal_db_pool_max {}\n\
         # HELP portal_db_pool_waiting Requests waiting for a pooled connection.\n\
         # TYPE portal_db_pool_waiting gauge\n\
         portal_db_pool_waiting {}\n",
        pool.size.saturating_sub(pool.available),
        pool.available,
        pool.max_size,
        pool.waiting,
    );
    let figures = db_figures(&state).await;
    let _ = write!(
        out,
        "# HELP portal_db_up Whether the database answered this scrape within 2 s.\n\
         # TYPE portal_db_up gauge\n\
         portal_db_up {}\n",
        u8::from(figures.is_some())
    );
    if let Some(f) = figures {
        let _ = write!(
            out,
            "# HELP portal_outbox_mails Mails in the outbox not sent: queued (including retries) or failed for good.\n\
             # TYPE portal_outbox_mails gauge\n\
             portal_outbox_mails{{status=\"queued\"}} {}\n\
             portal_outbox_mails{{status=\"failed\"}} {}\n\
             # HELP portal_outbox_oldest_due_seconds How long the most overdue queued mail has been due (0: none).\n\
             # TYPE portal_outbox_oldest_due_seconds gauge\n\
             portal_outbox_oldest_due_seconds {}\n\
             # HELP portal_import_jobs Import jobs running, and failed ones kept in the job list.\n\
             # TYPE portal_import_jobs gauge\n\
             portal_import_jobs{{status=\"running\"}} {}\n\
             portal_import_jobs{{status=\"failed\"}} {}\n",
            f.queued, f.failed, f.oldest_due, f.imports_running, f.imports_failed
        );
    }
    let started = state
        .metrics
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _ = write!(
        out,
        "# HELP portal_start_time_seconds When this process started (Unix time).\n\
         # TYPE portal_start_time_seconds gauge\n\
         portal_start_time_seconds {started}\n\
         # HELP portal_build_info The portal's version.\n\
         # TYPE portal_build_info gauge\n\
         portal_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_route_status_class_and_bucket() {
        let m = Metrics::default();
        m.record(
            Some("/check"),
            &Method::GET,
            200,
            Duration::from_micros(800),
        );
        m.record(Some("/check"), &Method::GET, 404, Duration::from_millis(30));
        m.record(None, &Method::POST, 503, Duration::from_secs(20));
        let mut out = String::new();
        m.render_http(&mut out);
        assert!(out.contains(
            "portal_http_requests_total{route=\"/check\",method=\"GET\",status=\"2xx\"} 1\n"
        ));
        assert!(out.contains(
            "portal_http_requests_total{route=\"/check\",method=\"GET\",status=\"4xx\"} 1\n"
        ));
        assert!(out.contains(
            "portal_http_requests_total{route=\"unmatched\",method=\"POST\",status=\"5xx\"} 1\n"
        ));
        // Cumulative buckets: 0.8 ms is under 1 ms, 30 ms under 50 ms.
        assert!(out.contains(
            "portal_http_request_duration_seconds_bucket{route=\"/check\",method=\"GET\",le=\"0.001\"} 1\n"
        ));
        assert!(out.contains(
            "portal_http_request_duration_seconds_bucket{route=\"/check\",method=\"GET\",le=\"0.025\"} 1\n"
        ));
        assert!(out.contains(
            "portal_http_request_duration_seconds_bucket{route=\"/check\",method=\"GET\",le=\"0.05\"} 2\n"
        ));
        assert!(out.contains(
            "portal_http_request_duration_seconds_bucket{route=\"unmatched\",method=\"POST\",le=\"10\"} 0\n"
        ));
        assert!(out.contains(
            "portal_http_request_duration_seconds_bucket{route=\"unmatched\",method=\"POST\",le=\"+Inf\"} 1\n"
        ));
        assert!(out.contains(
            "portal_http_request_duration_seconds_count{route=\"/check\",method=\"GET\"} 2\n"
        ));
        assert!(out.contains(
            "portal_http_request_duration_seconds_sum{route=\"/check\",method=\"GET\"} 0.0308\n"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
