//! `recall-portal import units FILE`: all-or-nothing loads with a precise report.

use crate::helpers::{TestApp, spawn_app};

pub fn write(dir: &std::path::Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// Runs the unit import; returns (success, stderr, report contents if any).
fn import(app: &TestApp, file: &std::path::Path) -> (bool, String, Option<String>) {
    run_import(app, "units", file)
}

/// Runs `import KIND FILE`; returns (success, output, report contents if any).
pub fn run_import(
    app: &TestApp,
    kind: &str,
    file: &std::path::Path,
) -> (bool, String, Option<String>) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(["import", kind])
        .arg(file)
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let mut report = file.as_os_str().to_owned();
    report.push(".errors.csv");
    let report = std::fs::read_to_string(&report).ok();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        report,
    )
}

pub fn temp_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "recall-portal-import-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn a_valid_file_loads_whole_with_history_and_answers_lookups() {
    let app = spawn_app().await;
    let dir = temp_dir();
    let before = app.scalar("SELECT count(*) FROM units");
    let file = write(
        &dir,
        "units.csv",
        b"gtin,serial,lot,manufactured_on,location,status\n\
          09521234543213,DR-0001,D18-2201,2024-03-01,WH-EU,\n\
          09521234543213,dr-0002,D18-2201,,,shipped\n\
          9521234543213,DR-0003,,2025-05-05,,\n",
    );
    let (ok, out, _) = import(&app, &file);
    assert!(ok, "{out}");
    assert!(out.contains("Imported 3 units"), "{out}");
    assert_eq!(app.scalar("SELECT count(*) FROM units") - before, 3);
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM units WHERE serial_key = 'DR-0002' AND status = 'shipped'"
        ),
        1,
        "case-insensitive key"
    );
    assert_eq!(app.scalar("SELECT count(*) FROM units u JOIN locations l ON l.id = u.location_id WHERE u.serial = 'DR-0001' AND l.code = 'WH-EU' AND u.status = 'in_stock'"), 1);
    assert_eq!(app.scalar("SELECT count(*) FROM units u JOIN lots l ON l.id = u.lot_id WHERE u.serial = 'dr-0002' AND u.manufactured_on = l.production_date"), 1, "date from the lot");
    assert_eq!(app.scalar("SELECT count(*) FROM units WHERE serial ILIKE 'dr-000%' AND created_by = 'import:units.csv'"), 3);
    let (status, body) = app.page("/check?serial=dr-0001").await;
    assert_eq!(status, 200);
    assert!(body.contains("D18 brushless cordless drill"));
}

#[tokio::test]
async fn broken_files_give_a_precise_report_and_write_nothing() {
    let app = spawn_app().await;
    let dir = temp_dir();
    let units = app.scalar("SELECT count(*) FROM units");
    let events = app.scalar("SELECT count(*) FROM unit_events");
    let huge = format!("gtin,serial\n09521234543213,{}\n", "X".repeat(1_000_000));
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "columns.csv",
            b"gtin,sn\n09521234543213,A1\n".to_vec(),
            vec![
                "1,sn,\"unknown column 2",
                "1,serial,the header has no “serial” column",
            ],
        ),
        (
            "gtin.csv",
            b"gtin,serial\n09521234543213,OK-1\n09521234543214,A1\n".to_vec(),
            vec!["3,gtin,the last digit of this GTIN does not match its check digit"],
        ),
        (
            "unknown-gtin.csv",
            b"gtin,serial\n09506000999999,A1\n".to_vec(),
            vec!["2,gtin,no product model has GTIN 09506000999999"],
        ),
        (
            "chars.csv",
            b"gtin,serial\n09521234543213,A#1\n09521234543213,B 2\n".to_vec(),
            vec![
                "2,serial,a serial number cannot contain “#”",
                "3,serial,a serial number cannot contain a space",
            ],
        ),
        (
            "dups.csv",
            b"gtin,serial\n09521234543213,NEW-1\n09521234543213,new-1\n09521234543213,SN0001\n"
                .to_vec(),
            vec![
                "3,serial,the same serial is already on line 2",
                "4,serial,SN0001 already exists for this model",
            ],
        ),
        (
            // Only a clash with the database: the one-pass load meets the unique index.
            "exists.csv",
            b"gtin,serial\n09521234543213,NEW-7\n09521234543213,SN0002\n09521234543213,NEW-8\n"
                .to_vec(),
            vec!["3,serial,SN0002 already exists for this model"],
        ),
        (
            "format.csv",
            b"gtin,serial\n09506000134352,SN12345\n".to_vec(),
            vec!["2,serial,“SN12345” does not fit this model's serial format SN####"],
        ),
        (
            "huge.csv",
            huge.into_bytes(),
            vec!["2,serial,a serial number has at most 20 characters; this has 1000000"],
        ),
        (
            "latin1.csv",
            b"gtin,serial\n09521234543213,A\xe91\n".to_vec(),
            vec!["2,,this line is not valid UTF-8 text"],
        ),
        ("empty.csv", b"".to_vec(), vec!["1,,the file is empty"]),
        (
            "header-only.csv",
            b"gtin,serial\n".to_vec(),
            vec!["2,,the file has a header but no rows"],
        ),
        (
            "ragged.csv",
            b"gtin,serial,lot\n09521234543213,A1\n".to_vec(),
            vec!["2,,has 2 fields; the header has 3"],
        ),
    ];
    for (name, content, expected) in cases {
        let file = write(&dir, name, &content);
        let (ok, out, report) = import(&app, &file);
        assert!(!ok, "{name} should be refused: {out}");
        assert!(out.contains("nothing was imported"), "{name}: {out}");
        let report = report.unwrap_or_else(|| panic!("{name}: no report"));
        assert!(
            report.starts_with("line,column,reason\n"),
            "{name}: {report}"
        );
        for line in expected {
            assert!(
                report.contains(line),
                "{name}: expected {line:?} in\n{report}"
            );
        }
        assert!(report.len() < 10_000, "{name}: the report stays small");
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM units"),
        units,
        "nothing written"
    );
    assert_eq!(app.scalar("SELECT count(*) FROM unit_events"), events);
}

mod upload {
    use crate::helpers::{TestApp, csrf_of, spawn_app, spawn_app_with};

    const PW: &str = "correct horse battery staple";

    async fn admin(app: &TestApp) -> (reqwest::Client, String) {
        app.create_user("admin@example.com", PW, "admin");
        let c = app.browser();
        app.login(&c, "admin@example.com", PW).await;
        let (_, page, _) = app.get_with(&c, "/admin/imports").await;
        let token = csrf_of(&page);
        (c, token)
    }

    async fn send(
        app: &TestApp,
        c: &reqwest::Client,
        token: &str,
        kind: &str,
        name: &str,
        content: Vec<u8>,
    ) -> (u16, String, Option<String>) {
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token.to_owned())
            .text("kind", kind.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(content)
                    .file_name(name.to_owned())
                    .mime_str("text/csv")
                    .unwrap(),
            );
        let r = c
            .post(format!("{}/admin/imports", app.address))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, r.text().await.unwrap(), location)
    }

    /// Follows the job page until the job has finished; returns the last page.
    async fn finished(app: &TestApp, c: &reqwest::Client, job: &str) -> String {
        for _ in 0..300 {
            let (status, page, _) = app.get_with(c, job).await;
            assert_eq!(status, 200, "{page}");
            if !page.contains("http-equiv=\"refresh\"") {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the import did not finish in 30 s");
    }

    #[tokio::test]
    async fn an_uploaded_file_is_imported_in_the_background_with_its_outcome() {
        let app = spawn_app().await;
        let (c, token) = admin(&app).await;
        let before = app.scalar("SELECT count(*) FROM units");
        let file = b"gtin,serial,lot,location\n\
            09521234543213,UP-0001,D18-2201,WH-EU\n\
            09521234543213,UP-0002,D18-2201,WH-EU\n\
            09521234543213,UP-0003,,\n"
            .to_vec();
        let (status, body, location) = send(&app, &c, &token, "units", "drills.csv", file).await;
        assert_eq!(status, 303, "{body}");
        let job = location.unwrap();
        assert!(job.starts_with("/admin/imports/"), "{job}");
        let page = finished(&app, &c, &job).await;
        assert!(page.contains("Imported 3 units."), "{page}");
        assert!(page.contains("drills.csv"));
        assert_eq!(app.scalar("SELECT count(*) FROM units") - before, 3);
        assert_eq!(
            app.scalar("SELECT count(*) FROM units WHERE serial LIKE 'UP-%' AND created_by = 'admin:admin@example.com'"),
            3
        );
        assert_eq!(
            app.scalar("SELECT count(*) FROM import_jobs WHERE status = 'done' AND rows_read = 3 AND inserted = 3 AND bytes_read = total_bytes"),
            1
        );
        assert_eq!(
            app.scalar("SELECT count(*) FROM audit_log WHERE event IN ('import_started', 'import_finished')"),
            2
        );
        let (_, list, _) = app.get_with(&c, "/admin/imports").await;
        assert!(
            list.contains("drills.csv") && list.contains("done"),
            "{list}"
        );

        // Sales from a file, the same way.
        let d = chrono::Utc::now().date_naive().to_string();
        let sales =
            format!("gtin,serial,order_ref,channel,sold_on\n09521234543213,UP-0001,U-1,Shop,{d}\n");
        let (status, _, location) =
            send(&app, &c, &token, "sales", "sales.csv", sales.into_bytes()).await;
        assert_eq!(status, 303);
        let page = finished(&app, &c, &location.unwrap()).await;
        assert!(page.contains("Imported 1 sales links."), "{page}");
        assert_eq!(
            app.scalar("SELECT count(*) FROM units WHERE serial = 'UP-0001' AND status = 'sold'"),
            1
        );
    }

    #[tokio::test]
    async fn a_refused_upload_shows_its_problems_and_a_report_and_writes_nothing() {
        let app = spawn_app().await;
        let (c, token) = admin(&app).await;
        let before = app.scalar("SELECT count(*) FROM units");
        let file =
            b"gtin,serial\n09521234543213,OK-1\n09521234543214,A1\n09521234543213,B 2\n".to_vec();
        let (status, _, location) = send(&app, &c, &token, "units", "bad.csv", file).await;
        assert_eq!(status, 303);
        let job = location.unwrap();
        let page = finished(&app, &c, &job).await;
        assert!(
            page.contains("Nothing was imported: 2 problem(s) in 3 row(s)."),
            "{page}"
        );
        assert!(
            page.contains("the last digit of this GTIN does not match its check digit"),
            "{page}"
        );
        assert!(
            page.contains("a serial number cannot contain a space"),
            "{page}"
        );
        let (status, report, _) = app.get_with(&c, &format!("{job}/report.csv")).await;
        assert_eq!(status, 200);
        assert!(
            report.starts_with("line,column,reason\n3,gtin,"),
            "{report}"
        );
        assert!(report.contains("4,serial,"), "{report}");
        assert_eq!(app.scalar("SELECT count(*) FROM units"), before);
        // A hostile file name is shown as text.
        let (status, _, location) = send(
            &app,
            &c,
            &token,
            "units",
            "<script>alert(1)</script>.csv",
            b"gtin,serial\n".to_vec(),
        )
        .await;
        assert_eq!(status, 303);
        let page = finished(&app, &c, &location.unwrap()).await;
        assert!(!page.contains("<script>alert"), "escaped");
        assert!(page.contains("the file has a header but no rows"), "{page}");
    }

    #[tokio::test]
    async fn uploads_without_token_file_or_within_the_limit_are_refused_cleanly() {
        let app = spawn_app_with(|c| c.max_upload_bytes = 1_000).await;
        let (c, token) = admin(&app).await;
        let csv = b"gtin,serial\n09521234543213,NT-1\n".to_vec();
        let (status, body, _) = send(&app, &c, "wrong", "units", "a.csv", csv.clone()).await;
        assert_eq!(status, 403, "{body}");
        let (status, _, _) = send(&app, &c, &token, "units", "big.csv", vec![b'x'; 5_000]).await;
        assert_eq!(status, 413);
        let (status, body, _) = send(&app, &c, &token, "units", "", Vec::new()).await;
        assert_eq!(status, 422);
        assert!(body.contains("Choose a CSV file to import."), "{body}");
        let (status, body, _) = send(&app, &c, &token, "gadgets", "a.csv", csv).await;
        assert_eq!(status, 422);
        assert!(body.contains("Choose what the file holds"), "{body}");
        assert_eq!(app.scalar("SELECT count(*) FROM import_jobs"), 0);
        assert_eq!(
            app.scalar("SELECT count(*) FROM units WHERE serial = 'NT-1'"),
            0
        );
        // Nothing is left behind on disk.
        let dir = app.data_dir.join("imports");
        let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "uploads removed from {}", dir.display());
    }

    #[tokio::test]
    async fn a_scan_file_for_a_stock_count_is_added_in_the_background() {
        let app = spawn_app().await;
        let (c, token) = admin(&app).await;
        app.sql("INSERT INTO stock_counts (location_id, opened_by) VALUES ((SELECT id FROM locations WHERE code = 'WH-EU'), (SELECT id FROM accounts LIMIT 1))");
        let count = app.scalar("SELECT max(id) FROM stock_counts");
        let (_, page, _) = app.get_with(&c, &format!("/admin/counts/{count}")).await;
        assert!(
            page.contains("name=\"kind\" value=\"count_scans\""),
            "{page}"
        );
        let post = |count: String, file: &'static [u8]| {
            let form = reqwest::multipart::Form::new()
                .text("csrf_token", token.clone())
                .text("kind", "count_scans")
                .text("count_id", count)
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(file).file_name("shelf.csv"),
                );
            c.post(format!("{}/admin/imports", app.address))
                .multipart(form)
                .send()
        };
        let r = post(
            count.to_string(),
            b"gtin,serial\n09506000134352,SN1001\n,SN1002\n",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 303);
        let job = r.headers()["location"].to_str().unwrap().to_owned();
        let page = finished(&app, &c, &job).await;
        assert!(page.contains("Imported 2 scans."), "{page}");
        assert!(page.contains(&format!("stock count {count}")), "{page}");
        assert_eq!(
            app.scalar(&format!(
                "SELECT count(*) FROM stock_count_scans WHERE count_id = {count}"
            )),
            2
        );
        assert_eq!(
            app.scalar(&format!(
                "SELECT scan_count FROM stock_counts WHERE id = {count}"
            )),
            2
        );
        let r = post("999999".into(), b"serial\nSN1\n").await.unwrap();
        assert_eq!(r.status(), 404);
        app.sql(&format!(
            "UPDATE stock_counts SET status = 'cancelled' WHERE id = {count}"
        ));
        let r = post(count.to_string(), b"serial\nSN1\n").await.unwrap();
        assert_eq!(r.status(), 409);
        assert_eq!(app.scalar("SELECT count(*) FROM import_jobs"), 1);
    }

    #[tokio::test]
    async fn a_running_job_shows_progress_and_an_abandoned_one_says_so() {
        let app = spawn_app().await;
        let (c, _) = admin(&app).await;
        app.sql("INSERT INTO import_jobs (kind, filename, total_bytes, bytes_read, rows_read, created_by)
                 VALUES ('units', 'big.csv', 1000, 250, 50000, (SELECT id FROM accounts LIMIT 1))");
        let id = app.scalar("SELECT max(id) FROM import_jobs");
        let (_, page, _) = app.get_with(&c, &format!("/admin/imports/{id}")).await;
        assert!(page.contains("http-equiv=\"refresh\""), "{page}");
        assert!(
            page.contains("<progress max=\"100\" value=\"25\">"),
            "{page}"
        );
        assert!(page.contains("50000 rows checked so far"), "{page}");
        app.sql("UPDATE import_jobs SET heartbeat_at = now() - interval '5 minutes'");
        let (_, page, _) = app.get_with(&c, &format!("/admin/imports/{id}")).await;
        assert!(!page.contains("http-equiv=\"refresh\""));
        assert!(page.contains("This import was interrupted"), "{page}");
        let (status, _, _) = app.get_with(&c, "/admin/imports/999999").await;
        assert_eq!(status, 404);
        let (status, _, _) = app
            .get_with(&c, &format!("/admin/imports/{id}/report.csv"))
            .await;
        assert_eq!(status, 404);
    }
}
