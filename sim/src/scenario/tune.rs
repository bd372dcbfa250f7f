//! The `[tune]` section of a scenario: which policy to tune, over which parameters, how to search, what to
//! minimise and which constraints the chosen configuration must meet.
//!
//! ```toml
//! [tune]
//! policy = "hybrid"                      # a [[policies]] entry; the others are the baselines
//! method = "successive-halving"          # grid | random | lhs | successive-halving
//! candidates = 200                       # how many configurations to try (grid: the cap)
//! replications = 5                       # per candidate (successive halving: for the survivors)
//! requests = 50000                       # per run (default: the scenario's run length)
//! objectives = ["cost_per_1k_usd", "latency_p95_s"]
//! constraints = ["latency_p95_s <= 4s", "success_rate >= 0.995"]
//!
//! [[tune.params]]
//! path = "weights"                       # a simplex: the named fields sum to 1
//! simplex = ["cost", "latency", "load", "quota"]
//!
//! [[tune.params]]
//! path = "buffer"                        # any numeric field of the policy, by its path
//! min = 0.0
//! max = 0.2
//! ```

use crate::report::{METRICS, PolicyRow, metric};
use serde::{Deserialize, Serialize};

pub use crate::params::ParamSpec;

/// A search method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Every combination of `steps` values per parameter (compositions of `steps` parts on a simplex).
    Grid,
    /// Independent uniform draws (uniform on a simplex).
    Random,
    /// Latin hypercube: each parameter's range is cut into `candidates` strata, each stratum used once.
    Lhs,
    /// Latin-hypercube candidates raced over replications: after each rung only the best third survive and
    /// get more replications; candidates dominated with confidence are dropped at once.
    SuccessiveHalving,
}

impl Method {
    /// The name used in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Grid => "grid",
            Method::Random => "random",
            Method::Lhs => "lhs",
            Method::SuccessiveHalving => "successive-halving",
        }
    }
}

/// How a constraint is checked against a candidate's estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// The whole 95% interval must satisfy the constraint (the default: robust to simulation noise).
    #[default]
    Interval,
    /// The mean over replications must satisfy it.
    Mean,
}

/// The `[tune]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneConfig {
    /// Name of the policy to tune (a `[[policies]]` entry).
    pub policy: String,
    /// The parameters and their ranges.
    pub params: Vec<ParamSpec>,
    /// Search method (default successive halving).
    #[serde(default = "default_method")]
    pub method: Method,
    /// Candidates to evaluate (grid: the largest grid allowed).
    #[serde(default = "default_candidates")]
    pub candidates: u32,
    /// Replications per candidate (successive halving: per surviving candidate at the last rung).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replications: Option<u32>,
    /// Requests per run, replacing the scenario's run length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Grid points per scalar parameter and parts of a simplex (default 5).
    #[serde(default = "default_steps")]
    pub steps: u32,
    /// Successive halving: the fraction `1/eta` of candidates that survive each rung (default 3).
    #[serde(default = "default_eta")]
    pub eta: u32,
    /// The two metrics the frontier trades off, both minimised (default cost per 1k and p95).
    #[serde(default = "default_objectives")]
    pub objectives: Vec<String>,
    /// Constraints like `"latency_p95_s <= 4s"` or `"success_rate >= 0.995"`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// How constraints are checked (default: the whole 95% interval).
    #[serde(default)]
    pub confidence: Confidence,
    /// Seed of the candidate sampler (default: the scenario's seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

fn default_method() -> Method {
    Method::SuccessiveHalving
}
fn default_candidates() -> u32 {
    100
}
fn default_steps() -> u32 {
    5
}
fn default_eta() -> u32 {
    3
}
fn default_objectives() -> Vec<String> {
    vec!["cost_per_1k_usd".into(), "latency_p95_s".into()]
}

impl TuneConfig {
    /// Whether constraints are checked on intervals that `replications` cannot give (one replication has
    /// no interval) while there are constraints to check.
    pub fn intervals_unavailable(&self, replications: u32) -> bool {
        self.confidence == Confidence::Interval && replications < 2 && !self.constraints.is_empty()
    }
}

/// A comparison of a constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<=`
    AtMost,
    /// `>=`
    AtLeast,
}

/// A parsed constraint `metric op bound`.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    /// Column of the metric (one of [`METRICS`]).
    pub metric: &'static str,
    /// The comparison.
    pub op: Op,
    /// The bound, in the metric's unit (seconds, USD, fraction).
    pub bound: f64,
    /// The constraint as written.
    pub text: String,
}

impl Constraint {
    /// Parses `"latency_p95_s <= 4s"`, `"p95 <= 4000ms"`, `"success_rate >= 99.5%"` and the like. Short
    /// names: `p50`, `p95`, `p99` (latency), `ttft_p50`, `ttft_p95`, `cost_per_1k`, `success`.
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let (lhs, op, rhs) = if let Some((l, r)) = text.split_once("<=") {
            (l, Op::AtMost, r)
        } else if let Some((l, r)) = text.split_once(">=") {
            (l, Op::AtLeast, r)
        } else if let Some((l, r)) = text.split_once('<') {
            (l, Op::AtMost, r)
        } else if let Some((l, r)) = text.split_once('>') {
            (l, Op::AtLeast, r)
        } else {
            return Err(format!("expected `metric <= value` or `metric >= value`, found {text:?}"));
        };
        let column = resolve_metric(lhs.trim())?;
        let bound = parse_value(rhs.trim()).ok_or_else(|| {
            format!("expected a number (optionally with s, ms or %) after the comparison in {text:?}")
        })?;
        let is_fraction = metric(column).is_some_and(|m| m.format == crate::report::Format::Percent);
        if is_fraction && !(0.0..=1.0).contains(&bound) {
            return Err(format!(
                "`{column}` is a fraction: expected a bound in [0, 1] or a percentage like 99.5%, found {bound} in \
                 {text:?}"
            ));
        }
        Ok(Constraint { metric: column, op, bound, text: text.trim().to_string() })
    }

    /// How far `row` is from meeting the constraint, relative to the bound (0 when it is met); checked on
    /// the mean or on the far end of the 95% interval.
    pub fn violation(&self, row: &PolicyRow, confidence: Confidence) -> f64 {
        let Some(m) = metric(self.metric) else { return f64::INFINITY };
        let est = (m.get)(row);
        if !est.mean.is_finite() {
            return f64::INFINITY;
        }
        let value = match (confidence, self.op) {
            (Confidence::Mean, _) => est.mean,
            (Confidence::Interval, Op::AtMost) => est.upper(),
            (Confidence::Interval, Op::AtLeast) => est.lower(),
        };
        let excess = match self.op {
            Op::AtMost => value - self.bound,
            Op::AtLeast => self.bound - value,
        };
        excess.max(0.0) / self.bound.abs().max(1e-9)
    }

    /// Whether the constraint is met with certainty the other way round: even the near end of the interval
    /// violates it (used to drop candidates early).
    pub fn surely_violated(&self, row: &PolicyRow) -> bool {
        let Some(m) = metric(self.metric) else { return false };
        let est = (m.get)(row);
        if est.ci95.is_none() {
            return false;
        }
        match self.op {
            Op::AtMost => est.lower() > self.bound,
            Op::AtLeast => est.upper() < self.bound,
        }
    }
}

/// The metrics of answer quality (issue 30): present only when the scenario states endpoint quality, so a
/// constraint or objective on one needs a scenario whose endpoints state `quality = { ... }`.
pub const QUALITY_METRICS: [&str; 3] = ["quality", "mean_score", "cost_per_acceptable"];

/// Whether `column` is a metric of answer quality (one of [`QUALITY_METRICS`]).
pub fn is_quality_metric(column: &str) -> bool {
    QUALITY_METRICS.contains(&column)
}

/// Whether a higher value of `column` is better (the success rate, quality and mean score); every other
/// metric is a cost or a delay, better lower. An objective on such a metric is maximised.
pub fn higher_is_better(column: &str) -> bool {
    matches!(column, "success_rate" | "quality" | "mean_score")
}

/// The error for a constraint or objective on a quality metric in a scenario without endpoint quality.
pub fn quality_off_message(column: &str) -> String {
    format!(
        "`{column}` measures answer quality, but the scenario states no endpoint quality: give its endpoints \
         accuracies like `quality = {{ default = 0.8, code = 0.62 }}` (see docs/quality.md), or drop the \
         `{column}` bound"
    )
}

/// The metric column for a name or a short alias.
pub fn resolve_metric(name: &str) -> Result<&'static str, String> {
    let alias = match name {
        "p50" | "latency_p50" => "latency_p50_s",
        "p95" | "latency_p95" => "latency_p95_s",
        "p99" | "latency_p99" => "latency_p99_s",
        "mean" | "latency_mean" => "latency_mean_s",
        "ttft_p50" => "ttft_p50_s",
        "ttft_p95" => "ttft_p95_s",
        "cost_per_1k" | "cost" => "cost_per_1k_usd",
        "success" => "success_rate",
        "score" => "mean_score",
        "acceptable" | "cost_per_acceptable_usd" => "cost_per_acceptable",
        other => other,
    };
    if let Some(q) = QUALITY_METRICS.iter().find(|q| **q == alias) {
        // Known by name even where the metric table lacks it, so that a scenario without quality gets the
        // error that says why (see [`quality_off_message`]) rather than "unknown metric".
        return Ok(metric(q).map_or(*q, |m| m.column));
    }
    metric(alias).map(|m| m.column).ok_or_else(|| {
        let names: Vec<&str> = METRICS.iter().map(|m| m.column).collect();
        let hint = super::diag::nearest(alias, names.iter().copied())
            .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
        format!(
            "unknown metric `{name}`{hint}: expected one of {} or p50, p95, p99, cost_per_1k, success, score",
            names.join(", ")
        )
    })
}

/// A number with an optional unit: `4`, `4s`, `250ms`, `99.5%`.
fn parse_value(s: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('%') {
        (n, 0.01)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    num.trim().parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Estimate;

    #[test]
    fn constraints_parse_with_units_and_aliases() {
        let c = Constraint::parse("p95 <= 4000ms").unwrap();
        assert_eq!((c.metric, c.op, c.bound), ("latency_p95_s", Op::AtMost, 4.0));
        let c = Constraint::parse("success_rate >= 99.5%").unwrap();
        assert_eq!(c.metric, "success_rate");
        assert!((c.bound - 0.995).abs() < 1e-12);
        assert!(Constraint::parse("latency_p95_s = 4").is_err());
        let e = Constraint::parse("latency_p59_s <= 4").unwrap_err();
        assert!(e.contains("did you mean `latency_p95_s`"), "{e}");
        assert!(Constraint::parse("p95 <= fast").is_err());
        let e = Constraint::parse("success >= 99.5").unwrap_err();
        assert!(e.contains("fraction"), "{e}");
    }

    #[test]
    fn violation_uses_the_far_end_of_the_interval() {
        let c = Constraint::parse("p95 <= 4s").unwrap();
        let row = PolicyRow { latency_p95_s: Estimate::with_ci(3.9, 0.2), ..Default::default() };
        assert_eq!(c.violation(&row, Confidence::Mean), 0.0);
        assert!((c.violation(&row, Confidence::Interval) - 0.025).abs() < 1e-12);
        assert!(!c.surely_violated(&row));
        let bad = PolicyRow { latency_p95_s: Estimate::with_ci(4.5, 0.2), ..Default::default() };
        assert!(c.surely_violated(&bad));
        let s = Constraint::parse("success >= 0.99").unwrap();
        let row = PolicyRow { success_rate: Estimate::with_ci(0.995, 0.01), ..Default::default() };
        assert_eq!(s.violation(&row, Confidence::Mean), 0.0);
        assert!(s.violation(&row, Confidence::Interval) > 0.0);
    }
}
