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
