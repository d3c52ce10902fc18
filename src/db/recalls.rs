//! Recall campaigns: drafts and their targets, the preview, the launch (the affected set
//! materialised once, one notice per reachable owner queued, all in one transaction, all
//! set-based), acknowledgements, remedies, and what the lookup says about a unit.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Date, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::domain::recall::NoticeText;

/// A campaign as its pages show it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Campaign {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub hazard: String,
    #[diesel(sql_type = Text)]
    pub what_to_do: String,
    #[diesel(sql_type = Text)]
    pub sold_where: String,
    #[diesel(sql_type = Text)]
    pub contact: String,
    #[diesel(sql_type = Bool)]
    pub remedy_repair: bool,
    #[diesel(sql_type = Bool)]
    pub remedy_replace: bool,
    #[diesel(sql_type = Bool)]
    pub remedy_refund: bool,
    #[diesel(sql_type = Text)]
    pub remedy_reason: String,
    #[diesel(sql_type = Bool)]
    pub remedy_available: bool,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub second_notice_days: i32,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub launched_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub closed_at: Option<DateTime<Utc>>,
}

const CAMPAIGN: &str = "SELECT id, code, status, title, hazard, what_to_do, sold_where, contact,
        remedy_repair, remedy_replace, remedy_refund, remedy_reason, remedy_available,
        second_notice_days, created_at, launched_at, closed_at
    FROM recall_campaigns";

impl Campaign {
    pub fn text(&self) -> NoticeText {
        NoticeText {
            title: self.title.clone(),
            hazard: self.hazard.clone(),
            what_to_do: self.what_to_do.clone(),
            sold_where: self.sold_where.clone(),
            contact: self.contact.clone(),
            remedy_repair: self.remedy_repair,
            remedy_replace: self.remedy_replace,
            remedy_refund: self.remedy_refund,
            remedy_reason: self.remedy_reason.clone(),
        }
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!("{CAMPAIGN} WHERE id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(conn)
            .await
            .optional()
    }

    pub async fn by_code(
        conn: &mut AsyncPgConnection,
        code: &str,
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!("{CAMPAIGN} WHERE code = $1"))
            .bind::<Text, _>(code)
            .get_result(conn)
            .await
            .optional()
    }

    /// Every campaign, newest first (admins).
    pub async fn all(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!("{CAMPAIGN} ORDER BY created_at DESC LIMIT 500"))
            .load(conn)
            .await
    }

    /// Launched or closed campaigns: what the public sees, newest first.
    pub async fn public(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<Self>> {
        diesel::sql_query(format!(
            "{CAMPAIGN} WHERE status IN ('launched', 'closed') ORDER BY launched_at DESC LIMIT 500"
        ))
        .load(conn)
        .await
    }

    /// A new draft; `None` when the code is taken.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        code: &str,
        title: &str,
        by: i64,
    ) -> diesel::QueryResult<Option<i64>> {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let id: Option<Id> = diesel::sql_query(
            "INSERT INTO recall_campaigns (code, title, created_by) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO NOTHING RETURNING id",
        )
        .bind::<Text, _>(code)
        .bind::<Text, _>(title)
        .bind::<BigInt, _>(by)
        .get_result(conn)
        .await
        .optional()?;
        Ok(id.map(|i| i.id))
    }

    /// Saves the notice of a draft; `false` when it is no longer a draft.
    pub async fn save_text(
        conn: &mut AsyncPgConnection,
        id: i64,
        t: &NoticeText,
        second_notice_days: i32,
    ) -> diesel::QueryResult<bool> {
        let n = diesel::sql_query(
            "UPDATE recall_campaigns SET title = $2, hazard = $3, what_to_do = $4, sold_where = $5,
                    contact = $6, remedy_repair = $7, remedy_replace = $8, remedy_refund = $9,
                    remedy_reason = $10, second_notice_days = $11, updated_at = now()
             WHERE id = $1 AND status = 'draft'",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(&t.title)
        .bind::<Text, _>(&t.hazard)
        .bind::<Text, _>(&t.what_to_do)
        .bind::<Text, _>(&t.sold_where)
        .bind::<Text, _>(&t.contact)
        .bind::<Bool, _>(t.remedy_repair)
        .bind::<Bool, _>(t.remedy_replace)
        .bind::<Bool, _>(t.remedy_refund)
        .bind::<Text, _>(&t.remedy_reason)
        .bind::<diesel::sql_types::Integer, _>(second_notice_days)
        .execute(conn)
        .await?;
        Ok(n == 1)
    }

    /// Whether the remedy is ready (launched campaigns too: the lookup changes with it).
    pub async fn set_remedy_available(
        conn: &mut AsyncPgConnection,
        id: i64,
        available: bool,
    ) -> diesel::QueryResult<bool> {
        let n = diesel::sql_query(
            "UPDATE recall_campaigns SET remedy_available = $2, updated_at = now()
             WHERE id = $1 AND status <> 'closed'",
        )
        .bind::<BigInt, _>(id)
        .bind::<Bool, _>(available)
        .execute(conn)
        .await?;
        Ok(n == 1)
    }

    /// Closes a launched campaign (no more second notices; the lookup keeps showing it).
    pub async fn close(conn: &mut AsyncPgConnection, id: i64) -> diesel::QueryResult<bool> {
        let n = diesel::sql_query(
            "UPDATE recall_campaigns SET status = 'closed', closed_at = now(), updated_at = now()
             WHERE id = $1 AND status = 'launched'",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)
        .await?;
        Ok(n == 1)
    }
}

/// One target of a campaign.
#[derive(Debug, Clone, QueryableByName)]
pub struct Target {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub label: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub model_id: Option<i64>,
}

/// What a new target selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewTarget {
    /// Serial keys (as the model folds them) of one model.
    Serials {
        model_id: i64,
        keys: Vec<String>,
    },
    /// Serial keys from..=to of one model (text order, as the keys sort).
    Range {
        model_id: i64,
        from: String,
        to: String,
    },
    Lot {
        lot_id: i64,
    },
    Model {
        model_id: i64,
    },
    /// Made within these days (the unit's date, else its lot's), of one model or of all.
    Made {
        model_id: Option<i64>,
        from: NaiveDate,
        to: NaiveDate,
    },
    /// Units containing a unit of this lot, or the lot itself, however deep.
    ComponentLot {
        lot_id: i64,
    },
}

pub async fn targets(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
) -> diesel::QueryResult<Vec<Target>> {
    diesel::sql_query(
        "SELECT id, kind, label, model_id FROM recall_targets WHERE campaign_id = $1 ORDER BY id",
    )
    .bind::<BigInt, _>(campaign_id)
    .load(conn)
    .await
}

/// Adds a target to a draft; `false` when the campaign is no longer a draft.
pub async fn add_target(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    t: &NewTarget,
    label: &str,
) -> diesel::QueryResult<bool> {
    #[derive(Default)]
    struct Row<'a> {
        model: Option<i64>,
        lot: Option<i64>,
        keys: Option<&'a [String]>,
        from: Option<&'a str>,
        to: Option<&'a str>,
        made_from: Option<NaiveDate>,
        made_to: Option<NaiveDate>,
    }
    let (kind, row) = match t {
        NewTarget::Serials { model_id, keys } => (
            "serials",
            Row {
                model: Some(*model_id),
                keys: Some(keys),
                ..Row::default()
            },
        ),
        NewTarget::Range { model_id, from, to } => (
            "range",
            Row {
                model: Some(*model_id),
                from: Some(from),
                to: Some(to),
                ..Row::default()
            },
        ),
        NewTarget::Lot { lot_id } => (
            "lot",
            Row {
                lot: Some(*lot_id),
                ..Row::default()
            },
        ),
        NewTarget::Model { model_id } => (
            "model",
            Row {
                model: Some(*model_id),
                ..Row::default()
            },
        ),
        NewTarget::Made { model_id, from, to } => (
            "made",
            Row {
                model: *model_id,
                made_from: Some(*from),
                made_to: Some(*to),
                ..Row::default()
            },
        ),
        NewTarget::ComponentLot { lot_id } => (
            "component_lot",
            Row {
                lot: Some(*lot_id),
                ..Row::default()
            },
        ),
    };
    let (model, lot, keys, from, to, made_from, made_to) = (
        row.model,
        row.lot,
        row.keys,
        row.from,
        row.to,
        row.made_from,
        row.made_to,
    );
    let n = diesel::sql_query(
        "INSERT INTO recall_targets (campaign_id, kind, model_id, lot_id, serial_keys, key_from,
             key_to, made_from, made_to, label)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
         FROM recall_campaigns WHERE id = $1 AND status = 'draft'",
    )
    .bind::<BigInt, _>(campaign_id)
    .bind::<Text, _>(kind)
    .bind::<Nullable<BigInt>, _>(model)
    .bind::<Nullable<BigInt>, _>(lot)
    .bind::<Nullable<Array<Text>>, _>(keys)
    .bind::<Nullable<Text>, _>(from)
    .bind::<Nullable<Text>, _>(to)
    .bind::<Nullable<Date>, _>(made_from)
    .bind::<Nullable<Date>, _>(made_to)
    .bind::<Text, _>(label)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn remove_target(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    target_id: i64,
) -> diesel::QueryResult<bool> {
    let n = diesel::sql_query(
        "DELETE FROM recall_targets t USING recall_campaigns c
         WHERE t.id = $2 AND t.campaign_id = $1 AND c.id = t.campaign_id AND c.status = 'draft'",
    )
    .bind::<BigInt, _>(campaign_id)
    .bind::<BigInt, _>(target_id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// The affected units of campaign `$1` as `affected (id, lot_id, model_id, serial, serial_key)`:
/// the union of its targets in one statement, with a branch only for the kinds of target it has
/// (so no branch scans `units` for nothing), each by its own index (a model's serials by
/// `units_model_serial_key`, a lot by `units_lot`, component lots up the genealogy). Each unit
/// once: `UNION` removes repeats between branches; within the only branch they can come only
/// from several targets of one kind (overlapping ranges, say), and then it is `DISTINCT`.
fn affected_sql(kinds: &[TargetKind]) -> String {
    const COLUMNS: &str = "u.id, u.lot_id, u.model_id, u.serial, u.serial_key";
    let has = |k: &str| kinds.iter().any(|x| x.kind == k);
    let mut branches: Vec<(&str, String)> = Vec::new();
    if has("serials") {
        branches.push((
            "serials",
            "FROM t JOIN units u ON u.model_id = t.model_id AND u.serial_key = ANY (t.serial_keys)
             WHERE t.kind = 'serials'"
                .to_owned(),
        ));
    }
    if has("range") {
        branches.push((
            "range",
            "FROM t JOIN units u ON u.model_id = t.model_id
                 AND u.serial_key >= t.key_from AND u.serial_key <= t.key_to
             WHERE t.kind = 'range'"
                .to_owned(),
        ));
    }
    if has("lot") {
        branches.push((
            "lot",
            "FROM t JOIN units u ON u.lot_id = t.lot_id WHERE t.kind = 'lot'".to_owned(),
        ));
    }
    if has("model") {
        branches.push((
            "model",
            "FROM t JOIN units u ON u.model_id = t.model_id WHERE t.kind = 'model'".to_owned(),
        ));
    }
    if has("made") {
        branches.push((
            "made",
            "FROM t JOIN units u ON (t.model_id IS NULL OR u.model_id = t.model_id)
                 LEFT JOIN lots l ON l.id = u.lot_id
             WHERE t.kind = 'made'
               AND COALESCE(u.manufactured_on, l.production_date) BETWEEN t.made_from AND t.made_to"
                .to_owned(),
        ));
    }
    let contains = if has("component_lot") {
        branches.push((
            "component_lot",
            "FROM contains c JOIN units u ON u.id = c.unit_id".to_owned(),
        ));
        ",
    contains (unit_id) AS (
        SELECT uc.parent_unit_id FROM unit_components uc
        WHERE uc.removed_at IS NULL
          AND uc.component_lot_id IN (SELECT lot_id FROM t WHERE kind = 'component_lot')
        UNION
        SELECT uc.parent_unit_id FROM unit_components uc JOIN units cu ON cu.id = uc.component_unit_id
        WHERE uc.removed_at IS NULL
          AND cu.lot_id IN (SELECT lot_id FROM t WHERE kind = 'component_lot')
        UNION
        SELECT uc.parent_unit_id FROM contains c
        JOIN unit_components uc ON uc.component_unit_id = c.unit_id AND uc.removed_at IS NULL
    )"
    } else {
        ""
    };
    let union = match branches.as_slice() {
        [] => format!("SELECT {COLUMNS} FROM units u WHERE false"),
        [(kind, from)] => {
            let several = kinds.iter().any(|k| k.kind == *kind && k.targets > 1);
            let distinct = if several { "DISTINCT " } else { "" };
            format!("SELECT {distinct}{COLUMNS} {from}")
        }
        many => many
            .iter()
            .map(|(_, from)| format!("SELECT {COLUMNS} {from}"))
            .collect::<Vec<_>>()
            .join("\n        UNION\n        "),
    };
    format!(
        "WITH RECURSIVE t AS (SELECT * FROM recall_targets WHERE campaign_id = $1){contains},
    affected (id, lot_id, model_id, serial, serial_key) AS ({union})"
    )
}

/// A kind of target a campaign has, and how many of that kind.
#[derive(QueryableByName)]
struct TargetKind {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    targets: i64,
}

async fn target_kinds(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
) -> diesel::QueryResult<Vec<TargetKind>> {
    diesel::sql_query(
        "SELECT kind, count(*) AS targets FROM recall_targets WHERE campaign_id = $1 GROUP BY kind",
    )
    .bind::<BigInt, _>(campaign_id)
    .load(conn)
    .await
}

/// What a launch would do, before it happens.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct Preview {
    #[diesel(sql_type = BigInt)]
    pub affected: i64,
    #[diesel(sql_type = BigInt)]
    pub registered: i64,
    #[diesel(sql_type = BigInt)]
    pub owners: i64,
}

/// Counts (affected units, registered ones, distinct owners to write to) and a sample of
/// serials (up to `sample`).
pub async fn preview(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    sample: i64,
) -> diesel::QueryResult<(Preview, Vec<(String, String)>)> {
    let affected = affected_sql(&target_kinds(conn, campaign_id).await?);
    let counts: Preview = diesel::sql_query(format!(
        "{affected}
         SELECT count(*) AS affected, count(r.id) AS registered,
                count(DISTINCT r.contact_email) AS owners
         FROM affected a LEFT JOIN registrations r ON r.unit_id = a.id AND r.status = 'active'"
    ))
    .bind::<BigInt, _>(campaign_id)
    .get_result(conn)
    .await?;
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = Text)]
        gtin: String,
        #[diesel(sql_type = Text)]
        serial: String,
    }
    let rows: Vec<S> = diesel::sql_query(format!(
        "{affected}
         SELECT m.gtin, a.serial FROM affected a JOIN product_models m ON m.id = a.model_id
         ORDER BY m.gtin, a.serial_key LIMIT $2"
    ))
    .bind::<BigInt, _>(campaign_id)
    .bind::<BigInt, _>(sample)
    .load(conn)
    .await?;
    Ok((
        counts,
        rows.into_iter().map(|s| (s.gtin, s.serial)).collect(),
    ))
}

/// A notice mail rendered once per campaign, with `%%UNITS%%` where the owner's units go and
/// `%%LINK%%` where their acknowledgement link goes (in both bodies): the outbox fills them in
/// for each owner when it sends (`db::outbox::fill_in`).
pub struct NoticeMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a launch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    pub affected: i64,
    pub notified_units: i64,
    pub notices: i64,
}

/// The launch: in one transaction, the affected set is materialised, one notice per reachable
/// owner is created and its mail queued, each unit is marked notified or unreachable, and the
/// campaign becomes launched. `None`: not a draft (any more). `second` is the second notice,
/// kept for owners who do not answer.
///
/// Set-based throughout, each row written once: the affected units (with what the later steps
/// need of them) and their registered owners go into temporary tables (not written to the
/// WAL); notice and mail ids are drawn from their sequences up front, so mails, notices and
/// units are plain `INSERT … SELECT`s with no joining back.
pub async fn launch(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    by: i64,
    base_url: &str,
    first: &NoticeMail,
    second: &NoticeMail,
) -> anyhow::Result<Option<Launched>> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            code: String,
        }
        let row: Option<Row> = diesel::sql_query(
            "SELECT code FROM recall_campaigns WHERE id = $1 AND status = 'draft' FOR UPDATE",
        )
        .bind::<BigInt, _>(campaign_id)
        .get_result(conn)
        .await
        .optional()?;
        let Some(Row { code }) = row else {
            return Ok(None);
        };
        // Hashes and sorts of a million rows stay in memory; one core does it all, so that
        // lookups keep the others while it runs.
        diesel::sql_query("SET LOCAL work_mem = '256MB'")
            .execute(conn)
            .await?;
        diesel::sql_query("SET LOCAL max_parallel_workers_per_gather = 0")
            .execute(conn)
            .await?;
        let affected = affected_sql(&target_kinds(conn, campaign_id).await?);
        diesel::sql_query(format!(
            "CREATE TEMP TABLE launch_affected ON COMMIT DROP AS {affected} SELECT * FROM affected"
        ))
        .bind::<BigInt, _>(campaign_id)
        .execute(conn)
        .await?;
        diesel::sql_query("ANALYZE launch_affected")
            .execute(conn)
            .await?;
        diesel::sql_query(
            "INSERT INTO recall_campaign_models (campaign_id, model_id, units)
             SELECT $1, model_id, count(*) FROM launch_affected GROUP BY model_id",
        )
        .bind::<BigInt, _>(campaign_id)
        .execute(conn)
        .await?;
        diesel::sql_query(
            "CREATE TEMP TABLE launch_registered ON COMMIT DROP AS
             SELECT a.id AS unit_id, r.contact_email AS email, r.account_id, a.model_id, a.serial,
                    a.serial_key
             FROM launch_affected a JOIN registrations r ON r.unit_id = a.id AND r.status = 'active'",
        )
        .execute(conn)
        .await?;
        diesel::sql_query("ANALYZE launch_registered")
            .execute(conn)
            .await?;
        // One row per owner address: their notice and mail ids, a fresh secret for the link
        // (two random UUIDs: 244 random bits) and the list of their units.
        diesel::sql_query(
            "CREATE TEMP TABLE launch_owners ON COMMIT DROP AS
             SELECT nextval('recall_notices_id_seq') AS notice_id,
                    nextval('outbox_id_seq') AS outbox_id, r.email,
                    min(r.account_id) AS account_id,
                    replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') AS token,
                    string_agg(m.brand || ' ' || m.name || ', serial ' || r.serial, E'\\n'
                               ORDER BY m.gtin, r.serial_key) AS units
             FROM launch_registered r JOIN product_models m ON m.id = r.model_id
             GROUP BY r.email",
        )
        .execute(conn)
        .await?;
        diesel::sql_query("ANALYZE launch_owners")
            .execute(conn)
            .await?;
        #[derive(QueryableByName)]
        struct Templates {
            #[diesel(sql_type = BigInt)]
            first: i64,
        }
        let Templates { first: template } = diesel::sql_query(
            "WITH t AS (
                 INSERT INTO mail_templates (body_text, body_html) VALUES ($2, $3), ($4, $5)
                 RETURNING id),
             ids AS (SELECT min(id) AS first, max(id) AS second FROM t)
             UPDATE recall_campaigns c SET notice_template_id = ids.first,
                    second_template_id = ids.second
             FROM ids WHERE c.id = $1
             RETURNING ids.first",
        )
        .bind::<BigInt, _>(campaign_id)
        .bind::<Text, _>(&first.text)
        .bind::<Text, _>(&first.html)
        .bind::<Text, _>(&second.text)
        .bind::<Text, _>(&second.html)
        .get_result(conn)
        .await?;
        let link = format!("{base_url}/recalls/{code}/ack?t=");
        let notices = diesel::sql_query(
            "INSERT INTO outbox (id, kind, to_address, subject, template_id, fill)
             SELECT outbox_id, 'recall_notice', email, $1, $2,
                    jsonb_build_object('UNITS', units, 'LINK', $3 || token)
             FROM launch_owners",
        )
        .bind::<Text, _>(&first.subject)
        .bind::<BigInt, _>(template)
        .bind::<Text, _>(&link)
        .execute(conn)
        .await? as i64;
        diesel::sql_query(
            "INSERT INTO recall_notices (id, campaign_id, account_id, contact_email, token_hash, outbox_id)
             SELECT notice_id, $1, account_id, email, sha256(convert_to(token, 'UTF8')), outbox_id
             FROM launch_owners",
        )
        .bind::<BigInt, _>(campaign_id)
        .execute(conn)
        .await?;
        // Every affected unit written once, already notified (with its notice) or unreachable.
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = BigInt)]
            affected: i64,
            #[diesel(sql_type = BigInt)]
            notified: i64,
        }
        let counts: Counts = diesel::sql_query(
            "WITH ins AS (
                 INSERT INTO recall_units (campaign_id, unit_id, lot_id, state, notice_id)
                 SELECT $1, a.id, a.lot_id,
                        CASE WHEN o.notice_id IS NULL THEN 'unreachable' ELSE 'notified' END,
                        o.notice_id
                 FROM launch_affected a
                 LEFT JOIN launch_registered r ON r.unit_id = a.id
                 LEFT JOIN launch_owners o ON o.email = r.email
                 RETURNING notice_id)
             SELECT count(*) AS affected, count(notice_id) AS notified FROM ins",
        )
        .bind::<BigInt, _>(campaign_id)
        .get_result(conn)
        .await?;
        diesel::sql_query(
            "UPDATE recall_campaigns SET status = 'launched', launched_at = now(), launched_by = $2,
                    updated_at = now()
             WHERE id = $1",
        )
        .bind::<BigInt, _>(campaign_id)
        .bind::<BigInt, _>(by)
        .execute(conn)
        .await?;
        Ok(Some(Launched {
            affected: counts.affected,
            notified_units: counts.notified,
            notices,
        }))
    })
    .await
}

/// A notice as its owner sees it (from the mail's link or their account).
#[derive(Debug, Clone, QueryableByName)]
pub struct Notice {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub campaign_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub account_id: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub remedy_choice: Option<String>,
}

const NOTICE: &str =
    "SELECT id, campaign_id, account_id, acknowledged_at, remedy_choice FROM recall_notices";

impl Notice {
    /// The notice a mailed link names (by the SHA-256 of its secret).
    pub async fn by_token(
        conn: &mut AsyncPgConnection,
        campaign_id: i64,
        token_hash: &[u8],
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!(
            "{NOTICE} WHERE campaign_id = $1 AND token_hash = $2"
        ))
        .bind::<BigInt, _>(campaign_id)
        .bind::<Bytea, _>(token_hash)
        .get_result(conn)
        .await
        .optional()
    }

    /// The account's notice for a campaign.
    pub async fn of_account(
        conn: &mut AsyncPgConnection,
        campaign_id: i64,
        account_id: i64,
    ) -> diesel::QueryResult<Option<Self>> {
        diesel::sql_query(format!(
            "{NOTICE} WHERE campaign_id = $1 AND account_id = $2 ORDER BY id LIMIT 1"
        ))
        .bind::<BigInt, _>(campaign_id)
        .bind::<BigInt, _>(account_id)
        .get_result(conn)
        .await
        .optional()
    }

    /// The units this notice is about: (gtin, serial, product, state).
    pub async fn units(
        &self,
        conn: &mut AsyncPgConnection,
    ) -> diesel::QueryResult<Vec<(String, String, String, String)>> {
        #[derive(QueryableByName)]
        struct U {
            #[diesel(sql_type = Text)]
            gtin: String,
            #[diesel(sql_type = Text)]
            serial: String,
            #[diesel(sql_type = Text)]
            product: String,
            #[diesel(sql_type = Text)]
            state: String,
        }
        let rows: Vec<U> = diesel::sql_query(
            "SELECT m.gtin, u.serial, m.brand || ' ' || m.name AS product, ru.state
             FROM recall_units ru JOIN units u ON u.id = ru.unit_id
             JOIN product_models m ON m.id = u.model_id
             WHERE ru.notice_id = $1 ORDER BY m.gtin, u.serial_key LIMIT 1000",
        )
        .bind::<BigInt, _>(self.id)
        .load(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|u| (u.gtin, u.serial, u.product, u.state))
            .collect())
    }

    /// The owner acknowledges and chooses a remedy: the notice and its units not yet remedied
    /// move to "acknowledged". Choosing again changes the choice only.
    pub async fn acknowledge(
        conn: &mut AsyncPgConnection,
        id: i64,
        choice: &str,
    ) -> diesel::QueryResult<()> {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query(
                "UPDATE recall_notices SET remedy_choice = $2,
                        acknowledged_at = COALESCE(acknowledged_at, now())
                 WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(choice)
            .execute(conn)
            .await?;
            diesel::sql_query(
                "UPDATE recall_units SET state = 'acknowledged', acknowledged_at = now(), updated_at = now()
                 WHERE notice_id = $1 AND state IN ('affected', 'notified', 'unreachable')",
            )
            .bind::<BigInt, _>(id)
            .execute(conn)
            .await?;
            Ok(())
        })
        .await
    }
}

/// Marks a unit remedied in a campaign (staff, or a claim closed as the remedy). `false`: the
/// unit is not in the campaign, or already remedied.
pub async fn mark_remedied(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    unit_id: i64,
    on: NaiveDate,
    by: &str,
) -> diesel::QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE recall_units SET state = 'remedied', remedied_on = $3, remedied_by = $4, updated_at = now()
         WHERE campaign_id = $1 AND unit_id = $2 AND state <> 'remedied'",
    )
    .bind::<BigInt, _>(campaign_id)
    .bind::<BigInt, _>(unit_id)
    .bind::<Date, _>(on)
    .bind::<Text, _>(by)
    .execute(conn)
    .await?;
    if n == 1 {
        diesel::sql_query(
            "INSERT INTO unit_events (unit_id, kind, actor, reference) SELECT $2, 'remedied', $3, code FROM recall_campaigns WHERE id = $1",
        )
        .bind::<BigInt, _>(campaign_id)
        .bind::<BigInt, _>(unit_id)
        .bind::<Text, _>(by)
        .execute(conn)
        .await?;
    }
    Ok(n == 1)
}

/// A unit's recall campaigns as the lookup shows them ([`UNIT_RECALL_COLUMNS`], in order).
#[derive(Debug, Clone, diesel::Queryable, QueryableByName)]
pub struct UnitRecall {
    #[diesel(sql_type = BigInt)]
    pub unit_id: i64,
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub what_to_do: String,
    #[diesel(sql_type = Bool)]
    pub remedy_available: bool,
    #[diesel(sql_type = Nullable<Date>)]
    pub remedied_on: Option<NaiveDate>,
}

/// The columns of a [`UnitRecall`], for both ways of finding a unit's campaigns.
const UNIT_RECALL_COLUMNS: (
    super::schema::recall_units::unit_id,
    super::schema::recall_campaigns::code,
    super::schema::recall_campaigns::title,
    super::schema::recall_campaigns::what_to_do,
    super::schema::recall_campaigns::remedy_available,
    super::schema::recall_units::remedied_on,
) = (
    super::schema::recall_units::unit_id,
    super::schema::recall_campaigns::code,
    super::schema::recall_campaigns::title,
    super::schema::recall_campaigns::what_to_do,
    super::schema::recall_campaigns::remedy_available,
    super::schema::recall_units::remedied_on,
);

/// A recall in force that concerns a model.
#[derive(Debug, Clone, QueryableByName)]
pub struct ModelRecall {
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = BigInt)]
    pub units: i64,
}

/// The launched (not closed) campaigns that affect units of a model, latest first.
pub async fn of_model(
    conn: &mut AsyncPgConnection,
    model_id: i64,
) -> diesel::QueryResult<Vec<ModelRecall>> {
    diesel::sql_query(
        "SELECT c.code, c.title, cm.units
         FROM recall_campaign_models cm JOIN recall_campaigns c ON c.id = cm.campaign_id
         WHERE cm.model_id = $1 AND c.status = 'launched'
         ORDER BY c.launched_at DESC",
    )
    .bind::<BigInt, _>(model_id)
    .load(conn)
    .await
}

/// The launched or closed campaigns a unit is in, latest first.
pub async fn of_unit(
    conn: &AsyncPgConnection,
    unit_id: i64,
) -> diesel::QueryResult<Vec<UnitRecall>> {
    of_units(conn, &[unit_id]).await
}

/// The launched or closed campaigns of each of these units (one query), latest first.
pub async fn of_units(
    conn: &AsyncPgConnection,
    unit_ids: &[i64],
) -> diesel::QueryResult<Vec<UnitRecall>> {
    let mut conn = conn;
    use super::schema::{recall_campaigns as c, recall_units as ru};
    use diesel::{ExpressionMethods, JoinOnDsl, QueryDsl};
    // In diesel's query builder, not `sql_query`, so each connection prepares it once: every
    // lookup runs it, and parsing and planning it each time was most of PostgreSQL's work for
    // a lookup (BENCHMARKS.md). Campaigns are draft, launched or closed (a CHECK).
    // One unit (every single lookup) by `=`: with `= ANY($1)` PostgreSQL planned the statement
    // again on every call once `recall_units` held rows (33,448 plans for 33,432 lookups).
    let base = || {
        ru::table
            .inner_join(c::table.on(c::id.eq(ru::campaign_id)))
            .filter(c::status.ne("draft"))
            .order(c::launched_at.desc())
            .select(UNIT_RECALL_COLUMNS)
    };
    let rows: Vec<UnitRecall> = match unit_ids {
        [one] => base().filter(ru::unit_id.eq(one)).load(&mut conn).await?,
        many => {
            base()
                .filter(ru::unit_id.eq_any(many))
                .load(&mut conn)
                .await?
        }
    };
    Ok(rows)
}

/// The launched or closed campaigns of the units stored under `keys` (serial keys, as
/// [`super::lookup::UnitMatch::keys`] gives them), latest first: what [`of_units`] answers for
/// the lookup's candidates, without waiting for them, so that a lookup sends both statements at
/// once (one round trip). One or two keys (a single lookup) by `=`, for one generic plan.
pub async fn of_serial_keys(
    conn: &AsyncPgConnection,
    keys: &[String],
) -> diesel::QueryResult<Vec<UnitRecall>> {
    use super::schema::{recall_campaigns as c, recall_units as ru, units as u};
    use diesel::{BoolExpressionMethods, ExpressionMethods, JoinOnDsl, QueryDsl};
    let mut conn = conn;
    let base = || {
        ru::table
            .inner_join(u::table.on(u::id.eq(ru::unit_id)))
            .inner_join(c::table.on(c::id.eq(ru::campaign_id)))
            .filter(c::status.ne("draft"))
            .order(c::launched_at.desc())
            .select(UNIT_RECALL_COLUMNS)
    };
    let rows: Vec<UnitRecall> = match keys {
        [] => Vec::new(),
        [one] => base().filter(u::serial_key.eq(one)).load(&mut conn).await?,
        [a, b] => {
            base()
                .filter(u::serial_key.eq(a).or(u::serial_key.eq(b)))
                .load(&mut conn)
                .await?
        }
        many => {
            base()
                .filter(u::serial_key.eq_any(many))
                .load(&mut conn)
                .await?
        }
    };
    Ok(rows)
}

/// Queues the second notice to every owner who has not acknowledged within their campaign's
/// `second_notice_days` (launched campaigns only): the campaign's second-notice template with
/// the first mail's units and link. Set-based per campaign, in batches, each owner once (the
/// notice row is locked and marked in the statement that queues the mail). Returns how many.
pub async fn send_second_notices(conn: &mut AsyncPgConnection) -> diesel::QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let campaigns: Vec<Id> = diesel::sql_query(
        "SELECT id FROM recall_campaigns WHERE status = 'launched' AND second_template_id IS NOT NULL",
    )
    .load(conn)
    .await?;
    let mut queued = 0;
    for c in campaigns {
        loop {
            let n = diesel::sql_query(
                "WITH due AS (
                     SELECT n.id, nextval('outbox_id_seq') AS outbox_id, o.to_address, o.subject,
                            o.fill, c.second_template_id
                     FROM recall_notices n
                     JOIN recall_campaigns c ON c.id = n.campaign_id
                     JOIN outbox o ON o.id = n.outbox_id
                     WHERE n.campaign_id = $1 AND n.acknowledged_at IS NULL
                       AND n.second_outbox_id IS NULL
                       AND n.created_at < now() - make_interval(days => c.second_notice_days)
                     ORDER BY n.id LIMIT 5000
                     FOR UPDATE OF n SKIP LOCKED),
                 sent AS (
                     INSERT INTO outbox (id, kind, to_address, subject, template_id, fill)
                     SELECT outbox_id, 'recall_second_notice', to_address,
                            'Second notice: ' || subject, second_template_id, fill
                     FROM due)
                 UPDATE recall_notices n SET second_outbox_id = d.outbox_id
                 FROM due d WHERE n.id = d.id",
            )
            .bind::<BigInt, _>(c.id)
            .execute(conn)
            .await? as i64;
            queued += n;
            if n < 5000 {
                break;
            }
        }
    }
    Ok(queued)
}
