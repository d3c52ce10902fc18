//! Every state of the lookup: found, several models, unknown, invalid; every input form.

use crate::helpers::{q, spawn_app};

const BATTERY: &str = "09506000134352";
const DRILL: &str = "09521234543213";

#[tokio::test]
async fn home_shows_the_lookup_form_with_labels() {
    let app = spawn_app().await;
    let (status, body) = app.page("/").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"<form class="lookup" method="get" action="/check""#));
    assert!(body.contains(r#"<label for="serial">Serial number</label>"#));
    assert!(body.contains(r#"name="serial""#) && body.contains(r#"name="gtin""#));
    // The demo models are listed with where their serial is printed.
    assert!(body.contains("on the label on the underside of the battery"));
}

#[tokio::test]
async fn a_found_unit_shows_product_lot_warranty_and_recall_status() {
    let app = spawn_app().await;
    let (status, body) = app.page("/check?serial=SN0700").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Arden Tools PowerCell 18V 5.0 Ah battery pack"));
    assert!(body.contains(BATTERY));
    assert!(body.contains("<code>ABC123</code>, made 15 January 2025; expires 31 December 2026"));
    // Lot ABC123 was made 2025-01-15; no sale is recorded, so the warranty runs from
    // manufacture + 90 days (2025-04-15) for 24 months.
    assert!(
        body.contains("Under warranty until 14 April 2027"),
        "{body}"
    );
    assert!(body.contains("Safety recall: no open recall"));
}

#[tokio::test]
async fn lookups_never_show_internal_or_owner_data() {
    let app = spawn_app().await;
    let (_, body) = app.page("/check?serial=SN1500").await; // in stock at WH-EU
    assert!(body.contains("PowerCell"));
    for internal in [
        "Central European warehouse",
        "WH-EU",
        "in_stock",
        "demo-seed",
    ] {
        assert!(!body.contains(internal), "{internal} leaked");
    }
}

#[tokio::test]
async fn a_serial_on_two_models_asks_which_and_never_guesses() {
    let app = spawn_app().await;
    let (status, body) = app.page("/check?serial=SN0001").await;
    assert_eq!(status, 200);
    assert!(body.contains("Which product has serial number"));
    assert!(body.contains(&format!("/check?serial=SN0001&amp;gtin={BATTERY}")));
    assert!(body.contains(&format!("/check?serial=SN0001&amp;gtin={DRILL}")));
    assert!(
        !body.contains("Under warranty"),
        "the chooser must not pick one"
    );

    let (status, body) = app
        .page(&format!("/check?serial=SN0001&gtin={DRILL}"))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("D18 brushless cordless drill"));
    // The drill's lot is ~1500 days old with a 36-month term: expired.
    assert!(body.contains("Warranty expired on"), "{body}");
}

#[tokio::test]
async fn an_unknown_serial_says_where_to_look_and_keeps_the_input() {
    let app = spawn_app().await;
    let (status, body) = app.page("/check?serial=ZZ12345").await;
    assert_eq!(status, 404);
    assert!(body.contains("We could not find serial number <code>ZZ12345</code>"));
    assert!(body.contains(r#"value="ZZ12345""#));
    assert!(body.contains("0</strong> (zero) and <strong>O</strong>"));

    // With a GTIN, the hint is that model's.
    let (status, body) = app
        .page(&format!("/check?serial=SN9999&gtin={BATTERY}"))
        .await;
    assert_eq!(status, 404);
    assert!(body.contains(
        "On the Arden Tools PowerCell 18V 5.0 Ah battery pack the serial number is on the label"
    ));

    // A valid GTIN we do not make.
    let (status, body) = app.page("/check?serial=X1&gtin=09506000999999").await;
    assert_eq!(status, 404);
    assert!(body.contains("We also have no product with GTIN"));
    assert!(body.contains(r#"id="gtin-error""#) && body.contains(r#"aria-invalid="true""#));
}

#[tokio::test]
async fn invalid_input_is_a_400_with_the_reason_next_to_the_field_and_the_text_kept() {
    let app = spawn_app().await;
    let (status, body) = app.page(&format!("/check?serial={}", q("<b>AB#1"))).await;
    assert_eq!(status, 400);
    assert!(
        body.contains(r#"id="serial-error">A serial number cannot contain “#”"#),
        "{body}"
    );
    assert!(
        body.contains(r#"value="&#60;b&#62;AB#1""#),
        "typed text kept, escaped"
    );
    assert!(!body.contains("<b>AB"), "never reflected raw");

    for (serial, reason) in [
        ("", "Enter the serial number"),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "at most 20 characters; this has 26",
        ),
        ("AB 12", "cannot contain a space"),
    ] {
        let (status, body) = app.page(&format!("/check?serial={}", q(serial))).await;
        assert_eq!(status, 400, "{serial}");
        assert!(body.contains(reason), "{serial}: {body}");
    }

    let (status, body) = app.page("/check?serial=SN0700&gtin=09506000134353").await;
    assert_eq!(status, 400);
    assert!(body.contains(r#"id="gtin-error""#));
    assert!(body.contains("does not match its check digit"));
    assert!(body.contains(r#"value="09506000134353""#));

    // No serial parameter at all.
    let (status, _) = app.page("/check").await;
    assert_eq!(status, 400);
    // A query that is not even valid UTF-8 after decoding.
    let (status, _) = app.page("/check?serial=%FF%FE").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_serial_that_breaks_the_model_format_is_refused_before_any_query() {
    let app = spawn_app().await;
    // Prove no query runs: with the units table gone, any query would fail with a 500.
    app.sql("ALTER TABLE units RENAME TO units_away");
    let (status, body) = app
        .page(&format!("/check?serial=SN12&gtin={BATTERY}"))
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("are “SN” then 4 digits (for example SN1234)"),
        "{body}"
    );
    assert!(body.contains("underside of the battery"));
    // A typo in a check-digit serial (e-bike: VC + 8 digits + check digit).
    let (status, body) = app
        .page("/check?serial=VC250000011&gtin=09506000134369")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .page(&format!("/check?serial=SN0700&gtin={BATTERY}"))
        .await;
    assert_eq!(status, 500, "a well-formed serial does reach the database");
}

#[tokio::test]
async fn typed_labels_case_and_whitespace_are_forgiven_per_model() {
    let app = spawn_app().await;
    for typed in ["  sn0700 ", "S/N: SN0700", "Serial: sn0700", "SN: SN0700"] {
        let (status, body) = app.page(&format!("/check?serial={}", q(typed))).await;
        assert_eq!(status, 200, "{typed:?}");
        assert!(body.contains("<code>SN0700</code>"), "{typed:?}");
    }
    // The car seat's serials are case-sensitive.
    let (status, _) = app.page("/check?serial=Ks00001x").await;
    assert_eq!(status, 200);
    let (status, _) = app.page("/check?serial=KS00001X").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn warranty_states_follow_the_model_terms() {
    let app = spawn_app().await;
    let (_, expired) = app.page("/check?serial=VC250000010").await;
    assert!(expired.contains("Warranty expired on"), "{expired}");
    let (_, active) = app.page("/check?serial=VC250003004").await;
    assert!(active.contains("Under warranty until"), "{active}");
    let (_, later) = app.page("/check?serial=VC250009006").await;
    assert!(later.contains("Warranty not started yet"), "{later}");
}

#[tokio::test]
async fn a_pasted_element_string_or_digital_link_is_understood() {
    let app = spawn_app().await;
    let scanned = "]d201095060001343521726123110ABC123\u{1d}21SN0001";
    let (status, body) = app.page(&format!("/check?serial={}", q(scanned))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("PowerCell"),
        "the GTIN in the code picks the model"
    );

    let bracketed = "(01)09506000134352(17)261231(10)ABC123(21)SN0001";
    let (status, body) = app.page(&format!("/check?serial={}", q(bracketed))).await;
    assert_eq!(status, 200);
    assert!(body.contains("PowerCell"));

    let link = "https://id.example.com/01/09521234543213/21/SN0001";
    let (status, body) = app.page(&format!("/check?serial={}", q(link))).await;
    assert_eq!(status, 200);
    assert!(body.contains("D18 brushless cordless drill"));

    let (status, body) = app
        .page(&format!(
            "/check?serial={}",
            q("(01)09506000134352(17)261231")
        ))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("no serial number in it"));
}

#[tokio::test]
async fn a_digital_link_redirects_to_the_lookup_result() {
    let app = spawn_app().await;
    let r = app.get("/01/09506000134352/10/ABC123/21/SN0001").await;
    assert_eq!(r.status().as_u16(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "/check?serial=SN0001&gtin=09506000134352&lot=ABC123"
    );
    let (status, body) = app.page(&location).await;
    assert_eq!(status, 200);
    assert!(body.contains("PowerCell"));
    assert!(!body.contains("The code you scanned says lot"));

    let r = app.get("/01/9506000134352/21/SN0001").await;
    assert_eq!(r.status().as_u16(), 307, "GTIN-13 in a link is accepted");

    // A lot on the label that our records disagree with is pointed out.
    let r = app.get("/01/09506000134352/10/ABC999/21/SN0001").await;
    let (_, body) = app.page(r.headers()["location"].to_str().unwrap()).await;
    assert!(body.contains(
        "The code you scanned says lot ABC999, but our records for this serial say lot ABC123"
    ));

    // A `lot` in the address that is not a lot code is never shown.
    let (status, body) = app
        .page("/check?serial=SN0001&gtin=09506000134352&lot=Call%20%2B1-800-555%20now")
        .await;
    assert_eq!(status, 200);
    assert!(!body.contains("The code you scanned says lot") && !body.contains("800-555"));

    // Percent-encoded serials survive the round trip.
    let r = app.get("/01/09506000134352/21/SN%2F1").await;
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/check?serial=SN%2F1&gtin=09506000134352"
    );
}

#[tokio::test]
async fn malformed_digital_links_get_a_readable_400() {
    let app = spawn_app().await;
    for (path, reason) in [
        (
            "/01/09506000134353/21/SN0001",
            "does not match its check digit",
        ),
        (
            "/01/09506000134352/21/SN0001/10/ABC123",
            "the lot (/10/) comes before the serial number (/21/)",
        ),
        ("/01/09506000134352/21/", "empty value after /21/"),
        ("/01/0950600013435X/21/SN0001", "only digits"),
        ("/01/09506000134352/21/A%23B", "cannot contain “#”"),
        ("/01/09506000134352/99/x", "has /99/ where it expects"),
    ] {
        let (status, body) = app.page(path).await;
        assert_eq!(status, 400, "{path}");
        assert!(body.contains(reason), "{path}: {body}");
        assert!(body.contains("This product link is not valid"), "{path}");
    }
}

#[tokio::test]
async fn the_model_page_shows_terms_and_a_prefilled_form() {
    let app = spawn_app().await;
    let (status, body) = app.page(&format!("/01/{BATTERY}")).await;
    assert_eq!(status, 200);
    assert!(body.contains("24 months, counted from the date of sale"));
    assert!(body.contains(&format!(r#"name="gtin" type="text" value="{BATTERY}""#)));
    assert!(body.contains("Safety recalls: none open for this model"));
    let r = app.get(&format!("/01/{BATTERY}/10/ABC123")).await;
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(r.headers()["location"], format!("/01/{BATTERY}").as_str());
    let (status, body) = app.page("/01/09506000999999").await;
    assert_eq!(status, 404);
    assert!(body.contains("We have no product with GTIN 09506000999999"));
}

#[tokio::test]
async fn a_model_newer_than_the_catalogue_in_memory_is_read_from_the_database() {
    // Lookups take a unit's model from the catalogue each process holds (reloaded every 30 s
    // and by its own edits); a model written by another process since is read instead.
    let app = spawn_app().await;
    app.sql(
        "INSERT INTO product_models (gtin, sku, name, brand, model_number, warranty_months)
         VALUES ('09506000999999', 'NEW-1', 'Lantern 300', 'Nightfall', 'L300', 12)",
    );
    app.sql(
        "INSERT INTO units (model_id, serial, serial_key, status, manufactured_on)
         SELECT id, 'NEWSERIAL1', 'NEWSERIAL1', 'manufactured', date '2026-01-10'
         FROM product_models WHERE sku = 'NEW-1'",
    );
    let (status, body) = app.page("/check?serial=NEWSERIAL1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Nightfall Lantern 300"), "{body}");
    let r = app.get("/api/v1/status?serial=NEWSERIAL1").await;
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["matches"][0]["product"]["name"], "Lantern 300");
    assert_eq!(v["matches"][0]["gtin"], "09506000999999");
}
