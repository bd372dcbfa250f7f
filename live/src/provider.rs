//! The provider model in real time: one scenario endpoint's [`Provider`] behind a mutex, on a scaled clock,
//! for the mock upstreams of `routesim mock` and `routesim live`.
//!
//! Nothing here re-implements the model: admission (slots, queue, RPM/TPM quotas), the attempt's draw
//! (errors by class, TTFT, TPOT, slowdown, degradation), release of a slot to the next waiter, faults and
//! prices are the very calls the engine makes ([`Provider::admit`], [`Provider::draw_attempt`],
//! [`Provider::release`], [`Provider::apply_fault`], [`Provider::cost`]). What this module adds is time: the
//! engine's virtual nanoseconds become `(Instant - start) x time_scale`, faults are applied when the clock
//! passes their start and end (lazily, at the next call, in the engine's order), and a queued attempt waits
//! on a channel that the slot's release fires.

use router_core::Nanos;
use sim::provider::{Admission, EndpointSpec, FaultSpec, Provider, Service, Waiting};
use sim::rng::StreamBase;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A scaled clock: virtual time runs `scale` times faster than real time from `start`.
#[derive(Clone, Copy, Debug)]
pub struct LiveClock {
    start: Instant,
    scale: f64,
}

impl LiveClock {
    /// A clock starting now; `scale` > 0 (10 = ten virtual seconds per real second).
    pub fn new(scale: f64) -> LiveClock {
        LiveClock { start: Instant::now(), scale }
    }

    /// A clock that started at `start`.
    pub fn starting_at(start: Instant, scale: f64) -> LiveClock {
        LiveClock { start, scale }
    }

    /// The time scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Virtual nanoseconds since the start.
    pub fn now(&self) -> Nanos {
        (Instant::now().saturating_duration_since(self.start).as_nanos() as f64 * self.scale) as Nanos
    }

    /// The real span of `ns` virtual nanoseconds.
    pub fn real(&self, ns: Nanos) -> Duration {
        Duration::from_nanos((ns as f64 / self.scale) as u64)
    }

    /// The instant at which virtual time reaches `t`.
    pub fn instant_at(&self, t: Nanos) -> Instant {
        self.start + self.real(t)
    }
}

/// What the live provider does with an arriving attempt.
#[derive(Debug)]
pub enum LiveAdmission {
    /// Service starts now (virtual time `at`).
    Start {
        /// Virtual start time.
        at: Nanos,
    },
    /// All slots are busy: wait on the ticket until a slot is handed over.
    Queued(QueueTicket),
    /// Refused at once (429 over quota, 503 when full or down).
    Refused(Admission),
}

/// A place in a provider's queue. Awaiting [`QueueTicket::wait`] yields the virtual time the slot was handed
/// over; dropping the ticket before then (the client went away, a gateway timeout) abandons the place, as
/// the engine's queue timeout does.
#[derive(Debug)]
pub struct QueueTicket {
    handle: u64,
    rx: Option<oneshot::Receiver<Nanos>>,
    provider: Arc<LiveProvider>,
}

impl QueueTicket {
    /// Waits for a slot; returns the virtual time service starts.
    pub async fn wait(mut self) -> Nanos {
        let rx = self.rx.take().expect("a ticket is waited on once");
        match rx.await {
            Ok(t) => t,
            // The provider is gone (the mock stops): nothing will ever start.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        if self.rx.is_some() {
            let mut s = self.provider.lock();
            if s.waiters.remove(&self.handle).is_some() {
                s.model.abandon();
            }
        }
    }
}

struct State {
    model: Provider,
    /// Fault transitions `(time, fault index, on)` in time order, applied up to `next_fault`.
    timeline: Vec<(Nanos, usize, bool)>,
    next_fault: usize,
    /// Queued attempts still waiting, by handle.
    waiters: HashMap<u64, oneshot::Sender<Nanos>>,
    next_handle: u64,
}

/// One endpoint's provider model on a live clock.
pub struct LiveProvider {
    /// The endpoint's spec.
    pub spec: EndpointSpec,
    endpoint: u16,
    keys: StreamBase,
    faults: Vec<FaultSpec>,
    clock: LiveClock,
    state: Mutex<State>,
}

impl std::fmt::Debug for LiveProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveProvider").field("endpoint", &self.spec.id).finish_non_exhaustive()
    }
}

impl LiveProvider {
    /// The provider of endpoint number `endpoint` with its faults; luck keyed by `keys` (the engine's
    /// provider-luck stream of the same seed and replication).
    pub fn new(
        spec: &EndpointSpec,
        endpoint: u16,
        faults: Vec<FaultSpec>,
        keys: StreamBase,
        clock: LiveClock,
    ) -> Arc<LiveProvider> {
        let mut timeline: Vec<(Nanos, usize, bool)> = Vec::with_capacity(faults.len() * 2);
        for (i, f) in faults.iter().enumerate() {
            timeline.push((f.start.nanos(), i, true));
            timeline.push((f.start.nanos().saturating_add(f.duration.nanos()), i, false));
        }
        // The engine pushes every fault's start and end in this order and pops ties first in, first out.
        timeline.sort_by_key(|&(t, i, on)| (t, i, !on));
        Arc::new(LiveProvider {
            spec: spec.clone(),
            endpoint,
            keys,
            faults,
            clock,
            state: Mutex::new(State {
                model: Provider::new(spec),
                timeline,
                next_fault: 0,
                waiters: HashMap::new(),
                next_handle: 0,
            }),
        })
    }

    /// The clock.
    pub fn clock(&self) -> LiveClock {
        self.clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let s_ref = &mut *s;
        while let Some(&(t, i, on)) = s_ref.timeline.get(s_ref.next_fault)
            && t <= now
        {
            s_ref.model.apply_fault(&self.faults[i], on);
            s_ref.next_fault += 1;
        }
        s
    }

    /// Admits an attempt of `tokens` total tokens now.
    pub fn admit(self: &Arc<Self>, tokens: u64) -> LiveAdmission {
        let mut s = self.lock();
        let now = self.clock.now();
        match s.model.admit(tokens, now) {
            Admission::Start => LiveAdmission::Start { at: now },
            Admission::Queued => {
                let handle = s.next_handle;
                s.next_handle += 1;
                let (tx, rx) = oneshot::channel();
                s.model.enqueue(Waiting { handle, since: now });
                s.waiters.insert(handle, tx);
                LiveAdmission::Queued(QueueTicket { handle, rx: Some(rx), provider: self.clone() })
            }
            refused => LiveAdmission::Refused(refused),
        }
    }

    /// Draws the service of attempt `attempt` of request `request` (the engine's keyed draw) at service
    /// start, with the row of the error table drawn (see [`Provider::draw_attempt_slot`]).
    pub fn draw(&self, request: u64, attempt: u32, output_tokens: u32) -> (Service, Option<usize>) {
        self.lock().model.draw_attempt_slot(self.keys, request, attempt, self.endpoint, output_tokens)
    }

    /// Frees a slot at virtual time `at` (the end of a service): the next live waiter, if any, takes it and
    /// starts at `at`.
    pub fn release(&self, at: Nanos) {
        let mut s = self.lock();
        let s = &mut *s;
        loop {
            let waiters = &s.waiters;
            match s.model.release(|h| !waiters.contains_key(&h)) {
                None => return,
                Some(w) => {
                    let tx = s.waiters.remove(&w.handle).expect("a live waiter has a channel");
                    if tx.send(at).is_ok() {
                        return;
                    }
                    // Its ticket is being dropped right now: hand the slot on.
                }
            }
        }
    }

    /// Cost in USD of an attempt that reached the model.
    pub fn cost(&self, success: bool, input: u32, output: u32) -> f64 {
        self.lock().model.cost(success, input, output)
    }

    /// Whether an outage is in force now.
    pub fn is_down(&self) -> bool {
        self.lock().model.is_down()
    }

    /// Busy slots and live waiters now.
    pub fn occupancy(&self) -> (u32, usize) {
        let s = self.lock();
        (s.model.busy(), s.model.queue_len())
    }
}
