//! The ceiling of `routesim bench scenarios/quickstart.toml` (one thread, aggregates only): the quickstart's
//! traffic, endpoints and six policies in a minimal event loop that routes through router-core, with no keyed
//! provider streams and no metrics beyond a latency sum.
//!
//! ```text
//! cargo run --release -p sim --example minimal_quickstart_loop -- [REQUESTS]   # default 1000000 per policy
//! ```
//!
//! What it keeps of the quickstart, so that it makes the same calls in the same numbers as routesim:
//! * the arrivals of replication 0 (business-hours Poisson, four task classes, token counts, the repeated
//!   extraction prompts), generated once by the scenario's own traffic model and shared by the six policies,
//!   as `routesim bench` shares them (lockstep);
//! * five endpoints with their slots and one FIFO queue each (the self-hosted one refuses past its queue
//!   capacity of 200 with a 503), service = time to first token + time per output token x output tokens,
//!   each a lognormal or gamma draw with the scenario's parameters, and the scenario's error rates (an error
//!   answers at its first-token time);
//! * each policy as a router-core `Router` built from the scenario (`decide`, `on_dispatch`, `on_result`,
//!   `next_attempt` after a failure, the retry's backoff as an event), requests in the router's request
//!   templates.
//!
//! What it leaves out (routesim models them; they add events or branches to few requests): the outage of
//! 11:00, the 60 s timeout, the health checks, the providers' RPM/TPM quotas (the router still enforces its own
//! view of them), the self-hosted endpoint's slowdown, Retry-After, warm-up and the time series. It prints
//! per policy its mean latency and successes (close to `routesim run`'s, not equal) and, for all, simulated
//! requests per second of wall time: requests x policies over the whole time, arrivals included, the figure
//! `routesim bench`'s total gives.
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Gamma, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus as Rng;
use router_core::{Attempts, Decision, EndpointIdx, ErrorClass, NextAttempt, Outcome, RequestInfo, Router};
use sim::traffic::{Arrival, ArrivalSource, Limit};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// A time distribution of the scenario, in seconds.
#[derive(Clone, Copy)]
enum Dist {
    /// `median`, `sigma`.
    LogNormal(f64, f64),
    /// `mean`, `shape`.
    Gamma(f64, f64),
}

/// One endpoint of the scenario: slots, queue capacity, TTFT and TPOT in seconds, and the error probabilities
/// (`rate_limited`, `server`, `unavailable`, `timeout`).
struct Spec {
    slots: u32,
    cap: Option<usize>,
    ttft: Dist,
    tpot: Dist,
    errors: [f64; 4],
}

/// The endpoints of `scenarios/quickstart.toml`, in its order.
const ENDPOINTS: [Spec; 5] = [
    Spec {
        slots: 500,
        cap: None,
        ttft: Dist::LogNormal(0.35, 0.4),
        tpot: Dist::LogNormal(0.009, 0.2),
        errors: [0.002, 0.003, 0.002, 0.0005],
    },
    Spec {
        slots: 400,
        cap: None,
        ttft: Dist::LogNormal(0.5, 0.5),
        tpot: Dist::LogNormal(0.005, 0.25),
        errors: [0.002, 0.004, 0.004, 0.0005],
    },
    Spec {
        slots: 400,
        cap: None,
        ttft: Dist::LogNormal(0.9, 0.4),
        tpot: Dist::LogNormal(0.016, 0.2),
        errors: [0.003, 0.003, 0.005, 0.001],
    },
    Spec {
        slots: 400,
        cap: None,
        ttft: Dist::LogNormal(0.7, 0.45),
        tpot: Dist::LogNormal(0.014, 0.2),
        errors: [0.002, 0.003, 0.003, 0.001],
    },
    Spec {
        slots: 48,
        cap: Some(200),
        ttft: Dist::Gamma(0.25, 4.0),
        tpot: Dist::Gamma(0.022, 16.0),
        errors: [0.0, 0.002, 0.0, 0.0],
    },
];
/// Error classes in the order of the error probabilities (`unavailable` is a 503, a server error, as routesim counts it).
const CLASSES: [ErrorClass; 4] = [ErrorClass::RateLimited, ErrorClass::Server, ErrorClass::Server, ErrorClass::Timeout];

/// A sampler of a [`Dist`].
enum Sampler {
    LogNormal(LogNormal<f64>),
    Gamma(Gamma<f64>),
}

impl Sampler {
    fn new(d: Dist) -> Sampler {
        match d {
            Dist::LogNormal(median, sigma) => Sampler::LogNormal(LogNormal::new(median.ln(), sigma).expect("valid")),
            Dist::Gamma(mean, shape) => Sampler::Gamma(Gamma::new(shape, mean / shape).expect("valid")),
        }
    }

    #[inline]
    fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Sampler::LogNormal(d) => d.sample(rng),
            Sampler::Gamma(d) => d.sample(rng),
        }
    }
}

struct Endpoint {
    slots: u32,
    busy: u32,
    cap: Option<usize>,
    queue: VecDeque<u32>,
    ttft: Sampler,
    tpot: Sampler,
    /// Cumulative error probabilities, in [`CLASSES`] order.
    errors: [f64; 4],
}

#[derive(Clone, Copy)]
struct Request {
    arrival: Arrival,
    dispatched: u64,
    first_token: u64,
    endpoint: u16,
    error: Option<ErrorClass>,
    /// The current attempt holds a slot (it was served, not refused by a full queue).
    served: bool,
    attempts: Attempts,
}

/// Events: an attempt ends, or a retry starts after its backoff.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Done,
    Retry,
}

struct Loop {
    endpoints: Vec<Endpoint>,
    requests: Vec<Request>,
    free: Vec<u32>,
    events: BinaryHeap<Reverse<(u64, u64, u32, Ev)>>,
    seq: u64,
    rng: Rng,
    router: Router,
}

/// The request info of arrival `a`, written into its class's template (no request allocates).
fn info<'t>(templates: &'t mut [RequestInfo], a: &Arrival) -> &'t RequestInfo {
    let t = &mut templates[a.class as usize];
    t.id = a.id;
    t.input_tokens = a.input_tokens;
    t.expected_output_tokens = a.expected_output.then_some(a.output_tokens);
    t.cache_key = a.cache_key;
    t
}

impl Loop {
    fn push(&mut self, at: u64, r: u32, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, r, ev)));
    }

    /// Starts serving request `r` on its endpoint at `now`.
    fn start(&mut self, r: u32, now: u64) {
        let k = self.requests[r as usize].endpoint as usize;
        let (e, rng) = (&self.endpoints[k], &mut self.rng);
        let u: f64 = rng.random();
        let error = e.errors.iter().position(|&p| u < p).map(|i| CLASSES[i]);
        let ttft = e.ttft.sample(rng);
        let out = self.requests[r as usize].arrival.output_tokens;
        let total = if error.is_some() { ttft } else { ttft + e.tpot.sample(rng) * out as f64 };
        let q = &mut self.requests[r as usize];
        (q.error, q.served) = (error, true);
        q.first_token = now + (ttft * 1e9) as u64;
        self.push(now + (total * 1e9) as u64, r, Ev::Done);
    }

    /// Sends request `r` to `ep` at `now`: a free slot serves it, else it queues, or is refused (503).
    fn dispatch(&mut self, templates: &mut [RequestInfo], r: u32, ep: EndpointIdx, now: u64) {
        let q = &mut self.requests[r as usize];
        (q.endpoint, q.dispatched) = (ep.0, now);
        self.router.on_dispatch(ep, info(templates, &q.arrival), now);
        let e = &mut self.endpoints[ep.get()];
        if e.busy < e.slots {
            e.busy += 1;
            self.start(r, now);
        } else if e.cap.is_some_and(|c| e.queue.len() >= c) {
            let q = &mut self.requests[r as usize];
            (q.error, q.served, q.first_token) = (Some(ErrorClass::Server), false, now);
            self.push(now, r, Ev::Done);
        } else {
            e.queue.push_back(r);
        }
    }
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.toml");
    let scenario = sim::scenario::Scenario::load(&file).expect("the quickstart loads");
    let model = scenario.compile(&file).expect("the quickstart compiles");
    let started = Instant::now();
    let limit = Limit { until: None, max_requests: Some(n) };
    let arrivals: Vec<Arrival> = {
        let mut source = ArrivalSource::new(&model.traffic, model.seed, 0, limit);
        std::iter::from_fn(|| source.next()).collect()
    };
    let mut lines = Vec::new();
    for cfg in &model.router_configs {
        let mut templates: Vec<RequestInfo> =
            (0..model.traffic.class_count()).map(|c| model.traffic.request_template(c)).collect();
        let endpoints = ENDPOINTS
            .iter()
            .map(|spec| {
                let p = spec.errors;
                Endpoint {
                    slots: spec.slots,
                    busy: 0,
                    cap: spec.cap,
                    queue: VecDeque::new(),
                    ttft: Sampler::new(spec.ttft),
                    tpot: Sampler::new(spec.tpot),
                    errors: [p[0], p[0] + p[1], p[0] + p[1] + p[2], p[0] + p[1] + p[2] + p[3]],
                }
            })
            .collect();
        let router = Router::new(cfg).expect("the quickstart's policies build");
        let mut m = Loop {
            endpoints,
            requests: Vec::new(),
            free: Vec::new(),
            events: BinaryHeap::new(),
            seq: 0,
            rng: Rng::seed_from_u64(2),
            router,
        };
        let (mut next, mut succeeded, mut failed, mut latency_sum) = (0usize, 0u64, 0u64, 0u64);
        loop {
            let queued = m.events.peek().map(|Reverse((t, ..))| *t);
            if next < arrivals.len() && queued.is_none_or(|q| arrivals[next].at < q) {
                let a = arrivals[next];
                next += 1;
                let now = a.at;
                let req = Request {
                    arrival: a,
                    dispatched: now,
                    first_token: now,
                    endpoint: 0,
                    error: None,
                    served: false,
                    attempts: Attempts::first(EndpointIdx(0)),
                };
                let r = match m.free.pop() {
                    Some(r) => {
                        m.requests[r as usize] = req;
                        r
                    }
                    None => {
                        m.requests.push(req);
                        m.requests.len() as u32 - 1
                    }
                };
                match m.router.decide(info(&mut templates, &a), now) {
                    Decision::Route { endpoint, .. } => {
                        m.requests[r as usize].attempts = Attempts::first(endpoint);
                        m.dispatch(&mut templates, r, endpoint, now);
                    }
                    Decision::CacheHit => {
                        succeeded += 1;
                        m.free.push(r);
                    }
                    Decision::Batch(_) | Decision::Reject(_) => {
                        failed += 1;
                        m.free.push(r);
                    }
                }
                continue;
            }
            let Some(Reverse((now, _, r, ev))) = m.events.pop() else { break };
            if ev == Ev::Retry {
                let ep = EndpointIdx(m.requests[r as usize].endpoint);
                m.dispatch(&mut templates, r, ep, now);
                continue;
            }
            let q = m.requests[r as usize];
            let k = q.endpoint as usize;
            if q.served {
                match m.endpoints[k].queue.pop_front() {
                    Some(w) => m.start(w, now),
                    None => m.endpoints[k].busy -= 1,
                }
            }
            let latency = now - q.dispatched;
            let outcome = match q.error {
                None => {
                    let out = q.arrival.output_tokens;
                    Outcome::success(latency, Some(q.first_token - q.dispatched), q.arrival.input_tokens, out)
                }
                Some(class) => Outcome::failure(class, latency),
            };
            let ep = EndpointIdx(q.endpoint);
            m.router.on_result(ep, info(&mut templates, &q.arrival), &outcome, now);
            if q.error.is_none() {
                succeeded += 1;
                latency_sum += now - q.arrival.at;
                m.free.push(r);
                continue;
            }
            let mut attempts = q.attempts;
            match m.router.next_attempt(info(&mut templates, &q.arrival), &mut attempts, &outcome, now) {
                NextAttempt::Retry { endpoint, delay, .. } => {
                    let q = &mut m.requests[r as usize];
                    q.attempts = attempts;
                    q.endpoint = endpoint.0;
                    m.push(now + delay, r, Ev::Retry);
                }
                NextAttempt::GiveUp(_) => {
                    failed += 1;
                    m.free.push(r);
                }
            }
        }
        lines.push(format!(
            "  {:<12} {succeeded} succeeded, {failed} failed, mean latency {:.4} s",
            cfg.policy.name,
            latency_sum as f64 * 1e-9 / succeeded.max(1) as f64
        ));
    }
    let wall = started.elapsed().as_secs_f64();
    let total = arrivals.len() as f64 * model.router_configs.len() as f64;
    println!(
        "quickstart through router-core, {} policies x {} requests: {:.0} requests/s\n{}",
        model.router_configs.len(),
        arrivals.len(),
        total / wall,
        lines.join("\n")
    );
}
