//! The runtime model of one provider endpoint: slots, queue, quotas, service-time draws, errors and faults.
//!
//! The model is passive: the engine asks it to admit an attempt, to draw the attempt's service, and to hand
//! over the next queued attempt when a slot frees. It owns no clock and schedules nothing.

use super::fault::{FaultKind, FaultSpec};
use super::spec::EndpointSpec;
use crate::dist::{Sampler, ToSampler};
use crate::rng::{KeyedRng, StreamBase};
use router_core::state::SlidingWindow;
use router_core::{Duration, ErrorClass, Nanos, Price};
use std::collections::VecDeque;

/// What a provider does with an arriving attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Admission {
    /// A slot is free: service starts now.
    Start,
    /// All slots are busy: the attempt waits in the queue.
    Queued,
    /// Refused at once with this error after `latency` (429 over quota, 503 when full or down).
    Refused {
        /// The error class.
        class: ErrorClass,
        /// How long until the client sees the refusal.
        latency: Nanos,
        /// Retry-After, on 429.
        retry_after: Option<Nanos>,
    },
}

impl Admission {
    /// The HTTP status of a refusal of `class`: 429 over quota, 503 when the queue is full or the endpoint down
    /// (what the live mock answers).
    pub fn refusal_status(class: ErrorClass) -> u16 {
        if class == ErrorClass::RateLimited { 429 } else { 503 }
    }
}

/// The drawn service of one attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Service {
    /// `None` on success.
    pub error: Option<ErrorClass>,
    /// The HTTP status of a failure (see [`STATUSES`]); `None` on success.
    pub status: Option<u16>,
    /// Time from service start to the first token.
    pub ttft: Nanos,
    /// Time from service start to the end of the attempt (success or failure).
    pub duration: Nanos,
}

/// A queued attempt: an opaque handle the engine gave, with its enqueue time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// Engine handle of the attempt.
    pub handle: u64,
    /// When it joined the queue.
    pub since: Nanos,
}

/// One simulated provider endpoint.
#[derive(Debug)]
pub struct Provider {
    slots: u32,
    busy: u32,
    queue: VecDeque<Waiting>,
    queue_capacity: Option<u32>,
    /// Live attempts in `queue` (entries of abandoned attempts are skipped when they reach the head).
    waiting: u32,
    ttft: Sampler,
    tpot: Sampler,
    slowdown: Vec<[f64; 2]>,
    cum_errors: [f64; 4],
    fail_after: f64,
    hang: Nanos,
    retry_after: Nanos,
    reject_latency: Nanos,
    rpm: Option<u64>,
    tpm: Option<u64>,
    window: SlidingWindow<2>,
    price: Price,
    bill_failed_input: bool,
    batch_turnaround: Option<Sampler>,
    outages: u32,
    degradation: f64,
    burst: [f64; 4],
    /// Where each row of the error table ends on the unit interval, base rates plus bursts: see
    /// [`Provider::error_slot`]. Recomputed when a burst starts or ends, not at every draw.
    error_ends: [f64; 4],
}

/// Error classes in the order of the cumulative error table.
const CLASSES: [ErrorClass; 4] = [ErrorClass::RateLimited, ErrorClass::Server, ErrorClass::Server, ErrorClass::Timeout];

/// The HTTP status of each row of the error table, as the live mock answers it: `rate_limited` 429, `server`
/// 500, `unavailable` 503, a hang 504 (when the client has not given up first). Only a router whose error
/// lists name statuses (Portkey's `on_status_codes`) tells 500 from 503; the draws are the same either way.
pub const STATUSES: [u16; 4] = [429, 500, 503, 504];

impl Provider {
    /// A provider from its (validated) scenario spec.
    pub fn new(spec: &EndpointSpec) -> Self {
        let e = spec.errors;
        let mut cum = [e.rate_limited, e.server, e.unavailable, e.timeout];
        for i in 1..4 {
            cum[i] += cum[i - 1];
        }
        Provider {
            slots: spec.slots.max(1),
            busy: 0,
            queue: VecDeque::new(),
            queue_capacity: spec.queue_capacity,
            waiting: 0,
            ttft: spec.ttft.sampler(),
            tpot: spec.tpot.sampler(),
            slowdown: spec.slowdown.clone(),
            cum_errors: cum,
            fail_after: spec.fail_after,
            hang: spec.hang.nanos(),
            retry_after: spec.retry_after.nanos(),
            reject_latency: spec.reject_latency.nanos(),
            rpm: spec.limits.rpm.map(u64::from),
            tpm: spec.limits.tpm,
            window: SlidingWindow::new(Duration::from_secs(60)),
            price: spec.price,
            bill_failed_input: spec.bill_failed_input,
            batch_turnaround: spec.batch_turnaround.as_ref().map(|d| d.sampler()),
            outages: 0,
            degradation: 1.0,
            burst: [0.0; 4],
            error_ends: error_ends(&cum, &[0.0; 4]),
        }
    }

    /// Admits an attempt of `tokens` total tokens at `now`: refuse (down, over quota, full), start, or queue.
    #[inline(always)]
    pub fn admit(&mut self, tokens: u64, now: Nanos) -> Admission {
        if self.outages > 0 {
            return Admission::Refused { class: ErrorClass::Server, latency: self.reject_latency, retry_after: None };
        }
        // The window only feeds the quota checks: an endpoint without a quota keeps none.
        let quota = self.rpm.is_some() || self.tpm.is_some();
        if quota {
            self.window.advance(now);
        }
        let over_rpm = self.rpm.is_some_and(|l| self.window.sum(0) + 1 > l);
        let over_tpm = self.tpm.is_some_and(|l| self.window.sum(1) + tokens > l);
        if over_rpm || over_tpm {
            return Admission::Refused {
                class: ErrorClass::RateLimited,
                latency: self.reject_latency,
                retry_after: Some(self.retry_after),
            };
        }
        let admission = if self.busy < self.slots {
            self.busy += 1;
            Admission::Start
        } else {
            match self.queue_capacity {
                // Only live waiters count: attempts that timed out in the queue no longer take a place.
                Some(cap) if self.waiting as u64 >= cap as u64 => {
                    return Admission::Refused {
                        class: ErrorClass::Server,
                        latency: self.reject_latency,
                        retry_after: None,
                    };
                }
                _ => Admission::Queued,
            }
        };
        // Only admitted attempts use the quota (a 503 for a full queue does not).
        if quota {
            self.window.add(now, 0, 1);
            self.window.add(now, 1, tokens);
        }
        admission
    }

    /// Puts a queued attempt at the back of the queue (after [`Admission::Queued`]).
    pub fn enqueue(&mut self, w: Waiting) {
        self.queue.push_back(w);
        self.waiting += 1;
    }

    /// A queued attempt gave up (client timeout): it no longer counts as waiting. Its entry is dropped lazily
    /// when it reaches the head of the queue.
    pub fn abandon(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// Frees a slot at the end of a service. Returns the next queued attempt, which takes the slot at once.
    /// `skip` tells whether a queued handle was abandoned (timed out) and must be dropped.
    #[inline(always)]
    pub fn release(&mut self, mut skip: impl FnMut(u64) -> bool) -> Option<Waiting> {
        while let Some(w) = self.queue.pop_front() {
            if !skip(w.handle) {
                self.waiting = self.waiting.saturating_sub(1);
                return Some(w);
            }
        }
        self.busy = self.busy.saturating_sub(1);
        None
    }

    /// Draws the service of an attempt with `output_tokens` completion tokens, from uniform `u_err` (the error
    /// draw) and the attempt's random stream.
    pub fn draw<R: rand::Rng + ?Sized>(&self, output_tokens: u32, u_err: f64, rng: &mut R) -> Service {
        self.draw_in_slot(output_tokens, self.error_slot(u_err), rng)
    }

    /// [`Provider::draw`] with the row of the error table already drawn. Inlined into the engine's one call
    /// site (through [`Provider::draw_attempt`]): out of line, its prologue, arguments and the result's copy
    /// cost about 20 instructions per attempt.
    #[inline(always)]
    fn draw_in_slot<R: rand::Rng + ?Sized>(&self, output_tokens: u32, slot: Option<usize>, rng: &mut R) -> Service {
        let error = slot.map(|i| CLASSES[i]);
        let status = slot.map(|i| STATUSES[i]);
        let ttft_s = self.ttft.sample(rng);
        let tpot_s = self.tpot.sample(rng);
        let factor = self.time_factor();
        let ttft = secs(ttft_s * factor);
        let full = secs((ttft_s + output_tokens.saturating_sub(1) as f64 * tpot_s) * factor);
        match error {
            None => Service { error: None, status: None, ttft, duration: full.max(ttft) },
            Some(ErrorClass::Timeout) => Service { error, status, ttft: 0, duration: self.hang },
            Some(ErrorClass::RateLimited) => Service { error, status, ttft: 0, duration: self.reject_latency },
            Some(_) => Service { error, status, ttft: 0, duration: (full as f64 * self.fail_after) as Nanos },
        }
    }

    /// Draws the service of attempt `attempt` of request `request` on endpoint `endpoint` from the provider-luck
    /// stream keyed by `(keys, request, attempt, endpoint)`: the one draw the engine and the live mock
    /// (`routesim mock`) both make, so an attempt has the same luck in the simulator and on the wire.
    #[inline(always)]
    pub fn draw_attempt(
        &self,
        keys: StreamBase,
        request: u64,
        attempt: u32,
        endpoint: u16,
        output_tokens: u32,
    ) -> Service {
        self.draw_attempt_slot(keys, request, attempt, endpoint, output_tokens).0
    }

    /// [`Provider::draw_attempt`], with the row of the error table drawn (0 `rate_limited`, 1 `server`, 2
    /// `unavailable`, 3 `timeout`), which tells a mock the status to answer (500 or 503 for `server`).
    /// Inlined: out of line, the call and the copy of its result cost about 35 instructions per attempt.
    #[inline(always)]
    pub fn draw_attempt_slot(
        &self,
        keys: StreamBase,
        request: u64,
        attempt: u32,
        endpoint: u16,
        output_tokens: u32,
    ) -> (Service, Option<usize>) {
        let mut rng = KeyedRng::new(keys.key(request, ((attempt as u64) << 16) | endpoint as u64));
        let u_err = (rand::Rng::next_u64(&mut rng) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let slot = self.error_slot(u_err);
        (self.draw_in_slot(output_tokens, slot, &mut rng), slot)
    }

    /// The factor service times are multiplied by now: the load-dependent slowdown times any degradation.
    #[inline]
    pub fn time_factor(&self) -> f64 {
        self.slowdown_factor() * self.degradation
    }

    fn slowdown_factor(&self) -> f64 {
        let pts = &self.slowdown;
        if pts.is_empty() {
            return 1.0;
        }
        let u = self.busy as f64 / self.slots as f64;
        if u <= pts[0][0] {
            return pts[0][1];
        }
        for w in pts.windows(2) {
            let ([u0, f0], [u1, f1]) = (w[0], w[1]);
            if u <= u1 {
                return f0 + (f1 - f0) * (u - u0) / (u1 - u0);
            }
        }
        pts[pts.len() - 1][1]
    }

    /// Draws the completion time of a released batch (batch endpoints).
    pub fn batch_turnaround<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Nanos {
        self.batch_turnaround.as_ref().map_or(0, |s| secs(s.sample(rng)))
    }

    /// Cost in USD of an attempt: full price on success, input tokens only (if configured) on failure.
    pub fn cost(&self, success: bool, input: u32, output: u32) -> f64 {
        if success {
            self.price.cost(input, output)
        } else if self.bill_failed_input {
            self.price.cost(input, 0)
        } else {
            0.0
        }
    }

    /// Attempts waiting in the queue (abandoned ones excluded).
    pub fn queue_len(&self) -> usize {
        self.waiting as usize
    }

    /// Busy slots.
    pub fn busy(&self) -> u32 {
        self.busy
    }

    /// Whether an outage is in force (health checks fail).
    pub fn is_down(&self) -> bool {
        self.outages > 0
    }

    /// Starts (`on`) or ends a scheduled fault on this endpoint.
    pub fn apply_fault(&mut self, fault: &FaultSpec, on: bool) {
        match fault.kind {
            FaultKind::Outage => self.set_outage(on),
            FaultKind::Degradation => self.set_degradation(fault.factor.unwrap_or(1.0), on),
            FaultKind::ErrorBurst => {
                self.set_burst(fault.class.unwrap_or(ErrorClass::Server), fault.rate.unwrap_or(0.0), on)
            }
        }
    }

    /// The row of the error table the error draw `u` falls in now (base rates plus bursts), `None` for
    /// success.
    #[inline]
    fn error_slot(&self, u: f64) -> Option<usize> {
        self.error_ends.iter().position(|&end| u < end)
    }

    /// Starts or ends an outage.
    pub fn set_outage(&mut self, on: bool) {
        if on {
            self.outages += 1;
        } else {
            self.outages = self.outages.saturating_sub(1);
        }
    }

    /// Multiplies (on) or divides (off) the service times by `factor`.
    pub fn set_degradation(&mut self, factor: f64, on: bool) {
        if on {
            self.degradation *= factor;
        } else {
            self.degradation /= factor;
        }
    }

    /// Adds (on) or removes (off) an extra error probability for `class`.
    pub fn set_burst(&mut self, class: ErrorClass, rate: f64, on: bool) {
        let i = match class {
            ErrorClass::RateLimited => 0,
            ErrorClass::Server | ErrorClass::Other => 1,
            ErrorClass::Timeout => 3,
        };
        self.burst[i] += if on { rate } else { -rate };
        if self.burst[i].abs() < 1e-12 {
            self.burst[i] = 0.0;
        }
        self.error_ends = error_ends(&self.cum_errors, &self.burst);
    }
}

/// The upper ends of the rows of the error table on the unit interval: the cumulative base rates `cum`, each
/// shifted by the bursts of its row and of the rows before it (a draw below `ends[i]` and not below the ends
/// before it falls in row `i`).
fn error_ends(cum: &[f64; 4], burst: &[f64; 4]) -> [f64; 4] {
    let mut ends = [0.0; 4];
    let mut acc = 0.0;
    for ((end, &c), &b) in ends.iter_mut().zip(cum).zip(burst) {
        // Scheduled error bursts add their probability to the class (summed in this order, bit for bit the
        // thresholds a row-by-row scan computes).
        *end = c + acc + b;
        acc += b;
    }
    ends
}

#[inline]
fn secs(s: f64) -> Nanos {
    router_core::secs_to_nanos(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(extra: &str) -> Provider {
        let text = format!(
            "id = \"p\"\nslots = 1\nttft = {{ dist = \"constant\", value = \"1s\" }}\ntpot = {{ dist = \"constant\", value = \"0s\" }}\n{extra}"
        );
        let spec: EndpointSpec = toml::from_str(&text).expect("spec parses");
        spec.validate().expect("valid");
        Provider::new(&spec)
    }

    #[test]
    fn abandoned_waiters_free_their_queue_place() {
        let mut p = provider("queue_capacity = 1");
        assert_eq!(p.admit(10, 0), Admission::Start);
        assert_eq!(p.admit(10, 0), Admission::Queued);
        p.enqueue(Waiting { handle: 1, since: 0 });
        assert!(matches!(p.admit(10, 0), Admission::Refused { class: ErrorClass::Server, .. }), "queue full");
        // The waiter times out: its place is free again although its entry is still in the deque.
        p.abandon();
        assert_eq!(p.queue_len(), 0);
        assert_eq!(p.admit(10, 0), Admission::Queued);
        p.enqueue(Waiting { handle: 2, since: 0 });
        // When the slot frees, the abandoned entry is skipped and the live one starts.
        let next = p.release(|h| h == 1);
        assert_eq!(next.map(|w| w.handle), Some(2));
        assert_eq!(p.queue_len(), 0);
    }

    #[test]
    fn refusals_for_a_full_queue_do_not_use_the_quota() {
        let mut p = provider("queue_capacity = 0\nlimits = { rpm = 2 }");
        assert_eq!(p.admit(10, 0), Admission::Start);
        for _ in 0..5 {
            assert!(matches!(p.admit(10, 0), Admission::Refused { class: ErrorClass::Server, .. }));
        }
        // Only one request used the quota: one more fits before the 429s start.
        assert!(p.release(|_| false).is_none());
        assert_eq!(p.admit(10, 0), Admission::Start);
        assert!(matches!(p.admit(10, 0), Admission::Refused { class: ErrorClass::RateLimited, .. }));
    }
}
