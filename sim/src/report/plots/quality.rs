//! `cost_vs_quality` (only with quality on): answer quality against cost per 1k requests, one point per
//! policy with 95% intervals in both directions, labelled with its p95 latency, and the non-decreasing
//! convex hull of the points (RouterBench's frontier, see [`crate::report::aiq`]) as a dashed line with its
//! AIQ. `routesim run` draws its policies; `routesim tune` its baselines, with every candidate in grey.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{
    DrawResult, FONT, LEGEND_SIZE, PLOT_SIZE, colour, draw_ci_cross, draw_no_data, draw_series_legend, draw_xy_mesh,
    ensure_font, finite, finite_range, padded, render_both, titled,
};
use crate::report::aiq::{aiq, nondecreasing_hull};
use crate::report::model::{Estimate, PolicyRow, RunReport};

/// Title of the plot (also checked by the tests in the SVG output).
pub const QUALITY_PLOT_TITLE: &str = "Answer quality vs cost per 1k requests";

/// One labelled point of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityPoint {
    /// Policy (or candidate) name.
    pub name: String,
    /// Cost per 1k requests (USD).
    pub cost: Estimate,
    /// Quality: acceptable answers over answered requests, in `[0, 1]`.
    pub quality: Estimate,
    /// p95 end-to-end latency (s), written next to the name.
    pub p95_s: f64,
    /// Index of its colour in the shared palette (a policy's position in the report).
    pub colour: usize,
}

/// What `cost_vs_quality` shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityPlot {
    /// Labelled points (policies, baselines).
    pub points: Vec<QualityPoint>,
    /// Unlabelled points drawn in grey (a tuning's candidates): `(cost, quality)`.
    pub others: Vec<(f64, f64)>,
    /// Vertices of the non-decreasing convex hull of every point, by ascending cost.
    pub hull: Vec<(f64, f64)>,
    /// The hull's AIQ over the points' cost range.
    pub aiq: Option<f64>,
}

impl QualityPlot {
    /// The plot of labelled `points` and grey `others`, with the hull and AIQ of all of them.
    pub fn new(points: Vec<QualityPoint>, others: Vec<(f64, f64)>) -> Self {
        let all: Vec<(f64, f64)> =
            points.iter().map(|p| (p.cost.mean, p.quality.mean)).chain(others.iter().copied()).collect();
        Self { hull: nondecreasing_hull(&all), aiq: aiq(&all), points, others }
    }

    /// The plot of a run's policies, coloured as in the other plots.
    pub fn of_report(report: &RunReport) -> Self {
        let names = report.policy_names();
        let points =
            report.rows.iter().map(|r| point(r, names.iter().position(|n| *n == r.policy).unwrap_or(0))).collect();
        Self::new(points, Vec::new())
    }
}

/// The point of one summary row, with colour `colour`.
pub fn point(row: &PolicyRow, colour: usize) -> QualityPoint {
    QualityPoint {
        name: row.policy.clone(),
        cost: row.cost_per_1k_usd,
        quality: row.quality,
        p95_s: row.latency_p95_s.mean,
        colour,
    }
}

/// Writes `cost_vs_quality.png` and `cost_vs_quality.svg` into `dir` and returns their paths.
pub fn write_quality_plot(plot: &QualityPlot, dir: &Path) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    Ok(render_both!(dir, "cost_vs_quality", PLOT_SIZE, draw_quality, plot))
}

/// `p95 1.23 s` for a label (nothing when unknown).
fn p95_label(p95_s: f64) -> String {
    if p95_s.is_finite() { format!(" · p95 {} s", super::draw::tick(p95_s)) } else { String::new() }
}

fn draw_quality<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &QualityPlot) -> DrawResult<DB> {
    let area = titled(root, QUALITY_PLOT_TITLE)?;
    let labelled: Vec<(&QualityPoint, Estimate, Estimate)> =
        plot.points.iter().filter_map(|p| Some((p, finite(p.cost)?, finite(p.quality)?))).collect();
    let xs = labelled.iter().flat_map(|(_, x, _)| [x.lower(), x.upper()]).chain(plot.others.iter().map(|p| p.0));
    let ys = labelled.iter().flat_map(|(_, _, y)| [y.lower(), y.upper()]).chain(plot.others.iter().map(|p| p.1));
    let (Some(xr), Some(yr)) = (finite_range(xs), finite_range(ys)) else {
        return draw_no_data(&area, "quality results");
    };
    let (x0, x1) = padded(xr.0, xr.1, 0.12);
    // Room right of the dearest point for its label (name and p95).
    let x1 = x1 + (x1 - x0) * 0.18;
    let (y0, y1) = padded(yr.0, yr.1, 0.15);
    let x0 = if xr.0 >= 0.0 { x0.max(0.0) } else { x0 };
    // Room below the lowest point for the legend (lower right: low quality at high cost is dominated).
    let legend_rows = labelled.len() as f64 + 2.0;
    let y0 = (y0 - (y1 - y0) * (0.06 * legend_rows).min(0.9)).max(if yr.0 >= 0.0 { 0.0 } else { f64::MIN });
    let y1 = if yr.1 <= 1.0 { y1.min(1.0) } else { y1 };

    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(85)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    draw_xy_mesh(&mut chart, "cost per 1k requests (USD)", "quality (acceptable answers / answered)")?;

    if !plot.others.is_empty() {
        let grey = BLACK.mix(0.3);
        chart
            .draw_series(
                plot.others
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(|&(x, y)| Circle::new((x, y), 3, grey.filled())),
            )?
            .label("candidate")
            .legend(move |(x, y)| Circle::new((x + 12, y), 4, grey.filled()));
    }
    if let Some(&last) = plot.hull.last() {
        // The hull, then flat to the dearest point: what mixing the points can reach at each cost.
        let mut line = plot.hull.clone();
        if last.0 < xr.1 {
            line.push((xr.1, last.1));
        }
        let style = BLACK.mix(0.55).stroke_width(2);
        let label = match plot.aiq {
            Some(a) => format!("non-decreasing convex hull (AIQ {})", super::draw::tick(a)),
            None => "non-decreasing convex hull".to_string(),
        };
        chart
            .draw_series(DashedLineSeries::new(line, 10, 6, style))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
    }
    for (p, x, y) in &labelled {
        let col = colour(p.colour);
        draw_ci_cross(&mut chart, *x, *y, col.stroke_width(2), 10)?;
        let text = format!("{}{}", p.name, p95_label(p.p95_s));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x.mean, y.mean))
                    + Circle::new((0, 0), 7, col.filled())
                    + Circle::new((0, 0), 7, BLACK.stroke_width(1))
                    + Text::new(text, (10, -24), (FONT, LEGEND_SIZE).into_font().color(&BLACK)),
            ))?
            .label(p.name.clone())
            .legend(move |(x, y)| Circle::new((x + 12, y), 6, col.filled()));
    }
    draw_series_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    let (w, _) = area.dim_in_pixel();
    area.draw(&Text::new(
        "error bars: 95% CI over replications; labels: p95 latency",
        (w as i32 - 20, 4),
        (FONT, 13).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Right, VPos::Top)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, cost: f64, quality: f64, p95: f64) -> PolicyRow {
        PolicyRow {
            policy: name.into(),
            replications: 3,
            cost_per_1k_usd: Estimate::with_ci(cost, 0.05),
            quality: Estimate::with_ci(quality, 0.01),
            latency_p95_s: Estimate::with_ci(p95, 0.1),
            quality_on: true,
            ..Default::default()
        }
    }

    #[test]
    fn the_plot_carries_the_hull_the_aiq_and_a_label_per_policy() {
        let report = RunReport {
            rows: vec![
                row("weak", 0.5, 0.6, 1.2),
                row("threshold", 1.0, 0.7, 1.9),
                row("mixed-badly", 1.5, 0.65, 2.5),
                row("strong", 2.5, 0.9, 3.4),
            ],
            ..Default::default()
        };
        let plot = QualityPlot::of_report(&report);
        // (1.5, 0.65) lies below the chord from (1, 0.7) to (2.5, 0.9).
        assert_eq!(plot.hull, vec![(0.5, 0.6), (1.0, 0.7), (2.5, 0.9)]);
        // 0.5 * 0.65 + 1.5 * 0.8 = 1.525 over a range of 2.
        assert!((plot.aiq.unwrap() - 0.7625).abs() < 1e-12);
        assert_eq!(plot.points[2].colour, 2);
        let dir = std::env::temp_dir().join(format!("routesim-quality-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = write_quality_plot(&plot, &dir).unwrap();
        assert_eq!(paths.len(), 2);
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        for needle in [QUALITY_PLOT_TITLE, "threshold · p95 1.9 s", "AIQ 0.7625", "quality (acceptable"] {
            assert!(svg.contains(needle), "{needle} missing from the SVG");
        }
        assert!(std::fs::metadata(&paths[0]).unwrap().len() > 1000);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_finite_point_says_so_instead_of_failing() {
        let plot = QualityPlot::new(
            vec![QualityPoint {
                name: "p".into(),
                cost: Estimate::point(f64::NAN),
                quality: Estimate::point(0.5),
                p95_s: 1.0,
                colour: 0,
            }],
            Vec::new(),
        );
        let dir = std::env::temp_dir().join(format!("routesim-quality-plot-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = write_quality_plot(&plot, &dir).unwrap();
        assert!(std::fs::read_to_string(&paths[1]).unwrap().contains("no quality results"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
