//! Usage-based routing: spread traffic by quota headroom, and map task classes to model tiers.

use super::{Cand, Ctx, Policy, WeightedTarget, select};
use crate::model::{EndpointIdx, RequestInfo};

/// Weight left to an endpoint that is nearly out of quota but not yet exhausted.
const MIN_TAPER: f64 = 1e-3;

/// Routes by quota headroom so that endpoints do not hit their RPM/TPM limits (and the 429s that follow).
///
/// - **Dynamic threshold**: each candidate's share is its static weight (the target's `weight`, else the
///   endpoint's; the router rejects a policy whose weights are all zero) x a taper of its quota utilisation
///   `u` (the larger of its RPM and TPM fractions over the window): 1 while `u <= threshold`, then falling
///   linearly to 0 at `u = 1`. Traffic shifts away from an endpoint *before* it is exhausted; an exhausted
///   endpoint is removed by the shared filter.
/// - **Complexity tiers**: `tiers` maps a task class to the lowest model tier that may serve it. The
///   request goes to candidates of that tier; when none has headroom it spills over to the next tier up
///   (and, only if no tier at or above it can serve, to the highest tier below).
#[derive(Debug)]
pub struct UsageBased {
    targets: Vec<WeightedTarget>,
    threshold: f64,
    tiers: Vec<(String, u8)>,
}

impl UsageBased {
    /// Usage-based routing over `targets` with a taper `threshold` in (0, 1) and a class -> tier map.
    pub fn new(targets: Vec<WeightedTarget>, threshold: f64, tiers: Vec<(String, u8)>) -> Self {
        UsageBased { targets, threshold, tiers }
    }

    fn taper(&self, u: f64) -> f64 {
        if u <= self.threshold { 1.0 } else { ((1.0 - u) / (1.0 - self.threshold)).max(MIN_TAPER) }
    }

    fn tier_for(&self, req: &RequestInfo) -> Option<u8> {
        let class = req.task_class.as_deref()?;
        self.tiers.iter().find(|(c, _)| c == class).map(|(_, t)| *t)
    }
}

/// Keeps only the candidates of the chosen tier: the lowest tier >= `want` with a candidate, else the highest below.
fn restrict_to_tier(ctx: &Ctx<'_>, cands: &mut [Cand], want: u8) {
    let tier = |c: &Cand| ctx.endpoint(c.ep).tier;
    let above = cands.iter().filter(|c| c.score > 0.0 && tier(c) >= want).map(tier).min();
    let chosen = above.or_else(|| cands.iter().filter(|c| c.score > 0.0).map(tier).max());
    if let Some(t) = chosen {
        for c in cands.iter_mut() {
            if tier(c) != t {
                c.score = 0.0;
            }
        }
    }
}

impl Policy for UsageBased {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let want = self.tier_for(req);
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                // Quota use from the scoreboard: one array, not a state line per endpoint.
                let quota = &ctx.fast.board.quota;
                for c in cands.iter_mut() {
                    c.score = c.weight * self.taper(quota[c.ep.get()]);
                }
                if let Some(t) = want {
                    restrict_to_tier(ctx, cands, t);
                }
            },
            |cands, rand| select::weighted(cands, rand),
        )
    }
}
