//! Welford's running mean and variance: one pass, constant memory, numerically stable, mergeable.

use serde::{Deserialize, Serialize};

/// Running count, mean, variance, minimum and maximum of a stream of `f64`.
///
/// Uses Welford's update (`delta = x - mean; mean += delta / n; m2 += delta * (x - mean)`), which
/// avoids the catastrophic cancellation of the textbook `E[x^2] - E[x]^2` when the mean is large
/// relative to the spread (latencies in ns, costs in micro-dollars). Two accumulators combine with
/// Chan et al.'s parallel formula ([`RunningStats::merge`]), so per-thread or per-replication
/// accumulators can be reduced in any grouping with the same result up to rounding.
///
/// Non-finite inputs are not folded in (one NaN would poison every later value); they are counted
/// in [`RunningStats::non_finite`]. A `push` is a branch, a division and three multiply-adds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunningStats {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    non_finite: u64,
}

impl Default for RunningStats {
    fn default() -> Self {
        Self::new()
    }
}

// ===== impl RunningStats =====

impl RunningStats {
    /// An empty accumulator.
    pub const fn new() -> Self {
        RunningStats { n: 0, mean: 0.0, m2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, non_finite: 0 }
    }

    /// An accumulator holding every value of `xs`.
    pub fn from_slice(xs: &[f64]) -> Self {
        let mut s = Self::new();
        s.extend(xs.iter().copied());
        s
    }

    /// Add one observation. Non-finite values are counted in [`Self::non_finite`] and skipped.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            self.non_finite += 1;
            return;
        }
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Fold `other` into `self`, as if its values had been pushed here (Chan et al. 1979):
    /// `mean = mean_a + delta * n_b / n`, `m2 = m2_a + m2_b + delta^2 * n_a * n_b / n`.
    pub fn merge(&mut self, other: &RunningStats) {
        self.non_finite += other.non_finite;
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            let non_finite = self.non_finite;
            *self = *other;
            self.non_finite = non_finite;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * (nb / n);
        self.m2 += other.m2 + delta * delta * (na * nb / n);
        self.n += other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of finite observations.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Number of non-finite observations that were skipped.
    pub fn non_finite(&self) -> u64 {
        self.non_finite
    }

    /// Mean of the finite observations, `None` if there are none.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Sample variance (denominator `n - 1`), `None` with fewer than two observations.
    pub fn variance(&self) -> Option<f64> {
        // m2 is a sum of non-negative terms in exact arithmetic; clamp rounding below zero.
        (self.n > 1).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }

    /// Population variance (denominator `n`), `None` if empty.
    pub fn population_variance(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.m2 / self.n as f64).max(0.0))
    }

    /// Sample standard deviation, `None` with fewer than two observations.
    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Smallest finite observation.
    pub fn min(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }

    /// Largest finite observation.
    pub fn max(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }
}

impl Extend<f64> for RunningStats {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

impl FromIterator<f64> for RunningStats {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut s = Self::new();
        s.extend(iter);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_and_single_have_no_variance() {
        let mut s = RunningStats::new();
        assert_eq!((s.mean(), s.variance(), s.min()), (None, None, None));
        s.push(4.0);
        assert_eq!((s.mean(), s.variance()), (Some(4.0), None));
        assert_eq!(s.population_variance(), Some(0.0));
    }

    #[test]
    fn known_values() {
        let s: RunningStats = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0].into_iter().collect();
        assert_eq!(s.count(), 8);
        assert_eq!(s.mean(), Some(5.0));
        assert_eq!(s.population_variance(), Some(4.0));
        assert!((s.variance().unwrap() - 32.0 / 7.0).abs() < 1e-12);
        assert_eq!((s.min(), s.max()), (Some(2.0), Some(9.0)));
    }

    #[test]
    fn stable_with_large_offset() {
        // Naive E[x^2] - E[x]^2 loses every digit here; Welford keeps the exact variance 1.
        let offset = 1e9;
        let s: RunningStats = (0..1000).map(|i| offset + if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        assert!((s.population_variance().unwrap() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn non_finite_values_are_counted_not_folded() {
        let mut s = RunningStats::from_slice(&[1.0, f64::NAN, 3.0, f64::NEG_INFINITY]);
        assert_eq!((s.count(), s.non_finite(), s.mean()), (2, 2, Some(2.0)));
        let other = RunningStats::from_slice(&[f64::INFINITY]);
        s.merge(&other);
        assert_eq!((s.count(), s.non_finite()), (2, 3));
        let mut empty = RunningStats::from_slice(&[f64::NAN]);
        empty.merge(&RunningStats::from_slice(&[5.0]));
        assert_eq!((empty.count(), empty.non_finite(), empty.mean()), (1, 1, Some(5.0)));
    }

    proptest! {
        #[test]
        fn merge_equals_sequential(
            xs in proptest::collection::vec(-1e6f64..1e6, 0..60),
            split in 0usize..60
        ) {
            let k = split.min(xs.len());
            let seq = RunningStats::from_slice(&xs);
            let mut a = RunningStats::from_slice(&xs[..k]);
            a.merge(&RunningStats::from_slice(&xs[k..]));
            prop_assert_eq!(a.count(), seq.count());
            prop_assert_eq!(a.min(), seq.min());
            prop_assert_eq!(a.max(), seq.max());
            if let (Some(m1), Some(m2)) = (a.mean(), seq.mean()) {
                prop_assert!((m1 - m2).abs() <= 1e-9 * m2.abs().max(1.0));
            }
            if let (Some(v1), Some(v2)) = (a.variance(), seq.variance()) {
                prop_assert!((v1 - v2).abs() <= 1e-9 * v2.max(1.0));
            }
        }

        #[test]
        fn variance_is_non_negative(xs in proptest::collection::vec(-1e12f64..1e12, 2..50)) {
            let s = RunningStats::from_slice(&xs);
            prop_assert!(s.variance().unwrap() >= 0.0);
        }
    }
}
