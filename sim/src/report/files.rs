//! CSV and Parquet output of a [`RunReport`], built with polars.
//!
//! Files written (all under one directory):
//! - `summary.csv`, `summary.parquet`: one row per policy; `policy`, `replications`, then for every
//!   metric of [`METRICS`](super::model::METRICS) the mean `<metric>` and its 95% half-width `<metric>_ci95` (null when
//!   unknown), then `on_pareto_frontier` (cost per 1k against p95; with quality on, and quality: see
//!   [`RunReport::frontier`]).
//! - `paired.csv`, `paired.parquet`: the paired differences against the baseline.
//! - `replications.csv`, `replications.parquet`: `policy`, `replication`, then every metric of [`METRICS`](super::model::METRICS)
//!   in that replication alone (what the summary's means and intervals are computed from).
//! - `timeseries.parquet`: per policy, replication and interval; `shares.parquet`: per endpoint too.
//! - `latency_cdf.parquet`: the latency CDF points per policy (long format).
//! - `quality_by_class.csv` (only with quality on): answer quality per policy and task class.
//!
//! The quality metrics (`quality`, `mean_score`, `cost_per_acceptable`) are columns of the summary and
//! replication files, and metrics of the paired file, only when the report has quality on
//! ([`RunReport::quality_on`]): without quality every file is what it was before quality existed.
//!
//! Floats in CSV use polars' shortest round-trip formatting, so identical input gives identical
//! bytes. Files are written in one piece after being encoded in memory. This module does not decide
//! where a run's directory is; the caller passes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetCompression, ParquetWriter, PlSmallStr, SerWriter};

use super::model::{PolicyRow, RunReport, metrics, quality_on};

/// Writes `summary.csv` and `summary.parquet` into `dir` and returns their paths in that order.
pub fn write_summary(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut df = summary_frame(report)?;
    write_csv_and_parquet(&mut df, dir, "summary")
}

/// Writes `paired.csv` and `paired.parquet` into `dir` and returns their paths in that order.
pub fn write_paired(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut df = paired_frame(report)?;
    write_csv_and_parquet(&mut df, dir, "paired")
}

/// Writes `replications.csv` and `replications.parquet` into `dir` and returns their paths in that order.
pub fn write_replications(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut df = replications_frame(report)?;
    write_csv_and_parquet(&mut df, dir, "replications")
}

/// The per-replication metrics as a data frame (the content of `replications.csv`).
pub fn replications_frame(report: &RunReport) -> Result<DataFrame> {
    let reps = &report.per_replication;
    let mut columns = Vec::with_capacity(2 + super::model::METRICS.len());
    columns.push(str_column("policy", reps.iter().map(|r| r.row.policy.as_str())));
    columns.push(Column::new("replication".into(), reps.iter().map(|r| r.replication).collect::<Vec<u32>>()));
    for m in metrics(quality_on(reps.iter().map(|r| &r.row))) {
        columns.push(Column::new(m.column.into(), reps.iter().map(|r| (m.get)(&r.row).mean).collect::<Vec<f64>>()));
    }
    DataFrame::new(reps.len(), columns).context("building the per-replication table")
}

/// Writes `timeseries.parquet` and `shares.parquet` into `dir` and returns their paths in that order.
pub fn write_timeseries(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut ts = timeseries_frame(report)?;
    let mut shares = shares_frame(report)?;
    Ok(vec![
        write_parquet(&mut ts, &dir.join("timeseries.parquet"))?,
        write_parquet(&mut shares, &dir.join("shares.parquet"))?,
    ])
}

/// Writes `classes.csv` (latency and TTFT quantiles per policy and task class) into `dir`.
pub fn write_classes(report: &RunReport, dir: &Path) -> Result<PathBuf> {
    let c = &report.classes;
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("policy".into(), c.iter().map(|r| r.policy.as_str()).collect::<Vec<_>>()),
        Column::new("class".into(), c.iter().map(|r| r.class.as_str()).collect::<Vec<_>>()),
        Column::new("succeeded".into(), c.iter().map(|r| r.succeeded).collect::<Vec<_>>()),
        Column::new("latency_p50_s".into(), c.iter().map(|r| r.latency_p50_s).collect::<Vec<_>>()),
        Column::new("latency_p95_s".into(), c.iter().map(|r| r.latency_p95_s).collect::<Vec<_>>()),
        Column::new("ttft_p50_s".into(), c.iter().map(|r| r.ttft_p50_s).collect::<Vec<_>>()),
        Column::new("ttft_p95_s".into(), c.iter().map(|r| r.ttft_p95_s).collect::<Vec<_>>()),
    ])
    .context("building the per-class table")?;
    let path = dir.join("classes.csv");
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    CsvWriter::new(file).finish(&mut df).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes `quality_by_class.csv` (answer quality per policy and task class: `policy, class, answered,
/// quality, quality_ci95, mean_score, mean_score_ci95`) into `dir`.
pub fn write_class_quality(report: &RunReport, dir: &Path) -> Result<PathBuf> {
    let c = &report.class_quality;
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("policy".into(), c.iter().map(|r| r.policy.as_str()).collect::<Vec<_>>()),
        Column::new("class".into(), c.iter().map(|r| r.class.as_str()).collect::<Vec<_>>()),
        Column::new("answered".into(), c.iter().map(|r| r.answered).collect::<Vec<_>>()),
        Column::new("quality".into(), c.iter().map(|r| r.quality.mean).collect::<Vec<_>>()),
        Column::new("quality_ci95".into(), c.iter().map(|r| r.quality.ci95).collect::<Vec<_>>()),
        Column::new("mean_score".into(), c.iter().map(|r| r.mean_score.mean).collect::<Vec<_>>()),
        Column::new("mean_score_ci95".into(), c.iter().map(|r| r.mean_score.ci95).collect::<Vec<_>>()),
    ])
    .context("building the per-class quality table")?;
    write_csv(&mut df, &dir.join("quality_by_class.csv"))
}

/// Writes `latency_cdf.parquet` (columns `policy, latency_s, cum_prob`) into `dir`.
pub fn write_cdf(report: &RunReport, dir: &Path) -> Result<PathBuf> {
    let mut df = cdf_frame(report)?;
    write_parquet(&mut df, &dir.join("latency_cdf.parquet"))
}

// ===== frames =====

/// The per-policy summary as a data frame (the content of `summary.csv`).
pub fn summary_frame(report: &RunReport) -> Result<DataFrame> {
    let rows = &report.rows;
    let mut columns = metric_columns(&rows.iter().collect::<Vec<_>>());
    let frontier = report.frontier();
    columns.push(Column::new(
        "on_pareto_frontier".into(),
        (0..rows.len()).map(|i| frontier.contains(&i)).collect::<Vec<bool>>(),
    ));
    DataFrame::new(rows.len(), columns).context("building the summary table")
}

/// The columns `policy`, `replications`, then every metric of [`METRICS`](super::model::METRICS) (the quality
/// metrics only when some row has quality on) and its `<metric>_ci95` (null when unknown), one row per entry
/// of `rows`: the layout of `summary.csv` and `candidates.csv`.
pub fn metric_columns(rows: &[&PolicyRow]) -> Vec<Column> {
    let mut columns = Vec::with_capacity(3 + 2 * super::model::METRICS.len());
    columns.push(Column::new("policy".into(), rows.iter().map(|r| r.policy.as_str()).collect::<Vec<_>>()));
    columns.push(Column::new("replications".into(), rows.iter().map(|r| r.replications).collect::<Vec<u32>>()));
    for m in metrics(quality_on(rows.iter().copied())) {
        let values: Vec<f64> = rows.iter().map(|r| (m.get)(r).mean).collect();
        let ci: Vec<Option<f64>> = rows.iter().map(|r| (m.get)(r).ci95).collect();
        columns.push(Column::new(m.column.into(), values));
        columns.push(Column::new(PlSmallStr::from(format!("{}_ci95", m.column)), ci));
    }
    columns
}

/// The paired differences as a data frame (the content of `paired.csv`).
pub fn paired_frame(report: &RunReport) -> Result<DataFrame> {
    let p = &report.paired;
    let columns = vec![
        str_column("policy", p.iter().map(|r| r.policy.as_str())),
        str_column("baseline", p.iter().map(|r| r.baseline.as_str())),
        str_column("metric", p.iter().map(|r| r.metric.as_str())),
        Column::new("mean_diff".into(), p.iter().map(|r| r.mean_diff).collect::<Vec<f64>>()),
        Column::new("ci95".into(), p.iter().map(|r| r.ci95).collect::<Vec<Option<f64>>>()),
        Column::new("significant".into(), p.iter().map(|r| r.significant).collect::<Vec<bool>>()),
    ];
    DataFrame::new(p.len(), columns).context("building the paired-difference table")
}

/// The per-interval time series as a data frame (the content of `timeseries.parquet`).
pub fn timeseries_frame(report: &RunReport) -> Result<DataFrame> {
    let t = &report.timeseries;
    let f = |name: &str, get: fn(&super::model::TimeseriesRow) -> f64| {
        Column::new(name.into(), t.iter().map(get).collect::<Vec<f64>>())
    };
    let columns = vec![
        str_column("policy", t.iter().map(|r| &*r.policy)),
        Column::new("replication".into(), t.iter().map(|r| r.replication).collect::<Vec<u32>>()),
        f("t_start_s", |r| r.t_start_s),
        f("interval_s", |r| r.interval_s),
        f("throughput_rps", |r| r.throughput_rps),
        Column::new("p95_s".into(), t.iter().map(|r| r.p95_s).collect::<Vec<Option<f64>>>()),
        f("error_rate", |r| r.error_rate),
        f("cost_usd", |r| r.cost_usd),
        f("queue_len", |r| r.queue_len),
        Column::new("drain".into(), t.iter().map(|r| r.drain).collect::<Vec<bool>>()),
    ];
    DataFrame::new(t.len(), columns).context("building the time-series table")
}

/// The per-endpoint traffic shares as a data frame (the content of `shares.parquet`).
pub fn shares_frame(report: &RunReport) -> Result<DataFrame> {
    let s = &report.shares;
    let columns = vec![
        str_column("policy", s.iter().map(|r| &*r.policy)),
        Column::new("replication".into(), s.iter().map(|r| r.replication).collect::<Vec<u32>>()),
        Column::new("t_start_s".into(), s.iter().map(|r| r.t_start_s).collect::<Vec<f64>>()),
        str_column("endpoint", s.iter().map(|r| &*r.endpoint)),
        Column::new("share".into(), s.iter().map(|r| r.share).collect::<Vec<f64>>()),
    ];
    DataFrame::new(s.len(), columns).context("building the traffic-share table")
}

/// The latency CDFs in long format (the content of `latency_cdf.parquet`).
pub fn cdf_frame(report: &RunReport) -> Result<DataFrame> {
    let points = report.cdf.iter().flat_map(|c| c.points.iter().map(move |&(x, p)| (c.policy.as_str(), x, p)));
    let n = report.cdf.iter().map(|c| c.points.len()).sum();
    let columns = vec![
        str_column("policy", points.clone().map(|(name, _, _)| name)),
        Column::new("latency_s".into(), points.clone().map(|(_, x, _)| x).collect::<Vec<f64>>()),
        Column::new("cum_prob".into(), points.map(|(_, _, p)| p).collect::<Vec<f64>>()),
    ];
    DataFrame::new(n, columns).context("building the latency CDF table")
}

// ===== encoding =====

fn str_column<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> Column {
    Column::new(name.into(), values.collect::<Vec<&str>>())
}

fn write_csv_and_parquet(df: &mut DataFrame, dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    Ok(vec![write_csv(df, &dir.join(format!("{stem}.csv")))?, write_parquet(df, &dir.join(format!("{stem}.parquet")))?])
}

/// Encodes `df` as CSV (header, comma separator, shortest round-trip floats, empty nulls).
pub fn csv_bytes(df: &mut DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).include_header(true).n_threads(1).finish(df).context("encoding CSV")?;
    Ok(buf)
}

/// Encodes `df` as Parquet (zstd, single-threaded so the bytes do not depend on scheduling).
pub fn parquet_bytes(df: &mut DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .set_parallel(false)
        .finish(df)
        .context("encoding Parquet")?;
    Ok(buf)
}

fn write_csv(df: &mut DataFrame, path: &Path) -> Result<PathBuf> {
    let bytes = csv_bytes(df).with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<PathBuf> {
    let bytes = parquet_bytes(df).with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Estimate, PairedRow, PolicyRow, ShareRow, TimeseriesRow};

    fn report() -> RunReport {
        let row = |name: &str, p95: f64, cost: f64, ci: Option<f64>| PolicyRow {
            policy: name.into(),
            replications: 2,
            requests: Estimate::with_ci(100.0, 1.5),
            success_rate: Estimate::with_ci(0.99, 0.005),
            latency_p95_s: Estimate { mean: p95, ci95: ci },
            cost_per_1k_usd: Estimate::point(cost),
            cost_usd: Estimate::with_ci(0.1 + 0.2, 0.01),
            ..Default::default()
        };
        RunReport {
            scenario: "s".into(),
            seed: 1,
            replications: 2,
            baseline: Some("a".into()),
            rows: vec![
                row("a", 2.0, 1.0, Some(0.25)),
                row("b,with comma", 1.0, 2.0, None),
                row("c", 3.0, 3.0, Some(0.1)),
            ],
            paired: vec![PairedRow::new("b,with comma", "a", "latency_p95_s", -1.0, Some(0.3))],
            timeseries: vec![TimeseriesRow {
                policy: "a".into(),
                replication: 0,
                t_start_s: 0.0,
                interval_s: 60.0,
                throughput_rps: 1.5,
                p95_s: None,
                error_rate: 0.0,
                cost_usd: 0.01,
                queue_len: 2.0,
                drain: false,
            }],
            shares: vec![ShareRow {
                policy: "a".into(),
                replication: 0,
                t_start_s: 0.0,
                endpoint: "e1".into(),
                share: 1.0,
            }],
            ..Default::default()
        }
    }

    fn summary_csv(report: &RunReport) -> String {
        let mut df = summary_frame(report).expect("frame");
        String::from_utf8(csv_bytes(&mut df).expect("csv")).expect("utf8")
    }

    #[test]
    fn summary_has_required_columns_with_ci_columns() {
        let csv = summary_csv(&report());
        let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
        assert_eq!(&header[..2], &["policy", "replications"]);
        for m in metrics(false) {
            let i = header.iter().position(|h| *h == m.column).expect(m.column);
            assert_eq!(header[i + 1], format!("{}_ci95", m.column));
        }
        assert_eq!(header.last(), Some(&"on_pareto_frontier"));
        assert_eq!(header.len(), 3 + 2 * metrics(false).count());
        // Without quality, no quality column.
        assert!(!header.contains(&"quality") && !header.contains(&"cost_per_acceptable"));
    }

    #[test]
    fn quality_columns_follow_the_cost_columns_only_with_quality_on() {
        let mut r = report();
        for row in &mut r.rows {
            row.quality_on = true;
            row.quality = Estimate::with_ci(0.8, 0.01);
            row.cost_per_acceptable = Estimate::point(0.002);
        }
        let csv = summary_csv(&r);
        let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
        let cost = header.iter().position(|h| *h == "cost_per_1k_usd_ci95").expect("col");
        assert_eq!(
            &header[cost + 1..cost + 7],
            &[
                "quality",
                "quality_ci95",
                "mean_score",
                "mean_score_ci95",
                "cost_per_acceptable",
                "cost_per_acceptable_ci95"
            ]
        );
        assert_eq!(header.len(), 3 + 2 * crate::report::METRICS.len());
    }

    #[test]
    fn summary_rows_quote_names_leave_unknown_ci_empty_and_mark_frontier() {
        let csv = summary_csv(&report());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].starts_with("\"b,with comma\",2,100.0,1.5,0.99,0.005,"));
        let header: Vec<&str> = lines[0].split(',').collect();
        let p95_ci = header.iter().position(|h| *h == "latency_p95_s_ci95").expect("col");
        // Line 1 has no quoted comma, so a plain split indexes it correctly.
        let a: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(a[p95_ci], "0.25");
        let cost = header.iter().position(|h| *h == "cost_usd").expect("col");
        assert_eq!(a[cost], "0.30000000000000004", "shortest round-trip float");
        // a (2.0, 1.0) and b (1.0, 2.0) are on the frontier; c (3.0, 3.0) is not.
        assert!(lines[1].ends_with(",true"));
        assert!(lines[2].ends_with(",true"));
        assert!(lines[3].ends_with(",false"));
        // b's p95 CI is unknown: written as an empty field.
        let b_fields = lines[2].replacen("\"b,with comma\"", "b", 1);
        let b: Vec<&str> = b_fields.split(',').collect();
        assert_eq!(b[p95_ci], "");
    }

    #[test]
    fn written_files_are_byte_identical_for_identical_input() {
        let dir_a = tempdir("files-a");
        let dir_b = tempdir("files-b");
        for dir in [&dir_a, &dir_b] {
            write_summary(&report(), dir).expect("summary");
            write_paired(&report(), dir).expect("paired");
            write_timeseries(&report(), dir).expect("timeseries");
            write_cdf(&report(), dir).expect("cdf");
        }
        for name in [
            "summary.csv",
            "summary.parquet",
            "paired.csv",
            "paired.parquet",
            "timeseries.parquet",
            "shares.parquet",
            "latency_cdf.parquet",
        ] {
            let a = std::fs::read(dir_a.join(name)).expect("read a");
            let b = std::fs::read(dir_b.join(name)).expect("read b");
            assert!(!a.is_empty(), "{name} empty");
            assert_eq!(a, b, "{name} differs");
        }
        let paired = std::fs::read_to_string(dir_a.join("paired.csv")).expect("read");
        assert_eq!(
            paired,
            "policy,baseline,metric,mean_diff,ci95,significant\n\"b,with comma\",a,latency_p95_s,-1.0,0.3,true\n"
        );
        let _ = std::fs::remove_dir_all(&dir_a);
        let _ = std::fs::remove_dir_all(&dir_b);
    }

    #[test]
    fn parquet_round_trips_nulls() {
        use polars::prelude::{ParquetReader, SerReader};
        let mut df = timeseries_frame(&report()).expect("frame");
        let bytes = parquet_bytes(&mut df).expect("parquet");
        let back = ParquetReader::new(std::io::Cursor::new(bytes)).finish().expect("read back");
        assert_eq!(back.height(), 1);
        let p95 = back.column("p95_s").expect("p95 column");
        assert_eq!(p95.null_count(), 1);
        assert!(back.equals_missing(&df));
    }

    #[test]
    fn missing_directory_error_names_the_file() {
        let dir = std::env::temp_dir().join("routesim-report-does-not-exist/nested");
        let err = write_summary(&report(), &dir).expect_err("must fail");
        let msg = format!("{err:#}");
        assert!(msg.contains("summary.csv"), "{msg}");
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("routesim-report-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }
}
