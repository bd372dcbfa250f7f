//! The vocabulary shared by the gateway and the simulator: endpoints, requests and outcomes.
//!
//! These are plain data types, configured by serde. They carry no state: the live, per-endpoint state
//! (EMAs, quota windows, circuit breakers) lives in [`crate::state`].

use crate::quality::Accuracy;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Virtual or wall-clock time in integer nanoseconds. router-core never reads a clock: every call that
/// depends on time takes `now: Nanos` from its caller (a tokio gateway or the simulator).
pub type Nanos = u64;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Converts seconds (as `f64`) to [`Nanos`], saturating at 0 and `u64::MAX`.
#[inline]
pub fn secs_to_nanos(secs: f64) -> Nanos {
    // Below 2^63, converting through `i64` takes about half the instructions of the `u64` conversion on
    // baseline x86-64 and truncates the same way. NaN and non-positive values fail both comparisons.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let n = secs * NANOS_PER_SEC as f64;
    if n > 0.0 && n < TWO_63 {
        n as i64 as u64
    } else if n >= TWO_63 {
        if n >= u64::MAX as f64 { u64::MAX } else { n as u64 }
    } else {
        0
    }
}

/// Converts [`Nanos`] to seconds.
#[inline]
pub fn nanos_to_secs(n: Nanos) -> f64 {
    n as f64 / NANOS_PER_SEC as f64
}

/// Most endpoints one router can hold (and most targets of one policy).
pub const MAX_ENDPOINTS: usize = 256;

/// Dense index of an endpoint inside one [`crate::Router`], in the order of its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EndpointIdx(pub u16);

impl EndpointIdx {
    /// The index as a `usize`, for slice access.
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for EndpointIdx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Price of an endpoint in USD per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per 1M input (prompt) tokens.
    #[serde(default)]
    pub input_per_mtok: f64,
    /// USD per 1M output (completion) tokens.
    #[serde(default)]
    pub output_per_mtok: f64,
}

impl Price {
    /// Cost in USD of `input` prompt tokens and `output` completion tokens.
    #[inline]
    pub fn cost(&self, input: u32, output: u32) -> f64 {
        (input as f64 * self.input_per_mtok + output as f64 * self.output_per_mtok) / 1e6
    }

    /// Expected cost in USD of a request, using its expected output tokens (or `default_output`).
    #[inline]
    pub fn expected_cost(&self, req: &RequestInfo, default_output: u32) -> f64 {
        self.cost(req.input_tokens, req.expected_output_tokens.unwrap_or(default_output))
    }
}

/// Provider-imposed limits of an endpoint. `None` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute (sliding window).
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Tokens (input + output) per minute (sliding window). A request counts as its
    /// [`crate::TrackingConfig::tpm_estimate`] when it is admitted and dispatched.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Maximum concurrent requests the endpoint serves (the gateway's view; the provider may queue more).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Context window in tokens: requests with more input tokens (plus expected output) cannot be served.
    #[serde(default)]
    pub context_window: Option<u32>,
}

/// One deployment the gateway can send a request to: a model at a provider, with its price and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Unique id, used by policies, fallback chains and reports.
    pub id: String,
    /// Provider name (e.g. "openai", "anthropic", "self-hosted"). Informational.
    #[serde(default)]
    pub provider: String,
    /// Model name (e.g. "gpt-4o-mini"). Informational.
    #[serde(default)]
    pub model: String,
    /// Capability tier: 0 is the smallest/cheapest model, higher tiers are more capable. Used by tiered
    /// routing (task classes map to tiers) and by "fall back to simpler models" rules.
    #[serde(default)]
    pub tier: u8,
    /// Price per million tokens.
    #[serde(default)]
    pub price: Price,
    /// Rate and size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Free-form tags, matched by conditional rules and group selectors.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Capabilities (e.g. "vision", "json", "tools"); a request requiring one only goes to endpoints that have it.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Static weight for weighted random routing (default 1).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Whether this is an asynchronous batch endpoint (cheaper and slower, as provider batch APIs are).
    /// Only requests released by the batcher go there.
    #[serde(default)]
    pub batch: bool,
    /// Accuracy per task class (see [`crate::quality`]): what quality-aware policies predict from. Empty
    /// when the file states none.
    #[serde(default, skip_serializing_if = "Accuracy::is_empty")]
    pub quality: Accuracy,
}

fn default_weight() -> f64 {
    1.0
}

impl Endpoint {
    /// A minimal endpoint with the given id and defaults elsewhere (handy in tests and examples).
    pub fn new(id: impl Into<String>) -> Self {
        Endpoint {
            id: id.into(),
            provider: String::new(),
            model: String::new(),
            tier: 0,
            price: Price::default(),
            limits: Limits::default(),
            tags: Vec::new(),
            capabilities: Vec::new(),
            weight: 1.0,
            batch: false,
            quality: Accuracy::default(),
        }
    }
}

/// A metadata value attached to a request: string, number or boolean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    /// A boolean flag.
    Bool(bool),
    /// A number (integers are carried as `f64`).
    Num(f64),
    /// A string.
    Str(String),
}

impl MetaValue {
    /// The value as a number, if it is one.
    pub fn as_num(&self) -> Option<f64> {
        match self {
            MetaValue::Num(n) => Some(*n),
            _ => None,
        }
    }
    /// The value as a string slice, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
    /// A stable 64-bit hash of the value (FNV-1a), used for sticky routing keys. Independent of the
    /// platform and of Rust's `Hash` implementation, so sticky assignments are reproducible.
    pub fn stable_hash(&self) -> u64 {
        match self {
            MetaValue::Bool(b) => fnv1a(&[*b as u8]),
            MetaValue::Num(n) => fnv1a(&n.to_bits().to_le_bytes()),
            MetaValue::Str(s) => fnv1a(s.as_bytes()),
        }
    }
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::Bool(b) => write!(f, "{b}"),
            MetaValue::Num(n) => write!(f, "{n}"),
            MetaValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// FNV-1a over bytes: a tiny, stable, well-known hash.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What the router knows about a request when it decides. The gateway builds it from the incoming HTTP
/// request; the simulator from its traffic model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInfo {
    /// Request id, unique within a run. Random choices of the router are keyed by it, so the same
    /// request gets the same random draw however many other requests came before (common random numbers).
    pub id: u64,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Expected completion tokens, when the caller knows them (e.g. `max_tokens`).
    #[serde(default)]
    pub expected_output_tokens: Option<u32>,
    /// Task class (e.g. "simple", "complex"), mapped to model tiers by tiered routing.
    #[serde(default)]
    pub task_class: Option<String>,
    /// Complexity score in 0..=1, when the caller estimates one.
    #[serde(default)]
    pub complexity: Option<f64>,
    /// Estimated difficulty on the quality model's latent scale (standard normal within the task class,
    /// see [`crate::quality`]), when a client or a classifier supplies one. Higher is harder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<f64>,
    /// Metadata key-values (user, team, region, priority, ...), matched by conditional rules.
    #[serde(default)]
    pub metadata: Vec<(String, MetaValue)>,
    /// Capabilities the request requires (e.g. "vision").
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    /// Whether the response is streamed (time to first token matters).
    #[serde(default)]
    pub streaming: bool,
    /// Whether the request may be deferred and batched (an asynchronous job, not a user waiting).
    #[serde(default)]
    pub deferrable: bool,
    /// Exact-match cache key (e.g. a hash of model + prompt), when the response may be cached.
    #[serde(default)]
    pub cache_key: Option<u64>,
}

impl RequestInfo {
    /// A request with the given id and input tokens, everything else default.
    pub fn new(id: u64, input_tokens: u32) -> Self {
        RequestInfo { id, input_tokens, ..Default::default() }
    }

    /// The value of a metadata key. The pseudo-keys `task_class`, `complexity`, `input_tokens`,
    /// `expected_output_tokens`, `streaming` and `deferrable` expose the typed fields to conditional rules.
    pub fn meta(&self, key: &str) -> Option<MetaRef<'_>> {
        if let Some((_, v)) = self.metadata.iter().find(|(k, _)| k == key) {
            return Some(MetaRef::Value(v));
        }
        match key {
            "task_class" => self.task_class.as_deref().map(MetaRef::Str),
            "complexity" => self.complexity.map(MetaRef::Num),
            "input_tokens" => Some(MetaRef::Num(self.input_tokens as f64)),
            "expected_output_tokens" => self.expected_output_tokens.map(|t| MetaRef::Num(t as f64)),
            "streaming" => Some(MetaRef::Bool(self.streaming)),
            "deferrable" => Some(MetaRef::Bool(self.deferrable)),
            _ => None,
        }
    }

    /// Total tokens this request is expected to consume (input + expected output, or `default_output`). Quota
    /// accounting uses [`crate::TrackingConfig::tpm_estimate`], which is this with the configured default.
    #[inline]
    pub fn expected_tokens(&self, default_output: u32) -> u64 {
        self.input_tokens as u64 + self.expected_output_tokens.unwrap_or(default_output) as u64
    }
}

/// A borrowed view of a metadata value, including the typed pseudo-keys of [`RequestInfo::meta`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetaRef<'a> {
    /// A stored metadata value.
    Value(&'a MetaValue),
    /// A string field.
    Str(&'a str),
    /// A numeric field.
    Num(f64),
    /// A boolean field.
    Bool(bool),
}

impl<'a> MetaRef<'a> {
    /// As a number, if numeric.
    pub fn as_num(self) -> Option<f64> {
        match self {
            MetaRef::Value(v) => v.as_num(),
            MetaRef::Num(n) => Some(n),
            _ => None,
        }
    }
    /// As a string, if a string.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            MetaRef::Value(v) => v.as_str(),
            MetaRef::Str(s) => Some(s),
            _ => None,
        }
    }
    /// As a boolean, if a boolean.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            MetaRef::Value(MetaValue::Bool(b)) => Some(*b),
            MetaRef::Bool(b) => Some(b),
            _ => None,
        }
    }
    /// Stable hash of the value, for sticky routing.
    pub fn stable_hash(self) -> u64 {
        match self {
            MetaRef::Value(v) => v.stable_hash(),
            MetaRef::Str(s) => fnv1a(s.as_bytes()),
            MetaRef::Num(n) => fnv1a(&n.to_bits().to_le_bytes()),
            MetaRef::Bool(b) => fnv1a(&[b as u8]),
        }
    }
    /// Equality against a configured value (numbers compare numerically, strings exactly).
    pub fn equals(self, v: &MetaValue) -> bool {
        match v {
            MetaValue::Num(n) => self.as_num() == Some(*n),
            MetaValue::Str(s) => self.as_str() == Some(s.as_str()),
            MetaValue::Bool(b) => self.as_bool() == Some(*b),
        }
    }
}

/// Class of a failed attempt, as a gateway sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// HTTP 429: rate limited (possibly with Retry-After).
    RateLimited,
    /// HTTP 5xx: server error or overload (500, 502, 503, 529, ...).
    Server,
    /// The client gave up waiting.
    Timeout,
    /// Anything else (4xx other than 429, connection errors, ...). Not retried on another endpoint by default.
    Other,
}

impl ErrorClass {
    /// All classes, in a fixed order (for per-class tables).
    pub const ALL: [ErrorClass; 4] =
        [ErrorClass::RateLimited, ErrorClass::Server, ErrorClass::Timeout, ErrorClass::Other];

    /// Dense index in [`ErrorClass::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Server => "server",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Other => "other",
        }
    }
}

/// What an error list names (Portkey's `on_status_codes`, routesim's `target_retry.on`): a whole
/// [`ErrorClass`], written as its name (`"server"`: every 5xx, whatever its code), or one HTTP status, written
/// as a number (`503`: that code only). A class matches every failure of the class; a status matches a failure
/// whose [`Outcome::status`] is that code, so `[429, 503]` retries a 503 and not a 500.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorMatch {
    /// Every failure of this class.
    Class(ErrorClass),
    /// A failure answered with this HTTP status (100..=599).
    Status(u16),
}

impl ErrorMatch {
    /// Whether a failure of `class` answered with `status` (`None`: no HTTP status, e.g. a timeout) is named.
    #[inline]
    pub fn matches(self, class: ErrorClass, status: Option<u16>) -> bool {
        match self {
            ErrorMatch::Class(c) => c == class,
            ErrorMatch::Status(s) => status == Some(s),
        }
    }

    /// Whether any entry of `list` names a failure of `class` answered with `status`.
    #[inline]
    pub fn any(list: &[ErrorMatch], class: ErrorClass, status: Option<u16>) -> bool {
        list.iter().any(|m| m.matches(class, status))
    }
}

impl From<ErrorClass> for ErrorMatch {
    fn from(c: ErrorClass) -> Self {
        ErrorMatch::Class(c)
    }
}

impl fmt::Display for ErrorMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorMatch::Class(c) => f.write_str(c.name()),
            ErrorMatch::Status(s) => write!(f, "{s}"),
        }
    }
}

impl Serialize for ErrorMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ErrorMatch::Class(c) => c.serialize(s),
            ErrorMatch::Status(code) => s.serialize_u16(*code),
        }
    }
}

impl<'de> Deserialize<'de> for ErrorMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MatchVisitor;

        impl serde::de::Visitor<'_> for MatchVisitor {
            type Value = ErrorMatch;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error class (rate_limited, server, timeout, other) or an HTTP status code (100..=599)")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ErrorMatch, E> {
                ErrorClass::ALL
                    .into_iter()
                    .find(|c| c.name() == v)
                    .map(ErrorMatch::Class)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ErrorMatch, E> {
                match u16::try_from(v) {
                    Ok(code) if (100..=599).contains(&code) => Ok(ErrorMatch::Status(code)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self)),
                }
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ErrorMatch, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
        }

        d.deserialize_any(MatchVisitor)
    }
}

/// Result of one attempt on one endpoint, fed back through [`crate::Router::on_result`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// `None` on success, the error class otherwise.
    pub error: Option<ErrorClass>,
    /// Time to first token, when the response started streaming.
    pub ttft: Option<Nanos>,
    /// Latency of this attempt, dispatch to end (for failures: until the failure was seen).
    pub latency: Nanos,
    /// Prompt tokens billed.
    pub input_tokens: u32,
    /// Completion tokens produced.
    pub output_tokens: u32,
    /// Retry-After the provider sent with a 429 or 503, if any.
    pub retry_after: Option<Nanos>,
    /// The HTTP status a failure was answered with (500 and 503 are both [`ErrorClass::Server`]); `None` on
    /// success and for failures without one (a timeout, a broken connection). Read by [`ErrorMatch::Status`].
    pub status: Option<u16>,
}

impl Outcome {
    /// A successful attempt.
    pub fn success(latency: Nanos, ttft: Option<Nanos>, input_tokens: u32, output_tokens: u32) -> Self {
        Outcome { error: None, ttft, latency, input_tokens, output_tokens, retry_after: None, status: None }
    }

    /// A failed attempt of the given class.
    pub fn failure(class: ErrorClass, latency: Nanos) -> Self {
        Outcome {
            error: Some(class),
            ttft: None,
            latency,
            input_tokens: 0,
            output_tokens: 0,
            retry_after: None,
            status: None,
        }
    }

    /// This outcome, answered with HTTP status `status`.
    pub fn with_status(self, status: u16) -> Self {
        Outcome { status: Some(status), ..self }
    }

    /// Whether the attempt succeeded.
    #[inline]
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain definition [`secs_to_nanos`] must agree with: 0 for NaN and non-positive seconds, else the
    /// nanoseconds truncated and saturated at `u64::MAX`.
    fn reference(secs: f64) -> Nanos {
        if secs.is_nan() || secs <= 0.0 {
            0
        } else {
            let n = secs * NANOS_PER_SEC as f64;
            if n >= u64::MAX as f64 { u64::MAX } else { n as u64 }
        }
    }

    #[test]
    fn secs_to_nanos_at_the_edges() {
        let two_63 = 9_223_372_036_854_775_808.0 / 1e9;
        let edges = [
            f64::NAN,
            f64::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1e-10,
            0.9e-9,
            1e-9,
            1.5,
            two_63,
            f64::from_bits(two_63.to_bits() - 1),
            f64::from_bits(two_63.to_bits() + 1),
            u64::MAX as f64 / 1e9,
            1e300,
            f64::INFINITY,
        ];
        for s in edges {
            assert_eq!(secs_to_nanos(s), reference(s), "{s:e}");
        }
    }

    proptest! {
        #[test]
        fn secs_to_nanos_is_the_plain_definition(bits in any::<u64>()) {
            let s = f64::from_bits(bits);
            prop_assert_eq!(secs_to_nanos(s), reference(s));
        }

        #[test]
        fn secs_to_nanos_on_durations_a_simulation_sees(s in -1.0f64..1e7) {
            prop_assert_eq!(secs_to_nanos(s), reference(s));
        }
    }
}
