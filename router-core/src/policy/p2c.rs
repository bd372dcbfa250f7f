//! Power of two choices on peak-EWMA load, as tower's `p2c` balancer over `PeakEwma`.

use super::{Ctx, Policy, WeightedTarget, select};
use crate::model::{EndpointIdx, RequestInfo};

/// Draws two distinct eligible endpoints at random and sends the request to the one with the lower load,
/// where load = peak-EWMA latency x (in-flight + 1) (see [`crate::state::PeakEwma`]). Two random choices
/// avoid the herding of "always the best" while getting most of its benefit (Mitzenmacher).
#[derive(Debug)]
pub struct PowerOfTwo {
    targets: Vec<WeightedTarget>,
}

impl PowerOfTwo {
    /// Power of two choices over `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        PowerOfTwo { targets }
    }
}

impl Policy for PowerOfTwo {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let now = ctx.now;
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                for c in cands {
                    let st = ctx.state(c.ep);
                    c.score = st.peak.cost(now, st.in_flight);
                }
            },
            |cands, rand| select::two_choices(cands, rand),
        )
    }
}
