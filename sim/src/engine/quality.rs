//! Answer quality within one run: the per-request state the engine keeps for it (the router-visible
//! estimate, the oracle's scope) and the questions it asks the outcome source.
//!
//! Only runs of a scenario with quality on have one: the event loop is compiled with and without it
//! (`Sim<_, true, _>` and `Sim<_, false, _>`), and the run without quality has no trace of this module on its
//! path.

use crate::quality::{Asked, Outcomes, QualityKeys, QualityModel, RealCall, Verifier, acceptable, endpoint_key};
use router_core::policy::EndpointSet;
use router_core::{EndpointIdx, Scope};

/// One request's outcomes drawn so far (the item-response model), kept where every run that simulates the
/// request can read them: [`super::run_lockstep`] lends each chunk of arrivals to its runs in turn, and the
/// outcome of an endpoint on a request is the same in every run of the replication (common random numbers),
/// so the runs after the first that route the request to the same endpoint read it instead of drawing it.
/// A run copies the chunk's entry into its own slab when the request arrives (the chunk is read in order
/// then, which the caches follow; at completion, in completion order, it would miss them) and writes it back
/// when it drew something new.
#[derive(Clone, Copy, Debug)]
pub(super) struct Drawn {
    /// The request's difficulty, NaN until drawn.
    difficulty: f64,
    /// Bit `e`: endpoint `e`'s outcome is drawn (endpoints 0 to 31; the others are drawn each time: 32-bit
    /// masks keep the entry at 16 bytes, which every run copies once per request).
    known: u32,
    /// Bit `e`: endpoint `e` answers the request acceptably (meaningful where `known` is set).
    acceptable: u32,
}

impl Default for Drawn {
    fn default() -> Self {
        Drawn { difficulty: f64::NAN, known: 0, acceptable: 0 }
    }
}

impl Drawn {
    /// A request whose difficulty `difficulty` is drawn and no outcome yet.
    pub(super) fn of_difficulty(difficulty: f64) -> Self {
        Drawn { difficulty, known: 0, acceptable: 0 }
    }

    /// [`Outcomes::score`] of the model, read from here when drawn before and kept here when not.
    #[inline(always)]
    fn score(&mut self, model: &QualityModel, keys: &QualityKeys, asked: Asked, endpoint: EndpointIdx) -> Option<f64> {
        let theta = model.theta(asked.class, endpoint)?;
        let e = endpoint.get();
        let bit = 1u32.checked_shl(e as u32).unwrap_or(0);
        if self.known & bit != 0 {
            return Some(f64::from(u8::from(self.acceptable & bit != 0)));
        }
        if self.difficulty.is_nan() {
            self.difficulty = keys.difficulty(asked.id);
        }
        // No branch on the outcome: it is a coin flip, which a branch would mispredict half the time.
        let accepted = model.accepts(keys, asked, e, theta, self.difficulty);
        self.known |= bit;
        self.acceptable |= bit & u32::from(accepted).wrapping_neg();
        Some(f64::from(u8::from(accepted)))
    }
}

/// The outcome source as the item-response model, when it is one: the engine then draws its scores inline
/// (no dynamic call) and shares them between runs ([`Drawn`]), the same scores [`Outcomes::score`] gives.
pub(super) fn item_response(outcomes: &dyn Outcomes) -> Option<&QualityModel> {
    (outcomes as &dyn std::any::Any).downcast_ref()
}

/// What a run with quality on keeps besides the engine's own state.
pub(super) struct QualityRun<'m> {
    outcomes: &'m dyn Outcomes,
    /// The same source when it is the item-response model (scores drawn inline, and kept in a [`Drawn`]).
    model: Option<&'m QualityModel>,
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
    /// Per slab entry (item-response model only): the outcomes drawn so far of the request it holds.
    drawn: Vec<Drawn>,
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
            model: item_response(outcomes),
            keys: QualityKeys::new(seed, replication),
            estimates: outcomes.has_estimate(),
            real_calls: outcomes.has_real_calls(),
            oracle,
            cascade,
            estimate: Vec::new(),
            drawn: Vec::new(),
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

    /// Whether scores come from the item-response model (whose draws a [`Drawn`] can keep).
    #[inline(always)]
    pub(super) fn item_response(&self) -> bool {
        self.model.is_some()
    }

    /// A new request in slab entry `r`: keeps its outcomes drawn so far by other runs (`shared`, see
    /// [`Drawn`]; `None`: none) and draws its estimate and, for the oracle, its scope (the endpoints that
    /// would not answer it acceptably are excluded; when none would, none is, and the oracle takes the
    /// cheapest).
    #[inline(always)]
    pub(super) fn arrive(&mut self, r: u32, asked: Asked, shared: Option<Drawn>) {
        if self.model.is_some() {
            let drawn = shared.unwrap_or_default();
            match self.drawn.get_mut(r as usize) {
                Some(slot) => *slot = drawn,
                None => self.grow_drawn(r, drawn),
            }
        }
        // Inline, so that the common case (no estimate, no oracle scope to keep) costs a test and no call.
        if self.estimates || self.oracle {
            self.keep(r, asked);
        }
    }

    /// [`QualityRun::arrive`] into a new slab entry.
    #[cold]
    fn grow_drawn(&mut self, r: u32, drawn: Drawn) {
        self.drawn.resize(r as usize + 1, Drawn::default());
        self.drawn[r as usize] = drawn;
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

    /// The score of `endpoint`'s answer to `asked`, the request in slab entry `r`, and the request's
    /// outcomes drawn so far when this drew a new one (to share with the other runs, see [`Drawn`]).
    #[inline(always)]
    pub(super) fn score(&mut self, r: u32, asked: Asked, endpoint: EndpointIdx) -> (Option<f64>, Option<Drawn>) {
        match self.model {
            Some(model) => {
                let drawn = &mut self.drawn[r as usize];
                let known = drawn.known;
                let score = drawn.score(model, &self.keys, asked, endpoint);
                (score, (drawn.known != known).then_some(*drawn))
            }
            None => (self.outcomes.score(&self.keys, asked, endpoint), None),
        }
    }

    /// Whether a cascade verifier of `precision` and `recall` passes `endpoint`'s answer to `asked`. An
    /// answer of unknown quality passes (nothing to judge it by); the base rate behind the precision is the
    /// endpoint's stated accuracy on the class (0.5 when unknown).
    /// Also returns the request's outcomes drawn so far when this drew a new one (see
    /// [`QualityRun::score`]).
    pub(super) fn verifier_passes(
        &mut self,
        r: u32,
        asked: Asked,
        endpoint: EndpointIdx,
        precision: f64,
        recall: f64,
    ) -> (bool, Option<Drawn>) {
        let (score, drawn) = self.score(r, asked, endpoint);
        let Some(score) = score else { return (true, drawn) };
        let base_rate = self.outcomes.accuracy(asked.class, endpoint).unwrap_or(0.5);
        let u = self.keys.verifier_uniform(asked.id, self.endpoint_keys[endpoint.get()]);
        (Verifier::new(precision, recall, base_rate).passes(acceptable(score), u), drawn)
    }
}
