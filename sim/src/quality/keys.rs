//! The quality model's keyed random streams of one replication.
//!
//! Every draw is keyed by `(seed, replication, stream, request id[, endpoint id hash])` as every other stream
//! of the simulator ([`crate::rng`]), so the difficulty of a request, its router-visible estimate and its
//! outcome on an endpoint are the same for every policy of a replication (common random numbers) and do not
//! depend on the thread count or on the order of events. Outcomes and verifier verdicts are keyed by the hash
//! of the endpoint's *id string*, not its index, so that two scenarios listing the same endpoints in another
//! order (or a tuning candidate with fewer of them) still share them.

use crate::rng::{KeyedRng, Stream, StreamBase};
use rand_distr::{Distribution, StandardNormal};
use router_core::keyed_rand::mix64;

/// The 64-bit key of an endpoint id in the outcome and verifier streams: FNV-1a over its bytes, then mixed.
pub fn endpoint_key(id: &str) -> u64 {
    mix64(router_core::fnv1a(id.as_bytes()))
}

/// The bases of the four quality streams of one replication, computed once per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QualityKeys {
    difficulty: StreamBase,
    estimate: StreamBase,
    outcome: StreamBase,
    verifier: StreamBase,
}

impl QualityKeys {
    /// The streams of replication `replication` under `seed`.
    pub fn new(seed: u64, replication: u32) -> Self {
        QualityKeys {
            difficulty: StreamBase::new(seed, replication, Stream::QualityDifficulty),
            estimate: StreamBase::new(seed, replication, Stream::QualityEstimate),
            outcome: StreamBase::new(seed, replication, Stream::QualityOutcome),
            verifier: StreamBase::new(seed, replication, Stream::QualityVerifier),
        }
    }

    /// The latent difficulty `d_r ~ N(0, 1)` of request `request`.
    #[inline]
    pub fn difficulty(&self, request: u64) -> f64 {
        StandardNormal.sample(&mut KeyedRng::new(self.difficulty.key(request, 0)))
    }

    /// The standard normal noise `z` of request `request`'s router-visible estimate.
    #[inline]
    pub fn estimate_noise(&self, request: u64) -> f64 {
        StandardNormal.sample(&mut KeyedRng::new(self.estimate.key(request, 0)))
    }

    /// The uniform in `[0, 1)` that decides whether the endpoint of key `endpoint` (see [`endpoint_key`])
    /// answers request `request` acceptably (acceptable iff it is below the acceptance probability).
    #[inline]
    pub fn outcome_uniform(&self, request: u64, endpoint: u64) -> f64 {
        KeyedRng::new(self.outcome.key(request, endpoint)).unit()
    }

    /// The uniform in `[0, 1)` behind a cascade verifier's verdict on the answer of the endpoint of key
    /// `endpoint` to request `request`.
    #[inline]
    pub fn verifier_uniform(&self, request: u64, endpoint: u64) -> f64 {
        KeyedRng::new(self.verifier.key(request, endpoint)).unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_keyed_by_what_they_describe() {
        let k = QualityKeys::new(1, 0);
        assert_eq!(k.difficulty(5).to_bits(), QualityKeys::new(1, 0).difficulty(5).to_bits());
        assert_ne!(k.difficulty(5), k.difficulty(6));
        assert_ne!(k.difficulty(5), QualityKeys::new(1, 1).difficulty(5));
        assert_ne!(k.difficulty(5), k.estimate_noise(5));
        let (a, b) = (endpoint_key("gpt-4o"), endpoint_key("gpt-4o-mini"));
        assert_ne!(a, b);
        assert_ne!(k.outcome_uniform(5, a), k.outcome_uniform(5, b));
        assert_ne!(k.outcome_uniform(5, a), k.verifier_uniform(5, a));
    }

    #[test]
    fn difficulties_are_standard_normal() {
        let k = QualityKeys::new(3, 2);
        let n = 100_000u64;
        let (mut s, mut s2) = (0.0, 0.0);
        for r in 0..n {
            let d = k.difficulty(r);
            s += d;
            s2 += d * d;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        // Standard errors 0.003 (mean) and 0.0045 (variance): five of them.
        assert!(mean.abs() < 0.016, "mean {mean}");
        assert!((var - 1.0).abs() < 0.023, "variance {var}");
    }
}
