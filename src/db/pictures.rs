//! Model pictures, stored in the database (small, and shared by every portal process).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::model_pictures;

/// The picture's type and bytes.
pub async fn find(
    conn: &mut AsyncPgConnection,
    model_id: i64,
) -> QueryResult<Option<(String, Vec<u8>, DateTime<Utc>)>> {
    model_pictures::table
        .find(model_id)
        .select((
            model_pictures::content_type,
            model_pictures::bytes,
            model_pictures::updated_at,
        ))
        .first(conn)
        .await
        .optional()
}

/// When the model's picture last changed (its version, for links), if it has one.
pub async fn version(
    conn: &mut AsyncPgConnection,
    model_id: i64,
) -> QueryResult<Option<DateTime<Utc>>> {
    model_pictures::table
        .find(model_id)
        .select(model_pictures::updated_at)
        .first(conn)
        .await
        .optional()
}

pub async fn save(
    conn: &mut AsyncPgConnection,
    model_id: i64,
    content_type: &str,
    bytes: &[u8],
) -> QueryResult<()> {
    diesel::insert_into(model_pictures::table)
        .values((
            model_pictures::model_id.eq(model_id),
            model_pictures::content_type.eq(content_type),
            model_pictures::bytes.eq(bytes),
        ))
        .on_conflict(model_pictures::model_id)
        .do_update()
        .set((
            model_pictures::content_type.eq(excluded(model_pictures::content_type)),
            model_pictures::bytes.eq(excluded(model_pictures::bytes)),
            model_pictures::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn remove(conn: &mut AsyncPgConnection, model_id: i64) -> QueryResult<usize> {
    diesel::delete(model_pictures::table.find(model_id))
        .execute(conn)
        .await
}
