//! The gateway's overhead against the bare mock upstream (crate `routesim-mock-upstream`, answering every
//! request with the same 8-chunk completion and no provider model): the gateway (round-robin over two
//! endpoints on that mock, request log on, `router_shards` as asked) and two open-loop loads
//! ([`crate::load::generator`]) started together at the same rate, one straight to the mock and one through
//! the gateway; then, optionally, the saturation throughput (closed loop, 64 workers), with the peak RSS of
//! the process and the request log's dropped rows. `routesim overhead --bare-mock`.

use crate::load::generator::{LoadReport, LoadSpec, client, closed_loop, open_loop};
use crate::mock_upstream::{MockReply, MockUpstream};
use anyhow::Context;
use bytes::Bytes;
use routesim_gateway::GatewayConfig;
use routesim_gateway::metrics::{overhead_buckets, overhead_quantile_us};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Workers of the closed-loop saturation run.
pub const SATURATION_WORKERS: usize = 64;

/// Options of a bare-mock run.
#[derive(Clone, Debug)]
pub struct BareOptions {
    /// Requests per second on each path.
    pub rates: Vec<f64>,
    /// How long each rate runs.
    pub duration: Duration,
    /// The modes to run: non-streaming (`false`), streaming (`true`).
    pub modes: Vec<bool>,
    /// How long the closed-loop saturation runs last (none: skipped).
    pub saturation: Option<Duration>,
    /// The gateway's `[server] router_shards`.
    pub shards: usize,
}

/// One rate and mode, both paths.
#[derive(Clone, Debug)]
pub struct BareStep {
    /// Requests per second.
    pub rate: f64,
    /// Streamed requests.
    pub streaming: bool,
    /// Straight to the mock.
    pub direct: LoadReport,
    /// Through the gateway.
    pub gateway: LoadReport,
    /// The gateway's own time at p50 and p99 (upper bounds of its overhead histogram's buckets), microseconds.
    pub own_us: (f64, f64),
}

/// The closed-loop saturation throughputs.
#[derive(Clone, Debug)]
pub struct Saturation {
    /// How long each run lasted.
    pub duration: Duration,
    /// Straight to the mock, non-streaming.
    pub direct: LoadReport,
    /// Through the gateway, non-streaming.
    pub gateway: LoadReport,
    /// Through the gateway, streaming.
    pub gateway_streaming: LoadReport,
}

/// What a bare-mock run measured.
#[derive(Clone, Debug)]
pub struct BareReport {
    /// One per mode and rate (modes outer).
    pub steps: Vec<BareStep>,
    /// The saturation runs, when asked for.
    pub saturation: Option<Saturation>,
    /// Peak resident memory of the whole process (gateway, mock, load generator), MiB.
    pub peak_rss_mib: f64,
    /// The gateway's `routesim_gateway_log_rows_dropped_total` at the end (`?` when absent).
    pub log_rows_dropped: String,
    /// The gateway's router shards.
    pub shards: usize,
}

/// The gateway config of a bare-mock run: endpoints `a` and `b` on `mock`, round-robin, `router_shards`
/// `shards`, request log at `log`, health checks off.
pub fn gateway_config(mock: &str, shards: usize, log: &Path) -> anyhow::Result<GatewayConfig> {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
router_shards = {shards}

[request_log]
path = "{}"

[health]
interval = "0s"

[[endpoints]]
id = "a"
upstream = {{ base_url = "{mock}" }}

[[endpoints]]
id = "b"
upstream = {{ base_url = "{mock}" }}

[[policies]]
name = "rr"
kind = "round-robin"
"#,
        log.display()
    );
    GatewayConfig::parse(Path::new("bench.toml"), &text, None, &|_| None)
        .map_err(|e| anyhow::anyhow!("the bare-mock gateway config is invalid: {e}"))
}

/// A chat body of a few words (with the usage chunk asked for when streamed).
fn body(stream: bool) -> Bytes {
    Bytes::from(
        serde_json::json!({"model": "auto", "stream": stream, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Benchmark prompt of a few words."}]})
        .to_string(),
    )
}

/// Runs the steps (and the saturation runs) with the gateway's request log in `dir`; `on_step` is called
/// after each step.
pub async fn run(opts: &BareOptions, dir: &Path, on_step: &mut dyn FnMut(&BareStep)) -> anyhow::Result<BareReport> {
    let mock = MockUpstream::start(MockReply::ok(8)).await;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cfg = gateway_config(&mock.base_url(), opts.shards, &dir.join("requests.jsonl"))?;
    let gw = routesim_gateway::start(cfg).await?;
    let client = client();
    let direct_url = format!("{}/chat/completions", mock.base_url());
    let gw_url = format!("{}/v1/chat/completions", gw.url());
    // Warm the pools.
    let warm = |url: String, stream: bool| LoadSpec {
        url,
        body: body(stream),
        rate: 500.0,
        duration: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
    };
    let (wd, wg) = (warm(direct_url.clone(), false), warm(gw_url.clone(), false));
    tokio::join!(open_loop(&client, &wd), open_loop(&client, &wg));
    let mut steps = Vec::new();
    for &streaming in &opts.modes {
        for &rate in &opts.rates {
            let spec = |url: &str| LoadSpec {
                url: url.to_string(),
                body: body(streaming),
                rate,
                duration: opts.duration,
                timeout: Duration::from_secs(10),
            };
            let (sd, sg) = (spec(&direct_url), spec(&gw_url));
            let before = overhead_buckets(&gw.app().metrics.render());
            let (direct, gateway) = tokio::join!(open_loop(&client, &sd), open_loop(&client, &sg));
            let after = overhead_buckets(&gw.app().metrics.render());
            let own_us = (overhead_quantile_us(&before, &after, 0.5), overhead_quantile_us(&before, &after, 0.99));
            let step = BareStep { rate, streaming, direct, gateway, own_us };
            on_step(&step);
            steps.push(step);
        }
    }
    let mut saturation = None;
    if let Some(duration) = opts.saturation {
        let w = SATURATION_WORKERS;
        let direct = closed_loop(&client, &direct_url, body(false), w, duration).await;
        let gateway = closed_loop(&client, &gw_url, body(false), w, duration).await;
        let gateway_streaming = closed_loop(&client, &gw_url, body(true), w, duration).await;
        saturation = Some(Saturation { duration, direct, gateway, gateway_streaming });
    }
    let m = gw.app().metrics.render();
    let log_rows_dropped =
        m.lines().find_map(|l| l.strip_prefix("routesim_gateway_log_rows_dropped_total ")).unwrap_or("?").to_string();
    gw.shutdown();
    let _ = gw.wait().await;
    Ok(BareReport { steps, saturation, peak_rss_mib: peak_rss_mib(), log_rows_dropped, shards: opts.shards })
}

fn us(r: &LoadReport, q: f64) -> f64 {
    r.quantile_us(q) as f64
}

/// The report as a Markdown table and lines, as the README quotes it.
pub fn render(r: &BareReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| mode | rate (req/s) | direct p50 / p99 (us) | gateway p50 / p99 (us) | overhead p50 | overhead p99 | gateway's own time p50 / p99 (bucket bound) | failed (direct / gateway) | generator lag max |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for s in &r.steps {
        let (d, g) = (&s.direct, &s.gateway);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} us | {:.0} us | <= {:.0} / <= {:.0} us | {} / {} | {:.1} ms |",
            super::mode_name(s.streaming),
            s.rate,
            us(d, 0.5),
            us(d, 0.99),
            us(g, 0.5),
            us(g, 0.99),
            us(g, 0.5) - us(d, 0.5),
            us(g, 0.99) - us(d, 0.99),
            s.own_us.0,
            s.own_us.1,
            d.failed,
            g.failed,
            d.max_lag.max(g.max_lag).as_secs_f64() * 1e3,
        );
    }
    if let Some(s) = &r.saturation {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "saturation (closed loop, {SATURATION_WORKERS} workers, {}s, load generator and mock in the same process): direct {:.0} req/s; through the gateway {:.0} req/s non-streaming, {:.0} req/s streaming; failed {} / {} / {}",
            s.duration.as_secs_f64(),
            s.direct.throughput(),
            s.gateway.throughput(),
            s.gateway_streaming.throughput(),
            s.direct.failed,
            s.gateway.failed,
            s.gateway_streaming.failed
        );
    }
    let _ = writeln!(out, "peak RSS of the whole process (gateway + mock + load generator): {:.0} MiB", r.peak_rss_mib);
    let _ = writeln!(out, "request log rows dropped: {}; router shards: {}", r.log_rows_dropped, r.shards);
    out
}

/// Peak resident set size of this process (Linux `VmHWM`), MiB; NaN when unknown.
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
