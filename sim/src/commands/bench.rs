//! `routesim bench`: simulate a scenario without writing files and print simulated requests per second of
//! wall time, per policy, with the peak memory of the process.

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
    /// Runs of each policy; the median wall time is reported (a shared machine is noisy).
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
    requests: u64,
    events: u64,
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
    let mut rows = Vec::new();
    for &p in &selected {
        let mut walls = Vec::with_capacity(args.repeat.max(1) as usize);
        let mut last = None;
        for _ in 0..args.repeat.max(1) {
            let exp =
                with_threads(Some(args.threads), || experiment::run(&model, &[p], &ExperimentOptions::default()))??;
            walls.push(exp.wall_s);
            last = Some(exp);
        }
        let Some(exp) = last else { continue };
        walls.sort_by(f64::total_cmp);
        let wall_s = walls[walls.len() / 2].max(1e-9);
        let events: u64 = exp.runs.iter().flatten().map(|r| r.events).sum();
        let requests = exp.simulated_requests();
        rows.push(Row {
            policy: exp.policies[0].clone(),
            requests,
            events,
            wall_s,
            requests_per_s: requests as f64 / wall_s,
            events_per_s: events as f64 / wall_s,
        });
    }
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    let wall: f64 = rows.iter().map(|r| r.wall_s).sum();
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
    println!("{:<24} {:>12} {:>9} {:>16} {:>14}", "policy", "requests", "wall s", "requests/s", "events/s");
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
