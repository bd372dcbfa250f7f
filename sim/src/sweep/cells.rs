//! Running a shard's cells and the per-cell result files `cells/<cell>.parquet`.
//!
//! A cell's file holds one row per replication (columns `cell`, `policy`, `replication`, `fingerprint`,
//! then every metric of [`METRICS`](crate::report::METRICS), the quality ones only with quality on). It is written to a temporary name in the same directory, flushed to
//! disk, then renamed: the final name appears only complete, so a shard killed half-way leaves at most a
//! temporary file, which is never read. A re-run skips every cell whose file is there and checks out (the
//! cell's fingerprint and every replication); any other file at a cell's name is recomputed.

use super::plan::{CellPlan, Plan, Shard, Sweep};
use crate::engine::{self, RunOptions};
use crate::experiment::replication_row;
use crate::report::{Estimate, PolicyRow, metrics, parquet_bytes, quality_on};
use crate::scenario::Compiled;
use anyhow::{Context, Result, bail};
use polars::prelude::{Column, DataFrame, DataType, ParquetReader, SerReader};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Name of the plan file in an output directory.
pub const PLAN_FILE: &str = "sweep-plan.json";
/// Folder of the per-cell files in an output directory.
pub const CELLS_DIR: &str = "cells";

/// The result file of a cell in `dir`.
pub fn cell_path(dir: &Path, cell: &CellPlan) -> PathBuf {
    dir.join(CELLS_DIR).join(format!("{}.parquet", cell.id))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique across pods that share the volume (every container's process may be pid 1) and across retries.
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let tmp = dir.join(format!(".{name}.tmp-{host}-{}-{nanos}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all().with_context(|| format!("flushing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Writes the plan into `dir`, or checks that the plan already there is the same sweep.
pub fn write_plan(dir: &Path, plan: &Plan) -> Result<()> {
    write_plan_file(dir, PLAN_FILE, plan)
}

/// Writes a plan (JSON) as `name` into `dir` (creating `dir/cells`), or checks that the file already there
/// is the same plan.
pub fn write_plan_file<T: serde::Serialize>(dir: &Path, name: &str, plan: &T) -> Result<()> {
    std::fs::create_dir_all(dir.join(CELLS_DIR))
        .with_context(|| format!("creating the output directory {}", dir.display()))?;
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(plan).context("serialising the plan")? + "\n";
    if let Ok(old) = std::fs::read_to_string(&path) {
        if old == text {
            return Ok(());
        }
        bail!(
            "{} holds the results of a different study (its {name} differs from this one's plan: another sweep or \
             scenario file, parameter, seed, option or routesim version); use another --out directory",
            dir.display()
        );
    }
    write_atomic(&path, text.as_bytes())
}

/// Reads `sweep-plan.json` from `dir`.
pub fn read_plan(dir: &Path) -> Result<Plan> {
    let path = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("reading {} (is {} the output of `routesim sweep`?)", path.display(), dir.display())
    })?;
    let plan: Plan = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if plan.format != super::plan::PLAN_FORMAT || plan.kind != "sweep" {
        bail!("{}: expected a sweep plan of format {}", path.display(), super::plan::PLAN_FORMAT);
    }
    Ok(plan)
}

/// The per-replication rows of a cell file, if it exists and is the complete result of `cell`.
pub fn read_cell(dir: &Path, cell: &CellPlan) -> Option<Vec<PolicyRow>> {
    read_cell_file(&cell_path(dir, cell), cell).ok()
}

/// As [`read_cell`], saying what is wrong with the file.
pub fn read_cell_file(path: &Path, cell: &CellPlan) -> Result<Vec<PolicyRow>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let df = ParquetReader::new(file).finish().with_context(|| format!("reading {}", path.display()))?;
    let strings = |name: &str| -> Result<Vec<String>> {
        let c = df.column(name).with_context(|| format!("{}: no column `{name}`", path.display()))?;
        Ok(c.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
    };
    let n = cell.replications as usize;
    if df.height() != n {
        bail!("{}: {} rows, expected {n} replications", path.display(), df.height());
    }
    if strings("cell")?.iter().any(|c| *c != cell.id) || strings("fingerprint")?.iter().any(|f| *f != cell.fingerprint)
    {
        bail!("{}: not the result of cell {} as planned (fingerprint differs)", path.display(), cell.id);
    }
    let reps = df.column("replication")?.cast(&DataType::UInt32)?;
    if !reps.u32()?.iter().enumerate().all(|(i, r)| r == Some(i as u32)) {
        bail!("{}: replications are not 0..{n} in order", path.display());
    }
    // The quality metrics are in the file exactly when the scenario has quality on.
    let quality = df.column("quality").is_ok();
    let mut rows: Vec<PolicyRow> = (0..n)
        .map(|_| PolicyRow { policy: cell.policy.clone(), replications: 1, quality_on: quality, ..Default::default() })
        .collect();
    for m in metrics(quality) {
        let col = df.column(m.column).with_context(|| format!("{}: no column `{}`", path.display(), m.column))?;
        for (row, v) in rows.iter_mut().zip(col.f64()?.iter()) {
            *(m.get_mut)(row) = Estimate::point(v.unwrap_or(f64::NAN));
        }
    }
    Ok(rows)
}

/// The frame of a cell file.
pub fn cell_frame(cell: &CellPlan, rows: &[PolicyRow]) -> Result<DataFrame> {
    let n = rows.len();
    let mut columns = vec![
        Column::new("cell".into(), vec![cell.id.as_str(); n]),
        Column::new("policy".into(), vec![cell.policy.as_str(); n]),
        Column::new("replication".into(), (0..n as u32).collect::<Vec<u32>>()),
        Column::new("fingerprint".into(), vec![cell.fingerprint.as_str(); n]),
    ];
    for m in metrics(quality_on(rows)) {
        columns.push(Column::new(m.column.into(), rows.iter().map(|r| (m.get)(r).mean).collect::<Vec<f64>>()));
    }
    DataFrame::new(n, columns).context("building a cell's table")
}

/// What a shard did.
#[derive(Clone, Debug, Default)]
pub struct ShardOutcome {
    /// Cells of the shard.
    pub cells: usize,
    /// Cells run now.
    pub ran: usize,
    /// Cells skipped because their result file was already complete.
    pub skipped: usize,
    /// Requests simulated now (warm-up included).
    pub simulated_requests: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

/// Runs the cells of `shard` that have no complete result in `dir` yet, in parallel on rayon's current pool,
/// writing each cell's file as soon as its replications are done. `progress` is told the runs finished.
pub fn run_shard(
    sweep: &Sweep,
    shard: Shard,
    dir: &Path,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<ShardOutcome> {
    let start = Instant::now();
    write_plan(dir, &sweep.plan)?;
    let mine = sweep.plan.shard_cells(shard);
    let todo: Vec<usize> = mine.iter().copied().filter(|&k| read_cell(dir, &sweep.plan.cells[k]).is_none()).collect();
    let mut models: BTreeMap<usize, Compiled> = BTreeMap::new();
    for &k in &todo {
        let point = sweep.cell_runs[k].0;
        if let std::collections::btree_map::Entry::Vacant(e) = models.entry(point) {
            e.insert(sweep.points[point].compile()?);
        }
    }
    let jobs: Vec<(&CellPlan, &Compiled, usize)> = todo
        .iter()
        .map(|&k| {
            let (point, policy) = sweep.cell_runs[k];
            (&sweep.plan.cells[k], &models[&point], policy)
        })
        .collect();
    let simulated_requests = run_cells(&jobs, dir, progress)?;
    Ok(ShardOutcome {
        cells: mine.len(),
        ran: todo.len(),
        skipped: mine.len() - todo.len(),
        simulated_requests,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// Runs every replication of each `(cell, model, policy index)` in parallel and writes each cell's file into
/// `dir/cells` as soon as it is complete; returns the requests simulated. `progress` is told the runs done.
pub fn run_cells(
    jobs: &[(&CellPlan, &Compiled, usize)],
    dir: &Path,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<u64> {
    let done = AtomicU64::new(0);
    let arrivals = AtomicU64::new(0);
    jobs.par_iter()
        .map(|&(cell, model, policy)| -> Result<()> {
            let rows = (0..cell.replications)
                .into_par_iter()
                .map(|r| -> Result<PolicyRow> {
                    let result = engine::run(model, policy, r, RunOptions::default());
                    if let Some(e) = &result.input_error {
                        bail!("cell {}: {e}", cell.id);
                    }
                    arrivals.fetch_add(result.metrics.counts.arrivals, Ordering::Relaxed);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(f) = progress {
                        f(n);
                    }
                    Ok(replication_row(&result))
                })
                .collect::<Result<Vec<_>>>()?;
            let bytes = parquet_bytes(&mut cell_frame(cell, &rows)?)?;
            write_atomic(&cell_path(dir, cell), &bytes)
        })
        .collect::<Result<Vec<()>>>()?;
    Ok(arrivals.into_inner())
}
