//! The routers of one run: the policy's, and in a canary run the canary policy's beside it, each request
//! routed by the router of its arm, as the gateway's `[rollout] canary` does (one router per arm).
//!
//! A run without a canary holds only the control router, and [`Routers::for_request`] is then one branch
//! that is never taken. In a canary run, request `id` is in the canary when its point under the canary
//! policy's name ([`router_core::canary::CanaryHash::point_of_id`]) is below the fraction: the arm the
//! gateway picks with `by = "request"` for the same id, so a simulated canary splits the traffic as the
//! gateway's log of the same requests does. Every call about a request (decide, dispatch, result, next
//! attempt, cascade verification) goes to its arm's router; health checks go to both. A [`Canary`] is
//! checked as the gateway checks `[rollout] canary` (another policy, one that does not batch), and no arm may
//! be the oracle.

use crate::scenario::Compiled;
use router_core::canary::CanaryHash;
use router_core::{EndpointIdx, Nanos, PolicyKind, Router, Timeouts};

/// A request's arm in a canary run (router-core's, shared with the gateway).
pub use router_core::canary::Arm;

/// A canary beside a run's policy, as the gateway's `[rollout] canary = { policy, fraction, by = "request" }`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Canary {
    /// The canary policy's index in the scenario.
    pub policy: usize,
    /// Share of the hash space sent to the canary, in [0, 1].
    pub fraction: f64,
}

/// Why a canary run cannot be made.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CanaryError {
    /// The fraction is not a share in [0, 1].
    #[error("the canary fraction must be a share in [0, 1], found {0}")]
    Fraction(f64),
    /// The canary names the run's own policy.
    #[error("`{0}` is both the control and the canary: a canary names another policy")]
    SamePolicy(String),
    /// The canary policy batches (the gateway refuses it too).
    #[error("`{0}` batches deferrable requests: a canary policy cannot batch (the gateway refuses it too)")]
    Batches(String),
    /// One of the arms is the oracle, which no gateway can serve.
    #[error("`{0}` is the oracle (it knows each request's outcome): it cannot be an arm of a canary")]
    Oracle(String),
}

impl Canary {
    /// Whether this canary can run beside `policy` in `model` (as the gateway validates `[rollout] canary`,
    /// and no arm the oracle).
    pub(super) fn check(&self, model: &Compiled, policy: usize) -> Result<(), CanaryError> {
        let names = model.policy_names();
        let cfg = |p: usize| &model.router_configs[p].policy;
        if !(self.fraction.is_finite() && (0.0..=1.0).contains(&self.fraction)) {
            return Err(CanaryError::Fraction(self.fraction));
        }
        if self.policy == policy {
            return Err(CanaryError::SamePolicy(names[policy].clone()));
        }
        if cfg(self.policy).batching.is_some() {
            return Err(CanaryError::Batches(names[self.policy].clone()));
        }
        if let Some(&p) = [policy, self.policy].iter().find(|&&p| cfg(p).kind == PolicyKind::Oracle) {
            return Err(CanaryError::Oracle(names[p].clone()));
        }
        Ok(())
    }
}

/// The canary arm of a run: its router, its share of the hash space and its attempt timeouts.
pub(super) struct CanaryArm {
    router: Router,
    hash: CanaryHash,
    fraction: f64,
    timeouts: Timeouts,
}

impl CanaryArm {
    /// The canary arm routed by `router` (the canary policy's), taking the requests whose point is below
    /// `fraction` (in [0, 1]); `timeouts`: its attempt timeouts in force (the policy's, else the client's).
    pub(super) fn new(router: Router, fraction: f64, timeouts: Timeouts) -> Self {
        debug_assert!((0.0..=1.0).contains(&fraction), "fraction {fraction}");
        let hash = CanaryHash::new(router.name());
        CanaryArm { router, hash, fraction, timeouts }
    }

    #[inline]
    fn takes(&self, id: u64) -> bool {
        self.hash.point_of_id(id) < self.fraction
    }
}

/// The control router and, in a canary run, the canary arm.
pub(super) struct Routers {
    control: Router,
    canary: Option<Box<CanaryArm>>,
}

impl From<Router> for Routers {
    fn from(control: Router) -> Self {
        Routers { control, canary: None }
    }
}

impl Routers {
    /// The control router with `canary` beside it.
    pub(super) fn with_canary(control: Router, canary: CanaryArm) -> Self {
        Routers { control, canary: Some(Box::new(canary)) }
    }

    /// The arm of request `id`.
    #[inline(always)]
    pub(super) fn arm(&self, id: u64) -> Arm {
        match &self.canary {
            Some(c) if c.takes(id) => Arm::Canary,
            _ => Arm::Control,
        }
    }

    /// Whether a canary arm runs beside the control.
    pub(super) fn has_canary(&self) -> bool {
        self.canary.is_some()
    }

    /// The router of request `id`'s arm. `PLAIN`: the caller knows there is no canary (the control, without
    /// a look).
    #[inline(always)]
    pub(super) fn for_request<const PLAIN: bool>(&mut self, id: u64) -> &mut Router {
        debug_assert!(!PLAIN || self.canary.is_none(), "a plain run has no canary");
        if PLAIN {
            return &mut self.control;
        }
        match &mut self.canary {
            Some(c) if c.takes(id) => &mut c.router,
            _ => &mut self.control,
        }
    }

    /// The canary's attempt timeouts when request `id` is in the canary arm (`None`: the control's, which
    /// the run keeps itself).
    /// `PLAIN`: the caller knows there is no canary (`None` without a look).
    #[inline(always)]
    pub(super) fn canary_timeouts<const PLAIN: bool>(&self, id: u64) -> Option<Timeouts> {
        if PLAIN {
            return None;
        }
        match &self.canary {
            Some(c) if c.takes(id) => Some(c.timeouts),
            _ => None,
        }
    }

    /// The control router (the run's policy; the only one that may batch).
    #[inline(always)]
    pub(super) fn control(&mut self) -> &mut Router {
        &mut self.control
    }

    /// The control router, read-only.
    pub(super) fn control_ref(&self) -> &Router {
        &self.control
    }

    /// A health check's result for endpoint `ep`, fed to every router (as the gateway feeds every arm).
    pub(super) fn on_health(&mut self, ep: EndpointIdx, ok: bool, now: Nanos) {
        self.control.on_health(ep, ok, now);
        if let Some(c) = &mut self.canary {
            c.router.on_health(ep, ok, now);
        }
    }

    /// The run's name: the control policy's, and `+ canary NAME (F%)` in a canary run (F to a tenth).
    pub(super) fn name(&self) -> String {
        match &self.canary {
            None => self.control.name().to_string(),
            // The percentage to a tenth (46.4, not 46.400000000000006).
            Some(c) => {
                let percent = (1000.0 * c.fraction).round() / 10.0;
                format!("{} + canary {} ({percent}%)", self.control.name(), c.router.name())
            }
        }
    }

    /// Spend on endpoint `ep` as the routers tracked it (both arms' in a canary run).
    pub(super) fn spend_usd(&self, ep: EndpointIdx) -> f64 {
        let control = self.control.state(ep).spend_usd;
        match &self.canary {
            None => control,
            Some(c) => control + c.router.state(ep).spend_usd,
        }
    }

    /// Applies `f` to the router of each arm (the control's, then the canary's).
    pub(super) fn each_mut(&mut self, mut f: impl FnMut(&mut Router)) {
        f(&mut self.control);
        if let Some(c) = &mut self.canary {
            f(&mut c.router);
        }
    }

    /// Whether `f` holds for the router of either arm.
    pub(super) fn any(&self, f: impl Fn(&Router) -> bool) -> bool {
        f(&self.control) || self.canary.as_ref().is_some_and(|c| f(&c.router))
    }
}
