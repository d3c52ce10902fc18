//! Warranty extensions (per unit, per lot) and inheritance, as the public lookup shows them.

use crate::helpers::{TestApp, spawn_app};

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";

async fn admin(app: &TestApp) -> reqwest::Client {
    app.create_user("admin@example.com", PW, "admin");
    let c = app.browser();
    app.login(&c, "admin@example.com", PW).await;
    c
}

async fn lookup(app: &TestApp, serial: &str) -> String {
    let (status, body) = app
        .page(&format!("/check?serial={serial}&gtin={BATTERY}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn extensions_per_unit_and_per_lot_move_the_end_date_the_lookup_shows() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    app.sql("UPDATE units SET sold_on = '2025-01-10', status = 'sold' WHERE serial IN ('SN1500', 'SN1501')");
    assert!(lookup(&app, "SN1500").await.contains("9 January 2027"));
    let unit = app.scalar("SELECT id FROM units WHERE serial = 'SN1500'");
    let page = format!("/admin/warranty/extend?unit={unit}");
    let (status, body, _) = app.get_with(&c, &page).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("Extend the warranty of unit SN1500"),
        "{body}"
    );

    // Refusals name the field and change nothing.
    for (months, until, reason, expected) in [
        (
            "",
            "",
            "goodwill",
            "Give either a number of extra months or a new end date",
        ),
        ("3", "2030-01-01", "goodwill", "not both"),
        ("500", "", "goodwill", "from 1 to 120"),
        ("", "2020-01-01", "goodwill", "is not in the future"),
        ("3", "", "", "Say why the warranty is extended"),
    ] {
        let (status, body, _) = app
            .submit(
                &c,
                &page,
                "/admin/warranty/extend",
                &[
                    ("unit", &unit.to_string()),
                    ("extra_months", months),
                    ("ends_on", until),
                    ("reason", reason),
                ],
            )
            .await;
        assert_eq!(status, 422, "{expected}");
        assert!(body.contains(expected), "{expected:?} in {body}");
        assert!(
            body.contains(&format!("value=\"{reason}\"")),
            "the reason is kept"
        );
    }
    assert_eq!(app.scalar("SELECT count(*) FROM warranty_extensions"), 0);

    let (status, _, location) = app
        .submit(
            &c,
            &page,
            "/admin/warranty/extend",
            &[
                ("unit", &unit.to_string()),
                ("extra_months", "6"),
                ("ends_on", ""),
                ("reason", "repair took too long"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, unit_page, _) = app.get_with(&c, &location.unwrap()).await;
    assert!(unit_page.contains("Warranty extended."), "{unit_page}");
    assert!(unit_page.contains("extended by 6 months"), "{unit_page}");
    assert!(lookup(&app, "SN1500").await.contains("9 July 2027"));
    assert!(
        lookup(&app, "SN1501").await.contains("9 January 2027"),
        "only that unit"
    );

    // The whole lot, to an absolute date: every unit of it, the later end wins.
    let lot = app.scalar("SELECT id FROM lots WHERE code = 'ABC124'");
    let (status, _, location) = app
        .submit(
            &c,
            &format!("/admin/warranty/extend?lot={lot}"),
            "/admin/warranty/extend",
            &[
                ("lot", &lot.to_string()),
                ("extra_months", ""),
                ("ends_on", "2028-01-31"),
                ("reason", "cell supplier defect"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("/admin/models/"));
    assert!(lookup(&app, "SN1501").await.contains("31 January 2028"));
    assert!(lookup(&app, "SN1500").await.contains("31 January 2028"));
    let (_, listed, _) = app.get_with(&c, &page).await;
    assert!(
        listed.contains("+6 months · repair took too long"),
        "{listed}"
    );
    assert!(
        listed.contains("until 2028-01-31 · cell supplier defect"),
        "{listed}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'warranty_extended'"),
        2
    );

    let (status, _, _) = app.get_with(&c, "/admin/warranty/extend?unit=999999").await;
    assert_eq!(status, 404);
    let (status, _, _) = app.get_with(&c, "/admin/warranty/extend").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_replacement_shows_the_warranty_it_inherited() {
    let app = spawn_app().await;
    // SN1600 replaced a unit whose cover ran to 2030-05-31; its own start is unknown.
    app.sql("UPDATE units SET manufactured_on = NULL, lot_id = NULL WHERE serial = 'SN1600'");
    app.sql("UPDATE units SET inherited_from = '2026-01-15', inherited_end = '2030-05-31' WHERE serial = 'SN1600'");
    let body = lookup(&app, "SN1600").await;
    assert!(body.contains("31 May 2030"), "{body}");
}
