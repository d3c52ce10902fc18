//! Integration tokens: creation (only the secret's SHA-256 is kept), the list admins see,
//! revocation, the lookup behind every authenticated API request with its once-a-minute
//! last-used time, the one-time display of a new secret, and the clean-up of what expires.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{accounts, api_idempotency_keys, api_token_reveals, api_tokens};
use crate::domain::api_token::Scope;

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_HOURS: i64 = 24;
/// How long a new token's secret waits for the page that shows it.
pub const REVEAL_MINUTES: i64 = 10;
/// `last_used_at` is written at most this often per token.
pub const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Row {
    id: i64,
    name: String,
    scopes: Vec<Option<String>>,
    created_by: i64,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A token as the portal knows it (never its secret).
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<Row> for ApiToken {
    fn from(r: Row) -> Self {
        ApiToken {
            id: r.id,
            name: r.name,
            // The CHECK constraint admits only known scopes.
            scopes: r
                .scopes
                .iter()
                .flatten()
                .filter_map(|s| Scope::parse(s))
                .collect(),
            created_by: r.created_by,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

impl ApiToken {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// What the history of a unit records as the actor of this token's writes.
    pub fn actor(&self) -> String {
        format!("token:{} {}", self.id, self.name)
    }

    pub async fn create(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        name: &str,
        scopes: &[Scope],
        created_by: i64,
    ) -> QueryResult<Self> {
        let scopes: Vec<Option<&str>> = scopes.iter().map(|s| Some(s.as_str())).collect();
        diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::token_hash.eq(token_hash),
                api_tokens::name.eq(name),
                api_tokens::scopes.eq(scopes),
                api_tokens::created_by.eq(created_by),
            ))
            .returning(Row::as_returning())
            .get_result(conn)
            .await
            .map(Self::from)
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Self>> {
        api_tokens::table
            .find(id)
            .select(Row::as_select())
            .first(conn)
            .await
            .optional()
            .map(|r| r.map(Self::from))
    }

    /// The token whose secret hashes to `token_hash`, revoked or not.
    pub async fn by_hash(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
    ) -> QueryResult<Option<Self>> {
        api_tokens::table
            .filter(api_tokens::token_hash.eq(token_hash))
            .select(Row::as_select())
            .first(conn)
            .await
            .optional()
            .map(|r| r.map(Self::from))
    }

    /// Every token, newest first, with the email of the admin who created it.
    pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(Self, String)>> {
        let rows: Vec<(Row, String)> = api_tokens::table
            .inner_join(accounts::table.on(accounts::id.eq(api_tokens::created_by)))
            .order(api_tokens::id.desc())
            .select((Row::as_select(), accounts::email))
            .load(conn)
            .await?;
        Ok(rows.into_iter().map(|(r, e)| (r.into(), e)).collect())
    }

    /// Records a use, unless one was recorded in the last minute (checked again in the
    /// statement, so concurrent requests write it once).
    pub async fn touch(&self, conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> QueryResult<()> {
        let due = self
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= TOUCH_EVERY_SECS);
        if !due {
            return Ok(());
        }
        let cutoff = now - chrono::Duration::seconds(TOUCH_EVERY_SECS);
        diesel::update(
            api_tokens::table.filter(api_tokens::id.eq(self.id)).filter(
                api_tokens::last_used_at
                    .is_null()
                    .or(api_tokens::last_used_at.le(cutoff)),
            ),
        )
        .set(api_tokens::last_used_at.eq(now))
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Revokes the token (and forgets a secret still waiting to be shown). `false`: it was
    /// already revoked, or does not exist.
    pub async fn revoke(conn: &mut AsyncPgConnection, id: i64, by: i64) -> QueryResult<bool> {
        let n = diesel::update(
            api_tokens::table
                .filter(api_tokens::id.eq(id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set((
            api_tokens::revoked_at.eq(diesel::dsl::now),
            api_tokens::revoked_by.eq(by),
        ))
        .execute(conn)
        .await?;
        diesel::delete(api_token_reveals::table.filter(api_token_reveals::token_id.eq(id)))
            .execute(conn)
            .await?;
        Ok(n > 0)
    }
}

/// A new token's secret, sealed for the session that created it (see `tokens::seal`).
pub struct TokenReveal;

impl TokenReveal {
    pub async fn store(
        conn: &mut AsyncPgConnection,
        token_id: i64,
        session_hash: &[u8],
        nonce: &[u8],
        sealed: &[u8],
    ) -> QueryResult<()> {
        diesel::insert_into(api_token_reveals::table)
            .values((
                api_token_reveals::token_id.eq(token_id),
                api_token_reveals::session_hash.eq(session_hash),
                api_token_reveals::nonce.eq(nonce),
                api_token_reveals::sealed.eq(sealed),
                api_token_reveals::expires_at
                    .eq(Utc::now() + chrono::Duration::minutes(REVEAL_MINUTES)),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Takes the sealed secret of `token_id` for this session: (nonce, sealed). It is deleted
    /// in the same statement, so it can be taken once, whatever happens next.
    pub async fn take(
        conn: &mut AsyncPgConnection,
        token_id: i64,
        session_hash: &[u8],
    ) -> QueryResult<Option<(Vec<u8>, Vec<u8>)>> {
        let found: Option<(Vec<u8>, Vec<u8>, DateTime<Utc>)> = diesel::delete(
            api_token_reveals::table
                .filter(api_token_reveals::token_id.eq(token_id))
                .filter(api_token_reveals::session_hash.eq(session_hash)),
        )
        .returning((
            api_token_reveals::nonce,
            api_token_reveals::sealed,
            api_token_reveals::expires_at,
        ))
        .get_result(conn)
        .await
        .optional()?;
        Ok(found
            .filter(|(_, _, expires)| *expires > Utc::now())
            .map(|(n, s, _)| (n, s)))
    }
}

/// Deletes secrets nobody came to see and Idempotency-Keys past their day. Returns how many of
/// each.
pub async fn purge_expired(conn: &mut AsyncPgConnection) -> QueryResult<(usize, usize)> {
    let reveals = diesel::delete(
        api_token_reveals::table.filter(api_token_reveals::expires_at.le(diesel::dsl::now)),
    )
    .execute(conn)
    .await?;
    let cutoff = Utc::now() - chrono::Duration::hours(IDEMPOTENCY_HOURS);
    let keys = diesel::delete(
        api_idempotency_keys::table.filter(api_idempotency_keys::created_at.lt(cutoff)),
    )
    .execute(conn)
    .await?;
    Ok((reveals, keys))
}
