//! The warranty engine: when a unit's warranty starts and ends, and what that means today.
//!
//! Dates are calendar dates. The warranty covers `start ..= ends_on`, where `ends_on` is the day
//! before `start + term months` (month arithmetic clamps to the month's end, so a warranty that
//! starts on 31 January with a one-month term ends on 27 or 28 February).

use chrono::{Days, Months, NaiveDate};

/// Which date starts the clock, per product model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRule {
    /// The sale date, else the owner's registered purchase date, else manufacture + grace.
    Sale,
    /// Always the manufacture date (no grace).
    Manufacture,
}

impl StartRule {
    pub fn as_str(self) -> &'static str {
        match self {
            StartRule::Sale => "sale",
            StartRule::Manufacture => "manufacture",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sale" => Some(StartRule::Sale),
            "manufacture" => Some(StartRule::Manufacture),
            _ => None,
        }
    }

    pub fn describe(self, grace_days: i32) -> String {
        match self {
            StartRule::Sale => format!(
                "from the date of sale (or the purchase date you register); if neither is known, from {grace_days} days after manufacture"
            ),
            StartRule::Manufacture => "from the date of manufacture".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarrantyTerms {
    pub months: u32,
    pub start_rule: StartRule,
    pub grace_days: u32,
}

/// The dates known about one unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitDates {
    pub sold_on: Option<NaiveDate>,
    pub purchased_on: Option<NaiveDate>,
    pub manufactured_on: Option<NaiveDate>,
}

/// Which known date the warranty is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartBasis {
    Sale,
    Purchase,
    /// No sale or purchase date is known: manufacture date plus the model's grace period.
    ManufacturePlusGrace,
    Manufacture,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarrantyStatus {
    Active {
        started_on: NaiveDate,
        ends_on: NaiveDate,
    },
    Expired {
        started_on: NaiveDate,
        ended_on: NaiveDate,
    },
    NotStarted {
        starts_on: NaiveDate,
        ends_on: NaiveDate,
    },
    /// No date is known to start the warranty from.
    Unknown,
}

impl WarrantyStatus {
    /// The JSON/API name of the status.
    pub fn code(&self) -> &'static str {
        match self {
            WarrantyStatus::Active { .. } => "active",
            WarrantyStatus::Expired { .. } => "expired",
            WarrantyStatus::NotStarted { .. } => "not_started",
            WarrantyStatus::Unknown => "unknown",
        }
    }

    pub fn ends_on(&self) -> Option<NaiveDate> {
        match *self {
            WarrantyStatus::Active { ends_on, .. } | WarrantyStatus::NotStarted { ends_on, .. } => {
                Some(ends_on)
            }
            WarrantyStatus::Expired { ended_on, .. } => Some(ended_on),
            WarrantyStatus::Unknown => None,
        }
    }

    /// The end date, when a warranty reminder is due on the day this status was computed for:
    /// the warranty is running and ends within [`REMINDER_DAYS_BEFORE_END`] days
    /// (`end − 30 days ≤ today ≤ end`). A reminder missed on its first day (the job did not run,
    /// or the product was registered late) is still due on every later day until the end.
    pub fn reminder_due(&self, today: NaiveDate) -> Option<NaiveDate> {
        match *self {
            WarrantyStatus::Active { ends_on, .. }
                if ends_on
                    .checked_sub_days(Days::new(REMINDER_DAYS_BEFORE_END))
                    .is_some_and(|from| from <= today)
                    && today <= ends_on =>
            {
                Some(ends_on)
            }
            _ => None,
        }
    }
}

/// How long before its warranty ends an owner who asked for it is reminded (issue 5: "an
/// optional mail 30 days before warranty ends, sent once").
pub const REMINDER_DAYS_BEFORE_END: u64 = 30;

/// What changes a unit's warranty beyond its model's terms: extensions granted by an admin (per
/// unit or per lot, added up) and the remaining warranty inherited from the unit it replaced.
/// Nothing here ever shortens a warranty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adjustments {
    /// Months added to the term (the sum of every extension in months).
    pub extra_months: u32,
    /// The latest absolute end date granted, if any.
    pub extended_to: Option<NaiveDate>,
    /// Inherited from the replaced unit: (the day of the replacement, the replaced unit's end).
    pub inherited: Option<(NaiveDate, NaiveDate)>,
}

/// An extension an admin grants: extra months or an absolute end date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    Months(u32),
    Until(NaiveDate),
}

impl Extension {
    /// Reads the form: exactly one of `months` (1 to 120) and `until` (a date after today).
    /// Errors are (field, message).
    pub fn parse(
        months: &str,
        until: &str,
        today: NaiveDate,
    ) -> Result<Self, (&'static str, String)> {
        match (months.trim(), until.trim()) {
            ("", "") => Err((
                "extra_months",
                "give either a number of extra months or a new end date".into(),
            )),
            (m, "") => match m.parse::<u32>() {
                Ok(n) if (1..=120).contains(&n) => Ok(Extension::Months(n)),
                _ => Err((
                    "extra_months",
                    "extra months is a whole number from 1 to 120".into(),
                )),
            },
            ("", u) => match NaiveDate::parse_from_str(u, "%Y-%m-%d") {
                Ok(d) if d > today => Ok(Extension::Until(d)),
                Ok(d) => Err(("ends_on", format!("{d} is not in the future"))),
                Err(_) => Err((
                    "ends_on",
                    "the end date is a date in the form YYYY-MM-DD".into(),
                )),
            },
            _ => Err((
                "ends_on",
                "give extra months or a new end date, not both".into(),
            )),
        }
    }
}

/// The last day covered by a term of `months` starting on `start`.
pub fn end_date(start: NaiveDate, months: u32) -> Option<NaiveDate> {
    start.checked_add_months(Months::new(months))?.pred_opt()
}

impl WarrantyTerms {
    pub fn start_date(&self, dates: &UnitDates) -> Option<NaiveDate> {
        self.start(dates).map(|(d, _)| d)
    }

    /// The start date and which known date it came from.
    pub fn start(&self, dates: &UnitDates) -> Option<(NaiveDate, StartBasis)> {
        let from_manufacture = |grace: u32| {
            dates
                .manufactured_on
                .and_then(|m| m.checked_add_days(Days::new(grace.into())))
        };
        match self.start_rule {
            StartRule::Sale => dates
                .sold_on
                .map(|d| (d, StartBasis::Sale))
                .or(dates.purchased_on.map(|d| (d, StartBasis::Purchase)))
                .or_else(|| {
                    from_manufacture(self.grace_days).map(|d| (d, StartBasis::ManufacturePlusGrace))
                }),
            StartRule::Manufacture => from_manufacture(0).map(|d| (d, StartBasis::Manufacture)),
        }
    }

    pub fn status(&self, dates: &UnitDates, today: NaiveDate) -> WarrantyStatus {
        self.status_with(dates, &Adjustments::default(), today)
    }

    /// The covered period, `start ..= end`, with extensions and inheritance applied: the term
    /// plus every extra month, or the latest absolute end date, or the inherited end, whichever
    /// is last. A replacement whose own start is unknown starts on the day it replaced the old
    /// unit.
    pub fn period(&self, dates: &UnitDates, adj: &Adjustments) -> Option<(NaiveDate, NaiveDate)> {
        let own = self.start_date(dates);
        let start = own.or(adj.inherited.map(|(from, _)| from))?;
        let term = own.and_then(|s| end_date(s, self.months.checked_add(adj.extra_months)?));
        let end = [term, adj.extended_to, adj.inherited.map(|(_, end)| end)]
            .into_iter()
            .flatten()
            .max()?;
        Some((start, end.max(start.pred_opt()?)))
    }

    pub fn status_with(
        &self,
        dates: &UnitDates,
        adj: &Adjustments,
        today: NaiveDate,
    ) -> WarrantyStatus {
        let Some((start, end)) = self.period(dates, adj) else {
            return WarrantyStatus::Unknown;
        };
        if today < start {
            WarrantyStatus::NotStarted {
                starts_on: start,
                ends_on: end,
            }
        } else if today <= end {
            WarrantyStatus::Active {
                started_on: start,
                ends_on: end,
            }
        } else {
            WarrantyStatus::Expired {
                started_on: start,
                ended_on: end,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const SALE_24: WarrantyTerms = WarrantyTerms {
        months: 24,
        start_rule: StartRule::Sale,
        grace_days: 90,
    };

    #[test]
    fn start_rule_prefers_sale_then_purchase_then_manufacture_plus_grace() {
        let all = UnitDates {
            sold_on: Some(d(2025, 3, 1)),
            purchased_on: Some(d(2025, 4, 1)),
            manufactured_on: Some(d(2025, 1, 1)),
        };
        assert_eq!(SALE_24.start_date(&all), Some(d(2025, 3, 1)));
        assert_eq!(
            SALE_24.start_date(&UnitDates {
                sold_on: None,
                ..all
            }),
            Some(d(2025, 4, 1))
        );
        assert_eq!(
            SALE_24.start_date(&UnitDates {
                manufactured_on: Some(d(2025, 1, 1)),
                ..Default::default()
            }),
            Some(d(2025, 4, 1))
        );
        let mfg = WarrantyTerms {
            start_rule: StartRule::Manufacture,
            ..SALE_24
        };
        assert_eq!(mfg.start_date(&all), Some(d(2025, 1, 1)));
        assert_eq!(SALE_24.start_date(&UnitDates::default()), None);
        let fallback = UnitDates {
            manufactured_on: Some(d(2025, 1, 1)),
            ..Default::default()
        };
        assert_eq!(
            SALE_24.start(&fallback),
            Some((d(2025, 4, 1), StartBasis::ManufacturePlusGrace))
        );
        assert_eq!(SALE_24.start(&all), Some((d(2025, 3, 1), StartBasis::Sale)));
        assert_eq!(
            mfg.start(&all),
            Some((d(2025, 1, 1), StartBasis::Manufacture))
        );
    }

    #[test]
    fn status_boundaries() {
        let dates = UnitDates {
            sold_on: Some(d(2024, 1, 15)),
            ..Default::default()
        };
        assert_eq!(
            SALE_24.status(&dates, d(2024, 1, 14)),
            WarrantyStatus::NotStarted {
                starts_on: d(2024, 1, 15),
                ends_on: d(2026, 1, 14)
            }
        );
        assert_eq!(
            SALE_24.status(&dates, d(2024, 1, 15)),
            WarrantyStatus::Active {
                started_on: d(2024, 1, 15),
                ends_on: d(2026, 1, 14)
            }
        );
        assert_eq!(
            SALE_24.status(&dates, d(2026, 1, 14)),
            WarrantyStatus::Active {
                started_on: d(2024, 1, 15),
                ends_on: d(2026, 1, 14)
            }
        );
        assert_eq!(
            SALE_24.status(&dates, d(2026, 1, 15)),
            WarrantyStatus::Expired {
                started_on: d(2024, 1, 15),
                ended_on: d(2026, 1, 14)
            }
        );
        assert_eq!(
            SALE_24.status(&UnitDates::default(), d(2026, 1, 15)),
            WarrantyStatus::Unknown
        );
    }

    #[test]
    fn month_ends_and_leap_days() {
        assert_eq!(end_date(d(2025, 1, 31), 1), Some(d(2025, 2, 27)));
        assert_eq!(end_date(d(2024, 1, 31), 1), Some(d(2024, 2, 28)));
        assert_eq!(end_date(d(2024, 2, 29), 12), Some(d(2025, 2, 27)));
        assert_eq!(end_date(d(2024, 2, 29), 48), Some(d(2028, 2, 28)));
        assert_eq!(end_date(d(2025, 3, 1), 0), Some(d(2025, 2, 28)));
    }

    #[test]
    fn a_reminder_is_due_from_thirty_days_before_the_end_to_the_end() {
        // Sold on 29 February 2024: 24 months later is 28 February 2026 (clamped), so the
        // warranty ends on 27 February and the reminder is due from 28 January.
        let dates = UnitDates {
            sold_on: Some(d(2024, 2, 29)),
            ..Default::default()
        };
        let due = |today| SALE_24.status(&dates, today).reminder_due(today);
        assert_eq!(due(d(2026, 1, 27)), None, "31 days before");
        assert_eq!(due(d(2026, 1, 28)), Some(d(2026, 2, 27)), "30 days before");
        assert_eq!(due(d(2026, 2, 10)), Some(d(2026, 2, 27)));
        assert_eq!(due(d(2026, 2, 27)), Some(d(2026, 2, 27)), "the last day");
        assert_eq!(due(d(2026, 2, 28)), None, "expired");
        assert_eq!(due(d(2024, 2, 1)), None, "not started");
        assert_eq!(
            WarrantyStatus::Unknown.reminder_due(d(2026, 2, 1)),
            None,
            "unknown"
        );
        // A one-month term that has not started yet ends within 30 days, but is not running.
        let short = WarrantyTerms {
            months: 1,
            ..SALE_24
        };
        let later = UnitDates {
            sold_on: Some(d(2026, 3, 1)),
            ..Default::default()
        };
        assert_eq!(
            short
                .status(&later, d(2026, 2, 20))
                .reminder_due(d(2026, 2, 20)),
            None
        );
    }

    #[test]
    fn extensions_add_months_or_set_a_later_end_and_never_shorten() {
        let dates = UnitDates {
            sold_on: Some(d(2024, 1, 31)),
            ..Default::default()
        };
        let cases: [(Adjustments, NaiveDate); 6] = [
            (Adjustments::default(), d(2026, 1, 30)),
            (
                Adjustments {
                    extra_months: 1,
                    ..Default::default()
                },
                // 31 January + 25 months = 28 February 2026 (clamped), the day before is the end.
                d(2026, 2, 27),
            ),
            (
                Adjustments {
                    extra_months: 12,
                    ..Default::default()
                },
                d(2027, 1, 30),
            ),
            (
                Adjustments {
                    extended_to: Some(d(2027, 6, 30)),
                    ..Default::default()
                },
                d(2027, 6, 30),
            ),
            (
                Adjustments {
                    extended_to: Some(d(2025, 1, 1)),
                    ..Default::default()
                },
                d(2026, 1, 30),
            ),
            (
                Adjustments {
                    extra_months: 6,
                    extended_to: Some(d(2026, 3, 1)),
                    ..Default::default()
                },
                d(2026, 7, 30),
            ),
        ];
        for (adj, end) in cases {
            assert_eq!(
                SALE_24.period(&dates, &adj),
                Some((d(2024, 1, 31), end)),
                "{adj:?}"
            );
        }
    }

    #[test]
    fn an_extension_is_months_or_a_future_end_date() {
        let today = d(2026, 6, 1);
        assert_eq!(Extension::parse("6", "", today), Ok(Extension::Months(6)));
        assert_eq!(
            Extension::parse("", "2027-01-31", today),
            Ok(Extension::Until(d(2027, 1, 31)))
        );
        for (m, u, field) in [
            ("", "", "extra_months"),
            ("0", "", "extra_months"),
            ("121", "", "extra_months"),
            ("1.5", "", "extra_months"),
            ("", "2026-06-01", "ends_on"),
            ("", "31/01/2027", "ends_on"),
            ("3", "2027-01-31", "ends_on"),
        ] {
            assert_eq!(
                Extension::parse(m, u, today).unwrap_err().0,
                field,
                "{m:?} {u:?}"
            );
        }
    }

    #[test]
    fn a_replacement_inherits_the_remaining_warranty() {
        // Replaced on 2025-06-01; the old unit was covered until 2026-01-30.
        let adj = Adjustments {
            inherited: Some((d(2025, 6, 1), d(2026, 1, 30))),
            ..Default::default()
        };
        // The new unit has no sale date of its own: it is covered from the replacement.
        assert_eq!(
            SALE_24.period(&UnitDates::default(), &adj),
            Some((d(2025, 6, 1), d(2026, 1, 30)))
        );
        assert_eq!(
            SALE_24.status_with(&UnitDates::default(), &adj, d(2026, 1, 30)),
            WarrantyStatus::Active {
                started_on: d(2025, 6, 1),
                ends_on: d(2026, 1, 30)
            }
        );
        // Its own warranty, if it has a later end, wins.
        let own = UnitDates {
            sold_on: Some(d(2025, 6, 1)),
            ..Default::default()
        };
        assert_eq!(
            SALE_24.period(&own, &adj),
            Some((d(2025, 6, 1), d(2027, 5, 31)))
        );
    }

    #[test]
    fn extra_months_are_the_same_as_a_longer_term_on_every_day_of_four_years() {
        let mut day = d(2024, 1, 1);
        while day < d(2028, 1, 1) {
            let dates = UnitDates {
                sold_on: Some(day),
                ..Default::default()
            };
            for extra in [0u32, 1, 6, 12, 13] {
                let adj = Adjustments {
                    extra_months: extra,
                    ..Default::default()
                };
                let longer = WarrantyTerms {
                    months: 24 + extra,
                    ..SALE_24
                };
                assert_eq!(
                    SALE_24.period(&dates, &adj),
                    longer.period(&dates, &Adjustments::default()),
                    "{day} +{extra}"
                );
                let (_, end) = SALE_24.period(&dates, &adj).unwrap();
                assert_eq!(end, end_date(day, 24 + extra).unwrap());
            }
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn every_start_day_of_four_years_gives_a_covered_period_of_the_right_length() {
        // Exhaustive over 2024-2027 (one leap year) and terms 1..=36 months.
        let mut day = d(2024, 1, 1);
        while day < d(2028, 1, 1) {
            for months in 1..=36u32 {
                let end = end_date(day, months).unwrap();
                assert!(end >= day, "{day} +{months}");
                let next_start = day.checked_add_months(Months::new(months)).unwrap();
                assert_eq!(end.succ_opt().unwrap(), next_start);
                // Within 3 days of the same day-of-month, never more.
                let len = (next_start - day).num_days();
                assert!((28 * months as i64..=31 * months as i64).contains(&len));
            }
            day = day.succ_opt().unwrap();
        }
    }
}
