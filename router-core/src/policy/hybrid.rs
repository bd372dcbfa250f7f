//! Hybrid routing: a weighted score over cost, latency, load and quota headroom, with safety nets.

use super::hot::range;
use super::{Ctx, EndpointSet, Policy, Scoreboard, Target, WeightedTarget};
use crate::config::HybridWeights;
use crate::keyed_rand::KeyedRand;
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
    /// The targets' endpoints, in order, when `direct`.
    endpoints: Vec<EndpointIdx>,
    /// The same, as a set.
    set: EndpointSet,
    /// The targets are the endpoints `0..n` in index order (the router's endpoints, when no targets are listed
    /// and none is a batch endpoint): the scoreboard's arrays are then the candidates' terms as they stand.
    identity: bool,
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
        let endpoints = targets
            .iter()
            .filter_map(|t| match t.target {
                Target::Endpoint(e) => Some(e),
                Target::Policy(_) => None,
            })
            .collect::<Vec<_>>();
        let mut set = EndpointSet::default();
        endpoints.iter().for_each(|&e| set.insert(e));
        let identity = direct && endpoints.iter().enumerate().all(|(i, e)| e.get() == i);
        Hybrid { targets, weights: w, buffer: buffer.max(0.0), ceiling, direct, endpoints, set, identity }
    }
}

/// The request-dependent factors of the cost term: `input tokens x price_in + output tokens x price_out`.
#[derive(Clone, Copy)]
struct CostOf {
    input: f64,
    output: f64,
}

impl CostOf {
    #[inline(always)]
    fn new(ctx: &Ctx<'_>, req: &RequestInfo) -> Self {
        let out = req.expected_output_tokens.unwrap_or(ctx.tracking.default_output_tokens);
        CostOf { input: req.input_tokens as f64, output: out as f64 }
    }

    /// The cost term of an endpoint with these prices, in USD x 1e6 (min-max normalisation does not care
    /// about its unit).
    #[inline(always)]
    fn of(self, price_in: f64, price_out: f64) -> f64 {
        self.input * price_in + self.output * price_out
    }

    /// The raw terms of endpoint `e`, indexed by `COST`, `LATENCY`, `LOAD`, `QUOTA`.
    #[inline(always)]
    fn terms(self, b: &Scoreboard, e: EndpointIdx) -> [f64; 4] {
        let e = e.get();
        [self.of(b.price_in[e], b.price_out[e]), b.latency[e], b.load[e], b.quota[e]]
    }
}

/// The hybrid scorer's scratch, kept by the router between decisions: the candidates' endpoints, raw terms
/// and scores, one array per quantity, so that the scoring loops take two candidates per instruction. Its
/// arrays keep their length between calls (entries past the current candidates are stale and never read).
#[derive(Clone, Debug, Default)]
pub(crate) struct Terms {
    ep: Vec<EndpointIdx>,
    t: [Vec<f64>; 4],
    score: Vec<f64>,
}

impl Terms {
    /// Scratch for `n` candidates (the router sizes it for its widest policy when it is built).
    pub(crate) fn with_len(n: usize) -> Self {
        let mut t = Terms::default();
        t.fit(n);
        t
    }

    /// Makes room for `n` candidates; allocates only if the router sized it too small.
    #[inline(always)]
    fn fit(&mut self, n: usize) {
        if self.ep.len() < n {
            self.grow(n);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) {
        self.ep.resize(n, EndpointIdx(0));
        self.t.iter_mut().for_each(|t| t.resize(n, 0.0));
        self.score.resize(n, 0.0);
    }

    /// Stores candidate `i`.
    #[inline(always)]
    fn set(&mut self, i: usize, e: EndpointIdx, t: &[f64; 4]) {
        self.ep[i] = e;
        for (column, &value) in self.t.iter_mut().zip(t) {
            column[i] = value;
        }
    }
}

/// The per-term ranges `lo..=hi` over the candidates.
struct Ranges {
    lo: [f64; 4],
    hi: [f64; 4],
}

impl Ranges {
    /// The ranges of the columns `t` (each term's values over the candidates, none NaN).
    ///
    /// The columns are scanned two candidates at a time, in two interleaved chains per bound whose results are
    /// then combined. Which of several equal values a chain keeps can differ from a single scan only for `0.0`
    /// against `-0.0`, and no use of the ranges tells those apart: `hi > lo`, `hi - lo` with `hi > lo`, the
    /// ceiling test and the scores' comparisons are the same for either zero (a score can at most change the
    /// sign of a zero).
    #[inline(always)]
    fn of([cost, latency, load, quota]: [&[f64]; 4]) -> Ranges {
        let ((c0, c1), (l0, l1)) = (range(cost), range(latency));
        let ((d0, d1), (q0, q1)) = (range(load), range(quota));
        Ranges { lo: [c0, l0, d0, q0], hi: [c1, l1, d1, q1] }
    }
}

impl Hybrid {
    /// Scores the candidates whose terms are the columns `t` (one value per candidate each) into `score`, and
    /// picks one (an index into them), as documented on [`Hybrid`].
    #[inline(always)]
    fn choose(&self, t: [&[f64]; 4], score: &mut [f64], rand: &mut KeyedRand) -> Option<usize> {
        self.choose_in(t, Ranges::of(t), score, rand)
    }

    /// [`Hybrid::choose`] with the ranges of the columns known.
    #[inline(always)]
    fn choose_in(&self, t: [&[f64]; 4], r: Ranges, score: &mut [f64], rand: &mut KeyedRand) -> Option<usize> {
        let n = score.len();
        if n == 0 {
            return None;
        }
        let Ranges { lo, hi } = r;
        // score = sum_k w_k (t_k - lo_k) / (hi_k - lo_k) = sum_k f_k t_k - sum_k f_k lo_k, f_k = w_k / (hi_k - lo_k).
        let w = self.weights;
        let f: [f64; 4] = std::array::from_fn(|k| if hi[k] > lo[k] { w[k] / (hi[k] - lo[k]) } else { 0.0 });
        let offset = f[COST] * lo[COST] + f[LATENCY] * lo[LATENCY] + f[LOAD] * lo[LOAD] + f[QUOTA] * lo[QUOTA];
        // The ceiling applies only when some candidate is under it, i.e. when the fastest is.
        let ceiling = self.ceiling.map(|c| c as f64).filter(|&c| lo[LATENCY] <= c).unwrap_or(f64::INFINITY);
        let (cost, latency, load, quota) = (&t[COST][..n], &t[LATENCY][..n], &t[LOAD][..n], &t[QUOTA][..n]);
        for i in 0..n {
            // Computed for every candidate and then replaced past the ceiling: no branch, two at a time.
            let s = (f[COST] * cost[i] + f[LATENCY] * latency[i] + f[LOAD] * load[i] + f[QUOTA] * quota[i] - offset)
                .max(0.0);
            score[i] = if latency[i] > ceiling { f64::INFINITY } else { s };
        }
        let score = &*score;
        // The lowest score, in two interleaved chains. Scores are never NaN (`max` drops a NaN), so the two
        // chains' minima give the minimum of all.
        let (mut even, mut odd) = (f64::INFINITY, f64::INFINITY);
        let pairs = score.chunks_exact(2);
        if let [last] = pairs.remainder() {
            even = *last;
        }
        for p in pairs {
            even = if p[0] < even { p[0] } else { even };
            odd = if p[1] < odd { p[1] } else { odd };
        }
        let best = if odd < even { odd } else { even };
        if !best.is_finite() {
            return Some(rand.below(n));
        }
        // Uniform among the candidates within `buffer` of the best, as `select::within_abs`: the k-th of them in
        // order, k drawn unless there is only one (then it is the best, the first at the lowest score).
        let limit = best + self.buffer;
        let within = score.iter().filter(|&&s| s <= limit).count();
        let mut k = if within == 1 { 0 } else { rand.below(within) };
        score.iter().position(|&s| {
            if s <= limit {
                if k == 0 {
                    return true;
                }
                k -= 1;
            }
            false
        })
    }
}

impl Policy for Hybrid {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let cost = CostOf::new(ctx, req);
        let fast = ctx.fast;
        if !self.direct {
            return self.select_gathered(ctx, req, cost);
        }
        // Every target open, and the scoreboard's bounds pass them all: nothing to check per endpoint.
        if !fast.all || !self.set.without(fast.open).is_empty() {
            return self.select_filtered(ctx, req, cost);
        }
        // Debug builds also take the full filter (which checks the fast one against `check`) and the general
        // path, and check that both make the same pick with the same draws.
        #[cfg(debug_assertions)]
        let expected = {
            let rand = ctx.rand;
            let picked = self.select_filtered(ctx, req, cost);
            (picked, std::mem::replace(&mut ctx.rand, rand).next_u64())
        };
        let picked = self.select_open(ctx, cost);
        #[cfg(debug_assertions)]
        assert_eq!((picked, ctx.rand.clone().next_u64()), expected, "the fast path picks as the full filter does");
        picked
    }
}

impl Hybrid {
    /// [`Policy::select`] when every target is an endpoint that passes the filter.
    #[inline(always)]
    fn select_open(&self, ctx: &mut Ctx<'_>, cost: CostOf) -> Option<EndpointIdx> {
        let b = ctx.fast.board;
        let n = self.endpoints.len();
        let terms = &mut *ctx.terms;
        terms.fit(n);
        let Terms { t: [c, tl, td, tq], score, .. } = terms;
        let (c, score) = (&mut c[..n], &mut score[..n]);
        let chosen = if self.identity {
            // The scoreboard's arrays are the terms; only the cost depends on the request.
            let (pi, po) = (&b.price_in[..n], &b.price_out[..n]);
            for i in 0..n {
                c[i] = cost.of(pi[i], po[i]);
            }
            let t = [&*c, &b.latency[..n], &b.load[..n], &b.quota[..n]];
            let r = if n == b.latency.len() {
                // All the scoreboard's endpoints: it keeps the ranges of their latency, load and quota.
                let [(l0, l1), (d0, d1), (q0, q1)] = b.ranges();
                let (c0, c1) = range(t[COST]);
                Ranges { lo: [c0, l0, d0, q0], hi: [c1, l1, d1, q1] }
            } else {
                Ranges::of(t)
            };
            self.choose_in(t, r, score, &mut ctx.rand)
        } else {
            let (tl, td, tq) = (&mut tl[..n], &mut td[..n], &mut tq[..n]);
            for (i, &e) in self.endpoints.iter().enumerate() {
                [c[i], tl[i], td[i], tq[i]] = cost.terms(b, e);
            }
            self.choose([c, tl, td, tq], score, &mut ctx.rand)
        };
        chosen.map(|i| self.endpoints[i])
    }
}

impl Hybrid {
    /// [`Policy::select`] over endpoint targets through the full filter, which counts why an endpoint is left
    /// out.
    #[inline(never)]
    fn select_filtered(&self, ctx: &mut Ctx<'_>, req: &RequestInfo, cost: CostOf) -> Option<EndpointIdx> {
        let mut terms = std::mem::take(ctx.terms);
        terms.fit(self.endpoints.len());
        let fast = ctx.fast;
        let mut n = 0;
        for &e in &self.endpoints {
            if ctx.admits(&fast, e, req) {
                terms.set(n, e, &cost.terms(fast.board, e));
                n += 1;
            }
        }
        let Terms { ep, t: [c, tl, td, tq], score } = &mut terms;
        let chosen = self.choose([&c[..n], &tl[..n], &td[..n], &tq[..n]], &mut score[..n], &mut ctx.rand);
        let picked = chosen.map(|i| ep[i]);
        *ctx.terms = terms;
        picked
    }

    /// [`Policy::select`] with groups among the targets: they are asked first (they may use the scratch
    /// themselves), speculatively, and only the chosen candidate's cursor moves are kept.
    #[inline(never)]
    fn select_gathered(&self, ctx: &mut Ctx<'_>, req: &RequestInfo, cost: CostOf) -> Option<EndpointIdx> {
        let start = ctx.gather(&self.targets, req);
        let mut terms = std::mem::take(ctx.terms);
        let n = ctx.scratch.len() - start;
        terms.fit(n);
        for (i, c) in ctx.scratch[start..].iter().enumerate() {
            terms.set(i, c.ep, &cost.terms(ctx.fast.board, c.ep));
        }
        let Terms { ep, t: [c, tl, td, tq], score } = &mut terms;
        let chosen = self.choose([&c[..n], &tl[..n], &td[..n], &tq[..n]], &mut score[..n], &mut ctx.rand);
        let picked = chosen.map(|i| ep[i]);
        // `terms` entry i is the candidate at `start + i` of the scratch stack.
        ctx.settle(start, chosen);
        ctx.release(start);
        *ctx.terms = terms;
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed_rand::KeyedRand;

    /// `range` in two chains finds the same bounds as one scan in order, over lengths odd and even, with
    /// repeated values and both zeros (which may differ only in their sign).
    #[test]
    fn range_matches_a_single_scan() {
        let values = [0.0, -0.0, 1.0, 0.5, 3.0, 1e-300, 2.5e9, 7.0, 0.0, 1.0];
        for n in 0..40 {
            for seed in 0..20 {
                let mut r = KeyedRand::new(seed, n as u64, 9);
                let x: Vec<f64> = (0..n).map(|_| values[r.below(values.len())]).collect();
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for &v in &x {
                    lo = if v < lo { v } else { lo };
                    hi = if v > hi { v } else { hi };
                }
                let (a, b) = range(&x);
                for (got, want) in [(a, lo), (b, hi)] {
                    assert!(
                        got.to_bits() == want.to_bits() || got == 0.0 && want == 0.0,
                        "{x:?}: {got} against {want}"
                    );
                }
            }
        }
    }
}
