//! GS1 Digital Link URIs: `/01/{gtin}[/10/{lot}][/21/{serial}]` with an optional query
//! (`17=YYMMDD`, `linkType=…`), on any host and under any path prefix.

use chrono::NaiveDate;
use percent_encoding::percent_decode_str;

use super::gs1::parse_yymmdd;
use super::gtin::{Gtin, GtinError};
use super::serial::{SerialError, SerialNumber, check_cs82};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalLink {
    pub gtin: Gtin,
    pub lot: Option<String>,
    pub serial: Option<SerialNumber>,
    pub expiry_date: Option<NaiveDate>,
    /// The `linkType` query parameter, if any (e.g. `gs1:recallStatus`, `all`).
    pub link_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigitalLinkError {
    #[error("this is not a GS1 Digital Link: it has no /01/ followed by a GTIN")]
    NoGtin,
    #[error("the GTIN in this link is not valid: {0}")]
    Gtin(GtinError),
    #[error("the lot in this link is not valid: {0}")]
    Lot(SerialError),
    #[error("the serial number in this link is not valid: {0}")]
    Serial(SerialError),
    #[error("the link has an empty value after /{0}/")]
    EmptyValue(String),
    #[error("the link has /{0}/ where it expects /10/ (lot) then /21/ (serial)")]
    UnexpectedSegment(String),
    #[error("in a Digital Link the lot (/10/) comes before the serial number (/21/)")]
    QualifierOrder,
    #[error("the link has a badly encoded character (percent-encoding)")]
    Encoding,
    #[error("the date {0}= in this link is not a valid YYMMDD date")]
    Date(String),
}

fn decode(s: &str) -> Result<String, DigitalLinkError> {
    // A `%` not followed by two hex digits is left as is by percent_decode; GS1 calls it an
    // error, and so do we.
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'%'
            && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(DigitalLinkError::Encoding);
        }
    }
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| DigitalLinkError::Encoding)
}

/// Whether typed text is a Digital Link URL (or path) rather than a serial number: it has a
/// scheme, or a `/01/` path segment (also when pasted without `https://`).
pub fn looks_like_digital_link(s: &str) -> bool {
    let s = s.trim();
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || s.starts_with("/01/")
        || s.contains("/01/")
}

/// Whether the text names a scheme, so it cannot be a serial number typed by hand.
pub fn has_scheme(s: &str) -> bool {
    let lower = s.trim().get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl DigitalLink {
    /// Parses a full URL (`https://id.example.com/01/…`) or just its path and query.
    pub fn parse(input: &str) -> Result<Self, DigitalLinkError> {
        let s = input.trim();
        let without_scheme = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .or_else(|| s.strip_prefix("HTTPS://"))
            .or_else(|| s.strip_prefix("HTTP://"));
        let path_and_query = match without_scheme {
            Some(rest) => rest
                .find('/')
                .map(|i| &rest[i..])
                .ok_or(DigitalLinkError::NoGtin)?,
            None => s,
        };
        let path_and_query = path_and_query.split('#').next().unwrap_or("");
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        Self::from_parts(path, query)
    }

    /// Parses a request path (still percent-encoded) and its raw query string.
    pub fn from_parts(path: &str, query: Option<&str>) -> Result<Self, DigitalLinkError> {
        let segments: Vec<&str> = path.split('/').collect();
        // The GS1 path may sit under any prefix: find the first `01` key.
        let start = segments
            .iter()
            .position(|s| *s == "01")
            .ok_or(DigitalLinkError::NoGtin)?;
        let mut rest = &segments[start..];
        if rest.last() == Some(&"") && rest.len() > 1 {
            rest = &rest[..rest.len() - 1]; // tolerate one trailing slash
        }
        let gtin_raw = rest
            .get(1)
            .ok_or(DigitalLinkError::EmptyValue("01".into()))?;
        if gtin_raw.is_empty() {
            return Err(DigitalLinkError::EmptyValue("01".into()));
        }
        let gtin = Gtin::parse_exact(&decode(gtin_raw)?).map_err(DigitalLinkError::Gtin)?;
        let mut lot = None;
        let mut serial = None;
        let mut pairs = rest[2..].chunks(2);
        for pair in pairs.by_ref() {
            let key = pair[0];
            let value = pair.get(1).copied().unwrap_or("");
            match key {
                "10" | "21" if value.is_empty() => {
                    return Err(DigitalLinkError::EmptyValue(key.into()));
                }
                "10" if serial.is_some() => return Err(DigitalLinkError::QualifierOrder),
                "10" if lot.is_some() => {
                    return Err(DigitalLinkError::UnexpectedSegment(key.into()));
                }
                "10" => {
                    let v = decode(value)?;
                    check_cs82(&v).map_err(DigitalLinkError::Lot)?;
                    lot = Some(v);
                }
                "21" if serial.is_some() => {
                    return Err(DigitalLinkError::UnexpectedSegment(key.into()));
                }
                "21" => {
                    serial = Some(
                        SerialNumber::parse(&decode(value)?).map_err(DigitalLinkError::Serial)?,
                    )
                }
                other => {
                    let shown: String = other.chars().take(20).collect();
                    return Err(DigitalLinkError::UnexpectedSegment(shown));
                }
            }
        }
        let mut expiry_date = None;
        let mut link_type = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "17" => {
                    let v = decode(v)?;
                    expiry_date =
                        Some(parse_yymmdd(&v).ok_or(DigitalLinkError::Date("17".into()))?);
                }
                "linkType" => link_type = Some(decode(v)?),
                // Other GS1 data attributes and non-GS1 parameters are allowed and ignored.
                _ => {}
            }
        }
        Ok(DigitalLink {
            gtin,
            lot,
            serial,
            expiry_date,
            link_type,
        })
    }
}

/// The canonical path of a unit's Digital Link (values percent-encoded as GS1 requires).
pub fn unit_path(gtin: &Gtin, lot: Option<&str>, serial: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    // GS1 Digital Link: CS82 characters other than these must be percent-encoded in a path.
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'*')
        .remove(b'!')
        .remove(b',')
        .remove(b':')
        .remove(b';')
        .remove(b'=');
    let enc = |v: &str| utf8_percent_encode(v, KEEP).to_string();
    match lot {
        Some(l) => format!("/01/{gtin}/10/{}/21/{}", enc(l), enc(serial)),
        None => format!("/01/{gtin}/21/{}", enc(serial)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_full_unit_links() {
        let l = DigitalLink::parse(
            "https://id.example.com/01/09506000134352/10/ABC123/21/SN0001?17=261231",
        )
        .unwrap();
        assert_eq!(l.gtin.as_string(), "09506000134352");
        assert_eq!(l.lot.as_deref(), Some("ABC123"));
        assert_eq!(l.serial.unwrap().as_str(), "SN0001");
        assert_eq!(l.expiry_date, NaiveDate::from_ymd_opt(2026, 12, 31));
        let l = DigitalLink::parse("/01/09506000134352/21/SN0001").unwrap();
        assert_eq!(l.lot, None);
        let l = DigitalLink::parse(
            "http://example.com/some/prefix/01/9506000134352/21/A%2FB?linkType=gs1:recallStatus",
        )
        .unwrap();
        assert_eq!(l.gtin.as_string(), "09506000134352");
        assert_eq!(l.serial.unwrap().as_str(), "A/B");
        assert_eq!(l.link_type.as_deref(), Some("gs1:recallStatus"));
        let l = DigitalLink::parse("https://example.com/01/09506000134352").unwrap();
        assert_eq!((l.lot, l.serial), (None, None));
        let l = DigitalLink::parse("https://example.com/01/09506000134352/10/L%201").err();
        assert_eq!(l, Some(DigitalLinkError::Lot(SerialError::Space)));
    }

    #[test]
    fn round_trips_through_the_canonical_path() {
        let g = Gtin::parse("09506000134352").unwrap();
        for serial in ["SN0001", "A/B", "x%y\"z", "(a)+b?c&d", "<>"] {
            let p = unit_path(&g, Some("L/1"), serial);
            let l = DigitalLink::parse(&p).unwrap();
            assert_eq!(l.serial.unwrap().as_str(), serial, "{p}");
            assert_eq!(l.lot.as_deref(), Some("L/1"));
        }
    }

    #[test]
    fn rejects_malformed_links() {
        use DigitalLinkError::*;
        let cases: &[(&str, DigitalLinkError)] = &[
            ("https://example.com/", NoGtin),
            ("https://example.com", NoGtin),
            ("/01/", EmptyValue("01".into())),
            ("/01/09506000134353/21/X", Gtin(GtinError::CheckDigit)),
            ("/01/09506000134/21/X", Gtin(GtinError::WrongLength(11))),
            ("/01/09506000134352/21/X/10/L", QualifierOrder),
            ("/01/09506000134352/21/", EmptyValue("21".into())),
            ("/01/09506000134352/21", EmptyValue("21".into())),
            ("/01/09506000134352/10//21/X", EmptyValue("10".into())),
            ("/01/09506000134352/22/X", UnexpectedSegment("22".into())),
            (
                "/01/09506000134352/21/X/21/Y",
                UnexpectedSegment("21".into()),
            ),
            ("/01/09506000134352/21/X%2", Encoding),
            ("/01/09506000134352/21/X%zz", Encoding),
            ("/01/09506000134352/21/%FF", Encoding),
            (
                "/01/09506000134352/21/A%23B",
                Serial(SerialError::BadChar('#')),
            ),
            (
                "/01/09506000134352/21/ABCDEFGHIJKLMNOPQRSTU",
                Serial(SerialError::TooLong(21)),
            ),
            ("/01/09506000134352/21/X?17=261301", Date("17".into())),
        ];
        for (s, want) in cases {
            assert_eq!(DigitalLink::parse(s).as_ref(), Err(want), "{s}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = DigitalLink::parse(&s);
            let _ = DigitalLink::parse(&format!("/01/09506000134352/{s}"));
        }
    }
}
