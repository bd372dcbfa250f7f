//! The plots of a run ([`RunReport`]), one module each: `cdf` (`latency_cdf`), `cost_vs_p95`,
//! `timeseries` and `bars` (`cost_bars`).
//!
//! - `latency_cdf`: end-to-end latency CDF per policy (log x axis when latencies span decades).
//! - `cost_vs_p95`: cost per 1k requests against p95 latency, one point per policy with 95% CI error
//!   bars in both directions, the Pareto frontier as a step line.
//! - `timeseries`: per policy, the per-endpoint share of attempts over time (stacked) next to p95
//!   latency over time, for the first replication: shows herding, quota shifts and failover.
//! - `cost_bars`: total cost and error rate per policy as horizontal bars with 95% CI.

mod bars;
mod cdf;
mod cost_vs_p95;
mod timeseries;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use super::draw::{PLOT_SIZE, colour, ensure_font, render_both};
use crate::report::model::RunReport;
use bars::{cost_bars_size, draw_cost_bars};
use cdf::draw_latency_cdf;
use cost_vs_p95::draw_cost_vs_p95;
use timeseries::{draw_timeseries, timeseries_size};

/// Writes every plot into `dir` (which must exist) and returns the paths: for each of
/// `latency_cdf`, `cost_vs_p95`, `timeseries`, `cost_bars`, the PNG then the SVG.
pub fn write_plots(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    let mut paths = Vec::with_capacity(8);
    paths.extend(render_both!(dir, "latency_cdf", PLOT_SIZE, draw_latency_cdf, report));
    paths.extend(render_both!(dir, "cost_vs_p95", PLOT_SIZE, draw_cost_vs_p95, report));
    paths.extend(render_both!(dir, "timeseries", timeseries_size(report), draw_timeseries, report));
    paths.extend(render_both!(dir, "cost_bars", cost_bars_size(report), draw_cost_bars, report));
    Ok(paths)
}

/// Title of each plot (also checked by the tests in the SVG output).
pub(crate) const TITLES: [(&str, &str); 4] = [
    ("latency_cdf", "End-to-end latency CDF per policy"),
    ("cost_vs_p95", "Cost per 1k requests vs p95 latency"),
    ("timeseries", "Traffic share per endpoint and p95 latency over time"),
    ("cost_bars", "Cost and error rate per policy"),
];

/// The title of the plot `name` (see [`TITLES`]).
fn title(name: &str) -> &'static str {
    TITLES.iter().find(|(n, _)| *n == name).map_or("", |(_, t)| t)
}

/// The colour of `policy`, by its position in [`RunReport::policy_names`].
fn policy_colour(report: &RunReport, policy: &str) -> RGBColor {
    let index = report.policy_names().iter().position(|p| *p == policy).unwrap_or(0);
    colour(index)
}

#[cfg(test)]
mod tests {
    use super::timeseries::SHARE_COLUMNS;
    use super::*;
    use crate::report::model::{CdfSeries, Estimate, PolicyRow, ShareRow, TimeseriesRow};

    /// A report with three policies, a latency CDF spanning decades, an outage-like share shift.
    pub(crate) fn synthetic_report() -> RunReport {
        let policies = ["round-robin", "least-latency", "hybrid"];
        let rows = policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let f = i as f64;
                PolicyRow {
                    policy: p.to_string(),
                    replications: 5,
                    requests: Estimate::with_ci(72_000.0, 150.0),
                    success_rate: Estimate::with_ci(0.99 - 0.01 * f, 0.002 + 0.001 * f),
                    latency_p50_s: Estimate::with_ci(1.2 - 0.2 * f, 0.05),
                    latency_p95_s: Estimate::with_ci(4.0 - 0.9 * f * f + 0.5 * f, 0.2 + 0.1 * f),
                    latency_p99_s: Estimate::with_ci(8.0 - f, 0.4),
                    ttft_p50_s: Estimate::with_ci(0.45, 0.01),
                    cost_usd: Estimate::with_ci(30.0 + 12.0 * f, 1.5),
                    cost_per_1k_usd: Estimate::with_ci(0.42 + 0.1 * f - 0.05 * f * f, 0.02),
                    ..Default::default()
                }
            })
            .collect();
        let cdf = policies
            .iter()
            .enumerate()
            .map(|(i, p)| CdfSeries {
                policy: p.to_string(),
                points: (0..=200)
                    .map(|k| {
                        let q = k as f64 / 200.0;
                        // Log-logistic-ish quantile curve, shifted per policy.
                        let x = 0.05 * (1.0 + i as f64 * 0.3) * (q / (1.0 - q + 1e-3)).powf(0.8) + 0.05;
                        (x, q)
                    })
                    .collect(),
            })
            .collect();
        let mut timeseries = Vec::new();
        let mut shares = Vec::new();
        let endpoints = ["gpt-4o-mini", "claude-haiku", "llama-70b"];
        for (i, p) in policies.iter().enumerate() {
            for rep in 0..2u32 {
                for k in 0..60 {
                    let t = k as f64 * 60.0;
                    let outage = (20..24).contains(&k);
                    timeseries.push(TimeseriesRow {
                        policy: (*p).into(),
                        replication: rep,
                        t_start_s: t,
                        interval_s: 60.0,
                        throughput_rps: 20.0,
                        p95_s: if k == 40 && i == 0 {
                            None
                        } else {
                            Some(2.0 + if outage { 3.0 - i as f64 } else { 0.2 * ((k % 7) as f64) })
                        },
                        error_rate: if outage { 0.05 } else { 0.0 },
                        cost_usd: 0.5,
                        queue_len: 1.0,
                        drain: k >= 58,
                    });
                    let base = match i {
                        0 => [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
                        1 => {
                            // Herding: traffic swings between endpoints.
                            if (k / 5) % 2 == 0 { [0.7, 0.2, 0.1] } else { [0.1, 0.7, 0.2] }
                        }
                        _ => [0.5, 0.3, 0.2],
                    };
                    let s = if outage { [0.0, base[1] + base[0] / 2.0, base[2] + base[0] / 2.0] } else { base };
                    for (e, share) in endpoints.iter().zip(s) {
                        shares.push(ShareRow {
                            policy: (*p).into(),
                            replication: rep,
                            t_start_s: t,
                            endpoint: (*e).into(),
                            share,
                        });
                    }
                }
            }
        }
        RunReport {
            scenario: "synthetic".into(),
            seed: 7,
            replications: 5,
            baseline: Some("round-robin".into()),
            rows,
            paired: Vec::new(),
            per_replication: Vec::new(),
            cdf,
            timeseries,
            shares,
            classes: Vec::new(),
            class_quality: Vec::new(),
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("routesim-plots-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    #[test]
    fn every_plot_renders_png_and_svg_with_its_title() {
        let dir = temp_dir("all");
        let paths = write_plots(&synthetic_report(), &dir).expect("plots render");
        assert_eq!(paths.len(), 2 * TITLES.len());
        for (name, title) in TITLES {
            let png = std::fs::read(dir.join(format!("{name}.png"))).expect("png");
            assert!(png.len() > 1000, "{name}.png too small");
            assert_eq!(&png[1..4], b"PNG");
            let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).expect("svg");
            assert!(svg.contains(title), "{name}.svg lacks its title");
        }
        let svg = std::fs::read_to_string(dir.join("cost_vs_p95.svg")).expect("svg");
        assert!(svg.contains("Pareto frontier") && svg.contains("least-latency"));
        if std::env::var_os("ROUTESIM_KEEP_PLOTS").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn empty_report_renders_placeholders_instead_of_failing() {
        let dir = temp_dir("empty");
        let paths = write_plots(&RunReport::default(), &dir).expect("plots render");
        assert_eq!(paths.len(), 8);
        let svg = std::fs::read_to_string(dir.join("latency_cdf.svg")).expect("svg");
        assert!(svg.contains("no latency data"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn non_finite_values_do_not_break_rendering() {
        let mut report = synthetic_report();
        report.rows[0].latency_p95_s = Estimate::point(f64::NAN);
        report.rows[1].cost_usd = Estimate::with_ci(f64::INFINITY, 1.0);
        report.cdf[0].points.push((f64::NAN, 0.5));
        report.shares[0].share = f64::NAN;
        let dir = temp_dir("nonfinite");
        write_plots(&report, &dir).expect("plots render");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_long_series_draws_a_bounded_share_panel_of_merged_columns() {
        // 12,000 intervals of one policy: drawn one column each, the SVG would hold 36,000 share rectangles.
        let endpoints = ["a", "b", "c"];
        let mut report = RunReport::default();
        for k in 0..12_000u32 {
            let t = k as f64 * 60.0;
            report.timeseries.push(TimeseriesRow {
                policy: "p".into(),
                t_start_s: t,
                interval_s: 60.0,
                p95_s: Some(1.0),
                ..Default::default()
            });
            // Alternating intervals: all on a, then all on b; c never.
            let on = if k % 2 == 0 { 0 } else { 1 };
            for (e, ep) in endpoints.iter().enumerate() {
                let share = if e == on { 1.0 } else { 0.0 };
                report.shares.push(ShareRow {
                    policy: "p".into(),
                    t_start_s: t,
                    endpoint: (*ep).into(),
                    share,
                    ..Default::default()
                });
            }
        }
        let dir = temp_dir("long");
        write_plots(&report, &dir).expect("plots render");
        let svg = std::fs::read_to_string(dir.join("timeseries.svg")).expect("svg");
        let rects = svg.matches("<rect").count();
        assert!(rects <= 3 * SHARE_COLUMNS + 200, "{rects} rectangles");
        // Grouped columns of two intervals each hold half a and half b: two rectangles per column.
        assert!(rects >= 2 * SHARE_COLUMNS, "{rects} rectangles");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
