//! Scheduled faults: outages, latency degradations and error bursts on one endpoint for a window of time.

use router_core::{Duration, ErrorClass};
use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The endpoint refuses every attempt (503 after `reject_latency`) and fails its health checks.
    Outage,
    /// Service times are multiplied by `factor`.
    Degradation,
    /// Attempts fail with `class` at an extra probability `rate`.
    ErrorBurst,
}

/// A `[[faults]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The endpoint affected.
    pub endpoint: String,
    /// What happens.
    pub kind: FaultKind,
    /// When it starts (simulated time since the start of the run).
    pub start: Duration,
    /// How long it lasts.
    pub duration: Duration,
    /// degradation: service-time multiplier (> 0).
    #[serde(default)]
    pub factor: Option<f64>,
    /// error-burst: extra error probability (0..=1).
    #[serde(default)]
    pub rate: Option<f64>,
    /// error-burst: the error class (default `server`).
    #[serde(default)]
    pub class: Option<ErrorClass>,
}

impl FaultSpec {
    /// Semantic checks; `Err((field, message))` relative to this fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.duration.nanos() == 0 {
            return Err(("duration".into(), "expected a positive duration like \"4m\"".into()));
        }
        match self.kind {
            FaultKind::Outage => {
                for (f, set) in
                    [("factor", self.factor.is_some()), ("rate", self.rate.is_some()), ("class", self.class.is_some())]
                {
                    if set {
                        return Err((f.into(), format!("`{f}` does not apply to an outage")));
                    }
                }
            }
            FaultKind::Degradation => match self.factor {
                Some(f) if f.is_finite() && f > 0.0 => {}
                Some(f) => return Err(("factor".into(), format!("expected a positive factor, found {f}"))),
                None => {
                    return Err(("factor".into(), "expected the service-time multiplier, e.g. factor = 3.0".into()));
                }
            },
            FaultKind::ErrorBurst => match self.rate {
                Some(r) if (0.0..=1.0).contains(&r) => {}
                Some(r) => return Err(("rate".into(), format!("expected a probability in 0..=1, found {r}"))),
                None => return Err(("rate".into(), "expected the extra error probability, e.g. rate = 0.3".into())),
            },
        }
        Ok(())
    }
}
