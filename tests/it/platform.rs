//! Cross-cutting behaviour: security headers, request ids, error pages, health, rate limits.

use crate::helpers::{spawn_app, spawn_app_with};

fn assert_security_headers(r: &reqwest::Response, path: &str) {
    let h = r.headers();
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no CSP"))
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{path}: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{path}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    assert_eq!(h["x-frame-options"], "DENY", "{path}");
    assert_eq!(h["x-request-id"].len(), 16, "{path}");
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/login",
        "/signup",
        "/admin",
        "/check?serial=SN0700",
        "/check?serial=%23",
        "/nope",
        "/static/style.css",
        "/healthz",
        "/01/09506000134352/21/SN0700",
        "/01/x",
    ] {
        let r = app.get(path).await;
        assert_security_headers(&r, path);
    }
}

#[tokio::test]
async fn not_found_is_a_page_in_the_layout_with_the_request_id() {
    let app = spawn_app().await;
    let r = app.get("/no/such/page").await;
    assert_eq!(r.status().as_u16(), 404);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains("<title>Page not found"));
    assert!(body.contains(r#"<link rel="stylesheet" href="/static/style.css">"#));
    assert!(
        body.contains(&format!("reference <code>{id}</code>")),
        "{body}"
    );
}

#[tokio::test]
async fn a_server_error_is_a_500_page_that_leaks_nothing() {
    let app = spawn_app().await;
    app.sql("ALTER TABLE lots RENAME TO lots_away");
    let r = app.get("/check?serial=SN0700").await;
    assert_eq!(r.status().as_u16(), 500);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains("Something went wrong on our side"));
    assert!(body.contains(&format!("reference <code>{id}</code>")));
    assert!(
        !body.contains("lots") && !body.contains("relation"),
        "no SQL detail: {body}"
    );
}

#[tokio::test]
async fn an_unreachable_database_gives_a_quick_503_and_readyz_says_so() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|c| {
        c.database_url = Some(format!("postgres://postgres:x@127.0.0.1:{port}/none"))
    })
    .await;
    let start = std::time::Instant::now();
    let r = app.get("/check?serial=SN0700").await;
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("Temporarily unavailable"));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(app.get("/readyz").await.status().as_u16(), 503);
    assert_eq!(
        app.get("/healthz").await.status().as_u16(),
        200,
        "liveness does not depend on the database"
    );
}

#[tokio::test]
async fn lookups_open_their_connections_again_when_the_database_drops_them() {
    // Two HTTP workers with two shared lookup connections each; then every connection of the
    // portal is cut, as a database restart does.
    let app = spawn_app_with(|c| {
        c.workers = 2;
        c.lookup_connections = 2;
    })
    .await;
    for _ in 0..8 {
        assert_eq!(app.get("/check?serial=SN0700").await.status().as_u16(), 200);
        assert_eq!(
            app.get("/api/v1/status?serial=SN0700")
                .await
                .status()
                .as_u16(),
            200
        );
    }
    let cut: i64 = app.scalar(
        "SELECT count(pg_terminate_backend(pid)) AS v FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    );
    assert!(cut >= 2, "the lookup connections were open: {cut}");
    // A lookup that meets a cut connection runs again on a new one: nobody sees the cut.
    for _ in 0..8 {
        let r = app.get("/check?serial=SN0700").await;
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.text().await.unwrap().contains("SN0700"));
        assert_eq!(
            app.get("/api/v1/status?serial=SN0700")
                .await
                .status()
                .as_u16(),
            200
        );
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.page("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(app.page("/readyz").await, (200, "ready".to_owned()));
}

#[tokio::test]
async fn the_stylesheet_is_served_locally() {
    let app = spawn_app().await;
    let r = app.get("/static/style.css").await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert!(r.text().await.unwrap().contains("@media"));
}

#[tokio::test]
async fn lookups_over_the_rate_limit_get_a_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.lookup_rate_per_minute = 1;
        c.lookup_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/check?serial=SN0700").await.status().as_u16(), 200);
    }
    let r = app.get("/check?serial=SN0700").await;
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(r.text().await.unwrap().contains("Too many lookups"));
    // A unit's Digital Link is a free redirect; the lookup it leads to is what counts, so a
    // scanned QR code costs one lookup, not two. The model page is a lookup of its own.
    let r = app.get("/01/09506000134352/21/SN0700").await;
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(app.get("/01/09506000134352").await.status().as_u16(), 429);
    // Pages that are not lookups are not limited.
    assert_eq!(app.get("/").await.status().as_u16(), 200);
    // An untrusted client cannot escape the limit by inventing X-Forwarded-For.
    let r = app
        .client
        .get(format!("{}/check?serial=SN0700", app.address))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance() {
    let app = spawn_app_with(|c| {
        c.lookup_rate_per_minute = 1;
        c.lookup_burst = 1;
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let get = |ip: &'static str| {
        app.client
            .get(format!("{}/check?serial=SN0700", app.address))
            .header("X-Forwarded-For", format!("198.51.100.7, {ip}"))
            .send()
    };
    assert_eq!(get("203.0.113.1").await.unwrap().status().as_u16(), 200);
    assert_eq!(get("203.0.113.1").await.unwrap().status().as_u16(), 429);
    assert_eq!(get("203.0.113.2").await.unwrap().status().as_u16(), 200);
    // An entry that does not parse stops the walk at the proxy: both land in its bucket.
    let garbled = |ip: &'static str| {
        app.client
            .get(format!("{}/check?serial=SN0700", app.address))
            .header("X-Forwarded-For", format!("{ip}, not-an-ip"))
            .send()
    };
    assert_eq!(garbled("203.0.113.5").await.unwrap().status().as_u16(), 200);
    assert_eq!(garbled("203.0.113.6").await.unwrap().status().as_u16(), 429);
}

#[tokio::test]
async fn bulk_work_runs_its_database_backend_at_a_lower_cpu_priority() {
    // The test cluster runs on this machine, as the embedded one does: an import's and a
    // launch's backends are reniced to the bulk priority (PORTAL_BULK_NICE, 10 by default);
    // a pooled connection keeps its own.
    let app = spawn_app().await;
    let client = recall_portal::db::import::connect(&app.db_url)
        .await
        .expect("connect");
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    assert_eq!(recall_portal::db::priority::nice_of(pid), Some(0));
    assert!(recall_portal::db::priority::lower_backend(&client).await);
    assert_eq!(recall_portal::db::priority::nice_of(pid), Some(10));

    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&app.db_url)
            .await
            .expect("connect");
    assert!(recall_portal::db::priority::lower_diesel_backend(&mut conn).await);
    // Every other client backend of this database (the pool's, the lookups') keeps its priority.
    assert_eq!(app.get("/check?serial=SN0700").await.status().as_u16(), 200);
    let pids: Vec<i32> = client
        .query(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("pids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let tens = pids
        .iter()
        .filter(|p| recall_portal::db::priority::nice_of(**p) == Some(10))
        .count();
    assert_eq!(
        tens, 1,
        "only the diesel connection's backend was lowered besides this one"
    );
    assert!(
        pids.len() >= 2,
        "the pool's connections are there too: {pids:?}"
    );
}

#[tokio::test]
async fn metrics_need_their_token_and_count_requests_by_route() {
    // Off without a token.
    let app = spawn_app().await;
    assert_eq!(app.get("/metrics").await.status().as_u16(), 404);

    let app = spawn_app_with(|c| c.metrics_token = Some("scrape-me-please".into())).await;
    let scrape = |auth: Option<&'static str>| {
        let mut r = app.client.get(format!("{}/metrics", app.address));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer scrape-me-pleasE"),
        Some("scrape-me-please"),
    ] {
        let r = scrape(auth).await.expect("scrape");
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
    for _ in 0..3 {
        assert_eq!(app.get("/check?serial=SN0700").await.status().as_u16(), 200);
    }
    assert_eq!(app.get("/no/such/page/4711").await.status().as_u16(), 404);
    // Two codes, one route: one series.
    for code in ["NO-SUCH-1", "NO-SUCH-2"] {
        app.get(&format!("/recalls/{code}")).await;
    }
    // Two mails waiting, one of them overdue by an hour; one failed for good.
    app.sql("UPDATE outbox SET status = 'sent', sent_at = now()");
    app.sql(
        "INSERT INTO outbox (kind, to_address, subject, body_text, body_html, status, next_attempt_at) VALUES \
         ('test', 'a@example.com', 's', 't', 'h', 'queued', now() - interval '1 hour'), \
         ('test', 'b@example.com', 's', 't', 'h', 'queued', now() + interval '1 hour'), \
         ('test', 'c@example.com', 's', 't', 'h', 'failed', now())",
    );

    let r = scrape(Some("Bearer scrape-me-please"))
        .await
        .expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = r.text().await.unwrap();
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{body}"))
    };
    assert_eq!(
        value(r#"portal_http_requests_total{route="/check",method="GET",status="2xx"}"#),
        3.0
    );
    assert_eq!(
        value(r#"portal_http_requests_total{route="unmatched",method="GET",status="4xx"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"portal_http_request_duration_seconds_count{route="/recalls/{code}",method="GET"}"#
        ),
        2.0
    );
    // Only route patterns, never the addresses asked for.
    assert!(!body.contains("4711"));
    assert!(!body.contains("NO-SUCH"));
    assert_eq!(
        value(r#"portal_http_request_duration_seconds_count{route="/check",method="GET"}"#),
        3.0
    );
    assert_eq!(
        value(
            r#"portal_http_request_duration_seconds_bucket{route="/check",method="GET",le="+Inf"}"#
        ),
        3.0
    );
    assert!(
        value(r#"portal_http_request_duration_seconds_sum{route="/check",method="GET"}"#) > 0.0
    );
    assert_eq!(value("portal_db_up"), 1.0);
    assert_eq!(value(r#"portal_outbox_mails{status="queued"}"#), 2.0);
    assert_eq!(value(r#"portal_outbox_mails{status="failed"}"#), 1.0);
    let overdue = value("portal_outbox_oldest_due_seconds");
    assert!((3590.0..3700.0).contains(&overdue), "{overdue}");
    assert_eq!(value(r#"portal_import_jobs{status="failed"}"#), 0.0);
    assert!(value("portal_db_pool_max") >= 1.0);
    assert!(value(r#"portal_db_pool_connections{state="idle"}"#) >= 0.0);
    assert!(body.contains("# TYPE portal_http_request_duration_seconds histogram"));
}
