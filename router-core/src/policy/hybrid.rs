//! Hybrid routing: a weighted score over cost, latency, load and quota headroom, with safety nets.

use super::{Ctx, Policy, WeightedTarget, quota_utilisation, select};
use crate::config::HybridWeights;
use crate::model::{EndpointIdx, Nanos, RequestInfo};

/// Scores each eligible candidate as
///
/// `score = w_cost * cost' + w_latency * latency' + w_load * load' + w_quota * quota'`
///
/// where each term is min-max normalised over the candidates (0 = best candidate, 1 = worst), so weights
/// compare like with like, and the weights are divided by their sum, so the score lies in 0..=1 whatever
/// scale they were written in. *cost* is the request's expected cost on the endpoint, *latency* its latency
/// average, *load* its in-flight count relative to its concurrency limit (or raw in-flight count when
/// unlimited), *quota* the fraction of its RPM/TPM used in the window. The lowest score wins; with a
/// `buffer`, the pick is uniform among the candidates whose score is within `buffer` of the best (an
/// absolute margin on the 0..=1 scale: 0.05 = within 5% of the spread between best and worst), so
/// near-equal endpoints share the traffic instead of herding.
///
/// Safety nets: open circuits, unhealthy endpoints and exhausted quotas never reach the score (the shared
/// filter removes them), and endpoints whose latency average exceeds `latency_ceiling` are excluded unless
/// every candidate exceeds it (then the ceiling is ignored rather than rejecting traffic).
#[derive(Debug)]
pub struct Hybrid {
    targets: Vec<WeightedTarget>,
    weights: HybridWeights,
    buffer: f64,
    ceiling: Option<Nanos>,
}

impl Hybrid {
    /// Hybrid routing over `targets`.
    ///
    /// The weights are rescaled to sum to one (the router rejects negative or all-zero weights).
    pub fn new(targets: Vec<WeightedTarget>, weights: HybridWeights, buffer: f64, ceiling: Option<Nanos>) -> Self {
        let sum = weights.cost + weights.latency + weights.load + weights.quota;
        let weights = if sum > 0.0 && sum.is_finite() {
            HybridWeights {
                cost: weights.cost / sum,
                latency: weights.latency / sum,
                load: weights.load / sum,
                quota: weights.quota / sum,
            }
        } else {
            // Only reachable by building a `Hybrid` by hand: score by cost and latency equally.
            HybridWeights { cost: 0.5, latency: 0.5, load: 0.0, quota: 0.0 }
        };
        Hybrid { targets, weights, buffer, ceiling }
    }
}

const COST: usize = 0;
const LATENCY: usize = 1;
const LOAD: usize = 2;
const QUOTA: usize = 3;

impl Hybrid {
    /// The raw terms of endpoint `e` for `req`, indexed by `COST`, `LATENCY`, `LOAD`, `QUOTA`. The cost is
    /// left in USD x 1e6 (min-max normalisation does not care about its unit).
    #[inline]
    fn terms(ctx: &Ctx<'_>, e: EndpointIdx, req: &RequestInfo) -> [f64; 4] {
        let (ep, st) = (ctx.endpoint(e), ctx.state(e));
        let out = req.expected_output_tokens.unwrap_or(ctx.tracking.default_output_tokens);
        [
            req.input_tokens as f64 * ep.price.input_per_mtok + out as f64 * ep.price.output_per_mtok,
            st.latency.value(),
            match ep.limits.concurrency {
                Some(c) => st.in_flight as f64 / c.max(1) as f64,
                None => st.in_flight as f64,
            },
            quota_utilisation(ep, st),
        ]
    }
}

impl Policy for Hybrid {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let start = ctx.gather(&self.targets, req);
        // Nested policies have finished by now, so the candidate and term buffers are ours until we return.
        let mut cands = std::mem::take(ctx.scratch);
        let mut terms = std::mem::take(ctx.terms);
        terms.clear();
        let (mut lo, mut hi) = ([f64::INFINITY; 4], [f64::NEG_INFINITY; 4]);
        for c in &cands[start..] {
            let t = Self::terms(ctx, c.ep, req);
            for k in 0..4 {
                if t[k] < lo[k] {
                    lo[k] = t[k];
                }
                if t[k] > hi[k] {
                    hi[k] = t[k];
                }
            }
            terms.push(t);
        }
        // score = sum_k w_k (t_k - lo_k) / (hi_k - lo_k): fold each weight and range into one factor.
        let w = self.weights;
        let weights = [w.cost, w.latency, w.load, w.quota];
        let factor: [f64; 4] = std::array::from_fn(|k| if hi[k] > lo[k] { weights[k] / (hi[k] - lo[k]) } else { 0.0 });
        // The ceiling applies only when some candidate is under it, i.e. when the fastest is.
        let ceiling = self.ceiling.map(|c| c as f64).filter(|&c| lo[LATENCY] <= c);
        for (c, t) in cands[start..].iter_mut().zip(&terms) {
            c.score = if ceiling.is_some_and(|cl| t[LATENCY] > cl) {
                f64::INFINITY
            } else {
                factor[COST] * (t[COST] - lo[COST])
                    + factor[LATENCY] * (t[LATENCY] - lo[LATENCY])
                    + factor[LOAD] * (t[LOAD] - lo[LOAD])
                    + factor[QUOTA] * (t[QUOTA] - lo[QUOTA])
            };
        }
        let picked = select::within_abs(&cands[start..], self.buffer, &mut ctx.rand).map(|i| cands[start + i].ep);
        cands.truncate(start);
        *ctx.scratch = cands;
        *ctx.terms = terms;
        picked
    }
}
