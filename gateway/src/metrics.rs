//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! Every per-endpoint series is resolved once at start-up (a handle per endpoint), so the request path
//! increments atomics without looking a label set up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use router_core::ErrorClass;
use std::sync::atomic::AtomicU64;

/// Final status of a request as the metrics and the log name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Answered successfully (by an upstream or the cache).
    Ok,
    /// Failed: every attempt was rate limited, or the last one.
    RateLimited,
    /// Failed with a 5xx or a transport error.
    Server,
    /// Failed by a timeout.
    Timeout,
    /// Failed with another error (a 4xx from the upstream).
    Other,
    /// No endpoint could take it.
    Rejected,
    /// The client went away first.
    Cancelled,
}

impl Status {
    /// Every status, in a fixed order.
    pub const ALL: [Status; 7] = [
        Status::Ok,
        Status::RateLimited,
        Status::Server,
        Status::Timeout,
        Status::Other,
        Status::Rejected,
        Status::Cancelled,
    ];

    /// The status of a failure of `class`.
    pub fn of(class: ErrorClass) -> Status {
        match class {
            ErrorClass::RateLimited => Status::RateLimited,
            ErrorClass::Server => Status::Server,
            ErrorClass::Timeout => Status::Timeout,
            ErrorClass::Other => Status::Other,
        }
    }

    /// Name in metrics (`cancelled` included; the log writes `other` for it, see [`crate::reqlog`]).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::RateLimited => "rate_limited",
            Status::Server => "server",
            Status::Timeout => "timeout",
            Status::Other => "other",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointClassLabel {
    endpoint: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointKindLabel {
    endpoint: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    streaming: &'static str,
}

/// The series of one endpoint.
#[derive(Clone, Debug)]
pub struct EndpointMetrics {
    /// Attempts sent.
    pub attempts: Counter,
    /// Failed attempts by error class (index [`ErrorClass::index`]).
    pub errors: [Counter; 4],
    /// Attempts in flight.
    pub in_flight: Gauge,
    /// USD spent.
    pub cost: Counter<f64, AtomicU64>,
    /// Prompt tokens billed.
    pub input_tokens: Counter,
    /// Completion tokens billed.
    pub output_tokens: Counter,
    /// Circuit breaker: 0 closed, 1 open, 2 half-open.
    pub circuit: Gauge,
    /// Last health check: 1 healthy, 0 not.
    pub healthy: Gauge,
    /// Latency of successful attempts, seconds.
    pub latency: Histogram,
}

/// Every metric of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Requests by final status (index: position in [`Status::ALL`]).
    pub requests: [Counter; 7],
    /// End-to-end latency of successful requests (non-streaming: to the last byte; streaming: to the end of
    /// the stream), by streaming.
    pub latency: [Histogram; 2],
    /// Time to first token of streamed requests.
    pub ttft: Histogram,
    /// The gateway's own time in a request: its latency to the response head minus the time spent waiting
    /// for upstreams and in backoff.
    pub overhead: Histogram,
    /// Retries (attempts after the first).
    pub retries: Counter,
    /// Retries that moved to another endpoint.
    pub fallbacks: Counter,
    /// Requests answered from the response cache.
    pub cache_hits: Counter,
    /// Requests denied before routing (no key, wrong key, revoked, expired, not allowed, over a limit or a
    /// budget), in `router_core::DenyReason::ALL` order.
    pub denied: [Counter; 10],
    /// Rejections by reason.
    pub rejected: Family<ReasonLabelPub, Counter>,
    /// Batches released to a batch endpoint.
    pub batches: Counter,
    /// Requests in flight in the gateway.
    pub in_flight: Gauge,
    /// Log rows written.
    pub log_written: Counter,
    /// Log rows dropped because the channel to the writer was full.
    pub log_dropped: Counter,
    /// Per-endpoint series, in endpoint order.
    pub endpoints: Vec<EndpointMetrics>,
    /// Upstream answers the gateway refused, upstream credential failures and cut streams (issue 28).
    pub answers: AnswerMetrics,
    /// Connections, client errors, per-key and process series (see [`crate::ops`]).
    pub ops: crate::ops::OpsMetrics,
    /// Rollout (issue 31): requests per arm, the canary fraction, the shadow policies' agreement and shares.
    pub rollout: crate::rollout::RolloutMetrics,
    /// Answer quality (issue 30): cascade verdicts and escalations per policy, client feedback.
    pub quality: QualityMetrics,
    families: EndpointFamilies,
}

/// The per-endpoint families, kept so that a configuration reload can add the series of new endpoints.
struct EndpointFamilies {
    attempts: Family<EndpointLabel, Counter>,
    errors: Family<EndpointClassLabel, Counter>,
    in_flight: Family<EndpointLabel, Gauge>,
    cost: Family<EndpointLabel, Counter<f64, AtomicU64>>,
    tokens: Family<EndpointKindLabel, Counter>,
    circuit: Family<EndpointLabel, Gauge>,
    healthy: Family<EndpointLabel, Gauge>,
    latency: Family<EndpointLabel, Histogram, fn() -> Histogram>,
}

impl EndpointFamilies {
    /// The series of `ids` (existing series are shared: a kept endpoint keeps counting).
    fn series(&self, ids: &[String]) -> Vec<EndpointMetrics> {
        let (attempts_f, errors_f, inflight_f, cost_f, tokens_f, circuit_f, healthy_f, ep_latency_f) = (
            &self.attempts,
            &self.errors,
            &self.in_flight,
            &self.cost,
            &self.tokens,
            &self.circuit,
            &self.healthy,
            &self.latency,
        );
        ids.iter()
            .map(|id| {
                // One statement per series: a family's guard lives to the end of its statement, and a second
                // `get_or_create` on the same family inside it would deadlock.
                let l = EndpointLabel { endpoint: id.clone() };
                let healthy = healthy_f.get_or_create(&l).clone();
                let attempts = attempts_f.get_or_create(&l).clone();
                let errors = ErrorClass::ALL.map(|c| {
                    errors_f.get_or_create(&EndpointClassLabel { endpoint: id.clone(), class: c.name() }).clone()
                });
                let in_flight = inflight_f.get_or_create(&l).clone();
                let cost = cost_f.get_or_create(&l).clone();
                let input_tokens =
                    tokens_f.get_or_create(&EndpointKindLabel { endpoint: id.clone(), kind: "input" }).clone();
                let output_tokens =
                    tokens_f.get_or_create(&EndpointKindLabel { endpoint: id.clone(), kind: "output" }).clone();
                let circuit = circuit_f.get_or_create(&l).clone();
                let latency = ep_latency_f.get_or_create(&l).clone();
                EndpointMetrics {
                    attempts,
                    errors,
                    in_flight,
                    cost,
                    input_tokens,
                    output_tokens,
                    circuit,
                    healthy,
                    latency,
                }
            })
            .collect()
    }
}

/// The label set of `routesim_gateway_rejected_total` (public so [`Metrics::rejected`] can be).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabelPub {
    /// router-core's reject reason.
    pub reason: &'static str,
}

fn latency_buckets() -> Histogram {
    // 1 ms .. ~ 524 s, doubling.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 20))
}

impl Metrics {
    /// Registers every metric for `endpoints` (their ids, in order).
    pub fn new(endpoints: &[String]) -> Metrics {
        let mut r = Registry::default();
        let requests_f = Family::<StatusLabel, Counter>::default();
        r.register("routesim_gateway_requests", "Requests by final status", requests_f.clone());
        let requests = Status::ALL.map(|s| requests_f.get_or_create(&StatusLabel { status: s.name() }).clone());
        let latency_f = Family::<StreamLabel, Histogram>::new_with_constructor(latency_buckets as fn() -> Histogram);
        r.register(
            "routesim_gateway_request_duration_seconds",
            "End-to-end latency of successful requests",
            latency_f.clone(),
        );
        let latency = ["false", "true"].map(|s| latency_f.get_or_create(&StreamLabel { streaming: s }).clone());
        let ttft = latency_buckets();
        r.register("routesim_gateway_ttft_seconds", "Time to first token of streamed requests", ttft.clone());
        let overhead = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(1e-6, 2.0, 24));
        r.register(
            "routesim_gateway_overhead_seconds",
            "Gateway time per request: latency to the response head minus upstream wait and backoff",
            overhead.clone(),
        );
        let retries = Counter::default();
        r.register("routesim_gateway_retries", "Attempts after the first", retries.clone());
        let fallbacks = Counter::default();
        r.register("routesim_gateway_fallbacks", "Retries that moved to another endpoint", fallbacks.clone());
        let cache_hits = Counter::default();
        r.register("routesim_gateway_cache_hits", "Requests answered from the response cache", cache_hits.clone());
        let rejected = Family::<ReasonLabelPub, Counter>::default();
        r.register("routesim_gateway_rejected", "Requests no endpoint could take, by reason", rejected.clone());
        // Every reason from the start, at zero (a series that appears with its first event hides the rate
        // of that first event from `rate()`).
        for reason in [
            router_core::RejectReason::AllCircuitsOpen,
            router_core::RejectReason::AllUnhealthy,
            router_core::RejectReason::QuotaExhausted,
            router_core::RejectReason::AtCapacity,
            router_core::RejectReason::NoCapableEndpoint,
            router_core::RejectReason::NoRoute,
        ] {
            let _ = rejected.get_or_create(&ReasonLabelPub { reason: reason.name() });
        }
        let denied_f = Family::<ReasonLabelPub, Counter>::default();
        r.register(
            "routesim_gateway_denied",
            "Requests denied by access control before routing, by reason",
            denied_f.clone(),
        );
        let denied =
            router_core::DenyReason::ALL.map(|d| denied_f.get_or_create(&ReasonLabelPub { reason: d.name() }).clone());
        let batches = Counter::default();
        r.register("routesim_gateway_batches", "Batches of deferrable requests released", batches.clone());
        let in_flight = Gauge::default();
        r.register("routesim_gateway_in_flight", "Requests in flight in the gateway", in_flight.clone());
        let log_written = Counter::default();
        r.register("routesim_gateway_log_rows_written", "Request log rows written", log_written.clone());
        let log_dropped = Counter::default();
        r.register(
            "routesim_gateway_log_rows_dropped",
            "Request log rows dropped because the writer's channel was full",
            log_dropped.clone(),
        );

        let ops = crate::ops::OpsMetrics::register(&mut r);
        let attempts_f = Family::<EndpointLabel, Counter>::default();
        r.register("routesim_gateway_upstream_attempts", "Attempts sent to each endpoint", attempts_f.clone());
        let errors_f = Family::<EndpointClassLabel, Counter>::default();
        r.register("routesim_gateway_upstream_errors", "Failed attempts by endpoint and error class", errors_f.clone());
        let inflight_f = Family::<EndpointLabel, Gauge>::default();
        r.register("routesim_gateway_upstream_in_flight", "Attempts in flight per endpoint", inflight_f.clone());
        let cost_f = Family::<EndpointLabel, Counter<f64, AtomicU64>>::default();
        r.register("routesim_gateway_cost_usd", "USD spent per endpoint (from usage and prices)", cost_f.clone());
        let tokens_f = Family::<EndpointKindLabel, Counter>::default();
        r.register("routesim_gateway_tokens", "Tokens billed per endpoint, by kind", tokens_f.clone());
        let circuit_f = Family::<EndpointLabel, Gauge>::default();
        r.register(
            "routesim_gateway_circuit_state",
            "Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open",
            circuit_f.clone(),
        );
        let healthy_f = Family::<EndpointLabel, Gauge>::default();
        r.register("routesim_gateway_endpoint_healthy", "Last health check: 1 healthy, 0 not", healthy_f.clone());
        let ep_latency_f =
            Family::<EndpointLabel, Histogram>::new_with_constructor(latency_buckets as fn() -> Histogram);
        r.register(
            "routesim_gateway_upstream_duration_seconds",
            "Latency of successful attempts per endpoint",
            ep_latency_f.clone(),
        );
        let families = EndpointFamilies {
            attempts: attempts_f,
            errors: errors_f,
            in_flight: inflight_f,
            cost: cost_f,
            tokens: tokens_f,
            circuit: circuit_f,
            healthy: healthy_f,
            latency: ep_latency_f,
        };
        let endpoints = families.series(endpoints);
        let answers = AnswerMetrics::register(&mut r);
        let rollout = crate::rollout::RolloutMetrics::register(&mut r);
        let quality = QualityMetrics::register(&mut r);
        Metrics {
            families,
            rollout,
            quality,
            answers,
            registry: r,
            requests,
            latency,
            ttft,
            overhead,
            retries,
            fallbacks,
            cache_hits,
            rejected,
            denied,
            batches,
            in_flight,
            log_written,
            log_dropped,
            endpoints,
            ops,
        }
    }

    /// The series of endpoints `ids` (a configuration generation's; a kept endpoint's series are shared).
    pub fn endpoint_series(&self, ids: &[String]) -> Vec<EndpointMetrics> {
        self.families.series(ids)
    }

    /// Counts a request's final status.
    pub fn request(&self, s: Status) {
        let i = Status::ALL.iter().position(|&x| x == s).unwrap_or(0);
        self.requests[i].inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.rollout.refresh();
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

// ----- Upstream answers (issue 28): validation, credentials, stream cuts -----

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointReasonLabel {
    endpoint: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CutLabel {
    reason: &'static str,
}

/// Series about what upstreams answered: refused answers, refused credentials and streams the gateway cut.
/// They count rare events, so their label sets are looked up when they happen.
#[derive(Clone, Debug)]
pub struct AnswerMetrics {
    invalid: Family<EndpointReasonLabel, Counter>,
    auth: Family<EndpointLabel, Counter>,
    cuts: Family<CutLabel, Counter>,
}

impl AnswerMetrics {
    fn register(r: &mut Registry) -> AnswerMetrics {
        let invalid = Family::<EndpointReasonLabel, Counter>::default();
        r.register(
            "routesim_gateway_upstream_invalid_answers",
            "2xx upstream answers that were not a usable completion (treated as server errors), by reason",
            invalid.clone(),
        );
        let auth = Family::<EndpointLabel, Counter>::default();
        r.register(
            "routesim_gateway_upstream_auth_failures",
            "Upstream 401/403 answers: the provider refused the gateway's credentials (circuit opened)",
            auth.clone(),
        );
        let cuts = Family::<CutLabel, Counter>::default();
        r.register(
            "routesim_gateway_stream_cuts",
            "Committed streams the gateway ended with an error event, by reason",
            cuts.clone(),
        );
        AnswerMetrics { invalid, auth, cuts }
    }

    /// Counts an invalid answer of `endpoint` (its id).
    pub fn invalid(&self, endpoint: &str, reason: &'static str) {
        self.invalid.get_or_create(&EndpointReasonLabel { endpoint: endpoint.to_string(), reason }).inc();
    }

    /// Counts an upstream credential failure of `endpoint` (its id).
    pub fn auth_failure(&self, endpoint: &str) {
        self.auth.get_or_create(&EndpointLabel { endpoint: endpoint.to_string() }).inc();
    }

    /// Counts a stream the gateway ended with an error event (`idle_timeout`, `total_timeout`, `broken`,
    /// `no_done`).
    pub fn stream_cut(&self, reason: &'static str) {
        self.cuts.get_or_create(&CutLabel { reason }).inc();
    }
}

// ----- Answer quality (issue 30): cascade verdicts and escalations, client feedback -----

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabel {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyVerdictLabel {
    policy: String,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// A cascade verifier's verdict on an answer, as `routesim_gateway_cascade_verdicts_total` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CascadeVerdict {
    /// The judge's score reached `min_score`: the answer is served.
    Accepted,
    /// The judge's score was below `min_score`.
    Rejected,
    /// The judge gave no usable score (transport error, timeout, non-2xx, unparsable or out-of-range
    /// score): a rejection.
    JudgeError,
}

impl CascadeVerdict {
    /// Every verdict, in a fixed order.
    pub const ALL: [CascadeVerdict; 3] =
        [CascadeVerdict::Accepted, CascadeVerdict::Rejected, CascadeVerdict::JudgeError];

    /// Its label value.
    pub fn name(self) -> &'static str {
        match self {
            CascadeVerdict::Accepted => "accepted",
            CascadeVerdict::Rejected => "rejected",
            CascadeVerdict::JudgeError => "judge_error",
        }
    }
}

/// Series about answer quality: `routesim_gateway_cascade_verdicts_total{policy, verdict}` (one per answer a
/// cascade's verifier ran on), `routesim_gateway_cascade_escalations_total{policy}` (rejected answers sent on
/// to a later stage; a rejection with no eligible later stage is served and not counted) and
/// `routesim_gateway_feedback_total{outcome}` (`POST /v1/feedback` calls, `recorded` or `refused`).
#[derive(Clone, Debug)]
pub struct QualityMetrics {
    verdicts: Family<PolicyVerdictLabel, Counter>,
    escalations: Family<PolicyLabel, Counter>,
    feedback: [Counter; 2],
}

impl QualityMetrics {
    fn register(r: &mut Registry) -> QualityMetrics {
        let verdicts = Family::<PolicyVerdictLabel, Counter>::default();
        r.register(
            "routesim_gateway_cascade_verdicts",
            "Cascade verifier verdicts on answers, by policy and verdict (accepted, rejected, judge_error)",
            verdicts.clone(),
        );
        let escalations = Family::<PolicyLabel, Counter>::default();
        r.register(
            "routesim_gateway_cascade_escalations",
            "Rejected cascade answers escalated to a later stage, by policy",
            escalations.clone(),
        );
        let feedback_f = Family::<OutcomeLabel, Counter>::default();
        r.register(
            "routesim_gateway_feedback",
            "Client feedback calls (POST /v1/feedback), recorded or refused",
            feedback_f.clone(),
        );
        let feedback = ["recorded", "refused"].map(|o| feedback_f.get_or_create(&OutcomeLabel { outcome: o }).clone());
        QualityMetrics { verdicts, escalations, feedback }
    }

    /// Creates the series of cascade policy `policy` at zero (a series that appears with its first event
    /// hides that event from `rate()`).
    pub fn cascade_policy(&self, policy: &str) {
        for v in CascadeVerdict::ALL {
            let _ = self.verdicts.get_or_create(&PolicyVerdictLabel { policy: policy.to_string(), verdict: v.name() });
        }
        let _ = self.escalations.get_or_create(&PolicyLabel { policy: policy.to_string() });
    }

    /// Counts a verdict of cascade policy `policy`.
    pub fn verdict(&self, policy: &str, verdict: CascadeVerdict) {
        self.verdicts.get_or_create(&PolicyVerdictLabel { policy: policy.to_string(), verdict: verdict.name() }).inc();
    }

    /// Counts an escalation of cascade policy `policy`.
    pub fn escalation(&self, policy: &str) {
        self.escalations.get_or_create(&PolicyLabel { policy: policy.to_string() }).inc();
    }

    /// Counts a feedback call, recorded or refused.
    pub fn feedback(&self, recorded: bool) {
        self.feedback[usize::from(!recorded)].inc();
    }
}

/// Cumulative counts of the gateway's own-time histogram (`routesim_gateway_overhead_seconds`) in a rendering
/// of [`Metrics::render`]: (bucket upper bound in seconds, count).
pub fn overhead_buckets(text: &str) -> Vec<(f64, u64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("routesim_gateway_overhead_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, n) = rest.split_once("\"} ")?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, n.trim().parse().ok()?))
        })
        .collect()
}

/// The bucket bound (microseconds) under which quantile `q` of the gateway's own time falls between two
/// snapshots of [`overhead_buckets`] (NaN when nothing was recorded in between).
pub fn overhead_quantile_us(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> f64 {
    let total = after.last().map(|b| b.1).unwrap_or(0).saturating_sub(before.last().map(|b| b.1).unwrap_or(0));
    for (i, (le, n)) in after.iter().enumerate() {
        let d = n.saturating_sub(before.get(i).map(|b| b.1).unwrap_or(0));
        if total > 0 && d as f64 >= q * total as f64 {
            return le * 1e6;
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_series_exist_at_zero_and_count_per_policy() {
        let m = Metrics::new(&["a".to_string()]);
        m.quality.cascade_policy("frugal");
        let text = m.render();
        for series in [
            "routesim_gateway_cascade_verdicts_total{policy=\"frugal\",verdict=\"accepted\"} 0",
            "routesim_gateway_cascade_verdicts_total{policy=\"frugal\",verdict=\"judge_error\"} 0",
            "routesim_gateway_cascade_escalations_total{policy=\"frugal\"} 0",
            "routesim_gateway_feedback_total{outcome=\"recorded\"} 0",
            "routesim_gateway_feedback_total{outcome=\"refused\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
        m.quality.verdict("frugal", CascadeVerdict::Rejected);
        m.quality.verdict("frugal", CascadeVerdict::Rejected);
        m.quality.escalation("frugal");
        m.quality.feedback(false);
        let text = m.render();
        assert!(text.contains("routesim_gateway_cascade_verdicts_total{policy=\"frugal\",verdict=\"rejected\"} 2"));
        assert!(text.contains("routesim_gateway_cascade_escalations_total{policy=\"frugal\"} 1"));
        assert!(text.contains("routesim_gateway_feedback_total{outcome=\"refused\"} 1"));
    }

    #[test]
    fn own_time_quantiles_come_from_the_buckets_recorded_between_two_snapshots() {
        let m = Metrics::new(&["a".to_string()]);
        m.overhead.observe(100e-6);
        let before = overhead_buckets(&m.render());
        assert!(before.len() > 20 && before.last().unwrap().0.is_infinite(), "{before:?}");
        // Between the snapshots: 90 fast samples (3 us) and 10 slow ones (40 us).
        for _ in 0..90 {
            m.overhead.observe(3e-6);
        }
        for _ in 0..10 {
            m.overhead.observe(40e-6);
        }
        let after = overhead_buckets(&m.render());
        assert_eq!(overhead_quantile_us(&before, &after, 0.5), 4.0, "3 us falls in the bucket up to 4 us");
        assert_eq!(overhead_quantile_us(&before, &after, 0.99), 64.0, "40 us falls in the bucket up to 64 us");
        assert!(overhead_quantile_us(&after, &after, 0.5).is_nan(), "nothing recorded in between");
    }
}
