//! Product registration: from a lookup or a product link, owner or pending transfer, mails
//! through the outbox, and "My products" that only the owner sees.

use chrono::{Days, Months};

use crate::helpers::{TestApp, q, spawn_app};

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";

async fn customer(app: &TestApp, email: &str) -> reqwest::Client {
    app.create_user(email, PW, "customer");
    let c = app.browser();
    app.login(&c, email, PW).await;
    c
}

async fn register(
    app: &TestApp,
    c: &reqwest::Client,
    serial: &str,
    gtin: &str,
    date: &str,
) -> (u16, String, Option<String>) {
    app.submit_multipart(
        c,
        &format!("/register?gtin={gtin}&serial={}", q(serial)),
        "/register",
        &[
            ("serial", serial),
            ("gtin", gtin),
            ("purchased_on", date),
            ("place_of_purchase", "Hardware Store <Berlin>"),
            ("reminder", "on"),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn a_customer_registers_a_product_and_its_warranty_runs_from_the_purchase_date() {
    let app = spawn_app().await;
    // Anonymous: the form, which says an account comes after it.
    let (status, form, _) = app
        .get_with(
            &app.browser(),
            &format!("/register?gtin={BATTERY}&serial=SN1500"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(form.contains("What you enter here is kept"), "{form}");
    // The lookup result offers it.
    let (_, page) = app
        .page(&format!("/check?serial=SN1500&gtin={BATTERY}"))
        .await;
    assert!(
        page.contains(&format!("/register?gtin={BATTERY}&amp;serial=SN1500")),
        "{page}"
    );

    let c = customer(&app, "ann@example.com").await;
    let (_, form, _) = app
        .get_with(
            &c,
            &format!("/register?gtin={BATTERY}&serial=SN1500&marketing=on"),
        )
        .await;
    assert!(form.contains("value=\"SN1500\""), "prefilled");
    assert!(
        form.contains("only to tell you about safety recalls"),
        "{form}"
    );
    assert!(
        !form.contains("id=\"marketing\" name=\"marketing\" type=\"checkbox\" checked"),
        "never ticked in advance"
    );

    let bought = chrono::Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(20))
        .unwrap();
    let (status, body, location) = register(&app, &c, "sn1500", BATTERY, &bought.to_string()).await;
    assert_eq!(status, 303, "{body}");
    let (_, mine, _) = app.get_with(&c, &location.unwrap()).await;
    assert!(
        mine.contains("Registered. We sent you a confirmation by mail."),
        "{mine}"
    );
    let ends = bought
        .checked_add_months(Months::new(24))
        .unwrap()
        .pred_opt()
        .unwrap();
    let long = ends.format("%-d %B %Y").to_string();
    assert!(
        mine.contains(&format!("under warranty until {long}")),
        "{mine}"
    );
    // The unit was in stock, not recorded as sold: registered, and flagged for staff.
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE status = 'active' AND not_sold_flag AND reminder_wanted AND NOT marketing_consent AND contact_email = 'ann@example.com'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'registration_confirmed' AND to_address = 'ann@example.com'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events e JOIN units u ON u.id = e.unit_id WHERE u.serial = 'SN1500' AND e.kind = 'registered' AND e.actor LIKE 'customer:%'"),
        1
    );
    // The public lookup uses the registered purchase date now.
    let (_, page) = app
        .page(&format!("/check?serial=SN1500&gtin={BATTERY}"))
        .await;
    assert!(
        page.contains(&format!("Under warranty until {long}")),
        "{page}"
    );
    assert!(
        !page.contains("ann@example.com") && !page.contains("Hardware Store"),
        "no owner data"
    );

    let id = app.scalar("SELECT id FROM registrations");
    let (status, detail, _) = app.get_with(&c, &format!("/account/products/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        detail.contains("Hardware Store &#60;Berlin&#62;"),
        "escaped: {detail}"
    );

    // Again: nothing new.
    let (_, _, location) = register(&app, &c, "SN1500", BATTERY, &bought.to_string()).await;
    assert!(location.unwrap().ends_with("notice=already"));
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 1);
}

#[tokio::test]
async fn a_second_claim_waits_for_staff_and_nobody_sees_the_other() {
    let app = spawn_app().await;
    let ann = customer(&app, "ann@example.com").await;
    let bob = customer(&app, "bob@example.com").await;
    let d = "2026-01-05";
    let (status, _, _) = register(&app, &ann, "SN1600", BATTERY, d).await;
    assert_eq!(status, 303);
    let (status, _, location) = register(&app, &bob, "SN1600", BATTERY, d).await;
    assert_eq!(status, 303);
    let (_, mine, _) = app.get_with(&bob, &location.unwrap()).await;
    assert!(mine.contains("registered to someone else"), "{mine}");
    assert!(mine.contains("being checked by our staff"), "{mine}");
    assert!(!mine.contains("ann@example.com"));
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'transfer_requested' AND to_address = 'bob@example.com' AND body_text NOT LIKE '%ann@%'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE status = 'active' AND contact_email = 'ann@example.com'"),
        1,
        "never taken over"
    );
    let (_, _, location) = register(&app, &bob, "SN1600", BATTERY, d).await;
    assert!(location.unwrap().ends_with("notice=requested"));
    // Each sees only their own registrations.
    let anns = app.scalar("SELECT id FROM registrations WHERE contact_email = 'ann@example.com'");
    let (status, _, _) = app
        .get_with(&bob, &format!("/account/products/{anns}"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn wrong_details_are_named_next_to_their_field_and_kept() {
    let app = spawn_app().await;
    let c = customer(&app, "ann@example.com").await;
    let future = chrono::Utc::now()
        .date_naive()
        .checked_add_days(Days::new(10))
        .unwrap()
        .to_string();
    for (serial, gtin, date, expected) in [
        (
            "SN9999",
            "",
            "2026-01-01",
            "We have no product with this serial number",
        ),
        (
            "SN0001",
            "",
            "2026-01-01",
            "This serial number exists on 2 of our products",
        ),
        (
            "SN1700",
            BATTERY,
            &future,
            "The purchase date cannot be in the future",
        ),
        ("SN1700", BATTERY, "", "Enter the purchase date"),
        ("AB#1", "", "2026-01-01", "cannot contain “#”"),
    ] {
        let (status, body, _) = app
            .submit_multipart(
                &c,
                "/register",
                "/register",
                &[
                    ("serial", serial),
                    ("gtin", gtin),
                    ("purchased_on", date),
                    ("place_of_purchase", "Shop"),
                ],
                &[],
            )
            .await;
        assert_eq!(status, 422, "{serial}");
        assert!(body.contains(expected), "{expected:?} in {body}");
        assert!(body.contains(&format!("value=\"{}\"", serial)), "kept");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 0);
    let (_, mine, _) = app.get_with(&c, "/account/products").await;
    assert!(
        mine.contains("You have not registered a product yet"),
        "{mine}"
    );
}

/// Waits (up to 20 s) for a mail to `to` whose text contains `marker`.
async fn mail_to(smtp: &crate::smtp::SmtpServer, to: &str, marker: &str) -> String {
    for _ in 0..400 {
        if let Some(m) = smtp
            .messages()
            .into_iter()
            .map(|m| crate::smtp::decode_qp(&m))
            .find(|m| m.to_lowercase().contains(&format!("to: {to}")) && m.contains(marker))
        {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail to {to} with {marker:?}");
}

#[tokio::test]
async fn staff_approve_or_reject_a_transfer_and_both_parties_are_told_by_mail() {
    let smtp = crate::smtp::SmtpServer::start().await;
    let port = smtp.port;
    let app = crate::helpers::spawn_app_with(move |c| {
        c.run_worker = true;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let ann = customer(&app, "ann@example.com").await;
    let bob = customer(&app, "bob@example.com").await;
    let carl = customer(&app, "carl@example.com").await;
    app.create_user("staff@example.com", PW, "staff");
    let staff = app.browser();
    app.login(&staff, "staff@example.com", PW).await;
    for serial in ["SN1650", "SN1651"] {
        register(&app, &ann, serial, BATTERY, "2026-02-01").await;
    }
    register(&app, &bob, "SN1650", BATTERY, "2026-03-01").await;
    register(&app, &carl, "SN1651", BATTERY, "2026-03-01").await;
    mail_to(
        &smtp,
        "bob@example.com",
        "Your registration is being checked",
    )
    .await;

    let (_, list, _) = app.get_with(&staff, "/staff/registrations").await;
    assert!(list.contains("SN1650") && list.contains("SN1651"), "{list}");
    let bobs = app.scalar("SELECT id FROM registrations WHERE contact_email = 'bob@example.com'");
    let carls = app.scalar("SELECT id FROM registrations WHERE contact_email = 'carl@example.com'");
    let (_, page, _) = app
        .get_with(&staff, &format!("/staff/registrations/{bobs}"))
        .await;
    assert!(
        page.contains("ann@example.com") && page.contains("bob@example.com"),
        "staff see both"
    );

    // A rejection needs a reason.
    let (_, _, location) = app
        .submit(
            &staff,
            &format!("/staff/registrations/{carls}"),
            &format!("/staff/registrations/{carls}/decide"),
            &[("decision", "reject"), ("note", "")],
        )
        .await;
    assert!(location.unwrap().ends_with("error=reason"));

    let (status, _, _) = app
        .submit(
            &staff,
            &format!("/staff/registrations/{bobs}"),
            &format!("/staff/registrations/{bobs}/decide"),
            &[("decision", "approve"), ("note", "receipt checked")],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = app
        .submit(
            &staff,
            &format!("/staff/registrations/{carls}"),
            &format!("/staff/registrations/{carls}/decide"),
            &[
                ("decision", "reject"),
                ("note", "the receipt is for another product"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations r JOIN units u ON u.id = r.unit_id WHERE u.serial = 'SN1650' AND r.status = 'active' AND r.contact_email = 'bob@example.com'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE contact_email = 'ann@example.com' AND status = 'ended'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE contact_email = 'carl@example.com' AND status = 'rejected'"),
        1
    );
    let to_bob = mail_to(&smtp, "bob@example.com", "is now registered to you").await;
    let to_ann = mail_to(&smtp, "ann@example.com", "registered to a new owner").await;
    let to_carl = mail_to(
        &smtp,
        "carl@example.com",
        "the receipt is for another product",
    )
    .await;
    let to_ann2 = mail_to(&smtp, "ann@example.com", "stays registered to you").await;
    for (m, other) in [
        (&to_bob, "ann@"),
        (&to_ann, "bob@"),
        (&to_carl, "ann@"),
        (&to_ann2, "carl@"),
    ] {
        assert!(!m.contains(other), "no one learns of the other: {m}");
    }
    // What an authority asks for: the current owners of a lot, with their safety contact.
    app.create_user("admin@example.com", PW, "admin");
    let admin = app.browser();
    app.login(&admin, "admin@example.com", PW).await;
    let lot = app.scalar("SELECT id FROM lots WHERE code = 'ABC124'");
    let (status, csv, _) = app
        .get_with(&admin, &format!("/admin/registrations.csv?lot={lot}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        csv.starts_with("gtin,serial,lot,status,contact_email,"),
        "{csv}"
    );
    assert!(
        csv.contains("09506000134352,SN1650,ABC124,active,bob@example.com,false,2026-03-01"),
        "{csv}"
    );
    assert!(
        csv.contains("SN1651,ABC124,active,ann@example.com"),
        "{csv}"
    );
    assert!(!csv.contains("carl@"), "rejected requests are not owners");
    let (status, _, _) = app
        .get_with(&staff, &format!("/admin/registrations.csv?lot={lot}"))
        .await;
    assert_eq!(status, 403, "admins only");
    let (status, _, _) = app.get_with(&admin, "/admin/registrations.csv").await;
    assert_eq!(status, 400);
    // Decided once only; customers cannot reach the staff pages.
    let (status, _, _) = app
        .submit(
            &staff,
            "/staff",
            &format!("/staff/registrations/{bobs}/decide"),
            &[("decision", "reject"), ("note", "again")],
        )
        .await;
    assert_eq!(status, 409);
    let (status, _, _) = app.get_with(&bob, "/staff/registrations").await;
    assert_eq!(status, 403);
    // The unit's page lists every registration of it, for staff.
    let unit = app.scalar("SELECT id FROM units WHERE serial = 'SN1650'");
    let (_, page, _) = app.get_with(&staff, &format!("/staff/units/{unit}")).await;
    assert!(page.contains("active · bob@example.com"), "{page}");
    assert!(page.contains("ended · ann@example.com"), "{page}");
    // Bob's product page now shows the warranty from his purchase date.
    let (_, mine, _) = app.get_with(&bob, "/account/products").await;
    assert!(
        mine.contains("under warranty until 29 February 2028"),
        "{mine}"
    );
}
