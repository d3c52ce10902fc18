//! Registrations: an owner's claim to a unit. A unit has at most one active owner; a second
//! claim is held as a pending transfer for staff, never taken over silently.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Bool, Date, Nullable, Text, Timestamptz};
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

pub struct NewRegistration<'a> {
    pub unit_id: i64,
    pub account_id: i64,
    pub email: &'a str,
    pub purchased_on: NaiveDate,
    pub place_of_purchase: &'a str,
    pub marketing_consent: bool,
    pub reminder_wanted: bool,
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

/// Registers a unit, with the mail that confirms it (queued in the same transaction). `mail`
/// builds the mail for the outcome.
pub async fn register(
    conn: &mut AsyncPgConnection,
    r: &NewRegistration<'_>,
    mail: impl FnOnce(Registered) -> anyhow::Result<Option<Mail>> + Send,
) -> anyhow::Result<Registered> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
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
        if let Some(m) = mail(outcome)? {
            OutboxMail::enqueue(conn, &m).await?;
        }
        Ok(outcome)
    })
    .await
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
             marketing_consent, reminder_wanted, not_sold_flag, contact_email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
    .execute(conn)
    .await
    .map(|_| ())
}

/// One of an account's registrations, with what its product page needs.
#[derive(Debug, Clone, QueryableByName)]
pub struct MyProduct {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
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
}

const MINE: &str = "SELECT r.id, r.status, r.purchased_on, r.place_of_purchase, r.reminder_wanted,
        r.marketing_consent, r.created_at, u.serial, m.gtin, m.brand, m.name, r.decision_note
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
    /// The account was deleted: only the safety contact is kept, until `retained_until`.
    #[diesel(sql_type = Bool)]
    pub contact_retained: bool,
    #[diesel(sql_type = Nullable<Date>)]
    pub retained_until: Option<NaiveDate>,
}

const STAFF: &str = "SELECT r.id, r.unit_id, r.status, r.contact_email, r.purchased_on, r.place_of_purchase,
        r.not_sold_flag, r.created_at, u.serial, m.brand || ' ' || m.name AS product, r.decision_note,
        r.contact_retained, r.retained_until
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
