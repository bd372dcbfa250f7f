//! Student-t confidence intervals for the mean of independent samples, and paired differences.

use std::fmt;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{RunningStats, StatsError};

/// A point estimate of a mean with its two-sided confidence half-width.
///
/// The interval is `[mean - half_width, mean + half_width]`. It comes from `n` finite samples
/// (replications, batches or paired differences); `non_finite` counts the NaN / infinite samples
/// that were excluded, so a caller can report them rather than lose them.
///
/// `half_width` is `None` when there are fewer than two finite samples: the spread is unknown,
/// not zero. With no half-width, neither [`Interval::contains`] nor [`Interval::excludes_zero`]
/// holds: each returns `true` only when the data support the claim.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Sample mean of the finite samples; NaN when `n == 0`.
    pub mean: f64,
    /// Half-width of the confidence interval (>= 0); `None` when `n < 2`.
    pub half_width: Option<f64>,
    /// Number of finite samples the estimate is based on.
    pub n: usize,
    /// Number of non-finite samples (NaN, ±inf) that were excluded.
    pub non_finite: usize,
}

// ===== impl Interval =====

impl Interval {
    /// An interval with no data: NaN mean, no half-width.
    pub fn empty() -> Self {
        Interval { mean: f64::NAN, half_width: None, n: 0, non_finite: 0 }
    }

    /// Lower bound `mean - half_width`, if the half-width is known.
    pub fn lower(&self) -> Option<f64> {
        self.half_width.map(|h| self.mean - h)
    }

    /// Upper bound `mean + half_width`, if the half-width is known.
    pub fn upper(&self) -> Option<f64> {
        self.half_width.map(|h| self.mean + h)
    }

    /// Whether `x` lies in the closed interval. `false` when the half-width is unknown (`n < 2`)
    /// or `x` is NaN: agreement with `x` cannot be claimed without an interval.
    pub fn contains(&self, x: f64) -> bool {
        match self.half_width {
            Some(h) => (x - self.mean).abs() <= h,
            None => false,
        }
    }

    /// Whether the interval lies strictly on one side of zero, i.e. the mean (or mean difference)
    /// is significantly different from zero at the interval's level. `false` when the half-width is
    /// unknown (`n < 2`): significance cannot be claimed without an interval.
    pub fn excludes_zero(&self) -> bool {
        match (self.lower(), self.upper()) {
            (Some(lo), Some(hi)) => lo > 0.0 || hi < 0.0,
            _ => false,
        }
    }

    /// Half-width relative to `|mean|` (e.g. 0.02 = ±2%), if both are known and the mean is nonzero.
    pub fn relative_half_width(&self) -> Option<f64> {
        let h = self.half_width?;
        if self.mean == 0.0 || !self.mean.is_finite() {
            return None;
        }
        Some(h / self.mean.abs())
    }
}

impl fmt::Display for Interval {
    /// `mean ± half_width`, honouring the formatter's precision (`{:.3}`); `mean (n=1)` when the
    /// half-width is unknown, `n/a` without data, and a note when non-finite samples were dropped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prec = f.precision();
        let num = |v: f64| match prec {
            Some(p) => format!("{v:.p$}"),
            None => format!("{v}"),
        };
        match (self.n, self.half_width) {
            (0, _) => write!(f, "n/a")?,
            (_, Some(h)) => write!(f, "{} ± {}", num(self.mean), num(h))?,
            (n, None) => write!(f, "{} (n={n})", num(self.mean))?,
        }
        if self.non_finite > 0 {
            write!(f, " [{} non-finite dropped]", self.non_finite)?;
        }
        Ok(())
    }
}

/// The `prob` quantile of Student's t distribution with `dof` degrees of freedom (statrs).
///
/// `None` unless `0 < prob < 1` and `dof` is finite and positive. Example: the two-sided 95%
/// critical value with 4 degrees of freedom is `student_t_quantile(0.975, 4.0) = 2.776`.
pub fn student_t_quantile(prob: f64, dof: f64) -> Option<f64> {
    if !(prob > 0.0 && prob < 1.0 && dof.is_finite() && dof > 0.0) {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, dof).ok()?;
    let q = t.inverse_cdf(prob);
    q.is_finite().then_some(q)
}

impl RunningStats {
    /// The mean with a 95% Student-t interval, treating the observations as independent (use
    /// [`super::batch_means_ci`] for an autocorrelated series from one run).
    pub fn ci95(&self) -> Interval {
        interval_from_stats(self, 0.95)
    }
}

/// Interval from running moments: `mean ± t_{(1+level)/2, n-1} * s / sqrt(n)`.
fn interval_from_stats(stats: &RunningStats, confidence: f64) -> Interval {
    let n = stats.count() as usize;
    let non_finite = stats.non_finite() as usize;
    let Some(mean) = stats.mean() else {
        return Interval { non_finite, ..Interval::empty() };
    };
    let half_width = stats.variance().and_then(|var| {
        let q = student_t_quantile(0.5 + confidence / 2.0, (n - 1) as f64)?;
        Some(q * (var / n as f64).sqrt())
    });
    Interval { mean, half_width, n, non_finite }
}

fn check_confidence(confidence: f64) -> Result<(), StatsError> {
    if confidence > 0.0 && confidence < 1.0 { Ok(()) } else { Err(StatsError::InvalidConfidence(confidence)) }
}

/// Mean of `samples` with a two-sided 95% Student-t confidence interval.
///
/// `half_width = t_{0.975, n-1} * s / sqrt(n)` with `s` the sample standard deviation (n - 1
/// denominator). Assumes the samples are independent and roughly normal in their mean (true for
/// replication means by the CLT). Non-finite samples are excluded and counted in
/// [`Interval::non_finite`]; `half_width` is `None` with fewer than two finite samples.
pub fn mean_ci95(samples: &[f64]) -> Interval {
    interval_from_stats(&RunningStats::from_slice(samples), 0.95)
}

/// Like [`mean_ci95`] at any two-sided confidence level in (0, 1).
///
/// # Errors
/// [`StatsError::InvalidConfidence`] if `confidence` is not strictly between 0 and 1.
pub fn mean_ci(samples: &[f64], confidence: f64) -> Result<Interval, StatsError> {
    check_confidence(confidence)?;
    Ok(interval_from_stats(&RunningStats::from_slice(samples), confidence))
}

/// Mean paired difference `a_i - b_i` with its two-sided 95% t interval.
///
/// This is how two policies run with common random numbers are compared: `a[i]` and `b[i]` are the
/// same metric from replication `i` of each policy. If the interval excludes zero
/// ([`Interval::excludes_zero`]), the policies differ significantly. A pair in which either value
/// (or the difference) is not finite is excluded and counted in [`Interval::non_finite`].
///
/// # Errors
/// [`StatsError::LengthMismatch`] if `a` and `b` differ in length.
pub fn paired_diff(a: &[f64], b: &[f64]) -> Result<Interval, StatsError> {
    paired_diff_ci(a, b, 0.95)
}

/// Like [`paired_diff`] at any two-sided confidence level in (0, 1).
///
/// # Errors
/// [`StatsError::LengthMismatch`] if the lengths differ, [`StatsError::InvalidConfidence`] if
/// `confidence` is not strictly between 0 and 1.
pub fn paired_diff_ci(a: &[f64], b: &[f64], confidence: f64) -> Result<Interval, StatsError> {
    if a.len() != b.len() {
        return Err(StatsError::LengthMismatch { left: a.len(), right: b.len() });
    }
    check_confidence(confidence)?;
    let mut stats = RunningStats::new();
    // A NaN/inf on either side makes the difference non-finite (inf - inf is NaN, and overflow
    // gives inf), so pushing the difference excludes and counts the pair.
    for (x, y) in a.iter().zip(b) {
        let d = if x.is_finite() && y.is_finite() { x - y } else { f64::NAN };
        stats.push(d);
    }
    Ok(interval_from_stats(&stats, confidence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ci95_matches_mean_ci95() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let a = RunningStats::from_slice(&xs).ci95();
        let b = mean_ci95(&xs);
        assert_eq!(a, b);
    }

    #[test]
    fn t_quantile_matches_tables() {
        // Two-sided 95% critical values from standard t tables.
        let cases = [(1.0, 12.706), (2.0, 4.303), (4.0, 2.776), (9.0, 2.262), (29.0, 2.045)];
        for (dof, want) in cases {
            let q = student_t_quantile(0.975, dof).expect("valid quantile");
            assert!((q - want).abs() < 1e-3, "dof {dof}: {q} vs {want}");
        }
        // 99% one-sided, used by the steady-state check.
        let q = student_t_quantile(0.99, 10.0).expect("valid quantile");
        assert!((q - 2.764).abs() < 1e-3, "{q}");
    }

    #[test]
    fn t_quantile_rejects_invalid_arguments() {
        assert_eq!(student_t_quantile(0.0, 4.0), None);
        assert_eq!(student_t_quantile(1.0, 4.0), None);
        assert_eq!(student_t_quantile(f64::NAN, 4.0), None);
        assert_eq!(student_t_quantile(0.975, 0.0), None);
        assert_eq!(student_t_quantile(0.975, f64::INFINITY), None);
    }

    #[test]
    fn ci_matches_hand_computation() {
        // samples 1..=5: mean 3, s^2 = 2.5, s/sqrt(5) = 0.7071, t_{0.975,4} = 2.7764
        let ci = mean_ci95(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(ci.n, 5);
        assert!((ci.mean - 3.0).abs() < 1e-12);
        let hw = ci.half_width.expect("n >= 2");
        assert!((hw - 2.776_445 * (0.5_f64).sqrt()).abs() < 1e-5, "{hw}");
        assert!((hw - 1.963_243).abs() < 1e-5, "{hw}");
        assert!(ci.contains(4.9) && !ci.contains(5.0));
        assert!(ci.excludes_zero());
    }

    #[test]
    fn ci_at_other_levels_is_nested() {
        let xs = [2.0, 4.0, 4.0, 5.0, 7.0, 9.0];
        let h90 = mean_ci(&xs, 0.90).unwrap().half_width.unwrap();
        let h95 = mean_ci(&xs, 0.95).unwrap().half_width.unwrap();
        let h99 = mean_ci(&xs, 0.99).unwrap().half_width.unwrap();
        assert!(h90 < h95 && h95 < h99);
        assert_eq!(mean_ci(&xs, 1.0), Err(StatsError::InvalidConfidence(1.0)));
    }

    #[test]
    fn fewer_than_two_samples_have_no_half_width() {
        let one = mean_ci95(&[7.0]);
        assert_eq!((one.mean, one.half_width, one.n), (7.0, None, 1));
        assert!(!one.contains(7.0), "no interval, no claim of agreement");
        assert!(!one.excludes_zero(), "no interval, no claim of significance");
        let none = mean_ci95(&[]);
        assert!(none.mean.is_nan() && none.half_width.is_none() && none.n == 0);
        assert_eq!(none.to_string(), "n/a");
    }

    #[test]
    fn non_finite_samples_are_excluded_and_counted() {
        let ci = mean_ci95(&[1.0, f64::NAN, 3.0, f64::INFINITY, 5.0]);
        assert_eq!((ci.n, ci.non_finite), (3, 2));
        assert!((ci.mean - 3.0).abs() < 1e-12);
        assert!(ci.to_string().contains("2 non-finite dropped"));
    }

    #[test]
    fn paired_diff_cancels_common_noise() {
        // Common noise is huge, the per-pair difference is exactly 1 plus small noise.
        let noise = [100.0, -50.0, 300.0, 7.0, -120.0];
        let a: Vec<f64> = noise.iter().map(|n| n + 1.0).collect();
        let b: Vec<f64> = noise.iter().zip([0.1, -0.1, 0.05, -0.05, 0.0]).map(|(n, e)| n + e).collect();
        let d = paired_diff(&a, &b).unwrap();
        assert!((d.mean - 1.0).abs() < 1e-9);
        assert!(d.excludes_zero());
        // Unpaired intervals overlap massively.
        let ia = mean_ci95(&a);
        let ib = mean_ci95(&b);
        assert!(ia.contains(ib.mean) && ib.contains(ia.mean));
    }

    #[test]
    fn paired_diff_rejects_length_mismatch_and_drops_bad_pairs() {
        assert_eq!(paired_diff(&[1.0, 2.0], &[1.0]), Err(StatsError::LengthMismatch { left: 2, right: 1 }));
        let d = paired_diff(&[1.0, f64::INFINITY, 3.0, 1e308], &[0.0, f64::INFINITY, 1.0, -1e308]).unwrap();
        assert_eq!((d.n, d.non_finite), (2, 2));
        assert!((d.mean - 1.5).abs() < 1e-12);
    }

    #[test]
    fn display_honours_precision() {
        let ci = mean_ci95(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(format!("{ci:.2}"), "3.00 ± 1.96");
        assert_eq!(format!("{:.1}", mean_ci95(&[2.0])), "2.0 (n=1)");
    }

    #[test]
    fn relative_half_width_is_hw_over_abs_mean() {
        let ci = mean_ci95(&[-2.0, -4.0]);
        let rel = ci.relative_half_width().unwrap();
        assert!((rel - ci.half_width.unwrap() / 3.0).abs() < 1e-12);
        assert_eq!(mean_ci95(&[1.0, -1.0]).relative_half_width(), None);
    }

    proptest! {
        #[test]
        fn half_width_is_non_negative_and_interval_holds_mean(
            xs in proptest::collection::vec(-1e6f64..1e6, 2..40)
        ) {
            let ci = mean_ci95(&xs);
            let h = ci.half_width.unwrap();
            prop_assert!(h >= 0.0);
            prop_assert!(ci.contains(ci.mean));
            prop_assert!(ci.lower().unwrap() <= ci.upper().unwrap());
        }

        #[test]
        fn identical_data_has_zero_half_width_and_more_data_shrinks_it(
            x in -1e6f64..1e6, n in 2usize..50, noise in 0.1f64..10.0
        ) {
            let same = vec![x; n];
            let ci = mean_ci95(&same);
            prop_assert!(ci.half_width.unwrap().abs() <= 1e-9 * x.abs().max(1.0));
            // The same two-point pattern repeated k times: the half-width shrinks as k grows.
            let pattern = [x - noise, x + noise];
            let hw = |k: usize| {
                let v: Vec<f64> = pattern.iter().copied().cycle().take(2 * k).collect();
                mean_ci95(&v).half_width.unwrap()
            };
            prop_assert!(hw(2) < hw(1));
            prop_assert!(hw(n) <= hw(2));
        }

        #[test]
        fn paired_diff_of_shifted_copy_is_exact(
            xs in proptest::collection::vec(-1e3f64..1e3, 2..30), shift in -10f64..10.0
        ) {
            let ys: Vec<f64> = xs.iter().map(|x| x - shift).collect();
            let d = paired_diff(&xs, &ys).unwrap();
            prop_assert!((d.mean - shift).abs() < 1e-9);
            prop_assert!(d.half_width.unwrap() < 1e-9);
        }
    }
}
