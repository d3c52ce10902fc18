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

/// A key-qualifier value as GS1 wants it in a Digital Link path: CS82 characters that are not
/// safe in a path segment percent-encoded, the rest kept as they are.
fn encode_value(v: &str) -> String {
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
    utf8_percent_encode(v, KEEP).to_string()
}

/// The canonical path of a Digital Link: GTIN-14, then the lot, then the serial, values
/// percent-encoded as GS1 requires. Data attributes (`17=`) and `linkType` are not part of it:
/// they do not change which item the link names.
fn canonical(gtin: &Gtin, lot: Option<&str>, serial: Option<&str>) -> String {
    let mut path = format!("/01/{gtin}");
    if let Some(l) = lot {
        path.push_str("/10/");
        path.push_str(&encode_value(l));
    }
    if let Some(s) = serial {
        path.push_str("/21/");
        path.push_str(&encode_value(s));
    }
    path
}

/// The canonical path of a unit's Digital Link (values percent-encoded as GS1 requires).
pub fn unit_path(gtin: &Gtin, lot: Option<&str>, serial: &str) -> String {
    canonical(gtin, lot, Some(serial))
}

/// What a Digital Link names: one unit, a lot of a model, or the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemLevel {
    Unit,
    Lot,
    Model,
}

impl DigitalLink {
    /// The canonical path of this link (see [`unit_path`]); `/01/{gtin14}` for a model.
    pub fn canonical_path(&self) -> String {
        canonical(
            &self.gtin,
            self.lot.as_deref(),
            self.serial.as_ref().map(SerialNumber::as_str),
        )
    }

    pub fn level(&self) -> ItemLevel {
        match (&self.serial, &self.lot) {
            (Some(_), _) => ItemLevel::Unit,
            (None, Some(_)) => ItemLevel::Lot,
            (None, None) => ItemLevel::Model,
        }
    }
}

/// The GS1 Web Vocabulary namespace link types are named in (`gs1:` in a CURIE).
pub const GS1_VOC: &str = "https://gs1.org/voc/";

/// The GS1 link types this portal answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Product information page.
    Pip,
    RecallStatus,
    RegisterProduct,
    /// Customer support: where a warranty claim starts.
    Support,
    /// Service information: the warranty terms.
    ServiceInfo,
    /// Where the link goes when no link type is asked for.
    DefaultLink,
}

impl LinkType {
    /// Every link type, in the order a linkset lists them.
    pub const ALL: [LinkType; 6] = [
        LinkType::DefaultLink,
        LinkType::Pip,
        LinkType::RecallStatus,
        LinkType::RegisterProduct,
        LinkType::Support,
        LinkType::ServiceInfo,
    ];

    /// The term in the GS1 Web Vocabulary (`pip`, `recallStatus`, …).
    pub fn term(self) -> &'static str {
        match self {
            LinkType::Pip => "pip",
            LinkType::RecallStatus => "recallStatus",
            LinkType::RegisterProduct => "registerProduct",
            LinkType::Support => "support",
            LinkType::ServiceInfo => "serviceInfo",
            LinkType::DefaultLink => "defaultLink",
        }
    }

    /// `gs1:pip` and so on, as a `linkType` query parameter names it.
    pub fn curie(self) -> String {
        format!("gs1:{}", self.term())
    }

    /// `https://gs1.org/voc/pip` and so on: the relation type in a linkset (RFC 9264 wants
    /// extension relation types as URIs).
    pub fn uri(self) -> String {
        format!("{GS1_VOC}{}", self.term())
    }

    fn from_term(term: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.term() == term)
    }
}

/// What the `linkType` of a Digital Link asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRequest {
    /// No `linkType`: the default link (or the linkset, if the client asks for JSON).
    Default,
    /// `linkType=all` (or `linkset`, its name in newer GS1 resolver standards).
    LinkSet,
    One(LinkType),
}

/// A `linkType` this portal does not offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this product link asks for the link type “{shown}”, which this portal does not offer")]
pub struct UnknownLinkType {
    /// What was asked for, shortened so an error never echoes a whole address back.
    pub shown: String,
}

impl LinkRequest {
    /// Reads a `linkType` value: `all` or `linkset`, a CURIE (`gs1:recallStatus`) or the full
    /// URI of a GS1 link type (`https://gs1.org/voc/recallStatus`; `http://` and the
    /// `ref.gs1.org` spelling too). Names are case-sensitive, as in the vocabulary.
    pub fn parse(link_type: Option<&str>) -> Result<Self, UnknownLinkType> {
        let Some(raw) = link_type else {
            return Ok(LinkRequest::Default);
        };
        if raw == "all" || raw == "linkset" {
            return Ok(LinkRequest::LinkSet);
        }
        let term = raw.strip_prefix("gs1:").or_else(|| {
            [
                "https://gs1.org/voc/",
                "http://gs1.org/voc/",
                "https://ref.gs1.org/voc/",
            ]
            .iter()
            .find_map(|ns| raw.strip_prefix(ns))
        });
        term.and_then(LinkType::from_term)
            .map(LinkRequest::One)
            .ok_or_else(|| UnknownLinkType {
                shown: raw.chars().take(60).collect(),
            })
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

    #[test]
    fn the_canonical_path_names_the_item_and_nothing_else() {
        let cases = [
            // GTIN-13 is padded to 14; the query (data attributes, linkType) is left out.
            (
                "/01/9506000134352/10/ABC123/21/SN0001?17=261231&linkType=all",
                "/01/09506000134352/10/ABC123/21/SN0001",
                ItemLevel::Unit,
            ),
            (
                "https://x.example/01/09506000134352/21/A%2FB/",
                "/01/09506000134352/21/A%2FB",
                ItemLevel::Unit,
            ),
            (
                "/01/09506000134352/10/L%2A1x",
                "/01/09506000134352/10/L*1x",
                ItemLevel::Lot,
            ),
            (
                "/01/09506000134352?linkType=gs1:pip",
                "/01/09506000134352",
                ItemLevel::Model,
            ),
        ];
        for (input, want, level) in cases {
            let l = DigitalLink::parse(input).unwrap();
            assert_eq!(l.canonical_path(), want, "{input}");
            assert_eq!(l.level(), level, "{input}");
            // The canonical path parses back to the same item.
            let again = DigitalLink::parse(&l.canonical_path()).unwrap();
            assert_eq!(
                (again.gtin, again.lot, again.serial),
                (l.gtin, l.lot, l.serial)
            );
        }
    }

    #[test]
    fn link_types_are_read_as_curies_uris_or_all() {
        use LinkRequest::*;
        let cases: &[(Option<&str>, LinkRequest)] = &[
            (None, Default),
            (Some("all"), LinkSet),
            (Some("linkset"), LinkSet),
            (Some("gs1:pip"), One(LinkType::Pip)),
            (Some("gs1:recallStatus"), One(LinkType::RecallStatus)),
            (Some("gs1:registerProduct"), One(LinkType::RegisterProduct)),
            (Some("gs1:support"), One(LinkType::Support)),
            (Some("gs1:serviceInfo"), One(LinkType::ServiceInfo)),
            (Some("gs1:defaultLink"), One(LinkType::DefaultLink)),
            (
                Some("https://gs1.org/voc/recallStatus"),
                One(LinkType::RecallStatus),
            ),
            (Some("http://gs1.org/voc/pip"), One(LinkType::Pip)),
            (
                Some("https://ref.gs1.org/voc/support"),
                One(LinkType::Support),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(LinkRequest::parse(*raw), Ok(*want), "{raw:?}");
        }
        for raw in [
            "gs1:recallstatus",
            "gs1:epil",
            "recallStatus",
            "ALL",
            "",
            "https://example.com/voc/pip",
            "gs1:",
        ] {
            assert!(LinkRequest::parse(Some(raw)).is_err(), "{raw}");
        }
        let long = "x".repeat(500);
        let e = LinkRequest::parse(Some(&long)).unwrap_err();
        assert_eq!(
            e.shown.chars().count(),
            60,
            "an error never echoes a whole address"
        );
    }

    #[test]
    fn every_link_type_has_its_gs1_names() {
        assert_eq!(LinkType::RecallStatus.curie(), "gs1:recallStatus");
        assert_eq!(
            LinkType::ServiceInfo.uri(),
            "https://gs1.org/voc/serviceInfo"
        );
        for t in LinkType::ALL {
            assert_eq!(
                LinkRequest::parse(Some(&t.curie())),
                Ok(LinkRequest::One(t))
            );
            assert_eq!(LinkRequest::parse(Some(&t.uri())), Ok(LinkRequest::One(t)));
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
