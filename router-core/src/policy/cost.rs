//! Cost-based routing: the cheapest endpoint that can serve the request.

use super::{Ctx, Policy, WeightedTarget, select};
use crate::model::{EndpointIdx, Price, RequestInfo};

/// Sends each request to the eligible endpoint with the lowest expected cost for it (input tokens x input
/// price + expected output tokens x output price). Eligibility already checks the context window, required
/// capabilities, health, circuit and quota, so "cheapest" always means "cheapest that can serve it".
/// Endpoints of equal cost share the traffic at random.
#[derive(Debug)]
pub struct CostBased {
    targets: Vec<WeightedTarget>,
}

impl CostBased {
    /// Cost routing over `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        CostBased { targets }
    }
}

impl Policy for CostBased {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let default_out = ctx.tracking.default_output_tokens;
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                for c in cands {
                    c.score = expected_cost(ctx, c.ep, req, default_out);
                }
            },
            |cands, rand| select::min_score(cands, rand),
        )
    }
}

/// The expected cost of `req` on endpoint `e` (USD), as cost routing scores it: input tokens x input price +
/// expected output tokens (else `default_out`) x output price.
#[inline]
pub(crate) fn expected_cost(ctx: &Ctx<'_>, e: EndpointIdx, req: &RequestInfo, default_out: u32) -> f64 {
    // The prices from the scoreboard, whose arrays hold the endpoints' own.
    let board = ctx.fast.board;
    let price = Price { input_per_mtok: board.price_in[e.get()], output_per_mtok: board.price_out[e.get()] };
    price.expected_cost(req, default_out)
}
