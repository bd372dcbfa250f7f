//! `routesim tune`: the `[tune]` section of a scenario searched in parallel; frontier, files and the chosen
//! configuration.

use anyhow::Context;
use sim::failure::Failure;
use sim::progress::progress_bar;
use sim::results::results_dir;
use sim::threads::with_threads;
use sim::tune::config::Method;
use sim::tune::search::{evaluate, planned_runs};
use sim::tune::{TuneOverrides, TuneSetup, output};
use std::path::PathBuf;

/// Arguments of `routesim tune`.
#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// The scenario file (TOML) with a [tune] section.
    pub scenario: PathBuf,
    /// Output directory (default `results/<scenario>-tune-<UTC timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Search method, replacing `tune.method`.
    #[arg(long, value_parser = ["grid", "random", "lhs", "successive-halving"])]
    pub method: Option<String>,
    /// Number of candidates, replacing `tune.candidates`.
    #[arg(long)]
    pub candidates: Option<u32>,
    /// Replications per candidate, replacing `tune.replications`.
    #[arg(long)]
    pub replications: Option<u32>,
    /// Requests per run, replacing `tune.requests`.
    #[arg(long)]
    pub requests: Option<u64>,
    /// A constraint like "latency_p95_s <= 4s" or, when the scenario states endpoint quality, "quality >= 0.9"
    /// (repeat for several; replaces `tune.constraints`).
    #[arg(long = "constraint")]
    pub constraints: Option<Vec<String>>,
    /// Master seed, replacing the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run only shard I of N of a grid, random or lhs search into --out; then `routesim merge`.
    #[arg(long, value_parser = sim::sweep::Shard::parse)]
    pub shard: Option<sim::sweep::Shard>,
}

/// Runs the command. Exits with status 1 (after writing every file) when no candidate meets the constraints.
pub fn run(args: &TuneArgs) -> Result<(), Failure> {
    let method = args.method.as_deref().map(|m| match m {
        "grid" => Method::Grid,
        "random" => Method::Random,
        "lhs" => Method::Lhs,
        _ => Method::SuccessiveHalving,
    });
    let overrides = TuneOverrides {
        method,
        candidates: args.candidates,
        replications: args.replications,
        requests: args.requests,
        constraints: args.constraints.clone(),
        seed: args.seed,
    };
    if let Some(shard) = args.shard {
        let done = sim::tune::shard::run_shard(&args.scenario, &overrides, shard, args.out.as_deref(), args.threads)?;
        // `run_shard` has checked that `--out` is given.
        let out = args.out.as_deref().map(|dir| dir.display().to_string()).unwrap_or_default();
        println!("{done}\nwhen every shard is done: routesim merge {out} --out DIR");
        return Ok(());
    }
    let setup = TuneSetup::load(&args.scenario, &overrides)?;
    let dir = args.out.clone().unwrap_or_else(|| results_dir(&setup.model.scenario.name, "-tune"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the output directory {}", dir.display()))?;

    let bar = progress_bar(planned_runs(&setup), "runs");
    let tick = |n: u64| bar.set_position(n);
    let result = with_threads(args.threads, || evaluate(&setup, Some(&tick)))?;
    bar.finish_and_clear();

    if result.baselines.iter().all(|b| b.summary.requests.mean == 0.0) {
        return Err(Failure::Invalid(format!(
            "{}: field `tune.requests`: no request was measured: the warm-up covers the whole run; raise \
             `tune.requests` (or the run length) or shorten `warmup`",
            args.scenario.display()
        )));
    }
    print!("{}", output::render(&setup, &result));
    let mut files = output::write_files(&setup, &result, &dir)?;
    let scenario_path = dir.join("scenario.toml");
    std::fs::write(&scenario_path, std::fs::read(&args.scenario).context("re-reading the scenario")?)
        .with_context(|| format!("writing {}", scenario_path.display()))?;
    files.push(scenario_path);
    files.push(sim::report::html::write_warnings(&dir, &[])?);
    files.push(sim::report::html::write_report(&dir)?);
    println!(
        "\n{} runs, {} simulated requests in {:.2} s of wall time ({:.0} requests/s); results in {}",
        result.runs,
        result.simulated_requests,
        result.wall_s,
        result.simulated_requests as f64 / result.wall_s.max(1e-9),
        dir.display()
    );
    if result.chosen.is_none() && !setup.constraints.is_empty() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "no candidate meets the constraints ({}); see the closest ones above",
            setup.constraints.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}
