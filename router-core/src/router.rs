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

use crate::condition::Condition;
use crate::config::{ConfigError, PolicyKind, PolicySpec, RetryConfig, RouterConfig, TargetSpec, check_range};
use crate::keyed_rand::KeyedRand;
use crate::model::{Endpoint, EndpointIdx, ErrorClass, Nanos, Outcome, Price, RequestInfo};
use crate::policy::compat::litellm;
use crate::policy::{
    Cand, Conditional, CostBased, Ctx, EndpointSet, FallbackChain, Gate, Hybrid, JournalEntry, LatencyBased,
    LeastOutstanding, Policy, PolicyIdx, PowerOfTwo, RoundRobin, Scoreboard, Sticky, Target, Terms, UsageBased,
    WeightedRandom, WeightedTarget, Why, check,
};
use crate::resilience::cache::MAX_CACHE_CAPACITY;
use crate::resilience::{BatchTicket, Batcher, ResponseCache, RetryBudget, backoff_delay};
use crate::state::{Circuit, EndpointState, TrackingConfig};
use std::collections::BTreeMap;

/// Most endpoints one router can hold.
pub const MAX_ENDPOINTS: usize = 256;

/// What to do with a new request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Send it to `endpoint`. After a failure ask [`Router::next_attempt`], which follows the fallback plan
    /// ([`Router::fallback_chain`]) and the retry policy, at most `max_attempts` attempts in all.
    Route {
        /// The endpoint for the first attempt.
        endpoint: EndpointIdx,
        /// Attempts allowed in total, the first included.
        max_attempts: u32,
    },
    /// The response cache holds an answer: no endpoint is called.
    CacheHit,
    /// A deferrable request: hold it for a batch (see [`BatchTicket`]).
    Batch(BatchTicket),
    /// No endpoint can take it.
    Reject(RejectReason),
}

/// Why a request was rejected: the most common reason its candidates were filtered out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Every candidate's circuit is open.
    AllCircuitsOpen,
    /// Every candidate failed its health check.
    AllUnhealthy,
    /// Every candidate is out of RPM/TPM quota or backing off after a 429.
    QuotaExhausted,
    /// Every candidate is at its concurrency limit.
    AtCapacity,
    /// No candidate has the context window or capabilities the request needs.
    NoCapableEndpoint,
    /// No rule matched and there is no default, or every candidate was already tried.
    NoRoute,
}

impl RejectReason {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::AllCircuitsOpen => "all_circuits_open",
            RejectReason::AllUnhealthy => "all_unhealthy",
            RejectReason::QuotaExhausted => "quota_exhausted",
            RejectReason::AtCapacity => "at_capacity",
            RejectReason::NoCapableEndpoint => "no_capable_endpoint",
            RejectReason::NoRoute => "no_route",
        }
    }

    fn from_counts(why: &[u32; 6]) -> Self {
        const ORDER: [(Why, RejectReason); 5] = [
            (Why::CircuitOpen, RejectReason::AllCircuitsOpen),
            (Why::Unhealthy, RejectReason::AllUnhealthy),
            (Why::QuotaExhausted, RejectReason::QuotaExhausted),
            (Why::AtCapacity, RejectReason::AtCapacity),
            (Why::Incapable, RejectReason::NoCapableEndpoint),
        ];
        let mut best = (0, RejectReason::NoRoute);
        for (w, r) in ORDER {
            if why[w as usize] > best.0 {
                best = (why[w as usize], r);
            }
        }
        best.1
    }
}

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
    fn advance_to(&mut self, endpoint: EndpointIdx) -> bool {
        let fallback = endpoint != self.last;
        self.count += 1;
        self.tried.insert(endpoint);
        self.last = endpoint;
        fallback
    }
}

/// Who chooses the endpoint of a request in a [`Scope`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chooser {
    /// The router's root policy.
    #[default]
    Root,
    /// Another policy of the router (a group; see [`Router::policy_index`]).
    Policy(PolicyIdx),
    /// No policy: the first eligible endpoint, in index order (for a request naming endpoints directly).
    InOrder,
}

/// Where a request may be routed: who chooses, and the endpoints it may never be sent to (on its first
/// attempt, retries and fallbacks alike). The default scope is the root policy over every endpoint. `Copy` and
/// allocation-free: a caller keeps one per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Who chooses.
    pub chooser: Chooser,
    /// Endpoints excluded from every choice.
    pub excluded: EndpointSet,
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
    /// The hot path's view of `gates` and `states`: every change to a state is `touch`ed on it.
    board: Scoreboard,
    policies: Vec<Box<dyn Policy>>,
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
}

/// A compiled [`crate::TargetRetryConfig`].
#[derive(Debug)]
struct TargetRetry {
    attempts: u32,
    on: Vec<ErrorClass>,
    base_delay: Nanos,
    /// Per endpoint: the fallback policies above it on its first path from the root, innermost first, each with
    /// the position of the child the endpoint is under.
    ancestors: Vec<Vec<(PolicyIdx, u16)>>,
    /// Per policy: its children in order (fallback policies only; empty for the others).
    children: Vec<Vec<Target>>,
    /// Per policy: the errors on which a fallback policy moves on (`None`: any error).
    moves_on: Vec<Option<Vec<ErrorClass>>>,
}

/// How outcomes feed the LiteLLM compat state.
#[derive(Debug)]
struct CompatTracking {
    /// Latency list size.
    samples: usize,
    /// Per endpoint: the latency group (index into `latency_groups`) it belongs to, or `u16::MAX`.
    latency_group_of: Vec<u16>,
    /// Endpoints of each `litellm-latency` policy and the ttl of their lists.
    latency_groups: Vec<(Vec<EndpointIdx>, Nanos)>,
}

/// A compiled [`crate::CooldownConfig`].
#[derive(Debug)]
struct Cooldown {
    allowed_fails: Option<u32>,
    time: Nanos,
}

/// LiteLLM's "all requests failed with reasonable traffic" floor (`SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD`).
const SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD: u64 = 1000;
/// LiteLLM's `DEFAULT_FAILURE_THRESHOLD_PERCENT`.
const DEFAULT_FAILURE_THRESHOLD_PERCENT: f64 = 0.5;

impl Cooldown {
    /// Whether a failure of `class` at `now` cools the endpoint down (`_is_cooldown_required` and
    /// `_should_cooldown_deployment`); counts the failure against `allowed_fails`.
    fn should_cool(&self, st: &mut EndpointState, class: ErrorClass, now: Nanos) -> bool {
        // 429, 408 (timeout) and 5xx need a cooldown; other 4xx do not.
        if class == ErrorClass::Other {
            return false;
        }
        match self.allowed_fails {
            None => {
                let solo = st.compat.single_deployment;
                let (ok, failed, _) = st.compat.minute_counts(now);
                let total = ok + failed;
                let pct = if total > 0 { failed as f64 / total as f64 } else { 0.0 };
                (class == ErrorClass::RateLimited && !solo)
                    || (pct == 1.0 && total >= SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD)
                    || (pct > DEFAULT_FAILURE_THRESHOLD_PERCENT && !solo)
            }
            Some(allowed) => {
                let c = &mut st.compat;
                let current = if now < c.fails_until { c.fails } else { 0 };
                if current + 1 > allowed {
                    true
                } else {
                    c.fails = current + 1;
                    c.fails_until = now.saturating_add(self.time);
                    false
                }
            }
        }
    }
}

/// A compiled [`crate::GroupRetryConfig`].
#[derive(Debug)]
struct GroupRetry {
    num_retries: u32,
    retry_after: Nanos,
    /// (group policy, its fallback group policies), one per model group with a key in `fallbacks` or a member.
    groups: Vec<(PolicyIdx, Vec<PolicyIdx>)>,
    /// Per endpoint: its model group (index into `groups`), or `u16::MAX`.
    group_of: Vec<u16>,
    /// Per policy: its endpoint targets (to count the eligible ones).
    members: Vec<Vec<EndpointIdx>>,
}

/// LiteLLM's `_calculate_retry_after`: `min(0.5 s x 2^retries, 8 s) x (1 - 0.25 u)`, at least `min`.
fn litellm_backoff(retries: u32, min: Nanos, rand: &mut KeyedRand) -> Nanos {
    let sleep = (0.5 * 2f64.powi(retries.min(30) as i32)).min(8.0);
    let secs = sleep * (1.0 - 0.25 * rand.unit());
    crate::model::secs_to_nanos(secs).max(min)
}

// ===== impl Router: decisions and feedback =====

impl Router {
    /// Decides what to do with a new request at `now`.
    #[inline]
    pub fn decide(&mut self, req: &RequestInfo, now: Nanos) -> Decision {
        self.decide_in(req, now, &Scope::default())
    }

    /// [`Router::decide`] within `scope`: its chooser picks among the endpoints it does not exclude. A
    /// deferrable request is batched only when the batch endpoint is in scope.
    pub fn decide_in(&mut self, req: &RequestInfo, now: Nanos, scope: &Scope) -> Decision {
        self.advance(now);
        if let (Some(cache), Some(key)) = (&self.cache, req.cache_key)
            && cache.hit(key, now)
        {
            return Decision::CacheHit;
        }
        if req.deferrable
            && let Some(b) = &mut self.batcher
            && !scope.excluded.contains(b.endpoint())
        {
            return Decision::Batch(b.add(now));
        }
        let (picked, why) = self.choose(scope, req, now, EndpointSet::default(), KeyedRand::new(self.seed, req.id, 0));
        match picked {
            Some(endpoint) => {
                // Only a first attempt earns retry allowance: a rejected request sends nothing, so it must not
                // let later retries add load.
                if let Some(b) = &mut self.budget {
                    b.deposit(now);
                }
                Decision::Route { endpoint, max_attempts: self.retry.max_attempts }
            }
            None => Decision::Reject(RejectReason::from_counts(&why)),
        }
    }

    /// The endpoint `scope`'s chooser picks, with `tried` excluded too, and the filter's counts of why others
    /// were not.
    fn choose(
        &mut self,
        scope: &Scope,
        req: &RequestInfo,
        now: Nanos,
        tried: EndpointSet,
        rand: KeyedRand,
    ) -> (Option<EndpointIdx>, [u32; 6]) {
        let exclude = tried.union(scope.excluded);
        match scope.chooser {
            Chooser::Root => self.select(0, req, now, exclude, rand),
            Chooser::Policy(p) if (p.0 as usize) < self.policies.len() => {
                self.select(p.0 as usize, req, now, exclude, rand)
            }
            Chooser::Policy(_) => (None, [0; 6]),
            Chooser::InOrder => {
                let mut why = [0u32; 6];
                for i in 0..self.endpoints.len() {
                    let e = EndpointIdx(i as u16);
                    match check(&self.endpoints, &self.states, &self.tracking, exclude, e, req, now) {
                        Ok(()) => return (Some(e), why),
                        Err(w) => why[w as usize] += 1,
                    }
                }
                (None, why)
            }
        }
    }

    fn select(
        &mut self,
        root: usize,
        req: &RequestInfo,
        now: Nanos,
        exclude: EndpointSet,
        rand: KeyedRand,
    ) -> (Option<EndpointIdx>, [u32; 6]) {
        if self.compat.as_ref().is_some_and(|c| !c.latency_groups.is_empty()) {
            self.latency_placeholders(req, now);
        }
        self.board.flush(&self.gates, &self.states);
        let context_tokens = req.input_tokens as u64 + req.expected_output_tokens.unwrap_or(0) as u64;
        let quota_tokens = self.tracking.tpm_estimate(req);
        let mut ctx = Ctx {
            now,
            endpoints: &self.endpoints,
            states: &self.states,
            tracking: &self.tracking,
            gates: &self.gates,
            fast: self.board.filter(exclude, !req.required_capabilities.is_empty(), context_tokens, quota_tokens, now),
            policies: &self.policies,
            counters: &mut self.counters,
            journal: &mut self.journal,
            speculative: 0,
            scratch: &mut self.scratch,
            terms: &mut self.terms,
            rand,
            exclude,
            why: [0; 6],
            depth: 0,
            context_tokens,
            quota_tokens,
        };
        let picked = self.policies[root].select(&mut ctx, req);
        debug_assert!(ctx.journal.is_empty(), "every speculative cursor move is settled by its chooser");
        (picked, ctx.why)
    }

    /// LiteLLM's latency strategy, on a pick while its group's map exists (written within `ttl`), writes the
    /// placeholder `[0]` into the map for every healthy deployment without an entry; it stays in that
    /// deployment's list (see [`crate::state::CompatState::add_placeholder`]). Done before every choice, for
    /// every latency group: a member with an entry is left alone, so only the first pick after the map appears
    /// (or after the member becomes healthy) changes anything.
    fn latency_placeholders(&mut self, req: &RequestInfo, now: Nanos) {
        let groups = self.compat.as_ref().map_or(0, |c| c.latency_groups.len());
        for g in 0..groups {
            let Some((members, ttl)) =
                self.compat.as_ref().map(|c| (c.latency_groups[g].0.len(), c.latency_groups[g].1))
            else {
                return;
            };
            let member = |r: &Router, k: usize| r.compat.as_ref().map(|c| c.latency_groups[g].0[k]);
            let last = (0..members)
                .filter_map(|k| member(self, k))
                .filter_map(|m| self.states[m.get()].compat.latency_written)
                .max();
            if last.is_none_or(|t| now >= t.saturating_add(ttl)) {
                continue;
            }
            for k in 0..members {
                let Some(m) = member(self, k) else { continue };
                if self.states[m.get()].compat.latencies().is_empty()
                    && check(&self.endpoints, &self.states, &self.tracking, EndpointSet::default(), m, req, now).is_ok()
                {
                    self.states[m.get()].compat.add_placeholder();
                    self.board.touch(m);
                }
            }
        }
    }

    /// Moves every endpoint's windows to `now` and recomputes the scoreboard. They all share bucket boundaries,
    /// so this only walks the endpoints when a boundary has passed (about once per second with the default
    /// one-minute windows).
    ///
    /// Without any RPM or TPM quota it walks them only once per window span (`idle_tick`): the quota
    /// windows then feed only the filter's quota check and the quota-utilisation score, which an unlimited
    /// endpoint passes and scores 0 whatever its sums; and the circuit breaker reads the error window only
    /// right after adding to it, which advances it. Between walks a window is advanced by the feedback that
    /// adds to it, and the scoreboard's bounds only loosen (they stay bounds). At 5 requests/s a boundary
    /// passes every 5 requests: the walk was about 200 instructions per request of a router without quotas.
    #[inline]
    fn advance(&mut self, now: Nanos) {
        if now >= self.next_tick {
            let mut next = Nanos::MAX;
            for s in &mut self.states {
                s.advance(now);
                next = next.min(s.next_boundary());
            }
            self.next_tick = self.idle_tick.map_or(next, |every| now.saturating_add(every));
            self.board.refresh_all(&self.gates, &self.states);
        }
    }

    /// Records that an attempt of `req` was sent to `ep` at `now`: one request and the request's
    /// [`TrackingConfig::tpm_estimate`] tokens in the endpoint's quota window, the same count the quota filter
    /// used to admit it.
    pub fn on_dispatch(&mut self, ep: EndpointIdx, req: &RequestInfo, now: Nanos) {
        let Some(st) = self.states.get_mut(ep.get()) else { return };
        st.on_dispatch(self.tracking.tpm_estimate(req), now, &self.tracking.circuit);
        self.board.touch(ep);
    }

    /// Records the outcome of an attempt of `req` on `ep` at `now`: latency averages, quota usage (output tokens
    /// beyond the TPM estimate counted at dispatch), error rate, spend, throttling on 429, the circuit breaker and
    /// the response cache.
    pub fn on_result(&mut self, ep: EndpointIdx, req: &RequestInfo, outcome: &Outcome, now: Nanos) {
        let Some(gate) = self.gates.get(ep.get()) else { return };
        // The gate's copy of the prices: one hot line, not the endpoint's description.
        let price = Price { input_per_mtok: gate.price_in, output_per_mtok: gate.price_out };
        let cost = price.cost(outcome.input_tokens, outcome.output_tokens);
        let extra = self.tracking.tpm_beyond_estimate(req, outcome.output_tokens);
        let throttled_before = self.states[ep.get()].throttled_until;
        self.states[ep.get()].on_result(outcome, cost, extra, now, &self.tracking);
        if let Some(c) = &self.compat {
            let g = c.latency_group_of[ep.get()];
            if let Some((members, ttl)) = c.latency_groups.get(g as usize) {
                // LiteLLM's group map expires `ttl` after its last write: the next write starts afresh.
                let last = members.iter().filter_map(|m| self.states[m.get()].compat.latency_written).max();
                if last.is_some_and(|t| now >= t.saturating_add(*ttl)) {
                    for m in members {
                        self.states[m.get()].compat.clear_latencies();
                    }
                }
            }
            self.states[ep.get()].compat.record(outcome, req.streaming, c.samples, now);
        }
        if self.target_retry.is_some() {
            // Portkey keeps no state between requests: a 429's Retry-After does not keep the target out.
            self.states[ep.get()].throttled_until = throttled_before;
        }
        if let Some(cd) = &self.cooldown {
            let st = &mut self.states[ep.get()];
            // LiteLLM reads no Retry-After for routing: only a cooldown keeps the deployment out.
            st.throttled_until = throttled_before;
            if let Some(class) = outcome.error
                && cd.should_cool(st, class, now)
            {
                st.throttled_until = st.throttled_until.max(now.saturating_add(cd.time));
            }
        }
        self.board.touch(ep);
        if outcome.is_success()
            && let (Some(cache), Some(key)) = (&mut self.cache, req.cache_key)
        {
            cache.insert(key, now);
        }
    }

    /// Opens `ep`'s circuit at `now` for the breaker's cooldown, whatever its error counts (see
    /// [`EndpointState::open_circuit`]): the gateway calls it when an upstream refuses its credentials, which
    /// every later request would meet too. After the cooldown a half-open probe tests the endpoint as usual.
    pub fn open_circuit(&mut self, ep: EndpointIdx, now: Nanos) {
        if let Some(st) = self.states.get_mut(ep.get()) {
            st.open_circuit(now, &self.tracking.circuit);
            self.board.touch(ep);
        }
    }

    /// Takes over what `old` learned about the endpoints both routers know (matched by id), so that a
    /// configuration reload does not reset it: with the same tracking configuration, the whole state
    /// (latency and TTFT averages, quota and error windows, circuit, throttling, health, counters, LiteLLM
    /// state) except the attempts and half-open probes in flight, which finish on `old`; with another tracking configuration,
    /// whose averages and windows measure differently, only the circuit, throttling, health and
    /// consecutive failures. Returns how many endpoints carried over.
    pub fn adopt_state(&mut self, old: &Router) -> usize {
        let same_tracking = self.tracking == old.tracking;
        let mut carried = 0;
        for i in 0..self.endpoints.len() {
            let Some(j) = old.endpoint_index(&self.endpoints[i].id) else { continue };
            let from = &old.states[j.get()];
            let st = &mut self.states[i];
            if same_tracking {
                let track_peak = st.track_peak;
                *st = from.clone();
                st.track_peak = track_peak;
                st.in_flight = 0;
            } else {
                st.circuit = from.circuit;
                st.throttled_until = from.throttled_until;
                st.healthy = from.healthy;
                st.consecutive_failures = from.consecutive_failures;
            }
            // Probes in flight report to `old`: the new router lets its own probes through.
            if let Circuit::HalfOpen { .. } = st.circuit {
                st.circuit = Circuit::HalfOpen { probes: 0 };
            }
            self.board.touch(EndpointIdx(i as u16));
            carried += 1;
        }
        carried
    }

    /// Records a health-check result for `ep`.
    pub fn on_health(&mut self, ep: EndpointIdx, healthy: bool, _now: Nanos) {
        if let Some(st) = self.states.get_mut(ep.get()) {
            st.healthy = healthy;
            self.board.touch(ep);
        }
    }

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
            return self.next_in_targets(req, attempts, class, now);
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

    /// LiteLLM's order (see [`crate::GroupRetryConfig`]): `num_retries` more attempts in the model group, each
    /// chosen by the group's policy, then each fallback group in turn.
    fn next_in_groups(
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

    /// Takes a token from the retry budget (always granted without one); false when it is spent.
    #[inline]
    fn retry_budget_allows(&mut self, now: Nanos) -> bool {
        self.budget.as_mut().is_none_or(|b| b.withdraw(now))
    }

    /// Portkey's order (see [`crate::TargetRetryConfig`]): retries on the same endpoint, then the innermost
    /// fallback above it that moves on after this error takes its next target that can take the request.
    fn next_in_targets(
        &mut self,
        req: &RequestInfo,
        attempts: &mut Attempts,
        class: ErrorClass,
        now: Nanos,
    ) -> NextAttempt {
        let Some(tr) = &self.target_retry else { return NextAttempt::GiveUp(GiveUpReason::NoEndpoint) };
        // Attempts on the current endpoint (the first attempt of a request counts 1, as `GroupStage` starts).
        let on_target = attempts.stage.count.max(1);
        if tr.on.contains(&class) && on_target <= tr.attempts {
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
            if tr.moves_on[p.0 as usize].as_ref().is_some_and(|codes| !codes.contains(&class)) {
                continue;
            }
            let width = tr.children[p.0 as usize].len();
            for k in pos as usize + 1..width {
                let Some(child) = self.target_retry.as_ref().map(|t| t.children[p.0 as usize][k]) else { break 'up };
                let picked = match child {
                    Target::Endpoint(e) => {
                        check(&self.endpoints, &self.states, &self.tracking, EndpointSet::default(), e, req, now)
                            .is_ok()
                            .then_some(e)
                    }
                    Target::Policy(q) => {
                        let rand = KeyedRand::new(self.seed, req.id, 0x100 + attempts.count as u64);
                        self.select(q.0 as usize, req, now, EndpointSet::default(), rand).0
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

    /// Releases the open batch if its deadline passed: `Some((batch, size))`.
    pub fn poll_batch(&mut self, now: Nanos) -> Option<(u64, u32)> {
        self.batcher.as_mut()?.poll(now)
    }

    // ===== accessors =====

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

// ===== impl Router: construction and validation =====

struct Names<'c> {
    endpoints: BTreeMap<&'c str, EndpointIdx>,
    policies: BTreeMap<&'c str, PolicyIdx>,
}

impl Names<'_> {
    fn target(&self, name: &str, path: &str) -> Result<Target, ConfigError> {
        if let Some(&e) = self.endpoints.get(name) {
            return Ok(Target::Endpoint(e));
        }
        if let Some(&p) = self.policies.get(name) {
            if p.0 == 0 {
                return Err(ConfigError::new(
                    path,
                    format!("`{name}` is the root policy itself: a policy cannot target itself"),
                ));
            }
            return Ok(Target::Policy(p));
        }
        Err(ConfigError::new(
            path,
            format!("unknown target `{name}`: expected an endpoint id or a group name ({})", self.known()),
        ))
    }

    fn endpoint(&self, name: &str, path: &str) -> Result<EndpointIdx, ConfigError> {
        self.endpoints.get(name).copied().ok_or_else(|| {
            let ids: Vec<_> = self.endpoints.keys().copied().collect();
            ConfigError::new(path, format!("unknown endpoint `{name}`: expected one of {}", ids.join(", ")))
        })
    }

    fn known(&self) -> String {
        let eps: Vec<_> = self.endpoints.keys().copied().collect();
        let gs: Vec<_> = self.policies.iter().filter(|(_, p)| p.0 != 0).map(|(n, _)| *n).collect();
        if gs.is_empty() {
            format!("endpoints: {}", eps.join(", "))
        } else {
            format!("endpoints: {}; groups: {}", eps.join(", "), gs.join(", "))
        }
    }
}

fn validate_endpoints(endpoints: &[Endpoint]) -> Result<(), ConfigError> {
    if endpoints.is_empty() {
        return Err(ConfigError::new("endpoints", "expected at least one endpoint"));
    }
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(ConfigError::new(
            "endpoints",
            format!("expected at most {MAX_ENDPOINTS} endpoints, found {}", endpoints.len()),
        ));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let p = format!("endpoints[{i}]");
        if e.id.trim().is_empty() {
            return Err(ConfigError::new(format!("{p}.id"), "expected a non-empty id"));
        }
        if let Some(j) = endpoints[..i].iter().position(|o| o.id == e.id) {
            return Err(ConfigError::new(
                format!("{p}.id"),
                format!("duplicate endpoint id `{}` (also endpoints[{j}])", e.id),
            ));
        }
        check_range(&format!("{p}.weight"), e.weight, 0.0, f64::MAX)?;
        check_range(&format!("{p}.price.input_per_mtok"), e.price.input_per_mtok, 0.0, f64::MAX)?;
        check_range(&format!("{p}.price.output_per_mtok"), e.price.output_per_mtok, 0.0, f64::MAX)?;
        let l = &e.limits;
        for (name, v) in [
            ("rpm", l.rpm.map(u64::from)),
            ("tpm", l.tpm),
            ("concurrency", l.concurrency.map(u64::from)),
            ("context_window", l.context_window.map(u64::from)),
        ] {
            if v == Some(0) {
                return Err(ConfigError::new(
                    format!("{p}.limits.{name}"),
                    "expected a positive limit (omit it for unlimited), found 0",
                ));
            }
        }
    }
    Ok(())
}

fn validate_tracking(t: &TrackingConfig, p: &str) -> Result<(), ConfigError> {
    for (name, ema) in [("latency", &t.latency), ("ttft", &t.ttft)] {
        match (ema.window, ema.alpha) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(format!("{p}.{name}"), "expected either `window` or `alpha`, not both"));
            }
            (_, Some(a)) => check_range(&format!("{p}.{name}.alpha"), a, f64::MIN_POSITIVE, 1.0)?,
            (Some(w), None) if w.nanos() == 0 => {
                return Err(ConfigError::new(format!("{p}.{name}.window"), "expected a positive window like \"5m\""));
            }
            _ => {}
        }
    }
    for (name, d) in [("error_window", t.error_window), ("quota_window", t.quota_window), ("peak_decay", t.peak_decay)]
    {
        if d.nanos() == 0 {
            return Err(ConfigError::new(format!("{p}.{name}"), "expected a positive duration"));
        }
    }
    check_range(&format!("{p}.circuit.error_rate"), t.circuit.error_rate, f64::MIN_POSITIVE, 1.0)?;
    Ok(())
}

fn validate_retry(r: &RetryConfig, p: &str) -> Result<(), ConfigError> {
    if !(1..=100).contains(&r.max_attempts) {
        return Err(ConfigError::new(
            format!("{p}.max_attempts"),
            format!("expected 1..=100, found {}", r.max_attempts),
        ));
    }
    check_range(&format!("{p}.multiplier"), r.multiplier, 1.0, 100.0)?;
    if r.base_delay > r.max_delay {
        return Err(ConfigError::new(format!("{p}.base_delay"), "expected base_delay <= max_delay"));
    }
    if let Some(b) = &r.budget {
        check_range(&format!("{p}.budget.ratio"), b.ratio, 0.0, 1000.0)?;
        check_range(&format!("{p}.budget.min_per_s"), b.min_per_s, 0.0, 1e9)?;
    }
    Ok(())
}

/// Deepest nesting of groups a router accepts (root -> group -> group ... counts the groups below the root).
pub const MAX_GROUP_DEPTH: usize = 16;

/// Most groups one router can hold.
pub const MAX_GROUPS: usize = 4096;

/// The policies a spec targets, each with the path of the field that names it (`targets[0]`, `rules[1].target`,
/// `default`).
fn policy_edges(s: &PolicySpec, names: &Names<'_>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut add = |name: &str, field: String| {
        if let Some(p) = names.policies.get(name) {
            out.push((p.0 as usize, field));
        }
    };
    s.targets.iter().enumerate().for_each(|(i, t)| add(t.id(), format!("targets[{i}]")));
    s.rules.iter().enumerate().for_each(|(i, r)| add(&r.target, format!("rules[{i}].target")));
    if let Some(d) = &s.default {
        add(d, "default".to_string());
    }
    out
}

/// Rejects a policy graph with a cycle (naming the field that closes it and the cycle itself), or nested
/// deeper than [`MAX_GROUP_DEPTH`].
fn check_cycles(specs: &[(&PolicySpec, String)], names: &Names<'_>) -> Result<(), ConfigError> {
    let edges: Vec<Vec<(usize, String)>> = specs.iter().map(|(s, _)| policy_edges(s, names)).collect();
    // 0 = unvisited, 1 = on the stack, 2 = done; height = longest chain of groups below a policy.
    struct Walk<'a> {
        specs: &'a [(&'a PolicySpec, String)],
        edges: &'a [Vec<(usize, String)>],
        color: Vec<u8>,
        height: Vec<usize>,
        stack: Vec<usize>,
    }
    fn dfs(w: &mut Walk<'_>, v: usize) -> Result<(), ConfigError> {
        w.color[v] = 1;
        w.stack.push(v);
        let mut height = 0;
        for (to, field) in &w.edges[v] {
            let to = *to;
            if w.color[to] == 1 {
                let pos = w.stack.iter().position(|&x| x == to).unwrap_or(0);
                let mut cycle: Vec<&str> = w.stack[pos..].iter().map(|&i| w.specs[i].0.name.as_str()).collect();
                cycle.push(&w.specs[to].0.name);
                return Err(ConfigError::new(
                    format!("{}.{field}", w.specs[v].1),
                    format!(
                        "policies target each other in a cycle: {}; expected groups that form a tree",
                        cycle.join(" -> ")
                    ),
                ));
            }
            if w.color[to] == 0 {
                dfs(w, to)?;
            }
            height = height.max(1 + w.height[to]);
            if height > MAX_GROUP_DEPTH {
                return Err(ConfigError::new(
                    format!("{}.{field}", w.specs[v].1),
                    format!("groups nest more than {MAX_GROUP_DEPTH} levels deep below `{}`", w.specs[v].0.name),
                ));
            }
        }
        w.height[v] = height;
        w.stack.pop();
        w.color[v] = 2;
        Ok(())
    }
    let n = specs.len();
    let mut w = Walk { specs, edges: &edges, color: vec![0; n], height: vec![0; n], stack: Vec::new() };
    for v in 0..n {
        if w.color[v] == 0 {
            dfs(&mut w, v)?;
        }
    }
    Ok(())
}

fn compile_targets(
    spec: &PolicySpec,
    p: &str,
    names: &Names<'_>,
    endpoints: &[Endpoint],
) -> Result<Vec<WeightedTarget>, ConfigError> {
    let targets: Vec<WeightedTarget> = if spec.targets.is_empty() {
        endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.batch)
            .map(|(i, e)| WeightedTarget { target: Target::Endpoint(EndpointIdx(i as u16)), weight: e.weight })
            .collect()
    } else {
        spec.targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let tp = format!("{p}.targets[{i}]");
                let target = names.target(t.id(), &tp)?;
                if let Target::Endpoint(e) = target
                    && endpoints[e.get()].batch
                {
                    return Err(ConfigError::new(
                        tp,
                        format!("`{}` is a batch endpoint: only `batching` may send to it", t.id()),
                    ));
                }
                let weight = match (t, target) {
                    (TargetSpec::Weighted { weight, .. }, _) => {
                        check_range(&format!("{tp}.weight"), *weight, 0.0, f64::MAX)?;
                        *weight
                    }
                    (_, Target::Endpoint(e)) => endpoints[e.get()].weight,
                    _ => 1.0,
                };
                Ok(WeightedTarget { target, weight })
            })
            .collect::<Result<_, _>>()?
    };
    if targets.is_empty() {
        return Err(ConfigError::new(
            format!("{p}.targets"),
            "expected at least one target that is not a batch endpoint",
        ));
    }
    if targets.len() > MAX_ENDPOINTS {
        return Err(ConfigError::new(
            format!("{p}.targets"),
            format!("expected at most {MAX_ENDPOINTS} targets, found {}", targets.len()),
        ));
    }
    for (i, t) in spec.targets.iter().enumerate() {
        if let Some(j) = spec.targets[..i].iter().position(|o| o.id() == t.id()) {
            return Err(ConfigError::new(
                format!("{p}.targets[{i}]"),
                format!(
                    "duplicate target `{}` (also targets[{j}]): list each target once and give it a weight instead",
                    t.id()
                ),
            ));
        }
    }
    // Weighted random draws by these weights and usage routing scales them by quota headroom: with every weight
    // zero there is nothing to draw by (the selector would fall back to uniform), so say so here.
    if matches!(spec.kind, PolicyKind::Weighted | PolicyKind::Usage) && targets.iter().all(|t| t.weight == 0.0) {
        let source = if spec.targets.is_empty() {
            "without `targets` every non-batch endpoint is a target and its weight is the endpoint's `weight`"
        } else {
            "a target's weight is its `weight`, else its endpoint's `weight` (1 for a group)"
        };
        return Err(ConfigError::new(
            format!("{p}.targets"),
            format!("expected at least one positive weight, found all zero ({source})"),
        ));
    }
    Ok(targets)
}

/// The targets of a LiteLLM compat policy, which must all be endpoints (deployments of one model group).
fn endpoint_targets(
    spec: &PolicySpec,
    p: &str,
    targets: Vec<WeightedTarget>,
) -> Result<Vec<WeightedTarget>, ConfigError> {
    if let Some(i) = targets.iter().position(|t| matches!(t.target, Target::Policy(_))) {
        return Err(ConfigError::new(
            format!("{p}.targets[{i}]"),
            format!(
                "kind `{}` reproduces a LiteLLM model group and takes endpoints (deployments) as targets, not a group",
                spec.kind.name()
            ),
        ));
    }
    Ok(targets)
}

/// The LiteLLM compat tracking a router needs: `Some` when a policy is a LiteLLM compat kind or cooldowns are on.
fn compat_tracking(
    specs: &[(&PolicySpec, String)],
    reachable: &[bool],
    policies_targets: &[Vec<EndpointIdx>],
    n: usize,
    cooldown: bool,
) -> Result<Option<CompatTracking>, ConfigError> {
    let compat_kind = |k: PolicyKind| {
        matches!(
            k,
            PolicyKind::LitellmLeastBusy
                | PolicyKind::LitellmUsageV2
                | PolicyKind::LitellmLatency
                | PolicyKind::LitellmCost
        )
    };
    if !cooldown && !specs.iter().enumerate().any(|(i, (s, _))| reachable[i] && compat_kind(s.kind)) {
        return Ok(None);
    }
    let mut samples: Option<(u32, &str)> = None;
    let mut latency_group_of = vec![u16::MAX; n];
    let mut latency_groups = Vec::new();
    for (i, (s, p)) in specs.iter().enumerate() {
        if s.kind != PolicyKind::LitellmLatency || !reachable[i] {
            continue;
        }
        let k = s.samples.unwrap_or(10);
        if !(1..=crate::state::MAX_LATENCY_SAMPLES as u32).contains(&k) {
            return Err(ConfigError::new(
                format!("{p}.samples"),
                format!("expected 1..={}, found {k}", crate::state::MAX_LATENCY_SAMPLES),
            ));
        }
        match samples {
            Some((other, q)) if other != k => {
                return Err(ConfigError::new(
                    format!("{p}.samples"),
                    format!(
                        "every litellm-latency policy of a router keeps the same list size: {q} has {other}, found {k}"
                    ),
                ));
            }
            _ => samples = Some((k, p)),
        }
        let ttl = s.ttl.map_or(3_600 * crate::model::NANOS_PER_SEC, |d| d.nanos());
        for (j, e) in policies_targets[i].iter().enumerate() {
            if latency_group_of[e.get()] != u16::MAX {
                return Err(ConfigError::new(
                    format!("{p}.targets[{j}]"),
                    "an endpoint belongs to at most one litellm-latency policy (one LiteLLM model group)",
                ));
            }
            latency_group_of[e.get()] = latency_groups.len() as u16;
        }
        latency_groups.push((policies_targets[i].clone(), ttl));
    }
    Ok(Some(CompatTracking { samples: samples.map_or(10, |(k, _)| k as usize), latency_group_of, latency_groups }))
}

fn compile_policy(
    idx: PolicyIdx,
    spec: &PolicySpec,
    p: &str,
    names: &Names<'_>,
    endpoints: &[Endpoint],
) -> Result<Box<dyn Policy>, ConfigError> {
    spec.check_fields(p)?;
    let targets = compile_targets(spec, p, names, endpoints)?;
    let buffer = spec.buffer.unwrap_or(0.0);
    check_range(&format!("{p}.buffer"), buffer, 0.0, 10.0)?;
    Ok(match spec.kind {
        PolicyKind::RoundRobin => Box::new(RoundRobin::new(idx, targets)),
        PolicyKind::Weighted => Box::new(WeightedRandom::new(targets)),
        PolicyKind::LeastOutstanding => Box::new(LeastOutstanding::new(targets)),
        PolicyKind::P2c => Box::new(PowerOfTwo::new(targets)),
        PolicyKind::Cost => Box::new(CostBased::new(targets)),
        PolicyKind::Fallback => Box::new(FallbackChain::new(targets)),
        PolicyKind::LitellmLeastBusy => Box::new(litellm::LeastBusy::new(endpoint_targets(spec, p, targets)?)),
        PolicyKind::LitellmUsageV2 => Box::new(litellm::UsageV2::new(endpoint_targets(spec, p, targets)?)),
        PolicyKind::LitellmCost => Box::new(litellm::Cost::new(endpoint_targets(spec, p, targets)?)),
        PolicyKind::LitellmLatency => {
            let ttl = spec.ttl.map_or(3_600 * crate::model::NANOS_PER_SEC, |d| d.nanos());
            if ttl == 0 {
                return Err(ConfigError::new(format!("{p}.ttl"), "expected a positive duration like \"1h\""));
            }
            Box::new(litellm::Latency::new(endpoint_targets(spec, p, targets)?, buffer, ttl))
        }
        PolicyKind::Latency => Box::new(LatencyBased::new(targets, buffer, spec.slow_threshold.map(|d| d.nanos()))),
        PolicyKind::Usage => {
            let threshold = spec.threshold.unwrap_or(0.8);
            if !(threshold > 0.0 && threshold < 1.0) {
                return Err(ConfigError::new(
                    format!("{p}.threshold"),
                    format!("expected a fraction strictly between 0 and 1, found {threshold}"),
                ));
            }
            let tiers = spec.tiers.clone().unwrap_or_default().into_iter().collect();
            Box::new(UsageBased::new(targets, threshold, tiers))
        }
        PolicyKind::Hybrid => {
            let w = spec.weights.ok_or_else(|| {
                ConfigError::new(
                    format!("{p}.weights"),
                    "expected weights = { cost = .., latency = .., load = .., quota = .. }",
                )
            })?;
            for (n, v) in [("cost", w.cost), ("latency", w.latency), ("load", w.load), ("quota", w.quota)] {
                check_range(&format!("{p}.weights.{n}"), v, 0.0, f64::MAX)?;
            }
            if w.cost + w.latency + w.load + w.quota <= 0.0 {
                return Err(ConfigError::new(
                    format!("{p}.weights"),
                    "expected at least one positive weight, found all zero",
                ));
            }
            Box::new(Hybrid::new(targets, w, buffer, spec.latency_ceiling.map(|d| d.nanos())))
        }
        PolicyKind::Conditional => {
            if spec.rules.is_empty() {
                return Err(ConfigError::new(
                    format!("{p}.rules"),
                    "expected at least one rule { when = {...}, target = \"...\" }",
                ));
            }
            let rules = spec
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let rp = format!("{p}.rules[{i}]");
                    let cond = Condition::compile(&r.when, &format!("{rp}.when"))
                        .map_err(|(path, m)| ConfigError::new(path, m))?;
                    Ok((cond, names.target(&r.target, &format!("{rp}.target"))?))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            let default = spec.default.as_deref().map(|d| names.target(d, &format!("{p}.default"))).transpose()?;
            Box::new(Conditional::new(rules, default))
        }
        PolicyKind::Sticky => {
            let key = spec.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
                ConfigError::new(format!("{p}.key"), "expected the metadata field to stick on, e.g. key = \"user\"")
            })?;
            let vnodes = spec.virtual_nodes.unwrap_or(64);
            if !(1..=1024).contains(&vnodes) {
                return Err(ConfigError::new(
                    format!("{p}.virtual_nodes"),
                    format!("expected 1..=1024, found {vnodes}"),
                ));
            }
            let target_names: Vec<String> = if spec.targets.is_empty() {
                endpoints.iter().filter(|e| !e.batch).map(|e| e.id.clone()).collect()
            } else {
                spec.targets.iter().map(|t| t.id().to_string()).collect()
            };
            let default = spec.default.as_deref().map(|d| names.target(d, &format!("{p}.default"))).transpose()?;
            Box::new(Sticky::new(key, targets, &target_names, vnodes, default))
        }
    })
}

impl Router {
    /// Builds a router from a configuration, validating all of it.
    pub fn new(cfg: &RouterConfig) -> Result<Router, ConfigError> {
        validate_endpoints(&cfg.endpoints)?;
        let mut names = Names {
            endpoints: cfg.endpoints.iter().enumerate().map(|(i, e)| (e.id.as_str(), EndpointIdx(i as u16))).collect(),
            policies: BTreeMap::new(),
        };
        if cfg.groups.len() > MAX_GROUPS {
            return Err(ConfigError::new(
                "groups",
                format!("expected at most {MAX_GROUPS} groups, found {}", cfg.groups.len()),
            ));
        }
        let mut specs: Vec<(&PolicySpec, String)> = vec![(&cfg.policy, "policy".to_string())];
        specs.extend(cfg.groups.iter().enumerate().map(|(j, g)| (g, format!("groups[{j}]"))));
        for (i, (spec, p)) in specs.iter().enumerate() {
            if spec.name.trim().is_empty() {
                return Err(ConfigError::new(format!("{p}.name"), "expected a non-empty name"));
            }
            if names.endpoints.contains_key(spec.name.as_str()) || names.policies.contains_key(spec.name.as_str()) {
                return Err(ConfigError::new(
                    format!("{p}.name"),
                    format!("duplicate name `{}`: names of policies, groups and endpoints must be unique", spec.name),
                ));
            }
            if i > 0
                && let Some(f) = spec.root_fields().first()
            {
                return Err(ConfigError::new(
                    format!("{p}.{f}"),
                    format!("`{f}` is only allowed on the root policy, not on a group"),
                ));
            }
            names.policies.insert(spec.name.as_str(), PolicyIdx(i as u16));
        }
        check_cycles(&specs, &names)?;
        let policies = specs
            .iter()
            .enumerate()
            .map(|(i, (spec, p))| compile_policy(PolicyIdx(i as u16), spec, p, &names, &cfg.endpoints))
            .collect::<Result<Vec<_>, _>>()?;

        let root = &cfg.policy;
        let tracking = root.tracking.unwrap_or_default();
        validate_tracking(&tracking, "policy.tracking")?;
        // The endpoint targets of every policy (all non-batch endpoints when it names none).
        let policies_targets: Vec<Vec<EndpointIdx>> = specs
            .iter()
            .map(|(s, _)| {
                if s.kind == PolicyKind::Conditional {
                    let named = s.rules.iter().map(|r| r.target.as_str()).chain(s.default.as_deref());
                    named.filter_map(|n| names.endpoints.get(n).copied()).collect()
                } else if s.targets.is_empty() {
                    (0..cfg.endpoints.len())
                        .filter(|&i| !cfg.endpoints[i].batch)
                        .map(|i| EndpointIdx(i as u16))
                        .collect()
                } else {
                    s.targets.iter().filter_map(|t| names.endpoints.get(t.id()).copied()).collect()
                }
            })
            .collect();
        let cooldown = match &root.cooldown {
            Some(c) => {
                if tracking.circuit.enabled {
                    return Err(ConfigError::new(
                        "policy.cooldown",
                        "LiteLLM cooldowns replace the circuit breaker: set tracking.circuit.enabled = false",
                    ));
                }
                if c.cooldown_time.nanos() == 0 {
                    return Err(ConfigError::new(
                        "policy.cooldown.cooldown_time",
                        "expected a positive duration like \"5s\"",
                    ));
                }
                for (i, id) in c.single_deployment.iter().enumerate() {
                    names.endpoint(id, &format!("policy.cooldown.single_deployment[{i}]"))?;
                }
                Some(Cooldown { allowed_fails: c.allowed_fails, time: c.cooldown_time.nanos() })
            }
            None => None,
        };
        // Policies the root can reach: a scenario's groups are shared by all its policies, and only this root's
        // own ones define its model groups and latency groups.
        let reachable = {
            let mut seen = vec![false; specs.len()];
            let mut stack = vec![0usize];
            while let Some(v) = stack.pop() {
                if std::mem::replace(&mut seen[v], true) {
                    continue;
                }
                stack.extend(policy_edges(specs[v].0, &names).into_iter().map(|(to, _)| to));
            }
            if let Some(g) = &root.group_retry {
                for name in g.fallbacks.values().flatten().chain(g.fallbacks.keys()) {
                    if let Some(p) = names.policies.get(name.as_str()) {
                        let mut stack = vec![p.0 as usize];
                        while let Some(v) = stack.pop() {
                            if std::mem::replace(&mut seen[v], true) {
                                continue;
                            }
                            stack.extend(policy_edges(specs[v].0, &names).into_iter().map(|(to, _)| to));
                        }
                    }
                }
            }
            seen
        };
        let compat = compat_tracking(&specs, &reachable, &policies_targets, cfg.endpoints.len(), cooldown.is_some())?;
        // Every endpoint each policy can reach, through the policies it targets (a tree: the cycle check ran).
        let reach: Vec<EndpointSet> = (0..specs.len())
            .map(|i| {
                let mut set = EndpointSet::default();
                let mut seen = vec![false; specs.len()];
                let mut stack = vec![i];
                while let Some(v) = stack.pop() {
                    if std::mem::replace(&mut seen[v], true) {
                        continue;
                    }
                    policies_targets[v].iter().for_each(|&e| set.insert(e));
                    stack.extend(policy_edges(specs[v].0, &names).into_iter().map(|(to, _)| to));
                }
                set
            })
            .collect();
        let policy_names: Vec<String> = specs.iter().map(|(s, _)| s.name.clone()).collect();
        let group_retry = match &root.group_retry {
            Some(g) => {
                // Every endpoint each policy can reach (groups are a tree: the cycle check ran above).
                fn reach(
                    i: usize,
                    specs: &[(&PolicySpec, String)],
                    names: &Names<'_>,
                    direct: &[Vec<EndpointIdx>],
                    out: &mut Vec<EndpointIdx>,
                ) {
                    for e in &direct[i] {
                        if !out.contains(e) {
                            out.push(*e);
                        }
                    }
                    for (to, _) in policy_edges(specs[i].0, names) {
                        reach(to, specs, names, direct, out);
                    }
                }
                let closure: Vec<Vec<EndpointIdx>> = (0..specs.len())
                    .map(|i| {
                        let mut out = Vec::new();
                        reach(i, &specs, &names, &policies_targets, &mut out);
                        out
                    })
                    .collect();
                let mut groups: Vec<(PolicyIdx, Vec<PolicyIdx>)> = Vec::new();
                let mut group_of = vec![u16::MAX; cfg.endpoints.len()];
                let policy = |name: &str, path: &str| -> Result<PolicyIdx, ConfigError> {
                    match names.policies.get(name) {
                        Some(p) if p.0 != 0 => Ok(*p),
                        _ => Err(ConfigError::new(
                            path,
                            format!("unknown model group `{name}`: expected a group name ({})", names.known()),
                        )),
                    }
                };
                // The model groups: the root's own targets (its rules, default and targets) and every group the
                // fallbacks name. Each is asked as a whole (an `order` fallback over tiers included); its members
                // are every endpoint it can reach.
                let mut model_groups: Vec<usize> = Vec::new();
                let root_children = policy_edges(specs[0].0, &names).into_iter().map(|(to, _)| to);
                let named = g
                    .fallbacks
                    .iter()
                    .flat_map(|(k, v)| std::iter::once(k).chain(v))
                    .filter_map(|n| names.policies.get(n.as_str()).map(|p| p.0 as usize));
                for i in root_children.chain(named) {
                    if i != 0 && !model_groups.contains(&i) {
                        model_groups.push(i);
                    }
                }
                for &i in &model_groups {
                    let s = specs[i].0;
                    let fallbacks = match g.fallbacks.get(&s.name) {
                        Some(list) => list
                            .iter()
                            .enumerate()
                            .map(|(j, f)| policy(f, &format!("policy.group_retry.fallbacks.{}[{j}]", s.name)))
                            .collect::<Result<Vec<_>, _>>()?,
                        None => Vec::new(),
                    };
                    for e in &closure[i] {
                        if group_of[e.get()] == u16::MAX {
                            group_of[e.get()] = groups.len() as u16;
                        }
                    }
                    groups.push((PolicyIdx(i as u16), fallbacks));
                }
                for k in g.fallbacks.keys() {
                    policy(k, &format!("policy.group_retry.fallbacks.{k}"))?;
                }
                Some(GroupRetry {
                    num_retries: g.num_retries,
                    retry_after: g.retry_after.nanos(),
                    groups,
                    group_of,
                    members: closure,
                })
            }
            None => None,
        };
        let target_retry = match &root.target_retry {
            Some(_) if root.group_retry.is_some() => {
                return Err(ConfigError::new(
                    "policy.target_retry",
                    "`target_retry` (Portkey's order) and `group_retry` (LiteLLM's) exclude each other: keep one",
                ));
            }
            Some(t) => Some(compile_target_retry(t, &specs, &names, cfg)?),
            None => None,
        };
        let mut fallbacks: [Vec<EndpointIdx>; 4] = Default::default();
        if let Some(spec) = &root.fallbacks {
            for class in ErrorClass::ALL {
                let chain = spec.chain(class);
                fallbacks[class.index()] = chain
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        let path = match spec {
                            crate::config::FallbackSpec::List(_) => format!("policy.fallbacks[{i}]"),
                            crate::config::FallbackSpec::PerClass(_) => {
                                format!("policy.fallbacks.{}[{i}]", class.name())
                            }
                        };
                        let e = names.endpoint(id, &path)?;
                        if cfg.endpoints[e.get()].batch {
                            return Err(ConfigError::new(
                                path,
                                format!("`{id}` is a batch endpoint and cannot serve a fallback"),
                            ));
                        }
                        Ok(e)
                    })
                    .collect::<Result<_, _>>()?;
            }
        }
        let retry = match &root.retry {
            Some(r) => r.clone(),
            None => RetryConfig {
                max_attempts: 1 + fallbacks.iter().map(Vec::len).max().unwrap_or(0) as u32,
                same_endpoint: false,
                budget: None,
                ..RetryConfig::default()
            },
        };
        validate_retry(&retry, "policy.retry")?;
        let cache = match &root.cache {
            Some(c) if c.capacity == 0 || c.capacity > MAX_CACHE_CAPACITY => {
                return Err(ConfigError::new(
                    "policy.cache.capacity",
                    format!("expected a capacity in 1..={MAX_CACHE_CAPACITY}, found {}", c.capacity),
                ));
            }
            Some(c) if c.ttl.nanos() == 0 => {
                return Err(ConfigError::new("policy.cache.ttl", "expected a positive ttl like \"10m\""));
            }
            Some(c) => Some(ResponseCache::new(c)),
            None => None,
        };
        let batcher = match &root.batching {
            Some(b) => {
                let e = names.endpoint(&b.endpoint, "policy.batching.endpoint")?;
                if !cfg.endpoints[e.get()].batch {
                    return Err(ConfigError::new(
                        "policy.batching.endpoint",
                        format!("`{}` is not a batch endpoint: set `batch = true` on it", b.endpoint),
                    ));
                }
                if b.max_size == 0 {
                    return Err(ConfigError::new("policy.batching.max_size", "expected a positive batch size"));
                }
                if b.max_wait.nanos() == 0 {
                    return Err(ConfigError::new(
                        "policy.batching.max_wait",
                        "expected a positive duration like \"30m\"",
                    ));
                }
                Some(Batcher::new(b, e))
            }
            None => None,
        };
        let n = cfg.endpoints.len();
        let gates: Vec<Gate> = cfg.endpoints.iter().map(Gate::new).collect();
        let mut states: Vec<EndpointState> = (0..n).map(|_| EndpointState::new(&tracking)).collect();
        // Only p2c reads the peak EWMA: without it, results need not update it.
        let peak_read = specs.iter().any(|(s, _)| s.kind == PolicyKind::P2c);
        for st in &mut states {
            st.track_peak = peak_read;
        }
        if let Some(c) = &root.cooldown {
            for id in &c.single_deployment {
                if let Some(&e) = names.endpoints.get(id.as_str()) {
                    states[e.get()].compat.single_deployment = true;
                }
            }
        }
        let board = Scoreboard::new(&gates, &states);
        // Only quotas read the sliding windows between feedback (see `Router::advance`). Any declared quota
        // counts, even `tpm = u64::MAX`: its gate's reciprocal still weighs the window in the quota score.
        let quotas = cfg.endpoints.iter().any(|e| e.limits.rpm.is_some() || e.limits.tpm.is_some());
        let idle_tick = (!quotas).then(|| tracking.error_window.nanos().max(tracking.quota_window.nanos()).max(1));
        // Scratch for candidates: the policies active at once form a chain of at most MAX_GROUP_DEPTH + 1, each
        // with at most its target count of candidates, so this capacity is never exceeded (no allocation later).
        let per_policy: Vec<usize> =
            specs.iter().map(|(s, _)| if s.targets.is_empty() { n } else { s.targets.len() }).collect();
        let widest = per_policy.iter().copied().max().unwrap_or(n);
        let scratch_cap = per_policy.iter().sum::<usize>().min((MAX_GROUP_DEPTH + 1) * widest);
        // Journal of speculative cursor moves: each candidate on the scratch stack (and the one being resolved)
        // carries at most one entry per round robin on its path, and a path holds at most MAX_GROUP_DEPTH + 1.
        let round_robins = specs.iter().filter(|(s, _)| s.kind == PolicyKind::RoundRobin).count();
        let journal_cap = (scratch_cap + 1) * round_robins.min(MAX_GROUP_DEPTH + 1);
        Ok(Router {
            name: root.name.clone(),
            kind: root.kind,
            endpoints: cfg.endpoints.clone(),
            gates,
            states,
            board,
            counters: vec![0; policies.len()],
            journal: Vec::with_capacity(journal_cap),
            policies,
            scratch: Vec::with_capacity(scratch_cap),
            terms: Terms::with_len(widest),
            tracking,
            budget: retry.budget.map(RetryBudget::new),
            retry,
            fallbacks,
            cache,
            batcher,
            timeouts: Timeouts {
                attempt: root.timeout.map(|d| d.nanos()).filter(|&t| t > 0),
                ttft: root.ttft_timeout.map(|d| d.nanos()).filter(|&t| t > 0),
            },
            seed: cfg.seed,
            next_tick: 0,
            idle_tick,
            compat,
            cooldown,
            group_retry,
            policy_names,
            reach,
            target_retry,
        })
    }
}

/// Compiles Portkey's retry order: each fallback policy's children, and each endpoint's fallback ancestors on
/// its first path from the root (the policy graph is acyclic: checked before).
fn compile_target_retry(
    t: &crate::TargetRetryConfig,
    specs: &[(&PolicySpec, String)],
    names: &Names<'_>,
    cfg: &RouterConfig,
) -> Result<TargetRetry, ConfigError> {
    let resolve = |name: &str| -> Option<Target> {
        names
            .endpoints
            .get(name)
            .map(|&e| Target::Endpoint(e))
            .or_else(|| names.policies.get(name).map(|&p| Target::Policy(p)))
    };
    let all = || {
        (0..cfg.endpoints.len()).filter(|&i| !cfg.endpoints[i].batch).map(|i| Target::Endpoint(EndpointIdx(i as u16)))
    };
    // Every child of every policy, in order (a policy that names none has every non-batch endpoint).
    let kids: Vec<Vec<Target>> = specs
        .iter()
        .map(|(s, _)| {
            let named: Vec<&str> = if s.kind == PolicyKind::Conditional {
                s.rules.iter().map(|r| r.target.as_str()).chain(s.default.as_deref()).collect()
            } else {
                s.targets.iter().map(TargetSpec::id).chain(s.default.as_deref()).collect()
            };
            if named.is_empty() && s.kind != PolicyKind::Conditional {
                all().collect()
            } else {
                named.into_iter().filter_map(resolve).collect()
            }
        })
        .collect();
    let mut ancestors: Vec<Option<Vec<(PolicyIdx, u16)>>> = vec![None; cfg.endpoints.len()];
    fn walk(
        p: usize,
        path: &mut Vec<(PolicyIdx, u16)>,
        specs: &[(&PolicySpec, String)],
        kids: &[Vec<Target>],
        out: &mut [Option<Vec<(PolicyIdx, u16)>>],
    ) {
        let fallback = specs[p].0.kind == PolicyKind::Fallback;
        for (pos, child) in kids[p].iter().enumerate() {
            if fallback {
                path.push((PolicyIdx(p as u16), pos as u16));
            }
            match *child {
                Target::Endpoint(e) => {
                    if out[e.get()].is_none() {
                        out[e.get()] = Some(path.iter().rev().copied().collect());
                    }
                }
                Target::Policy(q) => walk(q.0 as usize, path, specs, kids, out),
            }
            if fallback {
                path.pop();
            }
        }
    }
    walk(0, &mut Vec::new(), specs, &kids, &mut ancestors);
    let mut moves_on: Vec<Option<Vec<ErrorClass>>> = vec![None; specs.len()];
    for (name, classes) in &t.fallback_on {
        let path = format!("policy.target_retry.fallback_on.{name}");
        match names.policies.get(name.as_str()) {
            Some(p) if specs[p.0 as usize].0.kind == PolicyKind::Fallback => {
                moves_on[p.0 as usize] = Some(classes.clone());
            }
            Some(_) => return Err(ConfigError::new(path, format!("`{name}` is not a `fallback` policy"))),
            None => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "unknown fallback policy `{name}`: expected a fallback group or the root ({})",
                        names.known()
                    ),
                ));
            }
        }
    }
    if t.on.is_empty() && t.attempts > 0 {
        return Err(ConfigError::new("policy.target_retry.on", "expected at least one error class to retry"));
    }
    let children = kids
        .into_iter()
        .enumerate()
        .map(|(i, k)| if specs[i].0.kind == PolicyKind::Fallback { k } else { Vec::new() })
        .collect();
    Ok(TargetRetry {
        attempts: t.attempts,
        on: t.on.clone(),
        base_delay: t.base_delay.nanos(),
        ancestors: ancestors.into_iter().map(Option::unwrap_or_default).collect(),
        children,
        moves_on,
    })
}

// A router must be movable into a tokio task or a simulator thread.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Router>();
};
