//! `recall-portal backup` and `restore` against an external PostgreSQL (DATABASE_URL); the
//! embedded cluster's case is in `embedded.rs`.

use std::process::{Command, Output};

use crate::helpers::*;

fn cli(args: &[&std::ffi::OsStr], db_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn counts(db_url: &str) -> Vec<i64> {
    let probe = TestApp::probe(db_url);
    [
        "units",
        "registrations",
        "claims",
        "accounts",
        "audit_log",
        "recall_campaigns",
    ]
    .iter()
    .map(|t| probe.scalar(&format!("SELECT count(*) AS v FROM {t}")))
    .collect()
}

#[tokio::test]
async fn a_backup_restores_into_an_empty_database_with_everything_in_it() {
    let app = spawn_app().await;
    let customer = user(&app, "kept@example.com", "customer").await;
    let reg = crate::claims::registered(&app, &customer, "SN1704").await;
    let claim = crate::claims::filed(&app, &customer, reg).await;
    let dir = std::env::temp_dir().join(format!("rp-backup-{}-{claim}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("portal.dump");

    let out = cli(&["backup".as_ref(), dump.as_os_str()], &app.db_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&dump).unwrap().len() > 10_000);
    // The password in DATABASE_URL never reached a command line (ps shows those).
    assert!(!String::from_utf8_lossy(&out.stderr).contains("password"));

    let restored_url = empty_database();
    let out = cli(&["restore".as_ref(), dump.as_os_str()], &restored_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counts(&restored_url), counts(&app.db_url));

    // The restored database serves: the customer signs in with the same password and finds
    // the claim; lookups answer.
    let restored = spawn_app_with(|c| c.database_url = Some(restored_url.clone())).await;
    let c = restored.browser();
    restored.login(&c, "kept@example.com", USER_PW).await;
    let (status, page, _) = restored
        .get_with(&c, &format!("/account/claims/{claim}"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        restored.get("/check?serial=SN1704").await.status().as_u16(),
        200
    );

    // Restoring again onto it is refused and changes nothing.
    let before = counts(&restored_url);
    let out = cli(&["restore".as_ref(), dump.as_os_str()], &restored_url);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counts(&restored_url), before);
    // A file that is not a backup is refused without touching an empty database.
    let junk = dir.join("junk.dump");
    std::fs::write(&junk, "not a dump").unwrap();
    let empty = empty_database();
    let out = cli(&["restore".as_ref(), junk.as_os_str()], &empty);
    assert!(!out.status.success());
    let probe = TestApp::probe(&empty);
    assert_eq!(
        probe.scalar("SELECT count(*) AS v FROM pg_tables WHERE schemaname = 'public'"),
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
