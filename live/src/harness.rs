//! `routesim live`: mock providers and the open-loop load around the production gateway on loopback, one
//! replication after another, compared with the simulator's run of the same scenario and seed; and the
//! gateway config such a run hands the gateway, built as values (the scenario's endpoints at the mocks, its
//! policy with every duration divided by the time scale through router-core's `TimeScaled`, an optional
//! canary), never as re-parsed text.

use crate::compare::{self, AttemptCounts, Comparison, SHARE_BUCKETS, SideStats};
use crate::load::{self, ClientResult, LoadBounds, PlannedRequest};
use crate::provider::LiveClock;
use crate::{mock, plots};
use anyhow::Context;
use router_core::{Duration as RcDuration, ErrorClass, Nanos, TimeScaled, UpstreamConfig};
use routesim_gateway::config::GatewayFile;
use routesim_gateway::rollout::{CanaryBy, CanarySpec, RolloutFile};
use sim::engine::{self, RequestRecord, RunOptions};
use sim::scenario::Compiled;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn scaled(ns: Nanos, scale: f64) -> RcDuration {
    RcDuration::from_secs_f64(ns as f64 / 1e9 / scale)
}

/// The gateway config that serves `model`'s endpoints (at `base_url(id)`) with policy number `policy`, every
/// duration divided by `scale`, logging to `log`. Its router seed is the one the simulator's router uses in
/// replication `replication` ([`router_core::keyed_rand::replication_seed`]).
pub fn gateway_config(
    model: &Compiled,
    policy: usize,
    replication: u32,
    scale: f64,
    base_url: &dyn Fn(&str) -> String,
    log: &Path,
) -> anyhow::Result<String> {
    gateway_config_with_canary(model, policy, None, replication, scale, base_url, log)
}

/// A canary for the gateway a live run starts: policy number `policy` of the scenario serves the requests
/// whose request id hashes below `fraction` (`[rollout] canary = { policy, fraction, by = "request" }`; the
/// load sends each request's scenario id as `x-routesim-request-id`, so the arm is a stable function of it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiveCanary {
    /// The canary policy (index into the scenario's policies); must differ from the served one.
    pub policy: usize,
    /// Share of the request-id hash space sent to the canary, in [0, 1].
    pub fraction: f64,
}

/// [`gateway_config`] with an optional canary: the canary's policy (and the groups it uses that the served
/// policy does not) are written after the served one, durations divided by `scale` alike, and `[rollout]`
/// names it with `by = "request"`. The text is [`gateway_file_with_canary`]'s values written out.
pub fn gateway_config_with_canary(
    model: &Compiled,
    policy: usize,
    canary: Option<LiveCanary>,
    replication: u32,
    scale: f64,
    base_url: &dyn Fn(&str) -> String,
    log: &Path,
) -> anyhow::Result<String> {
    gateway_toml(&gateway_file_with_canary(model, policy, canary, replication, scale, base_url, log)?)
}

/// The gateway config of [`gateway_config_with_canary`] as values, handed to
/// [`routesim_gateway::GatewayConfig::from_file`] as they are: every duration is divided by `scale` on the
/// typed configuration ([`router_core::TimeScaled`], which knows which fields are durations), never on text.
pub fn gateway_file_with_canary(
    model: &Compiled,
    policy: usize,
    canary: Option<LiveCanary>,
    replication: u32,
    scale: f64,
    base_url: &dyn Fn(&str) -> String,
    log: &Path,
) -> anyhow::Result<GatewayFile> {
    let rc = &model.router_configs[policy];
    let policy_spec = |p: usize| {
        let mut root = model.router_configs[p].policy.clone();
        // The router's measurement windows default to minutes: write them out so that they are scaled too.
        root.tracking.get_or_insert_with(Default::default);
        root.time_scaled(scale)
    };
    let mut policies = vec![policy_spec(policy)];
    let mut groups: Vec<&router_core::config::PolicySpec> = rc.groups.iter().collect();
    let mut rollout = RolloutFile::default();
    if let Some(c) = canary {
        anyhow::ensure!(c.policy < model.router_configs.len(), "canary policy number {} out of range", c.policy);
        anyhow::ensure!(c.policy != policy, "the canary policy must differ from the served policy");
        anyhow::ensure!(
            (0.0..=1.0).contains(&c.fraction),
            "canary fraction: expected a number in [0, 1], found {}",
            c.fraction
        );
        policies.push(policy_spec(c.policy));
        for g in &model.router_configs[c.policy].groups {
            if !groups.iter().any(|h| h.name == g.name) {
                groups.push(g);
            }
        }
        let name = model.policy_names()[c.policy].clone();
        rollout.canary = Some(CanarySpec { policy: name, fraction: c.fraction, by: CanaryBy::Request });
    }
    let endpoints = model
        .endpoints
        .iter()
        .map(|e| {
            let mut e = e.clone().map_service_times(Some);
            let upstream = UpstreamConfig {
                base_url: base_url(&e.id),
                api_key_env: None,
                model: None,
                timeout: None,
                auth: Default::default(),
            };
            e.upstream = Some(upstream);
            e
        })
        .collect();
    let seed = router_core::keyed_rand::replication_seed(rc.seed, replication);
    anyhow::ensure!(i64::try_from(seed).is_ok(), "the scenario's seed must be below 2^63 to run through the gateway");
    let mut file = GatewayFile { seed, endpoints, policies, rollout, ..GatewayFile::default() };
    file.groups = groups.into_iter().map(|g| g.time_scaled(scale)).collect();
    file.server.listen = "127.0.0.1:0".into();
    file.request_log.path = Some(log.to_path_buf());
    file.client.timeout = model.timeout.map(|n| scaled(n, scale));
    file.client.ttft_timeout = model.ttft_timeout.map(|n| scaled(n, scale));
    file.health.interval = scaled(model.health_interval.unwrap_or(0), scale);
    Ok(file)
}

/// The sections of a live gateway config that [`gateway_file_with_canary`] sets, written as TOML (the
/// `live-gateway.toml` a run leaves, which `routesim-gateway` reads as it is).
fn gateway_toml(file: &GatewayFile) -> anyhow::Result<String> {
    let mut top = toml::Table::new();
    top.insert("seed".into(), toml::Value::Integer(i64::try_from(file.seed)?));
    let mut server = toml::Table::new();
    server.insert("listen".into(), file.server.listen.clone().into());
    top.insert("server".into(), server.into());
    let mut reqlog = toml::Table::new();
    if let Some(p) = &file.request_log.path {
        reqlog.insert("path".into(), p.display().to_string().into());
    }
    top.insert("request_log".into(), reqlog.into());
    let mut client = toml::Table::new();
    if let Some(t) = file.client.timeout {
        client.insert("timeout".into(), t.to_string().into());
    }
    if let Some(t) = file.client.ttft_timeout {
        client.insert("ttft_timeout".into(), t.to_string().into());
    }
    top.insert("client".into(), client.into());
    top.insert("health".into(), toml::Value::try_from(&file.health).context("health as TOML")?);
    let values = |what: &str, v: Vec<toml::Value>| -> anyhow::Result<toml::Value> {
        anyhow::ensure!(v.iter().all(|x| x.is_table()), "{what} as TOML: expected tables");
        Ok(toml::Value::Array(v))
    };
    let endpoints = file.endpoints.iter().map(toml::Value::try_from).collect::<Result<Vec<_>, _>>()?;
    top.insert("endpoints".into(), values("endpoints", endpoints)?);
    let policies = file.policies.iter().map(toml::Value::try_from).collect::<Result<Vec<_>, _>>()?;
    top.insert("policies".into(), values("policies", policies)?);
    let groups = file.groups.iter().map(toml::Value::try_from).collect::<Result<Vec<_>, _>>()?;
    top.insert("groups".into(), values("groups", groups)?);
    if let Some(c) = &file.rollout.canary {
        let mut spec = toml::Table::new();
        spec.insert("policy".into(), c.policy.clone().into());
        spec.insert("fraction".into(), c.fraction.into());
        spec.insert("by".into(), "request".into());
        let mut rollout = toml::Table::new();
        rollout.insert("canary".into(), spec.into());
        top.insert("rollout".into(), rollout.into());
    }
    Ok(toml::to_string(&top)?)
}

/// Options of a live run.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The policy (index into the scenario's policies).
    pub policy: usize,
    /// A canary served beside `policy` (`[rollout]`); the simulator's side of the comparison still runs
    /// `policy` alone, so with a canary the comparison is of the mixture against the control policy, and the
    /// gateway's request log (with its `arm` column) is the input of `routesim ab`.
    pub canary: Option<LiveCanary>,
    /// Scenario seconds per real second.
    pub time_scale: f64,
    /// Minimum real gap between the chunks of a mock stream.
    pub chunk_gap: Duration,
    /// The replications to run, one after another: replication `r` sends the traffic of the simulator's
    /// replication `r` to mocks that draw its luck, and is compared with the simulator's replication `r`.
    pub replications: std::ops::Range<u32>,
    /// Where the log, the gateway config, the CSVs and the plots go.
    pub out: PathBuf,
}

/// What a live run produced.
#[derive(Debug)]
pub struct LiveReport {
    /// The comparison: pooled over the replications, with per-replication intervals when there are several.
    pub comparison: Comparison,
    /// The simulator's side, pooled.
    pub sim: SideStats,
    /// The live side, pooled.
    pub live: SideStats,
    /// Each replication's two sides, `(replication, sim, live)`.
    pub runs: Vec<(u32, SideStats, SideStats)>,
    /// Real time the load took, summed over the replications.
    pub elapsed: Duration,
    /// Largest lag of a send behind its schedule (real).
    pub max_lag: Duration,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// One gateway log row, as far as the comparison reads it.
#[derive(Clone, Debug, serde::Deserialize)]
struct LogRow {
    arrival_s: f64,
    endpoint: String,
    cost_usd: f64,
}

/// The live side from the client's results, the gateway's log rows and counters. `offset` is the real
/// time between the gateway's clock start and the scenario's time zero.
fn live_side(
    results: &[ClientResult],
    rows: &[LogRow],
    ids: &[String],
    counts: AttemptCounts,
    span: Nanos,
    scale: f64,
    offset: Duration,
) -> SideStats {
    let mut s = SideStats {
        requests: results.len() as u64,
        per_endpoint: vec![0; ids.len()],
        rate_limited: counts.rate_limited,
        retries: counts.retries,
        fallbacks: counts.fallbacks,
        share_series: vec![vec![0; ids.len()]; SHARE_BUCKETS],
        ..SideStats::default()
    };
    for r in results.iter().filter(|r| r.ok) {
        s.ok += 1;
        s.latency_s.push(r.latency as f64 / 1e9);
        if let Some(t) = r.ttft {
            s.ttft_s.push(t as f64 / 1e9);
        }
    }
    s.latency_s.sort_by(f64::total_cmp);
    s.ttft_s.sort_by(f64::total_cmp);
    let width = (span / SHARE_BUCKETS as u64).max(1) as f64;
    for row in rows {
        s.cost_usd += row.cost_usd;
        if let Some(e) = ids.iter().position(|id| *id == row.endpoint) {
            s.per_endpoint[e] += 1;
            let at = ((row.arrival_s - offset.as_secs_f64()) * scale * 1e9).max(0.0);
            let b = ((at / width) as usize).min(SHARE_BUCKETS - 1);
            s.share_series[b][e] += 1;
        }
    }
    s
}

/// The sends of replication `replication` with the scenario's limits.
pub fn plan_of(model: &Compiled, replication: u32) -> Vec<PlannedRequest> {
    load::plan(model, replication, LoadBounds { requests: model.limit.max_requests, until: model.limit.until })
}

/// One replication's live side and simulated side, and what the live run took.
struct ReplicationRun {
    sim: SideStats,
    live: SideStats,
    /// Scenario time up to the last arrival.
    span: Nanos,
    elapsed: Duration,
    max_lag: Duration,
}

/// Runs the mock providers, the gateway (policy `opts.policy`) and the load on loopback for each replication
/// of `opts.replications` in turn, then the simulator on the same scenario, seed and replications, and
/// compares. `model` should have no warm-up (both sides count every request) and a bounded run (`limit`).
pub fn run(model: &Compiled, opts: &LiveOptions) -> anyhow::Result<LiveReport> {
    anyhow::ensure!(!opts.replications.is_empty(), "no replication to run");
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let ids: Vec<String> = model.endpoints.iter().map(|e| e.id.clone()).collect();
    let single = opts.replications.len() == 1;
    let mut files = Vec::new();
    let mut runs = Vec::new();
    let (mut elapsed, mut max_lag, mut span) = (Duration::ZERO, Duration::ZERO, 1);
    for r in opts.replications.clone() {
        // One replication keeps the plain names; several are told apart by their number.
        let suffix = if single { String::new() } else { format!("-r{r}") };
        let log_path = opts.out.join(format!("gateway-log{suffix}.jsonl"));
        let config_path = opts.out.join(format!("live-gateway{suffix}.toml"));
        let one = run_replication(model, opts, r, &ids, &log_path, &config_path)?;
        files.extend([log_path, config_path]);
        elapsed += one.elapsed;
        max_lag = max_lag.max(one.max_lag);
        span = span.max(one.span);
        runs.push((r, one.sim, one.live));
    }
    let pairs: Vec<(SideStats, SideStats)> = runs.iter().map(|(_, s, l)| (s.clone(), l.clone())).collect();
    let comparison = Comparison::paired(&pairs, &ids);
    let (sim, live) = compare::pooled(&pairs);
    let csv = opts.out.join("live-comparison.csv");
    comparison.write_csv(&csv)?;
    files.push(csv);
    if !single {
        let per = opts.out.join("live-replications.csv");
        write_replications_csv(&runs, &ids, &per)?;
        files.push(per);
    }
    let cdf = opts.out.join("live-latency-cdf.csv");
    compare::write_cdf_csv(&sim, &live, &cdf)?;
    files.push(cdf);
    let title = format!("{} / {}", model.scenario.name, model.policy_names()[opts.policy]);
    files.extend(plots::write(&plots::LivePlots { title, sim: &sim, live: &live, endpoints: &ids, span }, &opts.out)?);
    Ok(LiveReport { comparison, sim, live, runs, elapsed, max_lag, files })
}

/// Every replication's comparison, one row per (replication, metric): `replication,metric,sim,live,error`.
fn write_replications_csv(runs: &[(u32, SideStats, SideStats)], ids: &[String], path: &Path) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    w.write_record(["replication", "metric", "sim", "live", "error"])?;
    for (r, s, l) in runs {
        for row in Comparison::new(s, l, ids).rows {
            w.write_record([
                r.to_string(),
                row.metric.clone(),
                row.sim.to_string(),
                row.live.to_string(),
                row.error().to_string(),
            ])?;
        }
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One replication: the live side on loopback, then the simulator's side.
fn run_replication(
    model: &Compiled,
    opts: &LiveOptions,
    replication: u32,
    ids: &[String],
    log_path: &Path,
    config_path: &Path,
) -> anyhow::Result<ReplicationRun> {
    let plan = plan_of(model, replication);
    anyhow::ensure!(!plan.is_empty(), "the scenario generates no request within the run's limits");
    let span = plan.last().map_or(1, |p| p.at + 1);
    let _ = std::fs::remove_file(log_path);
    let scale = opts.time_scale;

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (outcome, counts, offset) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the mock providers")?;
        let mock_addr = listener.local_addr()?;
        let file = gateway_file_with_canary(
            model,
            opts.policy,
            opts.canary,
            replication,
            scale,
            &|id| mock::base_url(mock_addr, id),
            log_path,
        )?;
        std::fs::write(config_path, gateway_toml(&file)?)?;
        let cfg = routesim_gateway::GatewayConfig::from_file(config_path, file, None, &|_| None)
            .map_err(|e| anyhow::anyhow!("the generated gateway config is invalid: {e}"))?;
        let bucket =
            cfg.router.policy.tracking.unwrap_or_default().quota_window.nanos() / router_core::state::BUCKETS as u64;
        let gw = routesim_gateway::start(cfg).await?;
        // Scenario time zero a little ahead, so that the servers are up before the first send, and on a
        // boundary of the router's quota buckets: the engine's router and providers count quotas in windows
        // that start together at zero, and so do the gateway's router and the mock providers.
        let epoch = gw.app().routers.instant_at(0);
        let zero = (gw.app().now() + 300_000_000).div_ceil(bucket.max(1)) * bucket.max(1);
        let clock = LiveClock::starting_at(gw.app().routers.instant_at(zero), scale);
        let state = mock::MockProviders::new(model, replication, clock, opts.chunk_gap);
        let mock = mock::serve(state, listener)?;
        let client = crate::load::generator::client();
        let url = format!("{}/v1/chat/completions", gw.url());
        // A request gives up after the longest a gateway could take on it: every attempt timing out.
        let timeout = Duration::from_secs_f64((600.0 / scale).clamp(5.0, 600.0));
        let outcome = load::run(&client, &url, &plan, clock, timeout).await;
        let m = &gw.app().metrics;
        let counts = AttemptCounts {
            rate_limited: m.endpoints.iter().map(|e| e.errors[ErrorClass::RateLimited.index()].get()).sum(),
            retries: m.retries.get(),
            fallbacks: m.fallbacks.get(),
        };
        gw.shutdown();
        gw.wait().await?;
        mock.stop().await;
        anyhow::Ok((outcome, counts, clock.instant_at(0).saturating_duration_since(epoch)))
    })?;
    drop(rt);
    let text = std::fs::read_to_string(log_path).with_context(|| format!("reading {}", log_path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let row: LogRow = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a gateway log row", log_path.display(), i + 1))?;
        rows.push(row);
    }
    let live = live_side(&outcome.results, &rows, ids, counts, span, scale, offset);

    let mut records: Vec<RequestRecord> = Vec::with_capacity(plan.len());
    let mut sink = |r: &RequestRecord| records.push(r.clone());
    let result =
        engine::run(model, opts.policy, replication, RunOptions { records: Some(&mut sink), ..RunOptions::default() });
    let streaming: Vec<bool> =
        (0..model.traffic.class_count()).map(|c| model.traffic.request_template(c).streaming).collect();
    let sim = SideStats::from_sim(&records, &result, &streaming, span);
    Ok(ReplicationRun { sim, live, span, elapsed: outcome.elapsed, max_lag: outcome.max_lag })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-off scales the typed config, so a name that reads like a duration is left alone (the old
    /// hand-off divided every such string of the config's TOML form, and this endpoint `1h` became `6m`).
    #[test]
    fn the_typed_hand_off_scales_durations_only() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/tests/data/invalid/unknown-fallback.toml");
        let text = std::fs::read_to_string(&file).unwrap().replace("\"cheap\"", "\"1h\"").replace(
            "fallbacks = [\"premuim\"]",
            "tracking = { circuit = { enabled = false } }\ncooldown = { cooldown_time = \"10s\", single_deployment = [\"1h\"] }",
        );
        let model = sim::scenario::Scenario::parse(&file, &text).unwrap().compile(&file).unwrap();
        let url = |id: &str| format!("http://127.0.0.1:9/{id}/v1");
        let gw = gateway_file_with_canary(&model, 1, None, 0, 10.0, &url, Path::new("/tmp/x.jsonl")).unwrap();
        let cfg = routesim_gateway::GatewayConfig::from_file(Path::new("g.toml"), gw, None, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let cooldown = cfg.router.policy.cooldown.as_ref().expect("cooldown");
        assert_eq!(cooldown.single_deployment, ["1h"]);
        assert_eq!(cooldown.cooldown_time.nanos(), 1_000_000_000, "10 s / 10");
        assert_eq!(cfg.router.endpoints[0].id, "1h");
    }

    #[test]
    fn the_gateway_config_of_a_scenario_is_valid_and_scaled() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/outage-failover.toml");
        let model = sim::scenario::Scenario::load(&file).unwrap().compile(&file).unwrap();
        let p = model.policy_names().iter().position(|n| n == "latency").unwrap();
        let text =
            gateway_config(&model, p, 0, 10.0, &|id| format!("http://127.0.0.1:9/{id}/v1"), Path::new("/tmp/x.jsonl"))
                .unwrap();
        let cfg = routesim_gateway::GatewayConfig::parse(Path::new("g.toml"), &text, None, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let t = cfg.router.policy.tracking.expect("tracking written out");
        assert_eq!(t.quota_window.nanos(), 6_000_000_000, "60 s / 10");
        assert_eq!(t.circuit.cooldown.nanos(), 3_000_000_000, "30 s / 10");
        assert_eq!(cfg.router.policy.retry.as_ref().unwrap().base_delay.nanos(), 25_000_000);
        assert_eq!(cfg.health.interval.nanos(), 500_000_000, "5 s / 10");
        assert_eq!(cfg.client.timeout.unwrap().nanos(), 3_000_000_000, "30 s / 10");
        assert_eq!(cfg.router.endpoints.len(), 3);
        assert_eq!(cfg.upstreams[0].chat_url, "http://127.0.0.1:9/openai-gpt-4.1/v1/chat/completions");
    }

    #[test]
    fn a_canary_adds_its_policy_its_groups_and_the_rollout() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.toml");
        let model = sim::scenario::Scenario::load(&file).unwrap().compile(&file).unwrap();
        let ix = |n: &str| model.policy_names().iter().position(|p| p == n).unwrap();
        let canary = LiveCanary { policy: ix("conditional"), fraction: 0.5 };
        let text = gateway_config_with_canary(
            &model,
            ix("latency"),
            Some(canary),
            0,
            10.0,
            &|id| format!("http://127.0.0.1:9/{id}/v1"),
            Path::new("/tmp/x.jsonl"),
        )
        .unwrap();
        let cfg = routesim_gateway::GatewayConfig::parse(Path::new("g.toml"), &text, None, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(cfg.router.policy.name, "latency", "the first policy is the served one");
        let c = cfg.rollout.canary.as_ref().expect("a canary");
        assert_eq!((c.policy(), c.fraction, c.by), ("conditional", 0.5, routesim_gateway::rollout::CanaryBy::Request));
        // The conditional policy's groups are written, scaled like the rest.
        let v: toml::Value = toml::from_str(&text).unwrap();
        let groups: Vec<&str> = v["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(groups, ["frontier", "balanced"]);
        assert_eq!(v["policies"][1]["cache"]["ttl"].as_str(), Some("1m"), "10 m / 10");
        // The served policy as canary, or a fraction out of [0, 1], is refused.
        let url = |id: &str| format!("http://127.0.0.1:9/{id}/v1");
        let bad = |c| gateway_config_with_canary(&model, ix("latency"), Some(c), 0, 1.0, &url, Path::new("x"));
        assert!(bad(LiveCanary { policy: ix("latency"), fraction: 0.5 }).is_err());
        assert!(bad(LiveCanary { policy: ix("cost"), fraction: 1.5 }).is_err());
    }
}
