//! The cascade (FrugalGPT): stages tried cheapest first. This policy picks the first attempt's stage; the
//! escalation after a rejected answer is the router's ([`crate::Router::verification`] and
//! [`crate::Router::escalate`], in `router/cascade.rs`).

use super::{Ctx, Policy, WeightedTarget};
use crate::model::{EndpointIdx, RequestInfo};

/// The first eligible stage, in order (cheapest first): the first attempt of a cascade. A stage that is a
/// group is asked to choose.
#[derive(Debug)]
pub struct Cascade {
    stages: Vec<WeightedTarget>,
}

impl Cascade {
    /// A cascade over `stages`, cheapest first.
    pub fn new(stages: Vec<WeightedTarget>) -> Self {
        Cascade { stages }
    }
}

impl Policy for Cascade {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        self.stages.iter().find_map(|t| ctx.resolve(t.target, req))
    }
}
