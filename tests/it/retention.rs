//! Retention on account deletion (PRODUCT.md §3, 16 CFR 1130.9): a deleted account's
//! registrations keep the safety contact, flagged, until 6 years after manufacture; everything
//! else personal is erased; the purge erases the contact once that time has passed.

use chrono::NaiveDate;
use recall_portal::db;
use recall_portal::jobs::reminders::{purge_retained_contacts, run_once};

use crate::helpers::{TestApp, q, spawn_app_with};
use crate::smtp::SmtpServer;

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

async fn customer(app: &TestApp, email: &str) -> reqwest::Client {
    app.create_user(email, PW, "customer");
    let c = app.browser();
    app.login(&c, email, PW).await;
    c
}

/// Registers a battery over HTTP with the reminder and marketing boxes ticked.
async fn register(app: &TestApp, c: &reqwest::Client, serial: &str) {
    let (status, body, _) = app
        .submit_multipart(
            c,
            &format!("/register?gtin={BATTERY}&serial={}", q(serial)),
            "/register",
            &[
                ("serial", serial),
                ("gtin", BATTERY),
                ("purchased_on", "2026-01-05"),
                ("place_of_purchase", "Corner Shop, 12 High Street"),
                ("reminder", "on"),
                ("marketing", "on"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
}

/// Waits (up to 20 s) for a mail to `to` whose text contains `marker`.
async fn mail_to(smtp: &SmtpServer, to: &str, marker: &str) -> String {
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

/// How many registrations of battery `serial` meet `condition` (SQL on `r`, `u`, `m`).
fn reg(app: &TestApp, serial: &str, condition: &str) -> i64 {
    app.scalar(&format!(
        "SELECT count(*) FROM registrations r JOIN units u ON u.id = r.unit_id
         JOIN product_models m ON m.id = u.model_id
         WHERE m.gtin = '{BATTERY}' AND u.serial = '{serial}' AND {condition}"
    ))
}

#[tokio::test]
async fn a_deleted_accounts_registrations_keep_only_the_flagged_safety_contact_until_the_purge() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(move |c| {
        c.run_worker = true;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let today = chrono::Utc::now().date_naive();
    let dee = customer(&app, "dee@example.com").await;
    let ann = customer(&app, "ann@example.com").await;
    // Dee owns three batteries, and asked for a fourth that Ann already owns.
    for serial in ["SN1101", "SN1102", "SN1104"] {
        register(&app, &dee, serial).await;
    }
    register(&app, &ann, "SN1103").await;
    register(&app, &dee, "SN1103").await;
    assert_eq!(
        reg(
            &app,
            "SN1103",
            "r.status = 'pending_transfer' AND r.contact_email = 'dee@example.com'"
        ),
        1
    );
    // Manufacture dates: SN1101 and SN1103 have none of their own (their lot's production
    // date counts), SN1102 was made on a leap day, SN1104 more than six years ago.
    app.sql("UPDATE units SET manufactured_on = NULL WHERE serial IN ('SN1101', 'SN1103')");
    app.sql("UPDATE lots SET production_date = '2025-03-31' WHERE code = 'ABC124'");
    app.sql("UPDATE units SET manufactured_on = '2024-02-29' WHERE serial = 'SN1102'");
    app.sql("UPDATE units SET manufactured_on = '2015-06-01' WHERE serial = 'SN1104'");
    // Proofs of purchase: one file on disk, one row naming a file already gone.
    let proofs = app.data_dir.join("proofs");
    std::fs::create_dir_all(proofs.join("2026-11-01")).unwrap();
    std::fs::write(
        proofs.join("2026-11-01/d0e0000000000000000000000000000a.pdf"),
        b"%PDF-1.4 receipt",
    )
    .unwrap();
    std::fs::write(
        proofs.join("2026-11-01/0e15e000000000000000000000000000.pdf"),
        b"%PDF-1.4 other",
    )
    .unwrap();
    app.sql("UPDATE registrations SET proof_file = '2026-11-01/d0e0000000000000000000000000000a.pdf', proof_type = 'application/pdf' WHERE unit_id = (SELECT id FROM units WHERE serial = 'SN1101' AND model_id = (SELECT id FROM product_models WHERE gtin = '09506000134352'))");
    app.sql("UPDATE registrations SET proof_file = '2026-11-01/90e00000000000000000000000000000.png', proof_type = 'image/png' WHERE unit_id = (SELECT id FROM units WHERE serial = 'SN1102' AND model_id = (SELECT id FROM product_models WHERE gtin = '09506000134352'))");
    // The data export still works before deletion.
    let (status, _, _) = app.get_with(&dee, "/account/export").await;
    assert_eq!(status, 200);

    let (status, _, location) = app
        .submit(
            &dee,
            "/account",
            "/account/delete",
            &[("delete_password", PW)],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?notice=deleted"))
    );
    let goodbye = mail_to(&smtp, "dee@example.com", "Your account was deleted").await;
    assert!(
        goodbye.contains("only to tell you about a safety recall"),
        "{goodbye}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE email = 'dee@example.com'"),
        0
    );

    // Every registration keeps the safety contact, flagged, with the retention date.
    let dees = "r.account_id = (SELECT id FROM accounts WHERE deleted_at IS NOT NULL)";
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM registrations r WHERE {dees} AND contact_email = 'dee@example.com' AND contact_retained"
        )),
        4
    );
    let retained = |serial: &str, until: NaiveDate, status: &str| {
        assert_eq!(
            reg(
                &app,
                serial,
                &format!("{dees} AND r.retained_until = '{until}' AND r.status = '{status}'")
            ),
            1,
            "{serial} kept until {until}, {status}"
        );
    };
    retained("SN1101", d(2031, 3, 31), "active");
    // 29 February 2024 + 6 years: 28 February 2030.
    retained("SN1102", d(2030, 2, 28), "active");
    // Made in 2015: its six years are over, but a record is never dropped on the spot.
    retained("SN1104", today, "active");
    // The pending request ended with the account (withdrawn; staff refused nothing).
    retained("SN1103", d(2031, 3, 31), "ended");
    assert_eq!(
        reg(
            &app,
            "SN1103",
            &format!(
                "{dees} AND r.decision_note = 'withdrawn: the account was deleted' AND r.ended_at IS NOT NULL"
            )
        ),
        1
    );
    assert_eq!(
        reg(
            &app,
            "SN1103",
            "r.status = 'active' AND r.contact_email = 'ann@example.com'"
        ),
        1,
        "Ann's registration is untouched"
    );
    // Everything else personal is gone.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM registrations r WHERE {dees} AND place_of_purchase = 'erased'
               AND NOT marketing_consent AND NOT reminder_wanted AND proof_file IS NULL AND proof_type IS NULL AND proof_bytes IS NULL"
        )),
        4
    );
    assert!(
        !proofs
            .join("2026-11-01/d0e0000000000000000000000000000a.pdf")
            .exists(),
        "the proof file is deleted"
    );
    assert!(
        proofs
            .join("2026-11-01/0e15e000000000000000000000000000.pdf")
            .exists(),
        "and no other"
    );

    // Staff see the retained contact flagged on the unit page; admins in the export.
    app.create_user("staff@example.com", PW, "staff");
    let staff = app.browser();
    app.login(&staff, "staff@example.com", PW).await;
    let unit = app.scalar(&format!(
        "SELECT u.id FROM units u JOIN product_models m ON m.id = u.model_id WHERE m.gtin = '{BATTERY}' AND u.serial = 'SN1102'"
    ));
    let (_, page, _) = app.get_with(&staff, &format!("/staff/units/{unit}")).await;
    assert!(
        page.contains("active · dee@example.com · <strong>account deleted: safety contact kept until 2030-02-28, for recall notices only</strong>"),
        "{page}"
    );
    assert!(!page.contains("Corner Shop"), "{page}");
    app.create_user("admin@example.com", PW, "admin");
    let admin = app.browser();
    app.login(&admin, "admin@example.com", PW).await;
    let model = app.scalar(&format!(
        "SELECT id FROM product_models WHERE gtin = '{BATTERY}'"
    ));
    let csv_path = format!("/admin/registrations.csv?model={model}");
    let (status, csv, _) = app.get_with(&admin, &csv_path).await;
    assert_eq!(status, 200);
    assert!(
        csv.contains(&format!(
            "{BATTERY},SN1102,ABC124,active,dee@example.com,true,2026-01-05,erased,"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "{BATTERY},SN1103,ABC124,active,ann@example.com,false,"
        )),
        "{csv}"
    );
    assert!(!csv.contains("pending_transfer"), "{csv}");

    // Nobody sees them as an account's products: a new account with the same address has none.
    let dee_again = customer(&app, "dee@example.com").await;
    let (_, mine, _) = app.get_with(&dee_again, "/account/products").await;
    assert!(
        mine.contains("You have not registered a product yet"),
        "{mine}"
    );
    // A new owner's claim still waits for staff; approving it does not mail the retained
    // contact, which is for safety notices only.
    let eve = customer(&app, "eve@example.com").await;
    register(&app, &eve, "SN1101").await;
    let eves = app.scalar("SELECT id FROM registrations WHERE contact_email = 'eve@example.com'");
    let (status, _, _) = app
        .submit(
            &staff,
            &format!("/staff/registrations/{eves}"),
            &format!("/staff/registrations/{eves}/decide"),
            &[("decision", "approve"), ("note", "receipt checked")],
        )
        .await;
    assert_eq!(status, 303);
    mail_to(&smtp, "eve@example.com", "is now registered to you").await;
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind IN ('ownership_ended', 'transfer_refused_owner')"),
        0
    );
    retained("SN1101", d(2031, 3, 31), "ended");
    // Nor does the reminder job, although the warranty ends soon.
    let pool = db::build_pool(&app.db_url, 2).unwrap();
    app.sql("UPDATE units SET sold_on = '2028-03-10' WHERE serial = 'SN1102'");
    assert_eq!(
        run_once(&pool, &app.address, d(2030, 3, 1)).await.unwrap(),
        0
    );

    // The purge: nothing before the retention ends, the contact erased after.
    assert_eq!(
        purge_retained_contacts(&pool, today).await.unwrap(),
        0,
        "kept through its last day"
    );
    assert_eq!(
        purge_retained_contacts(&pool, today.succ_opt().unwrap())
            .await
            .unwrap(),
        1,
        "SN1104, the day after"
    );
    assert_eq!(
        purge_retained_contacts(&pool, d(2030, 2, 28))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        purge_retained_contacts(&pool, d(2030, 3, 1)).await.unwrap(),
        1
    );
    assert_eq!(
        reg(
            &app,
            "SN1102",
            &format!(
                "{dees} AND r.status = 'ended' AND NOT r.contact_retained AND r.contact_email LIKE 'erased-registration-%@erased.invalid'"
            )
        ),
        1
    );
    let (_, csv, _) = app.get_with(&admin, &csv_path).await;
    assert!(!csv.contains("dee@"), "{csv}");
    assert!(!csv.contains("SN1102"), "no longer registered: {csv}");
    let (_, page, _) = app.get_with(&staff, &format!("/staff/units/{unit}")).await;
    assert!(!page.contains("dee@"), "{page}");
    // The unit is free: the next owner registers it straight away.
    let fay = customer(&app, "fay@example.com").await;
    register(&app, &fay, "SN1102").await;
    assert_eq!(
        reg(
            &app,
            "SN1102",
            "r.status = 'active' AND r.contact_email = 'fay@example.com'"
        ),
        1
    );
    assert_eq!(
        purge_retained_contacts(&pool, d(2031, 4, 1)).await.unwrap(),
        2
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE contact_email = 'dee@example.com' OR contact_retained"),
        0
    );
}

#[tokio::test]
async fn the_hourly_chores_forget_security_log_entries_past_their_retention() {
    // The app's own chores keep everything (0), so only the runs below decide.
    let app = spawn_app_with(|c| c.audit_retention_days = 0).await;
    app.sql(
        "INSERT INTO audit_log (occurred_at, event, email, ip) VALUES \
         (now() - interval '400 days', 'login_failure', 'old@example.com', '192.0.2.1'), \
         (now() - interval '366 days', 'login_failure', 'old@example.com', '192.0.2.2'), \
         (now() - interval '364 days', 'login_failure', 'kept@example.com', '192.0.2.3'), \
         (now() - interval '1 day', 'login_success', 'kept@example.com', '192.0.2.4')",
    );
    let pool = db::build_pool(&app.db_url, 2).unwrap();
    let count = |email: &str| {
        app.scalar(&format!(
            "SELECT count(*) AS v FROM audit_log WHERE email = '{email}'"
        ))
    };
    // 0 keeps everything.
    recall_portal::jobs::reminders::Schedule::new(app.address.clone(), 0)
        .run_if_due(&pool)
        .await;
    assert_eq!(
        (count("old@example.com"), count("kept@example.com")),
        (2, 2)
    );
    recall_portal::jobs::reminders::Schedule::new(app.address.clone(), 365)
        .run_if_due(&pool)
        .await;
    assert_eq!(
        (count("old@example.com"), count("kept@example.com")),
        (0, 2)
    );
}
