//! Backups: `recall-portal backup FILE` writes the whole database with `pg_dump` (custom
//! format: compressed, restorable table by table); `recall-portal restore FILE` loads one into
//! an empty database with `pg_restore`, in a single transaction (all or nothing).
//!
//! The password never appears on a command line (other users of the machine could read it
//! there): it goes to the PostgreSQL tools through `PGPASSWORD`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

/// A PostgreSQL tool (`pg_dump`, `pg_restore`) from the server's binaries, else the `PATH`.
fn tool(name: &str) -> PathBuf {
    super::embedded::find_bindir()
        .map(|dir| dir.join(name))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `url` as the tools' connection options, and the password apart.
fn connection(url: &str) -> Result<(Vec<String>, Option<String>)> {
    use tokio_postgres::config::Host;
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| anyhow!("the database URL cannot be read: {e}"))?;
    let mut args = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        args.push("--host".to_owned());
        args.push(match host {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.display().to_string(),
        });
    }
    if let Some(port) = config.get_ports().first() {
        args.push(format!("--port={port}"));
    }
    if let Some(user) = config.get_user() {
        args.push(format!("--username={user}"));
    }
    let db = config
        .get_dbname()
        .or(config.get_user())
        .ok_or_else(|| anyhow!("the database URL names no database"))?;
    args.push(format!("--dbname={db}"));
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    Ok((args, password))
}

fn run(name: &str, args: &[String], password: Option<&str>) -> Result<()> {
    let mut cmd = Command::new(tool(name));
    cmd.args(args).env("PGCONNECT_TIMEOUT", "10");
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {name} (is the PostgreSQL client installed?)"))?;
    if !out.status.success() {
        bail!(
            "{name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Writes the database at `url` to `file` (replacing it only once the dump is complete).
pub fn backup(url: &str, file: &Path) -> Result<u64> {
    let (mut args, password) = connection(url)?;
    let partial = file.with_extension("partial");
    args.extend([
        "--format=custom".to_owned(),
        "--no-owner".to_owned(),
        "--no-privileges".to_owned(),
        format!("--file={}", partial.display()),
    ]);
    if let Err(e) = run("pg_dump", &args, password.as_deref()) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, file)
        .with_context(|| format!("moving the backup to {}", file.display()))?;
    Ok(std::fs::metadata(file)?.len())
}

/// Loads `file` into the empty database at `url`, all or nothing. A database that already has
/// the portal's tables is refused: restoring over data would mix two histories.
pub fn restore(url: &str, file: &Path) -> Result<()> {
    if !file.is_file() {
        bail!("{} is not a backup file", file.display());
    }
    if super::table_exists(url, "units")? {
        bail!(
            "the database already holds the portal's tables; restore into an empty one (a new \
             PORTAL_DATA_DIR, or a new database in DATABASE_URL)"
        );
    }
    let (mut args, password) = connection(url)?;
    args.extend([
        "--no-owner".to_owned(),
        "--no-privileges".to_owned(),
        "--exit-on-error".to_owned(),
        "--single-transaction".to_owned(),
        file.display().to_string(),
    ]);
    run("pg_restore", &args, password.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_stays_off_the_command_line() {
        let (args, password) =
            connection("postgres://portal:s3cr%40t@db.example:6543/warranty").unwrap();
        assert_eq!(
            args,
            [
                "--host",
                "db.example",
                "--port=6543",
                "--username=portal",
                "--dbname=warranty"
            ]
        );
        assert_eq!(password.as_deref(), Some("s3cr@t"));
        assert!(!args.iter().any(|a| a.contains("s3cr")));
    }
}
