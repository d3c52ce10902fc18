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
    Truncated(String),
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
    #[error("field ({0}) in the scanned code is longer than GS1 allows")]
    TooLong(String),
}

/// How long the value of an application identifier is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Len {
    Fixed(usize),
    /// Variable up to this many characters, ended by GS or the end of the data.
    Var(usize),
}

/// How many digits an AI has, from its first two digits (GS1 General Specifications §3.2).
fn ai_digits(first_two: &str) -> Option<usize> {
    let n: u8 = first_two
        .parse()
        .ok()
        .filter(|_| first_two.len() == 2 && first_two.bytes().all(|b| b.is_ascii_digit()))?;
    Some(match n {
        0..=22 | 30 | 37 | 90..=99 => 2,
        23..=25 | 40..=42 => 3,
        31..=36 | 39 | 43 | 70..=72 | 80..=82 => 4,
        _ => return None,
    })
}

/// The value length of an AI. Fixed lengths are GS1's "predefined length" table (those need no
/// separator); everything else is variable and ends at GS.
fn value_len(ai: &str) -> Len {
    match &ai[..2] {
        "00" => Len::Fixed(18),
        "01" | "02" | "03" => Len::Fixed(14),
        "04" => Len::Fixed(16),
        "11" | "12" | "13" | "14" | "15" | "16" | "17" | "18" | "19" => Len::Fixed(6),
        "20" => Len::Fixed(2),
        "31" | "32" | "33" | "34" | "35" | "36" => Len::Fixed(6),
        "41" => Len::Fixed(13),
        "10" | "21" | "22" | "254" => Len::Var(20),
        "30" | "37" => Len::Var(8),
        "91" | "92" | "93" | "94" | "95" | "96" | "97" | "98" | "99" => Len::Var(90),
        _ => Len::Var(if ai.len() == 3 && &ai[..2] != "25" {
            30
        } else {
            70
        }),
    }
}

/// Reads the AI at the start of `s` (scanner form), if its first two digits name a known range.
fn read_ai(s: &str) -> Result<&str, Gs1Error> {
    let shown = || s.chars().take(4).collect::<String>();
    let digits = s
        .get(..2)
        .and_then(ai_digits)
        .ok_or_else(|| Gs1Error::UnknownAi(shown()))?;
    let ai = s
        .get(..digits)
        .filter(|a| a.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Gs1Error::UnknownAi(shown()))?;
    Ok(ai)
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

/// Splits scanner-form data into (AI, value) pairs.
fn split_raw(s: &str) -> Result<Vec<(&str, &str)>, Gs1Error> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let ai = read_ai(rest)?;
        rest = &rest[ai.len()..];
        match value_len(ai) {
            Len::Fixed(n) => {
                let value = rest
                    .get(..n)
                    .filter(|v| !v.contains(GS))
                    .ok_or_else(|| Gs1Error::Truncated(ai.to_owned()))?;
                out.push((ai, value));
                rest = &rest[n..];
                // Some encoders put a GS after fixed-length fields too; it is harmless.
                rest = rest.strip_prefix(GS).unwrap_or(rest);
            }
            Len::Var(max) => {
                let end = rest.find(GS).unwrap_or(rest.len());
                let value = &rest[..end];
                check_var(ai, value, max)?;
                out.push((ai, value));
                rest = rest.get(end + 1..).unwrap_or("");
            }
        }
    }
    Ok(out)
}

fn check_var(ai: &str, value: &str, max: usize) -> Result<(), Gs1Error> {
    match ai {
        // Serial and lot errors say what is wrong with the value itself.
        "21" => SerialNumber::parse(value)
            .map(|_| ())
            .map_err(Gs1Error::Serial),
        "10" => check_cs82(value).map_err(Gs1Error::Lot),
        _ if value.is_empty() => Err(Gs1Error::Truncated(ai.to_owned())),
        _ if value.chars().count() > max => Err(Gs1Error::TooLong(ai.to_owned())),
        _ => Ok(()),
    }
}

/// The AI of a bracketed field starting at `t` (`(NN)`, `(NNN)` or `(NNNN)` of a known range).
fn bracketed_ai(t: &str) -> Option<&str> {
    let inner = t.strip_prefix('(')?;
    let close = inner
        .char_indices()
        .take(5)
        .find(|(_, c)| *c == ')')
        .map(|(i, _)| i)?;
    let ai = &inner[..close];
    // Digits first: only then is slicing at byte 2 safe (found by `bench/fuzz`: "(\0ʀ)").
    (ai.len() >= 2
        && ai.bytes().all(|b| b.is_ascii_digit())
        && ai_digits(&ai[..2]) == Some(ai.len()))
    .then_some(ai)
}

/// Splits the bracketed human-readable form. A `(` inside a value is allowed (it is in CS82):
/// only `(AI)` with a known AI starts a new field.
fn split_bracketed(s: &str) -> Result<Vec<(&str, &str)>, Gs1Error> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let ai = bracketed_ai(rest).ok_or_else(|| {
            let shown: String = rest
                .chars()
                .skip(1)
                .take_while(|c| *c != ')')
                .take(4)
                .collect();
            Gs1Error::UnknownAi(shown)
        })?;
        rest = &rest[ai.len() + 2..];
        let end = rest
            .char_indices()
            .find(|(i, _)| bracketed_ai(&rest[*i..]).is_some())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let value = &rest[..end];
        match value_len(ai) {
            Len::Fixed(n) if value.len() != n => return Err(Gs1Error::Truncated(ai.to_owned())),
            Len::Fixed(_) => {}
            Len::Var(max) => check_var(ai, value, max)?,
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
    if had_prefix || s.contains(GS) || bracketed_ai(s).is_some() {
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
            ("01095060001343", Truncated("01".into())),
            ("010950600013435221", Serial(SerialError::Empty)),
            ("010950600013435217261331", Date("17")),
            ("01095060001343521726123", Truncated("17".into())),
            (
                "0109506000134352300123456789\u{1d}21X",
                TooLong("30".into()),
            ),
            ("01095060001343522612", UnknownAi("2612".into())),
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
            ("(01)0950600013435(21)SN1", Truncated("01".into())),
            ("(26)123", UnknownAi("26".into())),
            ("0109506000134352010950600013435221X", Repeated("01")),
        ];
        for (s, want) in cases {
            assert_eq!(ElementString::parse(s).as_ref(), Err(want), "{s:?}");
        }
    }

    #[test]
    fn reads_past_other_common_label_fields() {
        // (240) additional id, (7003) expiry time, (91) company internal, (3103) net weight.
        let s = "]d20109506000134352240ABC-9\u{1d}70032612311200310300150091XYZ\u{1d}21SN0001";
        let e = ElementString::parse(s).unwrap();
        assert_eq!(e.serial.unwrap().as_str(), "SN0001");
        let b =
            ElementString::parse("(01)09506000134352(240)A(1)(7003)2612311200(21)SN0001").unwrap();
        assert_eq!(b.serial.unwrap().as_str(), "SN0001");
        let starts_elsewhere = ElementString::parse("(17)261231(21)SN1").unwrap();
        assert_eq!(starts_elsewhere.serial.unwrap().as_str(), "SN1");
        assert!(looks_like_element_string("(17)261231(21)SN1"));
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

    #[test]
    fn a_bracket_holding_letters_of_several_bytes_is_refused_not_a_panic() {
        // Found by the fuzz target `element_string`.
        for input in ["(\u{0}ʀ)", "(ʀʀ)", "(01ʀ)", "(0ʀ)x"] {
            assert!(ElementString::parse(input).is_err(), "{input:?}");
        }
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
