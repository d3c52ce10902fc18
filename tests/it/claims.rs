//! Warranty claims over real HTTP: filing with photos, every move of the state machine and every
//! outcome, what the customer sees (and never sees), mails for public updates through a real
//! SMTP server, replacement with inherited warranty, and a browser journey.

use chrono::{Days, Months};

use crate::helpers::{TestApp, app_with_mail, csrf_of, png, q, spawn_app, user};
use crate::smtp::SmtpServer;

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";

/// Registers `serial` to the customer (bought 100 days ago) and returns the registration id.
pub(crate) async fn registered(app: &TestApp, c: &reqwest::Client, serial: &str) -> i64 {
    let bought = (chrono::Utc::now().date_naive() - Days::new(100)).to_string();
    let (status, body, _) = app
        .submit_multipart(
            c,
            &format!("/register?gtin={BATTERY}&serial={}", q(serial)),
            "/register",
            &[
                ("serial", serial),
                ("gtin", BATTERY),
                ("purchased_on", &bought),
                ("place_of_purchase", "Shop"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    app.scalar(&format!(
        "SELECT r.id FROM registrations r JOIN units u ON u.id = r.unit_id WHERE u.serial = '{serial}' AND r.status IN ('active', 'pending_transfer') ORDER BY r.id DESC LIMIT 1"
    ))
}

async fn file(
    app: &TestApp,
    c: &reqwest::Client,
    registration: i64,
    photos: &[(&str, &str, &str, Vec<u8>)],
) -> (u16, String, Option<String>) {
    let noticed = (chrono::Utc::now().date_naive() - Days::new(2)).to_string();
    app.submit_multipart(
        c,
        &format!("/account/products/{registration}/claim"),
        &format!("/account/products/{registration}/claim"),
        &[
            ("category", "battery"),
            (
                "description",
                "It stops after a minute <b>and</b> gets warm.",
            ),
            ("noticed_on", &noticed),
            ("contact", "email"),
        ],
        photos,
    )
    .await
}

/// Files a claim and returns its id.
pub(crate) async fn filed(app: &TestApp, c: &reqwest::Client, registration: i64) -> i64 {
    let (status, body, location) = file(app, c, registration, &[]).await;
    assert_eq!(status, 303, "{body}");
    location
        .unwrap()
        .trim_start_matches("/account/claims/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Staff move claim `id` to `to` with `extra` fields; returns the redirect.
async fn staff_move(
    app: &TestApp,
    staff: &reqwest::Client,
    id: i64,
    to: &str,
    extra: &[(&str, &str)],
) -> String {
    let (status, page, _) = app.get_with(staff, &format!("/staff/claims/{id}")).await;
    assert_eq!(status, 200, "{page}");
    let seen = page
        .split("name=\"seen\" value=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no move offered in {page}"))
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut form = vec![
        ("csrf_token", csrf_of(&page)),
        ("seen", seen),
        ("to", to.to_owned()),
    ];
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, location) = app
        .post_with(staff, &format!("/staff/claims/{id}/move"), &form)
        .await;
    assert_eq!(status, 303);
    location.unwrap()
}

async fn staff_post(
    app: &TestApp,
    staff: &reqwest::Client,
    id: i64,
    action: &str,
    form: &[(&str, &str)],
) -> String {
    let (status, _, location) = app
        .submit(
            staff,
            &format!("/staff/claims/{id}"),
            &format!("/staff/claims/{id}/{action}"),
            form,
        )
        .await;
    assert_eq!(status, 303);
    location.unwrap()
}

fn status_of(app: &TestApp, id: i64) -> String {
    app.text(&format!("SELECT status FROM claims WHERE id = {id}"))
}

/// Mails to `to` with `subject` received so far.
fn received(smtp: &SmtpServer, to: &str, subject: &str) -> Vec<String> {
    smtp.messages()
        .into_iter()
        .map(|m| crate::smtp::decode_qp(&m))
        .filter(|m| m.to_lowercase().contains(&format!("to: {to}")) && m.contains(subject))
        .collect()
}

async fn wait_for(smtp: &SmtpServer, to: &str, subject: &str, count: usize) -> Vec<String> {
    for _ in 0..400 {
        let got = received(smtp, to, subject);
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} mails to {to} with {subject:?}");
}

#[tokio::test]
async fn a_claim_goes_from_filing_to_a_repair_and_the_customer_sees_every_public_step() {
    let (app, smtp) = app_with_mail().await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let staff = user(&app, "staff@example.com", "staff").await;
    let reg = registered(&app, &ann, "SN1700").await;

    // Filing, with a photo; the form is on the product's page.
    let (_, product, _) = app
        .get_with(&ann, &format!("/account/products/{reg}"))
        .await;
    assert!(
        product.contains(&format!("/account/products/{reg}/claim")),
        "{product}"
    );
    let (status, body, location) = file(
        &app,
        &ann,
        reg,
        &[("photos", "fault.png", "image/png", png())],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let (_, page, _) = app.get_with(&ann, &location.unwrap()).await;
    let id = app.scalar("SELECT id FROM claims");
    let year = chrono::Utc::now().format("%Y");
    let number = app.text("SELECT number FROM claims");
    assert!(
        number.starts_with(&format!("C-{year}-")) && number.len() == 13,
        "{number}"
    );
    assert!(
        page.contains(&format!("Claim {number}")) && page.contains("Received"),
        "{page}"
    );
    assert!(
        page.contains("It stops after a minute &#60;b&#62;and&#60;/b&#62;"),
        "escaped"
    );
    assert!(page.contains(&format!("/account/claims/{id}/photos/")));
    wait_for(
        &smtp,
        "ann@example.com",
        &format!("Claim {number} received"),
        1,
    )
    .await;
    assert_eq!(
        app.scalar("SELECT count(*) FROM claims WHERE NOT flag_never_sold AND NOT flag_not_owner AND NOT flag_out_of_warranty"),
        0,
        "SN1700 was never recorded as sold: flagged"
    );

    // Staff: assess, estimate, approve, ask for the unit with an RMA, repair, send back, close.
    assert!(
        staff_move(&app, &staff, id, "triaged", &[])
            .await
            .ends_with("notice=moved")
    );
    let eta = (chrono::Utc::now().date_naive() + Days::new(10)).to_string();
    assert!(
        staff_post(
            &app,
            &staff,
            id,
            "eta",
            &[("eta", &eta), ("note", "parts are on order")]
        )
        .await
        .ends_with("notice=eta")
    );
    staff_post(
        &app,
        &staff,
        id,
        "note",
        &[
            ("text", "Customer sounded angry; be kind"),
            ("visibility", "internal"),
        ],
    )
    .await;
    staff_move(&app, &staff, id, "approved", &[]).await;
    staff_post(
        &app,
        &staff,
        id,
        "rma",
        &[
            ("rma", "RMA-77"),
            (
                "instructions",
                "Pack it in its box and post it to our service centre.",
            ),
        ],
    )
    .await;
    staff_move(&app, &staff, id, "awaiting_unit", &[]).await;
    staff_move(&app, &staff, id, "in_repair", &[]).await;
    staff_post(
        &app,
        &staff,
        id,
        "note",
        &[
            ("text", "The new cell is fitted; testing it now."),
            ("visibility", "public"),
        ],
    )
    .await;
    // Sending it back needs the work done, which the customer reads.
    assert!(
        staff_move(&app, &staff, id, "shipped_back", &[])
            .await
            .ends_with("error=note")
    );
    assert_eq!(status_of(&app, id), "in_repair");
    staff_move(
        &app,
        &staff,
        id,
        "shipped_back",
        &[("note", "Replaced the cell pack (part 18-550).")],
    )
    .await;

    let (_, page, _) = app.get_with(&ann, &format!("/account/claims/{id}")).await;
    let long_eta = chrono::NaiveDate::parse_from_str(&eta, "%Y-%m-%d")
        .unwrap()
        .format("%-d %B %Y")
        .to_string();
    for seen in [
        "Repaired and sent back",
        "Being assessed",
        &format!("Estimated completion: {long_eta}"),
        "parts are on order",
        "RMA-77",
        "Pack it in its box",
        "The new cell is fitted",
        "Replaced the cell pack (part 18-550).",
    ] {
        assert!(page.contains(seen), "{seen:?} in {page}");
    }
    assert!(
        !page.contains("be kind"),
        "internal notes never reach the customer"
    );
    assert!(!page.contains("Internal"));
    staff_move(&app, &staff, id, "closed", &[]).await;
    assert_eq!(status_of(&app, id), "closed");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM claim_events WHERE claim_id = {id} AND kind = 'status'"
        )),
        6
    );
    // Public updates by mail: triaged, eta, approved, rma, awaiting, in repair, the update,
    // shipped back, closed: 9; the internal note none.
    let mails = wait_for(
        &smtp,
        "ann@example.com",
        &format!("Update on your claim {number}"),
        9,
    )
    .await;
    assert!(mails.iter().all(|m| !m.contains("be kind")));
    assert!(mails.iter().any(|m| m.contains("Replaced the cell pack")));
    assert!(
        mails
            .iter()
            .any(|m| m.contains(&format!("We expect to be done by {long_eta}")))
    );
    // Closed: no forms any more, and a late post changes nothing.
    let (_, account, _) = app.get_with(&staff, "/account").await;
    let (_, _, location) = app
        .post_with(
            &staff,
            &format!("/staff/claims/{id}/note"),
            &[
                ("csrf_token", &csrf_of(&account)),
                ("text", "late"),
                ("visibility", "public"),
            ],
        )
        .await;
    assert!(location.unwrap().ends_with("error=final"));
}

#[tokio::test]
async fn every_other_path_rejection_refund_questions_and_cancelling() {
    let app = spawn_app().await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let staff = user(&app, "staff@example.com", "staff").await;
    let reg = registered(&app, &ann, "SN1701").await;

    // Rejected, with the reason the customer reads; then closed.
    let a = filed(&app, &ann, reg).await;
    staff_move(&app, &staff, a, "triaged", &[]).await;
    assert!(
        staff_move(&app, &staff, a, "rejected", &[])
            .await
            .ends_with("error=note")
    );
    staff_move(
        &app,
        &staff,
        a,
        "rejected",
        &[("note", "The damage was caused by a fall.")],
    )
    .await;
    let (_, page, _) = app.get_with(&ann, &format!("/account/claims/{a}")).await;
    assert!(
        page.contains("Not covered")
            && page.contains("Why it is not covered")
            && page.contains("caused by a fall"),
        "{page}"
    );
    assert!(
        !page.contains("Add information") && !page.contains("we give an estimate"),
        "decided: {page}"
    );
    staff_move(&app, &staff, a, "closed", &[]).await;

    // Refunded straight after approval.
    let b = filed(&app, &ann, reg).await;
    // While one waits for an outcome, a second report goes to it.
    let (_, _, location) = app
        .get_with(&ann, &format!("/account/products/{reg}/claim"))
        .await;
    assert_eq!(location.unwrap(), format!("/account/claims/{b}?error=open"));
    staff_move(&app, &staff, b, "triaged", &[]).await;
    staff_move(&app, &staff, b, "approved", &[]).await;
    staff_move(
        &app,
        &staff,
        b,
        "refunded",
        &[("note", "EUR 89 back to your card")],
    )
    .await;
    assert_eq!(status_of(&app, b), "refunded");

    // A question while assessed: the customer's answer sends it back to staff, as assessed.
    let c = filed(&app, &ann, reg).await;
    staff_move(&app, &staff, c, "triaged", &[]).await;
    staff_move(
        &app,
        &staff,
        c,
        "info_requested",
        &[("note", "Which charger do you use?")],
    )
    .await;
    let (_, page, _) = app.get_with(&ann, &format!("/account/claims/{c}")).await;
    assert!(
        page.contains("Which charger do you use?") && page.contains("Answer our question"),
        "{page}"
    );
    assert!(!page.contains("Cancel my claim"), "assessed already");
    let (status, _, location) = app
        .submit_multipart(
            &ann,
            &format!("/account/claims/{c}"),
            &format!("/account/claims/{c}/info"),
            &[("text", "The one in the box.")],
            &[("photos", "charger.png", "image/png", png())],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=info"));
    assert_eq!(status_of(&app, c), "triaged");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM claim_photos WHERE claim_id = {c}"
        )),
        1
    );
    let (_, staff_page, _) = app.get_with(&staff, &format!("/staff/claims/{c}")).await;
    assert!(
        staff_page.contains("The one in the box.")
            && staff_page.contains("Information from the customer")
    );
    // Assessed: too late to cancel.
    let (_, page, _) = app.get_with(&ann, &format!("/account/claims/{c}")).await;
    let (status, _, location) = app
        .post_with(
            &ann,
            &format!("/account/claims/{c}/cancel"),
            &[("csrf_token", &csrf_of(&page)), ("seen", "triaged")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("error=cancel"));
    assert_eq!(status_of(&app, c), "triaged");
    staff_move(&app, &staff, c, "rejected", &[("note", "Wrong charger")]).await;

    // A question before assessment: the answer returns it unassessed, so it can still be
    // cancelled; then it is.
    let d = filed(&app, &ann, reg).await;
    staff_move(
        &app,
        &staff,
        d,
        "info_requested",
        &[("note", "Is it the original battery?")],
    )
    .await;
    app.submit_multipart(
        &ann,
        &format!("/account/claims/{d}"),
        &format!("/account/claims/{d}/info"),
        &[("text", "Yes.")],
        &[],
    )
    .await;
    assert_eq!(status_of(&app, d), "submitted");
    let (status, _, location) = app
        .submit(
            &ann,
            &format!("/account/claims/{d}"),
            &format!("/account/claims/{d}/cancel"),
            &[("seen", "submitted")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("notice=cancelled"));
    assert_eq!(status_of(&app, d), "cancelled");

    // A move the state machine forbids changes nothing; so does a stale page.
    let e = filed(&app, &ann, reg).await;
    let location = staff_move(&app, &staff, e, "approved", &[]).await;
    assert!(location.ends_with("error=move&to=approved"), "{location}");
    let (_, page, _) = app.get_with(&staff, &location).await;
    assert!(
        page.contains(
            "cannot become “approved”; it can become: we need more information, being assessed"
        ),
        "{page}"
    );
    let (_, page, _) = app.get_with(&staff, &format!("/staff/claims/{e}")).await;
    let (_, _, location) = app
        .post_with(
            &staff,
            &format!("/staff/claims/{e}/move"),
            &[
                ("csrf_token", &csrf_of(&page)),
                ("seen", "triaged"),
                ("to", "approved"),
            ],
        )
        .await;
    assert!(location.unwrap().ends_with("error=changed"));
    let (_, page, _) = app.get_with(&staff, &format!("/staff/claims/{e}")).await;
    let (_, _, location) = app
        .post_with(
            &staff,
            &format!("/staff/claims/{e}/move"),
            &[
                ("csrf_token", &csrf_of(&page)),
                ("seen", "submitted"),
                ("to", "flying"),
            ],
        )
        .await;
    assert!(location.unwrap().ends_with("error=move"));
    assert_eq!(status_of(&app, e), "submitted");
    // Every move left its event; the refused ones none.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM claim_events WHERE claim_id = {e}"
        )),
        1
    );
}

#[tokio::test]
async fn a_replacement_takes_over_the_registration_and_the_rest_of_the_warranty() {
    let app = spawn_app().await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let staff = user(&app, "staff@example.com", "staff").await;
    let reg = registered(&app, &ann, "SN1702").await;
    app.sql("UPDATE units SET status = 'in_stock', sold_on = NULL WHERE serial IN ('SN1990', 'SN1991', 'SN1992')");
    // The replacement was made ten days ago: its own term would not even have started.
    app.sql("UPDATE units SET manufactured_on = current_date - 10 WHERE serial = 'SN1990'");
    // Shipped to a shop: not ours to give.
    app.sql("UPDATE units SET status = 'shipped' WHERE serial = 'SN1992'");
    let id = filed(&app, &ann, reg).await;
    staff_move(&app, &staff, id, "triaged", &[]).await;
    staff_move(&app, &staff, id, "approved", &[]).await;
    // A unit that is someone's already cannot be the replacement; nor an unknown serial.
    let bob = user(&app, "bob@example.com", "customer").await;
    registered(&app, &bob, "SN1991").await;
    assert!(
        staff_move(
            &app,
            &staff,
            id,
            "replaced",
            &[("serial", "SN1991"), ("gtin", BATTERY)]
        )
        .await
        .ends_with("error=replacement&why=not_in_stock")
    );
    for (serial, why) in [("SN1992", "not_in_stock"), ("SN1702", "same")] {
        let location = staff_move(
            &app,
            &staff,
            id,
            "replaced",
            &[("serial", serial), ("gtin", BATTERY)],
        )
        .await;
        assert!(
            location.ends_with(&format!("error=replacement&why={why}")),
            "{location}"
        );
    }
    assert!(
        staff_move(
            &app,
            &staff,
            id,
            "replaced",
            &[("serial", "NOPE999"), ("gtin", BATTERY)]
        )
        .await
        .ends_with("error=unknown-serial")
    );
    assert_eq!(status_of(&app, id), "approved");
    staff_move(
        &app,
        &staff,
        id,
        "replaced",
        &[("serial", "SN1990"), ("gtin", BATTERY)],
    )
    .await;

    // The old unit's warranty: 24 months from the purchase 100 days ago.
    let bought = chrono::Utc::now().date_naive() - Days::new(100);
    let ends = (bought + Months::new(24)).pred_opt().unwrap();
    let long = ends.format("%-d %B %Y").to_string();
    assert_eq!(
        app.text("SELECT status FROM units WHERE serial = 'SN1702'"),
        "replaced"
    );
    assert_eq!(
        app.text("SELECT inherited_end::text FROM units WHERE serial = 'SN1990'"),
        ends.to_string()
    );
    let (_, mine, _) = app.get_with(&ann, "/account/products").await;
    assert!(
        mine.contains("SN1990") && !mine.contains("SN1702"),
        "{mine}"
    );
    let (_, page) = app
        .page(&format!("/check?serial=SN1990&gtin={BATTERY}"))
        .await;
    assert!(
        page.contains(&format!("Under warranty until {long}")),
        "{page}"
    );
    let (_, claim, _) = app.get_with(&ann, &format!("/account/claims/{id}")).await;
    assert!(
        claim.contains("Your replacement") && claim.contains("SN1990"),
        "{claim}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events e JOIN units u ON u.id = e.unit_id WHERE u.serial IN ('SN1702', 'SN1990') AND e.actor LIKE 'claim:%'"),
        2
    );
}

#[tokio::test]
async fn customers_see_only_their_own_claims_and_never_staff_actions() {
    let app = spawn_app().await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let bob = user(&app, "bob@example.com", "customer").await;
    let reg = registered(&app, &ann, "SN1703").await;
    let (status, _, _) = file(&app, &ann, reg, &[("photos", "a.png", "image/png", png())]).await;
    assert_eq!(status, 303);
    let id = app.scalar("SELECT id FROM claims");
    let photo = app.scalar("SELECT id FROM claim_photos");
    for path in [
        format!("/account/claims/{id}"),
        format!("/account/claims/{id}/photos/{photo}"),
        format!("/account/products/{reg}/claim"),
    ] {
        let (status, _, _) = app.get_with(&bob, &path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, page, _) = app.get_with(&bob, "/account/claims").await;
    assert!(page.contains("You have no warranty claim"), "{page}");
    // Bob cannot file on Ann's product, answer or cancel her claim.
    let (_, form, _) = app.get_with(&bob, "/register").await;
    let multipart = reqwest::multipart::Form::new()
        .text("csrf_token", csrf_of(&form))
        .text("category", "battery")
        .text("description", "mine now")
        .text("noticed_on", "2026-11-01")
        .text("contact", "email");
    let r = bob
        .post(format!("{}/account/products/{reg}/claim", app.address))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let multipart = reqwest::multipart::Form::new()
        .text("csrf_token", csrf_of(&form))
        .text("text", "hello");
    let r = bob
        .post(format!("{}/account/claims/{id}/info", app.address))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let (status, _, _) = app
        .post_with(
            &bob,
            &format!("/account/claims/{id}/cancel"),
            &[("csrf_token", &csrf_of(&form)), ("seen", "submitted")],
        )
        .await;
    assert_eq!(status, 404);
    // Staff pages and actions are refused to customers.
    for path in [
        format!("/staff/claims/{id}"),
        format!("/staff/claims/{id}/photos/{photo}"),
    ] {
        let (status, _, _) = app.get_with(&ann, &path).await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, _, _) = app
        .post_with(
            &ann,
            &format!("/staff/claims/{id}/move"),
            &[
                ("csrf_token", &csrf_of(&form)),
                ("seen", "submitted"),
                ("to", "triaged"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(status_of(&app, id), "submitted");
    // Her own photo: shown inline as the type it was judged to be.
    let r = ann
        .get(format!(
            "{}/account/claims/{id}/photos/{photo}",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["cache-control"], "private, no-store");
}

#[tokio::test]
async fn a_claim_form_that_is_wrong_says_why_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let reg = registered(&app, &ann, "SN1704").await;
    let future = (chrono::Utc::now().date_naive() + Days::new(3)).to_string();
    let page = format!("/account/products/{reg}/claim");
    let (status, body, _) = app
        .submit_multipart(
            &ann,
            &page,
            &page,
            &[
                ("category", "made-up"),
                ("description", "Kept text"),
                ("noticed_on", &future),
                ("contact", "phone"),
                ("phone", "call me"),
            ],
            &[(
                "photos",
                "x.png",
                "image/png",
                b"<html>not a png</html>".to_vec(),
            )],
        )
        .await;
    assert_eq!(status, 422);
    for expected in [
        "Choose what is wrong",
        "The date cannot be in the future",
        "Enter a phone number",
        "is not a JPEG or PNG photo",
        "Kept text",
        "value=\"call me\"",
    ] {
        assert!(body.contains(expected), "{expected:?} in {body}");
    }
    let six: Vec<(&str, &str, &str, Vec<u8>)> = (0..6)
        .map(|_| ("photos", "p.png", "image/png", png()))
        .collect();
    let (status, body, _) = file(&app, &ann, reg, &six).await;
    assert_eq!(status, 422);
    assert!(body.contains("at most 5 photos"), "{body}");
    assert_eq!(app.scalar("SELECT count(*) FROM claims"), 0);
    let stored = std::fs::read_dir(app.data_dir.join("claim-photos"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "nothing refused is kept");
}

/// A customer files a claim with a photo in Chromium at phone size; staff set an estimate; the
/// customer sees it.
#[tokio::test]
async fn in_a_browser_a_customer_files_with_a_photo_and_sees_the_estimate_staff_give() {
    use fantoccini::Locator;
    let app = spawn_app().await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let staff = user(&app, "staff@example.com", "staff").await;
    let reg = registered(&app, &ann, "SN1705").await;
    let Some((client, _driver, _profile)) = crate::browser::browser().await else {
        return;
    };
    let photo = std::env::temp_dir().join(format!("claim-photo-{}.png", std::process::id()));
    std::fs::write(&photo, png()).unwrap();
    let noticed = (chrono::Utc::now().date_naive() - Days::new(1)).to_string();
    let eta = (chrono::Utc::now().date_naive() + Days::new(12)).to_string();
    let result = async {
        client.goto(&format!("{}/login", app.address)).await?;
        client
            .find(Locator::Id("email"))
            .await?
            .send_keys("ann@example.com")
            .await?;
        client
            .find(Locator::Id("password"))
            .await?
            .send_keys(PW)
            .await?;
        client
            .find(Locator::Css("main form button[type=submit]"))
            .await?
            .click()
            .await?;
        client.wait().for_element(Locator::Id("acct-title")).await?;
        client
            .goto(&format!("{}/account/products/{reg}", app.address))
            .await?;
        client
            .find(Locator::LinkText("Claim warranty"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .for_element(Locator::Css("input[name=category][value=battery]"))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Id("description"))
            .await?
            .send_keys("The battery dies after a minute.")
            .await?;
        client
            .execute(
                "document.getElementById('noticed_on').value = arguments[0];",
                vec![serde_json::json!(noticed)],
            )
            .await?;
        client
            .find(Locator::Id("photos"))
            .await?
            .send_keys(&photo.display().to_string())
            .await?;
        client
            .find(Locator::Css("main form button[type=submit]"))
            .await?
            .click()
            .await?;
        let notice = client
            .wait()
            .for_element(Locator::Css("p.notice.ok"))
            .await?
            .text()
            .await?;
        let url = client.current_url().await?;
        let before = client.find(Locator::Id("claim-eta")).await?.text().await?;
        let photos = client.find_all(Locator::Css("ul.photos img")).await?.len();
        Ok::<_, fantoccini::error::CmdError>((notice, url, before, photos))
    }
    .await;
    let (notice, url, before, photos) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = client.close().await;
            panic!("browser journey: {e}");
        }
    };
    assert!(notice.starts_with("Your claim is filed"), "{notice}");
    assert_eq!(photos, 1);
    assert!(
        before.contains("we give an estimate once we have assessed"),
        "{before}"
    );
    let id: i64 = url
        .path()
        .trim_start_matches("/account/claims/")
        .parse()
        .unwrap();
    staff_move(&app, &staff, id, "triaged", &[]).await;
    staff_post(&app, &staff, id, "eta", &[("eta", &eta), ("note", "")]).await;
    let after = async {
        client.refresh().await?;
        client.find(Locator::Id("claim-eta")).await?.text().await
    }
    .await;
    let _ = client.close().await;
    let _ = std::fs::remove_file(&photo);
    let after = after.expect("reload");
    let long = chrono::NaiveDate::parse_from_str(&eta, "%Y-%m-%d")
        .unwrap()
        .format("%-d %B %Y")
        .to_string();
    assert_eq!(after, long);
    let _ = ann;
}

#[tokio::test]
async fn a_deleted_account_leaves_its_claims_without_personal_data_and_in_the_export_before() {
    let app = spawn_app().await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let reg = registered(&app, &ann, "SN1706").await;
    let (status, _, _) = file(&app, &ann, reg, &[("photos", "a.png", "image/png", png())]).await;
    assert_eq!(status, 303);
    let (_, export, _) = app.get_with(&ann, "/account/export").await;
    let export: serde_json::Value = serde_json::from_str(&export).unwrap();
    assert_eq!(export["warranty_claims"][0]["serial"], "SN1706");
    assert_eq!(export["registered_products"][0]["serial"], "SN1706");
    let count_files = || {
        std::fs::read_dir(app.data_dir.join("claim-photos"))
            .map(|days| {
                days.filter_map(Result::ok)
                    .map(|d| std::fs::read_dir(d.path()).map(|f| f.count()).unwrap_or(0))
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    assert_eq!(count_files(), 1);
    let (status, _, _) = app
        .submit(
            &ann,
            "/account",
            "/account/delete",
            &[("delete_password", PW)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar("SELECT count(*) FROM claims WHERE status = 'cancelled' AND contact_phone IS NULL AND description = '(erased with the account)'"),
        1
    );
    assert_eq!(app.scalar("SELECT count(*) FROM claim_photos"), 0);
    assert_eq!(count_files(), 0, "the photo file is gone too");
}
