//! `routesim bench`: simulate a scenario without writing files and print simulated requests per second, per
//! policy (of its own time) and in total (of wall time), with the peak memory of the process.

use sim::bench::{Bench, bench};
use sim::failure::Failure;
use sim::scenario::Overrides;
use sim::setup::{load_scenario, select_policies};
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

/// Runs the command.
pub fn run(args: &BenchArgs) -> Result<(), Failure> {
    let file = args.scenario.clone().unwrap_or_else(|| PathBuf::from("scenarios/quickstart.toml"));
    let overrides = Overrides { seed: args.seed, requests: args.requests, replications: Some(args.replications) };
    let model = load_scenario(&file, &overrides)?;
    let selected = select_policies(&model, args.policies.as_deref())?;
    let Bench { rows, wall_s: wall, requests, peak_rss_mib } = bench(&model, &selected, args.threads, args.repeat)?;
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
