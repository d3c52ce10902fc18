//! GS1 element strings as scanners send them (`]d2010950…17261231 10ABC123<GS>21SN0001`) and in
//! their bracketed human-readable form (`(01)…(17)261231(10)ABC123(21)SN0001`).

use chrono::NaiveDate;

use super::gtin::{Gtin, GtinError};
use super::serial::{SerialError, SerialNumber, check_cs82};

/// The ASCII group separator that ends a variable-length field when another field follows.
pub const GS: char = '\u{1d}';

/// What a GS1 element string identifies. Fields the portal does not use are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElementString {
    pub gtin: Option<Gtin>,
    pub lot: Option<String>,
    pub serial: Option<SerialNumber>,
    pub production_date: Option<NaiveDate>,
    pub expiry_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("the scanned code is empty")]
    Empty,
    #[error("the scanned code has an application identifier we do not read: ({0})")]
    UnknownAi(String),
    #[error("the scanned code ends in the middle of field ({0})")]
    Truncated(&'static str),
    #[error("the GTIN in the scanned code is not valid: {0}")]
    Gtin(GtinError),
    #[error("the serial number in the scanned code is not valid: {0}")]
    Serial(SerialError),
    #[error("the lot number in the scanned code is not valid: {0}")]
    Lot(SerialError),
    #[error("the date in field ({0}) is not a valid YYMMDD date")]
    Date(&'static str),
    #[error("field ({0}) appears twice in the scanned code")]
    Repeated(&'static str),
}

/// How long the value of an application identifier is.
#[derive(Clone, Copy)]
enum Len {
    Fixed(usize),
    /// Variable up to this many characters, ended by GS or the end of the data.
    Var(usize),
}

/// The application identifiers this parser understands. Only 01, 10, 11, 17 and 21 are kept;
/// the others are common on product labels and are read past so a scan never fails on them.
const AIS: &[(&str, Len)] = &[
    ("00", Len::Fixed(18)),
    ("01", Len::Fixed(14)),
    ("02", Len::Fixed(14)),
    ("10", Len::Var(20)),
    ("11", Len::Fixed(6)),
    ("12", Len::Fixed(6)),
    ("13", Len::Fixed(6)),
    ("15", Len::Fixed(6)),
    ("16", Len::Fixed(6)),
    ("17", Len::Fixed(6)),
    ("20", Len::Fixed(2)),
    ("21", Len::Var(20)),
    ("22", Len::Var(20)),
    ("30", Len::Var(8)),
    ("37", Len::Var(8)),
];

fn ai_len(ai: &str) -> Option<Len> {
    AIS.iter().find(|(a, _)| *a == ai).map(|(_, l)| *l)
}

/// Symbology identifiers a scanner may put in front of the data: GS1-128, GS1 DataMatrix, GS1 QR.
const SYMBOLOGY_PREFIXES: &[&str] = &["]C1", "]d2", "]Q3", "]e0", "]J1"];

/// Strips a leading symbology identifier, if any.
pub fn strip_symbology(s: &str) -> (&str, bool) {
    for p in SYMBOLOGY_PREFIXES {
        if let Some(rest) = s.strip_prefix(p) {
            return (rest, true);
        }
    }
    (s, false)
}

/// Parses `YYMMDD` (GS1 §7.12: day `00` means the last day of the month). Years are 2000–2099.
pub fn parse_yymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let (yy, mm, dd) = (n(0..2)?, n(2..4)?, n(4..6)?);
    let year = 2000 + yy as i32;
    if !(1..=12).contains(&mm) {
        return None;
    }
    if dd == 0 {
        let first_of_next = if mm == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(year, mm + 1, 1)?
        };
        return first_of_next.pred_opt();
    }
    NaiveDate::from_ymd_opt(year, mm, dd)
}

impl ElementString {
    /// Parses an element string in scanner form (with or without a symbology identifier) or in
    /// bracketed form.
    pub fn parse(input: &str) -> Result<Self, Gs1Error> {
        let (s, _) = strip_symbology(input.trim_matches(|c: char| c.is_whitespace()));
        // A leading GS (FNC1 transmitted as GS by some scanners) carries no data.
        let s = s.trim_start_matches(GS);
        if s.is_empty() {
            return Err(Gs1Error::Empty);
        }
        let fields = if s.starts_with('(') {
            split_bracketed(s)?
        } else {
            split_raw(s)?
        };
        let mut out = ElementString::default();
        for (ai, value) in fields {
            out.apply(ai, value)?;
        }
        Ok(out)
    }

    fn apply(&mut self, ai: &str, value: &str) -> Result<(), Gs1Error> {
        fn set<T>(slot: &mut Option<T>, v: T, name: &'static str) -> Result<(), Gs1Error> {
            if slot.is_some() {
                return Err(Gs1Error::Repeated(name));
            }
            *slot = Some(v);
            Ok(())
        }
        match ai {
            "01" => set(
                &mut self.gtin,
                Gtin::parse(value).map_err(Gs1Error::Gtin)?,
                "01",
            ),
            "10" => {
                check_cs82(value).map_err(Gs1Error::Lot)?;
                set(&mut self.lot, value.to_owned(), "10")
            }
            "21" => set(
                &mut self.serial,
                SerialNumber::parse(value).map_err(Gs1Error::Serial)?,
                "21",
            ),
            "11" => set(
                &mut self.production_date,
                parse_yymmdd(value).ok_or(Gs1Error::Date("11"))?,
                "11",
            ),
            "17" => set(
                &mut self.expiry_date,
                parse_yymmdd(value).ok_or(Gs1Error::Date("17"))?,
                "17",
            ),
            _ => Ok(()),
        }
    }
}

fn static_ai(ai: &str) -> &'static str {
    AIS.iter()
        .find(|(a, _)| *a == ai)
        .map(|(a, _)| *a)
        .unwrap_or("??")
}

/// Splits scanner-form data into (AI, value) pairs.
fn split_raw(s: &str) -> Result<Vec<(&'static str, &str)>, Gs1Error> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let ai = rest
            .get(..2)
            .ok_or_else(|| Gs1Error::UnknownAi(rest.to_owned()))?;
        let len = ai_len(ai).ok_or_else(|| Gs1Error::UnknownAi(ai.to_owned()))?;
        let ai = static_ai(ai);
        rest = &rest[2..];
        match len {
            Len::Fixed(n) => {
                let value = rest.get(..n).ok_or(Gs1Error::Truncated(ai))?;
                if value.contains(GS) {
                    return Err(Gs1Error::Truncated(ai));
                }
                out.push((ai, value));
                rest = &rest[n..];
                // Some encoders put a GS after fixed-length fields too; it is harmless.
                rest = rest.strip_prefix(GS).unwrap_or(rest);
            }
            Len::Var(_) => {
                let end = rest.find(GS).unwrap_or(rest.len());
                let value = &rest[..end];
                if value.is_empty() {
                    return Err(Gs1Error::Truncated(ai));
                }
                out.push((ai, value));
                rest = rest.get(end + 1..).unwrap_or("");
            }
        }
    }
    Ok(out)
}

/// Splits the bracketed human-readable form. A `(` inside a value is allowed (it is in CS82):
/// only `(NN)` with a known AI starts a new field.
fn split_bracketed(s: &str) -> Result<Vec<(&'static str, &str)>, Gs1Error> {
    let starts_field = |t: &str| -> Option<&'static str> {
        let b = t.as_bytes();
        if b.len() >= 4 && b[0] == b'(' && b[3] == b')' {
            ai_len(&t[1..3]).map(|_| static_ai(&t[1..3]))
        } else {
            None
        }
    };
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let ai = match starts_field(rest) {
            Some(ai) => ai,
            None => {
                let shown: String = rest
                    .chars()
                    .skip(1)
                    .take_while(|c| *c != ')')
                    .take(4)
                    .collect();
                return Err(Gs1Error::UnknownAi(shown));
            }
        };
        rest = &rest[4..];
        let mut end = rest.len();
        for (i, _) in rest.char_indices() {
            if starts_field(&rest[i..]).is_some() {
                end = i;
                break;
            }
        }
        let value = &rest[..end];
        let ok = match ai_len(ai) {
            Some(Len::Fixed(n)) => value.len() == n,
            Some(Len::Var(max)) => !value.is_empty() && value.chars().count() <= max,
            None => false,
        };
        if !ok {
            return match ai {
                "21" => Err(SerialNumber::parse(value)
                    .map(|_| Gs1Error::Truncated(ai))
                    .unwrap_or_else(Gs1Error::Serial)),
                "10" => Err(check_cs82(value)
                    .map(|_| Gs1Error::Truncated(ai))
                    .unwrap_or_else(Gs1Error::Lot)),
                _ => Err(Gs1Error::Truncated(ai)),
            };
        }
        out.push((ai, value));
        rest = &rest[end..];
    }
    Ok(out)
}

/// Whether typed text looks like an element string rather than a bare serial: it carries a
/// symbology identifier, a GS character or the bracketed form, or it starts with AI 01 and a
/// GTIN whose check digit is right.
pub fn looks_like_element_string(s: &str) -> bool {
    let s = s.trim();
    let (rest, had_prefix) = strip_symbology(s);
    if had_prefix || s.contains(GS) || s.starts_with("(01)") || s.starts_with("(21)") {
        return true;
    }
    rest.len() > 16
        && rest.starts_with("01")
        && rest.get(2..16).is_some_and(|g| Gtin::parse(g).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn brief_example() -> ElementString {
        ElementString {
            gtin: Some(Gtin::parse("09506000134352").unwrap()),
            lot: Some("ABC123".into()),
            serial: Some(SerialNumber::parse("SN0001").unwrap()),
            production_date: None,
            expiry_date: Some(d(2026, 12, 31)),
        }
    }

    #[test]
    fn parses_the_product_brief_scanner_example() {
        let s = "]d201095060001343521726123110ABC123\u{1d}21SN0001";
        assert_eq!(ElementString::parse(s).unwrap(), brief_example());
    }

    #[test]
    fn parses_the_bracketed_form() {
        let s = "(01)09506000134352(17)261231(10)ABC123(21)SN0001";
        assert_eq!(ElementString::parse(s).unwrap(), brief_example());
    }

    #[test]
    fn accepts_each_symbology_prefix_and_none() {
        for p in ["", "]C1", "]d2", "]Q3"] {
            let s = format!("{p}0109506000134352{}", "21SN0001");
            let e = ElementString::parse(&s).unwrap();
            assert_eq!(e.serial.unwrap().as_str(), "SN0001");
        }
    }

    #[test]
    fn variable_field_last_needs_no_separator_and_fixed_fields_need_none() {
        let e = ElementString::parse("0109506000134352112501151710010010LOT-7").unwrap();
        assert_eq!(e.production_date, Some(d(2025, 1, 15)));
        assert_eq!(e.expiry_date, Some(d(2010, 1, 31)));
        assert_eq!(e.lot.as_deref(), Some("LOT-7"));
    }

    #[test]
    fn day_zero_is_the_last_day_of_the_month() {
        assert_eq!(parse_yymmdd("240200"), Some(d(2024, 2, 29)));
        assert_eq!(parse_yymmdd("250200"), Some(d(2025, 2, 28)));
        assert_eq!(parse_yymmdd("261200"), Some(d(2026, 12, 31)));
        assert_eq!(parse_yymmdd("260400"), Some(d(2026, 4, 30)));
        assert_eq!(parse_yymmdd("261301"), None);
        assert_eq!(parse_yymmdd("260001"), None);
        assert_eq!(parse_yymmdd("250229"), None);
        assert_eq!(parse_yymmdd("26123"), None);
        assert_eq!(parse_yymmdd("26-231"), None);
    }

    #[test]
    fn rejects_malformed_element_strings() {
        use Gs1Error::*;
        let cases: &[(&str, Gs1Error)] = &[
            ("", Empty),
            ("]d2", Empty),
            ("0109506000134353", Gtin(GtinError::CheckDigit)),
            ("01095060001343", Truncated("01")),
            ("010950600013435221", Truncated("21")),
            ("01095060001343529912", UnknownAi("99".into())),
            ("010950600013435217261331", Date("17")),
            ("01095060001343521726123", Truncated("17")),
            ("0109506000134352\u{1d}21SN 1", Serial(SerialError::Space)),
            (
                "010950600013435221ABCDEFGHIJKLMNOPQRSTU",
                Serial(SerialError::TooLong(21)),
            ),
            (
                "010950600013435210AB#1\u{1d}21X",
                Lot(SerialError::BadChar('#')),
            ),
            ("(01)09506000134352(21)", Serial(SerialError::Empty)),
            ("(01)0950600013435(21)SN1", Truncated("01")),
            ("(99)123", UnknownAi("99".into())),
            ("0109506000134352010950600013435221X", Repeated("01")),
        ];
        for (s, want) in cases {
            assert_eq!(ElementString::parse(s).as_ref(), Err(want), "{s:?}");
        }
    }

    #[test]
    fn brackets_inside_a_value_are_kept() {
        let e = ElementString::parse("(01)09506000134352(21)A(B)1").unwrap();
        assert_eq!(e.serial.unwrap().as_str(), "A(B)1");
    }

    #[test]
    fn recognises_element_strings_among_typed_text() {
        assert!(looks_like_element_string("]d2010950600013435221SN0001"));
        assert!(looks_like_element_string("(01)09506000134352(21)SN0001"));
        assert!(looks_like_element_string("010950600013435221SN0001"));
        assert!(!looks_like_element_string("SN0001"));
        // 01 + digits with a wrong check digit is just a long serial.
        assert!(!looks_like_element_string("010950600013435321X"));
    }

    proptest! {
        #[test]
        fn scanner_form_round_trips(serial in "[A-Za-z0-9\\-./]{1,20}", lot in "[A-Z0-9]{1,20}") {
            let s = format!("]d2010950600013435210{lot}\u{1d}21{serial}");
            let e = ElementString::parse(&s).unwrap();
            prop_assert_eq!(e.serial.unwrap().to_string(), serial);
            prop_assert_eq!(e.lot.unwrap(), lot);
        }

        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = ElementString::parse(&s);
            let _ = looks_like_element_string(&s);
        }
    }
}
