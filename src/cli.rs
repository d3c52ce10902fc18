//! The command line: `serve` (default), `migrate`, `seed-demo`, `worker`, `admin`, `import`,
//! `count`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::db::embedded::{Cluster, ClusterOptions, DataDirLock};
use crate::db::{self, seed};
use crate::web::Application;

#[derive(Parser, Debug)]
#[command(
    name = "recall-portal",
    version,
    about = "Serial-tracked warranty and recall portal"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Run the web portal (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load the demo catalogue (skipped if it is already there) and exit.
    SeedDemo,
    /// Run only the background work: the mail outbox, warranty reminders and the retention
    /// purge (for deployments that run it apart from `serve`).
    Worker,
    /// Manage administrator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Bulk-load data from CSV files (all-or-nothing, with a report of every rejected row).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Stock counts: add a scan file to a count, or reconcile a count.
    Count {
        #[command(subcommand)]
        command: CountCommand,
    },
    /// Write the whole database to FILE (pg_dump, custom format). Works while `serve` runs.
    Backup { file: std::path::PathBuf },
    /// Load a backup into an empty database (a new data directory, or an empty database in
    /// DATABASE_URL), all or nothing. The portal must not be running on it.
    Restore { file: std::path::PathBuf },
}

#[derive(Subcommand, Debug, Clone)]
pub enum CountCommand {
    /// Adds the scans of a CSV file to an open count (binary COPY): a header line with `serial`,
    /// or `gtin,serial` (the GTIN may be empty on a line). All or nothing, with a report of
    /// every rejected line.
    Upload {
        /// The count's number (as in /admin/counts/12).
        #[arg(long)]
        count: i64,
        /// The CSV file.
        file: std::path::PathBuf,
        /// Where to write the report of rejected lines (default: FILE.errors.csv).
        #[arg(long)]
        report: Option<std::path::PathBuf>,
    },
    /// Reconciles a count against the records, as the Reconcile button does, and prints the
    /// number of lines in each category.
    Reconcile {
        /// The count's number.
        #[arg(long)]
        count: i64,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum ImportCommand {
    /// Units: columns gtin, serial (required), lot, manufactured_on, location, status.
    Units {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Where to write the report of rejected rows (default: FILE.errors.csv).
        #[arg(long)]
        report: Option<std::path::PathBuf>,
    },
    /// Components installed in units: columns parent_gtin, parent_serial, component_gtin and
    /// component_serial (a component unit) or component_lot (a component lot).
    Components {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Where to write the report of rejected rows (default: FILE.errors.csv).
        #[arg(long)]
        report: Option<std::path::PathBuf>,
    },
    /// Sales: one line per unit, columns gtin, serial, order_ref, channel, sold_on
    /// (YYYY-MM-DD), customer_email (optional). Lines of one order make one sale.
    Sales {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Where to write the report of rejected rows (default: FILE.errors.csv).
        #[arg(long)]
        report: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum AdminCommand {
    /// Create an administrator. The password is read from standard input when it is piped in;
    /// otherwise a strong one is generated and printed once.
    Create {
        #[arg(long)]
        email: String,
    },
    /// Turn two-step sign-in off for an account whose phone is lost: its owner sets it up
    /// again at the next sign-in (when the role needs it) or from the account page.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        email: String,
    },
}

/// The database the portal uses: an external server (`DATABASE_URL`) or its own cluster.
pub struct Database {
    pub url: String,
    cluster: Option<Cluster>,
    _lock: Option<DataDirLock>,
}

/// The name of the portal's database inside its own cluster.
const EMBEDDED_DB: &str = "portal";

/// The URL of the embedded cluster a running `serve` holds (its data directory locked), read
/// from PostgreSQL's `postmaster.pid` (whose fourth line is the port) and the password file.
/// None when no portal runs on the data directory, or with DATABASE_URL.
fn running_embedded(config: &Config) -> Result<Option<String>> {
    if config.database_url.is_some() {
        return Ok(None);
    }
    let dir = &config.data_dir;
    if DataDirLock::acquire(dir).is_ok() {
        return Ok(None);
    }
    let pid_file = dir.join("postgres").join("postmaster.pid");
    let port = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.lines().nth(3).and_then(|l| l.trim().parse::<u16>().ok()))
        .with_context(|| {
            format!(
                "a portal holds {} but its PostgreSQL is not running",
                dir.display()
            )
        })?;
    let password = std::fs::read_to_string(dir.join("postgres.password"))
        .context("reading the database password")?;
    Ok(Some(format!(
        "postgres://postgres:{}@127.0.0.1:{port}/{EMBEDDED_DB}",
        password.trim()
    )))
}

impl Database {
    pub fn open(config: &Config) -> Result<Self> {
        if let Some(url) = &config.database_url {
            return Ok(Database {
                url: url.clone(),
                cluster: None,
                _lock: None,
            });
        }
        let dir = &config.data_dir;
        let lock = DataDirLock::acquire(dir)?;
        let cluster = Cluster::start(ClusterOptions {
            data_dir: dir.join("postgres"),
            password_file: dir.join("postgres.password"),
            log_file: dir.join("postgres.log"),
            throwaway: false,
            shared_buffers_mb: match config.pg_shared_buffers_mb {
                0 => crate::db::embedded::default_shared_buffers_mb(),
                mb => mb,
            },
        })?;
        if cluster.initialised_now {
            tracing::info!(dir = %cluster.data_dir().display(), "created a new PostgreSQL cluster");
        }
        let admin_url = cluster.url("postgres");
        if !db::database_exists(&admin_url, EMBEDDED_DB)? {
            db::execute_sync(&admin_url, &format!("CREATE DATABASE {EMBEDDED_DB}"))?;
        }
        tracing::info!(port = cluster.port(), "PostgreSQL is running");
        Ok(Database {
            url: cluster.url(EMBEDDED_DB),
            cluster: Some(cluster),
            _lock: Some(lock),
        })
    }

    pub fn is_embedded(&self) -> bool {
        self.cluster.is_some()
    }

    pub fn stop(&self) -> Result<()> {
        if let Some(c) = &self.cluster {
            c.stop()?;
            tracing::info!("PostgreSQL stopped");
        }
        Ok(())
    }
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .try_init();
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    init_tracing();
    db::priority::configure(cli.config.bulk_nice);
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::Migrate => {
            let db = Database::open(&cli.config)?;
            let applied = db::run_migrations(&db.url)?;
            println!("{} migration(s) applied", applied.len());
            db.stop()
        }
        Command::Backup { file } => {
            let (url, db) = match running_embedded(&cli.config)? {
                Some(url) => (url, None),
                None => {
                    let db = Database::open(&cli.config)?;
                    (db.url.clone(), Some(db))
                }
            };
            let written = db::backup::backup(&url, &file);
            let stopped = db.as_ref().map_or(Ok(()), Database::stop);
            let bytes = written?;
            stopped?;
            println!("Backup written to {} ({bytes} bytes).", file.display());
            Ok(())
        }
        Command::Restore { file } => {
            let db = Database::open(&cli.config)?;
            let restored = db::backup::restore(&db.url, &file);
            let stopped = db.stop();
            restored?;
            stopped?;
            println!(
                "Restored {}. Start the portal as usual (it applies any newer migrations).",
                file.display()
            );
            Ok(())
        }
        Command::SeedDemo => {
            let db = Database::open(&cli.config)?;
            db::run_migrations(&db.url)?;
            let summary = runtime()?.block_on(seed_demo(&db.url))?;
            if summary.created {
                print_demo(&summary);
            } else {
                println!("The demo catalogue is already loaded.");
            }
            db.stop()
        }
        Command::Worker => {
            let db = Database::open(&cli.config)?;
            db::run_migrations(&db.url)?;
            let result = runtime()?.block_on(worker(&cli.config, &db.url));
            let stopped = db.stop();
            result.and(stopped)
        }
        Command::Import { command } => {
            let db = Database::open(&cli.config)?;
            db::run_migrations(&db.url)?;
            let result = bulk_runtime()?.block_on(import(&db.url, command));
            let stopped = db.stop();
            result.and(stopped)
        }
        Command::Count { command } => {
            let db = Database::open(&cli.config)?;
            db::run_migrations(&db.url)?;
            let result = runtime()?.block_on(count(&db.url, command));
            let stopped = db.stop();
            result.and(stopped)
        }
        Command::Admin {
            command: AdminCommand::Create { email },
        } => {
            let db = Database::open(&cli.config)?;
            db::run_migrations(&db.url)?;
            let result = runtime()?.block_on(create_admin(&db.url, &email));
            let stopped = db.stop();
            result.and(stopped)
        }
        Command::Admin {
            command: AdminCommand::Reset2fa { email },
        } => {
            let db = Database::open(&cli.config)?;
            db::run_migrations(&db.url)?;
            let result =
                runtime()?.block_on(reset_second_factor(&db.url, &email, &cli.config.base_url()));
            let stopped = db.stop();
            result.and(stopped)
        }
    }
}

/// Draws a progress bar on the terminal for a file of `size` bytes: `(rows, bytes read)`.
fn progress_bar(size: u64) -> impl FnMut(u64, u64) {
    move |rows: u64, bytes: u64| {
        use std::io::Write;
        let pct = bytes * 100 / size.max(1);
        let bar: String = (0..30)
            .map(|i| if i * 100 / 30 < pct { '#' } else { '.' })
            .collect();
        eprint!("\r[{bar}] {pct:>3}%  {rows} rows checked");
        let _ = std::io::stderr().flush();
    }
}

/// Writes the report of a refused file next to it (or to `report`) and says what happened.
fn refused(
    file: &std::path::Path,
    report: Option<std::path::PathBuf>,
    outcome: &crate::db::import::ImportOutcome,
    what: &str,
) -> anyhow::Error {
    let report = report.unwrap_or_else(|| {
        let mut p = file.as_os_str().to_owned();
        p.push(".errors.csv");
        p.into()
    });
    let written = outcome
        .report_csv()
        .and_then(|csv| Ok(std::fs::write(&report, csv)?))
        .with_context(|| format!("writing {}", report.display()));
    if let Err(e) = written {
        return e;
    }
    let first: Vec<String> = outcome
        .errors
        .iter()
        .take(5)
        .map(|e| {
            format!(
                "  line {}, {}: {}",
                e.line,
                if e.column.is_empty() { "-" } else { &e.column },
                e.reason
            )
        })
        .collect();
    anyhow::anyhow!(
        "nothing was {what}: {} problem(s) in {} row(s) read.\n{}\nEvery rejected row is listed in {}",
        outcome.error_count,
        outcome.rows,
        first.join("\n"),
        report.display()
    )
}

async fn import(url: &str, command: ImportCommand) -> Result<()> {
    let (file, report, what) = match &command {
        ImportCommand::Units { file, report } => (file, report.clone(), "units"),
        ImportCommand::Sales { file, report } => (file, report.clone(), "sales links"),
        ImportCommand::Components { file, report } => (file, report.clone(), "components"),
    };
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len()
        .max(1);
    let mut client = crate::db::import::connect(url).await?;
    db::priority::lower_backend(&client).await;
    let started = std::time::Instant::now();
    let actor = format!(
        "import:{}",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let open = || -> Result<_> {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        Ok(std::io::BufReader::with_capacity(1 << 20, f))
    };
    let progress = progress_bar(size);
    let outcome = match command {
        ImportCommand::Units { .. } => {
            crate::db::import::import_units(&mut client, open, &actor, progress).await?
        }
        ImportCommand::Sales { .. } => {
            let today = chrono::Local::now().date_naive();
            crate::db::sales::import_sales(&mut client, open()?, &actor, today, progress).await?
        }
        ImportCommand::Components { .. } => {
            crate::db::genealogy::import_components(&mut client, open()?, &actor, progress).await?
        }
    };
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    if outcome.ok() {
        println!(
            "Imported {} {what} from {} in {secs:.1} s.",
            outcome.inserted,
            file.display()
        );
        return Ok(());
    }
    Err(refused(file, report, &outcome, "imported"))
}

async fn count(url: &str, command: CountCommand) -> Result<()> {
    use crate::db::counts::{self, Actor};
    let mut client = crate::db::import::connect(url).await?;
    let actor = Actor {
        account_id: None,
        name: "cli".into(),
        ip: None,
    };
    let started = std::time::Instant::now();
    match command {
        CountCommand::Upload {
            count,
            file,
            report,
        } => {
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            let input = std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            let how = format!(
                "command line, {}",
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            let outcome =
                counts::upload_scans(&mut client, count, input, &actor, &how, progress_bar(size))
                    .await?;
            eprintln!();
            if !outcome.ok() {
                return Err(refused(&file, report, &outcome, "added"));
            }
            println!(
                "Added {} scans to stock count {count} from {} in {:.1} s.",
                outcome.inserted,
                file.display(),
                started.elapsed().as_secs_f64()
            );
        }
        CountCommand::Reconcile { count } => {
            let tally = counts::reconcile(&mut client, count, &actor).await?;
            println!(
                "Reconciled stock count {count} in {:.2} s: {} line(s).",
                started.elapsed().as_secs_f64(),
                tally.total()
            );
            for c in crate::domain::counts::Category::ALL {
                println!("  {:<16} {:>10}", c.as_str(), tally.get(c));
            }
        }
    }
    Ok(())
}

async fn worker(config: &Config, url: &str) -> Result<()> {
    let pool = db::build_pool(url, 4)?;
    let mailer = crate::jobs::outbox::Mailer::new(
        config.smtp_url.as_deref(),
        config.data_dir.join("mail"),
        &config.mail_from,
    )?;
    println!(
        "Worker running (outbox: {}; reminders and retention hourly); Ctrl-C stops it.",
        mailer.describe()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let chores =
        crate::jobs::reminders::Schedule::new(config.base_url(), config.audit_retention_days)
            .run(pool.clone());
    tokio::select! {
        _ = crate::jobs::outbox::run(pool, mailer, crate::web::worker_settings(config)) => {}
        _ = chores => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// A password for a generated account: 20 random letters and digits in groups of five.
pub fn generated_password() -> String {
    use rand::Rng;
    let chars: Vec<char> = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

async fn reset_second_factor(url: &str, email: &str, base: &str) -> Result<()> {
    let parsed =
        crate::domain::account::Email::parse(email).map_err(|e| anyhow::anyhow!("{email}: {e}"))?;
    let mut conn = crate::db::tls::connect(url).await?;
    let account = crate::db::accounts::Account::find_by_email(&mut conn, &parsed)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account has the address {email}"))?;
    let reset = {
        use diesel_async::AsyncConnection;
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            if !crate::db::second_factor::forget(conn, account.id).await? {
                return Ok(false);
            }
            // Whoever is signed in signs in again (and sets it up again where the role needs it).
            crate::db::accounts::SessionRow::delete_for_account(conn, account.id).await?;
            crate::db::outbox::OutboxMail::enqueue(
                conn,
                &crate::mail::messages::second_factor_changed(base, &account.email, None)?,
            )
            .await?;
            crate::db::accounts::AuditEntry::record(
                conn,
                crate::db::accounts::AuditEvent {
                    event: "mfa_reset",
                    subject_id: Some(account.id),
                    detail: Some("command line"),
                    ..Default::default()
                },
            )
            .await?;
            Ok(true)
        })
        .await?
    };
    if !reset {
        println!("{email} had no two-step sign-in: nothing to reset.");
        return Ok(());
    }
    println!("Two-step sign-in of {email} is off; it is set up again from /account/2fa.");
    Ok(())
}

async fn create_admin(url: &str, email: &str) -> Result<()> {
    use std::io::{IsTerminal, Read};
    let email =
        crate::domain::account::Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let (password, generated) = if std::io::stdin().is_terminal() {
        (generated_password(), true)
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        let pw = s.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            (generated_password(), true)
        } else {
            (pw, false)
        }
    };
    crate::domain::account::check_password(&password, &[email.as_str()])
        .map_err(|e| anyhow::anyhow!("password refused: {e}"))?;
    let hash = crate::passwords::hash(password.clone()).await?;
    let mut conn = crate::db::tls::connect(url).await?;
    let account = crate::db::accounts::Account::create(
        &mut conn,
        &email,
        Some(&hash),
        crate::domain::account::Role::Admin,
        true,
    )
    .await?
    .ok_or_else(|| {
        anyhow::anyhow!(
            "{email} already has an account; an administrator can change its role in /admin/users"
        )
    })?;
    crate::db::accounts::AuditEntry::record(
        &mut conn,
        crate::db::accounts::AuditEvent {
            event: "admin_created",
            subject_id: Some(account.id),
            detail: Some("command line"),
            ..Default::default()
        },
    )
    .await?;
    println!("Administrator {email} created.");
    if generated {
        println!("Password (shown once): {password}");
    }
    Ok(())
}

/// For imports: reading and checking the file runs on this thread while the database
/// connection's task sends the rows from another, so the two overlap.
/// Both run at the bulk priority (`db::priority`), so that lookups served meanwhile keep the CPU.
fn bulk_runtime() -> Result<tokio::runtime::Runtime> {
    db::priority::lower_this_thread();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(db::priority::lower_this_thread)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn seed_demo(url: &str) -> Result<seed::SeedSummary> {
    let mut conn = crate::db::tls::connect(url).await?;
    seed::seed_demo(&mut conn, chrono::Utc::now().date_naive()).await
}

fn print_demo(summary: &seed::SeedSummary) {
    println!(
        "Demo catalogue loaded: {} units. Serials to try:",
        summary.units
    );
    for (serial, what) in &summary.examples {
        println!("  {serial:<48} {what}");
    }
}

fn serve(config: &Config) -> Result<()> {
    let db = Database::open(config)?;
    let applied = db::run_migrations(&db.url)?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied migrations");
    }
    let result = actix_web::rt::System::new().block_on(serve_async(config, &db));
    // PostgreSQL is stopped only after the server has drained, whatever the outcome.
    let stopped = db.stop();
    result.and(stopped)
}

async fn serve_async(config: &Config, db: &Database) -> Result<()> {
    if db.is_embedded() && !config.no_demo {
        let mut conn = crate::db::tls::connect(&db.url).await?;
        let models: i64 = {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            crate::db::schema::product_models::table
                .count()
                .get_result(&mut conn)
                .await?
        };
        if models == 0 {
            let summary = seed::seed_demo(&mut conn, chrono::Utc::now().date_naive()).await?;
            print_demo(&summary);
            let users = seed::seed_demo_users(&mut conn, generated_password).await?;
            if !users.is_empty() {
                println!("Demo sign-ins (shown once; change them in the account page):");
                for (email, role, password) in users {
                    println!("  {role:<9} {email:<28} {password}");
                }
            }
        }
    }
    let pool = db::build_pool(&db.url, config.db_pool_size)?;
    // Bulk work (imports, sales links) opens its own connections for COPY.
    let mut config = config.clone();
    config.database_url = Some(db.url.clone());
    let config = &config;
    let app = Application::build(config, pool).await?;
    let host = config
        .bind
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or("127.0.0.1");
    println!("Portal listening on http://{host}:{}", app.port());
    let handle = app.handle();
    let mut server = actix_web::rt::spawn(app.run_until_stopped());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = &mut server => return r.context("server task")?.context("server"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received; finishing requests in flight"),
        _ = term.recv() => tracing::info!("SIGTERM received; finishing requests in flight"),
    }
    handle.stop(true).await;
    server.await.context("server task")?.context("server")?;
    tracing::info!("server stopped");
    Ok(())
}
