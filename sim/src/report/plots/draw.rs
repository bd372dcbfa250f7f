//! What every plot shares: the embedded font and text sizes, the plot size, the palette, the "no data"
//! placeholder, axis ranges and tick labels, the x-y mesh, 95% interval crosses, the legend, and the writing
//! of one figure as PNG and SVG ([`render_both`]).

use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::model::Estimate;

/// Font family name the embedded font is registered under (plotters' default family).
pub const FONT: &str = "sans-serif";
/// DejaVu Sans 2.37, Bitstream Vera / Arev license (see `sim/assets/fonts/LICENSE-DejaVu.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

pub(super) const TITLE_SIZE: u32 = 26;
pub(super) const DESC_SIZE: u32 = 18;
pub(super) const LABEL_SIZE: u32 = 15;
pub(super) const LEGEND_SIZE: u32 = 16;

/// Size of single-panel plots, pixels.
pub(super) const PLOT_SIZE: (u32, u32) = (1000, 640);

/// Tableau 10: distinct, colour-blind-aware colours.
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

/// The colour of the policy (or series) at `index`, from the palette in turn.
pub fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Registers the embedded font with plotters once per process.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        // The bold style falls back to the normal face.
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok { Ok(()) } else { Err(anyhow!("the embedded plot font could not be parsed")) }
}

pub(super) type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Renders one figure to `<dir>/<name>.png` and `<dir>/<name>.svg`.
macro_rules! render_both {
    ($dir:expr, $name:expr, $size:expr, $draw:ident, $report:expr) => {{
        let png = $dir.join(concat!($name, ".png"));
        let svg = $dir.join(concat!($name, ".svg"));
        {
            let root = BitMapBackend::new(&png, $size).into_drawing_area();
            $draw(&root, $report)
                .and_then(|()| root.present())
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("rendering {}", png.display()))?;
        }
        {
            let root = SVGBackend::new(&svg, $size).into_drawing_area();
            $draw(&root, $report)
                .and_then(|()| root.present())
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("rendering {}", svg.display()))?;
        }
        vec![png, svg]
    }};
}
pub(super) use render_both;

/// Fills the area white, draws the title and returns the area below it.
pub(super) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    root.titled(text, (FONT, TITLE_SIZE).into_font().color(&BLACK))
}

/// Writes a centred "no data" message.
pub(super) fn draw_no_data<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, what: &str) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, DESC_SIZE).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(format!("no {what} in this report"), (w as i32 / 2, h as i32 / 2), style))
}

/// `lo..hi` widened by `frac` of its span on both sides, never empty.
pub(super) fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = hi - lo;
    if span > 0.0 && span.is_finite() {
        (lo - span * frac, hi + span * frac)
    } else {
        let pad = (lo.abs() * 0.1).max(1e-3);
        (lo - pad, hi + pad)
    }
}

/// Minimum and maximum of finite values, if any.
pub(super) fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Compact axis tick label with up to four significant digits and no trailing zeros.
pub fn tick(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { "0".to_string() } else { x.to_string() };
    }
    let decimals = (3 - x.abs().log10().floor() as i64).clamp(0, 9) as usize;
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s == "-0" { "0".to_string() } else { s }
}

/// An estimate whose mean and interval are finite (a missing half-width counts as zero).
pub(super) fn finite(e: Estimate) -> Option<Estimate> {
    let h = e.ci95.unwrap_or(0.0);
    (e.mean.is_finite() && h.is_finite()).then_some(Estimate { mean: e.mean, ci95: Some(h.abs()) })
}

/// An x-y chart of plain numbers.
pub(super) type XyChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The light grid, compact tick labels and axis titles of an x-y chart.
pub(super) fn draw_xy_mesh<DB: DrawingBackend>(
    chart: &mut XyChart<'_, DB>,
    x_desc: &str,
    y_desc: &str,
) -> DrawResult<DB> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, DESC_SIZE))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()
}

/// The step line through frontier points sorted by ascending x: right along one point's y, then down to
/// the next point.
pub(super) fn frontier_steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut steps = Vec::with_capacity(2 * points.len());
    for (k, &p) in points.iter().enumerate() {
        if k > 0 {
            steps.push((p.0, points[k - 1].1));
        }
        steps.push(p);
    }
    steps
}

/// 95% interval bars in both directions around `(x, y)`.
pub(super) fn draw_ci_cross<DB: DrawingBackend>(
    chart: &mut XyChart<'_, DB>,
    x: Estimate,
    y: Estimate,
    style: ShapeStyle,
    width: u32,
) -> DrawResult<DB> {
    chart.draw_series([ErrorBar::new_vertical(x.mean, y.lower(), y.mean, y.upper(), style, width)])?;
    chart.draw_series([ErrorBar::new_horizontal(y.mean, x.lower(), x.mean, x.upper(), style, width)])?;
    Ok(())
}

/// The legend box every plot draws (the legend font on translucent white, a light frame) at `position`.
pub(super) fn draw_series_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .margin(12)
        .label_font((FONT, LEGEND_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
}

/// The legend in the upper left (above the data: see the head room callers leave) and the note on the
/// error bars in the lower right of `area`.
pub(super) fn draw_legend_and_ci_note<'a, DB: DrawingBackend + 'a>(
    chart: &mut XyChart<'a, DB>,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    draw_series_legend(chart, SeriesLabelPosition::UpperLeft)?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        "error bars: 95% CI over replications",
        (w as i32 - 20, h as i32 - 8),
        (FONT, 13).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Right, VPos::Bottom)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(10.0), "10");
        assert_eq!(tick(0.0125), "0.0125");
        assert_eq!(tick(1234.5678), "1235");
        assert_eq!(tick(0.0), "0");
    }
}
