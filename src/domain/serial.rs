//! Serial numbers (GS1 AI 21) and lot codes (AI 10): 1–20 characters of GS1 character set 82,
//! plus the forgiving clean-up of what a customer types into the lookup box.

use std::fmt;

/// Longest serial or lot code GS1 allows (AI 21 and AI 10 are both `X..20`).
pub const MAX_LEN: usize = 20;

/// Whether `c` belongs to GS1 AI encodable character set 82.
pub fn is_cs82(c: char) -> bool {
    matches!(c,
        '!' | '"' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.' | '/'
        | '0'..='9' | ':' | ';' | '<' | '=' | '>' | '?' | 'A'..='Z' | '_' | 'a'..='z')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error("enter the serial number")]
    Empty,
    #[error("a serial number has at most 20 characters; this has {0}")]
    TooLong(usize),
    #[error("a serial number cannot contain a space")]
    Space,
    #[error("a serial number cannot contain {}", shown(*.0))]
    BadChar(char),
}

/// A character as a person can see it in a message: invisible ones by their code point.
fn shown(c: char) -> String {
    if c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}' | '\u{00ad}'
        )
    {
        format!("the invisible character U+{:04X}", c as u32)
    } else {
        format!("“{c}”")
    }
}

/// Maps look-alike characters that phones, word processors and PDFs put into copied text to
/// the ASCII a label actually carries: dashes and minus signs to `-`, full-width forms to ASCII,
/// non-breaking and zero-width spaces to nothing at the ends.
fn fold_lookalikes(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe63}' => '-',
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{00a0}' | '\u{2007}' | '\u{202f}' | '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

fn trim_invisible(s: &str) -> &str {
    s.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
    })
}

/// Checks a serial or lot code against GS1 CS82 and the 1–20 length rule.
pub fn check_cs82(s: &str) -> Result<(), SerialError> {
    if s.is_empty() {
        return Err(SerialError::Empty);
    }
    if let Some(c) = s.chars().find(|c| !is_cs82(*c)) {
        return Err(if c.is_whitespace() {
            SerialError::Space
        } else {
            SerialError::BadChar(c)
        });
    }
    let n = s.chars().count();
    if n > MAX_LEN {
        return Err(SerialError::TooLong(n));
    }
    Ok(())
}

/// A syntactically valid serial number, exactly as it is printed (case is preserved: whether
/// case matters is a property of the product model, decided when the serial is matched).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNumber(String);

impl SerialNumber {
    /// Parses an exact serial (as scanned or as stored): no label stripping, no trimming.
    pub fn parse(s: &str) -> Result<Self, SerialError> {
        check_cs82(s)?;
        Ok(SerialNumber(s.to_owned()))
    }

    /// Parses what a person typed: surrounding whitespace and a leading `S/N`, `SN:`, `SN `,
    /// `Serial:` or `Serial No.` label (any case) are removed first.
    pub fn parse_typed(input: &str) -> Result<Self, SerialError> {
        let folded = fold_lookalikes(input);
        Self::parse(trim_invisible(strip_label(trim_invisible(&folded))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key a case-insensitive model matches on (CS82 is ASCII, so ASCII upper case suffices).
    pub fn folded(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({:?})", self.0)
    }
}

/// Removes one leading serial label. `SN` and `Serial` only count as a label when a colon,
/// period or whitespace follows, because real serials such as `SN0001` start with those letters.
fn strip_label(s: &str) -> &str {
    let lower = s.to_ascii_lowercase();
    // `S/N` is never the start of a real serial in practice, so it is removed even without a
    // separator (`S/N12345`). Longest labels first.
    for label in [
        "serial number",
        "serial no.",
        "serial no",
        "serial",
        "s/n",
        "sn",
    ] {
        if let Some(rest) = lower.strip_prefix(label) {
            let rest_start = s.len() - rest.len();
            let after = &s[rest_start..];
            let sep = after.chars().next();
            let needs_sep = label != "s/n";
            match sep {
                Some(':') | Some('#') => return after[1..].trim_start(),
                Some('.') if label.starts_with("serial") && label != "serial no." => {
                    return after[1..].trim_start();
                }
                Some(c) if c.is_whitespace() => return after.trim_start(),
                _ if !needs_sep => return after,
                _ => {}
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_every_cs82_character() {
        let all =
            "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
        assert_eq!(all.chars().count(), 82);
        for chunk in all.chars().collect::<Vec<_>>().chunks(20) {
            let s: String = chunk.iter().collect();
            assert!(SerialNumber::parse(&s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_characters_outside_cs82() {
        for (s, c) in [
            ("AB#1", '#'),
            ("AB$1", '$'),
            ("AB@1", '@'),
            ("ÄB1", 'Ä'),
            ("A\u{1d}B", '\u{1d}'),
        ] {
            assert_eq!(SerialNumber::parse(s), Err(SerialError::BadChar(c)), "{s}");
        }
        assert_eq!(SerialNumber::parse("AB 1"), Err(SerialError::Space));
        assert_eq!(SerialNumber::parse(""), Err(SerialError::Empty));
        assert_eq!(
            SerialNumber::parse(&"A".repeat(21)),
            Err(SerialError::TooLong(21))
        );
        assert!(SerialNumber::parse(&"A".repeat(20)).is_ok());
    }

    #[test]
    fn typed_input_is_normalised() {
        for typed in [
            "SN0001",
            "  SN0001\t",
            "S/N SN0001",
            "S/N: SN0001",
            "s/nSN0001",
            "SN: SN0001",
            "sn:SN0001",
            "SN SN0001",
            "Serial: SN0001",
            "serial SN0001",
            "Serial No. SN0001",
            "Serial number: SN0001",
            "SN# SN0001",
        ] {
            assert_eq!(
                SerialNumber::parse_typed(typed).unwrap().as_str(),
                "SN0001",
                "{typed:?}"
            );
        }
        // A serial that merely starts with the letters of a label is kept whole.
        assert_eq!(SerialNumber::parse_typed("SNX9").unwrap().as_str(), "SNX9");
        assert_eq!(
            SerialNumber::parse_typed("Serialx").unwrap().as_str(),
            "Serialx"
        );
        assert_eq!(
            SerialNumber::parse_typed("sn0001").unwrap().folded(),
            "SN0001"
        );
        assert_eq!(SerialNumber::parse_typed("S/N"), Err(SerialError::Empty));
        assert_eq!(SerialNumber::parse_typed("   "), Err(SerialError::Empty));
        // `SN.` is not a label: dotted serials keep their letters.
        assert_eq!(
            SerialNumber::parse_typed("SN.2024.1").unwrap().as_str(),
            "SN.2024.1"
        );
        // Look-alikes from copied text.
        assert_eq!(
            SerialNumber::parse_typed("\u{a0}AB\u{2013}12\u{200b}")
                .unwrap()
                .as_str(),
            "AB-12"
        );
        assert_eq!(
            SerialNumber::parse_typed("ＳＮ０７００").unwrap().as_str(),
            "SN0700"
        );
        assert_eq!(
            SerialNumber::parse_typed("AB\u{200b}12")
                .unwrap_err()
                .to_string(),
            "a serial number cannot contain the invisible character U+200B"
        );
    }

    proptest! {
        #[test]
        fn valid_serials_round_trip(s in "[!\"%&'()*+,\\-./0-9:;<=>?A-Z_a-z]{1,20}") {
            prop_assert_eq!(SerialNumber::parse(&s).unwrap().to_string(), s);
        }

        #[test]
        fn surrounding_whitespace_never_matters(s in "[A-Z0-9]{1,20}", l in "[ \t]{0,3}", r in "[ \t\r\n]{0,3}") {
            let typed = format!("{l}{s}{r}");
            prop_assert_eq!(SerialNumber::parse_typed(&typed).unwrap().to_string(), s);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = SerialNumber::parse_typed(&s);
        }
    }
}
