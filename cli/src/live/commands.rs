//! The live commands on the live harness (crate `routesim-live`): arguments in, printing out.

use super::{LiveArgs, LoadArgs, MockArgs, OverheadArgs};
use anyhow::Context;
use routesim_live::compare::quantile;
use routesim_live::harness::{self, LiveCanary, LiveOptions};
use routesim_live::{load, mock, overhead};
use sim::failure::Failure;
use sim::logs::ReplaySettings;
use sim::replay::attach;
use sim::results::results_dir;
use sim::setup::select_policies;

/// Runs `routesim mock` until Ctrl-C.
pub fn run_mock(args: &MockArgs) -> Result<(), Failure> {
    let live = args.scenario.live_scenario();
    let model = live.load_unbounded()?;
    let chunk_gap = std::time::Duration::from_nanos(args.chunk_gap.nanos());
    mock::serve_until_ctrl_c(&model, live.replication, live.time_scale, chunk_gap, args.listen, |m| {
        println!(
            "mock providers of scenario \"{}\" on {} (time scale {}); Ctrl-C stops",
            model.scenario.name,
            m.addr(),
            live.time_scale
        );
        for e in &model.endpoints {
            println!("  {:<24} base_url = \"{}\"", e.id, m.base_url(&e.id));
        }
    })?;
    Ok(())
}

/// Runs `routesim load`.
pub fn run_load(args: &LoadArgs) -> Result<(), Failure> {
    load::check_loopback(&args.target).map_err(Failure::Invalid)?;
    let live = args.scenario.live_scenario();
    let mut model = live.load()?;
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
    let plan = harness::plan_of(&model, live.replication);
    let scale = live.time_scale;
    let outcome = load::send_to(&args.target, &plan, scale)?;
    let ok: Vec<f64> = {
        let mut v: Vec<f64> = outcome.results.iter().filter(|r| r.ok).map(|r| r.latency as f64 / 1e9).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let q = |p: f64| Some(quantile(&ok, p)).filter(|v| v.is_finite());
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
        load::write_csv(out, &outcome.results)?;
        println!("  per-request results: {}", out.display());
    }
    Ok(())
}

/// Runs `routesim live`.
pub fn run_live(args: &LiveArgs) -> Result<(), Failure> {
    let model = args.scenario.live_scenario().load()?;
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
            Some(LiveCanary { policy: c, fraction: args.canary_fraction })
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
    let report = harness::run(&model, &opts)?;
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
    if !args.micro_only {
        match &args.scenario {
            Some(scenario) => overhead_on_scenario(args, scenario, modes)?,
            None => overhead_on_bare_mock(args, modes)?,
        }
    }
    print!("{}", overhead::run_micro(args.lock_bench, args.shadow_bench, args.shards)?);
    Ok(())
}

/// `routesim overhead SCENARIO`: the scenario's mock providers.
fn overhead_on_scenario(args: &OverheadArgs, scenario: &std::path::Path, modes: Vec<bool>) -> Result<(), Failure> {
    let opts = overhead::OverheadOptions {
        scenario: scenario.to_path_buf(),
        rates: args.rates.clone(),
        duration: args.duration,
        modes,
        policy: args.policy.clone(),
        out: args.out.clone(),
    };
    let (steps, out) = overhead::run(&opts, &mut |step| {
        let mode = overhead::mode_name(step.streaming);
        eprintln!(
            "{mode} at {}/s: overhead p50 {:.0} us, p99 {:.0} us",
            step.rate,
            step.overhead_us().0,
            step.overhead_us().1
        );
    })?;
    print!("{}", overhead::render(&steps));
    let csv = out.join("overhead.csv");
    overhead::write_csv(&steps, &csv).map_err(Failure::Failed)?;
    println!("  {}", csv.display());
    Ok(())
}

/// `routesim overhead --bare-mock`: the bare mock upstream.
fn overhead_on_bare_mock(args: &OverheadArgs, modes: Vec<bool>) -> Result<(), Failure> {
    let opts = overhead::bare::BareOptions {
        rates: args.rates.clone(),
        duration: std::time::Duration::from_nanos(args.duration.nanos()),
        modes,
        saturation: args.saturation.map(|d| std::time::Duration::from_nanos(d.nanos())),
        shards: args.shards,
    };
    let report = overhead::run_bare(&opts, &mut |step| {
        let overhead = |q: f64| step.gateway.quantile_us(q) as f64 - step.direct.quantile_us(q) as f64;
        eprintln!(
            "{} at {}/s: overhead p50 {:.0} us, p99 {:.0} us",
            overhead::mode_name(step.streaming),
            step.rate,
            overhead(0.5),
            overhead(0.99)
        );
    })?;
    print!("{}", overhead::bare::render(&report));
    Ok(())
}
