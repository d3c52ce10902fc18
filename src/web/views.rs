//! Page structs (one per template) and the small presentation helpers they share.

use askama::Template;
use chrono::NaiveDate;

use crate::db::catalogue::ProductModel;
use crate::db::lookup::UnitMatch;
use crate::domain::warranty::{StartBasis, WarrantyStatus};

pub fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// What a customer typed, kept so a failed form shows it again.
#[derive(Debug, Default, Clone)]
pub struct LookupForm {
    pub serial: String,
    pub gtin: String,
    pub serial_error: Option<String>,
    pub gtin_error: Option<String>,
}

#[derive(Template)]
#[template(path = "public/home.html")]
pub struct HomePage {
    pub form: LookupForm,
    pub models: Vec<ModelSummary>,
}

#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub gtin: String,
    pub name: String,
    pub brand: String,
    pub model_number: String,
    pub serial_hint: String,
    pub format: Option<String>,
}

impl From<&ProductModel> for ModelSummary {
    fn from(m: &ProductModel) -> Self {
        ModelSummary {
            gtin: m.gtin.clone(),
            name: m.name.clone(),
            brand: m.brand.clone(),
            model_number: m.model_number.clone(),
            serial_hint: m.serial_hint.clone(),
            format: m
                .format()
                .map(|f| format!("{} (for example {})", f.describe(), f.example())),
        }
    }
}

pub struct WarrantyView {
    pub code: &'static str,
    pub headline: String,
    pub detail: String,
}

impl WarrantyView {
    /// The status in a few words, for lists.
    pub fn short(status: &WarrantyStatus) -> String {
        match *status {
            WarrantyStatus::Active { ends_on, .. } => {
                format!("under warranty until {}", long_date(ends_on))
            }
            WarrantyStatus::Expired { ended_on, .. } => {
                format!("warranty expired on {}", long_date(ended_on))
            }
            WarrantyStatus::NotStarted { starts_on, .. } => {
                format!("warranty starts on {}", long_date(starts_on))
            }
            WarrantyStatus::Unknown => "warranty dates unknown".into(),
        }
    }

    pub fn new(status: WarrantyStatus, basis: Option<StartBasis>, model: &ProductModel) -> Self {
        let terms = model.terms();
        let mut term = format!(
            "This model has a {}-month warranty, counted {}.",
            terms.months,
            terms.start_rule.describe(terms.grace_days as i32)
        );
        if basis == Some(StartBasis::ManufacturePlusGrace) {
            term.push_str(
                " We have no sale date for this unit, so these dates are counted from its manufacture. \
                 If you bought it later, your warranty runs from your purchase date: keep your receipt.",
            );
        }
        let (headline, detail) = match status {
            WarrantyStatus::Active { ends_on, .. } => (
                format!("Under warranty until {}", long_date(ends_on)),
                format!("{term} If it develops a fault before then, the repair is covered."),
            ),
            WarrantyStatus::Expired { ended_on, .. } => (
                format!("Warranty expired on {}", long_date(ended_on)),
                format!(
                    "{term} Repairs are still possible, at a cost; contact support for a quote."
                ),
            ),
            WarrantyStatus::NotStarted { starts_on, .. } => (
                "Warranty not started yet".to_owned(),
                format!(
                    "{term} Its warranty starts on {} at the latest.",
                    long_date(starts_on)
                ),
            ),
            WarrantyStatus::Unknown => (
                "Warranty status unknown".to_owned(),
                format!("{term} We have no date to count it from."),
            ),
        };
        WarrantyView {
            code: status.code(),
            headline,
            detail,
        }
    }
}

#[derive(Template)]
#[template(path = "public/unit.html")]
pub struct UnitPage {
    pub serial: String,
    pub gtin: String,
    pub product_name: String,
    pub brand: String,
    pub model_number: String,
    pub lot: Option<LotView>,
    pub warranty: WarrantyView,
    /// Set when the scanned code names a different lot than our records.
    pub lot_note: Option<String>,
    pub recall: RecallView,
}

/// The recall part of a lookup answer (PRODUCT.md §3: no open recall / recall open: remedy
/// available / remedy not yet available / remedied on DATE).
pub struct RecallView {
    /// `none`, `open`, `remedy_not_yet_available` or `remedied`.
    pub code: &'static str,
    pub headline: String,
    pub detail: String,
    /// (code, title, what to do) of each campaign still open for this unit.
    pub campaigns: Vec<(String, String, String)>,
}

impl RecallView {
    pub fn new(recalls: &[crate::db::recalls::UnitRecall]) -> Self {
        use crate::domain::recall::LookupRecall;
        let state = LookupRecall::of(
            &recalls
                .iter()
                .map(|r| (r.remedy_available, r.remedied_on))
                .collect::<Vec<_>>(),
        );
        let campaigns = recalls
            .iter()
            .filter(|r| r.remedied_on.is_none())
            .map(|r| (r.code.clone(), r.title.clone(), r.what_to_do.clone()))
            .collect();
        let (headline, detail) = match &state {
            LookupRecall::None => (
                "Safety recall: no open recall".to_owned(),
                "This unit is not affected by any product safety recall. If that changes we tell registered owners directly.".to_owned(),
            ),
            LookupRecall::Open { remedy_available: true } => (
                "Safety recall: recall open — remedy available".to_owned(),
                "This unit is affected by a product safety recall. Do what the notice says now, and get the free remedy.".to_owned(),
            ),
            LookupRecall::Open { remedy_available: false } => (
                "Safety recall: recall open — remedy not yet available".to_owned(),
                "This unit is affected by a product safety recall. Do what the notice says now; the remedy is not available yet, and registered owners are told as soon as it is.".to_owned(),
            ),
            LookupRecall::Remedied { on } => (
                format!("Safety recall: remedied on {}", long_date(*on)),
                "This unit was affected by a product safety recall and has been remedied.".to_owned(),
            ),
        };
        RecallView {
            code: state.code(),
            headline,
            detail,
            campaigns,
        }
    }
}

pub struct LotView {
    pub code: String,
    pub produced: String,
    pub expiry: Option<String>,
}

impl UnitPage {
    pub fn new(
        m: &UnitMatch,
        today: NaiveDate,
        scanned_lot: Option<&str>,
        recalls: &[crate::db::recalls::UnitRecall],
    ) -> Self {
        let lot = m.lot.as_ref().map(|l| LotView {
            code: l.code.clone(),
            produced: long_date(l.production_date),
            expiry: l.expiry_date.map(long_date),
        });
        let lot_note = match (scanned_lot, &m.lot) {
            (Some(s), Some(l)) if s != l.code => Some(format!(
                "The code you scanned says lot {s}, but our records for this serial say lot {}. If the label looks altered, contact support.",
                l.code
            )),
            _ => None,
        };
        UnitPage {
            serial: m.unit.serial.clone(),
            gtin: m.model.gtin.clone(),
            product_name: m.model.name.clone(),
            brand: m.model.brand.clone(),
            model_number: m.model.model_number.clone(),
            lot,
            warranty: WarrantyView::new(
                m.warranty(today),
                m.model.terms().start(&m.dates()).map(|(_, b)| b),
                &m.model,
            ),
            lot_note,
            recall: RecallView::new(recalls),
        }
    }
}

#[derive(Template)]
#[template(path = "public/choose.html")]
pub struct ChooserPage {
    pub serial: String,
    pub models: Vec<ModelSummary>,
}

#[derive(Template)]
#[template(path = "public/unknown.html")]
pub struct UnknownPage {
    pub form: LookupForm,
    /// Set when the lookup named a GTIN: only that model's hints are shown.
    pub model: Option<ModelSummary>,
    pub gtin_unknown: bool,
    pub models: Vec<ModelSummary>,
}

#[derive(Template)]
#[template(path = "public/model.html")]
pub struct ModelPage {
    pub model: ModelSummary,
    /// The picture's address, when the model has one.
    pub picture: Option<String>,
    pub description: String,
    pub warranty_terms: String,
    /// The recalls in force for this model: (code, heading).
    pub recalls: Vec<(String, String)>,
    pub form: LookupForm,
}
