//! Integration tokens: the admin pages (created, shown once, only a hash stored, revoked), the
//! bearer checks on the API (401/403 as JSON), the token API (units, sales, movements,
//! histories) and its Idempotency-Key (replay, conflict, concurrent requests).

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, user};

const BATTERY: &str = "09506000134352";
const DRILL: &str = "09521234543213";
const SEAT: &str = "09506000134376";

/// A signed-in administrator.
pub async fn admin(app: &TestApp) -> reqwest::Client {
    user(app, "tokens-admin@example.com", "admin").await
}

fn form_field(scope: &str) -> &'static str {
    match scope {
        "read" => "scope_read",
        "stock:write" => "scope_stock_write",
        "sales:write" => "scope_sales_write",
        other => panic!("no scope {other}"),
    }
}

/// The secret shown on a page, if any.
fn secret_in(page: &str) -> Option<String> {
    let at = page.find("value=\"rpt_")? + "value=\"".len();
    Some(page[at..at + 47].to_owned())
}

/// Creates a token through the admin pages; returns its id and its secret.
pub async fn create_token(
    app: &TestApp,
    admin: &reqwest::Client,
    name: &str,
    scopes: &[&str],
) -> (i64, String) {
    let mut form = vec![("name", name)];
    form.extend(scopes.iter().map(|s| (form_field(s), "on")));
    let (status, body, location) = app
        .submit(admin, "/admin/tokens", "/admin/tokens", &form)
        .await;
    assert_eq!(status, 303, "{body}");
    let location = location.unwrap();
    let id: i64 = location
        .trim_start_matches("/admin/tokens/")
        .trim_end_matches("/created")
        .parse()
        .unwrap();
    let (status, page, _) = app.get_with(admin, &location).await;
    assert_eq!(status, 200, "{page}");
    (id, secret_in(&page).expect("the new secret on the page"))
}

/// A token with every scope, made by a fresh administrator.
pub async fn all_scopes_token(app: &TestApp) -> String {
    let admin = admin(app).await;
    create_token(
        app,
        &admin,
        "Everything",
        &["read", "stock:write", "sales:write"],
    )
    .await
    .1
}

struct Answer {
    status: u16,
    body: Value,
    text: String,
    headers: HeaderMap,
}

/// An API request with an optional token, Idempotency-Key and JSON body (sent as given).
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut r = app.client.request(method, format!("{}{path}", app.address));
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b);
    }
    let r = r.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(ct.starts_with("application/json"), "{path}: {ct}: {text}");
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap(),
        text,
        headers,
    }
}

async fn post(app: &TestApp, path: &str, token: &str, key: Option<&str>, body: Value) -> Answer {
    call(
        app,
        reqwest::Method::POST,
        path,
        Some(token),
        key,
        Some(body.to_string()),
    )
    .await
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> Answer {
    call(app, reqwest::Method::GET, path, token, None, None).await
}

fn code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("")
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

// ---------------------------------------------------------------------------------------------
// The admin pages

#[tokio::test]
async fn an_admin_creates_a_token_whose_secret_is_shown_once_and_stored_only_hashed() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let (status, page, _) = app.get_with(&admin, "/admin/tokens").await;
    assert_eq!(status, 200);
    assert!(page.contains("No tokens yet"), "{page}");
    let (status, body, location) = app
        .submit(
            &admin,
            "/admin/tokens",
            "/admin/tokens",
            &[
                ("name", "ERP system"),
                ("scope_read", "on"),
                ("scope_stock_write", "on"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let location = location.unwrap();
    assert!(location.ends_with("/created"), "{location}");
    let id = app.scalar("SELECT max(id) FROM api_tokens");
    assert_eq!(location, format!("/admin/tokens/{id}/created"));
    // Until it is shown, the secret waits sealed: nowhere in the database in clear.
    assert_eq!(app.scalar("SELECT count(*) FROM api_token_reveals"), 1);

    let r = admin
        .get(format!("{}{location}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let page = r.text().await.unwrap();
    let secret = secret_in(&page).expect("the secret is shown");
    assert!(secret.starts_with("rpt_") && secret.len() == 47, "{secret}");
    assert!(page.contains("only this once"), "{page}");
    assert!(!location.contains(&secret));

    // Only its SHA-256 is stored; the sealed copy is gone once shown.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM api_tokens WHERE id = {id} AND token_hash = sha256(convert_to('{secret}', 'UTF8'))"
        )),
        1
    );
    assert_eq!(app.scalar("SELECT count(*) FROM api_token_reveals"), 0);
    for table in ["api_tokens", "api_token_reveals", "audit_log", "sessions"] {
        assert_eq!(
            app.scalar(&format!(
                "SELECT count(*) FROM {table} t WHERE t::text LIKE '%{}%'",
                &secret[4..]
            )),
            0,
            "{table} holds the secret"
        );
    }
    assert_eq!(
        app.text(&format!(
            "SELECT array_to_string(scopes, ',') FROM api_tokens WHERE id = {id}"
        )),
        "read,stock:write"
    );

    // A second visit does not show it.
    let (status, page, _) = app.get_with(&admin, &location).await;
    assert_eq!(status, 200);
    assert!(secret_in(&page).is_none(), "{page}");
    assert!(!page.contains(&secret));
    assert!(page.contains("not shown any more"), "{page}");

    // The list shows it, never used, not revoked; the security log names it.
    let (_, page, _) = app.get_with(&admin, "/admin/tokens").await;
    assert!(page.contains("ERP system"), "{page}");
    assert!(page.contains("read, stock:write"), "{page}");
    assert!(page.contains("never"), "{page}");
    assert!(
        page.contains(&format!("/admin/tokens/{id}/revoke")),
        "{page}"
    );
    assert!(!page.contains(&secret));
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM audit_log WHERE event = 'api_token_created' AND detail LIKE '#{id} ERP system%'"
        )),
        1
    );

    // The token works.
    let a = get(
        &app,
        &format!("/api/v1/units/{BATTERY}/SN0700/history"),
        Some(&secret),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn only_the_creating_session_sees_the_secret() {
    let app = spawn_app().await;
    let first = admin(&app).await;
    let other = user(&app, "other-admin@example.com", "admin").await;
    let (_, _, location) = app
        .submit(
            &first,
            "/admin/tokens",
            "/admin/tokens",
            &[("name", "Shop"), ("scope_sales_write", "on")],
        )
        .await;
    let location = location.unwrap();
    // Another administrator opening the address sees no secret, and does not use it up.
    let (status, page, _) = app.get_with(&other, &location).await;
    assert_eq!(status, 200);
    assert!(secret_in(&page).is_none(), "{page}");
    let (_, page, _) = app.get_with(&first, &location).await;
    assert!(secret_in(&page).is_some(), "{page}");
}

#[tokio::test]
async fn a_form_with_mistakes_comes_back_with_what_was_typed_and_creates_nothing() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let (status, page, _) = app
        .submit(&admin, "/admin/tokens", "/admin/tokens", &[("name", "  ")])
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("Give the token a name"), "{page}");
    assert!(page.contains("Choose at least one"), "{page}");
    let (status, page, _) = app
        .submit(
            &admin,
            "/admin/tokens",
            "/admin/tokens",
            &[("name", "Repair shop"), ("scope_sales_write", "")],
        )
        .await;
    // An empty value still ticks the box (browsers send "on"), so this one is fine…
    assert_eq!(status, 303, "{page}");
    let (status, page, _) = app
        .submit(
            &admin,
            "/admin/tokens",
            "/admin/tokens",
            &[("name", &"n".repeat(101)), ("scope_read", "on")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("at most 100 characters"), "{page}");
    assert!(page.contains(&"n".repeat(101)), "the name is kept");
    assert!(
        page.contains(r#"name="scope_read" value="on" checked"#),
        "the ticked box stays ticked"
    );
    assert_eq!(app.scalar("SELECT count(*) FROM api_tokens"), 1);
}

#[tokio::test]
async fn customers_and_staff_cannot_reach_the_token_pages() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let (id, _) = create_token(&app, &admin, "ERP", &["read"]).await;
    // Signed out: sent to sign in.
    let (status, _, location) = app.get_with(&app.browser(), "/admin/tokens").await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/login"));
    for (email, role) in [
        ("cust@example.com", "customer"),
        ("staff@example.com", "staff"),
    ] {
        let c = user(&app, email, role).await;
        for path in ["/admin/tokens", &format!("/admin/tokens/{id}/created")] {
            let (status, _, _) = app.get_with(&c, path).await;
            assert_eq!(status, 403, "{role} {path}");
        }
        // Posting with their own session's CSRF token changes nothing either.
        let (_, account, _) = app.get_with(&c, "/account").await;
        let csrf = crate::helpers::csrf_of(&account);
        for (path, form) in [
            (
                "/admin/tokens".to_owned(),
                vec![
                    ("name", "Mine"),
                    ("scope_sales_write", "on"),
                    ("csrf_token", csrf.as_str()),
                ],
            ),
            (
                format!("/admin/tokens/{id}/revoke"),
                vec![("csrf_token", csrf.as_str())],
            ),
        ] {
            let (status, _, _) = app.post_with(&c, &path, &form).await;
            assert_eq!(status, 403, "{role} {path}");
        }
    }
    assert_eq!(app.scalar("SELECT count(*) FROM api_tokens"), 1);
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL"),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn guessing_tokens_runs_into_the_addresss_sign_in_allowance() {
    let app = spawn_app_with(|c| c.auth_rate_per_minute = 3).await;
    let admin = admin(&app).await;
    let (_, read) = create_token(&app, &admin, "Reader", &["read"]).await;
    let status = |auth: String| {
        app.client
            .get(format!("{}/api/v1/status?serial=SN0700", app.address))
            .header("authorization", auth)
            .send()
    };
    let mut seen = Vec::new();
    for i in 0..5 {
        let r = status(format!("Bearer rpt_{}", format!("{i}").repeat(43)))
            .await
            .unwrap();
        seen.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "too_many_requests");
        }
    }
    // The admin's sign-in was one attempt of the same address too.
    let first_429 = seen.iter().position(|s| *s == 429).expect("a 429");
    assert!((1..=3).contains(&first_429), "{seen:?}");
    assert!(seen[..first_429].iter().all(|s| *s == 401), "{seen:?}");
    assert!(seen[first_429..].iter().all(|s| *s == 429), "{seen:?}");
    // A valid token is not a failed attempt: it still answers from the same address.
    let r = status(format!("Bearer {read}")).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn missing_unknown_and_wrong_scope_tokens_get_json_401_and_403() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let (_, read) = create_token(&app, &admin, "Reader", &["read"]).await;
    let (_, stock) = create_token(&app, &admin, "Warehouse", &["stock:write"]).await;
    let units = json!({"units": [{"gtin": BATTERY, "serial": "SN9100"}]});
    let history = format!("/api/v1/units/{BATTERY}/SN0700/history");

    // No token.
    let a = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/units",
        None,
        None,
        Some(units.to_string()),
    )
    .await;
    assert_eq!((a.status, code(&a)), (401, "unauthorized"), "{}", a.text);
    assert!(
        a.headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let a = get(&app, &history, None).await;
    assert_eq!((a.status, code(&a)), (401, "unauthorized"));

    // Another scheme (a browser's Basic credentials for a site behind a password) is no
    // token: public reads answer, token endpoints ask for one.
    for path in [history.as_str(), "/api/v1/units"] {
        let r = app
            .client
            .request(
                if path == "/api/v1/units" {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::GET
                },
                format!("{}{path}", app.address),
            )
            .header("authorization", format!("Basic {read}"))
            .header("content-type", "application/json")
            .body(units.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthorized", "{path}");
    }
    let r = app
        .client
        .get(format!("{}/api/v1/status?serial=SN0700", app.address))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Unknown and malformed bearer tokens.
    let fake = format!("rpt_{}", "A".repeat(43));
    for header in [
        format!("Bearer {fake}"),
        "Bearer nonsense".to_owned(),
        "bearer   ".to_owned(),
        "Bearer".to_owned(),
    ] {
        let r = app
            .client
            .get(format!("{}{history}", app.address))
            .header("authorization", header.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
        let challenge = r
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(challenge.contains("invalid_token"), "{challenge}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_token", "{header}");
    }

    // The wrong scope: 403, and nothing written.
    let a = post(&app, "/api/v1/units", &read, None, units.clone()).await;
    assert_eq!(
        (a.status, code(&a)),
        (403, "insufficient_scope"),
        "{}",
        a.text
    );
    assert!(
        a.headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains(r#"scope="stock:write""#)
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stock:write")
    );
    for (path, body) in [
        (
            "/api/v1/movements",
            json!({"kind": "receive", "location": "WH-EU", "units": []}),
        ),
        ("/api/v1/sales", json!({"lines": []})),
    ] {
        let a = post(&app, path, &read, None, body).await;
        assert_eq!((a.status, code(&a)), (403, "insufficient_scope"), "{path}");
    }
    let a = post(&app, "/api/v1/sales", &stock, None, json!({"lines": []})).await;
    assert_eq!((a.status, code(&a)), (403, "insufficient_scope"));
    let a = get(&app, &history, Some(&stock)).await;
    assert_eq!((a.status, code(&a)), (403, "insufficient_scope"));
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial = 'SN9100'"),
        0
    );

    // The right scope.
    let a = post(&app, "/api/v1/units", &stock, None, units).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(get(&app, &history, Some(&read)).await.status, 200);
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_its_last_use_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let (id, secret) = create_token(&app, &admin, "Repair shop", &["read"]).await;
    let history = format!("/api/v1/units/{BATTERY}/SN0700/history");
    // Microseconds since the epoch; 0 for never.
    let last_used = || {
        app.scalar(&format!(
            "SELECT coalesce(extract(epoch FROM last_used_at) * 1000000, 0) FROM api_tokens WHERE id = {id}"
        ))
    };
    assert_eq!(last_used(), 0);
    assert_eq!(get(&app, &history, Some(&secret)).await.status, 200);
    let first = last_used();
    assert_ne!(first, 0);
    // Within the minute: not written again.
    assert_eq!(get(&app, &history, Some(&secret)).await.status, 200);
    assert_eq!(last_used(), first);
    // A minute later it is.
    app.sql(&format!(
        "UPDATE api_tokens SET last_used_at = now() - interval '61 seconds' WHERE id = {id}"
    ));
    let before = last_used();
    assert_eq!(get(&app, &history, Some(&secret)).await.status, 200);
    assert!(last_used() > before, "{} !> {before}", last_used());
    let (_, page, _) = app.get_with(&admin, "/admin/tokens").await;
    assert!(
        !page.contains("<td>never</td>"),
        "the list shows the last use"
    );

    // Revoked by an admin: refused from then on, public reads included.
    let (status, _, location) = app
        .submit(
            &admin,
            "/admin/tokens",
            &format!("/admin/tokens/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/admin/tokens?notice=revoked"));
    let a = get(&app, &history, Some(&secret)).await;
    assert_eq!((a.status, code(&a)), (401, "invalid_token"));
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let a = get(&app, "/api/v1/status?serial=SN0700", Some(&secret)).await;
    assert_eq!((a.status, code(&a)), (401, "invalid_token"));
    // Without a token the public read still works.
    assert_eq!(
        get(&app, "/api/v1/status?serial=SN0700", None).await.status,
        200
    );
    let (_, page, _) = app.get_with(&admin, "/admin/tokens?notice=revoked").await;
    assert!(page.contains("Token revoked"), "{page}");
    assert!(!page.contains(&format!("/admin/tokens/{id}/revoke")));
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM audit_log WHERE event = 'api_token_revoked' AND detail = '#{id} Repair shop'"
        )),
        1
    );
    // Revoking again changes nothing and logs nothing more.
    let (status, _, _) = app
        .submit(
            &admin,
            "/admin/tokens",
            &format!("/admin/tokens/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'api_token_revoked'"),
        1
    );
}

#[tokio::test]
async fn public_reads_with_a_valid_token_count_against_the_tokens_allowance() {
    let app = spawn_app_with(|c| {
        c.lookup_rate_per_minute = 1;
        c.lookup_burst = 1;
        c.token_lookup_rate_per_minute = 1;
        c.token_lookup_burst = 4;
    })
    .await;
    let secret = all_scopes_token(&app).await;
    let status = "/api/v1/status?serial=SN0700";
    assert_eq!(get(&app, status, None).await.status, 200);
    let a = get(&app, status, None).await;
    assert_eq!((a.status, code(&a)), (429, "too_many_requests"));
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("address")
    );
    // The address is over its limit; the token has its own.
    for _ in 0..3 {
        assert_eq!(get(&app, status, Some(&secret)).await.status, 200);
    }
    let a = post(
        &app,
        "/api/v1/status/batch",
        &secret,
        None,
        json!({"items": [{"serial": "SN0700"}]}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = get(&app, status, Some(&secret)).await;
    assert_eq!((a.status, code(&a)), (429, "too_many_requests"));
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token")
    );
    assert!(a.headers.get("retry-after").is_some());
}

// ---------------------------------------------------------------------------------------------
// The token API

#[tokio::test]
async fn units_are_created_by_the_import_rules_and_each_refusal_says_why() {
    let app = spawn_app().await;
    let secret = all_scopes_token(&app).await;
    let units = json!({"units": [
        {"gtin": BATTERY, "serial": "SN9001", "lot": "ABC123"},
        {"gtin": DRILL, "serial": "DR-77", "manufactured_on": "2025-03-01"},
        {"gtin": BATTERY, "serial": "SN0001"},
        {"gtin": BATTERY, "serial": "sn9001"},
        {"gtin": "09506000134353", "serial": "SN9002"},
        {"gtin": "09506000134390", "serial": "SN9003"},
        {"gtin": DRILL, "serial": "DR 78"},
        {"gtin": BATTERY, "serial": "SN9004", "lot": "NOPE"},
        {"gtin": DRILL, "serial": "DR-79", "manufactured_on": "01/03/2025"},
        {"gtin": BATTERY, "serial": "XY9005"},
        {"gtin": SEAT, "serial": "Ks00001X", "lot": "KIS-L1"},
        {"gtin": "  9506000134352 ", "serial": "SN9006", "lot": null, "manufactured_on": null},
    ]});
    let a = post(&app, "/api/v1/units", &secret, None, units).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let created: Vec<(u64, &str, &str)> = a.body["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["index"].as_u64().unwrap(),
                c["gtin"].as_str().unwrap(),
                c["serial"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        created,
        [
            (0, BATTERY, "SN9001"),
            (1, DRILL, "DR-77"),
            (10, SEAT, "Ks00001X"),
            (11, BATTERY, "SN9006"),
        ]
    );
    let refused: Vec<(u64, &str, &str)> = a.body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["field"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    let fields: Vec<(u64, &str)> = refused.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        fields,
        [
            (2, "serial"),
            (3, "serial"),
            (4, "gtin"),
            (5, "gtin"),
            (6, "serial"),
            (7, "lot"),
            (8, "manufactured_on"),
            (9, "serial"),
        ],
        "{}",
        a.text
    );
    assert!(
        refused[0].2.contains("SN0001 already exists"),
        "{refused:?}"
    );
    assert!(refused[1].2.contains("already at index 0"), "{refused:?}");
    assert!(
        refused[3].2.contains("no product model has GTIN"),
        "{refused:?}"
    );
    assert!(refused[5].2.contains("no lot NOPE"), "{refused:?}");
    assert!(refused[7].2.contains("serial format"), "{refused:?}");

    // Written as an import writes them, by the token.
    let actor = app.text("SELECT created_by FROM units WHERE serial = 'SN9001'");
    assert!(
        actor.starts_with("token:") && actor.ends_with("Everything"),
        "{actor}"
    );
    assert_eq!(
        app.text("SELECT status || ' ' || manufactured_on FROM units WHERE serial = 'SN9001'"),
        "manufactured 2025-01-15",
        "made on its lot's production date"
    );
    assert_eq!(
        app.text("SELECT manufactured_on::text FROM units WHERE serial = 'DR-77'"),
        "2025-03-01"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE created_by LIKE 'token:%'"),
        4
    );
    // Found by the lookup at once.
    let a = get(&app, "/api/v1/status?serial=SN9001", None).await;
    assert_eq!(a.body["matches"][0]["gtin"], BATTERY, "{}", a.text);

    // Bad requests.
    let a = post(
        &app,
        "/api/v1/units",
        &secret,
        None,
        json!({"units": [{"serial": 1}]}),
    )
    .await;
    assert_eq!((a.status, code(&a)), (422, "invalid_body"));
    let a = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/units",
        Some(&secret),
        None,
        Some("{nope".into()),
    )
    .await;
    assert_eq!((a.status, code(&a)), (400, "bad_json"));
    let r = app
        .client
        .post(format!("{}/api/v1/units", app.address))
        .header("authorization", format!("Bearer {secret}"))
        .header("content-type", "text/csv")
        .body("gtin,serial")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| json!({"gtin": DRILL, "serial": format!("T{i}")}))
        .collect();
    let a = post(
        &app,
        "/api/v1/units",
        &secret,
        None,
        json!({ "units": too_many }),
    )
    .await;
    assert_eq!((a.status, code(&a)), (413, "too_many_items"));
    let a = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/units",
        Some(&secret),
        None,
        None,
    )
    .await;
    assert_eq!(a.status, 405);
}

#[tokio::test]
async fn ten_thousand_units_are_created_in_one_request() {
    let app = spawn_app().await;
    let secret = all_scopes_token(&app).await;
    let units: Vec<Value> = (0..10_000)
        .map(|i| json!({"gtin": DRILL, "serial": format!("BULK-{i:05}"), "lot": "D18-2201"}))
        .collect();
    let started = std::time::Instant::now();
    let a = post(
        &app,
        "/api/v1/units",
        &secret,
        None,
        json!({ "units": units }),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(a.status, 200);
    assert_eq!(a.body["created"].as_array().unwrap().len(), 10_000);
    assert_eq!(a.body["refused"], json!([]));
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial LIKE 'BULK-%'"),
        10_000
    );
    // Set-based: a statement per unit would take far longer than this in a debug build.
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
}

#[tokio::test]
async fn sales_link_through_the_sales_path_all_or_nothing() {
    let app = spawn_app().await;
    let secret = all_scopes_token(&app).await;
    let line = |serial: &str, order: &str| {
        json!({"gtin": BATTERY, "serial": serial, "order_ref": order, "channel": "Web shop",
               "sold_on": today(), "customer_email": "Buyer@Example.com"})
    };
    let a = post(
        &app,
        "/api/v1/sales",
        &secret,
        None,
        json!({"lines": [line("SN1600", "ORD-1"), line("sn1601", "ORD-1")]}),
    )
    .await;
    assert_eq!(
        (a.status, &a.body),
        (200, &json!({"linked": 2})),
        "{}",
        a.text
    );
    assert_eq!(
        app.text("SELECT status || ' ' || (sold_on = current_date) FROM units WHERE serial = 'SN1601' AND model_id = (SELECT id FROM product_models WHERE gtin = '09506000134352')"),
        "sold true"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM sales WHERE order_ref = 'ORD-1' AND customer_email = 'buyer@example.com' AND created_by LIKE 'token:%'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events WHERE kind = 'sold' AND actor LIKE 'token:%'"),
        2
    );

    // One bad line: nothing links, each refusal says why.
    let a = post(
        &app,
        "/api/v1/sales",
        &secret,
        None,
        json!({"lines": [
            line("SN1602", "ORD-2"),
            line("SN1600", "ORD-2"),
            line("SN9999", "ORD-2"),
            {"gtin": BATTERY, "serial": "SN1603", "order_ref": "ORD-3", "channel": "Web shop", "sold_on": "2999-01-01"},
        ]}),
    )
    .await;
    assert_eq!((a.status, code(&a)), (422, "refused"), "{}", a.text);
    // Field checks come first: only the date is named until it is right.
    assert_eq!(a.body["refused"][0]["index"], 3);
    assert_eq!(a.body["refused"][0]["field"], "sold_on");
    let a = post(
        &app,
        "/api/v1/sales",
        &secret,
        None,
        json!({"lines": [line("SN1602", "ORD-2"), line("SN1600", "ORD-2"), line("SN9999", "ORD-2"), line("SN1602", "ORD-2")]}),
    )
    .await;
    assert_eq!((a.status, code(&a)), (422, "refused"), "{}", a.text);
    let refused = a.body["refused"].as_array().unwrap();
    let reasons: Vec<(u64, &str)> = refused
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].0 == 1 && reasons[0].1.contains("already sold"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].0 == 2 && reasons[1].1.contains("no unit SN9999"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].0 == 3 && reasons[2].1.contains("at index 0"),
        "{reasons:?}"
    );
    assert_eq!(
        app.text("SELECT status FROM units WHERE serial = 'SN1602' AND model_id = (SELECT id FROM product_models WHERE gtin = '09506000134352')"),
        "in_stock",
        "nothing linked"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM sales WHERE order_ref = 'ORD-2'"),
        0
    );
    let a = post(&app, "/api/v1/sales", &secret, None, json!({"lines": []})).await;
    assert_eq!((a.status, code(&a)), (422, "invalid_body"));
}

#[tokio::test]
async fn movements_follow_the_scanner_stations_rules_and_appear_in_the_history() {
    let app = spawn_app().await;
    let secret = all_scopes_token(&app).await;
    let a = post(
        &app,
        "/api/v1/units",
        &secret,
        None,
        json!({"units": [{"gtin": DRILL, "serial": "MV-1"}, {"gtin": DRILL, "serial": "MV-2"}]}),
    )
    .await;
    assert_eq!(a.body["created"].as_array().unwrap().len(), 2, "{}", a.text);
    let units = json!([{"gtin": DRILL, "serial": "MV-1"}, {"gtin": DRILL, "serial": "mv-2"}]);

    let a = post(
        &app,
        "/api/v1/movements",
        &secret,
        None,
        json!({"kind": "receive", "location": "wh-eu", "reference": "GR-1", "units": units}),
    )
    .await;
    assert_eq!(
        (a.status, &a.body),
        (
            200,
            &json!({"kind": "receive", "location": "WH-EU", "moved": 2})
        ),
        "{}",
        a.text
    );
    // Received again: refused by the station rule, nothing changes.
    let a = post(
        &app,
        "/api/v1/movements",
        &secret,
        None,
        json!({"kind": "receive", "location": "WH-EU", "units": units}),
    )
    .await;
    assert_eq!((a.status, code(&a)), (422, "refused"), "{}", a.text);
    assert!(
        a.body["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already in stock at WH-EU")
    );

    let a = post(
        &app,
        "/api/v1/movements",
        &secret,
        None,
        json!({"kind": "move", "location": "WH-US", "units": [{"gtin": DRILL, "serial": "MV-1"}]}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // Shipping both from WH-US: MV-2 is still at WH-EU, so neither ships.
    let a = post(
        &app,
        "/api/v1/movements",
        &secret,
        None,
        json!({"kind": "ship", "location": "WH-US", "reference": "DN-9", "units": units}),
    )
    .await;
    assert_eq!((a.status, code(&a)), (422, "refused"), "{}", a.text);
    assert_eq!(a.body["refused"].as_array().unwrap().len(), 1);
    assert_eq!(a.body["refused"][0]["index"], 1);
    assert!(
        a.body["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("wrong location")
    );
    assert_eq!(
        app.text("SELECT status || ' ' || (SELECT code FROM locations WHERE id = location_id) FROM units WHERE serial = 'MV-1'"),
        "in_stock WH-US"
    );
    let a = post(
        &app,
        "/api/v1/movements",
        &secret,
        None,
        json!({"kind": "ship", "location": "WH-US", "reference": "DN-9", "units": [{"gtin": DRILL, "serial": "MV-1"}]}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);

    // Whole-request problems.
    for (body, want) in [
        (
            json!({"kind": "receive", "location": "NOWHERE", "units": units}),
            "unknown_location",
        ),
        (
            json!({"kind": "receive", "location": "WH-EU", "reference": "x".repeat(65), "units": units}),
            "invalid_reference",
        ),
        (
            json!({"kind": "receive", "location": "WH-EU", "units": []}),
            "invalid_body",
        ),
        (
            json!({"kind": "teleport", "location": "WH-EU", "units": units}),
            "invalid_body",
        ),
    ] {
        let a = post(&app, "/api/v1/movements", &secret, None, body).await;
        assert_eq!((a.status, code(&a)), (422, want), "{}", a.text);
    }
    let a = post(
        &app,
        "/api/v1/movements",
        &secret,
        None,
        json!({"kind": "move", "location": "WH-EU", "units": [{"gtin": DRILL, "serial": "NOPE-1"}, {"gtin": "123", "serial": "MV-2"}]}),
    )
    .await;
    let fields: Vec<(u64, &str)> = a.body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [(0, "serial"), (1, "gtin")], "{}", a.text);

    // The history tells it all, in order, each event by the token.
    let a = get(
        &app,
        &format!("/api/v1/units/{DRILL}/MV-1/history"),
        Some(&secret),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "shipped");
    assert_eq!(a.body["location"], Value::Null);
    let events: Vec<(&str, Option<&str>, Option<&str>)> = a.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["location"].as_str(),
                e["reference"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("received", Some("WH-EU"), Some("GR-1")),
            ("moved", Some("WH-US"), None),
            ("shipped", Some("WH-US"), Some("DN-9")),
        ]
    );
    assert!(
        a.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"].as_str().unwrap().starts_with("token:"))
    );
    assert_eq!(a.body["events"][1]["note"], "from WH-EU");
}

#[tokio::test]
async fn a_units_history_answers_what_it_is_and_what_happened_to_it() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let (_, read) = create_token(&app, &admin, "Repair shop", &["read"]).await;
    // Who did what is told by kind: no staff email or customer number leaves this way.
    app.sql(&format!(
        "INSERT INTO unit_events (unit_id, kind, actor, occurred_at)
         SELECT u.id, k, a, now() + make_interval(secs => n)
         FROM units u JOIN product_models m ON m.id = u.model_id,
              (VALUES ('adjusted', 'admin:alice@example.com', 1), ('registered', 'customer:C-100042', 2),
                      ('moved', 'token:999 Other shop', 3)) AS e (k, a, n)
         WHERE m.gtin = '{BATTERY}' AND u.serial = 'SN1500'"
    ));
    let a = get(
        &app,
        &format!("/api/v1/units/{BATTERY}/sn1500/history"),
        Some(&read),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let h = &a.body;
    assert_eq!(h["gtin"], BATTERY);
    assert_eq!(h["serial"], "SN1500");
    assert_eq!(h["status"], "in_stock");
    assert_eq!(h["lot"], "ABC124");
    assert_eq!(h["location"], "WH-EU");
    assert_eq!(h["product"]["brand"], "Arden Tools");
    assert_eq!(h["created_by"], "demo-seed");
    assert_eq!(h["events"][0]["kind"], "received");
    let actors: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["integration", "customer", "staff"]);
    assert!(
        !a.text.contains("alice@")
            && !a.text.contains("C-100042")
            && !a.text.contains("Other shop")
    );
    assert!(h["warranty"]["status"].is_string());
    // A GTIN-13 is the same model; the case-sensitive seat needs its exact serial.
    let a = get(
        &app,
        "/api/v1/units/9506000134352/SN1500/history",
        Some(&read),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        get(
            &app,
            &format!("/api/v1/units/{SEAT}/Ks00001x/history"),
            Some(&read)
        )
        .await
        .status,
        200
    );
    let a = get(
        &app,
        &format!("/api/v1/units/{SEAT}/KS00001X/history"),
        Some(&read),
    )
    .await;
    assert_eq!((a.status, code(&a)), (404, "not_found"));
    for (path, status, want) in [
        (
            format!("/api/v1/units/{BATTERY}/SN9999/history"),
            404,
            "not_found",
        ),
        (
            "/api/v1/units/09506000134353/SN0001/history".to_owned(),
            400,
            "invalid_gtin",
        ),
        (
            format!("/api/v1/units/{BATTERY}/SN%231/history"),
            400,
            "invalid_serial",
        ),
        (
            format!("/api/v1/units/{BATTERY}/A%2FB/history"),
            404,
            "not_found",
        ),
        (format!("/api/v1/units/{BATTERY}/%FF/history"), 400, ""),
    ] {
        let a = get(&app, &path, Some(&read)).await;
        assert_eq!(a.status, status, "{path}: {}", a.text);
        if !want.is_empty() {
            assert_eq!(code(&a), want, "{path}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Idempotency-Key

#[tokio::test]
async fn the_same_key_and_request_replays_the_first_answer_and_another_request_conflicts() {
    let app = spawn_app().await;
    let secret = all_scopes_token(&app).await;
    let body = r#"{"units": [{"gtin": "09521234543213", "serial": "ID-1", "lot": "D18-2201"}]}"#;
    let send = |key: &'static str, body: String| {
        let (app, secret) = (&app, &secret);
        async move {
            call(
                app,
                reqwest::Method::POST,
                "/api/v1/units",
                Some(secret),
                Some(key),
                Some(body),
            )
            .await
        }
    };
    let first = send("key-1", body.to_owned()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["created"].as_array().unwrap().len(), 1);
    assert!(first.headers.get("idempotency-replayed").is_none());
    // The same request, spaced and ordered differently: the first answer, byte for byte
    // (done again, it would say the unit already exists), and nothing written.
    let again = send(
        "key-1",
        r#"{ "units" : [ { "lot": "D18-2201", "serial": "ID-1", "gtin": "09521234543213" } ] }"#
            .to_owned(),
    )
    .await;
    assert_eq!((again.status, &again.text), (200, &first.text));
    assert_eq!(again.headers.get("idempotency-replayed").unwrap(), "true");
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial = 'ID-1'"),
        1
    );
    // Without the key, the same request is done again.
    let fresh = post(
        &app,
        "/api/v1/units",
        &secret,
        None,
        serde_json::from_str(body).unwrap(),
    )
    .await;
    assert_eq!(
        fresh.body["refused"][0]["field"], "serial",
        "{}",
        fresh.text
    );

    // The same key with another request: 409, nothing written.
    let other = send("key-1", body.replace("ID-1", "ID-2")).await;
    assert_eq!(
        (other.status, code(&other)),
        (409, "idempotency_key_reused")
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial = 'ID-2'"),
        0
    );
    // … also on another endpoint.
    let a = post(
        &app,
        "/api/v1/movements",
        &secret,
        Some("key-1"),
        json!({"kind": "receive", "location": "WH-EU", "units": [{"gtin": DRILL, "serial": "ID-1"}]}),
    )
    .await;
    assert_eq!((a.status, code(&a)), (409, "idempotency_key_reused"));
    assert_eq!(
        app.text("SELECT status FROM units WHERE serial = 'ID-1'"),
        "manufactured"
    );

    // Keys are per token.
    let admin2 = user(&app, "second-admin@example.com", "admin").await;
    let (_, second) = create_token(&app, &admin2, "Other", &["stock:write"]).await;
    let a = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/units",
        Some(&second),
        Some("key-1"),
        Some(body.replace("ID-1", "ID-3")),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["created"][0]["serial"], "ID-3");

    // A refusal is an answer too: replayed as it was, even once the cause is gone.
    let sale = json!({"lines": [{"gtin": DRILL, "serial": "ID-4", "order_ref": "O-9", "channel": "Shop", "sold_on": today()}]});
    let refused = post(&app, "/api/v1/sales", &secret, Some("sale-1"), sale.clone()).await;
    assert_eq!(
        (refused.status, code(&refused)),
        (422, "refused"),
        "{}",
        refused.text
    );
    post(
        &app,
        "/api/v1/units",
        &secret,
        None,
        json!({"units": [{"gtin": DRILL, "serial": "ID-4"}]}),
    )
    .await;
    let replay = post(&app, "/api/v1/sales", &secret, Some("sale-1"), sale.clone()).await;
    assert_eq!((replay.status, &replay.text), (422, &refused.text));
    let linked = post(&app, "/api/v1/sales", &secret, Some("sale-2"), sale).await;
    assert_eq!(linked.status, 200, "{}", linked.text);

    // After 24 hours a key is forgotten.
    app.sql("UPDATE api_idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'key-1'");
    let later = send("key-1", body.replace("ID-1", "ID-2")).await;
    assert_eq!(later.status, 200, "{}", later.text);
    assert_eq!(later.body["created"][0]["serial"], "ID-2");

    // A key must be a key.
    for bad in ["", &"k".repeat(256)] {
        let a = call(
            &app,
            reqwest::Method::POST,
            "/api/v1/units",
            Some(&secret),
            Some(bad),
            Some(body.to_owned()),
        )
        .await;
        assert_eq!(
            (a.status, code(&a)),
            (400, "invalid_idempotency_key"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn concurrent_requests_with_one_key_write_once() {
    let app = spawn_app().await;
    let secret = all_scopes_token(&app).await;
    let units: Vec<Value> = (0..3000)
        .map(|i| json!({"gtin": DRILL, "serial": format!("CC-{i:05}")}))
        .collect();
    let body = json!({ "units": units }).to_string();
    let answers = futures_util::future::join_all((0..5).map(|_| {
        call(
            &app,
            reqwest::Method::POST,
            "/api/v1/units",
            Some(&secret),
            Some("together"),
            Some(body.clone()),
        )
    }))
    .await;
    let first = answers
        .iter()
        .find(|a| a.headers.get("idempotency-replayed").is_none());
    let first = first.expect("one request did the work");
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["created"].as_array().unwrap().len(), 3000);
    for a in &answers {
        // Each waited for the first and got its answer (or, had it waited too long, a 409).
        match a.status {
            200 => assert_eq!(a.text, first.text),
            409 => assert_eq!(code(a), "idempotency_key_in_use"),
            other => panic!("{other}: {}", a.text),
        }
    }
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.headers.get("idempotency-replayed").is_none())
            .count(),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial LIKE 'CC-%'"),
        3000
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_idempotency_keys WHERE key = 'together'"),
        1
    );
}

#[tokio::test]
async fn the_housekeeping_forgets_unseen_secrets_and_day_old_keys() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    // A secret nobody came to see.
    let (_, _, location) = app
        .submit(
            &admin,
            "/admin/tokens",
            "/admin/tokens",
            &[("name", "Forgotten"), ("scope_read", "on")],
        )
        .await;
    let (_, secret) = create_token(&app, &admin, "Warehouse", &["stock:write"]).await;
    for key in ["old", "new"] {
        post(
            &app,
            "/api/v1/units",
            &secret,
            Some(key),
            json!({"units": [{"gtin": DRILL, "serial": format!("HK-{key}")}]}),
        )
        .await;
    }
    app.sql("UPDATE api_idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'");
    app.sql("UPDATE api_token_reveals SET expires_at = now() - interval '1 second'");
    let url = app.db_url.clone();
    let purged = async move {
        use diesel_async::AsyncConnection;
        let mut conn = diesel_async::AsyncPgConnection::establish(&url)
            .await
            .unwrap();
        recall_portal::db::api_tokens::purge_expired(&mut conn)
            .await
            .unwrap()
    }
    .await;
    assert_eq!(purged, (1, 1));
    assert_eq!(app.scalar("SELECT count(*) FROM api_token_reveals"), 0);
    assert_eq!(
        app.text("SELECT string_agg(key, ',') FROM api_idempotency_keys"),
        "new"
    );
    // The page the creation led to no longer shows the secret.
    let (_, page, _) = app.get_with(&admin, &location.unwrap()).await;
    assert!(secret_in(&page).is_none(), "{page}");
}

#[tokio::test]
async fn a_revoked_token_writes_nothing_and_empty_or_oversized_writes_are_refused() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let (id, secret) =
        create_token(&app, &admin, "ERP", &["read", "stock:write", "sales:write"]).await;
    // Nothing to write: 422 for each, and an empty list of units like the others.
    for (path, body) in [
        ("/api/v1/units", json!({"units": []})),
        ("/api/v1/sales", json!({"lines": []})),
        (
            "/api/v1/movements",
            json!({"kind": "receive", "location": "WH-EU", "units": []}),
        ),
    ] {
        let a = post(&app, path, &secret, None, body).await;
        assert_eq!((a.status, code(&a)), (422, "invalid_body"), "{path}");
    }
    // Over 4 MiB: 413 before anything is parsed.
    let big = format!(
        r#"{{"units": [{}]}}"#,
        vec![format!(r#"{{"gtin": "{BATTERY}", "serial": "SN1"}}"#); 110_000].join(",")
    );
    assert!(big.len() > 4 * 1024 * 1024);
    let a = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/units",
        Some(&secret),
        None,
        Some(big),
    )
    .await;
    assert_eq!(
        (a.status, code(&a)),
        (413, "payload_too_large"),
        "{}",
        a.text
    );

    let units_before = app.scalar("SELECT count(*) FROM units");
    app.sql(&format!(
        "UPDATE api_tokens SET revoked_at = now(), revoked_by = created_by WHERE id = {id}"
    ));
    for (path, body) in [
        (
            "/api/v1/units",
            json!({"units": [{"gtin": BATTERY, "serial": "SN9200"}]}),
        ),
        (
            "/api/v1/sales",
            json!({"lines": [{"gtin": BATTERY, "serial": "SN0700", "order_ref": "O-1",
                              "channel": "web", "sold_on": "2026-01-02"}]}),
        ),
        (
            "/api/v1/movements",
            json!({"kind": "ship", "location": "WH-EU", "units": [{"gtin": BATTERY, "serial": "SN1500"}]}),
        ),
    ] {
        let a = post(&app, path, &secret, Some("k-1"), body).await;
        assert_eq!((a.status, code(&a)), (401, "invalid_token"), "{path}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM units"), units_before);
    assert_eq!(app.scalar("SELECT count(*) FROM api_idempotency_keys"), 0);
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events WHERE occurred_at > now() - interval '1 minute' AND actor LIKE 'token:%'"),
        0
    );
}
