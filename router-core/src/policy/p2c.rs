//! Power of two choices on peak-EWMA load, as tower's `p2c` balancer over `PeakEwma`.

use super::{Ctx, Policy, WeightedTarget};
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
        let start = ctx.gather(&self.targets, req);
        let n = ctx.scratch.len() - start;
        // As `select::two_choices`, but only the two drawn candidates are scored (the score decays an
        // estimate with `exp`, which is worth skipping for the others).
        let chosen = match n {
            0 => None,
            1 => Some(0),
            _ => {
                let a = ctx.rand.below(n);
                let mut b = ctx.rand.below(n - 1);
                if b >= a {
                    b += 1;
                }
                let (ea, eb) = (ctx.scratch[start + a].ep, ctx.scratch[start + b].ep);
                let load = |e: EndpointIdx| {
                    let st = ctx.state(e);
                    st.peak.cost(ctx.now, st.in_flight)
                };
                Some(if load(eb) < load(ea) { b } else { a })
            }
        };
        let picked = chosen.map(|i| ctx.scratch[start + i].ep);
        ctx.settle(start, chosen);
        ctx.release(start);
        picked
    }
}
