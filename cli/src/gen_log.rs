//! `routesim gen-log`: a scenario's traffic, simulated under one of its policies, written as a log in the
//! generic schema (what `routesim replay` and `routesim fit` read without options).

use anyhow::Context;
use sim::failure::Failure;
use sim::scenario::Overrides;
use sim::setup::{load_scenario, select_policies};
use std::path::PathBuf;

/// Arguments of `routesim gen-log`.
#[derive(Debug, clap::Args)]
pub struct GenLogArgs {
    /// The scenario whose traffic is written.
    pub scenario: PathBuf,
    /// Number of requests (rows).
    #[arg(long)]
    pub rows: u64,
    /// Encoding; default from the output's extension.
    #[arg(long, value_parser = ["csv", "jsonl", "parquet"])]
    pub format: Option<String>,
    /// The output file.
    #[arg(long)]
    pub out: PathBuf,
    /// The policy that routes the requests (default: the scenario's first).
    #[arg(long)]
    pub policy: Option<String>,
    /// Master seed, replacing the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs the command.
pub fn run(args: &GenLogArgs) -> Result<(), Failure> {
    if args.rows == 0 {
        return Err(Failure::Invalid("--rows must be at least 1".into()));
    }
    let out = match &args.format {
        Some(f) if args.out.extension().and_then(|e| e.to_str()) != Some(f.as_str()) => args.out.with_extension(f),
        _ => args.out.clone(),
    };
    let model =
        load_scenario(&args.scenario, &Overrides { seed: args.seed, requests: Some(args.rows), replications: None })?;
    let policy = match &args.policy {
        Some(p) => select_policies(&model, Some(std::slice::from_ref(p)))?[0],
        None => 0,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let start = std::time::Instant::now();
    let rows = sim::gen_log::generate(&model, policy, &out)?;
    println!(
        "{rows} rows of scenario \"{}\" under policy `{}` written to {} in {:.2} s",
        model.scenario.name,
        model.scenario.policies[policy].name,
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
