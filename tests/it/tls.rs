//! TLS to PostgreSQL: a cluster of the test's own, given a certificate from a CA made for the
//! test (by the `openssl` command); each `sslmode` does what libpq's does, and a whole portal
//! (migrations, pool, lookups, sign-in) runs over `verify-full`, every connection encrypted.

use std::path::Path;
use std::process::Command;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use crate::faults::{Serve, own_cluster};
use crate::helpers::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`{name}.pem`) and, when `server`, a key and certificate it signed for `localhost`
/// only (no address in it, so that a check of the name can fail).
fn certificates(dir: &Path, name: &str, server: bool) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    if !server {
        return;
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{name}.pem"),
            "-CAkey",
            &format!("{name}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

/// Whether a connection made as the portal makes them is encrypted (the server's own view).
async fn encrypted(url: &str) -> Result<bool, String> {
    let mut conn = recall_portal::db::tls::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.ssl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sslmode_does_what_libpq_does_and_a_portal_runs_over_verify_full() {
    let (cluster, root) = own_cluster();
    let dir = root.path();
    certificates(dir, "ca", true);
    certificates(dir, "other-ca", false);
    // The key must belong to the server's user, readable by it alone.
    let data = cluster.data_dir();
    let owner = std::fs::metadata(data).unwrap();
    let key = data.join("server.key");
    std::fs::copy(dir.join("server.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(
        &key,
        Some(std::os::unix::fs::MetadataExt::uid(&owner)),
        Some(std::os::unix::fs::MetadataExt::gid(&owner)),
    )
    .unwrap();
    let plain = cluster.url("postgres");
    let probe = TestApp::probe(&plain);
    probe.sql(&format!(
        "ALTER SYSTEM SET ssl_cert_file = '{}'",
        dir.join("server.pem").display()
    ));
    probe.sql(&format!(
        "ALTER SYSTEM SET ssl_key_file = '{}'",
        key.display()
    ));
    probe.sql("ALTER SYSTEM SET ssl = on");
    probe.text("SELECT pg_reload_conf()::text AS v");
    for _ in 0..100 {
        if probe.text("SELECT current_setting('ssl') AS v") == "on" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        probe.text("SELECT current_setting('ssl') AS v"),
        "on",
        "the server took no certificate: see {}",
        dir.join("postgres.log").display()
    );

    // By name (localhost, the name in the certificate) or by address (not in it).
    let port = cluster.port();
    let password = plain
        .trim_start_matches("postgres://postgres:")
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let by_name =
        format!("postgres://postgres:{password}@localhost:{port}/postgres?hostaddr=127.0.0.1");
    let ca = dir.join("ca.pem").display().to_string();
    let other_ca = dir.join("other-ca.pem").display().to_string();
    let cases: Vec<(String, Result<bool, &str>)> = vec![
        (format!("{plain}?sslmode=disable"), Ok(false)),
        // libpq's default, `prefer`: encrypted when the server offers it.
        (plain.clone(), Ok(true)),
        (format!("{plain}?sslmode=require"), Ok(true)),
        (
            format!("{by_name}&sslmode=verify-full&sslrootcert={ca}"),
            Ok(true),
        ),
        (
            format!("{plain}?sslmode=verify-ca&sslrootcert={ca}"),
            Ok(true),
        ),
        (
            format!("{plain}?sslmode=require&sslrootcert={ca}"),
            Ok(true),
        ),
        // The address is not the name in the certificate.
        (
            format!("{plain}?sslmode=verify-full&sslrootcert={ca}"),
            Err(""),
        ),
        // Not signed by a CA trusted here (neither the compiled-in roots nor another CA).
        (format!("{by_name}&sslmode=verify-full"), Err("")),
        (
            format!("{plain}?sslmode=verify-ca&sslrootcert={other_ca}"),
            Err(""),
        ),
        (
            format!("{plain}?sslmode=require&sslrootcert={other_ca}"),
            Err(""),
        ),
    ];
    for (url, want) in &cases {
        let got = encrypted(url).await;
        let shown = url.replace(&password, "***");
        match want {
            Ok(ssl) => assert_eq!(got.as_ref().ok(), Some(ssl), "{shown}: {got:?}"),
            Err(_) => assert!(got.is_err(), "{shown} should be refused: {got:?}"),
        }
    }

    // A portal on verify-full: migrations, the pool, the lookup readers and sign-in, every
    // connection it holds encrypted.
    let url = format!("{by_name}&sslmode=verify-full&sslrootcert={ca}");
    let serve = Serve::start(&url, &[]);
    let portal = TestApp {
        address: serve.address.clone(),
        client: reqwest::Client::new(),
        db_url: plain.clone(),
        data_dir: std::env::temp_dir(),
    };
    let (status, page) = portal.page("/check?serial=SN0700").await;
    assert_eq!(status, 200, "{page}");
    let ann = user(&portal, "ann-tls@example.com", "customer").await;
    let (status, _, _) = portal.get_with(&ann, "/account").await;
    assert_eq!(status, 200);
    let others = "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                  WHERE a.datname = 'postgres' AND a.backend_type = 'client backend' \
                  AND a.pid <> pg_backend_pid()";
    assert!(probe.scalar(&format!("SELECT count(*) {others} AND s.ssl")) >= 2);
    assert_eq!(
        probe.scalar(&format!("SELECT count(*) {others} AND NOT s.ssl")),
        0,
        "every connection of the portal is encrypted"
    );
}
