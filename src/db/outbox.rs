//! The mail outbox: mails are rows, queued in the transaction of the change that causes them,
//! claimed by workers with `FOR UPDATE SKIP LOCKED`, retried with backoff, parked as failed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::outbox;
use crate::mail::Mail;

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = outbox)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct OutboxMail {
    pub id: i64,
    pub kind: String,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
}

impl OutboxMail {
    pub async fn enqueue(conn: &mut AsyncPgConnection, mail: &Mail) -> QueryResult<i64> {
        diesel::insert_into(outbox::table)
            .values((
                outbox::kind.eq(mail.kind),
                outbox::to_address.eq(&mail.to),
                outbox::subject.eq(&mail.subject),
                outbox::body_text.eq(&mail.text),
                outbox::body_html.eq(&mail.html),
            ))
            .returning(outbox::id)
            .get_result(conn)
            .await
    }

    /// Claims up to `batch` due mails. The claim is a lease: `next_attempt_at` moves
    /// `lease_secs` ahead and `attempts` counts up, so a worker that dies mid-send gives the mail
    /// back by itself, and two workers never hold the same mail.
    pub async fn claim(
        conn: &mut AsyncPgConnection,
        batch: i64,
        lease_secs: i32,
    ) -> QueryResult<Vec<Self>> {
        diesel::sql_query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
             WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= now()
                          ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING *",
        )
        .bind::<BigInt, _>(batch)
        .bind::<Integer, _>(lease_secs)
        .load(conn)
        .await
    }

    pub async fn mark_sent(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
            .set((
                outbox::status.eq("sent"),
                outbox::sent_at.eq(Utc::now()),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await
    }

    /// Records failed attempts: retried after `base_backoff_ms × 2^(attempts−1)` (at most an
    /// hour), or parked as failed once `max_attempts` is reached. One statement for the batch.
    pub async fn mark_failed(
        conn: &mut AsyncPgConnection,
        failures: &[(i64, String)],
        max_attempts: i32,
        base_backoff_ms: i64,
    ) -> QueryResult<usize> {
        if failures.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = failures.iter().map(|(id, _)| *id).collect();
        let errors: Vec<String> = failures
            .iter()
            .map(|(_, e)| e.chars().take(500).collect())
            .collect();
        diesel::sql_query(
            "UPDATE outbox o SET
                 last_error = f.error,
                 status = CASE WHEN o.attempts >= $3 THEN 'failed' ELSE 'queued' END,
                 next_attempt_at = now() + make_interval(secs => least(3600, $4::float8 / 1000 * power(2, greatest(o.attempts - 1, 0))))
             FROM unnest($1::bigint[], $2::text[]) AS f(id, error)
             WHERE o.id = f.id",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Text>, _>(errors)
        .bind::<Integer, _>(max_attempts)
        .bind::<BigInt, _>(base_backoff_ms)
        .execute(conn)
        .await
    }

    /// Puts a failed (or queued) mail back at the front of the queue with a fresh count.
    pub async fn retry(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
        diesel::update(outbox::table.find(id).filter(outbox::status.ne("sent")))
            .set((
                outbox::status.eq("queued"),
                outbox::attempts.eq(0),
                outbox::next_attempt_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await
    }

    pub async fn list(
        conn: &mut AsyncPgConnection,
        status: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<Self>> {
        let mut q = outbox::table.select(Self::as_select()).into_boxed();
        if let Some(s) = status {
            q = q.filter(outbox::status.eq(s.to_owned()));
        }
        q.order(outbox::id.desc()).limit(limit).load(conn).await
    }

    pub async fn counts(conn: &mut AsyncPgConnection) -> QueryResult<OutboxCounts> {
        let rows: Vec<(String, i64)> = outbox::table
            .group_by(outbox::status)
            .select((outbox::status, diesel::dsl::count_star()))
            .load(conn)
            .await?;
        let get = |s: &str| {
            rows.iter()
                .find(|(st, _)| st == s)
                .map(|(_, n)| *n)
                .unwrap_or(0)
        };
        Ok(OutboxCounts {
            queued: get("queued"),
            sent: get("sent"),
            failed: get("failed"),
        })
    }
}
