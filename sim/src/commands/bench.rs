//! `routesim bench`: simulate a scenario without writing files and print simulated requests per second, per
//! policy (of its own time) and in total (of wall time), with the peak memory of the process.

use super::Failure;
use super::load::{Overrides, load, select_policies};
use super::run::with_threads;
use crate::experiment::{self, ExperimentOptions};
use std::path::PathBuf;

/// Arguments of `routesim bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The scenario file (default `scenarios/quickstart.toml`).
    pub scenario: Option<PathBuf>,
    /// Simulate this many requests per run instead of the scenario's duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Only these policies (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub policies: Option<Vec<String>>,
    /// Replications per policy (default 1).
    #[arg(long, default_value_t = 1)]
    pub replications: u32,
    /// Worker threads (default 1, so the figure is per core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Master seed, replacing the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Runs of the whole experiment; the median wall time is reported (a shared machine is noisy).
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One policy's figures.
#[derive(Debug, serde::Serialize)]
struct Row {
    policy: String,
    /// Requests simulated, warm-up included, over the replications.
    requests: u64,
    events: u64,
    /// The policy's own time (its runs' `busy_s`: their events and their share of generating the traffic),
    /// median over the repeats. With one thread the rows add up to about the total wall time.
    wall_s: f64,
    requests_per_s: f64,
    events_per_s: f64,
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> Result<(), Failure> {
    let file = args.scenario.clone().unwrap_or_else(|| PathBuf::from("scenarios/quickstart.toml"));
    let overrides = Overrides { seed: args.seed, requests: args.requests, replications: Some(args.replications) };
    let model = load(&file, &overrides)?;
    let selected = select_policies(&model, args.policies.as_deref())?;
    // All the selected policies run together, as `routesim run` runs them: the runs of a replication share
    // its generated traffic. A policy's wall time is its runs' own busy time (its events and its share of the
    // traffic), median over the repeats; the total is the median wall time of the whole experiment.
    let repeat = args.repeat.max(1) as usize;
    let mut walls = Vec::with_capacity(repeat);
    let mut busy: Vec<Vec<f64>> = vec![Vec::with_capacity(repeat); selected.len()];
    let mut last = None;
    for _ in 0..repeat {
        let exp =
            with_threads(Some(args.threads), || experiment::run(&model, &selected, &ExperimentOptions::default()))??;
        walls.push(exp.wall_s);
        for (b, runs) in busy.iter_mut().zip(&exp.runs) {
            b.push(runs.iter().map(|r| r.busy_s).sum());
        }
        last = Some(exp);
    }
    let Some(exp) = last else { return Ok(()) };
    let median = |xs: &mut Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2].max(1e-9)
    };
    let wall = median(&mut walls);
    let mut rows = Vec::with_capacity(selected.len());
    for ((name, runs), b) in exp.policies.iter().zip(&exp.runs).zip(&mut busy) {
        let wall_s = median(b);
        let events: u64 = runs.iter().map(|r| r.events).sum();
        let requests: u64 = runs.iter().map(|r| r.metrics.counts.arrivals).sum();
        rows.push(Row {
            policy: name.clone(),
            requests,
            events,
            wall_s,
            requests_per_s: requests as f64 / wall_s,
            events_per_s: events as f64 / wall_s,
        });
    }
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    let peak_rss_mib = peak_rss_kib().map(|k| k as f64 / 1024.0);
    if args.json {
        let v = serde_json::json!({
            "scenario": model.scenario.name,
            "threads": args.threads,
            "repeat": args.repeat.max(1),
            "policies": rows,
            "requests": requests,
            "wall_s": wall,
            "requests_per_s": requests as f64 / wall.max(1e-9),
            "peak_rss_mib": peak_rss_mib,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "routesim bench: scenario \"{}\", {} thread(s), {} replication(s), median of {} run(s)",
        model.scenario.name,
        args.threads,
        args.replications,
        args.repeat.max(1)
    );
    println!("{:<24} {:>12} {:>9} {:>16} {:>14}", "policy", "requests", "own s", "requests/s", "events/s");
    for r in &rows {
        println!(
            "{:<24} {:>12} {:>9.3} {:>16.0} {:>14.0}",
            r.policy, r.requests, r.wall_s, r.requests_per_s, r.events_per_s
        );
    }
    println!("{:<24} {:>12} {:>9.3} {:>16.0}", "total", requests, wall, requests as f64 / wall.max(1e-9));
    if let Some(m) = peak_rss_mib {
        println!("peak resident memory: {m:.1} MiB");
    }
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
