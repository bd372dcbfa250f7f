//! Deciding a new request: the cache and batch short cuts, then the scope's chooser over the filtered
//! endpoints; and the move of every endpoint's sliding windows that precedes each decision.

use super::Router;
use crate::keyed_rand::KeyedRand;
use crate::model::{EndpointIdx, Nanos, RequestInfo};
use crate::policy::{Ctx, EndpointSet, PolicyIdx, Why, check};
use crate::resilience::BatchTicket;

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

impl Router {
    /// Decides what to do with a new request at `now`.
    pub fn decide(&mut self, req: &RequestInfo, now: Nanos) -> Decision {
        // The default scope known here, its checks fold away.
        self.decide_scoped(req, now, &Scope::default())
    }

    /// [`Router::decide`] within `scope`: its chooser picks among the endpoints it does not exclude. A
    /// deferrable request is batched only when the batch endpoint is in scope.
    pub fn decide_in(&mut self, req: &RequestInfo, now: Nanos, scope: &Scope) -> Decision {
        self.decide_scoped(req, now, scope)
    }

    /// The body of [`Router::decide_in`], inlined into it and into [`Router::decide`].
    #[inline(always)]
    fn decide_scoped(&mut self, req: &RequestInfo, now: Nanos, scope: &Scope) -> Decision {
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
    /// were not. Inlined into its two callers (a new request, a retry), so that a direct decision runs in the
    /// caller's frame.
    #[inline(always)]
    pub(super) fn choose(
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

    /// The endpoint policy `root` picks for `req` at `now`, `exclude` filtered out, and the filter's counts of
    /// why others were not picked. The root policy (`root == 0`) is decided directly when it can be
    /// ([`Router::select_direct`]).
    #[inline]
    pub(super) fn select(
        &mut self,
        root: usize,
        req: &RequestInfo,
        now: Nanos,
        exclude: EndpointSet,
        rand: KeyedRand,
    ) -> (Option<EndpointIdx>, [u32; 6]) {
        if root == 0
            && self.direct.is_some()
            && let Some(decided) = self.select_direct(req, now, exclude, rand)
        {
            // Debug builds decide the general way too: the same pick and the same counts.
            #[cfg(debug_assertions)]
            assert_eq!(
                decided,
                self.select_general(0, req, now, exclude, rand),
                "the direct decision is the general one"
            );
            return decided;
        }
        self.select_general(root, req, now, exclude, rand)
    }

    /// [`Router::select`] through the root's [`crate::policy::Direct`] form: `None` when the router has none or
    /// it declines (the fast filter does not settle every target).
    #[inline(always)]
    fn select_direct(
        &mut self,
        req: &RequestInfo,
        now: Nanos,
        exclude: EndpointSet,
        rand: KeyedRand,
    ) -> Option<(Option<EndpointIdx>, [u32; 6])> {
        if self.compat.as_ref().is_some_and(|c| !c.latency_groups.is_empty()) {
            self.latency_placeholders(req, now);
        }
        self.board.flush(&self.gates, &self.states);
        let direct = self.direct.as_mut()?;
        let context_tokens = req.input_tokens as u64 + req.expected_output_tokens.unwrap_or(0) as u64;
        let quota_tokens = self.tracking.tpm_estimate(req);
        let fast = self.board.filter(exclude, !req.required_capabilities.is_empty(), context_tokens, quota_tokens, now);
        direct.select(&fast, &self.states, exclude, req, rand)
    }

    /// [`Router::select`] through the policy's own `select`, on a selection context. Never inlined: the
    /// direct decision's callers keep a small frame.
    #[inline(never)]
    pub(super) fn select_general(
        &mut self,
        root: usize,
        req: &RequestInfo,
        now: Nanos,
        exclude: EndpointSet,
        rand: KeyedRand,
    ) -> (Option<EndpointIdx>, [u32; 6]) {
        self.select_with(req, now, exclude, rand, |ctx| {
            let policies = ctx.policies;
            policies[root].select(ctx, req)
        })
    }

    /// Runs `choose` on a selection context for `req` at `now` with `exclude` filtered out: what
    /// [`Router::select`] does with a policy, open to another chooser (a cascade's escalation).
    #[inline]
    pub(super) fn select_with(
        &mut self,
        req: &RequestInfo,
        now: Nanos,
        exclude: EndpointSet,
        rand: KeyedRand,
        choose: impl FnOnce(&mut Ctx<'_>) -> Option<EndpointIdx>,
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
        let picked = choose(&mut ctx);
        debug_assert!(ctx.journal.is_empty(), "every speculative cursor move is settled by its chooser");
        (picked, ctx.why)
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
    #[inline(always)]
    pub(super) fn advance(&mut self, now: Nanos) {
        if now >= self.next_tick {
            self.tick(now);
        }
    }

    /// The walk of [`Router::advance`] when a boundary has passed: out of line, so that a decision between
    /// boundaries pays one comparison.
    #[cold]
    #[inline(never)]
    fn tick(&mut self, now: Nanos) {
        let mut next = Nanos::MAX;
        for s in &mut self.states {
            s.advance(now);
            next = next.min(s.next_boundary());
        }
        self.next_tick = self.idle_tick.map_or(next, |every| now.saturating_add(every));
        self.board.refresh_all(&self.gates, &self.states);
    }
}
