//! QQ plots of fitted against observed quantiles (`routesim fit`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::draw::{
    DESC_SIZE, DrawResult, FONT, colour, draw_no_data, draw_xy_mesh, ensure_font, finite_range, padded, titled,
};

/// A QQ plot of fitted against observed quantiles, one panel per quantity (`routesim fit`).
#[derive(Debug, Clone, Default)]
pub struct QqPlot {
    /// Figure title.
    pub title: String,
    /// Panels: (label with unit, `(fitted, observed)` quantile pairs).
    pub panels: Vec<(String, Vec<(f64, f64)>)>,
}

/// Writes `<dir>/<stem>.png` and `<dir>/<stem>.svg` and returns their paths.
pub fn write_qq_plot(plot: &QqPlot, dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    let size = (560 * plot.panels.len().max(1) as u32, 560);
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_qq(&root, plot)
            .and_then(|()| root.present())
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("rendering {}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw_qq(&root, plot)
            .and_then(|()| root.present())
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("rendering {}", svg.display()))?;
    }
    Ok(vec![png, svg])
}

fn draw_qq<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &QqPlot) -> DrawResult<DB> {
    let area = titled(root, &plot.title)?;
    if plot.panels.is_empty() {
        return draw_no_data(&area, "fitted quantity");
    }
    for (panel, (label, pts)) in area.split_evenly((1, plot.panels.len())).iter().zip(&plot.panels) {
        let Some((lo, hi)) = finite_range(pts.iter().flat_map(|p| [p.0, p.1])) else {
            draw_no_data(panel, "samples")?;
            continue;
        };
        let (lo, hi) = padded(lo.max(0.0), hi, 0.05);
        let lo = lo.max(0.0);
        let mut chart = ChartBuilder::on(panel)
            .margin(18)
            .caption(label.as_str(), (FONT, DESC_SIZE))
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(lo..hi, lo..hi)?;
        draw_xy_mesh(&mut chart, "fitted quantile", "observed quantile")?;
        chart.draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.5).stroke_width(1)))?;
        chart.draw_series(
            pts.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).map(|&p| Circle::new(p, 3, colour(0).filled())),
        )?;
    }
    Ok(())
}
