//! Stock counts: open, scan (form, pasted CSV, `count upload`), reconcile into every category,
//! apply chosen categories with their events and audit entry, and every refusal on the way.

use crate::helpers::{TestApp, csrf_of, spawn_app};
use crate::import::{temp_dir, write};

const PW: &str = "Pelican-Marmalade-Orbit-62";
const BATTERY: &str = "09506000134352";
const DRILL: &str = "09521234543213";
const SEAT: &str = "09506000134376";

async fn admin(app: &TestApp) -> reqwest::Client {
    app.create_user("admin@example.com", PW, "admin");
    let c = app.browser();
    app.login(&c, "admin@example.com", PW).await;
    c
}

/// Runs `recall-portal count ARGS…` against the app's database; returns (success, output).
fn run_count(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .arg("count")
        .args(args)
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn location_id(app: &TestApp, code: &str) -> i64 {
    app.scalar(&format!("SELECT id FROM locations WHERE code = '{code}'"))
}

/// Opens a count of `code` through the form; returns its id.
async fn open_count(app: &TestApp, c: &reqwest::Client, code: &str) -> i64 {
    let loc = location_id(app, code).to_string();
    let (status, body, location) = app
        .submit(c, "/admin/counts", "/admin/counts", &[("location", &loc)])
        .await;
    assert_eq!(status, 303, "{body}");
    let location = location.unwrap();
    assert!(location.ends_with("?notice=opened"), "{location}");
    location
        .trim_start_matches("/admin/counts/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn lines(app: &TestApp, count: i64, category: &str) -> i64 {
    app.scalar(&format!(
        "SELECT count(*) FROM stock_count_lines WHERE count_id = {count} AND category = '{category}'"
    ))
}

fn has_detail(app: &TestApp, count: i64, serial: &str, expected: &str) -> bool {
    app.scalar(&format!(
        "SELECT count(*) FROM stock_count_lines WHERE count_id = {count} AND serial = '{serial}' AND detail = '{expected}'"
    )) == 1
}

fn unit_is(app: &TestApp, serial: &str, status: &str, location: Option<&str>) -> bool {
    let loc = match location {
        Some(code) => format!("location_id = {}", location_id(app, code)),
        None => "location_id IS NULL".into(),
    };
    app.scalar(&format!(
        "SELECT count(*) FROM units WHERE serial = '{serial}' AND status = '{status}' AND {loc}"
    )) == 1
}

/// The shelf of the main test: a location of its own with five batteries and a car seat
/// (case-sensitive serials) recorded in stock there, and some units elsewhere in odd states.
fn stock_the_shelf(app: &TestApp) {
    app.sql("INSERT INTO locations (code, name) VALUES ('WH-CNT', 'Count test shelf')");
    app.sql(
        "UPDATE units SET location_id = (SELECT id FROM locations WHERE code = 'WH-CNT')
         WHERE serial IN ('SN1001', 'SN1002', 'SN1003', 'SN1004', 'SN1005', 'Ks00301x')",
    );
    // Returned, with no location on record; scrapped.
    app.sql("UPDATE units SET status = 'returned', location_id = NULL WHERE serial = 'SN1600'");
    app.sql("UPDATE units SET status = 'scrapped' WHERE serial = 'SN0700'");
}

#[tokio::test]
async fn counts_a_reconciliation_has_every_category_and_applies_only_what_was_chosen() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    stock_the_shelf(&app);
    let id = open_count(&app, &c, "WH-CNT").await;
    let page = format!("/admin/counts/{id}");
    let (_, body, _) = app.get_with(&c, &format!("{page}?notice=opened")).await;
    assert!(
        body.contains("Count opened. Scan every unit at WH-CNT"),
        "{body}"
    );

    // Scanned at the shelf: a GS1 element string with GS, a Digital Link, typed serials in
    // lower case, a repeat, the car seat as printed.
    let scanned = format!(
        "sn1001\n]d2010950600013435210ABC124\u{1d}21SN1002\nhttps://id.example.com/01/{BATTERY}/21/SN1003\nSN1001\nKs00301x\n\
         SN1500\nSN1600\nKs00302x\n(01){BATTERY}(21)SN0500\nSN0700\nSN0001\nSN9999\n"
    );
    let (status, body, location) = app
        .submit(&c, &page, &format!("{page}/scans"), &[("scans", &scanned)])
        .await;
    assert_eq!(status, 303, "{body}");
    let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
    assert!(body.contains("Added 12 scan(s)."), "{body}");

    // The rest from a file, through the command line: an unknown serial with its GTIN, an
    // unknown one twice without, and the car seat's serial in the wrong case.
    let dir = temp_dir();
    let file = write(
        &dir,
        "scans.csv",
        format!("gtin,serial\n{BATTERY},SN8888\n,SN9999\n,KS00301X\n,SN9999\n").as_bytes(),
    );
    let (ok, out) = run_count(
        &app,
        &["upload", "--count", &id.to_string(), file.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("Added 4 scans to stock count {id}")),
        "{out}"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT scan_count FROM stock_counts WHERE id = {id}"
        )),
        16
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM stock_count_scans WHERE count_id = {id}"
        )),
        16
    );

    let (status, body, location) = app
        .submit(&c, &page, &format!("{page}/reconcile"), &[])
        .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(&*format!("{page}?notice=reconciled"))
    );
    for (category, n) in [
        ("matched", 4),
        ("missing", 2),
        ("wrong_location", 3),
        ("not_in_stock", 2),
        ("unexpected", 3),
        ("ambiguous", 1),
    ] {
        assert_eq!(lines(&app, id, category), n, "{category}");
    }
    // Which units, and what the records said.
    for (serial, category) in [
        ("SN1001", "matched"),
        ("SN1002", "matched"),
        ("SN1003", "matched"),
        ("Ks00301x", "matched"),
        ("SN1004", "missing"),
        ("SN1005", "missing"),
        ("SN1500", "wrong_location"),
        ("SN1600", "wrong_location"),
        ("Ks00302x", "wrong_location"),
        ("SN0500", "not_in_stock"),
        ("SN0700", "not_in_stock"),
        ("SN8888", "unexpected"),
        ("SN9999", "unexpected"),
        ("KS00301X", "unexpected"),
        ("SN0001", "ambiguous"),
    ] {
        assert_eq!(
            app.scalar(&format!(
                "SELECT count(*) FROM stock_count_lines WHERE count_id = {id} AND serial = '{serial}' AND category = '{category}'"
            )),
            1,
            "{serial} {category}"
        );
    }
    assert!(has_detail(&app, id, "SN1500", "WH-EU"));
    assert!(has_detail(&app, id, "SN1600", "no location (returned)"));
    assert!(has_detail(&app, id, "Ks00302x", "WH-US"));
    assert!(has_detail(&app, id, "SN0500", "shipped"));
    assert!(has_detail(&app, id, "SN0700", "scrapped"));
    assert!(has_detail(
        &app,
        id,
        "SN0001",
        &format!("on 2 products: GTIN {BATTERY}, {DRILL}")
    ));
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM stock_count_lines l JOIN product_models m ON m.id = l.model_id
             WHERE l.count_id = {id} AND l.serial = 'SN8888' AND m.gtin = '{BATTERY}'"
        )),
        1,
        "an unexpected scan keeps the product its GTIN named"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM stock_count_lines l JOIN product_models m ON m.id = l.model_id
             WHERE l.count_id = {id} AND l.serial = 'Ks00301x' AND m.gtin = '{SEAT}'"
        )),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'stock_count_reconciled' AND detail LIKE '%WH-CNT: 2 missing, 3 wrong location, 2 not in stock, 3 unexpected, 1 ambiguous, 4 matched'"),
        1
    );

    // The page: counts per category and the lines of the first one with lines.
    let (status, body, _) = app.get_with(&c, &page).await;
    assert_eq!(status, 200);
    assert!(body.contains("Missing: lines"), "{body}");
    assert!(body.contains("<code>SN1004</code>"), "{body}");
    assert!(
        body.contains("Move these units to WH-CNT, in stock (3)"),
        "{body}"
    );
    assert!(
        body.contains("Mark these units missing (no location) (2)"),
        "{body}"
    );
    let (_, body, _) = app
        .get_with(&c, &format!("{page}?category=wrong_location"))
        .await;
    assert!(body.contains("records: no location (returned)"), "{body}");
    let (_, body, _) = app
        .get_with(&c, &format!("{page}?category=unexpected"))
        .await;
    assert!(body.contains(&format!("GTIN {BATTERY}")), "{body}");
    assert!(body.contains("scanned without a GTIN"), "{body}");

    // Apply wrong location and missing; leave the units recorded as not in stock alone.
    let (_, body, _) = app.get_with(&c, &page).await;
    let token = csrf_of(&body);
    let stamp = body
        .split(r#"name="reconciled" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let events_before = app.scalar("SELECT count(*) FROM unit_events");
    let (status, body, location) = app
        .post_with(
            &c,
            &format!("{page}/apply"),
            &[
                ("csrf_token", &token),
                ("reconciled", &stamp),
                ("wrong_location", "on"),
                ("missing", "on"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
    assert!(
        body.contains("Applied: 3 moved here, 2 marked missing."),
        "{body}"
    );
    assert!(body.contains("read-only"), "{body}");
    assert!(
        !body.contains(&format!("{page}/scans")),
        "no scan form any more"
    );
    for serial in ["SN1500", "SN1600", "Ks00302x"] {
        assert!(
            unit_is(&app, serial, "in_stock", Some("WH-CNT")),
            "{serial}"
        );
    }
    for serial in ["SN1004", "SN1005"] {
        assert!(unit_is(&app, serial, "missing", None), "{serial}");
    }
    assert!(unit_is(&app, "SN0700", "scrapped", None), "not chosen");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM units u JOIN product_models m ON m.id = u.model_id
             WHERE u.serial = 'SN0500' AND m.gtin = '{BATTERY}' AND u.status = 'shipped'"
        )),
        1,
        "not chosen"
    );
    assert!(unit_is(&app, "SN1001", "in_stock", Some("WH-CNT")));
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events") - events_before,
        5
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM unit_events e JOIN units u ON u.id = e.unit_id
             WHERE u.serial = 'SN1600' AND e.kind = 'adjusted' AND e.actor = 'admin:admin@example.com'
               AND e.location_id = {} AND e.note = 'stock count {id}: found at WH-CNT; records had it at no location (returned)'",
            location_id(&app, "WH-CNT")
        )),
        1
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM unit_events e JOIN units u ON u.id = e.unit_id
             WHERE u.serial = 'SN1500' AND e.note = 'stock count {id}: found at WH-CNT; records had it at WH-EU'"
        )),
        1
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM unit_events e JOIN units u ON u.id = e.unit_id
             WHERE u.serial IN ('SN1004', 'SN1005') AND e.kind = 'adjusted'
               AND e.note = 'stock count {id}: not found at WH-CNT; marked missing'"
        )),
        2
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM audit_log a JOIN accounts ac ON ac.id = a.actor_id
             WHERE a.event = 'stock_count_applied' AND ac.email = 'admin@example.com'
               AND a.detail = 'stock count {id} at WH-CNT: 3 moved here, 2 marked missing'"
        )),
        1
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM stock_counts WHERE id = {id} AND status = 'applied' AND applied_at IS NOT NULL
             AND applied_by = (SELECT id FROM accounts WHERE email = 'admin@example.com')"
        )),
        1
    );
    // The unit's history shows the adjustment.
    let unit = app.scalar("SELECT id FROM units WHERE serial = 'SN1500'");
    let (_, history, _) = app.get_with(&c, &format!("/staff/units/{unit}")).await;
    assert!(
        history.contains(&format!(
            "stock count {id}: found at WH-CNT; records had it at WH-EU"
        )),
        "{history}"
    );

    // Applied once: a second apply, more scans or a new reconciliation are refused, and
    // nothing changes.
    for (action, form) in [
        (
            "apply",
            vec![("reconciled", stamp.as_str()), ("not_in_stock", "on")],
        ),
        ("scans", vec![("scans", "SN1004")]),
        ("reconcile", vec![]),
        ("cancel", vec![]),
    ] {
        let mut fields = form.clone();
        fields.push(("csrf_token", &token));
        let (status, body, _) = app
            .post_with(&c, &format!("{page}/{action}"), &fields)
            .await;
        assert_eq!(status, 409, "{action}: {body}");
        assert!(
            body.contains(&format!(
                "Stock count {id} is applied and can no longer be changed"
            )),
            "{action}: {body}"
        );
    }
    let (ok, out) = run_count(&app, &["reconcile", "--count", &id.to_string()]);
    assert!(!ok);
    assert!(
        out.contains("is applied and can no longer be changed"),
        "{out}"
    );
    assert!(unit_is(&app, "SN0700", "scrapped", None));
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events") - events_before,
        5
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'stock_count_applied'"),
        1
    );
}

#[tokio::test]
async fn counts_refuse_bad_input_stale_applies_and_forged_forms_without_changing_anything() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    // Opening: nothing chosen, an unknown location, a location already being counted.
    let (status, body, _) = app
        .submit(&c, "/admin/counts", "/admin/counts", &[("location", "")])
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("Choose the location to count."), "{body}");
    let (status, body, _) = app
        .submit(
            &c,
            "/admin/counts",
            "/admin/counts",
            &[("location", "999999")],
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("There is no location 999999"), "{body}");
    let id = open_count(&app, &c, "WH-EU").await;
    let wh_eu = location_id(&app, "WH-EU").to_string();
    let (status, body, _) = app
        .submit(
            &c,
            "/admin/counts",
            "/admin/counts",
            &[("location", &wh_eu)],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains(&format!(
            "Stock count {id} of this location is not finished yet"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(r#"<option value="{wh_eu}" selected>"#)),
        "the choice is kept"
    );
    let (_, list, _) = app.get_with(&c, "/admin/counts").await;
    assert!(
        list.contains(&format!("<a href=\"/admin/counts/{id}\">Count {id}</a>")),
        "{list}"
    );
    assert!(list.contains("admin@example.com"), "{list}");

    // Addresses that name nothing, or nothing sensible.
    let page = format!("/admin/counts/{id}");
    for (path, expected) in [
        ("/admin/counts/999999".to_owned(), 404),
        ("/admin/counts/-1".to_owned(), 404),
        ("/admin/counts/abc".to_owned(), 400),
        ("/admin/counts/99999999999999999999".to_owned(), 400),
        ("/admin/counts/999999/lines.csv".to_owned(), 404),
        (format!("{page}?category=lost"), 400),
        (format!("{page}?page=0"), 400),
        (format!("{page}?page=x"), 400),
        (format!("{page}?page=2"), 404),
    ] {
        let (status, body, _) = app.get_with(&c, &path).await;
        assert_eq!(status, expected, "{path}: {body}");
    }

    // Scans that cannot be read: every bad line named, what was typed kept, nothing added.
    let bad = "SN1001\nS N 1\n(01)09506000134353(21)SN1\n]d2010999999999999421X1\n";
    let (status, body, _) = app
        .submit(&c, &page, &format!("{page}/scans"), &[("scans", bad)])
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("3 line(s) cannot be read; nothing was added"),
        "{body}"
    );
    assert!(body.contains("Line 2 (<code>S N 1</code>)"), "{body}");
    assert!(body.contains("Line 3"), "{body}");
    assert!(body.contains("Line 4"), "{body}");
    assert!(
        body.contains("No product model has GTIN 09999999999994"),
        "{body}"
    );
    assert!(body.contains(">SN1001\nS N 1"), "the text is kept: {body}");
    let (status, body, _) = app
        .submit(&c, &page, &format!("{page}/scans"), &[("scans", " \n ")])
        .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("Scan or type at least one serial number."),
        "{body}"
    );
    // A pasted file with problems: every line named, nothing added.
    let csv =
        format!("gtin,serial\n{BATTERY},SN1001\n09506000134353,SN1002\n{BATTERY},S N\n,SN1003,x\n");
    let (status, body, _) = app
        .submit(&c, &page, &format!("{page}/upload"), &[("csv", &csv)])
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("3 problem(s) in the pasted file; nothing was added"),
        "{body}"
    );
    assert!(body.contains("Line 3, gtin: "), "{body}");
    assert!(
        body.contains("Line 4, serial: a serial number cannot contain a space"),
        "{body}"
    );
    assert!(
        body.contains("Line 5: has 3 fields; the header has 2"),
        "{body}"
    );
    assert!(body.contains("09506000134353,SN1002"), "the text is kept");
    let (status, body, _) = app
        .submit(
            &c,
            &page,
            &format!("{page}/upload"),
            &[("csv", "colour\nred\n")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("unknown column 1"), "{body}");
    let (status, body, _) = app
        .submit(&c, &page, &format!("{page}/upload"), &[("csv", "")])
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("the file is empty"), "{body}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT scan_count FROM stock_counts WHERE id = {id}"
        )),
        0
    );
    assert_eq!(app.scalar("SELECT count(*) FROM stock_count_scans"), 0);

    // Applying before any reconciliation.
    let (_, body, _) = app.get_with(&c, &page).await;
    let token = csrf_of(&body);
    let (status, body, _) = app
        .post_with(
            &c,
            &format!("{page}/apply"),
            &[
                ("csrf_token", &token),
                ("reconciled", "1"),
                ("missing", "on"),
            ],
        )
        .await;
    assert_eq!(status, 409);
    assert!(body.contains("has not been reconciled yet"), "{body}");

    // A paste that is right, then a reconciliation: 1,300 units are in stock at WH-EU.
    let (status, body, _) = app
        .submit(
            &c,
            &page,
            &format!("{page}/upload"),
            &[("csv", &format!("serial,gtin\nSN1001,{BATTERY}\nsn1002,\n"))],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let (status, _, _) = app
        .submit(&c, &page, &format!("{page}/reconcile"), &[])
        .await;
    assert_eq!(status, 303);
    assert_eq!(lines(&app, id, "matched"), 2);
    assert_eq!(lines(&app, id, "missing"), 1298);
    // Lines page by page, 200 at a time, and all of them as CSV.
    let (status, body, _) = app
        .get_with(&c, &format!("{page}?category=missing&page=2"))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("Page 2 of 7"), "{body}");
    assert!(
        body.contains(&format!(
            r#"href="{page}?category=missing&#38;page=3" rel="next""#
        )),
        "{body}"
    );
    assert_eq!(body.matches("<tr><td><a href=\"/staff/units/").count(), 200);
    let (status, _, _) = app
        .get_with(&c, &format!("{page}?category=missing&page=8"))
        .await;
    assert_eq!(status, 404);
    let r = c
        .get(format!("{}{page}/lines.csv", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 1301, "header and 1,300 lines");
    assert!(
        csv.starts_with("category,gtin,serial,product,detail\n"),
        "{}",
        &csv[..200]
    );
    assert!(
        csv.contains(&format!(
            "matched,{BATTERY},SN1001,Arden Tools PowerCell 18V 5.0 Ah battery pack,\n"
        )),
        "{}",
        &csv[..400]
    );

    // Capture the page as the admin saw it, then add a scan: the lines are out of date.
    let (_, seen, _) = app.get_with(&c, &page).await;
    let stamp = seen
        .split(r#"name="reconciled" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let (status, _, _) = app
        .submit(&c, &page, &format!("{page}/scans"), &[("scans", "SN1003")])
        .await;
    assert_eq!(status, 303);
    let (_, body, _) = app.get_with(&c, &page).await;
    assert!(body.contains("the lines below are out of date"), "{body}");
    let apply = |stamp: String| {
        let (c, page, token) = (c.clone(), page.clone(), token.clone());
        let app = &app;
        async move {
            app.post_with(
                &c,
                &format!("{page}/apply"),
                &[
                    ("csrf_token", &token),
                    ("reconciled", &stamp),
                    ("missing", "on"),
                ],
            )
            .await
        }
    };
    let (status, body, _) = apply(stamp.clone()).await;
    assert_eq!(status, 409);
    assert!(
        body.contains("after it was reconciled, so its lines are out of date"),
        "{body}"
    );
    // Reconciled again: the old page's apply is refused (the admin has not seen these lines).
    let (status, _, _) = app
        .submit(&c, &page, &format!("{page}/reconcile"), &[])
        .await;
    assert_eq!(status, 303);
    assert_eq!(lines(&app, id, "missing"), 1297);
    let (status, body, _) = apply(stamp).await;
    assert_eq!(status, 409);
    assert!(
        body.contains("was reconciled again after this page was loaded"),
        "{body}"
    );
    // Nothing chosen while there is something to adjust.
    let (_, body, _) = app.get_with(&c, &page).await;
    let stamp = body
        .split(r#"name="reconciled" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let (status, body, _) = app
        .post_with(
            &c,
            &format!("{page}/apply"),
            &[("csrf_token", &token), ("reconciled", &stamp)],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("Choose at least one kind of adjustment to apply"),
        "{body}"
    );
    let (status, _, _) = app
        .post_with(
            &c,
            &format!("{page}/apply"),
            &[
                ("csrf_token", &token),
                ("reconciled", "yesterday"),
                ("missing", "on"),
            ],
        )
        .await;
    assert_eq!(status, 400);

    // A unit sold after the reconciliation: its "missing" is no longer true, nothing applies.
    app.sql("UPDATE units SET status = 'sold', location_id = NULL WHERE serial = 'SN1900'");
    let events = app.scalar("SELECT count(*) FROM unit_events");
    let (status, body, _) = apply(stamp.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("1 unit(s) of stock count"), "{body}");
    assert_eq!(app.scalar("SELECT count(*) FROM unit_events"), events);
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE status = 'missing'"),
        0
    );

    // Forged forms: no token, a wrong token, another site. Refused before anything happens.
    for (fields, origin) in [
        (vec![("missing", "on")], None),
        (vec![("csrf_token", "forged"), ("missing", "on")], None),
        (
            vec![("csrf_token", token.as_str()), ("missing", "on")],
            Some("https://evil.example"),
        ),
    ] {
        let mut fields = fields.clone();
        fields.push(("reconciled", &stamp));
        let mut r = c.post(format!("{}{page}/apply", app.address)).form(&fields);
        if let Some(o) = origin {
            r = r.header("Origin", o);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 403, "{origin:?}");
    }
    let r = c
        .post(format!("{}{page}/scans", app.address))
        .form(&[("scans", "SN1004")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.scalar(&format!(
            "SELECT scan_count FROM stock_counts WHERE id = {id}"
        )),
        3
    );
    assert_eq!(app.scalar("SELECT count(*) FROM unit_events"), events);

    // Cancelled: read-only, and the location can be counted again.
    let (status, _, location) = app.submit(&c, &page, &format!("{page}/cancel"), &[]).await;
    assert_eq!(status, 303);
    let (_, body, _) = app.get_with(&c, &location.unwrap()).await;
    assert!(body.contains("The count was cancelled"), "{body}");
    assert!(body.contains("cancelled"), "{body}");
    let (status, body, _) = app
        .post_with(
            &c,
            &format!("{page}/scans"),
            &[("csrf_token", &token), ("scans", "SN1004")],
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        body.contains("is cancelled and can no longer be changed"),
        "{body}"
    );
    let again = open_count(&app, &c, "WH-EU").await;
    assert!(again > id);
    for event in [
        "stock_count_opened",
        "stock_count_scanned",
        "stock_count_reconciled",
        "stock_count_cancelled",
    ] {
        assert!(
            app.scalar(&format!(
                "SELECT count(*) FROM audit_log WHERE event = '{event}'"
            )) >= 1,
            "{event}"
        );
    }
    // Staff may not see or touch counts.
    app.create_user("staff@example.com", PW, "staff");
    let s = app.browser();
    app.login(&s, "staff@example.com", PW).await;
    assert_eq!(app.get_with(&s, &page).await.0, 403);
    let (_, body, _) = app.get_with(&s, "/account").await;
    let staff_token = csrf_of(&body);
    let (status, _, _) = app
        .post_with(
            &s,
            &format!("/admin/counts/{again}/reconcile"),
            &[("csrf_token", &staff_token)],
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn counts_upload_a_scan_file_from_the_command_line_all_or_nothing() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let id = open_count(&app, &c, "WH-US").await.to_string();
    let dir = temp_dir();
    let bad = write(
        &dir,
        "bad.csv",
        format!("serial,gtin\nKs00301x,{SEAT}\nKs00302x,09506000134353\nKs 3,\nKs00304x,09999999999994\n").as_bytes(),
    );
    let (ok, out) = run_count(&app, &["upload", "--count", &id, bad.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("nothing was added: 3 problem(s) in 4 row(s) read"),
        "{out}"
    );
    let report = std::fs::read_to_string(dir.join("bad.csv.errors.csv")).unwrap();
    for expected in [
        "3,gtin,",
        "4,serial,a serial number cannot contain a space",
        "5,gtin,no product model has GTIN 09999999999994",
    ] {
        assert!(report.contains(expected), "{expected:?} in\n{report}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM stock_count_scans"), 0);

    // 250 scans of car seats (case-sensitive serials, exactly as printed) and one repeat.
    let mut good = String::from("gtin,serial\n");
    for n in 301..=400 {
        good.push_str(&format!("{SEAT},Ks{n:05}x\n"));
    }
    good.push_str(&format!("{SEAT},Ks00301x\n"));
    let good = write(&dir, "good.csv", good.as_bytes());
    let (ok, out) = run_count(&app, &["upload", "--count", &id, good.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("Added 101 scans to stock count {id}")),
        "{out}"
    );
    let (ok, out) = run_count(&app, &["reconcile", "--count", &id]);
    assert!(ok, "{out}");
    let row = |name: &str, n: &str| {
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [name, n])
    };
    assert!(row("matched", "100") && row("missing", "0"), "{out}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM stock_count_lines WHERE count_id = {id}"
        )),
        100
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'stock_count_scanned' AND actor_id IS NULL AND detail LIKE '%101 scan(s) added (command line, good.csv)'"),
        1
    );
    // A count that does not exist, or a file that does not.
    let (ok, out) = run_count(
        &app,
        &["upload", "--count", "999999", good.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(out.contains("there is no stock count 999999"), "{out}");
    let (ok, out) = run_count(&app, &["upload", "--count", &id, "/nonexistent/scans.csv"]);
    assert!(!ok);
    assert!(out.contains("/nonexistent/scans.csv"), "{out}");
}

#[tokio::test]
async fn counts_a_reconciliation_blocked_by_a_long_reader_gives_up_cleanly() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let id = open_count(&app, &c, "WH-US").await;
    let page = format!("/admin/counts/{id}");
    let (status, _, _) = app
        .submit(
            &c,
            &page,
            &format!("{page}/scans"),
            &[("scans", "Ks00301x")],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = app
        .submit(&c, &page, &format!("{page}/reconcile"), &[])
        .await;
    assert_eq!(status, 303);
    assert_eq!(lines(&app, id, "missing"), 99);
    // Someone reads the lines in a long transaction (an apply, a download): reconciling again
    // must replace this count's lines, gives up after a while, and changes nothing.
    let (reader, connection) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM stock_count_lines;")
        .await
        .unwrap();
    let (status, body, _) = app
        .submit(&c, &page, &format!("{page}/reconcile"), &[])
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("being read by a long operation"), "{body}");
    assert_eq!(lines(&app, id, "missing"), 99, "the earlier lines are kept");
    reader.batch_execute("COMMIT").await.unwrap();
    let (status, _, _) = app
        .submit(&c, &page, &format!("{page}/reconcile"), &[])
        .await;
    assert_eq!(status, 303);
    assert_eq!(lines(&app, id, "matched"), 1);
}
