//! Portkey's retry order ([`crate::TargetRetryConfig`]): retries on the same target, then the next target of
//! the innermost fallback above it.

use super::Router;
use super::attempts::{Attempts, GiveUpReason, NextAttempt};
use crate::keyed_rand::KeyedRand;
use crate::model::{ErrorClass, ErrorMatch, Nanos, RequestInfo};
use crate::policy::{EndpointSet, PolicyIdx, Target, check};

/// A compiled [`crate::TargetRetryConfig`].
#[derive(Debug)]
pub(super) struct TargetRetry {
    pub(super) attempts: u32,
    pub(super) on: Vec<ErrorMatch>,
    pub(super) base_delay: Nanos,
    /// Per endpoint: the fallback policies above it on its first path from the root, innermost first, each with
    /// the position of the child the endpoint is under.
    pub(super) ancestors: Vec<Vec<(PolicyIdx, u16)>>,
    /// Per policy: its children in order (fallback policies only; empty for the others).
    pub(super) children: Vec<Vec<Target>>,
    /// Per policy: the errors on which a fallback policy moves on (`None`: any error).
    pub(super) moves_on: Vec<Option<Vec<ErrorMatch>>>,
}

impl Router {
    /// Portkey's order (see [`crate::TargetRetryConfig`]): retries on the same endpoint, then the innermost
    /// fallback above it that moves on after this error (its `class`, answered with HTTP `status` when it had one)
    /// takes its next target that can take the request. A
    /// fallback never moves to an endpoint in `excluded` (the request's [`super::Scope`]): a target outside it
    /// counts as one that cannot take the request.
    pub(super) fn next_in_targets(
        &mut self,
        req: &RequestInfo,
        attempts: &mut Attempts,
        class: ErrorClass,
        status: Option<u16>,
        now: Nanos,
        excluded: EndpointSet,
    ) -> NextAttempt {
        let Some(tr) = &self.target_retry else { return NextAttempt::GiveUp(GiveUpReason::NoEndpoint) };
        // Attempts on the current endpoint (the first attempt of a request counts 1, as `GroupStage` starts).
        let on_target = attempts.stage.count.max(1);
        if ErrorMatch::any(&tr.on, class, status) && on_target <= tr.attempts {
            let delay = tr.base_delay.saturating_mul(1u64 << (on_target - 1).min(40));
            if !self.retry_budget_allows(now) {
                return NextAttempt::GiveUp(GiveUpReason::BudgetExhausted);
            }
            attempts.count += 1;
            attempts.stage.count = on_target + 1;
            return NextAttempt::Retry { endpoint: attempts.last, delay, fallback: false };
        }
        // Indices rather than borrows: choosing in a child policy needs the router mutably.
        let last = attempts.last.get();
        let depth = tr.ancestors.get(last).map_or(0, Vec::len);
        let mut next = None;
        'up: for a in 0..depth {
            let Some(tr) = &self.target_retry else { break };
            let (p, pos) = tr.ancestors[last][a];
            if tr.moves_on[p.0 as usize].as_ref().is_some_and(|codes| !ErrorMatch::any(codes, class, status)) {
                continue;
            }
            let width = tr.children[p.0 as usize].len();
            for k in pos as usize + 1..width {
                let Some(child) = self.target_retry.as_ref().map(|t| t.children[p.0 as usize][k]) else { break 'up };
                let picked = match child {
                    Target::Endpoint(e) => {
                        check(&self.endpoints, &self.states, &self.tracking, excluded, e, req, now).is_ok().then_some(e)
                    }
                    Target::Policy(q) => {
                        let rand = KeyedRand::new(self.seed, req.id, 0x100 + attempts.count as u64);
                        self.select(q.0 as usize, req, now, excluded, rand).0
                    }
                };
                if picked.is_some() {
                    next = picked;
                    break 'up;
                }
            }
        }
        let Some(endpoint) = next else { return NextAttempt::GiveUp(GiveUpReason::NoEndpoint) };
        if !self.retry_budget_allows(now) {
            return NextAttempt::GiveUp(GiveUpReason::BudgetExhausted);
        }
        let fallback = attempts.advance_to(endpoint);
        attempts.stage.count = 1;
        NextAttempt::Retry { endpoint, delay: 0, fallback }
    }
}
