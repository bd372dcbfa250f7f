//! `routesim run`: every policy of a scenario against the same traffic; table, files and plots.

use anyhow::Context;
use sim::experiment::{self, ExperimentOptions};
use sim::failure::Failure;
use sim::progress::progress_bar;
use sim::report::render_table;
use sim::results::{results_dir, write_results};
use sim::scenario::{Compiled, Overrides};
use sim::setup::{expected_requests, load_scenario, select_policies};
use sim::threads::with_threads;
use std::path::PathBuf;

/// Options shared by the commands that run a scenario's policies (`run`, `replay`).
#[derive(Debug, clap::Args)]
pub struct RunSelection {
    /// Output directory (default `results/<scenario>-<UTC timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Master seed, replacing the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these policies (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub policies: Option<Vec<String>>,
    /// Replications, replacing the scenario's.
    #[arg(long)]
    pub replications: Option<u32>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Arguments of `routesim run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Output, seed, policies, replications, threads.
    #[command(flatten)]
    pub common: RunSelection,
    /// Simulate this many requests per run instead of the scenario's duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Also write one row per request to `records/<policy>-r<replication>.parquet`.
    #[arg(long)]
    pub records: bool,
}

/// Runs the command.
pub fn run(args: &RunArgs) -> Result<(), Failure> {
    let common = &args.common;
    let overrides = Overrides { seed: common.seed, requests: args.requests, replications: common.replications };
    let model = load_scenario(&args.scenario, &overrides)?;
    let selected = select_policies(&model, common.policies.as_deref())?;
    let dir = common.out.clone().unwrap_or_else(|| results_dir(&model.scenario.name, ""));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the output directory {}", dir.display()))?;
    let records_dir = args.records.then(|| dir.join("records"));
    if let Some(r) = &records_dir {
        std::fs::create_dir_all(r).with_context(|| format!("creating {}", r.display()))?;
    }

    let runs = selected.len() as u64 * model.scenario.replications as u64;
    let bar = progress_bar(expected_requests(&model).saturating_mul(runs), "requests");
    let tick = |n: u64| bar.set_position(n);
    let opts = ExperimentOptions { progress: Some(&tick), records_dir: records_dir.as_deref() };
    let exp = with_threads(common.threads, || experiment::run(&model, &selected, &opts))??;
    bar.finish_and_clear();

    let report = experiment::report(&model, &exp);
    print!("{}", render_table(&report));
    let warnings = warn(&model, &exp);
    write_results(&model, &exp, &report, common.threads, &dir, Vec::new(), &warnings)?;
    println!(
        "\n{} simulated requests in {:.2} s of wall time ({:.0} requests/s); results in {}",
        exp.simulated_requests(),
        exp.wall_s,
        exp.requests_per_s(),
        dir.display()
    );
    Ok(())
}

/// Prints the warnings about a finished experiment ([`sim::results::warnings`]) and returns them.
pub fn warn(model: &Compiled, exp: &experiment::Experiment) -> Vec<String> {
    let warnings = sim::results::warnings(model, exp);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    warnings
}
