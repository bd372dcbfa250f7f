//! Weighted random: pick a target at random in proportion to its static weight.

use super::{Ctx, Policy, WeightedTarget, select};
use crate::model::{EndpointIdx, RequestInfo};

/// Picks an eligible target at random, proportional to its weight (the target's `weight`, else the
/// endpoint's static `weight`). Ineligible targets are left out and the others' shares grow in proportion.
#[derive(Debug)]
pub struct WeightedRandom {
    targets: Vec<WeightedTarget>,
}

impl WeightedRandom {
    /// A weighted random choice over `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        WeightedRandom { targets }
    }
}

impl Policy for WeightedRandom {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        ctx.pick(
            &self.targets,
            req,
            |_, cands| cands.iter_mut().for_each(|c| c.score = c.weight),
            |cands, rand| select::weighted(cands, rand),
        )
    }
}
