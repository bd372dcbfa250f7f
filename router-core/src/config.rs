//! Router configuration as users write it (TOML or JSON), and the errors that invalid configuration gives.
//!
//! A [`RouterConfig`] is the endpoints, one root [`PolicySpec`] and any number of named groups (policies that
//! other policies target). Every spec is checked when the [`crate::Router`] is built; an error names the field
//! path and what was expected, so a user can fix it without reading the source.

use crate::condition::RawValue;
use crate::duration::Duration;
use crate::model::{Endpoint, ErrorClass, ErrorMatch};
use crate::quality::QualityConfig;
use crate::state::TrackingConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The kinds of policy. Each is a type in [`crate::policy`]; `routesim policies` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Rotate through the eligible targets.
    RoundRobin,
    /// Random, proportional to static weights.
    Weighted,
    /// Fewest requests in flight.
    LeastOutstanding,
    /// Power of two choices on peak-EWMA load.
    P2c,
    /// Lowest latency average, randomised within a tolerance buffer.
    Latency,
    /// Quota headroom, with tapering thresholds and complexity tiers.
    Usage,
    /// Cheapest endpoint able to serve the request.
    Cost,
    /// Weighted score over cost, latency, load and quota headroom.
    Hybrid,
    /// Rules on request metadata choosing a target.
    Conditional,
    /// Consistent hashing of a request key: the same key keeps its endpoint.
    Sticky,
    /// The first eligible target, in order.
    Fallback,
    /// LiteLLM `least-busy`, exactly as its router does it (see [`crate::policy::compat`]).
    LitellmLeastBusy,
    /// LiteLLM `usage-based-routing-v2`: lowest tokens this calendar minute.
    LitellmUsageV2,
    /// LiteLLM `latency-based-routing`: lowest average of its recent latency list.
    LitellmLatency,
    /// LiteLLM `cost-based-routing`: lowest price per token.
    LitellmCost,
    /// Strong/weak by a difficulty estimate (RouteLLM): above `threshold` to the `strong` targets, else the weak.
    Threshold,
    /// The cheapest endpoint whose predicted acceptance meets `min_quality`.
    Quality,
    /// FrugalGPT cascade: the cheapest stage first, escalating when the `verifier` rejects its answer.
    Cascade,
    /// Simulator only: the cheapest target that answers the request acceptably (RouterBench's upper bound).
    Oracle,
}

impl PolicyKind {
    /// Every kind, in documentation order.
    pub const ALL: [PolicyKind; 19] = [
        PolicyKind::RoundRobin,
        PolicyKind::Weighted,
        PolicyKind::LeastOutstanding,
        PolicyKind::P2c,
        PolicyKind::Latency,
        PolicyKind::Usage,
        PolicyKind::Cost,
        PolicyKind::Hybrid,
        PolicyKind::Conditional,
        PolicyKind::Sticky,
        PolicyKind::Fallback,
        PolicyKind::LitellmLeastBusy,
        PolicyKind::LitellmUsageV2,
        PolicyKind::LitellmLatency,
        PolicyKind::LitellmCost,
        PolicyKind::Threshold,
        PolicyKind::Quality,
        PolicyKind::Cascade,
        PolicyKind::Oracle,
    ];

    /// The name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::RoundRobin => "round-robin",
            PolicyKind::Weighted => "weighted",
            PolicyKind::LeastOutstanding => "least-outstanding",
            PolicyKind::P2c => "p2c",
            PolicyKind::Latency => "latency",
            PolicyKind::Usage => "usage",
            PolicyKind::Cost => "cost",
            PolicyKind::Hybrid => "hybrid",
            PolicyKind::Conditional => "conditional",
            PolicyKind::Sticky => "sticky",
            PolicyKind::Fallback => "fallback",
            PolicyKind::LitellmLeastBusy => "litellm-least-busy",
            PolicyKind::LitellmUsageV2 => "litellm-usage-v2",
            PolicyKind::LitellmLatency => "litellm-latency",
            PolicyKind::LitellmCost => "litellm-cost",
            PolicyKind::Threshold => "threshold",
            PolicyKind::Quality => "quality",
            PolicyKind::Cascade => "cascade",
            PolicyKind::Oracle => "oracle",
        }
    }

    /// A one-line description.
    pub fn summary(self) -> &'static str {
        match self {
            PolicyKind::RoundRobin => "rotate through eligible targets in order",
            PolicyKind::Weighted => "random pick proportional to static weights",
            PolicyKind::LeastOutstanding => "fewest requests in flight (random among ties)",
            PolicyKind::P2c => "power of two random choices on peak-EWMA latency x (in-flight + 1)",
            PolicyKind::Latency => {
                "lowest latency EMA, random within `buffer` of the best; lowest tier when all exceed `slow_threshold`"
            }
            PolicyKind::Usage => {
                "quota headroom: share tapers past `threshold` of RPM/TPM; task classes map to `tiers` with spill-over"
            }
            PolicyKind::Cost => "cheapest expected cost among endpoints able to serve the request",
            PolicyKind::Hybrid => {
                "min of weighted normalised cost, latency, load and quota use; `latency_ceiling` excludes slow endpoints"
            }
            PolicyKind::Conditional => {
                "first rule whose `when` matches request metadata picks the target; else `default`"
            }
            PolicyKind::Sticky => "consistent hashing on a metadata `key`: a key keeps its endpoint while eligible",
            PolicyKind::Fallback => "first eligible target in the listed order",
            PolicyKind::LitellmLeastBusy => {
                "LiteLLM least-busy: first healthy deployment with fewest in flight (1.110.2)"
            }
            PolicyKind::LitellmUsageV2 => {
                "LiteLLM usage-based-routing-v2: fewest tokens this calendar minute, within tpm (random among ties)"
            }
            PolicyKind::LitellmLatency => {
                "LiteLLM latency-based-routing: lowest mean of the recent latency list (TTFT when streaming), `buffer`, `ttl`, `samples`"
            }
            PolicyKind::LitellmCost => {
                "LiteLLM cost-based-routing: lowest input + output price per token, first in order"
            }
            PolicyKind::Threshold => {
                "strong/weak (RouteLLM): difficulty estimate above `threshold` (or none) to the cheapest of `strong`, else of `targets`"
            }
            PolicyKind::Quality => {
                "cheapest endpoint whose predicted acceptance meets `min_quality`; else the most likely to answer well"
            }
            PolicyKind::Cascade => {
                "FrugalGPT cascade: `targets` are stages, cheapest first; escalate when the `verifier` rejects an answer"
            }
            PolicyKind::Oracle => {
                "simulator only: the cheapest target that answers the request acceptably (upper bound on quality)"
            }
        }
    }

    /// The kind-specific fields this kind accepts.
    fn fields(self) -> &'static [&'static str] {
        match self {
            PolicyKind::RoundRobin | PolicyKind::Weighted | PolicyKind::Fallback => &[],
            PolicyKind::LeastOutstanding | PolicyKind::P2c | PolicyKind::Cost => &[],
            PolicyKind::LitellmLeastBusy | PolicyKind::LitellmUsageV2 | PolicyKind::LitellmCost => &[],
            PolicyKind::LitellmLatency => &["buffer", "ttl", "samples"],
            PolicyKind::Latency => &["buffer", "slow_threshold"],
            PolicyKind::Usage => &["threshold", "tiers"],
            PolicyKind::Hybrid => &["weights", "buffer", "latency_ceiling"],
            PolicyKind::Conditional => &["rules", "default"],
            PolicyKind::Sticky => &["key", "default", "virtual_nodes"],
            PolicyKind::Threshold => &["threshold", "strong"],
            PolicyKind::Quality => &["min_quality"],
            PolicyKind::Cascade => &["verifier"],
            PolicyKind::Oracle => &[],
        }
    }
}

/// A target of a policy: an endpoint id or a group name, optionally with a weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetSpec {
    /// `"gpt-4o-mini"`.
    Name(String),
    /// `{ id = "gpt-4o-mini", weight = 3 }`.
    Weighted {
        /// Endpoint id or group name.
        id: String,
        /// Relative weight for weighted routing (defaults to the endpoint's static weight).
        weight: f64,
    },
}

impl TargetSpec {
    /// The endpoint id or group name.
    pub fn id(&self) -> &str {
        match self {
            TargetSpec::Name(n) | TargetSpec::Weighted { id: n, .. } => n,
        }
    }
}

/// Weights of the hybrid score. Each term is min-max normalised over the candidates, so weights compare
/// like with like; they need not sum to one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HybridWeights {
    /// Expected cost of the request on the endpoint.
    pub cost: f64,
    /// Latency average.
    pub latency: f64,
    /// Requests in flight relative to the endpoint's concurrency.
    pub load: f64,
    /// Quota used (max of RPM and TPM fractions): a high weight keeps headroom.
    pub quota: f64,
}

/// A conditional rule: when the condition holds, route to the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The condition (see [`crate::condition`]).
    pub when: RawValue,
    /// Endpoint id or group name.
    pub target: String,
}

/// Fallback chains: one list for every error class, or one per class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FallbackSpec {
    /// The same ordered chain for every retryable error.
    List(Vec<String>),
    /// A chain per error class; classes without one use `default`.
    PerClass(PerClassFallbacks),
}

/// Fallback chains per error class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerClassFallbacks {
    /// Chain for classes without their own.
    pub default: Vec<String>,
    /// After a 429.
    pub rate_limited: Option<Vec<String>>,
    /// After a 5xx.
    pub server: Option<Vec<String>>,
    /// After a timeout.
    pub timeout: Option<Vec<String>>,
    /// After any other error.
    pub other: Option<Vec<String>>,
}

impl FallbackSpec {
    /// The chain for an error class.
    pub fn chain(&self, class: ErrorClass) -> &[String] {
        match self {
            FallbackSpec::List(l) => l,
            FallbackSpec::PerClass(p) => {
                let specific = match class {
                    ErrorClass::RateLimited => &p.rate_limited,
                    ErrorClass::Server => &p.server,
                    ErrorClass::Timeout => &p.timeout,
                    ErrorClass::Other => &p.other,
                };
                specific.as_deref().unwrap_or(&p.default)
            }
        }
    }
}

/// Jitter applied to backoff delays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Jitter {
    /// Uniform in [0, delay] ("full jitter"; the default, it spreads retry storms best).
    #[default]
    Full,
    /// delay/2 + uniform in [0, delay/2].
    Equal,
    /// No jitter.
    None,
}

/// Retry budget: retries may add at most `ratio` of the first-attempt volume, plus `min_per_s`
/// (as Finagle's and Linkerd's budgets do), so retries cannot amplify an outage into a storm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Retries allowed per first attempt (e.g. 0.2 = at most 20% extra load).
    pub ratio: f64,
    /// Retries always allowed per second regardless of volume.
    pub min_per_s: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { ratio: 0.2, min_per_s: 10.0 }
    }
}

/// How failed attempts are retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Error classes that are retried.
    pub retry_on: Vec<ErrorClass>,
    /// First backoff delay, for a retry on the same endpoint (a fallback to another endpoint goes at once).
    pub base_delay: Duration,
    /// Cap on the backoff delay.
    pub max_delay: Duration,
    /// Growth factor per attempt (>= 1).
    pub multiplier: f64,
    /// Jitter on the backoff delay.
    pub jitter: Jitter,
    /// Wait at least the Retry-After a 429 carried before retrying the same endpoint.
    pub honor_retry_after: bool,
    /// Whether a retry may go to the endpoint that just failed when no other is eligible.
    pub same_endpoint: bool,
    /// Retry budget; `None` for unlimited retries, written `budget = "unlimited"` (a missing `budget` is the
    /// default budget, so `None` must be written out to survive a round trip through TOML).
    #[serde(with = "budget_serde")]
    pub budget: Option<BudgetConfig>,
}

/// `budget`: a [`BudgetConfig`] table, or `"unlimited"` for none.
mod budget_serde {
    use super::BudgetConfig;
    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(b: &Option<BudgetConfig>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => b.serialize(s),
            None => s.serialize_str("unlimited"),
        }
    }

    struct BudgetVisitor;

    impl<'de> Visitor<'de> for BudgetVisitor {
        type Value = Option<BudgetConfig>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a budget table { ratio, min_per_s } or \"unlimited\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v == "unlimited" { Ok(None) } else { Err(E::invalid_value(de::Unexpected::Str(v), &self)) }
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            BudgetConfig::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BudgetConfig>, D::Error> {
        d.deserialize_any(BudgetVisitor)
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            retry_on: vec![ErrorClass::RateLimited, ErrorClass::Server, ErrorClass::Timeout],
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: Jitter::Full,
            honor_retry_after: true,
            same_endpoint: true,
            budget: Some(BudgetConfig::default()),
        }
    }
}

/// Exact-match response cache.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// How long a cached response stays valid.
    pub ttl: Duration,
    /// Maximum number of cached keys (oldest evicted first).
    pub capacity: usize,
}

/// Batching of deferrable requests to a batch endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// The batch endpoint (must have `batch = true`).
    pub endpoint: String,
    /// Release a batch when it holds this many requests ...
    pub max_size: u32,
    /// ... or when its oldest request has waited this long.
    pub max_wait: Duration,
}

/// One routing policy: its kind, targets and parameters. At the root of a router it may also carry the
/// resilience settings (fallbacks, retries, cache, batching, tracking windows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Name, unique among policies, groups and endpoints.
    pub name: String,
    /// Which policy.
    pub kind: PolicyKind,
    /// Free text for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Endpoints or groups to choose among; empty means every non-batch endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetSpec>,
    /// latency: pick randomly among candidates whose average is within this fraction of the best (0.2 = 20%);
    /// hybrid: among candidates whose score (0..=1) is within this margin of the best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<f64>,
    /// latency: when every candidate's average exceeds this, route to the lowest-tier (simplest) candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_threshold: Option<Duration>,
    /// usage: fraction of RPM/TPM (0..1) past which an endpoint's share tapers linearly to zero at the limit;
    /// threshold: the difficulty estimate above which a request goes to the `strong` targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// threshold: the strong targets (`targets` are the weak ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strong: Vec<TargetSpec>,
    /// quality: the least predicted acceptance (0..=1) an endpoint must reach to be chosen on cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_quality: Option<f64>,
    /// cascade: how an answer is judged before the cascade accepts it or escalates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<VerifierSpec>,
    /// usage: task class -> lowest model tier that may serve it; spills to the next tier when a tier is full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<BTreeMap<String, u8>>,
    /// hybrid: weights of the score terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<HybridWeights>,
    /// hybrid: endpoints whose latency average exceeds this are excluded (unless all do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ceiling: Option<Duration>,
    /// conditional: rules, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
    /// conditional: target when no rule matches; sticky: target for requests without the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// sticky: the metadata field whose value keeps its endpoint (e.g. "user" or "session").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// sticky: points per target on the hash ring (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_nodes: Option<u32>,
    /// litellm-latency: how long the latency lists live after their last write (LiteLLM `ttl`, default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// litellm-latency: latency samples kept per endpoint (LiteLLM `max_latency_list_size`, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// Root only: fallback chains after a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallbacks: Option<FallbackSpec>,
    /// Root only: retry policy. Without it, failed attempts follow the fallback chain once each, or are not retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Root only: exact-match response cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheConfig>,
    /// Root only: batching of deferrable requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<BatchConfig>,
    /// Root only: measurement windows and circuit breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<TrackingConfig>,
    /// Root only: per-attempt timeout of this policy, overriding the caller's default (a scenario's
    /// `[client] timeout`, a gateway's upstream timeout). A timed-out attempt is a `timeout` error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Root only: time-to-first-token timeout of this policy (LiteLLM's `stream_timeout`), overriding the
    /// caller's default (a scenario's `[client] ttft_timeout`): an attempt whose first token has not arrived
    /// this long after it was sent is abandoned as a `timeout` error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_timeout: Option<Duration>,
    /// Root only: LiteLLM's deployment cooldowns instead of the circuit breaker (see [`CooldownConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<CooldownConfig>,
    /// Root only: LiteLLM's retry-then-fallback order over model groups (see [`GroupRetryConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_retry: Option<GroupRetryConfig>,
    /// Root only: Portkey's retries of one target, then its `fallback` nodes (see [`TargetRetryConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_retry: Option<TargetRetryConfig>,
}

/// A cascade's verifier: what judges a stage's answer before the cascade accepts it or escalates to the next
/// stage. The simulator models it by its `precision` and `recall` against the true outcome; the gateway asks
/// the `endpoint` (a judge model) for a score and accepts at `min_score` or above.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierSpec {
    /// Simulator: of the answers the verifier accepts, the fraction truly acceptable (0..=1; default 1).
    #[serde(default = "one")]
    pub precision: f64,
    /// Simulator: of the truly acceptable answers, the fraction the verifier accepts (0..=1; default 1).
    #[serde(default = "one")]
    pub recall: f64,
    /// Gateway: the id of the endpoint (a judge model) asked to score each answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Gateway: an answer whose score (0..=1) is at least this is accepted (default 0.5).
    #[serde(default = "half")]
    pub min_score: f64,
}

impl Default for VerifierSpec {
    fn default() -> Self {
        VerifierSpec { precision: 1.0, recall: 1.0, endpoint: None, min_score: 0.5 }
    }
}

fn one() -> f64 {
    1.0
}

fn half() -> f64 {
    0.5
}

/// Portkey's retries and fallbacks (`tryTargetsRecursively` and `retryRequest` in Portkey-AI/gateway's
/// `src/handlers/handlerUtils.ts` and `retryHandler.ts`, gateway 1.15.x): a failed attempt is retried on the
/// **same** endpoint while its error is one of `on` and the endpoint has had fewer than `1 + attempts` attempts,
/// after `base_delay`, `2 x base_delay`, ... (async-retry, factor 2, no jitter). When those are spent, or the error
/// is not retried, the innermost `fallback` group above the endpoint whose move-on errors include it (see
/// `fallback_on`) moves to its next target; a group that does not move on hands the failure to the one above it.
/// A load balancer or conditional never chooses again: Portkey draws a load-balanced target once per visit.
///
/// The root's `retry.max_attempts` still caps the attempts in all; `retry.retry_on` is not used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRetryConfig {
    /// Retries of one endpoint after its first attempt (Portkey `retry.attempts`).
    pub attempts: u32,
    /// The errors retried on the same endpoint (Portkey `retry.on_status_codes`): classes (`"server"`: every
    /// 5xx) or HTTP statuses (`503`: that code only), see [`ErrorMatch`]. Default `rate_limited` and `server`.
    #[serde(default = "default_target_retry_on")]
    pub on: Vec<ErrorMatch>,
    /// First backoff (1 s in Portkey), doubled at each further retry.
    #[serde(default = "default_target_retry_delay")]
    pub base_delay: Duration,
    /// Fallback group name -> the errors on which it moves to its next target (Portkey `strategy.on_status_codes`).
    /// Classes or statuses as in `on`. A fallback group not named moves on after any error.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fallback_on: BTreeMap<String, Vec<ErrorMatch>>,
}

fn default_target_retry_on() -> Vec<ErrorMatch> {
    vec![ErrorMatch::Class(ErrorClass::RateLimited), ErrorMatch::Class(ErrorClass::Server)]
}

fn default_target_retry_delay() -> Duration {
    Duration::from_secs(1)
}

/// LiteLLM's deployment cooldowns, as `litellm/router_utils/cooldown_handlers.py` defines them (BerriAI/litellm,
/// the version with `SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD`, litellm 1.6x).
///
/// A failed attempt whose error calls for a cooldown (429, timeout, 5xx; not another 4xx, routesim's `other`)
/// takes the endpoint out of rotation for `cooldown_time` when:
/// - `allowed_fails` is unset (LiteLLM's default "v2" logic): the error is a 429 and the endpoint is not alone in
///   its model group; or more than half of its attempts this calendar minute failed and it is not alone; or
///   every attempt this minute failed and there were at least 1000;
/// - `allowed_fails` is set (the legacy logic): the endpoint already failed `allowed_fails` times, each failure
///   restarting a `cooldown_time` expiry of the count ("allowed fails per minute" with the default minute).
///
/// A cooled-down endpoint comes back when the time is up, with no probing; Retry-After headers do not keep it
/// out longer (LiteLLM does not read them for routing). The circuit breaker must be disabled alongside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CooldownConfig {
    /// LiteLLM `allowed_fails` (router-wide); unset = the failure-rate logic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_fails: Option<u32>,
    /// LiteLLM `cooldown_time` (default 5s).
    #[serde(default = "default_cooldown_time")]
    pub cooldown_time: Duration,
    /// Endpoints that are the only deployment of their model group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub single_deployment: Vec<String>,
}

fn default_cooldown_time() -> Duration {
    Duration::from_secs(5)
}

/// LiteLLM's retries and fallbacks (`Router.async_function_with_fallbacks` -> `async_function_with_retries` in
/// `litellm/router.py`, with `_time_to_sleep_before_retry` and `litellm._calculate_retry_after`): a failed
/// request is retried `num_retries` times within its model group, each retry choosing again through the group's
/// policy (the endpoint that failed may be chosen again unless it is cooling down); when those are spent, or
/// the group has nothing left to try, each fallback group in order gets the same treatment.
///
/// A retry goes at once while the group (of more than one endpoint) has at least one eligible endpoint, the one
/// that just failed included when it is not cooling down; a group of one endpoint, or one with none eligible,
/// waits LiteLLM's backoff, `min(0.5 s x 2^retries, 8 s) x (1 - 0.25 u)`, at least `retry_after`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRetryConfig {
    /// Retries within a model group after its first attempt (LiteLLM `num_retries`).
    pub num_retries: u32,
    /// Least wait before a retry that waits (LiteLLM `retry_after`, default 0).
    #[serde(default)]
    pub retry_after: Duration,
    /// Model group (a group name) -> fallback groups, in order (LiteLLM `fallbacks`).
    #[serde(default)]
    pub fallbacks: BTreeMap<String, Vec<String>>,
}

impl PolicySpec {
    /// A spec of the given name and kind with no targets (all endpoints) and default parameters.
    pub fn new(name: impl Into<String>, kind: PolicyKind) -> Self {
        PolicySpec {
            name: name.into(),
            kind,
            description: None,
            targets: Vec::new(),
            buffer: None,
            slow_threshold: None,
            threshold: None,
            strong: Vec::new(),
            min_quality: None,
            verifier: None,
            tiers: None,
            weights: None,
            latency_ceiling: None,
            rules: Vec::new(),
            default: None,
            key: None,
            virtual_nodes: None,
            fallbacks: None,
            retry: None,
            cache: None,
            batching: None,
            tracking: None,
            timeout: None,
            ttft_timeout: None,
            ttl: None,
            samples: None,
            cooldown: None,
            group_retry: None,
            target_retry: None,
        }
    }

    /// Kind-specific fields that are set, by name.
    pub(crate) fn set_fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut put = |set: bool, name| {
            if set {
                v.push(name)
            }
        };
        put(self.buffer.is_some(), "buffer");
        put(self.slow_threshold.is_some(), "slow_threshold");
        put(self.threshold.is_some(), "threshold");
        put(!self.strong.is_empty(), "strong");
        put(self.min_quality.is_some(), "min_quality");
        put(self.verifier.is_some(), "verifier");
        put(self.tiers.is_some(), "tiers");
        put(self.weights.is_some(), "weights");
        put(self.latency_ceiling.is_some(), "latency_ceiling");
        put(!self.rules.is_empty(), "rules");
        put(self.default.is_some(), "default");
        put(self.key.is_some(), "key");
        put(self.virtual_nodes.is_some(), "virtual_nodes");
        put(self.ttl.is_some(), "ttl");
        put(self.samples.is_some(), "samples");
        v
    }

    /// Root-only fields that are set, by name.
    pub(crate) fn root_fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.fallbacks.is_some() {
            v.push("fallbacks");
        }
        if self.retry.is_some() {
            v.push("retry");
        }
        if self.cache.is_some() {
            v.push("cache");
        }
        if self.batching.is_some() {
            v.push("batching");
        }
        if self.tracking.is_some() {
            v.push("tracking");
        }
        if self.timeout.is_some() {
            v.push("timeout");
        }
        if self.ttft_timeout.is_some() {
            v.push("ttft_timeout");
        }
        if self.cooldown.is_some() {
            v.push("cooldown");
        }
        if self.group_retry.is_some() {
            v.push("group_retry");
        }
        if self.target_retry.is_some() {
            v.push("target_retry");
        }
        v
    }

    /// Checks that only fields of this kind are set.
    pub(crate) fn check_fields(&self, path: &str) -> Result<(), ConfigError> {
        for f in self.set_fields() {
            if !self.kind.fields().contains(&f) {
                let accepted = self.kind.fields();
                let hint = if accepted.is_empty() {
                    "it takes no parameters besides targets".to_string()
                } else {
                    format!("it accepts {}", accepted.join(", "))
                };
                return Err(ConfigError::new(
                    format!("{path}.{f}"),
                    format!("`{f}` does not apply to kind `{}`: {hint}", self.kind.name()),
                ));
            }
        }
        Ok(())
    }
}

/// The `[health]` table of a scenario or gateway config: how often the caller checks every endpoint and
/// feeds [`crate::Router::on_health`] (router-core has no clock, so the simulator and the gateway schedule
/// the checks themselves).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Interval between checks of every endpoint (default 10s); "0s" disables them.
    #[serde(default = "default_health_interval")]
    pub interval: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { interval: default_health_interval() }
    }
}

fn default_health_interval() -> Duration {
    Duration::from_secs(10)
}

/// Everything needed to build a [`crate::Router`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// The endpoints, in a fixed order (their [`crate::EndpointIdx`]).
    pub endpoints: Vec<Endpoint>,
    /// The root policy.
    pub policy: PolicySpec,
    /// Named policies that other policies may target.
    #[serde(default)]
    pub groups: Vec<PolicySpec>,
    /// Seed of the router's keyed random choices.
    #[serde(default)]
    pub seed: u64,
    /// The quality model's shared parameters (discrimination per task class), for quality-aware policies.
    #[serde(default, skip_serializing_if = "QualityConfig::is_default")]
    pub quality: QualityConfig,
}

/// An invalid configuration: where (a field path such as `policy.weights.cost` or `groups[1].targets[0]`)
/// and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Field path from the root of the [`RouterConfig`].
    pub path: String,
    /// What was expected, and what was found.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Checks that `x` is finite and within `[lo, hi]`.
pub(crate) fn check_range(path: &str, x: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if x.is_finite() && x >= lo && x <= hi {
        Ok(())
    } else {
        let expected =
            if hi == f64::MAX { format!("a finite number >= {lo}") } else { format!("a number in {lo}..={hi}") };
        Err(ConfigError::new(path, format!("expected {expected}, found {x}")))
    }
}
