//! Warranty reminders: the registrations whose owners asked for a mail 30 days before the
//! warranty ends, found set-based and sent once through the outbox.
//!
//! SQL finds the candidates: it computes each warranty end with the engine's rule (start from
//! the sale date, else the purchase date, else manufacture plus grace; `start + months − 1 day`
//! with PostgreSQL's month arithmetic, which clamps to the month's end as chrono does; the latest
//! extension or inherited end if later) and keeps those ending in a window [`SLACK_DAYS`] wider
//! than `today ..= today + 30` on each side. The Rust engine then decides each candidate
//! exactly, so SQL and the engine the lookup uses can never disagree about who gets a mail: at
//! worst the SQL lets through a few rows the engine turns down.

use chrono::{Days, NaiveDate};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Date, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::outbox::OutboxMail;
use super::warranty::{LotWarranty, UnitWarranty, adjustments};
use crate::domain::warranty::{
    REMINDER_DAYS_BEFORE_END, StartRule, UnitDates, WarrantyStatus, WarrantyTerms,
};
use crate::mail::Mail;

/// How many days the SQL window reaches beyond the exact one on each side.
pub const SLACK_DAYS: u64 = 3;

/// A registration that may be due a reminder, with everything the warranty engine needs.
#[derive(Debug, Clone, QueryableByName)]
pub struct ReminderCandidate {
    #[diesel(sql_type = BigInt)]
    pub registration_id: i64,
    #[diesel(sql_type = Text)]
    pub contact_email: String,
    #[diesel(sql_type = Text)]
    pub serial: String,
    /// Brand and name, as the other registration mails say it.
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Integer)]
    pub warranty_months: i32,
    #[diesel(sql_type = Text)]
    pub warranty_start_rule: String,
    #[diesel(sql_type = Integer)]
    pub warranty_grace_days: i32,
    #[diesel(sql_type = Nullable<Date>)]
    pub sold_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub purchased_on: Option<NaiveDate>,
    /// The unit's manufacture date, else its lot's production date (as the lookup reads it).
    #[diesel(sql_type = Nullable<Date>)]
    pub manufactured_on: Option<NaiveDate>,
    #[diesel(sql_type = Integer)]
    pub unit_extra_months: i32,
    #[diesel(sql_type = Nullable<Date>)]
    pub unit_extended_to: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub inherited_from: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub inherited_end: Option<NaiveDate>,
    /// `None` when the unit has no lot.
    #[diesel(sql_type = Nullable<Integer>)]
    pub lot_extra_months: Option<i32>,
    #[diesel(sql_type = Nullable<Date>)]
    pub lot_extended_to: Option<NaiveDate>,
    /// The end as the SQL prefilter computed it (kept to check it against the engine's).
    #[diesel(sql_type = Nullable<Date>)]
    pub sql_ends_on: Option<NaiveDate>,
}

impl ReminderCandidate {
    fn terms(&self) -> WarrantyTerms {
        WarrantyTerms {
            months: u32::try_from(self.warranty_months).unwrap_or(0),
            // The CHECK constraint admits only the two rules StartRule knows.
            start_rule: StartRule::parse(&self.warranty_start_rule).unwrap_or(StartRule::Sale),
            grace_days: u32::try_from(self.warranty_grace_days).unwrap_or(0),
        }
    }

    /// The warranty as the engine sees it on `today`, from the same rows and the same
    /// adjustments the lookup uses.
    pub fn warranty(&self, today: NaiveDate) -> WarrantyStatus {
        let unit = UnitWarranty {
            purchased_on: self.purchased_on,
            extra_months: self.unit_extra_months,
            extended_to: self.unit_extended_to,
            inherited_from: self.inherited_from,
            inherited_end: self.inherited_end,
        };
        let lot = self.lot_extra_months.map(|extra_months| LotWarranty {
            extra_months,
            extended_to: self.lot_extended_to,
        });
        let dates = UnitDates {
            sold_on: self.sold_on,
            purchased_on: self.purchased_on,
            manufactured_on: self.manufactured_on,
        };
        self.terms()
            .status_with(&dates, &adjustments(Some(&unit), lot.as_ref()), today)
    }

    /// The warranty end, when the reminder is due on `today`.
    pub fn reminder_due(&self, today: NaiveDate) -> Option<NaiveDate> {
        self.warranty(today).reminder_due(today)
    }
}

/// The window of warranty ends the SQL prefilter keeps for `today`.
pub fn window(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = today
        .checked_sub_days(Days::new(SLACK_DAYS))
        .unwrap_or(today);
    let to = today
        .checked_add_days(Days::new(REMINDER_DAYS_BEFORE_END + SLACK_DAYS))
        .unwrap_or(today);
    (from, to)
}

// The registrations_reminders partial index holds exactly the rows of the first three
// conditions. Replaced and scrapped units are left out: a replacement carries the warranty on.
// The end mirrors WarrantyTerms::period: the term from the unit's own start, or an absolute
// extension, or the inherited end, whichever is last, never before the day before the start.
const CANDIDATES: &str = "
    SELECT r.id AS registration_id, r.contact_email, u.serial, m.brand || ' ' || m.name AS product,
           m.warranty_months, m.warranty_start_rule, m.warranty_grace_days,
           u.sold_on, u.purchased_on, s.manufactured_on,
           u.warranty_extra_months AS unit_extra_months, u.warranty_extended_to AS unit_extended_to,
           u.inherited_from, u.inherited_end,
           l.warranty_extra_months AS lot_extra_months, l.warranty_extended_to AS lot_extended_to,
           e.ends_on AS sql_ends_on
    FROM registrations r
    JOIN units u ON u.id = r.unit_id
    JOIN product_models m ON m.id = u.model_id
    LEFT JOIN lots l ON l.id = u.lot_id
    CROSS JOIN LATERAL (
        SELECT COALESCE(u.manufactured_on, l.production_date) AS manufactured_on
    ) s
    CROSS JOIN LATERAL (
        SELECT CASE m.warranty_start_rule
                   WHEN 'manufacture' THEN s.manufactured_on
                   ELSE COALESCE(u.sold_on, u.purchased_on, s.manufactured_on + m.warranty_grace_days)
               END AS own_start
    ) o
    CROSS JOIN LATERAL (
        SELECT greatest(
                   (o.own_start + make_interval(months => m.warranty_months
                        + u.warranty_extra_months + COALESCE(l.warranty_extra_months, 0)))::date - 1,
                   u.warranty_extended_to,
                   l.warranty_extended_to,
                   CASE WHEN u.inherited_from IS NOT NULL THEN u.inherited_end END,
                   COALESCE(o.own_start, CASE WHEN u.inherited_end IS NOT NULL THEN u.inherited_from END) - 1
               ) AS ends_on
    ) e
    WHERE r.status = 'active' AND r.reminder_wanted AND r.reminder_sent_at IS NULL
      AND u.status NOT IN ('replaced', 'scrapped')
      AND r.id > $3
      AND e.ends_on BETWEEN $1 AND $2
    ORDER BY r.id
    LIMIT $4";

/// Up to `limit` registrations after id `after` that want a reminder, have not had one, and
/// whose warranty ends (as SQL computes it) within `from ..= to`, in id order. Each row is
/// locked (`FOR UPDATE SKIP LOCKED`): inside a transaction, another process running the same
/// query skips it, so no reminder is ever sent twice.
pub async fn candidates(
    conn: &mut AsyncPgConnection,
    (from, to): (NaiveDate, NaiveDate),
    after: i64,
    limit: i64,
) -> diesel::QueryResult<Vec<ReminderCandidate>> {
    diesel::sql_query(format!("{CANDIDATES} FOR UPDATE OF r SKIP LOCKED"))
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Candidates the SQL found (and locked).
    pub examined: usize,
    /// Reminders queued.
    pub sent: usize,
    /// The highest registration id examined: the next batch starts after it.
    pub last_id: Option<i64>,
}

/// One batch, in one transaction: locks up to `limit` candidates after id `after`, keeps those
/// the engine says are due on `today`, queues their mails (built by `mail` from the candidate
/// and its warranty end) in one statement and marks them sent in another. A failure rolls the
/// whole batch back: nothing is marked sent that was not queued.
pub async fn send_batch(
    conn: &mut AsyncPgConnection,
    today: NaiveDate,
    after: i64,
    limit: i64,
    mail: impl Fn(&ReminderCandidate, NaiveDate) -> anyhow::Result<Mail> + Send + Sync,
) -> anyhow::Result<Batch> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let found = candidates(conn, window(today), after, limit).await?;
        let mut mails = Vec::new();
        let mut ids = Vec::new();
        for c in &found {
            if let Some(ends_on) = c.reminder_due(today) {
                mails.push(mail(c, ends_on)?);
                ids.push(c.registration_id);
            }
        }
        OutboxMail::enqueue_all(conn, &mails).await?;
        if !ids.is_empty() {
            diesel::sql_query(
                "UPDATE registrations SET reminder_sent_at = now() WHERE id = ANY($1)",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .execute(conn)
            .await?;
        }
        Ok(Batch {
            examined: found.len(),
            sent: ids.len(),
            last_id: found.last().map(|c| c.registration_id),
        })
    })
    .await
}
