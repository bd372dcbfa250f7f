//! An open-loop load generator: requests are sent on a fixed schedule (`i / rate` after the start) whatever
//! the responses do, and each latency is measured from the request's *scheduled* send time, so a stall in
//! the system under test shows up in the latencies instead of thinning the load (no coordinated omission).
//! Also a closed-loop saturation run (N workers back to back) for the highest sustainable rate.
//!
//! `routesim load` ([`super`]) sends a scenario's schedule through [`at_scheduled_times`]; `routesim overhead` uses
//! [`open_loop`] and [`closed_loop`] against the bare mock upstream.

use bytes::Bytes;
use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A client for load runs: pooled keep-alive connections, `TCP_NODELAY`, no proxy.
pub fn client() -> reqwest::Client {
    routesim_gateway::upstream::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(4096)
        .build()
        .expect("a client without TLS configuration builds")
}

/// One load run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// URL of the chat-completions endpoint.
    pub url: String,
    /// Request body.
    pub body: Bytes,
    /// Requests per second.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// Per-request timeout (a request taking longer fails).
    pub timeout: Duration,
}

/// Results of a run.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 2xx with their whole body read.
    pub ok: u64,
    /// Requests failed (status, transport, timeout).
    pub failed: u64,
    /// Latencies of successful requests from their scheduled send time, microseconds.
    pub latency_us: Histogram<u64>,
    /// Wall time from the first send to the last answer.
    pub elapsed: Duration,
    /// The largest lag of the scheduler behind the schedule (a sign the generator itself was saturated).
    pub max_lag: Duration,
}

impl LoadReport {
    /// Quantile `q` of latency, microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.latency_us.value_at_quantile(q)
    }

    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Sends one request and reads the whole body; `Ok` when it is 2xx.
async fn one(client: &reqwest::Client, url: &str, body: Bytes, timeout: Duration) -> bool {
    let fut = async {
        let mut resp = client.post(url).header("content-type", "application/json").body(body).send().await.ok()?;
        let ok = resp.status().is_success();
        while let Some(_c) = resp.chunk().await.ok()? {}
        Some(ok)
    };
    matches!(tokio::time::timeout(timeout, fut).await, Ok(Some(true)))
}

/// What the closed-loop workers accumulate.
struct Acc {
    hist: Histogram<u64>,
    ok: u64,
    failed: u64,
    last: Instant,
}

/// Starts `send(i, at)` at each scheduled instant `at` of `times` (the `i`-th), whether or not earlier
/// requests have returned, and waits for all of them. Returns their outputs in schedule order and the largest
/// lag of the scheduler behind the schedule. The open-loop core shared by [`open_loop`] and `routesim load`.
pub async fn at_scheduled_times<T, F, Fut>(times: impl IntoIterator<Item = Instant>, mut send: F) -> (Vec<T>, Duration)
where
    F: FnMut(usize, Instant) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut tasks = Vec::new();
    let mut max_lag = Duration::ZERO;
    for (i, at) in times.into_iter().enumerate() {
        tokio::time::sleep_until(at.into()).await;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(at));
        tasks.push(tokio::spawn(send(i, at)));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(v) = t.await {
            out.push(v);
        }
    }
    (out, max_lag)
}

/// Runs an open-loop load: `rate` requests per second for `duration`.
pub async fn open_loop(client: &reqwest::Client, spec: &LoadSpec) -> LoadReport {
    let n = (spec.rate * spec.duration.as_secs_f64()).round() as u64;
    let start = Instant::now();
    let times = (0..n).map(|i| start + Duration::from_secs_f64(i as f64 / spec.rate));
    let (done, max_lag) = at_scheduled_times(times, |_, at| {
        let (client, url, body, timeout) = (client.clone(), spec.url.clone(), spec.body.clone(), spec.timeout);
        async move { (one(&client, &url, body, timeout).await, at, Instant::now()) }
    })
    .await;
    let (mut hist, mut ok, mut last) = (histogram(), 0, start);
    for &(success, at, end) in &done {
        if success {
            let us = end.saturating_duration_since(at).as_micros().max(1) as u64;
            let _ = hist.record(us.min(60_000_000));
            ok += 1;
        }
        last = last.max(end);
    }
    LoadReport {
        sent: n,
        ok,
        failed: n - ok,
        latency_us: hist,
        elapsed: last.saturating_duration_since(start),
        max_lag,
    }
}

/// Runs `workers` closed loops (each sends its next request when the last one is answered) for `duration`:
/// the throughput at saturation.
pub async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    workers: usize,
    duration: Duration,
) -> LoadReport {
    let start = Instant::now();
    let end = start + duration;
    let acc = Arc::new(Mutex::new(Acc { hist: histogram(), ok: 0, failed: 0, last: start }));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, url, body, acc) = (client.clone(), url.to_string(), body.clone(), acc.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let t = Instant::now();
                    let ok = one(&client, &url, body.clone(), Duration::from_secs(10)).await;
                    let done = Instant::now();
                    let mut a = acc.lock().unwrap_or_else(|p| p.into_inner());
                    if ok {
                        let _ = a.hist.record((done - t).as_micros().max(1) as u64);
                        a.ok += 1;
                    } else {
                        a.failed += 1;
                    }
                    a.last = a.last.max(done);
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let a = acc.lock().unwrap_or_else(|p| p.into_inner());
    LoadReport {
        sent: a.ok + a.failed,
        ok: a.ok,
        failed: a.failed,
        latency_us: a.hist.clone(),
        elapsed: a.last.saturating_duration_since(start),
        max_lag: Duration::ZERO,
    }
}
