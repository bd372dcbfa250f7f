//! An open-loop load generator: requests are sent on a fixed schedule (`i / rate` after the start) whatever
//! the responses do, and each latency is measured from the request's *scheduled* send time, so a stall in
//! the system under test shows up in the latencies instead of thinning the load (no coordinated omission).
//! Also a closed-loop saturation run (N workers back to back) for the highest sustainable rate.
//!
//! Kept independent of the gateway's internals so that it can move behind `routesim load` later.

use bytes::Bytes;
use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A client for load runs: pooled keep-alive connections, `TCP_NODELAY`, no proxy.
pub fn client() -> reqwest::Client {
    crate::upstream::install_crypto_provider();
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

struct Acc {
    hist: Histogram<u64>,
    ok: u64,
    failed: u64,
    last: Instant,
}

/// Runs an open-loop load: `rate` requests per second for `duration`.
pub async fn open_loop(client: &reqwest::Client, spec: &LoadSpec) -> LoadReport {
    let n = (spec.rate * spec.duration.as_secs_f64()).round() as u64;
    let start = Instant::now();
    let acc = Arc::new(Mutex::new(Acc { hist: histogram(), ok: 0, failed: 0, last: start }));
    let mut tasks = Vec::with_capacity(n as usize);
    let mut max_lag = Duration::ZERO;
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / spec.rate);
        tokio::time::sleep_until(at.into()).await;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(at));
        let (client, url, body, acc, timeout) =
            (client.clone(), spec.url.clone(), spec.body.clone(), acc.clone(), spec.timeout);
        tasks.push(tokio::spawn(async move {
            let ok = one(&client, &url, body, timeout).await;
            let done = Instant::now();
            let mut a = acc.lock().unwrap_or_else(|p| p.into_inner());
            if ok {
                let us = done.saturating_duration_since(at).as_micros().max(1) as u64;
                let _ = a.hist.record(us.min(60_000_000));
                a.ok += 1;
            } else {
                a.failed += 1;
            }
            a.last = a.last.max(done);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let a = acc.lock().unwrap_or_else(|p| p.into_inner());
    LoadReport {
        sent: n,
        ok: a.ok,
        failed: a.failed,
        latency_us: a.hist.clone(),
        elapsed: a.last.saturating_duration_since(start),
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
