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
                // The prices from the scoreboard, whose arrays hold the endpoints' own.
                let board = ctx.fast.board;
                for c in cands {
                    let price = Price {
                        input_per_mtok: board.price_in[c.ep.get()],
                        output_per_mtok: board.price_out[c.ep.get()],
                    };
                    c.score = price.expected_cost(req, default_out);
                }
            },
            |cands, rand| select::min_score(cands, rand),
        )
    }
}
