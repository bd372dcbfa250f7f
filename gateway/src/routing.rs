//! The attempt loop: a request through router-core, on the gateway's monotonic clock.
//!
//! `decide` picks the first endpoint (or answers from the cache, holds the request for a batch, or rejects
//! it); every attempt is bracketed by `on_dispatch` and `on_result` (with the TTFT of a stream); after a
//! failure `next_attempt` gives the next endpoint and the backoff, which is slept on the runtime. Each
//! attempt has the policy's timeout (else the upstream's, else `[client]`'s) and, for a stream, a
//! time-to-first-token timeout. A stream is committed to the client once its first chunk arrives: later
//! failures end the stream and are not retried.
//!
//! The router lock (a `std::sync::Mutex`) is taken for each call and released before any await. A request
//! whose client goes away (the handler future or the response stream is dropped) cancels its upstream
//! call, gives the router the attempt back as an `other` failure and is logged as cancelled.

use crate::app::App;
use crate::duration::IntoStd;
use crate::error::ApiError;
use crate::metrics::Status;
use crate::reqlog::LogRow;
use crate::request::ChatRequest;
use crate::rollout::{Arm, CanaryBy};
use crate::upstream::{
    SseScanner, Usage, UsageFilter, classify_status, classify_transport, parse_retry_after, usage_from_body,
};
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use router_core::{
    Attempts, Decision, EndpointIdx, ErrorClass, Nanos, NextAttempt, Outcome, RequestInfo, Scope, Timeouts,
    state::Circuit,
};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A successful attempt.
enum AttemptOk {
    /// A whole (non-streaming) response.
    Full { status: u16, body: Bytes, content_type: Option<HeaderValue> },
    /// A stream whose first chunk has arrived.
    Stream { resp: reqwest::Response, first: Bytes, ttft: Duration, content_type: Option<HeaderValue> },
}

/// A failed attempt.
#[derive(Debug)]
struct AttemptFail {
    class: ErrorClass,
    retry_after: Option<Nanos>,
    /// The upstream's status, when it answered.
    status: Option<u16>,
    /// The upstream's error body (passed to the client, scrubbed, only for a JSON `error` with a 4xx).
    body: Option<Bytes>,
    what: String,
    /// A 2xx answer that was not a usable completion.
    invalid: Option<crate::answer::Invalid>,
    /// The upstream refused the gateway's credentials (401/403): the endpoint's circuit is opened.
    auth: bool,
}

/// What happened to a request, for metrics and the log.
struct Final {
    status: Status,
    http: u16,
    endpoint: Option<EndpointIdx>,
    ttft: Option<Duration>,
    usage: Option<Usage>,
    cache_hit: bool,
}

/// One request's bookkeeping. Dropped before it is finished (the client went away), it gives the router
/// its in-flight attempt back and logs the request as cancelled.
struct Tracker {
    app: Arc<App>,
    info: RequestInfo,
    shard: usize,
    arrival: Instant,
    arrival_ns: Nanos,
    /// The attempt at the upstream now: endpoint and dispatch time.
    in_flight: Option<(EndpointIdx, Instant)>,
    attempts: u32,
    last: Option<EndpointIdx>,
    /// Time spent waiting for upstreams and in backoff before the response head.
    waited: Duration,
    sse: SseScanner,
    done: bool,
    /// The client key's hold (access control), settled with the usage and cost at the end.
    grant: Option<crate::auth::Grant>,
    /// Where the request may be routed (its `model` and key; see [`crate::models`]).
    scope: Scope,
    /// The rollout arm serving the request (control without a canary).
    arm: Arm,
    /// The first endpoint dispatched to.
    first: Option<EndpointIdx>,
    /// Each shadow policy's would-be first choice (`None`: it would reject), in `[rollout] shadow` order.
    shadow: Vec<Option<EndpointIdx>>,
    /// Cascade: the verifier's score of the answer served, when one ran on it.
    quality: Option<f64>,
    /// Cascade: the stage of the answer served.
    cascade_stage: Option<u32>,
    /// Cascade: the cost of the answers the verifier rejected and of the verifier calls, USD.
    cascade_cost: f64,
}

impl Tracker {
    fn new(app: Arc<App>, info: RequestInfo) -> Tracker {
        app.metrics.in_flight.inc();
        let shard = app.routers.shard_of(info.id);
        let arrival_ns = app.now();
        Tracker {
            app,
            info,
            shard,
            arrival: Instant::now(),
            arrival_ns,
            in_flight: None,
            attempts: 0,
            last: None,
            waited: Duration::ZERO,
            sse: SseScanner::default(),
            done: false,
            grant: None,
            scope: Scope::default(),
            arm: Arm::Control,
            first: None,
            shadow: Vec::new(),
            quality: None,
            cascade_stage: None,
            cascade_cost: 0.0,
        }
    }

    /// Asks every shadow router what it would choose first for this request (a cache hit is decided again
    /// without the cache key, as the served path does), never acting on it.
    fn shadow_decide(&mut self, now: Nanos) {
        let app = &self.app;
        if app.routers.shadows() == 0 {
            return;
        }
        let (info, scope, out) = (&self.info, &self.scope, &mut self.shadow);
        app.routers.each_shadow(|_, _, r| {
            let mut d = r.decide_in(info, now, scope);
            if d == Decision::CacheHit {
                let mut again = info.clone();
                again.cache_key = None;
                d = r.decide_in(&again, now, scope);
            }
            out.push(match d {
                Decision::Route { endpoint, .. } => Some(endpoint),
                Decision::Batch(ticket) => Some(ticket.endpoint),
                Decision::Reject(_) | Decision::CacheHit => None,
            });
        });
    }

    /// Records the dispatch of an attempt on `ep`.
    fn dispatch(&mut self, ep: EndpointIdx) {
        let now = self.app.now();
        self.app.routers.with_arm(self.arm.index(), self.shard, |r| r.on_dispatch(ep, &self.info, now));
        if !self.shadow.is_empty() {
            self.app.routers.each_shadow(|_, _, r| r.on_dispatch(ep, &self.info, now));
        }
        if self.first.is_none() {
            self.first = Some(ep);
        }
        let m = &self.app.ep_metrics[ep.get()];
        m.attempts.inc();
        m.in_flight.inc();
        self.in_flight = Some((ep, Instant::now()));
        self.attempts += 1;
        self.last = Some(ep);
    }

    /// Feeds back the result of the attempt in flight; after a failure, also asks for the next attempt
    /// (under the same lock).
    fn result(&mut self, outcome: &Outcome, attempts: Option<&mut Attempts>) -> Option<NextAttempt> {
        self.result_opening(outcome, attempts, false)
    }

    /// [`Tracker::result`], opening the endpoint's circuit (on every router) before the next attempt is
    /// chosen when `open` (the upstream refused the gateway's credentials).
    fn result_opening(
        &mut self,
        outcome: &Outcome,
        attempts: Option<&mut Attempts>,
        open: bool,
    ) -> Option<NextAttempt> {
        let (ep, _) = self.in_flight.take()?;
        let now = self.app.now();
        if open {
            let me = (self.arm.index(), self.shard);
            self.app.routers.each(|a, i, r| {
                if (a, i) != me {
                    r.open_circuit(ep, now);
                }
            });
        }
        if !self.shadow.is_empty() {
            self.app.routers.each_shadow(|_, _, r| {
                r.on_result(ep, &self.info, outcome, now);
                if open {
                    r.open_circuit(ep, now);
                }
            });
        }
        let (next, circuit) = self.app.routers.with_arm(self.arm.index(), self.shard, |r| {
            r.on_result(ep, &self.info, outcome, now);
            if open {
                r.open_circuit(ep, now);
            }
            let next = attempts.map(|a| r.next_attempt_in(&self.info, a, outcome, now, &self.scope));
            (next, r.state(ep).circuit)
        });
        let m = &self.app.ep_metrics[ep.get()];
        m.in_flight.dec();
        m.circuit.set(match circuit {
            Circuit::Closed => 0,
            Circuit::Open { .. } => 1,
            Circuit::HalfOpen { .. } => 2,
        });
        match outcome.error {
            Some(c) => {
                m.errors[c.index()].inc();
            }
            None => {
                m.latency.observe(outcome.latency as f64 / 1e9);
            }
        }
        next
    }

    /// Observes the gateway's own time so far (latency to the response head minus upstream wait).
    fn overhead(&self) {
        let own = self.arrival.elapsed().saturating_sub(self.waited);
        self.app.metrics.overhead.observe(own.as_secs_f64());
    }

    fn finish(&mut self, f: Final) {
        if self.done {
            return;
        }
        self.done = true;
        let app = &self.app;
        app.metrics.in_flight.dec();
        app.metrics.request(f.status);
        let latency = self.arrival.elapsed();
        let streaming = self.info.streaming;
        let usage = f.usage.unwrap_or(Usage { input: self.info.input_tokens, output: 0 });
        let mut cost = 0.0;
        // A request that failed without the upstream reporting usage is not billed (providers do not bill
        // errors; the simulator bills failed attempts nothing unless `bill_failed_input`).
        if let Some(ep) = f.endpoint
            && !f.cache_hit
            && (f.status == Status::Ok || f.usage.is_some())
        {
            let e = &app.endpoints[ep.get()];
            cost = e.price.cost(usage.input, usage.output);
            let m = &app.ep_metrics[ep.get()];
            m.cost.inc_by(cost);
            m.input_tokens.inc_by(usage.input as u64);
            m.output_tokens.inc_by(usage.output as u64);
        }
        // The stages whose answers the verifier rejected, and the verifier calls, were billed too.
        cost += self.cascade_cost;
        if f.status == Status::Ok {
            app.metrics.latency[streaming as usize].observe(latency.as_secs_f64());
            if let Some(t) = f.ttft {
                app.metrics.ttft.observe(t.as_secs_f64());
            }
        } else {
            app.metrics.ops.failed(f.status.name(), latency.as_secs_f64());
        }
        let key_id = self.grant.as_ref().map(|g| g.key_id().to_string());
        if let Some(g) = self.grant.take() {
            let billed = f.endpoint.is_some() && !f.cache_hit;
            g.settle(if billed { usage.input as u64 + usage.output as u64 } else { 0 }, cost);
        }
        let served_ok = f.status == Status::Ok && !f.cache_hit;
        let shadow = self.shadow_record(served_ok.then_some(usage));
        let arm = self.arm;
        if let Some(c) = app.arm_metrics.get(arm.index()) {
            c.inc();
        }
        let wall = app.started_wall + Duration::from_nanos(self.arrival_ns);
        app.log.record(LogRow {
            request_id: self.info.id,
            arrival_s: app.log.arrival_s(self.arrival_ns),
            time_unix_s: wall.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
            class: self.info.task_class.clone().unwrap_or_else(|| "default".into()),
            input_tokens: usage.input,
            output_tokens: usage.output,
            endpoint: f.endpoint.map(|e| app.endpoints[e.get()].id.clone()).unwrap_or_default(),
            ttft_s: if f.status == Status::Ok { f.ttft.map(|t| t.as_secs_f64()) } else { None },
            latency_s: latency.as_secs_f64(),
            status: match f.status {
                Status::Cancelled => "other",
                s => s.name(),
            },
            cost_usd: cost,
            cache_key: self.info.cache_key.map(|k| k.to_string()),
            deferrable: self.info.deferrable,
            output_known: self.info.expected_output_tokens.is_some(),
            attempts: self.attempts,
            http_status: f.http,
            streaming,
            cache_hit: f.cache_hit,
            cancelled: f.status == Status::Cancelled,
            key_id,
            denied: None,
            client_error: None,
            policy: Some(app.policy_names[arm.index()].clone()),
            arm: app.cfg.rollout.canary.is_some().then_some(arm.name()),
            shadow,
            quality: self.quality,
            cascade_stage: self.cascade_stage,
        });
    }

    /// Counts the shadow decisions against the served first choice (a cache hit or a rejection is "no
    /// endpoint"), adds the would-be cost of `usage` (a served success) at each shadow choice's prices, and
    /// gives the log's `shadow` object.
    fn shadow_record(&self, usage: Option<Usage>) -> Option<std::collections::BTreeMap<String, Option<String>>> {
        if self.shadow.is_empty() {
            return None;
        }
        let app = &self.app;
        let mut out = std::collections::BTreeMap::new();
        let served = self.first;
        for ((choice, m), name) in self.shadow.iter().zip(&app.shadow_metrics).zip(&app.shadow_names) {
            m.decisions.inc();
            if *choice == served {
                m.agreements.inc();
            }
            let slot = choice.map_or(app.endpoints.len(), |e| e.get());
            if let Some(c) = m.choices.get(slot) {
                c.inc();
            }
            if let (Some(u), Some(e)) = (usage, choice) {
                m.cost.inc_by(app.endpoints[e.get()].price.cost(u.input, u.output));
            }
            out.insert(name.clone(), choice.map(|e| app.endpoints[e.get()].id.clone()));
        }
        Some(out)
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some((_, sent)) = self.in_flight {
            let latency = sent.elapsed().as_nanos() as Nanos;
            self.result(&Outcome::failure(ErrorClass::Other, latency), None);
        }
        let usage = self.sse.usage.or_else(|| {
            (self.sse.events > 0).then_some(Usage { input: self.info.input_tokens, output: self.sse.events })
        });
        self.finish(Final {
            status: Status::Cancelled,
            http: 499,
            endpoint: self.last,
            ttft: None,
            usage,
            cache_hit: false,
        });
    }
}

/// Serves a chat completion: the whole flow of one request.
pub async fn complete(app: Arc<App>, req: ChatRequest) -> Response {
    complete_as(app, req, None).await
}

/// Serves a chat completion admitted under a client key's `grant` (settled when the request ends).
pub async fn complete_as(app: Arc<App>, mut req: ChatRequest, grant: Option<crate::auth::Grant>) -> Response {
    if app.cache.is_some() {
        req = req.with_canonical();
        if let Some(canon) = req.canonical.take() {
            req.canonical = Some(cache_scoped(&app, &req, grant.as_ref(), canon));
        }
    }
    let mut info = req.info.clone();
    info.id = req.client_id.unwrap_or_else(|| app.next_id());
    info.cache_key = req.cache_key();
    let mut t = Tracker::new(app.clone(), info);
    if let Some(c) = &app.cfg.rollout.canary {
        let id;
        let value = match c.by {
            CanaryBy::Key => grant.as_ref().map(|g| g.key_id()),
            CanaryBy::User => t.info.metadata.iter().find(|(k, _)| k == "user").and_then(|(_, v)| v.as_str()),
            CanaryBy::Request => {
                id = t.info.id.to_string();
                Some(id.as_str())
            }
        };
        t.arm = crate::rollout::arm_of(c, value);
    }
    t.grant = grant;
    t.scope = req.scope;
    let now = app.now();
    let arm = t.arm.index();
    let mut decision = app.routers.with_arm(arm, t.shard, |r| r.decide_in(&t.info, now, &t.scope));
    t.shadow_decide(now);
    if decision == Decision::CacheHit {
        let hit = match (&app.cache, &req.canonical, t.info.cache_key) {
            (Some(store), Some(canon), Some(key)) => store.get(key, canon, Instant::now()),
            _ => None,
        };
        // Defence in depth (the key is scoped by where the request may go): never an answer from an endpoint
        // this request could not have been routed to.
        let hit = hit.filter(|(_, producer)| could_route(&app, &t, EndpointIdx(*producer)));
        if let Some((body, _producer)) = hit {
            app.metrics.cache_hits.inc();
            t.overhead();
            let usage = usage_from_body(&body);
            t.finish(Final { status: Status::Ok, http: 200, endpoint: None, ttft: None, usage, cache_hit: true });
            return respond(StatusCode::OK, Body::from(body), None, &t, Some("hit"));
        }
        // The router remembers the key but the body was evicted: route it.
        let mut again = t.info.clone();
        again.cache_key = None;
        let now = app.now();
        decision = app.routers.with_arm(arm, t.shard, |r| r.decide_in(&again, now, &t.scope));
    }
    let first = match decision {
        Decision::Route { endpoint, .. } => endpoint,
        Decision::Batch(ticket) => {
            let waited = Instant::now();
            app.batches.hold(&app, t.shard, ticket).await;
            t.waited += waited.elapsed();
            ticket.endpoint
        }
        // A second `decide` without a cache key cannot hit the cache; were it to, the request is rejected.
        rejected @ (Decision::Reject(_) | Decision::CacheHit) => {
            let reason = match rejected {
                Decision::Reject(r) => r,
                _ => router_core::RejectReason::NoRoute,
            };
            app.metrics.rejected.get_or_create(&crate::metrics::ReasonLabelPub { reason: reason.name() }).inc();
            t.overhead();
            t.finish(Final {
                status: Status::Rejected,
                http: 503,
                endpoint: None,
                ttft: None,
                usage: None,
                cache_hit: false,
            });
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                reason.name(),
                format!("no endpoint can take this request now ({})", reason.name().replace('_', " ")),
            );
            e.retry_after = Some(1);
            return e.into_response();
        }
    };
    attempt_loop(app, req, t, first).await
}

/// The cache key material of a request: its tenant (the client key, or the value the key's own `metadata`
/// gives `[response_cache] tenant_field`: a client cannot name another tenant), where it may be routed (its
/// scope and required capabilities, the key's `endpoint_tags` among them) and its canonical body. Two
/// requests share an answer only when all of it is equal.
fn cache_scoped(app: &App, req: &ChatRequest, grant: Option<&crate::auth::Grant>, canon: Vec<u8>) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(canon.len() + 64);
    let tenant = app.cfg.response_cache.tenant_field.as_deref().and_then(|f| grant?.key_metadata(f));
    let _ = match (tenant, grant.map(|g| g.key_id())) {
        (Some(v), _) => write!(out, "tenant={v:?}\0"),
        (None, Some(k)) => write!(out, "key={k:?}\0"),
        (None, None) => write!(out, "anonymous\0"),
    };
    let _ = write!(out, "chooser={:?}\0excluded=", req.scope.chooser);
    for i in 0..app.endpoints.len() {
        if req.scope.excluded.contains(EndpointIdx(i as u16)) {
            let _ = write!(out, "{i},");
        }
    }
    let mut caps: Vec<&str> = req.info.required_capabilities.iter().map(String::as_str).collect();
    caps.sort_unstable();
    let _ = write!(out, "\0caps={}\0", caps.join(","));
    out.extend_from_slice(&canon);
    out
}

/// Whether `ep` is an endpoint request `t` could have been routed to: in its scope, with every capability
/// it requires.
fn could_route(app: &App, t: &Tracker, ep: EndpointIdx) -> bool {
    let Some(e) = app.endpoints.get(ep.get()) else { return false };
    !t.scope.excluded.contains(ep) && t.info.required_capabilities.iter().all(|c| e.capabilities.iter().any(|h| h == c))
}

async fn attempt_loop(app: Arc<App>, mut req: ChatRequest, mut t: Tracker, first: EndpointIdx) -> Response {
    let mut ep = first;
    let mut attempts = Attempts::first(ep);
    // The gateway asks for the usage chunk on the client's behalf when it did not set `stream_options`; the
    // client, who did not ask, does not get it (its `choices` is empty: `choices[0]` loops would break).
    let strip_usage = req.stream && app.cfg.server.stream_usage && !req.body.contains_key("stream_options");
    loop {
        let upstream = app.upstreams.get(ep.get());
        let body = Bytes::from(req.upstream_body(&upstream.model, app.cfg.server.stream_usage));
        let timeouts = app.attempt_timeouts(t.arm.index(), ep.get());
        t.dispatch(ep);
        let sent = Instant::now();
        let result = attempt(&app, ep.get(), body, req.stream, timeouts).await;
        t.waited += sent.elapsed();
        let fail = match result {
            Ok(AttemptOk::Full { status, body, content_type }) => {
                let latency = sent.elapsed().as_nanos() as Nanos;
                let usage = usage_from_body(&body);
                let u = usage.unwrap_or(Usage { input: t.info.input_tokens, output: 0 });
                t.result(&Outcome::success(latency, None, u.input, u.output), None);
                if let Some(next) = cascade_step(&app, &mut t, &req, ep, &body, u, &mut attempts).await {
                    ep = next;
                    continue;
                }
                if let (Some(store), Some(canon), Some(key)) = (&app.cache, &req.canonical, t.info.cache_key) {
                    store.put(key, canon.clone(), body.clone(), ep.0, Instant::now());
                }
                t.overhead();
                t.finish(Final {
                    status: Status::Ok,
                    http: status,
                    endpoint: Some(ep),
                    ttft: None,
                    usage,
                    cache_hit: false,
                });
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return respond(code, Body::from(body), content_type, &t, None);
            }
            Ok(AttemptOk::Stream { resp, first, ttft, content_type }) => {
                t.overhead();
                let stream_cfg = &app.cfg.stream;
                let deadline = stream_cfg.total_timeout.map(|d| sent + d.into_std());
                let idle = stream_cfg.idle_timeout.map(|d| d.into_std()).or(timeouts.attempt.map(Duration::from_nanos));
                let head = respond_head(StatusCode::OK, content_type, &t);
                let stream = relay(resp, first, ttft, sent, (deadline, idle), strip_usage, t);
                return Response::from_parts(head.into_parts().0, Body::from_stream(stream));
            }
            Err(f) => f,
        };
        let latency = sent.elapsed().as_nanos() as Nanos;
        let mut outcome = Outcome::failure(fail.class, latency);
        outcome.retry_after = fail.retry_after;
        // The upstream's own code, so that a `target_retry` list naming 503 but not 500 tells them apart.
        outcome.status = fail.status;
        let ep_id = &app.endpoints[ep.get()].id;
        if let Some(inv) = fail.invalid {
            app.metrics.answers.invalid(ep_id, inv.name());
            tracing::warn!(endpoint = %ep_id, reason = inv.name(), "upstream {}", inv.what());
        }
        if fail.auth {
            app.metrics.answers.auth_failure(ep_id);
            tracing::warn!(endpoint = %ep_id, "upstream {}; its circuit is opened", fail.what);
        }
        match t.result_opening(&outcome, Some(&mut attempts), fail.auth) {
            Some(NextAttempt::Retry { endpoint, delay, fallback }) => {
                app.metrics.retries.inc();
                if fallback {
                    app.metrics.fallbacks.inc();
                }
                if delay > 0 {
                    let slept = Instant::now();
                    tokio::time::sleep(Duration::from_nanos(delay)).await;
                    t.waited += slept.elapsed();
                }
                ep = endpoint;
            }
            _ => {
                let e = give_up_error(&app, ep, &fail, t.attempts);
                t.overhead();
                t.finish(Final {
                    status: Status::of(fail.class),
                    http: e.status().as_u16(),
                    endpoint: Some(ep),
                    ttft: None,
                    usage: None,
                    cache_hit: false,
                });
                return e;
            }
        }
    }
}

/// A cascade's step after a successful answer from `ep` (see [`crate::verifier`]): when the root policy is a
/// cascade and `ep` is not its last stage, the verifier scores the answer; when it rejects it (a score below
/// `min_score`, or no usable score) and a later stage is eligible, the answer's cost is kept and the next
/// stage is returned. `None`: serve this answer.
async fn cascade_step(
    app: &App,
    t: &mut Tracker,
    req: &ChatRequest,
    ep: EndpointIdx,
    body: &Bytes,
    usage: Usage,
    attempts: &mut Attempts,
) -> Option<EndpointIdx> {
    let (arm, shard) = (t.arm.index(), t.shard);
    let (stage, spec) =
        app.routers.with_arm(arm, shard, |r| (r.cascade_stage(ep), r.verification(&t.info, ep).cloned()));
    t.cascade_stage = stage.map(|s| s as u32);
    t.quality = None;
    // A request whose model names a group is routed by that group, not by the cascade.
    let spec = spec.filter(|_| t.scope.chooser == router_core::Chooser::Root)?;
    let waited = Instant::now();
    let verdict = crate::verifier::verify(app, arm, shard, &t.info, req, body, &spec).await;
    t.waited += waited.elapsed();
    t.quality = verdict.score;
    let id = &app.endpoints[ep.get()].id;
    if let Some(u) = verdict.usage
        && let Some(judge) = spec.endpoint.as_deref().and_then(|j| app.endpoints.iter().position(|e| e.id == j))
    {
        let c = app.endpoints[judge].price.cost(u.input, u.output);
        app.ep_metrics[judge].cost.inc_by(c);
        t.cascade_cost += c;
    }
    let policy = &app.policy_names[arm];
    app.metrics.quality.verdict(
        policy,
        match (&verdict.cause, verdict.accepted) {
            (Some(_), _) => crate::metrics::CascadeVerdict::JudgeError,
            (None, true) => crate::metrics::CascadeVerdict::Accepted,
            (None, false) => crate::metrics::CascadeVerdict::Rejected,
        },
    );
    match (&verdict.cause, verdict.accepted) {
        (Some(cause), _) => tracing::warn!(endpoint = %id, request = t.info.id, "cascade: answer rejected: {cause}"),
        (None, accepted) => tracing::info!(
            endpoint = %id,
            request = t.info.id,
            score = verdict.score.unwrap_or(f64::NAN),
            min_score = spec.min_score,
            accepted,
            "cascade: verifier scored the answer"
        ),
    }
    if verdict.accepted {
        return None;
    }
    let now = app.now();
    match app.routers.with_arm(arm, shard, |r| r.escalate_in(&t.info, attempts, now, &t.scope)) {
        NextAttempt::Retry { endpoint, .. } => {
            // The rejected answer was billed.
            let c = app.endpoints[ep.get()].price.cost(usage.input, usage.output);
            let m = &app.ep_metrics[ep.get()];
            m.cost.inc_by(c);
            m.input_tokens.inc_by(usage.input as u64);
            m.output_tokens.inc_by(usage.output as u64);
            t.cascade_cost += c;
            app.metrics.quality.escalation(policy);
            tracing::info!(from = %id, to = %app.endpoints[endpoint.get()].id, request = t.info.id, "cascade: escalating");
            Some(endpoint)
        }
        NextAttempt::GiveUp(_) => {
            tracing::warn!(endpoint = %id, request = t.info.id, "cascade: no later stage is eligible; serving the rejected answer");
            None
        }
    }
}

/// The client's answer when no attempt is left.
fn give_up_error(app: &App, ep: EndpointIdx, fail: &AttemptFail, attempts: u32) -> Response {
    let id = &app.endpoints[ep.get()].id;
    let msg = format!("{attempts} attempt(s) failed; the last, on endpoint `{id}`, {}", fail.what);
    // A 4xx other than 429 is the upstream's answer to the client's own request: pass its JSON error on,
    // rebuilt from its message (scrubbed of credentials), type, param and code only.
    if fail.class == ErrorClass::Other
        && let (Some(status), Some(body)) = (fail.status, &fail.body)
    {
        let key = app.upstreams.get(ep.get()).api_key.as_deref();
        if let Some(v) = crate::answer::scrub_error(body, key.as_slice()) {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut r = (code, v.to_string()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return r;
        }
    }
    if fail.auth {
        return ApiError::new(StatusCode::BAD_GATEWAY, "api_error", "upstream_auth_failed", msg).into_response();
    }
    let mut e = match fail.class {
        ErrorClass::RateLimited => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "rate_limit_exceeded", msg)
        }
        ErrorClass::Timeout => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout_error", "upstream_timeout", msg),
        ErrorClass::Server => ApiError::new(StatusCode::BAD_GATEWAY, "api_error", "upstream_error", msg),
        ErrorClass::Other => ApiError::new(
            fail.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_GATEWAY),
            "api_error",
            "upstream_error",
            msg,
        ),
    };
    e.retry_after = fail.retry_after.map(|n| n.div_ceil(1_000_000_000));
    e.into_response()
}

/// One attempt: send, and wait for the whole body (non-streaming) or the first chunk (streaming), within
/// the attempt timeout and, for a stream, the TTFT timeout.
async fn attempt(app: &App, ep: usize, body: Bytes, stream: bool, to: Timeouts) -> Result<AttemptOk, AttemptFail> {
    let start = Instant::now();
    let attempt_deadline = to.attempt.map(|n| start + Duration::from_nanos(n));
    let ttft_deadline = if stream { to.ttft.map(|n| start + Duration::from_nanos(n)) } else { None };
    let (deadline, ttft_first) = match (attempt_deadline, ttft_deadline) {
        (Some(a), Some(f)) => (Some(a.min(f)), f <= a),
        (a, None) => (a, false),
        (None, f) => (f, f.is_some()),
    };
    let fut = async {
        let resp = app.upstreams.send(ep, body).send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if let Some(class) = classify_status(status) {
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            if matches!(status, 401 | 403) {
                // The provider refused the gateway's own key: not the client's fault, and every request would
                // meet it. The body is dropped unread (some providers echo the key they were sent).
                return Err(AttemptFail {
                    class: ErrorClass::Server,
                    retry_after: None,
                    status: Some(status),
                    body: None,
                    what: format!("refused the gateway's provider credentials (HTTP {status})"),
                    invalid: None,
                    auth: true,
                });
            }
            let body = read_bounded(resp, 64 * 1024).await;
            return Err(AttemptFail {
                class,
                retry_after,
                status: Some(status),
                body,
                what: format!("returned HTTP {status}"),
                invalid: None,
                auth: false,
            });
        }
        let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
        if stream {
            let mut resp = resp;
            if crate::answer::is_json_content_type(content_type.as_ref().map(HeaderValue::as_bytes)) {
                let body = read_bounded(resp, 64 * 1024).await.unwrap_or_default();
                return Err(invalid(status, crate::answer::classify_plain_answer(&body)));
            }
            match resp.chunk().await {
                Ok(Some(first)) => match crate::answer::check_stream_head(&first) {
                    Ok(()) => Ok(AttemptOk::Stream { resp, first, ttft: start.elapsed(), content_type }),
                    Err(crate::answer::Invalid::NotAStream) => {
                        let rest = read_bounded(resp, 64 * 1024).await.unwrap_or_default();
                        let whole = [&first[..], &rest[..]].concat();
                        Err(invalid(status, crate::answer::classify_plain_answer(&whole)))
                    }
                    Err(why) => Err(invalid(status, why)),
                },
                Ok(None) => Err(invalid(status, crate::answer::Invalid::EmptyStream)),
                Err(e) => Err(transport(e)),
            }
        } else {
            let body = resp.bytes().await.map_err(transport)?;
            crate::answer::check_completion(&body).map_err(|why| invalid(status, why))?;
            Ok(AttemptOk::Full { status, body, content_type })
        }
    };
    match deadline {
        None => fut.await,
        Some(d) => match tokio::time::timeout_at(d.into(), fut).await {
            Ok(r) => r,
            Err(_) => {
                let (what, limit) = if ttft_first {
                    ("no first token within the TTFT timeout", to.ttft)
                } else {
                    ("timed out", to.attempt)
                };
                let secs = limit.map(|n| n as f64 / 1e9).unwrap_or(0.0);
                Err(AttemptFail {
                    class: ErrorClass::Timeout,
                    retry_after: None,
                    status: None,
                    body: None,
                    what: format!("{what} ({secs}s)"),
                    invalid: None,
                    auth: false,
                })
            }
        },
    }
}

fn transport(e: reqwest::Error) -> AttemptFail {
    let (class, what) = classify_transport(&e);
    AttemptFail {
        class,
        retry_after: None,
        status: None,
        body: None,
        what: what.to_string(),
        invalid: None,
        auth: false,
    }
}

/// A 2xx answer that is not a usable completion: a `server` failure (retried, failed over, counted).
fn invalid(status: u16, why: crate::answer::Invalid) -> AttemptFail {
    AttemptFail {
        class: ErrorClass::Server,
        retry_after: None,
        status: Some(status),
        body: None,
        what: why.what().to_string(),
        invalid: Some(why),
        auth: false,
    }
}

/// Up to `limit` bytes of an error body.
async fn read_bounded(mut resp: reqwest::Response, limit: usize) -> Option<Bytes> {
    let mut out = Vec::new();
    while let Ok(Some(c)) = resp.chunk().await {
        if out.len() + c.len() > limit {
            return None;
        }
        out.extend_from_slice(&c);
    }
    Some(Bytes::from(out))
}

fn respond_head(code: StatusCode, content_type: Option<HeaderValue>, t: &Tracker) -> Response {
    let mut r = code.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type.unwrap_or(HeaderValue::from_static("application/json")));
    if t.info.streaming {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    h.insert("x-request-id", HeaderValue::from(t.info.id));
    if let Some(ep) = t.last
        && let Ok(v) = HeaderValue::from_str(&t.app.endpoints[ep.get()].id)
    {
        h.insert("x-routesim-endpoint", v);
    }
    h.insert("x-routesim-attempts", HeaderValue::from(t.attempts));
    r
}

fn respond(
    code: StatusCode,
    body: Body,
    content_type: Option<HeaderValue>,
    t: &Tracker,
    cache: Option<&'static str>,
) -> Response {
    let (parts, _) = respond_head(code, content_type, t).into_parts();
    let mut r = Response::from_parts(parts, body);
    if let Some(c) = cache {
        r.headers_mut().insert("x-routesim-cache", HeaderValue::from_static(c));
    }
    r
}

struct Relay {
    resp: reqwest::Response,
    first: Option<Bytes>,
    ttft: Duration,
    sent: Instant,
    /// `[stream] total_timeout`'s deadline.
    deadline: Option<Instant>,
    /// `[stream] idle_timeout` (default: the attempt timeout): the longest wait for the next chunk.
    idle: Option<Duration>,
    t: Tracker,
    /// How the upstream stream ended, once it has (reported after the bytes already in hand are sent).
    ended: Option<End>,
    /// Drops the usage chunk the gateway asked for on the client's behalf (see [`UsageFilter`]).
    strip: Option<UsageFilter>,
}

/// How an upstream stream ended.
#[derive(Clone, Copy)]
enum End {
    /// Cleanly.
    Done,
    /// With a transport error.
    Broke(ErrorClass),
    /// No chunk within the idle timeout.
    Idle,
    /// Past the total deadline.
    Total,
}

/// The most bytes of already-arrived chunks sent to the client as one write.
const COALESCE_BYTES: usize = 64 * 1024;

/// How many times the relay lets other tasks run (hyper's connection task among them, which decodes the
/// next frame of bytes already read) before it takes "nothing more" for an answer. Two was enough in every
/// run measured: one lets the connection task see that its last frame was taken, the next its new frame.
const COALESCE_YIELDS: usize = 2;

impl Relay {
    fn end(&mut self, error: Option<(ErrorClass, u16)>) {
        let latency = self.sent.elapsed().as_nanos() as Nanos;
        let usage = self.t.sse.usage.or(Some(Usage { input: self.t.info.input_tokens, output: self.t.sse.events }));
        let outcome = match error {
            None => {
                let u = usage.unwrap_or_default();
                Outcome::success(latency, Some(self.ttft.as_nanos() as Nanos), u.input, u.output)
            }
            Some((c, _)) => Outcome::failure(c, latency),
        };
        self.t.result(&outcome, None);
        let ep = self.t.last;
        match error {
            None => self.t.finish(Final {
                status: Status::Ok,
                http: 200,
                endpoint: ep,
                ttft: Some(self.ttft),
                usage,
                cache_hit: false,
            }),
            Some((c, http)) => {
                self.t.finish(Final { status: Status::of(c), http, endpoint: ep, ttft: None, usage, cache_hit: false })
            }
        }
    }
}

/// The response stream: the upstream's chunks, passed on as they arrive (nothing waits for data that has
/// not arrived), scanned for usage on the way.
///
/// Chunks that have *already* reached the gateway when one is passed on go out with it as one write: hyper's
/// client hands a response body over one frame at a time, so a burst of small SSE events read in one socket
/// read would otherwise cost one write (and one wake-up of the client) each. After each chunk the relay lets
/// the connection task run ([`COALESCE_YIELDS`] times `yield_now`) and takes whatever it has decoded by then,
/// up to [`COALESCE_BYTES`]; it never waits on the network for more.
///
/// Each wait for the next chunk is bounded by the idle timeout and the total deadline. A stream that breaks,
/// goes quiet, runs past its deadline or ends without `data: [DONE]` is recorded as a failure and ended with
/// an OpenAI-style `error` event (then a clean end of the body, so the client's HTTP framing stays whole).
fn relay(
    resp: reqwest::Response,
    first: Bytes,
    ttft: Duration,
    sent: Instant,
    (deadline, idle): (Option<Instant>, Option<Duration>),
    strip: bool,
    t: Tracker,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let strip = strip.then(UsageFilter::default);
    let state = Relay { resp, first: Some(first), ttft, sent, deadline, idle, t, ended: None, strip };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(end) = st.ended.take() {
                return st.finish(end);
            }
            if st.t.done {
                return None;
            }
            let chunk = match st.first.take() {
                Some(b) => b,
                None => {
                    let idle_at = st.idle.map(|d| Instant::now() + d);
                    let wait = match (idle_at, st.deadline) {
                        (Some(i), Some(d)) => Some((i.min(d), d <= i)),
                        (Some(i), None) => Some((i, false)),
                        (None, Some(d)) => Some((d, true)),
                        (None, None) => None,
                    };
                    let next = match wait {
                        Some((at, total)) => tokio::time::timeout_at(at.into(), st.resp.chunk())
                            .await
                            .map_err(|_| if total { End::Total } else { End::Idle }),
                        None => Ok(st.resp.chunk().await),
                    };
                    match next {
                        Ok(Ok(Some(b))) => b,
                        Ok(Ok(None)) => return st.finish(End::Done),
                        Ok(Err(e)) => return st.finish(End::Broke(classify_transport(&e).0)),
                        Err(end) => return st.finish(end),
                    }
                }
            };
            st.t.sse.feed(&chunk);
            let out = st.take_arrived(chunk).await;
            let out = match &mut st.strip {
                Some(f) => f.filter(&out),
                None => out,
            };
            if !out.is_empty() {
                return Some((Ok(out), st));
            }
        }
    })
}

impl Relay {
    /// `chunk` followed by the chunks that have already arrived (see [`relay`]); an end met on the way is
    /// kept in `ended` for the next poll.
    async fn take_arrived(&mut self, chunk: Bytes) -> Bytes {
        use futures_util::FutureExt;
        let mut joined: Option<bytes::BytesMut> = None;
        let mut len = chunk.len();
        while len < COALESCE_BYTES {
            let mut next = None;
            for _ in 0..COALESCE_YIELDS {
                tokio::task::yield_now().await;
                next = self.resp.chunk().now_or_never();
                if next.is_some() {
                    break;
                }
            }
            let Some(next) = next else { break };
            match next {
                Ok(Some(b)) => {
                    self.t.sse.feed(&b);
                    len += b.len();
                    joined.get_or_insert_with(|| bytes::BytesMut::from(&chunk[..])).extend_from_slice(&b);
                }
                Ok(None) => {
                    self.ended = Some(End::Done);
                    break;
                }
                Err(e) => {
                    self.ended = Some(End::Broke(classify_transport(&e).0));
                    break;
                }
            }
        }
        match joined {
            Some(j) => j.freeze(),
            None => chunk,
        }
    }

    /// Ends the stream: records the outcome; what is still held back and, for a failure, an `error` event go
    /// out as the last chunk.
    fn finish(mut self, end: End) -> Option<(Result<Bytes, std::io::Error>, Relay)> {
        let mut tail = self.strip.as_mut().map(UsageFilter::flush).unwrap_or_default();
        let ep_id = self.t.last.map(|e| self.t.app.endpoints[e.get()].id.clone()).unwrap_or_default();
        let cut = match end {
            End::Done if self.t.sse.done => None,
            End::Done => Some((
                ErrorClass::Server,
                502,
                "no_done",
                "upstream_stream_incomplete",
                "the upstream ended the stream without `data: [DONE]`".to_string(),
            )),
            End::Broke(class) => {
                Some((class, 502, "broken", "upstream_stream_broken", "the upstream stream broke".to_string()))
            }
            End::Idle => {
                let secs = self.idle.map_or(0.0, |d| d.as_secs_f64());
                Some((
                    ErrorClass::Timeout,
                    504,
                    "idle_timeout",
                    "stream_idle_timeout",
                    format!("the upstream sent nothing for {secs}s (the stream idle timeout)"),
                ))
            }
            End::Total => Some((
                ErrorClass::Timeout,
                504,
                "total_timeout",
                "stream_total_timeout",
                "the stream reached the gateway's total stream timeout".to_string(),
            )),
        };
        match cut {
            None => self.end(None),
            Some((class, http, reason, code, message)) => {
                self.end(Some((class, http)));
                let app = &self.t.app;
                app.metrics.answers.stream_cut(reason);
                if reason == "no_done" {
                    app.metrics.answers.invalid(&ep_id, crate::answer::Invalid::NoDone.name());
                }
                tracing::warn!(endpoint = %ep_id, reason, "a committed stream was cut: {message}");
                // An event cut short by the upstream is closed first, so the error is an event of its own.
                if self.t.sse.mid_line() || !tail.is_empty() && !tail.ends_with(b"\n\n") {
                    tail.extend_from_slice(b"\n\n");
                }
                let kind = if class == ErrorClass::Timeout { "timeout_error" } else { "api_error" };
                let event =
                    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
                tail.extend_from_slice(format!("data: {event}\n\n").as_bytes());
            }
        }
        (!tail.is_empty()).then(|| (Ok(Bytes::from(tail)), self))
    }
}
