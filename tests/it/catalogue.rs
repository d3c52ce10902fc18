//! The admin catalogue: product models, lots and locations.

use crate::helpers::{TestApp, spawn_app};

const PW: &str = "Tangerine-Quartz-Velvet-94";

async fn admin(app: &TestApp) -> reqwest::Client {
    app.create_user("admin@example.com", PW, "admin");
    let c = app.browser();
    app.login(&c, "admin@example.com", PW).await;
    c
}

fn model_form<'a>(
    gtin: &'a str,
    sku: &'a str,
    months: &'a str,
    format: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("gtin", gtin),
        ("sku", sku),
        ("brand", "Nordwind"),
        ("name", "Kettle K2"),
        ("model_number", "K2-17"),
        ("description", "1.7 l kettle"),
        ("warranty_months", months),
        ("warranty_start_rule", "sale"),
        ("warranty_grace_days", "60"),
        ("serial_format", format),
        ("serial_hint", "under the base"),
    ]
}

#[tokio::test]
async fn an_admin_creates_and_edits_a_product_model_with_checked_fields() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let (status, body, _) = app.get_with(&c, "/admin/catalogue").await;
    assert_eq!(status, 200);
    assert!(body.contains("PowerCell 18V"), "the demo models are listed");

    // Everything wrong at once: each message next to its field, what was typed kept.
    let (status, body, _) = app
        .submit(
            &c,
            "/admin/models/new",
            "/admin/models",
            &model_form("09506000134353", "", "9999", "AB@#"),
        )
        .await;
    assert_eq!(status, 422);
    for (field, text) in [
        ("gtin", "check digit"),
        ("sku", "Enter the SKU"),
        ("warranty_months", "from 0 to 600"),
        ("serial_format", "check digit (@) must come last"),
    ] {
        assert!(body.contains(&format!(r#"id="{field}-error""#)), "{field}");
        assert!(body.contains(text), "{field}: {text}");
    }
    assert!(body.contains(r#"value="09506000134353""#) && body.contains(r#"value="Nordwind""#));
    assert_eq!(
        app.scalar("SELECT count(*) FROM product_models WHERE brand = 'Nordwind'"),
        0
    );

    // Valid (the GTIN typed in groups as printed).
    let (status, _, location) = app
        .submit(
            &c,
            "/admin/models/new",
            "/admin/models",
            &model_form("0 9506000 88888 0", "K2-EU", "24", "K2-#####"),
        )
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.ends_with("?notice=model-created"), "{location}");
    let (status, body, _) = app.get_with(&c, &location).await;
    assert_eq!(status, 200);
    assert!(body.contains("Product model created") && body.contains("09506000888880"));
    let (_, public, _) = app.get_with(&c, "/01/09506000888880").await;
    assert!(public.contains("Nordwind Kettle K2") && public.contains("24 months"));

    // The same GTIN again is refused against the GTIN field.
    let (status, body, _) = app
        .submit(
            &c,
            "/admin/models/new",
            "/admin/models",
            &model_form("09506000888880", "K2-US", "24", ""),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("Another product model already has this GTIN"));

    // Edit: the warranty term changes on the public page.
    let id = app.scalar("SELECT id FROM product_models WHERE gtin = '09506000888880'");
    let mut form = model_form("", "K2-EU", "36", "K2-#####");
    form.retain(|(k, _)| *k != "gtin");
    let (status, _, location) = app
        .submit(
            &c,
            &format!("/admin/models/{id}"),
            &format!("/admin/models/{id}"),
            &form,
        )
        .await;
    assert_eq!(
        (status, location),
        (303, Some(format!("/admin/models/{id}?notice=model-saved")))
    );
    let (_, public, _) = app.get_with(&c, "/01/09506000888880").await;
    assert!(public.contains("36 months"));
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM audit_log WHERE event IN ('model_created', 'model_updated')"
        ),
        2
    );
}

#[tokio::test]
async fn switching_the_case_rule_rekeys_units_and_refuses_collisions() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let battery = app.scalar("SELECT id FROM product_models WHERE gtin = '09506000134352'");
    let form = |case_sensitive: bool| {
        let mut f = vec![
            ("sku", "PC18-5"),
            ("brand", "Arden Tools"),
            ("name", "PowerCell 18V 5.0 Ah battery pack"),
            ("model_number", "PC18-5"),
            ("warranty_months", "24"),
            ("warranty_start_rule", "sale"),
            ("warranty_grace_days", "90"),
            ("serial_format", "SN####"),
            ("serial_hint", "on the label"),
        ];
        if case_sensitive {
            f.push(("serials_case_sensitive", "on"));
        }
        f
    };
    let path = format!("/admin/models/{battery}");
    assert_eq!(app.page("/check?serial=sn0700").await.0, 200);
    let (status, _, _) = app.submit(&c, &path, &path, &form(true)).await;
    assert_eq!(status, 303);
    assert_eq!(
        app.page("/check?serial=sn0700").await.0,
        404,
        "lower case no longer matches"
    );
    assert_eq!(app.page("/check?serial=SN0700").await.0, 200);
    let (status, _, _) = app.submit(&c, &path, &path, &form(false)).await;
    assert_eq!(status, 303);
    assert_eq!(app.page("/check?serial=sn0700").await.0, 200);

    // Two serials that differ only in case make case-insensitivity impossible.
    app.sql("UPDATE product_models SET serials_case_sensitive = true WHERE id = (SELECT id FROM product_models WHERE gtin = '09506000134352')");
    app.sql("UPDATE units SET serial_key = serial WHERE model_id = (SELECT id FROM product_models WHERE gtin = '09506000134352')");
    app.sql(&format!("INSERT INTO units (model_id, serial, serial_key, status) VALUES ({battery}, 'sn0700', 'sn0700', 'manufactured')"));
    let (status, body, _) = app.submit(&c, &path, &path, &form(false)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("differ only in upper and lower case"));
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM product_models WHERE id = {battery} AND serials_case_sensitive"
        )),
        1,
        "nothing changed"
    );
}

#[tokio::test]
async fn lots_and_locations_are_validated() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let drill = app.scalar("SELECT id FROM product_models WHERE gtin = '09521234543213'");
    let path = format!("/admin/models/{drill}");
    let lots = format!("{path}/lots");
    for (code, produced, expiry, field, text) in [
        ("AB 1", "2026-01-01", "", "code", "cannot contain a space"),
        (
            "D18-2601",
            "01/02/2026",
            "",
            "production_date",
            "YYYY-MM-DD",
        ),
        (
            "D18-2601",
            "2026-02-01",
            "2026-01-01",
            "expiry_date",
            "cannot be before the production date",
        ),
        (
            "D18-2201",
            "2026-02-01",
            "",
            "code",
            "already has a lot D18-2201",
        ),
    ] {
        let (status, body, _) = app
            .submit(
                &c,
                &path,
                &lots,
                &[
                    ("code", code),
                    ("production_date", produced),
                    ("expiry_date", expiry),
                ],
            )
            .await;
        assert_eq!(status, 422, "{code} {produced} {expiry}");
        assert!(
            body.contains(&format!(r#"id="{field}-error""#)) && body.contains(text),
            "{field}: {body}"
        );
    }
    let (status, _, _) = app
        .submit(
            &c,
            &path,
            &lots,
            &[
                ("code", "D18-2601"),
                ("production_date", "2026-02-01"),
                ("expiry_date", ""),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM lots WHERE model_id = {drill} AND code = 'D18-2601'"
        )),
        1
    );

    let (status, _, _) = app
        .submit(
            &c,
            "/admin/catalogue",
            "/admin/locations",
            &[
                ("code", "st-ber"),
                ("name", "Berlin store"),
                ("kind", "store"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar("SELECT count(*) FROM locations WHERE code = 'ST-BER' AND kind = 'store'"),
        1
    );
    let (status, body, _) = app
        .submit(
            &c,
            "/admin/catalogue",
            "/admin/locations",
            &[("code", "ST-BER"), ("name", "Again"), ("kind", "store")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("There is already a location ST-BER"));
    let (status, _, _) = app
        .submit(
            &c,
            "/admin/catalogue",
            "/admin/locations",
            &[("code", "bad code!"), ("name", "X"), ("kind", "store")],
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM audit_log WHERE event IN ('lot_created', 'location_created')"
        ),
        2
    );
}

#[tokio::test]
async fn expiring_stock_and_a_first_expired_first_out_pick_list() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let battery = app.scalar("SELECT id FROM product_models WHERE gtin = '09506000134352'");
    app.sql(&format!(
        "INSERT INTO lots (model_id, code, production_date, expiry_date) VALUES
           ({battery}, 'EXP-SOON', current_date - 100, current_date + 10),
           ({battery}, 'EXP-LATER', current_date - 100, current_date + 400)"
    ));
    app.sql(&format!(
        "INSERT INTO units (model_id, serial, serial_key, lot_id, status, manufactured_on, location_id)
         SELECT {battery}, s, s, l.id, 'in_stock', current_date - 100, (SELECT id FROM locations WHERE code = 'WH-EU')
         FROM (VALUES ('SN9003', 'EXP-SOON'), ('SN9001', 'EXP-SOON'), ('SN9002', 'EXP-SOON'), ('SN9004', 'EXP-LATER'), ('SN9005', 'EXP-LATER')) v(s, lot)
         JOIN lots l ON l.model_id = {battery} AND l.code = v.lot"
    ));
    let (status, page, _) = app.get_with(&c, "/admin/stock?days=30").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<code>EXP-SOON</code>") && !page.contains("<code>EXP-LATER</code>"),
        "{page}"
    );
    assert!(page.contains("<td>3</td>"));

    let (status, page, _) = app
        .get_with(
            &c,
            "/admin/stock?location=WH-EU&gtin=09506000134352&quantity=4",
        )
        .await;
    assert_eq!(status, 200);
    let order: Vec<usize> = ["SN9001", "SN9002", "SN9003", "SN9004"]
        .iter()
        .map(|s| {
            page.find(&format!("<code>{s}</code>"))
                .unwrap_or(usize::MAX)
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1] && w[1] != usize::MAX),
        "FEFO order: {order:?}"
    );
    assert!(!page.contains("<code>SN9005</code>"));
    let (status, page, _) = app
        .get_with(
            &c,
            "/admin/stock?location=WH-EU&gtin=09506000134352&quantity=0",
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains(r#"id="quantity-error""#));
}

#[tokio::test]
async fn serials_are_generated_after_the_highest_existing_one_with_a_preview_first() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let battery = app.scalar("SELECT id FROM product_models WHERE gtin = '09506000134352'");
    let base = format!("/admin/models/{battery}/generate");
    let before = app.scalar("SELECT count(*) FROM units");
    // The preview changes nothing and continues after SN2000 (the demo's highest).
    let (status, page, _) = app
        .get_with(&c, &format!("{base}?lot=ABC124&count=5&location=WH-EU"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<code>SN2001</code> to <code>SN2005</code>"),
        "{page}"
    );
    assert_eq!(app.scalar("SELECT count(*) FROM units"), before);
    let token = crate::helpers::csrf_of(&page);
    let form = [
        ("csrf_token", token.as_str()),
        ("lot", "ABC124"),
        ("count", "5"),
        ("location", "WH-EU"),
        ("start", "2001"),
    ];
    let (status, _, location) = app.post_with(&c, &base, &form).await;
    assert_eq!(
        (status, location),
        (
            303,
            Some(format!("/admin/models/{battery}?notice=units-generated"))
        )
    );
    assert_eq!(app.scalar("SELECT count(*) FROM units WHERE serial BETWEEN 'SN2001' AND 'SN2005' AND status = 'in_stock'"), 5);
    assert_eq!(app.page("/check?serial=SN2003").await.0, 200);
    // Confirming the same preview again is refused: its numbers are taken now.
    let (status, page, _) = app.post_with(&c, &base, &form).await;
    assert_eq!(status, 409);
    assert!(
        page.contains("<code>SN2006</code> to <code>SN2010</code>"),
        "a fresh preview: {page}"
    );
    assert_eq!(app.scalar("SELECT count(*) FROM units") - before, 5);
    // More than the format has room for, and nonsense counts, are refused with a reason.
    let (status, page, _) = app
        .get_with(&c, &format!("{base}?lot=ABC124&count=9000"))
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("has room for 7994 more serial(s)"), "{page}");
    assert_eq!(
        app.get_with(&c, &format!("{base}?lot=ABC124&count=0"))
            .await
            .0,
        400
    );
    // A model without a format explains why nothing can be generated.
    let drill = app.scalar("SELECT id FROM product_models WHERE gtin = '09521234543213'");
    let (_, page, _) = app
        .get_with(&c, &format!("/admin/models/{drill}/generate"))
        .await;
    assert!(page.contains("has no serial format"));
}

#[tokio::test]
async fn stock_on_hand_report_with_chart_and_csv() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let (status, page, _) = app.get_with(&c, "/admin/reports/stock").await;
    assert_eq!(status, 200);
    let in_stock = app.scalar("SELECT count(*) FROM units WHERE status = 'in_stock'");
    assert_eq!(in_stock, 1400);
    assert!(page.contains("1400 unit(s) in stock"), "{page}");
    assert!(
        page.contains("<svg")
            && page.contains("<title id=\"chart-title\">Units in stock by model</title>")
    );
    assert!(
        page.contains(r#"width="360""#),
        "the largest bar is full width"
    );
    let r = c
        .get(format!("{}/admin/reports/stock.csv", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("gtin,product,location,lot,units\n"));
    assert!(
        csv.contains(
            "09506000134352,Arden Tools PowerCell 18V 5.0 Ah battery pack,WH-EU,ABC124,1000\n"
        ),
        "{csv}"
    );
    let total: i64 = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, in_stock);
}

#[tokio::test]
async fn turnover_per_model_over_a_chosen_period() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let (status, page, _) = app
        .get_with(&c, "/admin/reports/turnover?from=2025-01-01&to=2025-01-31")
        .await;
    assert_eq!(status, 200);
    // Lot ABC123 (made 2025-01-15) shipped five days later: 1000 batteries.
    assert!(
        page.contains("PowerCell") && page.contains("<td>1000</td>"),
        "{page}"
    );
    assert!(page.contains("<svg"));
    let csv = c
        .get(format!(
            "{}/admin/reports/turnover.csv?from=2025-01-01&to=2025-01-31",
            app.address
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        "gtin,product,from,to,shipped,sold\n09506000134352,Arden Tools PowerCell 18V 5.0 Ah battery pack,2025-01-01,2025-01-31,1000,0\n"
    );
    // The default period (the last 365 days) agrees with the history.
    let (_, page, _) = app.get_with(&c, "/admin/reports/turnover").await;
    let expected = app.scalar("SELECT count(*) FROM unit_events WHERE kind = 'shipped' AND occurred_at >= current_date - 365");
    let csv = c
        .get(format!("{}/admin/reports/turnover.csv", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let total: i64 = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, expected);
    assert!(page.contains("City E5"));
    let (status, page, _) = app
        .get_with(&c, "/admin/reports/turnover?from=2025-13-01")
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("Enter dates as YYYY-MM-DD"));
    let (status, page, _) = app
        .get_with(&c, "/admin/reports/turnover?from=2025-02-01&to=2025-01-01")
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("the dates were swapped") && page.contains("<td>1000</td>"));
}

mod pictures {
    use base64::Engine;

    use crate::helpers::{TestApp, csrf_of, spawn_app};

    const PW: &str = "correct horse battery staple";
    const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    async fn upload(
        app: &TestApp,
        c: &reqwest::Client,
        model: i64,
        token: &str,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> (u16, Option<String>) {
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token.to_owned())
            .part(
                "picture",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(name.to_owned())
                    .mime_str(mime)
                    .unwrap(),
            );
        let r = c
            .post(format!("{}/admin/models/{model}/picture", app.address))
            .multipart(form)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
        )
    }

    #[tokio::test]
    async fn a_model_picture_is_checked_by_content_and_shown_on_the_model_pages() {
        let app = spawn_app().await;
        app.create_user("admin@example.com", PW, "admin");
        let c = app.browser();
        app.login(&c, "admin@example.com", PW).await;
        let id = app.scalar("SELECT id FROM product_models WHERE gtin = '09506000134352'");
        let page = format!("/admin/models/{id}");
        let (_, body, _) = app.get_with(&c, &page).await;
        assert!(body.contains("No picture yet"), "{body}");
        let token = csrf_of(&body);
        let png = base64::engine::general_purpose::STANDARD
            .decode(PNG_1X1)
            .unwrap();

        // A spoofed upload: HTML named .png and sent as image/png.
        let (status, location) = upload(
            &app,
            &c,
            id,
            &token,
            "x.png",
            "image/png",
            b"<html><script>alert(1)</script></html>".to_vec(),
        )
        .await;
        assert_eq!(status, 303);
        let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
        assert!(
            body.contains("This file is not a PNG, JPEG or WebP picture"),
            "{body}"
        );
        // Too large, though it starts like a JPEG.
        let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
        big.resize(2 * 1024 * 1024 + 10, 0);
        let (status, location) = upload(&app, &c, id, &token, "big.jpg", "image/jpeg", big).await;
        assert_eq!(status, 303);
        let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
        assert!(body.contains("larger than 2 MB"), "{body}");
        // Without the token.
        let (status, _) = upload(&app, &c, id, "nope", "a.png", "image/png", png.clone()).await;
        assert_eq!(status, 403);
        assert_eq!(app.scalar("SELECT count(*) FROM model_pictures"), 0);

        // A real PNG, even sent as application/octet-stream, is a PNG.
        let (status, location) = upload(
            &app,
            &c,
            id,
            &token,
            "pack",
            "application/octet-stream",
            png.clone(),
        )
        .await;
        assert_eq!(status, 303);
        let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
        assert!(body.contains("Picture saved."), "{body}");
        assert!(
            body.contains(&format!("src=\"/models/{id}/picture?v=")),
            "{body}"
        );
        let (_, public) = app.page("/01/09506000134352").await;
        assert!(
            public.contains(&format!("src=\"/models/{id}/picture?v=")),
            "{public}"
        );
        let r = app.get(&format!("/models/{id}/picture")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.bytes().await.unwrap().to_vec(), png);
        assert_eq!(
            app.scalar("SELECT count(*) FROM audit_log WHERE event = 'model_picture_changed'"),
            1
        );

        // Removed: gone everywhere.
        let (status, _, _) = app
            .post_with(
                &c,
                &format!("/admin/models/{id}/picture/remove"),
                &[("csrf_token", &token)],
            )
            .await;
        assert_eq!(status, 303);
        assert_eq!(
            app.get(&format!("/models/{id}/picture")).await.status(),
            404
        );
        let (status, _) = upload(&app, &c, 999_999, &token, "a.png", "image/png", png).await;
        assert_eq!(status, 404);
    }
}
