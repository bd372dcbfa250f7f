//! Answer quality in logs: tallying the logged scores of a set of requests (the "as logged" row of
//! `routesim replay`, one endpoint and task class in `routesim fit`, a matrix log) into an acceptance rate
//! and a mean score, each with a 95% confidence interval.
//!
//! A logged quality is 0/1 (unacceptable/acceptable) or a score in `0..=1`. A score counts as acceptable
//! when it is at least [`ACCEPTABLE_SCORE`]. The acceptance rate's interval is Wilson's score interval
//! (exact enough for small samples and rates near 0 or 1, where the normal approximation fails); the mean
//! score's is Wilson's too when every score is 0 or 1 (then the mean score is the acceptance rate), else
//! Student's t on the scores.

pub use crate::quality::ACCEPTABLE_SCORE;
use crate::quality::acceptable;
use crate::stats::{RunningStats, student_t_quantile};

/// The two-sided 95% normal quantile of Wilson's interval.
const Z95: f64 = 1.959_963_984_540_054;

/// How a [`QualityEstimate`]'s interval was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiMethod {
    /// Wilson's score interval for a proportion.
    Wilson,
    /// Student's t interval for a mean.
    StudentT,
}

impl CiMethod {
    /// Name as printed (`Wilson`, `t`).
    pub fn name(self) -> &'static str {
        match self {
            CiMethod::Wilson => "Wilson",
            CiMethod::StudentT => "t",
        }
    }
}

/// An estimated proportion or mean with its 95% confidence interval and the rows it rests on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityEstimate {
    /// The estimate (NaN without rows).
    pub value: f64,
    /// Lower end of the 95% interval (NaN when unknown: no rows, or one score for a t interval).
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
    /// Rows it rests on.
    pub n: u64,
    /// How the interval was computed.
    pub method: CiMethod,
}

impl std::fmt::Display for QualityEstimate {
    /// `0.812 (95% CI 0.741..0.868, Wilson, n 120)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n == 0 {
            return write!(f, "n/a (no rows)");
        }
        if self.low.is_nan() {
            return write!(f, "{:.3} (no interval, n {})", self.value, self.n);
        }
        write!(f, "{:.3} (95% CI {:.3}..{:.3}, {}, n {})", self.value, self.low, self.high, self.method.name(), self.n)
    }
}

/// Wilson's 95% score interval for `successes` out of `n` (`(NaN, NaN)` when `n` is 0).
pub fn wilson(successes: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The logged scores of a set of requests.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreTally {
    scores: RunningStats,
    acceptable: u64,
    binary: bool,
}

impl Default for ScoreTally {
    fn default() -> Self {
        ScoreTally { scores: RunningStats::default(), acceptable: 0, binary: true }
    }
}

impl ScoreTally {
    /// Adds one answer's score (in `0..=1`; the readers reject anything else).
    pub fn push(&mut self, score: f64) {
        self.scores.push(score);
        self.acceptable += u64::from(acceptable(score));
        self.binary &= score == 0.0 || score == 1.0;
    }

    /// Adds another tally's scores.
    pub fn merge(&mut self, other: &ScoreTally) {
        self.scores.merge(&other.scores);
        self.acceptable += other.acceptable;
        self.binary &= other.binary;
    }

    /// Scores tallied.
    pub fn count(&self) -> u64 {
        self.scores.count()
    }

    /// Acceptable answers (score >= [`ACCEPTABLE_SCORE`]).
    pub fn acceptable(&self) -> u64 {
        self.acceptable
    }

    /// Whether every score is 0 or 1 (then the mean score is the acceptance rate).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// The acceptance rate (acceptable / scored) with Wilson's interval.
    pub fn acceptance(&self) -> QualityEstimate {
        let n = self.count();
        let (low, high) = wilson(self.acceptable, n);
        let value = if n == 0 { f64::NAN } else { self.acceptable as f64 / n as f64 };
        QualityEstimate { value, low, high, n, method: CiMethod::Wilson }
    }

    /// The mean score: Wilson's interval when every score is 0 or 1, else Student's t.
    pub fn mean_score(&self) -> QualityEstimate {
        if self.binary {
            return self.acceptance();
        }
        let n = self.count();
        let value = self.scores.mean().unwrap_or(f64::NAN);
        let half = self
            .scores
            .variance()
            .and_then(|v| Some(student_t_quantile(0.975, (n - 1) as f64)? * (v / n as f64).sqrt()))
            .unwrap_or(f64::NAN);
        QualityEstimate {
            value,
            low: (value - half).max(0.0),
            high: (value + half).min(1.0),
            n,
            method: CiMethod::StudentT,
        }
    }
}

/// Reason of a malformed row whose `quality` is not a number.
pub const QUALITY_NOT_A_NUMBER: &str = "quality is not a number";
/// Reason of a malformed row whose `quality` is a number outside `0..=1`.
pub const QUALITY_OUT_OF_RANGE: &str = "quality outside 0..=1";

/// A logged answer quality: a finite number in `0..=1` (`true`/`false` read as 1/0, as a verifier's verdict
/// is often logged); the error is a malformed row's reason and detail.
pub fn parse_quality(s: &str) -> Result<f64, (&'static str, String)> {
    let v = match s.trim() {
        "true" | "True" => 1.0,
        "false" | "False" => 0.0,
        t => match t.parse::<f64>() {
            Ok(v) if !v.is_nan() => v,
            _ => return Err((QUALITY_NOT_A_NUMBER, format!("quality = {s:?}, expected 0/1 or a score in 0..=1"))),
        },
    };
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err((QUALITY_OUT_OF_RANGE, format!("quality = {s:?}, expected 0/1 or a score in 0..=1")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_its_closed_form_on_known_values() {
        // 8 of 10: the textbook interval 0.490..0.943 (Wilson 1927; Newcombe 1998, method 3).
        let (lo, hi) = wilson(8, 10);
        assert!((lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4, "{lo} {hi}");
        // 0 of 20: lower end 0, upper end z^2 / (n + z^2).
        let (lo, hi) = wilson(0, 20);
        assert_eq!(lo, 0.0);
        assert!((hi - Z95 * Z95 / (20.0 + Z95 * Z95)).abs() < 1e-12);
        assert!(wilson(0, 0).0.is_nan());
    }

    #[test]
    fn binary_scores_give_the_acceptance_rate_and_scores_a_t_interval() {
        let mut t = ScoreTally::default();
        for s in [1.0, 0.0, 1.0, 1.0] {
            t.push(s);
        }
        assert!(t.is_binary());
        assert_eq!((t.count(), t.acceptable()), (4, 3));
        assert_eq!(t.mean_score(), t.acceptance());
        assert_eq!(t.acceptance().value, 0.75);

        let mut s = ScoreTally::default();
        for x in [0.2, 0.4, 0.6, 0.8] {
            s.push(x);
        }
        assert!(!s.is_binary());
        assert_eq!(s.acceptable(), 2);
        let m = s.mean_score();
        assert_eq!(m.method, CiMethod::StudentT);
        assert!((m.value - 0.5).abs() < 1e-12);
        // sd = sqrt(0.2/3), t(0.975, 3) = 3.1824: half-width 0.4109.
        let half = 3.182_446_305 * (0.2f64 / 3.0).sqrt() / 2.0;
        assert!((m.high - (0.5 + half)).abs() < 1e-6, "{m:?}");
    }
}
