//! Token bucket per sink: events/s and requests/s, so a sink never exceeds what its target
//! allows (and a replay or a backlog drain does not trigger a 429 storm).

use std::time::{Duration, Instant};

/// A token bucket refilled continuously at `rate` per second up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` tokens per second, at most `burst` saved up (at least one).
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `n` tokens if there are enough; otherwise how long until there will be. A request
    /// for more than `burst` is allowed once the bucket is full (so a big batch still goes).
    pub fn take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let need = n.min(self.burst);
        if self.tokens >= need {
            self.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((need - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limits_to_the_rate_after_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5.0, t0);
        for _ in 0..5 {
            assert!(b.take(1.0, t0).is_ok());
        }
        let wait = b.take(1.0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(b.take(1.0, t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn a_batch_bigger_than_the_burst_goes_when_full_and_then_owes() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 50.0, t0);
        assert!(b.take(80.0, t0).is_ok());
        let wait = b.take(1.0, t0).unwrap_err();
        assert!(wait >= Duration::from_millis(300), "{wait:?}");
    }
}
