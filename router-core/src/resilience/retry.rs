//! Retry timing and the retry budget.

use crate::config::{BudgetConfig, Jitter, RetryConfig};
use crate::keyed_rand::KeyedRand;
use crate::model::{NANOS_PER_SEC, Nanos};

/// The backoff before retry number `retry` (1 for the first retry): `base x multiplier^(retry-1)`, capped at
/// `max_delay`, with the configured jitter drawn from `rand`.
pub fn backoff_delay(cfg: &RetryConfig, retry: u32, rand: &mut KeyedRand) -> Nanos {
    let exp = cfg.multiplier.max(1.0).powi(retry.saturating_sub(1).min(63) as i32);
    let raw = (cfg.base_delay.nanos() as f64 * exp).min(cfg.max_delay.nanos() as f64);
    let d = match cfg.jitter {
        Jitter::None => raw,
        Jitter::Full => raw * rand.unit(),
        Jitter::Equal => raw / 2.0 + raw / 2.0 * rand.unit(),
    };
    d.max(0.0) as Nanos
}

/// A token bucket limiting retries to a fraction of first attempts plus a floor per second.
///
/// Every first attempt deposits `ratio` tokens (a request the router rejects makes no attempt and deposits
/// nothing); time deposits `min_per_s` tokens per second; a retry takes one.
/// The bucket holds at most `10 x min_per_s + 100 x ratio` tokens... enough for a short burst, not a storm.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    cfg: BudgetConfig,
    tokens: f64,
    cap: f64,
    last: Nanos,
}

impl RetryBudget {
    /// A full budget.
    pub fn new(cfg: BudgetConfig) -> Self {
        let cap = (10.0 * cfg.min_per_s + 100.0 * cfg.ratio).max(1.0);
        RetryBudget { cfg, tokens: cap, cap, last: 0 }
    }

    #[inline]
    fn refill(&mut self, now: Nanos) {
        let dt = now.saturating_sub(self.last) as f64 / NANOS_PER_SEC as f64;
        self.tokens = self.capped(self.tokens + dt * self.cfg.min_per_s);
        self.last = self.last.max(now);
    }

    /// `tokens.min(cap)` by a plain comparison (one instruction where `f64::min` takes five): the cap is never
    /// NaN (it is at least 1 by `max`, which passes a NaN over), and for a NaN `tokens` both give the cap.
    #[inline(always)]
    fn capped(&self, tokens: f64) -> f64 {
        if tokens < self.cap { tokens } else { self.cap }
    }

    /// Records a first attempt (a routed request; never a rejected one).
    #[inline]
    pub fn deposit(&mut self, now: Nanos) {
        self.refill(now);
        self.tokens = self.capped(self.tokens + self.cfg.ratio);
    }

    /// Takes a token for a retry; false when the budget is spent.
    pub fn withdraw(&mut self, now: Nanos) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let cfg = RetryConfig {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            jitter: Jitter::None,
            ..RetryConfig::default()
        };
        let mut r = KeyedRand::new(0, 0, 0);
        let d: Vec<_> = (1..=6).map(|k| backoff_delay(&cfg, k, &mut r) / 1_000_000).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn full_jitter_stays_below_the_delay() {
        let cfg = RetryConfig { base_delay: Duration::from_secs(1), ..RetryConfig::default() };
        let mut sum = 0.0;
        for id in 0..2000 {
            let d = backoff_delay(&cfg, 1, &mut KeyedRand::new(0, id, 0));
            assert!(d <= NANOS_PER_SEC);
            sum += d as f64;
        }
        let mean = sum / 2000.0 / NANOS_PER_SEC as f64;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
    }

    #[test]
    fn budget_limits_retries_to_the_ratio() {
        let mut b = RetryBudget::new(BudgetConfig { ratio: 0.1, min_per_s: 0.0 });
        // Drain the initial burst allowance.
        while b.withdraw(0) {}
        let mut allowed = 0;
        for i in 0..1000 {
            b.deposit(i);
            if b.withdraw(i) {
                allowed += 1;
            }
        }
        assert!((99..=101).contains(&allowed), "{allowed}");
    }

    #[test]
    fn budget_refills_over_time() {
        let mut b = RetryBudget::new(BudgetConfig { ratio: 0.0, min_per_s: 2.0 });
        while b.withdraw(0) {}
        assert!(!b.withdraw(0));
        assert!(b.withdraw(NANOS_PER_SEC));
        assert!(b.withdraw(NANOS_PER_SEC));
        assert!(!b.withdraw(NANOS_PER_SEC));
    }
}
