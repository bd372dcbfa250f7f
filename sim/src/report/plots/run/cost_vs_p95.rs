//! `cost_vs_p95`: cost per 1k requests against p95 latency, one point per policy with 95% CI error bars in both
//! directions, the Pareto frontier as a step line. With quality on, the run's frontier has three metrics
//! ([`RunReport::frontier`]): the step line is its part no member beats on cost and p95 alone (the frontier
//! of the plane, as before), and every policy on it is ringed, also those dearer or slower that answer better.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::super::draw::{
    DrawResult, FONT, LEGEND_SIZE, draw_ci_cross, draw_legend_and_ci_note, draw_no_data, draw_xy_mesh, finite,
    finite_range, frontier_steps, padded, titled,
};
use super::{policy_colour, title};
use crate::report::model::{Estimate, RunReport};
use crate::report::pareto::pareto_frontier;

/// Draws `cost_vs_p95` of `report` on `root`.
pub(super) fn draw_cost_vs_p95<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let area = titled(root, title("cost_vs_p95"))?;
    // (policy, p95, cost per 1k) with finite values only.
    let points: Vec<(&str, Estimate, Estimate)> = report
        .rows
        .iter()
        .filter_map(|r| Some((r.policy.as_str(), finite(r.latency_p95_s)?, finite(r.cost_per_1k_usd)?)))
        .collect();
    let (Some(xr), Some(yr)) = (
        finite_range(points.iter().flat_map(|(_, x, _)| [x.lower(), x.upper()])),
        finite_range(points.iter().flat_map(|(_, _, y)| [y.lower(), y.upper()])),
    ) else {
        return draw_no_data(&area, "policy results");
    };
    let (x0, x1) = padded(xr.0, xr.1, 0.12);
    let (y0, y1) = padded(yr.0, yr.1, 0.15);
    let (x0, y0) = (if xr.0 >= 0.0 { x0.max(0.0) } else { x0 }, if yr.0 >= 0.0 { y0.max(0.0) } else { y0 });
    // Head room above the highest point for the legend (top left), so that it never hides a point.
    let legend_rows = points.len() as f64 + 1.0;
    let y1 = y1 + (y1 - y0) * (0.06 * legend_rows).min(0.9);

    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(85)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    draw_xy_mesh(&mut chart, "p95 end-to-end latency (s)", "cost per 1k requests (USD)")?;

    // Pareto frontier as a step line: right along the cost of one point, then down to the next.
    let coords: Vec<(f64, f64)> = points.iter().map(|(_, x, y)| (x.mean, y.mean)).collect();
    let on_frontier: Vec<(f64, f64)> = pareto_frontier(&coords).into_iter().map(|i| coords[i]).collect();
    let steps = frontier_steps(&on_frontier);
    let frontier_style = BLACK.mix(0.55).stroke_width(2);
    let quality = report.quality_on();
    chart
        .draw_series(DashedLineSeries::new(steps, 10, 6, frontier_style))?
        .label(if quality { "Pareto frontier of cost and p95" } else { "Pareto frontier" })
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], frontier_style));
    if quality {
        let names: Vec<&str> = report.frontier().into_iter().map(|i| report.rows[i].policy.as_str()).collect();
        let rings = points
            .iter()
            .filter(|(name, _, _)| names.contains(name))
            .map(|(_, x, y)| EmptyElement::at((x.mean, y.mean)) + Circle::new((0, 0), 12, BLACK.stroke_width(2)));
        chart
            .draw_series(rings)?
            .label("on the frontier of cost, p95 and quality")
            .legend(move |(x, y)| Circle::new((x + 12, y), 7, BLACK.stroke_width(2)));
    }

    for (name, x, y) in &points {
        let col = policy_colour(report, name);
        draw_ci_cross(&mut chart, *x, *y, col.stroke_width(2), 10)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x.mean, y.mean))
                    + Circle::new((0, 0), 7, col.filled())
                    + Circle::new((0, 0), 7, BLACK.stroke_width(1))
                    + Text::new(name.to_string(), (10, -24), (FONT, LEGEND_SIZE).into_font().color(&BLACK)),
            ))?
            .label(*name)
            .legend(move |(x, y)| Circle::new((x + 12, y), 6, col.filled()));
    }
    draw_legend_and_ci_note(&mut chart, &area)
}
