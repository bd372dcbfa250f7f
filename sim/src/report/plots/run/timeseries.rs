//! `timeseries`: per policy, the per-endpoint share of attempts over time (stacked) next to p95 latency over
//! time, for the first replication.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::super::draw::{
    DESC_SIZE, DrawResult, FONT, LABEL_SIZE, LEGEND_SIZE, colour, draw_no_data, finite_range, tick, titled,
};
use super::{policy_colour, title};
use crate::report::model::{RunReport, ShareRow, TimeseriesRow};

/// Height of one policy's row in the time-series figure, pixels.
const TS_ROW_HEIGHT: u32 = 270;
/// Height of the title plus the endpoint legend strip, pixels.
const TS_HEADER: u32 = 100;

/// One policy's data for the first replication it has.
struct PolicySeries<'a> {
    policy: &'a str,
    replication: u32,
    ts: Vec<&'a TimeseriesRow>,
    shares: Vec<&'a ShareRow>,
}

fn timeseries_data(report: &RunReport) -> Vec<PolicySeries<'_>> {
    let mut out = Vec::new();
    for policy in report.policy_names() {
        let reps = report
            .timeseries
            .iter()
            .filter(|t| &*t.policy == policy)
            .map(|t| t.replication)
            .chain(report.shares.iter().filter(|s| &*s.policy == policy).map(|s| s.replication));
        let Some(replication) = reps.min() else {
            continue;
        };
        let mut ts: Vec<&TimeseriesRow> =
            report.timeseries.iter().filter(|t| &*t.policy == policy && t.replication == replication).collect();
        ts.sort_by(|a, b| a.t_start_s.total_cmp(&b.t_start_s));
        let shares = report.shares.iter().filter(|s| &*s.policy == policy && s.replication == replication).collect();
        out.push(PolicySeries { policy, replication, ts, shares });
    }
    out
}

/// The size of the `timeseries` figure: one row per policy below the header.
pub(super) fn timeseries_size(report: &RunReport) -> (u32, u32) {
    let n = timeseries_data(report).len().max(1) as u32;
    (1200, TS_HEADER + n * TS_ROW_HEIGHT)
}

/// Endpoints in order of first appearance.
fn endpoints(report: &RunReport) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in &report.shares {
        if !out.contains(&&*s.endpoint) {
            out.push(&s.endpoint);
        }
    }
    out
}

/// Time unit for an axis spanning `span` seconds: (divisor, label).
fn time_unit(span: f64) -> (f64, &'static str) {
    if span >= 3.0 * 3600.0 {
        (3600.0, "h")
    } else if span >= 180.0 {
        (60.0, "min")
    } else {
        (1.0, "s")
    }
}

/// Draws `timeseries` of `report` on `root`.
pub(super) fn draw_timeseries<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &RunReport) -> DrawResult<DB> {
    let area = titled(root, title("timeseries"))?;
    let data = timeseries_data(report);
    if data.is_empty() {
        return draw_no_data(&area, "time series");
    }
    let eps = endpoints(report);
    let (legend, body) = area.split_vertically(TS_HEADER - 50);
    draw_endpoint_legend(&legend, &eps)?;

    // Common time axis and p95 scale so the policies can be compared row by row.
    let interval_of = |p: &PolicySeries<'_>| p.ts.iter().map(|t| t.interval_s).find(|d| d.is_finite() && *d > 0.0);
    let t_end = |p: &PolicySeries<'_>| -> Vec<f64> {
        let d = interval_of(p).unwrap_or(0.0);
        p.ts.iter().map(|t| t.t_start_s + t.interval_s).chain(p.shares.iter().map(|s| s.t_start_s + d)).collect()
    };
    let Some((t0, t1)) =
        finite_range(data.iter().flat_map(|p| {
            p.ts.iter().map(|t| t.t_start_s).chain(p.shares.iter().map(|s| s.t_start_s)).chain(t_end(p))
        }))
    else {
        return draw_no_data(&body, "time series");
    };
    let (t1, t0) = if t1 > t0 { (t1, t0) } else { (t0 + 1.0, t0) };
    let (unit, unit_label) = time_unit(t1 - t0);
    // (The drain's p95 is left out of the scale: it is shaded, not drawn.)
    let p95_max = finite_range(data.iter().flat_map(|p| p.ts.iter().filter(|t| !t.drain).filter_map(|t| t.p95_s)))
        .map_or(1.0, |(_, hi)| if hi > 0.0 { hi * 1.1 } else { 1.0 });

    let rows = body.split_evenly((data.len(), 1));
    for (p, row) in data.iter().zip(rows) {
        let (left, right) = row.split_horizontally(660);
        let col = policy_colour(report, p.policy);
        draw_share_panel(&left, p, &eps, interval_of(p), (t0, t1), (unit, unit_label))?;
        draw_p95_panel(&right, p, col, (t0, t1), (unit, unit_label), p95_max)?;
    }
    Ok(())
}

fn draw_endpoint_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, eps: &[&str]) -> DrawResult<DB> {
    let font = (FONT, LEGEND_SIZE).into_font().color(&BLACK);
    let mut x = 30i32;
    area.draw(&Text::new("endpoints:", (x, 18), font.clone().pos(Pos::new(HPos::Left, VPos::Center))))?;
    x += area.estimate_text_size("endpoints:", &font).map_or(90, |(w, _)| w as i32) + 16;
    for (i, ep) in eps.iter().enumerate() {
        area.draw(&Rectangle::new([(x, 10), (x + 16, 26)], colour(i).filled()))?;
        x += 22;
        area.draw(&Text::new(ep.to_string(), (x, 18), font.clone().pos(Pos::new(HPos::Left, VPos::Center))))?;
        x += area.estimate_text_size(ep, &font).map_or(80, |(w, _)| w as i32) + 24;
    }
    Ok(())
}

/// Most columns the share panel draws (it is about 1100 pixels wide).
pub(super) const SHARE_COLUMNS: usize = 1000;

fn draw_share_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &PolicySeries<'_>,
    eps: &[&str],
    interval: Option<f64>,
    (t0, t1): (f64, f64),
    (unit, unit_label): (f64, &str),
) -> DrawResult<DB> {
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: share of attempts (replication {})", p.policy, p.replication), (FONT, DESC_SIZE))
        .margin(10)
        .margin_left(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(t0 / unit..t1 / unit, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc(format!("simulated time ({unit_label})"))
        .y_desc("share")
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .y_labels(6)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE + 1))
        .disable_x_mesh()
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;

    // Distinct interval starts, ascending, and each one's shares by endpoint (one pass over the rows).
    let mut starts: Vec<f64> = p.shares.iter().map(|s| s.t_start_s).filter(|t| t.is_finite()).collect();
    starts.sort_by(f64::total_cmp);
    starts.dedup();
    let n = eps.len();
    let mut grid = vec![0.0f64; starts.len() * n];
    for s in &p.shares {
        if !(s.share.is_finite() && s.share > 0.0) {
            continue;
        }
        let (Ok(k), Some(i)) =
            (starts.binary_search_by(|x| x.total_cmp(&s.t_start_s)), eps.iter().position(|e| *e == &*s.endpoint))
        else {
            continue;
        };
        grid[k * n + i] += s.share;
    }
    // A column per interval, or, past SHARE_COLUMNS intervals (finer than the plot's pixels), per group of
    // adjacent intervals with their mean shares, weighted by width: the plot's size stays bounded.
    let widths: Vec<f64> = (0..starts.len())
        .map(|k| {
            interval
                .or_else(|| starts.get(k + 1).map(|n| n - starts[k]))
                .or_else(|| k.checked_sub(1).map(|j| starts[k] - starts[j]))
                .unwrap_or(t1 - starts[k])
        })
        .collect();
    let group = starts.len().div_ceil(SHARE_COLUMNS).max(1);
    let mut rects = Vec::new();
    for first in (0..starts.len()).step_by(group) {
        let ks = first..(first + group).min(starts.len());
        let t = starts[first];
        let width: f64 = widths[ks.clone()].iter().sum();
        let mut lo = 0.0;
        for i in 0..n {
            let share = ks.clone().map(|k| grid[k * n + i] * widths[k]).sum::<f64>() / width;
            if share > 0.0 {
                let hi = (lo + share).min(1.0);
                rects.push(Rectangle::new([(t / unit, lo), ((t + width) / unit, hi)], colour(i).filled()));
                lo = hi;
            }
        }
    }
    chart.draw_series(rects)?;
    shade_drain(&mut chart, p, t1, unit, 1.0)?;
    if starts.is_empty() {
        let (w, h) = chart.plotting_area().dim_in_pixel();
        chart.plotting_area().strip_coord_spec().draw(&Text::new(
            "no share data",
            (w as i32 / 2, h as i32 / 2),
            (FONT, LABEL_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Shades the drain (from the first interval past the last arrival to the end, `t1`) grey, labelled, over a
/// chart whose y axis runs from 0 to `y_max`.
fn shade_drain<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    p: &PolicySeries<'_>,
    t1: f64,
    unit: f64,
    y_max: f64,
) -> DrawResult<DB> {
    let Some(start) = p.ts.iter().filter(|t| t.drain).map(|t| t.t_start_s).min_by(f64::total_cmp) else {
        return Ok(());
    };
    let (x0, x1) = (start / unit, t1 / unit);
    chart.draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, y_max)], BLACK.mix(0.12).filled())))?;
    let font = (FONT, LABEL_SIZE).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Right, VPos::Top));
    chart.draw_series(std::iter::once(Text::new("drain", (x1, y_max * 0.98), font)))?;
    Ok(())
}

fn draw_p95_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &PolicySeries<'_>,
    col: RGBColor,
    (t0, t1): (f64, f64),
    (unit, unit_label): (f64, &str),
    p95_max: f64,
) -> DrawResult<DB> {
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: p95 latency", p.policy), (FONT, DESC_SIZE))
        .margin(10)
        .margin_right(25)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(t0 / unit..t1 / unit, 0.0..p95_max)?;
    chart
        .configure_mesh()
        .x_desc(format!("simulated time ({unit_label})"))
        .y_desc("p95 latency (s)")
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .y_labels(6)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE + 1))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;
    shade_drain(&mut chart, p, t1, unit, p95_max)?;
    // Points at interval midpoints; an interval without completions, or in the drain, breaks the line.
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for t in &p.ts {
        match t.p95_s.filter(|v| v.is_finite() && !t.drain) {
            Some(v) if t.t_start_s.is_finite() => {
                let mid = t.t_start_s + t.interval_s.max(0.0) / 2.0;
                if let Some(seg) = segments.last_mut() {
                    seg.push((mid / unit, v));
                }
            }
            _ => segments.push(Vec::new()),
        }
    }
    for seg in segments.into_iter().filter(|s| !s.is_empty()) {
        if seg.len() == 1 {
            chart.draw_series(seg.into_iter().map(|q| Circle::new(q, 3, col.filled())))?;
        } else {
            chart.draw_series(LineSeries::new(seg, col.stroke_width(2)))?;
        }
    }
    Ok(())
}
