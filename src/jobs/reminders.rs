//! The registrations' periodic chores: warranty reminders (a mail 30 days before the warranty
//! ends, sent once, through the outbox) and the purge of safety contacts whose retention is over.
//! Every portal process (and the `worker` command) runs them; row locks and the `sent` mark keep
//! two processes from ever sending the same reminder.

use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::NaiveDate;

use crate::db::DbPool;
use crate::db::reminders::{Batch, send_batch};
use crate::mail::messages;

/// Registrations examined per transaction.
pub const BATCH: i64 = 500;

/// How often the chores run in each process.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Queues every reminder due on `today`, in batches of [`BATCH`] (one transaction each).
/// Returns how many were queued.
pub async fn run_once(pool: &DbPool, base_url: &str, today: NaiveDate) -> Result<usize> {
    let mut conn = pool.get().await?;
    let mut after = 0;
    let mut sent = 0;
    loop {
        let Batch {
            examined,
            sent: n,
            last_id,
        } = send_batch(&mut conn, today, after, BATCH, |c, ends_on| {
            messages::warranty_reminder(
                base_url,
                &c.contact_email,
                c.registration_id,
                &c.product,
                &c.serial,
                ends_on,
            )
        })
        .await?;
        sent += n;
        match last_id {
            Some(id) if examined as i64 == BATCH => after = id,
            _ => break,
        }
    }
    Ok(sent)
}

/// Forgets security-log entries older than `days` (0: keeps them all).
pub async fn purge_audit_log(pool: &DbPool, days: u32) -> Result<usize> {
    if days == 0 {
        return Ok(0);
    }
    let mut conn = pool.get().await?;
    Ok(crate::db::accounts::AuditEntry::purge_older_than(&mut conn, days).await?)
}

/// Erases the safety contacts kept after account deletion whose retention ended before `today`.
pub async fn purge_retained_contacts(pool: &DbPool, today: NaiveDate) -> Result<usize> {
    let mut conn = pool.get().await?;
    Ok(crate::db::retention::purge_expired(&mut conn, today).await?)
}

/// Queues second recall notices to owners who have not answered in time.
pub async fn second_notices(pool: &DbPool) -> Result<i64> {
    let mut conn = pool.get().await?;
    Ok(crate::db::recalls::send_second_notices(&mut conn).await?)
}

/// Runs the chores when [`EVERY`] has passed since the last run (the first call runs them).
pub struct Schedule {
    base_url: String,
    /// Security-log retention in days (0: for ever).
    audit_days: u32,
    last: Option<Instant>,
}

impl Schedule {
    pub fn new(base_url: String, audit_days: u32) -> Self {
        Schedule {
            base_url,
            audit_days,
            last: None,
        }
    }

    /// Runs both chores for today (UTC) if they are due; failures are logged and retried at the
    /// next run.
    pub async fn run_if_due(&mut self, pool: &DbPool) {
        if self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let today = chrono::Utc::now().date_naive();
        match run_once(pool, &self.base_url, today).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "warranty reminders queued"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "warranty reminders failed"),
        }
        match purge_retained_contacts(pool, today).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "retained safety contacts erased after their retention"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "retention purge failed"),
        }
        match purge_audit_log(pool, self.audit_days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "security-log entries past their retention forgotten"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "security-log purge failed"),
        }
        match second_notices(pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "second recall notices queued"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "second recall notices failed"),
        }
    }

    /// Checks every minute, forever (for the `worker` command).
    pub async fn run(mut self, pool: DbPool) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            self.run_if_due(&pool).await;
        }
    }
}
