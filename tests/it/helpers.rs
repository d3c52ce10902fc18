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
        migrate_and_seed(&tdb.url_for(&tdb.template));
        tdb
    })
}

/// Migrates the database at `url` and loads the demo catalogue into it.
pub fn migrate_and_seed(url: &str) {
    db::run_migrations(url).expect("migrating the database");
    let url = url.to_owned();
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
    .expect("seeding the database");
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
/// A new database without tables (for tests of what `serve` does to an empty one).
pub fn empty_database() -> String {
    let tdb = test_db();
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    ddl(&tdb.admin_url, &format!("CREATE DATABASE {name}")).expect("creating a database");
    tdb.url_for(&name)
}

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
    /// This app's own data directory (uploads, mail files).
    pub data_dir: std::path::PathBuf,
}

pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".into();
    config.workers = 1;
    config.db_pool_size = 4;
    // Most tests make many lookups from one address; the rate-limit tests set their own.
    config.lookup_rate_per_minute = 0;
    config.trusted_proxies = Default::default();
    // Mail tests turn the worker on with their own SMTP server; nothing is written elsewhere.
    config.run_worker = false;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    config.data_dir = std::env::temp_dir().join(format!(
        "recall-portal-it-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    config.outbox_retry_base_ms = 200;
    config.auth_rate_per_minute = 1000;
    // Tests sign admins in with a password alone; tests/it/second_factor.rs turns it on.
    config.require_2fa = recall_portal::config::SecondFactorPolicy::Off;
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
        data_dir: config.data_dir.clone(),
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

impl TestApp {
    /// A client that keeps cookies, like a browser (and, like the others, does not follow
    /// redirects, so tests see each 303).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub async fn get_with(
        &self,
        client: &reqwest::Client,
        path: &str,
    ) -> (u16, String, Option<String>) {
        let r = client
            .get(format!("{}{path}", self.address))
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

    /// POSTs a form; returns status, body and Location.
    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let r = client
            .post(format!("{}{path}", self.address))
            .form(form)
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

    /// GETs `form_page`, then posts `form` to `action` with that page's CSRF token.
    pub async fn submit(
        &self,
        client: &reqwest::Client,
        form_page: &str,
        action: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let (status, body, _) = self.get_with(client, form_page).await;
        assert_eq!(status, 200, "{form_page}: {body}");
        let token = csrf_of(&body);
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf_token", &token));
        self.post_with(client, action, &fields).await
    }

    /// Like [`TestApp::submit`], as `multipart/form-data` with `files` (field, file name, media
    /// type, content) after the text fields, as a browser sends a form with file inputs.
    pub async fn submit_multipart(
        &self,
        client: &reqwest::Client,
        form_page: &str,
        action: &str,
        form: &[(&str, &str)],
        files: &[(&str, &str, &str, Vec<u8>)],
    ) -> (u16, String, Option<String>) {
        let (status, body, _) = self.get_with(client, form_page).await;
        assert_eq!(status, 200, "{form_page}: {body}");
        let mut multipart = reqwest::multipart::Form::new().text("csrf_token", csrf_of(&body));
        for (name, value) in form {
            multipart = multipart.text(name.to_string(), value.to_string());
        }
        for (field, file_name, mime, bytes) in files {
            multipart = multipart.part(
                field.to_string(),
                reqwest::multipart::Part::bytes(bytes.clone())
                    .file_name(file_name.to_string())
                    .mime_str(mime)
                    .unwrap(),
            );
        }
        let r = client
            .post(format!("{}{action}", self.address))
            .multipart(multipart)
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

    /// A handle on a database alone (no portal serves it), for its SQL helpers.
    pub fn probe(db_url: &str) -> TestApp {
        TestApp {
            address: String::new(),
            client: reqwest::Client::new(),
            db_url: db_url.to_owned(),
            data_dir: std::env::temp_dir(),
        }
    }

    /// Creates an account directly in the database (confirmed email).
    pub fn create_user(&self, email: &str, password: &str, role: &str) {
        let hash = recall_portal::passwords::hash_blocking(password).unwrap();
        self.sql(&format!(
            "INSERT INTO accounts (email, password_hash, role, email_verified_at) VALUES ('{email}', '{hash}', '{role}', now())"
        ));
    }

    /// Signs `client` in and checks it worked.
    pub async fn login(&self, client: &reqwest::Client, email: &str, password: &str) {
        let (status, body, location) = self
            .submit(
                client,
                "/login",
                "/login",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(status, 303, "sign-in failed: {body}");
        assert!(location.is_some());
    }

    /// One bigint from a query on this test's database.
    pub fn scalar(&self, sql: &str) -> i64 {
        let (url, sql) = (self.db_url.clone(), sql.to_owned());
        db::blocking(move || {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct V {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                v: i64,
            }
            let mut conn = <diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
                diesel_async::AsyncPgConnection,
            > as diesel::Connection>::establish(&url)?;
            let r: V =
                diesel::sql_query(format!("SELECT ({sql})::bigint AS v")).get_result(&mut conn)?;
            Ok(r.v)
        })
        .unwrap()
    }

    /// One text value from a query on this test's database.
    pub fn text(&self, sql: &str) -> String {
        let (url, sql) = (self.db_url.clone(), sql.to_owned());
        db::blocking(move || {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct V {
                #[diesel(sql_type = diesel::sql_types::Text)]
                v: String,
            }
            let mut conn = <diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
                diesel_async::AsyncPgConnection,
            > as diesel::Connection>::establish(&url)?;
            let r: V =
                diesel::sql_query(format!("SELECT ({sql})::text AS v")).get_result(&mut conn)?;
            Ok(r.v)
        })
        .unwrap()
    }
}

/// The CSRF token in a page's first form.
pub fn csrf_of(body: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF token in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// The value of the session cookie a client holds for the app.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.cookies()
        .find(|c| c.name() == "portal_session")
        .map(|c| c.value().to_owned())
}

/// An app that delivers its mail to a real SMTP server on loopback.
pub async fn app_with_mail() -> (TestApp, crate::smtp::SmtpServer) {
    let smtp = crate::smtp::SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(move |c| {
        c.run_worker = true;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    (app, smtp)
}

/// The password `user` gives everyone.
pub const USER_PW: &str = "correct horse battery staple";

/// A client signed in as a new account `email` with `role` (password [`USER_PW`]).
pub async fn user(app: &TestApp, email: &str, role: &str) -> reqwest::Client {
    app.create_user(email, USER_PW, role);
    let c = app.browser();
    app.login(&c, email, USER_PW).await;
    c
}

/// A real 1×1 PNG.
pub fn png() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
        .unwrap()
}
