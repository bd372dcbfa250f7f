//! A run's results directory (`routesim run`, `replay`): its default name, the warnings about the finished
//! experiment, and everything written into it (the report's files and plots, the resolved scenario,
//! `warnings.txt`, `manifest.json`, `report.html`).

use crate::experiment::Experiment;
use crate::report::{RunReport, html, write_all};
use crate::scenario::Compiled;
use crate::stats::steady_state_warning;
use crate::traffic::Profile;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// `results/<scenario><suffix>-<UTC timestamp>`, the scenario name made safe for a file name.
pub fn results_dir(scenario: &str, suffix: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let name: String =
        scenario.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    Path::new("results").join(format!("{name}{suffix}-{stamp}"))
}

/// The warnings about a finished experiment: provider queues not at steady state (constant-rate synthetic
/// traffic only), replications without a success.
pub fn warnings(model: &Compiled, exp: &Experiment) -> Vec<String> {
    steady_state_warnings(model, exp).into_iter().chain(empty_replication_warnings(exp)).collect()
}

/// Writes everything a run reports into `dir`: the report's files and plots, the resolved scenario,
/// `warnings.txt`, `manifest.json` (which also lists the `extra` files the command wrote there itself) and,
/// last, `report.html` built from all of them.
pub fn write_results(
    model: &Compiled,
    exp: &Experiment,
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

/// Steady-state warnings on each policy's queue length (mean over replications per interval), for scenarios
/// whose rate is constant (a daily profile is non-stationary by design, and a replayed log's rate is the log's).
fn steady_state_warnings(model: &Compiled, exp: &Experiment) -> Vec<String> {
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
fn empty_replication_warnings(exp: &Experiment) -> Vec<String> {
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
    exp: &Experiment,
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
