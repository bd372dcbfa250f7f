//! LiteLLM's retry order ([`crate::GroupRetryConfig`]): retries within the model group, then its fallback groups.

use super::Router;
use super::attempts::{Attempts, GiveUpReason, GroupStage, NextAttempt};
use crate::keyed_rand::KeyedRand;
use crate::model::{EndpointIdx, ErrorClass, Nanos, Outcome, RequestInfo};
use crate::policy::{EndpointSet, PolicyIdx};

/// A compiled [`crate::GroupRetryConfig`].
#[derive(Debug)]
pub(super) struct GroupRetry {
    pub(super) num_retries: u32,
    pub(super) retry_after: Nanos,
    /// (group policy, its fallback group policies), one per model group with a key in `fallbacks` or a member.
    pub(super) groups: Vec<(PolicyIdx, Vec<PolicyIdx>)>,
    /// Per endpoint: its model group (index into `groups`), or `u16::MAX`.
    pub(super) group_of: Vec<u16>,
    /// Per policy: its endpoint targets (to count the eligible ones).
    pub(super) members: Vec<Vec<EndpointIdx>>,
}

/// LiteLLM's `_calculate_retry_after`: `min(0.5 s x 2^retries, 8 s) x (1 - 0.25 u)`, at least `min`.
fn litellm_backoff(retries: u32, min: Nanos, rand: &mut KeyedRand) -> Nanos {
    let sleep = (0.5 * 2f64.powi(retries.min(30) as i32)).min(8.0);
    let secs = sleep * (1.0 - 0.25 * rand.unit());
    crate::model::secs_to_nanos(secs).max(min)
}

impl Router {
    /// LiteLLM's order (see [`crate::GroupRetryConfig`]): `num_retries` more attempts in the model group, each
    /// chosen by the group's policy, then each fallback group in turn.
    pub(super) fn next_in_groups(
        &mut self,
        req: &RequestInfo,
        attempts: &mut Attempts,
        outcome: &Outcome,
        class: ErrorClass,
        now: Nanos,
        excluded: EndpointSet,
    ) -> NextAttempt {
        let Some(gr) = &self.group_retry else { return NextAttempt::GiveUp(GiveUpReason::NoEndpoint) };
        let mut stage = attempts.stage;
        if stage.origin == u16::MAX {
            stage.origin = gr.group_of[attempts.last.get()];
        }
        let (num_retries, retry_after) = (gr.num_retries, gr.retry_after);
        loop {
            let policy = self.group_retry.as_ref().and_then(|gr| {
                let (first, fallbacks) = gr.groups.get(stage.origin as usize)?;
                match stage.stage {
                    0 => Some(*first),
                    k => fallbacks.get(k as usize - 1).copied(),
                }
            });
            let Some(policy) = policy else { return NextAttempt::GiveUp(GiveUpReason::NoEndpoint) };
            let fresh = stage.count == 0;
            if !fresh && stage.count > num_retries {
                stage = GroupStage { stage: stage.stage + 1, count: 0, ..stage };
                continue;
            }
            let rand = KeyedRand::new(self.seed, req.id, 0x100 + attempts.count as u64);
            let picked = self.select(policy.0 as usize, req, now, excluded, rand).0;
            let Some(endpoint) = picked else {
                // Nothing healthy left in this group: LiteLLM raises at once, into the fallbacks.
                stage = GroupStage { stage: stage.stage + 1, count: 0, ..stage };
                continue;
            };
            let delay = if fresh {
                0
            } else {
                let members = &self.group_retry.as_ref().map_or(&[][..], |g| &g.members[policy.0 as usize][..]);
                let healthy = members.iter().filter(|&&m| self.is_eligible(m, req, now)).count();
                // `_time_to_sleep_before_retry`: a group of one deployment always backs off; a larger one retries
                // at once while at least one deployment is healthy (not cooling down), the one that failed included.
                if members.len() > 1 && healthy >= 1 {
                    0
                } else {
                    let mut rand = KeyedRand::new(self.seed, req.id, 0x200 + attempts.count as u64);
                    let d = litellm_backoff(stage.count - 1, retry_after, &mut rand);
                    if class == ErrorClass::RateLimited { d.max(outcome.retry_after.unwrap_or(0)) } else { d }
                }
            };
            if !self.retry_budget_allows(now) {
                return NextAttempt::GiveUp(GiveUpReason::BudgetExhausted);
            }
            let fallback = attempts.advance_to(endpoint);
            attempts.stage = GroupStage { count: stage.count + 1, ..stage };
            return NextAttempt::Retry { endpoint, delay, fallback };
        }
    }
}
