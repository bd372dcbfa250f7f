//! Answer quality: what an endpoint answers acceptably, as a two-parameter item-response model.
//!
//! Each request has a latent difficulty `d`, standard normal within its task class. Endpoint `e` answers
//! it acceptably with probability `sigma(a * (theta_e - d))`, where `a` is the class's discrimination and
//! `theta_e` the endpoint's ability on the class. A user states the endpoint's *accuracy* on the class
//! (the fraction of the class's requests it answers acceptably, as a benchmark or an eval measures it);
//! [`solve_theta`] finds the ability that reproduces it. Because every endpoint faces the same `d`, hard
//! requests are hard for every model: the correlation that makes routing by difficulty pay.
//!
//! The class's difficulty is standard normal without loss of generality: a normal difficulty of mean `m`
//! and deviation `s` gives the same outcomes as a standard one with ability `(theta - m) / s` and
//! discrimination `a * s`, and the ability is solved from the stated accuracy anyway.
//!
//! This module is pure arithmetic. The simulator draws difficulties and outcomes from it; quality-aware
//! policies predict acceptance with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The class key that applies to every task class not listed by name (and to requests without a class).
pub const DEFAULT_CLASS: &str = "default";

/// Discrimination used for a class when neither the class nor `default` states one: 1.7, the scaling
/// constant that makes the logistic curve follow the normal ogive (the classical item-response default).
pub const DEFAULT_DISCRIMINATION: f64 = 1.7;

/// An endpoint's accuracy per task class: the fraction of the class's requests it answers acceptably, in
/// `0..=1`. The key `default` applies to classes not listed. Written in a file as
/// `quality = { default = 0.8, code = 0.62 }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Accuracy(pub BTreeMap<String, f64>);

impl Accuracy {
    /// Whether no accuracy is stated at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The accuracy on `class`: its own entry, else `default`, else `None`.
    pub fn for_class(&self, class: Option<&str>) -> Option<f64> {
        class.and_then(|c| self.0.get(c)).or_else(|| self.0.get(DEFAULT_CLASS)).copied()
    }
}

/// The quality model's parameters shared by every endpoint: discrimination per task class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    /// Task class -> discrimination `a` (> 0): how sharply acceptance falls as difficulty passes ability.
    /// `default` applies to classes not listed; [`DEFAULT_DISCRIMINATION`] when neither is given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub discrimination: BTreeMap<String, f64>,
}

impl QualityConfig {
    /// Whether nothing is configured (every class uses [`DEFAULT_DISCRIMINATION`]).
    pub fn is_default(&self) -> bool {
        self.discrimination.is_empty()
    }

    /// The discrimination of `class`.
    pub fn discrimination(&self, class: Option<&str>) -> f64 {
        class
            .and_then(|c| self.discrimination.get(c))
            .or_else(|| self.discrimination.get(DEFAULT_CLASS))
            .copied()
            .unwrap_or(DEFAULT_DISCRIMINATION)
    }
}

/// The logistic function `1 / (1 + e^-x)`, exact at both infinities.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    // `1 / (1 + e^-x)` for x >= 0 and `e^x / (1 + e^x)` below (no overflow either way), written as one
    // `exp(-|x|)` and a select rather than a branch on the sign: the simulator calls this once per drawn
    // outcome with x of random sign, where a branch is mispredicted half the time. The values are the same.
    logistic(x, (-x.abs()).exp())
}

/// [`sigmoid`]`(x)` from `e = e^-|x|` (exact, or [`exp_neg_approx`]'s in [`accepts`]): `1 / (1 + e)` for
/// `x >= 0` and `e / (1 + e)` below, by a select.
#[inline(always)]
fn logistic(x: f64, e: f64) -> f64 {
    let numerator = if x >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// Probability that an endpoint of ability `theta` answers a request of difficulty `d` acceptably, for a
/// class of discrimination `a`: `sigma(a * (theta - d))`. An infinite ability (accuracy 1 or 0) gives 1 or 0.
#[inline]
pub fn acceptance(theta: f64, a: f64, d: f64) -> f64 {
    if theta == f64::INFINITY {
        1.0
    } else if theta == f64::NEG_INFINITY {
        0.0
    } else {
        sigmoid(a * (theta - d))
    }
}

/// Whether a uniform `u` falls below [`acceptance`]`(theta, a, d)`: the very verdict of `u < acceptance(..)`,
/// mostly without calling the exponential. A polynomial `e^-|x|` ([`exp_neg_approx`], relative error below
/// 1e-8) puts the probability within [`ACCEPT_MARGIN`] of the exact one, which settles every `u` farther than
/// that from it; the exact probability settles the rest (about one draw in a million) and every `|x|` beyond
/// [`FAST_RANGE`], infinities and NaN included.
#[inline]
pub fn accepts(u: f64, theta: f64, a: f64, d: f64) -> bool {
    let x = a * (theta - d);
    let t = x.abs();
    if t <= FAST_RANGE {
        let p = logistic(x, exp_neg_approx(t));
        // One test that is almost always true (the draw is far from the edge), and the verdict as the sign
        // of the gap: no branch on the verdict itself, which is a coin flip a branch would mispredict.
        let gap = u - p;
        if gap.abs() >= ACCEPT_MARGIN {
            return gap < 0.0;
        }
    }
    u < acceptance(theta, a, d)
}

/// The `|x|` up to which [`accepts`] approximates (beyond it the probability is within 1e-13 of 0 or 1).
const FAST_RANGE: f64 = 30.0;
/// How far from the approximate probability a uniform must fall for [`accepts`] to trust it: the
/// approximation's error is below 1e-8 (tested; 2.7e-10 at worst on a fine grid), so the margin is ample.
const ACCEPT_MARGIN: f64 = 5e-7;

/// `e^-t` for `t` in `0..=FAST_RANGE`, to a relative error below 1e-8: `t` split as `k ln 2 - r` with `|r|` at
/// most `ln 2 / 2`, `2^-k` put in the exponent bits and `e^r` by its Taylor polynomial of degree 8 (remainder
/// below `0.347^9 / 9!`, 2e-10). No branch and no call.
#[inline(always)]
fn exp_neg_approx(t: f64) -> f64 {
    const ROUND: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: adding and subtracting it rounds to an integer
    let y = -t;
    let k = (y * std::f64::consts::LOG2_E + ROUND) - ROUND;
    let r = y - k * std::f64::consts::LN_2;
    let mut poly = 1.0 / 40_320.0;
    for c in [1.0 / 5_040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        poly = poly * r + c;
    }
    f64::from_bits(((1023 + k as i64) as u64) << 52) * poly
}

/// Half-width of the integration range over the standard normal difficulty: beyond 10 sd the density is
/// below 1e-22.
const SPAN: f64 = 10.0;
/// Simpson intervals over `[-SPAN, SPAN]`: the integrand is smooth, so the error is far below 1e-12.
const INTERVALS: usize = 800;

/// Expected acceptance of an endpoint of ability `theta` over the class's standard normal difficulty:
/// `E[sigma(a * (theta - d))]`, `d ~ N(0, 1)`, by Simpson's rule. This is the accuracy that `theta` implies.
pub fn mean_acceptance(theta: f64, a: f64) -> f64 {
    Simpson::new().mean_acceptance(theta, a)
}

/// [`mean_acceptance`]'s Simpson rule: its nodes and the normal kernel `e^(-d^2/2)` at each, which do not
/// depend on the ability, so that [`solve_theta`] computes them once rather than once per bisection step
/// (half of its exponentials). The sums are the very ones of the textbook loop, term by term.
struct Simpson {
    /// `(d, e^(-d^2/2))` at `d = -SPAN + i h`, `i = 0..=INTERVALS` (the ends exactly `-SPAN` and `SPAN`).
    nodes: Vec<(f64, f64)>,
}

impl Simpson {
    fn new() -> Self {
        let h = 2.0 * SPAN / INTERVALS as f64;
        let node = |i: usize| match i {
            0 => -SPAN,
            INTERVALS => SPAN,
            _ => -SPAN + i as f64 * h,
        };
        Simpson { nodes: (0..=INTERVALS).map(node).map(|d| (d, (-0.5 * d * d).exp())).collect() }
    }

    fn mean_acceptance(&self, theta: f64, a: f64) -> f64 {
        if theta.is_infinite() {
            return acceptance(theta, a, 0.0);
        }
        let h = 2.0 * SPAN / INTERVALS as f64;
        let f = |(d, kernel): (f64, f64)| acceptance(theta, a, d) * kernel;
        let mut sum = f(self.nodes[0]) + f(self.nodes[INTERVALS]);
        for (i, &node) in self.nodes.iter().enumerate().take(INTERVALS).skip(1) {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            sum += w * f(node);
        }
        (sum * h / 3.0 / (2.0 * std::f64::consts::PI).sqrt()).clamp(0.0, 1.0)
    }
}

/// The ability whose [`mean_acceptance`] is `accuracy`, for discrimination `a` (> 0). Accuracy 1 gives
/// `+inf` and 0 gives `-inf` (always and never acceptable). Found by bisection to machine precision; the
/// mean acceptance is strictly increasing in `theta`, so the root is unique.
///
/// # Panics
/// Never: an accuracy outside `0..=1` or a non-finite one is clamped to the range; validate inputs first
/// (a configuration with such values is rejected by the schema).
pub fn solve_theta(accuracy: f64, a: f64) -> f64 {
    let p = if accuracy.is_nan() { 0.5 } else { accuracy.clamp(0.0, 1.0) };
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let simpson = Simpson::new();
    let mean_acceptance = |theta| simpson.mean_acceptance(theta, a);
    let (mut lo, mut hi) = (-1.0, 1.0);
    while mean_acceptance(lo) > p {
        lo *= 2.0;
    }
    while mean_acceptance(hi) < p {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if mean_acceptance(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The router-visible difficulty estimate's noise, from its ranking quality.
///
/// `[quality] router_auc = 0.8` gives each request the estimate `d_hat = d + sigma * z` (`z` standard
/// normal, independent of the difficulty `d`). Its AUC is the pairwise concordance `P(d_hat_1 > d_hat_2 |
/// d_1 > d_2)`; for jointly Gaussian variables with correlation `rho` it is `1/2 + asin(rho) / pi`. So
/// `rho = sin(pi * (auc - 1/2))`, and since the correlation of `d` and `d + sigma z` is
/// `1 / sqrt(1 + sigma^2)`, `sigma = sqrt(1 / rho^2 - 1)`.
///
/// The estimate's noise standard deviation `sigma` for a ranking quality `auc` in `0.5..=1`: 0 at 1 (the
/// estimate is the difficulty), `+inf` at 0.5 (no information: the engine then gives the noise alone).
/// Values outside the range are clamped to it (the schema rejects them first).
pub fn estimate_sigma(auc: f64) -> f64 {
    let rho = (std::f64::consts::PI * (auc.clamp(0.5, 1.0) - 0.5)).sin();
    if rho <= 0.0 { f64::INFINITY } else { (1.0 / (rho * rho) - 1.0).max(0.0).sqrt() }
}

/// The AUC (pairwise concordance) of an estimate `d + sigma * z` of a standard normal `d`: the inverse of
/// [`estimate_sigma`].
pub fn auc_of_sigma(sigma: f64) -> f64 {
    let rho = 1.0 / (1.0 + sigma * sigma).sqrt();
    0.5 + rho.asin() / std::f64::consts::PI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solving_theta_reproduces_the_stated_accuracy() {
        for &a in &[0.5, 1.0, DEFAULT_DISCRIMINATION, 4.0] {
            for &acc in &[0.01, 0.2, 0.5, 0.62, 0.8, 0.95, 0.999] {
                let theta = solve_theta(acc, a);
                assert!((mean_acceptance(theta, a) - acc).abs() < 1e-9, "a={a} acc={acc} theta={theta}");
            }
        }
    }

    proptest::proptest! {
        /// The branch-free sigmoid gives the very bits of the two-branch textbook form (outcomes drawn
        /// against it must not move), over the whole range of doubles, signed zeros and infinities included.
        #[test]
        fn sigmoid_has_the_bits_of_the_two_branch_form(bits in proptest::num::u64::ANY, small in -40.0f64..40.0) {
            fn two_branch(x: f64) -> f64 {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            for x in [f64::from_bits(bits), small, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY] {
                let (got, want) = (sigmoid(x), two_branch(x));
                let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
                proptest::prop_assert!(same, "x={x}: {got} != {want}");
            }
        }
    }

    /// The textbook Simpson loop that [`Simpson`] reorganises: the thetas solved (and so every outcome drawn
    /// against them) must not move by a bit.
    fn textbook_mean_acceptance(theta: f64, a: f64) -> f64 {
        if theta.is_infinite() {
            return acceptance(theta, a, 0.0);
        }
        let h = 2.0 * SPAN / INTERVALS as f64;
        let f = |d: f64| acceptance(theta, a, d) * (-0.5 * d * d).exp();
        let mut sum = f(-SPAN) + f(SPAN);
        for i in 1..INTERVALS {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            sum += w * f(-SPAN + i as f64 * h);
        }
        (sum * h / 3.0 / (2.0 * std::f64::consts::PI).sqrt()).clamp(0.0, 1.0)
    }

    proptest::proptest! {
        #[test]
        fn the_simpson_rule_has_the_bits_of_the_textbook_loop(theta in -8.0f64..8.0, a in 0.1f64..6.0) {
            let simpson = Simpson::new();
            let (got, want) = (simpson.mean_acceptance(theta, a), textbook_mean_acceptance(theta, a));
            proptest::prop_assert_eq!(got.to_bits(), want.to_bits());
        }
    }

    #[test]
    fn the_polynomial_exponential_is_within_its_stated_error() {
        let steps = 3_000_000;
        let worst = (0..=steps)
            .map(|i| FAST_RANGE * i as f64 / steps as f64)
            .map(|t| (exp_neg_approx(t) / (-t).exp() - 1.0).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-8, "worst relative error {worst}");
    }

    proptest::proptest! {
        /// [`accepts`] gives the verdict of the exact probability, for uniforms anywhere and for uniforms right
        /// at the probability's edge (the exact value, a few ulps around it, and within the margin).
        #[test]
        fn accepts_is_the_exact_verdict(
            theta in -6.0f64..6.0, a in 0.1f64..6.0, d in -8.0f64..8.0, u in 0.0f64..1.0, ulps in -4i64..=4,
            inside in -1.0f64..1.0,
        ) {
            let p = acceptance(theta, a, d);
            let near = f64::from_bits((p.to_bits() as i64 + ulps).max(0) as u64);
            for u in [u, p, near, p + inside * ACCEPT_MARGIN, p + inside * 3.0 * ACCEPT_MARGIN] {
                proptest::prop_assert_eq!(accepts(u, theta, a, d), u < p, "u={} p={}", u, p);
            }
        }
    }

    #[test]
    fn accepts_settles_certain_and_far_abilities_exactly() {
        for (theta, d) in [(f64::INFINITY, 3.0), (f64::NEG_INFINITY, -3.0), (40.0, 0.0), (-40.0, 0.0), (f64::NAN, 0.0)]
        {
            for u in [0.0, 1e-300, 0.5, 1.0 - f64::EPSILON] {
                assert_eq!(accepts(u, theta, 1.0, d), u < acceptance(theta, 1.0, d), "theta={theta} u={u}");
            }
        }
    }

    #[test]
    fn half_accuracy_is_ability_zero_by_symmetry() {
        assert!(solve_theta(0.5, 1.3).abs() < 1e-9);
    }

    #[test]
    fn the_limits_are_certain() {
        assert_eq!(solve_theta(1.0, 1.0), f64::INFINITY);
        assert_eq!(solve_theta(0.0, 1.0), f64::NEG_INFINITY);
        assert_eq!(acceptance(f64::INFINITY, 1.0, 50.0), 1.0);
        assert_eq!(acceptance(f64::NEG_INFINITY, 1.0, -50.0), 0.0);
    }

    #[test]
    fn a_probit_closed_form_checks_the_integral() {
        // sigma(x) is close to Phi(x / 1.702); with a = 1.702 the mean acceptance is close to
        // Phi(theta / sqrt(2)): the convolution of two standard normals. Checked to the approximation's
        // own error (about 0.01).
        let phi = |x: f64| 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
        for &theta in &[-2.0, -0.5, 0.0, 0.7, 1.5] {
            let exact = phi(theta / std::f64::consts::SQRT_2);
            assert!((mean_acceptance(theta, 1.702) - exact).abs() < 0.01, "theta={theta}");
        }
    }

    /// Abramowitz and Stegun 7.1.26, good to 1.5e-7: enough for the check above.
    fn erf(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
        let y = 1.0
            - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
                * t
                * (-x * x).exp();
        if x >= 0.0 { y } else { -y }
    }

    #[test]
    fn class_lookup_falls_back_to_default() {
        let acc = Accuracy([("default".to_string(), 0.8), ("code".to_string(), 0.62)].into_iter().collect());
        assert_eq!(acc.for_class(Some("code")), Some(0.62));
        assert_eq!(acc.for_class(Some("chat")), Some(0.8));
        assert_eq!(acc.for_class(None), Some(0.8));
        let q = QualityConfig { discrimination: [("code".to_string(), 2.5)].into_iter().collect() };
        assert_eq!(q.discrimination(Some("code")), 2.5);
        assert_eq!(q.discrimination(Some("chat")), DEFAULT_DISCRIMINATION);
    }

    #[test]
    fn the_limits_are_perfect_and_uninformative() {
        assert_eq!(estimate_sigma(1.0), 0.0);
        assert_eq!(estimate_sigma(0.5), f64::INFINITY);
    }

    #[test]
    fn sigma_and_auc_are_inverse() {
        for auc in [0.55, 0.6, 0.7, 0.8, 0.9, 0.99] {
            assert!((auc_of_sigma(estimate_sigma(auc)) - auc).abs() < 1e-12, "auc {auc}");
        }
        // auc 0.8: rho = sin(0.3 pi) = 0.809, sigma = 0.7265.
        assert!((estimate_sigma(0.8) - 0.726_542_528).abs() < 1e-6, "{}", estimate_sigma(0.8));
    }
}
