//! Two-step sign-in: an account's TOTP secret and last used step, and what a session is
//! part-way through (setting a secret up, or a sign-in waiting for its code).

use diesel::sql_types::{BigInt, Bytea, Nullable, Text};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// An account's confirmed secret.
#[derive(Debug, Clone, QueryableByName)]
pub struct Totp {
    #[diesel(sql_type = Bytea)]
    pub secret: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    pub last_step: i64,
}

/// How long a checked password waits for its code, in minutes.
pub const SIGN_IN_MINUTES: i64 = 5;
/// How long a secret being set up waits for its first code, in minutes.
pub const ENROL_MINUTES: i64 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Enrol,
    SignIn,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Enrol => "enrol",
            Purpose::SignIn => "sign_in",
        }
    }

    fn minutes(self) -> i64 {
        match self {
            Purpose::Enrol => ENROL_MINUTES,
            Purpose::SignIn => SIGN_IN_MINUTES,
        }
    }
}

/// What a session is part-way through, still in time.
#[derive(Debug, Clone, QueryableByName)]
pub struct Pending {
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub secret: Option<Vec<u8>>,
}

/// Forgets an account's secret and anything part-way (account deletion, an administrator's
/// reset for a lost phone). Whether a secret was set.
pub async fn forget(conn: &mut AsyncPgConnection, account_id: i64) -> diesel::QueryResult<bool> {
    diesel::sql_query("DELETE FROM session_second_factor WHERE account_id = $1")
        .bind::<BigInt, _>(account_id)
        .execute(conn)
        .await?;
    Totp::disable(conn, account_id).await
}

#[derive(QueryableByName)]
struct Since {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    enabled_at: chrono::DateTime<chrono::Utc>,
}

impl Totp {
    /// When two-step sign-in was turned on, if it is.
    pub async fn enabled_at(
        conn: &mut AsyncPgConnection,
        account_id: i64,
    ) -> diesel::QueryResult<Option<chrono::DateTime<chrono::Utc>>> {
        let since: Option<Since> =
            diesel::sql_query("SELECT enabled_at FROM account_totp WHERE account_id = $1")
                .bind::<BigInt, _>(account_id)
                .get_result(conn)
                .await
                .optional()?;
        Ok(since.map(|s| s.enabled_at))
    }

    pub async fn of(
        conn: &mut AsyncPgConnection,
        account_id: i64,
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query("SELECT secret, last_step FROM account_totp WHERE account_id = $1")
            .bind::<BigInt, _>(account_id)
            .get_result(conn)
            .await
            .optional()
    }

    /// Turns two-step sign-in on with `secret`, its first code (of `step`) used. Never
    /// replaces a secret already set (that takes turning it off, with a code): false then.
    pub async fn enable(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        secret: &[u8],
        step: i64,
    ) -> diesel::QueryResult<bool> {
        diesel::sql_query(
            "INSERT INTO account_totp (account_id, secret, last_step) VALUES ($1, $2, $3)
             ON CONFLICT (account_id) DO NOTHING",
        )
        .bind::<BigInt, _>(account_id)
        .bind::<Bytea, _>(secret)
        .bind::<BigInt, _>(step)
        .execute(conn)
        .await
        .map(|n| n == 1)
    }

    /// Turns it off; whether it was on.
    pub async fn disable(
        conn: &mut AsyncPgConnection,
        account_id: i64,
    ) -> diesel::QueryResult<bool> {
        diesel::sql_query("DELETE FROM account_totp WHERE account_id = $1")
            .bind::<BigInt, _>(account_id)
            .execute(conn)
            .await
            .map(|n| n == 1)
    }

    /// Spends the code of `step`: false when that step (or a later one) was used already, so a
    /// code seen over a shoulder or replayed from a log is worth nothing. One statement, so
    /// two sign-ins racing with the same code cannot both win.
    pub async fn use_step(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        step: i64,
    ) -> diesel::QueryResult<bool> {
        diesel::sql_query(
            "UPDATE account_totp SET last_step = $2 WHERE account_id = $1 AND last_step < $2",
        )
        .bind::<BigInt, _>(account_id)
        .bind::<BigInt, _>(step)
        .execute(conn)
        .await
        .map(|n| n == 1)
    }
}

impl Pending {
    /// Records what session `token_hash` is part-way through (replacing what it was).
    pub async fn start(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        account_id: i64,
        purpose: Purpose,
        secret: Option<&[u8]>,
    ) -> diesel::QueryResult<()> {
        diesel::sql_query(
            "INSERT INTO session_second_factor (token_hash, account_id, purpose, secret)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (token_hash) DO UPDATE
             SET account_id = EXCLUDED.account_id, purpose = EXCLUDED.purpose,
                 secret = EXCLUDED.secret, started_at = now()",
        )
        .bind::<Bytea, _>(token_hash)
        .bind::<BigInt, _>(account_id)
        .bind::<Text, _>(purpose.as_str())
        .bind::<Nullable<Bytea>, _>(secret)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// What session `token_hash` is part-way through for `purpose`, if it started in time.
    pub async fn find(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        purpose: Purpose,
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(
            "SELECT account_id, secret FROM session_second_factor
             WHERE token_hash = $1 AND purpose = $2
               AND started_at > now() - make_interval(mins => $3::int)",
        )
        .bind::<Bytea, _>(token_hash)
        .bind::<Text, _>(purpose.as_str())
        .bind::<BigInt, _>(purpose.minutes())
        .get_result(conn)
        .await
        .optional()
    }

    pub async fn clear(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> diesel::QueryResult<()> {
        diesel::sql_query("DELETE FROM session_second_factor WHERE token_hash = $1")
            .bind::<Bytea, _>(token_hash)
            .execute(conn)
            .await
            .map(|_| ())
    }
}
