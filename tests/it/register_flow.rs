//! Registering without an account first (nothing typed is lost through sign-up, the mailed
//! confirmation and sign-in), proofs of purchase (checked by content, served only to the owner
//! and staff), and the Digital Link `gs1:registerProduct` link.

use crate::helpers::{TestApp, csrf_of, png, q, spawn_app};
use crate::smtp::link_in;

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";

/// A tiny but real PDF header, as the sniffer needs it.
fn pdf(size: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n".to_vec();
    b.resize(size.max(b.len()), b' ');
    b
}

/// Files stored as proofs in this app's data directory (in its folders per day).
fn stored_proofs(app: &TestApp) -> usize {
    std::fs::read_dir(app.data_dir.join("proofs"))
        .map(|days| {
            days.filter_map(Result::ok)
                .map(|day| {
                    std::fs::read_dir(day.path())
                        .map(|d| d.filter_map(Result::ok).count())
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn fill_in(
    app: &TestApp,
    c: &reqwest::Client,
    serial: &str,
    files: &[(&str, &str, &str, Vec<u8>)],
) -> (u16, String, Option<String>) {
    app.submit_multipart(
        c,
        &format!("/register?gtin={BATTERY}&serial={}", q(serial)),
        "/register",
        &[
            ("serial", serial),
            ("gtin", BATTERY),
            ("purchased_on", "2026-10-01"),
            ("place_of_purchase", "Corner Shop"),
            ("reminder", "on"),
        ],
        files,
    )
    .await
}

fn path_of(app: &TestApp, link: &str) -> String {
    link.trim_start_matches(&app.address).to_owned()
}

#[tokio::test]
async fn someone_without_an_account_registers_signs_up_confirms_and_loses_nothing() {
    let app = spawn_app().await;
    let c = app.browser();
    let (status, body, location) = fill_in(
        &app,
        &c,
        "SN1800",
        &[("proof", "receipt.pdf", "application/pdf", pdf(2000))],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let finish = location.unwrap();
    assert!(finish.starts_with("/register/finish?draft="), "{finish}");
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 0);
    assert_eq!(app.scalar("SELECT count(*) FROM registration_drafts"), 1);
    assert_eq!(stored_proofs(&app), 1);

    let (status, page, _) = app.get_with(&c, &finish).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("SN1800") && page.contains("Corner Shop"),
        "{page}"
    );
    assert!(page.contains("PDF, 2 KB"), "{page}");
    let signup = format!("/signup?next={}", q(&finish));
    assert!(page.contains(&signup.replace('&', "&amp;")), "{page}");

    // Sign up from there: the confirmation mail carries the way back.
    let (status, _, location) = app
        .submit(
            &c,
            &signup,
            "/signup",
            &[
                ("email", "new@example.com"),
                ("password", PW),
                ("next", &finish),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let sent = location.unwrap();
    assert_eq!(sent, format!("/signup/sent?next={}", q(&finish)));
    let (_, page, _) = app.get_with(&c, &sent).await;
    assert!(page.contains("Your product registration is kept"), "{page}");
    assert!(
        page.contains(&format!("/login?next={}", q(&finish))),
        "{page}"
    );
    let mail = app.text(
        "SELECT body_text FROM outbox WHERE kind = 'verify_email' AND to_address = 'new@example.com'",
    );
    assert!(mail.contains("Your product registration is kept"), "{mail}");
    let link = link_in(&mail, &format!("{}/account/verify?token=", app.address));
    // The mail may be opened in another browser (a phone's mail app): a fresh client.
    let phone = app.browser();
    let (status, confirm, _) = app.get_with(&phone, &path_of(&app, &link)).await;
    assert_eq!(status, 200);
    let token = link
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let (status, _, location) = app
        .post_with(
            &phone,
            "/account/verify",
            &[
                ("csrf_token", &csrf_of(&confirm)),
                ("token", token),
                ("next", &finish),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let login = location.unwrap();
    assert_eq!(login, format!("/login?notice=verified&next={}", q(&finish)));
    let (status, _, location) = app
        .submit(
            &phone,
            &login,
            "/login",
            &[
                ("email", "new@example.com"),
                ("password", PW),
                ("next", &finish),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some(finish.as_str())));

    // Signed in: check and confirm.
    let (status, page, _) = app.get_with(&phone, &finish).await;
    assert_eq!(status, 200);
    assert!(page.contains("Confirm registration"), "{page}");
    let draft = finish.split("draft=").nth(1).unwrap();
    let (status, _, location) = app
        .post_with(
            &phone,
            "/register/finish",
            &[("csrf_token", &csrf_of(&page)), ("draft", draft)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/account/products?notice=registered")
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE status = 'active' AND contact_email = 'new@example.com' AND place_of_purchase = 'Corner Shop' AND purchased_on = '2026-10-01' AND reminder_wanted AND NOT marketing_consent AND proof_type = 'application/pdf' AND proof_bytes = 2000"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registration_drafts WHERE completed_by IS NOT NULL AND outcome = 'registered'"),
        1
    );
    assert_eq!(
        stored_proofs(&app),
        1,
        "the draft's file is the registration's"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'registration_confirmed' AND to_address = 'new@example.com'"),
        1
    );
    // A draft is used once: coming back to it (or clicking twice) shows what it did.
    let (status, _, location) = app.get_with(&phone, &finish).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/account/products?notice=registered"))
    );
    let (status, _, _) = app
        .post_with(
            &phone,
            "/register/finish",
            &[("csrf_token", &csrf_of(&page)), ("draft", draft)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 1);
    assert_eq!(stored_proofs(&app), 1);
}

#[tokio::test]
async fn an_existing_customer_signs_in_midway_and_finishes() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", PW, "customer");
    let c = app.browser();
    let (_, _, location) = fill_in(&app, &c, "SN1801", &[]).await;
    let finish = location.unwrap();
    // Anonymous confirmation is refused: it sends to sign in and back.
    let (_, page, _) = app.get_with(&c, "/register").await;
    let draft = finish.split("draft=").nth(1).unwrap().to_owned();
    let (status, _, location) = app
        .post_with(
            &c,
            "/register/finish",
            &[("csrf_token", &csrf_of(&page)), ("draft", &draft)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("/login?next={}", q(&finish)));
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 0);

    let (status, _, location) = app
        .submit(
            &c,
            &format!("/login?next={}", q(&finish)),
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", PW),
                ("next", &finish),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some(finish.as_str())));
    // Without the CSRF token of the signed-in session nothing happens.
    let (status, _, _) = app
        .post_with(&c, "/register/finish", &[("draft", &draft)])
        .await;
    assert_eq!(status, 403);
    let (_, page, _) = app.get_with(&c, &finish).await;
    let (status, _, location) = app
        .post_with(
            &c,
            "/register/finish",
            &[("csrf_token", &csrf_of(&page)), ("draft", &draft)],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=registered"));
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE status = 'active' AND contact_email = 'ann@example.com'"),
        1
    );
    // A made-up or malformed draft is "gone", never a 500.
    for bad in ["x", &"A".repeat(43), "%00"] {
        let (status, _, _) = app
            .get_with(&c, &format!("/register/finish?draft={bad}"))
            .await;
        assert_eq!(status, 410, "{bad}");
    }
}

#[tokio::test]
async fn proofs_are_judged_by_content_and_only_the_owner_and_staff_see_them() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", PW, "customer");
    app.create_user("bob@example.com", PW, "customer");
    app.create_user("staff@example.com", PW, "staff");
    let ann = app.browser();
    app.login(&ann, "ann@example.com", PW).await;

    // Spoofed: HTML named and sent as a PDF; too large; both refused with the form kept.
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    for (name, mime, bytes, expected) in [
        (
            "receipt.pdf",
            "application/pdf",
            html,
            "is not a PDF, JPEG or PNG",
        ),
        (
            "big.pdf",
            "application/pdf",
            pdf(5 * 1024 * 1024 + 1),
            "larger than 5 MB",
        ),
    ] {
        let (status, body, _) =
            fill_in(&app, &ann, "SN1802", &[("proof", name, mime, bytes)]).await;
        assert_eq!(status, 422, "{name}");
        assert!(body.contains(expected), "{expected}: {body}");
        assert!(body.contains("value=\"Corner Shop\""), "kept");
        assert!(body.contains("id=\"proof\"") && body.contains("aria-invalid=\"true\" autofocus"));
    }
    // A bad date with a good file: the file must be chosen again, and the page says so.
    let (status, body, _) = app
        .submit_multipart(
            &ann,
            "/register",
            "/register",
            &[
                ("serial", "SN1802"),
                ("gtin", BATTERY),
                ("purchased_on", ""),
                ("place_of_purchase", "Corner Shop"),
            ],
            &[("proof", "r.png", "image/png", png())],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("Choose the receipt file again"), "{body}");
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 0);
    assert_eq!(stored_proofs(&app), 0, "nothing refused is kept");

    // Exactly 5 MB is accepted.
    let (status, body, _) = fill_in(
        &app,
        &ann,
        "SN1802",
        &[("proof", "scan.pdf", "application/pdf", pdf(5 * 1024 * 1024))],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let id = app.scalar("SELECT id FROM registrations");
    let (_, page, _) = app.get_with(&ann, &format!("/account/products/{id}")).await;
    assert!(
        page.contains("Your receipt") && page.contains("PDF, 5.0 MB"),
        "{page}"
    );
    let r = ann
        .get(format!("{}/account/products/{id}/proof", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().len(), 5 * 1024 * 1024);

    // Another customer: 404 for the product page and the proof; anonymous: sign in.
    let bob = app.browser();
    app.login(&bob, "bob@example.com", PW).await;
    for path in [
        format!("/account/products/{id}"),
        format!("/account/products/{id}/proof"),
    ] {
        let (status, _, _) = app.get_with(&bob, &path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _, location) = app
        .get_with(&app.browser(), &format!("/account/products/{id}/proof"))
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/login?next="));
    // Nor can Bob replace it.
    let (status, _, _) = app
        .submit_multipart(
            &bob,
            "/register",
            &format!("/account/products/{id}/proof"),
            &[],
            &[("proof", "r.png", "image/png", png())],
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE proof_type = 'application/pdf'"),
        1
    );

    // Staff see it from the registration page.
    let staff = app.browser();
    app.login(&staff, "staff@example.com", PW).await;
    let (_, page, _) = app
        .get_with(&staff, &format!("/staff/registrations/{id}"))
        .await;
    assert!(
        page.contains(&format!("/staff/registrations/{id}/proof")),
        "{page}"
    );
    let (status, _, _) = app
        .get_with(&staff, &format!("/staff/registrations/{id}/proof"))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = app
        .get_with(&ann, &format!("/staff/registrations/{id}/proof"))
        .await;
    assert_eq!(status, 403);

    // The owner replaces it with a picture: shown inline, the old file removed.
    let (status, _, location) = app
        .submit_multipart(
            &ann,
            &format!("/account/products/{id}"),
            &format!("/account/products/{id}/proof"),
            &[],
            &[("proof", "photo.png", "image/png", png())],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = app.get_with(&ann, &location.unwrap()).await;
    assert!(page.contains("Your proof of purchase is saved"), "{page}");
    assert_eq!(stored_proofs(&app), 1);
    let r = ann
        .get(format!("{}/account/products/{id}/proof", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    // A spoofed replacement is refused and changes nothing.
    let (status, _, location) = app
        .submit_multipart(
            &ann,
            &format!("/account/products/{id}"),
            &format!("/account/products/{id}/proof"),
            &[],
            &[("proof", "x.png", "image/png", b"GIF89a not a png".to_vec())],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = app.get_with(&ann, &location.unwrap()).await;
    assert!(page.contains("is not a PDF, JPEG or PNG"), "{page}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE proof_type = 'image/png'"),
        1
    );
    assert_eq!(stored_proofs(&app), 1);
    // Without a CSRF token: refused before anything is stored.
    let form = reqwest::multipart::Form::new().part(
        "proof",
        reqwest::multipart::Part::bytes(png())
            .file_name("p.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let r = ann
        .post(format!("{}/account/products/{id}/proof", app.address))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(stored_proofs(&app), 1);
}

#[tokio::test]
async fn the_register_product_link_opens_the_form_filled_in() {
    let app = spawn_app().await;
    let c = app.browser();
    let (status, _, location) = app
        .get_with(
            &c,
            &format!("/01/{BATTERY}/21/SN1803?linkType=gs1:registerProduct"),
        )
        .await;
    assert_eq!(status, 307);
    let location = location.unwrap();
    assert_eq!(location, format!("/register?gtin={BATTERY}&serial=SN1803"));
    let (status, form, _) = app.get_with(&c, &location).await;
    assert_eq!(status, 200);
    assert!(form.contains("value=\"SN1803\"") && form.contains(&format!("value=\"{BATTERY}\"")));
    // A model-level link opens the form with the GTIN only.
    let (status, _, location) = app
        .get_with(&c, &format!("/01/{BATTERY}?linkType=gs1:registerProduct"))
        .await;
    assert_eq!(status, 307);
    assert_eq!(location.unwrap(), format!("/register?gtin={BATTERY}"));
}

/// The label's QR code on a phone: Digital Link → the form → sign up → the mailed link → sign
/// in → confirm → "My products" with the warranty, at 412×915 in headless Chromium.
#[tokio::test]
async fn a_phone_scans_the_label_signs_up_and_registers() {
    use fantoccini::Locator;
    let smtp = crate::smtp::SmtpServer::start().await;
    let port = smtp.port;
    let app = crate::helpers::spawn_app_with(move |c| {
        c.run_worker = true;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let Some((client, _driver, _profile)) = crate::browser::browser().await else {
        return;
    };
    let password = "Juniper-Falcon-Meadow-31";
    let bought = chrono::Utc::now().date_naive() - chrono::Days::new(3);
    let result = async {
        let submit = Locator::Css("main form button[type=submit]");
        client
            .goto(&format!(
                "{}/01/{BATTERY}/21/SN1900?linkType=gs1:registerProduct",
                app.address
            ))
            .await?;
        let serial = client
            .find(Locator::Id("serial"))
            .await?
            .prop("value")
            .await?;
        // A date input's typing depends on the locale; set it as a date picker would.
        client
            .execute(
                "document.getElementById('purchased_on').value = arguments[0];",
                vec![serde_json::json!(bought.to_string())],
            )
            .await?;
        client
            .find(Locator::Id("place_of_purchase"))
            .await?
            .send_keys("Phone Shop")
            .await?;
        client.find(Locator::Id("reminder")).await?.click().await?;
        // Nothing sticks out sideways on a phone.
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await?;
        client.find(submit).await?.click().await?;
        client
            .wait()
            .for_element(Locator::Css("a.button[href^='/signup?next=']"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .for_element(Locator::Id("email"))
            .await?
            .send_keys("pat@example.com")
            .await?;
        client
            .find(Locator::Id("password"))
            .await?
            .send_keys(password)
            .await?;
        client.find(submit).await?.click().await?;
        client.wait().for_element(Locator::Id("msg-title")).await?;

        let mail = smtp.wait_for_mail_to("pat@example.com").await;
        let link = link_in(&mail, &format!("{}/account/verify?token=", app.address));
        client.goto(&link).await?;
        client.find(submit).await?.click().await?;
        client
            .wait()
            .for_element(Locator::Css("p.notice.ok"))
            .await?;
        client
            .find(Locator::Id("email"))
            .await?
            .send_keys("pat@example.com")
            .await?;
        client
            .find(Locator::Id("password"))
            .await?
            .send_keys(password)
            .await?;
        client.find(submit).await?.click().await?;
        let check = client
            .wait()
            .for_element(Locator::Id("fin-title"))
            .await?
            .text()
            .await?;
        let summary = client.find(Locator::Css("dl.facts")).await?.text().await?;
        client.find(submit).await?.click().await?;
        let notice = client
            .wait()
            .for_element(Locator::Css("p.notice.ok"))
            .await?
            .text()
            .await?;
        let products = client
            .find(Locator::Css("ul.products"))
            .await?
            .text()
            .await?;
        Ok::<_, fantoccini::error::CmdError>((serial, overflow, check, summary, notice, products))
    }
    .await;
    let _ = client.close().await;
    let (serial, overflow, check, summary, notice, products) = result.expect("phone journey");
    assert_eq!(serial.as_deref(), Some("SN1900"));
    assert_eq!(overflow, serde_json::json!(false), "no sideways scrolling");
    assert_eq!(check, "Check and confirm");
    assert!(
        summary.contains("SN1900") && summary.contains("Phone Shop"),
        "{summary}"
    );
    assert!(notice.starts_with("Registered."), "{notice}");
    let ends = (bought + chrono::Months::new(24)).pred_opt().unwrap();
    assert!(
        products.contains(&format!(
            "under warranty until {}",
            ends.format("%-d %B %Y")
        )),
        "{products}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations r JOIN accounts a ON a.id = r.account_id WHERE a.email = 'pat@example.com' AND r.status = 'active' AND r.reminder_wanted"),
        1
    );
}

#[tokio::test]
async fn an_owner_ends_a_registration_and_a_requester_withdraws() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for who in ["ann", "bob", "carl"] {
        let email = format!("{who}@example.com");
        app.create_user(&email, PW, "customer");
        let c = app.browser();
        app.login(&c, &email, PW).await;
        clients.push(c);
    }
    let (ann, bob, carl) = (&clients[0], &clients[1], &clients[2]);
    fill_in(&app, ann, "SN1804", &[]).await;
    fill_in(&app, bob, "SN1804", &[]).await;
    let anns = app.scalar("SELECT id FROM registrations WHERE contact_email = 'ann@example.com'");
    let bobs = app.scalar("SELECT id FROM registrations WHERE contact_email = 'bob@example.com'");
    let end = |c: &reqwest::Client, id: i64| {
        let c = c.clone();
        let app = &app;
        async move {
            app.submit(
                &c,
                &format!("/account/products/{id}"),
                &format!("/account/products/{id}/end"),
                &[],
            )
            .await
        }
    };
    // Nobody ends someone else's.
    let (_, page, _) = app
        .get_with(bob, &format!("/account/products/{bobs}"))
        .await;
    assert!(page.contains("Withdraw my request"), "{page}");
    let (status, _, _) = app
        .post_with(
            bob,
            &format!("/account/products/{anns}/end"),
            &[("csrf_token", &csrf_of(&page))],
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, location) = end(bob, bobs).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=withdrawn"));
    let (status, _, location) = end(ann, anns).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=ended"));
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM registrations WHERE status = 'ended' AND ended_at IS NOT NULL"
        ),
        2
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events e JOIN units u ON u.id = e.unit_id WHERE u.serial = 'SN1804' AND e.kind = 'unregistered'"),
        1
    );
    // Ending twice: it is over already.
    let (_, page, _) = app.get_with(ann, "/register").await;
    let (status, _, _) = app
        .post_with(
            ann,
            &format!("/account/products/{anns}/end"),
            &[("csrf_token", &csrf_of(&page))],
        )
        .await;
    assert_eq!(status, 404);
    // The next owner registers it straight away.
    let (_, _, location) = fill_in(&app, carl, "SN1804", &[]).await;
    assert!(location.unwrap().ends_with("notice=registered"));
}

#[tokio::test]
async fn staff_list_the_registrations_of_a_model_or_a_lot_page_by_page() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", PW, "customer");
    app.create_user("staff@example.com", PW, "staff");
    app.create_user("admin@example.com", PW, "admin");
    let model = app.scalar(&format!(
        "SELECT id FROM product_models WHERE gtin = '{BATTERY}'"
    ));
    // 150 owners, straight into the table (the registration path is tested elsewhere).
    app.sql(&format!(
        "INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase, contact_email)
         SELECT u.id, a.id, 'active', '2026-01-01', 'Shop', 'owner' || u.id || '@example.com'
         FROM units u, accounts a WHERE u.model_id = {model} AND a.email = 'ann@example.com'
         ORDER BY u.serial_key LIMIT 150"
    ));
    let staff = app.browser();
    app.login(&staff, "staff@example.com", PW).await;
    let (status, page, _) = app
        .get_with(&staff, &format!("/staff/registrations?model={model}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<strong>150</strong> registered owner(s)"),
        "{page}"
    );
    assert!(!page.contains("Download them all as CSV"), "admins only");
    let rows = |p: &str| p.matches("@example.com</td>").count();
    assert_eq!(rows(&page), 100);
    let next = page
        .split("href=\"/staff/registrations?model=")
        .nth(1)
        .expect("a next page")
        .replace("&#38;", "&")
        .split("#ml-title")
        .next()
        .unwrap()
        .to_owned();
    let (_, second, _) = app
        .get_with(&staff, &format!("/staff/registrations?model={next}"))
        .await;
    assert_eq!(rows(&second), 50, "{second}");
    assert!(!second.contains("Next 100 registrations"));
    let emails = |p: &str| -> Vec<String> {
        p.split("<td>owner")
            .skip(1)
            .map(|e| e.split('@').next().unwrap().to_owned())
            .collect()
    };
    let (first, later) = (emails(&page), emails(&second));
    assert_eq!((first.len(), later.len()), (100, 50));
    assert!(later.iter().all(|e| !first.contains(e)), "no row twice");

    // One lot of the model.
    let lot = app.text(&format!(
        "SELECT l.code FROM lots l JOIN units u ON u.lot_id = l.id JOIN registrations r ON r.unit_id = u.id WHERE l.model_id = {model} GROUP BY l.code ORDER BY count(*) DESC LIMIT 1"
    ));
    let in_lot = app.scalar(&format!(
        "SELECT count(*) FROM registrations r JOIN units u ON u.id = r.unit_id JOIN lots l ON l.id = u.lot_id WHERE l.code = '{lot}' AND l.model_id = {model}"
    ));
    let (_, page, _) = app
        .get_with(
            &staff,
            &format!("/staff/registrations?model={model}&lot={}", q(&lot)),
        )
        .await;
    assert!(
        page.contains(&format!("<strong>{in_lot}</strong> registered owner(s)")),
        "{page}"
    );
    // Mistakes are named; nothing breaks.
    for (query, expected) in [
        (
            format!("model={model}&lot=NOPE<b>"),
            "This model has no lot “NOPE&#60;b&#62;”",
        ),
        ("model=abc".to_owned(), "Choose a model from the list."),
        ("model=999999".to_owned(), "Choose a model from the list."),
        ("lot=L1".to_owned(), "Choose the model the lot belongs to."),
        (format!("model={model}&after=%00&after_id=x"), "Choose"),
    ] {
        let (status, page, _) = app
            .get_with(&staff, &format!("/staff/registrations?{query}"))
            .await;
        if query.contains("after_id=x") {
            assert_eq!(status, 400, "{query}");
            continue;
        }
        assert_eq!(status, 200, "{query}");
        assert!(page.contains(expected), "{expected}: {page}");
    }
    // Admins get the export of the same selection.
    let admin = app.browser();
    app.login(&admin, "admin@example.com", PW).await;
    let (_, page, _) = app
        .get_with(&admin, &format!("/staff/registrations?model={model}"))
        .await;
    assert!(
        page.contains(&format!("/admin/registrations.csv?model={model}")),
        "{page}"
    );
}

#[tokio::test]
async fn a_draft_is_seen_and_finished_only_by_its_browser_or_its_account() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", PW, "customer");
    app.create_user("mallory@example.com", PW, "customer");
    let ann = app.browser();
    let (_, _, location) = fill_in(&app, &ann, "SN1805", &[]).await;
    let finish = location.unwrap();
    let draft = finish.split("draft=").nth(1).unwrap().to_owned();

    // Someone else who got hold of the address: no details, and no way to finish it.
    let stranger = app.browser();
    let (status, page, _) = app.get_with(&stranger, &finish).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("Corner Shop") && !page.contains("SN1805"),
        "{page}"
    );
    app.login(&stranger, "mallory@example.com", PW).await;
    let (status, page, _) = app.get_with(&stranger, &finish).await;
    assert_eq!(status, 404, "{page}");
    assert!(!page.contains("Corner Shop"));
    let (_, form, _) = app.get_with(&stranger, "/register").await;
    let (status, _, _) = app
        .post_with(
            &stranger,
            "/register/finish",
            &[("csrf_token", &csrf_of(&form)), ("draft", &draft)],
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 0);

    // The browser that typed it signs in and finishes; a second click is not an error.
    app.login(&ann, "ann@example.com", PW).await;
    let (status, page, _) = app.get_with(&ann, &finish).await;
    assert_eq!(status, 200);
    assert!(page.contains("Corner Shop"), "{page}");
    assert!(
        page.contains("place_of_purchase=Corner%20Shop"),
        "“Change something” keeps what was typed: {page}"
    );
    for _ in 0..2 {
        let (status, _, location) = app
            .post_with(
                &ann,
                "/register/finish",
                &[("csrf_token", &csrf_of(&page)), ("draft", &draft)],
            )
            .await;
        assert_eq!(status, 303);
        assert_eq!(
            location.as_deref(),
            Some("/account/products?notice=registered")
        );
    }
    assert_eq!(app.scalar("SELECT count(*) FROM registrations"), 1);
    // Finished: anyone else finds it gone.
    let (status, _, _) = app.get_with(&stranger, &finish).await;
    assert_eq!(status, 410);
}

#[tokio::test]
async fn oversized_forms_are_refused_before_they_are_read_and_a_second_proof_is_kept() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", PW, "customer");
    let ann = app.browser();
    app.login(&ann, "ann@example.com", PW).await;
    let (_, form, _) = app.get_with(&ann, "/register").await;
    let multipart = reqwest::multipart::Form::new()
        .text("csrf_token", csrf_of(&form))
        .part(
            "proof",
            reqwest::multipart::Part::bytes(pdf(6 * 1024 * 1024))
                .file_name("huge.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let r = ann
        .post(format!("{}/register", app.address))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Not even a session: refused before the body is read.
    let r = app
        .browser()
        .post(format!("{}/register", app.address))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(stored_proofs(&app), 0);

    // Registered without a receipt, then again with one: the receipt is kept, not dropped.
    fill_in(&app, &ann, "SN1806", &[]).await;
    let (status, _, location) = fill_in(
        &app,
        &ann,
        "SN1806",
        &[("proof", "r.png", "image/png", png())],
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=already"));
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE proof_type = 'image/png'"),
        1
    );
    assert_eq!(stored_proofs(&app), 1);
}

#[tokio::test]
async fn proof_files_a_crash_left_without_a_row_are_swept_away() {
    let app = spawn_app().await;
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let dir = app.data_dir.join("proofs").join(&today);
    std::fs::create_dir_all(&dir).unwrap();
    let file = |n: u8, ext: &str| format!("{}.{ext}", format!("{n:x}").repeat(32));
    let (kept, orphan, fresh) = (file(1, "pdf"), file(2, "pdf"), file(3, "png"));
    let partial = format!(".{}.part", file(4, "pdf"));
    for name in [&kept, &orphan, &fresh, &partial] {
        std::fs::write(dir.join(name), b"%PDF-1.4 x").unwrap();
    }
    for name in [&kept, &orphan, &partial] {
        let status = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(dir.join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    app.create_user("ann@example.com", PW, "customer");
    app.sql(&format!(
        "INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase, contact_email, proof_file, proof_type)
         SELECT u.id, a.id, 'active', '2026-01-01', 'Shop', a.email, '{today}/{kept}', 'application/pdf'
         FROM units u, accounts a WHERE u.serial = 'SN1807' AND a.email = 'ann@example.com'"
    ));
    // Another process on the same database and data directory tidies up as it starts.
    let mut config = crate::helpers::test_config();
    config.database_url = Some(app.db_url.clone());
    config.data_dir = app.data_dir.clone();
    let pool = recall_portal::db::build_pool(&app.db_url, 2).unwrap();
    let other = recall_portal::web::Application::build(&config, pool)
        .await
        .unwrap();
    tokio::spawn(other.run_until_stopped());
    for _ in 0..100 {
        if !dir.join(&orphan).exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!dir.join(&orphan).exists(), "no row names it: removed");
    assert!(!dir.join(&partial).exists(), "half-written: removed");
    assert!(dir.join(&kept).exists(), "a registration names it");
    assert!(
        dir.join(&fresh).exists(),
        "an upload in progress is never touched"
    );
}

#[tokio::test]
async fn registering_counts_against_the_lookup_limit_of_an_address() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.lookup_rate_per_minute = 1;
        c.lookup_burst = 2;
    })
    .await;
    let c = app.browser();
    let mut statuses = Vec::new();
    for serial in ["SN1808", "SN1809", "SN1810"] {
        let (status, _, _) = fill_in(&app, &c, serial, &[]).await;
        statuses.push(status);
    }
    assert_eq!(statuses, [303, 303, 429]);
    assert_eq!(app.scalar("SELECT count(*) FROM registration_drafts"), 2);
}
