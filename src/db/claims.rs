//! Warranty claims: filing, the customer's and the staff's views, every move of the state
//! machine (checked by `domain::claims` inside the transaction that makes it), updates, notes,
//! estimates, RMA and assignment. Every public change queues its mail in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Bool, Date, Integer, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::outbox::OutboxMail;
use crate::domain::claims::{Actor, Status, TransitionError, check, claim_number};
use crate::mail::Mail;

/// Flags worked out when a claim is filed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub never_sold: bool,
    pub not_owner: bool,
    pub out_of_warranty: bool,
    pub open_recall: bool,
}

/// A photo already written under `<data dir>/claim-photos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPhoto {
    pub file: String,
    pub media_type: String,
    pub bytes: i32,
}

pub struct NewClaim<'a> {
    pub unit_id: i64,
    pub registration_id: i64,
    pub account_id: i64,
    pub category: &'a str,
    pub description: &'a str,
    pub noticed_on: NaiveDate,
    pub contact_preference: &'a str,
    pub contact_phone: Option<&'a str>,
    pub flags: Flags,
    pub photos: &'a [StoredPhoto],
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// What filing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filed {
    New {
        id: i64,
        number: String,
    },
    /// The customer already has a claim on this unit waiting for an outcome: this one.
    AlreadyOpen {
        id: i64,
        number: String,
    },
}

/// Files a claim with its photos and the "received" entry of its timeline, and queues the mail
/// `mail(number)` builds, in one transaction.
pub async fn file(
    conn: &mut AsyncPgConnection,
    c: &NewClaim<'_>,
    year: i32,
    mail: impl FnOnce(&str, i64) -> anyhow::Result<Mail> + Send,
) -> anyhow::Result<Filed> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let seq: Id = diesel::sql_query("SELECT nextval('claim_number_seq') AS id")
            .get_result(conn)
            .await?;
        let number = claim_number(year, seq.id);
        let id: Option<Id> = diesel::sql_query(
            "INSERT INTO claims (number, unit_id, registration_id, account_id, status, category,
                 description, noticed_on, contact_preference, contact_phone, flag_never_sold,
                 flag_not_owner, flag_out_of_warranty, flag_open_recall)
             VALUES ($1, $2, $3, $4, 'submitted', $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (unit_id, account_id) WHERE status IN ('submitted', 'info_requested',
                 'triaged', 'approved', 'awaiting_unit', 'in_repair') DO NOTHING
             RETURNING id",
        )
        .bind::<Text, _>(&number)
        .bind::<BigInt, _>(c.unit_id)
        .bind::<BigInt, _>(c.registration_id)
        .bind::<BigInt, _>(c.account_id)
        .bind::<Text, _>(c.category)
        .bind::<Text, _>(c.description)
        .bind::<Date, _>(c.noticed_on)
        .bind::<Text, _>(c.contact_preference)
        .bind::<Nullable<Text>, _>(c.contact_phone)
        .bind::<Bool, _>(c.flags.never_sold)
        .bind::<Bool, _>(c.flags.not_owner)
        .bind::<Bool, _>(c.flags.out_of_warranty)
        .bind::<Bool, _>(c.flags.open_recall)
        .get_result(conn)
        .await
        .optional()?;
        let Some(id) = id else {
            #[derive(QueryableByName)]
            struct Open {
                #[diesel(sql_type = BigInt)]
                id: i64,
                #[diesel(sql_type = Text)]
                number: String,
            }
            let open: Open = diesel::sql_query(
                "SELECT id, number FROM claims WHERE unit_id = $1 AND account_id = $2
                   AND status IN ('submitted', 'info_requested', 'triaged', 'approved',
                                  'awaiting_unit', 'in_repair')",
            )
            .bind::<BigInt, _>(c.unit_id)
            .bind::<BigInt, _>(c.account_id)
            .get_result(conn)
            .await?;
            return Ok(Filed::AlreadyOpen {
                id: open.id,
                number: open.number,
            });
        };
        event(
            conn,
            id.id,
            Some(c.account_id),
            Actor::Customer,
            "filed",
            true,
            None,
            Some(Status::Submitted),
            None,
            None,
        )
        .await?;
        add_photos(conn, id.id, c.photos).await?;
        OutboxMail::enqueue(conn, &mail(&number, id.id)?).await?;
        Ok(Filed::New { id: id.id, number })
    })
    .await
}

async fn add_photos(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
    photos: &[StoredPhoto],
) -> diesel::QueryResult<()> {
    if photos.is_empty() {
        return Ok(());
    }
    let files: Vec<&str> = photos.iter().map(|p| p.file.as_str()).collect();
    let types: Vec<&str> = photos.iter().map(|p| p.media_type.as_str()).collect();
    let sizes: Vec<i32> = photos.iter().map(|p| p.bytes).collect();
    diesel::sql_query(
        "INSERT INTO claim_photos (claim_id, file, media_type, bytes)
         SELECT $1, f, t, b FROM unnest($2::text[], $3::text[], $4::int[]) AS p(f, t, b)",
    )
    .bind::<BigInt, _>(claim_id)
    .bind::<diesel::sql_types::Array<Text>, _>(files)
    .bind::<diesel::sql_types::Array<Text>, _>(types)
    .bind::<diesel::sql_types::Array<Integer>, _>(sizes)
    .execute(conn)
    .await
    .map(|_| ())
}

#[allow(clippy::too_many_arguments)]
async fn event(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
    actor_id: Option<i64>,
    actor: Actor,
    kind: &str,
    public: bool,
    from: Option<Status>,
    to: Option<Status>,
    note: Option<&str>,
    eta: Option<NaiveDate>,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO claim_events (claim_id, actor_id, actor_role, kind, public, from_status,
             to_status, note, eta)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind::<BigInt, _>(claim_id)
    .bind::<Nullable<BigInt>, _>(actor_id)
    .bind::<Text, _>(match actor {
        Actor::Customer => "customer",
        Actor::Staff => "staff",
    })
    .bind::<Text, _>(kind)
    .bind::<Bool, _>(public)
    .bind::<Nullable<Text>, _>(from.map(Status::as_str))
    .bind::<Nullable<Text>, _>(to.map(Status::as_str))
    .bind::<Nullable<Text>, _>(note)
    .bind::<Nullable<Date>, _>(eta)
    .execute(conn)
    .await
    .map(|_| ())
}

/// One claim with what its pages show.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claim {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub number: String,
    #[diesel(sql_type = BigInt)]
    pub unit_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub registration_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub category: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Date)]
    pub noticed_on: NaiveDate,
    #[diesel(sql_type = Text)]
    pub contact_preference: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub contact_phone: Option<String>,
    #[diesel(sql_type = Bool)]
    pub flag_never_sold: bool,
    #[diesel(sql_type = Bool)]
    pub flag_not_owner: bool,
    #[diesel(sql_type = Bool)]
    pub flag_out_of_warranty: bool,
    #[diesel(sql_type = Bool)]
    pub flag_open_recall: bool,
    #[diesel(sql_type = Nullable<Date>)]
    pub eta: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub assignee_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub assignee_email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub rma_number: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub return_instructions: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub outcome_note: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub replacement_serial: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub filed_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub status_since: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Text)]
    pub claimant_email: String,
}

const CLAIM: &str = "SELECT c.id, c.number, c.unit_id, c.registration_id, c.account_id, c.status,
        c.category, c.description, c.noticed_on, c.contact_preference, c.contact_phone,
        c.flag_never_sold, c.flag_not_owner, c.flag_out_of_warranty, c.flag_open_recall, c.eta,
        c.assignee_id, s.email AS assignee_email, c.rma_number, c.return_instructions,
        c.outcome_note, r.serial AS replacement_serial, c.filed_at, c.status_since, u.serial,
        m.gtin, m.brand || ' ' || m.name AS product, a.email AS claimant_email
    FROM claims c
    JOIN units u ON u.id = c.unit_id
    JOIN product_models m ON m.id = u.model_id
    JOIN accounts a ON a.id = c.account_id
    LEFT JOIN accounts s ON s.id = c.assignee_id
    LEFT JOIN units r ON r.id = c.replacement_unit_id";

impl Claim {
    pub fn state(&self) -> Option<Status> {
        Status::parse(&self.status)
    }

    /// One claim, for staff.
    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!("{CLAIM} WHERE c.id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(conn)
            .await
            .optional()
    }

    /// One claim, only if it is the account's (anyone else's is "not found").
    pub async fn find_own(
        conn: &mut AsyncPgConnection,
        id: i64,
        account_id: i64,
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!("{CLAIM} WHERE c.id = $1 AND c.account_id = $2"))
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(account_id)
            .get_result(conn)
            .await
            .optional()
    }

    /// The account's claims, newest first; only those on one unit with `unit_id`.
    pub async fn of_account(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        unit_id: Option<i64>,
    ) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!(
            "{CLAIM} WHERE c.account_id = $1 AND ($2::bigint IS NULL OR c.unit_id = $2)
             ORDER BY c.filed_at DESC, c.id DESC LIMIT 200"
        ))
        .bind::<BigInt, _>(account_id)
        .bind::<Nullable<BigInt>, _>(unit_id)
        .load(conn)
        .await
    }

    /// Every claim on a unit (staff), newest first.
    pub async fn of_unit(
        conn: &mut AsyncPgConnection,
        unit_id: i64,
    ) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!(
            "{CLAIM} WHERE c.unit_id = $1 ORDER BY c.filed_at DESC, c.id DESC LIMIT 200"
        ))
        .bind::<BigInt, _>(unit_id)
        .load(conn)
        .await
    }
}

/// One entry of a claim's timeline.
#[derive(Debug, Clone, QueryableByName)]
pub struct ClaimEvent {
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub actor_role: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub actor_email: Option<String>,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Bool)]
    pub public: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub from_status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub to_status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub note: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    pub eta: Option<NaiveDate>,
}

/// A claim's timeline, oldest first: the public entries only, or everything (staff).
pub async fn timeline(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
    with_internal: bool,
) -> diesel::QueryResult<Vec<ClaimEvent>> {
    diesel::sql_query(
        "SELECT e.at, e.actor_role, a.email AS actor_email, e.kind, e.public, e.from_status,
                e.to_status, e.note, e.eta
         FROM claim_events e LEFT JOIN accounts a ON a.id = e.actor_id
         WHERE e.claim_id = $1 AND (e.public OR $2)
         ORDER BY e.at, e.id",
    )
    .bind::<BigInt, _>(claim_id)
    .bind::<Bool, _>(with_internal)
    .load(conn)
    .await
}

/// A claim's photo.
#[derive(Debug, Clone, QueryableByName)]
pub struct Photo {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub claim_id: i64,
    #[diesel(sql_type = Text)]
    pub file: String,
    #[diesel(sql_type = Text)]
    pub media_type: String,
    #[diesel(sql_type = Integer)]
    pub bytes: i32,
}

pub async fn photos(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
) -> diesel::QueryResult<Vec<Photo>> {
    diesel::sql_query(
        "SELECT id, claim_id, file, media_type, bytes FROM claim_photos WHERE claim_id = $1 ORDER BY id",
    )
    .bind::<BigInt, _>(claim_id)
    .load(conn)
    .await
}

/// Which of the stored photo `names` no claim names (for the sweep of files a crash left).
pub async fn unreferenced_photos(
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
         WHERE NOT EXISTS (SELECT 1 FROM claim_photos p WHERE p.file = f)",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(names)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// Why a change to a claim did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No such claim (or not this customer's).
    NotFound,
    /// Someone changed it since the page was shown: it is now in this state.
    Changed(Status),
    /// The state machine refuses the move.
    Transition(TransitionError),
    /// A replacement that cannot be made, and why: `same` (the claim's own unit),
    /// `not_in_stock` (sold, shipped, linked to a sale, registered or requested, scrapped…),
    /// `not_owner` (the claimant no longer owns the claim's unit), `already_replaced`.
    Replacement(String),
    /// More photos than a claim takes.
    TooManyPhotos,
}

/// A replacement for the claim's unit: the new unit, and the warranty end it inherits.
#[derive(Debug, Clone, Copy)]
pub struct Replacement {
    pub unit_id: i64,
    pub inherited_end: Option<NaiveDate>,
    pub today: NaiveDate,
}

/// A move of the state machine.
pub struct Move<'a> {
    pub claim_id: i64,
    /// The state the person saw: if the claim is in another by now, nothing happens.
    pub seen: Status,
    pub to: Status,
    pub actor: Actor,
    pub actor_id: i64,
    /// The customer's own claims only.
    pub own_account: Option<i64>,
    pub note: Option<&'a str>,
    pub replacement: Option<Replacement>,
}

/// Locks the claim, checks it is the one the person saw and theirs (for customers).
async fn lock(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
    own_account: Option<i64>,
) -> diesel::QueryResult<Option<Locked>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        account_id: i64,
        #[diesel(sql_type = Text)]
        number: String,
        #[diesel(sql_type = BigInt)]
        unit_id: i64,
        #[diesel(sql_type = Nullable<Text>)]
        email: Option<String>,
    }
    let row: Option<Row> = diesel::sql_query(
        "SELECT c.status, c.account_id, c.number, c.unit_id,
                CASE WHEN a.deleted_at IS NULL THEN a.email END AS email
         FROM claims c JOIN accounts a ON a.id = c.account_id
         WHERE c.id = $1 AND ($2::bigint IS NULL OR c.account_id = $2) FOR UPDATE OF c",
    )
    .bind::<BigInt, _>(claim_id)
    .bind::<Nullable<BigInt>, _>(own_account)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.and_then(|r| {
        Some(Locked {
            status: Status::parse(&r.status)?,
            claimant: r.account_id,
            number: r.number,
            unit_id: r.unit_id,
            email: r.email,
        })
    }))
}

struct Locked {
    status: Status,
    claimant: i64,
    number: String,
    unit_id: i64,
    email: Option<String>,
}

/// What the mail for a public change needs: the claim, its number, the claimant's address (none
/// when the account was deleted: then no mail).
pub struct Notify<'a> {
    pub claim_id: i64,
    pub number: &'a str,
    pub email: &'a str,
}

/// Makes a move (with its event, the outcome note, a replacement, the mail) in one transaction.
pub async fn move_to(
    conn: &mut AsyncPgConnection,
    m: &Move<'_>,
    mail: impl FnOnce(&Notify<'_>) -> anyhow::Result<Option<Mail>> + Send,
) -> anyhow::Result<Result<(), Refused>> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let Some(Locked {
            status: now,
            claimant,
            number,
            unit_id,
            email,
        }) = lock(conn, m.claim_id, m.own_account).await?
        else {
            return Ok(Err(Refused::NotFound));
        };
        if now != m.seen {
            return Ok(Err(Refused::Changed(now)));
        }
        if let Err(e) = check(now, m.to, m.actor) {
            return Ok(Err(Refused::Transition(e)));
        }
        if let Some(r) = m.replacement
            && let Err(why) = replace_unit(conn, m.claim_id, &number, unit_id, claimant, &r).await?
        {
            return Ok(Err(Refused::Replacement(why)));
        }
        // The note is the outcome the customer reads for a decision; a question otherwise.
        let outcome = matches!(
            m.to,
            Status::Rejected | Status::ShippedBack | Status::Refunded
        );
        diesel::sql_query(
            "UPDATE claims SET status = $2, status_since = now(), updated_at = now(),
                    outcome_note = CASE WHEN $3 THEN $4 ELSE outcome_note END,
                    closed_at = CASE WHEN $2 IN ('closed', 'cancelled') THEN now() ELSE closed_at END
             WHERE id = $1",
        )
        .bind::<BigInt, _>(m.claim_id)
        .bind::<Text, _>(m.to.as_str())
        .bind::<Bool, _>(outcome)
        .bind::<Nullable<Text>, _>(m.note)
        .execute(conn)
        .await?;
        event(
            conn,
            m.claim_id,
            Some(m.actor_id),
            m.actor,
            "status",
            true,
            Some(now),
            Some(m.to),
            m.note,
            None,
        )
        .await?;
        if let Some(email) = &email {
            let notify = Notify {
                claim_id: m.claim_id,
                number: &number,
                email,
            };
            if let Some(mail) = mail(&notify)? {
                OutboxMail::enqueue(conn, &mail).await?;
            }
        }
        Ok(Ok(()))
    })
    .await
}

/// The replacement: the old unit is marked replaced, the new one inherits its warranty (the
/// owner's purchase date and the old unit's end) and the claimant's registration moves to it.
/// `Err(why)` when it cannot be done; nothing is then changed.
async fn replace_unit(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
    number: &str,
    old_unit: i64,
    claimant: i64,
    r: &Replacement,
) -> anyhow::Result<Result<(), String>> {
    if r.unit_id == old_unit {
        return Ok(Err("same".into()));
    }
    // The same per-unit locks registering and transfer decisions take, lower id first.
    for unit in [old_unit.min(r.unit_id), old_unit.max(r.unit_id)] {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('registrations'), $1::int)")
            .bind::<diesel::sql_types::Integer, _>((unit % i64::from(i32::MAX)) as i32)
            .execute(conn)
            .await?;
    }
    #[derive(QueryableByName)]
    struct Eligible {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Bool)]
        free: bool,
    }
    // In stock, never sold, no sale linked, nobody's registration or request.
    let new: Eligible = diesel::sql_query(
        "SELECT u.status,
                u.sold_on IS NULL
                AND NOT EXISTS (SELECT 1 FROM sale_units s WHERE s.unit_id = u.id AND s.unlinked_at IS NULL)
                AND NOT EXISTS (SELECT 1 FROM registrations g WHERE g.unit_id = u.id
                                AND g.status IN ('active', 'pending_transfer')) AS free
         FROM units u WHERE u.id = $1 FOR UPDATE",
    )
    .bind::<BigInt, _>(r.unit_id)
    .get_result(conn)
    .await?;
    if !new.free
        || !matches!(
            new.status.as_str(),
            "manufactured" | "in_stock" | "returned"
        )
    {
        return Ok(Err("not_in_stock".into()));
    }
    #[derive(QueryableByName)]
    struct Old {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Nullable<Date>)]
        purchased_on: Option<NaiveDate>,
    }
    // The claimant must still own the old unit through the registration the claim was filed on.
    let old: Option<Old> = diesel::sql_query(
        "SELECT u.status, g.purchased_on
         FROM claims c JOIN units u ON u.id = c.unit_id
         JOIN registrations g ON g.id = c.registration_id
         WHERE c.id = $1 AND g.status = 'active' AND g.account_id = $2 AND g.unit_id = u.id
         FOR UPDATE OF u, g",
    )
    .bind::<BigInt, _>(claim_id)
    .bind::<BigInt, _>(claimant)
    .get_result(conn)
    .await
    .optional()?;
    let Some(old) = old else {
        return Ok(Err("not_owner".into()));
    };
    if old.status == "replaced" {
        return Ok(Err("already_replaced".into()));
    }
    diesel::sql_query(
        "UPDATE units SET status = 'replaced', replaced_by = $2, updated_at = now() WHERE id = $1",
    )
    .bind::<BigInt, _>(old_unit)
    .bind::<BigInt, _>(r.unit_id)
    .execute(conn)
    .await?;
    // The owner's purchase date starts its term as it did the old one's, and the old unit's
    // end (with its extensions) is inherited: the new unit has the rest of the old warranty.
    diesel::sql_query(
        "UPDATE units SET status = 'registered', purchased_on = $4, inherited_from = $2,
                inherited_end = $3, updated_at = now()
         WHERE id = $1",
    )
    .bind::<BigInt, _>(r.unit_id)
    .bind::<Date, _>(r.today)
    .bind::<Nullable<Date>, _>(r.inherited_end)
    .bind::<Nullable<Date>, _>(old.purchased_on)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO unit_events (unit_id, kind, actor, reference, note)
         SELECT $1, 'replaced', 'claim:' || $3, $4, 'replaced by ' || (SELECT serial FROM units WHERE id = $2)
         UNION ALL
         SELECT $2, 'registered', 'claim:' || $3, $4, 'replacement for ' || (SELECT serial FROM units WHERE id = $1)",
    )
    .bind::<BigInt, _>(old_unit)
    .bind::<BigInt, _>(r.unit_id)
    .bind::<BigInt, _>(claim_id)
    .bind::<Text, _>(number)
    .execute(conn)
    .await?;
    // The registration moves to the new unit with everything it had (the reminder already
    // sent stays sent; a retained contact stays retained).
    let moved = diesel::sql_query(
        "WITH old AS (
             UPDATE registrations SET status = 'ended', ended_at = now(),
                    decision_note = 'the unit was replaced under claim ' || $4
             WHERE id = (SELECT registration_id FROM claims WHERE id = $5) AND status = 'active'
             RETURNING *)
         INSERT INTO registrations (unit_id, account_id, status, purchased_on, place_of_purchase,
             marketing_consent, reminder_wanted, reminder_sent_at, contact_email, contact_retained,
             retained_until, proof_file, proof_type, proof_bytes)
         SELECT $2, account_id, 'active', purchased_on, place_of_purchase, marketing_consent,
                reminder_wanted, reminder_sent_at, contact_email, contact_retained, retained_until,
                proof_file, proof_type, proof_bytes
         FROM old WHERE account_id = $3",
    )
    .bind::<BigInt, _>(old_unit)
    .bind::<BigInt, _>(r.unit_id)
    .bind::<BigInt, _>(claimant)
    .bind::<Text, _>(number)
    .bind::<BigInt, _>(claim_id)
    .execute(conn)
    .await?;
    if moved != 1 {
        anyhow::bail!("claim {claim_id}: the registration did not move to the replacement");
    }
    diesel::sql_query("UPDATE claims SET replacement_unit_id = $2 WHERE id = $1")
        .bind::<BigInt, _>(claim_id)
        .bind::<BigInt, _>(r.unit_id)
        .execute(conn)
        .await?;
    Ok(Ok(()))
}

/// A change that is not a move: a public update, an internal note, an estimate, an RMA, an
/// assignment, information from the customer.
pub enum Change<'a> {
    /// A public update (mailed) or an internal note.
    Note {
        public: bool,
        text: &'a str,
    },
    /// The estimated completion date, with an optional public word about it.
    Eta {
        eta: NaiveDate,
        note: Option<&'a str>,
    },
    Rma {
        number: &'a str,
        instructions: &'a str,
    },
    Assign {
        assignee: Option<i64>,
    },
    /// The customer answers (moves an "information requested" claim back to staff).
    Info {
        text: &'a str,
        photos: &'a [StoredPhoto],
    },
}

/// Records a change (and its mail, when public) in one transaction.
pub async fn change(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
    actor: Actor,
    actor_id: i64,
    own_account: Option<i64>,
    c: &Change<'_>,
    mail: impl FnOnce(&Notify<'_>) -> anyhow::Result<Option<Mail>> + Send,
) -> anyhow::Result<Result<(), Refused>> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let Some(Locked {
            status: now,
            number,
            email,
            ..
        }) = lock(conn, claim_id, own_account).await?
        else {
            return Ok(Err(Refused::NotFound));
        };
        if now.is_final() {
            return Ok(Err(Refused::Transition(TransitionError(format!(
                "the claim is “{}”: nothing more can change",
                now.label().to_lowercase()
            )))));
        }
        let public = match c {
            Change::Note { public, text } => {
                let kind = if *public { "update" } else { "note" };
                event(conn, claim_id, Some(actor_id), actor, kind, *public, None, None, Some(text), None)
                    .await?;
                *public
            }
            Change::Eta { eta, note } => {
                diesel::sql_query("UPDATE claims SET eta = $2, updated_at = now() WHERE id = $1")
                    .bind::<BigInt, _>(claim_id)
                    .bind::<Date, _>(*eta)
                    .execute(conn)
                    .await?;
                event(conn, claim_id, Some(actor_id), actor, "eta", true, None, None, *note, Some(*eta))
                    .await?;
                true
            }
            Change::Rma {
                number: rma,
                instructions,
            } => {
                diesel::sql_query(
                    "UPDATE claims SET rma_number = $2, return_instructions = $3, updated_at = now() WHERE id = $1",
                )
                .bind::<BigInt, _>(claim_id)
                .bind::<Text, _>(*rma)
                .bind::<Text, _>(*instructions)
                .execute(conn)
                .await?;
                let note = format!("Return number (RMA) {rma}. {instructions}");
                event(conn, claim_id, Some(actor_id), actor, "rma", true, None, None, Some(&note), None)
                    .await?;
                true
            }
            Change::Assign { assignee } => {
                diesel::sql_query(
                    "UPDATE claims SET assignee_id = $2, updated_at = now() WHERE id = $1",
                )
                .bind::<BigInt, _>(claim_id)
                .bind::<Nullable<BigInt>, _>(*assignee)
                .execute(conn)
                .await?;
                let note = match assignee {
                    Some(id) => {
                        #[derive(QueryableByName)]
                        struct E {
                            #[diesel(sql_type = Text)]
                            email: String,
                        }
                        let e: Option<E> =
                            diesel::sql_query("SELECT email FROM accounts WHERE id = $1")
                                .bind::<BigInt, _>(*id)
                                .get_result(conn)
                                .await
                                .optional()?;
                        format!(
                            "assigned to {}",
                            e.map(|e| e.email).unwrap_or_else(|| id.to_string())
                        )
                    }
                    None => "unassigned".to_owned(),
                };
                event(conn, claim_id, Some(actor_id), actor, "assigned", false, None, None, Some(&note), None)
                    .await?;
                false
            }
            Change::Info { text, photos } => {
                if !now.awaits_outcome() {
                    return Ok(Err(Refused::Transition(TransitionError(
                        "the claim is decided: information can no longer be added".into(),
                    ))));
                }
                let count: Id = diesel::sql_query(
                    "SELECT count(*) AS id FROM claim_photos WHERE claim_id = $1",
                )
                .bind::<BigInt, _>(claim_id)
                .get_result(conn)
                .await?;
                if count.id as usize + photos.len() > MAX_PHOTOS {
                    return Ok(Err(Refused::TooManyPhotos));
                }
                event(conn, claim_id, Some(actor_id), actor, "info_added", true, None, None, Some(text), None)
                    .await?;
                add_photos(conn, claim_id, photos).await?;
                if now == Status::InfoRequested {
                    // Back to where the claim was when staff asked.
                    #[derive(QueryableByName)]
                    struct From {
                        #[diesel(sql_type = Nullable<Text>)]
                        from_status: Option<String>,
                    }
                    let asked: Option<From> = diesel::sql_query(
                        "SELECT from_status FROM claim_events
                         WHERE claim_id = $1 AND kind = 'status' AND to_status = 'info_requested'
                         ORDER BY at DESC, id DESC LIMIT 1",
                    )
                    .bind::<BigInt, _>(claim_id)
                    .get_result(conn)
                    .await
                    .optional()?;
                    let back = asked
                        .and_then(|a| a.from_status)
                        .and_then(|s| Status::parse(&s))
                        .filter(|s| check(now, *s, Actor::Customer).is_ok())
                        .unwrap_or(Status::Triaged);
                    diesel::sql_query(
                        "UPDATE claims SET status = $2, status_since = now(), updated_at = now() WHERE id = $1",
                    )
                    .bind::<BigInt, _>(claim_id)
                    .bind::<Text, _>(back.as_str())
                    .execute(conn)
                    .await?;
                    event(
                        conn,
                        claim_id,
                        Some(actor_id),
                        actor,
                        "status",
                        true,
                        Some(now),
                        Some(back),
                        None,
                        None,
                    )
                    .await?;
                }
                // The customer wrote it: no mail back to them.
                false
            }
        };
        diesel::sql_query("UPDATE claims SET updated_at = now() WHERE id = $1")
            .bind::<BigInt, _>(claim_id)
            .execute(conn)
            .await?;
        if let (true, Some(email)) = (public, &email) {
            let notify = Notify {
                claim_id,
                number: &number,
                email,
            };
            if let Some(mail) = mail(&notify)? {
                OutboxMail::enqueue(conn, &mail).await?;
            }
        }
        Ok(Ok(()))
    })
    .await
}

/// Photos a claim takes, in all.
pub const MAX_PHOTOS: usize = 5;

/// Staff and admins, for the assignment list: (id, email).
pub async fn staff_members(
    conn: &mut AsyncPgConnection,
) -> diesel::QueryResult<Vec<(i64, String)>> {
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        email: String,
    }
    let rows: Vec<S> = diesel::sql_query(
        "SELECT id, email FROM accounts WHERE role IN ('staff', 'admin') AND deleted_at IS NULL ORDER BY email LIMIT 500",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|s| (s.id, s.email)).collect())
}

/// The email of an account (for mails to a claimant).
pub async fn email_of(
    conn: &mut AsyncPgConnection,
    account_id: i64,
) -> diesel::QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct E {
        #[diesel(sql_type = Text)]
        email: String,
    }
    let e: Option<E> =
        diesel::sql_query("SELECT email FROM accounts WHERE id = $1 AND deleted_at IS NULL")
            .bind::<BigInt, _>(account_id)
            .get_result(conn)
            .await
            .optional()?;
    Ok(e.map(|e| e.email))
}

/// A deleted account's claims: open ones end as cancelled (nobody can follow them any more),
/// and the personal parts go: the phone, the description, the customer's own words in the
/// timeline, the photos. The claims stay, without them, for the warranty figures. Returns the
/// photo files to remove once the transaction has committed.
pub async fn erase_for_account(
    conn: &mut AsyncPgConnection,
    account_id: i64,
) -> diesel::QueryResult<Vec<String>> {
    diesel::sql_query(
        "WITH open AS (
             UPDATE claims SET status = 'cancelled', status_since = now(), closed_at = now(), updated_at = now()
             WHERE account_id = $1 AND status NOT IN ('closed', 'cancelled')
             RETURNING id)
         INSERT INTO claim_events (claim_id, actor_role, kind, public, to_status, note)
         SELECT id, 'system', 'status', true, 'cancelled', 'the customer deleted their account' FROM open",
    )
    .bind::<BigInt, _>(account_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE claims SET contact_phone = NULL, contact_preference = 'email',
                description = '(erased with the account)', updated_at = now()
         WHERE account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE claim_events e SET note = NULL FROM claims c
         WHERE c.id = e.claim_id AND c.account_id = $1 AND e.actor_role = 'customer'",
    )
    .bind::<BigInt, _>(account_id)
    .execute(conn)
    .await?;
    #[derive(QueryableByName)]
    struct F {
        #[diesel(sql_type = Text)]
        file: String,
    }
    let files: Vec<F> = diesel::sql_query(
        "DELETE FROM claim_photos p USING claims c
         WHERE c.id = p.claim_id AND c.account_id = $1 RETURNING p.file",
    )
    .bind::<BigInt, _>(account_id)
    .load(conn)
    .await?;
    Ok(files.into_iter().map(|f| f.file).collect())
}

/// Records a claim as the remedy of a recall of its unit: the unit is remedied in that campaign
/// (today, by the claim), the claim names the campaign, and its timeline says so (internal).
/// `false`: the unit is not open in that campaign.
pub async fn record_recall_remedy(
    conn: &mut AsyncPgConnection,
    claim_id: i64,
    campaign_code: &str,
    staff_id: i64,
    today: NaiveDate,
) -> anyhow::Result<bool> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            campaign_id: i64,
            #[diesel(sql_type = BigInt)]
            unit_id: i64,
            #[diesel(sql_type = Text)]
            number: String,
        }
        let row: Option<Row> = diesel::sql_query(
            "SELECT rc.id AS campaign_id, c.unit_id, c.number
             FROM claims c
             JOIN recall_units ru ON ru.unit_id = c.unit_id AND ru.state <> 'remedied'
             JOIN recall_campaigns rc ON rc.id = ru.campaign_id AND rc.status = 'launched'
             WHERE c.id = $1 AND rc.code = $2
             FOR UPDATE OF c, ru",
        )
        .bind::<BigInt, _>(claim_id)
        .bind::<Text, _>(campaign_code)
        .get_result(conn)
        .await
        .optional()?;
        let Some(row) = row else {
            return Ok(false);
        };
        let by = format!("claim:{}", row.number);
        if !crate::db::recalls::mark_remedied(conn, row.campaign_id, row.unit_id, today, &by)
            .await?
        {
            return Ok(false);
        }
        diesel::sql_query(
            "UPDATE claims SET recall_campaign_id = $2, updated_at = now() WHERE id = $1",
        )
        .bind::<BigInt, _>(claim_id)
        .bind::<BigInt, _>(row.campaign_id)
        .execute(conn)
        .await?;
        let note = format!("recorded as the remedy for recall {campaign_code}");
        event(
            conn,
            claim_id,
            Some(staff_id),
            Actor::Staff,
            "note",
            false,
            None,
            None,
            Some(&note),
            None,
        )
        .await?;
        Ok(true)
    })
    .await
}
