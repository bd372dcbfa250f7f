//! `routesim merge` for sweeps: the per-cell files of one or more output directories (one per shard, or one
//! shared) combined into the study's result files. A single-process sweep ends with the same merge of its
//! own directory, so both write the same bytes.
//!
//! - `replications.parquet`: one row per cell and replication: `cell`, `scenario`, `point`, the parameter
//!   columns, `policy`, `replication`, every metric.
//! - `summary.csv`, `summary.parquet`: one row per cell: `cell`, `scenario`, `point`, the parameters, then
//!   the columns of `routesim run`'s `summary.csv` (every metric with its 95% half-width `_ci95`).
//! - `paired.csv`, `paired.parquet`: per cell and metric, `policy - baseline` paired over the replications
//!   (common random numbers) against the baseline's cell at the same scenario and point.
//! - `aiq.csv` (only with quality on and a policy swept over `threshold` or `min_quality`): see
//!   [`super::aiq`].

use super::cells::{PLAN_FILE, cell_path, read_cell_file, read_plan, write_atomic};
use super::plan::{CellPlan, Plan};
use crate::experiment::{paired_rows, summarize};
use crate::report::files::metric_columns;
use crate::report::{PairedRow, PolicyRow, csv_bytes, metrics, parquet_bytes, quality_on};
use anyhow::{Context, Result, bail};
use polars::prelude::{Column, DataFrame, PlSmallStr};
use std::path::{Path, PathBuf};

/// The result files of a sweep, in the order they are written.
pub const RESULT_FILES: [&str; 5] =
    ["replications.parquet", "summary.csv", "summary.parquet", "paired.csv", "paired.parquet"];

/// Some cells have no complete result yet (`routesim merge --wait` polls on this error, and only on it).
#[derive(Debug)]
pub struct MissingCells(pub String);

impl std::fmt::Display for MissingCells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MissingCells {}

/// A merged sweep.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The plan.
    pub plan: Plan,
    /// Per cell, its summary over replications.
    pub summaries: Vec<PolicyRow>,
    /// Per cell, its paired differences against its baseline (empty for the baseline itself).
    pub paired: Vec<Vec<PairedRow>>,
}

/// Reads every cell of the plan found in `dirs` (which must hold the same plan); errors list missing cells.
pub fn collect(dirs: &[PathBuf]) -> Result<(Plan, Vec<Vec<PolicyRow>>)> {
    let Some(first) = dirs.first() else { bail!("expected at least one directory to merge") };
    let plan = read_plan(first)?;
    for d in &dirs[1..] {
        if read_plan(d)? != plan {
            bail!(
                "{} and {} hold different sweeps (their {PLAN_FILE} differ): merge only the shards of one sweep",
                first.display(),
                d.display()
            );
        }
    }
    let reps = collect_cells(&plan.cells, dirs)?;
    Ok((plan, reps))
}

/// The rows of every cell, each from the first of `dirs` that holds its complete result; the error lists
/// the missing cells.
pub fn collect_cells(cells: &[CellPlan], dirs: &[PathBuf]) -> Result<Vec<Vec<PolicyRow>>> {
    let mut reps = Vec::with_capacity(cells.len());
    let mut missing = Vec::new();
    let mut broken = Vec::new();
    for (k, planned) in cells.iter().enumerate() {
        let source = planned.source as usize;
        if source < k {
            let rows: Vec<PolicyRow> = reps.get(source).cloned().unwrap_or_default();
            reps.push(rows);
            continue;
        }
        let cell = planned;
        let mut found = None;
        for d in dirs {
            let path = cell_path(d, cell);
            if !path.exists() {
                continue;
            }
            match read_cell_file(&path, cell) {
                Ok(rows) => {
                    found = Some(rows);
                    break;
                }
                Err(e) => broken.push(format!("{e:#}")),
            }
        }
        match found {
            Some(rows) => reps.push(rows),
            None => {
                missing.push((k, cell.id.clone()));
                reps.push(Vec::new());
            }
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().take(5).map(|(k, id)| format!("{id} (cell {k})")).collect();
        let more = if missing.len() > 5 { format!(" and {} more", missing.len() - 5) } else { String::new() };
        let why = if broken.is_empty() { String::new() } else { format!("; unreadable: {}", broken.join("; ")) };
        return Err(anyhow::Error::new(MissingCells(format!(
            "{} of {} cells have no complete result in {}: {}{more}{why}. Run the shards again (`routesim sweep \
             --shard I/N` skips the cells already done)",
            missing.len(),
            cells.len(),
            dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
            list.join(", ")
        ))));
    }
    Ok(reps)
}

/// Summaries and paired differences of collected cells.
pub fn summarise(plan: Plan, reps: &[Vec<PolicyRow>]) -> Merged {
    let summaries = plan.cells.iter().zip(reps).map(|(c, r)| summarize(&c.policy, r)).collect();
    let paired = plan
        .cells
        .iter()
        .zip(reps)
        .map(|(c, r)| {
            if c.policy == c.baseline {
                return Vec::new();
            }
            let base = plan.cells.iter().position(|b| b.group == c.group && b.policy == c.baseline);
            base.map_or_else(Vec::new, |b| paired_rows(&c.policy, r, &c.baseline, &reps[b]))
        })
        .collect();
    Merged { plan, summaries, paired }
}

/// Merges `dirs` into `out` and returns the paths written.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(Merged, Vec<PathBuf>)> {
    let (plan, reps) = collect(dirs)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>| -> Result<()> {
        let path = out.join(name);
        write_atomic(&path, &bytes)?;
        files.push(path);
        Ok(())
    };
    let plan_text = serde_json::to_string_pretty(&plan).context("serialising the plan")? + "\n";
    let mut df = replications_frame(&plan, &reps)?;
    put(RESULT_FILES[0], parquet_bytes(&mut df)?)?;
    let merged = summarise(plan, &reps);
    let mut summary = summary_frame(&merged)?;
    put(RESULT_FILES[1], csv_bytes(&mut summary)?)?;
    put(RESULT_FILES[2], parquet_bytes(&mut summary)?)?;
    let mut paired = paired_frame(&merged)?;
    put(RESULT_FILES[3], csv_bytes(&mut paired)?)?;
    put(RESULT_FILES[4], parquet_bytes(&mut paired)?)?;
    let families = super::aiq::families(&merged.plan, &merged.summaries);
    if !families.is_empty() {
        put(super::aiq::AIQ_FILE, csv_bytes(&mut super::aiq::aiq_frame(&families)?)?)?;
    }
    if !out.join(PLAN_FILE).exists() {
        put(PLAN_FILE, plan_text.into_bytes())?;
    }
    Ok((merged, files))
}

/// `cell`, `scenario`, `point` and the parameter columns for the cells `which` (indices into the plan).
fn lead_columns(plan: &Plan, which: &[usize]) -> Vec<Column> {
    let cells: Vec<_> = which.iter().map(|&k| &plan.cells[k]).collect();
    let mut cols = vec![
        Column::new("cell".into(), cells.iter().map(|c| c.id.as_str()).collect::<Vec<_>>()),
        Column::new("scenario".into(), cells.iter().map(|c| c.scenario.as_str()).collect::<Vec<_>>()),
        Column::new("point".into(), cells.iter().map(|c| c.point).collect::<Vec<u32>>()),
    ];
    for (j, name) in plan.param_columns.iter().enumerate() {
        let values: Vec<f64> =
            cells.iter().map(|c| c.params.get(j).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)).collect();
        cols.push(Column::new(PlSmallStr::from(name.as_str()), values));
    }
    cols
}

fn replications_frame(plan: &Plan, reps: &[Vec<PolicyRow>]) -> Result<DataFrame> {
    let which: Vec<usize> = (0..plan.cells.len()).flat_map(|k| std::iter::repeat_n(k, reps[k].len())).collect();
    let rows: Vec<&PolicyRow> = reps.iter().flatten().collect();
    let mut cols = lead_columns(plan, &which);
    cols.push(Column::new("policy".into(), rows.iter().map(|r| r.policy.as_str()).collect::<Vec<_>>()));
    let replication: Vec<u32> = reps.iter().flat_map(|r| 0..r.len() as u32).collect();
    cols.push(Column::new("replication".into(), replication));
    for m in metrics(quality_on(rows.iter().copied())) {
        cols.push(Column::new(m.column.into(), rows.iter().map(|r| (m.get)(r).mean).collect::<Vec<f64>>()));
    }
    DataFrame::new(rows.len(), cols).context("building the per-replication table")
}

fn summary_frame(m: &Merged) -> Result<DataFrame> {
    let which: Vec<usize> = (0..m.plan.cells.len()).collect();
    let mut cols = lead_columns(&m.plan, &which);
    cols.extend(metric_columns(&m.summaries.iter().collect::<Vec<_>>()));
    DataFrame::new(which.len(), cols).context("building the summary table")
}

fn paired_frame(m: &Merged) -> Result<DataFrame> {
    let which: Vec<usize> = (0..m.plan.cells.len()).flat_map(|k| std::iter::repeat_n(k, m.paired[k].len())).collect();
    let rows: Vec<&PairedRow> = m.paired.iter().flatten().collect();
    let mut cols = lead_columns(&m.plan, &which);
    let text = |name: &str, f: fn(&PairedRow) -> &str| {
        Column::new(name.into(), rows.iter().map(|r| f(r)).collect::<Vec<&str>>())
    };
    cols.push(text("policy", |r| &r.policy));
    cols.push(text("baseline", |r| &r.baseline));
    cols.push(text("metric", |r| &r.metric));
    cols.push(Column::new("mean_diff".into(), rows.iter().map(|r| r.mean_diff).collect::<Vec<f64>>()));
    cols.push(Column::new("ci95".into(), rows.iter().map(|r| r.ci95).collect::<Vec<Option<f64>>>()));
    cols.push(Column::new("significant".into(), rows.iter().map(|r| r.significant).collect::<Vec<bool>>()));
    DataFrame::new(rows.len(), cols).context("building the paired-difference table")
}
