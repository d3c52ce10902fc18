//! Database access: the pool, embedded migrations, the private PostgreSQL cluster, and the
//! queries (each an inherent async fn on a model type; handlers never build SQL).

pub mod accounts;
pub mod api_tokens;
pub mod backup;
pub mod catalogue;
pub mod claim_reports;
pub mod claims;
pub mod counts;
pub mod embedded;
pub mod genealogy;
pub mod idempotency;
pub mod import;
pub mod jobs;
pub mod labels;
pub mod lookup;
pub mod outbox;
pub mod pictures;
pub mod priority;
pub mod readers;
pub mod recall_reports;
pub mod recalls;
pub mod registrations;
pub mod reminders;
pub mod retention;
pub mod sales;
pub mod schema;
pub mod second_factor;
pub mod seed;
pub mod stations;
pub mod stock;
pub mod tls;
pub mod warranty;

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

/// Builds the connection pool. Waiting for a connection is bounded so that a database outage
/// turns into quick 503 answers instead of requests that hang.
pub fn build_pool(url: &str, size: usize) -> Result<DbPool> {
    // `Fast` recycling: the default (`Verified`) runs `SELECT 1` on every checkout, a second
    // round trip per lookup. A connection broken by a database restart fails its next query
    // and is then discarded by the pool.
    let mut manager_config = ManagerConfig::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    // Connections open through `tls` (the URL's sslmode), not diesel-async's plain default.
    manager_config.custom_setup = Box::new(|url| Box::pin(tls::connect(url)));
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .context("building the database pool")
}

/// Runs `f` on a fresh OS thread outside any async runtime and waits for it: diesel's
/// synchronous migration harness (over `AsyncConnectionWrapper`) starts a runtime of its own,
/// which must not happen inside the caller's.
pub fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    std::thread::spawn(f)
        .join()
        .map_err(|_| anyhow!("database setup thread panicked"))?
}

type SyncConn = diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;

fn establish_sync(url: &str) -> Result<SyncConn> {
    tls::connect_blocking(url)
}

/// Applies pending migrations. An advisory lock serialises portals that start at the same time
/// against one database.
pub fn run_migrations(url: &str) -> Result<Vec<String>> {
    let url = url.to_owned();
    blocking(move || {
        let mut conn = establish_sync(&url)?;
        use diesel::RunQueryDsl;
        const LOCK: &str = "SELECT pg_advisory_lock(7461290001)";
        diesel::sql_query(LOCK)
            .execute(&mut conn)
            .context("taking the migration lock")?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect())
            .map_err(|e| anyhow!("running migrations: {e}"));
        diesel::sql_query("SELECT pg_advisory_unlock(7461290001)")
            .execute(&mut conn)
            .ok();
        applied
    })
}

/// Runs one statement outside a transaction (e.g. `CREATE DATABASE`) on `url`.
pub fn execute_sync(url: &str, sql: &str) -> Result<()> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    blocking(move || {
        let mut conn = establish_sync(&url)?;
        use diesel::RunQueryDsl;
        diesel::sql_query(&sql)
            .execute(&mut conn)
            .with_context(|| format!("executing {sql}"))?;
        Ok(())
    })
}

/// Whether database `name` exists on the server behind `url`.
pub fn database_exists(url: &str, name: &str) -> Result<bool> {
    let (url, name) = (url.to_owned(), name.to_owned());
    blocking(move || {
        let mut conn = establish_sync(&url)?;
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let c: Count =
            diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
                .bind::<diesel::sql_types::Text, _>(&name)
                .get_result(&mut conn)?;
        Ok(c.n > 0)
    })
}

/// Whether the database at `url` has a table `name` in its search path.
pub fn table_exists(url: &str, name: &str) -> Result<bool> {
    let (url, name) = (url.to_owned(), name.to_owned());
    blocking(move || {
        let mut conn = establish_sync(&url)?;
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            found: bool,
        }
        let f: Found = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS found")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)?;
        Ok(f.found)
    })
}

/// Whether an error means the database could not be reached (503) rather than a bug (500).
pub fn is_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::Error;
    match e {
        Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("terminating connection")
                || m.contains("the database system is")
                || m.contains("connection")
        }
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}
