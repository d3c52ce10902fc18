//! Stock counts: the categories a reconciliation sorts scans and units into, which of them an
//! admin may apply, and the columns of a scan file (`serial`, and optionally `gtin`).

use super::gtin::Gtin;
use super::import::{RowError, read_header};
use super::serial::SerialNumber;

/// Where a unit or a scan ends up when a count is reconciled against the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Recorded in stock at this location, not scanned.
    Missing,
    /// Scanned here, recorded at another location, at none, or here but not in stock
    /// (manufactured, returned).
    WrongLocation,
    /// Scanned here, recorded as sold, shipped, registered, scrapped, replaced or missing.
    NotInStock,
    /// Scanned, but no unit has that serial (for that model, when a GTIN came with it).
    Unexpected,
    /// A serial scanned without a GTIN that exists on several models.
    Ambiguous,
    /// Scanned here and recorded in stock here.
    Matched,
}

impl Category {
    /// In the order the count page lists them: what needs attention first.
    pub const ALL: [Category; 6] = [
        Category::Missing,
        Category::WrongLocation,
        Category::NotInStock,
        Category::Unexpected,
        Category::Ambiguous,
        Category::Matched,
    ];

    /// The categories whose adjustments an admin may apply.
    pub const APPLICABLE: [Category; 3] = [
        Category::WrongLocation,
        Category::Missing,
        Category::NotInStock,
    ];

    /// The name stored in `stock_count_lines.category` and used in addresses.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Matched => "matched",
            Category::Missing => "missing",
            Category::Unexpected => "unexpected",
            Category::WrongLocation => "wrong_location",
            Category::NotInStock => "not_in_stock",
            Category::Ambiguous => "ambiguous",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Category::Matched => "Matched",
            Category::Missing => "Missing",
            Category::Unexpected => "Unexpected",
            Category::WrongLocation => "Wrong location",
            Category::NotInStock => "Not in stock",
            Category::Ambiguous => "Ambiguous",
        }
    }

    /// What the category means, for the count page.
    pub fn meaning(self) -> &'static str {
        match self {
            Category::Matched => "scanned here and recorded in stock here",
            Category::Missing => "recorded in stock here but not scanned",
            Category::Unexpected => {
                "scanned, but no unit with this serial is recorded (for this product, when the scan had a GTIN)"
            }
            Category::WrongLocation => {
                "scanned here but recorded at another location, at none, or here without being in stock"
            }
            Category::NotInStock => {
                "scanned here but recorded as sold, shipped, registered, scrapped, replaced or missing"
            }
            Category::Ambiguous => {
                "a serial scanned without its GTIN that exists on several products: scan the code with the GTIN"
            }
        }
    }

    /// What applying the category does, for the apply form; `None` for categories that cannot
    /// be applied (matched needs nothing; unexpected and ambiguous scans need a person).
    pub fn action(self, location: &str) -> Option<String> {
        match self {
            Category::WrongLocation => Some(format!("Move these units to {location}, in stock")),
            Category::Missing => Some("Mark these units missing (no location)".into()),
            Category::NotInStock => Some(format!(
                "Put these units back in stock at {location} (their sales stay recorded)"
            )),
            _ => None,
        }
    }

    pub fn applicable(self) -> bool {
        Category::APPLICABLE.contains(&self)
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key a scanned serial is matched on: under its model's case rule when the scan named the
/// model (`Some(case_sensitive)`), else upper case (a bare serial is matched against every
/// model; the serial as typed is kept beside it for the case-sensitive ones).
pub fn scan_key(serial: &str, case_sensitive: Option<bool>) -> String {
    match case_sensitive {
        Some(true) => serial.to_owned(),
        _ => serial.to_ascii_uppercase(),
    }
}

/// One checked line of a scan file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    pub line: u64,
    /// The GTIN (14 digits) when the line gives one.
    pub gtin: Option<String>,
    pub serial: String,
}

/// Where the columns of a scan file are: `serial` is required, `gtin` optional (and may be
/// empty on a line: a serial scanned without its GTIN).
#[derive(Debug, Clone, Copy)]
pub struct ScanColumns {
    gtin: Option<usize>,
    serial: usize,
}

impl ScanColumns {
    pub fn from_header(header: &[&str]) -> Result<Self, Vec<RowError>> {
        let c = read_header(header, &["serial"], &["gtin"])?;
        Ok(ScanColumns {
            serial: c[0].unwrap_or(0),
            gtin: c[1],
        })
    }

    /// Checks one data line.
    pub fn parse(
        &self,
        line: u64,
        fields: &[&str],
        width: usize,
    ) -> Result<ScanRecord, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut err = |column: &str, reason: String| {
            errors.push(RowError {
                line,
                column: column.into(),
                reason,
            })
        };
        if fields.len() != width {
            err(
                "",
                format!("has {} fields; the header has {width}", fields.len()),
            );
            return Err(errors);
        }
        let gtin = match self
            .gtin
            .map(|i| fields[i].trim())
            .filter(|g| !g.is_empty())
        {
            None => None,
            Some(g) => match Gtin::parse_exact(g) {
                Ok(g) => Some(g.as_string()),
                Err(e) => {
                    err("gtin", e.to_string());
                    None
                }
            },
        };
        let serial = match SerialNumber::parse(fields[self.serial].trim()) {
            Ok(s) => s.to_string(),
            Err(e) => {
                err("serial", e.to_string());
                String::new()
            }
        };
        if errors.is_empty() {
            Ok(ScanRecord { line, gtin, serial })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_categories_round_trip_and_only_three_apply() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            assert_eq!(c.action("WH-EU").is_some(), c.applicable());
        }
        assert_eq!(Category::parse("Missing"), None);
        assert_eq!(Category::parse(""), None);
        assert!(
            Category::WrongLocation
                .action("WH-EU")
                .unwrap()
                .contains("WH-EU")
        );
    }

    #[test]
    fn counts_scan_keys_follow_the_case_rule() {
        assert_eq!(scan_key("sn0001", Some(false)), "SN0001");
        assert_eq!(scan_key("Ks00001x", Some(true)), "Ks00001x");
        assert_eq!(scan_key("Ks00001x", None), "KS00001X");
    }

    #[test]
    fn counts_scan_files_name_line_and_column() {
        assert!(
            ScanColumns::from_header(&["gtin"]).unwrap_err()[0]
                .reason
                .contains("no “serial” column")
        );
        assert!(ScanColumns::from_header(&["serial", "lot"]).is_err());
        let bare = ScanColumns::from_header(&["Serial"]).unwrap();
        assert_eq!(
            bare.parse(2, &[" SN0001 "], 1).unwrap(),
            ScanRecord {
                line: 2,
                gtin: None,
                serial: "SN0001".into()
            }
        );
        let cols = ScanColumns::from_header(&["\u{feff}gtin", "serial"]).unwrap();
        let r = cols.parse(3, &["9506000134352", "SN1"], 2).unwrap();
        assert_eq!(r.gtin.as_deref(), Some("09506000134352"));
        assert_eq!(cols.parse(4, &["", "SN1"], 2).unwrap().gtin, None);
        let e = cols.parse(5, &["09506000134353", "S N"], 2).unwrap_err();
        let got: Vec<(&str, u64)> = e.iter().map(|e| (e.column.as_str(), e.line)).collect();
        assert_eq!(got, [("gtin", 5), ("serial", 5)]);
        assert!(
            cols.parse(6, &["SN1"], 2).unwrap_err()[0]
                .reason
                .contains("has 1 fields")
        );
        let huge = "x".repeat(100_000);
        assert!(cols.parse(7, &["", &huge], 2).unwrap_err()[0].reason.len() < 200);
    }
}
