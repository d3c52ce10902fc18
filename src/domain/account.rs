//! Accounts: email addresses, roles and the password policy.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Customer,
    Staff,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Role::Customer),
            "staff" => Some(Role::Staff),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether this role may enter an area meant for `needed` (admins may do what staff do).
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }

    pub const ALL: [Role; 3] = [Role::Customer, Role::Staff, Role::Admin];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An email address as the portal stores it: trimmed and lower-cased (addresses are matched
/// case-insensitively in practice, whatever RFC 5321 allows).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("enter your email address")]
    Empty,
    #[error("an email address looks like name@example.com")]
    Shape,
    #[error("that email address is too long")]
    TooLong,
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(EmailError::Shape);
        };
        let ok_local =
            !local.is_empty() && local.len() <= 64 && !local.contains(char::is_whitespace);
        let ok_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        // Control characters and angle brackets would let an address smuggle mail headers.
        let clean = !s
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"' | '\\'));
        if ok_local && ok_domain && clean {
            Ok(Email(s))
        } else {
            Err(EmailError::Shape)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shortest password accepted, whatever its strength score.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted (argon2 does not care, but a megabyte "password" is an attack;
/// OWASP ASVS asks for at least 64 allowed and more than 128 refused).
pub const MAX_PASSWORD_LEN: usize = 128;

/// Refuses weak and common passwords with an explanation, using zxcvbn's estimate of how many
/// guesses a password takes (score 3 = about 10^10 guesses, the minimum accepted). `context`
/// holds words that make a password easy to guess for this person (their email).
pub fn check_password(password: &str, context: &[&str]) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "Use at least {MIN_PASSWORD_LEN} characters. A few unrelated words make a strong password that is easy to remember."
        ));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(format!("Use at most {MAX_PASSWORD_LEN} characters."));
    }
    let lower = password.to_lowercase();
    for c in context {
        let local = c.split('@').next().unwrap_or("");
        if local.len() >= 3 && lower.contains(&local.to_lowercase()) {
            return Err("Do not build your password from your email address: it is the first thing an attacker tries.".to_owned());
        }
    }
    let mut words: Vec<&str> = context.to_vec();
    for c in context {
        words.extend(c.split(['@', '.', '_', '-', '+']).filter(|w| w.len() >= 3));
    }
    words.extend(["recall", "warranty", "portal", "product", "safety"]);
    let estimate = zxcvbn::zxcvbn(password, &words);
    if (estimate.score() as u8) >= 3 {
        return Ok(());
    }
    let mut message = String::from("This password is too easy to guess.");
    if let Some(feedback) = estimate.feedback() {
        if let Some(w) = feedback.warning() {
            message.push(' ');
            message.push_str(&w.to_string());
        }
        for s in feedback.suggestions().iter().take(2) {
            message.push(' ');
            message.push_str(&s.to_string());
        }
    }
    Err(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ana.Lopez@Example.COM ").unwrap().as_str(),
            "ana.lopez@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "ana@exa mple.com",
            "a<b>@example.com",
            "ana@example..com",
            "ana@example.com\r\nBcc: x@y.z",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_of_12_to_128_characters_are_judged_and_longer_ones_refused() {
        let too_long = "Saffron-Glacier-Pepper-40-Heron-".repeat(5);
        assert_eq!(
            check_password(&too_long[..129], &[]),
            Err("Use at most 128 characters.".to_owned())
        );
        assert_ne!(
            check_password(&too_long[..128], &[]),
            Err("Use at most 128 characters.".to_owned())
        );
        assert!(check_password("Quartz-Pelican-71", &[]).is_ok());
        assert!(
            check_password("Quartz-Pel1", &[])
                .is_err_and(|e| e.starts_with("Use at least 12 characters"))
        );
    }

    #[test]
    fn weak_and_common_passwords_are_refused_with_a_reason() {
        for weak in [
            "password123",
            "qwertyuiop",
            "1234567890",
            "ana.lopez2024",
            "letmein2024!",
        ] {
            let e = check_password(weak, &["ana.lopez@example.com"]).expect_err(weak);
            assert!(
                e.starts_with("This password is too easy to guess")
                    || e.starts_with("Use at least")
                    || e.starts_with("Do not build"),
                "{weak}: {e}"
            );
        }
        assert!(
            check_password("short", &[])
                .unwrap_err()
                .starts_with("Use at least 12")
        );
        assert!(check_password("correct horse battery staple lamp", &[]).is_ok());
        assert!(check_password("Tangerine-Quartz-Velvet-94", &[]).is_ok());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Staff));
        assert!(Role::Staff.allows(Role::Staff));
        assert!(!Role::Customer.allows(Role::Staff));
        assert!(!Role::Staff.allows(Role::Admin));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
