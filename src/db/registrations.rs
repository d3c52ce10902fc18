//! Registrations: an owner's claim to a unit. A unit has at most one active owner; a second
//! claim is held as a pending transfer for staff, never taken over silently.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Bool, Bytea, Date, Integer, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::outbox::OutboxMail;
use crate::mail::Mail;

/// What registering did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The unit is now this account's; `not_sold`: it was not recorded as sold (flagged).
    Owner { not_sold: bool },
    /// Someone else owns it: the request waits for staff.
    PendingTransfer,
    /// This account already owns it.
    AlreadyYours,
    /// This account already asked for it; staff have not decided yet.
    AlreadyRequested,
}

impl Registered {
    /// A short code for addresses and the drafts table.
    pub fn code(self) -> &'static str {
        match self {
            Registered::Owner { .. } => "registered",
            Registered::PendingTransfer => "pending",
            Registered::AlreadyYours => "already",
            Registered::AlreadyRequested => "requested",
        }
    }
}

pub struct NewRegistration<'a> {
    pub unit_id: i64,
    pub account_id: i64,
    pub email: &'a str,
    pub purchased_on: NaiveDate,
    pub place_of_purchase: &'a str,
    pub marketing_consent: bool,
    pub reminder_wanted: bool,
    pub proof: Option<StoredProof>,
}

/// A proof of purchase already written under `<data dir>/proofs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProof {
    pub file: String,
    pub media_type: String,
    pub bytes: i32,
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = BigInt)]
    account_id: i64,
}

#[derive(QueryableByName)]
struct Status {
    #[diesel(sql_type = Text)]
    status: String,
}

/// What registering did, and the proof file it replaced (to be removed after commit): a proof
/// sent with a registration the account already had replaces that registration's proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    pub registered: Registered,
    pub replaced_proof: Option<String>,
}

/// Registers a unit, with the mail that confirms it (queued in the same transaction). `mail`
/// builds the mail for the outcome.
pub async fn register(
    conn: &mut AsyncPgConnection,
    r: &NewRegistration<'_>,
    mail: impl FnOnce(Registered) -> anyhow::Result<Option<Mail>> + Send,
) -> anyhow::Result<RegisterOutcome> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| register_in(conn, r, mail).await)
        .await
}

/// [`register`], inside the caller's transaction.
async fn register_in(
    conn: &mut AsyncPgConnection,
    r: &NewRegistration<'_>,
    mail: impl FnOnce(Registered) -> anyhow::Result<Option<Mail>> + Send,
) -> anyhow::Result<RegisterOutcome> {
    {
        // One registration of a unit at a time: the owner check below then sees every
        // registration committed before it.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('registrations'), $1::int)")
            .bind::<diesel::sql_types::Integer, _>((r.unit_id % i64::from(i32::MAX)) as i32)
            .execute(conn)
            .await?;
        let owner: Option<Owner> = diesel::sql_query(
            "SELECT account_id FROM registrations WHERE unit_id = $1 AND status = 'active'",
        )
        .bind::<BigInt, _>(r.unit_id)
        .get_result(conn)
        .await
        .optional()?;
        let outcome = match owner {
            Some(o) if o.account_id == r.account_id => Registered::AlreadyYours,
            Some(_) => {
                let pending: i64 = diesel::sql_query(
                    "SELECT count(*) AS n FROM registrations WHERE unit_id = $1 AND account_id = $2 AND status = 'pending_transfer'",
                )
                .bind::<BigInt, _>(r.unit_id)
                .bind::<BigInt, _>(r.account_id)
                .get_result::<N>(conn)
                .await?
                .n;
                if pending > 0 {
                    Registered::AlreadyRequested
                } else {
                    insert(conn, r, "pending_transfer", false).await?;
                    Registered::PendingTransfer
                }
            }
            None => {
                let unit: Status = diesel::sql_query("SELECT status FROM units WHERE id = $1")
                    .bind::<BigInt, _>(r.unit_id)
                    .get_result(conn)
                    .await?;
                let not_sold = !matches!(unit.status.as_str(), "sold" | "shipped" | "registered");
                insert(conn, r, "active", not_sold).await?;
                diesel::sql_query(
                    "UPDATE units SET purchased_on = $2, updated_at = now(),
                            status = CASE WHEN status IN ('sold', 'shipped') THEN 'registered' ELSE status END
                     WHERE id = $1",
                )
                .bind::<BigInt, _>(r.unit_id)
                .bind::<Date, _>(r.purchased_on)
                .execute(conn)
                .await?;
                // The history names the account by number only: no personal data.
                diesel::sql_query(
                    "INSERT INTO unit_events (unit_id, kind, actor) VALUES ($1, 'registered', 'customer:' || $2)",
                )
                .bind::<BigInt, _>(r.unit_id)
                .bind::<BigInt, _>(r.account_id)
                .execute(conn)
                .await?;
                Registered::Owner { not_sold }
            }
        };
        let mut replaced_proof = None;
        if let (Some(proof), Registered::AlreadyYours | Registered::AlreadyRequested) =
            (&r.proof, outcome)
        {
            let status = if outcome == Registered::AlreadyYours {
                "active"
            } else {
                "pending_transfer"
            };
            replaced_proof = replace_proof(conn, r.unit_id, r.account_id, status, proof).await?;
        }
        if let Some(m) = mail(outcome)? {
            OutboxMail::enqueue(conn, &m).await?;
        }
        Ok(RegisterOutcome {
            registered: outcome,
            replaced_proof,
        })
    }
}

/// Puts `proof` on the account's registration of the unit in `status`; returns the file it
/// replaced.
async fn replace_proof(
    conn: &mut AsyncPgConnection,
    unit_id: i64,
    account_id: i64,
    status: &str,
    proof: &StoredProof,
) -> diesel::QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Old {
        #[diesel(sql_type = Nullable<Text>)]
        old: Option<String>,
    }
    let old: Option<Old> = diesel::sql_query(
        "UPDATE registrations r SET proof_file = $4, proof_type = $5, proof_bytes = $6
         FROM (SELECT id, proof_file AS old FROM registrations
               WHERE unit_id = $1 AND account_id = $2 AND status = $3 FOR UPDATE) o
         WHERE r.id = o.id
         RETURNING o.old",
    )
    .bind::<BigInt, _>(unit_id)
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(status)
    .bind::<Text, _>(&proof.file)
    .bind::<Text, _>(&proof.media_type)
    .bind::<Integer, _>(proof.bytes)
    .get_result(conn)
    .await
    .optional()?;
    Ok(old.and_then(|o| o.old))
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn insert(
    conn: &mut AsyncPgConnection,
    r: &NewRegistration<'_>,
    status: &str,
    not_sold: bool,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase,
             marketing_consent, reminder_wanted, not_sold_flag, contact_email,
             proof_file, proof_type, proof_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind::<BigInt, _>(r.unit_id)
    .bind::<BigInt, _>(r.account_id)
    .bind::<Text, _>(status)
    .bind::<Date, _>(r.purchased_on)
    .bind::<Text, _>(r.place_of_purchase)
    .bind::<Bool, _>(r.marketing_consent)
    .bind::<Bool, _>(r.reminder_wanted)
    .bind::<Bool, _>(not_sold)
    .bind::<Text, _>(r.email)
    .bind::<Nullable<Text>, _>(r.proof.as_ref().map(|p| p.file.as_str()))
    .bind::<Nullable<Text>, _>(r.proof.as_ref().map(|p| p.media_type.as_str()))
    .bind::<Nullable<Integer>, _>(r.proof.as_ref().map(|p| p.bytes))
    .execute(conn)
    .await
    .map(|_| ())
}

/// One of an account's registrations, with what its product page needs.
#[derive(Debug, Clone, QueryableByName)]
pub struct MyProduct {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub unit_id: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Date)]
    pub purchased_on: NaiveDate,
    #[diesel(sql_type = Text)]
    pub place_of_purchase: String,
    #[diesel(sql_type = Bool)]
    pub reminder_wanted: bool,
    #[diesel(sql_type = Bool)]
    pub marketing_consent: bool,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub brand: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub decision_note: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub proof_file: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub proof_type: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub proof_bytes: Option<i32>,
}

const MINE: &str = "SELECT r.id, r.unit_id, r.status, r.purchased_on, r.place_of_purchase, r.reminder_wanted,
        r.marketing_consent, r.created_at, u.serial, m.gtin, m.brand, m.name, r.decision_note,
        r.proof_file, r.proof_type, r.proof_bytes
    FROM registrations r JOIN units u ON u.id = r.unit_id JOIN product_models m ON m.id = u.model_id";

impl MyProduct {
    /// The account's registrations that are not ended, newest first.
    pub async fn of_account(
        conn: &mut AsyncPgConnection,
        account_id: i64,
    ) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!(
            "{MINE} WHERE r.account_id = $1 AND r.status <> 'ended' ORDER BY r.created_at DESC"
        ))
        .bind::<BigInt, _>(account_id)
        .load(conn)
        .await
    }

    /// One registration, only if it is the account's (anyone else's is "not found").
    pub async fn find(
        conn: &mut AsyncPgConnection,
        id: i64,
        account_id: i64,
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!("{MINE} WHERE r.id = $1 AND r.account_id = $2"))
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(account_id)
            .get_result(conn)
            .await
            .optional()
    }
}

/// A registration as staff see it (they may see personal data; customers never see each other's).
#[derive(Debug, Clone, QueryableByName)]
pub struct StaffRegistration {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub unit_id: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub contact_email: String,
    #[diesel(sql_type = Date)]
    pub purchased_on: NaiveDate,
    #[diesel(sql_type = Text)]
    pub place_of_purchase: String,
    #[diesel(sql_type = Bool)]
    pub not_sold_flag: bool,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub decision_note: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub proof_file: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub proof_type: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub proof_bytes: Option<i32>,
    #[diesel(sql_type = Text)]
    pub serial_key: String,
    /// The account was deleted: only the safety contact is kept, until `retained_until`.
    #[diesel(sql_type = Bool)]
    pub contact_retained: bool,
    #[diesel(sql_type = Nullable<Date>)]
    pub retained_until: Option<NaiveDate>,
}

const STAFF: &str = "SELECT r.id, r.unit_id, r.status, r.contact_email, r.purchased_on, r.place_of_purchase,
        r.not_sold_flag, r.created_at, u.serial, m.brand || ' ' || m.name AS product, r.decision_note,
        r.proof_file, r.proof_type, r.proof_bytes, u.serial_key, r.contact_retained, r.retained_until
    FROM registrations r JOIN units u ON u.id = r.unit_id JOIN product_models m ON m.id = u.model_id";

impl StaffRegistration {
    /// Pending transfers, oldest first.
    pub async fn pending(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!(
            "{STAFF} WHERE r.status = 'pending_transfer' ORDER BY r.created_at LIMIT 200"
        ))
        .load(conn)
        .await
    }

    /// Active registrations of units that were not recorded as sold, newest first.
    pub async fn flagged(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!(
            "{STAFF} WHERE r.status = 'active' AND r.not_sold_flag ORDER BY r.created_at DESC LIMIT 200"
        ))
        .load(conn)
        .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!("{STAFF} WHERE r.id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(conn)
            .await
            .optional()
    }

    /// Every registration of a unit, newest first.
    pub async fn of_unit(
        conn: &mut AsyncPgConnection,
        unit_id: i64,
    ) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!(
            "{STAFF} WHERE r.unit_id = $1 ORDER BY r.created_at DESC"
        ))
        .bind::<BigInt, _>(unit_id)
        .load(conn)
        .await
    }
}

/// Staff decide a pending transfer. Approve: the current owner's registration ends and the
/// request becomes the active one; reject: the request is refused with `note`. Both in one
/// transaction with the mails to both parties (built by `mails` from (requester, owner)).
/// `Ok(false)`: the request is no longer pending.
pub async fn decide(
    conn: &mut AsyncPgConnection,
    id: i64,
    approve: bool,
    note: &str,
    staff_id: i64,
    mails: impl FnOnce(&StaffRegistration, Option<&StaffRegistration>) -> anyhow::Result<Vec<Mail>>
    + Send,
) -> anyhow::Result<bool> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let Some(request) = StaffRegistration::find(conn, id).await? else {
            return Ok(false);
        };
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('registrations'), $1::int)")
            .bind::<diesel::sql_types::Integer, _>((request.unit_id % i64::from(i32::MAX)) as i32)
            .execute(conn)
            .await?;
        let still: i64 = diesel::sql_query(
            "SELECT count(*) AS n FROM registrations WHERE id = $1 AND status = 'pending_transfer'",
        )
        .bind::<BigInt, _>(id)
        .get_result::<N>(conn)
        .await?
        .n;
        if still == 0 {
            return Ok(false);
        }
        let owner: Option<StaffRegistration> = diesel::sql_query(format!(
            "{STAFF} WHERE r.unit_id = $1 AND r.status = 'active'"
        ))
        .bind::<BigInt, _>(request.unit_id)
        .get_result(conn)
        .await
        .optional()?;
        if approve {
            diesel::sql_query(
                "UPDATE registrations SET status = 'ended', ended_at = now(), decided_at = now(), decided_by = $2,
                        decision_note = 'transferred after a staff check'
                 WHERE unit_id = $1 AND status = 'active'",
            )
            .bind::<BigInt, _>(request.unit_id)
            .bind::<BigInt, _>(staff_id)
            .execute(conn)
            .await?;
            diesel::sql_query(
                "UPDATE registrations SET status = 'active', decided_at = now(), decided_by = $2, decision_note = $3 WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(staff_id)
            .bind::<Text, _>(note)
            .execute(conn)
            .await?;
            diesel::sql_query("UPDATE units SET purchased_on = $2, updated_at = now() WHERE id = $1")
            .bind::<BigInt, _>(request.unit_id)
            .bind::<Date, _>(request.purchased_on)
            .execute(conn)
            .await?;
            diesel::sql_query(
                "INSERT INTO unit_events (unit_id, kind, actor, note) VALUES ($1, 'registered', 'staff:' || $2, 'ownership transferred')",
            )
            .bind::<BigInt, _>(request.unit_id)
            .bind::<BigInt, _>(staff_id)
            .execute(conn)
            .await?;
        } else {
            diesel::sql_query(
                "UPDATE registrations SET status = 'rejected', decided_at = now(), decided_by = $2, decision_note = $3 WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(staff_id)
            .bind::<Text, _>(note)
            .execute(conn)
            .await?;
        }
        for m in mails(&request, owner.as_ref())? {
            OutboxMail::enqueue(conn, &m).await?;
        }
        Ok(true)
    })
    .await
}

/// One line of a registrations export (what an authority asks for in a recall).
#[derive(Debug, Clone, QueryableByName)]
pub struct ExportLine {
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub contact_email: String,
    #[diesel(sql_type = Bool)]
    pub contact_retained: bool,
    #[diesel(sql_type = Date)]
    pub purchased_on: NaiveDate,
    #[diesel(sql_type = Text)]
    pub place_of_purchase: String,
    #[diesel(sql_type = Timestamptz)]
    pub registered_at: DateTime<Utc>,
}

/// The current registrations (active or waiting for staff) of a model or of a lot.
pub async fn export(
    conn: &mut AsyncPgConnection,
    model_id: Option<i64>,
    lot_id: Option<i64>,
) -> diesel::QueryResult<Vec<ExportLine>> {
    diesel::sql_query(
        "SELECT m.gtin, u.serial, l.code AS lot, r.status, r.contact_email, r.contact_retained,
                r.purchased_on, r.place_of_purchase, r.created_at AS registered_at
         FROM registrations r
         JOIN units u ON u.id = r.unit_id
         JOIN product_models m ON m.id = u.model_id
         LEFT JOIN lots l ON l.id = u.lot_id
         WHERE r.status IN ('active', 'pending_transfer')
           AND ($1::bigint IS NULL OR u.model_id = $1)
           AND ($2::bigint IS NULL OR u.lot_id = $2)
         ORDER BY u.serial_key, r.created_at",
    )
    .bind::<Nullable<BigInt>, _>(model_id)
    .bind::<Nullable<BigInt>, _>(lot_id)
    .load(conn)
    .await
}

/// A registration typed before signing in, waiting for its author to sign in and confirm it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Draft {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub unit_id: i64,
    #[diesel(sql_type = Date)]
    pub purchased_on: NaiveDate,
    #[diesel(sql_type = Text)]
    pub place_of_purchase: String,
    #[diesel(sql_type = Bool)]
    pub marketing_consent: bool,
    #[diesel(sql_type = Bool)]
    pub reminder_wanted: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub proof_file: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub proof_type: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub proof_bytes: Option<i32>,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Bytea)]
    pub browser_hash: Vec<u8>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub account_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub completed_by: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub outcome: Option<String>,
}

/// What finishing a draft did.
#[derive(Debug, Clone)]
pub enum Completion {
    /// No such live draft (expired, made up, or finished by someone else).
    Gone,
    /// Neither the browser that typed it nor the account it was meant for: nothing happens.
    NotYours,
    /// Registered now.
    Done(Box<Draft>, RegisterOutcome),
    /// This account finished it before (a second click); the outcome it had then.
    AlreadyDone(String),
}

impl Draft {
    /// Whether a request from the browser with `browser_hash`, signed in as `account_id`, may
    /// see and finish this draft: the browser that typed it, or the account it was meant for.
    pub fn may_finish(&self, browser_hash: Option<&[u8]>, account_id: Option<i64>) -> bool {
        browser_hash.is_some_and(|h| h == self.browser_hash.as_slice())
            || (account_id.is_some() && self.account_id == account_id)
    }

    /// The proof it carries, if any.
    pub fn proof(&self) -> Option<StoredProof> {
        Some(StoredProof {
            file: self.proof_file.clone()?,
            media_type: self.proof_type.clone()?,
            bytes: self.proof_bytes.unwrap_or(0),
        })
    }

    /// Keeps a draft for `hours`, named by the hash of its token, typed in the browser whose
    /// secret hashes to `browser_hash`.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        browser_hash: &[u8],
        r: &NewRegistration<'_>,
        hours: i64,
    ) -> diesel::QueryResult<()> {
        diesel::sql_query(
            "INSERT INTO registration_drafts (token_hash, unit_id, purchased_on, place_of_purchase,
                 marketing_consent, reminder_wanted, proof_file, proof_type, proof_bytes, expires_at,
                 browser_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(hours => $10::int), $11)",
        )
        .bind::<Bytea, _>(token_hash)
        .bind::<BigInt, _>(r.unit_id)
        .bind::<Date, _>(r.purchased_on)
        .bind::<Text, _>(r.place_of_purchase)
        .bind::<Bool, _>(r.marketing_consent)
        .bind::<Bool, _>(r.reminder_wanted)
        .bind::<Nullable<Text>, _>(r.proof.as_ref().map(|p| p.file.as_str()))
        .bind::<Nullable<Text>, _>(r.proof.as_ref().map(|p| p.media_type.as_str()))
        .bind::<Nullable<Integer>, _>(r.proof.as_ref().map(|p| p.bytes))
        .bind::<Integer, _>(hours as i32)
        .bind::<Bytea, _>(browser_hash)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// The draft is meant for `account_id` (signed up, or already existing, for the address the
    /// confirmation mail with the draft's link went to). Only the first such account counts.
    pub async fn meant_for(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        account_id: i64,
    ) -> diesel::QueryResult<()> {
        diesel::sql_query(
            "UPDATE registration_drafts SET account_id = $2
             WHERE token_hash = $1 AND account_id IS NULL AND completed_by IS NULL",
        )
        .bind::<Bytea, _>(token_hash)
        .bind::<BigInt, _>(account_id)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// The live draft named by `token_hash`.
    pub async fn find(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(
            "SELECT d.id, d.unit_id, d.purchased_on, d.place_of_purchase, d.marketing_consent,
                    d.reminder_wanted, d.proof_file, d.proof_type, d.proof_bytes, u.serial, m.gtin,
                    m.brand || ' ' || m.name AS product, d.browser_hash, d.account_id,
                    d.completed_by, d.outcome
             FROM registration_drafts d
             JOIN units u ON u.id = d.unit_id JOIN product_models m ON m.id = u.model_id
             WHERE d.token_hash = $1 AND d.expires_at > now()
             FOR UPDATE OF d",
        )
        .bind::<Bytea, _>(token_hash)
        .get_result(conn)
        .await
        .optional()
    }

    /// Turns the draft into a registration of `account_id` (mailing `email`), in one
    /// transaction that marks the draft finished, so it is used once. Only the browser that
    /// typed it (`browser_hash`) or the account it was meant for may.
    pub async fn complete(
        conn: &mut AsyncPgConnection,
        token_hash: &[u8],
        browser_hash: Option<&[u8]>,
        account_id: i64,
        email: &str,
        mail: impl FnOnce(&Draft, Registered) -> anyhow::Result<Option<Mail>> + Send,
    ) -> anyhow::Result<Completion> {
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            let Some(draft) = Draft::find(conn, token_hash).await? else {
                return Ok(Completion::Gone);
            };
            match draft.completed_by {
                Some(by) if by == account_id => {
                    return Ok(Completion::AlreadyDone(draft.outcome.unwrap_or_default()));
                }
                Some(_) => return Ok(Completion::Gone),
                None => {}
            }
            if !draft.may_finish(browser_hash, Some(account_id)) {
                return Ok(Completion::NotYours);
            }
            let r = NewRegistration {
                unit_id: draft.unit_id,
                account_id,
                email,
                purchased_on: draft.purchased_on,
                place_of_purchase: &draft.place_of_purchase,
                marketing_consent: draft.marketing_consent,
                reminder_wanted: draft.reminder_wanted,
                proof: draft.proof(),
            };
            let d = &draft;
            let outcome = register_in(conn, &r, |o| mail(d, o)).await?;
            diesel::sql_query(
                "UPDATE registration_drafts SET completed_by = $2, outcome = $3 WHERE id = $1",
            )
            .bind::<BigInt, _>(draft.id)
            .bind::<BigInt, _>(account_id)
            .bind::<Text, _>(outcome.registered.code())
            .execute(conn)
            .await?;
            Ok(Completion::Done(Box::new(draft.clone()), outcome))
        })
        .await
    }

    /// Deletes expired drafts and returns the proof files they held, to be removed.
    pub async fn purge_expired(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<String>> {
        #[derive(QueryableByName)]
        struct File {
            #[diesel(sql_type = Nullable<Text>)]
            proof_file: Option<String>,
        }
        // A finished draft's file belongs to the registration it became.
        let rows: Vec<File> = diesel::sql_query(
            "DELETE FROM registration_drafts WHERE expires_at <= now()
             RETURNING CASE WHEN completed_by IS NULL THEN proof_file END AS proof_file",
        )
        .load(conn)
        .await?;
        Ok(rows.into_iter().filter_map(|r| r.proof_file).collect())
    }
}

/// Attaches (or replaces) the proof of an account's registration; returns the file it replaced.
/// `None`: the registration is not the account's (or is over).
pub async fn set_proof(
    conn: &mut AsyncPgConnection,
    id: i64,
    account_id: i64,
    proof: &StoredProof,
) -> diesel::QueryResult<Option<Option<String>>> {
    #[derive(QueryableByName)]
    struct Old {
        #[diesel(sql_type = Nullable<Text>)]
        old: Option<String>,
    }
    let old: Option<Old> = diesel::sql_query(
        "UPDATE registrations r SET proof_file = $3, proof_type = $4, proof_bytes = $5
         FROM (SELECT id, proof_file AS old FROM registrations
               WHERE id = $1 AND account_id = $2 AND status IN ('active', 'pending_transfer')
               FOR UPDATE) o
         WHERE r.id = o.id
         RETURNING o.old",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(&proof.file)
    .bind::<Text, _>(&proof.media_type)
    .bind::<Integer, _>(proof.bytes)
    .get_result(conn)
    .await
    .optional()?;
    Ok(old.map(|o| o.old))
}

/// What ending an account's registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The owner gave the unit up: recall notices stop; the unit's history says so.
    Ownership,
    /// A pending transfer request was withdrawn.
    Request,
}

/// The owner ends their registration ("I no longer have it") or withdraws a pending request.
/// `None`: not the account's, or already over.
pub async fn end(
    conn: &mut AsyncPgConnection,
    id: i64,
    account_id: i64,
) -> anyhow::Result<Option<Ended>> {
    #[derive(QueryableByName)]
    struct Was {
        #[diesel(sql_type = BigInt)]
        unit_id: i64,
        #[diesel(sql_type = Text)]
        status: String,
    }
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let was: Option<Was> = diesel::sql_query(
            "WITH old AS (
                 SELECT id, unit_id, status FROM registrations
                 WHERE id = $1 AND account_id = $2 AND status IN ('active', 'pending_transfer')
                 FOR UPDATE)
             UPDATE registrations r SET status = 'ended', ended_at = now(),
                    decision_note = CASE old.status WHEN 'active' THEN 'ended by the owner'
                                                    ELSE 'request withdrawn' END
             FROM old WHERE r.id = old.id
             RETURNING old.unit_id, old.status",
        )
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(account_id)
        .get_result(conn)
        .await
        .optional()?;
        let Some(was) = was else {
            return Ok(None);
        };
        if was.status != "active" {
            return Ok(Some(Ended::Request));
        }
        diesel::sql_query(
            "UPDATE units SET status = 'sold', updated_at = now() WHERE id = $1 AND status = 'registered'",
        )
        .bind::<BigInt, _>(was.unit_id)
        .execute(conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO unit_events (unit_id, kind, actor, note) VALUES ($1, 'unregistered', 'customer:' || $2, 'ended by the owner')",
        )
        .bind::<BigInt, _>(was.unit_id)
        .bind::<BigInt, _>(account_id)
        .execute(conn)
        .await?;
        Ok(Some(Ended::Ownership))
    })
    .await
}

/// How many current registrations a model (or one of its lots) has.
#[derive(Debug, Clone, Copy, Default, QueryableByName)]
pub struct RegistrationCounts {
    #[diesel(sql_type = BigInt)]
    pub active: i64,
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
}

/// The current registrations (active or waiting for staff) of a model or one of its lots, by
/// serial, `limit` at a time after `after` (a serial key and registration id: keyset paging,
/// so any page is as quick as the first).
pub async fn of_model(
    conn: &mut AsyncPgConnection,
    model_id: i64,
    lot_id: Option<i64>,
    after: Option<(&str, i64)>,
    limit: i64,
) -> diesel::QueryResult<(RegistrationCounts, Vec<StaffRegistration>)> {
    let counts: RegistrationCounts = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE r.status = 'active') AS active,
                count(*) FILTER (WHERE r.status = 'pending_transfer') AS pending
         FROM registrations r JOIN units u ON u.id = r.unit_id
         WHERE r.status IN ('active', 'pending_transfer') AND u.model_id = $1
           AND ($2::bigint IS NULL OR u.lot_id = $2)",
    )
    .bind::<BigInt, _>(model_id)
    .bind::<Nullable<BigInt>, _>(lot_id)
    .get_result(conn)
    .await?;
    let rows = diesel::sql_query(format!(
        "{STAFF} WHERE r.status IN ('active', 'pending_transfer') AND u.model_id = $1
           AND ($2::bigint IS NULL OR u.lot_id = $2)
           AND ($3::text IS NULL OR (u.serial_key, r.id) > ($3, $4))
         ORDER BY u.serial_key, r.id LIMIT $5"
    ))
    .bind::<BigInt, _>(model_id)
    .bind::<Nullable<BigInt>, _>(lot_id)
    .bind::<Nullable<Text>, _>(after.map(|a| a.0))
    .bind::<BigInt, _>(after.map_or(0, |a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok((counts, rows))
}

/// Which of the stored proof `names` no registration or draft names (left by a crash between
/// writing the file and committing its row).
pub async fn unreferenced_proofs(
    conn: &mut AsyncPgConnection,
    names: &[String],
) -> diesel::QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT f AS name FROM unnest($1::text[]) AS f
         WHERE NOT EXISTS (SELECT 1 FROM registrations r WHERE r.proof_file = f)
           AND NOT EXISTS (SELECT 1 FROM registration_drafts d WHERE d.proof_file = f)",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(names)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}
