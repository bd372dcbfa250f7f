//! Latency-based routing: the lowest latency average, with a tolerance buffer against herding.

use super::{Ctx, Policy, WeightedTarget, select};
use crate::model::{EndpointIdx, Nanos, RequestInfo};

/// Sends each request to an endpoint with the lowest latency average (see [`crate::state::Ema`]).
///
/// - **Buffer**: picks uniformly among the endpoints within `buffer` (a fraction, e.g. 0.2) of the best
///   average, so near-equal endpoints share the traffic instead of the single best taking all of it until
///   its average moves (herding). With `buffer = 0` it is pure lowest-average routing.
/// - **Slow threshold**: when every candidate's average exceeds `slow_threshold`, the request goes to the
///   lowest-tier (simplest, usually cheapest and fastest) candidates instead: when everything is slow, a
///   smaller model answering beats a large one timing out.
#[derive(Debug)]
pub struct LatencyBased {
    targets: Vec<WeightedTarget>,
    buffer: f64,
    slow_threshold: Option<Nanos>,
}

impl LatencyBased {
    /// Latency routing over `targets`.
    pub fn new(targets: Vec<WeightedTarget>, buffer: f64, slow_threshold: Option<Nanos>) -> Self {
        LatencyBased { targets, buffer, slow_threshold }
    }
}

impl Policy for LatencyBased {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let (buffer, slow) = (self.buffer, self.slow_threshold);
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                // The averages from the scoreboard: one array, not a state line per endpoint.
                let latency = &ctx.fast.board.latency;
                for c in cands.iter_mut() {
                    c.score = latency[c.ep.get()];
                }
                // Only a slow threshold reads the tiers.
                let Some(s) = slow else { return };
                if cands.iter().all(|c| c.score > s as f64) {
                    let min_tier = cands.iter().map(|c| ctx.endpoint(c.ep).tier).min().unwrap_or(u8::MAX);
                    for c in cands.iter_mut() {
                        if ctx.endpoint(c.ep).tier != min_tier {
                            c.score = f64::INFINITY;
                        }
                    }
                }
            },
            |cands, rand| select::within(cands, buffer, rand),
        )
    }
}
