//! Weighted random: pick a target at random in proportion to its static weight.

use super::{Ctx, Policy, Target, WeightedTarget};
use crate::model::{EndpointIdx, RequestInfo};

/// Picks an eligible target at random, proportional to its weight (the target's `weight`, else the
/// endpoint's static `weight`). Ineligible targets are left out and the others' shares grow in proportion.
///
/// Groups are asked lazily: the draw is over the eligible endpoint targets and the group targets, and a group
/// is asked only when it is drawn. A group with nothing eligible is then left out and the draw repeated, so a
/// group's share is its weight whatever it picks, and a group (a round robin's cursor) is never evaluated for
/// a request it does not serve. With endpoint targets only, this is a single draw over the eligible ones.
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

/// A set of target positions (the router caps a policy's targets at [`crate::MAX_ENDPOINTS`]).
#[derive(Default)]
struct Out([u64; 4]);

impl Out {
    #[inline]
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    #[inline]
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

impl Policy for WeightedRandom {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        // Targets out of the draw: ineligible endpoints (filtered now, as any policy does) and groups that were
        // drawn and had nothing eligible.
        let mut out = Out::default();
        for (i, wt) in self.targets.iter().enumerate() {
            if let Target::Endpoint(e) = wt.target
                && !ctx.eligible(e, req)
            {
                out.insert(i);
            }
        }
        loop {
            // As `select::weighted` over the live targets in order: the same arithmetic and the same draws.
            let live = || self.targets.iter().enumerate().filter(|(i, _)| !out.contains(*i));
            let (mut n, mut total) = (0usize, 0.0f64);
            for (_, t) in live() {
                n += 1;
                total += t.weight.max(0.0);
            }
            if n == 0 {
                return None;
            }
            let drawn = if !total.is_finite() || total <= 0.0 {
                live().nth(ctx.rand.below(n))
            } else {
                let mut u = ctx.rand.unit() * total;
                live()
                    .find(|(_, t)| {
                        let w = t.weight.max(0.0);
                        if u < w {
                            return true;
                        }
                        u -= w;
                        false
                    })
                    // Rounding can leave `u` just past the end: the last positive weight takes it.
                    .or_else(|| live().rfind(|(_, t)| t.weight > 0.0))
            };
            let (i, wt) = drawn?;
            match wt.target {
                Target::Endpoint(e) => return Some(e),
                Target::Policy(_) => match ctx.resolve(wt.target, req) {
                    Some(e) => return Some(e),
                    None => out.insert(i),
                },
            }
        }
    }
}
