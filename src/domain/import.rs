//! Rows of a unit import file, checked one by one before anything touches the database.
//!
//! Columns (header required, any order, names case-insensitive): `gtin`, `serial` (required),
//! `lot`, `manufactured_on` (YYYY-MM-DD), `location`, `status` (optional).

use chrono::NaiveDate;

use super::gtin::Gtin;
use super::serial::{SerialNumber, check_cs82};

pub const UNIT_STATUSES: [&str; 8] = [
    "manufactured",
    "in_stock",
    "shipped",
    "sold",
    "registered",
    "returned",
    "replaced",
    "scrapped",
];

/// One problem in an import file: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub column: String,
    pub reason: String,
}

/// A checked row, ready for the staging table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRecord {
    pub line: u64,
    pub gtin: String,
    pub serial: String,
    pub lot: Option<String>,
    pub manufactured_on: Option<NaiveDate>,
    pub location: Option<String>,
    pub status: Option<String>,
}

/// Where each known column is in the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitColumns {
    gtin: usize,
    serial: usize,
    lot: Option<usize>,
    manufactured_on: Option<usize>,
    location: Option<usize>,
    status: Option<usize>,
}

impl UnitColumns {
    /// Reads the header; a missing required column or an unknown one is an error on line 1.
    pub fn from_header(header: &[&str]) -> Result<Self, Vec<RowError>> {
        let c = read_header(
            header,
            &["gtin", "serial"],
            &["lot", "manufactured_on", "location", "status"],
        )?;
        Ok(UnitColumns {
            gtin: c[0].unwrap_or(0),
            serial: c[1].unwrap_or(0),
            lot: c[2],
            manufactured_on: c[3],
            location: c[4],
            status: c[5],
        })
    }

    /// Checks one data row.
    pub fn parse(
        &self,
        line: u64,
        fields: &[&str],
        width: usize,
    ) -> Result<UnitRecord, Vec<RowError>> {
        if fields.len() != width {
            return Err(vec![RowError {
                line,
                column: String::new(),
                reason: format!("has {} fields; the header has {width}", fields.len()),
            }]);
        }
        let get = |i: Option<usize>| i.map(|i| fields[i]);
        UnitFields {
            gtin: fields[self.gtin],
            serial: fields[self.serial],
            lot: get(self.lot),
            manufactured_on: get(self.manufactured_on),
            location: get(self.location),
            status: get(self.status),
        }
        .check(line)
    }
}

/// A unit as sent, from a line of an import file or an item of the token API: every field as
/// text, the optional ones absent or blank when not given.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitFields<'a> {
    pub gtin: &'a str,
    pub serial: &'a str,
    pub lot: Option<&'a str>,
    pub manufactured_on: Option<&'a str>,
    pub location: Option<&'a str>,
    pub status: Option<&'a str>,
}

impl UnitFields<'_> {
    /// The rules every new unit meets, however it arrives: a GTIN with its check digit, a
    /// serial and a lot in GS1 character set 82, a date, a location code, a known status. Each
    /// problem names its column.
    pub fn check(&self, line: u64) -> Result<UnitRecord, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut err = |column: &str, reason: String| {
            errors.push(RowError {
                line,
                column: column.into(),
                reason,
            })
        };
        fn get(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let gtin = match Gtin::parse_exact(self.gtin.trim()) {
            Ok(g) => g.as_string(),
            Err(e) => {
                err("gtin", e.to_string());
                String::new()
            }
        };
        let serial = match SerialNumber::parse(self.serial.trim()) {
            Ok(s) => s.to_string(),
            Err(e) => {
                err("serial", e.to_string());
                String::new()
            }
        };
        let lot = get(self.lot).map(str::to_owned);
        if let Some(l) = &lot
            && let Err(e) = check_cs82(l)
        {
            err("lot", e.to_string().replace("serial number", "lot code"));
        }
        let manufactured_on = match get(self.manufactured_on) {
            None => None,
            Some(d) => match parse_date(d) {
                Ok(d) => Some(d),
                Err(e) => {
                    err("manufactured_on", e);
                    None
                }
            },
        };
        let location = get(self.location).map(|l| l.to_ascii_uppercase());
        if let Some(l) = &location
            && (l.len() > 32
                || !l
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            err(
                "location",
                format!("“{}” is not a location code", shorten(l)),
            );
        }
        let status = get(self.status).map(|s| s.to_ascii_lowercase());
        if let Some(s) = &status
            && !UNIT_STATUSES.contains(&s.as_str())
        {
            err(
                "status",
                format!(
                    "“{}” is not a unit status ({})",
                    shorten(s),
                    UNIT_STATUSES.join(", ")
                ),
            );
        }
        if errors.is_empty() {
            Ok(UnitRecord {
                line,
                gtin,
                serial,
                lot,
                manufactured_on,
                location,
                status,
            })
        } else {
            Err(errors)
        }
    }
}

/// Finds each named column in a header line (names trimmed, case-insensitive, a leading
/// byte-order mark ignored): one position per name, `required` first, then `optional`. A
/// missing required column or an unknown one is an error on line 1.
pub fn read_header(
    header: &[&str],
    required: &[&str],
    optional: &[&str],
) -> Result<Vec<Option<usize>>, Vec<RowError>> {
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let all: Vec<&str> = required.iter().chain(optional).copied().collect();
    let mut errors = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if !all.contains(&n.as_str()) {
            errors.push(RowError {
                line: 1,
                column: shorten(n),
                reason: format!(
                    "unknown column {} “{}”; expected {}",
                    i + 1,
                    shorten(n),
                    all.join(", ")
                ),
            });
        }
    }
    let found: Vec<Option<usize>> = all
        .iter()
        .map(|want| names.iter().position(|h| h == want))
        .collect();
    for (want, at) in required.iter().zip(&found) {
        if at.is_none() {
            errors.push(RowError {
                line: 1,
                column: (*want).into(),
                reason: format!("the header has no “{want}” column"),
            });
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// A calendar date in the form YYYY-MM-DD.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("“{}” is not a date in the form YYYY-MM-DD", shorten(s)))
}

/// At most 40 characters of a value, for messages (a 1 MB field must not become a 1 MB report).
pub fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(40).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_rows_are_checked_with_line_and_column() {
        assert!(
            UnitColumns::from_header(&["serial", "lot"]).unwrap_err()[0]
                .reason
                .contains("no “gtin” column")
        );
        assert!(
            UnitColumns::from_header(&["gtin", "serial", "colour"]).unwrap_err()[0]
                .reason
                .contains("unknown column 3")
        );
        let cols = UnitColumns::from_header(&[
            "\u{feff}GTIN",
            "Serial",
            "lot",
            "manufactured_on",
            "status",
        ])
        .unwrap();
        let ok = cols
            .parse(
                2,
                &[
                    "09506000134352",
                    "SN0001",
                    "ABC123",
                    "2025-01-15",
                    "in_stock",
                ],
                5,
            )
            .unwrap();
        assert_eq!(ok.gtin, "09506000134352");
        assert_eq!(ok.manufactured_on, NaiveDate::from_ymd_opt(2025, 1, 15));
        let bad = cols
            .parse(
                3,
                &["09506000134353", "SN 1", "A#", "15/01/2025", "lost"],
                5,
            )
            .unwrap_err();
        let cols_hit: Vec<&str> = bad.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(
            cols_hit,
            ["gtin", "serial", "lot", "manufactured_on", "status"]
        );
        assert!(bad.iter().all(|e| e.line == 3));
        let short = cols.parse(4, &["09506000134352"], 5).unwrap_err();
        assert!(short[0].reason.contains("has 1 fields; the header has 5"));
        let huge = "x".repeat(1_000_000);
        let e = cols
            .parse(5, &["09506000134352", &huge, "", "", ""], 5)
            .unwrap_err();
        assert!(e[0].reason.len() < 200, "a huge field gives a short reason");
    }

    mod properties {
        use super::*;
        use crate::domain::gtin::gs1_check_digit;
        use proptest::prelude::*;

        /// A GTIN-14 with its check digit, from 13 digits.
        fn gtin_of(body: &[u8]) -> String {
            let check = gs1_check_digit(body);
            body.iter()
                .chain(std::iter::once(&check))
                .map(|d| char::from(b'0' + d))
                .collect()
        }

        proptest! {
            /// Whatever a file holds, its header and rows are judged, never a panic.
            #[test]
            fn any_header_and_row_is_judged_without_panic(
                header in proptest::collection::vec(".{0,12}", 0..8),
                row in proptest::collection::vec("\\PC{0,40}", 0..8),
            ) {
                let header: Vec<&str> = header.iter().map(String::as_str).collect();
                if let Ok(columns) = UnitColumns::from_header(&header) {
                    let row: Vec<&str> = row.iter().map(String::as_str).collect();
                    let _ = columns.parse(2, &row, header.len());
                }
            }

            /// A well-formed row is accepted in any column order and comes back as sent
            /// (trimmed; location upper case, status lower case).
            #[test]
            fn a_good_row_is_accepted_in_any_column_order(
                body in proptest::collection::vec(0u8..10, 13),
                serial in "[A-Za-z0-9][A-Za-z0-9._-]{0,19}",
                lot in proptest::option::of("[A-Z0-9]{1,10}"),
                day in 0u32..3000,
                location in proptest::option::of("[a-zA-Z0-9_-]{1,32}"),
                status in proptest::option::of(proptest::sample::select(UNIT_STATUSES.to_vec())),
                order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
                pad in " {0,2}",
            ) {
                let gtin = gtin_of(&body);
                let date = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(day.into());
                let date_text = date.to_string();
                let names = ["gtin", "serial", "lot", "manufactured_on", "location", "status"];
                let values = [
                    gtin.clone(),
                    format!("{pad}{serial}{pad}"),
                    lot.clone().unwrap_or_default(),
                    date_text,
                    location.clone().unwrap_or_default(),
                    status.map(|s| s.to_ascii_uppercase()).unwrap_or_default(),
                ];
                let header: Vec<&str> = order.iter().map(|&i| names[i]).collect();
                let row: Vec<&str> = order.iter().map(|&i| values[i].as_str()).collect();
                let columns = UnitColumns::from_header(&header).unwrap();
                let record = columns.parse(7, &row, header.len()).unwrap();
                prop_assert_eq!(record.line, 7);
                prop_assert_eq!(record.gtin, gtin);
                prop_assert_eq!(record.serial, serial);
                prop_assert_eq!(record.lot, lot);
                prop_assert_eq!(record.manufactured_on, Some(date));
                prop_assert_eq!(record.location, location.map(|l| l.to_ascii_uppercase()));
                prop_assert_eq!(record.status, status.map(str::to_owned));
            }

            /// One changed GTIN digit, or a row of the wrong width, is refused, naming the
            /// column (or the width) on the right line.
            #[test]
            fn a_bad_gtin_or_width_is_refused_on_its_line(
                body in proptest::collection::vec(0u8..10, 13),
                at in 0usize..14,
                by in 1u8..10,
                extra in 1usize..3,
            ) {
                let mut digits: Vec<u8> = gtin_of(&body).bytes().map(|b| b - b'0').collect();
                digits[at] = (digits[at] + by) % 10;
                let wrong: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                let columns = UnitColumns::from_header(&["gtin", "serial"]).unwrap();
                let errors = columns.parse(9, &[&wrong, "SN1"], 2).unwrap_err();
                prop_assert!(errors.iter().all(|e| e.line == 9));
                prop_assert!(errors.iter().any(|e| e.column == "gtin"));
                let long = vec!["x"; 2 + extra];
                let errors = columns.parse(4, &long, 2).unwrap_err();
                prop_assert!(errors[0].reason.contains("the header has 2"));
            }
        }
    }
}
