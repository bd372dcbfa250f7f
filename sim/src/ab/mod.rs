//! `routesim ab`: an A/B (canary) test read from the gateway's request log, and optionally the simulator's
//! prediction of the same test.
//!
//! - [`read`]: the log's rows split into the control and canary arms (by `arm` or by `policy`), malformed
//!   rows counted by reason.
//! - [`analysis`]: per-arm metrics and the canary's difference with seeded-bootstrap 95% intervals, the
//!   minimum detectable effect and a verdict per metric.
//! - [`predict`]: the scenario's two policies simulated routing at once in one run, each request by the
//!   policy of its arm (picked as the gateway picks it), analysed the same way.
//!
//! This module renders the terminal report and writes the files (`summary.csv`, `differences.csv`,
//! `ab.json`, `malformed.txt`).

pub mod analysis;
pub mod predict;
pub mod read;

use analysis::{Comparison, Estimate, Metric};
use anyhow::{Context, Result};
use read::AbLog;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The measured comparison and, with `--predict`, the predicted one.
#[derive(Clone, Debug, Serialize)]
pub struct AbReport {
    /// The log.
    pub log: String,
    /// The grouping column (`arm` or `policy`).
    pub by: String,
    /// Control and canary arm names.
    pub arms: [String; 2],
    /// The policy of each arm, when known.
    pub policies: [Option<String>; 2],
    /// Non-blank rows read.
    pub rows_read: u64,
    /// Rows without the grouping column.
    pub ungrouped: u64,
    /// Malformed rows skipped.
    pub malformed: u64,
    /// Share of the arms' requests in the canary.
    pub canary_fraction: f64,
    /// What the log shows.
    pub measured: Comparison,
    /// What the simulator predicts, with `--predict`.
    pub predicted: Option<predict::Prediction>,
}

impl AbReport {
    /// Builds the report of a log's comparison.
    pub fn new(path: &Path, by: &str, log: &AbLog, measured: Comparison) -> Self {
        let total = (log.control.rows.len() + log.canary.rows.len()) as f64;
        AbReport {
            log: path.display().to_string(),
            by: by.into(),
            arms: [log.control.name.clone(), log.canary.name.clone()],
            policies: [log.control.policy.clone(), log.canary.policy.clone()],
            rows_read: log.read,
            ungrouped: log.ungrouped,
            malformed: log.errors.total(),
            canary_fraction: if total > 0.0 { log.canary.rows.len() as f64 / total } else { f64::NAN },
            measured,
            predicted: None,
        }
    }
}

fn interval(metric: Metric, e: &Estimate) -> String {
    format!("{} [{}, {}]", metric.format(e.value), metric.format(e.lo), metric.format(e.hi))
}

fn diff_interval(metric: Metric, e: &Estimate) -> String {
    format!("{} [{}, {}]", metric.format_diff(e.value), metric.format_diff(e.lo), metric.format_diff(e.hi))
}

fn arm_label(name: &str, policy: &Option<String>) -> String {
    match policy {
        Some(p) if p != name => format!("{name} ({p})"),
        _ => name.to_string(),
    }
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The terminal report.
pub fn render(report: &AbReport) -> String {
    let m = &report.measured;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A/B test from {} (by {}): control = {}, {} requests; canary = {}, {} requests ({:.1}% of the arms' traffic)",
        report.log,
        report.by,
        arm_label(&report.arms[0], &report.policies[0]),
        m.requests[0],
        arm_label(&report.arms[1], &report.policies[1]),
        m.requests[1],
        100.0 * report.canary_fraction
    );
    let _ = writeln!(
        out,
        "{} rows read, {} malformed (skipped), {} without `{}` (routed by neither arm; not counted)",
        report.rows_read, report.malformed, report.ungrouped, report.by
    );
    let _ = writeln!(
        out,
        "95% intervals: percentile bootstrap, {} replicates, seed {}; MDE at 80% power, alpha 0.05; latency and \
         TTFT over successful requests, cost over all\n",
        m.replicates, m.seed
    );
    let mut rows = vec![
        ["metric", "control [95% CI]", "canary [95% CI]", "canary - control [95% CI]", "MDE", "verdict"]
            .map(String::from)
            .to_vec(),
    ];
    for r in &m.metrics {
        rows.push(vec![
            r.metric.name().into(),
            interval(r.metric, &r.control),
            interval(r.metric, &r.canary),
            diff_interval(r.metric, &r.diff),
            r.metric.format(r.mde),
            r.verdict.clone(),
        ]);
    }
    out.push_str(&table(&rows));
    if let Some(p) = &report.predicted {
        let _ = writeln!(
            out,
            "\nPredicted by the simulator ({}): {} vs {}, {} requests, {:.1}% to the canary; {}",
            p.scenario,
            p.policies[0],
            p.policies[1],
            p.requests,
            100.0 * p.fraction,
            p.method
        );
        let mut rows = vec![
            [
                "metric",
                "measured difference [95% CI]",
                "predicted difference [95% CI]",
                "measured in predicted CI",
                "predicted in measured CI",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for r in &m.metrics {
            let Some(q) = p.comparison.metrics.iter().find(|q| q.metric == r.metric) else { continue };
            let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
            rows.push(vec![
                r.metric.name().into(),
                diff_interval(r.metric, &r.diff),
                diff_interval(r.metric, &q.diff),
                yes(q.diff.contains(r.diff.value)),
                yes(r.diff.contains(q.diff.value)),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

/// A float in a CSV cell: shortest round-trip form, empty when not finite.
fn cell(x: f64) -> String {
    if x.is_finite() { format!("{x}") } else { String::new() }
}

/// Writes `summary.csv` (metric x arm), `differences.csv` (metric: difference, interval, SE, MDE, verdict,
/// and the prediction with `--predict`), `ab.json` (everything) and `malformed.txt` into `dir`.
pub fn write(dir: &Path, report: &AbReport, malformed: &str) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating the output directory {}", dir.display()))?;
    let mut summary = String::from("source,metric,arm,policy,n,value,lo,hi\n");
    let mut diffs = String::from("source,metric,n_control,n_canary,diff,lo,hi,se,mde,verdict\n");
    let mut sources = vec![("measured", &report.measured, &report.policies)];
    let predicted_policies;
    if let Some(p) = &report.predicted {
        predicted_policies = [Some(p.policies[0].clone()), Some(p.policies[1].clone())];
        sources.push(("predicted", &p.comparison, &predicted_policies));
    }
    for (source, c, policies) in sources {
        for r in &c.metrics {
            for (a, e) in [&r.control, &r.canary].into_iter().enumerate() {
                let _ = writeln!(
                    summary,
                    "{source},{},{},{},{},{},{},{}",
                    r.metric.name(),
                    report.arms[a],
                    policies[a].as_deref().unwrap_or(""),
                    r.n[a],
                    cell(e.value),
                    cell(e.lo),
                    cell(e.hi)
                );
            }
            let _ = writeln!(
                diffs,
                "{source},{},{},{},{},{},{},{},{},\"{}\"",
                r.metric.name(),
                r.n[0],
                r.n[1],
                cell(r.diff.value),
                cell(r.diff.lo),
                cell(r.diff.hi),
                cell(r.se),
                cell(r.mde),
                r.verdict
            );
        }
    }
    let json = serde_json::to_string_pretty(report).context("encoding ab.json")? + "\n";
    let files =
        [("summary.csv", summary), ("differences.csv", diffs), ("ab.json", json), ("malformed.txt", malformed.into())];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
