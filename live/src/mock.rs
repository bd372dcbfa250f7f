//! Mock providers from a scenario: every endpoint served as an OpenAI-compatible upstream at
//! `http://ADDR/{endpoint id}/v1`, behaving as its provider model says in (scaled) real time.
//!
//! A chat completion is admitted by the endpoint's [`LiveProvider`] (the engine's model): refused at once
//! (429 with `Retry-After` over the RPM/TPM quota; 503 when the queue is full or an outage is on, after
//! `reject_latency`), started, or queued until a slot frees. In service the engine's keyed draw decides its
//! fate: success (the first token after the TTFT, the rest at the TPOT pace, usage at the end), a drawn 429,
//! a 500 (`server`) or 503 (`unavailable`) after `fail_after` of the service time, or a hang (504 after
//! `hang`). The slot is held for the drawn service time whatever the client does, as in the simulator.
//! `GET /{endpoint id}/v1/models` is the health check: 503 during an outage.
//!
//! Luck is common with the simulator: a request carrying `metadata.routesim_id` (as `routesim load` sends)
//! draws from the engine's stream of (seed, replication 0, request id, attempt, endpoint), the attempt being
//! counted across endpoints by the mock. Token counts come from `metadata.routesim_input_tokens` and
//! `routesim_output_tokens`, else from the prompt's length (four characters a token) and `max_tokens`.

use crate::provider::{LiveAdmission, LiveClock, LiveProvider};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use router_core::{ErrorClass, Nanos};
use routesim_mock_upstream::{completion_body, stream_chunk, usage_chunk};
use sim::provider::{Admission, Service};
use sim::rng::{Stream, StreamBase};
use sim::scenario::Compiled;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Output tokens assumed when a request says neither `routesim_output_tokens` nor `max_tokens`.
const DEFAULT_OUTPUT_TOKENS: u32 = 256;

/// Counters of what the mock answered.
#[derive(Debug, Default)]
pub struct MockCounters {
    /// Chat requests received.
    pub requests: AtomicU64,
    /// 429s answered (quota refusals and drawn ones).
    pub rate_limited: AtomicU64,
    /// 5xx answered (500, 503, 504).
    pub server_errors: AtomicU64,
    /// Completions served in full.
    pub completed: AtomicU64,
}

/// The mock's shared state: one live provider per endpoint.
pub struct MockProviders {
    providers: Vec<Arc<LiveProvider>>,
    by_id: HashMap<String, usize>,
    attempts: Mutex<HashMap<u64, u32>>,
    anonymous: AtomicU64,
    clock: LiveClock,
    chunk_gap: Duration,
    /// What was answered, per endpoint.
    pub counters: Vec<MockCounters>,
}

impl MockProviders {
    /// The providers of every endpoint of `model` (faults bound to their endpoints), luck keyed as in
    /// replication `replication` of the simulator, on `clock`; stream chunks at least `chunk_gap` apart in
    /// real time (tokens due meanwhile travel together; the first and the last are on time).
    pub fn new(model: &Compiled, replication: u32, clock: LiveClock, chunk_gap: Duration) -> Arc<MockProviders> {
        let keys = StreamBase::new(model.seed, replication, Stream::Service);
        let providers = model
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let faults = model.faults.iter().filter(|f| f.endpoint.get() == i).map(|f| f.spec.clone()).collect();
                LiveProvider::new(spec, i as u16, faults, keys, clock)
            })
            .collect();
        Arc::new(MockProviders {
            providers,
            by_id: model.endpoints.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect(),
            attempts: Mutex::new(HashMap::new()),
            anonymous: AtomicU64::new(0),
            clock,
            chunk_gap,
            counters: model.endpoints.iter().map(|_| MockCounters::default()).collect(),
        })
    }

    /// The provider of endpoint `id`.
    pub fn provider(&self, id: &str) -> Option<&Arc<LiveProvider>> {
        self.by_id.get(id).map(|&i| &self.providers[i])
    }

    /// The request id and attempt number of a request: a `routesim_id`'s attempts are counted across
    /// endpoints (as the engine counts them); a request without one is a first attempt of its own id.
    fn attempt_of(&self, id: Option<u64>) -> (u64, u32) {
        match id {
            Some(id) => {
                let mut m = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
                let n = m.entry(id).or_insert(0);
                *n += 1;
                (id, *n)
            }
            None => (1 << 63 | self.anonymous.fetch_add(1, Ordering::Relaxed), 1),
        }
    }
}

/// A running mock.
pub struct RunningMock {
    addr: SocketAddr,
    /// Its state.
    pub state: Arc<MockProviders>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningMock {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `base_url` of endpoint `id`: `http://ADDR/{id}/v1`.
    pub fn base_url(&self, id: &str) -> String {
        base_url(self.addr, id)
    }

    /// Stops serving and waits for the server to end (open streams are cut).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// The `base_url` of endpoint `id` on mock providers served at `addr`: `http://ADDR/{id}/v1` (the routes of
/// [`serve`]).
pub fn base_url(addr: SocketAddr, id: &str) -> String {
    format!("http://{addr}/{id}/v1")
}

/// Serves `state` on `listen` until stopped.
pub async fn start(state: Arc<MockProviders>, listen: SocketAddr) -> anyhow::Result<RunningMock> {
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    serve(state, listener)
}

/// Serves `state` on a listener already bound (so that its address can be given out before the providers'
/// clock is chosen) until stopped.
pub fn serve(state: Arc<MockProviders>, listener: tokio::net::TcpListener) -> anyhow::Result<RunningMock> {
    let app = Router::new()
        .route("/{endpoint}/v1/chat/completions", post(chat))
        .route("/{endpoint}/v1/models", get(models))
        .with_state(state.clone());
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok(RunningMock { addr, state, stop, task })
}

fn error(code: StatusCode, message: String, retry_after: Option<f64>) -> Response {
    let body = serde_json::json!({"error": {"message": message, "type": "mock_provider", "code": code.as_u16()}});
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(s) = retry_after
        && let Ok(v) = HeaderValue::from_str(&format!("{s:.3}"))
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn models(State(m): State<Arc<MockProviders>>, Path(endpoint): Path<String>) -> Response {
    match m.provider(&endpoint) {
        None => error(StatusCode::NOT_FOUND, format!("no endpoint `{endpoint}` in the scenario"), None),
        Some(p) if p.is_down() => error(StatusCode::SERVICE_UNAVAILABLE, "outage".into(), None),
        Some(_) => (StatusCode::OK, r#"{"object":"list","data":[{"id":"mock","object":"model"}]}"#).into_response(),
    }
}

/// What the mock reads from a chat-completion body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MockRequest {
    /// `metadata.routesim_id`.
    pub id: Option<u64>,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Completion tokens to generate.
    pub output_tokens: u32,
    /// Whether to stream.
    pub stream: bool,
    /// Whether a stream ends with a usage chunk.
    pub usage: bool,
}

impl MockRequest {
    /// Reads a body; `Err` names what is wrong.
    pub fn parse(body: &[u8]) -> Result<MockRequest, String> {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON ({e})"))?;
        let meta_u64 = |k: &str| {
            v.pointer(&format!("/metadata/{k}")).and_then(|x| x.as_u64().or_else(|| x.as_str()?.parse().ok()))
        };
        let chars: usize = v
            .get("messages")
            .and_then(|m| m.as_array())
            .map(|ms| ms.iter().map(|m| 16 + m.get("content").and_then(|c| c.as_str()).map_or(0, str::len)).sum())
            .ok_or("expected `messages`, an array")?;
        let max_tokens = ["max_completion_tokens", "max_tokens"].iter().find_map(|k| v.get(*k)?.as_u64());
        let clamp = |x: u64| x.min(u32::MAX as u64) as u32;
        Ok(MockRequest {
            id: meta_u64("routesim_id"),
            input_tokens: clamp(meta_u64("routesim_input_tokens").unwrap_or(chars.div_ceil(4) as u64)),
            output_tokens: clamp(
                meta_u64("routesim_output_tokens").or(max_tokens).unwrap_or(DEFAULT_OUTPUT_TOKENS as u64),
            ),
            stream: v.get("stream").and_then(|s| s.as_bool()).unwrap_or(false),
            usage: v.pointer("/stream_options/include_usage").and_then(|s| s.as_bool()).unwrap_or(false),
        })
    }
}

async fn chat(State(m): State<Arc<MockProviders>>, Path(endpoint): Path<String>, body: Bytes) -> Response {
    let Some(&i) = m.by_id.get(&endpoint) else {
        return error(StatusCode::NOT_FOUND, format!("no endpoint `{endpoint}` in the scenario"), None);
    };
    let req = match MockRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e, None),
    };
    let counters = &m.counters[i];
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let p = m.providers[i].clone();
    let (id, attempt) = m.attempt_of(req.id);
    let at = match p.admit(req.input_tokens as u64 + req.output_tokens as u64) {
        LiveAdmission::Start { at } => at,
        LiveAdmission::Queued(ticket) => ticket.wait().await,
        LiveAdmission::Refused(Admission::Refused { class, latency, retry_after }) => {
            tokio::time::sleep(m.clock.real(latency)).await;
            return if class == ErrorClass::RateLimited {
                counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                let ra = retry_after.map(|n| m.clock.real(n).as_secs_f64());
                error(StatusCode::TOO_MANY_REQUESTS, "over the RPM/TPM quota".into(), ra)
            } else {
                counters.server_errors.fetch_add(1, Ordering::Relaxed);
                let why = if p.is_down() { "outage" } else { "the queue is full" };
                error(StatusCode::SERVICE_UNAVAILABLE, why.into(), None)
            };
        }
        LiveAdmission::Refused(_) => unreachable!("only refusals are returned as Refused"),
    };
    let (svc, slot) = p.draw(id, attempt, req.output_tokens);
    let end = at.saturating_add(svc.duration);
    // The slot is held for the drawn service time whatever the client does, as in the engine.
    let holder = p.clone();
    let clock = m.clock;
    tokio::spawn(async move {
        wait_precisely_until(clock.instant_at(end)).await;
        holder.release(end);
    });
    if svc.error.is_some() {
        wait_precisely_until(clock.instant_at(end)).await;
        let code = match slot {
            Some(0) => StatusCode::TOO_MANY_REQUESTS,
            Some(2) => StatusCode::SERVICE_UNAVAILABLE,
            Some(3) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if code == StatusCode::TOO_MANY_REQUESTS {
            counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        // A drawn 429 carries no Retry-After: the simulator's drawn 429s give the router none either.
        return error(code, format!("drawn {} error", code.as_u16()), None);
    }
    counters.completed.fetch_add(1, Ordering::Relaxed);
    if !req.stream {
        wait_precisely_until(clock.instant_at(end)).await;
        let content = "tok ".repeat(req.output_tokens as usize);
        let mut r = completion_body(&content, req.input_tokens, req.output_tokens).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return r;
    }
    let pacer = Pacer::new(at, &svc, req, clock, m.chunk_gap);
    let body = futures_util::stream::unfold(pacer, |mut p| async move {
        let chunk = p.next().await?;
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), p))
    });
    let mut r = Body::from_stream(body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r
}

/// Sleeps until `t`, or not at all when `t` has passed (a timer registered for the past would still wait for
/// the timer wheel's next tick, up to a millisecond).
async fn wait_until(t: std::time::Instant) {
    if t > std::time::Instant::now() {
        tokio::time::sleep_until(t.into()).await;
    }
}

/// How early [`wait_precisely_until`] stops sleeping: tokio's timers fire on a millisecond wheel, up to a
/// millisecond late.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Waits until `t` to within microseconds: sleeps until [`TIMER_SLACK`] before it, then yields to the runtime
/// until `t`. For the moments the comparison measures and the router's bookkeeping follows (the first token,
/// the end of a service, a slot's release): on a clock scaled by X, a timer a millisecond late is X
/// milliseconds of scenario time, and the gateway would count the attempt in flight that much longer.
async fn wait_precisely_until(t: std::time::Instant) {
    if let Some(early) = t.checked_sub(TIMER_SLACK)
        && early > std::time::Instant::now()
    {
        tokio::time::sleep_until(early.into()).await;
    }
    while std::time::Instant::now() < t {
        tokio::task::yield_now().await;
    }
}

/// The chunks of a stream on their schedule: token `k` (0-based) of `n` is due at `start + ttft + k x
/// (duration - ttft) / (n - 1)`, so the first comes at the TTFT and the last at the end of the service.
/// Chunks are at least `gap` apart in real time (tokens due meanwhile travel together), except the last.
struct Pacer {
    ttft: Nanos,
    end: Nanos,
    n: u32,
    sent: u32,
    input: u32,
    output: u32,
    usage: bool,
    stage: u8,
    clock: LiveClock,
    gap: Duration,
    last: Option<std::time::Instant>,
}

impl Pacer {
    fn new(start: Nanos, svc: &Service, req: MockRequest, clock: LiveClock, gap: Duration) -> Pacer {
        Pacer {
            ttft: start.saturating_add(svc.ttft),
            end: start.saturating_add(svc.duration),
            n: req.output_tokens.max(1),
            sent: 0,
            input: req.input_tokens,
            output: req.output_tokens,
            usage: req.usage,
            stage: 0,
            clock,
            gap,
            last: None,
        }
    }

    /// Virtual time token `k` is due (the last one exactly at the end of the service).
    fn due(&self, k: u32) -> Nanos {
        if self.n <= 1 || k == 0 {
            return self.ttft;
        }
        let span = self.end.saturating_sub(self.ttft) as u128;
        self.ttft + (span * k as u128 / (self.n - 1) as u128) as Nanos
    }

    async fn next(&mut self) -> Option<String> {
        if self.sent < self.n {
            let mut target = self.clock.instant_at(self.due(self.sent));
            if let Some(last) = self.last {
                target = target.max(last + self.gap).min(self.clock.instant_at(self.end));
            }
            // The first token and the last are on time to the microsecond; the chunks between need not be.
            if self.sent == 0 || target >= self.clock.instant_at(self.end) {
                wait_precisely_until(target).await;
            } else {
                wait_until(target).await;
            }
            self.last = Some(std::time::Instant::now());
            let now = self.clock.now();
            let mut k = self.sent + 1;
            while k < self.n && self.due(k) <= now {
                k += 1;
            }
            let count = (k - self.sent) as usize;
            self.sent = k;
            return Some(stream_chunk(&"tok ".repeat(count)));
        }
        if self.stage == 0 {
            self.stage = 1;
            if self.usage {
                return Some(usage_chunk(self.input, self.output));
            }
        }
        if self.stage == 1 {
            self.stage = 2;
            return Some("data: [DONE]\n\n".to_string());
        }
        None
    }
}

/// `routesim mock`: serves `model`'s endpoints on `listen` as replication `replication`'s providers, on a
/// clock `time_scale` times faster than the scenario's, until Ctrl-C. `started` is called once the server
/// listens (to say where).
pub fn serve_until_ctrl_c(
    model: &Compiled,
    replication: u32,
    time_scale: f64,
    chunk_gap: Duration,
    listen: SocketAddr,
    started: impl FnOnce(&RunningMock),
) -> anyhow::Result<()> {
    let rt = crate::runtime()?;
    rt.block_on(async {
        let clock = LiveClock::new(time_scale);
        let state = MockProviders::new(model, replication, clock, chunk_gap);
        let m = start(state, listen).await?;
        started(&m);
        tokio::signal::ctrl_c().await.map_err(|e| anyhow::anyhow!(e).context("waiting for Ctrl-C"))?;
        m.stop().await;
        Ok(())
    })
}
