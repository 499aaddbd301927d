//! The failed-code limiter.

use crate::server::config::Limits;

/// Failed-code limiter: a token bucket (Auth0: 10 attempts, one back every 6 minutes).
#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    pub(super) tokens: f64,
    updated: i64,
}

impl TokenBucket {
    pub(super) fn full(limits: &Limits, now: i64) -> Self {
        TokenBucket {
            tokens: limits.failed_codes as f64,
            updated: now,
        }
    }

    pub(super) fn refill(&mut self, limits: &Limits, now: i64) {
        let elapsed = (now - self.updated).max(0) as f64;
        self.tokens = (self.tokens + elapsed / limits.failed_code_refill_seconds as f64)
            .min(limits.failed_codes as f64);
        self.updated = now;
    }

    pub(super) fn exhausted(&mut self, limits: &Limits, now: i64) -> bool {
        self.refill(limits, now);
        self.tokens < 1.0
    }

    pub(super) fn consume(&mut self, limits: &Limits, now: i64) {
        self.refill(limits, now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }
}
