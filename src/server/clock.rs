//! The server's clock: wall time plus an offset that the control API can advance, so
//! expiry of tokens and codes and TOTP steps are testable without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The clock never runs more than a century ahead, so expiry arithmetic cannot overflow.
pub const MAX_OFFSET_SECONDS: i64 = 100 * 365 * 86_400;

#[derive(Debug, Default)]
pub struct Clock {
    offset_seconds: AtomicI64,
}

impl Clock {
    /// Seconds since the Unix epoch, as this server sees them.
    pub fn now(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        wall + self.offset_seconds.load(Ordering::Relaxed)
    }

    /// Moves the clock forward; it never goes back.
    pub fn advance(&self, seconds: u64) {
        let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
        let _ = self
            .offset_seconds
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(seconds).min(MAX_OFFSET_SECONDS))
            });
    }

    pub fn offset(&self) -> i64 {
        self.offset_seconds.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(600);
        assert!(clock.now() >= before + 600);
        clock.advance(u64::MAX);
        assert_eq!(clock.offset(), MAX_OFFSET_SECONDS);
        assert!(clock.now() > before);
    }
}
