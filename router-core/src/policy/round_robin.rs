//! Round robin: rotate through the eligible targets.

use super::{Ctx, Policy, PolicyIdx, WeightedTarget};
use crate::model::{EndpointIdx, RequestInfo};

/// Rotates through its targets; ineligible targets are skipped, so the rotation is over the eligible ones and
/// every eligible target gets an equal share over a cycle. The cursor moves only when a pick is served: as a
/// group of a scoring policy, a pick the parent does not choose leaves it where it was (see [`Ctx::settle`]).
#[derive(Debug)]
pub struct RoundRobin {
    id: PolicyIdx,
    targets: Vec<WeightedTarget>,
}

impl RoundRobin {
    /// A round robin over `targets`; `id` is this policy's arena slot (for its cursor).
    pub fn new(id: PolicyIdx, targets: Vec<WeightedTarget>) -> Self {
        RoundRobin { id, targets }
    }
}

impl Policy for RoundRobin {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let n = self.targets.len();
        let start = ctx.cursor(self.id);
        for k in 0..n as u64 {
            let t = self.targets[((start + k) % n as u64) as usize].target;
            if let Some(ep) = ctx.resolve(t, req) {
                ctx.advance(self.id, start + k + 1);
                return Some(ep);
            }
        }
        None
    }
}
