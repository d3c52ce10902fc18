//! What happens to registrations when their account is deleted (PRODUCT.md §3): registration
//! records are kept at least 6 years after manufacture (16 CFR 1130.9), so the safety contact
//! stays, flagged, and everything else personal goes; once the retention period is over the
//! contact goes too.

use std::path::Path;

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Date, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// How long a registration record is kept after manufacture, in years (16 CFR 1130.9).
pub const RETENTION_YEARS: i32 = 6;

/// What an erased registration says where the place of purchase was (the column is NOT NULL
/// and 1 to 200 characters).
pub const ERASED_PLACE: &str = "erased";

/// Why a pending transfer ended with its account.
pub const WITHDRAWN_NOTE: &str = "withdrawn: the account was deleted";

/// Why an active registration ended when its retained contact was purged.
pub const PURGED_NOTE: &str = "the retention period is over: the safety contact was erased";

/// Proof-of-purchase files (names under `<data dir>/proofs`) that erased registrations no
/// longer name. Files cannot take part in a transaction: remove them once it has committed
/// (a rollback then never leaves a row naming a deleted file).
#[must_use = "the proof files must be removed once the transaction has committed"]
#[derive(Debug, Default)]
pub struct ErasedProofs(pub Vec<String>);

impl ErasedProofs {
    /// Removes the files (only names the file store could have made; a file already gone is
    /// fine).
    pub async fn remove(self, data_dir: &Path) {
        crate::files::remove(data_dir, crate::files::Store::Proofs, &self.0).await;
    }
}

#[derive(QueryableByName)]
struct Proof {
    #[diesel(sql_type = Nullable<Text>)]
    proof_file: Option<String>,
}

/// Erases the personal data of every registration of an account, in one statement (the
/// caller's transaction deletes the account). Each keeps its safety contact, flagged
/// (`contact_retained`), until 6 years after the unit's manufacture (its own date, else its
/// lot's production date, else the registration date), and never less than `today`. The place
/// of purchase, the consents, the reminder and the proof go. An active registration stays
/// active: the unit keeps its registered owner for recall notices, which only a deleted
/// account's safety contact can still receive (the account can never sign in again). A pending
/// transfer ends as withdrawn ('ended', not 'rejected': staff refused nothing).
pub async fn erase_registrations(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    today: NaiveDate,
) -> diesel::QueryResult<ErasedProofs> {
    let rows: Vec<Proof> = diesel::sql_query(
        "WITH old AS (
             SELECT id, proof_file FROM registrations WHERE account_id = $1 FOR UPDATE
         )
         UPDATE registrations r SET
             contact_retained = TRUE,
             retained_until = greatest(
                 (COALESCE(u.manufactured_on, l.production_date, (r.created_at AT TIME ZONE 'UTC')::date)
                     + make_interval(years => $3))::date,
                 $2),
             place_of_purchase = $4,
             marketing_consent = FALSE,
             reminder_wanted = FALSE,
             proof_file = NULL,
             proof_type = NULL,
             proof_bytes = NULL,
             status = CASE WHEN r.status = 'pending_transfer' THEN 'ended' ELSE r.status END,
             ended_at = CASE WHEN r.status = 'pending_transfer' THEN now() ELSE r.ended_at END,
             decision_note = CASE WHEN r.status = 'pending_transfer' THEN $5 ELSE r.decision_note END
         FROM old, units u LEFT JOIN lots l ON l.id = u.lot_id
         WHERE r.id = old.id AND u.id = r.unit_id
         RETURNING old.proof_file",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Date, _>(today)
    .bind::<diesel::sql_types::Integer, _>(RETENTION_YEARS)
    .bind::<Text, _>(ERASED_PLACE)
    .bind::<Text, _>(WITHDRAWN_NOTE)
    .load(conn)
    .await?;
    Ok(ErasedProofs(
        rows.into_iter().filter_map(|r| r.proof_file).collect(),
    ))
}

/// Erases the safety contacts whose retention ended before `today`, in one statement. The rows
/// stay (the unit's history and staff decisions refer to them, and they hold nothing personal
/// afterwards), with an address that can never receive mail; an active registration or a
/// pending transfer ends, so the unit counts as unregistered and a new owner registers it
/// without a staff review. Returns how many contacts were erased.
pub async fn purge_expired(
    conn: &mut AsyncPgConnection,
    today: NaiveDate,
) -> diesel::QueryResult<usize> {
    // registrations_retained (a partial index on retained_until) finds the rows.
    diesel::sql_query(
        "UPDATE registrations SET
             contact_email = 'erased-registration-' || id || '@erased.invalid',
             contact_retained = FALSE,
             ended_at = CASE WHEN status IN ('active', 'pending_transfer') THEN now() ELSE ended_at END,
             decision_note = CASE WHEN status IN ('active', 'pending_transfer') THEN $2 ELSE decision_note END,
             status = CASE WHEN status IN ('active', 'pending_transfer') THEN 'ended' ELSE status END
         WHERE contact_retained AND retained_until < $1",
    )
    .bind::<Date, _>(today)
    .bind::<Text, _>(PURGED_NOTE)
    .execute(conn)
    .await
}
