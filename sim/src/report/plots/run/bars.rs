//! `cost_bars`: total cost and error rate per policy as horizontal bars with 95% CI.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::super::draw::{DESC_SIZE, DrawResult, FONT, LABEL_SIZE, draw_no_data, finite, finite_range, tick, titled};
use super::{policy_colour, title};
use crate::report::model::{Estimate, RunReport};

/// The size of the `cost_bars` figure: taller with more policies.
pub(super) fn cost_bars_size(report: &RunReport) -> (u32, u32) {
    let n = report.rows.len() as u32;
    (1200, (160 + 60 * n).max(420))
}

/// Draws `cost_bars` of `report` on `root`.
pub(super) fn draw_cost_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &RunReport) -> DrawResult<DB> {
    let area = titled(root, title("cost_bars"))?;
    if report.rows.is_empty() {
        return draw_no_data(&area, "policy results");
    }
    let names: Vec<&str> = report.rows.iter().map(|r| r.policy.as_str()).collect();
    let font = TextStyle::from((FONT, LABEL_SIZE).into_font());
    let label_width = names
        .iter()
        .filter_map(|n| area.estimate_text_size(n, &font).ok())
        .map(|(w, _)| w)
        .max()
        .unwrap_or(60)
        .clamp(40, 300)
        + 20;
    let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
    let cost: Vec<Estimate> = report.rows.iter().map(|r| r.cost_usd).collect();
    let errors: Vec<Estimate> = report
        .rows
        .iter()
        .map(|r| {
            let e = r.error_rate();
            Estimate { mean: e.mean * 100.0, ci95: e.ci95.map(|h| h * 100.0) }
        })
        .collect();
    let cols: Vec<RGBColor> = names.iter().map(|n| policy_colour(report, n)).collect();
    bar_panel(&left, "Total cost", "total cost (USD)", &names, &cost, &cols, label_width)?;
    bar_panel(&right, "Error rate", "failed requests (% of requests)", &names, &errors, &cols, label_width)
}

fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    x_desc: &str,
    names: &[&str],
    values: &[Estimate],
    cols: &[RGBColor],
    label_width: u32,
) -> DrawResult<DB> {
    let n = names.len();
    // Policy i sits at y = n - 1 - i so the first policy is at the top.
    let y_of = |i: usize| (n - 1 - i) as f64;
    let vals: Vec<Option<Estimate>> = values.iter().map(|v| finite(*v)).collect();
    let hi = finite_range(vals.iter().flatten().map(|v| v.upper())).map_or(1.0, |(_, hi)| hi).max(0.0);
    let lo = finite_range(vals.iter().flatten().map(|v| v.lower())).map_or(0.0, |(lo, _)| lo).min(0.0);
    // Head room on the right for the value labels.
    let x1 = if hi > 0.0 { hi * 1.3 } else { 1.0 };
    let x0 = if lo < 0.0 { lo * 1.3 } else { 0.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, DESC_SIZE + 2))
        .margin(15)
        .margin_right(30)
        .x_label_area_size(55)
        .y_label_area_size(label_width)
        .build_cartesian_2d(x0..x1, -0.6..n as f64 - 0.4)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&|x| tick(*x))
        .y_labels(0)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, DESC_SIZE))
        .disable_y_mesh()
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;
    // Policy names left of the axis, at each bar's centre (in the parent area's pixel coordinates).
    let base = area.get_base_pixel();
    for (i, name) in names.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(x0, y_of(i)));
        area.draw(&Text::new(
            name.to_string(),
            (px - base.0 - 8, py - base.1),
            (FONT, LABEL_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    for (i, v) in vals.iter().enumerate() {
        let Some(v) = v else { continue };
        let y = y_of(i);
        let col = cols.get(i).copied().unwrap_or(BLACK);
        chart.draw_series([Rectangle::new([(0.0, y - 0.32), (v.mean, y + 0.32)], col.filled())])?;
        if v.ci95.is_some_and(|h| h > 0.0) {
            chart.draw_series([ErrorBar::new_horizontal(
                y,
                v.lower(),
                v.mean,
                v.upper(),
                BLACK.stroke_width(2),
                12,
            )])?;
        }
        let text = match v.ci95.filter(|h| *h > 0.0) {
            Some(h) => format!("{} ± {}", tick(v.mean), tick(h)),
            None => tick(v.mean),
        };
        chart.draw_series(std::iter::once(
            EmptyElement::at((v.upper().max(v.mean).max(0.0), y))
                + Text::new(
                    text,
                    (8, 0),
                    (FONT, LABEL_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
                ),
        ))?;
    }
    Ok(())
}
