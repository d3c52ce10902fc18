//! `serve` on its own PostgreSQL: first start (initdb, migrate, seed), a refused second
//! instance, a clean stop, and a restart that finds the data intact.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Portal {
    child: Child,
    port: u16,
    stdout: Vec<String>,
}

impl Drop for Portal {
    fn drop(&mut self) {
        // Only acts when a test failed half-way: a stopped portal has already been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the portal in `cwd` with the default data directory (`./data`, relative, as a user
/// running `cargo run` gets it).
fn start_portal(cwd: &std::path::Path) -> Portal {
    let child = Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(cwd)
        .env_remove("PORTAL_DATA_DIR")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting recall-portal");
    let mut portal = Portal {
        child,
        port: 0,
        stdout: Vec::new(),
    };
    let (tx, rx) = mpsc::channel();
    let stdout = portal.child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("portal did not report its address");
        if let Some(addr) = line.strip_prefix("Portal listening on http://127.0.0.1:") {
            portal.port = addr.trim().parse().unwrap();
            portal.stdout.push(line);
            return portal;
        }
        portal.stdout.push(line);
    }
}

fn sigterm_and_wait(mut p: Portal) -> std::process::ExitStatus {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
    for _ in 0..600 {
        if let Some(status) = p.child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = p.child.kill();
    panic!("portal did not stop within 30 s of SIGTERM");
}

async fn lookup_status(port: u16) -> u16 {
    reqwest::get(format!("http://127.0.0.1:{port}/check?serial=SN0700"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn postmaster_running(data_dir: &std::path::Path) -> bool {
    let Ok(pidfile) = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")) else {
        return false;
    };
    let pid: i32 = pidfile
        .lines()
        .next()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0);
    // SAFETY: existence check only.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

#[tokio::test]
async fn serve_runs_its_own_postgres_keeps_data_and_refuses_a_second_instance() {
    let base =
        std::env::temp_dir().join(format!("recall-portal-serve-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let data = base.join("data");

    // First start: a new cluster, migrated and seeded, answering lookups.
    let first = start_portal(&base);
    assert!(
        first
            .stdout
            .iter()
            .any(|l| l.starts_with("Demo catalogue loaded")),
        "{:?}",
        first.stdout
    );
    assert_eq!(lookup_status(first.port).await, 200);
    assert!(postmaster_running(&data));

    // A second instance on the same data directory (named absolutely this time) exits with a
    // clear message.
    let out = Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running with data directory"), "{err}");
    assert_eq!(
        lookup_status(first.port).await,
        200,
        "the first instance is unharmed"
    );

    // A clean stop takes PostgreSQL down with it.
    let status = sigterm_and_wait(first);
    assert!(status.success(), "{status}");
    assert!(
        !postmaster_running(&data),
        "PostgreSQL still running after the portal stopped"
    );

    // Restart: the same data, no second seeding.
    let second = start_portal(&base);
    assert!(
        !second
            .stdout
            .iter()
            .any(|l| l.starts_with("Demo catalogue loaded")),
        "{:?}",
        second.stdout
    );
    assert_eq!(lookup_status(second.port).await, 200);
    assert!(sigterm_and_wait(second).success());
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn without_postgresql_binaries_serve_says_how_to_get_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(std::env::temp_dir().join(format!("recall-portal-nopg-{}", std::process::id())))
        .env_remove("DATABASE_URL")
        .env("PG_BINDIR", "/nonexistent/postgresql/bin")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apt-get install postgresql"), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_into_a_new_data_directory() {
    let base =
        std::env::temp_dir().join(format!("recall-portal-backup-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (first_dir, second_dir) = (base.join("first"), base.join("second"));
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let dump = base.join("portal.dump");
    let cli = |cwd: &std::path::Path, args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_recall-portal"))
            .args(args)
            .current_dir(cwd)
            .env_remove("PORTAL_DATA_DIR")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };

    // Taken from the cluster a running portal holds.
    let first = start_portal(&first_dir);
    let out = cli(&first_dir, &["backup".as_ref(), dump.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Backup written"));
    assert_eq!(
        lookup_status(first.port).await,
        200,
        "the portal kept serving"
    );
    // Restoring onto a data directory a portal is running on is refused.
    let out = cli(&first_dir, &["restore".as_ref(), dump.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    assert!(sigterm_and_wait(first).success());

    // Restored into a new data directory, the portal starts on it with the data, not a new demo.
    let out = cli(&second_dir, &["restore".as_ref(), dump.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = start_portal(&second_dir);
    assert!(
        !second
            .stdout
            .iter()
            .any(|l| l.starts_with("Demo catalogue loaded")),
        "{:?}",
        second.stdout
    );
    assert_eq!(lookup_status(second.port).await, 200);
    assert!(sigterm_and_wait(second).success());
    // Twice onto the same data is refused: two histories would mix.
    let out = cli(&second_dir, &["restore".as_ref(), dump.as_os_str()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&base);
}
