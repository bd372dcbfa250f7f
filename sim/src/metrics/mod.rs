//! Streaming metrics of one simulation run: HDR histograms, counters, cost, per-endpoint shares and a
//! per-interval time series. Memory is constant in the number of requests (it grows only with the number of
//! endpoints, task classes and time intervals).
//!
//! Requests that arrive during the warm-up are simulated but not measured (their latency, cost and errors are
//! left out of the summary), while the time series covers the whole run so that a user can see the warm-up.

pub mod quality;
pub mod tally;
pub mod timeseries;

pub use quality::QualityCounts;
pub use tally::LatencyTally;
pub use timeseries::{Interval, TimeSeries};

use hdrhistogram::Histogram;
use router_core::{ErrorClass, Nanos};

/// Histogram resolution: latencies are recorded in microseconds with 3 significant digits (0.1%).
const SIGFIG: u8 = 3;
/// Largest recordable latency: 30 days in microseconds (larger values are clamped).
const MAX_US: u64 = 30 * 86_400 * 1_000_000;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram(Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("static histogram bounds are valid"))
    }
}

impl LatencyHistogram {
    /// A cheaper histogram for per-interval quantiles: 2 significant digits (1%) up to 1 day, so that
    /// resetting and reading it every interval stays cheap.
    pub fn coarse() -> Self {
        LatencyHistogram(
            Histogram::new_with_bounds(1, 86_400 * 1_000_000, 2).expect("static histogram bounds are valid"),
        )
    }

    /// Records a latency in nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: Nanos) {
        self.record_us(self.to_us(ns));
    }

    /// The value [`LatencyHistogram::record`] counts for a latency of `ns` nanoseconds: whole microseconds,
    /// clamped into this histogram's range (latencies beyond it count at the top).
    #[inline]
    pub fn to_us(&self, ns: Nanos) -> u64 {
        (ns / 1_000).clamp(1, self.0.high())
    }

    /// Records a value from [`LatencyHistogram::to_us`].
    #[inline]
    pub fn record_us(&mut self, us: u64) {
        // Cannot fail: the value is in this histogram's range.
        let _ = self.0.record(us);
    }

    /// Records `count` values `us` (a value from [`LatencyHistogram::to_us`]).
    pub fn record_n_us(&mut self, us: u64, count: u64) {
        // Cannot fail: the value is in this histogram's range.
        let _ = self.0.record_n(us, count);
    }

    /// The quantile a histogram holding exactly `us` (values from [`LatencyHistogram::to_us`]) would report
    /// for `q` > 0, in seconds (NaN when `us` is empty), without recording them: the top of the bucket of
    /// the `ceil(q x n)`-th smallest value, the value at which [`LatencyHistogram::quantile_s`]'s running
    /// count reaches its target. Reorders `us`.
    pub fn quantile_of_s(&self, us: &mut [u64], q: f64) -> f64 {
        if us.is_empty() {
            return f64::NAN;
        }
        // The histogram's target count, computed as it does.
        let rank = ((q.min(1.0) * us.len() as u64 as f64).ceil() as u64).max(1) as usize;
        let (_, &mut v, _) = us.select_nth_unstable(rank.min(us.len()) - 1);
        self.0.highest_equivalent(self.0.lowest_equivalent(v)) as f64 / 1e6
    }

    /// The quantile `q` in seconds (NaN when empty).
    pub fn quantile_s(&self, q: f64) -> f64 {
        if self.0.is_empty() { f64::NAN } else { self.0.value_at_quantile(q) as f64 / 1e6 }
    }

    /// The mean in seconds (NaN when empty).
    pub fn mean_s(&self) -> f64 {
        if self.0.is_empty() { f64::NAN } else { self.0.mean() / 1e6 }
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds another histogram's counts (pooling replications).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Cannot fail: both histograms have the same bounds.
        let _ = self.0.add(&other.0);
    }

    /// Clears all counts, keeping the allocation.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// Points `(latency_s, cumulative probability)` of the empirical CDF, at most `n` of them.
    pub fn cdf(&self, n: usize) -> Vec<(f64, f64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        (0..=n)
            .map(|i| {
                let q = i as f64 / n as f64;
                (self.0.value_at_quantile(q) as f64 / 1e6, q)
            })
            .collect()
    }
}

/// Counters of one run (measured requests only, after warm-up).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Requests generated, warm-up included.
    pub arrivals: u64,
    /// Requests measured (arrived after the warm-up).
    pub requests: u64,
    /// Measured requests that succeeded (cache hits included).
    pub succeeded: u64,
    /// Measured requests that failed after their last attempt, by the last error class.
    pub failed: [u64; 4],
    /// Measured requests rejected by the router without an attempt.
    pub rejected: u64,
    /// Measured requests answered from the response cache.
    pub cache_hits: u64,
    /// Measured requests sent through a batch endpoint.
    pub batched: u64,
    /// Attempts of measured requests.
    pub attempts: u64,
    /// Attempts after the first (on any endpoint).
    pub retries: u64,
    /// Attempts on a different endpoint than the previous one.
    pub fallbacks: u64,
    /// Failed attempts by class (429s are `attempt_errors[RateLimited]`).
    pub attempt_errors: [u64; 4],
    /// Attempts abandoned by the time-to-first-token timeout (also counted as `Timeout` attempt errors).
    pub ttft_timeouts: u64,
    /// Measured requests denied by their client key's limits before routing, by reason
    /// (`router_core::DenyReason::LIMITS` order: rpm, tpm, concurrency, daily budget, monthly budget).
    pub denied: [u64; 5],
}

impl Counts {
    /// Requests that failed, any class.
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// Requests denied by client-key limits, any reason.
    pub fn denied_total(&self) -> u64 {
        self.denied.iter().sum()
    }
}

/// Queueing at the providers and occupancy of the whole system, for the checks against queueing theory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    /// Attempts of measured requests that reached service.
    pub served: u64,
    /// Of those, how many waited in a provider queue first.
    pub waited: u64,
    /// Sum of their queue waits, in seconds.
    pub wait_sum_s: f64,
    /// Measured requests that left the system (succeeded, failed or rejected).
    pub finished: u64,
    /// Sum of their times in the system, in seconds.
    pub sojourn_sum_s: f64,
    /// Time integral of the number of measured requests in the system, in request-seconds.
    pub in_system_area: f64,
    /// From the first measured arrival to the end of the run, in seconds.
    pub observed_s: f64,
}

impl QueueStats {
    /// Mean queue wait per served attempt, in seconds.
    pub fn mean_wait_s(&self) -> f64 {
        self.wait_sum_s / self.served.max(1) as f64
    }

    /// Fraction of served attempts that waited.
    pub fn p_wait(&self) -> f64 {
        self.waited as f64 / self.served.max(1) as f64
    }

    /// Time-average number of requests in the system.
    pub fn mean_in_system(&self) -> f64 {
        if self.observed_s > 0.0 { self.in_system_area / self.observed_s } else { 0.0 }
    }
}

/// Everything measured in one run of one policy.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Counters.
    pub counts: Counts,
    /// End-to-end latency of successful measured requests.
    pub latency: LatencyHistogram,
    /// Time to first token of successful measured requests.
    pub ttft: LatencyHistogram,
    /// Latency per task class (empty with a single class: [`Metrics::class_latency`] then gives the overall).
    pub latency_by_class: Vec<LatencyHistogram>,
    /// TTFT per task class (empty with a single class, like `latency_by_class`).
    pub ttft_by_class: Vec<LatencyHistogram>,
    /// Total cost of measured requests in USD.
    pub cost_usd: f64,
    /// Input and output tokens billed per endpoint (the cost identity: cost = sum of tokens x prices).
    pub endpoint_tokens: Vec<[u64; 2]>,
    /// Queueing and occupancy.
    pub queueing: QueueStats,
    /// Attempts per endpoint (measured requests).
    pub endpoint_attempts: Vec<u64>,
    /// Cost per endpoint in USD (measured requests).
    pub endpoint_cost: Vec<f64>,
    /// The time series (whole run).
    pub series: TimeSeries,
    /// Answer quality of measured requests, when the scenario has quality on.
    pub quality: Option<QualityCounts>,
    /// Latency and TTFT tallies of [`Metrics::success`], a pair per class (one pair with a single class),
    /// until [`Metrics::finish_histograms`] folds them into the histograms.
    tallies: Vec<LatencyTally>,
}

impl Metrics {
    /// Empty metrics for `endpoints` endpoints, `classes` task classes and the given time-series interval.
    pub fn new(endpoints: usize, classes: usize, interval: Nanos) -> Self {
        Metrics {
            counts: Counts::default(),
            latency: LatencyHistogram::default(),
            ttft: LatencyHistogram::default(),
            latency_by_class: if classes > 1 { vec![LatencyHistogram::default(); classes] } else { Vec::new() },
            ttft_by_class: if classes > 1 { vec![LatencyHistogram::default(); classes] } else { Vec::new() },
            cost_usd: 0.0,
            endpoint_tokens: vec![[0; 2]; endpoints],
            queueing: QueueStats::default(),
            endpoint_attempts: vec![0; endpoints],
            endpoint_cost: vec![0.0; endpoints],
            series: TimeSeries::new(interval, endpoints),
            quality: None,
            // Zeroed allocations each (a clone of one would write every page).
            tallies: (0..2 * classes.max(1)).map(|_| LatencyTally::default()).collect(),
        }
    }

    /// Latency and TTFT histograms of task class `class`.
    pub fn class_latency(&self, class: usize) -> (&LatencyHistogram, &LatencyHistogram) {
        match (self.latency_by_class.get(class), self.ttft_by_class.get(class)) {
            (Some(l), Some(t)) => (l, t),
            _ => (&self.latency, &self.ttft),
        }
    }

    /// A measured request of task class `class` that succeeded after `latency` with first token after `ttft`.
    /// The values are counted in tallies (one increment each, see [`LatencyTally`]), with several task classes
    /// in their class's only: call [`Metrics::finish_histograms`] once everything is recorded to fill the
    /// histograms.
    #[inline]
    pub fn success(&mut self, class: usize, latency: Nanos, ttft: Nanos) {
        self.counts.succeeded += 1;
        // With a single class its pair is the overall histograms'.
        let i = if self.latency_by_class.is_empty() { 0 } else { 2 * class };
        if let [l, t] = &mut self.tallies[i..i + 2] {
            l.record(latency);
            t.record(ttft);
        }
    }

    /// Fills the histograms from the tallies of [`Metrics::success`], then the overall latency and TTFT
    /// histograms from the per-class ones (call it once, after recording). Quantiles, means and counts are
    /// those of recording every request in its class's histograms and in the overall ones: a histogram's
    /// statistics depend only on its counts, and both tallying and pooling add the counts.
    pub fn finish_histograms(&mut self) {
        let mut tallies = std::mem::take(&mut self.tallies);
        if self.latency_by_class.is_empty() {
            if let [l, t] = &mut tallies[..] {
                l.drain_into(&mut self.latency);
                t.drain_into(&mut self.ttft);
            }
        } else {
            let hists = self.latency_by_class.iter_mut().zip(&mut self.ttft_by_class);
            for ((l, t), pair) in hists.zip(tallies.chunks_exact_mut(2)) {
                pair[0].drain_into(l);
                pair[1].drain_into(t);
            }
        }
        for h in &self.latency_by_class {
            self.latency.merge(h);
        }
        for h in &self.ttft_by_class {
            self.ttft.merge(h);
        }
    }

    /// A measured request that failed with `class` after its last attempt.
    #[inline]
    pub fn failure(&mut self, class: ErrorClass) {
        self.counts.failed[class.index()] += 1;
    }

    /// A measured attempt on `endpoint` that cost `cost` and billed `tokens` (input, output).
    #[inline]
    pub fn attempt(&mut self, endpoint: usize, error: Option<ErrorClass>, cost: f64, tokens: [u64; 2]) {
        self.counts.attempts += 1;
        self.endpoint_attempts[endpoint] += 1;
        self.endpoint_cost[endpoint] += cost;
        self.cost_usd += cost;
        self.endpoint_tokens[endpoint][0] += tokens[0];
        self.endpoint_tokens[endpoint][1] += tokens[1];
        if let Some(c) = error {
            self.counts.attempt_errors[c.index()] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Selecting the ranked value gives the quantile the histogram reports after recording everything.
        #[test]
        fn quantile_by_selection_is_the_histograms(
            ns in proptest::collection::vec(0u64..200_000_000_000, 1..300),
            q in prop_oneof![Just(0.5), Just(0.95), Just(0.99), Just(1.0), 0.001f64..1.0],
        ) {
            for mut h in [LatencyHistogram::coarse(), LatencyHistogram::default()] {
                let mut us: Vec<u64> = ns.iter().map(|&n| h.to_us(n)).collect();
                let selected = h.quantile_of_s(&mut us, q);
                for &n in &ns {
                    h.record(n);
                }
                prop_assert_eq!(selected.to_bits(), h.quantile_s(q).to_bits());
            }
        }
    }

    /// Recording by class and pooling at the end gives the overall histograms that recording every request
    /// in them gives.
    #[test]
    fn pooled_classes_are_the_overall_histograms() {
        let mut m = Metrics::new(1, 3, 1_000_000_000);
        let mut overall = (LatencyHistogram::default(), LatencyHistogram::default());
        for i in 0..3000u64 {
            let (latency, ttft) = ((i * 7_919 % 10_007 + 1) * 1_000_000, (i * 104_729 % 1_009 + 1) * 100_000);
            m.success((i % 3) as usize, latency, ttft);
            overall.0.record(latency);
            overall.1.record(ttft);
        }
        m.finish_histograms();
        assert_eq!(m.counts.succeeded, 3000);
        for (pooled, direct) in [(&m.latency, &overall.0), (&m.ttft, &overall.1)] {
            assert_eq!(pooled.len(), direct.len());
            assert_eq!(pooled.mean_s().to_bits(), direct.mean_s().to_bits());
            for q in [0.01, 0.5, 0.95, 0.99, 1.0] {
                assert_eq!(pooled.quantile_s(q).to_bits(), direct.quantile_s(q).to_bits(), "q {q}");
            }
        }
        assert_eq!(m.class_latency(1).0.len(), 1000);
    }

    #[test]
    fn no_values_have_no_quantile() {
        assert!(LatencyHistogram::coarse().quantile_of_s(&mut [], 0.95).is_nan());
    }
}
