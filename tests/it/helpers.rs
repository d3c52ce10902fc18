//! `spawn_app()`: a portal on a free port over a fresh clone of a migrated, demo-seeded template
//! database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use recall_portal::config::Config;
use recall_portal::db::{self, embedded::Cluster};
use recall_portal::web::Application;

pub struct TestDb {
    admin_url: String,
    template: String,
    cluster: Option<Cluster>,
}

impl TestDb {
    /// `url` with its database name replaced by `name`.
    pub fn url_for(&self, name: &str) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&self.admin_url);
        format!("{base}/{name}")
    }
}

static TEST_DB: OnceLock<TestDb> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);
/// CREATE DATABASE statements are issued one at a time. Test databases are never dropped while
/// tests run: DROP DATABASE waits on a ProcSignalBarrier that the pools of other running tests
/// can hold up for a minute. A throwaway cluster is deleted whole at exit; on a server given by
/// TEST_DATABASE_URL, the databases of finished test runs are dropped when the next run starts.
static DDL: Mutex<()> = Mutex::new(());

fn ddl(url: &str, sql: &str) -> anyhow::Result<()> {
    let _one_at_a_time = DDL.lock().unwrap_or_else(|e| e.into_inner());
    db::execute_sync(url, sql)
}

extern "C" fn stop_cluster_at_exit() {
    if let Some(TestDb {
        cluster: Some(c), ..
    }) = TEST_DB.get()
    {
        let _ = c.stop();
        if let Some(root) = c.data_dir().parent() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

pub fn test_db() -> &'static TestDb {
    TEST_DB.get_or_init(|| {
        let (cluster, admin_url) = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => (None, url),
            _ => {
                let c = db::embedded::start_throwaway().expect("starting the throwaway PostgreSQL");
                let url = c.url("postgres");
                // SAFETY: registering a plain extern "C" fn.
                unsafe { libc::atexit(stop_cluster_at_exit) };
                (Some(c), url)
            }
        };
        let template = format!("tmpl_{}", std::process::id());
        let tdb = TestDb {
            admin_url,
            template,
            cluster,
        };
        if tdb.cluster.is_none() {
            drop_databases_of_finished_runs(&tdb.admin_url);
        }
        db::execute_sync(
            &tdb.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", tdb.template),
        )
        .unwrap();
        db::execute_sync(&tdb.admin_url, &format!("CREATE DATABASE {}", tdb.template)).unwrap();
        let url = tdb.url_for(&tdb.template);
        db::run_migrations(&url).expect("migrating the template database");
        db::blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                use diesel_async::AsyncConnection;
                let mut conn = diesel_async::AsyncPgConnection::establish(&url).await?;
                recall_portal::db::seed::seed_demo(&mut conn, chrono::Utc::now().date_naive()).await
            })
        })
        .expect("seeding the template database");
        tdb
    })
}

fn drop_databases_of_finished_runs(admin_url: &str) {
    let url = admin_url.to_owned();
    let names: Vec<String> = db::blocking(move || {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            datname: String,
        }
        let mut conn = <diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
            diesel_async::AsyncPgConnection,
        > as diesel::Connection>::establish(&url)?;
        let rows: Vec<Name> =
            diesel::sql_query("SELECT datname FROM pg_database WHERE datname ~ '^(t|tmpl)_[0-9]+'")
                .load(&mut conn)?;
        Ok(rows.into_iter().map(|r| r.datname).collect())
    })
    .unwrap_or_default();
    for name in names {
        let pid: i32 = name
            .trim_start_matches("tmpl_")
            .trim_start_matches("t_")
            .split('_')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        // SAFETY: existence check only.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = db::execute_sync(
                admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// Creates a database cloned from the template and returns its URL and name.
pub fn fresh_database() -> (String, String) {
    let tdb = test_db();
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    ddl(
        &tdb.admin_url,
        &format!("CREATE DATABASE {name} TEMPLATE {}", tdb.template),
    )
    .expect("cloning the template");
    (tdb.url_for(&name), name)
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db_url: String,
}

pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".into();
    config.workers = 1;
    config.db_pool_size = 4;
    // Most tests make many lookups from one address; the rate-limit tests set their own.
    config.lookup_rate_per_minute = 0;
    config.trusted_proxies = Default::default();
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let (db_url, _) = fresh_database();
    let mut config = test_config();
    config.database_url = Some(db_url.clone());
    adjust(&mut config);
    let pool = db::build_pool(
        config.database_url.as_deref().unwrap_or(&db_url),
        config.db_pool_size,
    )
    .unwrap();
    let app = Application::build(&config, pool)
        .await
        .expect("building the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        db_url,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request failed")
    }

    /// GET returning status and body.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// Runs SQL against this test's database.
    pub fn sql(&self, sql: &str) {
        db::execute_sync(&self.db_url, sql).unwrap();
    }
}

/// Percent-encodes a query value.
pub fn q(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
