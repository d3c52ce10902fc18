//! Recall campaigns over real HTTP: every target kind and their union select exactly the right
//! units, the notice check, an atomic launch, one notice per reachable owner through a real SMTP
//! server, the owner's acknowledgement from the mailed link, and what the lookup says.

use crate::helpers::{TestApp, app_with_mail, csrf_of, q, spawn_app, spawn_app_with, user};
use crate::smtp::SmtpServer;

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";

fn model_id(app: &TestApp, gtin: &str) -> i64 {
    app.scalar(&format!(
        "SELECT id FROM product_models WHERE gtin = '{gtin}'"
    ))
}

/// Creates a draft and returns its id.
pub(crate) async fn draft(app: &TestApp, admin: &reqwest::Client, code: &str) -> i64 {
    let (status, body, location) = app
        .submit(
            admin,
            "/admin/recalls",
            "/admin/recalls",
            &[("code", code), ("title", "PowerCell 18V battery packs")],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    location
        .unwrap()
        .trim_start_matches("/admin/recalls/")
        .parse()
        .unwrap()
}

pub(crate) async fn complete_notice(app: &TestApp, admin: &reqwest::Client, id: i64) {
    let (status, _, _) = app
        .submit(
            admin,
            &format!("/admin/recalls/{id}"),
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
}

pub(crate) async fn add_target(
    app: &TestApp,
    admin: &reqwest::Client,
    id: i64,
    fields: &[(&str, &str)],
    file: Option<Vec<u8>>,
) -> String {
    let files: Vec<(&str, &str, &str, Vec<u8>)> = file
        .map(|f| vec![("file", "serials.csv", "text/csv", f)])
        .unwrap_or_default();
    let (status, body, location) = app
        .submit_multipart(
            admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/targets"),
            fields,
            &files,
        )
        .await;
    assert_eq!(status, 303, "{body}");
    location.unwrap()
}

/// The serials (sorted) that `sql` selects from units `u`.
fn serials_where(app: &TestApp, sql: &str) -> String {
    app.text(&format!(
        "SELECT coalesce(string_agg(u.serial, ',' ORDER BY u.serial), '') FROM units u LEFT JOIN lots l ON l.id = u.lot_id WHERE {sql}"
    ))
}

fn affected(app: &TestApp, id: i64) -> String {
    app.text(&format!(
        "SELECT coalesce(string_agg(u.serial, ',' ORDER BY u.serial), '') FROM recall_units r JOIN units u ON u.id = r.unit_id WHERE r.campaign_id = {id}"
    ))
}

#[tokio::test]
async fn every_target_kind_and_their_union_select_exactly_the_right_units() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    let battery = model_id(&app, BATTERY);
    let lot = app.text(&format!(
        "SELECT l.code FROM lots l WHERE l.model_id = {battery} ORDER BY l.code LIMIT 1"
    ));
    let lot_id = app.scalar(&format!(
        "SELECT id FROM lots WHERE model_id = {battery} AND code = '{lot}'"
    ));
    // Genealogy: P contains a unit of the lot; Q contains the lot itself; R contains P.
    let other = app.scalar(&format!(
        "SELECT id FROM product_models WHERE id <> {battery} ORDER BY id LIMIT 1"
    ));
    let pick = |n: i64| {
        app.scalar(&format!(
            "SELECT id FROM units WHERE model_id = {other} ORDER BY serial_key OFFSET {n} LIMIT 1"
        ))
    };
    let (p, qq, r) = (pick(0), pick(1), pick(2));
    let part = app.scalar(&format!(
        "SELECT id FROM units WHERE lot_id = {lot_id} ORDER BY serial_key LIMIT 1"
    ));
    app.sql(&format!(
        "INSERT INTO unit_components (parent_unit_id, component_unit_id, component_lot_id, installed_by)
         VALUES ({p}, {part}, NULL, 'test'), ({qq}, NULL, {lot_id}, 'test'), ({r}, {p}, NULL, 'test')"
    ));

    /// (target kind, its fields, an uploaded list, the SQL condition selecting what it must)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Option<Vec<u8>>, String);
    let cases: Vec<Case> = vec![
        (
            "serials",
            vec![("serials", "sn0001\nSN0003\n\nSN0003".to_owned())],
            Some(b"serial\nSN0005,extra\n".to_vec()),
            format!("u.model_id = {battery} AND u.serial IN ('SN0001', 'SN0003', 'SN0005')"),
        ),
        (
            "range",
            vec![("from", "SN0010".to_owned()), ("to", "sn0014".to_owned())],
            None,
            format!("u.model_id = {battery} AND u.serial_key BETWEEN 'SN0010' AND 'SN0014'"),
        ),
        (
            "lot",
            vec![("lot", lot.clone())],
            None,
            format!("u.lot_id = {lot_id}"),
        ),
        (
            "made",
            vec![
                ("made_from", "2025-01-01".to_owned()),
                ("made_to", "2025-03-31".to_owned()),
            ],
            None,
            format!(
                "u.model_id = {battery} AND coalesce(u.manufactured_on, l.production_date) BETWEEN '2025-01-01' AND '2025-03-31'"
            ),
        ),
        (
            "component_lot",
            vec![("lot", lot.clone())],
            None,
            format!("u.id IN ({p}, {qq}, {r})"),
        ),
        ("model", vec![], None, format!("u.model_id = {battery}")),
    ];
    let mut union = Vec::new();
    for (i, (kind, fields, file, expected)) in cases.into_iter().enumerate() {
        let id = draft(&app, &admin, &format!("R-T{i}")).await;
        complete_notice(&app, &admin, id).await;
        let model = battery.to_string();
        let mut f: Vec<(&str, &str)> = vec![("kind", kind), ("model", &model)];
        f.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let location = add_target(&app, &admin, id, &f, file).await;
        assert!(location.contains("notice=target"), "{kind}: {location}");
        let want = serials_where(&app, &expected);
        assert!(!want.is_empty(), "{kind}: the case selects something");
        // The preview counts exactly these.
        let (_, page, _) = app.get_with(&admin, &format!("/admin/recalls/{id}")).await;
        let count = want.split(',').count();
        assert!(
            page.contains(&format!("<strong>{count}</strong> units affected")),
            "{kind}: {count} in {page}"
        );
        let (status, _, _) = app
            .submit(
                &admin,
                &format!("/admin/recalls/{id}"),
                &format!("/admin/recalls/{id}/launch"),
                &[],
            )
            .await;
        assert_eq!(status, 303);
        assert_eq!(affected(&app, id), want, "{kind}");
        union.push(format!("({expected})"));
    }
    // All six in one campaign: their union, each unit once.
    let id = draft(&app, &admin, "R-UNION").await;
    complete_notice(&app, &admin, id).await;
    let model = battery.to_string();
    for (kind, extra) in [
        ("serials", vec![("serials", "SN0001\nSN0003\nSN0005")]),
        ("range", vec![("from", "SN0010"), ("to", "SN0014")]),
        ("lot", vec![("lot", lot.as_str())]),
        (
            "made",
            vec![("made_from", "2025-01-01"), ("made_to", "2025-03-31")],
        ),
        ("component_lot", vec![("lot", lot.as_str())]),
    ] {
        let mut f: Vec<(&str, &str)> = vec![("kind", kind), ("model", &model)];
        f.extend(extra);
        add_target(&app, &admin, id, &f, None).await;
    }
    app.submit(
        &admin,
        &format!("/admin/recalls/{id}"),
        &format!("/admin/recalls/{id}/launch"),
        &[],
    )
    .await;
    let without_model = union[..5].join(" OR ");
    assert_eq!(affected(&app, id), serials_where(&app, &without_model));
    // Two targets of one kind that overlap: each unit once, in the preview and the launch.
    let id = draft(&app, &admin, "R-OVERLAP").await;
    complete_notice(&app, &admin, id).await;
    for (from, to) in [("SN0010", "SN0014"), ("SN0012", "SN0016")] {
        let f = [
            ("kind", "range"),
            ("model", &model),
            ("from", from),
            ("to", to),
        ];
        add_target(&app, &admin, id, &f, None).await;
    }
    let want = serials_where(
        &app,
        &format!("u.model_id = {battery} AND u.serial_key BETWEEN 'SN0010' AND 'SN0016'"),
    );
    assert_eq!(want.split(',').count(), 7);
    let (_, page, _) = app.get_with(&admin, &format!("/admin/recalls/{id}")).await;
    assert!(page.contains("<strong>7</strong> units affected"), "{page}");
    let (status, _, location) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/launch"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert!(
        location
            .as_deref()
            .unwrap_or("")
            .contains("notice=launched"),
        "{location:?}"
    );
    assert_eq!(affected(&app, id), want);
    // Mistakes in a target are named and add nothing.
    let id = draft(&app, &admin, "R-BAD").await;
    for (fields, detail) in [
        (vec![("kind", "serials"), ("model", "")], "model"),
        (
            vec![("kind", "serials"), ("model", &model), ("serials", "AB#1")],
            "serials",
        ),
        (
            vec![
                ("kind", "range"),
                ("model", &model),
                ("from", "SN9"),
                ("to", "SN1"),
            ],
            "range",
        ),
        (
            vec![("kind", "lot"), ("model", &model), ("lot", "NOPE")],
            "lot",
        ),
        (
            vec![
                ("kind", "made"),
                ("made_from", "2025-02-01"),
                ("made_to", "x"),
            ],
            "dates",
        ),
    ] {
        let location = add_target(&app, &admin, id, &fields, None).await;
        assert!(location.contains(&format!("detail={detail}")), "{location}");
    }
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM recall_targets WHERE campaign_id = {id}"
        )),
        0
    );
}

#[tokio::test]
async fn the_notice_check_names_what_is_missing_and_refuses_banned_words() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    let id = draft(&app, &admin, "R-2026-001").await;
    let (_, page, _) = app.get_with(&admin, &format!("/admin/recalls/{id}")).await;
    for missing in [
        "missing: the hazard",
        "missing: what to do now",
        "missing: where and when it was sold",
        "missing: contact details",
        "offer at least two remedies",
        "missing: which units are affected",
    ] {
        assert!(page.contains(missing), "{missing}");
    }
    complete_notice(&app, &admin, id).await;
    app.submit(
        &admin,
        &format!("/admin/recalls/{id}"),
        &format!("/admin/recalls/{id}/notice"),
        &[
            ("title", "PowerCell 18V battery packs"),
            ("hazard", "As a precautionary measure we recall"),
            ("what_to_do", "Stop using it."),
            ("remedy_replace", "on"),
            ("remedy_refund", "on"),
            ("sold_where", "Shops"),
            ("contact", "0800"),
        ],
    )
    .await;
    let model = model_id(&app, BATTERY).to_string();
    add_target(
        &app,
        &admin,
        id,
        &[("kind", "model"), ("model", &model)],
        None,
    )
    .await;
    let (_, page, _) = app.get_with(&admin, &format!("/admin/recalls/{id}")).await;
    assert!(
        page.contains("“precautionary” plays the hazard down"),
        "{page}"
    );
    let (_, _, location) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/launch"),
            &[],
        )
        .await;
    assert!(location.unwrap().ends_with("error=problems"));
    assert_eq!(
        app.text(&format!(
            "SELECT status FROM recall_campaigns WHERE id = {id}"
        )),
        "draft"
    );
    // Drafts are not public.
    let (status, _) = app.page("/recalls/R-2026-001").await;
    assert_eq!(status, 404);
}

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
    assert_eq!(status, 303, "{body}");
}

#[tokio::test]
async fn a_launch_notifies_each_reachable_owner_once_and_the_lookup_follows_the_remedy() {
    let (app, smtp) = app_with_mail().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let bob = user(&app, "bob@example.com", "customer").await;
    let carl = user(&app, "carl@example.com", "customer").await;
    register(&app, &ann, "SN0021").await;
    register(&app, &ann, "SN0022").await;
    register(&app, &bob, "SN0023").await;
    register(&app, &carl, "SN0090").await;
    let id = draft(&app, &admin, "R-2026-002").await;
    complete_notice(&app, &admin, id).await;
    let model = model_id(&app, BATTERY).to_string();
    add_target(
        &app,
        &admin,
        id,
        &[
            ("kind", "range"),
            ("model", &model),
            ("from", "SN0020"),
            ("to", "SN0029"),
        ],
        None,
    )
    .await;
    let (_, page, _) = app.get_with(&admin, &format!("/admin/recalls/{id}")).await;
    assert!(page.contains("<strong>10</strong> units affected; <strong>3</strong> registered; <strong>2</strong> owner(s)"), "{page}");
    let (_, before) = app
        .page(&format!("/check?serial=SN0021&gtin={BATTERY}"))
        .await;
    assert!(before.contains("Safety recall: no open recall"));

    // A launch that fails part-way leaves nothing behind.
    app.sql(
        "CREATE FUNCTION fail_notice() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$",
    );
    app.sql(
        "CREATE TRIGGER fail_notice BEFORE INSERT ON recall_notices FOR EACH ROW EXECUTE FUNCTION fail_notice()",
    );
    let (status, _, _) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/launch"),
            &[],
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(app.scalar("SELECT count(*) FROM recall_units"), 0);
    assert_eq!(app.scalar("SELECT count(*) FROM recall_campaign_models"), 0);
    let (_, model_page) = app.page(&format!("/01/{BATTERY}")).await;
    assert!(model_page.contains("Safety recalls: none open for this model"));
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'recall_notice'"),
        0
    );
    assert_eq!(
        app.text(&format!(
            "SELECT status FROM recall_campaigns WHERE id = {id}"
        )),
        "draft"
    );
    app.sql("DROP TRIGGER fail_notice ON recall_notices");

    let (status, _, location) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/launch"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=launched"));
    assert_eq!(app.scalar("SELECT count(*) FROM recall_units"), 10);
    assert_eq!(
        app.scalar("SELECT count(*) FROM recall_units WHERE state = 'notified'"),
        3
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM recall_units WHERE state = 'unreachable'"),
        7
    );
    // The model's page names the recall; another model's does not.
    let (_, model_page) = app.page(&format!("/01/{BATTERY}")).await;
    assert!(
        model_page.contains("Safety recalls open for this model")
            && model_page.contains(r#"<a href="/recalls/R-2026-002">"#),
        "{model_page}"
    );
    let other = app.text(&format!(
        "SELECT gtin FROM product_models WHERE gtin <> '{BATTERY}' ORDER BY gtin LIMIT 1"
    ));
    let (_, other_page) = app.page(&format!("/01/{other}")).await;
    assert!(other_page.contains("Safety recalls: none open for this model"));
    // A second launch does nothing.
    let (_, _, location) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/launch"),
            &[],
        )
        .await;
    assert!(location.unwrap().ends_with("error=not-draft"));
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'recall_notice'"),
        2
    );

    // Each reachable owner gets one notice naming their units; Carl none.
    let mut ann_mail = String::new();
    for _ in 0..400 {
        let got: Vec<String> = smtp
            .messages()
            .into_iter()
            .map(|m| crate::smtp::decode_qp(&m))
            .filter(|m| m.contains("Product safety recall: PowerCell 18V battery packs"))
            .collect();
        if got.len() >= 2 {
            assert_eq!(got.len(), 2);
            ann_mail = got
                .into_iter()
                .find(|m| m.to_lowercase().contains("to: ann@example.com"))
                .unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        ann_mail.contains("SN0021") && ann_mail.contains("SN0022"),
        "{ann_mail}"
    );
    assert!(!ann_mail.contains("SN0023"), "never another owner's serial");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        smtp.messages()
            .iter()
            .filter(|m| m.contains("Product safety recall"))
            .count(),
        2,
        "never twice"
    );

    // The lookup: open, then not yet available, then remedied.
    let (_, page) = app
        .page(&format!("/check?serial=SN0021&gtin={BATTERY}"))
        .await;
    assert!(
        page.contains("Safety recall: recall open — remedy available"),
        "{page}"
    );
    assert!(
        page.contains("/recalls/R-2026-002")
            && page.contains("Stop using and stop charging it now.")
    );
    app.submit(
        &admin,
        &format!("/admin/recalls/{id}"),
        &format!("/admin/recalls/{id}/remedy"),
        &[("available", "no")],
    )
    .await;
    let (_, page) = app
        .page(&format!("/check?serial=SN0021&gtin={BATTERY}"))
        .await;
    assert!(
        page.contains("recall open — remedy not yet available"),
        "{page}"
    );
    let (_, _, location) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/remedied"),
            &[("serial", "SN0021"), ("gtin", BATTERY)],
        )
        .await;
    assert!(location.unwrap().ends_with("notice=remedied"));
    let (_, page) = app
        .page(&format!("/check?serial=SN0021&gtin={BATTERY}"))
        .await;
    let today = chrono::Utc::now()
        .date_naive()
        .format("%-d %B %Y")
        .to_string();
    assert!(
        page.contains(&format!("Safety recall: remedied on {today}")),
        "{page}"
    );
    let (_, page) = app
        .page(&format!("/check?serial=SN0030&gtin={BATTERY}"))
        .await;
    assert!(page.contains("no open recall"), "outside the range");

    // The public notice and the list.
    let (status, notice) = app.page("/recalls/R-2026-002").await;
    assert_eq!(status, 200);
    for part in [
        "Product safety recall: PowerCell 18V battery packs",
        "The hazard",
        "catch fire",
        "What to do now",
        "Free replacement",
        "Refund",
        "0800 123 456",
        "serial numbers SN0020 to SN0029",
    ] {
        assert!(notice.contains(part), "{part} in {notice}");
    }
    let (_, list) = app.page("/recalls").await;
    assert!(list.contains("/recalls/R-2026-002"));

    // Ann acknowledges from the mailed link and chooses a replacement.
    let link = crate::smtp::link_in(
        &ann_mail,
        &format!("{}/recalls/R-2026-002/ack?t=", app.address),
    );
    let path = link.trim_start_matches(&app.address).to_owned();
    let stranger = app.browser();
    let (status, page, _) = app.get_with(&stranger, &path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("SN0021") && page.contains("SN0022") && !page.contains("SN0023"));
    let token = path.split("t=").nth(1).unwrap();
    let (status, _, location) = app
        .post_with(
            &stranger,
            "/recalls/R-2026-002/ack",
            &[
                ("csrf_token", &csrf_of(&page)),
                ("t", token),
                ("remedy", "replace"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = app.get_with(&stranger, &location.unwrap()).await;
    assert!(
        page.contains("Thank you: we have your answer") && page.contains("free replacement"),
        "{page}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM recall_units WHERE state = 'acknowledged'"),
        1,
        "SN0022; SN0021 is remedied"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM recall_notices WHERE remedy_choice = 'replace'"),
        1
    );
    // A remedy not offered, or a made-up link, changes nothing.
    let (_, _, location) = app
        .post_with(
            &stranger,
            "/recalls/R-2026-002/ack",
            &[
                ("csrf_token", &csrf_of(&page)),
                ("t", token),
                ("remedy", "repair"),
            ],
        )
        .await;
    assert!(location.unwrap().ends_with("error=remedy"));
    let (status, _, _) = app
        .get_with(
            &stranger,
            &format!("/recalls/R-2026-002/ack?t={}", "0".repeat(64)),
        )
        .await;
    assert_eq!(status, 404);
    // Bob acknowledges from his account; Carl has nothing to acknowledge.
    let (status, page, _) = app.get_with(&bob, "/account/recalls/R-2026-002").await;
    assert_eq!(status, 200);
    assert!(page.contains("SN0023"));
    let (status, _, _) = app
        .post_with(
            &bob,
            "/account/recalls/R-2026-002",
            &[("csrf_token", &csrf_of(&page)), ("remedy", "refund")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar("SELECT count(*) FROM recall_units WHERE state = 'acknowledged'"),
        2
    );
    let (status, _, _) = app.get_with(&carl, "/account/recalls/R-2026-002").await;
    assert_eq!(status, 404);
    // The admin sees where the units stand.
    let (_, page, _) = app.get_with(&admin, &format!("/admin/recalls/{id}")).await;
    assert!(
        page.contains("<dt>Affected</dt><dd>10</dd>")
            && page.contains("<dt>Remedied</dt><dd>1</dd>"),
        "{page}"
    );
}

#[tokio::test]
async fn owners_who_have_not_answered_get_one_second_notice_after_the_campaigns_days() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let bob = user(&app, "bob@example.com", "customer").await;
    register(&app, &ann, "SN0041").await;
    register(&app, &bob, "SN0042").await;
    let id = draft(&app, &admin, "R-2026-003").await;
    complete_notice(&app, &admin, id).await;
    let model = model_id(&app, BATTERY).to_string();
    add_target(
        &app,
        &admin,
        id,
        &[
            ("kind", "serials"),
            ("model", &model),
            ("serials", "SN0041\nSN0042"),
        ],
        None,
    )
    .await;
    app.submit(
        &admin,
        &format!("/admin/recalls/{id}"),
        &format!("/admin/recalls/{id}/launch"),
        &[],
    )
    .await;
    let pool = recall_portal::db::build_pool(&app.db_url, 2).unwrap();
    // Too early: nothing.
    assert_eq!(
        recall_portal::jobs::reminders::second_notices(&pool)
            .await
            .unwrap(),
        0
    );
    // Bob answered; fifteen days on, only Ann is written to again, once.
    let (_, page, _) = app.get_with(&bob, "/account/recalls/R-2026-003").await;
    app.post_with(
        &bob,
        "/account/recalls/R-2026-003",
        &[("csrf_token", &csrf_of(&page)), ("remedy", "refund")],
    )
    .await;
    app.sql("UPDATE recall_notices SET created_at = now() - interval '15 days'");
    assert_eq!(
        recall_portal::jobs::reminders::second_notices(&pool)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        recall_portal::jobs::reminders::second_notices(&pool)
            .await
            .unwrap(),
        0
    );
    // The mails as the worker sends them (the campaign's templates filled in for Ann).
    let mut conn = pool.get().await.unwrap();
    let claimed = recall_portal::db::outbox::OutboxMail::claim(&mut conn, 100, 300)
        .await
        .unwrap();
    let body = |subject: &str| {
        let m = claimed
            .iter()
            .find(|m| m.to_address == "ann@example.com" && m.subject.starts_with(subject))
            .unwrap_or_else(|| panic!("no mail {subject}: {claimed:?}"));
        (m.body_text.clone(), m.body_html.clone())
    };
    let (second, second_html) = body("Second notice: ");
    let (first, _) = body("Product safety recall");
    assert!(second.starts_with("Hello,"), "{second}");
    assert!(
        second.contains("We have not heard from you about this safety recall")
            && !first.contains("We have not heard from you"),
        "{second}"
    );
    assert!(
        second.contains("serial SN0041") && !second.contains("%%"),
        "{second}"
    );
    assert!(second_html.contains("serial SN0041") && !second_html.contains("%%"));
    let link = |body: &str| {
        crate::smtp::link_in(body, &format!("{}/recalls/R-2026-003/ack?t=", app.address))
    };
    assert_eq!(link(&second), link(&first), "the same link works");
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'recall_second_notice'"),
        1
    );
}

#[tokio::test]
async fn a_claim_on_a_recalled_unit_is_flagged_and_can_be_recorded_as_its_remedy() {
    let app = spawn_app().await;
    let admin = user(&app, "admin@example.com", "admin").await;
    let staff = user(&app, "staff@example.com", "staff").await;
    let ann = user(&app, "ann@example.com", "customer").await;
    register(&app, &ann, "SN0051").await;
    let id = draft(&app, &admin, "R-2026-005").await;
    complete_notice(&app, &admin, id).await;
    let model = model_id(&app, BATTERY).to_string();
    add_target(
        &app,
        &admin,
        id,
        &[
            ("kind", "serials"),
            ("model", &model),
            ("serials", "SN0051"),
        ],
        None,
    )
    .await;
    app.submit(
        &admin,
        &format!("/admin/recalls/{id}"),
        &format!("/admin/recalls/{id}/launch"),
        &[],
    )
    .await;
    // The owner's product page says so and leads to the notice.
    let reg = app.scalar("SELECT id FROM registrations WHERE contact_email = 'ann@example.com'");
    let (_, page, _) = app
        .get_with(&ann, &format!("/account/products/{reg}"))
        .await;
    assert!(
        page.contains("Product safety recall: PowerCell 18V battery packs")
            && page.contains("/account/recalls/R-2026-005"),
        "{page}"
    );
    let noticed = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    let form = format!("/account/products/{reg}/claim");
    let (status, body, _) = app
        .submit_multipart(
            &ann,
            &form,
            &form,
            &[
                ("category", "overheating"),
                ("description", "It got very hot."),
                ("noticed_on", &noticed),
                ("contact", "email"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let claim = app.scalar("SELECT id FROM claims WHERE flag_open_recall");
    let (_, page, _) = app
        .get_with(&staff, &format!("/staff/claims/{claim}"))
        .await;
    assert!(
        page.contains("Open recall on the unit: route it to the recall remedy"),
        "{page}"
    );
    let (status, _, location) = app
        .submit(
            &staff,
            &format!("/staff/claims/{claim}"),
            &format!("/staff/claims/{claim}/recall-remedy"),
            &[("code", "R-2026-005")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=recall"));
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM claims WHERE id = {claim} AND recall_campaign_id = {id}"
        )),
        1
    );
    assert_eq!(
        app.text("SELECT remedied_by FROM recall_units WHERE state = 'remedied'"),
        app.text(&format!(
            "SELECT 'claim:' || number FROM claims WHERE id = {claim}"
        ))
    );
    let (_, page) = app
        .page(&format!("/check?serial=SN0051&gtin={BATTERY}"))
        .await;
    assert!(page.contains("Safety recall: remedied on"), "{page}");
    // Twice: nothing more.
    let (_, _, location) = app
        .submit(
            &staff,
            &format!("/staff/claims/{claim}"),
            &format!("/staff/claims/{claim}/assign"),
            &[("assignee", "")],
        )
        .await;
    assert!(location.unwrap().ends_with("notice=assigned"));
    let (_, account, _) = app.get_with(&staff, "/account").await;
    let (_, _, location) = app
        .post_with(
            &staff,
            &format!("/staff/claims/{claim}/recall-remedy"),
            &[("csrf_token", &csrf_of(&account)), ("code", "R-2026-005")],
        )
        .await;
    assert!(location.unwrap().ends_with("error=recall"));
}

/// In Chromium at phone size: an admin drafts a campaign, targets a range, previews and launches;
/// the owner opens the mailed link and acknowledges with a remedy.
#[tokio::test]
async fn in_a_browser_an_admin_launches_and_the_owner_acknowledges_from_the_mail() {
    use fantoccini::Locator;
    let (app, smtp) = app_with_mail().await;
    app.create_user("admin@example.com", PW, "admin");
    let ann = user(&app, "ann@example.com", "customer").await;
    register(&app, &ann, "SN0061").await;
    let Some((client, _driver, _profile)) = crate::browser::browser().await else {
        return;
    };
    let battery = model_id(&app, BATTERY).to_string();
    let submit = Locator::Css("main form button[type=submit]");
    let result = async {
        client.goto(&format!("{}/login", app.address)).await?;
        client.find(Locator::Id("email")).await?.send_keys("admin@example.com").await?;
        client.find(Locator::Id("password")).await?.send_keys(PW).await?;
        client.find(submit).await?.click().await?;
        client.wait().for_element(Locator::Css("h1")).await?;
        client.goto(&format!("{}/admin/recalls", app.address)).await?;
        client.find(Locator::Id("code")).await?.send_keys("R-2026-010").await?;
        client.find(Locator::Id("title")).await?.send_keys("PowerCell 18V battery packs").await?;
        client.find(Locator::Css("form[action='/admin/recalls'] button")).await?.click().await?;
        // The notice.
        client.wait().for_element(Locator::Id("hazard")).await?.send_keys("The battery can overheat and catch fire.").await?;
        client.find(Locator::Id("what_to_do")).await?.send_keys("Stop using it now.").await?;
        client.find(Locator::Css("input[name=remedy_replace]")).await?.click().await?;
        client.find(Locator::Css("input[name=remedy_refund]")).await?.click().await?;
        client.find(Locator::Id("sold_where")).await?.send_keys("Shops, 2026.").await?;
        client.find(Locator::Id("contact")).await?.send_keys("0800 123 456").await?;
        client.find(Locator::Css("#notice-form button[type=submit]")).await?.click().await?;
        // A range of serials.
        client.wait().for_element(Locator::Id("kind")).await?;
        client
            .execute(
                "document.getElementById('kind').value = 'range'; document.getElementById('model').value = arguments[0];",
                vec![serde_json::json!(battery)],
            )
            .await?;
        client.find(Locator::Id("from")).await?.send_keys("SN0060").await?;
        client.find(Locator::Id("to")).await?.send_keys("SN0064").await?;
        client.find(Locator::Css("#targets form[enctype] button[type=submit]")).await?.click().await?;
        let preview = client.wait().for_element(Locator::Id("preview")).await?.text().await?;
        client.find(Locator::Css("form[action$='/launch'] button")).await?.click().await?;
        let launched = client.wait().for_element(Locator::Id("progress")).await?.text().await?;

        // The owner's mail, opened in a fresh session.
        let mut mail = String::new();
        for _ in 0..400 {
            if let Some(m) = smtp
                .messages()
                .into_iter()
                .map(|m| crate::smtp::decode_qp(&m))
                .find(|m| m.contains("Product safety recall"))
            {
                mail = m;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let link = crate::smtp::link_in(&mail, &format!("{}/recalls/R-2026-010/ack?t=", app.address));
        client.delete_all_cookies().await?;
        client.goto(&link).await?;
        let units = client.find(Locator::Id("recall-units")).await?.text().await?;
        client.find(Locator::Css("input[name=remedy][value=replace]")).await?.click().await?;
        client.find(Locator::Css("form[action$='/ack'] button")).await?.click().await?;
        let thanks = client.wait().for_element(Locator::Id("remedy-choice")).await?.text().await?;
        let overflow = client
            .execute("return document.documentElement.scrollWidth > window.innerWidth;", vec![])
            .await?;
        Ok::<_, fantoccini::error::CmdError>((preview, launched, units, thanks, overflow))
    }
    .await;
    let _ = client.close().await;
    let (preview, launched, units, thanks, overflow) = result.expect("browser journey");
    assert!(
        preview.contains("5 units affected; 1 registered; 1 owner(s)"),
        "{preview}"
    );
    assert!(
        launched.contains("Affected\n5") || launched.contains("Affected 5"),
        "{launched}"
    );
    assert!(units.contains("SN0061"), "{units}");
    assert_eq!(thanks, "free replacement");
    assert_eq!(overflow, serde_json::json!(false));
    assert_eq!(
        app.scalar("SELECT count(*) FROM recall_units WHERE state = 'acknowledged'"),
        1
    );
}

#[tokio::test]
async fn the_mail_rate_cap_holds_for_bulk_notices() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(move |c| {
        c.run_worker = true;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.mail_rate_per_sec = 10;
    })
    .await;
    app.sql(
        "INSERT INTO outbox (kind, to_address, subject, body_text, body_html)
         SELECT 'recall_notice', 'owner' || g || '@example.com', 'Notice', 'text', '<p>html</p>'
         FROM generate_series(1, 30) g",
    );
    for _ in 0..600 {
        if app.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'") == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'"),
        30
    );
    // However fast the machine, no second saw more than the cap allows (a batch is at most
    // one second's worth; two batches can touch one calendar second).
    let busiest = app.scalar(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM outbox o1 JOIN outbox o2
             ON o2.sent_at >= o1.sent_at AND o2.sent_at < o1.sent_at + interval '1 second'
             GROUP BY o1.id) w",
    );
    assert!(
        busiest <= 20,
        "{busiest} mails within one second at a cap of 10/s"
    );
    assert_eq!(smtp.messages().len(), 30);
}

#[tokio::test]
async fn rows_recall_records_point_at_are_never_deleted() {
    let app = spawn_app().await;
    for table in [
        "units",
        "accounts",
        "recall_campaigns",
        "recall_notices",
        "outbox",
        "mail_templates",
    ] {
        for statement in [
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table} CASCADE"),
        ] {
            let refused = format!(
                "{:#}",
                recall_portal::db::execute_sync(&app.db_url, &statement).expect_err(&statement)
            );
            assert!(
                refused.contains("are never deleted"),
                "{statement}: {refused}"
            );
        }
    }
    assert!(app.scalar("SELECT count(*) FROM units") > 0);
}
