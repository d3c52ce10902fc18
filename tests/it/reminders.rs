//! Warranty reminders: a mail 30 days before the warranty ends, only to owners who asked, sent
//! once through the outbox, by any number of processes at the same time.

use chrono::{Days, Months, NaiveDate};
use diesel_async::AsyncConnection;
use recall_portal::db;
use recall_portal::domain::warranty::end_date;
use recall_portal::jobs::reminders::run_once;

use crate::helpers::{TestApp, app_with_mail, q};
use crate::smtp::SmtpServer;

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";
const DRILL: &str = "09521234543213";
const SUBJECT: &str = "Subject: Your warranty ends on";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// Signs up `email` (made directly in the database) and registers `serial` over HTTP, with the
/// reminder box ticked or not.
async fn registers(app: &TestApp, email: &str, gtin: &str, serial: &str, reminder: bool) {
    app.create_user(email, PW, "customer");
    let c = app.browser();
    app.login(&c, email, PW).await;
    let mut form = vec![
        ("serial", serial),
        ("gtin", gtin),
        ("purchased_on", "2026-01-05"),
        ("place_of_purchase", "Hardware Store"),
    ];
    if reminder {
        form.push(("reminder", "on"));
    }
    let (status, body, _) = app
        .submit_multipart(
            &c,
            &format!("/register?gtin={gtin}&serial={}", q(serial)),
            "/register",
            &form,
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
}

/// The sale date that makes a `months` warranty end on `ends` (checked with the engine).
fn sold_for_end(ends: NaiveDate, months: u32) -> NaiveDate {
    let sold = ends
        .succ_opt()
        .unwrap()
        .checked_sub_months(Months::new(months))
        .unwrap();
    assert_eq!(
        end_date(sold, months),
        Some(ends),
        "{sold} + {months} months"
    );
    sold
}

/// The reminder mails received, decoded.
fn reminders_received(smtp: &SmtpServer) -> Vec<String> {
    smtp.messages()
        .into_iter()
        .map(|m| crate::smtp::decode_qp(&m))
        .filter(|m| m.contains(SUBJECT))
        .collect()
}

/// Waits until the outbox has sent everything queued (the worker runs in the app).
async fn outbox_drained(app: &TestApp) {
    for _ in 0..400 {
        if app.scalar("SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the outbox did not drain");
}

fn to_of(mail: &str) -> String {
    mail.lines()
        .find_map(|l| l.strip_prefix("To: "))
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

#[tokio::test]
async fn exactly_the_owners_who_asked_and_whose_warranty_ends_within_30_days_get_one_mail() {
    let (app, smtp) = app_with_mail().await;
    // The day the job runs. Far from the real today, so the app's own hourly run (which runs
    // with the real date) can never pick these up.
    let today = d(2030, 1, 28);
    let plus = |n: u64| today.checked_add_days(Days::new(n)).unwrap();
    // (email, serial, reminder ticked)
    let owners = [
        ("in10@example.com", "SN1201", true),
        ("in30@example.com", "SN1202", true),
        ("leap@example.com", "SN1203", true),
        ("in31@example.com", "SN1204", true),
        ("in45@example.com", "SN1205", true),
        ("ended@example.com", "SN1206", true),
        ("nope@example.com", "SN1207", false),
        ("extended@example.com", "SN1208", true),
        ("scrapped@example.com", "SN1209", true),
    ];
    for (email, serial, reminder) in owners {
        registers(&app, email, BATTERY, serial, reminder).await;
    }
    // A drill whose lot got two extra months.
    registers(&app, "lot@example.com", DRILL, "SN0042", true).await;

    // Warranty ends, set through the sale date (which the engine prefers to the purchase date).
    let sold = |serial: &str, on: NaiveDate| {
        app.sql(&format!(
            "UPDATE units SET sold_on = '{on}' WHERE serial = '{serial}' AND model_id = (SELECT id FROM product_models WHERE gtin = '{BATTERY}')"
        ))
    };
    sold("SN1201", sold_for_end(plus(10), 24));
    sold("SN1202", sold_for_end(plus(30), 24));
    // Sold on a leap day: 29 February 2028 + 24 months is 28 February 2030 (clamped), so the
    // warranty ends on 27 February, exactly 30 days after `today`. Counting from the day before
    // the start (28 February 2028 + 24 months − 0) would end a day later and miss it.
    sold("SN1203", d(2028, 2, 29));
    assert_eq!(end_date(d(2028, 2, 29), 24), Some(plus(30)));
    sold("SN1204", sold_for_end(plus(31), 24));
    sold("SN1205", sold_for_end(plus(45), 24));
    sold("SN1206", sold_for_end(today.pred_opt().unwrap(), 24));
    sold("SN1207", sold_for_end(plus(10), 24));
    // Long expired by its term, but an admin extended it to a date 20 days ahead.
    sold("SN1208", d(2025, 1, 10));
    app.sql(&format!(
        "UPDATE units SET warranty_extended_to = '{}' WHERE serial = 'SN1208'",
        plus(20)
    ));
    // Would be due, but the unit was scrapped.
    sold("SN1209", sold_for_end(plus(5), 24));
    app.sql("UPDATE units SET status = 'scrapped' WHERE serial = 'SN1209'");
    // The drill: 36 months plus its lot's 2 extra months end 5 days ahead.
    app.sql(&format!(
        "UPDATE units SET sold_on = '{}' WHERE serial = 'SN0042' AND model_id = (SELECT id FROM product_models WHERE gtin = '{DRILL}')",
        sold_for_end(plus(5), 38)
    ));
    app.sql("UPDATE lots SET warranty_extra_months = 2 WHERE code = 'D18-2201'");

    let pool = db::build_pool(&app.db_url, 2).unwrap();
    let sent = run_once(&pool, &app.address, today).await.unwrap();
    assert_eq!(sent, 5);
    outbox_drained(&app).await;
    let mut got: Vec<String> = reminders_received(&smtp).iter().map(|m| to_of(m)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "extended@example.com",
            "in10@example.com",
            "in30@example.com",
            "leap@example.com",
            "lot@example.com"
        ]
    );
    let leap = reminders_received(&smtp)
        .into_iter()
        .find(|m| to_of(m) == "leap@example.com")
        .unwrap();
    let id = app.scalar(
        "SELECT r.id FROM registrations r JOIN units u ON u.id = r.unit_id WHERE u.serial = 'SN1203'",
    );
    assert!(
        leap.contains("Subject: Your warranty ends on 27 February 2030"),
        "{leap}"
    );
    assert!(
        leap.contains(
            "The warranty of your Arden Tools PowerCell 18V 5.0 Ah battery pack with serial number SN1203 ends on 27 February 2030."
        ),
        "{leap}"
    );
    assert!(
        leap.contains(&format!("{}/account/products/{id}", app.address)),
        "{leap}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM registrations WHERE reminder_sent_at IS NOT NULL"),
        5
    );

    // Again the same day: nothing more.
    assert_eq!(run_once(&pool, &app.address, today).await.unwrap(), 0);
    // The next day the one ending in 31 days is due; the others were sent once already.
    assert_eq!(run_once(&pool, &app.address, plus(1)).await.unwrap(), 1);
    assert_eq!(run_once(&pool, &app.address, plus(1)).await.unwrap(), 0);
    // Fifteen days on, the one ending in 45 days; nothing for the owner who did not ask.
    assert_eq!(run_once(&pool, &app.address, plus(15)).await.unwrap(), 1);
    assert_eq!(run_once(&pool, &app.address, plus(60)).await.unwrap(), 0);
    outbox_drained(&app).await;
    let mut got: Vec<String> = reminders_received(&smtp).iter().map(|m| to_of(m)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "extended@example.com",
            "in10@example.com",
            "in30@example.com",
            "in31@example.com",
            "in45@example.com",
            "leap@example.com",
            "lot@example.com"
        ],
        "one mail each, never to who did not ask, whose warranty had ended or whose unit is scrapped"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'warranty_reminder'"),
        7
    );
}

/// Starts another portal process on the same database (no mail worker of its own): its
/// housekeeping runs the reminders as soon as it starts.
async fn another_process(db_url: &str) {
    let mut config = crate::helpers::test_config();
    config.database_url = Some(db_url.to_owned());
    let pool = db::build_pool(db_url, 2).unwrap();
    let app = recall_portal::web::Application::build(&config, pool)
        .await
        .unwrap();
    tokio::spawn(app.run_until_stopped());
}

#[tokio::test]
async fn the_portal_sends_due_reminders_by_itself_once_however_many_processes_run() {
    let (app, smtp) = app_with_mail().await;
    let today = chrono::Utc::now().date_naive();
    registers(&app, "ivy@example.com", BATTERY, "SN1301", true).await;
    app.sql(&format!(
        "UPDATE units SET sold_on = '{}' WHERE serial = 'SN1301'",
        sold_for_end(today.checked_add_days(Days::new(12)).unwrap(), 24)
    ));
    // Three more processes start at once; each runs the reminders right away.
    tokio::join!(
        another_process(&app.db_url),
        another_process(&app.db_url),
        another_process(&app.db_url)
    );
    let mut mail = None;
    for _ in 0..400 {
        mail = reminders_received(&smtp).pop();
        if mail.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mail = mail.expect("a reminder arrives");
    assert!(mail.contains("serial number SN1301"), "{mail}");
    // Give the other processes time to have run too.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    outbox_drained(&app).await;
    assert_eq!(reminders_received(&smtp).len(), 1);
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE kind = 'warranty_reminder'"),
        1
    );
}

#[tokio::test]
async fn concurrent_runs_over_many_batches_queue_each_reminder_exactly_once() {
    let (url, _) = crate::helpers::fresh_database();
    let today = d(2031, 5, 15);
    let mut conn = diesel_async::AsyncPgConnection::establish(&url)
        .await
        .unwrap();
    use diesel_async::RunQueryDsl;
    diesel::sql_query("INSERT INTO accounts (email, role) VALUES ('many@example.com', 'customer')")
        .execute(&mut conn)
        .await
        .unwrap();
    // 1,800 battery owners whose warranties end over the next 36 days (two days per serial),
    // registered with a reminder: more than three batches of 500 are due.
    diesel::sql_query(
        "UPDATE units u SET sold_on = ($1::date - interval '24 months' + (regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 37) * interval '1 day')::date
         FROM product_models m WHERE m.id = u.model_id AND m.gtin = $2 AND regexp_replace(u.serial, '[^0-9]', '', 'g')::int <= 1800",
    )
    .bind::<diesel::sql_types::Date, _>(today)
    .bind::<diesel::sql_types::Text, _>(BATTERY)
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query(
        "INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase, reminder_wanted, contact_email)
         SELECT u.id, a.id, 'active', DATE '2026-01-01', 'Shop', TRUE, 'owner-' || u.serial || '@example.com'
         FROM units u JOIN product_models m ON m.id = u.model_id, accounts a
         WHERE m.gtin = $1 AND u.sold_on IS NOT NULL AND a.email = 'many@example.com'",
    )
    .bind::<diesel::sql_types::Text, _>(BATTERY)
    .execute(&mut conn)
    .await
    .unwrap();
    // What the engine says is due, one registration at a time, to compare with.
    let all = db::reminders::candidates(&mut conn, (d(2000, 1, 1), d(2100, 1, 1)), 0, 100_000)
        .await
        .unwrap();
    assert_eq!(all.len(), 1800);
    let due = all
        .iter()
        .filter(|c| c.reminder_due(today).is_some())
        .count();
    assert!(due > 1000, "{due}");

    let pool = db::build_pool(&url, 6).unwrap();
    let base = "https://portal.example";
    let (a, b, c) = tokio::join!(
        run_once(&pool, base, today),
        run_once(&pool, base, today),
        run_once(&pool, base, today)
    );
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), due);
    let count = |sql: &str| {
        let sql = sql.to_owned();
        let url = url.clone();
        async move {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let mut conn = diesel_async::AsyncPgConnection::establish(&url)
                .await
                .unwrap();
            diesel::sql_query(sql)
                .get_result::<N>(&mut conn)
                .await
                .unwrap()
                .n
        }
    };
    assert_eq!(
        count("SELECT count(*) AS n FROM outbox WHERE kind = 'warranty_reminder'").await,
        due as i64
    );
    assert_eq!(
        count(
            "SELECT count(DISTINCT to_address) AS n FROM outbox WHERE kind = 'warranty_reminder'"
        )
        .await,
        due as i64,
        "one each"
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM registrations WHERE reminder_sent_at IS NOT NULL").await,
        due as i64
    );
    assert_eq!(run_once(&pool, base, today).await.unwrap(), 0);
}

#[tokio::test]
async fn the_sql_prefilter_computes_every_warranty_end_as_the_engine_does() {
    let (url, _) = crate::helpers::fresh_database();
    let mut conn = diesel_async::AsyncPgConnection::establish(&url)
        .await
        .unwrap();
    use diesel_async::RunQueryDsl;
    for sql in [
        "INSERT INTO accounts (email, role) VALUES ('x@example.com', 'customer')",
        // Batteries (24 months from the sale): one sale date per day of 2024-2027, a leap year
        // among them; some with extra months, absolute extensions or an inherited warranty.
        "UPDATE units u SET sold_on = DATE '2024-01-01' + (regexp_replace(u.serial, '[^0-9]', '', 'g')::int - 1),
                warranty_extra_months = regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 4,
                warranty_extended_to = CASE WHEN regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 7 = 0
                    THEN DATE '2024-01-01' + regexp_replace(u.serial, '[^0-9]', '', 'g')::int + 800 END,
                inherited_from = CASE WHEN regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 11 = 0
                    THEN DATE '2024-01-01' + regexp_replace(u.serial, '[^0-9]', '', 'g')::int END,
                inherited_end = CASE WHEN regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 11 = 0
                    THEN DATE '2024-01-01' + regexp_replace(u.serial, '[^0-9]', '', 'g')::int + (regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 900) END
         FROM product_models m WHERE m.id = u.model_id AND m.gtin = '09506000134352'
           AND regexp_replace(u.serial, '[^0-9]', '', 'g')::int <= 1461",
        "UPDATE lots SET warranty_extra_months = 1, warranty_extended_to = DATE '2026-03-31' WHERE code = 'ABC124'",
        // Drills (36 months): no sale, a registered purchase date on the last days of months.
        "UPDATE units u SET purchased_on = (DATE '2024-01-31' + make_interval(months => regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 48))::date
                                          - (regexp_replace(u.serial, '[^0-9]', '', 'g')::int % 3)
         FROM product_models m WHERE m.id = u.model_id AND m.gtin = '09521234543213'",
        // E-bikes (24 months): neither, so manufacture + 90 days; some only through their lot.
        "UPDATE units u SET manufactured_on = CASE WHEN u.id % 5 = 0 THEN NULL
                                                   ELSE DATE '2023-11-30' + (u.id % 1461)::int END
         FROM product_models m WHERE m.id = u.model_id AND m.gtin = '09506000134369'",
        // Car seats (60 months from manufacture).
        "UPDATE units u SET manufactured_on = DATE '2024-01-29' + (u.id % 1461)::int
         FROM product_models m WHERE m.id = u.model_id AND m.gtin = '09506000134376'",
        "INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase, reminder_wanted, contact_email)
         SELECT u.id, a.id, 'active', DATE '2026-01-01', 'Shop', TRUE, 'x@example.com'
         FROM units u, accounts a WHERE a.email = 'x@example.com'",
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    let all = db::reminders::candidates(&mut conn, (d(1900, 1, 1), d(2200, 1, 1)), 0, 100_000)
        .await
        .unwrap();
    // Every demo unit has an end (the batteries left without a sale date count from their
    // lot's production date plus grace), so every registration is a candidate.
    assert_eq!(all.len(), 3900);
    let mut differ = Vec::new();
    for c in &all {
        let engine = c.warranty(d(2026, 1, 1)).ends_on();
        if engine != c.sql_ends_on {
            differ.push((c.serial.clone(), c.sql_ends_on, engine));
        }
    }
    assert!(
        differ.is_empty(),
        "{} differ: {:?}",
        differ.len(),
        &differ[..differ.len().min(20)]
    );
}
