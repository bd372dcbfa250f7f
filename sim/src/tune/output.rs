//! What `routesim tune` writes and prints.
//!
//! - `candidates.csv`, `candidates.parquet`: one row per candidate: name, status (`complete`, or the rung
//!   and reason it was dropped), replications, every parameter, every metric with its 95% half-width,
//!   `feasible`, `on_frontier`, `chosen`.
//! - `baselines.csv`: the scenario's policies, same metric columns.
//! - `pareto.csv`: the frontier rows of `candidates.csv`, by ascending first objective.
//! - `paired.csv`: `chosen - baseline` for every metric and baseline.
//! - `pareto.png`, `pareto.svg`: the plot (see [`crate::report::FrontierPlot`]).
//! - `cost_vs_quality.png`, `cost_vs_quality.svg` (only with quality on): the baselines and every candidate
//!   in the plane of cost and quality, with the non-decreasing convex hull and its AIQ.
//! - `best-policy.toml`: the chosen configuration as a `[[policies]]` entry, with its metrics and the
//!   constraints it meets in a comment. Not written when no candidate meets the constraints.

use super::TuneSetup;
use super::config::{Confidence, Op, QUALITY_METRICS, higher_is_better};
use super::search::{Status, TuneResult};
use super::space::flatten;
use crate::report::files::metric_columns;
use crate::report::plots::quality_point;
use crate::report::table::{Cell, Column, write_columns};
use crate::report::{
    Estimate, FrontierPlot, PolicyRow, QualityPlot, csv_bytes, metric, parquet_bytes, render_paired_rows,
    write_frontier_plot, write_quality_plot,
};
use anyhow::{Context, Result};
use polars::prelude::{Column as PlColumn, DataFrame, PlSmallStr};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Name of the chosen policy in `best-policy.toml`.
pub fn tuned_name(setup: &TuneSetup) -> String {
    format!("{}-tuned", setup.config.policy)
}

/// Writes every output file into `dir` (which must exist) and returns their paths.
pub fn write_files(setup: &TuneSetup, result: &TuneResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let all: Vec<usize> = (0..result.candidates.len()).collect();
    let mut df = candidate_frame(setup, result, &all)?;
    out.push(write(dir, "candidates.csv", csv_bytes(&mut df)?)?);
    out.push(write(dir, "candidates.parquet", parquet_bytes(&mut df)?)?);
    let mut pareto = candidate_frame(setup, result, &result.frontier)?;
    out.push(write(dir, "pareto.csv", csv_bytes(&mut pareto)?)?);
    let rows: Vec<&PolicyRow> = result.baselines.iter().map(|b| &b.summary).collect();
    let mut base = metric_frame(&rows, Vec::new())?;
    out.push(write(dir, "baselines.csv", csv_bytes(&mut base)?)?);
    if !result.paired.is_empty() {
        let report = crate::report::RunReport { paired: result.paired.clone(), ..Default::default() };
        let mut paired = crate::report::files::paired_frame(&report)?;
        out.push(write(dir, "paired.csv", csv_bytes(&mut paired)?)?);
    }
    out.extend(write_frontier_plot(&frontier_plot(setup, result), dir)?);
    if setup.quality {
        out.extend(write_quality_plot(&quality_plot(result), dir)?);
    }
    if let Some(text) = best_policy_toml(setup, result)? {
        out.push(write(dir, "best-policy.toml", text.into_bytes())?);
    }
    Ok(out)
}

fn write(dir: &Path, name: &str, bytes: Vec<u8>) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Status of a candidate as written in tables.
fn status_text(s: &Status) -> String {
    match s {
        Status::Complete => "complete".into(),
        Status::Pruned { after, reason } => format!("dropped after {after} replications ({reason})"),
    }
}

/// The rows `which` of the candidate table.
pub fn candidate_frame(setup: &TuneSetup, result: &TuneResult, which: &[usize]) -> Result<DataFrame> {
    let cands: Vec<_> = which.iter().map(|&c| &result.candidates[c]).collect();
    let mut lead = vec![
        PlColumn::new("candidate".into(), cands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()),
        PlColumn::new("status".into(), cands.iter().map(|c| status_text(&c.status)).collect::<Vec<_>>()),
    ];
    for (k, col) in setup.param_columns().into_iter().enumerate() {
        let values: Vec<f64> = which.iter().map(|&c| flatten(&setup.values[c])[k]).collect();
        lead.push(PlColumn::new(PlSmallStr::from(col), values));
    }
    let rows: Vec<&PolicyRow> = cands.iter().map(|c| &c.summary).collect();
    let mut df = metric_frame(&rows, lead)?;
    let flags = [
        ("feasible", which.iter().map(|&c| result.feasible(setup, c)).collect::<Vec<bool>>()),
        ("on_frontier", which.iter().map(|c| result.frontier.contains(c)).collect()),
        ("chosen", which.iter().map(|&c| result.chosen == Some(c)).collect()),
    ];
    for (name, values) in flags {
        df.with_column(PlColumn::new(name.into(), values)).context("building the candidate table")?;
    }
    Ok(df)
}

/// `lead` columns, then those of `summary.csv` (policy, replications, every metric with its `_ci95`).
fn metric_frame(rows: &[&PolicyRow], mut columns: Vec<PlColumn>) -> Result<DataFrame> {
    columns.extend(metric_columns(rows));
    DataFrame::new(rows.len(), columns).context("building the candidate table")
}

/// The data of the `pareto` plot: `x` is the second objective (latency), `y` the first (cost).
pub fn frontier_plot(setup: &TuneSetup, result: &TuneResult) -> FrontierPlot {
    let [oy, ox] = setup.objectives;
    let get = |row: &PolicyRow, name: &str| metric(name).map_or(Estimate::point(f64::NAN), |m| (m.get)(row));
    let label = |name: &str| metric(name).map_or(name.to_string(), |m| format!("{} ({})", m.column, m.header));
    // The binding bound of each axis: an upper bound on a cost, a lower bound on a metric better higher.
    let upper = |name: &str| {
        let (op, tighter): (Op, fn(f64, f64) -> f64) =
            if higher_is_better(name) { (Op::AtLeast, f64::max) } else { (Op::AtMost, f64::min) };
        setup.constraints.iter().filter(|c| c.metric == name && c.op == op).map(|c| c.bound).reduce(tighter)
    };
    let point = |c: usize| {
        let s = &result.candidates[c].summary;
        (get(s, ox).mean, get(s, oy).mean)
    };
    FrontierPlot {
        x_label: label(ox),
        y_label: label(oy),
        candidates: (0..result.candidates.len())
            .filter(|&c| result.candidates[c].status == Status::Complete)
            .map(|c| (point(c).0, point(c).1, result.feasible(setup, c)))
            .collect(),
        pruned: (0..result.candidates.len())
            .filter(|&c| result.candidates[c].status != Status::Complete)
            .map(point)
            .collect(),
        frontier: plane_frontier(setup, result).into_iter().map(point).collect(),
        baselines: result
            .baselines
            .iter()
            .map(|b| (b.summary.policy.clone(), get(&b.summary, ox), get(&b.summary, oy)))
            .collect(),
        chosen: result.chosen.map(|c| {
            let s = &result.candidates[c].summary;
            (result.candidates[c].name.clone(), get(s, ox), get(s, oy))
        }),
        x_limit: upper(ox),
        y_limit: upper(oy),
    }
}

/// The data of the `cost_vs_quality` plot of a tuning with quality on: the baselines labelled (with their
/// p95), every complete candidate in grey, and the hull and AIQ of them all.
pub fn quality_plot(result: &TuneResult) -> QualityPlot {
    let points = result.baselines.iter().enumerate().map(|(k, b)| quality_point(&b.summary, k)).collect();
    let others = result
        .candidates
        .iter()
        .filter(|c| c.status == Status::Complete)
        .map(|c| (c.summary.cost_per_1k_usd.mean, c.summary.quality.mean))
        .collect();
    QualityPlot::new(points, others)
}

/// The frontier drawn in the plane of the two objectives: the tuning's frontier itself, or, when quality is
/// its third axis, the part of it no other frontier candidate beats on the two objectives alone (the step
/// line of the plane; the `cost_vs_quality` plot shows the quality axis).
fn plane_frontier(setup: &TuneSetup, result: &TuneResult) -> Vec<usize> {
    if setup.frontier_axes().len() == 2 {
        return result.frontier.clone();
    }
    let rows: Vec<&PolicyRow> = result.frontier.iter().map(|&c| &result.candidates[c].summary).collect();
    super::select::frontier(&rows, &setup.objectives).into_iter().map(|i| result.frontier[i]).collect()
}

/// `best-policy.toml`, or `None` when no candidate meets the constraints.
pub fn best_policy_toml(setup: &TuneSetup, result: &TuneResult) -> Result<Option<String>> {
    let Some(c) = result.chosen else { return Ok(None) };
    let cand = &result.candidates[c];
    let mut spec = setup.model.scenario.policies[setup.baselines + c].clone();
    spec.name = tuned_name(setup);
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        policies: [&'a router_core::PolicySpec; 1],
    }
    let body = toml::to_string(&Doc { policies: [&spec] }).context("serialising the chosen policy")?;
    let mut text = String::new();
    let scenario = &setup.model.scenario;
    let _ = writeln!(
        text,
        "# Chosen by `routesim tune {}`: candidate {} of {} ({} method), policy `{}` of scenario \"{}\".",
        setup.model.file.display(),
        cand.name,
        result.candidates.len(),
        setup.config.method.name(),
        setup.config.policy,
        scenario.name
    );
    let run_length = match (scenario.requests, scenario.duration) {
        (Some(n), _) => format!("{n} requests"),
        (None, Some(d)) => format!("{d} of traffic"),
        (None, None) => "the scenario's run length".into(),
    };
    let _ = writeln!(
        text,
        "# Measured over {} replications of {run_length}, seed {} (mean ± 95% CI half-width):",
        cand.summary.replications, scenario.seed
    );
    let quality: &[&str] = if setup.quality { &QUALITY_METRICS } else { &[] };
    let names = ["cost_per_1k_usd", "latency_p50_s", "latency_p95_s", "latency_p99_s", "success_rate"];
    for name in names.iter().chain(quality) {
        if let Some(m) = metric(name) {
            let e = (m.get)(&cand.summary);
            let _ = writeln!(text, "#   {name} = {}", fmt_estimate(e));
        }
    }
    if setup.constraints.is_empty() {
        let _ = writeln!(
            text,
            "# No constraints were given: this is the {} {} found.",
            best_word(setup.objectives[0]),
            setup.objectives[0]
        );
    } else {
        let how = match setup.config.confidence {
            Confidence::Interval => "the whole 95% interval",
            Confidence::Mean => "the mean",
        };
        let list: Vec<&str> = setup.constraints.iter().map(|k| k.text.as_str()).collect();
        let _ = writeln!(text, "# Meets every constraint on {how}: {}.", list.join(", "));
        let _ = writeln!(
            text,
            "# It has the {} {} of the candidates that do.",
            best_word(setup.objectives[0]),
            setup.objectives[0]
        );
    }
    let _ = writeln!(text, "# Paste it into a scenario's policies or a gateway's router config.\n");
    text.push_str(&body);
    Ok(Some(text))
}

/// "lowest" for an objective minimised, "highest" for one maximised (quality, mean score).
fn best_word(objective: &str) -> &'static str {
    if higher_is_better(objective) { "highest" } else { "lowest" }
}

fn fmt_estimate(e: Estimate) -> String {
    match e.ci95 {
        Some(h) => format!("{:.6} ± {:.6}", e.mean, h),
        None => format!("{:.6}", e.mean),
    }
}

/// The terminal report: the frontier table, then the chosen point against each baseline (or the closest
/// misses when nothing meets the constraints).
pub fn render(setup: &TuneSetup, result: &TuneResult) -> String {
    let mut out = String::new();
    let complete = result.candidates.iter().filter(|c| c.status == Status::Complete).count();
    let _ = writeln!(
        out,
        "Tuning `{}` of scenario \"{}\": {} candidates ({}), {} evaluated on all {} replications, seed {}",
        setup.config.policy,
        setup.model.scenario.name,
        result.candidates.len(),
        setup.config.method.name(),
        complete,
        setup.replications,
        setup.model.scenario.seed
    );
    if !setup.constraints.is_empty() {
        let list: Vec<&str> = setup.constraints.iter().map(|k| k.text.as_str()).collect();
        let how = match setup.config.confidence {
            Confidence::Interval => "on the whole 95% interval",
            Confidence::Mean => "on the mean",
        };
        let _ = writeln!(out, "Constraints ({how}): {}", list.join(", "));
    }
    let axes = setup.frontier_axes();
    let third = if axes.len() > 2 { " vs quality" } else { "" };
    let _ = writeln!(
        out,
        "\nPareto frontier ({} vs {}{third}; * = meets the constraints, > = chosen):\n",
        setup.objectives[0], setup.objectives[1]
    );
    render_candidates(setup, result, &result.frontier, &mut out);
    out.push_str("\nBaselines (the scenario's policies, same replications):\n\n");
    render_baselines(setup, result, &mut out);
    let _ = writeln!(
        out,
        "\nAgainst each baseline: the candidate with the {} {} at equal or better {} (paired differences, \
         * = 95% CI excludes zero):\n",
        best_word(setup.objectives[0]),
        setup.objectives[0],
        setup.objectives[1]
    );
    render_matches(setup, result, &mut out);
    match result.chosen {
        Some(c) => {
            let _ = writeln!(
                out,
                "\nChosen: {} (written as `{}` to best-policy.toml). Paired differences chosen - baseline \
                 (* = 95% CI excludes zero):\n",
                result.candidates[c].name,
                tuned_name(setup)
            );
            render_paired_rows(&result.paired, true, &mut out);
        }
        None => {
            let _ = writeln!(
                out,
                "\nNo candidate meets the constraints, so no best-policy.toml was written. The closest ones:\n"
            );
            render_candidates(setup, result, &result.closest, &mut out);
        }
    }
    out
}

/// The metrics shown per candidate: the objectives, quality (when the scenario states it), the constrained
/// metrics and the success rate.
fn shown_metrics(setup: &TuneSetup) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = setup.frontier_axes();
    for c in &setup.constraints {
        if !names.contains(&c.metric) {
            names.push(c.metric);
        }
    }
    if !names.contains(&"success_rate") {
        names.push("success_rate");
    }
    names
}

fn render_candidates(setup: &TuneSetup, result: &TuneResult, which: &[usize], out: &mut String) {
    let mut columns = vec![Column {
        header: "candidate".into(),
        left_align: true,
        cells: which
            .iter()
            .map(|&c| {
                let mark = if result.chosen == Some(c) {
                    ">"
                } else if result.feasible(setup, c) {
                    "*"
                } else {
                    " "
                };
                Cell::plain(format!("{mark} {}", result.candidates[c].name))
            })
            .collect(),
    }];
    for (k, col) in setup.param_columns().into_iter().enumerate() {
        columns.push(Column {
            header: col,
            left_align: false,
            cells: which.iter().map(|&c| Cell::plain(format!("{}", flatten(&setup.values[c])[k]))).collect(),
        });
    }
    push_metric_columns(setup, which.iter().map(|&c| &result.candidates[c].summary).collect(), &mut columns);
    write_columns(&columns, which.len(), out);
}

fn render_matches(setup: &TuneSetup, result: &TuneResult, out: &mut String) {
    let [first, second] = setup.objectives;
    let fmt = |name: &str| metric(name).map_or(crate::report::Format::Significant(4), |m| m.format);
    let diff_cell = |p: &Option<crate::report::PairedRow>, name: &str| match p {
        Some(p) => {
            let mut cell = Cell::estimate(Estimate { mean: p.mean_diff, ci95: p.ci95 }, fmt(name));
            if p.significant {
                cell = cell.marked("*");
            }
            cell
        }
        None => Cell::plain("-".into()),
    };
    let rows = &result.matches;
    let columns = vec![
        Column {
            header: "baseline".into(),
            left_align: true,
            cells: rows.iter().map(|m| Cell::plain(result.baselines[m.baseline].summary.policy.clone())).collect(),
        },
        Column {
            header: "candidate".into(),
            left_align: true,
            cells: rows
                .iter()
                .map(|m| {
                    Cell::plain(m.candidate.map_or("none at that level".into(), |c| result.candidates[c].name.clone()))
                })
                .collect(),
        },
        Column {
            header: format!("{first} diff"),
            left_align: false,
            cells: rows.iter().map(|m| diff_cell(&m.first_diff, first)).collect(),
        },
        Column {
            header: format!("{second} diff"),
            left_align: false,
            cells: rows.iter().map(|m| diff_cell(&m.second_diff, second)).collect(),
        },
    ];
    write_columns(&columns, rows.len(), out);
}

fn render_baselines(setup: &TuneSetup, result: &TuneResult, out: &mut String) {
    let rows: Vec<&PolicyRow> = result.baselines.iter().map(|b| &b.summary).collect();
    let mut columns = vec![Column {
        header: "policy".into(),
        left_align: true,
        cells: rows.iter().map(|r| Cell::plain(r.policy.clone())).collect(),
    }];
    push_metric_columns(setup, rows.clone(), &mut columns);
    write_columns(&columns, rows.len(), out);
}

fn push_metric_columns(setup: &TuneSetup, rows: Vec<&PolicyRow>, columns: &mut Vec<Column>) {
    for name in shown_metrics(setup) {
        let Some(m) = metric(name) else { continue };
        columns.push(Column {
            header: m.header.into(),
            left_align: false,
            cells: rows.iter().map(|r| Cell::estimate((m.get)(r), m.format)).collect(),
        });
    }
}
