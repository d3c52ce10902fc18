//! The GS1 Digital Link resolver: every link type at unit, lot and model level, the linkset,
//! content negotiation, HEAD, OPTIONS and CORS, and the errors (400, 404, 405) as pages and
//! as JSON.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, q, spawn_app, spawn_app_with};

const BATTERY: &str = "09506000134352";
const UNIT: &str = "/01/09506000134352/10/ABC123/21/SN0001";
const LOOKUP: &str = "/check?serial=SN0001&gtin=09506000134352&lot=ABC123";
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    accept: Option<&str>,
) -> reqwest::Response {
    let mut r = app.client.request(method, format!("{}{path}", app.address));
    if let Some(a) = accept {
        r = r.header("Accept", a);
    }
    r.send().await.expect("request failed")
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Asserts a 307 to `location` with the `Link` header naming the linkset of `canonical`.
fn assert_redirect(app: &TestApp, r: &reqwest::Response, location: &str, canonical: &str) {
    assert_eq!(r.status().as_u16(), 307, "{}", r.url());
    assert_eq!(header(r, "location"), location, "{}", r.url());
    assert_eq!(
        header(r, "link"),
        format!(
            "<{}{canonical}?linkType=all>; rel=\"linkset\"; type=\"application/linkset+json\"",
            app.address
        ),
        "{}",
        r.url()
    );
    assert_eq!(header(r, "access-control-allow-origin"), "*");
}

async fn linkset_of(app: &TestApp, path: &str, accept: Option<&str>) -> Value {
    let r = send(app, Method::GET, path, accept).await;
    assert_eq!(r.status().as_u16(), 200, "{path}");
    assert_eq!(
        header(&r, "content-type"),
        "application/linkset+json",
        "{path}"
    );
    assert_eq!(header(&r, "access-control-allow-origin"), "*");
    serde_json::from_str(&r.text().await.unwrap()).expect("the linkset is JSON")
}

async fn json_error(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    assert_eq!(
        header(&r, "content-type"),
        "application/json",
        "{}",
        r.url()
    );
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn each_link_type_of_a_unit_redirects_to_a_page_that_exists() {
    let app = spawn_app().await;
    let cases = [
        ("", LOOKUP.to_owned()),
        ("?linkType=gs1:defaultLink", LOOKUP.to_owned()),
        ("?linkType=gs1:recallStatus", LOOKUP.to_owned()),
        (
            "?linkType=https%3A%2F%2Fgs1.org%2Fvoc%2FrecallStatus",
            LOOKUP.to_owned(),
        ),
        (
            "?linkType=gs1:registerProduct",
            format!("/register?gtin={BATTERY}&serial=SN0001"),
        ),
        ("?linkType=gs1:pip", format!("/01/{BATTERY}")),
        ("?linkType=gs1:support", "/account/products".to_owned()),
        (
            "?linkType=gs1:serviceInfo",
            format!("/01/{BATTERY}#warranty"),
        ),
    ];
    for (query, location) in &cases {
        let r = app.get(&format!("{UNIT}{query}")).await;
        assert_redirect(&app, &r, location, UNIT);
    }
    // Every target is a real page: the lookup result, the filled-in registration form, the
    // model page with its warranty terms, and "My products" behind the sign-in.
    let (status, body) = app.page(LOOKUP).await;
    assert_eq!(status, 200);
    assert!(body.contains("Safety recall: no open recall"), "{body}");
    let (status, body) = app
        .page(&format!("/register?gtin={BATTERY}&serial=SN0001"))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"value="SN0001""#));
    let (status, body) = app.page(&format!("/01/{BATTERY}")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"<dt id="warranty">Warranty</dt><dd>24 months"#),
        "{body}"
    );
    let r = app.get("/account/products").await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(header(&r, "location"), "/login?next=%2Faccount%2Fproducts");
}

#[tokio::test]
async fn lot_and_model_links_resolve_at_their_own_level() {
    let app = spawn_app().await;
    let lot = format!("/01/{BATTERY}/10/ABC123");
    let model = format!("/01/{BATTERY}");
    for (path, location) in [
        (lot.clone(), model.clone()),
        (format!("{lot}?linkType=gs1:pip"), model.clone()),
        (
            format!("{lot}?linkType=gs1:recallStatus"),
            format!("{model}#recalls"),
        ),
        (
            format!("{lot}?linkType=gs1:registerProduct"),
            format!("/register?gtin={BATTERY}"),
        ),
        (
            format!("{lot}?linkType=gs1:support"),
            "/account/products".into(),
        ),
        (
            format!("{lot}?linkType=gs1:serviceInfo"),
            format!("{model}#warranty"),
        ),
    ] {
        let r = app.get(&path).await;
        assert_redirect(&app, &r, &location, &lot);
    }
    for (path, location) in [
        (format!("{model}?linkType=gs1:pip"), model.clone()),
        (format!("{model}?linkType=gs1:defaultLink"), model.clone()),
        (
            format!("{model}?linkType=gs1:recallStatus"),
            format!("{model}#recalls"),
        ),
        (
            format!("{model}?linkType=gs1:support"),
            "/account/products".into(),
        ),
        (
            format!("{model}?linkType=gs1:serviceInfo"),
            format!("{model}#warranty"),
        ),
    ] {
        let r = app.get(&path).await;
        assert_redirect(&app, &r, &location, &model);
    }
    // The model's own link is the model page, naming its linkset too. A GTIN-13 is the same
    // product: its canonical link has the GTIN-14.
    let r = app.get("/01/9506000134352").await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        header(&r, "link"),
        format!(
            "<{}{model}?linkType=all>; rel=\"linkset\"; type=\"application/linkset+json\"",
            app.address
        )
    );
    assert!(r.text().await.unwrap().contains("PowerCell"));
    let (status, body) = app.page("/recalls").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn link_type_all_gives_the_linkset_with_absolute_links() {
    let app = spawn_app().await;
    let a = &app.address;
    // Asked with a GTIN-13 and a data attribute: the anchor is the canonical link.
    let set = linkset_of(
        &app,
        "/01/9506000134352/10/ABC123/21/SN0001?17=261231&linkType=all",
        None,
    )
    .await;
    let entries = set["linkset"].as_array().expect("a linkset array");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["anchor"], format!("{a}{UNIT}"));
    assert_eq!(
        e["description"],
        "Arden Tools PowerCell 18V 5.0 Ah battery pack"
    );
    let expected = [
        ("pip", format!("{a}/01/{BATTERY}")),
        (
            "registerProduct",
            format!("{a}/register?gtin={BATTERY}&serial=SN0001"),
        ),
        ("recallStatus", format!("{a}{LOOKUP}")),
        ("support", format!("{a}/account/products")),
        ("serviceInfo", format!("{a}/01/{BATTERY}#warranty")),
        ("defaultLink", format!("{a}{LOOKUP}")),
    ];
    for (term, href) in &expected {
        let links = e[format!("https://gs1.org/voc/{term}")]
            .as_array()
            .unwrap_or_else(|| panic!("no {term} in {set}"));
        assert_eq!(links.len(), 1, "{term}");
        let l = &links[0];
        assert_eq!(&l["href"], href, "{term}");
        assert_eq!(l["type"], "text/html", "{term}");
        assert_eq!(l["hreflang"], serde_json::json!(["en"]), "{term}");
        assert!(l["title"].as_str().is_some_and(|t| t.len() > 10), "{term}");
    }
    assert_eq!(e.as_object().unwrap().len(), 2 + expected.len(), "{set}");
    // `linkset` is the newer name of `all`.
    assert_eq!(
        linkset_of(&app, &format!("{UNIT}?linkType=linkset"), None).await,
        set
    );

    // A lot's and a model's linksets.
    let lot = linkset_of(&app, &format!("/01/{BATTERY}/10/ABC123?linkType=all"), None).await;
    assert_eq!(
        lot["linkset"][0]["anchor"],
        format!("{a}/01/{BATTERY}/10/ABC123")
    );
    assert_eq!(
        lot["linkset"][0]["https://gs1.org/voc/recallStatus"][0]["href"],
        format!("{a}/01/{BATTERY}#recalls")
    );
    let model = linkset_of(&app, &format!("/01/{BATTERY}?linkType=all"), None).await;
    assert_eq!(model["linkset"][0]["anchor"], format!("{a}/01/{BATTERY}"));
    assert_eq!(
        model["linkset"][0]["https://gs1.org/voc/defaultLink"][0]["href"],
        format!("{a}/01/{BATTERY}")
    );

    // A product we do not make has no linkset.
    let r = app.get("/01/09506000999999/21/X1?linkType=all").await;
    let (status, code, message) = json_error(r).await;
    assert_eq!((status, code.as_str()), (404, "product_not_found"));
    assert!(
        message.contains("no product with GTIN 09506000999999"),
        "{message}"
    );
}

#[tokio::test]
async fn the_linkset_says_nothing_about_the_unit_or_its_owner() {
    let app = spawn_app().await;
    // SN0700 exists (and is registered below); SN9999 does not: their linksets differ only by
    // the serial, so a linkset tells nobody whether a unit exists or who has it.
    app.create_user("owner@example.com", "x", "customer");
    app.sql(
        "INSERT INTO registrations \
           (unit_id, account_id, purchased_on, place_of_purchase, status, contact_email) \
         SELECT u.id, a.id, current_date, 'Secret Shop', 'active', a.email \
         FROM units u JOIN product_models m ON m.id = u.model_id, accounts a \
         WHERE u.serial = 'SN0700' AND m.gtin = '09506000134352' AND a.email = 'owner@example.com'",
    );
    let known = linkset_of(&app, &format!("/01/{BATTERY}/21/SN0700?linkType=all"), None).await;
    let unknown = linkset_of(&app, &format!("/01/{BATTERY}/21/SN9999?linkType=all"), None).await;
    assert_eq!(
        known.to_string().replace("SN0700", "SN9999"),
        unknown.to_string()
    );
    for private in ["owner@", "Secret Shop"] {
        assert!(!known.to_string().contains(private), "{private} leaked");
    }
}

#[tokio::test]
async fn a_client_that_prefers_json_gets_the_linkset_and_a_browser_the_redirect() {
    let app = spawn_app().await;
    let plain = linkset_of(&app, &format!("{UNIT}?linkType=all"), None).await;
    for accept in [
        "application/linkset+json",
        "application/json",
        "text/html;q=0.5, application/json",
    ] {
        assert_eq!(
            linkset_of(&app, UNIT, Some(accept)).await,
            plain,
            "{accept}"
        );
    }
    for accept in [BROWSER_ACCEPT, "*/*", "text/html"] {
        let r = send(&app, Method::GET, UNIT, Some(accept)).await;
        assert_redirect(&app, &r, LOOKUP, UNIT);
        assert_eq!(
            header(&r, "vary"),
            "Accept",
            "caches must keep the two apart"
        );
    }
    // At model level too: JSON gets the linkset, a browser the page.
    let model = format!("/01/{BATTERY}");
    let set = linkset_of(&app, &model, Some("application/json")).await;
    assert_eq!(
        set["linkset"][0]["anchor"],
        format!("{}{model}", app.address)
    );
    let r = send(&app, Method::GET, &model, Some(BROWSER_ACCEPT)).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(header(&r, "content-type").starts_with("text/html"));
    // A named link type is a redirect whatever the Accept.
    let r = send(
        &app,
        Method::GET,
        &format!("{UNIT}?linkType=gs1:pip"),
        Some("application/json"),
    )
    .await;
    assert_redirect(&app, &r, &model, UNIT);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    for (path, accept) in [
        (UNIT.to_owned(), None),
        (format!("{UNIT}?linkType=all"), None),
        (UNIT.to_owned(), Some("application/json")),
        (format!("/01/{BATTERY}"), None),
        (
            format!("/01/{BATTERY}/10/ABC123?linkType=gs1:recallStatus"),
            None,
        ),
        ("/01/09506000134353/21/SN0001".to_owned(), None),
        (format!("{UNIT}?linkType=gs1:nonsense"), None),
    ] {
        let get = send(&app, Method::GET, &path, accept).await;
        let head = send(&app, Method::HEAD, &path, accept).await;
        assert_eq!(head.status(), get.status(), "{path}");
        for h in [
            "location",
            "link",
            "content-type",
            "access-control-allow-origin",
        ] {
            assert_eq!(header(&head, h), header(&get, h), "{path}: {h}");
        }
        let redirect = get.status().as_u16() == 307;
        let get_body = get.bytes().await.unwrap();
        if !redirect {
            assert!(!get_body.is_empty(), "{path}");
        }
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn options_says_what_is_allowed_and_lets_other_sites_read() {
    let app = spawn_app().await;
    for path in [
        UNIT.to_owned(),
        format!("/01/{BATTERY}"),
        format!("/01/{BATTERY}/10/ABC123"),
    ] {
        let r = app
            .client
            .request(Method::OPTIONS, format!("{}{path}", app.address))
            .header("Origin", "https://shop.example")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "accept")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{path}");
        assert_eq!(header(&r, "allow"), "GET, HEAD, OPTIONS");
        assert_eq!(header(&r, "access-control-allow-origin"), "*");
        assert_eq!(
            header(&r, "access-control-allow-methods"),
            "GET, HEAD, OPTIONS"
        );
        assert!(header(&r, "access-control-allow-headers").contains("Accept"));
        assert!(r.bytes().await.unwrap().is_empty());
    }
    // Scripts may read the Link header of an answer.
    let r = app.get(UNIT).await;
    assert_eq!(header(&r, "access-control-expose-headers"), "Link");
    // Anything else is a 405 that says what is allowed.
    let r = send(&app, Method::POST, UNIT, None).await;
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(header(&r, "allow"), "GET, HEAD, OPTIONS");
    assert!(r.text().await.unwrap().contains("GET, HEAD or OPTIONS"));
    let r = send(&app, Method::DELETE, UNIT, Some("application/json")).await;
    let (status, code, _) = json_error(r).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn bad_links_are_a_readable_400_as_a_page_or_as_json() {
    let app = spawn_app().await;
    let cases = [
        (
            "/01/09506000134353/21/SN0001",
            "does not match its check digit",
        ),
        ("/01/9506000134353", "does not match its check digit"),
        (
            "/01/09506000134352/21/SN0001/10/ABC123",
            "the lot (/10/) comes before",
        ),
        ("/01/09506000134352/21/", "empty value after /21/"),
        ("/01/09506000134352/10", "empty value after /10/"),
        ("/01/", "empty value after /01/"),
        ("/01/0950600013435X/21/SN0001", "only digits"),
        (
            "/01/09506000134/21/SN0001",
            "8, 12, 13 or 14 digits; this one has 11",
        ),
        ("/01/09506000134352/21/A%23B", "cannot contain “#”"),
        ("/01/09506000134352/21/A%20B", "cannot contain a space"),
        ("/01/09506000134352/10/L%40T", "cannot contain “@”"),
        (
            "/01/09506000134352/21/ABCDEFGHIJKLMNOPQRSTU",
            "at most 20 characters",
        ),
        ("/01/09506000134352/21/X%2", "badly encoded"),
        ("/01/09506000134352/21/%FF", "badly encoded"),
        ("/01/09506000134352/99/x", "has /99/ where it expects"),
        ("/01/09506000134352/21/X/21/Y", "has /21/ where it expects"),
        (
            "/01/09506000134352/21/SN0001?17=261301",
            "not a valid YYMMDD date",
        ),
    ];
    for (path, reason) in cases {
        let (status, body) = app.page(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("This product link is not valid"), "{path}");
        assert!(body.contains(&escape(reason)), "{path}: {body}");
        assert!(body.contains("<html"), "{path}: a page");

        let r = send(&app, Method::GET, path, Some("application/json")).await;
        assert_eq!(header(&r, "access-control-allow-origin"), "*");
        let (status, code, message) = json_error(r).await;
        assert_eq!((status, code.as_str()), (400, "invalid_link"), "{path}");
        assert!(message.contains(reason), "{path}: {message}");
    }
    // Asking for the linkset is asking for JSON.
    let r = app.get("/01/09506000134353/21/SN0001?linkType=all").await;
    let (status, code, _) = json_error(r).await;
    assert_eq!((status, code.as_str()), (400, "invalid_link"));
}

/// The page's escaping of what the messages quote.
fn escape(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
}

#[tokio::test]
async fn an_unknown_link_type_is_a_404_that_lists_the_offered_ones() {
    let app = spawn_app().await;
    let r = app.get(&format!("{UNIT}?linkType=gs1:epil")).await;
    assert_eq!(r.status().as_u16(), 404);
    assert!(header(&r, "content-type").starts_with("text/html"));
    let body = r.text().await.unwrap();
    assert!(body.contains("Link type not available"), "{body}");
    assert!(
        body.contains("“gs1:epil”, which this portal does not offer"),
        "{body}"
    );
    assert!(body.contains("gs1:recallStatus") && body.contains("linkType=all"));

    let r = send(
        &app,
        Method::GET,
        &format!("/01/{BATTERY}?linkType=gs1:epil"),
        Some("application/json"),
    )
    .await;
    let (status, code, message) = json_error(r).await;
    assert_eq!((status, code.as_str()), (404, "unknown_link_type"));
    assert!(message.contains("gs1:epil") && message.contains("gs1:serviceInfo"));

    // What was asked for is quoted escaped, never as markup.
    let (status, body) = app
        .page(&format!("{UNIT}?linkType={}", q("<b>x</b>")))
        .await;
    assert_eq!(status, 404);
    assert!(
        !body.contains("<b>x") && body.contains("&#60;b&#62;x"),
        "{body}"
    );
}

#[tokio::test]
async fn other_query_parameters_do_not_change_the_answer() {
    let app = spawn_app().await;
    for query in [
        "?17=261231",
        "?utm_source=qr&x",
        "?17=261231&linkType=gs1:defaultLink&11=250115",
    ] {
        let r = app.get(&format!("{UNIT}{query}")).await;
        assert_redirect(&app, &r, LOOKUP, UNIT);
    }
    let r = app
        .get(&format!(
            "{UNIT}?utm_campaign=spring&linkType=gs1:registerProduct&17=261231"
        ))
        .await;
    assert_redirect(
        &app,
        &r,
        &format!("/register?gtin={BATTERY}&serial=SN0001"),
        UNIT,
    );
    let (status, _) = app.page(&format!("/01/{BATTERY}?17=261231&ref=box")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn redirects_and_linksets_are_free_and_the_model_page_counts() {
    let app = spawn_app_with(|c| {
        c.lookup_rate_per_minute = 1;
        c.lookup_burst = 1;
    })
    .await;
    assert_eq!(
        app.get(&format!("/01/{BATTERY}")).await.status().as_u16(),
        200
    );
    assert_eq!(
        app.get(&format!("/01/{BATTERY}")).await.status().as_u16(),
        429
    );
    for _ in 0..5 {
        assert_eq!(app.get(UNIT).await.status().as_u16(), 307);
        assert_eq!(
            app.get(&format!("{UNIT}?linkType=all"))
                .await
                .status()
                .as_u16(),
            200
        );
    }
    // A GTIN not in the catalogue costs a query, so it counts: over the limit, a JSON 429.
    let r = app.get("/01/09506000999999?linkType=all").await;
    assert!(header(&r, "retry-after").parse::<u64>().is_ok());
    let (status, code, _) = json_error(r).await;
    assert_eq!((status, code.as_str()), (429, "too_many_requests"));
}
