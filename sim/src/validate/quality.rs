//! Answer quality against its closed forms (`routesim validate`, issue 30).
//!
//! With no capacity limit every request is answered once, by the endpoint its policy picks, so the quality
//! of a policy is an expectation over the request's difficulty `d ~ N(0, 1)` that the functions below compute
//! by numerical integration (Simpson's rule over `[-10, 10]`, far more precise than any simulation):
//!
//! - [`mix_quality`]: a weighted random router, `sum_e w_e acc_e` (linear in the weights);
//! - [`threshold_form`]: a threshold router on the estimate `d + sigma z` sends a request of difficulty `d`
//!   to the strong side with probability `s(d) = Phi((d - t) / sigma)`; its strong share is `E[s(d)]` and
//!   its quality `E[s(d) p_s(d) + (1 - s(d)) p_w(d)]`;
//! - [`oracle_quality`]: the oracle answers acceptably whenever some endpoint would:
//!   `E[1 - prod_e (1 - p_e(d))]` (outcomes are independent given `d`).
//!
//! Each is weighted over the task classes by their traffic shares. The model file is
//! `scenarios/validation/quality.toml`.

use super::Pending;
use crate::engine::RunResult;
use crate::experiment::{self, ExperimentOptions};
use crate::quality::estimate_sigma;
use anyhow::{Result, anyhow};
use router_core::quality::{acceptance, solve_theta};
use statrs::function::erf::erfc;

/// The quality model, as shipped (path, text).
pub const MODEL: (&str, &str) =
    ("scenarios/validation/quality.toml", include_str!("../../../scenarios/validation/quality.toml"));

/// One task class of the model: its traffic share, discrimination and the two endpoints' accuracies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassForm {
    /// Name.
    pub name: &'static str,
    /// Share of the traffic.
    pub share: f64,
    /// Discrimination `a`.
    pub discrimination: f64,
    /// Accuracy of the strong endpoint.
    pub strong: f64,
    /// Accuracy of the weak endpoint.
    pub weak: f64,
}

/// The classes of `scenarios/validation/quality.toml` (a test checks the file says the same).
pub const CLASSES: [ClassForm; 2] = [
    ClassForm { name: "chat", share: 0.7, discrimination: 1.7, strong: 0.9, weak: 0.6 },
    ClassForm { name: "code", share: 0.3, discrimination: 2.2, strong: 0.8, weak: 0.35 },
];
/// The file's `router_auc`.
pub const ROUTER_AUC: f64 = 0.8;
/// The file's weighted router's weight on the strong endpoint.
pub const RANDOM_STRONG_WEIGHT: f64 = 0.3;
/// The file's threshold.
pub const THRESHOLD: f64 = 0.3;

/// `E[f(d)]` for `d ~ N(0, 1)`, by Simpson's rule over `[-10, 10]` (2,000 intervals).
pub fn expect_over_difficulty(f: impl Fn(f64) -> f64) -> f64 {
    const SPAN: f64 = 10.0;
    const N: usize = 2_000;
    let h = 2.0 * SPAN / N as f64;
    let g = |d: f64| f(d) * (-0.5 * d * d).exp();
    let mut sum = g(-SPAN) + g(SPAN);
    for i in 1..N {
        sum += if i % 2 == 1 { 4.0 } else { 2.0 } * g(-SPAN + i as f64 * h);
    }
    sum * h / 3.0 / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// A weighted random router's quality: `sum w_e acc_e` over `(weight, accuracy)` pairs (weights normalised).
pub fn mix_quality(weighted: &[(f64, f64)]) -> f64 {
    let total: f64 = weighted.iter().map(|(w, _)| w).sum();
    weighted.iter().map(|(w, acc)| w / total * acc).sum()
}

/// A threshold router's `(strong share, quality)` for one class: abilities `theta_strong`, `theta_weak`,
/// discrimination `a`, estimate noise `sigma`, threshold `t`.
pub fn threshold_form(theta_strong: f64, theta_weak: f64, a: f64, sigma: f64, t: f64) -> (f64, f64) {
    let strong = |d: f64| if sigma == 0.0 { f64::from(d > t) } else { normal_cdf((d - t) / sigma) };
    let share = expect_over_difficulty(strong);
    let quality = expect_over_difficulty(|d| {
        let s = strong(d);
        s * acceptance(theta_strong, a, d) + (1.0 - s) * acceptance(theta_weak, a, d)
    });
    (share, quality)
}

/// The oracle's quality for one class: `E[1 - prod_e (1 - p_e(d))]` over the endpoints' abilities `thetas`.
pub fn oracle_quality(thetas: &[f64], a: f64) -> f64 {
    expect_over_difficulty(|d| 1.0 - thetas.iter().map(|&t| 1.0 - acceptance(t, a, d)).product::<f64>())
}

/// The closed forms of the model, class-weighted: (random quality, threshold strong share, threshold
/// quality, oracle quality).
pub fn closed_forms() -> (f64, f64, f64, f64) {
    let sigma = estimate_sigma(ROUTER_AUC);
    let (mut random, mut share, mut threshold, mut oracle) = (0.0, 0.0, 0.0, 0.0);
    for c in CLASSES {
        let (ts, tw) = (solve_theta(c.strong, c.discrimination), solve_theta(c.weak, c.discrimination));
        random += c.share * mix_quality(&[(RANDOM_STRONG_WEIGHT, c.strong), (1.0 - RANDOM_STRONG_WEIGHT, c.weak)]);
        let (s, q) = threshold_form(ts, tw, c.discrimination, sigma, THRESHOLD);
        share += c.share * s;
        threshold += c.share * q;
        oracle += c.share * oracle_quality(&[ts, tw], c.discrimination);
    }
    (random, share, threshold, oracle)
}

/// A run's quality (acceptable over answered).
fn quality_of(r: &RunResult) -> f64 {
    r.metrics.quality.as_ref().map_or(f64::NAN, |q| q.quality())
}

/// A run's quality on class `c`.
fn class_quality_of(r: &RunResult, c: usize) -> f64 {
    r.metrics.quality.as_ref().map_or(f64::NAN, |q| q.class_quality(c))
}

/// A run's share of attempts on endpoint 0 (the strong one).
fn strong_share_of(r: &RunResult) -> f64 {
    r.metrics.endpoint_attempts[0] as f64 / r.metrics.counts.attempts.max(1) as f64
}

/// Runs the quality model and returns its stochastic checks.
pub(super) fn checks(replications: u32, requests: u64) -> Result<Vec<Pending>> {
    let model = super::compile(MODEL, replications, requests, |_| {})?;
    let names = model.policy_names();
    let index =
        |name: &str| names.iter().position(|n| n == name).ok_or_else(|| anyhow!("{}: no policy `{name}`", MODEL.0));
    let selected = ["random-30", "threshold", "oracle", "all-strong", "all-weak"].map(index);
    let selected: Vec<usize> = selected.into_iter().collect::<Result<_>>()?;
    let exp = experiment::run(&model, &selected, &ExperimentOptions::default())?;
    let runs = |i: usize| &exp.runs[i];
    let values = |i: usize, f: &dyn Fn(&RunResult) -> f64| runs(i).iter().map(f).collect::<Vec<f64>>();
    let (random, share, threshold, oracle) = closed_forms();
    let mut out = vec![
        Pending {
            name: format!(
                "quality: weighted random {RANDOM_STRONG_WEIGHT}/{} (linear mix)",
                1.0 - RANDOM_STRONG_WEIGHT
            ),
            expected: random,
            values: values(0, &quality_of),
        },
        Pending {
            name: format!("quality: threshold t={THRESHOLD} auc={ROUTER_AUC} strong share"),
            expected: share,
            values: values(1, &strong_share_of),
        },
        Pending {
            name: format!("quality: threshold t={THRESHOLD} auc={ROUTER_AUC} quality"),
            expected: threshold,
            values: values(1, &quality_of),
        },
        Pending {
            name: "quality: oracle = P(some endpoint accepts)".into(),
            expected: oracle,
            values: values(2, &quality_of),
        },
    ];
    let classes = model.class_names();
    for (run, endpoint) in [(3, "strong"), (4, "weak")] {
        for (c, form) in CLASSES.iter().enumerate() {
            let c_idx = classes.iter().position(|n| n == form.name).ok_or_else(|| anyhow!("no class {}", form.name))?;
            out.push(Pending {
                name: format!("quality: solved theta reproduces {endpoint} accuracy on {}", form.name),
                expected: if endpoint == "strong" { CLASSES[c].strong } else { CLASSES[c].weak },
                values: values(run, &|r| class_quality_of(r, c_idx)),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integral_recovers_known_expectations() {
        assert!((expect_over_difficulty(|_| 1.0) - 1.0).abs() < 1e-12);
        assert!((expect_over_difficulty(|d| d * d) - 1.0).abs() < 1e-10);
        // E[Phi(d)] = 1/2 by symmetry; E[Phi(d / s)] too.
        assert!((expect_over_difficulty(|d| normal_cdf(d / 0.7)) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_threshold_form_has_its_limits() {
        let (ts, tw, a) = (solve_theta(0.9, 1.7), solve_theta(0.6, 1.7), 1.7);
        // A threshold far below every estimate sends everything to the strong side, far above to the weak.
        let (s, q) = threshold_form(ts, tw, a, 0.7, -50.0);
        assert!((s - 1.0).abs() < 1e-9 && (q - 0.9).abs() < 1e-6, "{s} {q}");
        let (s, q) = threshold_form(ts, tw, a, 0.7, 50.0);
        assert!(s.abs() < 1e-9 && (q - 0.6).abs() < 1e-6, "{s} {q}");
        // The share of a threshold t is P(d + sigma z > t) = 1 - Phi(t / sqrt(1 + sigma^2)).
        let (s, _) = threshold_form(ts, tw, a, 0.7, 0.4);
        assert!((s - (1.0 - normal_cdf(0.4 / (1.0f64 + 0.49).sqrt()))).abs() < 1e-9);
        // At the same strong share, routing on an informative estimate beats routing at random.
        let (_, q) = threshold_form(ts, tw, a, 0.7, 0.0);
        assert!(q > mix_quality(&[(0.5, 0.9), (0.5, 0.6)]) + 0.01, "{q}");
    }

    #[test]
    fn the_oracle_is_at_least_every_endpoint_and_at_most_their_union_bound() {
        let (ts, tw, a) = (solve_theta(0.9, 1.7), solve_theta(0.6, 1.7), 1.7);
        let q = oracle_quality(&[ts, tw], a);
        assert!(q > 0.9 && q < 0.9 + 0.6 * 0.1 + 1e-12, "{q}");
    }

    #[test]
    fn the_constants_are_the_files() {
        let text = MODEL.1;
        let s = crate::scenario::Scenario::parse(std::path::Path::new(MODEL.0), text).expect("parses");
        assert_eq!(s.traffic.classes.len(), CLASSES.len());
        for (c, form) in s.traffic.classes.iter().zip(CLASSES) {
            assert_eq!(c.name, form.name);
        }
        for needle in [
            "weight = 0.7",
            "weight = 0.3",
            "discrimination = { default = 1.7, code = 2.2 }",
            "router_auc = 0.8",
            "quality = { default = 0.9, code = 0.8 }",
            "quality = { default = 0.6, code = 0.35 }",
            "{ id = \"strong\", weight = 0.3 }, { id = \"weak\", weight = 0.7 }",
            "threshold = 0.3",
        ] {
            assert!(text.contains(needle), "{} no longer says `{needle}`", MODEL.0);
        }
    }
}
