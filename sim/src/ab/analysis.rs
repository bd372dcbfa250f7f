//! The statistics of an A/B test: per-arm estimates and the canary's difference from the control, each with
//! a 95% interval from a seeded bootstrap, the minimum detectable effect and a verdict per metric.
//!
//! **Method.** Each arm's requests are resampled with replacement (`replicates` times, independently per
//! arm, with a Xoshiro256++ stream seeded from the seed and the arm); every metric of a replicate is computed
//! from the same resampled requests (a replicate is a multinomial count per request, so percentiles need no
//! sort). The interval of an arm's metric and of the difference canary − control are the 2.5% and 97.5%
//! percentiles of the replicates (percentile bootstrap), which suits percentiles of latency as well as
//! proportions and means, with no distributional assumption. The minimum detectable effect at 80% power and
//! a two-sided alpha of 0.05 is `(z(0.975) + z(0.80)) x SE`, with SE the bootstrap standard deviation of the
//! difference: a true difference that large would be detected four times in five at this sample size.
//! The verdict is "canary better" or "canary worse" when the difference's interval excludes zero (in the
//! metric's good or bad direction), else "no detectable difference (MDE x)".
//!
//! The output depends only on the rows (in file order), the seed and the replicate count: same inputs, same
//! bytes.

use super::read::{AbRow, ArmRows};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use router_core::keyed_rand::mix64;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// A metric of an arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Share of requests with status `ok`.
    Success,
    /// Median end-to-end latency of successful requests, seconds.
    LatencyP50,
    /// 95th percentile latency of successful requests, seconds.
    LatencyP95,
    /// 99th percentile latency of successful requests, seconds.
    LatencyP99,
    /// Median time to first token of successful requests that log it, seconds.
    TtftP50,
    /// 95th percentile time to first token, seconds.
    TtftP95,
    /// Mean cost of 1,000 requests (every request, failed ones included), US dollars.
    CostPer1k,
    /// Mean quality of the requests that log it.
    Quality,
}

/// Every metric, in report order.
pub const METRICS: [Metric; 8] = [
    Metric::Success,
    Metric::LatencyP50,
    Metric::LatencyP95,
    Metric::LatencyP99,
    Metric::TtftP50,
    Metric::TtftP95,
    Metric::CostPer1k,
    Metric::Quality,
];

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Metric {
    /// The name in tables and files.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Success => "success",
            Metric::LatencyP50 => "latency_p50_s",
            Metric::LatencyP95 => "latency_p95_s",
            Metric::LatencyP99 => "latency_p99_s",
            Metric::TtftP50 => "ttft_p50_s",
            Metric::TtftP95 => "ttft_p95_s",
            Metric::CostPer1k => "cost_per_1k_usd",
            Metric::Quality => "quality",
        }
    }

    /// Whether a higher value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Success | Metric::Quality)
    }

    /// The value as the terminal shows it.
    pub fn format(self, x: f64) -> String {
        if !x.is_finite() {
            return "n/a".into();
        }
        match self {
            Metric::Success => format!("{:.2}%", 100.0 * x),
            Metric::CostPer1k => format!("${x:.4}"),
            Metric::Quality => format!("{x:.4}"),
            _ => format!("{x:.3}s"),
        }
    }

    /// A difference as the terminal shows it (signed; success in percentage points).
    pub fn format_diff(self, x: f64) -> String {
        if !x.is_finite() {
            return "n/a".into();
        }
        match self {
            Metric::Success => format!("{:+.2}pp", 100.0 * x),
            Metric::CostPer1k => format!("{}${:.4}", if x < 0.0 { "-" } else { "+" }, x.abs()),
            Metric::Quality => format!("{x:+.4}"),
            _ => format!("{x:+.3}s"),
        }
    }
}

/// An estimate with its 95% interval (NaN bounds when there is no data).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// The point estimate from the rows themselves.
    pub value: f64,
    /// 2.5% percentile of the bootstrap replicates.
    pub lo: f64,
    /// 97.5% percentile.
    pub hi: f64,
}

impl Estimate {
    /// Whether `x` lies in the closed interval (false without an interval).
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// One metric of the comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricResult {
    /// The metric.
    pub metric: Metric,
    /// Requests the metric is computed over, control then canary.
    pub n: [u64; 2],
    /// The control arm.
    pub control: Estimate,
    /// The canary arm.
    pub canary: Estimate,
    /// Canary minus control.
    pub diff: Estimate,
    /// Bootstrap standard error of the difference.
    pub se: f64,
    /// Minimum detectable effect (absolute, either direction) at 80% power, alpha 0.05.
    pub mde: f64,
    /// The verdict.
    pub verdict: String,
}

/// The comparison of two arms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Requests per arm, control then canary.
    pub requests: [u64; 2],
    /// Bootstrap replicates.
    pub replicates: u32,
    /// The seed.
    pub seed: u64,
    /// The metrics with data in at least one arm.
    pub metrics: Vec<MetricResult>,
}

/// An arm prepared for resampling: per-request columns and the orders of the percentile metrics.
struct Prepared {
    ok: Vec<bool>,
    cost: Vec<f64>,
    quality: Vec<Option<f64>>,
    /// Successful requests by latency (index, latency).
    latency: Vec<(u32, f64)>,
    /// Successful requests with a TTFT, by TTFT.
    ttft: Vec<(u32, f64)>,
}

impl Prepared {
    fn new(rows: &[AbRow]) -> Self {
        let by_value = |f: &dyn Fn(&AbRow) -> Option<f64>| {
            let mut v: Vec<(u32, f64)> =
                rows.iter().enumerate().filter_map(|(i, r)| f(r).filter(|_| r.ok).map(|x| (i as u32, x))).collect();
            v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            v
        };
        Prepared {
            ok: rows.iter().map(|r| r.ok).collect(),
            cost: rows.iter().map(|r| r.cost_usd).collect(),
            quality: rows.iter().map(|r| r.quality).collect(),
            latency: by_value(&|r| Some(r.latency_s)),
            ttft: by_value(&|r| r.ttft_s),
        }
    }

    /// Requests each metric is computed over.
    fn counts(&self) -> [u64; METRICS.len()] {
        let ok = self.latency.len() as u64;
        let ttft = self.ttft.len() as u64;
        let n = self.ok.len() as u64;
        let q = self.quality.iter().filter(|q| q.is_some()).count() as u64;
        [n, ok, ok, ok, ttft, ttft, n, q]
    }

    /// Every metric for requests weighted by `w` (each request's count in the resample; all 1 for the data).
    fn metrics(&self, w: &[u32]) -> [f64; METRICS.len()] {
        let mut n = 0u64;
        let mut ok = 0u64;
        let mut cost = 0.0;
        let (mut qn, mut qsum) = (0u64, 0.0);
        for (i, &c) in w.iter().enumerate() {
            if c == 0 {
                continue;
            }
            n += c as u64;
            ok += if self.ok[i] { c as u64 } else { 0 };
            cost += c as f64 * self.cost[i];
            if let Some(q) = self.quality[i] {
                qn += c as u64;
                qsum += c as f64 * q;
            }
        }
        let ratio = |a: f64, b: u64| if b == 0 { f64::NAN } else { a / b as f64 };
        let [l50, l95, l99] = quantiles(&self.latency, w, [0.50, 0.95, 0.99]);
        let [t50, t95, _] = quantiles(&self.ttft, w, [0.50, 0.95, 0.99]);
        [ratio(ok as f64, n), l50, l95, l99, t50, t95, ratio(1000.0 * cost, n), ratio(qsum, qn)]
    }
}

/// Nearest-rank percentiles of the values in `sorted` weighted by `w`: the smallest value whose cumulative
/// weight reaches `ceil(p x total)`. NaN when the total weight is zero.
fn quantiles(sorted: &[(u32, f64)], w: &[u32], ps: [f64; 3]) -> [f64; 3] {
    let total: u64 = sorted.iter().map(|&(i, _)| w[i as usize] as u64).sum();
    let mut out = [f64::NAN; 3];
    if total == 0 {
        return out;
    }
    let targets = ps.map(|p| ((p * total as f64).ceil() as u64).clamp(1, total));
    let mut cum = 0u64;
    let mut k = 0;
    for &(i, x) in sorted {
        cum += w[i as usize] as u64;
        while k < 3 && cum >= targets[k] {
            out[k] = x;
            k += 1;
        }
        if k == 3 {
            break;
        }
    }
    out
}

/// The `p` percentile of sorted finite replicates (nearest rank); NaN when there are none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The point estimate and percentile interval of replicates (non-finite ones dropped).
fn estimate(value: f64, replicates: impl Iterator<Item = f64>) -> (Estimate, Vec<f64>) {
    let mut v: Vec<f64> = replicates.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    (Estimate { value, lo: percentile(&v, 0.025), hi: percentile(&v, 0.975) }, v)
}

/// `replicates` bootstrap resamples of an arm: one row of metrics per replicate.
fn bootstrap(arm: &Prepared, replicates: u32, seed: u64, stream: u64) -> Vec<[f64; METRICS.len()]> {
    let n = arm.ok.len();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix64(mix64(seed ^ 0x6162_5f62_6f6f_7473) ^ stream));
    let mut w = vec![0u32; n];
    (0..replicates)
        .map(|_| {
            w.iter_mut().for_each(|c| *c = 0);
            for _ in 0..n {
                // Lemire's multiply-shift: an index in [0, n) from 64 random bits (bias below n / 2^64).
                let i = ((rng.next_u64() as u128 * n as u128) >> 64) as usize;
                w[i] += 1;
            }
            arm.metrics(&w)
        })
        .collect()
}

/// `z(0.975) + z(0.80)`: the multiple of the standard error a difference must reach to be detected with 80%
/// power at a two-sided alpha of 0.05.
pub fn mde_factor() -> f64 {
    let n = Normal::standard();
    n.inverse_cdf(0.975) + n.inverse_cdf(0.80)
}

/// Compares the canary with the control.
pub fn compare(control: &ArmRows, canary: &ArmRows, replicates: u32, seed: u64) -> Comparison {
    let arms = [Prepared::new(&control.rows), Prepared::new(&canary.rows)];
    let points = arms.each_ref().map(|a| a.metrics(&vec![1; a.ok.len()]));
    let counts = arms.each_ref().map(Prepared::counts);
    let reps = [bootstrap(&arms[0], replicates, seed, 0), bootstrap(&arms[1], replicates, seed, 1)];
    let factor = mde_factor();
    let mut metrics = Vec::new();
    for (m, &metric) in METRICS.iter().enumerate() {
        if counts[0][m] == 0 && counts[1][m] == 0 {
            continue; // not in this log (quality, TTFT)
        }
        let (control, _) = estimate(points[0][m], reps[0].iter().map(|r| r[m]));
        let (canary, _) = estimate(points[1][m], reps[1].iter().map(|r| r[m]));
        let (diff, d) = estimate(points[1][m] - points[0][m], reps[0].iter().zip(&reps[1]).map(|(a, b)| b[m] - a[m]));
        let se = if d.len() >= 2 {
            let mean = d.iter().sum::<f64>() / d.len() as f64;
            (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (d.len() - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        let mde = factor * se;
        // Too few usable replicates (an arm without data, or resamples often without any): no verdict.
        let usable = d.len() as f64 >= 0.95 * replicates as f64 && replicates >= 2;
        let verdict = if !usable || !diff.value.is_finite() {
            "not enough data".to_string()
        } else if diff.lo > 0.0 || diff.hi < 0.0 {
            let up = diff.lo > 0.0;
            if up == metric.higher_is_better() { "canary better" } else { "canary worse" }.to_string()
        } else {
            format!("no detectable difference (MDE {})", metric.format(mde).trim_start_matches('+'))
        };
        metrics.push(MetricResult { metric, n: [counts[0][m], counts[1][m]], control, canary, diff, se, mde, verdict });
    }
    Comparison { requests: [control.rows.len() as u64, canary.rows.len() as u64], replicates, seed, metrics }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ok: bool, latency_s: f64, cost_usd: f64) -> AbRow {
        AbRow { ok, latency_s, ttft_s: Some(latency_s / 4.0), cost_usd, quality: None }
    }

    fn arm(name: &str, rows: Vec<AbRow>) -> ArmRows {
        ArmRows { name: name.into(), policy: None, rows }
    }

    #[test]
    fn weighted_nearest_rank_quantiles() {
        let sorted = vec![(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)];
        assert_eq!(quantiles(&sorted, &[1, 1, 1, 1], [0.5, 0.75, 1.0]), [2.0, 3.0, 4.0]);
        // Weight 3 on the first value: it holds the median.
        assert_eq!(quantiles(&sorted, &[3, 0, 0, 1], [0.5, 0.75, 0.99]), [1.0, 1.0, 4.0]);
        assert!(quantiles(&sorted, &[0, 0, 0, 0], [0.5, 0.5, 0.5])[0].is_nan());
    }

    #[test]
    fn mde_factor_is_2_80() {
        assert!((mde_factor() - 2.8016).abs() < 1e-3);
    }

    #[test]
    fn a_clear_cost_difference_is_detected_and_equal_arms_are_not() {
        let control =
            arm("control", (0..400).map(|i| row(true, 1.0 + ((i * 37) % 400) as f64 / 400.0, 0.002)).collect());
        let cheaper =
            arm("canary", (0..400).map(|i| row(true, 1.0 + ((i * 37) % 400) as f64 / 400.0, 0.001)).collect());
        let c = compare(&control, &cheaper, 200, 7);
        let cost = c.metrics.iter().find(|m| m.metric == Metric::CostPer1k).unwrap();
        assert!((cost.diff.value + 1.0).abs() < 1e-9, "{cost:?}");
        assert_eq!(cost.verdict, "canary better");
        let lat = c.metrics.iter().find(|m| m.metric == Metric::LatencyP95).unwrap();
        assert!(lat.verdict.starts_with("no detectable difference (MDE "), "{lat:?}");
        assert!(lat.diff.contains(0.0) && lat.mde > 0.0);
        // Quality is not logged: no row for it.
        assert!(c.metrics.iter().all(|m| m.metric != Metric::Quality));
        // Slower canary: worse.
        let slower = arm("canary", (0..400).map(|i| row(true, 2.0 + ((i * 37) % 400) as f64 / 400.0, 0.002)).collect());
        let c = compare(&control, &slower, 200, 7);
        assert_eq!(c.metrics.iter().find(|m| m.metric == Metric::LatencyP50).unwrap().verdict, "canary worse");
    }

    #[test]
    fn the_interval_covers_a_known_proportion() {
        // 1,000 requests, 900 successful: the 95% interval of the success rate is about 0.90 +/- 0.019.
        let rows: Vec<AbRow> = (0..1000).map(|i| row(i % 10 != 0, 1.0, 0.001)).collect();
        let c = compare(&arm("control", rows.clone()), &arm("canary", rows), 1000, 3);
        let s = &c.metrics[0];
        assert_eq!(s.metric, Metric::Success);
        assert!((s.control.value - 0.9).abs() < 1e-12);
        let half = (s.control.hi - s.control.lo) / 2.0;
        assert!((half - 0.0186).abs() < 0.004, "half width {half}");
        // The difference of two independent arms has sqrt(2) times the spread; MDE = 2.8 SE.
        assert!((s.se - (2.0f64 * 0.9 * 0.1 / 1000.0).sqrt()).abs() < 0.002, "se {}", s.se);
        assert!((s.mde - mde_factor() * s.se).abs() < 1e-12);
    }

    #[test]
    fn same_seed_same_result_other_seed_other_replicates() {
        let a = arm("control", (0..300).map(|i| row(i % 7 != 0, (i % 13) as f64, 0.001 * (i % 5) as f64)).collect());
        let b = arm("canary", (0..250).map(|i| row(i % 9 != 0, (i % 11) as f64, 0.001 * (i % 4) as f64)).collect());
        assert_eq!(compare(&a, &b, 100, 1), compare(&a, &b, 100, 1));
        assert_ne!(compare(&a, &b, 100, 1).metrics[0].diff, compare(&a, &b, 100, 2).metrics[0].diff);
    }
}
