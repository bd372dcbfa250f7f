//! The report data model: plain, serializable values that the engine fills in and every writer reads.
//!
//! Nothing here knows how a simulation runs. The engine (or a test, or `routesim tune`) builds a
//! [`RunReport`]; the table, file and plot writers only read it. The list of per-policy metrics lives
//! in one place, [`METRICS`], so the CSV, the Parquet file and the terminal table cannot drift apart.
//!
//! Units: times are seconds, money is US dollars, rates and shares are fractions in `[0, 1]`, counts
//! are per replication (a mean over replications, hence `f64`).

use serde::Serialize;
use std::sync::Arc;

// ===== Estimate =====

/// A point estimate over replications with its 95% confidence half-width.
///
/// `ci95` is the half-width of a Student-t 95% confidence interval of the mean over replications, so
/// the interval is `mean ± ci95`. It is `None` when it is unknown, for instance with one replication.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Estimate {
    /// Mean over replications.
    pub mean: f64,
    /// 95% confidence half-width, if known.
    pub ci95: Option<f64>,
}

impl Estimate {
    /// An estimate without a confidence interval (one replication, or a deterministic quantity).
    pub const fn point(mean: f64) -> Self {
        Self { mean, ci95: None }
    }

    /// An estimate with a 95% confidence half-width.
    pub const fn with_ci(mean: f64, ci95: f64) -> Self {
        Self { mean, ci95: Some(ci95) }
    }

    /// Lower end of the 95% interval, or the mean when the half-width is unknown.
    pub fn lower(&self) -> f64 {
        self.mean - self.ci95.unwrap_or(0.0)
    }

    /// Upper end of the 95% interval, or the mean when the half-width is unknown.
    pub fn upper(&self) -> f64 {
        self.mean + self.ci95.unwrap_or(0.0)
    }
}

impl From<&crate::stats::Interval> for Estimate {
    fn from(interval: &crate::stats::Interval) -> Self {
        Self { mean: interval.mean, ci95: interval.half_width }
    }
}

// ===== PolicyRow =====

/// The summary of one policy over all replications: one row of `summary.csv` and of the table.
///
/// Every metric is an [`Estimate`] over replications. Counts (`requests`, `errors_429`, ...) are per
/// replication. Attempt-level counters (`errors_429`, `errors_5xx`, `timeouts`) count attempts, so a
/// request retried twice after two 429s adds 2 to `errors_429`; `ttft_timeouts` is the part of `timeouts`
/// due to the time-to-first-token timeout.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PolicyRow {
    /// Policy name as written in the scenario.
    pub policy: String,
    /// Number of replications the estimates are taken over.
    pub replications: u32,
    /// Requests that arrived after warm-up.
    pub requests: Estimate,
    /// Fraction of requests that completed successfully, in `[0, 1]`.
    pub success_rate: Estimate,
    /// Mean end-to-end latency of successful requests, seconds.
    pub latency_mean_s: Estimate,
    /// Median end-to-end latency, seconds.
    pub latency_p50_s: Estimate,
    /// 95th percentile end-to-end latency, seconds.
    pub latency_p95_s: Estimate,
    /// 99th percentile end-to-end latency, seconds.
    pub latency_p99_s: Estimate,
    /// Median time to first token, seconds.
    pub ttft_p50_s: Estimate,
    /// 95th percentile time to first token, seconds.
    pub ttft_p95_s: Estimate,
    /// Total cost, US dollars.
    pub cost_usd: Estimate,
    /// Cost per 1000 requests, US dollars.
    pub cost_per_1k_usd: Estimate,
    /// Attempts answered with HTTP 429 (rate limited).
    pub errors_429: Estimate,
    /// Attempts answered with a 5xx status.
    pub errors_5xx: Estimate,
    /// Attempts that timed out on the client side (either timeout).
    pub timeouts: Estimate,
    /// Of those, attempts abandoned because no first token came within the `ttft_timeout`.
    pub ttft_timeouts: Estimate,
    /// Retries issued (attempts beyond the first on the same plan step).
    pub retries: Estimate,
    /// Fallbacks taken to another endpoint.
    pub fallbacks: Estimate,
    /// Requests answered from the response cache.
    pub cache_hits: Estimate,
    /// Requests the router rejected without an attempt.
    pub rejected: Estimate,
    /// Requests denied by their client key's limits or budgets (`[[keys]]`) before routing, any reason.
    pub denied: Estimate,
    /// Of those, over the key's requests per minute.
    pub denied_rpm: Estimate,
    /// Of those, over the key's tokens per minute.
    pub denied_tpm: Estimate,
    /// Of those, over the key's concurrency.
    pub denied_concurrency: Estimate,
    /// Of those, over the key's daily or monthly budget.
    pub denied_budget: Estimate,
    /// Whether the scenario has quality on (some endpoint states an accuracy): only then do the quality
    /// metrics below mean anything, and only then are they written.
    pub quality_on: bool,
    /// Acceptable answers over answered requests (failed requests have no answer), in `[0, 1]`.
    pub quality: Estimate,
    /// Mean score of the answered requests, in `[0, 1]` (equals `quality` for binary outcomes).
    pub mean_score: Estimate,
    /// Total cost over acceptable answers, US dollars.
    pub cost_per_acceptable: Estimate,
}

impl PolicyRow {
    /// Error rate `1 - success_rate` with the same half-width.
    pub fn error_rate(&self) -> Estimate {
        Estimate { mean: 1.0 - self.success_rate.mean, ci95: self.success_rate.ci95 }
    }
}

// ===== Metric table =====

/// How a metric is written in the terminal table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A count: no decimals when the value is integral and has no interval, else one decimal.
    Count,
    /// A fraction in `[0, 1]` shown as a percentage with two decimals.
    Percent,
    /// A number shown with this many significant digits (decimals chosen from its magnitude).
    Significant(u32),
}

/// One per-policy metric: its column name, how the table shows it, and how to read it from a row.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Column name in CSV and Parquet (the CI column is `<column>_ci95`); also the name used in
    /// [`PairedRow::metric`].
    pub column: &'static str,
    /// Short header with unit for the terminal table.
    pub header: &'static str,
    /// Whether the terminal table shows this metric (files always contain every metric).
    pub in_table: bool,
    /// Number format in the terminal table.
    pub format: Format,
    /// Whether the metric exists only with quality on ([`PolicyRow::quality_on`]): every writer leaves it out
    /// otherwise, so that scenarios without quality give the outputs they gave before quality existed.
    pub quality: bool,
    /// Reads the metric from a row.
    pub get: fn(&PolicyRow) -> Estimate,
    /// The metric's field in a row, for filling it in.
    pub get_mut: fn(&mut PolicyRow) -> &mut Estimate,
}

/// One [`Metric`] for the field `$field` of [`PolicyRow`]: the column is the field's name, and both accessors
/// are derived from it, so a metric cannot read one field and write another. A trailing `quality` marks a
/// metric that exists only with quality on.
macro_rules! metric {
    ($field:ident, $header:literal, $in_table:literal, $format:expr) => {
        metric!(@ $field, $header, $in_table, $format, false)
    };
    ($field:ident, $header:literal, $in_table:literal, $format:expr, quality) => {
        metric!(@ $field, $header, $in_table, $format, true)
    };
    (@ $field:ident, $header:literal, $in_table:literal, $format:expr, $quality:literal) => {
        Metric {
            column: stringify!($field),
            header: $header,
            in_table: $in_table,
            format: $format,
            quality: $quality,
            get: |r| r.$field,
            get_mut: |r| &mut r.$field,
        }
    };
}

/// Every per-policy metric, in column order. CSV, Parquet and the table are all derived from this list.
pub const METRICS: &[Metric] = &[
    metric!(requests, "requests", true, Format::Count),
    metric!(success_rate, "success %", true, Format::Percent),
    metric!(latency_mean_s, "mean s", false, Format::Significant(4)),
    metric!(latency_p50_s, "p50 s", true, Format::Significant(4)),
    metric!(latency_p95_s, "p95 s", true, Format::Significant(4)),
    metric!(latency_p99_s, "p99 s", true, Format::Significant(4)),
    metric!(ttft_p50_s, "TTFT p50 s", true, Format::Significant(4)),
    metric!(ttft_p95_s, "TTFT p95 s", false, Format::Significant(4)),
    metric!(cost_usd, "cost USD", true, Format::Significant(4)),
    metric!(cost_per_1k_usd, "USD/1k req", true, Format::Significant(4)),
    // Answer quality: only with quality on.
    metric!(quality, "quality %", true, Format::Percent, quality),
    metric!(mean_score, "mean score", false, Format::Significant(4), quality),
    metric!(cost_per_acceptable, "$/acceptable", true, Format::Significant(4), quality),
    metric!(errors_429, "429s", true, Format::Count),
    metric!(errors_5xx, "5xx", false, Format::Count),
    metric!(timeouts, "timeouts", false, Format::Count),
    metric!(ttft_timeouts, "TTFT timeouts", false, Format::Count),
    metric!(retries, "retries", true, Format::Count),
    metric!(fallbacks, "fallbacks", true, Format::Count),
    metric!(cache_hits, "cache hits", false, Format::Count),
    metric!(rejected, "rejected", false, Format::Count),
    // Client keys (`[[keys]]`): the table shows `denied` only when some policy has denials.
    metric!(denied, "denied", false, Format::Count),
    metric!(denied_rpm, "denied RPM", false, Format::Count),
    metric!(denied_tpm, "denied TPM", false, Format::Count),
    metric!(denied_concurrency, "denied conc.", false, Format::Count),
    metric!(denied_budget, "denied budget", false, Format::Count),
];

/// Looks a metric up by its column name.
pub fn metric(column: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.column == column)
}

/// The metrics of [`METRICS`] that exist with quality on (`quality_on`) or off, in column order.
pub fn metrics(quality_on: bool) -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().filter(move |m| quality_on || !m.quality)
}

/// Whether any of `rows` has quality on.
pub fn quality_on<'a>(rows: impl IntoIterator<Item = &'a PolicyRow>) -> bool {
    rows.into_iter().any(|r| r.quality_on)
}

// ===== Paired differences =====

/// The paired difference `policy - baseline` of one metric over common-random-number replications.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedRow {
    /// The policy compared.
    pub policy: String,
    /// The baseline policy.
    pub baseline: String,
    /// Metric column name, normally one of [`METRICS`].
    pub metric: String,
    /// Mean over replications of `policy - baseline`.
    pub mean_diff: f64,
    /// 95% confidence half-width of the mean difference, if known.
    pub ci95: Option<f64>,
    /// Whether the 95% interval excludes zero.
    pub significant: bool,
}

impl PairedRow {
    /// Builds a row and derives `significant` (the interval `mean_diff ± ci95` excludes zero; never
    /// significant without a half-width).
    pub fn new(
        policy: impl Into<String>,
        baseline: impl Into<String>,
        metric: impl Into<String>,
        mean_diff: f64,
        ci95: Option<f64>,
    ) -> Self {
        let significant = ci95.is_some_and(|h| h.is_finite() && mean_diff.abs() > h);
        Self { policy: policy.into(), baseline: baseline.into(), metric: metric.into(), mean_diff, ci95, significant }
    }
}

// ===== Replications =====

/// The values of every metric in one replication of one policy: what the summary row averages.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ReplicationRow {
    /// Replication index, from 0.
    pub replication: u32,
    /// The metrics of that replication alone (each a point value, `ci95` unknown; `replications` is 1).
    pub row: PolicyRow,
}

// ===== Distributions and time series =====

/// The empirical CDF of end-to-end latency of one policy (pooled over replications).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CdfSeries {
    /// Policy name.
    pub policy: String,
    /// `(latency seconds, cumulative probability)` pairs, ascending in both coordinates.
    pub points: Vec<(f64, f64)>,
}

/// Serializes a shared string as a plain string (serde's `rc` feature is not enabled).
fn shared_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// One interval of one replication of one policy.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TimeseriesRow {
    /// Policy name (shared by every row of the policy: a long run has hundreds of thousands of rows).
    #[serde(serialize_with = "shared_str")]
    pub policy: Arc<str>,
    /// Replication index, from 0.
    pub replication: u32,
    /// Start of the interval in simulated seconds since the start of the run.
    pub t_start_s: f64,
    /// Interval length, seconds.
    pub interval_s: f64,
    /// Completed requests per second in the interval.
    pub throughput_rps: f64,
    /// 95th percentile latency of requests completed in the interval; `None` when none completed.
    pub p95_s: Option<f64>,
    /// Fraction of requests finished in the interval that failed, in `[0, 1]`.
    pub error_rate: f64,
    /// Cost incurred in the interval, US dollars.
    pub cost_usd: f64,
    /// Requests waiting in endpoint queues (summed over endpoints): the time average over the
    /// interval where the engine tracks it, else the value at the interval's end.
    pub queue_len: f64,
    /// The interval reaches past the run's last arrival: no new requests, only the queues draining, so its
    /// p95 is not steady-state service (plots shade it and leave it out of the p95 line).
    pub drain: bool,
}

/// The share of one endpoint among the attempts started in one interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ShareRow {
    /// Policy name (shared by every row of the policy: a long run has hundreds of thousands of rows).
    #[serde(serialize_with = "shared_str")]
    pub policy: Arc<str>,
    /// Replication index, from 0.
    pub replication: u32,
    /// Start of the interval in simulated seconds (matches [`TimeseriesRow::t_start_s`]).
    pub t_start_s: f64,
    /// Endpoint id (shared by every row of the endpoint).
    #[serde(serialize_with = "shared_str")]
    pub endpoint: Arc<str>,
    /// Fraction of the interval's attempts sent to this endpoint, in `[0, 1]`.
    pub share: f64,
}

/// Answer quality of one task class under one policy (only with quality on; `quality_by_class.csv`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ClassQualityRow {
    /// Policy name.
    pub policy: String,
    /// Task class name.
    pub class: String,
    /// Answered requests of the class with a known score, per replication.
    pub answered: f64,
    /// Acceptable answers over answered requests, mean over replications with its 95% half-width.
    pub quality: Estimate,
    /// Mean score of the answered requests, mean over replications with its 95% half-width.
    pub mean_score: Estimate,
}

/// Latency quantiles of one task class under one policy, pooled over replications.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ClassRow {
    /// Policy name.
    pub policy: String,
    /// Task class name.
    pub class: String,
    /// Successful measured requests of the class, over all replications.
    pub succeeded: u64,
    /// Median end-to-end latency (s).
    pub latency_p50_s: f64,
    /// 95th percentile end-to-end latency (s).
    pub latency_p95_s: f64,
    /// Median time to first token (s).
    pub ttft_p50_s: f64,
    /// 95th percentile time to first token (s).
    pub ttft_p95_s: f64,
}

// ===== RunReport =====

/// Everything one `routesim run` reports.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// Number of replications.
    pub replications: u32,
    /// Baseline policy of the paired differences, if any.
    pub baseline: Option<String>,
    /// One row per policy, in scenario order (this order also fixes plot colours).
    pub rows: Vec<PolicyRow>,
    /// Paired differences against the baseline.
    pub paired: Vec<PairedRow>,
    /// Every metric per policy and replication, in row order then replication order.
    pub per_replication: Vec<ReplicationRow>,
    /// Latency CDF per policy.
    pub cdf: Vec<CdfSeries>,
    /// Per-interval time series.
    pub timeseries: Vec<TimeseriesRow>,
    /// Per-interval, per-endpoint traffic shares.
    pub shares: Vec<ShareRow>,
    /// Latency per task class and policy.
    pub classes: Vec<ClassRow>,
    /// Answer quality per task class and policy (empty with quality off).
    pub class_quality: Vec<ClassQualityRow>,
}

impl RunReport {
    /// Indices into [`RunReport::rows`] of the policies on the Pareto frontier, ordered by ascending p95:
    /// of cost per 1k requests against p95 latency (both minimised), and with quality on, of those two and
    /// quality (maximised), as `routesim tune`'s frontier is: a policy dearer or slower than another stays
    /// on it when it answers better. A policy of unknown quality (no answered request of known quality, or
    /// a replay's "as logged" row of a log without quality) is then not on it.
    pub fn frontier(&self) -> Vec<usize> {
        if self.quality_on() {
            let points: Vec<Vec<f64>> =
                self.rows.iter().map(|r| vec![r.latency_p95_s.mean, r.cost_per_1k_usd.mean, -r.quality.mean]).collect();
            return super::pareto_frontier_n(&points);
        }
        let points: Vec<(f64, f64)> =
            self.rows.iter().map(|r| (r.latency_p95_s.mean, r.cost_per_1k_usd.mean)).collect();
        super::pareto_frontier(&points)
    }

    /// Whether the report's policies have quality on (see [`PolicyRow::quality_on`]).
    pub fn quality_on(&self) -> bool {
        quality_on(&self.rows)
    }

    /// Policy names in a stable order: the rows first, then names that only occur in the CDF, time
    /// series or share data, in order of first appearance. Plot colours are indexed by this order.
    pub fn policy_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        let candidates = self
            .rows
            .iter()
            .map(|r| r.policy.as_str())
            .chain(self.cdf.iter().map(|c| c.policy.as_str()))
            .chain(self.timeseries.iter().map(|t| &*t.policy))
            .chain(self.shares.iter().map(|s| &*s.policy));
        for name in candidates {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, p95: f64, cost: f64, quality: Option<f64>) -> PolicyRow {
        PolicyRow {
            policy: name.into(),
            latency_p95_s: Estimate::with_ci(p95, 0.1),
            cost_per_1k_usd: Estimate::with_ci(cost, 0.1),
            quality_on: quality.is_some(),
            quality: Estimate::with_ci(quality.unwrap_or(f64::NAN), 0.01),
            ..PolicyRow::default()
        }
    }

    #[test]
    fn with_quality_the_frontier_has_three_metrics_and_without_it_two() {
        let report = |quality: bool| RunReport {
            rows: [
                ("cheap", 10.0, 1.0, 0.6),
                ("fast", 2.0, 5.0, 0.7),
                // Dearer and slower than `fast`, but answers better: on the frontier only with quality.
                ("strong", 3.0, 6.0, 0.9),
                // Beaten on all three by `fast`.
                ("worse", 4.0, 7.0, 0.65),
                // Beaten by `fast` on cost and p95, equal quality: off either way.
                ("tie", 2.5, 5.5, 0.7),
                // Unknown quality: on no three-metric frontier (beaten on cost and p95 anyway).
                ("unknown", 12.0, 9.0, f64::NAN),
            ]
            .iter()
            .map(|&(n, p95, cost, q)| policy(n, p95, cost, quality.then_some(q)))
            .collect(),
            ..RunReport::default()
        };
        let names = |r: &RunReport| r.frontier().iter().map(|&i| r.rows[i].policy.clone()).collect::<Vec<_>>();
        assert_eq!(names(&report(false)), ["fast", "cheap"], "cost against p95, by ascending p95");
        assert_eq!(names(&report(true)), ["fast", "strong", "cheap"], "and quality, by ascending p95");
        // The two-metric frontier is the part of the three-metric one no member beats on cost and p95 alone.
        let three = report(true);
        let front = three.frontier();
        let plane: Vec<(f64, f64)> =
            front.iter().map(|&i| (three.rows[i].latency_p95_s.mean, three.rows[i].cost_per_1k_usd.mean)).collect();
        let on_plane: Vec<usize> = super::super::pareto_frontier(&plane).into_iter().map(|k| front[k]).collect();
        assert_eq!(on_plane, report(false).frontier());
    }

    #[test]
    fn metric_columns_are_unique_and_cover_the_required_set() {
        let mut seen = std::collections::BTreeSet::new();
        for m in METRICS {
            assert!(seen.insert(m.column), "duplicate column {}", m.column);
        }
        for required in [
            "requests",
            "success_rate",
            "latency_p50_s",
            "latency_p95_s",
            "latency_p99_s",
            "ttft_p50_s",
            "cost_usd",
            "cost_per_1k_usd",
            "errors_429",
            "retries",
            "fallbacks",
        ] {
            assert!(seen.contains(required), "missing {required}");
        }
    }

    #[test]
    fn metric_accessors_read_their_own_field() {
        // Give each field a distinct value and check each accessor returns the value of its column.
        let mut row = PolicyRow::default();
        let fields: [(&str, &mut Estimate); 26] = [
            ("requests", &mut row.requests),
            ("success_rate", &mut row.success_rate),
            ("latency_mean_s", &mut row.latency_mean_s),
            ("latency_p50_s", &mut row.latency_p50_s),
            ("latency_p95_s", &mut row.latency_p95_s),
            ("latency_p99_s", &mut row.latency_p99_s),
            ("ttft_p50_s", &mut row.ttft_p50_s),
            ("ttft_p95_s", &mut row.ttft_p95_s),
            ("cost_usd", &mut row.cost_usd),
            ("cost_per_1k_usd", &mut row.cost_per_1k_usd),
            ("quality", &mut row.quality),
            ("mean_score", &mut row.mean_score),
            ("cost_per_acceptable", &mut row.cost_per_acceptable),
            ("errors_429", &mut row.errors_429),
            ("errors_5xx", &mut row.errors_5xx),
            ("timeouts", &mut row.timeouts),
            ("ttft_timeouts", &mut row.ttft_timeouts),
            ("retries", &mut row.retries),
            ("fallbacks", &mut row.fallbacks),
            ("cache_hits", &mut row.cache_hits),
            ("rejected", &mut row.rejected),
            ("denied", &mut row.denied),
            ("denied_rpm", &mut row.denied_rpm),
            ("denied_tpm", &mut row.denied_tpm),
            ("denied_concurrency", &mut row.denied_concurrency),
            ("denied_budget", &mut row.denied_budget),
        ];
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        for (i, (_, field)) in fields.into_iter().enumerate() {
            *field = Estimate::with_ci(i as f64, 0.5);
        }
        assert_eq!(names.len(), METRICS.len());
        for (i, name) in names.iter().enumerate() {
            let m = metric(name).expect("metric listed");
            assert_eq!((m.get)(&row).mean, i as f64, "accessor of {name}");
        }
        // Writing through `get_mut` changes exactly the field `get` reads, and no other.
        for (i, m) in METRICS.iter().enumerate() {
            *(m.get_mut)(&mut row) = Estimate::point(100.0 + i as f64);
            assert_eq!((m.get)(&row).mean, 100.0 + i as f64, "get_mut of {}", m.column);
            for (j, other) in METRICS.iter().enumerate().skip(i + 1) {
                assert_eq!((other.get)(&row).mean, j as f64, "{} wrote {}", m.column, other.column);
            }
        }
    }

    #[test]
    fn paired_row_is_significant_only_when_interval_excludes_zero() {
        assert!(PairedRow::new("a", "b", "cost_usd", -1.0, Some(0.5)).significant);
        assert!(!PairedRow::new("a", "b", "cost_usd", -1.0, Some(1.5)).significant);
        assert!(!PairedRow::new("a", "b", "cost_usd", -1.0, None).significant);
        assert!(!PairedRow::new("a", "b", "cost_usd", 1.0, Some(f64::NAN)).significant);
    }

    #[test]
    fn policy_names_keep_row_order_then_first_appearance() {
        let report = RunReport {
            rows: vec![
                PolicyRow { policy: "b".into(), ..Default::default() },
                PolicyRow { policy: "a".into(), ..Default::default() },
            ],
            cdf: vec![CdfSeries { policy: "c".into(), points: vec![] }],
            shares: vec![ShareRow { policy: "a".into(), ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(report.policy_names(), vec!["b", "a", "c"]);
    }

    #[test]
    fn error_rate_is_complement_of_success_rate() {
        let row = PolicyRow { success_rate: Estimate::with_ci(0.98, 0.01), ..Default::default() };
        let e = row.error_rate();
        assert!((e.mean - 0.02).abs() < 1e-12);
        assert_eq!(e.ci95, Some(0.01));
    }
}
