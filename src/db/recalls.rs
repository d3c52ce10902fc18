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

/// The affected units of campaign `$1`: the union of its targets in one statement, with a
/// branch only for the kinds of target it has (so no branch scans `units` for nothing), each by
/// its own index (a model's serials by `units_model_serial_key`, a lot by `units_lot`,
/// component lots up the genealogy).
fn affected_sql(kinds: &[String]) -> String {
    let has = |k: &str| kinds.iter().any(|x| x == k);
    let mut branches: Vec<&str> = Vec::new();
    if has("serials") {
        branches.push(
            "SELECT u.id FROM t JOIN units u ON u.model_id = t.model_id AND u.serial_key = ANY (t.serial_keys)
             WHERE t.kind = 'serials'",
        );
    }
    if has("range") {
        branches.push(
            "SELECT u.id FROM t JOIN units u ON u.model_id = t.model_id
                 AND u.serial_key >= t.key_from AND u.serial_key <= t.key_to
             WHERE t.kind = 'range'",
        );
    }
    if has("lot") {
        branches
            .push("SELECT u.id FROM t JOIN units u ON u.lot_id = t.lot_id WHERE t.kind = 'lot'");
    }
    if has("model") {
        branches.push(
            "SELECT u.id FROM t JOIN units u ON u.model_id = t.model_id WHERE t.kind = 'model'",
        );
    }
    if has("made") {
        branches.push(
            "SELECT u.id FROM t JOIN units u ON (t.model_id IS NULL OR u.model_id = t.model_id)
                 LEFT JOIN lots l ON l.id = u.lot_id
             WHERE t.kind = 'made'
               AND COALESCE(u.manufactured_on, l.production_date) BETWEEN t.made_from AND t.made_to",
        );
    }
    let contains = if has("component_lot") {
        branches.push("SELECT unit_id FROM contains");
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
    if branches.is_empty() {
        branches.push("SELECT NULL::bigint WHERE false");
    }
    format!(
        "WITH RECURSIVE t AS (SELECT * FROM recall_targets WHERE campaign_id = $1){contains},
    affected (unit_id) AS ({})",
        branches.join("\n        UNION\n        ")
    )
}

/// The kinds of target a campaign has.
async fn target_kinds(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
) -> diesel::QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct K {
        #[diesel(sql_type = Text)]
        kind: String,
    }
    let rows: Vec<K> =
        diesel::sql_query("SELECT DISTINCT kind FROM recall_targets WHERE campaign_id = $1")
            .bind::<BigInt, _>(campaign_id)
            .load(conn)
            .await?;
    Ok(rows.into_iter().map(|k| k.kind).collect())
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
         FROM affected a LEFT JOIN registrations r ON r.unit_id = a.unit_id AND r.status = 'active'"
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
         SELECT m.gtin, u.serial FROM affected a JOIN units u ON u.id = a.unit_id
         JOIN product_models m ON m.id = u.model_id
         ORDER BY m.gtin, u.serial_key LIMIT $2"
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

/// A notice mail rendered once, with `%%UNITS%%` where the owner's units go and `%%LINK%%`
/// where their acknowledgement link goes (in both bodies).
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
/// campaign becomes launched. `None`: not a draft (any more).
pub async fn launch(
    conn: &mut AsyncPgConnection,
    campaign_id: i64,
    by: i64,
    base_url: &str,
    mail: &NoticeMail,
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
        // The affected set, computed once (a temporary table: not written to the WAL).
        let union = affected_sql(&target_kinds(conn, campaign_id).await?);
        diesel::sql_query(format!(
            "CREATE TEMP TABLE launch_affected ON COMMIT DROP AS
             {union} SELECT DISTINCT unit_id FROM affected"
        ))
        .bind::<BigInt, _>(campaign_id)
        .execute(conn)
        .await?;
        // One row per owner address, with a fresh secret for the link (two random UUIDs: 244
        // random bits) and the list of their units.
        diesel::sql_query(
            "CREATE TEMP TABLE launch_owners ON COMMIT DROP AS
             SELECT r.contact_email AS email, min(r.account_id) AS account_id,
                    replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') AS token,
                    string_agg(m.brand || ' ' || m.name || ', serial ' || u.serial, E'\\n'
                               ORDER BY m.gtin, u.serial_key) AS units
             FROM launch_affected a
             JOIN registrations r ON r.unit_id = a.unit_id AND r.status = 'active'
             JOIN units u ON u.id = a.unit_id
             JOIN product_models m ON m.id = u.model_id
             GROUP BY r.contact_email",
        )
        .execute(conn)
        .await?;
        let link = format!("{base_url}/recalls/{code}/ack?t=");
        let notices = diesel::sql_query(
            "WITH sent AS (
                 INSERT INTO outbox (kind, to_address, subject, body_text, body_html)
                 SELECT 'recall_notice', o.email, $2,
                        replace(replace($3, '%%UNITS%%', o.units), '%%LINK%%', $5 || o.token),
                        replace(replace($4, '%%UNITS%%',
                            replace(replace(replace(replace(replace(replace(o.units,
                                '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '\"', '&quot;'),
                                '''', '&#39;'), E'\\n', '<br>')),
                            '%%LINK%%', $5 || o.token)
                 FROM launch_owners o
                 RETURNING id, to_address)
             INSERT INTO recall_notices (campaign_id, account_id, contact_email, token_hash, outbox_id)
             SELECT $1, o.account_id, o.email, sha256(convert_to(o.token, 'UTF8')), s.id
             FROM sent s JOIN launch_owners o ON o.email = s.to_address",
        )
        .bind::<BigInt, _>(campaign_id)
        .bind::<Text, _>(&mail.subject)
        .bind::<Text, _>(&mail.text)
        .bind::<Text, _>(&mail.html)
        .bind::<Text, _>(&link)
        .execute(conn)
        .await? as i64;
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
                 SELECT $1, u.id, u.lot_id,
                        CASE WHEN n.id IS NULL THEN 'unreachable' ELSE 'notified' END, n.id
                 FROM launch_affected a
                 JOIN units u ON u.id = a.unit_id
                 LEFT JOIN registrations r ON r.unit_id = a.unit_id AND r.status = 'active'
                 LEFT JOIN recall_notices n ON n.campaign_id = $1 AND n.contact_email = r.contact_email
                 RETURNING notice_id)
             SELECT count(*) AS affected, count(notice_id) AS notified FROM ins",
        )
        .bind::<BigInt, _>(campaign_id)
        .get_result(conn)
        .await?;
        let (affected, notified_units) = (counts.affected, counts.notified);
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
            affected,
            notified_units,
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

/// A unit's recall campaigns as the lookup shows them.
#[derive(Debug, Clone, QueryableByName)]
pub struct UnitRecall {
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

/// The launched or closed campaigns a unit is in.
pub async fn of_unit(
    conn: &mut AsyncPgConnection,
    unit_id: i64,
) -> diesel::QueryResult<Vec<UnitRecall>> {
    diesel::sql_query(
        "SELECT c.code, c.title, c.what_to_do, c.remedy_available, ru.remedied_on
         FROM recall_units ru JOIN recall_campaigns c ON c.id = ru.campaign_id
         WHERE ru.unit_id = $1 AND c.status IN ('launched', 'closed')
         ORDER BY c.launched_at DESC",
    )
    .bind::<BigInt, _>(unit_id)
    .load(conn)
    .await
}

/// Queues the second notice to every owner who has not acknowledged within their campaign's
/// `second_notice_days` (launched campaigns only): the first mail again, headed "Second
/// notice", with the same link. Set-based per campaign, in batches, each owner once (the
/// notice row is locked and marked in the statement that queues the mail). Returns how many.
pub async fn send_second_notices(conn: &mut AsyncPgConnection) -> diesel::QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let campaigns: Vec<Id> =
        diesel::sql_query("SELECT id FROM recall_campaigns WHERE status = 'launched'")
            .load(conn)
            .await?;
    let mut queued = 0;
    for c in campaigns {
        loop {
            // One campaign at a time: an address is unique within it, so the queued mail joins
            // back to its notice by address.
            let n = diesel::sql_query(
                "WITH due AS (
                     SELECT n.id, o.to_address, o.subject, o.body_text, o.body_html
                     FROM recall_notices n
                     JOIN recall_campaigns c ON c.id = n.campaign_id
                     JOIN outbox o ON o.id = n.outbox_id
                     WHERE n.campaign_id = $1 AND n.acknowledged_at IS NULL
                       AND n.second_outbox_id IS NULL
                       AND n.created_at < now() - make_interval(days => c.second_notice_days)
                     ORDER BY n.id LIMIT 5000
                     FOR UPDATE OF n SKIP LOCKED),
                 sent AS (
                     INSERT INTO outbox (kind, to_address, subject, body_text, body_html)
                     SELECT 'recall_second_notice', to_address, 'Second notice: ' || subject,
                            'We have not heard from you about this safety recall, so we write again.' || E'\\n\\n' || body_text,
                            replace(body_html, '<p style=\"margin:0 0 1rem\">Hello,</p>',
                                '<p style=\"margin:0 0 1rem\">Hello,</p><p style=\"margin:0 0 1rem\"><strong>We have not heard from you about this safety recall, so we write again.</strong></p>')
                     FROM due
                     RETURNING id, to_address)
                 UPDATE recall_notices n SET second_outbox_id = s.id
                 FROM due d JOIN sent s ON s.to_address = d.to_address
                 WHERE n.id = d.id",
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
