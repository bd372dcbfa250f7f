//! Ordered fallback: the first eligible target in the listed order.

use super::{Ctx, Policy, WeightedTarget};
use crate::model::{EndpointIdx, RequestInfo};

/// Tries its targets in order and takes the first eligible one: the primary while it is healthy and within
/// quota, then the next. (Retrying *after* a failed attempt is the router's fallback chain, see
/// [`crate::config::FallbackSpec`]; this policy chooses the first attempt.)
#[derive(Debug)]
pub struct FallbackChain {
    targets: Vec<WeightedTarget>,
}

impl FallbackChain {
    /// An ordered chain over `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        FallbackChain { targets }
    }
}

impl Policy for FallbackChain {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        self.targets.iter().find_map(|t| ctx.resolve(t.target, req))
    }
}
