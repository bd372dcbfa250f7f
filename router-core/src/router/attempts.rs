//! After a failed attempt: the [`Attempts`] a caller keeps per request, what [`Router::next_attempt`] answers,
//! and the plain retry order (fallback chain, the policy again, or the same endpoint after a backoff). The
//! LiteLLM and Portkey orders live in [`super::group_retry`] and [`super::target_retry`].

use super::Router;
use super::decide::Scope;
use crate::keyed_rand::KeyedRand;
use crate::model::{EndpointIdx, ErrorClass, Nanos, Outcome, RequestInfo};
use crate::policy::{EndpointSet, check};
use crate::resilience::backoff_delay;

/// The attempts made so far for one request; the caller keeps it between [`Router::next_attempt`] calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts made.
    pub count: u32,
    /// Endpoints tried.
    pub tried: EndpointSet,
    /// The endpoint of the latest attempt.
    pub last: EndpointIdx,
    /// With a [`crate::GroupRetryConfig`]: the model group the request started in ([`u16::MAX`] until known),
    /// the stage (0 = that group, k = its k-th fallback group) and the attempts made in the stage.
    pub stage: GroupStage,
}

/// Where a request is in LiteLLM's retry-then-fallback order (see [`crate::GroupRetryConfig`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupStage {
    /// Index of the request's first model group ([`u16::MAX`] until the first retry decision).
    pub origin: u16,
    /// 0 = the first group, k = its k-th fallback group.
    pub stage: u16,
    /// Attempts made in the current stage.
    pub count: u32,
}

impl Default for GroupStage {
    fn default() -> Self {
        GroupStage { origin: u16::MAX, stage: 0, count: 1 }
    }
}

impl Attempts {
    /// The log after the first attempt on `endpoint`.
    #[inline]
    pub fn first(endpoint: EndpointIdx) -> Self {
        let mut tried = EndpointSet::default();
        tried.insert(endpoint);
        Attempts { count: 1, tried, last: endpoint, stage: GroupStage::default() }
    }

    /// Records a further attempt on `endpoint`; whether it moves to another endpoint (a fallback).
    #[inline]
    pub(super) fn advance_to(&mut self, endpoint: EndpointIdx) -> bool {
        let fallback = endpoint != self.last;
        self.count += 1;
        self.tried.insert(endpoint);
        self.last = endpoint;
        fallback
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextAttempt {
    /// Try `endpoint` after `delay`. `fallback` is true when it differs from the endpoint that just failed.
    Retry {
        /// Where.
        endpoint: EndpointIdx,
        /// Backoff before the attempt (zero for a fallback to another endpoint).
        delay: Nanos,
        /// Whether this moves to another endpoint.
        fallback: bool,
    },
    /// Stop: the request fails with the last attempt's error.
    GiveUp(GiveUpReason),
}

/// Why no further attempt is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// The attempt succeeded (nothing to retry).
    Succeeded,
    /// The error class is not retried.
    NotRetryable,
    /// The attempt limit is reached.
    MaxAttempts,
    /// The retry budget is spent.
    BudgetExhausted,
    /// No endpoint is left to try.
    NoEndpoint,
}

impl Router {
    /// After a failed attempt: retry where and when, or give up. Updates `attempts` when it retries.
    ///
    /// The next endpoint is the first untried eligible endpoint of the fallback chain for the error class;
    /// without a chain, the policy chooses again among the endpoints not yet tried; when nothing else is
    /// eligible and `retry.same_endpoint` allows it, the same endpoint is retried after an exponential
    /// backoff with jitter (at least the Retry-After of a 429). Retries draw on the retry budget.
    #[inline]
    pub fn next_attempt(
        &mut self,
        req: &RequestInfo,
        attempts: &mut Attempts,
        outcome: &Outcome,
        now: Nanos,
    ) -> NextAttempt {
        self.next_attempt_in(req, attempts, outcome, now, &Scope::default())
    }

    /// [`Router::next_attempt`] for a request decided within `scope` ([`Router::decide_in`]): the next endpoint
    /// is never one the scope excludes, and without a fallback chain the scope's chooser picks it.
    pub fn next_attempt_in(
        &mut self,
        req: &RequestInfo,
        attempts: &mut Attempts,
        outcome: &Outcome,
        now: Nanos,
        scope: &Scope,
    ) -> NextAttempt {
        let Some(class) = outcome.error else { return NextAttempt::GiveUp(GiveUpReason::Succeeded) };
        if self.target_retry.is_some() {
            if attempts.count >= self.retry.max_attempts {
                return NextAttempt::GiveUp(GiveUpReason::MaxAttempts);
            }
            self.advance(now);
            return self.next_in_targets(req, attempts, class, outcome.status, now, scope.excluded);
        }
        if !self.retry.retry_on.contains(&class) {
            return NextAttempt::GiveUp(GiveUpReason::NotRetryable);
        }
        if attempts.count >= self.retry.max_attempts {
            return NextAttempt::GiveUp(GiveUpReason::MaxAttempts);
        }
        self.advance(now);
        if self.group_retry.is_some() {
            return self.next_in_groups(req, attempts, outcome, class, now, scope.excluded);
        }
        let chain = &self.fallbacks[class.index()];
        let other = if chain.is_empty() {
            let rand = KeyedRand::new(self.seed, req.id, 0x100 + attempts.count as u64);
            self.choose(scope, req, now, attempts.tried, rand).0
        } else {
            let exclude = attempts.tried.union(scope.excluded);
            chain
                .iter()
                .copied()
                .find(|&e| check(&self.endpoints, &self.states, &self.tracking, exclude, e, req, now).is_ok())
        };
        let (endpoint, delay) = match other {
            Some(e) => (e, 0),
            None if self.retry.same_endpoint
                && self
                    .states
                    .get(attempts.last.get())
                    .is_some_and(|s| s.circuit_allows(now, &self.tracking.circuit)) =>
            {
                let mut rand = KeyedRand::new(self.seed, req.id, 0x200 + attempts.count as u64);
                let mut d = backoff_delay(&self.retry, attempts.count, &mut rand);
                if self.retry.honor_retry_after && class == ErrorClass::RateLimited {
                    d = d.max(outcome.retry_after.unwrap_or(0));
                }
                (attempts.last, d)
            }
            None => return NextAttempt::GiveUp(GiveUpReason::NoEndpoint),
        };
        if !self.retry_budget_allows(now) {
            return NextAttempt::GiveUp(GiveUpReason::BudgetExhausted);
        }
        let fallback = attempts.advance_to(endpoint);
        NextAttempt::Retry { endpoint, delay, fallback }
    }

    /// Takes a token from the retry budget (always granted without one); false when it is spent.
    #[inline]
    pub(super) fn retry_budget_allows(&mut self, now: Nanos) -> bool {
        self.budget.as_mut().is_none_or(|b| b.withdraw(now))
    }
}
