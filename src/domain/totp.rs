//! Time-based one-time codes (TOTP, RFC 6238 over HOTP, RFC 4226): HMAC-SHA1, 30-second steps,
//! six digits, the settings every authenticator app uses by default. A code is accepted for
//! the step it was made in or the one before or after (clocks drift), and each step only once
//! (the caller keeps the last step used).

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// The HOTP value of `counter` under `secret`, as `digits` decimal digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = (u32::from(hash[offset]) & 0x7f) << 24
        | u32::from(hash[offset + 1]) << 16
        | u32::from(hash[offset + 2]) << 8
        | u32::from(hash[offset + 3]);
    let code = binary % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// The step a Unix time falls in.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The code for a step.
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    hotp(secret, u64::try_from(step).unwrap_or(0), DIGITS)
}

/// The step `code` was made for, if it is the code of the step at `unix_secs` or of the one
/// before or after it. Spaces and dashes people type are ignored; anything else that is not
/// six digits is no code.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: i64) -> Option<i64> {
    let code: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_secs);
    [now, now - 1, now + 1]
        .into_iter()
        .find(|step| crate::tokens::constant_time_eq(&code_at_step(secret, *step), &code))
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret typed by hand.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The secret in groups of four, easier to type.
pub fn grouped(secret_base32: &str) -> String {
    secret_base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `otpauth://` address an authenticator app reads from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let label = format!("{issuer}:{account}");
    format!(
        "otpauth://totp/{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        utf8_percent_encode(&label, NON_ALPHANUMERIC),
        base32(secret),
        utf8_percent_encode(issuer, NON_ALPHANUMERIC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn the_rfc_6238_and_4226_test_vectors() {
        // RFC 6238 appendix B (SHA-1, 8 digits).
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(hotp(RFC_SECRET, step_at(time) as u64, 8), code, "{time}");
        }
        // RFC 4226 appendix D (6 digits).
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in want.iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), *code);
        }
    }

    #[test]
    fn a_code_counts_for_its_step_and_its_neighbours_only() {
        let t = 1_234_567_890;
        let now = step_at(t);
        let code = code_at_step(RFC_SECRET, now);
        assert_eq!(matching_step(RFC_SECRET, &code, t), Some(now));
        assert_eq!(
            matching_step(RFC_SECRET, &format!("{} {}", &code[..3], &code[3..]), t),
            Some(now)
        );
        assert_eq!(matching_step(RFC_SECRET, &code, t + 30), Some(now));
        assert_eq!(matching_step(RFC_SECRET, &code, t - 30), Some(now));
        assert_eq!(matching_step(RFC_SECRET, &code, t + 90), None);
        for junk in ["", "12345", "1234567", "abcdef", "１２３４５６"] {
            assert_eq!(matching_step(RFC_SECRET, junk, t), None, "{junk}");
        }
    }

    #[test]
    fn base32_and_the_authenticator_address() {
        // RFC 4648 section 10.
        for (plain, coded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), coded);
        }
        assert_eq!(grouped("MZXW6YTBOI"), "MZXW 6YTB OI");
        let uri = otpauth_uri("Arden Recall Portal", "ann@example.com", RFC_SECRET);
        assert!(
            uri.starts_with("otpauth://totp/Arden%20Recall%20Portal%3Aann%40example%2Ecom?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Arden%20Recall%20Portal"),
            "{uri}"
        );
    }
}
