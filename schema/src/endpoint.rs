//! One `[[endpoints]]` entry: the router's view, the provider model and the upstream, as one struct that
//! the simulator and the gateway both parse.

use crate::dist::DistConfig;
use router_core::{Accuracy, Duration, Endpoint, Limits, Price};
use serde::{Deserialize, Serialize};

/// Per-attempt error probabilities by status class, drawn independently for every attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorRates {
    /// HTTP 429 returned at once (beyond the RPM/TPM limits, which are enforced separately).
    pub rate_limited: f64,
    /// HTTP 500 after part of the service time.
    pub server: f64,
    /// HTTP 503 (overloaded) after part of the service time.
    pub unavailable: f64,
    /// The provider hangs: the attempt only ends by the client's timeout (or after `hang`).
    pub timeout: f64,
}

impl ErrorRates {
    /// Sum of the probabilities.
    pub fn total(&self) -> f64 {
        self.rate_limited + self.server + self.unavailable + self.timeout
    }
}

/// One `[[endpoints]]` entry, read by both tools, in three sections:
///
/// - the router's view (`id` to `batch`): what router-core knows ([`EndpointConfig::router_endpoint`]);
/// - the provider model (`slots` to `batch_turnaround`): how the simulated provider behind it behaves (the
///   simulator runs it; the gateway parses it, so a typo is an error there too, and ignores it);
/// - `upstream`: where the gateway sends the endpoint's traffic (the simulator checks and ignores it).
///
/// In the file the three sections are one flat table, so that one file is both a scenario and a gateway
/// config. `S` is the type of the service-time distributions `ttft` and `tpot`: required by the simulator
/// (the default, `DistConfig<Duration>`), optional for the gateway (`Option<DistConfig<Duration>>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig<S = DistConfig<Duration>> {
    // The router's view.
    /// Unique id.
    pub id: String,
    /// Provider name (informational).
    #[serde(default)]
    pub provider: String,
    /// Model name (informational).
    #[serde(default)]
    pub model: String,
    /// Capability tier (0 = smallest).
    #[serde(default)]
    pub tier: u8,
    /// Price per million tokens.
    #[serde(default)]
    pub price: Price,
    /// RPM / TPM quotas (enforced by the provider model as 429s, and known to the router), the gateway's
    /// concurrency cap and the context window.
    #[serde(default)]
    pub limits: Limits,
    /// Whether the gateway is configured with this endpoint's RPM/TPM quotas (default true). With false the
    /// provider still enforces them, and the router learns of them only from 429s and their Retry-After.
    #[serde(default = "yes")]
    pub quota_aware: bool,
    /// Tags for conditional routing.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Capabilities (e.g. "vision").
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Static weight for weighted routing.
    #[serde(default = "one")]
    pub weight: f64,
    /// An asynchronous batch endpoint, fed only by batching.
    #[serde(default)]
    pub batch: bool,
    /// Accuracy per task class, `quality = { default = 0.8, code = 0.62 }` (see `router_core::quality`).
    #[serde(default, skip_serializing_if = "Accuracy::is_empty")]
    pub quality: Accuracy,
    // The provider model.
    /// Requests the provider serves at once; more wait in its queue (default 64).
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// Queue capacity beyond the slots: absent = unbounded FIFO, N = bounded (503 when full), 0 = no queue.
    #[serde(default)]
    pub queue_capacity: Option<u32>,
    /// Time to first token once a slot is free.
    pub ttft: S,
    /// Time per output token after the first.
    pub tpot: S,
    /// Load-dependent slowdown: points `[utilisation, factor]` (utilisation = busy slots / slots when service
    /// starts), linearly interpolated; service time is multiplied by the factor. Empty = no slowdown.
    #[serde(default)]
    pub slowdown: Vec<[f64; 2]>,
    /// Per-attempt error probabilities.
    #[serde(default)]
    pub errors: ErrorRates,
    /// A failed attempt (500/503) ends after this fraction of its drawn service time (default 0.5).
    #[serde(default = "half")]
    pub fail_after: f64,
    /// How long a hung attempt lasts when the client has no timeout (default 10m).
    #[serde(default = "default_hang")]
    pub hang: Duration,
    /// Retry-After sent with a 429 (default 2s).
    #[serde(default = "default_retry_after")]
    pub retry_after: Duration,
    /// Latency of an immediate rejection (429, 503 on a full queue, outage) (default 50ms).
    #[serde(default = "default_reject_latency")]
    pub reject_latency: Duration,
    /// Whether failed attempts bill their input tokens (default false).
    #[serde(default)]
    pub bill_failed_input: bool,
    /// Batch endpoints: time from a batch's release to its completion.
    #[serde(default)]
    pub batch_turnaround: Option<DistConfig<Duration>>,
    // The upstream.
    /// Where `routesim-gateway` sends this endpoint's traffic (checked here, used only by the gateway), so
    /// that one file is both a scenario and a gateway config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<router_core::UpstreamConfig>,
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn default_slots() -> u32 {
    64
}
fn default_hang() -> Duration {
    Duration::from_secs(600)
}
fn default_retry_after() -> Duration {
    Duration::from_secs(2)
}
fn default_reject_latency() -> Duration {
    Duration::from_millis(50)
}

impl<S> EndpointConfig<S> {
    /// The same endpoint with its service-time distributions passed through `f` (for example, made optional
    /// for the gateway: `endpoint.map_service_times(Some)`).
    pub fn map_service_times<T>(self, mut f: impl FnMut(S) -> T) -> EndpointConfig<T> {
        let EndpointConfig {
            ttft,
            tpot,
            id,
            provider,
            model,
            tier,
            price,
            limits,
            quota_aware,
            tags,
            capabilities,
            weight,
            batch,
            quality,
            slots,
            queue_capacity,
            slowdown,
            errors,
            fail_after,
            hang,
            retry_after,
            reject_latency,
            bill_failed_input,
            batch_turnaround,
            upstream,
        } = self;
        EndpointConfig {
            ttft: f(ttft),
            tpot: f(tpot),
            id,
            provider,
            model,
            tier,
            price,
            limits,
            quota_aware,
            tags,
            capabilities,
            weight,
            batch,
            quality,
            slots,
            queue_capacity,
            slowdown,
            errors,
            fail_after,
            hang,
            retry_after,
            reject_latency,
            bill_failed_input,
            batch_turnaround,
            upstream,
        }
    }

    /// The router's view of this endpoint (without the RPM/TPM quotas when it is not `quota_aware`).
    pub fn router_endpoint(&self) -> Endpoint {
        Endpoint {
            id: self.id.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            tier: self.tier,
            price: self.price,
            limits: if self.quota_aware { self.limits } else { Limits { rpm: None, tpm: None, ..self.limits } },
            tags: self.tags.clone(),
            capabilities: self.capabilities.clone(),
            weight: self.weight,
            batch: self.batch,
            quality: self.quality.clone(),
        }
    }
}

impl EndpointConfig {
    /// Semantic checks of the provider model beyond types; `Err((field, message))` relative to this endpoint.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let prob = |name: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err((format!("errors.{name}"), format!("expected a probability in 0..=1, found {p}")))
            }
        };
        prob("rate_limited", self.errors.rate_limited)?;
        prob("server", self.errors.server)?;
        prob("unavailable", self.errors.unavailable)?;
        prob("timeout", self.errors.timeout)?;
        if self.errors.total() > 1.0 {
            return Err((
                "errors".into(),
                format!("expected probabilities summing to at most 1, found {}", self.errors.total()),
            ));
        }
        if self.slots == 0 && !self.batch {
            return Err(("slots".into(), "expected at least one slot".into()));
        }
        if !(0.0..=1.0).contains(&self.fail_after) {
            return Err(("fail_after".into(), format!("expected a fraction in 0..=1, found {}", self.fail_after)));
        }
        self.ttft.validate().map_err(|(f, m)| (format!("ttft.{f}"), m))?;
        self.tpot.validate().map_err(|(f, m)| (format!("tpot.{f}"), m))?;
        let mut last_u = -1.0;
        for (i, [u, f]) in self.slowdown.iter().copied().enumerate() {
            if !(0.0..=1.0).contains(&u) || u <= last_u {
                return Err((
                    format!("slowdown[{i}]"),
                    format!("expected utilisations increasing within 0..=1, found {u}"),
                ));
            }
            if !(f.is_finite() && f > 0.0) {
                return Err((format!("slowdown[{i}]"), format!("expected a positive factor, found {f}")));
            }
            last_u = u;
        }
        match (&self.batch_turnaround, self.batch) {
            (Some(d), true) => d.validate().map_err(|(f, m)| (format!("batch_turnaround.{f}"), m))?,
            (None, true) => {
                return Err((
                    "batch_turnaround".into(),
                    "expected a completion-time distribution for a batch endpoint".into(),
                ));
            }
            (Some(_), false) => {
                return Err((
                    "batch_turnaround".into(),
                    "only batch endpoints (batch = true) take a batch_turnaround".into(),
                ));
            }
            (None, false) => {}
        }
        Ok(())
    }
}
