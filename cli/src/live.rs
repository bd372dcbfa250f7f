//! `routesim mock`, `routesim load`, `routesim live` and `routesim overhead`: a scenario's providers as mock
//! upstreams, its traffic as open-loop HTTP load, the production gateway between them compared with the
//! simulator, and the gateway's overhead benchmark (all in crate `routesim-live`).
//!
//! The arguments are parsed whatever the build; without the cargo feature `live` the commands say how to
//! build a routesim that has them (exit status 2).

use router_core::Duration;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// The live harness's view of these arguments.
    #[cfg(feature = "live")]
    fn live_scenario(&self) -> routesim_live::scenario::LiveScenario {
        routesim_live::scenario::LiveScenario {
            file: self.scenario.clone(),
            time_scale: self.time_scale,
            requests: self.requests,
            duration: self.duration,
            rate_scale: self.rate_scale,
            clock: self.clock,
            seed: self.seed,
            replication: self.replication,
        }
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

/// Arguments of `routesim overhead`.
#[derive(Debug, clap::Args)]
pub struct OverheadArgs {
    /// The scenario (endpoints with a constant service time and no errors, e.g.
    /// scenarios/gateway-overhead.toml); its traffic's classes and tokens are sent at each rate. Not with
    /// --bare-mock.
    #[arg(required_unless_present_any = ["bare_mock", "micro_only"], conflicts_with = "bare_mock")]
    pub scenario: Option<PathBuf>,
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
    /// Measure against the bare mock upstream (every request answered with the same 8-chunk completion) with
    /// the gateway round-robin over two endpoints on it, instead of a scenario's mock providers; prints a
    /// Markdown table, the peak RSS and the request log's dropped rows.
    #[arg(long)]
    pub bare_mock: bool,
    /// With --bare-mock: then the saturation throughput, closed loop (64 workers), this long per path.
    #[arg(long, value_parser = parse_duration, requires = "bare_mock")]
    pub saturation: Option<Duration>,
    /// With --bare-mock: the gateway's `[server] router_shards` (also the lock micro-benchmark's config).
    #[arg(long, default_value_t = 1, requires = "bare_mock")]
    pub shards: usize,
    /// Also run the router lock micro-benchmark (one Mutex<Router> against one router per thread; 1, 2, 4
    /// threads).
    #[arg(long)]
    pub lock_bench: bool,
    /// Also run the shadow policy micro-benchmark (the router work per request without and with one shadow
    /// policy).
    #[arg(long)]
    pub shadow_bench: bool,
    /// Run only the micro-benchmarks asked for (--lock-bench, --shadow-bench), no load.
    #[arg(long)]
    pub micro_only: bool,
}

#[cfg(feature = "live")]
mod commands;
#[cfg(not(feature = "live"))]
mod unavailable;

#[cfg(feature = "live")]
pub use commands::{run_live, run_load, run_mock, run_overhead};
#[cfg(not(feature = "live"))]
pub use unavailable::{run_live, run_load, run_mock, run_overhead};
