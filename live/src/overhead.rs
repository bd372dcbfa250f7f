//! The gateway's overhead, measured on the live harness: the scenario's mock providers ([`crate::mock`]), the
//! production gateway with the scenario's policy in front of them, and two open-loop loads ([`crate::load`])
//! on the same schedule, one straight to a mock endpoint and one through the gateway. The overhead at a
//! quantile is the through-gateway latency minus the direct latency at that quantile, both measured in the
//! same run, so the mock's and the client's own costs cancel out.
//!
//! Meant for a scenario whose endpoints answer in a constant time without errors or limits
//! (`scenarios/gateway-overhead.toml`), so that the two loads see the same upstream.

pub mod bare;
pub mod micro;

use crate::compare::quantile;
use crate::load::{self, ClientResult, LoadBounds};
use crate::mock::{self, MockProviders};
use crate::provider::LiveClock;
use anyhow::Context;
use router_core::Duration as RcDuration;
use routesim_gateway::metrics::{overhead_buckets, overhead_quantile_us};
use sim::failure::Failure;
use sim::scenario::Compiled;
use sim::scenario::Scenario;
use sim::setup::select_policies;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One measured step: a rate and a mode.
#[derive(Clone, Debug, PartialEq)]
pub struct OverheadStep {
    /// Requests per second sent on each path.
    pub rate: f64,
    /// Whether the requests streamed.
    pub streaming: bool,
    /// Requests sent on each path.
    pub requests: usize,
    /// Requests that failed, direct and through the gateway.
    pub failed: (usize, usize),
    /// Direct latency at p50 and p99, microseconds.
    pub direct_us: (f64, f64),
    /// Through-gateway latency at p50 and p99, microseconds.
    pub gateway_us: (f64, f64),
    /// The gateway's own time at p50 and p99 (its `routesim_gateway_overhead_seconds` histogram: time in
    /// the handler other than waiting for the upstream), as the upper bound of the bucket, microseconds.
    pub own_us: (f64, f64),
    /// The largest lag of a send behind its schedule on either path (the generator saturated if large).
    pub max_lag: Duration,
}

impl OverheadStep {
    /// The mode as the table and the CSV name it.
    pub fn mode(&self) -> &'static str {
        mode_name(self.streaming)
    }

    /// Gateway minus direct at p50 and p99, microseconds.
    pub fn overhead_us(&self) -> (f64, f64) {
        (self.gateway_us.0 - self.direct_us.0, self.gateway_us.1 - self.direct_us.1)
    }
}

/// `streaming` or `non-streaming`.
pub fn mode_name(streaming: bool) -> &'static str {
    if streaming { "streaming" } else { "non-streaming" }
}

/// Nearest-rank quantile of the successful latencies, microseconds (NaN with none).
fn quantile_us(results: &[ClientResult], q: f64) -> f64 {
    let mut v: Vec<f64> = results.iter().filter(|r| r.ok).map(|r| r.latency as f64 / 1e3).collect();
    v.sort_by(f64::total_cmp);
    quantile(&v, q)
}

/// Runs one step: `model` (its traffic at the step's rate and mode, bounded) served by mock providers behind
/// the gateway with policy `policy`; the direct path goes to the first endpoint. Logs the gateway's requests
/// to `log`, as production would.
pub async fn step(
    model: &Compiled,
    policy: usize,
    rate: f64,
    streaming: bool,
    log: &Path,
) -> anyhow::Result<OverheadStep> {
    let plan = load::plan(model, 0, LoadBounds { requests: model.limit.max_requests, until: model.limit.until });
    anyhow::ensure!(!plan.is_empty(), "the scenario generates no request within the run's limits");
    let clock = LiveClock::starting_at(Instant::now() + Duration::from_millis(300), 1.0);
    let mocks = mock::start(MockProviders::new(model, 0, clock, Duration::ZERO), "127.0.0.1:0".parse()?).await?;
    let text = crate::harness::gateway_config(model, policy, 0, 1.0, &|id| mocks.base_url(id), log)?;
    let cfg = routesim_gateway::GatewayConfig::parse(Path::new("overhead-gateway.toml"), &text, None, &|_| None)
        .map_err(|e| anyhow::anyhow!("the generated gateway config is invalid: {e}"))?;
    let gw = routesim_gateway::start(cfg).await?;
    let client = crate::load::generator::client();
    let direct_url = format!("{}/chat/completions", mocks.base_url(&model.endpoints[0].id));
    let gateway_url = format!("{}/v1/chat/completions", gw.url());
    let timeout = Duration::from_secs(10);
    let own_before = overhead_buckets(&gw.app().metrics.render());
    let (direct, through) = tokio::join!(
        load::run(&client, &direct_url, &plan, clock, timeout),
        load::run(&client, &gateway_url, &plan, clock, timeout)
    );
    let own_after = overhead_buckets(&gw.app().metrics.render());
    gw.shutdown();
    gw.wait().await?;
    mocks.stop().await;
    let failed = |r: &[ClientResult]| r.iter().filter(|x| !x.ok).count();
    Ok(OverheadStep {
        rate,
        streaming,
        requests: plan.len(),
        failed: (failed(&direct.results), failed(&through.results)),
        direct_us: (quantile_us(&direct.results, 0.5), quantile_us(&direct.results, 0.99)),
        gateway_us: (quantile_us(&through.results, 0.5), quantile_us(&through.results, 0.99)),
        own_us: (
            overhead_quantile_us(&own_before, &own_after, 0.5),
            overhead_quantile_us(&own_before, &own_after, 0.99),
        ),
        max_lag: direct.max_lag.max(through.max_lag),
    })
}

/// Options of `routesim overhead`.
#[derive(Clone, Debug)]
pub struct OverheadOptions {
    /// The scenario (endpoints with a constant service time and no errors); its traffic's classes and tokens
    /// are sent at each rate.
    pub scenario: PathBuf,
    /// Requests per second on each path.
    pub rates: Vec<f64>,
    /// How long each rate runs.
    pub duration: RcDuration,
    /// The modes to run: non-streaming (`false`), streaming (`true`).
    pub modes: Vec<bool>,
    /// The policy the gateway runs (default: the scenario's first).
    pub policy: Option<String>,
    /// Where the gateway's request logs (and `overhead.csv`) go (default: a temporary directory).
    pub out: Option<PathBuf>,
}

/// Runs one [`step`] per mode and rate (modes outer), calling `on_step` after each; returns the steps and
/// the output directory (created).
pub fn run(
    opts: &OverheadOptions,
    on_step: &mut dyn FnMut(&OverheadStep),
) -> Result<(Vec<OverheadStep>, PathBuf), Failure> {
    let base = Scenario::load(&opts.scenario)?;
    let policy = {
        let model = base.clone().compile(&opts.scenario)?;
        match &opts.policy {
            Some(p) => select_policies(&model, Some(std::slice::from_ref(p)))?[0],
            None => 0,
        }
    };
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("routesim-overhead-{}", std::process::id())));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let rt = crate::runtime()?;
    let mut steps = Vec::new();
    for &streaming in &opts.modes {
        for &rate in &opts.rates {
            let mut s = base.clone();
            s.warmup = None;
            s.warmup_requests = None;
            s.requests = None;
            s.duration = Some(opts.duration);
            s.traffic.rate = rate;
            for c in &mut s.traffic.classes {
                c.streaming = streaming;
            }
            let model = s.compile(&opts.scenario)?;
            let mode = mode_name(streaming);
            let log = out.join(format!("gateway-log-{mode}-{rate}.jsonl"));
            let step = rt.block_on(step(&model, policy, rate, streaming, &log)).map_err(Failure::Failed)?;
            on_step(&step);
            steps.push(step);
        }
    }
    Ok((steps, out))
}

/// [`bare::run`] on its own runtime, the gateway's request log in a temporary directory (removed after).
pub fn run_bare(
    opts: &bare::BareOptions,
    on_step: &mut dyn FnMut(&bare::BareStep),
) -> anyhow::Result<bare::BareReport> {
    let dir = std::env::temp_dir().join(format!("gw-bench-{}", std::process::id()));
    let report = crate::runtime()?.block_on(bare::run(opts, &dir, on_step));
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// The micro-benchmarks asked for, as Markdown tables: the shadow policy's cost, then the router lock (on the
/// bare-mock gateway's router config with `shards` shards).
pub fn run_micro(lock: bool, shadow: bool, shards: usize) -> anyhow::Result<String> {
    let mut out = String::new();
    if shadow {
        out.push('\n');
        out.push_str(&micro::shadow_table()?);
    }
    if lock {
        let cfg = bare::gateway_config("http://127.0.0.1:9/v1", shards, Path::new("requests.jsonl"))?;
        out.push('\n');
        out.push_str(&micro::lock_table(&cfg.router));
    }
    Ok(out)
}

/// The steps as a table.
pub fn render(steps: &[OverheadStep]) -> String {
    let mut out = format!(
        "{:<14} {:>7} {:>9} {:>7}  {:>9} {:>9}  {:>9} {:>9}  {:>9} {:>9}  {:>7} {:>7}  {:>8}\n",
        "mode",
        "rate/s",
        "requests",
        "failed",
        "direct50",
        "direct99",
        "gw50",
        "gw99",
        "over50",
        "over99",
        "own50",
        "own99",
        "lag ms"
    );
    for s in steps {
        let (o50, o99) = s.overhead_us();
        out.push_str(&format!(
            "{:<14} {:>7} {:>9} {:>7}  {:>9.0} {:>9.0}  {:>9.0} {:>9.0}  {:>9.0} {:>9.0}  {:>7} {:>7}  {:>8.1}\n",
            s.mode(),
            s.rate,
            s.requests,
            s.failed.0 + s.failed.1,
            s.direct_us.0,
            s.direct_us.1,
            s.gateway_us.0,
            s.gateway_us.1,
            o50,
            o99,
            format!("<={}", s.own_us.0),
            format!("<={}", s.own_us.1),
            s.max_lag.as_secs_f64() * 1e3
        ));
    }
    out.push_str(
        "(microseconds; over = through the gateway minus direct, at p50 and p99; own = the gateway's own time, \
         as the bound of its histogram bucket)\n",
    );
    out
}

/// Writes the steps as CSV.
pub fn write_csv(steps: &[OverheadStep], path: &Path) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    w.write_record([
        "mode",
        "rate",
        "requests",
        "failed_direct",
        "failed_gateway",
        "direct_p50_us",
        "direct_p99_us",
        "gateway_p50_us",
        "gateway_p99_us",
        "overhead_p50_us",
        "overhead_p99_us",
        "own_p50_us_at_most",
        "own_p99_us_at_most",
        "max_lag_ms",
    ])?;
    for s in steps {
        let (o50, o99) = s.overhead_us();
        w.write_record([
            s.mode().to_string(),
            s.rate.to_string(),
            s.requests.to_string(),
            s.failed.0.to_string(),
            s.failed.1.to_string(),
            s.direct_us.0.to_string(),
            s.direct_us.1.to_string(),
            s.gateway_us.0.to_string(),
            s.gateway_us.1.to_string(),
            o50.to_string(),
            o99.to_string(),
            s.own_us.0.to_string(),
            s.own_us.1.to_string(),
            (s.max_lag.as_secs_f64() * 1e3).to_string(),
        ])?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_count_only_successes_and_overhead_is_the_difference() {
        let r = |latency: u64, ok: bool| ClientResult {
            id: 0,
            at: 0,
            class: 0,
            stream: false,
            status: if ok { 200 } else { 0 },
            ok,
            latency,
            ttft: None,
            endpoint: None,
            attempts: 1,
        };
        let results: Vec<ClientResult> = (1..=100).map(|i| r(i * 1000, true)).chain([r(1, false)]).collect();
        assert_eq!(quantile_us(&results, 0.5), 50.0);
        assert_eq!(quantile_us(&results, 0.99), 99.0);
        assert!(quantile_us(&[r(5, false)], 0.5).is_nan());
        let s = OverheadStep {
            rate: 1.0,
            streaming: false,
            requests: 1,
            failed: (0, 0),
            direct_us: (100.0, 300.0),
            gateway_us: (140.0, 360.0),
            own_us: (4.0, 8.0),
            max_lag: Duration::ZERO,
        };
        assert_eq!(s.overhead_us(), (40.0, 60.0));
        assert!(render(&[s]).contains("non-streaming"));
    }
}
