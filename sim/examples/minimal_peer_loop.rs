//! The speed of light for `scenarios/peer-simpy-router.toml`: the same model as a minimal event loop, with
//! no router library, no keyed random streams and no metrics beyond a latency sum.
//!
//! ```text
//! cargo run --release -p sim --example minimal_peer_loop -- [RATE] [REQUESTS]    # default 5 1000000
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
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus as Rng;
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
    attempts: u8,
    endpoint: u8,
    fails: bool,
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

    /// Sends request `r` to the best untried endpoint at `now`: a free slot serves it, else it queues.
    fn dispatch(&mut self, r: u32, now: f64) {
        let k = self.pick(self.requests[r as usize].tried);
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
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
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
    let mut m = Model { endpoints, requests: Vec::new(), events: BinaryHeap::new(), seq: 0, rng };
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
            m.requests[r as usize] = Request { arrived: now, ..Request::default() };
            m.dispatch(r, now);
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
        if req.fails && req.attempts < MAX_ATTEMPTS {
            m.dispatch(r, now);
            continue;
        }
        if req.fails {
            failed += 1;
        } else {
            let e = &mut m.endpoints[k];
            e.ema = ALPHA * (now - req.dispatched) + (1.0 - ALPHA) * e.ema;
            succeeded += 1;
            latency_sum += now - req.arrived;
        }
        free.push(r);
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "rate {rate}/s, {n} requests: {succeeded} succeeded, {failed} failed, mean latency {:.4} s; {:.0} requests/s",
        latency_sum / succeeded.max(1) as f64,
        f64::from(n) / wall
    );
}
