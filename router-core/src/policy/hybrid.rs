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

#[derive(Clone, Copy)]
struct Terms {
    cost: f64,
    latency: f64,
    load: f64,
    quota: f64,
}

impl Policy for Hybrid {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let default_out = ctx.tracking.default_output_tokens;
        let w = self.weights;
        let ceiling = self.ceiling.map(|c| c as f64);
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                let terms = |e: EndpointIdx| {
                    let (ep, st) = (ctx.endpoint(e), ctx.state(e));
                    Terms {
                        cost: ep.price.expected_cost(req, default_out),
                        latency: st.latency.value(),
                        load: match ep.limits.concurrency {
                            Some(c) => st.in_flight as f64 / c.max(1) as f64,
                            None => st.in_flight as f64,
                        },
                        quota: quota_utilisation(ep, st),
                    }
                };
                let inf = f64::INFINITY;
                let (mut lo, mut hi) = (Terms { cost: inf, latency: inf, load: inf, quota: inf }, Terms {
                    cost: -inf,
                    latency: -inf,
                    load: -inf,
                    quota: -inf,
                });
                let mut any_under_ceiling = false;
                for c in cands.iter() {
                    let t = terms(c.ep);
                    lo = Terms {
                        cost: lo.cost.min(t.cost),
                        latency: lo.latency.min(t.latency),
                        load: lo.load.min(t.load),
                        quota: lo.quota.min(t.quota),
                    };
                    hi = Terms {
                        cost: hi.cost.max(t.cost),
                        latency: hi.latency.max(t.latency),
                        load: hi.load.max(t.load),
                        quota: hi.quota.max(t.quota),
                    };
                    any_under_ceiling |= ceiling.is_none_or(|c| t.latency <= c);
                }
                let norm = |x: f64, lo: f64, hi: f64| if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
                for c in cands.iter_mut() {
                    let t = terms(c.ep);
                    c.score = if any_under_ceiling && ceiling.is_some_and(|cl| t.latency > cl) {
                        inf
                    } else {
                        w.cost * norm(t.cost, lo.cost, hi.cost)
                            + w.latency * norm(t.latency, lo.latency, hi.latency)
                            + w.load * norm(t.load, lo.load, hi.load)
                            + w.quota * norm(t.quota, lo.quota, hi.quota)
                    };
                }
            },
            |cands, rand| select::within_abs(cands, self.buffer, rand),
        )
    }
}
