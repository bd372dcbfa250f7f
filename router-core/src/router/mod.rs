//! The [`Router`]: a validated configuration plus live state, answering `decide` and taking feedback.
//!
//! The call protocol, identical in a gateway and in the simulator:
//!
//! 1. [`Router::decide`] for a new request: route to an endpoint, answer from cache, hold for a batch, or reject.
//! 2. [`Router::on_dispatch`] when an attempt is sent, [`Router::on_result`] when it ends.
//! 3. After a failed attempt, [`Router::next_attempt`] says whether and where to retry (fallback chain,
//!    another endpoint by the policy, or the same one after a backoff) or to give up.
//! 4. [`Router::on_health`] whenever a health check reports, [`Router::poll_batch`] at a batch deadline.
//!
//! Every call takes `now`; the router never reads a clock, never spawns, never does I/O, and after
//! construction `decide` and the feedback calls do not allocate (the response cache, when enabled,
//! allocates its table up front).
//!
//! Where each part lives (files of `router/`): `build/` validates a [`RouterConfig`](crate::RouterConfig) and
//! compiles it, step by step ([`Router::new`]); `decide.rs` answers new requests; `feedback.rs` takes the
//! outcomes; `attempts.rs` the retry after a failure, with LiteLLM's order in `group_retry.rs` and Portkey's in
//! `target_retry.rs`; `cooldown.rs` and `compat.rs` the LiteLLM compat state; `adopt.rs` the hand-over of state
//! on a reload.

mod adopt;
mod attempts;
mod build;
mod cascade;
mod compat;
mod cooldown;
mod decide;
mod feedback;
mod group_retry;
mod target_retry;

pub use crate::model::MAX_ENDPOINTS;
pub use attempts::{Attempts, GiveUpReason, GroupStage, NextAttempt};
pub use build::{MAX_GROUP_DEPTH, MAX_GROUPS};
pub use decide::{Chooser, Decision, RejectReason, Scope};

use crate::config::{PolicyKind, RetryConfig};
use crate::model::{Endpoint, EndpointIdx, ErrorClass, Nanos, RequestInfo};
use crate::policy::{Cand, Direct, EndpointSet, Gate, JournalEntry, Policy, PolicyIdx, Scoreboard, Terms, check};
use crate::resilience::{Batcher, ResponseCache, RetryBudget};
use crate::state::{EndpointState, TrackingConfig};
use compat::CompatTracking;
use cooldown::Cooldown;
use group_retry::GroupRetry;
use target_retry::TargetRetry;

/// Per-attempt timeouts a policy sets (see [`Router::timeouts`]); `None` = the caller's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Whole-attempt timeout, nanoseconds.
    pub attempt: Option<Nanos>,
    /// Time-to-first-token timeout, nanoseconds.
    pub ttft: Option<Nanos>,
}

impl Timeouts {
    /// These timeouts, each falling back to `default`'s where unset.
    pub fn or(self, default: Timeouts) -> Timeouts {
        Timeouts { attempt: self.attempt.or(default.attempt), ttft: self.ttft.or(default.ttft) }
    }
}

/// A routing policy with its endpoints, live state and resilience settings. `Send`: one router per gateway
/// worker (or behind a mutex), or one per simulated policy.
#[derive(Debug)]
pub struct Router {
    name: String,
    kind: PolicyKind,
    endpoints: Vec<Endpoint>,
    gates: Vec<Gate>,
    states: Vec<EndpointState>,
    /// The hot path's view of `gates` and `states`: every change to a state is `touch`ed on it, unless the
    /// feedback kept the endpoint's entries as they were ([`Scoreboard::keeps_entries`]).
    board: Scoreboard,
    policies: Vec<Box<dyn Policy>>,
    /// The root policy decided without the general machinery, when it targets endpoints only and scores each
    /// by one figure (see [`Direct`]); `None` otherwise.
    direct: Option<Direct>,
    counters: Vec<u64>,
    journal: Vec<JournalEntry>,
    scratch: Vec<Cand>,
    terms: Terms,
    tracking: TrackingConfig,
    retry: RetryConfig,
    budget: Option<RetryBudget>,
    fallbacks: [Vec<EndpointIdx>; 4],
    cache: Option<ResponseCache>,
    batcher: Option<Batcher>,
    timeouts: Timeouts,
    seed: u64,
    /// When [`Router::advance`] next moves the endpoints' sliding windows.
    next_tick: Nanos,
    /// `None` when some endpoint has an RPM or TPM quota: the windows move at every bucket boundary. Otherwise
    /// the span of the longer window: no verdict and no score reads the window sums, and the windows move only
    /// that often (see [`Router::advance`]).
    idle_tick: Option<Nanos>,
    /// Whether outcomes feed another gateway's emulation (`compat`, `cooldown` or `target_retry` is set): one
    /// flag for the feedback's hot path.
    emulates: bool,
    /// LiteLLM compat: whether outcomes feed [`crate::state::CompatState`], with how many latency samples.
    compat: Option<CompatTracking>,
    /// LiteLLM cooldowns instead of the circuit breaker.
    cooldown: Option<Cooldown>,
    /// LiteLLM retries within a model group, then its fallback groups.
    group_retry: Option<GroupRetry>,
    /// Names of the policies, in [`PolicyIdx`] order (the root first).
    policy_names: Vec<String>,
    /// Per policy: every endpoint it can route to.
    reach: Vec<EndpointSet>,
    /// Portkey retries of one target, then its fallback nodes.
    target_retry: Option<TargetRetry>,
    /// The root cascade's stages and verifier, when the root policy is a cascade.
    cascade: Option<Box<cascade::CascadePlan>>,
}

impl Router {
    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The root policy's kind.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The endpoints, in index order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The index of the policy (the root or a group) named `name`, for a [`Chooser::Policy`].
    pub fn policy_index(&self, name: &str) -> Option<PolicyIdx> {
        self.policy_names.iter().position(|n| n == name).map(|i| PolicyIdx(i as u16))
    }

    /// The name of policy `p`: the root is 0, then the groups in config order; `None` past the last.
    pub fn policy_name(&self, p: PolicyIdx) -> Option<&str> {
        self.policy_names.get(p.0 as usize).map(String::as_str)
    }

    /// Every endpoint policy `p` can route to, through the groups it targets (empty for an unknown index).
    pub fn reachable(&self, p: PolicyIdx) -> EndpointSet {
        self.reach.get(p.0 as usize).copied().unwrap_or_default()
    }

    /// The index of the endpoint with id `id`.
    pub fn endpoint_index(&self, id: &str) -> Option<EndpointIdx> {
        self.endpoints.iter().position(|e| e.id == id).map(|i| EndpointIdx(i as u16))
    }

    /// Live state of `ep`. Its window sums (quota usage, error rate) are as of the last decision when some
    /// endpoint has an RPM or TPM quota; without one nothing reads them between feedback, and they are as of
    /// `ep`'s last dispatch or result, or the router's last move of all windows (once per window span), if later.
    ///
    /// # Panics
    ///
    /// If `ep` is not an endpoint of this router (indices come from `decide`, `next_attempt` or
    /// [`Router::endpoint_index`]).
    pub fn state(&self, ep: EndpointIdx) -> &EndpointState {
        &self.states[ep.get()]
    }

    /// The fallback chain followed after an error of `class` (empty: the policy chooses again).
    pub fn fallback_chain(&self, class: ErrorClass) -> &[EndpointIdx] {
        &self.fallbacks[class.index()]
    }

    /// The retry policy in force.
    pub fn retry_config(&self) -> &RetryConfig {
        &self.retry
    }

    /// The tracking configuration in force.
    pub fn tracking(&self) -> &TrackingConfig {
        &self.tracking
    }

    /// The policy's own timeouts (`timeout`, `ttft_timeout`); `None` where the policy leaves the caller's
    /// default in force. The caller enforces them: router-core has no clock.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Whether `ep` is eligible for `req` at `now` (as the shared filter sees it), for diagnostics and tests.
    pub fn is_eligible(&self, ep: EndpointIdx, req: &RequestInfo, now: Nanos) -> bool {
        ep.get() < self.endpoints.len()
            && check(&self.endpoints, &self.states, &self.tracking, EndpointSet::default(), ep, req, now).is_ok()
    }
}

// A router must be movable into a tokio task or a simulator thread.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Router>();
};
