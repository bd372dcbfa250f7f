//! The cascade's escalation (FrugalGPT): after a successful answer from a stage that is not the last, the
//! caller asks a verifier ([`Router::verification`]); when it rejects the answer, [`Router::escalate`] names
//! the next stage. The first attempt's stage is the [`crate::policy::Cascade`] policy's choice.

use super::Router;
use super::attempts::{Attempts, GiveUpReason, NextAttempt};
use super::decide::{Chooser, Scope};
use crate::config::VerifierSpec;
use crate::keyed_rand::KeyedRand;
use crate::model::{EndpointIdx, Nanos, RequestInfo};
use crate::policy::{EndpointSet, Target};

/// A root cascade's stages, compiled: what escalation needs.
#[derive(Debug)]
pub(super) struct CascadePlan {
    /// The stages, cheapest first.
    pub(super) stages: Vec<Target>,
    /// Per endpoint index: the first stage that can route to it (`u16::MAX` for none).
    pub(super) stage_of: Vec<u16>,
    /// The verifier.
    pub(super) verifier: VerifierSpec,
}

impl CascadePlan {
    /// The plan of `stages`, each reaching the endpoints of `reach` (one set per stage), over `n` endpoints.
    pub(super) fn new(stages: Vec<Target>, reach: &[EndpointSet], n: usize, verifier: VerifierSpec) -> Self {
        let stage_of = (0..n)
            .map(|e| reach.iter().position(|r| r.contains(EndpointIdx(e as u16))).map_or(u16::MAX, |s| s as u16))
            .collect();
        CascadePlan { stages, stage_of, verifier }
    }

    /// The stage of endpoint `e`, if any stage reaches it.
    fn stage(&self, e: EndpointIdx) -> Option<usize> {
        self.stage_of.get(e.get()).copied().filter(|&s| s != u16::MAX).map(usize::from)
    }
}

impl Router {
    /// The verifier to consult on an answer `answered_by` gave to `req`: `Some` when the root policy is a
    /// cascade and `answered_by` belongs to a stage that is not the last (a stage is the first whose targets
    /// reach the endpoint); `None` otherwise (the answer is final). A caller that routed the request with a
    /// [`Scope`] whose chooser is not the root does not ask (see [`Router::escalate_in`]).
    pub fn verification(&self, req: &RequestInfo, answered_by: EndpointIdx) -> Option<&VerifierSpec> {
        let _ = req;
        let plan = self.cascade.as_deref()?;
        let stage = plan.stage(answered_by)?;
        (stage + 1 < plan.stages.len()).then_some(&plan.verifier)
    }

    /// The stage (0 = the first, cheapest) of the root cascade that endpoint `e` belongs to; `None` outside a
    /// cascade or for an endpoint no stage reaches (a verifier).
    pub fn cascade_stage(&self, e: EndpointIdx) -> Option<usize> {
        self.cascade.as_deref()?.stage(e)
    }

    /// After the verifier rejected the answer of the latest attempt (`attempts.last`): the first eligible
    /// endpoint of the later stages, in order, never one already tried (`delay` 0, `fallback` true), or
    /// [`NextAttempt::GiveUp`] with [`GiveUpReason::NoEndpoint`] when none is (the caller keeps the answer it
    /// has). Records the attempt in `attempts`; escalations draw nothing from the retry budget and are not
    /// limited by `max_attempts` (though they count towards it for later retries). Outside a cascade, always
    /// [`GiveUpReason::NoEndpoint`].
    pub fn escalate(&mut self, req: &RequestInfo, attempts: &mut Attempts, now: Nanos) -> NextAttempt {
        self.escalate_in(req, attempts, now, &Scope::default())
    }

    /// [`Router::escalate`] for a request decided within `scope` ([`Router::decide_in`]): never to an endpoint
    /// the scope excludes, and only when the scope's chooser is the root (the cascade); a request another
    /// chooser routed is not escalated ([`GiveUpReason::NoEndpoint`]).
    pub fn escalate_in(
        &mut self,
        req: &RequestInfo,
        attempts: &mut Attempts,
        now: Nanos,
        scope: &Scope,
    ) -> NextAttempt {
        if scope.chooser != Chooser::Root {
            return NextAttempt::GiveUp(GiveUpReason::NoEndpoint);
        }
        let Some(plan) = self.cascade.take() else { return NextAttempt::GiveUp(GiveUpReason::NoEndpoint) };
        let from = plan.stage(attempts.last).map_or(plan.stages.len(), |s| s + 1);
        self.advance(now);
        let rand = KeyedRand::new(self.seed, req.id, 0x300 + attempts.count as u64);
        let exclude = attempts.tried.union(scope.excluded);
        let (picked, _) = self.select_with(req, now, exclude, rand, |ctx| {
            plan.stages.get(from..).unwrap_or_default().iter().find_map(|&t| ctx.resolve(t, req))
        });
        self.cascade = Some(plan);
        match picked {
            Some(endpoint) => {
                let fallback = attempts.advance_to(endpoint);
                NextAttempt::Retry { endpoint, delay: 0, fallback }
            }
            None => NextAttempt::GiveUp(GiveUpReason::NoEndpoint),
        }
    }
}
