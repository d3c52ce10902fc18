//! The recall effectiveness dashboard and the unit export over real HTTP: every figure overall,
//! per lot and day by day against numbers worked out by hand, the CSV row by row, the security
//! log entry, who may see it, and what a draft or a bad address gets.

use chrono::{Days, NaiveDate, Utc};

use crate::helpers::{TestApp, csrf_of, q, spawn_app, user};

const BATTERY: &str = "09506000134352";

async fn register(app: &TestApp, c: &reqwest::Client, serial: &str) {
    let (status, body, _) = app
        .submit_multipart(
            c,
            &format!("/register?gtin={BATTERY}&serial={}", q(serial)),
            "/register",
            &[
                ("serial", serial),
                ("gtin", BATTERY),
                ("purchased_on", "2026-01-10"),
                ("place_of_purchase", "Shop"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{serial}: {body}");
}

/// A draft with a complete notice and one target (`fields`); returns its id.
async fn campaign(
    app: &TestApp,
    admin: &reqwest::Client,
    code: &str,
    target: &[(&str, &str)],
) -> i64 {
    let (status, body, location) = app
        .submit(
            admin,
            "/admin/recalls",
            "/admin/recalls",
            &[("code", code), ("title", "PowerCell 18V battery packs")],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let id: i64 = location
        .unwrap()
        .trim_start_matches("/admin/recalls/")
        .parse()
        .unwrap();
    let page = format!("/admin/recalls/{id}");
    let (status, _, _) = app
        .submit(
            admin,
            &page,
            &format!("/admin/recalls/{id}/notice"),
            &[
                ("title", "PowerCell 18V battery packs"),
                (
                    "hazard",
                    "The battery can overheat while charging and catch fire.",
                ),
                ("what_to_do", "Stop using and stop charging it now."),
                ("remedy_replace", "on"),
                ("remedy_refund", "on"),
                (
                    "sold_where",
                    "Hardware stores and online, March to June 2026.",
                ),
                ("contact", "0800 123 456, recall@arden.example"),
                ("second_notice_days", "14"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, body, location) = app
        .submit_multipart(
            admin,
            &page,
            &format!("/admin/recalls/{id}/targets"),
            target,
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    assert!(location.unwrap().contains("notice=target"));
    id
}

async fn launch(app: &TestApp, admin: &reqwest::Client, id: i64) {
    let (status, _, location) = app
        .submit(
            admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/launch"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=launched"));
}

/// The text of each cell of the table row whose heading cell holds `heading` (tags removed).
fn row(page: &str, table_id: &str, heading: &str) -> Vec<String> {
    let table = page
        .split(&format!(r#"<table id="{table_id}">"#))
        .nth(1)
        .unwrap_or_else(|| panic!("no table {table_id} in {page}"))
        .split("</table>")
        .next()
        .unwrap();
    let found = table
        .split("<tr>")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .find(|r| {
            r.starts_with(r#"<th scope="row">"#)
                && strip(r.split("</th>").next().unwrap()) == heading
        })
        .unwrap_or_else(|| panic!("no row {heading} in {table}"));
    found
        .split("</th>")
        .nth(1)
        .unwrap()
        .split("<td>")
        .skip(1)
        .map(|c| strip(c.split("</td>").next().unwrap()))
        .collect()
}

fn strip(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// The figures columns of a lot row (after the product) or of the total row.
fn figures(cells: &[String]) -> Vec<&str> {
    cells[1..].iter().map(String::as_str).collect()
}

#[tokio::test]
async fn every_figure_overall_per_lot_and_by_day_and_the_export_match_the_hand_count() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    let admin_id = app.scalar("SELECT id FROM accounts WHERE email = 'admin@example.com'");
    let ann = user(&app, "ann@example.com", "customer").await;
    let dan = user(&app, "dan@example.com", "customer").await;
    let bob = user(&app, "bob@example.com", "customer").await;
    let carl = user(&app, "carl@example.com", "customer").await;
    // SN0995–SN1000 are lot ABC123, SN1001–SN1004 lot ABC124; SN1005 and SN1006 get no lot.
    app.sql(&format!(
        "UPDATE units SET lot_id = NULL WHERE serial IN ('SN1005', 'SN1006')
           AND model_id = (SELECT id FROM product_models WHERE gtin = '{BATTERY}')"
    ));
    register(&app, &ann, "SN0995").await;
    register(&app, &ann, "SN0996").await;
    register(&app, &dan, "SN0997").await;
    register(&app, &bob, "SN1001").await;
    register(&app, &carl, "SN1005").await;
    let model = app
        .scalar(&format!(
            "SELECT id FROM product_models WHERE gtin = '{BATTERY}'"
        ))
        .to_string();
    let id = campaign(
        &app,
        &admin,
        "R-EFF-1",
        &[
            ("kind", "range"),
            ("model", &model),
            ("from", "SN0995"),
            ("to", "SN1006"),
        ],
    )
    .await;

    // A draft has nothing to measure or export, and says so.
    let effectiveness = format!("/admin/recalls/{id}/effectiveness");
    let csv_path = format!("/admin/recalls/{id}/units.csv");
    let (status, page, _) = app.get_with(&admin, &effectiveness).await;
    assert_eq!(status, 404);
    assert!(
        page.contains("This campaign is a draft, so there is nothing to measure yet"),
        "{page}"
    );
    let (status, page, _) = app.get_with(&admin, &csv_path).await;
    assert_eq!(status, 404);
    assert!(page.contains("Nothing to export yet"), "{page}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'recall_units_exported'"),
        0
    );

    launch(&app, &admin, id).await;
    // The launch happened four days ago (L); today is L+4.
    let today = Utc::now().date_naive();
    let day = |n: u64| -> NaiveDate { today - Days::new(4) + Days::new(n) };
    app.sql(&format!(
        "UPDATE recall_campaigns SET launched_at = '{} 09:00:00+00' WHERE id = {id}",
        day(0)
    ));
    // Mail: Ann's notice went out, Dan's waits, Bob's failed; Carl's first failed and the
    // second went out.
    let notice_mail = |who: &str, status: &str| {
        format!(
            "UPDATE outbox SET status = '{status}' WHERE id =
               (SELECT outbox_id FROM recall_notices WHERE campaign_id = {id} AND contact_email = '{who}')"
        )
    };
    app.sql(&notice_mail("ann@example.com", "sent"));
    app.sql(&notice_mail("bob@example.com", "failed"));
    app.sql(&notice_mail("carl@example.com", "failed"));
    app.sql(&format!(
        "WITH o AS (INSERT INTO outbox (kind, to_address, subject, body_text, body_html, status)
                    VALUES ('recall_notice', 'carl@example.com', 'Again', 't', 'h', 'sent') RETURNING id)
         UPDATE recall_notices SET second_outbox_id = (SELECT id FROM o)
         WHERE campaign_id = {id} AND contact_email = 'carl@example.com'"
    ));
    // Ann and Carl acknowledge from their accounts.
    for (c, remedy) in [(&ann, "replace"), (&carl, "refund")] {
        let (status, page, _) = app.get_with(c, "/account/recalls/R-EFF-1").await;
        assert_eq!(status, 200, "{page}");
        let (status, _, _) = app
            .post_with(
                c,
                "/account/recalls/R-EFF-1",
                &[("csrf_token", &csrf_of(&page)), ("remedy", remedy)],
            )
            .await;
        assert_eq!(status, 303);
    }
    let units_of = |serials: &str| {
        format!(
            "campaign_id = {id} AND unit_id IN (SELECT u.id FROM units u JOIN product_models m ON m.id = u.model_id
               WHERE m.gtin = '{BATTERY}' AND u.serial IN ({serials}))"
        )
    };
    app.sql(&format!(
        "UPDATE recall_units SET acknowledged_at = '{} 10:00:00+00' WHERE {}",
        day(1),
        units_of("'SN0995', 'SN0996'")
    ));
    // Late in the evening, UTC: still day L+3.
    app.sql(&format!(
        "UPDATE recall_units SET acknowledged_at = '{} 23:30:00+00' WHERE {}",
        day(3),
        units_of("'SN1005'")
    ));
    // Staff record three remedies (today); two of them were two days ago in fact.
    for serial in ["SN0995", "SN0998", "SN1002"] {
        let (_, _, location) = app
            .submit(
                &admin,
                &format!("/admin/recalls/{id}"),
                &format!("/admin/recalls/{id}/remedied"),
                &[("serial", serial), ("gtin", BATTERY)],
            )
            .await;
        assert!(location.unwrap().ends_with("notice=remedied"), "{serial}");
    }
    app.sql(&format!(
        "UPDATE recall_units SET remedied_on = '{}' WHERE {}",
        day(2),
        units_of("'SN0995', 'SN0998'")
    ));

    // By hand:
    //           units                         reach notif deliv ack rem unreach rate
    // ABC123    0995a 0996a 0997d 0998 0999 1000  3    3     2     2   2   2     33.3
    // ABC124    1001b 1002 1003 1004              1    1     0     0   1   2     25.0
    // no lot    1005c 1006                        1    1     1     1   0   1      0.0
    // all       12                                5    5     3     3   3   5     25.0
    let (status, page, _) = app.get_with(&admin, &effectiveness).await;
    assert_eq!(status, 200, "{page}");
    for (term, n) in [
        ("Affected", 12),
        ("Reachable", 5),
        ("Notified", 5),
        ("Delivered", 3),
        ("Acknowledged", 3),
        ("Remedied", 3),
        ("Unreachable", 5),
    ] {
        assert!(
            page.contains(&format!("<dt>{term}</dt><dd>{n}</dd>")),
            "{term} {n}"
        );
    }
    assert!(page.contains(r#"<strong id="correction-rate">25.0 %</strong>"#));
    assert!(page.contains(&format!("Launched on {}", day(0))));
    let abc123 = row(&page, "lot-table", "ABC123");
    assert!(abc123[0].contains(BATTERY), "{abc123:?}");
    assert_eq!(
        figures(&abc123),
        ["6", "3", "3", "2", "2", "2", "2", "33.3 %"]
    );
    assert_eq!(
        figures(&row(&page, "lot-table", "ABC124")),
        ["4", "1", "1", "0", "0", "1", "2", "25.0 %"]
    );
    let no_lot = row(&page, "lot-table", "no lot");
    assert_eq!(no_lot[0], "");
    assert_eq!(
        figures(&no_lot),
        ["2", "1", "1", "1", "1", "0", "1", "0.0 %"]
    );
    assert_eq!(
        figures(&row(&page, "lot-table", "All units")),
        ["12", "5", "5", "3", "3", "3", "5", "25.0 %"]
    );
    // The lots in order, the units without a lot last.
    let order: Vec<usize> = [
        r#"<th scope="row">ABC123</th>"#,
        r#"<th scope="row">ABC124</th>"#,
        "no lot</span>",
        r#"<th scope="row">All units</th>"#,
    ]
    .iter()
    .map(|m| page.find(m).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");

    // Day by day, from the launch to today: (that day, in all) for acknowledged and remedied.
    let by_hand = [
        (0, 0, 0, 0),
        (2, 0, 2, 0),
        (0, 2, 2, 2),
        (1, 0, 3, 2),
        (0, 1, 3, 3),
    ];
    for (n, (ack, rem, ack_all, rem_all)) in by_hand.iter().enumerate() {
        assert_eq!(
            row(&page, "day-table", &day(n as u64).to_string()),
            [ack, rem, ack_all, rem_all].map(|v| v.to_string()),
            "day {n}"
        );
    }
    assert_eq!(
        page.matches(r#"<tr><th scope="row">20"#).count(),
        5,
        "one row per day"
    );
    assert!(
        page.contains("<details open>"),
        "a short series is shown open"
    );
    // The chart: titled, one line per series over the five days, every day dotted.
    assert!(page.contains(
        r#"<title id="over-time-title">R-EFF-1: units acknowledged and remedied, in all, by day since the launch</title>"#
    ));
    assert_eq!(page.matches("<polyline").count(), 2);
    assert_eq!(page.matches("<circle").count(), 10);
    assert!(
        page.contains(&format!(">{}</text>", day(0)))
            && page.contains(&format!(">{}</text>", day(4)))
    );
    // The remedied line ends at the top (3 of 3) on the right.
    assert!(
        page.contains(r##"676.0,34.0" fill="none" stroke="#1a7f37""##),
        "{page}"
    );
    assert!(page.contains(
        r#"<title id="funnel-title">Where the 12 affected units of R-EFF-1 stand</title>"#
    ));
    assert!(page.contains(r#"font-size="13">12</text>"#));
    // The campaign page links here.
    let (_, editor, _) = app.get_with(&admin, &format!("/admin/recalls/{id}")).await;
    assert!(editor.contains(&format!(r#"href="/admin/recalls/{id}/effectiveness""#)));

    // The export: every affected unit, once, by unit id, with where it stands.
    let r = admin
        .get(format!("{}{csv_path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"recall-R-EFF-1-units.csv\""
    );
    let body = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "gtin",
            "serial",
            "lot",
            "state",
            "notified",
            "delivered",
            "acknowledged_at",
            "remedy_choice",
            "remedied_on",
            "remedied_by",
            "contact_email"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 12);
    let serials: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    let by_unit_id = app.text(&format!(
        "SELECT string_agg(u.serial, ',' ORDER BY u.id) FROM recall_units ru JOIN units u ON u.id = ru.unit_id WHERE ru.campaign_id = {id}"
    ));
    assert_eq!(serials.join(","), by_unit_id);
    let line = |serial: &str| rows.iter().find(|r| r[1] == serial).unwrap().clone();
    let staff = format!("staff:{admin_id}");
    let ack = |n: u64, t: &str| format!("{} {t} UTC", day(n));
    let expect: [(&str, [&str; 11]); 6] = [
        (
            "SN0995",
            [
                BATTERY,
                "SN0995",
                "ABC123",
                "remedied",
                "true",
                "true",
                &ack(1, "10:00:00"),
                "replace",
                &day(2).to_string(),
                &staff,
                "ann@example.com",
            ],
        ),
        (
            "SN0996",
            [
                BATTERY,
                "SN0996",
                "ABC123",
                "acknowledged",
                "true",
                "true",
                &ack(1, "10:00:00"),
                "replace",
                "",
                "",
                "ann@example.com",
            ],
        ),
        (
            "SN0997",
            [
                BATTERY,
                "SN0997",
                "ABC123",
                "notified",
                "true",
                "false",
                "",
                "",
                "",
                "",
                "dan@example.com",
            ],
        ),
        (
            "SN1002",
            [
                BATTERY,
                "SN1002",
                "ABC124",
                "remedied",
                "false",
                "false",
                "",
                "",
                &today.to_string(),
                &staff,
                "",
            ],
        ),
        (
            "SN1005",
            [
                BATTERY,
                "SN1005",
                "",
                "acknowledged",
                "true",
                "true",
                &ack(3, "23:30:00"),
                "refund",
                "",
                "",
                "carl@example.com",
            ],
        ),
        (
            "SN1006",
            [
                BATTERY,
                "SN1006",
                "",
                "unreachable",
                "false",
                "false",
                "",
                "",
                "",
                "",
                "",
            ],
        ),
    ];
    for (serial, want) in expect {
        assert_eq!(line(serial), want, "{serial}");
    }
    assert_eq!(line("SN1001")[3..6], ["notified", "true", "false"]);
    assert_eq!(line("SN1001")[10], "bob@example.com");
    // The CSV and the dashboard tell the same story.
    let count = |col: usize, v: &str| rows.iter().filter(|r| r[col] == v).count();
    assert_eq!(count(4, "true"), 5, "notified");
    assert_eq!(count(5, "true"), 3, "delivered");
    assert_eq!(count(3, "remedied"), 3);
    assert_eq!(
        rows.iter().filter(|r| !r[6].is_empty()).count(),
        3,
        "acknowledged"
    );
    assert_eq!(count(3, "unreachable"), 5);
    // Each export is in the security log, with who and how many.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM audit_log WHERE event = 'recall_units_exported'
               AND actor_id = {admin_id} AND detail = 'R-EFF-1: 12 unit(s)'"
        )),
        1
    );
    let (_, log, _) = app
        .get_with(&admin, "/admin/audit?event=recall_units_exported")
        .await;
    assert!(log.contains("R-EFF-1: 12 unit(s)"), "{log}");

    // Customers and staff are refused; strangers are sent to sign in; nothing is logged.
    let staff_member = user(&app, "sam@example.com", "staff").await;
    for path in [&effectiveness, &csv_path] {
        for c in [&ann, &staff_member] {
            let (status, page, _) = app.get_with(c, path).await;
            assert_eq!(status, 403, "{path}");
            assert!(
                page.contains("This area is for administrators only"),
                "{page}"
            );
            assert!(!page.contains("SN0995") && !page.contains("dan@example.com"));
        }
        let (status, _, location) = app.get_with(&app.browser(), path).await;
        assert_eq!(status, 303);
        assert!(location.unwrap().starts_with("/login?next="));
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'recall_units_exported'"),
        1
    );

    // A closed campaign still answers.
    let (status, _, _) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/close"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let (status, page, _) = app.get_with(&admin, &effectiveness).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("now closed")
            && page.contains(r#"<strong id="correction-rate">25.0 %</strong>"#)
    );
}

#[tokio::test]
async fn the_export_streams_every_unit_of_a_large_campaign_once_in_keyset_batches() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    // Exactly two full batches of 10,000: the export must stop after an empty third read.
    app.sql(&format!(
        "INSERT INTO lots (model_id, code, production_date)
           SELECT id, 'BIG-1', DATE '2026-02-01' FROM product_models WHERE gtin = '{BATTERY}'"
    ));
    app.sql(
        "INSERT INTO units (model_id, serial, serial_key, lot_id, status, created_by)
           SELECT l.model_id, 'BIG' || lpad(g::text, 6, '0'), 'BIG' || lpad(g::text, 6, '0'), l.id, 'shipped', 'test'
           FROM lots l, generate_series(1, 20000) g WHERE l.code = 'BIG-1' ORDER BY g",
    );
    let model = app
        .scalar(&format!(
            "SELECT id FROM product_models WHERE gtin = '{BATTERY}'"
        ))
        .to_string();
    let id = campaign(
        &app,
        &admin,
        "R-BIG-1",
        &[("kind", "lot"), ("model", &model), ("lot", "BIG-1")],
    )
    .await;
    launch(&app, &admin, id).await;
    let r = admin
        .get(format!("{}/admin/recalls/{id}/units.csv", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Streamed: no length known up front.
    assert!(r.headers().get("content-length").is_none());
    let body = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let mut serials = Vec::new();
    for rec in reader.records() {
        let rec = rec.unwrap();
        assert_eq!(&rec[2], "BIG-1");
        assert_eq!(&rec[3], "unreachable");
        serials.push(rec[1].to_owned());
    }
    assert_eq!(serials.len(), 20_000);
    let expected: Vec<String> = (1..=20_000).map(|n| format!("BIG{n:06}")).collect();
    assert_eq!(serials, expected, "each unit once, by unit id");
    let (_, page, _) = app
        .get_with(&admin, &format!("/admin/recalls/{id}/effectiveness"))
        .await;
    assert_eq!(
        figures(&row(&page, "lot-table", "BIG-1")),
        ["20000", "0", "0", "0", "0", "0", "20000", "0.0 %"]
    );
    // The series starts and ends today: one day, one dot per line, no line drawn.
    assert_eq!(page.matches(r#"<tr><th scope="row">20"#).count(), 1);
    assert_eq!(page.matches("<polyline").count(), 0);
}

#[tokio::test]
async fn no_address_a_user_can_type_gives_a_server_error() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    for (path, want) in [
        ("/admin/recalls/abc/effectiveness", 400),
        ("/admin/recalls/abc/units.csv", 400),
        ("/admin/recalls/99999999999999999999/effectiveness", 400),
        ("/admin/recalls/1.5/units.csv", 400),
        ("/admin/recalls/%00/effectiveness", 400),
        ("/admin/recalls/%3Cscript%3E/effectiveness", 400),
        ("/admin/recalls/-1/effectiveness", 404),
        ("/admin/recalls/0/units.csv", 404),
        ("/admin/recalls/9223372036854775807/effectiveness", 404),
        ("/admin/recalls/424242/units.csv", 404),
        ("/admin/recalls/424242/effectiveness?x=%ZZ", 404),
    ] {
        let (status, page, _) = app.get_with(&admin, path).await;
        assert_eq!(status, want, "{path}: {page}");
        assert!(!page.contains("<script>"), "{path}");
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'recall_units_exported'"),
        0
    );
}
