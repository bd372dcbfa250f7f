//! The tuning frontier (`routesim tune`): every candidate, the Pareto frontier, the baselines and the chosen
//! point.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::draw::{
    DrawResult, FONT, LEGEND_SIZE, PLOT_SIZE, colour, draw_ci_cross, draw_legend_and_ci_note, draw_no_data,
    draw_xy_mesh, ensure_font, finite, finite_range, frontier_steps, padded, render_both, titled,
};
use crate::report::model::Estimate;

/// What the `pareto` plot of `routesim tune` shows: every candidate, the frontier, the baselines and the
/// chosen point, in the plane of the two objectives (`x` is drawn horizontally).
#[derive(Debug, Clone, Default)]
pub struct FrontierPlot {
    /// Axis label of `x`, with unit.
    pub x_label: String,
    /// Axis label of `y`, with unit.
    pub y_label: String,
    /// Every fully evaluated candidate: `(x, y, meets the constraints)`.
    pub candidates: Vec<(f64, f64, bool)>,
    /// Candidates dropped early, at their partial estimates.
    pub pruned: Vec<(f64, f64)>,
    /// The frontier, by ascending `x`.
    pub frontier: Vec<(f64, f64)>,
    /// The scenario's policies with 95% intervals.
    pub baselines: Vec<(String, Estimate, Estimate)>,
    /// The chosen candidate.
    pub chosen: Option<(String, Estimate, Estimate)>,
    /// Upper bounds on `x` and `y` from the constraints, drawn as lines.
    pub x_limit: Option<f64>,
    /// See `x_limit`.
    pub y_limit: Option<f64>,
}

/// Writes `pareto.png` and `pareto.svg` into `dir` and returns their paths.
pub fn write_frontier_plot(plot: &FrontierPlot, dir: &Path) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    Ok(render_both!(dir, "pareto", PLOT_SIZE, draw_frontier, plot))
}

fn draw_frontier<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &FrontierPlot) -> DrawResult<DB> {
    let area = titled(root, "Tuning: every candidate, the Pareto frontier and the baselines")?;
    let xs = plot
        .candidates
        .iter()
        .map(|p| p.0)
        .chain(plot.pruned.iter().map(|p| p.0))
        .chain(plot.baselines.iter().flat_map(|(_, x, _)| [x.lower(), x.upper()]))
        .chain(plot.x_limit);
    let ys = plot
        .candidates
        .iter()
        .map(|p| p.1)
        .chain(plot.pruned.iter().map(|p| p.1))
        .chain(plot.baselines.iter().flat_map(|(_, _, y)| [y.lower(), y.upper()]))
        .chain(plot.y_limit);
    let (Some(xr), Some(yr)) = (finite_range(xs), finite_range(ys)) else {
        return draw_no_data(&area, "candidates");
    };
    let (x0, x1) = padded(xr.0, xr.1, 0.08);
    let (y0, y1) = padded(yr.0, yr.1, 0.1);
    let (x0, y0) = (if xr.0 >= 0.0 { x0.max(0.0) } else { x0 }, if yr.0 >= 0.0 { y0.max(0.0) } else { y0 });
    // Head room for the legend (top left: high cost at low latency is dominated, so rarely occupied).
    let legend_rows = plot.baselines.len() as f64 + 6.0;
    let y1 = y1 + (y1 - y0) * (0.045 * legend_rows).min(0.9);
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(85)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    draw_xy_mesh(&mut chart, &plot.x_label, &plot.y_label)?;

    let limit_style = RGBColor(200, 40, 40).mix(0.7).stroke_width(2);
    let mut limit_labelled = false;
    for (from, to) in
        [plot.x_limit.map(|x| ((x, y0), (x, y1))), plot.y_limit.map(|y| ((x0, y), (x1, y)))].into_iter().flatten()
    {
        let s = chart.draw_series(DashedLineSeries::new([from, to], 6, 6, limit_style))?;
        if !limit_labelled {
            s.label("constraint").legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], limit_style));
            limit_labelled = true;
        }
    }
    let grey = BLACK.mix(0.35);
    chart
        .draw_series(
            plot.pruned
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| Cross::new((x, y), 3, BLACK.mix(0.2).stroke_width(1))),
        )?
        .label("dropped early")
        .legend(move |(x, y)| Cross::new((x + 12, y), 4, BLACK.mix(0.3).stroke_width(1)));
    chart
        .draw_series(plot.candidates.iter().filter(|p| p.2).map(|&(x, y, _)| Circle::new((x, y), 3, grey.filled())))?
        .label("candidate meeting the constraints")
        .legend(move |(x, y)| Circle::new((x + 12, y), 4, grey.filled()));
    chart
        .draw_series(
            plot.candidates.iter().filter(|p| !p.2).map(|&(x, y, _)| Circle::new((x, y), 3, grey.stroke_width(1))),
        )?
        .label("candidate violating a constraint")
        .legend(move |(x, y)| Circle::new((x + 12, y), 4, grey.stroke_width(1)));

    let frontier_style = BLACK.mix(0.7).stroke_width(2);
    chart
        .draw_series(LineSeries::new(frontier_steps(&plot.frontier), frontier_style))?
        .label("Pareto frontier")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], frontier_style));

    for (k, (name, x, y)) in plot.baselines.iter().enumerate() {
        let (Some(x), Some(y)) = (finite(*x), finite(*y)) else { continue };
        let col = colour(k);
        draw_ci_cross(&mut chart, x, y, col.stroke_width(2), 8)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x.mean, y.mean))
                    + Rectangle::new([(-6, -6), (6, 6)], col.filled())
                    + Rectangle::new([(-6, -6), (6, 6)], BLACK.stroke_width(1))
                    + Text::new(name.clone(), (10, -22), (FONT, LEGEND_SIZE).into_font().color(&BLACK)),
            ))?
            .label(format!("baseline {name}"))
            .legend(move |(x, y)| Rectangle::new([(x + 6, y - 5), (x + 16, y + 5)], col.filled()));
    }
    if let Some((name, x, y)) = &plot.chosen
        && let (Some(x), Some(y)) = (finite(*x), finite(*y))
    {
        let gold = RGBColor(230, 170, 0);
        draw_ci_cross(&mut chart, x, y, BLACK.stroke_width(2), 8)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x.mean, y.mean))
                    + TriangleMarker::new((0, 0), 11, gold.filled())
                    + TriangleMarker::new((0, 0), 11, BLACK.stroke_width(1))
                    + Text::new(format!("chosen: {name}"), (12, 8), (FONT, LEGEND_SIZE).into_font().color(&BLACK)),
            ))?
            .label("chosen")
            .legend(move |(x, y)| TriangleMarker::new((x + 12, y), 7, gold.filled()));
    }
    draw_legend_and_ci_note(&mut chart, &area)
}
