//! Claim reports: the staff queue (every filter, every order, pages that neither repeat nor lose
//! a claim), the overdue rule (Rust and SQL agree), the service levels form, the dashboard on
//! the staff home page, and the admin analytics checked against numbers worked out by hand.
//! Claims are made with SQL (the filing flow is tested elsewhere), on the seeded demo units.

use std::collections::BTreeSet;

use crate::helpers::{TestApp, csrf_of, q, spawn_app};

const PW: &str = "Juniper-Lantern-Orbit-27";
const BATTERY: &str = "09506000134352";
const DRILL: &str = "09521234543213";
/// Today as the overdue rule sees it (the UTC date).
const TODAY: &str = "(now() AT TIME ZONE 'UTC')::date";

struct Claim<'a> {
    number: &'a str,
    gtin: &'a str,
    serial: &'a str,
    status: &'a str,
    category: &'a str,
    /// How long ago it was filed, and has been in its status (SQL intervals).
    filed: &'a str,
    in_status: &'a str,
    /// SQL for the ETA (`NULL` for none).
    eta: &'a str,
    /// never sold, not the owner, out of warranty, open recall
    flags: [bool; 4],
    assignee: Option<&'a str>,
}

impl Default for Claim<'_> {
    fn default() -> Self {
        Claim {
            number: "",
            gtin: BATTERY,
            serial: "SN0001",
            status: "submitted",
            category: "battery",
            filed: "1 day",
            in_status: "1 hour",
            eta: "NULL",
            flags: [false; 4],
            assignee: None,
        }
    }
}

/// Inserts a claim (and its `filed` event) and returns its id.
fn add_claim(app: &TestApp, c: &Claim) -> i64 {
    let assignee = c
        .assignee
        .map(|e| format!("'{e}'"))
        .unwrap_or_else(|| "NULL".into());
    app.sql(&format!(
        "INSERT INTO claims (number, unit_id, account_id, status, category, description, noticed_on,
             contact_preference, flag_never_sold, flag_not_owner, flag_out_of_warranty, flag_open_recall,
             eta, assignee_id, filed_at, status_since)
         SELECT '{}', u.id, (SELECT id FROM accounts WHERE email = 'owner@example.com'), '{}', '{}',
                'It stopped working', {TODAY} - 40, 'email', {}, {}, {}, {}, {},
                (SELECT id FROM accounts WHERE email = {assignee}),
                now() - interval '{}', now() - interval '{}'
         FROM units u JOIN product_models m ON m.id = u.model_id
         WHERE m.gtin = '{}' AND u.serial = '{}'",
        c.number,
        c.status,
        c.category,
        c.flags[0],
        c.flags[1],
        c.flags[2],
        c.flags[3],
        c.eta,
        c.filed,
        c.in_status,
        c.gtin,
        c.serial
    ));
    let id = app.scalar(&format!(
        "SELECT id FROM claims WHERE number = '{}'",
        c.number
    ));
    app.sql(&format!(
        "INSERT INTO claim_events (claim_id, at, actor_role, kind, public, to_status)
         SELECT id, filed_at, 'customer', 'filed', TRUE, 'submitted' FROM claims WHERE id = {id}"
    ));
    id
}

fn model_id(app: &TestApp, gtin: &str) -> i64 {
    app.scalar(&format!(
        "SELECT id FROM product_models WHERE gtin = '{gtin}'"
    ))
}

/// The claim numbers listed on a queue page, in order, and those marked overdue.
fn listed(page: &str) -> (Vec<String>, Vec<String>) {
    let mut all = Vec::new();
    let mut overdue = Vec::new();
    for row in page.split("<tr").skip(1) {
        let marker = "<a href=\"/staff/claims/";
        let Some(start) = row.find(marker) else {
            continue;
        };
        let rest = &row[start + marker.len()..];
        let number = rest[rest.find("\">").unwrap() + 2..rest.find("</a>").unwrap()].to_owned();
        if row.contains("Overdue</strong>") {
            assert!(row.starts_with(" class=\"overdue\""), "{row}");
            overdue.push(number.clone());
        }
        all.push(number);
    }
    (all, overdue)
}

fn next_link(page: &str) -> Option<String> {
    let end = page.find("\" rel=\"next\" id=\"cq-next\"")?;
    let start = page[..end].rfind("href=\"")? + 6;
    Some(page[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

/// Follows the queue's "next" links from `first`; returns every claim listed (in order), the
/// overdue ones, and the links followed.
async fn walk(
    app: &TestApp,
    c: &reqwest::Client,
    first: &str,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut path = first.to_owned();
    let (mut all, mut overdue, mut links) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let (status, page, _) = app.get_with(c, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let (a, o) = listed(&page);
        assert!(a.len() <= 50, "{path}");
        let rows = a.len();
        all.extend(a);
        overdue.extend(o);
        match next_link(&page) {
            Some(n) => {
                assert!(page.contains("Next 50 claims"));
                links.push(n.clone());
                path = n;
            }
            None => {
                assert!(rows == 0 || page.contains("End of the list."), "{page}");
                return (all, overdue, links);
            }
        }
        assert!(links.len() < 50, "the pages never end");
    }
}

async fn numbers(app: &TestApp, c: &reqwest::Client, path: &str) -> Vec<String> {
    walk(app, c, path).await.0
}

fn n(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| format!("C-2026-00000{s}")).collect()
}

/// Seven claims with one distinguishing trait each; see the table in the first test.
async fn queue_fixture() -> (TestApp, reqwest::Client) {
    let app = spawn_app().await;
    app.create_user("desk@example.com", PW, "staff");
    app.create_user("bench@example.com", PW, "staff");
    app.create_user("owner@example.com", PW, "customer");
    let yesterday = format!("{TODAY} - 1");
    let in_five = format!("{TODAY} + 5");
    for c in [
        // 1: fresh, on lot ABC123, nobody's.
        Claim {
            number: "C-2026-000001",
            ..Default::default()
        },
        // 2: lot ABC124, never sold, the desk's, with an estimate.
        Claim {
            number: "C-2026-000002",
            serial: "SN1001",
            status: "triaged",
            category: "noise",
            filed: "10 days",
            in_status: "1 day",
            eta: &in_five,
            flags: [true, false, false, false],
            assignee: Some("desk@example.com"),
            ..Default::default()
        },
        // 3: a drill, 8 days in repair (target 7): overdue; not the owner; bench's.
        Claim {
            number: "C-2026-000003",
            gtin: DRILL,
            serial: "SN0002",
            status: "in_repair",
            filed: "20 days",
            in_status: "8 days",
            flags: [false, true, false, false],
            assignee: Some("bench@example.com"),
            ..Default::default()
        },
        // 4: approved a day ago (target 3), estimate yesterday: overdue by the ETA.
        Claim {
            number: "C-2026-000004",
            serial: "SN0003",
            status: "approved",
            filed: "5 days",
            in_status: "1 day",
            eta: &yesterday,
            flags: [false, false, true, false],
            assignee: Some("desk@example.com"),
            ..Default::default()
        },
        // 5: the oldest open one, open recall.
        Claim {
            number: "C-2026-000005",
            serial: "SN0004",
            status: "awaiting_unit",
            category: "leak",
            filed: "40 days",
            in_status: "2 days",
            flags: [false, false, false, true],
            ..Default::default()
        },
        // 6: closed long ago (never late), never sold.
        Claim {
            number: "C-2026-000006",
            serial: "SN0005",
            status: "closed",
            filed: "60 days",
            in_status: "50 days",
            eta: &yesterday,
            flags: [true, false, false, false],
            ..Default::default()
        },
        // 7: cancelled.
        Claim {
            number: "C-2026-000007",
            gtin: DRILL,
            serial: "SN0006",
            status: "cancelled",
            filed: "3 days",
            in_status: "3 days",
            ..Default::default()
        },
    ] {
        add_claim(&app, &c);
    }
    let desk = app.browser();
    app.login(&desk, "desk@example.com", PW).await;
    (app, desk)
}

#[tokio::test]
async fn claim_reports_queue_filters_each_narrow_the_list() {
    let (app, desk) = queue_fixture().await;
    let battery = model_id(&app, BATTERY);
    let drill = model_id(&app, DRILL);
    let bench = app.scalar("SELECT id FROM accounts WHERE email = 'bench@example.com'");

    // The default: open claims, oldest first, with what staff need to see on each row.
    let (status, page, _) = app.get_with(&desk, "/staff/claims").await;
    assert_eq!(status, 200, "{page}");
    let (all, overdue) = listed(&page);
    assert_eq!(all, n(&["5", "3", "2", "4", "1"]));
    assert_eq!(overdue, n(&["3", "4"]));
    for text in [
        "Open claims, oldest first: 5 in all",
        "href=\"/staff/claims/",
        "Arden Tools PowerCell 18V 5.0 Ah battery pack",
        "lot <code>ABC124</code>",
        "<code>SN1001</code>",
        "Being repaired",
        "Waiting for the product to arrive",
        "Noise or vibration",
        "40 days ago",
        "8 days in this status (target 7 days)",
        "estimate ",
        "bench@example.com",
        "Never sold",
        "Not the registered owner",
        "Out of warranty",
        "Open recall",
        "<th scope=\"col\">Estimate</th>",
        "class=\"table-wrap\"",
    ] {
        assert!(page.contains(text), "{text}: {page}");
    }

    let cases: Vec<(String, Vec<String>)> = vec![
        ("status=all".into(), n(&["6", "5", "3", "2", "4", "7", "1"])),
        ("status=closed".into(), n(&["6"])),
        ("status=triaged".into(), n(&["2"])),
        (format!("model={battery}"), n(&["5", "2", "4", "1"])),
        (format!("model={drill}&status=all"), n(&["3", "7"])),
        (format!("model={battery}&lot=ABC124"), n(&["2"])),
        (format!("model={battery}&lot=ABC123"), n(&["5", "4", "1"])),
        ("age=7".into(), n(&["5", "3", "2"])),
        ("age=30".into(), n(&["5"])),
        ("age=0".into(), n(&["5", "3", "2", "4", "1"])),
        ("overdue=1".into(), n(&["3", "4"])),
        (format!("overdue=1&model={battery}"), n(&["4"])),
        ("never_sold=1".into(), n(&["2"])),
        ("never_sold=1&status=all".into(), n(&["6", "2"])),
        ("not_owner=1".into(), n(&["3"])),
        ("out_of_warranty=1".into(), n(&["4"])),
        ("open_recall=1".into(), n(&["5"])),
        ("never_sold=1&not_owner=1".into(), vec![]),
        ("assignee=me".into(), n(&["2", "4"])),
        ("assignee=none".into(), n(&["5", "1"])),
        (format!("assignee={bench}"), n(&["3"])),
        ("overdue=0".into(), n(&["5", "3", "2", "4", "1"])),
    ];
    for (query, want) in cases {
        let got = numbers(&app, &desk, &format!("/staff/claims?{query}")).await;
        assert_eq!(got, want, "{query}");
    }

    // The form shows what was chosen, and an empty result says what to do.
    let (_, page, _) = app
        .get_with(
            &desk,
            &format!("/staff/claims?model={battery}&lot=ABC124&never_sold=1&not_owner=1&age=3"),
        )
        .await;
    assert!(page.contains(&format!("<option value=\"{battery}\" selected>")));
    assert!(page.contains("value=\"ABC124\"") && page.contains("value=\"3\""));
    assert!(page.contains("name=\"never_sold\" value=\"1\" checked"));
    assert!(page.contains("No claim matches these filters"), "{page}");
    assert!(page.contains("clear the filters"));

    // Values nobody could choose: a message next to the field, a 400, never a 500.
    for (query, message) in [
        ("status=bogus", "Choose a status from the list."),
        ("model=abc", "Choose a model from the list."),
        (
            "model=99999999999999999999999",
            "Choose a model from the list.",
        ),
        ("model=424242", "Choose a model from the list."),
        ("lot=ABC123", "Choose the model the lot belongs to."),
        ("age=-1", "Enter a whole number of days, from 0 to 3650."),
        ("age=ten", "Enter a whole number of days, from 0 to 3650."),
        ("age=99999", "Enter a whole number of days, from 0 to 3650."),
        ("assignee=999999", "Choose someone from the list."),
        (
            "assignee=%27%3B+DROP+TABLE+claims",
            "Choose someone from the list.",
        ),
        ("sort=sideways", "Choose an order from the list."),
        ("after=yesterday&after_id=1", "This page link is damaged"),
        (
            "sort=eta&after=1764000000000000&after_id=1",
            "This page link is damaged",
        ),
        ("after=1764000000000000", "This page link is incomplete"),
        (
            "after=1764000000000000&after_id=x",
            "This page link is damaged",
        ),
    ] {
        let (status, page, _) = app.get_with(&desk, &format!("/staff/claims?{query}")).await;
        assert_eq!(status, 400, "{query}: {page}");
        assert!(page.contains(message), "{query}: {page}");
        assert!(page.contains("Some filters could not be used"), "{query}");
        assert!(listed(&page).0.is_empty(), "{query}");
    }
    let (status, page, _) = app
        .get_with(
            &desk,
            &format!("/staff/claims?model={battery}&lot=%3Cscript%3Ealert(1)%3C/script%3E"),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("has no lot “&#60;script&#62;alert(1)&#60;/script&#62;”"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"));
    assert_eq!(app.scalar("SELECT count(*) FROM claims"), 7);
}

#[tokio::test]
async fn claim_reports_queue_sorts_and_pages_without_losing_or_repeating_a_claim() {
    let (app, desk) = queue_fixture().await;
    // 130 more battery claims with many equal keys (filed on 7 instants, in status since 5,
    // an ETA on 4 days or none), so ties are broken by the id alone.
    app.sql(&format!(
        "INSERT INTO claims (number, unit_id, account_id, status, category, description, noticed_on,
             contact_preference, eta, filed_at, status_since)
         SELECT 'C-2026-' || lpad((100 + g)::text, 6, '0'), u.id,
                (SELECT id FROM accounts WHERE email = 'owner@example.com'), 'submitted', 'other',
                'Bulk', {TODAY} - 40, 'email',
                CASE WHEN g % 3 = 0 THEN NULL ELSE {TODAY} + g % 4 END,
                now() - (g % 7) * interval '1 day' - interval '1 hour',
                now() - (g % 5) * interval '1 hour'
         FROM generate_series(1, 130) g
         JOIN units u ON u.serial = 'SN' || lpad((100 + g)::text, 4, '0')
         JOIN product_models m ON m.id = u.model_id AND m.gtin = '{BATTERY}'
         ORDER BY random()"
    ));
    let battery = model_id(&app, BATTERY);
    // Open battery claims: the 130 and numbers 1, 2, 4 and 5.
    let expected = |order: &str| -> Vec<String> {
        app.text(&format!(
            "SELECT string_agg(c.number, ',' ORDER BY {order}) FROM claims c JOIN units u ON u.id = c.unit_id
             WHERE u.model_id = {battery} AND c.status NOT IN ('closed', 'cancelled')"
        ))
        .split(',')
        .map(str::to_owned)
        .collect()
    };
    for (sort, order) in [
        ("", "c.filed_at, c.id"),
        ("oldest", "c.filed_at, c.id"),
        ("newest", "c.filed_at DESC, c.id DESC"),
        ("eta", "c.eta NULLS LAST, c.id"),
        ("in_status", "c.status_since, c.id"),
    ] {
        let first = if sort.is_empty() {
            format!("/staff/claims?model={battery}")
        } else {
            format!("/staff/claims?model={battery}&sort={sort}")
        };
        let (got, _, links) = walk(&app, &desk, &first).await;
        let want = expected(order);
        assert_eq!(want.len(), 134);
        assert_eq!(got, want, "sort {sort}");
        let unique: BTreeSet<&String> = got.iter().collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "sort {sort}: a claim was listed twice"
        );
        // 50 + 50 + 34: two "next" links, each keeping the filters and the order.
        assert_eq!(links.len(), 2, "sort {sort}");
        for l in &links {
            assert!(l.contains(&format!("model={battery}")), "{l}");
            if !sort.is_empty() && sort != "oldest" {
                assert!(l.contains(&format!("sort={}", q(sort))), "{l}");
            }
            assert!(l.contains("after=") && l.contains("after_id="), "{l}");
        }
        let (_, page, _) = app.get_with(&desk, &links[0]).await;
        assert!(page.contains(">First page</a>"), "{page}");
        assert!(page.contains(": 134 in all"), "{page}");
    }
    // A claim filed after the first page was shown does not shift the next one.
    let first = format!("/staff/claims?model={battery}");
    let (_, page, _) = app.get_with(&desk, &first).await;
    let (page_one, _) = listed(&page);
    let next = next_link(&page).unwrap();
    add_claim(
        &app,
        &Claim {
            number: "C-2026-000999",
            serial: "SN0999",
            filed: "90 days",
            ..Default::default()
        },
    );
    let (rest, _, _) = walk(&app, &desk, &next).await;
    assert!(!rest.contains(&"C-2026-000999".to_owned()));
    assert!(page_one.iter().all(|c| !rest.contains(c)));
    assert_eq!(page_one.len() + rest.len(), 134);
}

fn with_token<'a>(fields: &[(&'a str, &'a str)], token: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut v = fields.to_vec();
    v.push(("csrf_token", token));
    v
}

/// The overdue rule by hand, for the grid below (the demo targets per status, in hours).
fn expected_overdue(status: &str, hours_in_status: i64, eta_offset: Option<i64>) -> bool {
    let target_days = match status {
        "submitted" | "triaged" => 2,
        "approved" => 3,
        "awaiting_unit" => 14,
        "closed" | "cancelled" => return false,
        _ => 7,
    };
    let before_outcome = matches!(
        status,
        "submitted" | "info_requested" | "triaged" | "approved" | "awaiting_unit" | "in_repair"
    );
    hours_in_status > target_days * 24 || (before_outcome && eta_offset == Some(-1))
}

const STATUSES: [&str; 12] = [
    "submitted",
    "info_requested",
    "triaged",
    "approved",
    "rejected",
    "awaiting_unit",
    "in_repair",
    "shipped_back",
    "replaced",
    "refunded",
    "closed",
    "cancelled",
];

#[tokio::test]
async fn claim_reports_overdue_by_time_in_status_and_by_eta_is_one_rule_in_rust_and_sql() {
    let app = spawn_app().await;
    app.create_user("desk@example.com", PW, "staff");
    app.create_user("owner@example.com", PW, "customer");
    // Every status × time in status (1 h, 47 h, 49 h, 8 days + 1 h) × ETA (none, yesterday,
    // today, tomorrow): 192 claims on battery units SN0301…
    let statuses: Vec<String> = STATUSES.iter().map(|s| format!("'{s}'")).collect();
    app.sql(&format!(
        "INSERT INTO claims (number, unit_id, account_id, status, category, description, noticed_on,
             contact_preference, eta, filed_at, status_since)
         SELECT 'C-2026-' || lpad(g.n::text, 6, '0'), u.id,
                (SELECT id FROM accounts WHERE email = 'owner@example.com'), g.s, 'other', 'Grid',
                {TODAY} - 40, 'email', {TODAY} + g.e, now() - interval '30 days',
                now() - g.h * interval '1 hour'
         FROM (SELECT s, h, e, (si - 1) * 16 + (hi - 1) * 4 + ei AS n
               FROM unnest(ARRAY[{}]) WITH ORDINALITY AS a(s, si)
                    CROSS JOIN unnest(ARRAY[1, 47, 49, 193]) WITH ORDINALITY AS b(h, hi)
                    CROSS JOIN unnest(ARRAY[NULL, -1, 0, 1]::int[]) WITH ORDINALITY AS c(e, ei)) g
         JOIN units u ON u.serial = 'SN' || lpad((300 + g.n)::text, 4, '0')
         JOIN product_models m ON m.id = u.model_id AND m.gtin = '{BATTERY}'",
        statuses.join(", ")
    ));
    assert_eq!(app.scalar("SELECT count(*) FROM claims"), 192);

    // By hand, from what each claim is.
    let mut want = BTreeSet::new();
    let mut by_time = 0;
    let mut by_eta_only = 0;
    let mut i = 0;
    for s in STATUSES {
        for h in [1, 47, 49, 193] {
            for e in [None, Some(-1), Some(0), Some(1)] {
                i += 1;
                if expected_overdue(s, h, e) {
                    want.insert(format!("C-2026-{i:06}"));
                    if expected_overdue(s, h, None) {
                        by_time += 1;
                    } else {
                        by_eta_only += 1;
                    }
                }
            }
        }
    }
    assert!(by_time > 0 && by_eta_only > 0);

    // The Rust rule (the badges) and the SQL rule (the filter) over real HTTP.
    let desk = app.browser();
    app.login(&desk, "desk@example.com", PW).await;
    let (all, badged, _) = walk(&app, &desk, "/staff/claims?status=all").await;
    assert_eq!(all.len(), 192);
    let badged: BTreeSet<String> = badged.into_iter().collect();
    let filtered: BTreeSet<String> = numbers(&app, &desk, "/staff/claims?status=all&overdue=1")
        .await
        .into_iter()
        .collect();
    assert_eq!(badged, want, "the Rust rule");
    assert_eq!(filtered, want, "the SQL rule");

    // And directly: for every row, the SQL verdict is the Rust one.
    use diesel_async::AsyncConnection;
    use recall_portal::db::claim_reports::{self as reports, QueueFilter, Sort, StatusFilter};
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.db_url)
        .await
        .unwrap();
    let now = reports::db_now();
    let filter = QueueFilter {
        status: StatusFilter::All,
        ..Default::default()
    };
    let rows = reports::queue(&mut conn, &filter, Sort::Oldest, None, now, 1000)
        .await
        .unwrap();
    assert_eq!(rows.len(), 192);
    for r in &rows {
        assert_eq!(r.sql_overdue, r.overdue(now).is_some(), "{r:?}");
    }
    assert_eq!(rows.iter().filter(|r| r.sql_overdue).count(), want.len());
    // The dashboard counts with the same rule.
    let d = reports::dashboard(&mut conn, 0, now).await.unwrap();
    let open_want = want.len() as i64;
    assert_eq!(d.overdue, open_want);
    assert_eq!(d.open, 16 * 10);

    // Without a target, a status is late only by its ETA.
    app.sql("DELETE FROM claim_service_levels WHERE status = 'submitted'");
    let rows = reports::queue(&mut conn, &filter, Sort::Oldest, None, now, 1000)
        .await
        .unwrap();
    for r in &rows {
        assert_eq!(r.sql_overdue, r.overdue(now).is_some(), "{r:?}");
        if r.status == "submitted" {
            assert_eq!(
                r.sql_overdue,
                r.eta.is_some_and(|e| e < now.date_naive()),
                "{r:?}"
            );
        }
    }
}

#[tokio::test]
async fn claim_reports_service_levels_are_set_by_admins_only_through_a_checked_form() {
    let app = spawn_app().await;
    app.create_user("boss@example.com", PW, "admin");
    app.create_user("desk@example.com", PW, "staff");
    app.create_user("owner@example.com", PW, "customer");
    // Submitted 30 hours ago: within the default target of 2 days.
    add_claim(
        &app,
        &Claim {
            number: "C-2026-000001",
            in_status: "30 hours",
            ..Default::default()
        },
    );
    let admin = app.browser();
    app.login(&admin, "boss@example.com", PW).await;
    let desk = app.browser();
    app.login(&desk, "desk@example.com", PW).await;
    assert!(
        numbers(&app, &desk, "/staff/claims?overdue=1")
            .await
            .is_empty()
    );

    let (status, page, _) = app.get_with(&admin, "/admin/claims/service-levels").await;
    assert_eq!(status, 200);
    for (name, value) in [
        ("days_submitted", "2"),
        ("days_awaiting_unit", "14"),
        ("days_rejected", "7"),
    ] {
        assert!(
            page.contains(&format!("name=\"{name}\" type=\"number\" min=\"1\" max=\"365\" step=\"1\" inputmode=\"numeric\" value=\"{value}\"")),
            "{name}: {page}"
        );
    }
    assert!(!page.contains("days_closed") && !page.contains("days_cancelled"));
    assert!(page.contains("<label for=\"days_in_repair\">Being repaired"));
    let all_fields = |submitted: &'static str, in_repair: &'static str| {
        vec![
            ("days_submitted", submitted),
            ("days_info_requested", "7"),
            ("days_triaged", "2"),
            ("days_approved", "3"),
            ("days_rejected", "7"),
            ("days_awaiting_unit", "14"),
            ("days_in_repair", in_repair),
            ("days_shipped_back", "7"),
            ("days_replaced", "7"),
            ("days_refunded", "7"),
        ]
    };

    // Invalid: each wrong field says why, everything typed is kept, nothing is saved.
    let mut bad = all_fields("0", "");
    bad[2] = ("days_triaged", "366");
    bad[3] = ("days_approved", "three");
    bad.retain(|(k, _)| *k != "days_refunded");
    let (status, page, _) = app
        .submit(
            &admin,
            "/admin/claims/service-levels",
            "/admin/claims/service-levels",
            &bad,
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("5 targets need correcting"), "{page}");
    assert_eq!(
        page.matches("Enter a whole number of days from 1 to 365.")
            .count(),
        3
    );
    assert!(page.contains("Enter the target days for “Being repaired”."));
    assert!(page.contains("Enter the target days for “Refunded”."));
    for v in [
        "value=\"0\"",
        "value=\"366\"",
        "value=\"three\"",
        "value=\"14\"",
    ] {
        assert!(page.contains(v), "{v}");
    }
    assert!(
        page.contains("id=\"days_submitted-error\"")
            && page.contains("aria-describedby=\"days_submitted-error\"")
    );
    assert_eq!(
        app.scalar("SELECT target_days FROM claim_service_levels WHERE status = 'submitted'"),
        2
    );

    // Without the form's token (or from a customer, or from staff): refused, nothing changes.
    let fields = all_fields("1", "5");
    let (status, _, _) = app
        .post_with(&admin, "/admin/claims/service-levels", &fields)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        app.post_with(
            &admin,
            "/admin/claims/service-levels",
            &with_token(&fields, "not-the-token")
        )
        .await
        .0,
        403
    );
    let customer = app.browser();
    app.login(&customer, "owner@example.com", PW).await;
    let (_, account, _) = app.get_with(&customer, "/account").await;
    let theirs = csrf_of(&account);
    assert_eq!(
        app.post_with(
            &customer,
            "/admin/claims/service-levels",
            &with_token(&fields, &theirs)
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.get_with(&customer, "/admin/claims/service-levels")
            .await
            .0,
        403
    );
    let (_, desk_home, _) = app.get_with(&desk, "/staff").await;
    let staffs = csrf_of(&desk_home);
    assert_eq!(
        app.post_with(
            &desk,
            "/admin/claims/service-levels",
            &with_token(&fields, &staffs)
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.get_with(&desk, "/admin/claims/service-levels").await.0,
        403
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM claim_service_levels WHERE (status = 'submitted' AND target_days = 2) OR (status = 'in_repair' AND target_days = 7)"),
        2
    );

    // Valid: saved, answered by a redirect, in the security log, and the queue uses it at once.
    let (status, _, location) = app
        .submit(
            &admin,
            "/admin/claims/service-levels",
            "/admin/claims/service-levels",
            &fields,
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/admin/claims/service-levels?notice=saved")
    );
    assert_eq!(
        app.scalar("SELECT target_days FROM claim_service_levels WHERE status = 'submitted'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT target_days FROM claim_service_levels WHERE status = 'in_repair'"),
        5
    );
    assert_eq!(
        app.text("SELECT detail FROM audit_log WHERE event = 'claim_service_levels_changed'"),
        "in_repair 7->5, submitted 2->1"
    );
    let (_, page, _) = app
        .get_with(&admin, "/admin/claims/service-levels?notice=saved")
        .await;
    assert!(page.contains("Service levels saved.") && page.contains("value=\"5\""));
    assert_eq!(
        numbers(&app, &desk, "/staff/claims?overdue=1").await,
        n(&["1"])
    );
    let (_, page, _) = app.get_with(&desk, "/staff/claims").await;
    assert!(
        page.contains("1 day in this status (target 1 day)"),
        "{page}"
    );

    // The same again changes nothing and says so.
    let (status, _, location) = app
        .submit(
            &admin,
            "/admin/claims/service-levels",
            "/admin/claims/service-levels",
            &fields,
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/admin/claims/service-levels?notice=unchanged")
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'claim_service_levels_changed'"),
        1
    );
}

#[tokio::test]
async fn claim_reports_dashboard_counts_open_claims_per_status_overdue_and_mine() {
    let (app, desk) = queue_fixture().await;
    let (status, page, _) = app.get_with(&desk, "/staff").await;
    assert_eq!(status, 200, "{page}");
    let page = page.replace("&#38;", "&amp;");
    for text in [
        "<a href=\"/staff/claims\">Claims queue</a>",
        "<a href=\"/staff/claims\">5 open</a>",
        "<a href=\"/staff/claims?overdue=1\"><strong>2 overdue</strong></a>",
        "<a href=\"/staff/claims?assignee=me\">2 assigned to me</a>",
        "<a href=\"/staff/claims?assignee=me&amp;overdue=1\">1 overdue</a>",
        "<a href=\"/staff/claims?assignee=none\">2 not assigned</a>",
        "<th scope=\"row\">Received</th><td><a href=\"/staff/claims?status=submitted\"",
        ">1</a></td><td>0</td>",
        "<th scope=\"row\">Being repaired</th><td><a href=\"/staff/claims?status=in_repair\"",
        "<a href=\"/staff/claims?status=in_repair&amp;overdue=1\"",
    ] {
        assert!(page.contains(text), "{text}: {page}");
    }
    // Closed and cancelled are not open statuses: not on the dashboard.
    assert!(!page.contains("<th scope=\"row\">Closed</th>"));
    assert!(!page.contains("<th scope=\"row\">Cancelled</th>"));
    // Every status and every link leads to the queue it counts.
    let rows: Vec<(&str, i64, i64)> = vec![
        ("submitted", 1, 0),
        ("info_requested", 0, 0),
        ("triaged", 1, 0),
        ("approved", 1, 1),
        ("rejected", 0, 0),
        ("awaiting_unit", 1, 0),
        ("in_repair", 1, 1),
        ("shipped_back", 0, 0),
        ("replaced", 0, 0),
        ("refunded", 0, 0),
    ];
    for (status, count, overdue) in rows {
        let listed_now = numbers(&app, &desk, &format!("/staff/claims?status={status}")).await;
        assert_eq!(listed_now.len() as i64, count, "{status}");
        let late = numbers(
            &app,
            &desk,
            &format!("/staff/claims?status={status}&overdue=1"),
        )
        .await;
        assert_eq!(late.len() as i64, overdue, "{status}");
    }
}

#[tokio::test]
async fn claim_reports_analytics_match_figures_worked_out_by_hand() {
    let app = spawn_app().await;
    app.create_user("boss@example.com", PW, "admin");
    app.create_user("owner@example.com", PW, "customer");
    // Sold: 200 batteries of lot ABC123 and 100 of lot ABC124; 50 more sold only after the
    // window ends (not counted). No drill is recorded as sold.
    app.sql(&format!(
        "UPDATE units SET sold_on = {TODAY} - 100 FROM product_models m
         WHERE m.id = units.model_id AND m.gtin = '{BATTERY}'
           AND (units.serial BETWEEN 'SN0001' AND 'SN0200' OR units.serial BETWEEN 'SN1001' AND 'SN1100')"
    ));
    app.sql(&format!(
        "UPDATE units SET sold_on = {TODAY} + 10 FROM product_models m
         WHERE m.id = units.model_id AND m.gtin = '{BATTERY}' AND units.serial BETWEEN 'SN0201' AND 'SN0250'"
    ));
    // In the window: 3 claims on ABC123, 1 on ABC124, 2 on drills; one more long before it.
    for (number, gtin, serial, category, filed) in [
        ("C-2026-000001", BATTERY, "SN0001", "battery", "30 days"),
        ("C-2026-000002", BATTERY, "SN0002", "battery", "30 days"),
        ("C-2026-000003", BATTERY, "SN0003", "noise", "30 days"),
        ("C-2026-000004", BATTERY, "SN1001", "other", "30 days"),
        ("C-2026-000005", DRILL, "SN0001", "noise", "30 days"),
        ("C-2026-000006", DRILL, "SN0002", "battery", "30 days"),
        ("C-2025-000007", BATTERY, "SN0004", "leak", "400 days"),
    ] {
        add_claim(
            &app,
            &Claim {
                number,
                gtin,
                serial,
                category,
                filed,
                status: "in_repair",
                ..Default::default()
            },
        );
    }
    // Outcomes: 2, 4 and 10 days after filing for the batteries, 2 for a drill; the other drill
    // is still in repair; the old claim's outcome is outside the window.
    for (number, to_status, hours) in [
        ("C-2026-000001", "shipped_back", 48),
        ("C-2026-000002", "replaced", 96),
        ("C-2026-000003", "refunded", 240),
        ("C-2026-000005", "shipped_back", 48),
        ("C-2026-000006", "in_repair", 24),
        ("C-2025-000007", "shipped_back", 120),
    ] {
        app.sql(&format!(
            "INSERT INTO claim_events (claim_id, at, actor_role, kind, public, from_status, to_status)
             SELECT id, filed_at + {hours} * interval '1 hour', 'staff', 'status', TRUE, 'in_repair', '{to_status}'
             FROM claims WHERE number = '{number}'"
        ));
    }
    // A later status event does not move the end of the repair.
    app.sql(
        "INSERT INTO claim_events (claim_id, at, actor_role, kind, public, from_status, to_status)
         SELECT id, filed_at + interval '20 days', 'staff', 'status', TRUE, 'shipped_back', 'closed'
         FROM claims WHERE number = 'C-2026-000001'",
    );
    let admin = app.browser();
    app.login(&admin, "boss@example.com", PW).await;

    let (status, page, _) = app.get_with(&admin, "/admin/claims/analytics").await;
    assert_eq!(status, 200, "{page}");
    // Claims per 1,000 sold: battery 4 / 300 = 13.33; lots 3 / 200 = 15.00 and 1 / 100 = 10.00;
    // drills: 2 claims, none sold, no rate.
    for text in [
        "<th scope=\"row\">Arden Tools PowerCell 18V 5.0 Ah battery pack</th><td><code>09506000134352</code></td><td>4</td><td>300</td><td>13.33</td>",
        "<th scope=\"row\">Arden Tools D18 brushless cordless drill</th><td><code>09521234543213</code></td><td>2</td><td>0</td><td><span class=\"muted\">none sold</span></td>",
        "<th scope=\"row\"><code>ABC123</code></th><td>Arden Tools PowerCell 18V 5.0 Ah battery pack</td><td>3</td><td>200</td><td>15.00</td>",
        "<th scope=\"row\"><code>ABC124</code></th><td>Arden Tools PowerCell 18V 5.0 Ah battery pack</td><td>1</td><td>100</td><td>10.00</td>",
        // Categories: battery 3 of 6, noise 2, other 1.
        "<th scope=\"row\">Battery or charging</th><td>3</td><td>50.0 %</td>",
        "<th scope=\"row\">Noise or vibration</th><td>2</td><td>33.3 %</td>",
        "<th scope=\"row\">Something else</th><td>1</td><td>16.7 %</td>",
        // Repairs: batteries 2, 4, 10 days: mean 5.3, p90 4 + 0.8 × 6 = 8.8; the drill 2 days;
        // all: 2, 2, 4, 10: mean 4.5, p90 4 + 0.7 × 6 = 8.2.
        "<th scope=\"row\">Arden Tools PowerCell 18V 5.0 Ah battery pack</th><td><code>09506000134352</code></td><td>3</td><td>5.3</td><td>8.8</td>",
        "<th scope=\"row\">Arden Tools D18 brushless cordless drill</th><td><code>09521234543213</code></td><td>1</td><td>2.0</td><td>2.0</td>",
        "<th scope=\"row\">All models</th><td></td><td>4</td><td>4.5</td><td>8.2</td>",
        "<strong>4</strong> repair(s) ended in this period: mean <strong>4.5</strong> days, 90th percentile <strong>8.2</strong> days",
        // Charts with their own accessible names, and the definitions on the page.
        "aria-labelledby=\"chart-rate-model\"",
        "aria-labelledby=\"chart-rate-lot\"",
        "aria-labelledby=\"chart-categories\"",
        "aria-labelledby=\"chart-repair\"",
        "Units with a recorded sale date",
        "<a href=\"/admin/claims/analytics\">Claim analytics</a>",
    ] {
        assert!(page.contains(text), "{text}: {page}");
    }
    assert!(
        !page.contains("Leaks"),
        "the old claim is outside the window"
    );
    assert_eq!(page.matches("<svg").count(), 4);

    // The CSV of each figure.
    let csv = |figure: &str| {
        let c = admin.clone();
        let url = format!("{}/admin/claims/analytics.csv?figure={figure}", app.address);
        async move {
            let r = c.get(url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/csv")
            );
            r.text().await.unwrap()
        }
    };
    let today = app.text(TODAY);
    let from = app.text(&format!(
        "({TODAY} - interval '12 months' + interval '1 day')::date"
    ));
    let models = csv("models").await;
    assert!(
        models.starts_with("gtin,product,lot,from,to,claims,units_sold,claims_per_1000_sold\n")
    );
    assert!(
        models.contains(&format!(
            "09506000134352,Arden Tools PowerCell 18V 5.0 Ah battery pack,,{from},{today},4,300,13.33\n"
        )),
        "{models}"
    );
    assert!(
        models.contains(&format!(
            "09521234543213,Arden Tools D18 brushless cordless drill,,{from},{today},2,0,\n"
        )),
        "{models}"
    );
    let lots = csv("lots").await;
    assert!(
        lots.contains(",ABC123,") && lots.contains(",3,200,15.00\n"),
        "{lots}"
    );
    assert!(
        lots.contains(",ABC124,") && lots.contains(",1,100,10.00\n"),
        "{lots}"
    );
    let categories = csv("categories").await;
    assert!(
        categories.contains(&format!(
            "battery,Battery or charging,{from},{today},3,50.0\n"
        )),
        "{categories}"
    );
    let repairs = csv("repairs").await;
    assert!(
        repairs.contains(&format!("all,All models,{from},{today},4,4.50,8.20\n")),
        "{repairs}"
    );
    assert!(
        repairs.contains(&format!(
            "09506000134352,Arden Tools PowerCell 18V 5.0 Ah battery pack,{from},{today},3,5.33,8.80\n"
        )),
        "{repairs}"
    );

    // Another window: the old claim alone (filed 400 days ago, repaired 5 days later).
    let old_from = app.text(&format!("{TODAY} - 420"));
    let old_to = app.text(&format!("{TODAY} - 380"));
    let (status, page, _) = app
        .get_with(
            &admin,
            &format!("/admin/claims/analytics?from={old_from}&to={old_to}"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<th scope=\"row\">Leaks</th><td>1</td><td>100.0 %</td>"),
        "{page}"
    );
    assert!(page.contains(
        "<strong>1</strong> repair(s) ended in this period: mean <strong>5.0</strong> days"
    ));
    // Nothing was sold by then: no rate, and no empty chart.
    assert!(
        page.contains("No unit of these models is recorded as sold, so there is no rate to chart.")
    );
    assert!(!page.contains("chart-rate-model"));
    assert!(page.contains("<td>1</td><td>0</td><td><span class=\"muted\">none sold</span></td>"));
    // A window with nothing in it, dates the wrong way round, and dates that are not dates.
    let (status, page, _) = app
        .get_with(
            &admin,
            "/admin/claims/analytics?from=2000-12-31&to=2000-01-01",
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("the dates were swapped") && page.contains("value=\"2000-01-01\""));
    assert!(page.contains("No claim was filed in this period."));
    assert!(page.contains("No repair, replacement or refund was completed in this period."));
    for bad in [
        "from=yesterday",
        "to=2026-02-30",
        "from=-20000-01-01",
        "from=99999-01-01",
    ] {
        let (status, page, _) = app
            .get_with(&admin, &format!("/admin/claims/analytics?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}");
        assert!(page.contains("Enter dates as YYYY-MM-DD"), "{bad}: {page}");
        let r = admin
            .get(format!("{}/admin/claims/analytics.csv?{bad}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
    let (status, _, _) = app
        .get_with(&admin, "/admin/claims/analytics.csv?figure=everything")
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn claim_reports_pages_are_refused_to_customers_and_admin_pages_to_staff() {
    let app = spawn_app().await;
    app.create_user("owner@example.com", PW, "customer");
    app.create_user("desk@example.com", PW, "staff");
    let pages = [
        "/staff/claims",
        "/staff/claims?overdue=1",
        "/admin/claims/service-levels",
        "/admin/claims/analytics",
        "/admin/claims/analytics.csv?figure=models",
    ];
    let customer = app.browser();
    app.login(&customer, "owner@example.com", PW).await;
    let anonymous = app.browser();
    for p in pages {
        let (status, body, _) = app.get_with(&customer, p).await;
        assert_eq!(status, 403, "{p}");
        assert!(body.contains("Not allowed"), "{p}");
        let (status, _, location) = app.get_with(&anonymous, p).await;
        assert_eq!(status, 303, "{p}");
        assert!(location.unwrap().starts_with("/login?next="), "{p}");
    }
    let desk = app.browser();
    app.login(&desk, "desk@example.com", PW).await;
    let (status, page, _) = app.get_with(&desk, "/staff/claims").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("No open claims: nobody is waiting."),
        "{page}"
    );
    for p in &pages[2..] {
        assert_eq!(app.get_with(&desk, p).await.0, 403, "{p}");
    }
}
