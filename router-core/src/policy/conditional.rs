//! Conditional routing: rules on request metadata choose the target.

use super::{Ctx, Policy, Target};
use crate::condition::Condition;
use crate::model::{EndpointIdx, RequestInfo};

/// Evaluates its rules in order; the first whose condition matches the request chooses the target (an
/// endpoint, or a group that then decides). When no rule matches, or the matched target has nothing
/// eligible, the `default` target is used; without a default such requests are rejected.
#[derive(Debug)]
pub struct Conditional {
    rules: Vec<(Condition, Target)>,
    default: Option<Target>,
}

impl Conditional {
    /// Rules in priority order and an optional default.
    pub fn new(rules: Vec<(Condition, Target)>, default: Option<Target>) -> Self {
        Conditional { rules, default }
    }
}

impl Policy for Conditional {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let matched = self.rules.iter().find(|(c, _)| c.matches(req)).map(|(_, t)| *t);
        if let Some(t) = matched
            && let Some(ep) = ctx.resolve(t, req)
        {
            return Some(ep);
        }
        match self.default {
            Some(d) if Some(d) != matched => ctx.resolve(d, req),
            _ => None,
        }
    }
}
