//! The router-visible difficulty estimate's noise, from its ranking quality.
//!
//! `[quality] router_auc = 0.8` gives each request the estimate `d_hat = d + sigma * z` (`z` standard
//! normal, independent of the difficulty `d`). Its AUC is the pairwise concordance `P(d_hat_1 > d_hat_2 |
//! d_1 > d_2)`; for jointly Gaussian variables with correlation `rho` it is `1/2 + asin(rho) / pi`. So
//! `rho = sin(pi * (auc - 1/2))`, and since the correlation of `d` and `d + sigma z` is
//! `1 / sqrt(1 + sigma^2)`, `sigma = sqrt(1 / rho^2 - 1)`.

use std::f64::consts::PI;

/// The estimate's noise standard deviation `sigma` for a ranking quality `auc` in `0.5..=1`: 0 at 1 (the
/// estimate is the difficulty), `+inf` at 0.5 (no information: the engine then gives the noise alone).
/// Values outside the range are clamped to it (the schema rejects them first).
pub fn estimate_sigma(auc: f64) -> f64 {
    let rho = (PI * (auc.clamp(0.5, 1.0) - 0.5)).sin();
    if rho <= 0.0 { f64::INFINITY } else { (1.0 / (rho * rho) - 1.0).max(0.0).sqrt() }
}

/// The AUC (pairwise concordance) of an estimate `d + sigma * z` of a standard normal `d`: the inverse of
/// [`estimate_sigma`].
pub fn auc_of_sigma(sigma: f64) -> f64 {
    let rho = 1.0 / (1.0 + sigma * sigma).sqrt();
    0.5 + rho.asin() / PI
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_concordance_of_simulated_pairs_is_the_auc() {
        // Monte Carlo check of the Gaussian identity with the crate's own keyed streams.
        use crate::rng::KeyedRng;
        use rand_distr::{Distribution, StandardNormal};
        let sigma = estimate_sigma(0.8);
        let mut rng = KeyedRng::new(7);
        let n = 200_000;
        let mut concordant = 0u32;
        for _ in 0..n {
            let mut draw = || -> f64 { StandardNormal.sample(&mut rng) };
            let (d1, d2) = (draw(), draw());
            let (e1, e2) = (d1 + sigma * draw(), d2 + sigma * draw());
            concordant += u32::from((d1 > d2) == (e1 > e2));
        }
        let p = concordant as f64 / n as f64;
        // Standard error sqrt(0.16 / 2e5) = 0.0009: 5 of them.
        assert!((p - 0.8).abs() < 0.0045, "concordance {p}");
    }
}
