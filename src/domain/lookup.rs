//! What a customer puts in the lookup box: a typed serial, a scanned GS1 element string or a
//! pasted Digital Link, plus an optional GTIN, turned into one [`LookupQuery`].

use super::digital_link::{DigitalLink, has_scheme, looks_like_digital_link};
use super::gs1::{ElementString, GS, looks_like_element_string, strip_symbology};
use super::gtin::Gtin;
use super::serial::SerialNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Typed,
    ElementString,
    DigitalLink,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupQuery {
    pub serial: SerialNumber,
    pub gtin: Option<Gtin>,
    pub lot: Option<String>,
    pub kind: InputKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupField {
    Serial,
    Gtin,
}

/// Why the input cannot be looked up, and which form field to show the message next to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    pub field: LookupField,
    pub message: String,
}

impl LookupError {
    fn serial(message: impl Into<String>) -> Self {
        LookupError {
            field: LookupField::Serial,
            message: capitalise(message.into()),
        }
    }
    fn gtin(message: impl Into<String>) -> Self {
        LookupError {
            field: LookupField::Gtin,
            message: capitalise(message.into()),
        }
    }
}

fn capitalise(s: String) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

impl LookupQuery {
    pub fn parse(serial_input: &str, gtin_input: Option<&str>) -> Result<Self, LookupError> {
        let gtin_field = match gtin_input.map(str::trim).filter(|g| !g.is_empty()) {
            Some(g) => Some(Gtin::parse_typed(g).map_err(|e| LookupError::gtin(e.to_string()))?),
            None => None,
        };
        let input = serial_input.trim();
        // Text that could be a code but does not parse as one, and is a plain valid serial
        // (`AB/01/12345678`, `01095060001343521…` with digits only) is looked up as a serial.
        let plain_serial = || -> Option<SerialNumber> {
            let (_, prefixed) = strip_symbology(input);
            (!prefixed && !input.contains(GS) && !has_scheme(input))
                .then(|| SerialNumber::parse_typed(input).ok())
                .flatten()
        };
        let as_link = looks_like_digital_link(input).then(|| DigitalLink::parse(input));
        let as_code = looks_like_element_string(input).then(|| ElementString::parse(input));
        let (serial, code_gtin, lot, kind) = if let (Some(Err(_)), Some(serial)) =
            (&as_link, plain_serial())
        {
            (serial, None, None, InputKind::Typed)
        } else if let (Some(Ok(ElementString { serial: None, .. }) | Err(_)), Some(serial)) =
            (&as_code, plain_serial())
        {
            (serial, None, None, InputKind::Typed)
        } else if looks_like_digital_link(input) {
            let link = DigitalLink::parse(input).map_err(|e| LookupError::serial(e.to_string()))?;
            let serial = link.serial.ok_or_else(|| {
                LookupError::serial("this link identifies a product model, not one unit: type the serial number printed on the product")
            })?;
            (serial, Some(link.gtin), link.lot, InputKind::DigitalLink)
        } else if looks_like_element_string(input) {
            let es = ElementString::parse(input).map_err(|e| LookupError::serial(e.to_string()))?;
            let serial = es.serial.ok_or_else(|| {
                LookupError::serial("the scanned code has no serial number in it: scan the code that carries the serial, or type the serial")
            })?;
            (serial, es.gtin, es.lot, InputKind::ElementString)
        } else {
            let serial =
                SerialNumber::parse_typed(input).map_err(|e| LookupError::serial(e.to_string()))?;
            (serial, None, None, InputKind::Typed)
        };
        let gtin = match (gtin_field, code_gtin) {
            (Some(f), Some(c)) if f != c => {
                return Err(LookupError::gtin(format!(
                    "the code you entered is for GTIN {c}, but GTIN {f} was entered here: clear this field or correct it"
                )));
            }
            (f, c) => c.or(f),
        };
        Ok(LookupQuery {
            serial,
            gtin,
            lot,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_input_form() {
        let typed = LookupQuery::parse("  s/n: SN0001 ", None).unwrap();
        assert_eq!(
            (typed.serial.as_str(), typed.gtin, typed.kind),
            ("SN0001", None, InputKind::Typed)
        );

        let es =
            LookupQuery::parse("]d201095060001343521726123110ABC123\u{1d}21SN0001", None).unwrap();
        assert_eq!(es.serial.as_str(), "SN0001");
        assert_eq!(es.gtin.unwrap().as_string(), "09506000134352");
        assert_eq!(es.lot.as_deref(), Some("ABC123"));
        assert_eq!(es.kind, InputKind::ElementString);

        let dl = LookupQuery::parse(
            "https://id.example.com/01/09506000134352/10/ABC123/21/SN0001",
            Some(""),
        )
        .unwrap();
        assert_eq!(
            (dl.serial.as_str(), dl.kind),
            ("SN0001", InputKind::DigitalLink)
        );

        let with_gtin = LookupQuery::parse("SN0001", Some(" 9521234543213 ")).unwrap();
        assert_eq!(with_gtin.gtin.unwrap().as_string(), "09521234543213");
    }

    #[test]
    fn text_that_only_resembles_a_code_is_a_serial() {
        // 01 + a GTIN with a right check digit + more digits, but no AI after it.
        let q = LookupQuery::parse("01095060001343529912", None).unwrap();
        assert_eq!(
            (q.serial.as_str(), q.kind),
            ("01095060001343529912", InputKind::Typed)
        );
        let q = LookupQuery::parse("AB/01/12345678", None).unwrap();
        assert_eq!(
            (q.serial.as_str(), q.kind),
            ("AB/01/12345678", InputKind::Typed)
        );
        // A link pasted without its scheme still works.
        let q = LookupQuery::parse("id.example.com/01/09506000134352/21/SN0001", None).unwrap();
        assert_eq!(
            (q.serial.as_str(), q.kind),
            ("SN0001", InputKind::DigitalLink)
        );
        // With a scanner prefix it is a code, and its error is reported.
        assert!(LookupQuery::parse("]d201095060001343529912", None).is_err());
        // Spaces in the GTIN field are how the number is printed.
        let q = LookupQuery::parse("SN0001", Some("9 506000 134352")).unwrap();
        assert_eq!(q.gtin.unwrap().as_string(), "09506000134352");
    }

    #[test]
    fn reports_errors_against_the_right_field() {
        let e = LookupQuery::parse("AB#12", None).unwrap_err();
        assert_eq!(e.field, LookupField::Serial);
        assert_eq!(e.message, "A serial number cannot contain “#”");
        let e = LookupQuery::parse("SN0001", Some("09506000134353")).unwrap_err();
        assert_eq!(e.field, LookupField::Gtin);
        let e = LookupQuery::parse("https://x.example/01/09506000134352", None).unwrap_err();
        assert!(e.message.contains("not one unit"), "{}", e.message);
        let e = LookupQuery::parse("(01)09506000134352(17)261231", None).unwrap_err();
        assert!(e.message.contains("no serial number"), "{}", e.message);
        let e =
            LookupQuery::parse("/01/09506000134352/21/SN1", Some("09521234543213")).unwrap_err();
        assert_eq!(e.field, LookupField::Gtin);
        assert_eq!(
            LookupQuery::parse("", None).unwrap_err().message,
            "Enter the serial number"
        );
    }
}
