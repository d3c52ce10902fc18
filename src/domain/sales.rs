//! Sales: which order (on which channel, on which date, to whom) a unit was sold in.
//!
//! A sales file has one line per unit: `gtin`, `serial`, `order_ref`, `channel`, `sold_on`
//! (required) and `customer_email` (optional). Lines with the same channel and order reference
//! form one sale and must agree on its date and email.

use chrono::{Datelike, NaiveDate};

use super::account::Email;
use super::gtin::Gtin;
use super::import::{RowError, parse_date, read_header, shorten};
use super::serial::SerialNumber;

/// The sale a unit is linked to, as typed in a form or read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleHeader {
    pub order_ref: String,
    pub channel: String,
    pub sold_on: NaiveDate,
    pub customer_email: Option<String>,
}

/// Problems with the sale fields, by field name (`order_ref`, `channel`, `sold_on`,
/// `customer_email`).
pub type FieldErrors = Vec<(&'static str, String)>;

impl SaleHeader {
    /// Checks the sale fields; `today` bounds the sale date (a sale is never in the future).
    pub fn parse(
        order_ref: &str,
        channel: &str,
        sold_on: &str,
        customer_email: &str,
        today: NaiveDate,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let order_ref = order_ref.trim();
        if order_ref.is_empty() {
            errors.push((
                "order_ref",
                "enter the order, invoice or receipt number".into(),
            ));
        } else if order_ref.chars().count() > 64 {
            errors.push((
                "order_ref",
                "an order reference has at most 64 characters".into(),
            ));
        } else if order_ref.chars().any(char::is_control) {
            errors.push((
                "order_ref",
                "the order reference contains control characters".into(),
            ));
        }
        let channel = channel.trim();
        if channel.is_empty() {
            errors.push((
                "channel",
                "enter the channel or retailer that sold it".into(),
            ));
        } else if channel.chars().count() > 100 {
            errors.push(("channel", "a channel has at most 100 characters".into()));
        } else if channel.chars().any(char::is_control) {
            errors.push(("channel", "the channel contains control characters".into()));
        }
        let date = match parse_date(sold_on.trim()) {
            Ok(d) if d > today + chrono::Days::new(1) => {
                errors.push(("sold_on", format!("{d} is in the future")));
                None
            }
            Ok(d) if d.year() < 1990 => {
                errors.push(("sold_on", format!("{d} is too long ago to be a sale date")));
                None
            }
            Ok(d) => Some(d),
            Err(_) if sold_on.trim().is_empty() => {
                errors.push(("sold_on", "enter the sale date (YYYY-MM-DD)".into()));
                None
            }
            Err(e) => {
                errors.push(("sold_on", e));
                None
            }
        };
        let email = customer_email.trim();
        let customer_email = if email.is_empty() {
            None
        } else {
            match Email::parse(email) {
                Ok(e) => Some(e.as_str().to_owned()),
                Err(e) => {
                    errors.push(("customer_email", e.to_string()));
                    None
                }
            }
        };
        match date {
            Some(sold_on) if errors.is_empty() => Ok(SaleHeader {
                order_ref: order_ref.to_owned(),
                channel: channel.to_owned(),
                sold_on,
                customer_email,
            }),
            _ => Err(errors),
        }
    }
}

/// One checked line of a sales file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    pub line: u64,
    pub gtin: String,
    pub serial: String,
    pub sale: SaleHeader,
}

/// Where each column is in a sales file.
#[derive(Debug, Clone, Copy)]
pub struct SaleColumns {
    gtin: usize,
    serial: usize,
    order_ref: usize,
    channel: usize,
    sold_on: usize,
    customer_email: Option<usize>,
}

pub const SALE_COLUMNS: [&str; 6] = [
    "gtin",
    "serial",
    "order_ref",
    "channel",
    "sold_on",
    "customer_email",
];

impl SaleColumns {
    pub fn from_header(header: &[&str]) -> Result<Self, Vec<RowError>> {
        let c = read_header(header, &SALE_COLUMNS[..5], &SALE_COLUMNS[5..])?;
        Ok(SaleColumns {
            gtin: c[0].unwrap_or(0),
            serial: c[1].unwrap_or(0),
            order_ref: c[2].unwrap_or(0),
            channel: c[3].unwrap_or(0),
            sold_on: c[4].unwrap_or(0),
            customer_email: c[5],
        })
    }

    /// Checks one data line.
    pub fn parse(
        &self,
        line: u64,
        fields: &[&str],
        width: usize,
        today: NaiveDate,
    ) -> Result<SaleRecord, Vec<RowError>> {
        if fields.len() != width {
            return Err(vec![RowError {
                line,
                column: String::new(),
                reason: format!("has {} fields; the header has {width}", fields.len()),
            }]);
        }
        SaleFields {
            gtin: fields[self.gtin],
            serial: fields[self.serial],
            order_ref: fields[self.order_ref],
            channel: fields[self.channel],
            sold_on: fields[self.sold_on],
            customer_email: self.customer_email.map(|i| fields[i]).unwrap_or(""),
        }
        .check(line, today)
    }
}

/// A unit's sale as sent, from a line of a sales file or an item of the token API.
#[derive(Debug, Clone, Copy, Default)]
pub struct SaleFields<'a> {
    pub gtin: &'a str,
    pub serial: &'a str,
    pub order_ref: &'a str,
    pub channel: &'a str,
    pub sold_on: &'a str,
    /// Empty when not given.
    pub customer_email: &'a str,
}

impl SaleFields<'_> {
    /// The rules of a sale line, however it arrives: the unit's GTIN and serial, and the sale
    /// (see [`SaleHeader::parse`]). Each problem names its column.
    pub fn check(&self, line: u64, today: NaiveDate) -> Result<SaleRecord, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut err = |column: &str, reason: String| {
            errors.push(RowError {
                line,
                column: column.into(),
                reason,
            })
        };
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
        let sale = match SaleHeader::parse(
            self.order_ref,
            self.channel,
            self.sold_on,
            self.customer_email,
            today,
        ) {
            Ok(s) => Some(s),
            Err(problems) => {
                for (column, reason) in problems {
                    err(column, shorten_reason(&reason));
                }
                None
            }
        };
        match sale {
            Some(sale) if errors.is_empty() => Ok(SaleRecord {
                line,
                gtin,
                serial,
                sale,
            }),
            _ => Err(errors),
        }
    }
}

fn shorten_reason(r: &str) -> String {
    if r.len() > 200 { shorten(r) } else { r.into() }
}

/// Why a unit is being unlinked from its sale: required, one line, at most 200 characters.
pub fn unlink_reason(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        Err("say why the unit is unlinked (e.g. order cancelled, returned for refund)".into())
    } else if s.chars().count() > 200 {
        Err("a reason has at most 200 characters".into())
    } else if s.chars().any(char::is_control) {
        Err("the reason contains control characters".into())
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    #[test]
    fn sale_fields_are_checked_each_with_its_field() {
        let ok = SaleHeader::parse(
            " ORD-1 ",
            "Web shop",
            "2026-05-31",
            " A@Example.com ",
            today(),
        )
        .unwrap();
        assert_eq!(ok.order_ref, "ORD-1");
        assert_eq!(ok.customer_email.as_deref(), Some("a@example.com"));
        let bad = SaleHeader::parse("", "", "2026-06-30", "not-mail", today()).unwrap_err();
        let fields: Vec<&str> = bad.iter().map(|e| e.0).collect();
        assert_eq!(
            fields,
            ["order_ref", "channel", "sold_on", "customer_email"]
        );
        assert!(bad[2].1.contains("future"));
        assert!(SaleHeader::parse("A", "B", "31/05/2026", "", today()).is_err());
        assert!(SaleHeader::parse("A", "B", "1980-01-01", "", today()).is_err());
        assert!(
            SaleHeader::parse("A", "B", "", "", today()).unwrap_err()[0]
                .1
                .contains("enter")
        );
        assert!(SaleHeader::parse(&"x".repeat(65), "B", "2026-01-01", "", today()).is_err());
    }

    #[test]
    fn sales_lines_name_line_and_column() {
        assert!(
            SaleColumns::from_header(&["gtin", "serial", "order_ref", "channel"]).unwrap_err()[0]
                .reason
                .contains("no “sold_on” column")
        );
        let cols = SaleColumns::from_header(&[
            "serial",
            "GTIN",
            "order_ref",
            "channel",
            "sold_on",
            "customer_email",
        ])
        .unwrap();
        let r = cols
            .parse(
                2,
                &["SN1", "09506000134352", "O-1", "Shop", "2026-01-02", ""],
                6,
                today(),
            )
            .unwrap();
        assert_eq!(r.gtin, "09506000134352");
        assert_eq!(r.sale.customer_email, None);
        let e = cols
            .parse(
                7,
                &["S N", "123", "", "Shop", "2026-13-01", "x@"],
                6,
                today(),
            )
            .unwrap_err();
        let got: Vec<(&str, u64)> = e.iter().map(|e| (e.column.as_str(), e.line)).collect();
        assert_eq!(
            got,
            [
                ("gtin", 7),
                ("serial", 7),
                ("order_ref", 7),
                ("sold_on", 7),
                ("customer_email", 7)
            ]
        );
    }

    #[test]
    fn unlinking_needs_a_reason() {
        assert!(unlink_reason("  ").is_err());
        assert_eq!(unlink_reason(" cancelled ").unwrap(), "cancelled");
        assert!(unlink_reason(&"r".repeat(201)).is_err());
    }
}
