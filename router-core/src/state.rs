//! Live per-endpoint state: latency estimates, quota usage, error rates, spend, health and the circuit breaker.
//!
//! State changes only through the router's feedback calls (`on_dispatch`, `on_result`, `on_health`), each of
//! which takes `now` from the caller. Nothing here reads a clock, and nothing allocates after construction.

use crate::duration::Duration;
use crate::model::{ErrorClass, Nanos, Outcome, RequestInfo};
use serde::{Deserialize, Serialize};

// ===== configuration =====

/// How a moving average of latency is maintained.
///
/// Either a **time window** (`window = "5m"`): an exponentially time-decayed mean in which a sample's weight
/// falls by `e` every `window`, so 5-15 minute windows are expressed directly and a burst of simultaneous
/// samples is averaged rather than letting the last one win; or a **per-sample** smoothing factor
/// (`alpha = 0.1`): `ema <- alpha * x + (1 - alpha) * ema`, as many gateways (and the SimPy peer model) do.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    /// Time constant of the time-decayed mean.
    #[serde(default)]
    pub window: Option<Duration>,
    /// Per-sample smoothing factor in (0, 1].
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Estimate before any sample (default 0: an unmeasured endpoint looks fast, so it is tried).
    #[serde(default)]
    pub initial: Duration,
}

impl Default for EmaConfig {
    fn default() -> Self {
        EmaConfig { window: Some(Duration::from_secs(300)), alpha: None, initial: Duration::ZERO }
    }
}

/// Circuit-breaker settings: when an endpoint is taken out of rotation, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitConfig {
    /// Whether the breaker is active at all.
    pub enabled: bool,
    /// Open after this many consecutive failed attempts (server errors and timeouts; 429s are quota, not health).
    pub consecutive_failures: u32,
    /// Open when the failure rate over the error window reaches this fraction (0..=1) ...
    pub error_rate: f64,
    /// ... provided the window holds at least this many attempts.
    pub min_requests: u32,
    /// How long an open circuit stays open before a half-open probe is allowed (the cooldown).
    pub cooldown: Duration,
    /// How many probe requests a half-open circuit lets through at once.
    pub half_open_probes: u32,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            enabled: true,
            consecutive_failures: 5,
            error_rate: 0.5,
            min_requests: 20,
            cooldown: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

/// What the router measures per endpoint and over which windows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// End-to-end latency average (successful attempts: queueing plus service, as a client sees it).
    pub latency: EmaConfig,
    /// Time-to-first-token average: kept only for a caller that reads [`EndpointState::ttft`] (no policy does;
    /// see [`EndpointState::track_ttft`]).
    pub ttft: EmaConfig,
    /// Decay time of the peak-sensitive EWMA (tower's `PeakEwma`; default 10 s).
    pub peak_decay: Duration,
    /// Round-trip time assumed for an endpoint with no measurement yet by the peak EWMA (default 1 s), so a new
    /// endpoint is not flooded before it has a baseline.
    pub peak_default: Duration,
    /// Window of the error-rate estimate (default 60 s).
    pub error_window: Duration,
    /// Window of request/token usage compared with the RPM and TPM quotas (default 60 s: "per minute").
    pub quota_window: Duration,
    /// How long a 429 that carries no Retry-After keeps the endpoint out of rotation (default 1 s, and never
    /// longer than the circuit's cooldown). A 429 with Retry-After keeps it out for exactly that long.
    pub retry_after_default: Duration,
    /// Output tokens assumed for quota accounting ([`TrackingConfig::tpm_estimate`]) and cost estimates when a
    /// request does not say (default 256).
    pub default_output_tokens: u32,
    /// Circuit breaker.
    pub circuit: CircuitConfig,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            latency: EmaConfig::default(),
            ttft: EmaConfig::default(),
            peak_decay: Duration::from_secs(10),
            peak_default: Duration::from_secs(1),
            error_window: Duration::from_secs(60),
            quota_window: Duration::from_secs(60),
            retry_after_default: Duration::from_secs(1),
            default_output_tokens: 256,
            circuit: CircuitConfig::default(),
        }
    }
}

impl TrackingConfig {
    /// The router's one estimate of the tokens a request uses against an endpoint's TPM quota: its input tokens
    /// plus its expected output tokens, or [`TrackingConfig::default_output_tokens`] when it does not say.
    ///
    /// The quota filter admits the request on an endpoint only if the tokens already in the endpoint's window
    /// plus this estimate stay within its `tpm`; `on_dispatch` adds exactly this estimate to the window, so the
    /// next decision sees what this one assumed; `on_result` adds the output tokens produced beyond it. An
    /// overestimate is not given back: the reservation stays in the window until it slides out.
    #[inline]
    pub fn tpm_estimate(&self, req: &RequestInfo) -> u64 {
        req.input_tokens as u64 + req.expected_output_tokens.unwrap_or(self.default_output_tokens) as u64
    }

    /// Tokens an attempt of `req` that produced `output_tokens` used beyond its [`TrackingConfig::tpm_estimate`]
    /// (0 when the estimate covered them).
    #[inline]
    pub fn tpm_beyond_estimate(&self, req: &RequestInfo, output_tokens: u32) -> u64 {
        (req.input_tokens as u64 + output_tokens as u64).saturating_sub(self.tpm_estimate(req))
    }
}

// ===== time decay =====

/// `exp(-x)` for `x >= 0`: the weight left to a sample `x` time constants old.
///
/// Samples usually arrive a tiny fraction of a time constant apart (a millisecond against a window of
/// minutes), where a 5-term Taylor series is exact to within 1e-17, far below `f64` resolution, and
/// several times cheaper than `exp`.
#[inline]
pub fn decay(x: f64) -> f64 {
    if x < 1e-3 { 1.0 - x * (1.0 - x / 2.0 * (1.0 - x / 3.0 * (1.0 - x / 4.0))) } else { (-x).exp() }
}

// ===== impl Ema =====

/// A moving average of a latency-like quantity (see [`EmaConfig`]).
#[derive(Clone, Copy, Debug)]
pub struct Ema {
    mode: EmaMode,
    /// Decayed sum of samples (time mode) or the current average (alpha mode), in nanoseconds.
    sum: f64,
    /// Decayed count of samples (time mode).
    weight: f64,
    last: Nanos,
    samples: u64,
    /// The estimate, kept up to date by `observe`.
    value: f64,
}

#[derive(Clone, Copy, Debug)]
enum EmaMode {
    Time { tau_ns: f64 },
    Alpha(f64),
}

impl Ema {
    /// A fresh average configured by `cfg`. A config with neither window nor alpha falls back to a 5 minute window.
    pub fn new(cfg: &EmaConfig) -> Self {
        let mode = match (cfg.alpha, cfg.window) {
            (Some(a), _) => EmaMode::Alpha(a.clamp(f64::MIN_POSITIVE, 1.0)),
            (None, Some(w)) => EmaMode::Time { tau_ns: (w.nanos().max(1)) as f64 },
            (None, None) => EmaMode::Time { tau_ns: 300e9 },
        };
        let initial = cfg.initial.nanos() as f64;
        Ema { mode, sum: initial, weight: 0.0, last: 0, samples: 0, value: initial }
    }

    /// Adds a sample `x` (nanoseconds) observed at `now`.
    #[inline]
    pub fn observe(&mut self, x: Nanos, now: Nanos) {
        let decay = self.decay_at(now);
        self.observe_decayed(x, now, decay);
    }

    /// The weight a time-mode average gives at `now` to the samples so far (0 before any sample; unused in
    /// alpha mode).
    #[inline]
    fn decay_at(&self, now: Nanos) -> f64 {
        match self.mode {
            EmaMode::Time { tau_ns } if self.samples > 0 => decay(now.saturating_sub(self.last) as f64 / tau_ns),
            _ => 0.0,
        }
    }

    /// Whether `other` decays as this average does: both in time mode with the same time constant, their last
    /// samples at the same time, and both with samples or both without. Then their `decay_at` agree at any time.
    #[inline]
    fn decays_as(&self, other: &Ema) -> bool {
        matches!((self.mode, other.mode), (EmaMode::Time { tau_ns: a }, EmaMode::Time { tau_ns: b }) if a == b)
            && self.last == other.last
            && (self.samples == 0) == (other.samples == 0)
    }

    /// [`Ema::observe`] with `decay` = `self.decay_at(now)`, computed by the caller.
    #[inline]
    fn observe_decayed(&mut self, x: Nanos, now: Nanos, decay: f64) {
        let x = x as f64;
        match self.mode {
            EmaMode::Alpha(a) => self.sum = a * x + (1.0 - a) * self.sum,
            EmaMode::Time { .. } => {
                self.sum = self.sum * decay + x;
                self.weight = self.weight * decay + 1.0;
            }
        }
        self.last = now;
        self.samples += 1;
        // Divide once here rather than on every read: policies read far more often than results arrive.
        self.value = match self.mode {
            EmaMode::Alpha(_) => self.sum,
            EmaMode::Time { .. } => self.sum / self.weight,
        };
    }

    /// The current estimate in nanoseconds (the configured initial value before any sample).
    #[inline]
    pub fn value(&self) -> f64 {
        self.value
    }

    /// Number of samples seen.
    #[inline]
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

// ===== impl PeakEwma =====

/// Peak-sensitive EWMA of round-trip time, after tower's `PeakEwma` (itself from Finagle), as written in
/// tower's `tower/src/load/peak_ewma.rs` (`RttEstimate::decay` and `RttEstimate::update`).
///
/// The estimate decays toward zero with time constant `decay`, so an endpoint that was slow a while ago becomes
/// attractive again: reading it at `now` gives the last value x `exp(-elapsed / decay)`. A sample is taken in
/// two steps, **decay, then blend**: the estimate is first decayed to `now` (tower decays it on every
/// `load()`, which its balancer calls before each pick; here reads are pure, so the decay is applied when the
/// sample arrives); a sample above that decayed estimate replaces it at once (the peak), and a sample below it
/// is blended into it with weight `1 - exp(-elapsed / decay)`, `elapsed` being the time since the last sample.
/// The load is `estimate x (in_flight + 1)`; an endpoint never measured counts as `default` (1 s) so that it
/// is not flooded before a baseline exists.
#[derive(Clone, Copy, Debug)]
pub struct PeakEwma {
    rtt: f64,
    updated: Nanos,
    decay_ns: f64,
    measured: bool,
}

impl PeakEwma {
    /// A fresh estimate with the given decay time and default round-trip time.
    pub fn new(decay: Duration, default: Duration) -> Self {
        PeakEwma { rtt: default.nanos() as f64, updated: 0, decay_ns: decay.nanos().max(1) as f64, measured: false }
    }

    /// Records a round-trip time sample at `now`: decay the estimate to `now`, then take the sample as the new
    /// peak if it is above it, else blend it in (see [`PeakEwma`]).
    #[inline]
    pub fn observe(&mut self, rtt: Nanos, now: Nanos) {
        let rtt = rtt as f64;
        let elapsed = now.saturating_sub(self.updated) as f64;
        let decay = decay(elapsed / self.decay_ns);
        // Decay: the estimate every read at `now` sees.
        let current = self.rtt * decay;
        if !self.measured || rtt > current {
            self.rtt = rtt;
            self.measured = true;
        } else {
            // Blend: move the decayed estimate toward the sample by the recency weight, as tower's `update`.
            self.rtt = current * decay + rtt * (1.0 - decay);
        }
        self.updated = now;
    }

    /// The estimate at `now`, decayed since the last sample (nanoseconds).
    #[inline]
    pub fn estimate(&self, now: Nanos) -> f64 {
        if !self.measured {
            return self.rtt;
        }
        let elapsed = now.saturating_sub(self.updated) as f64;
        self.rtt * decay(elapsed / self.decay_ns)
    }

    /// tower's load measure: decayed estimate x (in-flight + 1).
    #[inline]
    pub fn cost(&self, now: Nanos, in_flight: u32) -> f64 {
        self.estimate(now) * (in_flight as f64 + 1.0)
    }
}

// ===== impl SlidingWindow =====

/// Buckets of a [`SlidingWindow`]: a window of span `w` counts in buckets `w / BUCKETS` wide, starting at
/// multiples of that width.
pub const BUCKETS: usize = 60;

/// Counters over a sliding time window, kept in 60 buckets (one second each for a one-minute window).
/// Memory is fixed; advancing costs at most one pass over the buckets.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct SlidingWindow<const K: usize> {
    // The sums and the bucket clock first: reading the window touches one cache line.
    sums: [u64; K],
    width: Nanos,
    head_start: Nanos,
    /// When the current bucket ends: `head_start + width`, saturating (see [`SlidingWindow::next_boundary`]).
    head_end: Nanos,
    head: usize,
    buckets: [[u64; K]; BUCKETS],
}

impl<const K: usize> SlidingWindow<K> {
    /// A window of the given span (at least 60 ns).
    pub fn new(span: Duration) -> Self {
        let width = (span.nanos() / BUCKETS as u64).max(1);
        SlidingWindow { width, head: 0, head_start: 0, head_end: width, buckets: [[0; K]; BUCKETS], sums: [0; K] }
    }

    /// Moves the window forward to `now`, forgetting buckets that fell out of it.
    #[inline]
    pub fn advance(&mut self, now: Nanos) {
        if now < self.head_end {
            return;
        }
        let steps = (now - self.head_start) / self.width;
        if steps >= BUCKETS as u64 {
            self.buckets = [[0; K]; BUCKETS];
            self.sums = [0; K];
            self.head_start = now - now % self.width;
            self.head_end = self.head_start.saturating_add(self.width);
            return;
        }
        for _ in 0..steps {
            // The next bucket, round the ring (a comparison, not a remainder by 60).
            self.head = if self.head + 1 == BUCKETS { 0 } else { self.head + 1 };
            for k in 0..K {
                self.sums[k] -= self.buckets[self.head][k];
            }
            self.buckets[self.head] = [0; K];
        }
        self.head_start += steps * self.width;
        self.head_end = self.head_start.saturating_add(self.width);
    }

    /// Adds `v` to counter `k` in the current bucket (after advancing to `now`).
    #[inline]
    pub fn add(&mut self, now: Nanos, k: usize, v: u64) {
        self.advance(now);
        self.buckets[self.head][k] += v;
        self.sums[k] += v;
    }

    /// Adds `v[k]` to every counter `k` in the current bucket (after advancing to `now`): [`SlidingWindow::add`]
    /// for each counter, with one advance.
    #[inline]
    pub fn add_all(&mut self, now: Nanos, v: [u64; K]) {
        self.advance(now);
        let bucket = &mut self.buckets[self.head];
        for k in 0..K {
            bucket[k] += v[k];
            self.sums[k] += v[k];
        }
    }

    /// The sum of counter `k` over the window, as of the last advance.
    #[inline]
    pub fn sum(&self, k: usize) -> u64 {
        self.sums[k]
    }

    /// When the current bucket ends: advancing to any earlier time changes nothing. Buckets start at
    /// multiples of the bucket width, so windows of equal span share their boundaries.
    #[inline]
    pub fn next_boundary(&self) -> Nanos {
        self.head_end
    }
}

// ===== impl Circuit =====

/// State of an endpoint's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Circuit {
    /// Normal operation.
    Closed,
    /// Out of rotation until the given time, then half-open.
    Open {
        /// When the cooldown ends.
        until: Nanos,
    },
    /// Cooldown over: a limited number of probe requests may go through; their result closes or re-opens it.
    HalfOpen {
        /// Probes currently in flight.
        probes: u32,
    },
}

// ===== impl EndpointState =====

const QUOTA_REQUESTS: usize = 0;
const QUOTA_TOKENS: usize = 1;
const ERR_ATTEMPTS: usize = 0;
const ERR_FAILURES: usize = 1;

/// Everything the router knows about one endpoint right now.
///
/// Laid out (`repr(C)`) with what the eligibility filter, the scorers and the feedback read first, so that
/// they touch the first few cache lines of each endpoint's state and not its window buckets.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct EndpointState {
    /// Circuit breaker state.
    pub circuit: Circuit,
    /// A 429 with Retry-After keeps the endpoint out of rotation until this time.
    pub throttled_until: Nanos,
    /// Attempts dispatched and not yet finished.
    pub in_flight: u32,
    /// Consecutive failed attempts (reset by a success).
    pub consecutive_failures: u32,
    /// Health as last reported by a health check (starts healthy).
    pub healthy: bool,
    /// Whether results update [`EndpointState::peak`]: a router clears it when none of its policies reads the
    /// peak EWMA (only `p2c` does), which saves an `exp` per successful attempt.
    pub track_peak: bool,
    /// Whether successful results update [`EndpointState::ttft`]. No policy of router-core reads the TTFT
    /// average, so a router clears it (for a time-windowed average, which the default is, that saves an `exp`
    /// per successful attempt); a caller that reads the average sets it.
    pub track_ttft: bool,
    /// Latency average of successful attempts.
    pub latency: Ema,
    /// Peak-sensitive EWMA of latency, kept up to date only while [`EndpointState::track_peak`] is set.
    pub peak: PeakEwma,
    /// Time-to-first-token average, kept up to date only while [`EndpointState::track_ttft`] is set.
    pub ttft: Ema,
    /// Total spend on this endpoint in USD.
    pub spend_usd: f64,
    /// Attempts dispatched in total.
    pub dispatched: u64,
    /// Failed attempts in total.
    pub failed: u64,
    // The windows last: feedback touches their sums and one bucket each, not the 60 buckets between.
    quota: SlidingWindow<2>,
    errors: SlidingWindow<2>,
    /// What LiteLLM's router strategies and cooldowns remember about this endpoint (see [`CompatState`]).
    pub compat: CompatState,
}

impl EndpointState {
    /// Fresh state: healthy, closed circuit, no history.
    pub fn new(cfg: &TrackingConfig) -> Self {
        EndpointState {
            in_flight: 0,
            latency: Ema::new(&cfg.latency),
            ttft: Ema::new(&cfg.ttft),
            peak: PeakEwma::new(cfg.peak_decay, cfg.peak_default),
            track_peak: true,
            track_ttft: true,
            quota: SlidingWindow::new(cfg.quota_window),
            errors: SlidingWindow::new(cfg.error_window),
            spend_usd: 0.0,
            healthy: true,
            throttled_until: 0,
            circuit: Circuit::Closed,
            consecutive_failures: 0,
            dispatched: 0,
            failed: 0,
            compat: CompatState::default(),
        }
    }

    /// Moves the sliding windows to `now`.
    #[inline]
    pub fn advance(&mut self, now: Nanos) {
        self.quota.advance(now);
        self.errors.advance(now);
    }

    /// The earliest time at which [`EndpointState::advance`] would change anything.
    #[inline]
    pub fn next_boundary(&self) -> Nanos {
        self.quota.next_boundary().min(self.errors.next_boundary())
    }

    /// Requests counted in the quota window.
    #[inline]
    pub fn window_requests(&self) -> u64 {
        self.quota.sum(QUOTA_REQUESTS)
    }

    /// Tokens counted in the quota window.
    #[inline]
    pub fn window_tokens(&self) -> u64 {
        self.quota.sum(QUOTA_TOKENS)
    }

    /// Failure rate of attempts finished in the error window (0 with no attempts).
    #[inline]
    pub fn error_rate(&self) -> f64 {
        let n = self.errors.sum(ERR_ATTEMPTS);
        if n == 0 { 0.0 } else { self.errors.sum(ERR_FAILURES) as f64 / n as f64 }
    }

    /// Attempts finished in the error window.
    #[inline]
    pub fn window_attempts(&self) -> u64 {
        self.errors.sum(ERR_ATTEMPTS)
    }

    /// Whether the circuit lets a request through at `now` (closed, half-open with a free probe, or open with
    /// its cooldown over).
    #[inline]
    pub fn circuit_allows(&self, now: Nanos, cfg: &CircuitConfig) -> bool {
        match self.circuit {
            Circuit::Closed => true,
            Circuit::Open { until } => now >= until,
            Circuit::HalfOpen { probes } => probes < cfg.half_open_probes.max(1),
        }
    }

    /// Records a dispatch at `now` that is expected to use `tokens` tokens of the TPM quota (the router passes
    /// [`TrackingConfig::tpm_estimate`]).
    #[inline]
    pub fn on_dispatch(&mut self, tokens: u64, now: Nanos, cfg: &CircuitConfig) {
        self.in_flight += 1;
        self.dispatched += 1;
        let mut counts = [0; 2];
        (counts[QUOTA_REQUESTS], counts[QUOTA_TOKENS]) = (1, tokens);
        self.quota.add_all(now, counts);
        match self.circuit {
            Circuit::Open { until } if now >= until => self.circuit = Circuit::HalfOpen { probes: 1 },
            Circuit::HalfOpen { probes } if probes < cfg.half_open_probes.max(1) => {
                self.circuit = Circuit::HalfOpen { probes: probes + 1 }
            }
            _ => {}
        }
    }

    /// Records the outcome of an attempt at `now`: latency averages, errors, spend, throttling and the circuit.
    /// `extra_tokens` are tokens not counted at dispatch (see [`TrackingConfig::tpm_beyond_estimate`]).
    #[inline]
    pub fn on_result(&mut self, outcome: &Outcome, cost_usd: f64, extra_tokens: u64, now: Nanos, cfg: &TrackingConfig) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.spend_usd += cost_usd;
        if extra_tokens > 0 {
            self.quota.add(now, QUOTA_TOKENS, extra_tokens);
        }
        let health_failure = matches!(outcome.error, Some(ErrorClass::Server | ErrorClass::Timeout));
        self.errors.add(now, ERR_ATTEMPTS, 1);
        match outcome.error {
            None => {
                // The two averages usually share their window and their last sample (a streamed success
                // updates both): then the decay factor is the same number, computed once.
                let ttft = outcome.ttft.filter(|_| self.track_ttft);
                let shared = ttft.is_some() && self.ttft.decays_as(&self.latency);
                let decay = self.latency.decay_at(now);
                self.latency.observe_decayed(outcome.latency, now, decay);
                if self.track_peak {
                    self.peak.observe(outcome.latency, now);
                }
                if let Some(t) = ttft {
                    let decay = if shared { decay } else { self.ttft.decay_at(now) };
                    self.ttft.observe_decayed(t, now, decay);
                }
                self.consecutive_failures = 0;
            }
            Some(class) => {
                self.failed += 1;
                if health_failure {
                    self.errors.add(now, ERR_FAILURES, 1);
                    self.consecutive_failures += 1;
                    // A timeout is also a latency observation: the endpoint was at least this slow.
                    if class == ErrorClass::Timeout && self.track_peak {
                        self.peak.observe(outcome.latency, now);
                    }
                }
                if class == ErrorClass::RateLimited {
                    let wait = outcome
                        .retry_after
                        .unwrap_or(cfg.circuit.cooldown.nanos().min(cfg.retry_after_default.nanos()));
                    self.throttled_until = self.throttled_until.max(now.saturating_add(wait));
                }
            }
        }
        self.update_circuit(health_failure, outcome.error.is_none(), now, &cfg.circuit);
    }

    /// Opens the circuit at `now` for the cooldown, whatever the error counts say: for a failure the caller
    /// knows will repeat on every request (an upstream refusing the credentials it is sent). No-op when the
    /// breaker is disabled.
    pub fn open_circuit(&mut self, now: Nanos, cfg: &CircuitConfig) {
        if cfg.enabled {
            self.circuit = Circuit::Open { until: now.saturating_add(cfg.cooldown.nanos()) };
        }
    }

    fn update_circuit(&mut self, failure: bool, success: bool, now: Nanos, cfg: &CircuitConfig) {
        if !cfg.enabled {
            return;
        }
        let open = Circuit::Open { until: now.saturating_add(cfg.cooldown.nanos()) };
        match self.circuit {
            Circuit::HalfOpen { probes } => {
                if failure {
                    self.circuit = open;
                } else if success {
                    self.circuit = Circuit::Closed;
                    self.consecutive_failures = 0;
                } else {
                    self.circuit = Circuit::HalfOpen { probes: probes.saturating_sub(1) };
                }
            }
            Circuit::Closed if failure => {
                let by_count = cfg.consecutive_failures > 0 && self.consecutive_failures >= cfg.consecutive_failures;
                let by_rate =
                    self.window_attempts() >= cfg.min_requests.max(1) as u64 && self.error_rate() >= cfg.error_rate;
                if by_count || by_rate {
                    self.circuit = open;
                }
            }
            _ => {}
        }
    }
}

// ===== impl CompatState =====

/// Most latency samples a LiteLLM latency list keeps (its `max_latency_list_size`, default 10).
pub const MAX_LATENCY_SAMPLES: usize = 32;

/// One calendar minute, as LiteLLM keys its usage counters (`%Y-%m-%d-%H-%M`); time 0 falls `origin` into a
/// minute (see [`CompatState::set_calendar_origin`]), by default on its start.
const MINUTE: Nanos = 60_000_000_000;

/// The per-deployment memory of LiteLLM's router, kept so that its strategies can be reproduced exactly
/// (`crate::policy::compat`): usage counters per calendar minute (successes, failures, tokens of successes,
/// as `track_deployment_metrics.py` and the strategies' `{model_group}_map` count them), the latency and
/// time-to-first-token lists of `lowest_latency.py`, and the `failed_calls` counter of the legacy
/// `allowed_fails` cooldown. Fixed size: updating it never allocates.
#[derive(Clone, Debug)]
pub struct CompatState {
    /// Where time 0 falls in its calendar minute (below one minute).
    origin: Nanos,
    minute: u64,
    successes: u64,
    failures: u64,
    success_tokens: u64,
    /// Attempts sent this minute, counted at dispatch whatever their outcome (the `rpm` counter of
    /// usage-based-routing-v2's pre-call check).
    dispatches: u64,
    latency: [f64; MAX_LATENCY_SAMPLES],
    latency_len: u8,
    ttft: [f64; MAX_LATENCY_SAMPLES],
    ttft_len: u8,
    /// When a latency list was last written (LiteLLM resets the group map's `ttl` on every write).
    pub latency_written: Option<Nanos>,
    /// Failures counted against `allowed_fails`, and when that counter expires (`failed_calls`, ttl = cooldown).
    pub(crate) fails: u32,
    pub(crate) fails_until: Nanos,
    /// The endpoint is the only deployment of its model group (LiteLLM spares it the 429 and failure-rate
    /// cooldowns).
    pub single_deployment: bool,
}

impl Default for CompatState {
    fn default() -> Self {
        CompatState {
            origin: 0,
            minute: 0,
            successes: 0,
            failures: 0,
            success_tokens: 0,
            dispatches: 0,
            latency: [0.0; MAX_LATENCY_SAMPLES],
            latency_len: 0,
            ttft: [0.0; MAX_LATENCY_SAMPLES],
            ttft_len: 0,
            latency_written: None,
            fails: 0,
            fails_until: 0,
            single_deployment: false,
        }
    }
}

/// LiteLLM's list update (1.110.2's `lowest_latency.py`): append while shorter than `cap`, else drop the oldest
/// sample and append (`latency[1:] + [final_value]`: a sliding window of the last `cap`).
fn push_capped(list: &mut [f64; MAX_LATENCY_SAMPLES], len: &mut u8, cap: usize, x: f64) {
    let cap = cap.clamp(1, MAX_LATENCY_SAMPLES);
    let n = *len as usize;
    if n < cap {
        list[n] = x;
        *len += 1;
    } else {
        list.copy_within(n + 1 - cap..n, 0);
        list[cap - 1] = x;
        *len = cap as u8;
    }
}

impl CompatState {
    /// Puts time 0 `origin` into its calendar minute (taken modulo a minute), so that the minutes LiteLLM counts
    /// in line up with a run that started that far into a wall-clock minute. Clears the minute's counts.
    pub fn set_calendar_origin(&mut self, origin: Nanos) {
        self.origin = origin % MINUTE;
        self.minute = 0;
        self.successes = 0;
        self.failures = 0;
        self.success_tokens = 0;
        self.dispatches = 0;
    }

    /// The calendar minute of `now`.
    #[inline]
    fn minute_of(&self, now: Nanos) -> u64 {
        now.saturating_add(self.origin) / MINUTE
    }

    fn roll(&mut self, now: Nanos) {
        let m = self.minute_of(now);
        if m != self.minute {
            self.minute = m;
            self.successes = 0;
            self.failures = 0;
            self.success_tokens = 0;
            self.dispatches = 0;
        }
    }

    /// Counts an attempt sent at `now` (LiteLLM 1.110.2's usage-based-routing-v2 increments its per-minute `rpm`
    /// key in the pre-call check, before the call, so failures count too).
    pub fn record_dispatch(&mut self, now: Nanos) {
        self.roll(now);
        self.dispatches += 1;
    }

    /// Attempts sent in the calendar minute of `now` (see [`CompatState::record_dispatch`]).
    #[inline]
    pub fn minute_dispatches(&self, now: Nanos) -> u64 {
        if self.minute_of(now) == self.minute { self.dispatches } else { 0 }
    }

    /// (successes, failures, tokens of successes) in the calendar minute of `now`.
    #[inline]
    pub fn minute_counts(&self, now: Nanos) -> (u64, u64, u64) {
        if self.minute_of(now) == self.minute {
            (self.successes, self.failures, self.success_tokens)
        } else {
            (0, 0, 0)
        }
    }

    /// The latency list (seconds per output token; 1000 for a timeout), in LiteLLM's order.
    pub fn latencies(&self) -> &[f64] {
        &self.latency[..self.latency_len as usize]
    }

    /// The time-to-first-token list (seconds, streamed successes only).
    pub fn ttfts(&self) -> &[f64] {
        &self.ttft[..self.ttft_len as usize]
    }

    /// Records an attempt's outcome at `now`; `samples` is the latency list size.
    pub fn record(&mut self, outcome: &Outcome, streaming: bool, samples: usize, now: Nanos) {
        self.roll(now);
        match outcome.error {
            None => {
                self.successes += 1;
                self.success_tokens += outcome.input_tokens as u64 + outcome.output_tokens as u64;
                // LiteLLM divides by the completion tokens; with none the division raises and nothing is logged.
                if outcome.output_tokens > 0 {
                    let per_token = crate::model::nanos_to_secs(outcome.latency) / outcome.output_tokens as f64;
                    push_capped(&mut self.latency, &mut self.latency_len, samples, per_token);
                    if streaming {
                        // 1.110.2 keeps the time to first token itself (`completion_start_time - start_time`).
                        let ttft = crate::model::nanos_to_secs(outcome.ttft.unwrap_or(outcome.latency));
                        push_capped(&mut self.ttft, &mut self.ttft_len, samples, ttft);
                    }
                    self.latency_written = Some(now);
                }
            }
            Some(class) => {
                self.failures += 1;
                if class == ErrorClass::Timeout {
                    // "give 1000s penalty for failing" (a timeout only).
                    push_capped(&mut self.latency, &mut self.latency_len, samples, 1000.0);
                    self.latency_written = Some(now);
                }
            }
        }
    }

    /// LiteLLM's placeholder for a deployment its latency strategy finds healthy but absent from the group's map:
    /// a latency list of one `0` (`"latency_normalized": [0]`), written into the cached map itself, so it stays and
    /// counts in the mean until the window slides past it. No effect on a deployment that has a list.
    pub fn add_placeholder(&mut self) {
        if self.latency_len == 0 {
            self.latency[0] = 0.0;
            self.latency_len = 1;
        }
    }

    /// Forgets the latency lists (the group map's ttl ran out).
    pub fn clear_latencies(&mut self) {
        self.latency_len = 0;
        self.ttft_len = 0;
        self.latency_written = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NANOS_PER_SEC as S;

    fn cfg() -> TrackingConfig {
        TrackingConfig::default()
    }

    #[test]
    fn decay_matches_exp() {
        for x in [0.0, 1e-12, 1e-9, 3.3e-6, 1e-4, 5e-4, 9.99e-4, 1e-3, 0.5, 1.0, 30.0, 800.0] {
            let (a, b) = (decay(x), (-x).exp());
            assert!((a - b).abs() <= 2.0 * f64::EPSILON * b, "x = {x}: {a} vs {b}");
        }
    }

    /// `on_result` shares one decay factor between the latency and TTFT averages when they decay alike: the
    /// averages are bit for bit those of observing each sample on its own, with and without TTFTs.
    #[test]
    fn shared_decay_gives_the_same_averages() {
        let mut c = cfg();
        c.ttft.window = Some(Duration::from_secs(60));
        for ttft_window in [300, 60] {
            c.latency.window = Some(Duration::from_secs(ttft_window));
            let mut st = EndpointState::new(&c);
            let (mut lat, mut ttft) = (Ema::new(&c.latency), Ema::new(&c.ttft));
            for i in 0..2_000u64 {
                let now = i * 7_919_000 + (i % 13) * 1_000;
                let t = (i % 3 != 0).then_some(1_000_000 + i * 17);
                st.on_dispatch(1, now, &c.circuit);
                st.on_result(&Outcome::success(300_000_000 + i * 991, t, 10, 10), 0.0, 0, now, &c);
                lat.observe(300_000_000 + i * 991, now);
                if let Some(t) = t {
                    ttft.observe(t, now);
                }
                assert_eq!(st.latency.value().to_bits(), lat.value().to_bits());
                assert_eq!(st.ttft.value().to_bits(), ttft.value().to_bits());
            }
        }
    }

    #[test]
    fn time_window_ema_averages_simultaneous_samples() {
        let mut e =
            Ema::new(&EmaConfig { window: Some(Duration::from_secs(300)), alpha: None, initial: Duration::ZERO });
        e.observe(S, 10 * S);
        e.observe(3 * S, 10 * S);
        assert!((e.value() - 2.0 * S as f64).abs() < 1.0);
    }

    #[test]
    fn time_window_ema_forgets_with_its_time_constant() {
        let mut e =
            Ema::new(&EmaConfig { window: Some(Duration::from_secs(60)), alpha: None, initial: Duration::ZERO });
        e.observe(S, 0);
        // One window later the old sample weighs e^-1 against the new one's 1.
        e.observe(3 * S, 60 * S);
        let w = (-1.0f64).exp();
        let expected = (w * 1.0 + 3.0) / (w + 1.0) * S as f64;
        assert!((e.value() - expected).abs() < 1e3, "{} vs {expected}", e.value());
        // A single outlier after many samples moves a long-window average only a little: no overreaction.
        let mut e =
            Ema::new(&EmaConfig { window: Some(Duration::from_secs(600)), alpha: None, initial: Duration::ZERO });
        for i in 0..300 {
            e.observe(S, i * S);
        }
        e.observe(30 * S, 300 * S);
        assert!(e.value() < 1.2 * S as f64);
    }

    #[test]
    fn alpha_ema_matches_the_textbook_recurrence() {
        let mut e = Ema::new(&EmaConfig { window: None, alpha: Some(0.1), initial: Duration::ZERO });
        e.observe(10, 0);
        e.observe(20, 1);
        assert!((e.value() - (0.1 * 20.0 + 0.9 * 1.0)).abs() < 1e-9);
    }

    #[test]
    fn peak_ewma_takes_peaks_at_once_and_decays_back() {
        let mut p = PeakEwma::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(p.estimate(0), S as f64, "unmeasured endpoints count as the default rtt");
        p.observe(S / 10, 0);
        p.observe(2 * S, S);
        assert_eq!(p.estimate(S), 2.0 * S as f64);
        // A fast sample 10 s later: the 2 s peak has decayed to 2 e^-1, and the sample blends into that with
        // weight 1 - e^-1.
        p.observe(S / 10, 11 * S);
        let d = (-1.0f64).exp();
        let expected = 2.0 * d * d + 0.1 * (1.0 - d);
        assert!((p.estimate(11 * S) / S as f64 - expected).abs() < 1e-9);
        assert!(p.estimate(100 * S) < 0.01 * S as f64, "the estimate decays while idle");
        assert!(p.cost(11 * S, 3) > p.cost(11 * S, 0) * 3.9);
    }

    #[test]
    fn peak_ewma_decays_before_it_compares_and_blends_a_sample() {
        let mut p = PeakEwma::new(Duration::from_secs(10), Duration::from_secs(1));
        p.observe(2 * S, 0);
        // Ten seconds later the 2 s peak has decayed to 2 e^-1 = 0.74 s: a 1 s sample is above it, a new peak.
        let d = (-1.0f64).exp();
        assert!((p.estimate(10 * S) / S as f64 - 2.0 * d).abs() < 1e-9);
        p.observe(S, 10 * S);
        assert_eq!(p.estimate(10 * S), S as f64, "a sample above the decayed estimate is the new peak");
        // A sample below the decayed estimate is blended into the decayed estimate, never above it.
        let mut p = PeakEwma::new(Duration::from_secs(10), Duration::from_secs(1));
        p.observe(2 * S, 0);
        p.observe(S / 2, 10 * S);
        let got = p.estimate(10 * S) / S as f64;
        assert!(got < 2.0 * d, "a lower sample lowers the decayed estimate ({:.3} s), got {got:.3} s", 2.0 * d);
        assert!(got > 0.5, "{got}");
    }

    #[test]
    fn sliding_window_forgets_old_buckets() {
        let mut w: SlidingWindow<1> = SlidingWindow::new(Duration::from_secs(60));
        for t in 0..60 {
            w.add(t * S, 0, 1);
        }
        assert_eq!(w.sum(0), 60);
        w.advance(90 * S);
        assert_eq!(w.sum(0), 29, "buckets of seconds 0..=30 fell out");
        w.advance(1_000 * S);
        assert_eq!(w.sum(0), 0);
    }

    #[test]
    fn circuit_opens_after_consecutive_failures_and_half_opens_after_cooldown() {
        let c = cfg();
        let mut s = EndpointState::new(&c);
        for i in 0..5 {
            assert!(s.circuit_allows(i * S, &c.circuit));
            s.on_dispatch(1, i * S, &c.circuit);
            s.on_result(&Outcome::failure(ErrorClass::Server, S / 10), 0.0, 0, i * S + S / 10, &c);
        }
        let opened_at = 4 * S + S / 10;
        assert_eq!(s.circuit, Circuit::Open { until: opened_at + 30 * S });
        assert!(!s.circuit_allows(opened_at + 29 * S, &c.circuit));
        assert!(s.circuit_allows(opened_at + 30 * S, &c.circuit));
        // The probe is dispatched: half-open, and no second probe is allowed.
        s.on_dispatch(1, opened_at + 30 * S, &c.circuit);
        assert_eq!(s.circuit, Circuit::HalfOpen { probes: 1 });
        assert!(!s.circuit_allows(opened_at + 30 * S, &c.circuit));
        // A successful probe closes it.
        s.on_result(&Outcome::success(S, None, 10, 10), 0.0, 0, opened_at + 31 * S, &c);
        assert_eq!(s.circuit, Circuit::Closed);
    }

    #[test]
    fn failed_probe_reopens_the_circuit() {
        let c = cfg();
        let mut s = EndpointState::new(&c);
        s.circuit = Circuit::Open { until: 10 };
        s.on_dispatch(1, 10, &c.circuit);
        s.on_result(&Outcome::failure(ErrorClass::Timeout, 5), 0.0, 0, 20, &c);
        assert_eq!(s.circuit, Circuit::Open { until: 20 + 30 * S });
    }

    #[test]
    fn rate_limits_throttle_instead_of_tripping_the_circuit() {
        let c = cfg();
        let mut s = EndpointState::new(&c);
        for i in 0..10 {
            s.on_dispatch(1, i, &c.circuit);
            let mut o = Outcome::failure(ErrorClass::RateLimited, 1);
            o.retry_after = Some(7 * S);
            s.on_result(&o, 0.0, 0, i, &c);
        }
        assert_eq!(s.circuit, Circuit::Closed);
        assert_eq!(s.throttled_until, 9 + 7 * S);
    }

    #[test]
    fn a_429_without_retry_after_throttles_for_the_configured_default_capped_by_the_cooldown() {
        let mut c = cfg();
        let throttle = |c: &TrackingConfig| {
            let mut s = EndpointState::new(c);
            s.on_dispatch(1, 5, &c.circuit);
            s.on_result(&Outcome::failure(ErrorClass::RateLimited, 1), 0.0, 0, 5, c);
            s.throttled_until - 5
        };
        assert_eq!(throttle(&c), S, "default: one second");
        // A time-scaled gateway (routesim live) shortens it like every other duration.
        c.retry_after_default = Duration::from_millis(200);
        assert_eq!(throttle(&c), S / 5);
        c.retry_after_default = Duration::from_secs(60);
        assert_eq!(throttle(&c), 30 * S, "never longer than the circuit cooldown");
    }

    #[test]
    fn error_rate_trips_the_circuit_with_enough_volume() {
        let mut c = cfg();
        c.circuit.consecutive_failures = 0;
        let mut s = EndpointState::new(&c);
        for i in 0..40u64 {
            s.on_dispatch(1, i, &c.circuit);
            let o = if i % 2 == 0 { Outcome::failure(ErrorClass::Server, 1) } else { Outcome::success(1, None, 1, 1) };
            s.on_result(&o, 0.0, 0, i, &c);
            if i < 19 {
                assert_eq!(s.circuit, Circuit::Closed, "not before min_requests attempts");
            }
        }
        assert!(matches!(s.circuit, Circuit::Open { .. }));
    }
}
