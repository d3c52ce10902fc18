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
fn fingerprint(app: &TestApp) -> String {
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
