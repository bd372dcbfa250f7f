//! `latency_cdf`: the end-to-end latency CDF per policy, on a log x axis when latencies span decades.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::super::draw::{
    DESC_SIZE, DrawResult, FONT, LABEL_SIZE, draw_no_data, draw_series_legend, finite_range, padded, tick, titled,
};
use super::{policy_colour, title};
use crate::report::model::{CdfSeries, RunReport};

/// Draws `latency_cdf` of `report` on `root`.
pub(super) fn draw_latency_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let area = titled(root, title("latency_cdf"))?;
    let series: Vec<(&CdfSeries, Vec<(f64, f64)>)> = report
        .cdf
        .iter()
        .map(|c| {
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter(|(x, p)| x.is_finite() && p.is_finite())
                .map(|&(x, p)| (x, p.clamp(0.0, 1.0)))
                .collect();
            (c, pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    let Some((lo, hi)) = finite_range(series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0))) else {
        return draw_no_data(&area, "latency data");
    };
    let min_positive = finite_range(series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0).filter(|x| *x > 0.0)));
    match min_positive {
        // Log scale when the positive latencies span more than a factor of 20.
        Some((plo, phi)) if phi / plo > 20.0 => {
            let x = (plo / 1.2..phi * 1.2).log_scale();
            let series: Vec<_> =
                series.into_iter().map(|(c, p)| (c, p.into_iter().filter(|q| q.0 > 0.0).collect())).collect();
            cdf_chart(&area, report, &series, x, "end-to-end latency (s, log scale)")
        }
        _ => {
            let (xlo, xhi) = padded(lo.min(0.0), hi, 0.02);
            cdf_chart(&area, report, &series, xlo.max(0.0)..xhi, "end-to-end latency (s)")
        }
    }
}

fn cdf_chart<DB, X>(
    area: &DrawingArea<DB, Shift>,
    report: &RunReport,
    series: &[(&CdfSeries, Vec<(f64, f64)>)],
    x_spec: X,
    x_desc: &str,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(x_spec, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("cumulative probability")
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, DESC_SIZE))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;

    // Guides at the percentiles the summary reports.
    let (x_min, x_max) = {
        let r = chart.x_range();
        (r.start, r.end)
    };
    for (p, label) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        chart.draw_series(DashedLineSeries::new([(x_min, p), (x_max, p)], 6, 4, BLACK.mix(0.35).stroke_width(1)))?;
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x_min, p),
            (FONT, 13).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Left, VPos::Bottom)),
        )))?;
    }

    for (c, pts) in series {
        let col = policy_colour(report, &c.policy);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(3)))?
            .label(c.policy.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], col.stroke_width(3)));
    }
    draw_series_legend(&mut chart, SeriesLabelPosition::LowerRight)
}
