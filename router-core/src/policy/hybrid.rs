//! Hybrid routing: a weighted score over cost, latency, load and quota headroom, with safety nets.

use super::{Ctx, Policy, Scored, Target, WeightedTarget};
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
    weights: [f64; 4],
    buffer: f64,
    ceiling: Option<Nanos>,
    /// Every target is an endpoint: filter and measure in one pass, with no group to ask.
    direct: bool,
}

const COST: usize = 0;
const LATENCY: usize = 1;
const LOAD: usize = 2;
const QUOTA: usize = 3;

impl Hybrid {
    /// Hybrid routing over `targets`.
    ///
    /// The weights are rescaled to sum to one (the router rejects negative or all-zero weights).
    pub fn new(targets: Vec<WeightedTarget>, weights: HybridWeights, buffer: f64, ceiling: Option<Nanos>) -> Self {
        let w = [weights.cost, weights.latency, weights.load, weights.quota]
            .map(|x| if x.is_finite() { x.max(0.0) } else { 0.0 });
        // Divide by the largest first so that the sum cannot overflow.
        let largest = w.iter().copied().fold(0.0, f64::max);
        let w = if largest > 0.0 {
            let w = w.map(|x| x / largest);
            let sum: f64 = w.iter().sum();
            w.map(|x| x / sum)
        } else {
            // Only reachable by building a `Hybrid` by hand: score by cost and latency equally.
            [0.5, 0.5, 0.0, 0.0]
        };
        let direct = targets.iter().all(|t| matches!(t.target, Target::Endpoint(_)));
        Hybrid { targets, weights: w, buffer: buffer.max(0.0), ceiling, direct }
    }

    /// The raw terms of endpoint `e` for `req`, indexed by `COST`, `LATENCY`, `LOAD`, `QUOTA`. The cost is
    /// left in USD x 1e6 (min-max normalisation does not care about its unit).
    #[inline(always)]
    fn terms(ctx: &Ctx<'_>, e: EndpointIdx, req: &RequestInfo) -> [f64; 4] {
        let (st, gate) = (ctx.state(e), &ctx.gates[e.get()]);
        let out = req.expected_output_tokens.unwrap_or(ctx.tracking.default_output_tokens);
        [
            req.input_tokens as f64 * gate.price_in + out as f64 * gate.price_out,
            st.latency.value(),
            gate.load(st),
            gate.quota_utilisation(st),
        ]
    }
}

/// Widens the per-term ranges `lo..=hi` to include `t`.
#[inline(always)]
fn widen(lo: &mut [f64; 4], hi: &mut [f64; 4], t: &[f64; 4]) {
    for k in 0..4 {
        lo[k] = if t[k] < lo[k] { t[k] } else { lo[k] };
        hi[k] = if t[k] > hi[k] { t[k] } else { hi[k] };
    }
}

impl Policy for Hybrid {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let (mut lo, mut hi) = ([f64::INFINITY; 4], [f64::NEG_INFINITY; 4]);
        // Groups are asked first (they may use the buffer themselves); after that `terms` is ours until we
        // return. It is written by index and keeps its length between calls (stale entries past `n` are never
        // read), so the loop has no capacity check, no register spills around one and no clearing.
        let blank = Scored { terms: [0.0; 4], ep: EndpointIdx(0), score: 0.0 };
        let mut n = 0;
        let mut terms = if self.direct {
            let mut terms = std::mem::take(ctx.terms);
            if terms.len() < self.targets.len() {
                terms.resize(self.targets.len(), blank);
            }
            for wt in &self.targets {
                if let Target::Endpoint(e) = wt.target
                    && ctx.eligible(e, req)
                {
                    let t = Self::terms(ctx, e, req);
                    widen(&mut lo, &mut hi, &t);
                    terms[n] = Scored { terms: t, ep: e, score: 0.0 };
                    n += 1;
                }
            }
            terms
        } else {
            let start = ctx.gather(&self.targets, req);
            let mut terms = std::mem::take(ctx.terms);
            let found = ctx.scratch.len() - start;
            if terms.len() < found {
                terms.resize(found, blank);
            }
            for i in start..ctx.scratch.len() {
                let e = ctx.scratch[i].ep;
                let t = Self::terms(ctx, e, req);
                widen(&mut lo, &mut hi, &t);
                terms[n] = Scored { terms: t, ep: e, score: 0.0 };
                n += 1;
            }
            // The candidates stay on the scratch stack until the choice is settled (see below).
            terms
        };
        let scored = &mut terms[..n];
        // score = sum_k w_k (t_k - lo_k) / (hi_k - lo_k) = sum_k f_k t_k - sum_k f_k lo_k, f_k = w_k / (hi_k - lo_k).
        let w = self.weights;
        let f: [f64; 4] = std::array::from_fn(|k| if hi[k] > lo[k] { w[k] / (hi[k] - lo[k]) } else { 0.0 });
        let offset = f[COST] * lo[COST] + f[LATENCY] * lo[LATENCY] + f[LOAD] * lo[LOAD] + f[QUOTA] * lo[QUOTA];
        // The ceiling applies only when some candidate is under it, i.e. when the fastest is.
        let ceiling = self.ceiling.map(|c| c as f64).filter(|&c| lo[LATENCY] <= c).unwrap_or(f64::INFINITY);
        let (mut best, mut best_at) = (f64::INFINITY, 0);
        for (i, c) in scored.iter_mut().enumerate() {
            let t = &c.terms;
            c.score = if t[LATENCY] > ceiling {
                f64::INFINITY
            } else {
                (f[COST] * t[COST] + f[LATENCY] * t[LATENCY] + f[LOAD] * t[LOAD] + f[QUOTA] * t[QUOTA] - offset)
                    .max(0.0)
            };
            if c.score < best {
                (best, best_at) = (c.score, i);
            }
        }
        // Uniform among the candidates within `buffer` of the best, as `select::within_abs`.
        let chosen = if scored.is_empty() {
            None
        } else if !best.is_finite() {
            Some(ctx.rand.below(scored.len()))
        } else {
            let limit = best + self.buffer;
            match scored.iter().filter(|c| c.score <= limit).count() {
                1 => Some(best_at),
                within => {
                    let k = ctx.rand.below(within);
                    scored.iter().enumerate().filter(|(_, c)| c.score <= limit).nth(k).map(|(i, _)| i)
                }
            }
        };
        let picked = chosen.map(|i| scored[i].ep);
        if !self.direct {
            // `terms[i]` is the candidate at `start + i` of the scratch stack, which starts where it was.
            let start = ctx.scratch.len() - n;
            ctx.settle(start, chosen);
            ctx.release(start);
        }
        *ctx.terms = terms;
        picked
    }
}
