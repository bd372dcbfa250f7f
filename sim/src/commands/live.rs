//! `routesim mock`, `routesim load` and `routesim live`: a scenario's providers as mock upstreams, its
//! traffic as open-loop HTTP load, and the production gateway between them compared with the simulator.

use super::Failure;
use super::load::select_policies;
use super::run::results_dir;
use crate::live::{self, LiveOptions, load as live_load, mock, provider::LiveClock};
use crate::logs::ReplaySettings;
use crate::replay::attach;
use crate::scenario::{Compiled, Scenario};
use anyhow::Context;
use router_core::Duration;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

fn parse_duration(s: &str) -> Result<Duration, String> {
    Duration::parse(s)
}

/// What bounds and reshapes a scenario for a live run (shared by the three commands).
#[derive(Debug, Clone, clap::Args)]
pub struct LiveScenarioArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Scenario seconds per real second: every duration on the live side is divided by it.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// At most this many requests (with --duration, whichever comes first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Only arrivals in the first D of scenario time (like "5m").
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Multiplies the scenario's traffic rate (both sides), e.g. 0.1 to cover a long fault window with few
    /// requests.
    #[arg(long)]
    pub rate_scale: Option<f64>,
    /// The traffic profile's time of day at the start of the run (like "12h" for the business-hours peak).
    #[arg(long, value_parser = parse_duration)]
    pub clock: Option<Duration>,
    /// Master seed, replacing the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The simulator's replication whose traffic and provider luck are used (`live`: the first of
    /// `--replications`).
    #[arg(long, default_value_t = 0)]
    pub replication: u32,
}

impl LiveScenarioArgs {
    fn check(&self) -> Result<(), Failure> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(Failure::Invalid(format!(
                "--time-scale: expected a positive number, found {}",
                self.time_scale
            )));
        }
        if let Some(f) = self.rate_scale
            && !(f.is_finite() && f > 0.0)
        {
            return Err(Failure::Invalid(format!("--rate-scale: expected a positive number, found {f}")));
        }
        if self.requests == Some(0) {
            return Err(Failure::Invalid("--requests: expected at least 1".into()));
        }
        Ok(())
    }

    /// The scenario, reshaped: no warm-up (both sides count every request), the bounds, rate and clock.
    fn load(&self) -> Result<Compiled, Failure> {
        self.check()?;
        let file = &self.scenario;
        let mut s = Scenario::load(file)?;
        if let Some(seed) = self.seed {
            s.seed = seed;
        }
        s.warmup = None;
        s.warmup_requests = None;
        if let Some(n) = self.requests {
            s.requests = Some(n);
        }
        if let Some(d) = self.duration {
            s.duration = Some(d);
        }
        if let Some(f) = self.rate_scale {
            s.traffic.rate *= f;
        }
        if let Some(c) = self.clock {
            s.traffic.clock = c;
        }
        Ok(s.compile(file)?)
    }
}

/// Arguments of `routesim mock`.
#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// Scenario and time scale (the bounds do not apply to a mock).
    #[command(flatten)]
    pub scenario: LiveScenarioArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// Minimum real time between the chunks of a stream (tokens due meanwhile travel together).
    #[arg(long, value_parser = parse_duration, default_value = "5ms")]
    pub chunk_gap: Duration,
}

/// Arguments of `routesim load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Scenario, time scale, bounds.
    #[command(flatten)]
    pub scenario: LiveScenarioArgs,
    /// The gateway's base URL (loopback only), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub target: String,
    /// Send a log's arrivals (any format `routesim replay` reads) instead of the scenario's traffic.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// The log's format (default: detected).
    #[arg(long)]
    pub format: Option<String>,
    /// Writes one row per request (CSV) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `routesim live`.
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// Scenario, time scale, bounds.
    #[command(flatten)]
    pub scenario: LiveScenarioArgs,
    /// The policy the gateway runs (a `[[policies]]` name).
    #[arg(long)]
    pub policy: String,
    /// Output directory (default `results/<scenario>-live-<UTC timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Minimum real time between the chunks of a mock stream.
    #[arg(long, value_parser = parse_duration, default_value = "5ms")]
    pub chunk_gap: Duration,
    /// Run this many replications one after another (their traffic and luck differ) and compare the pooled
    /// figures, with a 95% interval of each metric's per-replication difference.
    #[arg(long, default_value_t = 1)]
    pub replications: u32,
    /// Exit with status 1 when a metric is out of its tolerance.
    #[arg(long)]
    pub strict: bool,
    /// Also serve this policy as a canary (`[rollout] canary = { policy, fraction, by = "request" }` in the
    /// gateway's config): the request log's `arm` column then feeds `routesim ab LOG --predict SCENARIO`.
    #[arg(long)]
    pub canary: Option<String>,
    /// Share of the requests (by a stable hash of the request id) the canary serves.
    #[arg(long, default_value_t = 0.5, requires = "canary")]
    pub canary_fraction: f64,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")?)
}

/// Runs `routesim mock` until Ctrl-C.
pub fn run_mock(args: &MockArgs) -> Result<(), Failure> {
    args.scenario.check()?;
    let model = Scenario::load(&args.scenario.scenario)?.compile(&args.scenario.scenario)?;
    let rt = runtime()?;
    rt.block_on(async {
        let clock = LiveClock::new(args.scenario.time_scale);
        let state = mock::MockProviders::new(
            &model,
            args.scenario.replication,
            clock,
            std::time::Duration::from_nanos(args.chunk_gap.nanos()),
        );
        let m = mock::start(state, args.listen).await.map_err(Failure::Failed)?;
        println!(
            "mock providers of scenario \"{}\" on {} (time scale {}); Ctrl-C stops",
            model.scenario.name,
            m.addr(),
            args.scenario.time_scale
        );
        for e in &model.endpoints {
            println!("  {:<24} base_url = \"{}\"", e.id, m.base_url(&e.id));
        }
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        m.stop().await;
        Ok(())
    })
}

/// Runs `routesim load`.
pub fn run_load(args: &LoadArgs) -> Result<(), Failure> {
    live_load::check_loopback(&args.target).map_err(Failure::Invalid)?;
    let mut model = args.scenario.load()?;
    let _spill;
    if let Some(log) = &args.log {
        let dir = std::env::temp_dir().join(format!("routesim-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let settings = ReplaySettings { format: args.format.clone(), ..ReplaySettings::default() };
        _spill = attach(&mut model, log, &settings, &dir).map_err(|e| Failure::Invalid(e.to_string()))?;
    }
    if model.scenario.duration.is_none() && model.scenario.requests.is_none() {
        return Err(Failure::Invalid("a load run needs --requests or --duration".into()));
    }
    let plan = live::plan_of(&model, args.scenario.replication);
    let scale = args.scenario.time_scale;
    let url = format!("{}/v1/chat/completions", args.target.trim_end_matches('/'));
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let clock = LiveClock::starting_at(std::time::Instant::now() + std::time::Duration::from_millis(100), scale);
        let client = routesim_gateway::load::client();
        let timeout = std::time::Duration::from_secs_f64((600.0 / scale).clamp(5.0, 600.0));
        live_load::run(&client, &url, &plan, clock, timeout).await
    });
    let ok: Vec<f64> = {
        let mut v: Vec<f64> = outcome.results.iter().filter(|r| r.ok).map(|r| r.latency as f64 / 1e9).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let q = |p: f64| Some(live::compare::quantile(&ok, p)).filter(|v| v.is_finite());
    let fmt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3} s"));
    println!(
        "{} requests sent to {} in {:.1} s (time scale {scale}; largest send lag {:.1} ms)\n  ok {} ({:.2}%), \
         latency in scenario time: p50 {}, p95 {}, p99 {}",
        outcome.results.len(),
        args.target,
        outcome.elapsed.as_secs_f64(),
        outcome.max_lag.as_secs_f64() * 1e3,
        ok.len(),
        100.0 * ok.len() as f64 / outcome.results.len().max(1) as f64,
        fmt(q(0.5)),
        fmt(q(0.95)),
        fmt(q(0.99)),
    );
    if let Some(out) = &args.out {
        write_results(out, &outcome.results)?;
        println!("  per-request results: {}", out.display());
    }
    Ok(())
}

fn write_results(path: &Path, results: &[live_load::ClientResult]) -> Result<(), Failure> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    let mut rows = || -> anyhow::Result<()> {
        w.write_record([
            "id",
            "scheduled_s",
            "class",
            "stream",
            "status",
            "ok",
            "latency_s",
            "ttft_s",
            "endpoint",
            "attempts",
        ])?;
        for r in results {
            w.write_record([
                r.id.to_string(),
                (r.at as f64 / 1e9).to_string(),
                r.class.to_string(),
                r.stream.to_string(),
                r.status.to_string(),
                r.ok.to_string(),
                (r.latency as f64 / 1e9).to_string(),
                r.ttft.map_or(String::new(), |t| (t as f64 / 1e9).to_string()),
                r.endpoint.clone().unwrap_or_default(),
                r.attempts.to_string(),
            ])?;
        }
        w.flush()?;
        Ok(())
    };
    rows().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs `routesim live`.
pub fn run_live(args: &LiveArgs) -> Result<(), Failure> {
    let model = args.scenario.load()?;
    let policy = select_policies(&model, Some(std::slice::from_ref(&args.policy)))?[0];
    let out = args.out.clone().unwrap_or_else(|| results_dir(&model.scenario.name, "-live"));
    if args.replications == 0 {
        return Err(Failure::Invalid("--replications: expected at least 1".into()));
    }
    let first = args.scenario.replication;
    let end = first
        .checked_add(args.replications)
        .ok_or_else(|| Failure::Invalid("--replication + --replications: too large".into()))?;
    let canary = match &args.canary {
        None => None,
        Some(name) => {
            if !(0.0..=1.0).contains(&args.canary_fraction) {
                return Err(Failure::Invalid(format!(
                    "--canary-fraction: expected a number in [0, 1], found {}",
                    args.canary_fraction
                )));
            }
            let c = select_policies(&model, Some(std::slice::from_ref(name)))?[0];
            if c == policy {
                return Err(Failure::Invalid(format!("--canary: `{name}` is already the served --policy")));
            }
            Some(live::LiveCanary { policy: c, fraction: args.canary_fraction })
        }
    };
    let opts = LiveOptions {
        policy,
        canary,
        time_scale: args.scenario.time_scale,
        replications: first..end,
        chunk_gap: std::time::Duration::from_nanos(args.chunk_gap.nanos()),
        out,
    };
    let report = live::run(&model, &opts)?;
    println!(
        "scenario \"{}\", policy `{}`, time scale {}, {} replication{}: {} requests live in {:.1} s (largest send \
         lag {:.1} ms)\n",
        model.scenario.name,
        args.policy,
        opts.time_scale,
        report.runs.len(),
        if report.runs.len() == 1 { "" } else { "s" },
        report.live.requests,
        report.elapsed.as_secs_f64(),
        report.max_lag.as_secs_f64() * 1e3
    );
    print!("{}", report.comparison.render());
    println!();
    for f in &report.files {
        println!("  {}", f.display());
    }
    if args.strict && !report.comparison.all_pass() {
        return Err(Failure::Failed(anyhow::anyhow!("some metrics are out of their tolerance (see FAIL above)")));
    }
    Ok(())
}

/// Arguments of `routesim overhead`.
#[derive(Debug, clap::Args)]
pub struct OverheadArgs {
    /// The scenario (endpoints with a constant service time and no errors, e.g.
    /// scenarios/gateway-overhead.toml); its traffic's classes and tokens are sent at each rate.
    pub scenario: PathBuf,
    /// Requests per second on each path (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000")]
    pub rates: Vec<f64>,
    /// How long each rate runs.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub duration: Duration,
    /// Which modes to run (comma-separated): non-streaming, streaming.
    #[arg(long, value_delimiter = ',', default_value = "non-streaming,streaming")]
    pub modes: Vec<String>,
    /// The policy the gateway runs (default: the scenario's first).
    #[arg(long)]
    pub policy: Option<String>,
    /// Writes `overhead.csv` (and the gateway's request logs) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `routesim overhead`.
pub fn run_overhead(args: &OverheadArgs) -> Result<(), Failure> {
    let mut modes = Vec::new();
    for m in &args.modes {
        modes.push(match m.as_str() {
            "non-streaming" => false,
            "streaming" => true,
            other => {
                return Err(Failure::Invalid(format!("--modes: expected non-streaming or streaming, found `{other}`")));
            }
        });
    }
    if let Some(r) = args.rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(Failure::Invalid(format!("--rates: expected positive numbers, found {r}")));
    }
    if args.duration.nanos() == 0 {
        return Err(Failure::Invalid("--duration: expected a positive duration".into()));
    }
    let base = Scenario::load(&args.scenario)?;
    let policy = {
        let model = base.clone().compile(&args.scenario)?;
        match &args.policy {
            Some(p) => select_policies(&model, Some(std::slice::from_ref(p)))?[0],
            None => 0,
        }
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("routesim-overhead-{}", std::process::id())));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let rt = runtime()?;
    let mut steps = Vec::new();
    for &streaming in &modes {
        for &rate in &args.rates {
            let mut s = base.clone();
            s.warmup = None;
            s.warmup_requests = None;
            s.requests = None;
            s.duration = Some(args.duration);
            s.traffic.rate = rate;
            for c in &mut s.traffic.classes {
                c.streaming = streaming;
            }
            let model = s.compile(&args.scenario)?;
            let mode = live::overhead::mode_name(streaming);
            let log = out.join(format!("gateway-log-{mode}-{rate}.jsonl"));
            let step =
                rt.block_on(live::overhead::step(&model, policy, rate, streaming, &log)).map_err(Failure::Failed)?;
            eprintln!(
                "{mode} at {rate}/s: overhead p50 {:.0} us, p99 {:.0} us",
                step.overhead_us().0,
                step.overhead_us().1
            );
            steps.push(step);
        }
    }
    print!("{}", live::overhead::render(&steps));
    let csv = out.join("overhead.csv");
    live::overhead::write_csv(&steps, &csv).map_err(Failure::Failed)?;
    println!("  {}", csv.display());
    Ok(())
}
