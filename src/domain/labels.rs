//! What a unit's printed label carries: the GS1 element string for its DataMatrix, the path of its
//! Digital Link for the QR code, and the human-readable `(AI) value` lines beside the codes.

use chrono::{Datelike, NaiveDate};

use super::digital_link::unit_path;
use super::gs1::GS;
use super::gtin::Gtin;
use super::serial::{SerialError, SerialNumber, check_cs82};

/// The identifiers of one unit, checked so that every one of them can go into a GS1 code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelData {
    gtin: Gtin,
    serial: SerialNumber,
    lot: Option<String>,
    expiry: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("the serial number cannot be printed in a GS1 code: {0}")]
    Serial(SerialError),
    #[error("the lot code cannot be printed in a GS1 code: {0}")]
    Lot(SerialError),
    #[error(
        "the expiry date {0} cannot be printed: a GS1 date (YYMMDD) only covers the years 2000 to 2099"
    )]
    Expiry(NaiveDate),
}

/// A date as GS1 `YYMMDD`, read back by [`super::gs1::parse_yymmdd`] as a year in 2000–2099.
fn yymmdd(d: NaiveDate) -> Option<String> {
    (2000..=2099)
        .contains(&d.year())
        .then(|| d.format("%y%m%d").to_string())
}

impl LabelData {
    pub fn new(
        gtin: Gtin,
        serial: &str,
        lot: Option<&str>,
        expiry: Option<NaiveDate>,
    ) -> Result<Self, LabelError> {
        let serial = SerialNumber::parse(serial).map_err(LabelError::Serial)?;
        if let Some(l) = lot {
            check_cs82(l).map_err(LabelError::Lot)?;
        }
        if let Some(d) = expiry
            && yymmdd(d).is_none()
        {
            return Err(LabelError::Expiry(d));
        }
        Ok(LabelData {
            gtin,
            serial,
            lot: lot.map(str::to_owned),
            expiry,
        })
    }

    pub fn gtin(&self) -> &Gtin {
        &self.gtin
    }

    pub fn serial(&self) -> &str {
        self.serial.as_str()
    }

    pub fn lot(&self) -> Option<&str> {
        self.lot.as_deref()
    }

    /// The expiry as printed after `(17)`.
    pub fn expiry_yymmdd(&self) -> Option<String> {
        self.expiry.and_then(yymmdd)
    }

    /// The element string as a GS1 DataMatrix carries it after its leading FNC1 (which the
    /// symbol encodes, not this string): `01` GTIN-14, `17` expiry, `10` lot, `21` serial.
    /// Fixed-length fields go first so that only the lot needs a GS separator; the serial,
    /// variable-length too, is last and needs none.
    pub fn element_string(&self) -> String {
        let mut s = format!("01{}", self.gtin);
        if let Some(e) = self.expiry_yymmdd() {
            s.push_str("17");
            s.push_str(&e);
        }
        if let Some(l) = &self.lot {
            s.push_str("10");
            s.push_str(l);
            s.push(GS);
        }
        s.push_str("21");
        s.push_str(self.serial.as_str());
        s
    }

    /// The same fields in the bracketed human-readable form, `(01)…(17)…(10)…(21)…`.
    pub fn bracketed(&self) -> String {
        self.human_readable()
            .into_iter()
            .map(|(ai, v)| format!("({ai}){v}"))
            .collect()
    }

    /// `(AI, value)` pairs in the order they are encoded, for the lines printed on the label.
    pub fn human_readable(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("01", self.gtin.to_string())];
        if let Some(e) = self.expiry_yymmdd() {
            v.push(("17", e));
        }
        if let Some(l) = &self.lot {
            v.push(("10", l.clone()));
        }
        v.push(("21", self.serial.to_string()));
        v
    }

    /// The path of the unit's GS1 Digital Link (the QR code carries it behind the base URL).
    pub fn digital_link_path(&self) -> String {
        unit_path(&self.gtin, self.lot.as_deref(), self.serial.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::digital_link::DigitalLink;
    use crate::domain::gs1::ElementString;
    use proptest::prelude::*;

    fn gtin() -> Gtin {
        Gtin::parse("09506000134352").unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn builds_the_product_brief_example() {
        let l = LabelData::new(gtin(), "SN0001", Some("ABC123"), Some(d(2026, 12, 31))).unwrap();
        assert_eq!(
            l.element_string(),
            "01095060001343521726123110ABC123\u{1d}21SN0001"
        );
        assert_eq!(
            l.bracketed(),
            "(01)09506000134352(17)261231(10)ABC123(21)SN0001"
        );
        assert_eq!(
            l.digital_link_path(),
            "/01/09506000134352/10/ABC123/21/SN0001"
        );
    }

    #[test]
    fn leaves_out_what_the_unit_does_not_have() {
        let no_expiry = LabelData::new(gtin(), "X1", Some("L1"), None).unwrap();
        assert_eq!(no_expiry.element_string(), "010950600013435210L1\u{1d}21X1");
        let bare = LabelData::new(gtin(), "X1", None, None).unwrap();
        assert_eq!(bare.element_string(), "010950600013435221X1");
        assert_eq!(bare.human_readable().len(), 2);
    }

    #[test]
    fn refuses_what_a_gs1_code_cannot_carry() {
        assert_eq!(
            LabelData::new(gtin(), "A B", None, None),
            Err(LabelError::Serial(SerialError::Space))
        );
        assert_eq!(
            LabelData::new(gtin(), "A1", Some("L#1"), None),
            Err(LabelError::Lot(SerialError::BadChar('#')))
        );
        assert_eq!(
            LabelData::new(gtin(), "A1", None, Some(d(2100, 1, 1))),
            Err(LabelError::Expiry(d(2100, 1, 1)))
        );
        assert_eq!(
            LabelData::new(gtin(), "A1", None, Some(d(1999, 12, 31))),
            Err(LabelError::Expiry(d(1999, 12, 31)))
        );
    }

    proptest! {
        /// Whatever is printed reads back, through the portal's own scanner parser and
        /// Digital Link parser, as exactly the unit's identifiers.
        #[test]
        fn labels_round_trip_through_the_parsers(
            serial in "[!\"%&'()*+,\\-./0-9:;<=>?A-Z_a-z]{1,20}",
            lot in proptest::option::of("[!\"%&'()*+,\\-./0-9:;<=>?A-Z_a-z]{1,20}"),
            expiry in proptest::option::of((2000i32..=2099, 1u32..=12, 1u32..=28)),
        ) {
            let expiry = expiry.map(|(y, m, day)| d(y, m, day));
            let l = LabelData::new(gtin(), &serial, lot.as_deref(), expiry).unwrap();
            let want = ElementString {
                gtin: Some(gtin()),
                lot: lot.clone(),
                serial: Some(SerialNumber::parse(&serial).unwrap()),
                production_date: None,
                expiry_date: expiry,
            };
            prop_assert_eq!(ElementString::parse(&l.element_string()).unwrap(), want.clone());
            prop_assert_eq!(ElementString::parse(&format!("]d2{}", l.element_string())).unwrap(), want);
            let link = DigitalLink::parse(&format!("https://id.example.com{}", l.digital_link_path())).unwrap();
            prop_assert_eq!(link.serial.map(|s| s.to_string()), Some(serial));
            prop_assert_eq!(link.lot, lot);
        }
    }
}
