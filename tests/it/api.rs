//! The public JSON API: status, batch, recalls, their errors (always JSON under /api), CORS, the
//! rate limit and the OpenAPI document.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const BATTERY: &str = "09506000134352";
const DRILL: &str = "09521234543213";

async fn get(app: &TestApp, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "{path}: {ct}: {text}");
    // Data, never a page: a browser that opens it saves it.
    let disposition = headers
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        disposition.starts_with("attachment; filename=\"") && disposition.ends_with(".json\""),
        "{path}: {disposition:?}"
    );
    (status, serde_json::from_str(&text).unwrap(), headers)
}

async fn post(app: &TestApp, path: &str, ct: &str, body: String) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let got_ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert!(got_ct.starts_with("application/json"), "{got_ct}: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A launched campaign over the battery unit `serial`, straight in the database.
fn recall(app: &TestApp, code: &str, serial: &str) -> i64 {
    app.sql(
        "INSERT INTO accounts (email, role, email_verified_at) VALUES ('api-admin@example.com', 'admin', now())
         ON CONFLICT DO NOTHING",
    );
    let admin = app.scalar("SELECT id FROM accounts WHERE email = 'api-admin@example.com'");
    app.sql(&format!(
        "INSERT INTO recall_campaigns (code, status, title, hazard, what_to_do, created_by, launched_at)
         VALUES ('{code}', 'launched', 'PowerCell packs', 'It can catch fire.', 'Stop using it.', {admin}, now())"
    ));
    let id = app.scalar(&format!(
        "SELECT id FROM recall_campaigns WHERE code = '{code}'"
    ));
    app.sql(&format!(
        "INSERT INTO recall_units (campaign_id, unit_id, lot_id, state)
         SELECT {id}, u.id, u.lot_id, 'unreachable' FROM units u JOIN product_models m ON m.id = u.model_id
         WHERE m.gtin = '{BATTERY}' AND u.serial = '{serial}'"
    ));
    id
}

#[tokio::test]
async fn status_answers_a_unit_with_its_product_recall_and_warranty_and_nothing_else() {
    let app = spawn_app().await;
    let (status, v, headers) = get(&app, "/api/v1/status?serial=SN0700").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), "*");
    assert_eq!(v["query"], json!({"serial": "SN0700", "gtin": null}));
    let matches = v["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{v}");
    let m = &matches[0];
    assert_eq!(m["gtin"], BATTERY);
    assert_eq!(m["serial"], "SN0700");
    assert_eq!(m["product"]["brand"], "Arden Tools");
    assert!(m["product"]["name"].as_str().unwrap().contains("PowerCell"));
    assert_eq!(m["recall"], json!({"status": "none", "campaigns": []}));
    // Lot ABC123, made 2025-01-15, no sale: manufacture + 90 days, 24 months.
    assert_eq!(
        m["warranty"],
        json!({"status": "active", "ends_on": "2027-04-14"})
    );
    // Exactly these keys: nothing about stock, places or owners.
    let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["gtin", "product", "recall", "serial", "warranty"]);

    // Two models share SN0001: both, unless the GTIN says which.
    let (_, v, _) = get(&app, "/api/v1/status?serial=SN0001").await;
    let gtins: Vec<&str> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["gtin"].as_str().unwrap())
        .collect();
    assert_eq!(gtins.len(), 2);
    assert!(gtins.contains(&BATTERY) && gtins.contains(&DRILL));
    let (_, v, _) = get(&app, &format!("/api/v1/status?serial=SN0001&gtin={DRILL}")).await;
    assert_eq!(v["matches"].as_array().unwrap().len(), 1);
    assert_eq!(v["matches"][0]["gtin"], DRILL);

    // Unknown: no matches, still 200.
    let (status, v, _) = get(&app, "/api/v1/status?serial=ZZ999999").await;
    assert_eq!((status, v["matches"].clone()), (200, json!([])));
}

#[tokio::test]
async fn status_follows_a_recall_from_open_to_remedied() {
    let app = spawn_app().await;
    let id = recall(&app, "R-API-1", "SN0042");
    let path = format!("/api/v1/status?serial=SN0042&gtin={BATTERY}");
    let (_, v, _) = get(&app, &path).await;
    let r = &v["matches"][0]["recall"];
    assert_eq!(r["status"], "open", "{v}");
    assert_eq!(r["campaigns"][0]["code"], "R-API-1");
    assert_eq!(r["campaigns"][0]["remedy"], "available");
    assert_eq!(r["campaigns"][0]["what_to_do"], "Stop using it.");
    assert_eq!(
        r["campaigns"][0]["url"],
        format!("{}/recalls/R-API-1", app.address)
    );
    app.sql(&format!(
        "UPDATE recall_campaigns SET remedy_available = false WHERE id = {id}"
    ));
    let (_, v, _) = get(&app, &path).await;
    assert_eq!(
        v["matches"][0]["recall"]["status"],
        "remedy_not_yet_available"
    );
    assert_eq!(
        v["matches"][0]["recall"]["campaigns"][0]["remedy"],
        "not_yet_available"
    );
    app.sql(&format!(
        "UPDATE recall_units SET state = 'remedied', remedied_on = '2026-11-20' WHERE campaign_id = {id}"
    ));
    let (_, v, _) = get(&app, &path).await;
    let r = &v["matches"][0]["recall"];
    assert_eq!(r["status"], "remedied");
    assert_eq!(r["campaigns"][0]["remedied_on"], "2026-11-20");
    // A neighbour is not affected.
    let (_, v, _) = get(
        &app,
        &format!("/api/v1/status?serial=SN0043&gtin={BATTERY}"),
    )
    .await;
    assert_eq!(v["matches"][0]["recall"]["status"], "none");
}

#[tokio::test]
async fn bad_input_is_a_json_error_never_an_html_page() {
    let app = spawn_app().await;
    for (path, status, code) in [
        ("/api/v1/status?serial=AB%231", 400, "invalid_serial"),
        ("/api/v1/status?serial=", 400, "invalid_serial"),
        (
            "/api/v1/status?serial=SN0001&gtin=09506000134353",
            400,
            "invalid_gtin",
        ),
        ("/api/v1/status", 400, "bad_request"),
        ("/api/v1/nope", 404, "not_found"),
        ("/api/v2/status?serial=SN0001", 404, "not_found"),
        ("/api/v1/status/batch", 405, "method_not_allowed"),
    ] {
        let (got, v, _) = get(&app, path).await;
        assert_eq!((got, error_code(&v)), (status, code), "{path}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let batch = "/api/v1/status/batch";
    for (ct, body, status, code) in [
        ("application/json", "{not json".to_owned(), 400, "bad_json"),
        (
            "text/plain",
            r#"{"items": []}"#.to_owned(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            r#"{"items": [{"gtin": 1}]}"#.to_owned(),
            422,
            "invalid_body",
        ),
        (
            "application/json",
            r#"{"things": []}"#.to_owned(),
            422,
            "invalid_body",
        ),
        (
            "application/json",
            format!(
                r#"{{"items": [{}]}}"#,
                vec![r#"{"serial": "SN0001"}"#; 1001].join(",")
            ),
            413,
            "too_many_items",
        ),
        (
            "application/json",
            format!(r#"{{"items": [{{"serial": "{}"}}]}}"#, "A".repeat(300_000)),
            413,
            "payload_too_large",
        ),
    ] {
        let (got, v) = post(&app, batch, ct, body).await;
        assert_eq!((got, error_code(&v)), (status, code), "{ct}: {v}");
    }
}

#[tokio::test]
async fn a_batch_of_a_thousand_answers_every_item_in_order() {
    let app = spawn_app().await;
    recall(&app, "R-API-2", "SN0100");
    // 1,000 items: known serials (some twice), unknown ones, invalid serials and GTINs.
    let mut items = Vec::new();
    let mut expect = Vec::new();
    for i in 0..1000 {
        let (item, want) = match i % 5 {
            0 => (
                json!({"gtin": BATTERY, "serial": format!("SN{:04}", 100 + i / 50)}),
                "one",
            ),
            1 => (json!({"serial": format!("NOPE{i}")}), "none"),
            2 => (json!({"serial": "bad serial!"}), "invalid_serial"),
            3 => (
                json!({"gtin": "09506000134353", "serial": "SN0100"}),
                "invalid_gtin",
            ),
            _ => (json!({"gtin": BATTERY, "serial": "SN0100"}), "recalled"),
        };
        items.push(item);
        expect.push(want);
    }
    let (status, v) = post(
        &app,
        "/api/v1/status/batch",
        "application/json",
        json!({ "items": items }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    for (i, (r, want)) in results.iter().zip(&expect).enumerate() {
        assert_eq!(r["query"]["serial"], items[i]["serial"], "item {i}");
        match *want {
            "one" => {
                assert_eq!(r["matches"].as_array().unwrap().len(), 1, "{i}: {r}");
                assert_eq!(r["matches"][0]["serial"], items[i]["serial"]);
            }
            "none" => assert_eq!(r["matches"], json!([]), "{i}: {r}"),
            "recalled" => {
                assert_eq!(r["matches"][0]["recall"]["status"], "open", "{i}: {r}")
            }
            code => {
                assert_eq!(error_code(r), code, "{i}: {r}");
                assert!(r.get("matches").is_none());
            }
        }
    }
    // Item 0 (SN0100) is the recalled unit too: the same answer as item 4.
    assert_eq!(results[0]["matches"], results[4]["matches"]);
    // An empty batch is fine.
    let (status, v) = post(
        &app,
        "/api/v1/status/batch",
        "application/json",
        r#"{"items": []}"#.into(),
    )
    .await;
    assert_eq!((status, v), (200, json!({"results": []})));
}

#[tokio::test]
async fn recalls_lists_the_notices_in_force_only() {
    let app = spawn_app().await;
    recall(&app, "R-API-3", "SN0001");
    let closed = recall(&app, "R-API-4", "SN0002");
    app.sql(&format!(
        "UPDATE recall_campaigns SET status = 'closed', closed_at = now() WHERE id = {closed}"
    ));
    app.sql(
        "INSERT INTO recall_campaigns (code, title, created_by) SELECT 'R-API-5', 'Draft', min(id) FROM accounts",
    );
    let (status, v, headers) = get(&app, "/api/v1/recalls").await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), "*");
    let codes: Vec<&str> = v["recalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["R-API-3"], "{v}");
    assert_eq!(v["recalls"][0]["hazard"], "It can catch fire.");
    assert_eq!(v["recalls"][0]["remedy_available"], true);
}

#[tokio::test]
async fn public_reads_allow_any_origin_and_answer_a_preflight() {
    let app = spawn_app().await;
    for path in ["/api/v1/status", "/api/v1/recalls"] {
        let r = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.address))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        let h = r.headers();
        assert_eq!(h.get("access-control-allow-origin").unwrap(), "*");
        assert!(
            h.get("access-control-allow-methods")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("GET")
        );
    }
}

#[tokio::test]
async fn over_the_limit_is_a_json_429_with_retry_after_and_a_batch_costs_more() {
    let app = spawn_app_with(|c| {
        c.lookup_rate_per_minute = 1;
        c.lookup_burst = 3;
    })
    .await;
    // A batch of 250 items costs 3 lookups: the whole burst.
    let items: Vec<Value> = (0..250).map(|_| json!({"serial": "SN0001"})).collect();
    let (status, _) = post(
        &app,
        "/api/v1/status/batch",
        "application/json",
        json!({ "items": items }).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, v, headers) = get(&app, "/api/v1/status?serial=SN0001").await;
    assert_eq!((status, error_code(&v)), (429, "too_many_requests"), "{v}");
    let wait: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let (status, v, _) = get(&app, "/api/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(v["openapi"], "3.1.0");
    for (path, method) in [
        ("/api/v1/status", "get"),
        ("/api/v1/status/batch", "post"),
        ("/api/v1/recalls", "get"),
    ] {
        let op = &v["paths"][path][method];
        assert!(op.is_object(), "{path} {method}");
        assert!(op["responses"]["200"].is_object(), "{path}");
    }
    // Every error a path can give is described with the one error body.
    let batch = &v["paths"]["/api/v1/status/batch"]["post"]["responses"];
    for code in ["400", "413", "415", "422", "429"] {
        assert_eq!(
            batch[code]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{code}"
        );
    }
}

/// Schemathesis (PyPI), as `.ci/run` installs it: `$SCHEMATHESIS`, the CI's virtualenv, or `st`
/// on the PATH.
fn schemathesis() -> Option<String> {
    std::env::var("SCHEMATHESIS")
        .ok()
        .into_iter()
        .chain(["/var/cache/recall-portal-schemathesis/bin/st".to_owned()])
        .find(|p| std::path::Path::new(p).exists())
        .or_else(|| {
            std::process::Command::new("st")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| "st".to_owned())
        })
}

/// Schemathesis generates requests from the OpenAPI document (valid and invalid ones) and checks
/// every answer: no server error, only documented status codes and content types, every body
/// as its schema says. Skipped only when schemathesis is absent and CI is unset.
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let Some(st) = schemathesis() else {
        if std::env::var_os("CI").is_some() {
            panic!("schemathesis is not installed, and the API's schema tests must run in CI");
        }
        eprintln!("skipping: schemathesis not installed (pip install schemathesis)");
        return;
    };
    // No lookup limit: schemathesis sends hundreds of requests from one address.
    let app = spawn_app_with(|c| {
        c.lookup_rate_per_minute = 0;
        c.token_lookup_rate_per_minute = 0;
    })
    .await;
    recall(&app, "R-API-6", "SN0001");
    // Every request carries a token with every scope, so the token API is exercised past its
    // authentication (and the public reads with a token).
    let token = crate::tokens::all_scopes_token(&app).await;
    let schema = format!("{}/api/openapi.json", app.address);
    let report = app.data_dir.join("schemathesis.xml");
    let args = vec![
        "run".to_owned(),
        schema,
        "--checks".into(),
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance".into(),
        "--max-examples".into(),
        "100".into(),
        "--seed".into(),
        "20261128".into(),
        "--request-timeout".into(),
        "10".into(),
        "--report".into(),
        "junit".into(),
        "--report-junit-path".into(),
        report.display().to_string(),
        "--header".into(),
        format!("Authorization: Bearer {token}"),
    ];
    // Run in the app's own directory: schemathesis keeps a cache in `.schemathesis/` of its
    // working directory, which must not be the source tree.
    let cwd = app.data_dir.clone();
    std::fs::create_dir_all(&cwd).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(st)
            .args(&args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really ran every operation.
    let junit = std::fs::read_to_string(&report).unwrap();
    for op in [
        "GET /api/v1/status",
        "POST /api/v1/status/batch",
        "GET /api/v1/recalls",
        "POST /api/v1/units",
        "POST /api/v1/sales",
        "POST /api/v1/movements",
        "GET /api/v1/units/{gtin}/{serial}/history",
    ] {
        assert!(junit.contains(op), "{op} not tested:\n{stdout}");
    }
    // … and got past the token check: the token was used.
    assert!(
        app.scalar("SELECT count(*) FROM api_tokens WHERE last_used_at IS NOT NULL") == 1,
        "the token was never accepted:\n{stdout}"
    );
}
