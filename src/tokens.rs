//! Random secrets handed to browsers and mailboxes (session cookies, CSRF tokens, links in
//! mails, integration tokens). Only their SHA-256 is stored, so a copy of the database does
//! not yield usable ones.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Seals `secret` for the holder of `key` (a secret the database never holds, such as a session
/// cookie): XOR with a SHA-256 key stream of `key` and a fresh random nonce. Returns (nonce,
/// sealed). Integrity comes from the caller, who knows the secret's hash and checks the
/// unsealed value against it.
pub fn seal(key: &str, secret: &str) -> ([u8; 16], Vec<u8>) {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = xor_stream(key, &nonce, secret.as_bytes());
    (nonce, sealed)
}

/// The secret [`seal`] sealed, if `key` and `nonce` are the ones it used (otherwise garbage, or
/// `None` when it is not even text).
pub fn unseal(key: &str, nonce: &[u8], sealed: &[u8]) -> Option<String> {
    String::from_utf8(xor_stream(key, nonce, sealed)).ok()
}

fn xor_stream(key: &str, nonce: &[u8], data: &[u8]) -> Vec<u8> {
    data.chunks(32)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let block = Sha256::new()
                .chain_update(b"recall-portal seal v1\0")
                .chain_update(key.as_bytes())
                .chain_update(nonce)
                .chain_update((i as u64).to_be_bytes())
                .finalize();
            chunk
                .iter()
                .zip(block)
                .map(|(d, k)| d ^ k)
                .collect::<Vec<u8>>()
        })
        .collect()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_url_safe_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 32);
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &b));
        assert!(!constant_time_eq("abc", "abcd"));
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key() {
        let (key, secret) = (new_token(), format!("rpt_{}", new_token()));
        let (nonce, sealed) = seal(&key, &secret);
        assert_eq!(sealed.len(), secret.len());
        assert!(
            !sealed
                .windows(8)
                .any(|w| secret.as_bytes().windows(8).any(|s| s == w))
        );
        assert_eq!(
            unseal(&key, &nonce, &sealed).as_deref(),
            Some(secret.as_str())
        );
        assert_ne!(
            unseal(&new_token(), &nonce, &sealed).as_deref(),
            Some(secret.as_str())
        );
        let (nonce2, sealed2) = seal(&key, &secret);
        assert_ne!(
            (nonce, &sealed),
            (nonce2, &sealed2),
            "a fresh nonce each time"
        );
    }
}
