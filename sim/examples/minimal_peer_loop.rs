//! The speed of light for `scenarios/peer-simpy-router.toml`: the same model as a minimal event loop, with
//! no router library (or with router-core, see below), no keyed random streams and no metrics beyond a
//! latency sum.
//!
//! ```text
//! cargo run --release -p sim --example minimal_peer_loop -- [RATE] [REQUESTS] [router]   # default 5 1000000
//! ```
//!
//! Poisson arrivals; four endpoints with `slots` servers behind one FIFO queue each; lognormal service
//! times; a server error ends an attempt after half its service draw; every attempt goes to the endpoint
//! with the lowest EMA (alpha 0.1, from 0 s) of dispatch-to-success latency, ties at random; a failed
//! attempt is retried once, at once, on another endpoint. The constants are those of the scenario file.
//!
//! It prints its mean latency and successes (to check against `routesim run` on the scenario: they agree
//! within sampling noise, the random streams being different) and simulated requests per second of wall
//! time: a practical ceiling for any general simulator of this model on the machine. `routesim bench` on
//! the scenario pays, on top of this loop, for everything that makes it a workbench: router-core's policy
//! machinery, common random numbers keyed by request and attempt, HDR histograms, time series and warm-up.
//!
//! With `router`, the loop routes through router-core instead of its own argmin, exactly as a gateway
//! would: the scenario's policy as a `Router`, `decide` for a first attempt, `next_attempt` after a
//! failure, `on_dispatch` and `on_result` as feedback. That is the ceiling for a simulator that runs the
//! production router, which routesim does by design (the same code routes in the gateway).
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus as Rng;
use router_core::{Attempts, Decision, EndpointIdx, ErrorClass, NextAttempt, Outcome, RequestInfo, Router};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// `(slots, median service s, sigma, server error probability)` of each endpoint of the scenario.
const ENDPOINTS: [(u32, f64, f64, f64); 4] =
    [(4, 0.6, 0.4, 0.05), (8, 1.0, 0.5, 0.02), (16, 1.5, 0.6, 0.01), (32, 2.5, 0.8, 0.005)];
const ALPHA: f64 = 0.1;
const FAIL_AFTER: f64 = 0.5;
const MAX_ATTEMPTS: u8 = 2;

struct Endpoint {
    slots: u32,
    busy: u32,
    queue: VecDeque<u32>,
    service: LogNormal<f64>,
    p_fail: f64,
    ema: f64,
}

#[derive(Clone, Copy, Default)]
struct Request {
    arrived: f64,
    dispatched: f64,
    /// Endpoints tried, one bit each.
    tried: u8,
    /// Arrival number (the request id the router sees).
    id: u32,
    attempts: u8,
    endpoint: u8,
    fails: bool,
    /// The router's record of the attempts (router mode).
    log: Option<Attempts>,
}

/// The random streams: one per purpose.
struct Streams {
    service: Rng,
    errors: Rng,
    ties: Rng,
}

struct Model {
    endpoints: Vec<Endpoint>,
    requests: Vec<Request>,
    /// Completions: (time as bits, which order like the times for non-negative times; sequence; request).
    events: BinaryHeap<Reverse<(u64, u64, u32)>>,
    seq: u64,
    rng: Streams,
    /// router-core's router for the scenario's policy, and the request it is shown (router mode).
    router: Option<(Router, RequestInfo)>,
}

/// Seconds to router-core's nanoseconds.
fn ns(s: f64) -> u64 {
    (s * 1e9) as u64
}

impl Model {
    /// The untried endpoint with the lowest EMA, ties broken at random.
    fn pick(&mut self, tried: u8) -> usize {
        let (mut best, mut tied, mut n) = (f64::INFINITY, [0usize; 4], 0);
        for (k, e) in self.endpoints.iter().enumerate() {
            if tried & (1 << k) != 0 {
                continue;
            }
            if e.ema < best {
                (best, tied[0], n) = (e.ema, k, 1);
            } else if e.ema == best {
                tied[n] = k;
                n += 1;
            }
        }
        if n == 1 { tied[0] } else { tied[self.rng.ties.random_range(0..n)] }
    }

    /// Starts serving request `r` on its endpoint at `now`.
    fn start(&mut self, r: u32, now: f64) {
        let k = self.requests[r as usize].endpoint as usize;
        let s = self.endpoints[k].service.sample(&mut self.rng.service);
        let fails = self.rng.errors.random::<f64>() < self.endpoints[k].p_fail;
        self.requests[r as usize].fails = fails;
        let done = now + if fails { FAIL_AFTER * s } else { s };
        self.seq += 1;
        self.events.push(Reverse((done.to_bits(), self.seq, r)));
    }

    /// Sends request `r` to the best untried endpoint at `now` (in router mode: to the router's choice, made
    /// by `decide` for a first attempt and by `next_attempt` for a retry): a free slot serves it, else it
    /// queues. Returns false when the router rejects the request.
    fn dispatch(&mut self, r: u32, now: f64) -> bool {
        let k = match &mut self.router {
            None => self.pick(self.requests[r as usize].tried),
            Some((router, info)) => {
                let req = &mut self.requests[r as usize];
                info.id = req.id as u64;
                let ep = if req.attempts == 0 {
                    let Decision::Route { endpoint, .. } = router.decide(info, ns(now)) else { return false };
                    req.log = Some(Attempts::first(endpoint));
                    endpoint
                } else {
                    EndpointIdx(req.endpoint as u16)
                };
                router.on_dispatch(ep, info, ns(now));
                ep.get()
            }
        };
        let req = &mut self.requests[r as usize];
        (req.endpoint, req.dispatched) = (k as u8, now);
        req.tried |= 1 << k;
        req.attempts += 1;
        let e = &mut self.endpoints[k];
        if e.busy < e.slots {
            e.busy += 1;
            self.start(r, now);
        } else {
            e.queue.push_back(r);
        }
        true
    }

    /// Router mode: feeds the outcome of request `r`'s attempt, ended at `now`, back to the router and,
    /// after a failure, asks it where to retry. Returns whether the request is retried (its endpoint set).
    fn feedback(&mut self, r: u32, now: f64) -> bool {
        let Some((router, info)) = &mut self.router else { return false };
        let req = &mut self.requests[r as usize];
        info.id = req.id as u64;
        let (ep, latency) = (EndpointIdx(req.endpoint as u16), ns(now) - ns(req.dispatched));
        let outcome = if req.fails {
            Outcome::failure(ErrorClass::Server, latency)
        } else {
            Outcome::success(latency, None, 1, 1)
        };
        router.on_result(ep, info, &outcome, ns(now));
        if !req.fails {
            return false;
        }
        let Some(log) = &mut req.log else { return false };
        match router.next_attempt(info, log, &outcome, ns(now)) {
            NextAttempt::Retry { endpoint, .. } => {
                req.endpoint = endpoint.get() as u8;
                true
            }
            NextAttempt::GiveUp(_) => false,
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let router = (args.next().as_deref() == Some("router")).then(|| {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/peer-simpy-router.toml");
        let scenario = sim::scenario::Scenario::load(&file).expect("the peer scenario loads");
        let model = scenario.compile(&file).expect("the peer scenario compiles");
        let router = Router::new(&model.router_configs[0]).expect("the peer policy builds");
        (router, RequestInfo::new(0, 1))
    });
    let started = Instant::now();
    let endpoints = ENDPOINTS
        .iter()
        .map(|&(slots, median, sigma, p_fail)| Endpoint {
            slots,
            busy: 0,
            queue: VecDeque::new(),
            service: LogNormal::new(median.ln(), sigma).expect("valid lognormal"),
            p_fail,
            ema: 0.0,
        })
        .collect();
    let rng = Streams { service: Rng::seed_from_u64(2), errors: Rng::seed_from_u64(3), ties: Rng::seed_from_u64(4) };
    let routed = router.is_some();
    let mut m = Model { endpoints, requests: Vec::new(), events: BinaryHeap::new(), seq: 0, rng, router };
    let (mut arrivals, gap) = (Rng::seed_from_u64(1), Exp::new(rate).expect("positive rate"));
    let mut free: Vec<u32> = Vec::new();
    let (mut next_arrival, mut arrived) = (gap.sample(&mut arrivals), 0u32);
    let (mut succeeded, mut failed, mut latency_sum) = (0u64, 0u64, 0.0f64);
    loop {
        let queued = m.events.peek().map(|Reverse((t, _, _))| f64::from_bits(*t));
        if arrived < n && queued.is_none_or(|q| next_arrival < q) {
            let now = next_arrival;
            arrived += 1;
            next_arrival += gap.sample(&mut arrivals);
            let r = free.pop().unwrap_or_else(|| {
                m.requests.push(Request::default());
                m.requests.len() as u32 - 1
            });
            m.requests[r as usize] = Request { arrived: now, id: arrived, ..Request::default() };
            if !m.dispatch(r, now) {
                failed += 1;
                free.push(r);
            }
            continue;
        }
        let Some(Reverse((t, _, r))) = m.events.pop() else { break };
        let now = f64::from_bits(t);
        let req = m.requests[r as usize];
        let k = req.endpoint as usize;
        match m.endpoints[k].queue.pop_front() {
            Some(next) => m.start(next, now),
            None => m.endpoints[k].busy -= 1,
        }
        let retry = if routed { m.feedback(r, now) } else { req.fails && req.attempts < MAX_ATTEMPTS };
        if retry && m.dispatch(r, now) {
            continue;
        }
        if req.fails {
            failed += 1;
        } else {
            // The loop's own average; in router mode the router keeps its own (fed by `feedback`).
            if !routed {
                let e = &mut m.endpoints[k];
                e.ema = ALPHA * (now - req.dispatched) + (1.0 - ALPHA) * e.ema;
            }
            succeeded += 1;
            latency_sum += now - req.arrived;
        }
        free.push(r);
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{}rate {rate}/s, {n} requests: {succeeded} succeeded, {failed} failed, mean latency {:.4} s; {:.0} requests/s",
        if routed { "router-core, " } else { "" },
        latency_sum / succeeded.max(1) as f64,
        f64::from(n) / wall
    );
}
