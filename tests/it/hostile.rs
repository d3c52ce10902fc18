//! Requests that try to break in: forged forms on every POST route, and a database that must be
//! exactly as it was afterwards.

use crate::helpers::*;

/// Every POST route a browser session can reach. `{reg}`, `{claim}` and `{recall}` stand for the
/// walking admin's own registration, claim and draft recall (uploads to someone else's are "not
/// found" before a byte is read); other ids are placeholders (a forged form is refused before
/// the id is looked at). `true`: the form is `multipart/form-data`.
const FORM_POSTS: &[(&str, bool)] = &[
    // account.rs
    ("/login", false),
    ("/logout", false),
    ("/signup", false),
    ("/password/forgot", false),
    ("/password/reset", false),
    ("/account/verify", false),
    ("/account/verify/resend", false),
    ("/account/password", false),
    ("/account/email", false),
    ("/account/email/confirm", false),
    ("/account/sessions/revoke", false),
    ("/account/delete", false),
    ("/invite/accept", false),
    // second_factor.rs
    ("/account/2fa/start", false),
    ("/account/2fa/enable", false),
    ("/account/2fa/disable", false),
    ("/login/code", false),
    // register.rs
    ("/register", true),
    ("/register/finish", false),
    ("/account/products/{reg}/proof", true),
    ("/account/products/{reg}/end", false),
    // claims.rs
    ("/account/products/{reg}/claim", true),
    ("/account/claims/{claim}/info", true),
    ("/account/claims/{claim}/cancel", false),
    // recalls.rs
    ("/recalls/RC-1/ack", false),
    ("/account/recalls/RC-1", false),
    // stations.rs
    ("/staff/stations", false),
    ("/staff/stations/1/scan", false),
    ("/staff/stations/1/items/1/remove", false),
    ("/staff/stations/1/commit", false),
    ("/staff/stations/1/cancel", false),
    // transfers.rs
    ("/staff/registrations/1/decide", false),
    // claims_staff.rs
    ("/staff/claims/{claim}/move", false),
    ("/staff/claims/{claim}/note", false),
    ("/staff/claims/{claim}/eta", false),
    ("/staff/claims/{claim}/rma", false),
    ("/staff/claims/{claim}/assign", false),
    ("/staff/claims/{claim}/recall-remedy", false),
    // admin.rs
    ("/admin/users/invite", false),
    ("/admin/users/1/role", false),
    ("/admin/outbox/1/retry", false),
    // catalogue.rs
    ("/admin/models", false),
    ("/admin/models/1", false),
    ("/admin/models/1/lots", false),
    ("/admin/locations", false),
    ("/admin/models/1/generate", false),
    // recalls_admin.rs
    ("/admin/recalls", false),
    ("/admin/recalls/{recall}/notice", false),
    ("/admin/recalls/{recall}/targets", true),
    ("/admin/recalls/{recall}/targets/1/remove", false),
    ("/admin/recalls/{recall}/launch", false),
    ("/admin/recalls/{recall}/remedy", false),
    ("/admin/recalls/{recall}/remedied", false),
    ("/admin/recalls/{recall}/close", false),
    // sales.rs
    ("/admin/sales", false),
    ("/admin/units/1/unlink", false),
    // imports.rs
    ("/admin/imports", true),
    // genealogy.rs
    ("/admin/units/1/components", false),
    ("/admin/units/1/components/1/remove", false),
    // pictures.rs
    ("/admin/models/1/picture", true),
    ("/admin/models/1/picture/remove", false),
    // counts.rs
    ("/admin/counts", false),
    ("/admin/counts/1/scans", false),
    ("/admin/counts/1/upload", false),
    ("/admin/counts/1/reconcile", false),
    ("/admin/counts/1/apply", false),
    ("/admin/counts/1/cancel", false),
    // warranty.rs
    ("/admin/warranty/extend", false),
    // claim_reports.rs
    ("/admin/claims/service-levels", false),
    // tokens_admin.rs
    ("/admin/tokens", false),
    ("/admin/tokens/1/revoke", false),
];

/// The JSON API's POST routes: no cookies, no forms; an integration token or nothing.
const API_POSTS: &[&str] = &[
    "/api/v1/status/batch",
    "/api/v1/units",
    "/api/v1/movements",
    "/api/v1/sales",
];

#[test]
fn the_walk_knows_every_post_route_in_the_source() {
    // A new POST route must join the walk: count `web::post()` in the handlers' source.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut routes = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            routes += std::fs::read_to_string(&path)
                .unwrap()
                .matches("web::post()")
                .count();
        }
    }
    assert_eq!(
        routes,
        FORM_POSTS.len() + API_POSTS.len(),
        "src/web has {routes} POST routes; list each new one in FORM_POSTS or API_POSTS"
    );
}

/// One text that changes when any row of any table changes (sessions aside: every request
/// touches its own).
pub(crate) fn fingerprint(app: &TestApp) -> String {
    let tables = app.text(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) AS v FROM pg_tables \
         WHERE schemaname = 'public' AND tablename <> 'sessions'",
    );
    let parts: Vec<String> = tables
        .split(',')
        .map(|t| {
            format!(
                "(SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM \"{t}\" x)"
            )
        })
        .collect();
    app.text(&format!(
        "SELECT md5(concat_ws(',', {})) AS v",
        parts.join(", ")
    ))
}

async fn forged(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    multipart: bool,
    token: Option<&str>,
    origin: &str,
) -> (u16, String) {
    let (status, body, _) = forged_at(app, client, path, multipart, token, origin).await;
    (status, body)
}

/// [`forged`], with the answer's Location.
async fn forged_at(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    multipart: bool,
    token: Option<&str>,
    origin: &str,
) -> (u16, String, String) {
    let request = client
        .post(format!("{}{path}", app.address))
        .header("Origin", origin);
    let request = if multipart {
        let mut form = reqwest::multipart::Form::new();
        if let Some(t) = token {
            form = form.text("csrf_token", t.to_owned());
        }
        request.multipart(
            form.text("reason", "x").part(
                "file",
                reqwest::multipart::Part::bytes(b"gtin,serial\n".to_vec())
                    .file_name("units.csv")
                    .mime_str("text/csv")
                    .unwrap(),
            ),
        )
    } else {
        let mut fields = vec![("reason", "x"), ("email", "someone@example.com")];
        if let Some(t) = token {
            fields.push(("csrf_token", t));
        }
        request.form(&fields)
    };
    let r = request.send().await.unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), r.text().await.unwrap(), location)
}

#[tokio::test]
async fn every_post_route_refuses_a_forged_form_and_changes_nothing() {
    let app = spawn_app().await;
    // An administrator (every route is open to them), signed in, with a real session token.
    let admin = user(&app, "walk-admin@example.com", "admin").await;
    let (status, page, _) = app.get_with(&admin, "/account").await;
    assert_eq!(status, 200);
    let token = csrf_of(&page);
    let reg = crate::claims::registered(&app, &admin, "SN1702").await;
    let claim = crate::claims::filed(&app, &admin, reg).await;
    let recall = crate::recalls::draft(&app, &admin, "RC-WALK").await;
    let real = |path: &str| {
        path.replace("{reg}", &reg.to_string())
            .replace("{claim}", &claim.to_string())
            .replace("{recall}", &recall.to_string())
    };
    let before = fingerprint(&app);
    let mut let_through = Vec::new();
    for (path, multipart) in FORM_POSTS {
        let path = &real(path);
        for (what, sent, origin) in [
            ("no token", None, app.address.as_str()),
            ("a wrong token", Some("forged-token"), app.address.as_str()),
            ("another site", Some(token.as_str()), "https://evil.example"),
        ] {
            let (status, body) = forged(&app, &admin, path, *multipart, sent, origin).await;
            if status != 403 || !body.contains("Nothing was changed") {
                let_through.push(format!("POST {path} with {what}: {status}"));
            }
        }
    }
    assert!(
        let_through.is_empty(),
        "not refused as forged:\n{}",
        let_through.join("\n")
    );
    // And without any session at all.
    let stranger = app.browser();
    for (path, multipart) in FORM_POSTS {
        let path = &real(path);
        let (status, body, location) =
            forged_at(&app, &stranger, path, *multipart, None, &app.address).await;
        // Refused as forged, or sent to sign in first.
        assert!(
            (status == 403 && body.contains("Nothing was changed"))
                || (status == 303 && location.starts_with("/login")),
            "POST {path} without a session: {status} {location} {body}"
        );
    }
    assert_eq!(
        fingerprint(&app),
        before,
        "a forged form changed the database"
    );
    // The walk's token was real: the same session can still sign out with it.
    let (status, _, _) = app
        .post_with(&admin, "/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn the_api_takes_no_cookie_for_a_token() {
    // A browser session is no credential for the token API: a forged cross-site request that
    // carries the admin's cookies writes nothing.
    let app = spawn_app().await;
    let admin = user(&app, "api-admin@example.com", "admin").await;
    let before = fingerprint(&app);
    for path in &API_POSTS[1..] {
        let r = admin
            .post(format!("{}{path}", app.address))
            .header("Origin", "https://evil.example")
            .header("Idempotency-Key", "k-1")
            .json(
                &serde_json::json!({"gtin": "09506000134352", "serial": "X1", "location": "MAIN"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "POST {path}");
    }
    assert_eq!(fingerprint(&app), before);
}

/// What every text column gets in front of its value before the crawl: markup that would run if
/// any page printed it unescaped, in text and in attribute values alike.
const PAYLOAD: &str = r#""'><svg onload=alert(1)>"#;
/// The payload's words, which the page shows once its markup characters are escaped (as
/// `&#60;` or `&lt;`, depending on the escaper).
const PAYLOAD_WORDS: &str = "svg onload=alert(1)";

/// Visits every page reachable by links from `starts` as `client` (up to `limit` pages), and
/// checks each answer: never a server error, the security headers, cookie flags, and (for HTML)
/// no unescaped payload. Returns the pages that showed the payload escaped.
async fn crawl(
    app: &TestApp,
    client: &reqwest::Client,
    who: &str,
    starts: &[&str],
    limit: usize,
) -> Vec<String> {
    let mut queue: std::collections::VecDeque<String> =
        starts.iter().map(|s| s.to_string()).collect();
    let mut seen: std::collections::HashSet<String> = queue.iter().cloned().collect();
    let mut escaped_on = Vec::new();
    let mut visited = 0;
    while let Some(path) = queue.pop_front() {
        if visited >= limit {
            break;
        }
        visited += 1;
        let r = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        assert!(status < 500, "{who}: GET {path} answered {status}");
        for (name, want) in [
            ("content-security-policy", "default-src 'none'"),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            // No page uses the camera, the microphone or the position.
            (
                "permissions-policy",
                "camera=(), geolocation=(), microphone=()",
            ),
            ("x-request-id", ""),
        ] {
            let got = headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{who}: GET {path} has no {name}"));
            assert!(got.contains(want), "{who}: GET {path}: {name}: {got}");
        }
        for cookie in headers.get_all("set-cookie") {
            let c = cookie.to_str().unwrap();
            assert!(c.contains("HttpOnly"), "{who}: GET {path} sets {c}");
            assert!(c.contains("SameSite=Lax"), "{who}: GET {path} sets {c}");
        }
        let html = headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        let body = r.text().await.unwrap_or_default();
        if !html {
            continue;
        }
        if who != "anonymous" {
            // A signed-in page is kept by no cache, the browser's back button included.
            let cache = headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert!(
                cache.contains("no-store"),
                "{who}: GET {path}: cache-control {cache:?}"
            );
        }
        assert!(
            !body.contains("<svg onload"),
            "{who}: GET {path} shows the payload unescaped"
        );
        if body.contains(PAYLOAD_WORDS) {
            escaped_on.push(path.clone());
        }
        for link in body.split("href=\"").skip(1) {
            let href = link.split('"').next().unwrap_or("").replace("&amp;", "&");
            let href = href.split('#').next().unwrap_or("").to_owned();
            if !href.starts_with('/')
                || href.starts_with("//")
                || href.starts_with("/logout")
                || href.starts_with("/static/")
                || !seen.insert(href.clone())
            {
                continue;
            }
            queue.push_back(href);
        }
    }
    escaped_on
}

#[tokio::test]
async fn markup_stored_in_any_text_field_comes_back_escaped_on_every_page() {
    let app = spawn_app().await;
    // People with something to see: a customer with a registration and a claim, staff, an
    // administrator with a draft recall. Signed in before the data is spoiled.
    let customer = user(&app, "xss-customer@example.com", "customer").await;
    let reg = crate::claims::registered(&app, &customer, "SN1703").await;
    crate::claims::filed(&app, &customer, reg).await;
    let staff = user(&app, "xss-staff@example.com", "staff").await;
    let admin = user(&app, "xss-admin@example.com", "admin").await;
    crate::recalls::draft(&app, &admin, "RC-XSS").await;

    // The payload in front of every text value the database holds, except secrets and hashes
    // (which are never shown) and the closed vocabularies (roles, states, kinds), which
    // CHECK constraints keep closed anyway.
    let payload = format!("'{}'", PAYLOAD.replace('\'', "''"));
    app.sql(&format!(
        "DO $$ DECLARE c record; BEGIN
           FOR c IN SELECT table_name, column_name FROM information_schema.columns
                    WHERE table_schema = 'public' AND data_type = 'text'
                      AND table_name NOT IN ('sessions', '__diesel_schema_migrations')
                      AND column_name !~ '(hash|token|secret|seal|password|role|status|state|kind)'
           LOOP
             BEGIN
               EXECUTE format('UPDATE %I SET %I = %L || %I', c.table_name, c.column_name,
                              {payload}, c.column_name);
             EXCEPTION WHEN others THEN NULL;
             END;
           END LOOP;
         END $$",
    ));

    let mut shown = Vec::new();
    shown.extend(
        crawl(
            &app,
            &app.browser(),
            "anonymous",
            &["/", "/recalls", "/check?serial=SN0700"],
            60,
        )
        .await,
    );
    shown.extend(crawl(&app, &customer, "customer", &["/account"], 120).await);
    shown.extend(crawl(&app, &staff, "staff", &["/staff"], 150).await);
    shown.extend(crawl(&app, &admin, "admin", &["/admin"], 300).await);
    // The payload did reach the pages (escaped), so the absence of raw markup means something.
    assert!(
        shown.len() >= 20,
        "the payload showed (escaped) on only {} pages: {shown:?}",
        shown.len()
    );
}

#[tokio::test]
async fn behind_https_every_answer_asks_for_https_and_cookies_are_secure() {
    let app = spawn_app_with(|c| c.base_url = Some("https://portal.example".into())).await;
    for path in ["/", "/login", "/check?serial=SN0700", "/no/such/page"] {
        let r = app.get(path).await;
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000; includeSubDomains"),
            "{path}"
        );
    }
    let r = app.get("/login").await;
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        !cookies.is_empty(),
        "the sign-in page sets its session cookie"
    );
    for c in &cookies {
        for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(c.contains(flag), "{c} lacks {flag}");
        }
        // `__Host-`: only this host, over https, for the whole site (no Domain).
        assert!(
            c.starts_with("__Host-portal_session=") && !c.contains("Domain"),
            "{c}"
        );
    }
    // The prefixed cookie is the session (sent by hand: a cookie store keeps Secure cookies
    // from plain http); the same token under the old name is no session at all.
    let cookie = cookies[0].split(';').next().unwrap().to_owned();
    let page = r.text().await.unwrap();
    app.create_user("ann@example.com", USER_PW, "customer");
    let signed_in = app
        .client
        .post(format!("{}/login", app.address))
        .header("Cookie", &cookie)
        .header("Origin", "https://portal.example")
        .form(&[
            ("csrf_token", csrf_of(&page).as_str()),
            ("email", "ann@example.com"),
            ("password", USER_PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-portal_session="))
        .expect("a new session cookie at sign-in");
    let account = |cookie: String| {
        app.client
            .get(format!("{}/account", app.address))
            .header("Cookie", cookie)
            .send()
    };
    assert_eq!(
        account(session.clone()).await.unwrap().status().as_u16(),
        200
    );
    let unprefixed = session.trim_start_matches("__Host-").to_owned();
    assert_eq!(account(unprefixed).await.unwrap().status().as_u16(), 303);
    // Served over plain http (a laptop, a test), no HSTS: it would lock browsers out.
    let plain = spawn_app().await;
    assert!(
        plain
            .get("/")
            .await
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn an_oversized_form_is_refused_with_413_before_it_is_read() {
    let app = spawn_app().await;
    let c = app.browser();
    let (_, page, _) = app.get_with(&c, "/login").await;
    let token = csrf_of(&page);
    let big = "x".repeat(70_000); // PORTAL_MAX_BODY_BYTES is 65,536
    for path in ["/login", "/signup", "/password/forgot"] {
        let r = c
            .post(format!("{}{path}", app.address))
            .header("Origin", &app.address)
            .form(&[("csrf_token", token.as_str()), ("email", big.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 413, "POST {path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("<html") || body.contains("<!doctype"),
            "{body}"
        );
    }
    assert_eq!(
        app.scalar("SELECT count(*) AS v FROM accounts WHERE length(email) > 1000"),
        0
    );
}

#[tokio::test]
async fn random_bodies_and_addresses_get_a_clear_4xx_never_a_server_error() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let app = spawn_app().await;
    let c = app.browser();
    let (_, page, _) = app.get_with(&c, "/signup").await;
    let token = csrf_of(&page);
    let before = fingerprint(&app);
    let routes = prop_oneof![
        Just("/login"),
        Just("/signup"),
        Just("/password/forgot"),
        Just("/register"),
        Just("/api/v1/status/batch"),
    ];
    let kinds = prop_oneof![
        Just("application/x-www-form-urlencoded"),
        Just("multipart/form-data; boundary=XyZ"),
        Just("multipart/form-data"),
        Just("application/json"),
        Just("text/plain"),
    ];
    let bodies = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        "[a-z_]{1,12}=[^&]{0,40}(&[a-z_]{1,12}=[^&]{0,40}){0,6}".prop_map(String::into_bytes),
        "--XyZ\r\nContent-Disposition: form-data; name=\"[a-z_\"]{0,12}\"(; filename=\"[^\"]{0,20}\")?\r\n\r\n\\PC{0,200}(\r\n--XyZ(--)?)?"
            .prop_map(String::into_bytes),
        "\\{\"items\": ?\\[(\\{\"serial\": ?\"[^\"]{0,30}\"(, ?\"gtin\": ?\"[0-9]{0,15}\")?\\},?){0,5}\\]?\\}?"
            .prop_map(String::into_bytes),
    ];
    let strategy = (routes, kinds, bodies, any::<bool>());
    let mut runner = TestRunner::deterministic();
    for case in 0..300 {
        let (route, kind, mut body, with_token) = strategy.new_tree(&mut runner).unwrap().current();
        if with_token && kind.starts_with("application/x-www") {
            body = [format!("csrf_token={token}&").into_bytes(), body].concat();
        }
        let r = c
            .post(format!("{}{route}", app.address))
            .header("Origin", &app.address)
            .header("Content-Type", kind)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            (400..500).contains(&status) || (route == "/api/v1/status/batch" && status == 200),
            "case {case}: POST {route} ({kind}) answered {status} to {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    // Addresses: random query strings on the lookup and the resolver.
    let queries = "[ -~]{0,60}";
    for case in 0..150 {
        let q = queries.new_tree(&mut runner).unwrap().current();
        for path in [
            format!("/check?{q}"),
            format!(
                "/check?serial={}",
                q.replace('&', "%26").replace('#', "%23")
            ),
            format!("/01/{}", q.replace(['?', '#'], "")),
            format!("/api/v1/status?serial={}", q.replace(['&', '#'], "")),
        ] {
            let r = c
                .get(format!("{}{}", app.address, path.replace(' ', "%20")))
                .send()
                .await;
            let Ok(r) = r else { continue }; // not a valid address: the client refuses it
            let status = r.status().as_u16();
            assert!(status < 500, "case {case}: GET {path} answered {status}");
        }
    }
    // Found by fuzzing (bench/fuzz): a bracketed code holding letters of several bytes.
    for serial in ["(%00%CA%80)", "(%CA%80%CA%80)", "(01%CA%80)"] {
        let r = c
            .get(format!("{}/check?serial={serial}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "/check?serial={serial}");
    }
    assert_eq!(
        fingerprint(&app),
        before,
        "random input changed the database"
    );
}
