//! Latency counts kept per request at the cost of one index computation and one increment, in the bucket
//! layout of a [`LatencyHistogram`], and folded into the histogram once, at the end of a run.
//!
//! An HDR histogram's statistics (quantiles, mean, count, min, max) depend only on its counts per bucket, and
//! counts add: recording every value into a tally and then adding each bucket's count to the histogram at a
//! value of that bucket gives the very histogram that recording every value directly gives (a unit test checks
//! it bucket by bucket, with `Histogram`'s own equality). `hdrhistogram`'s `record` pays on every value for
//! its generality (an `Option` index, a bounds check, a saturating add, the minimum and maximum, the total);
//! the tally pays for none of it on the hot path.

use super::{LatencyHistogram, MAX_US, SIGFIG};
use router_core::Nanos;

/// Sub-buckets per bucket of the histogram's layout, as `hdrhistogram` sizes them for [`SIGFIG`]
/// significant digits with a lowest discernible value of 1 (unit magnitude 0): the power of two at or above
/// `2 x 10^SIGFIG`.
const SUB_BUCKETS: u64 = (2 * 10u64.pow(SIGFIG as u32)).next_power_of_two();
/// `log2` of half of [`SUB_BUCKETS`].
const HALF_MAGNITUDE: u32 = SUB_BUCKETS.trailing_zeros() - 1;
/// Half of [`SUB_BUCKETS`].
const HALF: u64 = SUB_BUCKETS / 2;
/// `hdrhistogram`'s `leading_zero_count_base` for this layout: `64 - unit magnitude - log2(SUB_BUCKETS)`.
const LEADING_ZERO_BASE: u32 = 64 - SUB_BUCKETS.trailing_zeros();

/// The index of `us` (in `1..=MAX_US`) in the counts of a histogram of the layout above: `hdrhistogram`'s
/// `index_for`, step for step.
#[inline(always)]
fn index_of(us: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (us | (SUB_BUCKETS - 1)).leading_zeros();
    let sub_bucket = us >> bucket;
    (((bucket as u64 + 1) << HALF_MAGNITUDE) + sub_bucket - HALF) as usize
}

/// The lowest value counted at `index`: `hdrhistogram`'s `value_for`.
fn value_at(index: usize) -> u64 {
    let bucket = (index as u64 >> HALF_MAGNITUDE) as i64 - 1;
    let sub_bucket = (index as u64 & (HALF - 1)) + HALF;
    if bucket < 0 { sub_bucket - HALF } else { sub_bucket << bucket }
}

/// Latency counts per bucket of a default [`LatencyHistogram`] (3 significant digits, 1 us to 30 days).
#[derive(Clone)]
pub struct LatencyTally {
    counts: Vec<u64>,
}

impl Default for LatencyTally {
    fn default() -> Self {
        LatencyTally { counts: vec![0; index_of(MAX_US) + 1] }
    }
}

impl std::fmt::Debug for LatencyTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LatencyTally({} values)", self.counts.iter().sum::<u64>())
    }
}

impl LatencyTally {
    /// Counts a latency of `ns` nanoseconds, as [`LatencyHistogram::record`] would (whole microseconds,
    /// clamped to 1 us .. 30 days).
    #[inline(always)]
    pub fn record(&mut self, ns: Nanos) {
        let us = (ns / 1_000).clamp(1, MAX_US);
        // In range by the clamp; the check is a compare the branch predictor never misses.
        if let Some(c) = self.counts.get_mut(index_of(us)) {
            *c += 1;
        }
    }

    /// Adds the counts to `hist` (a default [`LatencyHistogram`]) and clears them.
    pub fn drain_into(&mut self, hist: &mut LatencyHistogram) {
        for (i, c) in self.counts.iter_mut().enumerate() {
            if *c != 0 {
                hist.record_n_us(value_at(i), *c);
                *c = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values at every bucket edge of the layout (powers of two and their neighbours), the ends of the range
    /// and beyond it.
    fn edges() -> Vec<Nanos> {
        let mut ns =
            vec![0, 1, 999, 1_000, 1_001, MAX_US * 1_000, MAX_US * 1_000 + 999, (MAX_US + 1) * 1_000, u64::MAX];
        for k in 0..42 {
            let us = 1u64 << k;
            for v in [us - 1, us, us + 1, us + us / 3] {
                ns.push(v.saturating_mul(1_000));
            }
        }
        ns
    }

    fn assert_same(tallied: &LatencyHistogram, direct: &LatencyHistogram) {
        assert!(tallied.0 == direct.0, "the histograms' counts, totals, min and max differ");
        assert_eq!(tallied.len(), direct.len());
        assert_eq!(tallied.mean_s().to_bits(), direct.mean_s().to_bits());
        assert_eq!(tallied.0.max(), direct.0.max());
        assert_eq!(tallied.0.min(), direct.0.min());
        for q in [0.0, 0.001, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(tallied.quantile_s(q).to_bits(), direct.quantile_s(q).to_bits(), "q {q}");
        }
    }

    #[test]
    fn the_layout_is_the_histograms() {
        assert_eq!((SUB_BUCKETS, HALF_MAGNITUDE, LEADING_ZERO_BASE), (2048, 10, 53));
        // Every bucket edge lands where the histogram counts it.
        let (mut tally, mut tallied, mut direct) =
            (LatencyTally::default(), LatencyHistogram::default(), LatencyHistogram::default());
        for ns in edges() {
            tally.record(ns);
            direct.record(ns);
        }
        tally.drain_into(&mut tallied);
        assert_same(&tallied, &direct);
        // Drained: the tally starts over.
        tally.drain_into(&mut tallied);
        assert_same(&tallied, &direct);
    }

    #[test]
    fn each_index_maps_back_to_its_own_bucket() {
        for i in 0..=index_of(MAX_US) {
            assert_eq!(index_of(value_at(i)), i, "index {i}");
        }
    }

    proptest! {
        /// Any latencies, tallied then drained into a histogram that already holds some, give the histogram
        /// that recording them one by one gives.
        #[test]
        fn a_drained_tally_is_the_recorded_histogram(
            ns in proptest::collection::vec(prop_oneof![0u64..2_000_000, 0u64..100_000_000_000, any::<u64>()], 0..400),
            before in proptest::collection::vec(0u64..10_000_000_000, 0..20),
        ) {
            let (mut tally, mut tallied, mut direct) =
                (LatencyTally::default(), LatencyHistogram::default(), LatencyHistogram::default());
            for &b in &before {
                tallied.record(b);
                direct.record(b);
            }
            for &n in &ns {
                tally.record(n);
                direct.record(n);
            }
            tally.drain_into(&mut tallied);
            assert_same(&tallied, &direct);
        }
    }
}
