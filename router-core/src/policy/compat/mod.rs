//! Compat policies: other gateways' routing strategies reproduced decision for decision, so that a config
//! imported from them (`routesim import litellm|portkey`) runs in the simulator as the gateway would run it.
//!
//! Where a gateway's strategy is already one of routesim's own policies, the importer uses that policy and no
//! compat type exists: LiteLLM `simple-shuffle` and Portkey `loadbalance` are [`super::WeightedRandom`] (a
//! weighted draw over the healthy targets), Portkey `fallback` is [`super::FallbackChain`] (after a failure the
//! root's [`crate::TargetRetryConfig`] retries the same target, then moves the innermost fallback node whose
//! status codes match to its next target; a load balancer never draws again), Portkey
//! `conditional` is [`super::Conditional`] (the same query operators, `$regex` excepted) and Portkey sticky
//! load balancing is [`super::Sticky`]. The strategies whose state or arithmetic differ from every routesim
//! policy live here, one module per gateway.

pub mod litellm;

use super::Cand;
use crate::keyed_rand::KeyedRand;

/// A uniformly random candidate among those whose score is at most `best + buffer x best` (LiteLLM's latency
/// buffer; with `buffer = 0` only the ties of the best). Infinite scores are excluded; `None` when every score
/// is infinite.
#[inline]
pub(crate) fn within_relative(c: &[Cand], buffer: f64, rand: &mut KeyedRand) -> Option<usize> {
    let best = c.iter().map(|x| x.score).fold(f64::INFINITY, f64::min);
    if !best.is_finite() {
        return None;
    }
    let limit = best + buffer * best;
    let n = c.iter().filter(|x| x.score <= limit).count();
    super::select::nth_at_most(c, limit, n, rand)
}

/// The first candidate with the lowest finite score (a stable sort's first), or `None` when all are infinite.
#[inline]
pub(crate) fn first_min(c: &[Cand]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, x) in c.iter().enumerate() {
        if x.score.is_finite() && best.is_none_or(|b| x.score < c[b].score) {
            best = Some(i);
        }
    }
    best
}
