//! Answer quality within one run: the per-request state the engine keeps for it (the router-visible
//! estimate, the oracle's scope) and the questions it asks the outcome source.
//!
//! Only runs of a scenario with quality on have one: the event loop is compiled twice (`Sim<_, true>` and
//! `Sim<_, false>`), and the run without quality has no trace of this module on its path.

use crate::quality::{Asked, Outcomes, QualityKeys, RealCall, Verifier, acceptable, endpoint_key};
use router_core::policy::EndpointSet;
use router_core::{EndpointIdx, Scope};

/// What a run with quality on keeps besides the engine's own state.
pub(super) struct QualityRun<'m> {
    outcomes: &'m dyn Outcomes,
    keys: QualityKeys,
    /// Whether routers see an estimate (the source has one).
    estimates: bool,
    /// Whether the source records real calls (a matrix log).
    real_calls: bool,
    /// Whether the policy is the `oracle`: each request is scoped to the endpoints that answer it acceptably.
    oracle: bool,
    /// Whether the policy is a `cascade` (a root policy only): answers may need a verifier's verdict.
    cascade: bool,
    /// Per slab entry: the estimate of the request it holds.
    estimate: Vec<Option<f64>>,
    /// Per slab entry (oracle only): the scope of the request it holds.
    scope: Vec<Scope>,
    /// Every endpoint's score of one request (oracle only).
    scratch: Vec<Option<f64>>,
    /// [`endpoint_key`] of every endpoint's id (the verifier stream's key).
    endpoint_keys: Vec<u64>,
}

impl<'m> QualityRun<'m> {
    /// The quality state of a run of replication `replication` over the endpoints of ids `endpoint_ids`.
    pub(super) fn new(
        outcomes: &'m dyn Outcomes,
        seed: u64,
        replication: u32,
        endpoint_ids: &[String],
        oracle: bool,
        cascade: bool,
    ) -> Self {
        let endpoints = endpoint_ids.len();
        QualityRun {
            endpoint_keys: endpoint_ids.iter().map(|id| endpoint_key(id)).collect(),
            outcomes,
            keys: QualityKeys::new(seed, replication),
            estimates: outcomes.has_estimate(),
            real_calls: outcomes.has_real_calls(),
            oracle,
            cascade,
            estimate: Vec::new(),
            scope: Vec::new(),
            scratch: vec![None; endpoints],
        }
    }

    /// Whether the run's policy is the oracle.
    #[inline]
    pub(super) fn oracle(&self) -> bool {
        self.oracle
    }

    /// Whether the run's policy is a cascade.
    #[inline]
    pub(super) fn cascade(&self) -> bool {
        self.cascade
    }

    /// A new request in slab entry `r`: draws its estimate and, for the oracle, its scope (the endpoints
    /// that would not answer it acceptably are excluded; when none would, none is, and the oracle takes the
    /// cheapest).
    #[inline]
    pub(super) fn arrive(&mut self, r: u32, asked: Asked) {
        // Inline, so that the common case (nothing to keep per request: the answer's score is drawn when it
        // completes) costs a test and no call.
        if self.estimates || self.oracle {
            self.keep(r, asked);
        }
    }

    /// [`QualityRun::arrive`] when the run keeps an estimate or a scope per request.
    fn keep(&mut self, r: u32, asked: Asked) {
        let r = r as usize;
        if self.estimate.len() <= r {
            self.estimate.resize(r + 1, None);
            if self.oracle {
                self.scope.resize(r + 1, Scope::default());
            }
        }
        self.estimate[r] = if self.estimates { self.outcomes.estimate(&self.keys, asked) } else { None };
        if self.oracle {
            self.outcomes.scores(&self.keys, asked, &mut self.scratch);
            let mut excluded = EndpointSet::default();
            for (e, s) in self.scratch.iter().enumerate() {
                if !s.is_some_and(acceptable) {
                    excluded.insert(EndpointIdx(e as u16));
                }
            }
            let any = self.scratch.iter().any(|s| s.is_some_and(acceptable));
            self.scope[r] = Scope { excluded: if any { excluded } else { EndpointSet::default() }, ..Scope::default() };
        }
    }

    /// The estimate of the request in slab entry `r`.
    #[inline]
    pub(super) fn estimate(&self, r: u32) -> Option<f64> {
        self.estimate.get(r as usize).copied().flatten()
    }

    /// The oracle's scope of the request in slab entry `r`.
    #[inline]
    pub(super) fn scope(&self, r: u32) -> Scope {
        self.scope.get(r as usize).copied().unwrap_or_default()
    }

    /// The real call of `endpoint` on `asked` (tokens and cost), when the source records it (a matrix log).
    #[inline]
    pub(super) fn real_call(&self, asked: Asked, endpoint: EndpointIdx) -> Option<RealCall> {
        if self.real_calls { self.outcomes.real_call(asked, endpoint) } else { None }
    }

    /// The score of `endpoint`'s answer to `asked`.
    #[inline]
    pub(super) fn score(&self, asked: Asked, endpoint: EndpointIdx) -> Option<f64> {
        self.outcomes.score(&self.keys, asked, endpoint)
    }

    /// Whether a cascade verifier of `precision` and `recall` passes `endpoint`'s answer to `asked`. An
    /// answer of unknown quality passes (nothing to judge it by); the base rate behind the precision is the
    /// endpoint's stated accuracy on the class (0.5 when unknown).
    pub(super) fn verifier_passes(&self, asked: Asked, endpoint: EndpointIdx, precision: f64, recall: f64) -> bool {
        let Some(score) = self.score(asked, endpoint) else { return true };
        let base_rate = self.outcomes.accuracy(asked.class, endpoint).unwrap_or(0.5);
        let u = self.keys.verifier_uniform(asked.id, self.endpoint_keys[endpoint.get()]);
        Verifier::new(precision, recall, base_rate).passes(acceptable(score), u)
    }
}
