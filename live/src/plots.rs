//! The plots of `routesim live`: the two latency CDFs overlaid (`live-latency-cdf`), and each endpoint's
//! share of the requests over time, simulated (solid) against live (dashed) (`live-shares`). PNG and SVG.

use crate::compare::{SHARE_BUCKETS, SideStats, cdf_points};
use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use router_core::Nanos;
use sim::report::plots::{FONT, colour, ensure_font, tick};
use std::path::{Path, PathBuf};

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// What the plots show.
pub struct LivePlots<'a> {
    /// Scenario and policy, for the titles.
    pub title: String,
    /// The simulator's side.
    pub sim: &'a SideStats,
    /// The live side.
    pub live: &'a SideStats,
    /// Endpoint ids in index order.
    pub endpoints: &'a [String],
    /// Scenario time the share series covers.
    pub span: Nanos,
}

/// Writes `live-latency-cdf` and `live-shares` (PNG and SVG) into `dir`.
pub fn write(p: &LivePlots<'_>, dir: &Path) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    let mut out = Vec::new();
    for (name, draw) in [("live-latency-cdf", 0), ("live-shares", 1)] {
        let png = dir.join(format!("{name}.png"));
        let svg = dir.join(format!("{name}.svg"));
        {
            let root = BitMapBackend::new(&png, (1000, 640)).into_drawing_area();
            let r = if draw == 0 { draw_cdf(&root, p) } else { draw_shares(&root, p) };
            r.and_then(|()| root.present())
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("rendering {}", png.display()))?;
        }
        {
            let root = SVGBackend::new(&svg, (1000, 640)).into_drawing_area();
            let r = if draw == 0 { draw_cdf(&root, p) } else { draw_shares(&root, p) };
            r.and_then(|()| root.present())
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("rendering {}", svg.display()))?;
        }
        out.push(png);
        out.push(svg);
    }
    Ok(out)
}

fn draw_cdf<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &LivePlots<'_>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let area = root.titled(&format!("{}: latency CDF, simulated and live", p.title), (FONT, 24))?;
    let sim = cdf_points(&p.sim.latency_s, 800);
    let live = cdf_points(&p.live.latency_s, 800);
    let hi = sim.iter().chain(&live).map(|q| q.0).fold(0.0f64, f64::max).max(1e-3) * 1.02;
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(0.0..hi, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("end-to-end latency of successful requests (s, scenario time)")
        .y_desc("cumulative probability")
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;
    let (c0, c1) = (colour(0), colour(1));
    chart
        .draw_series(LineSeries::new(sim, c0.stroke_width(3)))?
        .label("simulated")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c0.stroke_width(3)));
    chart
        .draw_series(DashedLineSeries::new(live, 8, 5, c1.stroke_width(3)))?
        .label("live (gateway over sockets)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c1.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .margin(12)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
}

/// Per bucket: `(bucket middle in minutes, share % of endpoint e)`.
fn share_line(s: &SideStats, e: usize, span: Nanos) -> Vec<(f64, f64)> {
    let width_min = span as f64 / 60e9 / SHARE_BUCKETS as f64;
    s.share_series
        .iter()
        .enumerate()
        .filter_map(|(b, counts)| {
            let total: u64 = counts.iter().sum();
            (total > 0).then(|| ((b as f64 + 0.5) * width_min, 100.0 * counts[e] as f64 / total as f64))
        })
        .collect()
}

fn draw_shares<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &LivePlots<'_>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let area = root
        .titled(&format!("{}: endpoint shares over time, simulated (solid) and live (dashed)", p.title), (FONT, 22))?;
    let x_hi = (p.span as f64 / 60e9).max(1e-3);
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(0.0..x_hi, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("scenario time (minutes)")
        .y_desc("share of requests (%)")
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;
    for (e, id) in p.endpoints.iter().enumerate() {
        let c = colour(e);
        chart
            .draw_series(LineSeries::new(share_line(p.sim, e, p.span), c.stroke_width(3)))?
            .label(id.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3)));
        chart.draw_series(DashedLineSeries::new(share_line(p.live, e, p.span), 8, 5, c.stroke_width(2)))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(12)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
}
