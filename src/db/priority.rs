//! Bulk work yields the CPU to lookups. On the day of a recall an admin's million-row import
//! or a recall launch must not slow the public lookup down: the threads that read and check an
//! import's file, and the PostgreSQL backends that write an import or a launch, run at a lower
//! CPU priority (a higher nice value, `PORTAL_BULK_NICE`, 10 by default; 0 leaves them alone).
//!
//! A backend's priority can only be changed when PostgreSQL runs on this machine and the portal
//! may renice it (the embedded cluster; a local one under the same user; the portal as root).
//! The backend is found by `pg_backend_pid()` and checked to be that very backend through its
//! process title, which names the client's port: a PostgreSQL elsewhere (another host, another
//! PID namespace) is left alone. Lowering a priority is all this does: the connections so
//! lowered are the bulk work's own and are closed with it, never returned to a pool.

use std::sync::atomic::{AtomicI32, Ordering};

/// The nice value of bulk work; set once at start from the configuration.
static BULK_NICE: AtomicI32 = AtomicI32::new(10);

/// Sets the nice value bulk work runs at (clamped to 0..=19; 0 = no change).
pub fn configure(nice: i32) {
    BULK_NICE.store(nice.clamp(0, 19), Ordering::Relaxed);
}

fn bulk_nice() -> i32 {
    BULK_NICE.load(Ordering::Relaxed)
}

/// Lowers the calling thread's CPU priority to the bulk nice value (on Linux a nice value
/// belongs to a thread, so the rest of the process keeps its own). For the threads of a bulk
/// job's runtime (`on_thread_start`) and the thread that reads its file.
pub fn lower_this_thread() {
    let nice = bulk_nice();
    if nice == 0 {
        return;
    }
    // SAFETY: gettid and setpriority have no memory preconditions; the id is this thread's.
    let done = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if done != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "bulk thread keeps its priority");
    }
}

/// Lowers the priority of the PostgreSQL backend serving `client` (an import's connection).
/// Returns whether it did.
pub async fn lower_backend(client: &tokio_postgres::Client) -> bool {
    if bulk_nice() == 0 {
        return false;
    }
    match client
        .query_one("SELECT pg_backend_pid(), inet_client_port()", &[])
        .await
    {
        Ok(row) => renice(row.get(0), row.get(1)),
        Err(e) => {
            tracing::debug!(error = %e, "could not name the import's backend");
            false
        }
    }
}

/// [`lower_backend`] for a diesel connection (a recall launch's own).
pub async fn lower_diesel_backend(conn: &mut diesel_async::AsyncPgConnection) -> bool {
    use diesel::sql_types::{Integer, Nullable};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = Integer)]
        pid: i32,
        #[diesel(sql_type = Nullable<Integer>)]
        port: Option<i32>,
    }
    if bulk_nice() == 0 {
        return false;
    }
    match diesel::sql_query("SELECT pg_backend_pid() AS pid, inet_client_port() AS port")
        .get_result::<Backend>(conn)
        .await
    {
        Ok(b) => renice(b.pid, b.port),
        Err(e) => {
            tracing::debug!(error = %e, "could not name the launch's backend");
            false
        }
    }
}

/// Renices process `pid` if it is the PostgreSQL backend of the client at `port` (None: a Unix
/// socket): its title reads `postgres: … user db 127.0.0.1(port) …` or `… [local] …`.
fn renice(pid: i32, port: Option<i32>) -> bool {
    let Ok(title) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let title = String::from_utf8_lossy(&title);
    let client = match port {
        Some(p) => format!("({p})"),
        None => "[local]".to_owned(),
    };
    if !title.starts_with("postgres:") || !title.contains(&client) {
        return false;
    }
    let Ok(pid) = libc::id_t::try_from(pid) else {
        return false;
    };
    // SAFETY: setpriority has no memory preconditions; pid was checked to be the backend.
    let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, bulk_nice()) };
    if done != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "backend keeps its priority");
    }
    done == 0
}

/// The nice value of process (or thread) `pid`, from `/proc` (for tests and diagnostics).
pub fn nice_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command in parentheses: state is field 3, nice field 19.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(16)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_is_not_a_postgres_backend_is_left_alone() {
        // This test process: its title is not a backend's.
        let me = std::process::id() as i32;
        let before = nice_of(me);
        assert!(before.is_some());
        assert!(!renice(me, Some(5432)));
        assert!(!renice(me, None));
        assert_eq!(nice_of(me), before);
    }

    #[test]
    fn a_thread_lowers_only_itself() {
        let before = nice_of(std::process::id() as i32);
        let (tid, nice) = std::thread::spawn(|| {
            lower_this_thread();
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            (tid, nice_of_thread(tid))
        })
        .join()
        .expect("thread");
        assert!(tid > 0);
        assert_eq!(nice, Some(10));
        assert_eq!(nice_of(std::process::id() as i32), before);
    }

    fn nice_of_thread(tid: i32) -> Option<i32> {
        let pid = std::process::id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split(' ').nth(16)?.parse().ok()
    }
}
