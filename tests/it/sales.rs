//! Sales linkage: `import sales`, the sales form (typed and scanned), unlinking, and the
//! warranty that then starts on the sale date.

use chrono::{Days, Months};

use crate::helpers::{TestApp, csrf_of, spawn_app};
use crate::import::{run_import, temp_dir, write};

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

async fn admin(app: &TestApp) -> reqwest::Client {
    app.create_user("admin@example.com", PW, "admin");
    let c = app.browser();
    app.login(&c, "admin@example.com", PW).await;
    c
}

#[tokio::test]
async fn a_sales_file_links_units_and_the_warranty_starts_on_the_sale_date() {
    let app = spawn_app().await;
    let dir = temp_dir();
    let sold = today().checked_sub_days(Days::new(10)).unwrap();
    let file = write(
        &dir,
        "sales.csv",
        format!(
            "gtin,serial,order_ref,channel,sold_on,customer_email\n\
             {BATTERY},SN1500,ORD-1,Web shop,{sold},Buyer@Example.com\n\
             {BATTERY},sn1501,ORD-1,Web shop,{sold},buyer@example.com\n\
             {BATTERY},SN1502,R-77,Retailer Ltd,{sold},\n"
        )
        .as_bytes(),
    );
    let (ok, out, _) = run_import(&app, "sales", &file);
    assert!(ok, "{out}");
    assert!(out.contains("Imported 3 sales links"), "{out}");
    assert_eq!(app.scalar("SELECT count(*) FROM sales"), 2);
    assert_eq!(
        app.scalar("SELECT count(*) FROM sales WHERE order_ref = 'ORD-1' AND customer_email = 'buyer@example.com'"),
        1
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM units WHERE serial IN ('SN1500','SN1501','SN1502') AND status = 'sold' AND sold_on = '{sold}' AND location_id IS NOT NULL"
        )),
        3
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events e JOIN units u ON u.id = e.unit_id WHERE u.serial = 'SN1500' AND e.kind = 'sold' AND e.reference LIKE 'order ORD-1 · Web shop%' AND e.actor = 'import:sales.csv'"),
        1
    );
    // The lookup counts the warranty from the sale date now (24 months, last day included).
    let ends = sold
        .checked_add_months(Months::new(24))
        .unwrap()
        .pred_opt()
        .unwrap();
    let (status, body) = app
        .page(&format!("/check?serial=SN1500&gtin={BATTERY}"))
        .await;
    assert_eq!(status, 200);
    let expected = ends.format("%-d %B %Y").to_string();
    assert!(
        body.contains(&expected),
        "warranty until {expected} in {body}"
    );

    // The same file again: every line is already sold; nothing changes.
    let (ok, _, report) = run_import(&app, "sales", &file);
    assert!(!ok);
    let report = report.unwrap();
    assert!(
        report.contains("2,serial,\"SN1500 is already sold (order ORD-1, Web shop,"),
        "{report}"
    );
    assert_eq!(app.scalar("SELECT count(*) FROM sale_units"), 3);
}

#[tokio::test]
async fn broken_sales_files_are_refused_with_every_problem_and_write_nothing() {
    let app = spawn_app().await;
    let dir = temp_dir();
    app.sql("UPDATE units SET status = 'scrapped' WHERE serial = 'SN1600'");
    let d = today().checked_sub_days(Days::new(3)).unwrap();
    let future = today().checked_add_days(Days::new(30)).unwrap();
    let file = write(
        &dir,
        "bad.csv",
        format!(
            "gtin,serial,order_ref,channel,sold_on,customer_email\n\
             {BATTERY},SN1510,A-1,Shop,{d},\n\
             {BATTERY},SN1510,A-1,Shop,{d},\n\
             {BATTERY},SN9999,A-1,Shop,{d},\n\
             {BATTERY},SN1600,A-1,Shop,{d},\n\
             {BATTERY},SN1511,A-1,Shop,2020-01-01,\n\
             {BATTERY},SN1512,B-1,Shop,{future},\n\
             {BATTERY},SN1513,B-2,Shop,{d},not-an-email\n\
             09506000134353,SN1514,B-3,Shop,{d},\n\
             {BATTERY},SN1515,B-4,Shop,1999-01-01,\n"
        )
        .as_bytes(),
    );
    let (ok, out, report) = run_import(&app, "sales", &file);
    assert!(!ok, "{out}");
    let report = report.unwrap();
    for expected in [
        "3,serial,the same unit is already on line 2",
        "4,serial,there is no unit SN9999 of this model",
        "5,serial,SN1600 is scrapped and cannot be sold",
        "6,sold_on,order A-1 (Shop) is on line 2 with another sale date",
        "7,sold_on,",
        "is in the future",
        "8,customer_email,",
        "9,gtin,the last digit of this GTIN does not match its check digit",
        "10,sold_on,the sale date 1999-01-01 is before SN1515 was made",
    ] {
        assert!(report.contains(expected), "{expected:?} in\n{report}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM sales"), 0);
    assert_eq!(app.scalar("SELECT count(*) FROM sale_units"), 0);
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE sold_on IS NOT NULL"),
        0
    );
    for (name, content, expected) in [
        ("empty.csv", &b""[..], "1,,the file is empty"),
        (
            "cols.csv",
            b"gtin,serial,order\n",
            "1,order,\"unknown column 3",
        ),
        (
            "latin1.csv",
            b"gtin,serial,order_ref,channel,sold_on\n09506000134352,SN1\xe9,A,B,2025-01-01\n",
            "not valid UTF-8",
        ),
    ] {
        let file = write(&dir, name, content);
        let (ok, _, report) = run_import(&app, "sales", &file);
        assert!(!ok, "{name}");
        let report = report.unwrap();
        assert!(
            report.contains(expected),
            "{name}: {expected:?} in\n{report}"
        );
    }
}

#[tokio::test]
async fn the_sales_form_links_scanned_and_typed_units_or_nothing() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let d = today().checked_sub_days(Days::new(1)).unwrap().to_string();
    // A scanned GS1 element string (with GS), a Digital Link, and a bare serial.
    let scans = format!(
        "]d2010950600013435210ABC124\u{1d}21SN1700\nhttps://id.example.com/01/{BATTERY}/21/SN1701\nsn1702\n"
    );
    // A serial on two models without a GTIN, and an unknown one: nothing is linked.
    let bad = format!("{scans}SN0001\nSN9998\n");
    let (status, body, _) = app
        .submit(
            &c,
            "/admin/sales",
            "/admin/sales",
            &[
                ("order_ref", "POS-9"),
                ("channel", "Store Berlin"),
                ("sold_on", &d),
                ("customer_email", ""),
                ("serials", &bad),
            ],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("Line 4: SN0001 exists on 2 product models"),
        "{body}"
    );
    assert!(body.contains("Line 5: there is no unit SN9998"), "{body}");
    assert!(body.contains("value=\"POS-9\""), "what was typed is kept");
    assert!(body.contains("sn1702"), "the scans are kept");
    assert_eq!(app.scalar("SELECT count(*) FROM sale_units"), 0);

    // Missing fields are named next to the field.
    let (status, body, _) = app
        .submit(
            &c,
            "/admin/sales",
            "/admin/sales",
            &[
                ("order_ref", ""),
                ("channel", "Store"),
                ("sold_on", "tomorrow"),
                ("customer_email", ""),
                ("serials", ""),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("Enter the order, invoice or receipt number"),
        "{body}"
    );
    assert!(
        body.contains("Scan or type at least one serial number"),
        "{body}"
    );

    let (status, body, location) = app
        .submit(
            &c,
            "/admin/sales",
            "/admin/sales",
            &[
                ("order_ref", "POS-9"),
                ("channel", "Store Berlin"),
                ("sold_on", &d),
                ("customer_email", ""),
                ("serials", &scans),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let location = location.unwrap();
    let (_, page, _) = app.get_with(&c, &location).await;
    assert!(page.contains("Linked 3 unit(s) to order POS-9"), "{page}");
    assert!(page.contains("Store Berlin"), "listed among recent sales");
    assert_eq!(
        app.scalar(&format!("SELECT count(*) FROM units WHERE serial IN ('SN1700','SN1701','SN1702') AND sold_on = '{d}'")),
        3
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'sale_linked' AND detail LIKE '3 unit(s) to order POS-9%'"),
        1
    );
}

#[tokio::test]
async fn unlinking_keeps_the_record_and_needs_a_reason() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let d = today().checked_sub_days(Days::new(2)).unwrap().to_string();
    let (status, _, _) = app
        .submit(
            &c,
            "/admin/sales",
            "/admin/sales",
            &[
                ("order_ref", "W-1"),
                ("channel", "Web"),
                ("sold_on", &d),
                ("customer_email", "c@example.com"),
                ("serials", &format!("(01){BATTERY}(21)SN1800")),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let id = app.scalar("SELECT id FROM units WHERE serial = 'SN1800'");
    let page = format!("/staff/units/{id}");
    let (_, body, _) = app.get_with(&c, &page).await;
    assert!(
        body.contains("Order <code>W-1</code> · Web · sold"),
        "{body}"
    );
    assert!(body.contains("c@example.com"));
    assert!(body.contains("from the sale date"), "{body}");
    let token = csrf_of(&body);
    let (status, _, location) = app
        .post_with(
            &c,
            &format!("/admin/units/{id}/unlink"),
            &[("csrf_token", &token), ("reason", " ")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
    assert!(body.contains("Say why the unit is unlinked"), "{body}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM units WHERE id = {id} AND sold_on IS NOT NULL"
        )),
        1
    );

    let (status, _, location) = app
        .post_with(
            &c,
            &format!("/admin/units/{id}/unlink"),
            &[("csrf_token", &token), ("reason", "order cancelled")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
    assert!(body.contains("Unlinked from its sale"), "{body}");
    assert!(body.contains("unlinked: order cancelled"), "{body}");
    assert!(body.contains("<strong>unsold</strong>"), "{body}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM units WHERE id = {id} AND sold_on IS NULL AND status = 'returned'"
        )),
        1
    );
    assert_eq!(app.scalar("SELECT count(*) FROM sale_units WHERE unlink_reason = 'order cancelled' AND unlinked_by = 'admin:admin@example.com'"), 1);
    // Twice: a clear conflict, nothing changes.
    let (status, _, _) = app
        .post_with(
            &c,
            &format!("/admin/units/{id}/unlink"),
            &[("csrf_token", &token), ("reason", "again")],
        )
        .await;
    assert_eq!(status, 409);
    // It can be sold again.
    let (status, _, _) = app
        .submit(
            &c,
            "/admin/sales",
            "/admin/sales",
            &[
                ("order_ref", "W-2"),
                ("channel", "Web"),
                ("sold_on", &d),
                ("customer_email", ""),
                ("serials", "SN1800\n"),
            ],
        )
        .await;
    assert_eq!(status, 303);
}
