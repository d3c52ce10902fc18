//! Random secrets handed to browsers and mailboxes (session cookies, CSRF tokens, links in
//! mails, integration tokens). Only their SHA-256 is stored, so a copy of the database does
//! not yield usable ones.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
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
/// cookie) with ChaCha20-Poly1305 under a fresh random nonce, bound to `context` (for example
/// the id of the record it is stored with, so a sealed value cannot be moved to another one).
/// Returns (nonce, sealed); `sealed` carries the 16-byte tag.
pub fn seal(key: &str, context: &[u8], secret: &str) -> ([u8; 12], Vec<u8>) {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher(key)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: context,
            },
        )
        // Encryption fails only for messages beyond 256 GiB.
        .unwrap_or_default();
    (nonce, sealed)
}

/// The secret [`seal`] sealed, if `key`, `context` and `nonce` are the ones it used and nothing
/// was altered; `None` otherwise.
pub fn unseal(key: &str, context: &[u8], nonce: &[u8], sealed: &[u8]) -> Option<String> {
    if nonce.len() != 12 {
        return None;
    }
    let plain = cipher(key)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: context,
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

/// The cipher keyed by SHA-256 of `key` (a 256-bit random secret already, so the hash only
/// separates this use from the stored token hashes).
fn cipher(key: &str) -> ChaCha20Poly1305 {
    let k = Sha256::new()
        .chain_update(b"recall-portal seal v2\0")
        .chain_update(key.as_bytes())
        .finalize();
    ChaCha20Poly1305::new(&k)
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
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let (key, secret) = (new_token(), format!("rpt_{}", new_token()));
        let (nonce, sealed) = seal(&key, b"7", &secret);
        assert_eq!(sealed.len(), secret.len() + 16, "ciphertext and tag");
        assert!(
            !sealed
                .windows(8)
                .any(|w| secret.as_bytes().windows(8).any(|s| s == w))
        );
        assert_eq!(
            unseal(&key, b"7", &nonce, &sealed).as_deref(),
            Some(secret.as_str())
        );
        assert_eq!(unseal(&new_token(), b"7", &nonce, &sealed), None);
        assert_eq!(unseal(&key, b"8", &nonce, &sealed), None, "another record");
        assert_eq!(unseal(&key, b"7", &nonce[..8], &sealed), None);
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(unseal(&key, b"7", &nonce, &tampered), None);
        let (nonce2, sealed2) = seal(&key, b"7", &secret);
        assert_ne!(
            (nonce, &sealed),
            (nonce2, &sealed2),
            "a fresh nonce each time"
        );
    }
}
