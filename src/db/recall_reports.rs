//! How well a launched recall works (PRODUCT.md §3, "Effectiveness"): the funnel of its affected
//! units overall and per lot, acknowledgements and remedies day by day, and the unit list an
//! authority asks for. Every figure is one set-based statement over `recall_units`; the only
//! value a user supplies, the campaign id, is a bound parameter.
//!
//! The definitions (the dashboard prints them too):
//! - **affected**: every unit the launch recorded for the campaign;
//! - **reachable**: a registered owner was found, so the unit has an owner notice;
//! - **notified**: that notice's mail was queued (the first notice or the second);
//! - **delivered**: the first or the second notice's mail was handed to the mail server
//!   (outbox status `sent`);
//! - **acknowledged**: the owner answered the notice (`recall_units.acknowledged_at` is set; a
//!   unit remedied afterwards stays counted);
//! - **remedied**: the unit is recorded as remedied, whoever recorded it;
//! - **unreachable**: no owner notice, and not remedied either (still out of reach);
//! - **correction rate**: remedied ÷ affected, the figure CPSC judges a recall by.
//!
//! Days are UTC dates, as everywhere else in the portal.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Date, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The counts, over `recall_units ru LEFT JOIN recall_notices n LEFT JOIN outbox o1 (first
/// mail) LEFT JOIN outbox o2 (second mail)`: the overall row and the per-lot rows share this
/// text, so they cannot disagree.
const FIGURES: &str = "count(*) AS affected,
        count(*) FILTER (WHERE ru.notice_id IS NOT NULL) AS reachable,
        count(*) FILTER (WHERE n.outbox_id IS NOT NULL OR n.second_outbox_id IS NOT NULL) AS notified,
        count(*) FILTER (WHERE o1.status = 'sent' OR o2.status = 'sent') AS delivered,
        count(*) FILTER (WHERE ru.acknowledged_at IS NOT NULL) AS acknowledged,
        count(*) FILTER (WHERE ru.state = 'remedied') AS remedied,
        count(*) FILTER (WHERE ru.notice_id IS NULL AND ru.state <> 'remedied') AS unreachable";

const FROM_UNITS: &str = "FROM recall_units ru
        LEFT JOIN recall_notices n ON n.id = ru.notice_id
        LEFT JOIN outbox o1 ON o1.id = n.outbox_id
        LEFT JOIN outbox o2 ON o2.id = n.second_outbox_id
        WHERE ru.campaign_id = $1";

/// The funnel of a set of affected units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct Figures {
    #[diesel(sql_type = BigInt)]
    pub affected: i64,
    #[diesel(sql_type = BigInt)]
    pub reachable: i64,
    #[diesel(sql_type = BigInt)]
    pub notified: i64,
    #[diesel(sql_type = BigInt)]
    pub delivered: i64,
    #[diesel(sql_type = BigInt)]
    pub acknowledged: i64,
    #[diesel(sql_type = BigInt)]
    pub remedied: i64,
    #[diesel(sql_type = BigInt)]
    pub unreachable: i64,
}

impl Figures {
    /// Remedied ÷ affected, as a percentage with one decimal ("25.0 %"); a dash when nothing
    /// is affected.
    pub fn correction_rate(&self) -> String {
        percent(self.remedied, self.affected)
    }
}

/// `part` as a percentage of `whole`, one decimal; "—" when `whole` is 0. Rounding never
/// claims a finished or an untouched recall that is not: 999,999 of 1,000,000 is "> 99.9 %",
/// 1 of 1,000,000 is "< 0.1 %".
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "—".into();
    }
    let part = part.clamp(0, whole);
    // Integer arithmetic, rounded half up, so 1 of 3 is 33.3 and 2 of 3 is 66.7 everywhere.
    let tenths = (part * 2000 + whole) / (whole * 2);
    if part < whole && tenths >= 1000 {
        return "> 99.9 %".into();
    }
    if part > 0 && tenths == 0 {
        return "< 0.1 %".into();
    }
    format!("{}.{} %", tenths / 10, tenths % 10)
}

/// The whole campaign.
pub async fn overall(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
) -> diesel::QueryResult<Figures> {
    diesel::sql_query(format!("SELECT {FIGURES} {FROM_UNITS}"))
        .bind::<BigInt, _>(campaign_id)
        .get_result(conn)
        .await
}

/// One lot's funnel; `lot_id` `None` is the units without a lot.
#[derive(Debug, Clone, QueryableByName)]
pub struct LotFigures {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub lot_id: Option<i64>,
    /// The lot's code; `None` for the units without a lot.
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub gtin: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub product: Option<String>,
    /// How many lot rows there are in all (more than shown when the list was cut).
    #[diesel(sql_type = BigInt)]
    pub lots: i64,
    #[diesel(embed)]
    pub figures: Figures,
}

/// The funnel per lot (the lot each unit had at launch), ordered by model and lot code, the
/// units without a lot last; at most `limit` rows, each saying how many there are in all.
pub async fn per_lot(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    limit: i64,
) -> diesel::QueryResult<Vec<LotFigures>> {
    diesel::sql_query(format!(
        "WITH per AS (SELECT ru.lot_id, {FIGURES} {FROM_UNITS} GROUP BY ru.lot_id)
         SELECT per.*, l.code AS lot, m.gtin, m.brand || ' ' || m.name AS product,
                count(*) OVER () AS lots
         FROM per LEFT JOIN lots l ON l.id = per.lot_id
         LEFT JOIN product_models m ON m.id = l.model_id
         ORDER BY per.lot_id IS NULL, m.gtin, l.code, per.lot_id
         LIMIT $2"
    ))
    .bind::<BigInt, _>(campaign_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// One day since launch: what happened that day and the running totals.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Day {
    #[diesel(sql_type = Date)]
    pub day: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub acknowledged: i64,
    #[diesel(sql_type = BigInt)]
    pub remedied: i64,
    #[diesel(sql_type = BigInt)]
    pub acknowledged_total: i64,
    #[diesel(sql_type = BigInt)]
    pub remedied_total: i64,
}

/// Acknowledgements (by `acknowledged_at`, a UTC day) and remedies (by `remedied_on`) per day,
/// every day from the launch day to `today`, with running totals. Anything dated before the
/// launch counts on the launch day and anything after `today` on `today`, so the last totals are
/// always the overall acknowledged and remedied counts, and the series has one row per day of
/// the campaign's life, never more.
pub async fn by_day(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    launched_at: DateTime<Utc>,
    today: NaiveDate,
) -> diesel::QueryResult<Vec<Day>> {
    diesel::sql_query(
        "WITH bounds AS (
             SELECT ($2::timestamptz AT TIME ZONE 'UTC')::date AS first_day,
                    GREATEST(($2::timestamptz AT TIME ZONE 'UTC')::date, $3::date) AS last_day),
         days AS (
             SELECT d::date AS day FROM bounds, generate_series(first_day, last_day, interval '1 day') AS d),
         ack AS (
             SELECT LEAST(GREATEST((ru.acknowledged_at AT TIME ZONE 'UTC')::date, b.first_day), b.last_day) AS day,
                    count(*) AS n
             FROM recall_units ru, bounds b
             WHERE ru.campaign_id = $1 AND ru.acknowledged_at IS NOT NULL
             GROUP BY 1),
         rem AS (
             SELECT LEAST(GREATEST(ru.remedied_on, b.first_day), b.last_day) AS day, count(*) AS n
             FROM recall_units ru, bounds b
             WHERE ru.campaign_id = $1 AND ru.state = 'remedied' AND ru.remedied_on IS NOT NULL
             GROUP BY 1)
         SELECT d.day,
                COALESCE(a.n, 0) AS acknowledged,
                COALESCE(r.n, 0) AS remedied,
                (sum(COALESCE(a.n, 0)) OVER (ORDER BY d.day))::bigint AS acknowledged_total,
                (sum(COALESCE(r.n, 0)) OVER (ORDER BY d.day))::bigint AS remedied_total
         FROM days d
         LEFT JOIN ack a ON a.day = d.day
         LEFT JOIN rem r ON r.day = d.day
         ORDER BY d.day",
    )
    .bind::<BigInt, _>(campaign_id)
    .bind::<Timestamptz, _>(launched_at)
    .bind::<Date, _>(today)
    .load(conn)
    .await
}

/// How many units a campaign recorded (for the security log entry of an export).
pub async fn unit_count(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
) -> diesel::QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM recall_units WHERE campaign_id = $1")
        .bind::<BigInt, _>(campaign_id)
        .get_result(conn)
        .await?;
    Ok(n.n)
}

/// One affected unit as the export lists it.
#[derive(Debug, Clone, QueryableByName)]
pub struct UnitLine {
    /// The keyset cursor: the next batch starts after it.
    #[diesel(sql_type = BigInt)]
    pub unit_id: i64,
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Bool)]
    pub notified: bool,
    #[diesel(sql_type = Bool)]
    pub delivered: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub remedy_choice: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    pub remedied_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    pub remedied_by: Option<String>,
    /// The registered owner's contact the notice went to.
    #[diesel(sql_type = Nullable<Text>)]
    pub contact_email: Option<String>,
}

/// The next `limit` affected units after unit id `after`, by unit id: a keyset page, so each
/// batch is one index range scan of `recall_units`' primary key however far the export is.
pub async fn units_after(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    after: i64,
    limit: i64,
) -> diesel::QueryResult<Vec<UnitLine>> {
    diesel::sql_query(
        "SELECT ru.unit_id, m.gtin, u.serial, l.code AS lot, ru.state,
                (n.outbox_id IS NOT NULL OR n.second_outbox_id IS NOT NULL) AS notified,
                COALESCE(o1.status = 'sent' OR o2.status = 'sent', FALSE) AS delivered,
                ru.acknowledged_at, n.remedy_choice, ru.remedied_on, ru.remedied_by,
                n.contact_email
         FROM recall_units ru
         JOIN units u ON u.id = ru.unit_id
         JOIN product_models m ON m.id = u.model_id
         LEFT JOIN lots l ON l.id = ru.lot_id
         LEFT JOIN recall_notices n ON n.id = ru.notice_id
         LEFT JOIN outbox o1 ON o1.id = n.outbox_id
         LEFT JOIN outbox o2 ON o2.id = n.second_outbox_id
         WHERE ru.campaign_id = $1 AND ru.unit_id > $2
         ORDER BY ru.unit_id
         LIMIT $3",
    )
    .bind::<BigInt, _>(campaign_id)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_half_up_and_say_when_there_is_nothing() {
        assert_eq!(percent(0, 0), "—");
        assert_eq!(percent(0, 12), "0.0 %");
        assert_eq!(percent(3, 12), "25.0 %");
        assert_eq!(percent(1, 3), "33.3 %");
        assert_eq!(percent(2, 3), "66.7 %");
        assert_eq!(percent(1, 8), "12.5 %");
        assert_eq!(percent(1, 16), "6.3 %");
        assert_eq!(percent(12, 12), "100.0 %");
        assert_eq!(percent(999_999, 1_000_000), "> 99.9 %");
        assert_eq!(percent(999, 1_000), "99.9 %");
        assert_eq!(percent(1, 1_000_000), "< 0.1 %");
        assert_eq!(percent(1, 2_000), "0.1 %");
    }
}
