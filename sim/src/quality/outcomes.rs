//! The outcome source: what the engine asks about answer quality, and the seam for sources other than the
//! item-response model.
//!
//! The engine knows nothing of difficulties or abilities: for a request it asks an [`Outcomes`] for the
//! router-visible estimate (at arrival), for the score of the answer of the endpoint that answered (at
//! completion), for every endpoint's score (the `oracle` policy) and for an endpoint's stated accuracy (the
//! base rate behind a cascade verifier's precision). [`crate::quality::QualityModel`] implements it from the
//! scenario's stated accuracies; a matrix log of real outcomes (every prompt answered by every model, as
//! RouterBench publishes them) implements it by looking the request's row up (`crate::logs`). A source is
//! set on [`crate::scenario::Compiled::quality`]; `None` means quality is off.

use super::keys::QualityKeys;
use router_core::EndpointIdx;

/// An answer is acceptable when its score is at least this. Binary outcomes score 1 (acceptable) or 0.
pub const ACCEPTABLE_SCORE: f64 = 0.5;

/// Whether an answer of score `score` is acceptable (see [`ACCEPTABLE_SCORE`]).
#[inline]
pub fn acceptable(score: f64) -> bool {
    score >= ACCEPTABLE_SCORE
}

/// What one call really was, when the source knows it (a matrix log records every prompt's call on every
/// model): its tokens and cost, which replace the request's drawn tokens and the endpoint's prices for an
/// attempt on that endpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RealCall {
    /// Prompt tokens as this endpoint's model counted them.
    pub input_tokens: u32,
    /// Completion tokens it produced (the service time's length).
    pub output_tokens: u32,
    /// What the call cost, US dollars (billed when the attempt succeeds).
    pub cost_usd: f64,
}

/// The request an outcome is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asked {
    /// The request id (the traffic model's, or the replayed log's row).
    pub id: u64,
    /// Its task class index (into `Compiled::class_names()`).
    pub class: u16,
}

/// Where answer quality comes from. Implementations must be pure functions of their arguments (the random
/// ones draw from `keys`, keyed by request and endpoint), so that every policy of a replication sees the same
/// outcomes and results do not depend on the thread count.
pub trait Outcomes: std::any::Any + Send + Sync + std::fmt::Debug {
    /// The score in `[0, 1]` of `endpoint`'s answer to `request`, or `None` when unknown (the endpoint states
    /// no accuracy for the class, or the log has no such outcome): such answers are left out of quality.
    fn score(&self, keys: &QualityKeys, request: Asked, endpoint: EndpointIdx) -> Option<f64>;

    /// The scores of every endpoint's answer to `request`, into `out` (one slot per endpoint, in index
    /// order). The default asks [`Outcomes::score`] for each; sources override it when the endpoints share a
    /// draw (the model's difficulty).
    fn scores(&self, keys: &QualityKeys, request: Asked, out: &mut [Option<f64>]) {
        for (e, slot) in out.iter_mut().enumerate() {
            *slot = self.score(keys, request, EndpointIdx(e as u16));
        }
    }

    /// The router-visible difficulty estimate of `request` (`RequestInfo::difficulty`), or `None` when routers
    /// see none.
    fn estimate(&self, keys: &QualityKeys, request: Asked) -> Option<f64>;

    /// Whether [`Outcomes::estimate`] can return `Some` at all (the engine skips asking when not).
    fn has_estimate(&self) -> bool;

    /// The fraction of class `class`'s requests `endpoint` answers acceptably, when known: the base rate that
    /// turns a cascade verifier's precision into its false-pass rate.
    fn accuracy(&self, class: u16, endpoint: EndpointIdx) -> Option<f64>;

    /// Whether [`Outcomes::real_call`] can return `Some` at all (the engine skips asking when not). The
    /// default (the item-response model, which draws no tokens or costs): no.
    fn has_real_calls(&self) -> bool {
        false
    }

    /// The real call of `endpoint` on `request` (its tokens and cost), when the source records it.
    fn real_call(&self, _request: Asked, _endpoint: EndpointIdx) -> Option<RealCall> {
        None
    }
}
