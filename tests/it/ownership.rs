//! Every id of another user is "not found". One walk over every address that names something a
//! customer or a staff member owns, taken by someone else: by GET, and by POST with a valid form
//! and a valid token; each answers 404, and the database is exactly as it was. The route table
//! must class every address with an id as owned (walked here) or shared by a role (listed here
//! with the reason), so a new route cannot slip past.

use crate::helpers::*;
use crate::hostile::fingerprint;

const BATTERY: &str = "09506000134352";

/// (method, path, form fields).
type Route = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Addresses of things one account owns, as (method, path, body). Placeholders: `{reg}` a
/// registration, `{claim}` a claim, `{photo}` its photo, `{recall}` the code of a recall that
/// reached the owner, `{draft}` a registration typed before signing in, `{station}` a scanner
/// station and `{item}` a scan in it. Body: none for a GET; otherwise the form's fields beside the
/// token, sent as multipart when the first is `"multipart"`.
const OWNED: &[Route] = &[
    // register.rs
    ("GET", "/account/products/{reg}", &[]),
    ("GET", "/account/products/{reg}/proof", &[]),
    (
        "POST",
        "/account/products/{reg}/proof",
        &[("multipart", "proof")],
    ),
    ("POST", "/account/products/{reg}/end", &[]),
    ("GET", "/register/finish?draft={draft}", &[]),
    ("POST", "/register/finish", &[("draft", "{draft}")]),
    // claims.rs
    ("GET", "/account/products/{reg}/claim", &[]),
    (
        "POST",
        "/account/products/{reg}/claim",
        &[
            ("multipart", "photos"),
            ("category", "battery"),
            ("description", "It is mine now."),
            ("noticed_on", "2026-11-01"),
            ("contact", "email"),
        ],
    ),
    ("GET", "/account/claims/{claim}", &[]),
    (
        "POST",
        "/account/claims/{claim}/info",
        &[("multipart", "photos"), ("text", "It is mine now.")],
    ),
    (
        "POST",
        "/account/claims/{claim}/cancel",
        &[("seen", "submitted")],
    ),
    ("GET", "/account/claims/{claim}/photos/{photo}", &[]),
    // recalls.rs
    ("GET", "/account/recalls/{recall}", &[]),
    ("POST", "/account/recalls/{recall}", &[("remedy", "refund")]),
    // stations.rs
    ("GET", "/staff/stations/{station}", &[]),
    (
        "POST",
        "/staff/stations/{station}/scan",
        &[("code", "SN1002")],
    ),
    ("POST", "/staff/stations/{station}/items/{item}/remove", &[]),
    ("POST", "/staff/stations/{station}/commit", &[]),
    ("POST", "/staff/stations/{station}/cancel", &[]),
];

/// Addresses with an id that name something every member of a role works on together, so no
/// one member owns it (the role itself is checked for the whole scope, before any id is read:
/// `session::require_role`). As the route table writes them, with the reason.
const SHARED: &[(&str, &str)] = &[
    ("/claims/{id}", "staff work one claims queue"),
    ("/claims/{id}/photos/{photo}", "staff work one claims queue"),
    ("/units/{id}", "serialized stock is the manufacturer's"),
    (
        "/registrations/{id}",
        "staff decide every pending registration",
    ),
    (
        "/registrations/{id}/proof",
        "staff decide every pending registration",
    ),
    ("/users/{id}/role", "admins manage every account"),
    ("/outbox/{id}/retry", "admins watch one outbox"),
    ("/models/{id}", "the catalogue is the manufacturer's"),
    ("/models/{id}/lots", "the catalogue is the manufacturer's"),
    (
        "/models/{id}/generate",
        "the catalogue is the manufacturer's",
    ),
    (
        "/models/{id}/picture",
        "the catalogue is the manufacturer's (and public)",
    ),
    (
        "/models/{id}/picture/remove",
        "the catalogue is the manufacturer's",
    ),
    ("/counts/{id}", "a stock count is the warehouse's"),
    ("/static/{name}", "public files"),
    (
        "/01/{tail:.*}",
        "GS1 Digital Links are public, like the lookup",
    ),
    (
        "/units/{gtin}/{serial}/history",
        "the API token's scope, not an owner, grants it",
    ),
    ("/imports/{id}", "imports are the manufacturer's records"),
    (
        "/units/{id}/components",
        "genealogy is the manufacturer's record",
    ),
    (
        "/units/{id}/components/{link}/remove",
        "genealogy is the manufacturer's record",
    ),
    ("/units/{id}/unlink", "sales are the manufacturer's records"),
    ("/recalls/{code}", "recall notices are public"),
    (
        "/recalls/{code}/ack",
        "the mailed link's secret token says whose notice it is",
    ),
    ("/recalls/{id}", "admins run every campaign"),
    (
        "/tokens/{id}",
        "API tokens are the organisation's integrations; the secret is shown once, to the session that made it",
    ),
];

/// Route patterns with an id in `src/web`, as (file, pattern).
fn routes_with_ids() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut found = Vec::new();
    let mut dirs = vec![dir];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (at, _) in source
                .match_indices("web::get()")
                .chain(source.match_indices("web::post()"))
            {
                // The route's pattern is the last string before its method.
                let before = &source[..at];
                let end = before.rfind('"').unwrap();
                let start = before[..end].rfind('"').unwrap() + 1;
                let pattern = &before[start..end];
                if pattern.contains('{') {
                    found.push((
                        path.file_name().unwrap().to_string_lossy().into_owned(),
                        pattern.to_owned(),
                    ));
                }
            }
        }
    }
    found
}

/// `/a/{x}/b/{y}` → `/a/{}/b/{}`.
fn shape(pattern: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in pattern.split('?').next().unwrap_or("").chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if inside => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn every_route_with_an_id_is_walked_or_shared_by_a_role() {
    let routes = routes_with_ids();
    assert!(routes.len() > 50, "the route table was read: {routes:?}");
    for (file, pattern) in routes {
        let s = shape(&pattern);
        let owned = OWNED.iter().any(|(_, p, _)| {
            let p = shape(p);
            p == s || p == format!("/staff{s}") || p == format!("/admin{s}")
        });
        let shared = SHARED
            .iter()
            .any(|(p, _)| s == shape(p) || s.starts_with(&format!("{}/", shape(p))));
        assert!(
            owned ^ shared,
            "{file}: {pattern} must be in exactly one of OWNED (walked as another user) or SHARED (with the reason)"
        );
    }
}

/// Ids of the things `owner` owns, and the token of a registration draft typed elsewhere.
struct Ids {
    reg: i64,
    claim: i64,
    photo: i64,
    recall: String,
    draft: String,
    station: i64,
    item: i64,
}

impl Ids {
    fn fill(&self, s: &str) -> String {
        s.replace("{reg}", &self.reg.to_string())
            .replace("{claim}", &self.claim.to_string())
            .replace("{photo}", &self.photo.to_string())
            .replace("{recall}", &self.recall)
            .replace("{draft}", &self.draft)
            .replace("{station}", &self.station.to_string())
            .replace("{item}", &self.item.to_string())
    }
}

async fn claim_with_photo(app: &TestApp, c: &reqwest::Client, reg: i64) -> (i64, i64) {
    let page = format!("/account/products/{reg}/claim");
    let (status, body, _) = app
        .submit_multipart(
            c,
            &page,
            &page,
            &[
                ("category", "battery"),
                ("description", "It stops after a minute."),
                ("noticed_on", "2026-11-20"),
                ("contact", "email"),
            ],
            &[("photos", "a.png", "image/png", png())],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let claim = app.scalar(&format!(
        "SELECT max(id) AS v FROM claims WHERE registration_id = {reg}"
    ));
    let photo = app.scalar(&format!(
        "SELECT max(id) AS v FROM claim_photos WHERE claim_id = {claim}"
    ));
    (claim, photo)
}

async fn station_with_scan(app: &TestApp, c: &reqwest::Client, reference: &str) -> (i64, i64) {
    let (status, body, location) = app
        .submit(
            c,
            "/staff/stations",
            "/staff/stations",
            &[
                ("kind", "ship"),
                ("location", "WH-EU"),
                ("reference", reference),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let station = location.unwrap();
    let (status, body, _) = app
        .submit(
            c,
            &station,
            &format!("{station}/scan"),
            &[("code", "SN1001")],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let id: i64 = station
        .trim_start_matches("/staff/stations/")
        .parse()
        .unwrap();
    let item = app.scalar(&format!(
        "SELECT max(id) AS v FROM scan_batch_items WHERE batch_id = {id}"
    ));
    (id, item)
}

/// A registration typed by a visitor who has not signed in yet: its token.
pub(crate) async fn typed_draft(app: &TestApp) -> String {
    let visitor = app.browser();
    let (status, body, location) = app
        .submit_multipart(
            &visitor,
            &format!("/register?gtin={BATTERY}&serial=SN1710"),
            "/register",
            &[
                ("serial", "SN1710"),
                ("gtin", BATTERY),
                ("purchased_on", "2026-10-01"),
                ("place_of_purchase", "Corner Shop"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let location = location.unwrap();
    let draft = location
        .split("draft%3D")
        .nth(1)
        .or_else(|| location.split("draft=").nth(1))
        .unwrap_or_else(|| panic!("no draft in {location}"));
    draft.chars().take(43).collect()
}

/// `who` asks for every owned address with the ids of someone else.
async fn walk(app: &TestApp, who: &reqwest::Client, ids: &Ids, routes: &[&Route]) {
    let (_, page, _) = app.get_with(who, "/account").await;
    let token = csrf_of(&page);
    for (method, path, fields) in routes {
        let path = ids.fill(path);
        let (status, body) = if *method == "GET" {
            let (status, body, _) = app.get_with(who, &path).await;
            (status, body)
        } else if fields.first().is_some_and(|(k, _)| *k == "multipart") {
            let mut form = reqwest::multipart::Form::new().text("csrf_token", token.clone());
            for (k, v) in &fields[1..] {
                form = form.text(k.to_string(), ids.fill(v));
            }
            form = form.part(
                fields[0].1.to_owned(),
                reqwest::multipart::Part::bytes(png())
                    .file_name("p.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
            let r = who
                .post(format!("{}{path}", app.address))
                .multipart(form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        } else {
            let filled: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), ids.fill(v)))
                .chain([("csrf_token".to_owned(), token.clone())])
                .collect();
            let form: Vec<(&str, &str)> = filled
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let (status, body, _) = app.post_with(who, &path, &form).await;
            (status, body)
        };
        assert_eq!(status, 404, "{method} {path} as another user: {body}");
        // The handler's own "not found", not the router's: the address is a real route.
        assert!(
            !body.contains("There is no page at this address"),
            "{method} {path}: answered by no route"
        );
    }
}

#[tokio::test]
async fn every_id_of_another_user_is_not_found_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let bob = user(&app, "bob@example.com", "customer").await;
    let pat = user(&app, "pat@example.com", "staff").await;
    let sam = user(&app, "sam@example.com", "staff").await;

    // Ann's product with a proof, a claim with a photo, and a recall that reached her.
    let reg = crate::claims::registered(&app, &ann, "SN1703").await;
    let proof = format!("/account/products/{reg}");
    let (status, body, _) = app
        .submit_multipart(
            &ann,
            &proof,
            &format!("{proof}/proof"),
            &[],
            &[("proof", "receipt.png", "image/png", png())],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let (claim, photo) = claim_with_photo(&app, &ann, reg).await;
    let recall = crate::recalls::draft(&app, &admin, "R-MINE").await;
    crate::recalls::complete_notice(&app, &admin, recall).await;
    let model = app
        .scalar(&format!(
            "SELECT id AS v FROM product_models WHERE gtin = '{BATTERY}'"
        ))
        .to_string();
    crate::recalls::add_target(
        &app,
        &admin,
        recall,
        &[
            ("kind", "serials"),
            ("model", &model),
            ("serials", "SN1703"),
        ],
        None,
    )
    .await;
    let (status, _, _) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{recall}"),
            &format!("/admin/recalls/{recall}/launch"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    // Pat's station with a scan; a visitor's registration waiting for sign-in.
    let (station, item) = station_with_scan(&app, &pat, "DN-PAT").await;
    let ids = Ids {
        reg,
        claim,
        photo,
        recall: "R-MINE".into(),
        draft: typed_draft(&app).await,
        station,
        item,
    };
    // Bob and Sam have their own, so a check that only asks "has any?" would let them through.
    let bob_reg = crate::claims::registered(&app, &bob, "SN1704").await;
    let (bob_claim, _) = claim_with_photo(&app, &bob, bob_reg).await;
    let (sam_station, _) = station_with_scan(&app, &sam, "DN-SAM").await;

    // The owners see every page: the ids are right, so a 404 below is the refusal.
    for (method, path, _) in OWNED {
        if *method != "GET" || path.contains("draft") {
            continue;
        }
        let owner = if path.starts_with("/staff") {
            &pat
        } else {
            &ann
        };
        let path = ids.fill(path);
        let (status, body, location) = app.get_with(owner, &path).await;
        // 303: a product with an open claim sends its claim form to that claim.
        assert!(
            status == 200
                || (status == 303
                    && location.as_deref()
                        == Some(&*format!("/account/claims/{claim}?error=open"))),
            "{path} for its owner: {status} {location:?} {body}"
        );
    }
    let (status, page) = app.page(&ids.fill("/register/finish?draft={draft}")).await;
    assert!(
        status == 200 && !page.contains("Corner Shop"),
        "a visitor without the browser sees the draft's page, not its details"
    );

    let before = fingerprint(&app);
    let customer: Vec<_> = OWNED
        .iter()
        .filter(|r| !r.1.starts_with("/staff"))
        .collect();
    let staff: Vec<_> = OWNED.iter().filter(|r| r.1.starts_with("/staff")).collect();
    walk(&app, &bob, &ids, &customer).await;
    walk(&app, &sam, &ids, &staff).await;
    // A staff member or an admin is not the owner either: their role opens the staff scope,
    // not a customer's account.
    walk(&app, &pat, &ids, &customer).await;
    walk(&app, &admin, &ids, &customer).await;
    walk(&app, &admin, &ids, &staff).await;
    // One's own claim with someone else's photo, one's own station with someone else's scan.
    let (status, _, _) = app
        .get_with(&bob, &format!("/account/claims/{bob_claim}/photos/{photo}"))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = app
        .submit(
            &sam,
            &format!("/staff/stations/{sam_station}"),
            &format!("/staff/stations/{sam_station}/items/{item}/remove"),
            &[],
        )
        .await;
    assert!(status == 303 || status == 404, "{status}");
    assert_eq!(
        fingerprint(&app),
        before,
        "a refused request changed nothing"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS v FROM scan_batch_items WHERE id = {item}"
        )),
        1
    );
}
