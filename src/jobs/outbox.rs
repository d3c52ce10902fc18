//! The outbox worker: claims due mails in batches, sends them over a pooled SMTP transport (or
//! writes `.eml` files when no SMTP server is configured), records the outcome set-based.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::db::DbPool;
use crate::db::outbox::{Claimed, OutboxMail};

/// How mail leaves the portal.
#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Writes each mail as `<id>.eml` into a directory (the default without SMTP settings).
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// Tunables of the worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub max_attempts: i32,
    pub base_backoff_ms: i64,
    pub batch: i64,
    /// Mails sent at once by one worker.
    pub concurrency: usize,
    pub poll_interval: Duration,
    /// Most mails per second (0: no cap).
    pub rate_per_sec: u32,
    /// How long a claimed mail stays with its worker before another may take it. A batch of
    /// 128 sent 32 at a time with a 15 s timeout per SMTP step takes at most a few minutes;
    /// results of a lease that ran out anyway are ignored (see `OutboxMail::mark_sent`).
    pub lease_secs: i32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            max_attempts: 8,
            base_backoff_ms: 10_000,
            batch: 128,
            concurrency: 32,
            poll_interval: Duration::from_millis(500),
            rate_per_sec: 0,
            lease_secs: 300,
        }
    }
}

impl Mailer {
    /// SMTP when `smtp_url` is given (`smtp://`, `smtp://…?tls=required`, `smtps://`), else
    /// `.eml` files in `mail_dir`.
    pub fn new(smtp_url: Option<&str>, mail_dir: PathBuf, from: &str) -> Result<Self> {
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("PORTAL_MAIL_FROM is not a valid address: {from}"))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("PORTAL_SMTP_URL is not a valid SMTP URL")?
                    .timeout(Some(Duration::from_secs(15)))
                    // As many open connections as mails in flight (lettre's default is 10).
                    .pool_config(
                        lettre::transport::smtp::PoolConfig::new()
                            .max_size(WorkerSettings::default().concurrency as u32),
                    )
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(&mail_dir)
                    .with_context(|| format!("creating {}", mail_dir.display()))?;
                Transport::Files(
                    AsyncFileTransport::<Tokio1Executor>::new(&mail_dir),
                    mail_dir,
                )
            }
        };
        Ok(Mailer { transport, from })
    }

    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP".to_owned(),
            Transport::Files(_, dir) => format!(".eml files in {}", dir.display()),
        }
    }

    async fn send(&self, mail: &Claimed) -> Result<()> {
        let to: Mailbox = mail.to_address.parse().context("invalid recipient")?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.body_text.clone(),
                mail.body_html.clone(),
            ))?;
        match &self.transport {
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}")),
            Transport::Files(t, _) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}")),
        }
    }
}

/// One pass: claims due mails, sends them, records the outcome. Returns how many were claimed.
pub async fn deliver_due(
    pool: &DbPool,
    mailer: &Mailer,
    settings: WorkerSettings,
) -> Result<usize> {
    // Under a rate cap a batch is at most one second's worth, so the cap holds smoothly.
    let batch = match settings.rate_per_sec {
        0 => settings.batch,
        r => settings.batch.min(i64::from(r)).max(1),
    };
    let claimed = {
        let mut conn = pool.get().await?;
        OutboxMail::claim(&mut conn, batch, settings.lease_secs).await?
    };
    if claimed.is_empty() {
        return Ok(0);
    }
    let count = claimed.len();
    let results: Vec<((i64, i32), Result<()>)> = futures_util::stream::iter(claimed)
        .map(move |m| async move { ((m.id, m.attempts), mailer.send(&m).await) })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    let sent: Vec<(i64, i32)> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(c, _)| *c)
        .collect();
    let failed: Vec<(i64, i32, String)> = results
        .into_iter()
        .filter_map(|((id, n), r)| r.err().map(|e| (id, n, format!("{e:#}"))))
        .collect();
    for (id, _, e) in &failed {
        tracing::warn!(mail = id, error = %e, "mail delivery failed");
    }
    let mut conn = pool.get().await?;
    OutboxMail::mark_sent(&mut conn, &sent).await?;
    OutboxMail::mark_failed(
        &mut conn,
        &failed,
        settings.max_attempts,
        settings.base_backoff_ms,
    )
    .await?;
    Ok(count)
}

/// How long `n` mails take at `rate_per_sec` (zero without a cap).
pub fn pace(n: usize, rate_per_sec: u32) -> Duration {
    match rate_per_sec {
        0 => Duration::ZERO,
        r => Duration::from_secs_f64(n as f64 / f64::from(r)),
    }
}

/// Runs until the task is dropped: delivers whatever is due, then waits for the next poll. Under
/// a rate cap each batch takes at least as long as the cap allows for its size.
pub async fn run(pool: DbPool, mailer: Mailer, settings: WorkerSettings) {
    tracing::info!(transport = %mailer.describe(), rate = settings.rate_per_sec, "outbox worker started");
    loop {
        let started = tokio::time::Instant::now();
        let outcome = deliver_due(&pool, &mailer, settings).await;
        if let Ok(n) = outcome {
            tokio::time::sleep_until(started + pace(n, settings.rate_per_sec)).await;
        }
        match outcome {
            // A full batch: there may be more waiting.
            Ok(n) if n > 0 && (n as i64 >= settings.batch || settings.rate_per_sec > 0) => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "outbox pass failed"),
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::pace;
    use std::time::Duration;

    #[test]
    fn a_rate_cap_paces_batches() {
        assert_eq!(pace(64, 0), Duration::ZERO);
        assert_eq!(pace(50, 100), Duration::from_millis(500));
        assert_eq!(pace(1, 2), Duration::from_millis(500));
    }
}
