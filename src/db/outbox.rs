//! The mail outbox: mails are rows, queued in the transaction of the change that causes them,
//! claimed by workers with `FOR UPDATE SKIP LOCKED`, retried with backoff, parked as failed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::outbox;
use crate::mail::Mail;

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = outbox)]
#[diesel(check_for_backend(diesel::pg::Pg))]
/// A mail as the outbox lists it (without its bodies).
pub struct OutboxMail {
    pub id: i64,
    pub kind: String,
    pub to_address: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A mail claimed for sending, its bodies complete (a template filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    /// As claimed: the lease this worker holds.
    pub attempts: i32,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Text)]
    to_address: String,
    #[diesel(sql_type = Text)]
    subject: String,
    #[diesel(sql_type = Text)]
    body_text: String,
    #[diesel(sql_type = Text)]
    body_html: String,
    #[diesel(sql_type = Nullable<Text>)]
    fill: Option<String>,
}

/// A template's `%%NAME%%` placeholders replaced by `fill`'s values, in one pass (a value is
/// never searched for placeholders itself). In HTML the values are escaped and their line
/// breaks become `<br>`. Unknown placeholders stay as they are.
pub fn fill_in(template: &str, fill: &HashMap<String, String>, html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("%%") {
        let after = &rest[start + 2..];
        let Some(len) = after.find("%%") else { break };
        let name = &after[..len];
        match fill.get(name) {
            Some(value) if !name.is_empty() => {
                out.push_str(&rest[..start]);
                if html {
                    for line in value.split('\n').enumerate() {
                        if line.0 > 0 {
                            out.push_str("<br>");
                        }
                        escape_html_into(&mut out, line.1);
                    }
                } else {
                    out.push_str(value);
                }
                rest = &after[len + 2..];
            }
            _ => {
                // Not a placeholder: keep the first "%%" and look again after it.
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
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

    /// Queues many mails in one statement (a batch of reminders, say).
    pub async fn enqueue_all(conn: &mut AsyncPgConnection, mails: &[Mail]) -> QueryResult<usize> {
        if mails.is_empty() {
            return Ok(0);
        }
        let rows: Vec<_> = mails
            .iter()
            .map(|m| {
                (
                    outbox::kind.eq(m.kind),
                    outbox::to_address.eq(&m.to),
                    outbox::subject.eq(&m.subject),
                    outbox::body_text.eq(&m.text),
                    outbox::body_html.eq(&m.html),
                )
            })
            .collect();
        diesel::insert_into(outbox::table)
            .values(&rows)
            .execute(conn)
            .await
    }

    /// Claims up to `batch` due mails. The claim is a lease: `next_attempt_at` moves
    /// `lease_secs` ahead and `attempts` counts up, so a worker that dies mid-send gives the mail
    /// back by itself, and two workers never hold the same mail.
    /// A mail made from a template comes back filled in.
    pub async fn claim(
        conn: &mut AsyncPgConnection,
        batch: i64,
        lease_secs: i32,
    ) -> QueryResult<Vec<Claimed>> {
        let rows: Vec<ClaimedRow> = diesel::sql_query(
            "WITH c AS (
                 UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
                 WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= now()
                              ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, attempts, to_address, subject, body_text, body_html, template_id, fill)
             SELECT c.id, c.attempts, c.to_address, c.subject,
                    COALESCE(c.body_text, t.body_text, '') AS body_text,
                    COALESCE(c.body_html, t.body_html, '') AS body_html, c.fill::text AS fill
             FROM c LEFT JOIN mail_templates t ON t.id = c.template_id",
        )
        .bind::<BigInt, _>(batch)
        .bind::<Integer, _>(lease_secs)
        .load(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let fill: HashMap<String, String> = r
                    .fill
                    .as_deref()
                    .and_then(|f| serde_json::from_str(f).ok())
                    .unwrap_or_default();
                let (body_text, body_html) = if fill.is_empty() {
                    (r.body_text, r.body_html)
                } else {
                    (
                        fill_in(&r.body_text, &fill, false),
                        fill_in(&r.body_html, &fill, true),
                    )
                };
                Claimed {
                    id: r.id,
                    attempts: r.attempts,
                    to_address: r.to_address,
                    subject: r.subject,
                    body_text,
                    body_html,
                }
            })
            .collect())
    }

    /// Marks claimed mails as sent. Each is `(id, attempts as claimed)`: a mail whose lease
    /// was lost and re-claimed by another worker (its attempts moved on) is left to that worker.
    pub async fn mark_sent(
        conn: &mut AsyncPgConnection,
        claimed: &[(i64, i32)],
    ) -> QueryResult<usize> {
        if claimed.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.0).collect();
        let attempts: Vec<i32> = claimed.iter().map(|c| c.1).collect();
        diesel::sql_query(
            "UPDATE outbox o SET status = 'sent', sent_at = now(), last_error = NULL
             FROM unnest($1::bigint[], $2::int[]) AS c(id, attempts)
             WHERE o.id = c.id AND o.attempts = c.attempts AND o.status = 'queued'",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Integer>, _>(attempts)
        .execute(conn)
        .await
    }

    /// Records failed attempts `(id, attempts as claimed, error)`: retried after
    /// `base_backoff_ms × 2^(attempts−1)` (at most an hour), or parked as failed once
    /// `max_attempts` is reached. One statement for the batch; lost leases are skipped.
    pub async fn mark_failed(
        conn: &mut AsyncPgConnection,
        failures: &[(i64, i32, String)],
        max_attempts: i32,
        base_backoff_ms: i64,
    ) -> QueryResult<usize> {
        if failures.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = failures.iter().map(|f| f.0).collect();
        let attempts: Vec<i32> = failures.iter().map(|f| f.1).collect();
        let errors: Vec<String> = failures
            .iter()
            .map(|f| f.2.chars().take(500).collect())
            .collect();
        diesel::sql_query(
            "UPDATE outbox o SET
                 last_error = f.error,
                 status = CASE WHEN o.attempts >= $4 THEN 'failed' ELSE 'queued' END,
                 next_attempt_at = now() + make_interval(secs => least(3600, $5::float8 / 1000 * power(2, greatest(o.attempts - 1, 0))))
             FROM unnest($1::bigint[], $2::int[], $3::text[]) AS f(id, attempts, error)
             WHERE o.id = f.id AND o.attempts = f.attempts AND o.status = 'queued'",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Integer>, _>(attempts)
        .bind::<Array<Text>, _>(errors)
        .bind::<Integer, _>(max_attempts)
        .bind::<BigInt, _>(base_backoff_ms)
        .execute(conn)
        .await
    }

    /// Puts a failed mail back at the front of the queue with a fresh count. Only failed mails:
    /// a queued one may be in a worker's hands right now.
    pub async fn retry(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
        diesel::update(outbox::table.find(id).filter(outbox::status.eq("failed")))
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

#[cfg(test)]
mod tests {
    use super::fill_in;
    use std::collections::HashMap;

    fn fill(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn placeholders_are_filled_in_once_and_escaped_in_html() {
        let f = fill(&[
            (
                "UNITS",
                "Acme <Kettle>, serial A&1\nAcme \"Fan\", serial 'B'",
            ),
            ("LINK", "https://x.example/ack?t=ab&c=%%UNITS%%"),
        ]);
        let t = "Units:\n%%UNITS%%\nLink: %%LINK%% 100%% sure %%NOPE%% %%";
        assert_eq!(
            fill_in(t, &f, false),
            "Units:\nAcme <Kettle>, serial A&1\nAcme \"Fan\", serial 'B'\nLink: https://x.example/ack?t=ab&c=%%UNITS%% 100%% sure %%NOPE%% %%"
        );
        assert_eq!(
            fill_in("<p>%%UNITS%%</p><a href=\"%%LINK%%\">go</a>", &f, true),
            "<p>Acme &lt;Kettle&gt;, serial A&amp;1<br>Acme &quot;Fan&quot;, serial &#39;B&#39;</p>\
             <a href=\"https://x.example/ack?t=ab&amp;c=%%UNITS%%\">go</a>"
        );
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        let f = fill(&[("A", "x")]);
        for t in ["", "plain", "50%% off", "%%", "%%%%", "%%A", "a %%B%% b"] {
            assert_eq!(fill_in(t, &f, false), t);
        }
        assert_eq!(fill_in("%%A%%%%A%%", &f, true), "xx");
    }
}
