//! Integration tokens: what a token may do (its scopes), its name, the shape of its secret, and
//! the `Idempotency-Key` its writes may carry.

use std::fmt;

/// What an integration token may do. A token has one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read a unit's history (the public reads need no scope, only a valid token for the
    /// higher rate limit).
    Read,
    /// Create units and record stock movements.
    StockWrite,
    /// Link units to sales.
    SalesWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::StockWrite, Scope::SalesWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::StockWrite => "stock:write",
            Scope::SalesWrite => "sales:write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Scope::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// For people: what the scope allows.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Read => "read unit histories",
            Scope::StockWrite => "create units and record stock movements",
            Scope::SalesWrite => "link units to sales",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scopes as people and the security log read them: `read, stock:write`.
pub fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The scopes a new token gets: at least one, each once, in a fixed order.
pub fn scopes(chosen: impl IntoIterator<Item = Scope>) -> Result<Vec<Scope>, &'static str> {
    let mut v: Vec<Scope> = chosen.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    if v.is_empty() {
        Err("choose at least one thing the token may do")
    } else {
        Ok(v)
    }
}

/// A token's name, so admins know whose it is ("ERP", "Retailer Ltd shop"): 1–100 characters,
/// one line.
pub fn token_name(input: &str) -> Result<String, &'static str> {
    let name = input.trim();
    if name.is_empty() {
        Err("give the token a name that says who uses it")
    } else if name.chars().count() > 100 {
        Err("a name has at most 100 characters")
    } else if name.chars().any(char::is_control) {
        Err("the name contains control characters")
    } else {
        Ok(name.to_owned())
    }
}

/// Every token secret starts with this, so a leaked one is recognisable (secret scanners,
/// logs) and a session cookie or mail link is never mistaken for one.
pub const SECRET_PREFIX: &str = "rpt_";

/// Whether `s` has the shape of a token secret (the prefix and 43 URL-safe characters):
/// anything else is refused without a database query.
pub fn looks_like_secret(s: &str) -> bool {
    s.strip_prefix(SECRET_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The `Idempotency-Key` header: 1–255 visible ASCII characters (a UUID is the usual choice).
pub fn idempotency_key(input: &str) -> Result<&str, &'static str> {
    if input.is_empty() {
        Err("the Idempotency-Key header is empty")
    } else if input.len() > 255 {
        Err("an Idempotency-Key has at most 255 characters")
    } else if !input.bytes().all(|b| b.is_ascii_graphic()) {
        Err("an Idempotency-Key has visible ASCII characters only (a UUID, say)")
    } else {
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_a_token_needs_one() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("write"), None);
        assert!(scopes([]).is_err());
        assert_eq!(
            scopes([Scope::SalesWrite, Scope::Read, Scope::SalesWrite]).unwrap(),
            [Scope::Read, Scope::SalesWrite]
        );
    }

    #[test]
    fn names_secrets_and_keys_are_checked() {
        assert_eq!(token_name("  ERP  ").unwrap(), "ERP");
        assert!(token_name(" ").is_err());
        assert!(token_name(&"n".repeat(101)).is_err());
        assert!(token_name("a\nb").is_err());
        let secret = format!("{SECRET_PREFIX}{}", crate::tokens::new_token());
        assert!(looks_like_secret(&secret));
        assert!(!looks_like_secret(&crate::tokens::new_token()));
        assert!(!looks_like_secret(&format!("{secret}x")));
        assert!(!looks_like_secret(&secret.replace('_', "#")));
        assert_eq!(idempotency_key("a-1").unwrap(), "a-1");
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key("a b").is_err());
        assert!(idempotency_key(&"k".repeat(256)).is_err());
    }
}
