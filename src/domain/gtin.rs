//! GTIN: 8, 12, 13 or 14 digits with a GS1 mod-10 check digit, stored left-padded to 14.

use std::fmt;

/// A valid GTIN, always held as its 14-digit form (GTIN-14, left-padded with zeros).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin([u8; 14]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtinError {
    #[error("enter the GTIN: the 8 to 14 digit number printed under the barcode")]
    Empty,
    #[error("a GTIN contains only digits (0-9)")]
    NotDigits,
    #[error("a GTIN has 8, 12, 13 or 14 digits; this one has {0}")]
    WrongLength(usize),
    #[error(
        "the last digit of this GTIN does not match its check digit: please check it for a typo"
    )]
    CheckDigit,
}

/// The GS1 mod-10 check digit over `digits` (all digits except the check digit itself):
/// from the right, weights 3,1,3,1…; check = (10 − sum mod 10) mod 10.
pub fn gs1_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl Gtin {
    /// Parses a GTIN-8/12/13/14 as typed or scanned (surrounding whitespace is ignored).
    pub fn parse(input: &str) -> Result<Self, GtinError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(GtinError::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GtinError::NotDigits);
        }
        if !matches!(s.len(), 8 | 12 | 13 | 14) {
            return Err(GtinError::WrongLength(s.len()));
        }
        let mut digits = [0u8; 14];
        let offset = 14 - s.len();
        for (i, b) in s.bytes().enumerate() {
            digits[offset + i] = b - b'0';
        }
        if gs1_check_digit(&digits[..13]) != digits[13] {
            return Err(GtinError::CheckDigit);
        }
        Ok(Gtin(digits))
    }

    /// Parses a GTIN that must be exactly digits, as inside a barcode or a Digital Link.
    pub fn parse_exact(s: &str) -> Result<Self, GtinError> {
        if s.trim() != s {
            return Err(GtinError::NotDigits);
        }
        Self::parse(s)
    }

    /// Parses the GTIN form field, where people copy the number as printed under the barcode,
    /// in groups: spaces and hyphens between digits are ignored.
    pub fn parse_typed(s: &str) -> Result<Self, GtinError> {
        let compact: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        Self::parse(&compact)
    }

    /// The 14-digit form, as stored and as used in GS1 Digital Links.
    pub fn as_string(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl fmt::Debug for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gtin({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_product_brief_examples() {
        for s in ["09506000134352", "09521234543213"] {
            assert_eq!(Gtin::parse(s).unwrap().as_string(), s);
        }
    }

    #[test]
    fn pads_short_forms_to_fourteen_digits() {
        // GTIN-13 and GTIN-12 of the same examples, and a GTIN-8.
        assert_eq!(
            Gtin::parse("9506000134352").unwrap().as_string(),
            "09506000134352"
        );
        assert_eq!(
            Gtin::parse(" 9521234543213 ").unwrap().as_string(),
            "09521234543213"
        );
        assert_eq!(
            Gtin::parse("96385074").unwrap().as_string(),
            "00000096385074"
        );
        assert_eq!(
            Gtin::parse("036000291452").unwrap().as_string(),
            "00036000291452"
        );
    }

    #[test]
    fn rejects_malformed_input_with_a_reason() {
        assert_eq!(Gtin::parse(""), Err(GtinError::Empty));
        assert_eq!(Gtin::parse("   "), Err(GtinError::Empty));
        assert_eq!(Gtin::parse("0950600013435A"), Err(GtinError::NotDigits));
        assert_eq!(Gtin::parse("095060001343"), Err(GtinError::CheckDigit));
        assert_eq!(Gtin::parse("09506000134"), Err(GtinError::WrongLength(11)));
        assert_eq!(
            Gtin::parse("095060001343521"),
            Err(GtinError::WrongLength(15))
        );
        assert_eq!(Gtin::parse("09506000134353"), Err(GtinError::CheckDigit));
        assert_eq!(Gtin::parse("-9506000134352"), Err(GtinError::NotDigits));
        assert_eq!(
            Gtin::parse_exact(" 9506000134352"),
            Err(GtinError::NotDigits)
        );
        assert_eq!(
            Gtin::parse_typed("9 506000 134352").unwrap().as_string(),
            "09506000134352"
        );
        assert_eq!(
            Gtin::parse_typed("0-9506000-13435-2").unwrap().as_string(),
            "09506000134352"
        );
    }

    proptest! {
        #[test]
        fn any_single_changed_digit_is_rejected(pos in 0usize..14, delta in 1u8..10) {
            for base in ["09506000134352", "09521234543213"] {
                let mut b = base.as_bytes().to_vec();
                b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
                let s = String::from_utf8(b).unwrap();
                prop_assert_eq!(Gtin::parse(&s), Err(GtinError::CheckDigit));
            }
        }

        #[test]
        fn a_computed_check_digit_always_validates(body in proptest::collection::vec(0u8..10, 13)) {
            let check = gs1_check_digit(&body);
            let s: String = body.iter().chain(std::iter::once(&check)).map(|d| char::from(b'0' + d)).collect();
            let g = Gtin::parse(&s).unwrap();
            prop_assert_eq!(g.as_string(), s);
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = Gtin::parse(&s);
        }
    }
}
