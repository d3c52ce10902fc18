//! Configuration: every setting is a command-line flag and an environment variable, with the
//! defaults listed in `.env.example` and the README.

use std::net::IpAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "PORTAL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Data directory: the embedded PostgreSQL cluster, its log and password, the lock file.
    #[arg(long, env = "PORTAL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// PostgreSQL URL. When unset, the portal runs its own cluster in <data dir>/postgres.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The embedded cluster's shared_buffers in MB (0 = a quarter of the machine's memory,
    /// between 128 MB and 4 GB). Unused with DATABASE_URL.
    #[arg(long, env = "PORTAL_PG_SHARED_BUFFERS_MB", default_value_t = 0)]
    pub pg_shared_buffers_mb: u64,

    /// Maximum database connections per portal process.
    #[arg(long, env = "PORTAL_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// Connections each HTTP worker keeps for single lookups (/check, /api/v1/status), shared
    /// by all of that worker's lookups at once (pipelined), besides the pool.
    #[arg(long, env = "PORTAL_LOOKUP_CONNECTIONS", default_value_t = 2)]
    pub lookup_connections: usize,

    /// CPU nice value (0 to 19) of bulk work: imports' reading threads and the PostgreSQL
    /// backends of imports and recall launches, when PostgreSQL runs on this machine
    /// (0 = the same priority as lookups).
    #[arg(long, env = "PORTAL_BULK_NICE", default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub bulk_nice: i32,

    /// Bearer token that opens GET /metrics (Prometheus text format). Unset: /metrics is off.
    #[arg(long, env = "PORTAL_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// HTTP worker threads (0 = one per CPU core).
    #[arg(long, env = "PORTAL_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Lookups (/check and Digital Links) allowed per client IP per minute (0 = no limit).
    #[arg(long, env = "PORTAL_LOOKUP_RATE_PER_MINUTE", default_value_t = 120)]
    pub lookup_rate_per_minute: u32,

    /// How many lookups a client may make in a quick burst before the per-minute rate applies.
    #[arg(long, env = "PORTAL_LOOKUP_BURST", default_value_t = 30)]
    pub lookup_burst: u32,

    /// Lookups (API status, batch, recalls, unit histories) allowed per integration token per
    /// minute; a request with a valid token counts here instead of against its address
    /// (0 = no limit).
    #[arg(
        long,
        env = "PORTAL_TOKEN_LOOKUP_RATE_PER_MINUTE",
        default_value_t = 1200
    )]
    pub token_lookup_rate_per_minute: u32,

    /// How many lookups a token may make in a quick burst before its per-minute rate applies.
    #[arg(long, env = "PORTAL_TOKEN_LOOKUP_BURST", default_value_t = 300)]
    pub token_lookup_burst: u32,

    /// Comma-separated IPs of reverse proxies whose X-Forwarded-For header is trusted to name
    /// the client. Empty: the peer address is the client, X-Forwarded-For is ignored.
    #[arg(long, env = "PORTAL_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: IpList,

    /// Largest request body accepted, in bytes (larger gets 413).
    #[arg(long, env = "PORTAL_MAX_BODY_BYTES", default_value_t = 65_536)]
    pub max_body_bytes: usize,

    /// Largest file an admin may upload for an import, in bytes (1,000,000 units ≈ 50 MB).
    #[arg(long, env = "PORTAL_MAX_UPLOAD_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Seconds graceful shutdown waits for in-flight requests.
    #[arg(long, env = "PORTAL_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// The portal's public address, used in links inside mails and for the Origin check of
    /// forms. Default: http://<bind address>.
    #[arg(long, env = "PORTAL_BASE_URL")]
    pub base_url: Option<String>,

    /// Mark session cookies `Secure`: auto (when the base URL is https), true or false.
    #[arg(long, env = "PORTAL_COOKIE_SECURE", default_value = "auto")]
    pub cookie_secure: CookieSecure,

    /// Who must type a code from an authenticator app after the password: `admin` (admins),
    /// `staff` (staff and admins) or `off`. Until they set one up, their areas send them to
    /// `/account/2fa`.
    #[arg(long, env = "PORTAL_REQUIRE_2FA", default_value = "admin")]
    pub require_2fa: SecondFactorPolicy,

    /// Security-log entries (with their IP addresses) are kept this many days; 0 keeps them
    /// for ever.
    #[arg(long, env = "PORTAL_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u32,

    /// A session ends after this many minutes without a request.
    #[arg(long, env = "PORTAL_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u32,

    /// A session ends this many hours after sign-in, whatever the activity.
    #[arg(long, env = "PORTAL_SESSION_MAX_HOURS", default_value_t = 12)]
    pub session_max_hours: u32,

    /// Sign-in, sign-up and password-reset attempts per client IP per minute.
    #[arg(long, env = "PORTAL_AUTH_RATE_PER_MINUTE", default_value_t = 10)]
    pub auth_rate_per_minute: u32,

    /// Failed sign-ins in a row that lock an account for a while.
    #[arg(long, env = "PORTAL_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,

    /// How long a locked account stays locked, in minutes.
    #[arg(long, env = "PORTAL_LOCKOUT_MINUTES", default_value_t = 15)]
    pub lockout_minutes: u32,

    /// SMTP server for outgoing mail: smtp://host:port (plain), smtp://host:587?tls=required
    /// (STARTTLS), smtps://user:password@host:465 (TLS). Unset: mail is written as .eml files
    /// into <data dir>/mail.
    #[arg(long, env = "PORTAL_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The From address of outgoing mail.
    #[arg(
        long,
        env = "PORTAL_MAIL_FROM",
        default_value = "Product safety & warranty <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// Delivery attempts before a mail is parked as failed.
    #[arg(long, env = "PORTAL_OUTBOX_MAX_ATTEMPTS", default_value_t = 8)]
    pub outbox_max_attempts: u32,

    /// First retry delay of a failed mail in milliseconds; it doubles with each attempt (at most
    /// an hour).
    #[arg(long, env = "PORTAL_OUTBOX_RETRY_BASE_MS", default_value_t = 10_000)]
    pub outbox_retry_base_ms: u64,

    /// Seconds a worker holds the mails it claimed: one that dies mid-send leaves them to the
    /// others after this long. At least the time a batch of 128 takes to send.
    #[arg(long, env = "PORTAL_OUTBOX_LEASE_SECS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub outbox_lease_secs: u32,

    /// Most mails sent per second by one worker (0: as fast as the SMTP server takes them).
    /// Mail providers throttle or block bulk senders that go faster than agreed.
    #[arg(long, env = "PORTAL_MAIL_RATE_PER_SEC", default_value_t = 0)]
    pub mail_rate_per_sec: u32,

    /// Whether `serve` also runs the outbox worker (turn off when running `worker` separately).
    #[arg(long, env = "PORTAL_RUN_WORKER", default_value = "true", action = clap::ArgAction::Set)]
    pub run_worker: bool,

    /// Do not load the demo catalogue into a fresh embedded database.
    #[arg(long, env = "PORTAL_NO_DEMO", default_value_t = false)]
    pub no_demo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CookieSecure {
    Auto,
    True,
    False,
}

/// Whose accounts need two-step sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecondFactorPolicy {
    Off,
    Staff,
    Admin,
}

impl SecondFactorPolicy {
    pub fn requires(self, role: crate::domain::account::Role) -> bool {
        use crate::domain::account::Role;
        match self {
            SecondFactorPolicy::Off => false,
            SecondFactorPolicy::Staff => matches!(role, Role::Staff | Role::Admin),
            SecondFactorPolicy::Admin => role == Role::Admin,
        }
    }
}

impl Config {
    /// The public base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    pub fn secure_cookies(&self) -> bool {
        match self.cookie_secure {
            CookieSecure::Auto => self.base_url().starts_with("https://"),
            CookieSecure::True => true,
            CookieSecure::False => false,
        }
    }

    /// Defaults as if no flag or variable were given (used by tests and tools).
    pub fn defaults() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        // Parsing an empty command line cannot fail: every option has a default. Environment
        // variables are still read, which is what a tool built on the defaults wants.
        Only::try_parse_from(["portal"])
            .map(|o| o.config)
            .unwrap_or_else(|e| panic!("config defaults: {e}"))
    }
}

/// A comma-separated list of IP addresses; empty is an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList(pub Vec<IpAddr>);

impl std::str::FromStr for IpList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpAddr>()
                    .map_err(|_| format!("“{p}” is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(IpList)
    }
}
