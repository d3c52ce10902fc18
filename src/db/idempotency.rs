//! `Idempotency-Key` for the token API's writes. The key is claimed at the start of the
//! write's own transaction and its answer recorded before that transaction commits, so the
//! key and the write are committed together or not at all. A second request with the same key
//! waits on the key's unique index until the first commits (it then gets the first answer) or
//! rolls back (it then runs itself): one key never writes twice.

use anyhow::Result;
use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

use super::api_tokens::IDEMPOTENCY_HOURS;

/// What became of a claimed key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its day is over): do the work, then [`record`] its answer.
    New,
    /// The same request came with this key before: answer as then.
    Replay { status: u16, body: String },
    /// Another request came with this key: answer 409, do nothing.
    OtherRequest,
    /// A request with this key is still running after the transaction's `lock_timeout`: answer
    /// 409, do nothing.
    InProgress,
}

/// Claims `key` for `token_id` inside `tx`, the transaction that will do the work (at READ
/// COMMITTED, with a `lock_timeout`: how long to wait for another request with the key).
/// `request_hash` identifies the request (method, path and body).
pub async fn claim(
    tx: &Transaction<'_>,
    token_id: i64,
    key: &str,
    request_hash: &[u8],
) -> Result<Claim> {
    // A key whose day is over is taken over as if new.
    let claimed = tx
        .query_opt(
            &format!(
                "INSERT INTO api_idempotency_keys (token_id, key, request_hash) VALUES ($1, $2, $3)
                 ON CONFLICT (token_id, key) DO UPDATE
                     SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL, created_at = now()
                     WHERE api_idempotency_keys.created_at < now() - interval '{IDEMPOTENCY_HOURS} hours'
                 RETURNING 1"
            ),
            &[&token_id, &key, &request_hash],
        )
        .await;
    let claimed = match claimed {
        Ok(row) => row.is_some(),
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(Claim::InProgress),
        Err(e) => return Err(e.into()),
    };
    if claimed {
        return Ok(Claim::New);
    }
    // The other request has committed (its row is visible to this new statement).
    let row = tx
        .query_one(
            "SELECT request_hash, status, body FROM api_idempotency_keys WHERE token_id = $1 AND key = $2",
            &[&token_id, &key],
        )
        .await?;
    let (hash, status, body): (Vec<u8>, Option<i16>, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    Ok(match (status, body) {
        _ if hash != request_hash => Claim::OtherRequest,
        (Some(status), Some(body)) => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        },
        // Only a transaction still at work holds a row without its answer, and this one is
        // committed: cannot happen, but never run twice if it does.
        _ => Claim::InProgress,
    })
}

/// Records the answer to a claimed key, in the transaction that did the work.
pub async fn record(
    tx: &Transaction<'_>,
    token_id: i64,
    key: &str,
    status: u16,
    body: &str,
) -> Result<()> {
    let status = i16::try_from(status)?;
    tx.execute(
        "UPDATE api_idempotency_keys SET status = $3, body = $4 WHERE token_id = $1 AND key = $2",
        &[&token_id, &key, &status, &body],
    )
    .await?;
    Ok(())
}
