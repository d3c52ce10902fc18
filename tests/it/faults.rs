//! Faults: the database restarting under load, the portal stopped or killed in the middle of
//! its work. What must hold: quick refusals instead of hangs, service back by itself, nothing
//! half-done left behind, requests in flight finished before a stop.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use recall_portal::db::embedded::{Cluster, ClusterOptions};

use crate::helpers::*;

/// A PostgreSQL cluster of the test's own (stopping the suite's would fail every other test),
/// migrated and seeded like the suite's template.
pub(crate) fn own_cluster() -> (Cluster, Scratch) {
    // Named like the suite's throwaway cluster, so a killed run's directory is swept away.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let root = Scratch(base.join(format!(
        "recall-portal-test-{}-fault{}",
        std::process::id(),
        rand_suffix()
    )));
    std::fs::create_dir_all(root.path()).unwrap();
    // The server may run as another user (the `postgres` one, when tests run as root).
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cluster = Cluster::start(ClusterOptions {
        data_dir: root.path().join("pg"),
        password_file: root.path().join("password"),
        log_file: root.path().join("postgres.log"),
        throwaway: true,
        shared_buffers_mb: 0,
    })
    .expect("starting a cluster");
    migrate_and_seed(&cluster.url("postgres"));
    (cluster, root)
}

/// A directory removed when dropped.
pub(crate) struct Scratch(std::path::PathBuf);

impl Scratch {
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("{}", N.fetch_add(1, Ordering::SeqCst))
}

/// One answered request: when it was sent (since the test's start), how long it took, status.
#[derive(Debug, Clone, Copy)]
struct Answer {
    sent: Duration,
    took: Duration,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_gives_quick_503s_and_service_is_back_within_5_s() {
    let (cluster, _root) = own_cluster();
    let cluster = Arc::new(cluster);
    let url = cluster.url("postgres");
    let app = Arc::new(
        spawn_app_with(move |c| {
            c.database_url = Some(url);
            c.workers = 2;
        })
        .await,
    );
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // Four clients in a loop: the lookup page, the JSON status, a page that reads the catalogue
    // through the pool, and the readiness probe.
    let mut clients = Vec::new();
    for path in [
        "/check?serial=SN0700",
        "/api/v1/status?serial=SN0700",
        "/recalls",
        "/readyz",
    ] {
        let (app, stop) = (app.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = start.elapsed();
                let r = app
                    .client
                    .get(format!("{}{path}", app.address))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                answers.push((
                    path,
                    Answer {
                        sent,
                        took: start.elapsed() - sent,
                        status,
                    },
                ));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .unwrap()
        .unwrap();
    let down = start.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_again())
        .await
        .unwrap()
        .unwrap();
    let up = start.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    let _ = cluster.stop();

    for (path, a) in &answers {
        // Every request got an answer, and never a server error other than "unavailable".
        assert!(
            a.status == 200 || a.status == 503,
            "{path} answered {} at {:?}",
            a.status,
            a.sent
        );
    }
    for (path, _) in answers.iter().filter(|(_, a)| a.sent < down) {
        assert!(
            answers
                .iter()
                .any(|(p, a)| p == path && a.sent < down && a.status == 200),
            "{path} never answered before the stop"
        );
    }
    // While the database is down: refusals, quickly (no request waits out its 30 s).
    let while_down: Vec<_> = answers
        .iter()
        .filter(|(_, a)| a.sent > down + Duration::from_millis(200) && a.sent + a.took < up)
        .collect();
    assert!(
        while_down.len() >= 8,
        "too few requests while down: {while_down:?}"
    );
    for (path, a) in &while_down {
        assert_eq!(a.status, 503, "{path} while the database was down: {a:?}");
        assert!(
            a.took < Duration::from_secs(6),
            "{path} hung while the database was down: {a:?}"
        );
    }
    // Back within 5 s of the database's return, and for good.
    for path in [
        "/check?serial=SN0700",
        "/api/v1/status?serial=SN0700",
        "/recalls",
        "/readyz",
    ] {
        let first_ok = answers
            .iter()
            .filter(|(p, a)| *p == path && a.sent >= up && a.status == 200)
            .map(|(_, a)| a.sent + a.took)
            .min()
            .unwrap_or_else(|| panic!("{path} never came back"));
        assert!(
            first_ok <= up + Duration::from_secs(5),
            "{path} came back {:?} after the database",
            first_ok - up
        );
        let later_failures: Vec<_> = answers
            .iter()
            .filter(|(p, a)| *p == path && a.sent > first_ok && a.status != 200)
            .collect();
        assert!(
            later_failures.is_empty(),
            "{path} failed again: {later_failures:?}"
        );
    }
}

/// A `recall-portal` process on the test's database (its own HTTP port), as production runs it.
pub(crate) struct Serve {
    child: Child,
    pub(crate) address: String,
    /// Everything it has logged so far (the log goes to stdout).
    log: Arc<std::sync::Mutex<String>>,
}

impl Serve {
    pub(crate) fn start(db_url: &str, extra: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recall-portal"));
        cmd.arg("serve")
            .env("PORTAL_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", db_url)
            .env("PORTAL_RUN_WORKER", "false")
            .env("PORTAL_LOOKUP_RATE_PER_MINUTE", "0")
            .env(
                "PORTAL_DATA_DIR",
                std::env::temp_dir().join(format!(
                    "rp-serve-{}-{}",
                    std::process::id(),
                    rand_suffix()
                )),
            )
            .env("RUST_LOG", "warn")
            // Admins sign in with a password alone here (tests/it/second_factor.rs has codes).
            .env("PORTAL_REQUIRE_2FA", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting recall-portal serve");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let log_ = log.clone();
        std::thread::spawn(move || {
            let mut seen = String::new();
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                log_.lock().unwrap().push_str(&text);
                seen.push_str(&text);
                if let Some(line) = seen.lines().find(|l| l.starts_with("Portal listening on ")) {
                    let _ = tx.send(
                        line.trim_start_matches("Portal listening on ")
                            .trim()
                            .to_owned(),
                    );
                    seen.clear();
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the portal did not report its address");
        Serve {
            child,
            address,
            log,
        }
    }

    /// Its log's lines holding `needle`, waiting up to 5 s for `count` of them.
    fn logged(&self, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<String> = self
                .log
                .lock()
                .unwrap()
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_owned)
                .collect();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the portal did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_stop_finishes_the_requests_in_flight_then_refuses_new_ones() {
    let (db_url, _) = fresh_database();
    let mut serve = Serve::start(&db_url, &[]);
    let port = serve.address.rsplit(':').next().unwrap().to_owned();
    // A batch whose body is still arriving when the stop comes.
    let body = br#"{"items":[{"serial":"SN0700"},{"serial":"SN0701"}]}"#;
    let mut conn = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        conn,
        "POST /api/v1/status/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    serve.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    // Still running: it waits for the request.
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    // A new connection is no longer served.
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", serve.address))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new request was served after the stop: {refused:?}"
    );
    conn.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("SN0701"), "{answer}");
    let status = serve.wait(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// Waits until no statement of `db` but this one's runs (a killed client's backend finishes or
/// rolls back on its own).
fn wait_for_quiet_database(app: &TestApp) {
    for _ in 0..600 {
        if app.scalar(
            "SELECT count(*) AS v FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state <> 'idle'",
        ) == 0
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the database stayed busy");
}

/// Waits until a statement containing `fragment` runs on the app's database.
fn wait_for_statement(app: &TestApp, fragment: &str) -> bool {
    for _ in 0..1200 {
        if app.scalar(&format!(
            "SELECT count(*) AS v FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query ILIKE '%{fragment}%' AND pid <> pg_backend_pid()"
        )) > 0
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[tokio::test]
async fn an_import_killed_midway_leaves_no_unit_behind() {
    let app = spawn_app().await;
    let before = app.scalar("SELECT count(*) AS v FROM units");
    // 300,000 new units of the demo drill (no declared serial format) at the main factory.
    let dir = Scratch(std::env::temp_dir().join(format!(
        "rp-kill-import-{}-{}",
        std::process::id(),
        rand_suffix()
    )));
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("units.csv");
    let mut csv = String::from("gtin,serial,lot,location\n");
    for i in 0..300_000 {
        csv.push_str(&format!("09521234543213,KILL{i:07},,FAC-1\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let mut import = Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(["import", "units"])
        .arg(&file)
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for_statement(&app, "COPY units"),
        "the import never reached its COPY"
    );
    std::thread::sleep(Duration::from_millis(100));
    import.kill().unwrap();
    import.wait().unwrap();
    wait_for_quiet_database(&app);
    assert_eq!(app.scalar("SELECT count(*) AS v FROM units"), before);
    assert_eq!(
        app.scalar("SELECT count(*) AS v FROM units WHERE serial LIKE 'KILL%'"),
        0
    );
}

#[tokio::test]
async fn two_portals_started_together_on_an_empty_database_share_sessions_and_send_each_mail_once()
{
    let smtp = crate::smtp::SmtpServer::start().await;
    let db_url = empty_database();
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    // Both migrate at the same moment: one waits for the other's advisory lock.
    let with_mail = [
        ("PORTAL_RUN_WORKER", "true"),
        ("PORTAL_SMTP_URL", smtp_url.as_str()),
    ];
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Serve::start(&db_url, &with_mail));
        let b = s.spawn(|| Serve::start(&db_url, &with_mail));
        (a.join().unwrap(), b.join().unwrap())
    });
    let app = TestApp {
        address: a.address.clone(),
        client: reqwest::Client::new(),
        db_url: db_url.clone(),
        data_dir: std::env::temp_dir(),
    };
    assert_eq!(
        app.scalar("SELECT count(*) AS v FROM __diesel_schema_migrations"),
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count() as i64
    );

    // Signed in on one, the same browser is signed in on the other, and its forms work there.
    app.create_user("both@example.com", USER_PW, "customer");
    let browser = app.browser();
    app.login(&browser, "both@example.com", USER_PW).await;
    let on_b = |path: &str| format!("{}{path}", b.address);
    let r = browser.get(on_b("/account")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("both@example.com"), "{page}");
    let r = browser
        .post(on_b("/logout"))
        .header("Origin", &b.address)
        .form(&[("csrf_token", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let r = browser
        .get(format!("{}/account", a.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "signed out on one is signed out on both"
    );

    // 200 queued mails, two workers: each mail is delivered once.
    app.sql(
        "INSERT INTO outbox (kind, to_address, subject, body_text, body_html) \
         SELECT 'test', 'm' || i || '@example.com', 'Mail ' || i, 'text', '<p>html</p>' \
         FROM generate_series(1, 200) i",
    );
    for _ in 0..600 {
        if app.scalar("SELECT count(*) AS v FROM outbox WHERE kind = 'test' AND status = 'sent'")
            == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.scalar("SELECT count(*) AS v FROM outbox WHERE kind = 'test' AND status = 'sent'"),
        200
    );
    let messages = smtp.messages();
    for i in 1..=200 {
        let to = format!("m{i}@example.com");
        let copies = messages
            .iter()
            .filter(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(&to)))
            .count();
        assert_eq!(copies, 1, "{to} received {copies} copies");
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_killed_midway_leaves_a_draft_and_nothing_else() {
    let app = spawn_app().await;
    // 200,000 drills made on one day: the campaign's target.
    let drill = app.scalar("SELECT id AS v FROM product_models WHERE gtin = '09521234543213'");
    app.sql(&format!(
        "INSERT INTO units (model_id, serial, serial_key, status, manufactured_on, created_by) \
         SELECT {drill}, 'LK' || lpad(i::text, 7, '0'), 'LK' || lpad(i::text, 7, '0'), 'in_stock', \
                DATE '2024-06-01', 'test' FROM generate_series(1, 200000) i"
    ));
    let before = (
        app.scalar("SELECT count(*) AS v FROM outbox"),
        app.scalar("SELECT count(*) AS v FROM recall_units"),
        app.scalar("SELECT count(*) AS v FROM recall_notices"),
    );
    let mut serve = Serve::start(&app.db_url, &[]);
    let portal = Arc::new(TestApp {
        address: serve.address.clone(),
        client: reqwest::Client::new(),
        db_url: app.db_url.clone(),
        data_dir: std::env::temp_dir(),
    });
    let admin = user(&portal, "kill-launch@example.com", "admin").await;
    let id = crate::recalls::draft(&portal, &admin, "RC-KILL").await;
    crate::recalls::complete_notice(&portal, &admin, id).await;
    let model = drill.to_string();
    crate::recalls::add_target(
        &portal,
        &admin,
        id,
        &[
            ("kind", "made"),
            ("model", &model),
            ("made_from", "2024-06-01"),
            ("made_to", "2024-06-01"),
        ],
        None,
    )
    .await;
    let launching = {
        let (portal, admin) = (portal.clone(), admin.clone());
        tokio::spawn(async move {
            let page = format!("/admin/recalls/{id}");
            let (status, body, _) = portal.get_with(&admin, &page).await;
            assert_eq!(status, 200, "{body}");
            admin
                .post(format!("{}/admin/recalls/{id}/launch", portal.address))
                .form(&[("csrf_token", csrf_of(&body))])
                .send()
                .await
        })
    };
    let reached = tokio::task::spawn_blocking({
        let db_url = app.db_url.clone();
        move || wait_for_statement(&TestApp::probe(&db_url), "INSERT INTO recall_units")
    })
    .await
    .unwrap();
    assert!(reached, "the launch never reached its last statement");
    serve.signal(libc::SIGKILL);
    serve.wait(Duration::from_secs(10));
    assert!(
        launching.await.unwrap().is_err(),
        "the killed launch answered"
    );
    tokio::task::spawn_blocking({
        let db_url = app.db_url.clone();
        move || wait_for_quiet_database(&TestApp::probe(&db_url))
    })
    .await
    .unwrap();
    assert_eq!(
        app.text(&format!(
            "SELECT status FROM recall_campaigns WHERE id = {id}"
        )),
        "draft"
    );
    assert_eq!(
        (
            app.scalar("SELECT count(*) AS v FROM outbox"),
            app.scalar("SELECT count(*) AS v FROM recall_units"),
            app.scalar("SELECT count(*) AS v FROM recall_notices"),
        ),
        before
    );
    // And it can be launched once the portal is back.
    let serve = Serve::start(&app.db_url, &[]);
    let portal = TestApp {
        address: serve.address.clone(),
        client: reqwest::Client::new(),
        db_url: app.db_url.clone(),
        data_dir: std::env::temp_dir(),
    };
    let (status, body, _) = portal
        .submit(
            &admin,
            &format!("/admin/recalls/{id}"),
            &format!("/admin/recalls/{id}/launch"),
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS v FROM recall_units WHERE campaign_id = {id}"
        )),
        200_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_send_loses_no_mail() {
    const MAILS: usize = 2000;
    let smtp = crate::smtp::SmtpServer::start().await;
    let app = spawn_app().await;
    app.sql("UPDATE outbox SET status = 'sent', sent_at = now() WHERE status = 'queued'");
    app.sql(&format!(
        "INSERT INTO outbox (kind, to_address, subject, body_text, body_html) \
         SELECT 'test', 'k' || i || '@example.com', 'Notice ' || i, 'text', '<p>html</p>' \
         FROM generate_series(1, {MAILS}) i"
    ));
    let worker = || {
        Command::new(env!("CARGO_BIN_EXE_recall-portal"))
            .arg("worker")
            .env("DATABASE_URL", &app.db_url)
            .env("PORTAL_SMTP_URL", format!("smtp://127.0.0.1:{}", smtp.port))
            .env("PORTAL_OUTBOX_LEASE_SECS", "2")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let sent =
        || app.scalar("SELECT count(*) AS v FROM outbox WHERE kind = 'test' AND status = 'sent'");

    // Killed outright once a few hundred have gone out: the batch in its hands is neither
    // marked sent nor released.
    let mut first = worker();
    for _ in 0..600 {
        if smtp.messages().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = sent();
    assert!(
        (1..MAILS as i64).contains(&at_kill),
        "the worker was not killed mid-way: {at_kill} sent"
    );

    // Another worker takes over, the dead one's mails included once their lease is out.
    let mut second = worker();
    for _ in 0..1200 {
        if sent() == MAILS as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(second.id() as i32, libc::SIGTERM) };
    second.wait().unwrap();
    assert_eq!(sent(), MAILS as i64, "every mail is marked sent");
    let mut copies: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for m in smtp.messages() {
        if let Some(to) = m.lines().find_map(|l| l.strip_prefix("To: ")) {
            *copies.entry(to.trim().to_owned()).or_default() += 1;
        }
    }
    for i in 1..=MAILS {
        assert!(
            copies.contains_key(&format!("k{i}@example.com")),
            "k{i}@example.com never received its mail"
        );
    }
    // At least once: only the mails in flight at the kill (one batch at most) went out twice.
    let twice: usize = copies.values().map(|n| n - 1).sum();
    assert!(twice <= 128, "{twice} mails went out twice");
}

#[tokio::test]
async fn refused_access_is_logged_with_its_route_and_account() {
    let (db_url, _) = fresh_database();
    let serve = Serve::start(&db_url, &[]);
    let portal = TestApp {
        address: serve.address.clone(),
        client: reqwest::Client::new(),
        db_url: db_url.clone(),
        data_dir: std::env::temp_dir(),
    };
    let ann = user(&portal, "ann-logged@example.com", "customer").await;
    let id = portal.scalar("SELECT id AS v FROM accounts WHERE email = 'ann-logged@example.com'");
    // A role's area, someone else's (or no) record, a forged form.
    let (status, _, _) = portal.get_with(&ann, "/admin/users").await;
    assert_eq!(status, 403);
    let (status, _, _) = portal.get_with(&ann, "/account/claims/987654").await;
    assert_eq!(status, 404);
    let (status, _, _) = portal
        .post_with(&ann, "/account/password", &[("csrf_token", "forged")])
        .await;
    assert_eq!(status, 403);
    // Not refusals: a page of hers, and a visitor's lookup of a serial nobody has.
    let (status, _, _) = portal.get_with(&ann, "/account").await;
    assert_eq!(status, 200);
    let (status, _) = portal.page("/check?serial=NOSUCH42").await;
    assert!(status < 500);
    let (status, _) = portal.page("/01/09506000134352/21/NOSUCH43").await;
    assert!(status < 500);
    let lines = serve.logged("access refused", 3);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (line, (status, route)) in lines.iter().zip([
        ("403", "/admin/users"),
        ("404", "/account/claims/{id}"),
        ("403", "/account/password"),
    ]) {
        assert!(
            line.contains(&format!("status={status}"))
                && line.contains(&format!("route=\"{route}\""))
                && line.contains(&format!("account={id}"))
                && line.contains("request_id="),
            "{line}"
        );
    }
    let log = serve.log.lock().unwrap().clone();
    assert!(!log.contains("NOSUCH") && !log.contains("987654"), "{log}");
}
