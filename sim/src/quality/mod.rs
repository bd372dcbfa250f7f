//! Answer quality in the simulator (issue 30): who answers which request acceptably, and what a router sees
//! of it.
//!
//! The model itself (a latent difficulty per request, an ability per endpoint and task class, acceptance
//! `sigma(a * (theta - d))`) is router-core's [`router_core::quality`]; this module turns a scenario's
//! stated accuracies into that model and draws from it on keyed random streams:
//!
//! - [`keys`]: the four quality streams of a replication (difficulty, router-visible estimate, outcome,
//!   verifier) and [`endpoint_key`], the hash of an endpoint's id string that keys outcomes, so that two
//!   policies see the same outcome on the same endpoint whatever its index (common random numbers).
//! - [`estimate_sigma`] (router-core's): the noise of the router-visible estimate from `[quality] router_auc`.
//! - [`outcomes`]: the [`Outcomes`] trait, the one thing the engine asks ("what score does this endpoint's
//!   answer to this request get?"): the seam where a source other than the model (a matrix log of real
//!   outcomes, `crate::logs`) plugs in.
//! - [`model`]: [`QualityModel`], the item-response source compiled from the scenario.
//! - [`verifier`]: a cascade verifier's verdict from its precision and recall against the true outcome.
//!
//! Quality is off for a scenario in which no endpoint states an accuracy: the engine then never calls into
//! this module (it is compiled out of the event loop, see `crate::engine`).

pub mod keys;
pub mod model;
pub mod outcomes;
pub mod verifier;

pub use keys::{QualityKeys, endpoint_key};
pub use model::QualityModel;
pub use outcomes::{ACCEPTABLE_SCORE, Asked, Outcomes, RealCall, acceptable};
pub use router_core::quality::estimate_sigma;
pub use verifier::Verifier;

#[cfg(test)]
mod tests {
    use super::estimate_sigma;

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
