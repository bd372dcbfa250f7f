//! `routesim run`: every policy of a scenario against the same traffic; table, files and plots.

use super::Failure;
use super::load::{Overrides, expected_requests, load, select_policies};
use crate::experiment::{self, ExperimentOptions};
use crate::report::{RunReport, html, render_table, write_all};
use crate::scenario::Compiled;
use crate::stats::steady_state_warning;
use crate::traffic::Profile;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};

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
    let model = load(&args.scenario, &overrides)?;
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

/// Prints the warnings about a finished experiment and returns them: provider queues not at steady state
/// (constant-rate synthetic traffic only), replications without a success.
pub fn warn(model: &Compiled, exp: &experiment::Experiment) -> Vec<String> {
    let warnings: Vec<String> =
        steady_state_warnings(model, exp).into_iter().chain(empty_replication_warnings(exp)).collect();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    warnings
}

/// Writes everything a run reports into `dir`: the report's files and plots, the resolved scenario,
/// `warnings.txt`, `manifest.json` (which also lists the `extra` files the command wrote there itself) and,
/// last, `report.html` built from all of them.
pub fn write_results(
    model: &Compiled,
    exp: &experiment::Experiment,
    report: &RunReport,
    threads: Option<usize>,
    dir: &Path,
    extra: Vec<PathBuf>,
    warnings: &[String],
) -> anyhow::Result<()> {
    let mut files = write_all(report, dir)?;
    files.extend(extra);
    let scenario_path = dir.join("scenario.toml");
    let resolved = toml::to_string(&model.scenario).context("serialising the resolved scenario")?;
    std::fs::write(&scenario_path, resolved).with_context(|| format!("writing {}", scenario_path.display()))?;
    files.push(scenario_path);
    files.push(html::write_warnings(dir, warnings)?);
    files.push(dir.join(html::REPORT_FILE));
    let manifest_path = dir.join("manifest.json");
    let manifest = manifest(model, exp, threads, &files, dir);
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest).context("serialising the manifest")?)
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    html::write_report(dir)?;
    Ok(())
}

/// `results/<scenario><suffix>-<UTC timestamp>`, the scenario name made safe for a file name.
pub fn results_dir(scenario: &str, suffix: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let name: String =
        scenario.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    Path::new("results").join(format!("{name}{suffix}-{stamp}"))
}

/// A progress bar on stderr when it is a terminal (indicatif hides it otherwise), counting `unit`s
/// ("requests", "runs") with the time left.
pub fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{{bar:40}} {{percent:>3}}% {{human_pos}}/{{human_len}} {unit}, eta {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Runs `f` on a rayon pool of `threads` threads, or on the global pool.
pub fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    match threads {
        None => Ok(f()),
        Some(n) => {
            let pool =
                rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build().context("starting the worker threads")?;
            Ok(pool.install(f))
        }
    }
}

/// Steady-state warnings on each policy's queue length (mean over replications per interval), for scenarios
/// whose rate is constant (a daily profile is non-stationary by design, and a replayed log's rate is the log's).
fn steady_state_warnings(model: &Compiled, exp: &experiment::Experiment) -> Vec<String> {
    let cfg = model.traffic.config();
    if model.replay.is_some() || !matches!(cfg.profile, Profile::Constant) || !cfg.spikes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, runs) in exp.policies.iter().zip(&exp.runs) {
        let len = runs.iter().map(|r| r.metrics.series.rows.len()).min().unwrap_or(0);
        let series: Vec<f64> = (0..len)
            .map(|i| runs.iter().map(|r| r.metrics.series.rows[i].queue_len as f64).sum::<f64>() / runs.len() as f64)
            .collect();
        if let Some(w) = steady_state_warning(&series) {
            out.push(format!("policy `{name}`: provider queues have not reached steady state: {w}"));
        }
    }
    out
}

/// Replications without a single measured success have no latency quantiles; the summary averages the other
/// replications, so say how many were left out.
fn empty_replication_warnings(exp: &experiment::Experiment) -> Vec<String> {
    exp.policies
        .iter()
        .zip(&exp.runs)
        .filter_map(|(name, runs)| {
            let empty = runs.iter().filter(|r| r.metrics.latency.is_empty()).count();
            (empty > 0).then(|| {
                format!(
                    "policy `{name}`: {empty} of {} replications had no successful request; its latency columns \
                     average the other replications only",
                    runs.len()
                )
            })
        })
        .collect()
}

fn manifest(
    model: &Compiled,
    exp: &experiment::Experiment,
    threads: Option<usize>,
    files: &[PathBuf],
    dir: &Path,
) -> serde_json::Value {
    let names: Vec<String> =
        files.iter().map(|f| f.strip_prefix(dir).unwrap_or(f).to_string_lossy().into_owned()).collect();
    serde_json::json!({
        "routesim_version": env!("CARGO_PKG_VERSION"),
        "scenario": model.scenario.name,
        "scenario_file": model.file.display().to_string(),
        "seed": model.seed,
        "replications": model.scenario.replications,
        "policies": exp.policies,
        "threads": threads.unwrap_or_else(rayon::current_num_threads),
        "created_utc": chrono::Utc::now().to_rfc3339(),
        "wall_time_s": exp.wall_s,
        "simulated_requests": exp.simulated_requests(),
        "simulated_requests_per_s": exp.requests_per_s(),
        "files": names,
    })
}
