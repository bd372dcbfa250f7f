//! Strong/weak routing by a difficulty estimate, as RouteLLM's routers do: hard requests to the strong
//! targets, the others to the weak ones.

use super::cost::expected_cost;
use super::{Ctx, Policy, WeightedTarget, select};
use crate::model::{EndpointIdx, RequestInfo};

/// Sends a request whose difficulty estimate ([`RequestInfo::difficulty`]) is above `threshold` to the
/// cheapest eligible `strong` target, and any other request to the cheapest eligible weak target. A request
/// without an estimate counts as hard (strong side). When the chosen side has no eligible target, the request
/// spills to the other side, so quota, circuit and capability filters never strand it.
#[derive(Debug)]
pub struct Threshold {
    weak: Vec<WeightedTarget>,
    strong: Vec<WeightedTarget>,
    threshold: f64,
}

impl Threshold {
    /// Strong/weak routing: `weak` and `strong` targets, split at `threshold` on the difficulty scale.
    pub fn new(weak: Vec<WeightedTarget>, strong: Vec<WeightedTarget>, threshold: f64) -> Self {
        Threshold { weak, strong, threshold }
    }

    /// Whether `req` goes to the strong side first.
    #[inline]
    pub fn is_hard(&self, req: &RequestInfo) -> bool {
        req.difficulty.is_none_or(|d| d > self.threshold)
    }
}

/// The cheapest eligible endpoint among `targets` (ties at random), as cost routing picks it.
#[inline]
pub(crate) fn cheapest(ctx: &mut Ctx<'_>, targets: &[WeightedTarget], req: &RequestInfo) -> Option<EndpointIdx> {
    let default_out = ctx.tracking.default_output_tokens;
    ctx.pick(
        targets,
        req,
        |ctx, cands| {
            for c in cands {
                c.score = expected_cost(ctx, c.ep, req, default_out);
            }
        },
        |cands, rand| select::min_score(cands, rand),
    )
}

impl Policy for Threshold {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let (first, then) = if self.is_hard(req) { (&self.strong, &self.weak) } else { (&self.weak, &self.strong) };
        cheapest(ctx, first, req).or_else(|| cheapest(ctx, then, req))
    }
}
