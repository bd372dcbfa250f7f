//! LiteLLM cooldowns ([`crate::CooldownConfig`]), which replace the circuit breaker: when a failure cools a
//! deployment down.

use crate::model::{ErrorClass, Nanos};
use crate::state::EndpointState;

/// A compiled [`crate::CooldownConfig`].
#[derive(Debug)]
pub(super) struct Cooldown {
    pub(super) allowed_fails: Option<u32>,
    pub(super) time: Nanos,
}

/// LiteLLM's "all requests failed with reasonable traffic" floor (`SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD`).
const SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD: u64 = 1000;
/// LiteLLM's `DEFAULT_FAILURE_THRESHOLD_PERCENT`.
const DEFAULT_FAILURE_THRESHOLD_PERCENT: f64 = 0.5;

impl Cooldown {
    /// Whether a failure of `class` at `now` cools the endpoint down (`_is_cooldown_required` and
    /// `_should_cooldown_deployment`); counts the failure against `allowed_fails`.
    pub(super) fn should_cool(&self, st: &mut EndpointState, class: ErrorClass, now: Nanos) -> bool {
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
