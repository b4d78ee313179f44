//! The per-token limit on mutating requests: at most N in any 60 seconds
//! (a sliding window, so a burst at the end of one minute and another at
//! the start of the next cannot double the rate).
//!
//! Pure: the caller passes `now`, so the tests need no sleeping. Keys are
//! token names, a set bounded by the token file.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The window the limit applies to.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    /// When each key's requests within the window were allowed, oldest
    /// first.
    hits: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// `limit` requests per key per minute; 0 refuses every request.
    pub fn per_minute(limit: u32) -> RateLimiter {
        RateLimiter::new(usize::try_from(limit).unwrap_or(usize::MAX), WINDOW)
    }

    pub fn new(limit: usize, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            hits: HashMap::new(),
        }
    }

    /// Counts a request by `key` at `now` if it is within the limit;
    /// otherwise says how long until it would be (refused requests are
    /// not counted, so retrying after that time succeeds).
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Err(self.window);
        }
        let window = self.window;
        let hits = self.hits.entry(key.to_string()).or_default();
        while let Some(&oldest) = hits.front() {
            if now.saturating_duration_since(oldest) >= window {
                hits.pop_front();
            } else {
                break;
            }
        }
        if hits.len() < self.limit {
            hits.push_back(now);
            return Ok(());
        }
        let oldest = hits.front().copied().unwrap_or(now);
        Err((oldest + window).saturating_duration_since(now))
    }
}

/// A `Retry-After` value: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn allows_the_limit_then_refuses_until_the_oldest_leaves_the_window() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::per_minute(3);
        assert!(rl.check("ops", t0).is_ok());
        assert!(rl.check("ops", t0 + s(10)).is_ok());
        assert!(rl.check("ops", t0 + s(20)).is_ok());
        assert_eq!(rl.check("ops", t0 + s(30)), Err(s(30)));
        // Refusals are not counted: the wait does not grow.
        assert_eq!(rl.check("ops", t0 + s(59)), Err(s(1)));
        assert!(rl.check("ops", t0 + s(60)).is_ok(), "the first one left");
        assert_eq!(rl.check("ops", t0 + s(61)), Err(s(9)));
        assert!(rl.check("ops", t0 + s(70)).is_ok());
    }

    #[test]
    fn sliding_not_fixed_window() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::per_minute(2);
        assert!(rl.check("ops", t0 + s(58)).is_ok());
        assert!(rl.check("ops", t0 + s(59)).is_ok());
        // A fixed per-minute window would allow these two at once.
        assert!(rl.check("ops", t0 + s(61)).is_err());
        assert!(rl.check("ops", t0 + s(118)).is_ok());
    }

    #[test]
    fn keys_are_independent() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::per_minute(1);
        assert!(rl.check("ops", t0).is_ok());
        assert!(rl.check("ops", t0).is_err());
        assert!(rl.check("ci", t0).is_ok());
    }

    #[test]
    fn zero_refuses_everything() {
        let mut rl = RateLimiter::per_minute(0);
        assert_eq!(rl.check("ops", Instant::now()), Err(WINDOW));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(s(9)), 9);
        assert_eq!(retry_after_secs(Duration::from_millis(9_001)), 10);
    }
}
