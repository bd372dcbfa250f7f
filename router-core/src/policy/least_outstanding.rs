//! Least outstanding requests: the endpoint with the fewest requests in flight.

use super::{Ctx, Policy, WeightedTarget, select};
use crate::model::{EndpointIdx, RequestInfo};

/// Sends each request to the eligible endpoint with the fewest attempts in flight; ties are broken at random
/// so that idle endpoints share the load.
#[derive(Debug)]
pub struct LeastOutstanding {
    targets: Vec<WeightedTarget>,
}

impl LeastOutstanding {
    /// Least-outstanding over `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        LeastOutstanding { targets }
    }
}

impl Policy for LeastOutstanding {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| cands.iter_mut().for_each(|c| c.score = ctx.state(c.ep).in_flight as f64),
            |cands, rand| select::min_score(cands, rand),
        )
    }
}
