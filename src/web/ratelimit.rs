//! Per-client rate limits on lookups (governor, keyed by client IP). The client IP comes from
//! `X-Forwarded-For` only when the direct peer is a configured trusted proxy.

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
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| IpAddr::from_str(s.trim()).ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !self.trusted_proxies.contains(ip))
                .unwrap_or(peer),
        )
    }

    /// Counts one lookup for the client of `req`; over the limit it is a 429 with Retry-After.
    pub fn check(&self, req: &HttpRequest) -> Result<(), AppError> {
        let (Some(limiter), Some(ip)) = (&self.limiter, self.client_ip(req)) else {
            return Ok(());
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// Forgets clients whose allowance is full again, so memory stays bounded.
    pub fn retain_recent(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}
