//! Per-client rate limits on lookups (governor, keyed by client IP, or by integration token for
//! API requests that carry one). The client IP comes from `X-Forwarded-For` only when the
//! direct peer is a configured trusted proxy.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::AppError;

pub struct LookupLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: Vec<IpAddr>,
}

impl LookupLimiter {
    pub fn new(per_minute: u32, burst: u32, trusted_proxies: Vec<IpAddr>) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        LookupLimiter {
            limiter,
            trusted_proxies,
        }
    }

    /// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy. An entry that does not parse
    /// ends the walk at the last trusted hop, so a client cannot slip an address past it.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let entries: Vec<String> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            match IpAddr::from_str(entry) {
                Ok(ip) if self.trusted_proxies.contains(&ip) => client = ip,
                Ok(ip) => return Some(ip),
                Err(_) => break,
            }
        }
        Some(client)
    }

    /// Counts one lookup for the client of `req`; over the limit it is a 429 with Retry-After.
    pub fn check(&self, req: &HttpRequest) -> Result<(), AppError> {
        self.check_n(req, 1)
    }

    /// Counts `n` lookups at once (a batch), at most a whole burst.
    pub fn check_n(&self, req: &HttpRequest, n: u32) -> Result<(), AppError> {
        let (Some(limiter), Some(ip)) = (&self.limiter, self.client_ip(req)) else {
            return Ok(());
        };
        charge(limiter, &limit_key(ip), n)
    }

    /// Forgets clients whose allowance is full again, so memory stays bounded.
    pub fn retain_recent(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Counts `n` requests of `key`, at most a whole burst; over the limit it is a 429 with
/// Retry-After.
fn charge<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    n: u32,
) -> Result<(), AppError> {
    let mut n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    loop {
        match limiter.check_key_n(key, n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(AppError::TooManyRequests {
                    retry_after_secs: wait.as_secs().max(1),
                });
            }
            // More than a burst: charge a whole burst.
            Err(governor::InsufficientCapacity(burst)) => {
                n = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)
            }
        }
    }
}

/// The lookup allowance of integration tokens, per token: usually far above an address's, since
/// one token may serve a whole shop system.
pub struct TokenLimiter {
    limiter: Option<DefaultKeyedRateLimiter<i64>>,
}

impl TokenLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        TokenLimiter {
            limiter: NonZeroU32::new(per_minute).map(|rate| {
                let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
                RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
            }),
        }
    }

    /// Counts `n` lookups of the token `token_id`, at most a whole burst.
    pub fn check_n(&self, token_id: i64, n: u32) -> Result<(), AppError> {
        match &self.limiter {
            Some(l) => charge(l, &token_id, n),
            None => Ok(()),
        }
    }

    /// Forgets tokens whose allowance is full again.
    pub fn retain_recent(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The key an address is limited under. One IPv6 subscriber usually holds a whole /64 and can
/// pick any address in it, so IPv6 is limited per /64; IPv4 per address.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_limited_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(limit_key(v4), v4);
    }
}
