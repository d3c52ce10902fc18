//! Claim reports: the staff queue (filters, sorting, keyset pages), the service levels and the
//! one overdue rule (in Rust and in the SQL that mirrors it), the staff dashboard counts, and the
//! admin analytics figures. Every value a user can change is a bound parameter.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Bool, Date, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::claims::Status;

// ---- the overdue rule -----------------------------------------------------------------------

/// Whether a claim in `status` is still waiting for an outcome (repaired, replaced, refunded,
/// rejected): while it is, an estimated completion date in the past means the estimate was
/// broken. After the outcome the ETA no longer matters (only the time in status does).
pub fn awaiting_outcome(status: Status) -> bool {
    use Status::*;
    matches!(
        status,
        Submitted | InfoRequested | Triaged | Approved | AwaitingUnit | InRepair
    )
}

/// Why a claim is overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// Longer in its current status than the status's target: whole days so far, the target.
    InStatus { days: i64, target_days: i32 },
    /// Still before an outcome, and the estimate given to the customer has passed.
    EtaPassed(NaiveDate),
}

impl Overdue {
    /// The reason, for the badge's neighbour on the queue.
    pub fn reason(&self) -> String {
        match self {
            Overdue::InStatus { days, target_days } => format!(
                "{} in this status (target {})",
                plural_days(*days),
                plural_days((*target_days).into())
            ),
            Overdue::EtaPassed(eta) => format!("estimate {eta} has passed"),
        }
    }
}

/// "1 day", "3 days".
pub fn plural_days(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// THE overdue rule; [`OVERDUE_SQL`] is the same rule for queries, and the two are tested to
/// agree (`tests/it/claim_reports.rs`).
///
/// An open claim (not closed or cancelled) is overdue when
/// - the time in its current status, `now − status_since`, exceeds its status's target
///   (`claim_service_levels.target_days`, in days of 24 hours; a status without a target is
///   never late by time), or
/// - it is still [`awaiting_outcome`] and its ETA is before today (today is `now`'s UTC date).
///
/// When both hold, the time in status is reported.
pub fn overdue(
    status: Status,
    status_since: DateTime<Utc>,
    eta: Option<NaiveDate>,
    target_days: Option<i32>,
    now: DateTime<Utc>,
) -> Option<Overdue> {
    if !status.is_open() {
        return None;
    }
    let in_status = now - status_since;
    if let Some(target) = target_days
        && in_status > chrono::Duration::days(target.into())
    {
        return Some(Overdue::InStatus {
            days: in_status.num_days(),
            target_days: target,
        });
    }
    match eta {
        Some(eta) if awaiting_outcome(status) && eta < now.date_naive() => {
            Some(Overdue::EtaPassed(eta))
        }
        _ => None,
    }
}

/// [`overdue`] in SQL, over `claims c LEFT JOIN claim_service_levels sl ON sl.status =
/// c.status`, with `$1` the same `now` (timestamptz). Never NULL. The interval is compared as a
/// difference of instants (not `now - n days`), so a change of daylight saving time in the
/// session's time zone cannot move the boundary.
pub const OVERDUE_SQL: &str = "COALESCE(c.status NOT IN ('closed', 'cancelled') AND (
        $1::timestamptz - c.status_since > make_interval(days => sl.target_days)
        OR (c.eta < ($1::timestamptz AT TIME ZONE 'UTC')::date
            AND c.status IN ('submitted', 'info_requested', 'triaged', 'approved', 'awaiting_unit', 'in_repair'))
    ), FALSE)";

/// The statuses a claim can be late in (every open one), in the order of the workflow.
pub fn open_statuses() -> impl Iterator<Item = Status> {
    Status::ALL.into_iter().filter(|s| s.is_open())
}

/// `now` as PostgreSQL stores it (microseconds), so the Rust rule and the SQL see one instant.
pub fn db_now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

// ---- service levels -------------------------------------------------------------------------

#[derive(Debug, Clone, QueryableByName)]
struct LevelRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    target_days: i32,
}

/// The target days of every open status (`None`: no target set).
pub async fn service_levels(
    conn: &mut AsyncPgConnection,
) -> diesel::QueryResult<Vec<(Status, Option<i32>)>> {
    let rows: Vec<LevelRow> =
        diesel::sql_query("SELECT status, target_days FROM claim_service_levels")
            .load(conn)
            .await?;
    Ok(open_statuses()
        .map(|s| {
            let days = rows
                .iter()
                .find(|r| r.status == s.as_str())
                .map(|r| r.target_days);
            (s, days)
        })
        .collect())
}

/// Sets the targets (each checked 1..=365 by the caller, and by the table's CHECK) in one
/// statement; returns what changed, as `status old->new` (old `-` when there was none).
pub async fn set_service_levels(
    conn: &mut AsyncPgConnection,
    levels: &[(Status, i32)],
) -> diesel::QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Changed {
        #[diesel(sql_type = Text)]
        change: String,
    }
    let statuses: Vec<&str> = levels.iter().map(|(s, _)| s.as_str()).collect();
    let days: Vec<i32> = levels.iter().map(|(_, d)| *d).collect();
    // Every part of the statement sees the table as it was before it, so `old` holds the
    // previous targets; rows whose target stays the same are not written.
    let changed: Vec<Changed> = diesel::sql_query(
        "WITH new AS (SELECT * FROM unnest($1::text[], $2::int[]) AS n(status, target_days)),
              old AS (SELECT o.status, o.target_days FROM claim_service_levels o JOIN new n ON n.status = o.status),
              up AS (INSERT INTO claim_service_levels AS sl (status, target_days)
                     SELECT status, target_days FROM new
                     ON CONFLICT (status) DO UPDATE SET target_days = EXCLUDED.target_days
                     WHERE sl.target_days IS DISTINCT FROM EXCLUDED.target_days
                     RETURNING sl.status, sl.target_days)
         SELECT up.status || ' ' || COALESCE(old.target_days::text, '-') || '->' || up.target_days AS change
         FROM up LEFT JOIN old USING (status) ORDER BY up.status",
    )
    .bind::<Array<Text>, _>(statuses)
    .bind::<Array<Integer>, _>(days)
    .load(conn)
    .await?;
    Ok(changed.into_iter().map(|c| c.change).collect())
}

// ---- the queue ------------------------------------------------------------------------------

/// Which statuses the queue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Every status that is not final (the default).
    Open,
    All,
    One(Status),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Anyone,
    Unassigned,
    Account(i64),
}

/// The queue's orders. Each is a total order (the id breaks ties), so keyset pages neither
/// repeat nor skip a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Filed longest ago first (the default).
    Oldest,
    Newest,
    /// Soonest estimated completion first; claims without an ETA last.
    Eta,
    /// Longest in its current status first.
    InStatus,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Oldest, Sort::Newest, Sort::Eta, Sort::InStatus];

    pub fn code(self) -> &'static str {
        match self {
            Sort::Oldest => "oldest",
            Sort::Newest => "newest",
            Sort::Eta => "eta",
            Sort::InStatus => "in_status",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Oldest => "Oldest first",
            Sort::Newest => "Newest first",
            Sort::Eta => "Estimated completion, soonest first",
            Sort::InStatus => "Longest in its status first",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|x| x.code() == s)
    }

    /// The page-link key of a row in this order (see [`Sort::parse_cursor`]).
    pub fn cursor_of(self, row: &QueueRow) -> String {
        match self {
            Sort::Oldest | Sort::Newest => row.filed_at.timestamp_micros().to_string(),
            Sort::InStatus => row.status_since.timestamp_micros().to_string(),
            Sort::Eta => row
                .eta
                .map(|d| d.to_string())
                .unwrap_or_else(|| "none".into()),
        }
    }

    /// Reads a page link's key back; `None` when it was not made by [`Sort::cursor_of`].
    pub fn parse_cursor(self, key: &str, id: i64) -> Option<Cursor> {
        match self {
            Sort::Oldest | Sort::Newest | Sort::InStatus => key
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .map(|t| Cursor::At(t, id)),
            Sort::Eta if key == "none" => Some(Cursor::Eta(None, id)),
            Sort::Eta => NaiveDate::parse_from_str(key, "%Y-%m-%d")
                .ok()
                .map(|d| Cursor::Eta(Some(d), id)),
        }
    }
}

/// Where the previous page ended: its last row's sort key and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    At(DateTime<Utc>, i64),
    Eta(Option<NaiveDate>, i64),
}

/// What the queue is filtered by; every field is a bound parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFilter {
    pub status: StatusFilter,
    pub model_id: Option<i64>,
    pub lot_id: Option<i64>,
    /// Filed more than this many days (of 24 hours) ago.
    pub older_than_days: Option<i32>,
    pub overdue_only: bool,
    pub never_sold: bool,
    pub not_owner: bool,
    pub out_of_warranty: bool,
    pub open_recall: bool,
    pub assignee: AssigneeFilter,
}

impl Default for QueueFilter {
    fn default() -> Self {
        QueueFilter {
            status: StatusFilter::Open,
            model_id: None,
            lot_id: None,
            older_than_days: None,
            overdue_only: false,
            never_sold: false,
            not_owner: false,
            out_of_warranty: false,
            open_recall: false,
            assignee: AssigneeFilter::Anyone,
        }
    }
}

/// One claim on the queue.
#[derive(Debug, Clone, QueryableByName)]
pub struct QueueRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub number: String,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Text)]
    pub serial: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub category: String,
    #[diesel(sql_type = Timestamptz)]
    pub filed_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub status_since: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Date>)]
    pub eta: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    pub assignee: Option<String>,
    #[diesel(sql_type = Bool)]
    pub flag_never_sold: bool,
    #[diesel(sql_type = Bool)]
    pub flag_not_owner: bool,
    #[diesel(sql_type = Bool)]
    pub flag_out_of_warranty: bool,
    #[diesel(sql_type = Bool)]
    pub flag_open_recall: bool,
    #[diesel(sql_type = Nullable<Integer>)]
    pub target_days: Option<i32>,
    /// [`OVERDUE_SQL`]'s verdict (what the overdue filter and the dashboard count).
    #[diesel(sql_type = Bool)]
    pub sql_overdue: bool,
}

impl QueueRow {
    /// [`overdue`] for this row (what the queue shows); an unknown status is never overdue.
    pub fn overdue(&self, now: DateTime<Utc>) -> Option<Overdue> {
        let status = Status::parse(&self.status)?;
        overdue(status, self.status_since, self.eta, self.target_days, now)
    }
}

type Boxed = BoxedSqlQuery<'static, Pg, SqlQuery>;

const QUEUE_FROM: &str = "
    FROM claims c
    JOIN units u ON u.id = c.unit_id
    LEFT JOIN claim_service_levels sl ON sl.status = c.status";

/// Appends `WHERE …` for `f` to `q`, whose `$1` is `now`; returns the query and the number of
/// the last placeholder used. (A boxed query's binds follow its text in the order they were
/// added, so each value is bound as its placeholder is written.)
fn filtered(mut q: Boxed, f: &QueueFilter) -> (Boxed, usize) {
    let mut n = 1;
    let mut clauses: Vec<String> = vec!["TRUE".into()];
    match f.status {
        StatusFilter::Open => clauses.push("c.status NOT IN ('closed', 'cancelled')".into()),
        StatusFilter::All => {}
        StatusFilter::One(s) => {
            n += 1;
            clauses.push(format!("c.status = ${n}"));
            q = q.bind::<Text, _>(s.as_str());
        }
    }
    if let Some(m) = f.model_id {
        n += 1;
        clauses.push(format!("u.model_id = ${n}"));
        q = q.bind::<BigInt, _>(m);
    }
    if let Some(l) = f.lot_id {
        n += 1;
        clauses.push(format!("u.lot_id = ${n}"));
        q = q.bind::<BigInt, _>(l);
    }
    if let Some(d) = f.older_than_days {
        n += 1;
        clauses.push(format!(
            "$1::timestamptz - c.filed_at > make_interval(days => ${n})"
        ));
        q = q.bind::<Integer, _>(d);
    }
    if f.overdue_only {
        clauses.push(OVERDUE_SQL.into());
    }
    for (on, column) in [
        (f.never_sold, "c.flag_never_sold"),
        (f.not_owner, "c.flag_not_owner"),
        (f.out_of_warranty, "c.flag_out_of_warranty"),
        (f.open_recall, "c.flag_open_recall"),
    ] {
        if on {
            clauses.push(column.into());
        }
    }
    match f.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Unassigned => clauses.push("c.assignee_id IS NULL".into()),
        AssigneeFilter::Account(id) => {
            n += 1;
            clauses.push(format!("c.assignee_id = ${n}"));
            q = q.bind::<BigInt, _>(id);
        }
    }
    (q.sql(" WHERE ").sql(clauses.join(" AND ")), n)
}

/// One page of the queue: at most `limit` claims after `after`, in `sort` order.
pub async fn queue(
    conn: &mut AsyncPgConnection,
    f: &QueueFilter,
    sort: Sort,
    after: Option<Cursor>,
    now: DateTime<Utc>,
    limit: i64,
) -> diesel::QueryResult<Vec<QueueRow>> {
    let select = format!(
        "SELECT c.id, c.number, m.brand || ' ' || m.name AS product, u.serial, l.code AS lot,
                c.status, c.category, c.filed_at, c.status_since, c.eta, a.email AS assignee,
                c.flag_never_sold, c.flag_not_owner, c.flag_out_of_warranty, c.flag_open_recall,
                sl.target_days, {OVERDUE_SQL} AS sql_overdue
         {QUEUE_FROM}
         JOIN product_models m ON m.id = u.model_id
         LEFT JOIN lots l ON l.id = u.lot_id
         LEFT JOIN accounts a ON a.id = c.assignee_id"
    );
    let q = diesel::sql_query(select)
        .into_boxed::<Pg>()
        .bind::<Timestamptz, _>(now);
    let (mut q, mut n) = filtered(q, f);
    let key = match sort {
        Sort::Oldest | Sort::Newest => "c.filed_at",
        Sort::InStatus => "c.status_since",
        Sort::Eta => "c.eta",
    };
    match after {
        Some(Cursor::At(t, id)) if sort != Sort::Eta => {
            let cmp = if sort == Sort::Newest { "<" } else { ">" };
            q = q
                .sql(format!(" AND ({key}, c.id) {cmp} (${}, ${})", n + 1, n + 2))
                .bind::<Timestamptz, _>(t)
                .bind::<BigInt, _>(id);
            n += 2;
        }
        Some(Cursor::Eta(Some(d), id)) if sort == Sort::Eta => {
            q = q
                .sql(format!(
                    " AND (c.eta IS NULL OR (c.eta, c.id) > (${}, ${}))",
                    n + 1,
                    n + 2
                ))
                .bind::<Date, _>(d)
                .bind::<BigInt, _>(id);
            n += 2;
        }
        Some(Cursor::Eta(None, id)) if sort == Sort::Eta => {
            q = q
                .sql(format!(" AND c.eta IS NULL AND c.id > ${}", n + 1))
                .bind::<BigInt, _>(id);
            n += 1;
        }
        // A key of another order (a hand-edited link): start from the first page.
        _ => {}
    }
    let order = match sort {
        Sort::Oldest => "c.filed_at, c.id",
        Sort::Newest => "c.filed_at DESC, c.id DESC",
        Sort::InStatus => "c.status_since, c.id",
        Sort::Eta => "c.eta NULLS LAST, c.id",
    };
    q.sql(format!(" ORDER BY {order} LIMIT ${}", n + 1))
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}

/// How many claims match `f` (all pages).
pub async fn queue_count(
    conn: &mut AsyncPgConnection,
    f: &QueueFilter,
    now: DateTime<Utc>,
) -> diesel::QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let q = diesel::sql_query(format!("SELECT count(*) AS n {QUEUE_FROM}"))
        .into_boxed::<Pg>()
        .bind::<Timestamptz, _>(now);
    let (q, _) = filtered(q, f);
    let r: N = q.get_result(conn).await?;
    Ok(r.n)
}

/// Staff members and admins, for the assignee filter: (id, email).
pub async fn staff_members(
    conn: &mut AsyncPgConnection,
) -> diesel::QueryResult<Vec<(i64, String)>> {
    #[derive(QueryableByName)]
    struct Member {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        email: String,
    }
    let rows: Vec<Member> = diesel::sql_query(
        "SELECT id, email FROM accounts
         WHERE role IN ('staff', 'admin') AND deleted_at IS NULL ORDER BY email LIMIT 1000",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|m| (m.id, m.email)).collect())
}

// ---- the dashboard --------------------------------------------------------------------------

/// Open claims per status, for the staff home page.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// Every open status in workflow order: (status, claims, of which overdue).
    pub per_status: Vec<(Status, i64, i64)>,
    pub open: i64,
    pub overdue: i64,
    /// Open claims assigned to the viewer, and of those overdue.
    pub mine: i64,
    pub mine_overdue: i64,
    pub unassigned: i64,
}

/// The dashboard counts for `viewer`, in one grouped scan of the open claims.
pub async fn dashboard(
    conn: &mut AsyncPgConnection,
    viewer: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Dashboard> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        total: i64,
        #[diesel(sql_type = BigInt)]
        overdue: i64,
        #[diesel(sql_type = BigInt)]
        mine: i64,
        #[diesel(sql_type = BigInt)]
        mine_overdue: i64,
        #[diesel(sql_type = BigInt)]
        unassigned: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT c.status, count(*) AS total,
                count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue,
                count(*) FILTER (WHERE c.assignee_id = $2) AS mine,
                count(*) FILTER (WHERE c.assignee_id = $2 AND {OVERDUE_SQL}) AS mine_overdue,
                count(*) FILTER (WHERE c.assignee_id IS NULL) AS unassigned
         {QUEUE_FROM}
         WHERE c.status NOT IN ('closed', 'cancelled')
         GROUP BY c.status"
    ))
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(viewer)
    .load(conn)
    .await?;
    let mut d = Dashboard::default();
    for s in open_statuses() {
        let r = rows.iter().find(|r| r.status == s.as_str());
        let (total, overdue) = r.map_or((0, 0), |r| (r.total, r.overdue));
        d.per_status.push((s, total, overdue));
    }
    for r in &rows {
        d.open += r.total;
        d.overdue += r.overdue;
        d.mine += r.mine;
        d.mine_overdue += r.mine_overdue;
        d.unassigned += r.unassigned;
    }
    Ok(d)
}

// ---- analytics ------------------------------------------------------------------------------

/// Claims filed in the window against the units sold, per model or per lot.
#[derive(Debug, Clone, QueryableByName)]
pub struct ClaimRate {
    #[diesel(sql_type = Text)]
    pub gtin: String,
    #[diesel(sql_type = Text)]
    pub product: String,
    /// The lot code (per-lot figure); `None` on the per-model figure or for units without a lot.
    #[diesel(sql_type = Nullable<Text>)]
    pub lot: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub claims: i64,
    #[diesel(sql_type = BigInt)]
    pub sold: i64,
    /// 1000 × claims ÷ sold; `None` when nothing was sold.
    #[diesel(sql_type = Nullable<Double>)]
    pub per_thousand: Option<f64>,
}

/// The window `[from, to]` (whole UTC days) as SQL over placeholders `$1` and `$2`, for `col`.
fn in_window(col: &str) -> String {
    format!(
        "{col} >= ($1::date)::timestamp AT TIME ZONE 'UTC' AND {col} < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'"
    )
}

/// Claims per 1,000 units sold, by model (`by_lot` false) or by lot. Units sold: units whose
/// recorded sale date (`units.sold_on`) is on or before the window's end; claims: those filed
/// in the window, on any unit of the model or lot (sold or not). One pass over the units sold
/// and the window's claims.
pub async fn claim_rates(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
    by_lot: bool,
) -> diesel::QueryResult<Vec<ClaimRate>> {
    let (lot_col, lot_group, lot_join) = if by_lot {
        (
            "l.code",
            ", u.lot_id, l.code",
            "LEFT JOIN lots l ON l.id = u.lot_id",
        )
    } else {
        ("NULL::text", "", "")
    };
    let window = in_window("c.filed_at");
    diesel::sql_query(format!(
        "WITH filed AS (
             SELECT c.unit_id, count(*) AS n FROM claims c WHERE {window} GROUP BY c.unit_id
         ), groups AS (
             SELECT m.gtin, m.brand || ' ' || m.name AS product, {lot_col} AS lot,
                    COALESCE(sum(f.n), 0)::bigint AS claims,
                    count(*) FILTER (WHERE u.sold_on <= $2) AS sold
             FROM units u
             LEFT JOIN filed f ON f.unit_id = u.id
             JOIN product_models m ON m.id = u.model_id
             {lot_join}
             WHERE u.sold_on <= $2 OR f.n IS NOT NULL
             GROUP BY m.id, m.gtin, m.brand, m.name{lot_group}
         )
         SELECT gtin, product, lot, claims, sold,
                (1000.0 * claims / NULLIF(sold, 0))::float8 AS per_thousand
         FROM groups
         ORDER BY per_thousand DESC NULLS LAST, claims DESC, product, lot NULLS LAST"
    ))
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct CategoryCount {
    #[diesel(sql_type = Text)]
    pub category: String,
    #[diesel(sql_type = BigInt)]
    pub claims: i64,
}

/// Claims filed in the window per problem category, most frequent first.
pub async fn top_categories(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> diesel::QueryResult<Vec<CategoryCount>> {
    diesel::sql_query(format!(
        "SELECT c.category, count(*) AS claims FROM claims c WHERE {}
         GROUP BY c.category ORDER BY claims DESC, c.category",
        in_window("c.filed_at")
    ))
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
}

/// Time to repair, per model and over all (the row whose `gtin` is `None`).
#[derive(Debug, Clone, QueryableByName)]
pub struct RepairTime {
    #[diesel(sql_type = Nullable<Text>)]
    pub gtin: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub product: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub repairs: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub mean_days: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p90_days: Option<f64>,
}

/// The claim statuses that end a repair: the unit went back, was replaced, or was refunded.
pub const REPAIR_DONE: [Status; 3] = [Status::ShippedBack, Status::Replaced, Status::Refunded];

/// Time to repair of the claims whose repair ended in the window: from filing
/// (`claims.filed_at`) to the first status event (`claim_events`, kind `status`) into
/// [`REPAIR_DONE`], in days; the mean and the 90th percentile (`percentile_cont`, linear
/// between the two nearest values), per model plus the total, in one grouped query.
pub async fn repair_times(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> diesel::QueryResult<Vec<RepairTime>> {
    let done: Vec<&str> = REPAIR_DONE.iter().map(|s| s.as_str()).collect();
    diesel::sql_query(format!(
        "WITH done AS (
             SELECT c.id, u.model_id, min(e.at) AS done_at,
                    EXTRACT(EPOCH FROM min(e.at) - c.filed_at)::float8 / 86400 AS days
             FROM claims c
             JOIN units u ON u.id = c.unit_id
             JOIN claim_events e ON e.claim_id = c.id AND e.kind = 'status' AND e.to_status = ANY($3)
             GROUP BY c.id, u.model_id, c.filed_at
         )
         SELECT m.gtin, m.brand || ' ' || m.name AS product, count(d.id) AS repairs,
                avg(d.days) AS mean_days,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY d.days) AS p90_days
         FROM done d JOIN product_models m ON m.id = d.model_id
         WHERE {}
         GROUP BY GROUPING SETS ((m.gtin, m.brand, m.name), ())
         ORDER BY GROUPING(m.gtin, m.brand, m.name), mean_days DESC NULLS LAST, product",
        in_window("d.done_at")
    ))
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .bind::<Array<Text>, _>(done)
    .load(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    /// The status lists written into [`OVERDUE_SQL`] are exactly the Rust rule's.
    #[test]
    fn the_sql_rule_names_the_same_statuses_as_the_rust_rule() {
        let list_after = |marker: &str| -> Vec<String> {
            let start = OVERDUE_SQL.find(marker).unwrap() + marker.len();
            let end = start + OVERDUE_SQL[start..].find(')').unwrap();
            OVERDUE_SQL[start..end]
                .split(',')
                .map(|s| s.trim().trim_matches('\'').to_owned())
                .collect()
        };
        let finals = list_after("c.status NOT IN (");
        let awaiting = list_after("AND c.status IN (");
        for s in Status::ALL {
            assert_eq!(
                finals.contains(&s.as_str().to_owned()),
                s.is_final(),
                "{s:?}"
            );
            assert_eq!(
                awaiting.contains(&s.as_str().to_owned()),
                awaiting_outcome(s),
                "{s:?}"
            );
        }
        assert_eq!(finals.len() + open_statuses().count(), Status::ALL.len());
    }

    #[test]
    fn overdue_by_time_in_status_is_strictly_more_than_the_target() {
        let now = at(2026, 11, 28, 12);
        let since = now - chrono::Duration::days(2);
        assert_eq!(overdue(Status::Submitted, since, None, Some(2), now), None);
        let since = since - chrono::Duration::microseconds(1);
        assert_eq!(
            overdue(Status::Submitted, since, None, Some(2), now),
            Some(Overdue::InStatus {
                days: 2,
                target_days: 2
            })
        );
        // No target for the status: never late by time.
        assert_eq!(overdue(Status::Submitted, since, None, None, now), None);
        // Final statuses are never late.
        for s in [Status::Closed, Status::Cancelled] {
            assert_eq!(
                overdue(s, at(2000, 1, 1, 0), Some(NaiveDate::MIN), Some(1), now),
                None
            );
        }
    }

    #[test]
    fn overdue_by_eta_only_before_an_outcome_and_only_from_the_next_day() {
        let now = at(2026, 11, 28, 23);
        let today = now.date_naive();
        let yesterday = today.pred_opt().unwrap();
        for s in open_statuses() {
            let got = overdue(s, now, Some(yesterday), Some(30), now);
            let want = awaiting_outcome(s).then_some(Overdue::EtaPassed(yesterday));
            assert_eq!(got, want, "{s:?}");
            assert_eq!(overdue(s, now, Some(today), Some(30), now), None, "{s:?}");
        }
        assert!(!awaiting_outcome(Status::Rejected) && !awaiting_outcome(Status::ShippedBack));
        // Time in status wins when both hold.
        let long_ago = now - chrono::Duration::days(10);
        assert!(matches!(
            overdue(Status::InRepair, long_ago, Some(yesterday), Some(7), now),
            Some(Overdue::InStatus { days: 10, .. })
        ));
    }

    #[test]
    fn page_keys_round_trip_for_every_order() {
        let row = QueueRow {
            id: 7,
            number: "C-2026-000007".into(),
            product: "P".into(),
            serial: "S".into(),
            lot: None,
            status: "submitted".into(),
            category: "other".into(),
            filed_at: at(2026, 1, 2, 3) + chrono::Duration::microseconds(123_456),
            status_since: at(2026, 2, 3, 4),
            eta: None,
            assignee: None,
            flag_never_sold: false,
            flag_not_owner: false,
            flag_out_of_warranty: false,
            flag_open_recall: false,
            target_days: Some(2),
            sql_overdue: false,
        };
        assert_eq!(
            Sort::Oldest.parse_cursor(&Sort::Oldest.cursor_of(&row), 7),
            Some(Cursor::At(row.filed_at, 7))
        );
        assert_eq!(
            Sort::InStatus.parse_cursor(&Sort::InStatus.cursor_of(&row), 7),
            Some(Cursor::At(row.status_since, 7))
        );
        assert_eq!(
            Sort::Eta.parse_cursor(&Sort::Eta.cursor_of(&row), 7),
            Some(Cursor::Eta(None, 7))
        );
        let row = QueueRow {
            eta: NaiveDate::from_ymd_opt(2026, 12, 1),
            ..row
        };
        assert_eq!(
            Sort::Eta.parse_cursor(&Sort::Eta.cursor_of(&row), 7),
            Some(Cursor::Eta(row.eta, 7))
        );
        for bad in ["", "x", "99999999999999999999", "2026-13-01"] {
            assert_eq!(Sort::Eta.parse_cursor(bad, 1), None, "{bad}");
        }
        assert_eq!(Sort::Newest.parse_cursor("2026-12-01", 1), None);
        for s in Sort::ALL {
            assert_eq!(Sort::parse(s.code()), Some(s));
        }
    }
}
