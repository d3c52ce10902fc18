//! The serial lookup: every unit whose serial matches what the customer gave, on any model.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::catalogue::{Lot, ProductModel};
use super::schema::{lots, product_models, units};
use super::warranty::{LotWarranty, UnitWarranty, adjustments};
use crate::domain::SerialNumber;
use crate::domain::warranty::{UnitDates, WarrantyStatus};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = units)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UnitRow {
    pub id: i64,
    pub serial: String,
    pub serial_key: String,
    pub status: String,
    pub manufactured_on: Option<NaiveDate>,
    pub sold_on: Option<NaiveDate>,
}

/// One unit that matches a looked-up serial, with its model and lot. Carries nothing about an
/// owner: lookup answers never reveal one.
#[derive(Debug, Clone)]
pub struct UnitMatch {
    pub unit: UnitRow,
    pub model: ProductModel,
    pub lot: Option<Lot>,
    pub unit_warranty: Option<UnitWarranty>,
    pub lot_warranty: Option<LotWarranty>,
}

/// What the lookup's queries load per unit.
type MatchRow = (
    UnitRow,
    ProductModel,
    Option<Lot>,
    UnitWarranty,
    Option<LotWarranty>,
);

/// The columns of a [`MatchRow`], for every query that loads matches.
type MatchColumns = (
    AsSelect<UnitRow, Pg>,
    AsSelect<ProductModel, Pg>,
    AsSelect<Option<Lot>, Pg>,
    AsSelect<UnitWarranty, Pg>,
    AsSelect<Option<LotWarranty>, Pg>,
);

fn match_columns() -> MatchColumns {
    (
        UnitRow::as_select(),
        ProductModel::as_select(),
        Option::<Lot>::as_select(),
        UnitWarranty::as_select(),
        Option::<LotWarranty>::as_select(),
    )
}

impl UnitMatch {
    fn from_row((unit, model, lot, unit_warranty, lot_warranty): MatchRow) -> Self {
        UnitMatch {
            unit,
            model,
            lot,
            unit_warranty: Some(unit_warranty),
            lot_warranty,
        }
    }

    /// The units with these ids, in one query (for lists such as "My products").
    pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<Self>> {
        let rows: Vec<MatchRow> = units::table
            .inner_join(product_models::table)
            .left_join(lots::table)
            .filter(units::id.eq_any(ids))
            .select(match_columns())
            .load(conn)
            .await?;
        Ok(rows.into_iter().map(UnitMatch::from_row).collect())
    }

    /// All units whose serial is `serial` under their model's case rule, optionally on one GTIN.
    ///
    /// One indexed query (the serial as typed and in upper case) fetches the few candidates
    /// across models, their models taken from `catalogue` ([`UnitMatch::candidates_in`]); the
    /// case rule of each model is then applied here.
    pub async fn find(
        conn: &AsyncPgConnection,
        catalogue: &[ProductModel],
        serial: &SerialNumber,
        gtin: Option<&str>,
    ) -> QueryResult<Vec<Self>> {
        let candidates = Self::candidates_in(conn, catalogue, &Self::keys(serial)).await?;
        Ok(Self::pick(&candidates, serial, gtin)
            .into_iter()
            .cloned()
            .collect())
    }

    /// [`UnitMatch::find`] and the recalls of what it finds, both statements sent at once (one
    /// round trip on a connection of `db::readers`). The recalls are those of every unit stored
    /// under the serial's keys; take a match's own by its unit id.
    pub async fn find_with_recalls(
        conn: &AsyncPgConnection,
        catalogue: &[ProductModel],
        serial: &SerialNumber,
        gtin: Option<&str>,
    ) -> QueryResult<(Vec<Self>, Vec<super::recalls::UnitRecall>)> {
        let keys = Self::keys(serial);
        let (candidates, recalls) = futures_util::future::try_join(
            Self::candidates_in(conn, catalogue, &keys),
            super::recalls::of_serial_keys(conn, &keys),
        )
        .await?;
        let matches = Self::pick(&candidates, serial, gtin)
            .into_iter()
            .cloned()
            .collect();
        Ok((matches, recalls))
    }

    /// The keys a serial may be stored under: as typed, and folded to upper case.
    pub fn keys(serial: &SerialNumber) -> Vec<String> {
        let (typed, folded) = (serial.as_str().to_owned(), serial.folded());
        if typed == folded {
            vec![typed]
        } else {
            vec![typed, folded]
        }
    }

    /// Every unit stored under any of `keys` (for one lookup), in one indexed query, with each
    /// unit's model taken from `catalogue` (the models every process holds in memory, at most
    /// 30 s old, reloaded at once by its own edits) instead of joined: a lookup then reads and
    /// decodes the unit and its lot only. A model the catalogue does not hold yet is read from
    /// the database. [`UnitMatch::pick`] then chooses the lookup's matches.
    ///
    /// One serial has one or two keys, compared with `=`: with `= ANY($1)` PostgreSQL judged
    /// a generic plan costlier than one made for the array at hand and planned the statement
    /// again on every lookup (measured: planning took 73 % of the query's time).
    pub async fn candidates_in(
        conn: &AsyncPgConnection,
        catalogue: &[ProductModel],
        keys: &[String],
    ) -> QueryResult<Vec<Self>> {
        type Row = (UnitRow, i64, Option<Lot>, UnitWarranty, Option<LotWarranty>);
        let mut conn = conn;
        let base = || {
            units::table.left_join(lots::table).select((
                UnitRow::as_select(),
                units::model_id,
                Option::<Lot>::as_select(),
                UnitWarranty::as_select(),
                Option::<LotWarranty>::as_select(),
            ))
        };
        let rows: Vec<Row> = match keys {
            [one] => {
                base()
                    .filter(units::serial_key.eq(one))
                    .load(&mut conn)
                    .await?
            }
            [a, b] => {
                base()
                    .filter(units::serial_key.eq(a).or(units::serial_key.eq(b)))
                    .load(&mut conn)
                    .await?
            }
            many => {
                base()
                    .filter(units::serial_key.eq_any(many))
                    .load(&mut conn)
                    .await?
            }
        };
        let held = |id: i64| catalogue.iter().any(|m| m.id == id);
        let mut missing: Vec<i64> = rows.iter().map(|r| r.1).filter(|id| !held(*id)).collect();
        missing.sort_unstable();
        missing.dedup();
        let newer: Vec<ProductModel> = if missing.is_empty() {
            Vec::new()
        } else {
            product_models::table
                .filter(product_models::id.eq_any(&missing))
                .select(ProductModel::as_select())
                .load(&mut conn)
                .await?
        };
        Ok(rows
            .into_iter()
            .filter_map(|(unit, model_id, lot, unit_warranty, lot_warranty)| {
                // A unit's model exists (a foreign key; models are never deleted).
                let model = catalogue.iter().chain(&newer).find(|m| m.id == model_id)?;
                Some(UnitMatch {
                    unit,
                    model: model.clone(),
                    lot,
                    unit_warranty: Some(unit_warranty),
                    lot_warranty,
                })
            })
            .collect())
    }

    /// [`UnitMatch::candidates_in`] for a batch of up to a thousand lookups: the units alone in one
    /// indexed query, then their models and lots by id. Joined in one query, each model's row
    /// travelled (and was decoded) once per unit, and the planner merged with a scan of the
    /// whole `lots` index: at 10,000,000 units, 10 ms for 1,000 serials against 4.5 ms for
    /// the units alone.
    pub async fn candidates_many(
        conn: &AsyncPgConnection,
        keys: &[String],
    ) -> QueryResult<Vec<Self>> {
        let mut conn = conn;
        type Row = (UnitRow, i64, Option<i64>, UnitWarranty);
        let rows: Vec<Row> = units::table
            .filter(units::serial_key.eq_any(keys))
            .select((
                UnitRow::as_select(),
                units::model_id,
                units::lot_id,
                UnitWarranty::as_select(),
            ))
            .load(&mut conn)
            .await?;
        let mut model_ids: Vec<i64> = rows.iter().map(|r| r.1).collect();
        model_ids.sort_unstable();
        model_ids.dedup();
        let mut lot_ids: Vec<i64> = rows.iter().filter_map(|r| r.2).collect();
        lot_ids.sort_unstable();
        lot_ids.dedup();
        let models: HashMap<i64, ProductModel> = if model_ids.is_empty() {
            HashMap::new()
        } else {
            product_models::table
                .filter(product_models::id.eq_any(&model_ids))
                .select(ProductModel::as_select())
                .load(&mut conn)
                .await?
                .into_iter()
                .map(|m| (m.id, m))
                .collect()
        };
        let lots: HashMap<i64, (Lot, LotWarranty)> = if lot_ids.is_empty() {
            HashMap::new()
        } else {
            lots::table
                .filter(lots::id.eq_any(&lot_ids))
                .select((Lot::as_select(), LotWarranty::as_select()))
                .load::<(Lot, LotWarranty)>(&mut conn)
                .await?
                .into_iter()
                .map(|(l, w)| (l.id, (l, w)))
                .collect()
        };
        Ok(rows
            .into_iter()
            .filter_map(|(unit, model_id, lot_id, unit_warranty)| {
                // A unit's model exists (a foreign key; models are never deleted).
                let model = models.get(&model_id)?.clone();
                let lot = lot_id.and_then(|id| lots.get(&id));
                Some(UnitMatch {
                    unit,
                    model,
                    lot: lot.map(|(l, _)| l.clone()),
                    unit_warranty: Some(unit_warranty),
                    lot_warranty: lot.map(|(_, w)| *w),
                })
            })
            .collect())
    }

    /// The candidates that are `serial` under their model's case rule (and on `gtin`, when
    /// given), by brand and name.
    pub fn pick<'a>(
        candidates: impl IntoIterator<Item = &'a Self>,
        serial: &SerialNumber,
        gtin: Option<&str>,
    ) -> Vec<&'a Self> {
        let (typed, folded) = (serial.as_str(), serial.folded());
        let mut out: Vec<&UnitMatch> = candidates
            .into_iter()
            .filter(|c| {
                if c.model.serials_case_sensitive {
                    c.unit.serial == typed
                } else {
                    c.unit.serial_key == folded
                }
            })
            .filter(|c| gtin.is_none_or(|g| c.model.gtin == g))
            .collect();
        out.sort_by(|a, b| (&a.model.brand, &a.model.name).cmp(&(&b.model.brand, &b.model.name)));
        out
    }

    pub fn dates(&self) -> UnitDates {
        UnitDates {
            sold_on: self.unit.sold_on,
            purchased_on: self.unit_warranty.and_then(|w| w.purchased_on),
            manufactured_on: self
                .unit
                .manufactured_on
                .or(self.lot.as_ref().map(|l| l.production_date)),
        }
    }

    pub fn warranty(&self, today: NaiveDate) -> WarrantyStatus {
        let adj = adjustments(self.unit_warranty.as_ref(), self.lot_warranty.as_ref());
        self.model.terms().status_with(&self.dates(), &adj, today)
    }
}

/// Whether a unit with this id exists.
pub async fn unit_exists(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(units::table.filter(units::id.eq(id))))
        .get_result(conn)
        .await
}

/// Everything staff see about one unit: the unit with its model, lot and location, and its
/// history (its creation, from the row, then every event in order).
#[derive(Debug, Clone)]
pub struct UnitHistory {
    pub unit_id: i64,
    pub serial: String,
    pub status: String,
    pub manufactured_on: Option<NaiveDate>,
    pub sold_on: Option<NaiveDate>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
    pub model: ProductModel,
    pub lot: Option<Lot>,
    pub location: Option<String>,
    pub events: Vec<HistoryEvent>,
    pub unit_warranty: Option<UnitWarranty>,
    pub lot_warranty: Option<LotWarranty>,
}

#[derive(Debug, Clone)]
pub struct HistoryEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    pub kind: String,
    pub actor: String,
    pub location: Option<String>,
    pub reference: Option<String>,
    pub note: Option<String>,
}

type UnitHistoryRow = (
    i64,
    String,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
    chrono::DateTime<chrono::Utc>,
    String,
    ProductModel,
    Option<Lot>,
    Option<String>,
);
type HistoryEventRow = (
    chrono::DateTime<chrono::Utc>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl UnitHistory {
    /// The unit of the model with GTIN `gtin` (14 digits) whose serial is `serial` under that
    /// model's case rule.
    pub async fn find(
        conn: &mut AsyncPgConnection,
        gtin: &str,
        serial: &SerialNumber,
    ) -> QueryResult<Option<i64>> {
        let (typed, folded) = (serial.as_str(), serial.folded());
        units::table
            .inner_join(product_models::table)
            .filter(product_models::gtin.eq(gtin))
            .filter(
                units::serial_key
                    .eq(typed)
                    .and(product_models::serials_case_sensitive)
                    .or(units::serial_key
                        .eq(&folded)
                        .and(product_models::serials_case_sensitive.eq(false))),
            )
            .select(units::id)
            .first(conn)
            .await
            .optional()
    }

    pub async fn load(conn: &mut AsyncPgConnection, unit_id: i64) -> QueryResult<Option<Self>> {
        use super::schema::{locations, unit_events};
        let found: Option<UnitHistoryRow> = units::table
            .inner_join(product_models::table)
            .left_join(lots::table)
            .left_join(locations::table)
            .filter(units::id.eq(unit_id))
            .select((
                units::id,
                units::serial,
                units::status,
                units::manufactured_on,
                units::sold_on,
                units::created_at,
                units::created_by,
                ProductModel::as_select(),
                Option::<Lot>::as_select(),
                locations::code.nullable(),
            ))
            .first(conn)
            .await
            .optional()?;
        let Some((
            unit_id,
            serial,
            status,
            manufactured_on,
            sold_on,
            created_at,
            created_by,
            model,
            lot,
            location,
        )) = found
        else {
            return Ok(None);
        };
        let rows: Vec<HistoryEventRow> = unit_events::table
            .left_join(locations::table)
            .filter(unit_events::unit_id.eq(unit_id))
            .order((unit_events::occurred_at, unit_events::id))
            .select((
                unit_events::occurred_at,
                unit_events::kind,
                unit_events::actor,
                locations::code.nullable(),
                unit_events::reference,
                unit_events::note,
            ))
            .load(conn)
            .await?;
        let events = rows
            .into_iter()
            .map(
                |(at, kind, actor, location, reference, note)| HistoryEvent {
                    at,
                    kind,
                    actor,
                    location,
                    reference,
                    note,
                },
            )
            .collect();
        let (unit_warranty, lot_warranty) =
            super::warranty::of_unit(conn, unit_id, lot.as_ref().map(|l| l.id)).await?;
        Ok(Some(UnitHistory {
            unit_id,
            serial,
            status,
            manufactured_on,
            sold_on,
            created_at,
            created_by,
            model,
            lot,
            location,
            events,
            unit_warranty,
            lot_warranty,
        }))
    }

    /// The unit's warranty on `today`, from the same engine as the lookup.
    pub fn warranty(&self, today: NaiveDate) -> WarrantyStatus {
        let dates = UnitDates {
            sold_on: self.sold_on,
            purchased_on: self.unit_warranty.and_then(|w| w.purchased_on),
            manufactured_on: self
                .manufactured_on
                .or(self.lot.as_ref().map(|l| l.production_date)),
        };
        let adj = adjustments(self.unit_warranty.as_ref(), self.lot_warranty.as_ref());
        self.model.terms().status_with(&dates, &adj, today)
    }

    /// The warranty in one line for staff: status, dates and which date it counts from.
    pub fn warranty_text(&self, today: NaiveDate) -> String {
        use crate::domain::warranty::StartBasis;
        let dates = UnitDates {
            sold_on: self.sold_on,
            purchased_on: self.unit_warranty.and_then(|w| w.purchased_on),
            manufactured_on: self
                .manufactured_on
                .or(self.lot.as_ref().map(|l| l.production_date)),
        };
        let terms = self.model.terms();
        let adj = adjustments(self.unit_warranty.as_ref(), self.lot_warranty.as_ref());
        let Some((start, basis)) = terms.start(&dates) else {
            return match terms.period(&dates, &adj) {
                Some((from, end)) => {
                    format!("inherited from the unit it replaced: {from} to {end}")
                }
                None => "unknown: no sale, purchase or manufacture date is recorded".into(),
            };
        };
        let from = match basis {
            StartBasis::Sale => "the sale date",
            StartBasis::Purchase => "the purchase date",
            StartBasis::ManufacturePlusGrace => "manufacture plus the grace period",
            StartBasis::Manufacture => "the manufacture date",
        };
        let status = match terms.status_with(&dates, &adj, today) {
            WarrantyStatus::Active { ends_on, .. } => format!("active until {ends_on}"),
            WarrantyStatus::Expired { ended_on, .. } => format!("expired on {ended_on}"),
            WarrantyStatus::NotStarted { starts_on, .. } => format!("starts on {starts_on}"),
            WarrantyStatus::Unknown => "unknown".into(),
        };
        let mut extra = String::new();
        if adj.extra_months > 0 {
            extra.push_str(&format!(", extended by {} months", adj.extra_months));
        }
        if let Some(to) = adj.extended_to {
            extra.push_str(&format!(", extended to {to}"));
        }
        if let Some((_, end)) = adj.inherited {
            extra.push_str(&format!(", inherits cover to {end}"));
        }
        format!(
            "{status} ({} months from {from}, {start}{extra})",
            terms.months
        )
    }
}
