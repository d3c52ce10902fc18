//! Import jobs: a browser upload runs in the background; its page follows this row.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::import_jobs;

/// A job with no heartbeat for this long was interrupted (its process stopped); its
/// transaction was rolled back, so nothing of it was written.
pub const STALE_AFTER_SECS: i64 = 60;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = import_jobs)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ImportJob {
    pub id: i64,
    pub kind: String,
    pub count_id: Option<i64>,
    pub filename: String,
    pub status: String,
    pub total_bytes: i64,
    pub bytes_read: i64,
    pub rows_read: i64,
    pub inserted: i64,
    pub error_count: i64,
    pub message: Option<String>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ImportJob {
    pub async fn create(
        conn: &mut AsyncPgConnection,
        kind: &str,
        count_id: Option<i64>,
        filename: &str,
        total_bytes: i64,
        created_by: i64,
    ) -> QueryResult<i64> {
        diesel::insert_into(import_jobs::table)
            .values((
                import_jobs::kind.eq(kind),
                import_jobs::count_id.eq(count_id),
                import_jobs::filename.eq(filename),
                import_jobs::total_bytes.eq(total_bytes),
                import_jobs::created_by.eq(created_by),
            ))
            .returning(import_jobs::id)
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Self>> {
        import_jobs::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn recent(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<Self>> {
        import_jobs::table
            .select(Self::as_select())
            .order(import_jobs::id.desc())
            .limit(limit)
            .load(conn)
            .await
    }

    /// The rejected rows as CSV, when the job has finished with problems.
    pub async fn report(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
        import_jobs::table
            .find(id)
            .select(import_jobs::report)
            .first::<Option<String>>(conn)
            .await
            .optional()
            .map(Option::flatten)
    }

    /// What the page shows as the status: an unfinished job without a recent heartbeat was
    /// interrupted.
    pub fn effective_status(&self, now: DateTime<Utc>) -> &str {
        if self.status == "running" && (now - self.heartbeat_at).num_seconds() > STALE_AFTER_SECS {
            "interrupted"
        } else {
            &self.status
        }
    }

    /// Percentage of the file read so far.
    pub fn percent(&self) -> i64 {
        if self.status == "done" {
            100
        } else {
            (self.bytes_read * 100)
                .checked_div(self.total_bytes)
                .unwrap_or(0)
                .clamp(0, 100)
        }
    }
}
