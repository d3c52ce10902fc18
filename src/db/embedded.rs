//! A private PostgreSQL cluster run from the server binaries installed on this machine: the
//! default database of `serve` when no `DATABASE_URL` is given, and the throwaway cluster of the
//! test suite.
//!
//! PostgreSQL refuses to run as root, so when the portal runs as root the cluster directory is
//! handed to the `postgres` system user and `initdb`/`postgres` run as that user.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long PostgreSQL may take to become ready (a cold start on a slow disk replays WAL).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an orderly ("fast") shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, postgres) were not found. \
Install them (Debian/Ubuntu: `apt-get install postgresql`; or set PG_BINDIR to the directory \
holding initdb and postgres), or point the portal at an existing server with DATABASE_URL.";

/// Where the PostgreSQL server binaries are: `$PG_BINDIR`, else `pg_config --bindir` if it
/// holds `initdb`, else the newest `/usr/lib/postgresql/N/bin`.
pub fn find_bindir() -> Result<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = std::env::var_os("PG_BINDIR").map(PathBuf::from) {
        if has_initdb(&d) {
            return Ok(d);
        }
        bail!(
            "PG_BINDIR={} does not contain initdb and postgres. {INSTALL_HINT}",
            d.display()
        );
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&d) {
            return Ok(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_initdb(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, d)| d)
        .ok_or_else(|| anyhow!(INSTALL_HINT))
}

/// The system user the server runs as when we are root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = c"postgres";
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy the ids at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!(
            "the portal runs as root, and PostgreSQL refuses to run as root, but there is no \
             `postgres` system user to run it as. Create one (`useradd --system postgres`), run \
             the portal as a normal user, or set DATABASE_URL."
        );
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

/// As root the server runs as `postgres`, which must be able to reach its data directory.
fn check_reachable(data_dir: &Path, who: RunAs) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let absolute = std::path::absolute(data_dir)?;
    for dir in absolute.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        let searchable = meta.mode() & 0o001 != 0
            || (meta.uid() == who.uid && meta.mode() & 0o100 != 0)
            || (meta.gid() == who.gid && meta.mode() & 0o010 != 0);
        if !searchable {
            bail!(
                "PostgreSQL runs as the `postgres` system user (the portal runs as root), and that \
                 user cannot enter {}, a parent of the data directory. Allow it (`chmod o+x {}`) or \
                 choose a data directory elsewhere.",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn chown(path: &Path, who: Option<RunAs>) -> Result<()> {
    if let Some(RunAs { uid, gid }) = who {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// Every child is spawned from one thread that lives as long as the process, because
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, not the process.
type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

fn spawn_detached_from_callers(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("pg-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The channel lives in a static, so this thread never ends.
            })
            .expect("spawning the pg-spawner thread");
        Mutex::new(tx)
    });
    // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .map_err(|_| io::Error::other("spawner poisoned"))?
        .send((cmd, reply_tx))
        .map_err(io::Error::other)?;
    reply_rx.recv().map_err(io::Error::other)?
}

fn base_command(bin: &Path, who: Option<RunAs>) -> Command {
    let mut cmd = Command::new(bin);
    // Inherited PG* variables (PGDATA, PGPORT, PGHOST…) would redirect the server or initdb.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    cmd.env("LC_ALL", "C").current_dir("/").stdin(Stdio::null());
    if let Some(RunAs { uid, gid }) = who {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn random_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence. EPERM means it exists but is not ours.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Whether `pid` is a PostgreSQL server running on `data_dir` (a pid in a stale
/// `postmaster.pid` may by now belong to an unrelated process).
fn is_postmaster_of(pid: i32, data_dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let is_postgres = args
        .first()
        .is_some_and(|a| a.ends_with(b"postgres") || a.ends_with(b"postmaster"));
    is_postgres
        && args.iter().any(|a| {
            *a == dir.as_os_str().as_encoded_bytes()
                || *a == data_dir.as_os_str().as_encoded_bytes()
        })
}

/// What kind of cluster to run.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// PGDATA: created (and initialised) when it does not exist.
    pub data_dir: PathBuf,
    /// The superuser password is kept here (mode 0600), outside PGDATA.
    pub password_file: PathBuf,
    /// Server log, appended to.
    pub log_file: PathBuf,
    /// Tests: no fsync, no full-page writes (durability does not matter, speed does).
    pub throwaway: bool,
    /// shared_buffers in MB (0: PostgreSQL's default, 128 MB).
    pub shared_buffers_mb: u64,
}

/// A quarter of the machine's memory, between 128 MB and 4 GB: PostgreSQL's own advice for a
/// dedicated server. At the default 128 MB, 10,000,000 units do not fit and every lookup reads
/// its pages again through the kernel (measured: 4 GB gave batch lookups 1.5 times the
/// throughput; BENCHMARKS.md). The memory is only taken as pages are used.
pub fn default_shared_buffers_mb() -> u64 {
    let total_kb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    (total_kb / 1024 / 4).clamp(128, 4096)
}

/// A running private PostgreSQL server. Stopped (fast shutdown) by [`Cluster::stop`] or on drop.
pub struct Cluster {
    opts: ClusterOptions,
    port: u16,
    password: String,
    child: Mutex<Option<Child>>,
    pub initialised_now: bool,
}

impl Cluster {
    pub fn start(opts: ClusterOptions) -> Result<Self> {
        // The server runs with `/` as its working directory: every path it gets is absolute.
        let opts = ClusterOptions {
            data_dir: std::path::absolute(&opts.data_dir)?,
            password_file: std::path::absolute(&opts.password_file)?,
            log_file: std::path::absolute(&opts.log_file)?,
            ..opts
        };
        let bindir = find_bindir()?;
        let who = run_as()?;
        let parent = opts.data_dir.parent().unwrap_or(Path::new("/"));
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        if let Some(who) = who {
            check_reachable(&opts.data_dir, who)?;
        }
        let initialised_now = !opts.data_dir.join("PG_VERSION").exists();
        if initialised_now {
            initdb(&bindir, &opts, who)?;
        } else {
            chown(&opts.data_dir, who)?;
        }
        let password = fs::read_to_string(&opts.password_file)
            .with_context(|| {
                format!(
                    "reading the database password from {}",
                    opts.password_file.display()
                )
            })?
            .trim()
            .to_owned();
        stop_orphan(&opts.data_dir)?;

        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            match launch(&bindir, &opts, who, port) {
                Ok(child) => {
                    return Ok(Cluster {
                        opts,
                        port,
                        password,
                        child: Mutex::new(Some(child)),
                        initialised_now,
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("PostgreSQL did not start")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.opts.data_dir
    }

    /// A connection URL for database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Starts the server again, on the same port, after [`Cluster::stop`] (what a restart of
    /// the database looks like to its clients; the fault tests use it). Idempotent.
    pub fn start_again(&self) -> Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow!("poisoned"))?;
        if child.is_none() {
            *child = Some(launch(&find_bindir()?, &self.opts, run_as()?, self.port)?);
        }
        Ok(())
    }

    /// Fast shutdown (SIGINT): open transactions are rolled back, data is flushed. Idempotent.
    pub fn stop(&self) -> Result<()> {
        let Some(mut child) = self.child.lock().map_err(|_| anyhow!("poisoned"))?.take() else {
            return Ok(());
        };
        // SAFETY: plain signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("PostgreSQL did not stop within {STOP_TIMEOUT:?} and was killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("stopping PostgreSQL: {e:#}");
        }
    }
}

fn initdb(bindir: &Path, opts: &ClusterOptions, who: Option<RunAs>) -> Result<()> {
    if opts.data_dir.exists() && fs::read_dir(&opts.data_dir)?.next().is_some() {
        bail!(
            "{} exists but is not a PostgreSQL data directory (no PG_VERSION); move it away or choose another data directory",
            opts.data_dir.display()
        );
    }
    fs::create_dir_all(&opts.data_dir)?;
    fs::set_permissions(&opts.data_dir, fs::Permissions::from_mode(0o700))?;
    chown(&opts.data_dir, who)?;

    let password = random_password();
    write_private(&opts.password_file, &password)?;
    // initdb reads the password from a file the server user can read; it is removed at once.
    let pwfile = opts.data_dir.with_extension("initdb-pw");
    write_private(&pwfile, &password)?;
    chown(&pwfile, who)?;
    let out = base_command(&bindir.join("initdb"), who)
        .arg("-D")
        .arg(&opts.data_dir)
        .args([
            "-U",
            "postgres",
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output();
    let _ = fs::remove_file(&pwfile);
    let out = out.context("running initdb")?;
    if !out.status.success() {
        bail!(
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

/// A server left running by a portal that was killed outright (the death signal stops it, but
/// not instantly) is asked to stop before we start our own.
fn stop_orphan(data_dir: &Path) -> Result<()> {
    let Ok(pidfile) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return Ok(());
    };
    let pid: i32 = pidfile
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    if !pid_alive(pid) || !is_postmaster_of(pid, data_dir) {
        return Ok(());
    }
    tracing::warn!(
        pid,
        "a PostgreSQL server from an earlier run is still running on this data directory; stopping it"
    );
    // SAFETY: plain signal.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while pid_alive(pid) {
        if Instant::now() > deadline {
            bail!(
                "a PostgreSQL server (pid {pid}) still runs on {} and did not stop",
                data_dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn launch(bindir: &Path, opts: &ClusterOptions, who: Option<RunAs>, port: u16) -> Result<Child> {
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(&opts.log_file)
        .with_context(|| format!("opening {}", opts.log_file.display()))?;
    let log_start = log.seek(SeekFrom::End(0))?;
    let mut cmd = base_command(&bindir.join("postgres"), who);
    cmd.arg("-D")
        .arg(&opts.data_dir)
        .args(["-p", &port.to_string()])
        // TCP on loopback only; no Unix socket, so no socket directory to own or clean up.
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ])
        .args(["-c", "max_connections=200"])
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    if opts.shared_buffers_mb > 0 {
        // The planner may count on the kernel's cache too.
        cmd.args([
            "-c".to_owned(),
            format!("shared_buffers={}MB", opts.shared_buffers_mb),
            "-c".to_owned(),
            format!("effective_cache_size={}MB", opts.shared_buffers_mb * 3),
        ]);
    }
    if opts.throwaway {
        cmd.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    let mut child = spawn_detached_from_callers(cmd).context("starting postgres")?;
    let pid_path = opts.data_dir.join("postmaster.pid");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut tail = String::new();
            log.seek(SeekFrom::Start(log_start))?;
            log.read_to_string(&mut tail)?;
            bail!(
                "PostgreSQL exited during start ({status}):\n{}",
                tail.trim()
            );
        }
        if let Ok(pidfile) = fs::read_to_string(&pid_path) {
            let mine = pidfile.lines().next().map(str::trim) == Some(&child.id().to_string());
            if mine && pidfile.lines().nth(7).map(str::trim) == Some("ready") {
                return Ok(child);
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "PostgreSQL did not become ready within {READY_TIMEOUT:?}; see {}",
                opts.log_file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An exclusive lock on a data directory, held for as long as this value lives, so two portal
/// processes never run one embedded cluster.
pub struct DataDirLock {
    _file: fs::File,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join("portal.lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "another portal (pid {}) is already running with data directory {}. Stop it first, \
                 or start this one with another --data-dir.",
                holder.trim(),
                dir.display()
            );
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(DataDirLock { _file: file })
    }
}

/// The test suite's throwaway cluster: in `/dev/shm` when available (initdb + start ≈ 0.5 s),
/// removed at process exit. Directories left by killed test runs are removed first.
pub fn start_throwaway() -> Result<Cluster> {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    for entry in fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name
            .strip_prefix("recall-portal-test-")
            .and_then(|r| r.split('-').next()?.parse::<i32>().ok())
            && !pid_alive(pid)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let root = base.join(format!(
        "recall-portal-test-{}-{}",
        std::process::id(),
        random_password()[..6].to_lowercase()
    ));
    fs::create_dir_all(&root)?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
    let cluster = Cluster::start(ClusterOptions {
        data_dir: root.join("pg"),
        password_file: root.join("password"),
        log_file: root.join("postgres.log"),
        throwaway: true,
        shared_buffers_mb: 0,
    })?;
    Ok(cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shared_buffers_are_a_quarter_of_memory_within_bounds() {
        let mb = default_shared_buffers_mb();
        assert!((128..=4096).contains(&mb), "{mb}");
    }
}
