//! Routing policies, built from three composable parts: **filter -> scorer -> selector**.
//!
//! - The *filter* is shared by every policy and is the safety net: a candidate is dropped when its circuit is
//!   open, it is unhealthy, its quota is exhausted (or a 429 told us to back off), it is at its concurrency
//!   limit, its context window is too small, it lacks a required capability, or it was already tried.
//!   See [`Ctx::eligible`].
//! - A *scorer* gives each surviving candidate a number (latency average, expected cost, hybrid score, ...).
//! - A *selector* picks one: minimum, minimum within a tolerance buffer, weighted random, two random
//!   choices, round robin, first in order (see [`select`]).
//!
//! A policy's targets may be endpoints or other policies ("groups"), to any depth: a target that is a policy
//! is resolved by asking that policy, and its pick then competes as a candidate. So conditional ->
//! weighted group -> fallback chain is just three policies targeting each other.
//!
//! Groups are evaluated lazily: a policy that takes the first eligible target (fallback, round robin,
//! conditional, sticky) asks its targets in turn and stops at the first answer, and weighted random draws a
//! target first and asks only that one. A scoring policy (least-outstanding, p2c, latency, usage, cost,
//! hybrid) must know each group's pick to score it, so it asks every group, but *speculatively*: what a group
//! would change (a round robin's cursor) is written to a journal, and only the journal of the candidate the
//! policy chooses is kept ([`Ctx::gather`], [`Ctx::settle`]). A nested round robin therefore advances on
//! exactly the requests it serves.

mod cascade;
pub mod compat;
mod conditional;
mod cost;
mod direct;
mod fallback;
mod hot;
mod hybrid;
mod latency;
mod least_outstanding;
mod p2c;
pub mod predict;
mod quality;
mod round_robin;
pub mod select;
mod sticky;
mod threshold;
mod usage;
mod weighted;

pub use cascade::Cascade;
pub use conditional::Conditional;
pub use cost::CostBased;
pub(crate) use direct::Direct;
pub use fallback::FallbackChain;
pub(crate) use hot::{FastFilter, Reads, Scoreboard};
pub use hybrid::Hybrid;
pub(crate) use hybrid::Terms;
pub use latency::LatencyBased;
pub use least_outstanding::LeastOutstanding;
pub use p2c::PowerOfTwo;
pub use predict::QualityTable;
pub use quality::QualityBar;
pub use round_robin::RoundRobin;
pub use sticky::Sticky;
pub use threshold::Threshold;
pub use usage::UsageBased;
pub use weighted::WeightedRandom;

use crate::keyed_rand::KeyedRand;
use crate::model::{Endpoint, EndpointIdx, Nanos, RequestInfo};
use crate::state::{EndpointState, TrackingConfig};
use std::fmt::Debug;

/// A routing policy: given the live state, choose one endpoint for a request, or none.
///
/// Implementations read state through [`Ctx`] and never mutate endpoint state; the [`crate::Router`] applies
/// feedback. Per-policy mutable state (a round-robin cursor) is read with [`Ctx::cursor`] and moved with
/// [`Ctx::advance`], which journals the move while the policy is asked speculatively.
pub trait Policy: Send + Sync + Debug {
    /// Chooses an eligible endpoint for `req`, or `None` when no target is eligible.
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx>;
}

/// Index of a policy inside a router's policy arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyIdx(pub u16);

/// A resolved target: an endpoint or another policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// An endpoint.
    Endpoint(EndpointIdx),
    /// A policy (group), asked to choose.
    Policy(PolicyIdx),
}

/// A resolved target with its static weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedTarget {
    /// The target.
    pub target: Target,
    /// Weight for weighted selection.
    pub weight: f64,
}

/// A candidate endpoint during one selection: its static weight and a score set by the scorer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cand {
    /// The endpoint.
    pub ep: EndpointIdx,
    /// Static weight (from the target or the endpoint).
    pub weight: f64,
    /// Score (lower is better) or dynamic weight, as the policy uses it.
    pub score: f64,
    /// Where this candidate's journal entries start (see [`Ctx::settle`]): the entries up to the next
    /// candidate's mark are the cursor moves its group would make if it were chosen.
    pub(crate) mark: u32,
}

impl Cand {
    /// A candidate with no journal entries (an endpoint target, or a candidate built outside a selection).
    pub fn new(ep: EndpointIdx, weight: f64, score: f64) -> Self {
        Cand { ep, weight, score, mark: 0 }
    }
}

/// A cursor move a policy would make if its pick is served: (policy, new cursor value).
pub(crate) type JournalEntry = (PolicyIdx, u64);

/// Why an endpoint was filtered out; counted to explain a rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Circuit open.
    CircuitOpen = 0,
    /// Health check failed.
    Unhealthy = 1,
    /// RPM/TPM quota exhausted or throttled by Retry-After.
    QuotaExhausted = 2,
    /// At its concurrency limit.
    AtCapacity = 3,
    /// Context window too small or capability missing.
    Incapable = 4,
    /// Already tried for this request, or a batch endpoint.
    Excluded = 5,
}

/// A fixed-size set of endpoint indices (up to [`crate::MAX_ENDPOINTS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointSet([u64; 4]);

impl EndpointSet {
    /// Adds an endpoint.
    #[inline]
    pub fn insert(&mut self, e: EndpointIdx) {
        let i = e.get();
        self.0[i / 64] |= 1 << (i % 64);
    }
    /// Whether the endpoint is in the set.
    #[inline]
    pub fn contains(&self, e: EndpointIdx) -> bool {
        let i = e.get();
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    /// Number of endpoints in the set.
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }
    /// Adds or removes an endpoint.
    #[inline]
    pub(crate) fn set(&mut self, e: EndpointIdx, member: bool) {
        let (i, bit) = (e.get() / 64, 1u64 << (e.get() % 64));
        self.0[i] = if member { self.0[i] | bit } else { self.0[i] & !bit };
    }
    /// The endpoints in this set or in `other`.
    #[inline]
    pub fn union(self, other: EndpointSet) -> EndpointSet {
        EndpointSet(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }
    /// The endpoints of this set that are not in `other`.
    #[inline]
    pub(crate) fn without(self, other: EndpointSet) -> EndpointSet {
        EndpointSet(std::array::from_fn(|i| self.0[i] & !other.0[i]))
    }
}

/// An endpoint's static limits in the form the hot path wants: no `Option`s (unlimited is `u64::MAX`) and
/// reciprocals instead of divisions. Built once per router; see [`Gate::new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate {
    /// A batch endpoint (never chosen by a policy).
    pub batch: bool,
    /// Whether the endpoint declares capabilities (a request requiring some is checked against them).
    pub has_capabilities: bool,
    /// Context window in tokens.
    pub context: u64,
    /// Requests per quota window.
    pub rpm: u64,
    /// Tokens per quota window.
    pub tpm: u64,
    /// Concurrent requests.
    pub concurrency: u32,
    /// 1 / rpm (0 when unlimited).
    pub inv_rpm: f64,
    /// 1 / tpm (0 when unlimited).
    pub inv_tpm: f64,
    /// 1 / concurrency (1 when unlimited, so the load is the raw in-flight count).
    pub inv_concurrency: f64,
    /// Price per million input tokens.
    pub price_in: f64,
    /// Price per million output tokens.
    pub price_out: f64,
}

impl Gate {
    /// The gate of an endpoint.
    pub fn new(ep: &Endpoint) -> Self {
        let l = &ep.limits;
        Gate {
            batch: ep.batch,
            has_capabilities: !ep.capabilities.is_empty(),
            context: l.context_window.map_or(u64::MAX, u64::from),
            rpm: l.rpm.map_or(u64::MAX, u64::from),
            tpm: l.tpm.unwrap_or(u64::MAX),
            concurrency: l.concurrency.unwrap_or(u32::MAX),
            inv_rpm: l.rpm.map_or(0.0, |r| 1.0 / r.max(1) as f64),
            inv_tpm: l.tpm.map_or(0.0, |t| 1.0 / t.max(1) as f64),
            inv_concurrency: l.concurrency.map_or(1.0, |c| 1.0 / c.max(1) as f64),
            price_in: ep.price.input_per_mtok,
            price_out: ep.price.output_per_mtok,
        }
    }

    /// Fraction of the quota used in the current window, as [`quota_utilisation`] computes it.
    #[inline]
    pub fn quota_utilisation(&self, st: &EndpointState) -> f64 {
        // Through i64: a signed conversion is one instruction, and window sums never reach 2^63. Neither
        // fraction is NaN, so a plain comparison picks the larger.
        let r = st.window_requests() as i64 as f64 * self.inv_rpm;
        let t = st.window_tokens() as i64 as f64 * self.inv_tpm;
        if r > t { r } else { t }
    }

    /// In-flight requests relative to the concurrency limit (the raw count when unlimited).
    #[inline]
    pub fn load(&self, st: &EndpointState) -> f64 {
        st.in_flight as f64 * self.inv_concurrency
    }
}

/// Everything a policy may read while selecting, plus scratch space and keyed randomness.
pub struct Ctx<'a> {
    /// Current time.
    pub now: Nanos,
    /// Static endpoint descriptions.
    pub endpoints: &'a [Endpoint],
    /// Live endpoint state.
    pub states: &'a [EndpointState],
    /// Tracking configuration (circuit settings, default output tokens).
    pub tracking: &'a TrackingConfig,
    /// Static limits per endpoint, in hot-path form.
    pub gates: &'a [Gate],
    /// The fast filter of this selection (see [`FastFilter`]).
    pub(crate) fast: FastFilter<'a>,
    pub(crate) policies: &'a [Box<dyn Policy>],
    pub(crate) counters: &'a mut [u64],
    /// Cursor moves made while a group is asked speculatively (see [`Ctx::settle`]). Its capacity is reserved
    /// when the router is built, so pushing never allocates.
    pub(crate) journal: &'a mut Vec<JournalEntry>,
    /// How many enclosing [`Ctx::gather`]s are asking a group speculatively (0: a pick made now is served).
    pub(crate) speculative: u32,
    pub(crate) scratch: &'a mut Vec<Cand>,
    /// Candidates with their score terms, for the policy currently scoring (hybrid).
    pub(crate) terms: &'a mut Terms,
    /// Random numbers keyed by (router seed, request id, attempt).
    pub rand: KeyedRand,
    pub(crate) exclude: EndpointSet,
    pub(crate) why: [u32; 6],
    pub(crate) depth: u8,
    /// The request's tokens as the context-window check counts them (input + expected output, or input).
    pub(crate) context_tokens: u64,
    /// The request's tokens as the TPM check counts them ([`TrackingConfig::tpm_estimate`]).
    pub(crate) quota_tokens: u64,
}

impl<'a> Ctx<'a> {
    /// Whether endpoint `e` may take `req` now; counts the reason when it may not.
    #[inline(always)]
    pub fn eligible(&mut self, e: EndpointIdx, req: &RequestInfo) -> bool {
        let fast = self.fast;
        self.admits(&fast, e, req)
    }

    /// [`Ctx::eligible`] with this selection's [`FastFilter`] held by the caller, so that a loop over targets
    /// keeps it in registers. Only an endpoint the fast filter does not pass takes the full filter, out of
    /// line; debug builds take it always, which checks the fast filter against [`check`].
    #[inline(always)]
    pub(crate) fn admits(&mut self, fast: &FastFilter<'_>, e: EndpointIdx, req: &RequestInfo) -> bool {
        (!cfg!(debug_assertions) && fast.passes(e)) || self.eligible_full(e, req)
    }

    /// The full filter of [`Ctx::eligible`]: the verdict, and the reason counted when it is negative.
    #[inline(never)]
    fn eligible_full(&mut self, e: EndpointIdx, req: &RequestInfo) -> bool {
        let verdict = self.check_fast(e, req);
        debug_assert_eq!(
            verdict,
            check(self.endpoints, self.states, self.tracking, self.exclude, e, req, self.now),
            "the fast filter agrees with `check`"
        );
        match verdict {
            Ok(()) => true,
            Err(why) => {
                self.why[why as usize] += 1;
                false
            }
        }
    }

    /// [`check`] on the [`Scoreboard`], the precomputed [`Gate`]s and per-request token counts: same verdicts,
    /// fewer branches.
    #[inline(always)]
    fn check_fast(&self, e: EndpointIdx, req: &RequestInfo) -> Result<(), Why> {
        // The common case, an endpoint that passes everything, in one branch on the scoreboard (none at all
        // when its bounds pass every open endpoint). Anything unusual (a circuit not closed, required
        // capabilities, a limit reached) takes the ordered path below, which also names the reason.
        if self.fast.passes(e) {
            return Ok(());
        }
        let (g, st) = (&self.gates[e.get()], &self.states[e.get()]);
        if g.batch || self.exclude.contains(e) {
            return Err(Why::Excluded);
        }
        if !st.circuit_allows(self.now, &self.tracking.circuit) {
            return Err(Why::CircuitOpen);
        }
        if !st.healthy {
            return Err(Why::Unhealthy);
        }
        if self.context_tokens > g.context
            || (!req.required_capabilities.is_empty()
                && (!g.has_capabilities || !has_capabilities(&self.endpoints[e.get()], req)))
        {
            return Err(Why::Incapable);
        }
        if st.throttled_until > self.now
            || st.window_requests() >= g.rpm
            || st.window_tokens().saturating_add(self.quota_tokens) > g.tpm
        {
            return Err(Why::QuotaExhausted);
        }
        if st.in_flight >= g.concurrency {
            return Err(Why::AtCapacity);
        }
        Ok(())
    }

    /// Resolves one target to an eligible endpoint: an endpoint if eligible, or a policy's choice.
    #[inline]
    pub fn resolve(&mut self, t: Target, req: &RequestInfo) -> Option<EndpointIdx> {
        match t {
            Target::Endpoint(e) => self.eligible(e, req).then_some(e),
            Target::Policy(p) => {
                // Cycles are rejected when the router is built; the depth guard is a second safety net.
                if self.depth >= 32 {
                    return None;
                }
                let policies = self.policies;
                self.depth += 1;
                let r = policies[p.0 as usize].select(self, req);
                self.depth -= 1;
                r
            }
        }
    }

    /// Resolves every target and pushes the eligible picks onto the scratch stack. Returns the start of this
    /// call's candidates; the caller reads `candidates(start)` and must call [`Ctx::settle`] with the one it
    /// chose (or `None`) and then [`Ctx::release`] with `start`.
    ///
    /// Groups are asked speculatively: the cursor moves they would make are journaled, not applied, until
    /// [`Ctx::settle`] keeps those of the chosen candidate.
    #[inline]
    pub fn gather(&mut self, targets: &[WeightedTarget], req: &RequestInfo) -> usize {
        let start = self.scratch.len();
        // The fast filter, copied once for the loop rather than once per target (it never changes during a
        // selection).
        let fast = self.fast;
        for wt in targets {
            // Endpoints, the common case, are filtered inline; groups recurse.
            let mark = self.journal.len();
            let picked = match wt.target {
                Target::Endpoint(e) => self.admits(&fast, e, req).then_some(e),
                Target::Policy(_) => {
                    self.speculative += 1;
                    let picked = self.resolve(wt.target, req);
                    self.speculative -= 1;
                    picked
                }
            };
            match picked {
                // A group may pick an endpoint another target already named: keep the first.
                Some(ep)
                    if !(matches!(wt.target, Target::Policy(_))
                        && self.scratch[start..].iter().any(|c| c.ep == ep)) =>
                {
                    self.scratch.push(Cand { ep, weight: wt.weight, score: 0.0, mark: mark as u32 });
                }
                _ => self.journal.truncate(mark),
            }
        }
        start
    }

    /// Keeps the journal entries of the candidate `chosen` (an index into `candidates(start)`) and drops those
    /// of the others. When no enclosing policy is choosing speculatively, the pick will be served: the kept
    /// cursor moves are applied. Call it after choosing and before [`Ctx::release`].
    #[inline]
    pub fn settle(&mut self, start: usize, chosen: Option<usize>) {
        let Some(first) = self.scratch.get(start) else { return };
        let base = first.mark as usize;
        if self.journal.len() == base {
            // No group moved a cursor (the common case): nothing to keep or drop.
            return;
        }
        let (from, to) = match chosen {
            Some(i) => {
                let from = self.scratch[start + i].mark as usize;
                let to = self.scratch.get(start + i + 1).map_or(self.journal.len(), |c| c.mark as usize);
                (from, to)
            }
            None => (base, base),
        };
        if self.speculative == 0 {
            for k in from..to {
                let (p, v) = self.journal[k];
                self.counters[p.0 as usize] = v;
            }
            self.journal.truncate(base);
        } else {
            self.journal.copy_within(from..to, base);
            self.journal.truncate(base + (to - from));
        }
    }

    /// The cursor of policy `p` (a round robin's next position), as of the last served pick.
    #[inline]
    pub fn cursor(&self, p: PolicyIdx) -> u64 {
        self.counters[p.0 as usize]
    }

    /// Moves the cursor of policy `p` to `value` for the pick it is making: at once when that pick will be
    /// served, else in the journal (see [`Ctx::settle`]).
    #[inline]
    pub fn advance(&mut self, p: PolicyIdx, value: u64) {
        if self.speculative == 0 {
            self.counters[p.0 as usize] = value;
        } else {
            debug_assert!(self.journal.len() < self.journal.capacity(), "the journal's reserved capacity suffices");
            self.journal.push((p, value));
        }
    }

    /// The candidates pushed since `start`.
    #[inline]
    pub fn candidates(&mut self, start: usize) -> &mut [Cand] {
        &mut self.scratch[start..]
    }

    /// Pops the candidates pushed since `start`.
    #[inline]
    pub fn release(&mut self, start: usize) {
        self.scratch.truncate(start);
    }

    /// State of endpoint `e`.
    #[inline]
    pub fn state(&self, e: EndpointIdx) -> &EndpointState {
        &self.states[e.get()]
    }

    /// Static description of endpoint `e`.
    #[inline]
    pub fn endpoint(&self, e: EndpointIdx) -> &Endpoint {
        &self.endpoints[e.get()]
    }

    /// Runs the full gather -> score -> select pipeline with the given scorer and selector.
    #[inline]
    pub fn pick(
        &mut self,
        targets: &[WeightedTarget],
        req: &RequestInfo,
        score: impl FnOnce(&Ctx<'_>, &mut [Cand]),
        choose: impl FnOnce(&mut [Cand], &mut KeyedRand) -> Option<usize>,
    ) -> Option<EndpointIdx> {
        let start = self.gather(targets, req);
        let mut cands = std::mem::take(self.scratch);
        score(self, &mut cands[start..]);
        let chosen = choose(&mut cands[start..], &mut self.rand);
        let picked = chosen.map(|i| cands[start + i].ep);
        *self.scratch = cands;
        self.settle(start, chosen);
        self.release(start);
        picked
    }
}

/// The shared eligibility filter: the safety net every policy goes through.
#[inline]
pub fn check(
    endpoints: &[Endpoint],
    states: &[EndpointState],
    tracking: &TrackingConfig,
    exclude: EndpointSet,
    e: EndpointIdx,
    req: &RequestInfo,
    now: Nanos,
) -> Result<(), Why> {
    let ep = &endpoints[e.get()];
    let st = &states[e.get()];
    if ep.batch || exclude.contains(e) {
        return Err(Why::Excluded);
    }
    if !st.circuit_allows(now, &tracking.circuit) {
        return Err(Why::CircuitOpen);
    }
    if !st.healthy {
        return Err(Why::Unhealthy);
    }
    let expected = tracking.tpm_estimate(req);
    if let Some(ctx) = ep.limits.context_window
        && req.input_tokens as u64 + req.expected_output_tokens.unwrap_or(0) as u64 > ctx as u64
    {
        return Err(Why::Incapable);
    }
    if !req.required_capabilities.is_empty() && !has_capabilities(ep, req) {
        return Err(Why::Incapable);
    }
    if st.throttled_until > now
        || ep.limits.rpm.is_some_and(|rpm| st.window_requests() + 1 > rpm as u64)
        || ep.limits.tpm.is_some_and(|tpm| st.window_tokens() + expected > tpm)
    {
        return Err(Why::QuotaExhausted);
    }
    if ep.limits.concurrency.is_some_and(|c| st.in_flight >= c) {
        return Err(Why::AtCapacity);
    }
    Ok(())
}

/// Whether `ep` has every capability `req` requires.
#[inline]
fn has_capabilities(ep: &Endpoint, req: &RequestInfo) -> bool {
    req.required_capabilities.iter().all(|c| ep.capabilities.iter().any(|h| h == c))
}

/// Fraction of the quota used in the current window: the larger of the RPM and TPM fractions (0 if unlimited).
#[inline]
pub fn quota_utilisation(ep: &Endpoint, st: &EndpointState) -> f64 {
    let r = ep.limits.rpm.map_or(0.0, |rpm| st.window_requests() as f64 / rpm.max(1) as f64);
    let t = ep.limits.tpm.map_or(0.0, |tpm| st.window_tokens() as f64 / tpm.max(1) as f64);
    r.max(t)
}
