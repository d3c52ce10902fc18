//! A product model's declared serial format, so typos are refused before any database query.
//!
//! Pattern syntax: literal CS82 characters, `#` for one digit and `@` for a check digit (GS1
//! mod-10 over all digits before it). `#` and `@` are not in CS82, so they never clash with a
//! literal. Example: `VC########@` is `VC`, eight digits and a check digit.

use super::gtin::gs1_check_digit;
use super::serial::is_cs82;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Literal(char),
    Digit,
    Check,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialFormat {
    pattern: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialFormatError {
    #[error("a serial format needs at least one character")]
    Empty,
    #[error("a serial format describes at most 20 characters")]
    TooLong,
    #[error("“{0}” cannot appear in a serial number")]
    BadChar(char),
    #[error("a check digit (@) must come last and follow at least one digit (#)")]
    CheckPlacement,
}

impl SerialFormat {
    pub fn parse(pattern: &str) -> Result<Self, SerialFormatError> {
        let mut parts = Vec::new();
        for c in pattern.chars() {
            parts.push(match c {
                '#' => Part::Digit,
                '@' => Part::Check,
                c if is_cs82(c) => Part::Literal(c),
                c => return Err(SerialFormatError::BadChar(c)),
            });
        }
        if parts.is_empty() {
            return Err(SerialFormatError::Empty);
        }
        if parts.len() > 20 {
            return Err(SerialFormatError::TooLong);
        }
        let checks: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == Part::Check)
            .map(|(i, _)| i)
            .collect();
        if !checks.is_empty() && (checks != [parts.len() - 1] || !parts.contains(&Part::Digit)) {
            return Err(SerialFormatError::CheckPlacement);
        }
        Ok(SerialFormat {
            pattern: pattern.to_owned(),
            parts,
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether `serial` fits. `case_sensitive = false` compares letters case-insensitively.
    pub fn matches(&self, serial: &str, case_sensitive: bool) -> bool {
        let chars: Vec<char> = serial.chars().collect();
        if chars.len() != self.parts.len() {
            return false;
        }
        let mut digits = Vec::new();
        for (p, c) in self.parts.iter().zip(&chars) {
            let ok = match p {
                Part::Literal(l) if case_sensitive => l == c,
                Part::Literal(l) => l.eq_ignore_ascii_case(c),
                Part::Digit if c.is_ascii_digit() => {
                    digits.push(*c as u8 - b'0');
                    true
                }
                Part::Digit => false,
                Part::Check => c.is_ascii_digit() && gs1_check_digit(&digits) == *c as u8 - b'0',
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// A plain-words description, e.g. “VC followed by 9 digits”.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.parts.len() {
            match self.parts[i] {
                Part::Literal(_) => {
                    let lit: String = self.parts[i..]
                        .iter()
                        .map_while(|p| {
                            if let Part::Literal(c) = p {
                                Some(*c)
                            } else {
                                None
                            }
                        })
                        .collect();
                    i += lit.chars().count();
                    out.push(format!("“{lit}”"));
                }
                Part::Digit | Part::Check => {
                    let n = self.parts[i..]
                        .iter()
                        .take_while(|p| !matches!(p, Part::Literal(_)))
                        .count();
                    i += n;
                    out.push(if n == 1 {
                        "1 digit".to_owned()
                    } else {
                        format!("{n} digits")
                    });
                }
            }
        }
        out.join(" then ")
    }

    /// An example serial of this format (digits counting up, a correct check digit).
    pub fn example(&self) -> String {
        let mut digits = Vec::new();
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(c) => s.push(*c),
                Part::Digit => {
                    let d = (digits.len() as u8 + 1) % 10;
                    digits.push(d);
                    s.push(char::from(b'0' + d));
                }
                Part::Check => s.push(char::from(b'0' + gs1_check_digit(&digits))),
            }
        }
        s
    }

    /// How many running numbers the format has room for (10^digits).
    pub fn capacity(&self) -> u64 {
        let digits = self.parts.iter().filter(|p| **p == Part::Digit).count() as u32;
        10u64.checked_pow(digits).unwrap_or(u64::MAX)
    }

    /// A SQL LIKE pattern matching every serial of this format (digits and the check digit as
    /// `_`), in upper case when `fold` (for case-insensitive keys). Literal `%` and `_` are
    /// escaped with `\`.
    pub fn like_pattern(&self, fold: bool) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(c) => {
                    let c = if fold { c.to_ascii_uppercase() } else { *c };
                    if c == '%' || c == '_' || c == '\\' {
                        s.push('\\');
                    }
                    s.push(c);
                }
                Part::Digit | Part::Check => s.push('_'),
            }
        }
        s
    }

    /// The running number of a serial of this format (its digits, without the check digit).
    pub fn number_of(&self, serial: &str) -> Option<u64> {
        let chars: Vec<char> = serial.chars().collect();
        if chars.len() != self.parts.len() {
            return None;
        }
        let digits: String = self
            .parts
            .iter()
            .zip(&chars)
            .filter(|(p, _)| **p == Part::Digit)
            .map(|(_, c)| *c)
            .collect();
        if digits.is_empty() {
            None
        } else {
            digits.parse().ok()
        }
    }

    /// Builds the serial with this format for a running number (`None` if it does not fit the
    /// digit positions). Used by the demo seed and, later, serial generation.
    pub fn render(&self, number: u64) -> Option<String> {
        let width = self.parts.iter().filter(|p| **p == Part::Digit).count();
        let text = format!("{number:0width$}");
        if text.len() > width {
            return None;
        }
        let mut fill = text.bytes().map(|b| b - b'0');
        let mut digits = Vec::new();
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(c) => s.push(*c),
                Part::Digit => {
                    let d = fill.next()?;
                    digits.push(d);
                    s.push(char::from(b'0' + d));
                }
                Part::Check => s.push(char::from(b'0' + gs1_check_digit(&digits))),
            }
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn describes_and_matches() {
        let f = SerialFormat::parse("VC########@").unwrap();
        assert_eq!(f.describe(), "“VC” then 9 digits");
        let ex = f.example();
        assert!(f.matches(&ex, false), "{ex}");
        assert!(f.matches(&ex.to_lowercase(), false));
        assert!(!f.matches(&ex.to_lowercase(), true));
        let mut typo = ex.clone().into_bytes();
        typo[4] = if typo[4] == b'9' { b'0' } else { typo[4] + 1 };
        assert!(!f.matches(std::str::from_utf8(&typo).unwrap(), false));
        assert!(!f.matches("VC1234", false));
        let sn = SerialFormat::parse("SN####").unwrap();
        assert!(sn.matches("SN0001", false));
        assert!(sn.matches("sn0001", false));
        assert!(!sn.matches("SN001", false));
        assert!(!sn.matches("SNA001", false));
        assert_eq!(sn.describe(), "“SN” then 4 digits");
        assert_eq!(
            SerialFormat::parse("A#-#").unwrap().describe(),
            "“A” then 1 digit then “-” then 1 digit"
        );
    }

    #[test]
    fn refuses_bad_patterns() {
        assert_eq!(SerialFormat::parse(""), Err(SerialFormatError::Empty));
        assert_eq!(
            SerialFormat::parse("A B"),
            Err(SerialFormatError::BadChar(' '))
        );
        assert_eq!(
            SerialFormat::parse("@##"),
            Err(SerialFormatError::CheckPlacement)
        );
        assert_eq!(
            SerialFormat::parse("AB@"),
            Err(SerialFormatError::CheckPlacement)
        );
        assert_eq!(
            SerialFormat::parse(&"#".repeat(21)),
            Err(SerialFormatError::TooLong)
        );
    }

    #[test]
    fn renders_running_numbers() {
        let f = SerialFormat::parse("VC########@").unwrap();
        let s = f.render(42).unwrap();
        assert!(s.starts_with("VC00000042"));
        assert!(f.matches(&s, true));
        assert_eq!(f.render(1_000_000_000), None);
        assert_eq!(f.capacity(), 100_000_000);
        assert_eq!(f.number_of(&s), Some(42));
        assert_eq!(f.like_pattern(false), "VC_________");
        assert_eq!(
            SerialFormat::parse("a_#").unwrap().like_pattern(true),
            "A\\__"
        );
    }

    proptest! {
        #[test]
        fn every_rendered_serial_matches_and_any_digit_change_is_caught(n in 0u64..100_000_000, pos in 2usize..10, delta in 1u8..10) {
            let f = SerialFormat::parse("VC########@").unwrap();
            let s = f.render(n).unwrap();
            prop_assert!(f.matches(&s, true));
            let mut b = s.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            prop_assert!(!f.matches(std::str::from_utf8(&b).unwrap(), true));
        }
    }
}
