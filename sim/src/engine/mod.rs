//! The discrete-event engine: virtual time, the event queue and the event loop of one simulation run.
//!
//! One run = one scenario x one policy x one replication ([`run_lockstep`] simulates several runs of one
//! replication side by side, generating their common traffic once). The engine owns time and events and no
//! routing logic: every routing choice (first attempt, retry, fallback, cache, batch, rejection) is a call
//! into the router-core [`Router`], exactly as a gateway makes it. Providers are passive models
//! ([`crate::provider`]).
//!
//! Events: arrival, attempt start (after a backoff), service done (success or failure, frees a provider
//! slot), refusal (an immediate 429/503), timeout, health check, fault start/end, batch deadline and batch
//! done. Memory is bounded by the requests in flight: a request's state is a slab entry freed when it ends.
//!
//! Common random numbers: arrivals and request attributes come from the traffic model keyed by (seed,
//! replication, request id); a provider's luck for an attempt is keyed by (seed, replication, request id,
//! attempt, endpoint). Two policies run on the same scenario and replication therefore see identical
//! traffic, and identical draws whenever they make the same attempt.

mod quality;
pub mod queue;
mod routers;

use crate::logs::source::{LogSource, Trace};
use crate::metrics::Metrics;
use crate::provider::{Admission, Provider, Waiting};
use crate::quality::{Asked, QualityKeys};
use crate::rng::{KeyedRng, Stream, StreamBase, key};
use crate::scenario::Compiled;
use crate::traffic::{Arrival, ArrivalSource};
use quality::{Drawn, QualityRun};
use queue::EventQueue;
use router_core::PolicyKind;
use router_core::policy::EndpointSet;
use router_core::{
    Attempts, Decision, EndpointIdx, ErrorClass, Nanos, NextAttempt, Outcome, RequestInfo, Router, RouterConfig,
    keyed_rand::replication_seed, nanos_to_secs,
};
pub use routers::{Arm, Canary, CanaryError};
use routers::{CanaryArm, Routers};
use std::time::Instant;

/// One request's outcome, for per-request records (`--records`).
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// Request id.
    pub id: u64,
    /// Task class index.
    pub class: u16,
    /// Arrival time in seconds since the start of the run.
    pub arrival_s: f64,
    /// End-to-end latency in seconds.
    pub latency_s: f64,
    /// Time to first token in seconds (NaN when it failed).
    pub ttft_s: f64,
    /// Final error class, `None` on success.
    pub error: Option<ErrorClass>,
    /// Whether the router rejected it without an attempt.
    pub rejected: bool,
    /// Whether it was answered from the cache.
    pub cache_hit: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Endpoint of the last attempt (`None` when there was none).
    pub endpoint: Option<u16>,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Input tokens.
    pub input_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// Whether it counts in the summary (arrived after warm-up).
    pub measured: bool,
    /// Arrival time in nanoseconds since the start of the run (exact).
    pub arrival_ns: Nanos,
    /// Exact-match cache key, when the request repeats an earlier prompt.
    pub cache_key: Option<u64>,
    /// Whether it could be deferred to a batch endpoint.
    pub deferrable: bool,
    /// Whether it announced its output length.
    pub output_known: bool,
    /// Its arm: the canary's in a canary run ([`run_canary`]) when the canary routed it, else the control's.
    pub arm: Arm,
}

/// Options of one run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Stop at this simulated time even if requests are in flight (they are counted as in flight).
    pub horizon: Option<Nanos>,
    /// Receives one record per finished request.
    pub records: Option<&'a mut dyn FnMut(&RequestRecord)>,
    /// Called now and then with the number of requests generated so far (progress bars).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Where simulated time 0 falls in a calendar minute, for the router's LiteLLM compat counters (0: on a
    /// minute's start): the compat fidelity tests start the simulation at the second of the minute at which the
    /// real gateway's run started ([`router_core::Router::set_calendar_origin`]).
    pub calendar_origin: Nanos,
}

impl RunOptions<'_> {
    /// Whether these options ask for nothing a plain run leaves out (see [`Sim`]): no horizon and no records
    /// sink (a progress callback is checked in every run: once per arrival, never taken but every 65,536th).
    fn plain(&self) -> bool {
        self.horizon.is_none() && self.records.is_none()
    }
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Policy name.
    pub policy: String,
    /// Replication number.
    pub replication: u32,
    /// Everything measured.
    pub metrics: Metrics,
    /// Simulated time when the run ended.
    pub end: Nanos,
    /// Requests still in flight at the end (non-zero only with a horizon).
    pub in_flight: u64,
    /// Events processed.
    pub events: u64,
    /// Final spend per endpoint as the router tracked it (cross-checks the metrics' cost).
    pub router_spend: Vec<f64>,
    /// Why the arrivals ended early (a replayed log's spill file could not be read), if they did.
    pub input_error: Option<String>,
    /// Wall time the run took on its thread, in seconds, from its start to its last event (not the closing of
    /// its books): with [`run_lockstep`], its own events plus an equal share of generating the arrivals it
    /// shared with the other runs. (The one figure that differs between two runs of the same scenario and
    /// seed.)
    pub busy_s: f64,
}

/// Where a run's arrivals come from: the scenario's traffic model or a replayed log. The engine is generic
/// over it, so the synthetic hot path pays nothing for replay.
trait Arrivals {
    /// The next arrival, in time order.
    fn next(&mut self) -> Option<Arrival>;
    /// What the log says of the last arrival (trace-driven replay).
    fn trace(&self) -> Option<Trace>;
    /// Why the arrivals ended early, if they did.
    fn error(&self) -> Option<String>;
    /// After [`Arrivals::next`] returned `None`: whether more arrivals are still to come (a [`Fed`] source
    /// waiting for its next chunk), so that the run must pause rather than end.
    #[inline(always)]
    fn starved(&self) -> bool {
        false
    }
    /// The answer-quality outcomes drawn so far of request `id`, when the source keeps them for every run it
    /// feeds (a [`Fed`] source, for the requests of its current chunk); `None`: the run draws its own.
    #[inline(always)]
    fn drawn(&mut self, _id: u64) -> Option<&mut Drawn> {
        None
    }
}

impl Arrivals for ArrivalSource<'_> {
    #[inline(always)]
    fn next(&mut self) -> Option<Arrival> {
        ArrivalSource::next(self)
    }
    #[inline(always)]
    fn trace(&self) -> Option<Trace> {
        None
    }
    fn error(&self) -> Option<String> {
        None
    }
}

impl Arrivals for LogSource<'_> {
    #[inline]
    fn next(&mut self) -> Option<Arrival> {
        LogSource::next(self)
    }
    #[inline]
    fn trace(&self) -> Option<Trace> {
        LogSource::trace(self)
    }
    fn error(&self) -> Option<String> {
        LogSource::error(self).map(str::to_string)
    }
}

/// Arrivals handed to a run in chunks by a driver that generates them once for several runs (see
/// [`run_lockstep`]): the run pauses when a chunk is used up and resumes when the next one is loaded.
#[derive(Default)]
struct Fed {
    chunk: Chunk,
    next: usize,
    /// Whether the chunk loaded last is the final one.
    last: bool,
}

/// A chunk of arrivals that [`run_lockstep`] generates once and lends to every run in turn.
#[derive(Default)]
struct Chunk {
    arrivals: Vec<Arrival>,
    /// With quality on (the item-response model): the outcomes drawn so far of every arrival, in the same
    /// order, shared by the runs (see [`Drawn`]); empty otherwise.
    drawn: Vec<Drawn>,
    /// The id of the first arrival when `drawn` is filled (ids are consecutive within a chunk). Kept here
    /// rather than read from `arrivals[0]` at each completion: by then that line has left the cache.
    first_id: u64,
}

impl Arrivals for Fed {
    #[inline(always)]
    fn next(&mut self) -> Option<Arrival> {
        let a = self.chunk.arrivals.get(self.next).copied();
        self.next += usize::from(a.is_some());
        a
    }
    #[inline(always)]
    fn drawn(&mut self, id: u64) -> Option<&mut Drawn> {
        // Arrival ids are consecutive within a chunk; a request of an earlier chunk finds none.
        self.chunk.drawn.get_mut(id.wrapping_sub(self.chunk.first_id) as usize)
    }
    #[inline(always)]
    fn trace(&self) -> Option<Trace> {
        None
    }
    fn error(&self) -> Option<String> {
        None
    }
    #[inline(always)]
    fn starved(&self) -> bool {
        !self.last
    }
}

/// An event of the loop (`Timeout` is an attempt's whole-attempt deadline, `TtftTimeout` its
/// time-to-first-token deadline).
#[derive(Clone, Copy, Debug)]
enum Ev {
    Arrival,
    AttemptStart { req: u32, generation: u32 },
    ServiceDone { ep: u16, handle: u64 },
    Refused { handle: u64 },
    Timeout { handle: u64 },
    TtftTimeout { handle: u64 },
    HealthCheck,
    Fault { idx: u16, on: bool },
    BatchDeadline,
    BatchDone { req: u32, generation: u32 },
    CacheDone { req: u32, generation: u32 },
}

#[derive(Clone, Debug)]
struct Req {
    generation: u32,
    live: bool,
    arrival: Arrival,
    measured: bool,
    attempts: Attempts,
    ep: EndpointIdx,
    dispatched: Nanos,
    /// Set while the current attempt waits in a provider queue.
    queued: bool,
    /// The current attempt reached the model (service started); refusals and queue timeouts did not.
    started: bool,
    /// The current attempt ended (result delivered or timed out); later events for it are ignored.
    done: bool,
    /// Drawn outcome of the current attempt once in service, or the refusal.
    error: Option<ErrorClass>,
    /// The HTTP status of that failure, if it had one (500 and 503 are both `server`).
    status: Option<u16>,
    retry_after: Option<Nanos>,
    first_token: Nanos,
    cost: f64,
    cache_hit: bool,
}

/// Packs (slab index, generation, attempt) into a handle that detects stale events.
#[inline]
fn handle(req: u32, generation: u32, attempt: u32) -> u64 {
    // 32 bits of slab index (any number of requests in flight), 24 of generation, 8 of attempt (router-core
    // caps `max_attempts` at 100).
    ((req as u64) << 32) | ((generation as u64 & 0xFF_FFFF) << 8) | (attempt as u64 & 0xFF)
}

#[inline]
fn unhandle(h: u64) -> (u32, u32, u32) {
    ((h >> 32) as u32, ((h >> 8) & 0xFF_FFFF) as u32, (h & 0xFF) as u32)
}

/// The slab index of a handle's request if the handle still names that request's current, unfinished attempt
/// (a free function so that it can be called while a provider is borrowed mutably).
#[inline]
fn current_attempt(reqs: &[Req], h: u64) -> Option<u32> {
    let (r, generation, attempt) = unhandle(h);
    let q = reqs.get(r as usize)?;
    (q.live && q.generation == generation && q.attempts.count & 0xFF == attempt && !q.done).then_some(r)
}

/// The request info of an arrival, written into its class template so that no request allocates. With
/// quality on (`Q`) it carries the request's difficulty estimate `difficulty`; without, templates keep `None`.
#[inline]
fn fill_info<'t, const Q: bool>(
    templates: &'t mut [RequestInfo],
    a: &Arrival,
    difficulty: Option<f64>,
) -> &'t RequestInfo {
    let t = &mut templates[a.template as usize];
    t.id = a.id;
    t.input_tokens = a.input_tokens;
    t.expected_output_tokens = a.expected_output.then_some(a.output_tokens);
    t.deferrable = a.deferrable;
    t.cache_key = a.cache_key;
    if Q {
        t.difficulty = difficulty;
    }
    t
}

/// Simulates one policy for one replication of a compiled scenario.
pub fn run(model: &Compiled, policy: usize, replication: u32, opts: RunOptions<'_>) -> RunResult {
    // Quality is decided once per run: the event loop of a run without it has no quality branch at all.
    if model.quality.is_some() {
        run_q::<true>(model, policy, replication, opts)
    } else {
        run_q::<false>(model, policy, replication, opts)
    }
}

/// [`run`] with quality on (`Q`) or off.
fn run_q<const Q: bool>(model: &Compiled, policy: usize, replication: u32, opts: RunOptions<'_>) -> RunResult {
    run_routed::<Q>(model, router(model, policy, replication).into(), replication, opts)
}

/// One run of replication `replication` routed by `routers`, with quality on (`Q`) or off.
fn run_routed<const Q: bool>(model: &Compiled, routers: Routers, replication: u32, opts: RunOptions<'_>) -> RunResult {
    let plain = plain_run(model, &opts) && !routers.has_canary();
    match &model.replay {
        None => {
            let source = ArrivalSource::new(&model.traffic, model.seed, replication, model.limit);
            if plain {
                on_scenario_traffic::<_, Q, true>(model, routers, replication, source).run(opts)
            } else {
                on_scenario_traffic::<_, Q, false>(model, routers, replication, source).run(opts)
            }
        }
        Some(input) => {
            let source = LogSource::new(input, model.seed, replication);
            let (templates, classes) = (input.templates.clone(), input.classes.len());
            if plain && !input.trace_driven {
                Sim::<_, Q, true>::new(model, routers, replication, source, templates, classes, false).run(opts)
            } else {
                let tracing = input.trace_driven;
                Sim::<_, Q, false>::new(model, routers, replication, source, templates, classes, tracing).run(opts)
            }
        }
    }
}

/// Whether a run of `model` with `opts` can be compiled plain (see [`Sim`]), as far as the scenario and the
/// options tell: no client keys, no horizon, no records sink. (A canary arm, or a trace-driven replay, also
/// rules it out; the callers that can meet them check those.)
fn plain_run(model: &Compiled, opts: &RunOptions<'_>) -> bool {
    opts.plain() && model.scenario.keys.is_empty()
}

/// Simulates `policy` with `canary` beside it for one replication: one run in which each request is routed
/// by the router of its arm (the canary's when its id's point under the canary policy's name is below the
/// fraction, exactly as the gateway picks it with `by = "request"`), both arms sharing the providers'
/// slots, queues and quotas. Each arm's router sees only its own requests' decisions, dispatches and
/// results, and both see the health checks (as in the gateway); each arm's attempts have its own policy's
/// timeouts (else the scenario's `[client]` ones). The records say each request's [`Arm`]. At fraction 0
/// the run is `policy`'s own, record for record; at fraction 1 the canary's.
pub fn run_canary(
    model: &Compiled,
    policy: usize,
    canary: Canary,
    replication: u32,
    opts: RunOptions<'_>,
) -> Result<RunResult, CanaryError> {
    canary.check(model, policy)?;
    let client = router_core::Timeouts { attempt: model.timeout, ttft: model.ttft_timeout };
    let canary_router = router(model, canary.policy, replication);
    let timeouts = canary_router.timeouts().or(client);
    let arm = CanaryArm::new(canary_router, canary.fraction, timeouts);
    let routers = Routers::with_canary(router(model, policy, replication), arm);
    Ok(if model.quality.is_some() {
        run_routed::<true>(model, routers, replication, opts)
    } else {
        run_routed::<false>(model, routers, replication, opts)
    })
}

/// The router of policy `policy` in replication `replication`: its keyed draws use the replication's seed
/// ([`router_core::keyed_rand::replication_seed`]), the same for every policy of the replication.
fn router(model: &Compiled, policy: usize, replication: u32) -> Router {
    let cfg = &model.router_configs[policy];
    let built = if replication == 0 {
        Router::new(cfg)
    } else {
        Router::new(&RouterConfig { seed: replication_seed(cfg.seed, replication), ..cfg.clone() })
    };
    built.expect("router configs are validated when the scenario is compiled")
}

/// A run routed by `routers` on the scenario's own traffic model (its request templates), fed by `source`.
fn on_scenario_traffic<S: Arrivals, const Q: bool, const PLAIN: bool>(
    model: &Compiled,
    routers: Routers,
    replication: u32,
    source: S,
) -> Sim<'_, S, Q, PLAIN> {
    let classes = model.traffic.class_count();
    let templates = (0..classes).map(|c| model.traffic.request_template(c)).collect();
    Sim::new(model, routers, replication, source, templates, classes, false)
}

/// Arrivals generated at a time in [`run_lockstep`] (3 MiB). Each switch from one run to the next finds
/// the caches full of the previous run's state (its histograms above all), so switches must be rare: on the
/// quickstart, chunks of 4,096 arrivals gained nothing over separate runs, 16,384 gained 10%, 65,536 gained
/// 15-20%, and 131,072 no more.
const CHUNK: usize = 65_536;

/// Runs `policies` on one replication in lockstep, one [`RunOptions`] each, and returns their results in the
/// same order. The scenario's traffic is generated once, a chunk at a time, and each run simulates the chunk
/// in turn: since every policy of a replication sees the same arrivals (common random numbers), this gives
/// each policy exactly the result of [`run`], bit for bit, and saves generating the traffic once per policy.
/// A replayed log is read once per policy, as [`run`] does.
pub fn run_lockstep(
    model: &Compiled,
    policies: &[usize],
    replication: u32,
    opts: Vec<RunOptions<'_>>,
) -> Vec<RunResult> {
    lockstep(model, policies, replication, opts, CHUNK)
}

/// [`run_lockstep`] with chunks of `chunk_len` arrivals.
fn lockstep(
    model: &Compiled,
    policies: &[usize],
    replication: u32,
    opts: Vec<RunOptions<'_>>,
    chunk_len: usize,
) -> Vec<RunResult> {
    assert_eq!(policies.len(), opts.len(), "one RunOptions per policy");
    if model.replay.is_some() || policies.len() < 2 {
        return policies.iter().zip(opts).map(|(&p, o)| run(model, p, replication, o)).collect();
    }
    let plain = opts.iter().all(|o| plain_run(model, o));
    let (p, r) = (policies, replication);
    match (model.quality.is_some(), plain) {
        (true, true) => lockstep_runs::<true, true>(model, p, r, opts, chunk_len),
        (true, false) => lockstep_runs::<true, false>(model, p, r, opts, chunk_len),
        (false, true) => lockstep_runs::<false, true>(model, p, r, opts, chunk_len),
        (false, false) => lockstep_runs::<false, false>(model, p, r, opts, chunk_len),
    }
}

/// [`lockstep`] on the scenario's traffic, with quality on (`Q`) or off, with runs that are plain or not (see
/// [`Sim`]).
fn lockstep_runs<const Q: bool, const PLAIN: bool>(
    model: &Compiled,
    policies: &[usize],
    replication: u32,
    mut opts: Vec<RunOptions<'_>>,
    chunk_len: usize,
) -> Vec<RunResult> {
    let mut sims: Vec<Sim<'_, Fed, Q, PLAIN>> = policies
        .iter()
        .map(|&p| on_scenario_traffic(model, router(model, p, replication).into(), replication, Fed::default()))
        .collect();
    sims.iter_mut().zip(&opts).for_each(|(sim, o)| sim.set_calendar_origin(o));
    // Each run's own time: its start, its events and an equal share of generating the chunks it used.
    let mut busy = vec![0.0f64; sims.len()];
    let mut ended = vec![false; sims.len()];
    for (sim, busy) in sims.iter_mut().zip(&mut busy) {
        let start = Instant::now();
        sim.begin();
        *busy += start.elapsed().as_secs_f64();
    }
    let mut source = ArrivalSource::new(&model.traffic, model.seed, replication, model.limit);
    let mut chunk = Chunk { arrivals: Vec::with_capacity(chunk_len), drawn: Vec::new(), first_id: 0 };
    let share_outcomes = Q && model.quality.as_deref().is_some_and(|q| quality::item_response(q).is_some());
    let quality_keys = QualityKeys::new(model.seed, replication);
    loop {
        let start = Instant::now();
        chunk.arrivals.clear();
        chunk.arrivals.extend(std::iter::from_fn(|| source.next()).take(chunk_len));
        if share_outcomes {
            debug_assert!(
                chunk.arrivals.windows(2).all(|w| w[1].id == w[0].id + 1),
                "arrival ids are consecutive within a chunk (`Fed::drawn` relies on it)"
            );
            // Every request's difficulty is drawn here, in one tight loop over the chunk, rather than by the
            // first run to complete it: the same keyed draw, off the runs' completion path.
            chunk.drawn.clear();
            chunk.drawn.extend(chunk.arrivals.iter().map(|a| Drawn::of_difficulty(quality_keys.difficulty(a.id))));
            chunk.first_id = chunk.arrivals.first().map_or(0, |a| a.id);
        }
        let last = chunk.arrivals.len() < chunk_len;
        let share = start.elapsed().as_secs_f64() / ended.iter().filter(|&&e| !e).count().max(1) as f64;
        for (i, sim) in sims.iter_mut().enumerate() {
            if !ended[i] {
                let start = Instant::now();
                // The chunk moves into the run and back: no copy.
                ended[i] = sim.feed(&mut chunk, last, &mut opts[i]);
                busy[i] += share + start.elapsed().as_secs_f64();
            }
        }
        if last || ended.iter().all(|&e| e) {
            break;
        }
    }
    sims.into_iter().zip(busy).map(|(sim, busy_s)| RunResult { busy_s, ..sim.finish() }).collect()
}

/// One run. `Q`: whether the scenario has quality on (then `quality` is set); the loop is compiled once
/// with and once without it, so a run without quality pays nothing for it. `PLAIN`: the run has none of the
/// features only some runs use (client keys, a canary arm, trace-driven service, and in its
/// [`RunOptions`] a horizon or a records sink); its loop is compiled without their checks (about 70
/// instructions per request of the peer model, 3% of its time). A run that has any of them is compiled with
/// `PLAIN` false and checks each at run time, as every run did before.
struct Sim<'m, S, const Q: bool, const PLAIN: bool> {
    model: &'m Compiled,
    routers: Routers,
    providers: Vec<Provider>,
    source: S,
    pending_arrival: Option<Arrival>,
    /// Trace-driven replay: what the log says of each slab entry's request.
    traces: Vec<Option<Trace>>,
    /// What the log says of the pending arrival (read ahead with it).
    pending_trace: Option<Trace>,
    tracing: bool,
    events: EventQueue<Ev>,
    reqs: Vec<Req>,
    free: Vec<u32>,
    templates: Vec<RequestInfo>,
    metrics: Metrics,
    replication: u32,
    now: Nanos,
    in_flight: u64,
    batch_held: Vec<u32>,
    batch_seq: u64,
    batch_ep: Option<EndpointIdx>,
    /// Time of the previous event, for the occupancy integral.
    last_event: Nanos,
    /// Measured requests in the system (arrived after the warm-up, not yet finished).
    measured_in_flight: u64,
    /// Arrival time of the first measured request: start of the occupancy window.
    first_measured: Option<Nanos>,
    /// Occupancy integral of measured requests in request-nanoseconds (exact integer arithmetic).
    area_ns: u128,
    /// Time in the system of finished measured requests, in nanoseconds (exact).
    sojourn_ns: u128,
    /// Key base of the provider-luck streams of this replication.
    service_keys: StreamBase,
    /// Per-attempt timeout in force: the policy's own, else the scenario's `[client] timeout`.
    timeout: Option<Nanos>,
    /// Time-to-first-token timeout in force: the policy's own, else the scenario's `[client] ttft_timeout`.
    ttft_timeout: Option<Nanos>,
    /// The scenario's client keys and their meters (`[[keys]]`), if any.
    keys: Option<crate::keys::KeyLimiter>,
    /// Events processed so far.
    processed: u64,
    /// Answer quality (`Some` exactly when `Q`).
    quality: Option<QualityRun<'m>>,
}

impl<const Q: bool, const PLAIN: bool> Sim<'_, Fed, Q, PLAIN> {
    /// Loads the next chunk of arrivals (`last`: none come after it) and runs until the chunk is used up, or to
    /// the end of the run after the last one. Returns whether the run has ended.
    /// The chunk is lent to the run for the call and handed back unchanged.
    fn feed(&mut self, chunk: &mut Chunk, last: bool, opts: &mut RunOptions<'_>) -> bool {
        std::mem::swap(&mut self.source.chunk, chunk);
        self.source.next = 0;
        self.source.last = last;
        // A run pauses only once its chunk is used up: the arrival it waits for is the new chunk's first.
        debug_assert!(self.pending_arrival.is_none(), "a fed run pauses only without a pending arrival");
        self.advance_source();
        let ended = self.pump(opts);
        std::mem::swap(&mut self.source.chunk, chunk);
        ended
    }
}

impl<'m, S: Arrivals, const Q: bool, const PLAIN: bool> Sim<'m, S, Q, PLAIN> {
    fn new(
        model: &'m Compiled,
        routers: Routers,
        replication: u32,
        source: S,
        templates: Vec<RequestInfo>,
        classes: usize,
        tracing: bool,
    ) -> Self {
        let providers = model.endpoints.iter().map(Provider::new).collect();
        let spec = &model.scenario.keys;
        let keys = (!spec.is_empty())
            .then(|| crate::keys::KeyLimiter::new(spec, &model.class_names(), model.seed, replication));
        let templates =
            if spec.is_empty() { templates } else { crate::keys::KeyLimiter::expand_templates(spec, templates) };
        let client = router_core::Timeouts { attempt: model.timeout, ttft: model.ttft_timeout };
        let timeouts = routers.control_ref().timeouts().or(client);
        let quality = if Q {
            model.quality.as_deref().map(|outcomes| {
                // A canary run has no oracle arm (`run_canary`); a cascade in either arm may escalate.
                let oracle = routers.control_ref().kind() == PolicyKind::Oracle;
                let cascade = routers.any(|r| r.kind() == PolicyKind::Cascade);
                QualityRun::new(outcomes, model.seed, replication, &model.endpoint_ids(), oracle, cascade)
            })
        } else {
            None
        };
        debug_assert!(
            !PLAIN || (keys.is_none() && !tracing && !routers.has_canary()),
            "a plain run has no client keys, no trace-driven service and no canary"
        );
        let mut metrics = Metrics::new(model.endpoints.len(), classes, model.interval);
        if Q {
            metrics.quality = Some(crate::metrics::QualityCounts::new(classes));
        }
        Sim {
            model,
            routers,
            providers,
            source,
            pending_arrival: None,
            traces: Vec::new(),
            pending_trace: None,
            tracing,
            events: EventQueue::default(),
            reqs: Vec::new(),
            free: Vec::new(),
            templates,
            metrics,
            replication,
            now: 0,
            in_flight: 0,
            batch_held: Vec::new(),
            batch_seq: 0,
            batch_ep: None,
            last_event: 0,
            measured_in_flight: 0,
            first_measured: None,
            area_ns: 0,
            sojourn_ns: 0,
            service_keys: StreamBase::new(model.seed, replication, Stream::Service),
            timeout: timeouts.attempt,
            ttft_timeout: timeouts.ttft,
            keys,
            processed: 0,
            quality,
        }
    }

    /// The difficulty estimate routers see for the request in slab entry `r` (`None` without quality).
    #[inline(always)]
    fn estimate(&self, r: u32) -> Option<f64> {
        if Q { self.quality.as_ref().and_then(|q| q.estimate(r)) } else { None }
    }

    /// The oracle's scope of the request in slab entry `r`, when the policy is the oracle.
    #[inline(always)]
    fn oracle_scope(&self, r: u32) -> Option<router_core::Scope> {
        if Q { self.quality.as_ref().filter(|q| q.oracle()).map(|q| q.scope(r)) } else { None }
    }

    /// The attempt and time-to-first-token timeouts of request `id`'s attempts: its arm's policy's, else the
    /// scenario's `[client]` ones.
    #[inline(always)]
    fn attempt_timeouts(&self, id: u64) -> (Option<Nanos>, Option<Nanos>) {
        match self.routers.canary_timeouts::<PLAIN>(id) {
            Some(t) => (t.attempt, t.ttft),
            None => (self.timeout, self.ttft_timeout),
        }
    }

    /// Reads the next arrival (and, in trace-driven replay, what the log says of it).
    #[inline(always)]
    fn advance_source(&mut self) {
        self.pending_arrival = self.source.next();
        if !PLAIN && self.tracing {
            self.pending_trace = self.source.trace();
        }
    }

    fn run(mut self, mut opts: RunOptions<'_>) -> RunResult {
        let start = Instant::now();
        self.set_calendar_origin(&opts);
        self.begin();
        self.pump(&mut opts);
        RunResult { busy_s: start.elapsed().as_secs_f64(), ..self.finish() }
    }

    /// Puts simulated time 0 where [`RunOptions::calendar_origin`] says in the routers' calendar minute.
    fn set_calendar_origin(&mut self, opts: &RunOptions<'_>) {
        if opts.calendar_origin != 0 {
            self.routers.each_mut(|r| r.set_calendar_origin(opts.calendar_origin));
        }
    }

    /// Reads the first arrival and schedules the faults and the first health check.
    fn begin(&mut self) {
        self.advance_source();
        for (i, f) in self.model.faults.iter().enumerate() {
            self.events.push(f.spec.start.nanos(), Ev::Fault { idx: i as u16, on: true });
            self.events.push(
                f.spec.start.nanos().saturating_add(f.spec.duration.nanos()),
                Ev::Fault { idx: i as u16, on: false },
            );
        }
        if let Some(iv) = self.model.health_interval {
            self.events.push(iv, Ev::HealthCheck);
        }
    }

    /// Processes events until the run ends or, with a [`Fed`] source, until its chunk is used up (the run then
    /// resumes where it stopped when the next chunk is loaded: see [`Sim::feed`]).
    /// Returns whether the run has ended.
    fn pump(&mut self, opts: &mut RunOptions<'_>) -> bool {
        debug_assert!(!PLAIN || opts.plain(), "a plain run has no horizon and no records sink");
        loop {
            // A fed run whose chunk is used up stops here, before looking at any event: the next arrival, not
            // yet known, may come before the earliest queued event.
            if self.pending_arrival.is_none() && self.source.starved() {
                return false;
            }
            // The next arrival waits outside the queue (one push and pop fewer per request); it goes first
            // only when strictly earlier than every queued event, so ties are resolved the same way always.
            let queued = self.events.peek_time();
            let (t, arrival) = match (self.pending_arrival.map(|a| a.at), queued) {
                (Some(a), Some(q)) if a < q => (a, true),
                (_, Some(q)) => (q, false),
                (Some(a), None) => (a, true),
                (None, None) => return true,
            };
            if !PLAIN && opts.horizon.is_some_and(|h| t > h) {
                return true;
            }
            // Periodic events keep firing forever: stop once no request can come or is in flight.
            if self.pending_arrival.is_none() && self.in_flight == 0 && self.batch_held.is_empty() {
                return true;
            }
            let ev = if arrival {
                Ev::Arrival
            } else {
                let Some((_, ev)) = self.events.pop() else { return true };
                ev
            };
            if t >= self.metrics.series.boundary() {
                self.close_intervals(t);
            }
            self.integrate_occupancy(t);
            self.now = t;
            self.processed += 1;
            match ev {
                Ev::Arrival => {
                    self.metrics.series.arrival(t);
                    self.on_arrival(opts)
                }
                Ev::AttemptStart { req, generation } => {
                    if self.is_live(req, generation) {
                        let ep = self.reqs[req as usize].ep;
                        self.dispatch(req, ep, false, opts);
                    }
                }
                Ev::ServiceDone { ep, handle } => self.on_service_done(ep, handle, opts),
                Ev::Refused { handle } => {
                    if let Some(r) = self.current(handle) {
                        self.finish_attempt(r, opts);
                    }
                }
                Ev::Timeout { handle } => self.on_timeout(handle, false, opts),
                Ev::TtftTimeout { handle } => self.on_timeout(handle, true, opts),
                Ev::HealthCheck => self.on_health_check(),
                Ev::Fault { idx, on } => self.on_fault(idx as usize, on),
                Ev::BatchDeadline => {
                    if self.routers.control().poll_batch(self.now).is_some() {
                        self.release_batch();
                    }
                }
                Ev::BatchDone { req, generation } => {
                    if self.is_live(req, generation) {
                        self.finish_attempt(req, opts);
                    }
                }
                Ev::CacheDone { req, generation } => {
                    if self.is_live(req, generation) {
                        let latency = self.model.cache_latency;
                        self.complete(req, latency, latency, opts);
                    }
                }
            }
        }
    }

    /// Closes the time series' intervals that end at or before `t`. Out of line: an interval holds many
    /// events.
    #[cold]
    #[inline(never)]
    fn close_intervals(&mut self, t: Nanos) {
        // (An event at the end of time, from a saturated service time, closes no further interval.)
        while t >= self.metrics.series.boundary() && self.metrics.series.boundary() < Nanos::MAX {
            let q = self.queue_len();
            self.metrics.series.close(q);
        }
    }

    /// Closes the run's books: the last time-series interval, the occupancy integral and the result, which
    /// takes the metrics over (a run's histograms are megabytes: no copy).
    fn finish(mut self) -> RunResult {
        let q = self.queue_len();
        self.metrics.finish_histograms();
        self.metrics.series.finish(q, self.now);
        self.integrate_occupancy(self.now);
        if let Some(first) = self.first_measured {
            self.metrics.queueing.observed_s = self.now.saturating_sub(first) as f64 * 1e-9;
            self.metrics.queueing.in_system_area = self.area_ns as f64 * 1e-9;
            self.metrics.queueing.sojourn_sum_s = self.sojourn_ns as f64 * 1e-9;
        }
        let router_spend = (0..self.providers.len()).map(|i| self.routers.spend_usd(EndpointIdx(i as u16))).collect();
        RunResult {
            policy: self.routers.name(),
            replication: self.replication,
            input_error: self.source.error(),
            metrics: self.metrics,
            end: self.now,
            in_flight: self.in_flight,
            events: self.processed,
            router_spend,
            busy_s: 0.0,
        }
    }

    /// Adds `measured requests in the system x dt` since the previous event to the occupancy integral.
    #[inline]
    fn integrate_occupancy(&mut self, t: Nanos) {
        if t > self.last_event {
            self.area_ns += self.measured_in_flight as u128 * (t - self.last_event) as u128;
        }
        self.last_event = t;
    }

    fn queue_len(&self) -> u64 {
        self.providers.iter().map(|p| p.queue_len() as u64).sum()
    }

    fn alloc(&mut self, arrival: Arrival) -> u32 {
        let measured = arrival.at >= self.model.warmup_until && arrival.id >= self.model.warmup_requests;
        self.in_flight += 1;
        if measured {
            self.measured_in_flight += 1;
            self.first_measured.get_or_insert(arrival.at);
        }
        let r = match self.free.pop() {
            Some(i) => i,
            None => {
                self.reqs.push(Req {
                    generation: 0,
                    live: false,
                    arrival,
                    measured,
                    attempts: Attempts {
                        count: 0,
                        tried: EndpointSet::default(),
                        last: EndpointIdx(0),
                        stage: Default::default(),
                    },
                    ep: EndpointIdx(0),
                    dispatched: 0,
                    queued: false,
                    started: false,
                    done: false,
                    error: None,
                    status: None,
                    retry_after: None,
                    first_token: 0,
                    cost: 0.0,
                    cache_hit: false,
                });
                (self.reqs.len() - 1) as u32
            }
        };
        // Field by field, in place: a recycled slot keeps its allocation-free layout and no large temporary is
        // built and copied on this hot path.
        let q = &mut self.reqs[r as usize];
        debug_assert!(!q.live, "the free list holds only finished requests");
        q.generation = q.generation.wrapping_add(1) & 0xFF_FFFF;
        q.live = true;
        q.arrival = arrival;
        q.measured = measured;
        q.attempts.count = 0;
        q.attempts.tried = EndpointSet::default();
        q.attempts.last = EndpointIdx(0);
        // A recycled slot must not keep the previous request's place in LiteLLM's retry-then-fallback order:
        // its spent retries would cut this request's short (issue 29: most 429s were never retried).
        q.attempts.stage = Default::default();
        q.ep = EndpointIdx(0);
        q.dispatched = 0;
        q.queued = false;
        q.started = false;
        q.done = false;
        q.error = None;
        q.status = None;
        q.retry_after = None;
        q.first_token = 0;
        q.cost = 0.0;
        q.cache_hit = false;
        r
    }

    fn release(&mut self, r: u32) {
        let q = &self.reqs[r as usize];
        if q.measured {
            self.measured_in_flight -= 1;
            self.metrics.queueing.finished += 1;
            self.sojourn_ns += (self.now - q.arrival.at) as u128;
        }
        self.reqs[r as usize].live = false;
        self.free.push(r);
        self.in_flight -= 1;
    }

    /// Whether slab entry `r` still holds the request of generation `generation`.
    #[inline]
    fn is_live(&self, r: u32, generation: u32) -> bool {
        let q = &self.reqs[r as usize];
        q.live && q.generation == generation
    }

    /// The slab index of a handle's request if the handle still names its current, unfinished attempt.
    fn current(&self, h: u64) -> Option<u32> {
        current_attempt(&self.reqs, h)
    }

    #[inline(always)]
    fn on_arrival(&mut self, opts: &mut RunOptions<'_>) {
        let Some(mut a) = self.pending_arrival.take() else { return };
        let denied = if PLAIN { None } else { self.keys.as_mut().and_then(|k| k.admit(&mut a, self.now).err()) };
        let trace = self.pending_trace.take();
        self.advance_source();
        if let Some(p) = opts.progress
            && a.id % 65_536 == 0
        {
            p(a.id);
        }
        self.metrics.counts.arrivals += 1;
        let r = self.alloc(a);
        if !PLAIN && self.tracing {
            if self.traces.len() <= r as usize {
                self.traces.resize(r as usize + 1, None);
            }
            self.traces[r as usize] = trace;
        }
        if self.reqs[r as usize].measured {
            self.metrics.counts.requests += 1;
        }
        if let Some(reason) = denied {
            if self.reqs[r as usize].measured {
                self.metrics.counts.denied[reason.index()] += 1;
            }
            return self.fail(r, None, opts);
        }
        let now = self.now;
        if Q && let Some(q) = &mut self.quality {
            let shared = if q.item_response() { self.source.drawn(a.id).copied() } else { None };
            q.arrive(r, Asked { id: a.id, class: a.class }, shared);
        }
        let estimate = self.estimate(r);
        let scope = self.oracle_scope(r);
        // From the local copy of the arrival, not the slab entry just written (no store-to-load round trip).
        let info = fill_info::<Q>(&mut self.templates, &a, estimate);
        let router = self.routers.for_request::<PLAIN>(a.id);
        let decision = match scope {
            Some(scope) if Q => router.decide_in(info, now, &scope),
            _ => router.decide(info, now),
        };
        match decision {
            Decision::Route { endpoint, .. } => {
                // In place (not `Attempts::first`): a whole-struct copy right after a one-word store into it
                // stalls on store forwarding in this, the hottest path.
                let at = &mut self.reqs[r as usize].attempts;
                at.count = 1;
                at.tried.insert(endpoint);
                at.last = endpoint;
                self.dispatch(r, endpoint, true, opts);
            }
            Decision::CacheHit => {
                self.reqs[r as usize].cache_hit = true;
                if self.reqs[r as usize].measured {
                    self.metrics.counts.cache_hits += 1;
                }
                // The answer arrives after the cache's latency: the request stays in the system until then.
                let generation = self.reqs[r as usize].generation;
                self.events.push(now.saturating_add(self.model.cache_latency), Ev::CacheDone { req: r, generation });
            }
            Decision::Batch(ticket) => {
                self.batch_held.push(r);
                self.batch_seq = ticket.batch;
                self.batch_ep = Some(ticket.endpoint);
                if ticket.release.is_some() {
                    self.release_batch();
                } else if self.batch_held.len() == 1 {
                    self.events.push(ticket.deadline, Ev::BatchDeadline);
                }
            }
            Decision::Reject(_) => {
                if self.reqs[r as usize].measured {
                    self.metrics.counts.rejected += 1;
                }
                self.fail(r, None, opts);
            }
        }
    }

    /// Sends the current attempt of the request in slab entry `r` to `ep`. `info_filled`: its class template
    /// still holds this request's info, as [`Sim::on_arrival`] filled it for the decision just made.
    #[inline(always)]
    fn dispatch(&mut self, r: u32, ep: EndpointIdx, info_filled: bool, _opts: &mut RunOptions<'_>) {
        let now = self.now;
        let mut tokens_changed = false;
        let (a, generation, attempt) = {
            let q = &mut self.reqs[r as usize];
            q.ep = ep;
            q.dispatched = now;
            q.done = false;
            q.queued = false;
            q.started = false;
            q.error = None;
            q.status = None;
            q.retry_after = None;
            // A matrix log's request is the real prompt: on this endpoint it has this endpoint's real tokens
            // (what quotas count, the service time's length, the bill).
            if Q && let Some(quality) = &self.quality {
                let a = &mut q.arrival;
                if let Some(call) = quality.real_call(Asked { id: a.id, class: a.class }, ep) {
                    tokens_changed = (a.input_tokens, a.output_tokens) != (call.input_tokens, call.output_tokens);
                    a.input_tokens = call.input_tokens;
                    a.output_tokens = call.output_tokens;
                }
            }
            (q.arrival, q.generation, q.attempts.count)
        };
        // Tokens changed just above are filled in again.
        let info = if info_filled && !tokens_changed {
            &self.templates[a.template as usize]
        } else {
            let estimate = self.estimate(r);
            fill_info::<Q>(&mut self.templates, &a, estimate)
        };
        debug_assert!(
            info.id == a.id
                && info.input_tokens == a.input_tokens
                && info.expected_output_tokens == a.expected_output.then_some(a.output_tokens),
            "the template holds this request"
        );
        self.routers.for_request::<PLAIN>(info.id).on_dispatch(ep, info, now);
        self.metrics.series.attempt(ep.get());
        let h = handle(r, generation, attempt);
        let tokens = a.input_tokens as u64 + a.output_tokens as u64;
        match self.providers[ep.get()].admit(tokens, now) {
            Admission::Refused { class, latency, retry_after } => {
                let q = &mut self.reqs[r as usize];
                q.error = Some(class);
                q.status = Some(Admission::refusal_status(class));
                q.retry_after = retry_after;
                self.events.push(now.saturating_add(latency), Ev::Refused { handle: h });
            }
            Admission::Start => self.start_service(r, ep, h),
            Admission::Queued => {
                self.providers[ep.get()].enqueue(Waiting { handle: h, since: now });
                self.reqs[r as usize].queued = true;
                // The first deadline to pass ends the wait; a later one finds the attempt over.
                let (timeout, ttft_timeout) = self.attempt_timeouts(a.id);
                if let Some(t) = timeout {
                    self.events.push(now.saturating_add(t), Ev::Timeout { handle: h });
                }
                if let Some(t) = ttft_timeout
                    && timeout.is_none_or(|a| t < a)
                {
                    self.events.push(now.saturating_add(t), Ev::TtftTimeout { handle: h });
                }
            }
        }
    }

    #[inline(always)]
    fn start_service(&mut self, r: u32, ep: EndpointIdx, h: u64) {
        let now = self.now;
        let q = &self.reqs[r as usize];
        let a = q.arrival;
        let mut svc =
            self.providers[ep.get()].draw_attempt(self.service_keys, a.id, q.attempts.count, ep.0, a.output_tokens);
        if !PLAIN
            && self.tracing
            && q.attempts.count == 1
            && let Some(t) = self.traces[r as usize].filter(|t| t.endpoint == ep)
        {
            // Trace-driven: the first attempt on the endpoint that served the request takes what the log says,
            // stretched by the endpoint's current slowdown and degradation (faults still apply; an error burst
            // does not replace the logged outcome).
            let f = self.providers[ep.get()].time_factor();
            let scaled = |ns: Nanos| (ns as f64 * f) as Nanos;
            svc.error = t.error;
            // The log's class, not its code, is kept: a logged 5xx replays as a 500.
            svc.status = match t.error {
                Some(ErrorClass::RateLimited) => Some(429),
                Some(ErrorClass::Server) => Some(500),
                _ => None,
            };
            svc.duration = scaled(t.latency);
            svc.ttft = if t.error.is_some() { 0 } else { t.ttft.map_or(svc.ttft, scaled).min(svc.duration) };
        }
        let dispatched = q.dispatched;
        let was_queued = q.queued;
        if q.measured {
            let qs = &mut self.metrics.queueing;
            qs.served += 1;
            qs.waited += was_queued as u64;
            qs.wait_sum_s += (now - dispatched) as f64 * 1e-9;
        }
        let q = &mut self.reqs[r as usize];
        q.queued = false;
        q.started = true;
        q.error = svc.error;
        q.status = svc.status;
        q.first_token = now.saturating_add(svc.ttft);
        let end = now.saturating_add(svc.duration);
        self.events.push(end, Ev::ServiceDone { ep: ep.0, handle: h });
        // A queued attempt already has its timeouts scheduled; one that starts at once needs one only if it
        // would outlast it.
        if was_queued {
            return;
        }
        let (timeout, ttft_timeout) = self.attempt_timeouts(a.id);
        if let Some(t) = timeout
            && end > dispatched.saturating_add(t)
        {
            self.events.push(dispatched.saturating_add(t), Ev::Timeout { handle: h });
        }
        if let Some(t) = ttft_timeout {
            // The first byte back: the first token, or the error response (a hang sends none).
            let first_byte = if svc.error.is_some() { end } else { now.saturating_add(svc.ttft) };
            let deadline = dispatched.saturating_add(t);
            if first_byte > deadline && timeout.is_none_or(|a| t < a) {
                self.events.push(deadline, Ev::TtftTimeout { handle: h });
            }
        }
    }

    #[inline(always)]
    fn on_service_done(&mut self, ep: u16, h: u64, opts: &mut RunOptions<'_>) {
        // Free the slot first: the next queued attempt (if any, and not abandoned) starts now.
        let reqs = &self.reqs;
        if let Some(w) = self.providers[ep as usize].release(|wh| current_attempt(reqs, wh).is_none()) {
            let (r, _, _) = unhandle(w.handle);
            self.start_service(r, EndpointIdx(ep), w.handle);
        }
        if let Some(r) = self.current(h) {
            self.finish_attempt(r, opts);
        }
    }

    fn on_timeout(&mut self, h: u64, first_token: bool, opts: &mut RunOptions<'_>) {
        let Some(r) = self.current(h) else { return };
        let q = &mut self.reqs[r as usize];
        if first_token {
            // A queued attempt may have reached service since: its first token may be in time after all.
            if q.started && q.error.is_none() && q.first_token <= self.now {
                return;
            }
            if q.measured {
                self.metrics.counts.ttft_timeouts += 1;
            }
        }
        q.error = Some(ErrorClass::Timeout);
        q.status = None;
        q.retry_after = None;
        if q.queued {
            q.queued = false;
            let ep = q.ep;
            self.providers[ep.get()].abandon();
        }
        self.finish_attempt(r, opts);
    }

    /// The current attempt of `r` ended now with the error stored in the request (or success).
    #[inline(always)]
    fn finish_attempt(&mut self, r: u32, opts: &mut RunOptions<'_>) {
        let now = self.now;
        let (ep, a, error, status, retry_after, dispatched, first_token, measured, started) = {
            let q = &mut self.reqs[r as usize];
            q.done = true;
            (q.ep, q.arrival, q.error, q.status, q.retry_after, q.dispatched, q.first_token, q.measured, q.started)
        };
        let success = error.is_none();
        // An attempt that never reached the model (refused at admission: 429 over quota, 503 when full or down;
        // or timed out in the queue) is never billed.
        // A matrix log's successful call costs what the log says it cost.
        let real = if Q && started && success {
            self.quality.as_ref().and_then(|q| q.real_call(Asked { id: a.id, class: a.class }, ep))
        } else {
            None
        };
        let cost = match real {
            Some(call) => call.cost_usd,
            None if started => self.providers[ep.get()].cost(success, a.input_tokens, a.output_tokens),
            None => 0.0,
        };
        let outcome = Outcome {
            error,
            ttft: success.then(|| first_token.saturating_sub(dispatched)),
            latency: now - dispatched,
            input_tokens: if success || (started && self.model.endpoints[ep.get()].bill_failed_input) {
                a.input_tokens
            } else {
                0
            },
            output_tokens: if success { a.output_tokens } else { 0 },
            retry_after,
            status,
        };
        let estimate = self.estimate(r);
        let info = fill_info::<Q>(&mut self.templates, &self.reqs[r as usize].arrival, estimate);
        self.routers.for_request::<PLAIN>(a.id).on_result(ep, info, &outcome, now);
        self.reqs[r as usize].cost += cost;
        self.metrics.series.cost(cost);
        if measured {
            let tokens = [outcome.input_tokens as u64, outcome.output_tokens as u64];
            self.metrics.attempt(ep.get(), error, cost, tokens);
        }
        if success {
            // The test inline, the verdict out of line: most runs have no cascade.
            if Q && self.quality.as_ref().is_some_and(QualityRun::cascade) && self.cascade_escalates(r, ep, opts) {
                return;
            }
            let latency = now - a.at;
            let ttft = first_token.saturating_sub(a.at);
            self.complete(r, latency, ttft, opts);
            return;
        }
        let mut attempts = self.reqs[r as usize].attempts;
        let scope = self.oracle_scope(r);
        let info = fill_info::<Q>(&mut self.templates, &self.reqs[r as usize].arrival, estimate);
        let router = self.routers.for_request::<PLAIN>(a.id);
        let next = match scope {
            Some(scope) if Q => router.next_attempt_in(info, &mut attempts, &outcome, now, &scope),
            _ => router.next_attempt(info, &mut attempts, &outcome, now),
        };
        match next {
            NextAttempt::Retry { endpoint, delay, fallback } => {
                self.reqs[r as usize].attempts = attempts;
                if measured {
                    self.metrics.counts.retries += 1;
                    self.metrics.counts.fallbacks += fallback as u64;
                }
                self.next_attempt_after(r, endpoint, delay, opts);
            }
            NextAttempt::GiveUp(_) => self.fail(r, error, opts),
        }
    }

    /// The next attempt of the request in slab entry `r`, on `endpoint`: dispatched now when `delay` is
    /// zero, else started by an `AttemptStart` event after `delay` (a retry's backoff).
    fn next_attempt_after(&mut self, r: u32, endpoint: EndpointIdx, delay: Nanos, opts: &mut RunOptions<'_>) {
        if delay == 0 {
            self.dispatch(r, endpoint, false, opts);
        } else {
            let q = &mut self.reqs[r as usize];
            q.ep = endpoint;
            let generation = q.generation;
            self.events.push(self.now.saturating_add(delay), Ev::AttemptStart { req: r, generation });
        }
    }

    /// Hands the outcomes drawn so far of request `id` back to the source, for the other runs it feeds.
    fn share_drawn(&mut self, id: u64, drawn: Drawn) {
        if let Some(slot) = self.source.drawn(id) {
            *slot = drawn;
        }
    }

    /// Cascade (quality on): after the request in slab entry `r` got a successful answer from `ep`, a stage of
    /// a cascade that is not its last, the verifier judges the answer (drawn from its precision and recall
    /// against the true outcome); when it rejects, the request escalates to the next eligible stage (the
    /// rejected attempt's cost and time stay counted). Returns whether it escalated; when not, the answer
    /// stands (accepted, or no stage left to escalate to). Only for a run with a cascade.
    fn cascade_escalates(&mut self, r: u32, ep: EndpointIdx, opts: &mut RunOptions<'_>) -> bool {
        let now = self.now;
        let estimate = self.estimate(r);
        let a = self.reqs[r as usize].arrival;
        let info = fill_info::<Q>(&mut self.templates, &a, estimate);
        let Some(spec) = self.routers.for_request::<PLAIN>(a.id).verification(info, ep) else { return false };
        let (precision, recall) = (spec.precision, spec.recall);
        let Some(quality) = &mut self.quality else { return false };
        let (passes, drawn) = quality.verifier_passes(r, Asked { id: a.id, class: a.class }, ep, precision, recall);
        if let Some(drawn) = drawn {
            self.share_drawn(a.id, drawn);
        }
        if passes {
            return false;
        }
        let mut attempts = self.reqs[r as usize].attempts;
        let info = fill_info::<Q>(&mut self.templates, &a, estimate);
        match self.routers.for_request::<PLAIN>(a.id).escalate(info, &mut attempts, now) {
            NextAttempt::Retry { endpoint, delay, .. } => {
                self.reqs[r as usize].attempts = attempts;
                if self.reqs[r as usize].measured
                    && let Some(counts) = &mut self.metrics.quality
                {
                    counts.escalations += 1;
                }
                self.next_attempt_after(r, endpoint, delay, opts);
                true
            }
            NextAttempt::GiveUp(_) => false,
        }
    }

    /// The request in slab entry `r` completed successfully. Out of line, unlike the rest of the per-request
    /// path: inlined, it saved about 25 instructions per request but brought the answer-quality scoring into
    /// the event loop, where quality's share of the quickstart's time rose from about 9% to 10-13% (issue 30's
    /// benchmark).
    fn complete(&mut self, r: u32, latency: Nanos, ttft: Nanos, opts: &mut RunOptions<'_>) {
        let q = &self.reqs[r as usize];
        if q.measured {
            self.metrics.success(q.arrival.class as usize, latency, ttft);
            // The answer's quality is that of the attempt that answered (the last one); a cache hit's is
            // unknown (the router's cache does not say which endpoint filled it).
            if Q && !q.cache_hit
                && let (Some(quality), Some(counts)) = (&mut self.quality, &mut self.metrics.quality)
            {
                let (score, drawn) = quality.score(r, Asked { id: q.arrival.id, class: q.arrival.class }, q.ep);
                counts.answer(q.arrival.class as usize, score);
                if let Some(drawn) = drawn
                    && let Some(slot) = self.source.drawn(q.arrival.id)
                {
                    *slot = drawn;
                }
            }
        }
        self.metrics.series.completed(latency);
        if !PLAIN && let Some(k) = &mut self.keys {
            let tokens = if q.cache_hit { 0 } else { q.arrival.input_tokens as u64 + q.arrival.output_tokens as u64 };
            k.finish(&q.arrival, tokens, q.cost, self.now);
        }
        self.emit(r, Some((latency, ttft)), None, opts);
        self.release(r);
    }

    fn fail(&mut self, r: u32, error: Option<ErrorClass>, opts: &mut RunOptions<'_>) {
        if self.reqs[r as usize].measured
            && let Some(e) = error
        {
            self.metrics.failure(e);
        }
        self.metrics.series.failed();
        if !PLAIN && let Some(k) = &mut self.keys {
            let q = &self.reqs[r as usize];
            k.finish(&q.arrival, 0, q.cost, self.now);
        }
        self.emit(r, None, error, opts);
        self.release(r);
    }

    /// Hands the finished request in slab entry `r` to the records sink, if the run has one (checked here,
    /// inline: most runs keep no records).
    #[inline(always)]
    fn emit(&mut self, r: u32, ok: Option<(Nanos, Nanos)>, error: Option<ErrorClass>, opts: &mut RunOptions<'_>) {
        if !PLAIN && opts.records.is_some() {
            self.emit_record(r, ok, error, opts);
        }
    }

    fn emit_record(
        &mut self,
        r: u32,
        ok: Option<(Nanos, Nanos)>,
        error: Option<ErrorClass>,
        opts: &mut RunOptions<'_>,
    ) {
        let Some(sink) = opts.records.as_mut() else { return };
        let q = &self.reqs[r as usize];
        let attempted = !(q.cache_hit || (ok.is_none() && error.is_none()));
        let attempts = if attempted { q.attempts.count } else { 0 };
        let rec = RequestRecord {
            id: q.arrival.id,
            class: q.arrival.class,
            arrival_s: nanos_to_secs(q.arrival.at),
            latency_s: ok.map_or(nanos_to_secs(self.now - q.arrival.at), |(l, _)| nanos_to_secs(l)),
            ttft_s: ok.map_or(f64::NAN, |(_, t)| nanos_to_secs(t)),
            error,
            rejected: ok.is_none() && error.is_none(),
            cache_hit: q.cache_hit,
            attempts,
            endpoint: (attempts > 0).then_some(q.ep.0),
            cost_usd: q.cost,
            input_tokens: q.arrival.input_tokens,
            output_tokens: q.arrival.output_tokens,
            measured: q.measured,
            arrival_ns: q.arrival.at,
            cache_key: q.arrival.cache_key,
            deferrable: q.arrival.deferrable,
            output_known: q.arrival.expected_output,
            arm: self.routers.arm(q.arrival.id),
        };
        sink(&rec);
    }

    fn on_health_check(&mut self) {
        let now = self.now;
        for (i, p) in self.providers.iter().enumerate() {
            self.routers.on_health(EndpointIdx(i as u16), !p.is_down(), now);
        }
        if let Some(iv) = self.model.health_interval {
            self.events.push(now.saturating_add(iv), Ev::HealthCheck);
        }
    }

    fn on_fault(&mut self, idx: usize, on: bool) {
        let f = &self.model.faults[idx];
        self.providers[f.endpoint.get()].apply_fault(&f.spec, on);
    }

    /// Sends the held batch to the batch endpoint: all its requests complete together after the turnaround.
    fn release_batch(&mut self) {
        let held = std::mem::take(&mut self.batch_held);
        let now = self.now;
        let Some(ep) = self.batch_ep else { return };
        let k = key(self.model.seed, self.replication, Stream::Batch, self.batch_seq, 0);
        let turnaround = self.providers[ep.get()].batch_turnaround(&mut KeyedRng::new(k));
        for r in held {
            let estimate = self.estimate(r);
            let info = fill_info::<Q>(&mut self.templates, &self.reqs[r as usize].arrival, estimate);
            self.routers.for_request::<PLAIN>(info.id).on_dispatch(ep, info, now);
            self.metrics.series.attempt(ep.get());
            let q = &mut self.reqs[r as usize];
            q.ep = ep;
            q.attempts = Attempts::first(ep);
            q.started = true;
            q.dispatched = now;
            q.first_token = now.saturating_add(turnaround);
            if q.measured {
                self.metrics.counts.batched += 1;
            }
            let generation = q.generation;
            self.events.push(now.saturating_add(turnaround), Ev::BatchDone { req: r, generation });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::Path;

    fn compiled(file: &str, text: &str, requests: u64) -> Compiled {
        let path = Path::new(file);
        let mut s = Scenario::parse(path, text).expect("parses");
        s.requests = Some(requests);
        s.duration = None;
        s.compile(path).expect("compiles")
    }

    fn quickstart(requests: u64) -> Compiled {
        compiled("scenarios/quickstart.toml", include_str!("../../../scenarios/quickstart.toml"), requests)
    }

    /// Everything a run reports that must not depend on how its arrivals reached it.
    fn fingerprint(r: &RunResult) -> String {
        let m = &r.metrics;
        let q = |h: &crate::metrics::LatencyHistogram| [0.5, 0.95, 0.99].map(|p| h.quantile_s(p).to_bits()).to_vec();
        let classes: Vec<_> = (0..m.latency_by_class.len())
            .map(|c| {
                let (l, t) = m.class_latency(c);
                (q(l), q(t))
            })
            .collect();
        format!(
            "{} {} {} {} {:?} {:?} {:?} {:?} {:?} {} {:?} {:?} {:?} {:?}",
            r.policy,
            r.end,
            r.in_flight,
            r.events,
            r.router_spend.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            m.counts,
            q(&m.latency),
            q(&m.ttft),
            m.latency.mean_s().to_bits(),
            m.cost_usd.to_bits(),
            classes,
            m.queueing,
            m.series,
            m.quality,
        )
    }

    fn records_of(
        policies: &[usize],
        run_all: impl FnOnce(Vec<RunOptions<'_>>) -> Vec<RunResult>,
    ) -> (Vec<String>, Vec<Vec<RequestRecord>>) {
        let mut recs: Vec<Vec<RequestRecord>> = policies.iter().map(|_| Vec::new()).collect();
        let mut sinks: Vec<_> = recs.iter_mut().map(|v| move |r: &RequestRecord| v.push(r.clone())).collect();
        let opts = sinks
            .iter_mut()
            .map(|s| RunOptions { records: Some(s as &mut dyn FnMut(&RequestRecord)), ..Default::default() })
            .collect();
        let results = run_all(opts);
        drop(sinks);
        assert_eq!(results.len(), policies.len());
        (results.iter().map(fingerprint).collect(), recs)
    }

    /// Runs every policy of `model` in lockstep, with each chunk length, and checks each policy's result and
    /// records against its own run (replication 1); returns the separate runs' fingerprints.
    fn assert_lockstep_is_separate(model: &Compiled, chunks: &[usize]) -> Vec<String> {
        let policies: Vec<usize> = (0..model.scenario.policies.len()).collect();
        let (want, want_recs) =
            records_of(&policies, |opts| policies.iter().zip(opts).map(|(&p, o)| run(model, p, 1, o)).collect());
        for &chunk in chunks {
            let (got, got_recs) = records_of(&policies, |opts| lockstep(model, &policies, 1, opts, chunk));
            assert_eq!(got, want, "chunk {chunk}");
            assert!(got_recs == want_recs, "chunk {chunk}: records differ");
        }
        want
    }

    #[test]
    fn lockstep_runs_give_each_policy_exactly_its_separate_run() {
        // 2,500 requests in chunks of 700 (a partial last chunk) and of 500 (an empty last chunk), and in one
        // chunk: every policy's result and records equal those of its own run.
        let model = quickstart(2_500);
        assert!(model.scenario.policies.len() >= 6, "the quickstart compares six policies");
        let want = assert_lockstep_is_separate(&model, &[700, 500, 4_096]);
        // A subset, in another order.
        let some = [4, 1];
        let (got, _) = records_of(&some, |opts| lockstep(&model, &some, 1, opts, 300));
        assert_eq!(got, vec![want[4].clone(), want[1].clone()]);
    }

    #[test]
    fn lockstep_runs_with_client_keys_give_each_policy_exactly_its_separate_run() {
        // Keys meter and deny requests before the router: per run, from the same arrivals.
        let text = include_str!("../../../scenarios/team-keys.toml");
        let model = compiled("scenarios/team-keys.toml", text, 3_000);
        assert!(!model.scenario.keys.is_empty() && model.scenario.policies.len() >= 2);
        assert_lockstep_is_separate(&model, &[1_000, 777]);
    }

    #[test]
    fn plain_runs_give_the_results_of_runs_that_check_every_feature() {
        // Without a records sink (nor keys, canary, trace or horizon) a run is compiled plain; with one it
        // checks every feature at run time. Both must give the same result, alone and in lockstep, with
        // quality on (the quickstart) and off (the peer model).
        let peer = compiled(
            "scenarios/peer-simpy-router.toml",
            include_str!("../../../scenarios/peer-simpy-router.toml"),
            4_000,
        );
        for model in [quickstart(2_500), peer] {
            assert!(model.scenario.keys.is_empty() && model.replay.is_none());
            let policies: Vec<usize> = (0..model.scenario.policies.len()).collect();
            let (general, _) =
                records_of(&policies, |opts| policies.iter().zip(opts).map(|(&p, o)| run(&model, p, 1, o)).collect());
            let plain: Vec<String> =
                policies.iter().map(|&p| fingerprint(&run(&model, p, 1, RunOptions::default()))).collect();
            assert_eq!(plain, general, "{}", model.scenario.name);
            let opts = policies.iter().map(|_| RunOptions::default()).collect();
            let lockstep_plain: Vec<String> =
                lockstep(&model, &policies, 1, opts, 700).iter().map(fingerprint).collect();
            assert_eq!(lockstep_plain, general, "{} in lockstep", model.scenario.name);
        }
    }

    #[test]
    fn lockstep_runs_stop_at_a_horizon_like_separate_runs() {
        let model = quickstart(3_000);
        let policies = [0, 2, 5];
        let horizon = Some(model.warmup_until.saturating_add(60_000_000_000));
        let opts = || policies.iter().map(|_| RunOptions { horizon, ..Default::default() }).collect::<Vec<_>>();
        let want: Vec<String> = policies.iter().zip(opts()).map(|(&p, o)| fingerprint(&run(&model, p, 0, o))).collect();
        let results = lockstep(&model, &policies, 0, opts(), 256);
        // The horizon cut every run short, several chunks in.
        assert!(results.iter().all(|r| r.metrics.counts.arrivals > 1_000 && r.metrics.counts.arrivals < 3_000));
        let got: Vec<String> = results.iter().map(fingerprint).collect();
        assert_eq!(got, want);
    }
}
