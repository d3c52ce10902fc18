//! Accounts, sessions, one-time tokens and the security audit log.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{account_tokens, accounts, audit_log, sessions};
use crate::domain::account::{Email, Role};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub password_hash: Option<String>,
    pub role: String,
    pub display_name: String,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Account {
    pub fn role(&self) -> Role {
        // The CHECK constraint admits only the three roles.
        Role::parse(&self.role).unwrap_or(Role::Customer)
    }

    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Self>> {
        accounts::table
            .find(id)
            .filter(accounts::deleted_at.is_null())
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn find_by_email(
        conn: &mut AsyncPgConnection,
        email: &Email,
    ) -> QueryResult<Option<Self>> {
        accounts::table
            .filter(accounts::email.eq(email.as_str()))
            .filter(accounts::deleted_at.is_null())
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Creates an account; `None` when a live account already has this email.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        email: &Email,
        password_hash: Option<&str>,
        role: Role,
        verified: bool,
    ) -> QueryResult<Option<Self>> {
        diesel::insert_into(accounts::table)
            .values((
                accounts::email.eq(email.as_str()),
                accounts::password_hash.eq(password_hash),
                accounts::role.eq(role.as_str()),
                accounts::email_verified_at.eq(verified.then(Utc::now)),
            ))
            .on_conflict_do_nothing()
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Counts a failed sign-in; at `threshold` failures in a row the account locks for
    /// `lock_minutes`. Returns whether this failure locked it. One statement, so concurrent
    /// attempts on several processes are counted exactly.
    pub async fn record_failed_login(
        conn: &mut AsyncPgConnection,
        id: i64,
        threshold: i32,
        lock_minutes: i32,
    ) -> QueryResult<bool> {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let r: Locked = diesel::sql_query(
            "UPDATE accounts SET
                 failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
                 locked_until = CASE WHEN failed_logins + 1 >= $2 THEN now() + make_interval(mins => $3) ELSE locked_until END,
                 updated_at = now()
             WHERE id = $1
             RETURNING (failed_logins = 0 AND locked_until > now()) AS locked",
        )
        .bind::<diesel::sql_types::BigInt, _>(id)
        .bind::<diesel::sql_types::Integer, _>(threshold)
        .bind::<diesel::sql_types::Integer, _>(lock_minutes)
        .get_result(conn)
        .await?;
        Ok(r.locked)
    }

    /// Records a successful sign-in — unless the account got locked meanwhile (by parallel
    /// failed attempts): the lock is decided here, in one statement, not from an earlier read.
    /// Returns whether the sign-in may go ahead.
    pub async fn record_login(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
        let now = Utc::now();
        diesel::update(
            accounts::table.find(id).filter(
                accounts::locked_until
                    .is_null()
                    .or(accounts::locked_until.le(now)),
            ),
        )
        .set((
            accounts::failed_logins.eq(0),
            accounts::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await
        .map(|n| n == 1)
    }

    pub async fn set_password(
        conn: &mut AsyncPgConnection,
        id: i64,
        hash: &str,
    ) -> QueryResult<()> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::password_hash.eq(hash),
                accounts::failed_logins.eq(0),
                accounts::locked_until.eq(None::<DateTime<Utc>>),
                accounts::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Sets a new (confirmed) email; false when another live account has it.
    pub async fn set_email(
        conn: &mut AsyncPgConnection,
        id: i64,
        email: &Email,
    ) -> QueryResult<bool> {
        let taken: i64 = accounts::table
            .filter(accounts::email.eq(email.as_str()))
            .filter(accounts::deleted_at.is_null())
            .filter(accounts::id.ne(id))
            .count()
            .get_result(conn)
            .await?;
        if taken > 0 {
            return Ok(false);
        }
        let updated = diesel::update(accounts::table.find(id))
            .set((
                accounts::email.eq(email.as_str()),
                accounts::email_verified_at.eq(Utc::now()),
                accounts::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await;
        match updated {
            Ok(_) => Ok(true),
            // Taken between the check and the update by a concurrent sign-up.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn mark_verified(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
        diesel::update(
            accounts::table
                .find(id)
                .filter(accounts::email_verified_at.is_null()),
        )
        .set(accounts::email_verified_at.eq(Utc::now()))
        .execute(conn)
        .await
        .map(|_| ())
    }

    pub async fn set_role(conn: &mut AsyncPgConnection, id: i64, role: Role) -> QueryResult<usize> {
        diesel::update(
            accounts::table
                .find(id)
                .filter(accounts::deleted_at.is_null()),
        )
        .set((
            accounts::role.eq(role.as_str()),
            accounts::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
    }

    /// Administrators who can actually sign in (an invitation not yet accepted does not count).
    pub async fn count_admins(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
        accounts::table
            .filter(accounts::role.eq("admin"))
            .filter(accounts::deleted_at.is_null())
            .filter(accounts::password_hash.is_not_null())
            .count()
            .get_result(conn)
            .await
    }

    /// Staff and admins first, then customers, newest first; at most `limit`.
    pub async fn list(
        conn: &mut AsyncPgConnection,
        role: Option<Role>,
        limit: i64,
    ) -> QueryResult<Vec<Self>> {
        let mut q = accounts::table
            .filter(accounts::deleted_at.is_null())
            .select(Self::as_select())
            .into_boxed();
        if let Some(r) = role {
            q = q.filter(accounts::role.eq(r.as_str()));
        }
        q.order((accounts::role.desc(), accounts::created_at.desc()))
            .limit(limit)
            .load(conn)
            .await
    }

    /// Erases the personal data of an account (PRODUCT.md §3): the row stays, so records that
    /// must be kept (safety-notice contacts, audit entries) still resolve, but the email,
    /// password and name are gone and it can never sign in again. Its registrations keep only
    /// their safety contact, flagged, for the retention period (see [`super::retention`]).
    /// Call it inside a transaction, and remove the returned proof files once it has committed.
    pub async fn erase(
        conn: &mut AsyncPgConnection,
        id: i64,
    ) -> QueryResult<super::retention::ErasedProofs> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::email.eq(format!("erased-{id}@erased.invalid")),
                accounts::password_hash.eq(None::<String>),
                accounts::display_name.eq(""),
                accounts::email_verified_at.eq(None::<DateTime<Utc>>),
                accounts::deleted_at.eq(Utc::now()),
                accounts::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        diesel::delete(sessions::table.filter(sessions::account_id.eq(id)))
            .execute(conn)
            .await?;
        diesel::delete(account_tokens::table.filter(account_tokens::account_id.eq(id)))
            .execute(conn)
            .await?;
        super::second_factor::forget(conn, id).await?;
        // The security log keeps what happened, not the address.
        diesel::update(
            audit_log::table.filter(audit_log::subject_id.eq(id).or(audit_log::actor_id.eq(id))),
        )
        .set(audit_log::email.eq(None::<String>))
        .execute(conn)
        .await?;
        super::retention::erase_registrations(conn, id, Utc::now().date_naive()).await
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct SessionRow {
    pub token_hash: Vec<u8>,
    pub account_id: Option<i64>,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionRow {
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        account_id: Option<i64>,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> QueryResult<()> {
        diesel::insert_into(sessions::table)
            .values((
                sessions::token_hash.eq(token_hash),
                sessions::account_id.eq(account_id),
                sessions::csrf_token.eq(csrf_token),
                sessions::expires_at.eq(expires_at),
                sessions::ip.eq(ip),
                sessions::user_agent
                    .eq(user_agent.map(|u| u.chars().take(300).collect::<String>())),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// The live session with this token (not past its absolute end, not idle longer than
    /// `idle`), with its account if signed in and the account still exists.
    pub async fn find_live(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        idle: Duration,
    ) -> QueryResult<Option<(Self, Option<Account>)>> {
        let now = Utc::now();
        sessions::table
            .left_join(
                accounts::table.on(accounts::id
                    .nullable()
                    .eq(sessions::account_id)
                    .and(accounts::deleted_at.is_null())),
            )
            .filter(sessions::token_hash.eq(token_hash))
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::last_seen_at.gt(now - idle))
            .select((Self::as_select(), Option::<Account>::as_select()))
            .first(conn)
            .await
            .optional()
    }

    pub async fn touch(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<()> {
        diesel::update(sessions::table.find(token_hash))
            .set(sessions::last_seen_at.eq(Utc::now()))
            .execute(conn)
            .await
            .map(|_| ())
    }

    pub async fn delete(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<()> {
        diesel::delete(sessions::table.find(token_hash))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Ends every session of an account, and every sign-in of it still waiting for its code
    /// (those sessions are anonymous until the code comes).
    pub async fn delete_for_account(
        conn: &mut AsyncPgConnection,
        account_id: i64,
    ) -> QueryResult<usize> {
        diesel::sql_query("DELETE FROM session_second_factor WHERE account_id = $1")
            .bind::<diesel::sql_types::BigInt, _>(account_id)
            .execute(conn)
            .await?;
        diesel::delete(sessions::table.filter(sessions::account_id.eq(account_id)))
            .execute(conn)
            .await
    }

    pub async fn list_for_account(
        conn: &mut AsyncPgConnection,
        account_id: i64,
    ) -> QueryResult<Vec<Self>> {
        sessions::table
            .filter(sessions::account_id.eq(account_id))
            .order(sessions::last_seen_at.desc())
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Removes sessions past their absolute end or idle longer than `idle` (housekeeping).
    pub async fn delete_stale(conn: &mut AsyncPgConnection, idle: Duration) -> QueryResult<usize> {
        let now = Utc::now();
        diesel::delete(
            sessions::table.filter(
                sessions::expires_at
                    .le(now)
                    .or(sessions::last_seen_at.le(now - idle)),
            ),
        )
        .execute(conn)
        .await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
    Invite,
    ChangeEmail,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
            TokenPurpose::Invite => "invite",
            TokenPurpose::ChangeEmail => "change_email",
        }
    }

    /// How long a link of this kind stays valid.
    pub fn lifetime(self) -> Duration {
        match self {
            TokenPurpose::VerifyEmail | TokenPurpose::ChangeEmail => Duration::hours(48),
            TokenPurpose::ResetPassword => Duration::hours(1),
            TokenPurpose::Invite => Duration::days(7),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = account_tokens)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AccountToken {
    pub account_id: i64,
    pub new_email: Option<String>,
}

impl AccountToken {
    pub async fn create(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        account_id: i64,
        purpose: TokenPurpose,
        new_email: Option<&str>,
    ) -> QueryResult<()> {
        // Earlier unused tokens of the same purpose stop working: only the newest mail's link does.
        diesel::update(
            account_tokens::table
                .filter(account_tokens::account_id.eq(account_id))
                .filter(account_tokens::purpose.eq(purpose.as_str()))
                .filter(account_tokens::used_at.is_null()),
        )
        .set(account_tokens::used_at.eq(Utc::now()))
        .execute(conn)
        .await?;
        diesel::insert_into(account_tokens::table)
            .values((
                account_tokens::token_hash.eq(token_hash),
                account_tokens::account_id.eq(account_id),
                account_tokens::purpose.eq(purpose.as_str()),
                account_tokens::new_email.eq(new_email),
                account_tokens::expires_at.eq(Utc::now() + purpose.lifetime()),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Whether an unused, unexpired token of this purpose exists (to show a form before
    /// consuming it).
    pub async fn peek(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        purpose: TokenPurpose,
    ) -> QueryResult<Option<Self>> {
        account_tokens::table
            .filter(account_tokens::token_hash.eq(token_hash))
            .filter(account_tokens::purpose.eq(purpose.as_str()))
            .filter(account_tokens::used_at.is_null())
            .filter(account_tokens::expires_at.gt(Utc::now()))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Voids every unused link of an account: after a password change or reset, or an email
    /// change, a link mailed earlier (possibly to an attacker) must not work any more.
    pub async fn revoke_all(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<usize> {
        diesel::update(
            account_tokens::table
                .filter(account_tokens::account_id.eq(account_id))
                .filter(account_tokens::used_at.is_null()),
        )
        .set(account_tokens::used_at.eq(Utc::now()))
        .execute(conn)
        .await
    }

    /// Uses a token: one statement, so a link works exactly once even when clicked twice at
    /// the same moment.
    pub async fn consume(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        purpose: TokenPurpose,
    ) -> QueryResult<Option<Self>> {
        diesel::update(
            account_tokens::table
                .filter(account_tokens::token_hash.eq(token_hash))
                .filter(account_tokens::purpose.eq(purpose.as_str()))
                .filter(account_tokens::used_at.is_null())
                .filter(account_tokens::expires_at.gt(Utc::now())),
        )
        .set(account_tokens::used_at.eq(Utc::now()))
        .returning(Self::as_returning())
        .get_result(conn)
        .await
        .optional()
    }
}

/// A security event for the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub email: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub event: String,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

impl AuditEntry {
    /// Forgets entries older than `days` (their IP addresses and typed emails with them).
    pub async fn purge_older_than(conn: &mut AsyncPgConnection, days: u32) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM audit_log WHERE occurred_at < now() - make_interval(days => $1)",
        )
        .bind::<diesel::sql_types::Integer, _>(i32::try_from(days).unwrap_or(i32::MAX))
        .execute(conn)
        .await
    }

    pub async fn record(conn: &mut AsyncPgConnection, e: AuditEvent<'_>) -> QueryResult<()> {
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::event.eq(e.event),
                audit_log::actor_id.eq(e.actor_id),
                audit_log::subject_id.eq(e.subject_id),
                audit_log::email.eq(e.email),
                audit_log::ip.eq(e.ip),
                audit_log::detail.eq(e.detail),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Newest first, optionally one event type and/or entries mentioning an email or account.
    pub async fn search(
        conn: &mut AsyncPgConnection,
        event: Option<&str>,
        account_id: Option<i64>,
        email: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<Self>> {
        let mut q = audit_log::table.select(Self::as_select()).into_boxed();
        if let Some(ev) = event {
            q = q.filter(audit_log::event.eq(ev.to_owned()));
        }
        if let Some(id) = account_id {
            q = q.filter(audit_log::subject_id.eq(id).or(audit_log::actor_id.eq(id)));
        }
        if let Some(e) = email {
            q = q.filter(audit_log::email.eq(e.to_owned()));
        }
        q.order(audit_log::id.desc()).limit(limit).load(conn).await
    }
}
