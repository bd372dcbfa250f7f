//! Reports: what a user reads after a run (terminal table, CSV and Parquet files, PNG and SVG plots).
//!
//! The engine fills in a plain [`RunReport`] (see [`model`]); everything here only reads it, so the
//! report layer does not depend on how a simulation runs and can be driven by tests or by
//! `routesim tune` alike. The metric list lives once, in [`METRICS`], and every writer derives its
//! columns from it.
//!
//! - [`render_table`]: the aligned plain-text table (deterministic, no colours).
//! - [`files`]: `summary.csv`/`.parquet`, `paired.csv`/`.parquet`, `replications.csv`/`.parquet`, `timeseries.parquet`,
//!   `shares.parquet`, `latency_cdf.parquet`.
//! - [`plots`]: `latency_cdf`, `cost_vs_p95`, `timeseries`, `cost_bars`, each as PNG and SVG, with an
//!   embedded font so no system fonts are needed.
//! - [`html`]: `report.html`, one self-contained page built from the files of a results directory.
//! - [`pareto_frontier`]: the generic two-objective frontier used by the cost/p95 plot and by tuning;
//!   [`pareto_frontier_n`] its version in any number of objectives (cost, p95 and quality when quality is on).
//! - [`aiq`]: RouterBench's non-decreasing convex hull of (cost, quality) points and its AIQ.
//!
//! Not here: computing statistics (see `crate::stats`), choosing the output directory, the manifest
//! or the resolved scenario (the command that runs the simulation writes those).

pub mod aiq;
pub mod files;
pub mod html;
pub mod model;
pub mod pareto;
pub mod plots;
pub mod table;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use files::{
    csv_bytes, parquet_bytes, write_cdf, write_class_quality, write_classes, write_paired, write_replications,
    write_summary, write_timeseries,
};
pub use model::{
    CdfSeries, ClassQualityRow, ClassRow, Estimate, Format, METRICS, Metric, PairedRow, PolicyRow, ReplicationRow,
    RunReport, ShareRow, TimeseriesRow, metric, metrics, quality_on,
};
pub use pareto::{pareto_frontier, pareto_frontier_n};
pub use plots::{
    FrontierPlot, QqPlot, QualityPlot, QualityPoint, write_frontier_plot, write_plots, write_qq_plot,
    write_quality_plot,
};
pub use table::{render_paired_rows, render_table};

/// Writes every report file and plot into `dir` (created if missing) and returns the written paths
/// in a stable order: `summary.csv`, `summary.parquet`, `paired.csv`, `paired.parquet`, `replications.csv`,
/// `replications.parquet`, `timeseries.parquet`, `shares.parquet`, `latency_cdf.parquet`, `classes.csv`, with quality
/// on `quality_by_class.csv`, then the PNG and SVG of `latency_cdf`, `cost_vs_p95`, `timeseries` and `cost_bars`,
/// and with quality on those of `cost_vs_quality`.
pub fn write_all(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating the report directory {}", dir.display()))?;
    let mut paths = write_summary(report, dir)?;
    paths.extend(write_paired(report, dir)?);
    paths.extend(write_replications(report, dir)?);
    paths.extend(write_timeseries(report, dir)?);
    paths.push(write_cdf(report, dir)?);
    paths.push(write_classes(report, dir)?);
    if report.quality_on() {
        paths.push(write_class_quality(report, dir)?);
    }
    paths.extend(write_plots(report, dir)?);
    if report.quality_on() {
        paths.extend(write_quality_plot(&QualityPlot::of_report(report), dir)?);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_creates_the_directory_and_lists_files_in_stable_order() {
        let dir = std::env::temp_dir().join(format!("routesim-report-all-{}", std::process::id())).join("nested");
        let _ = std::fs::remove_dir_all(&dir);
        let report = RunReport {
            scenario: "t".into(),
            rows: vec![PolicyRow {
                policy: "p".into(),
                replications: 1,
                latency_p95_s: Estimate::point(1.0),
                cost_per_1k_usd: Estimate::point(0.5),
                ..Default::default()
            }],
            ..Default::default()
        };
        let paths = write_all(&report, &dir).expect("write_all");
        let names: Vec<String> = paths
            .iter()
            .map(|p| {
                assert!(p.starts_with(&dir));
                assert!(p.is_file(), "{} missing", p.display());
                p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            })
            .collect();
        assert_eq!(
            names,
            [
                "summary.csv",
                "summary.parquet",
                "paired.csv",
                "paired.parquet",
                "replications.csv",
                "replications.parquet",
                "timeseries.parquet",
                "shares.parquet",
                "latency_cdf.parquet",
                "classes.csv",
                "latency_cdf.png",
                "latency_cdf.svg",
                "cost_vs_p95.png",
                "cost_vs_p95.svg",
                "timeseries.png",
                "timeseries.svg",
                "cost_bars.png",
                "cost_bars.svg",
            ]
        );
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}
