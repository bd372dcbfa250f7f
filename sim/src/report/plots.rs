//! Plots of a [`RunReport`], each written as PNG and SVG with plotters.
//!
//! - `latency_cdf`: end-to-end latency CDF per policy (log x axis when latencies span decades).
//! - `cost_vs_p95`: cost per 1k requests against p95 latency, one point per policy with 95% CI error
//!   bars in both directions, the Pareto frontier as a step line.
//! - `timeseries`: per policy, the per-endpoint share of attempts over time (stacked) next to p95
//!   latency over time, for the first replication: shows herding, quota shifts and failover.
//! - `cost_bars`: total cost and error rate per policy as horizontal bars with 95% CI.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (`sim/assets/fonts`), registered with
//! plotters' `ab_glyph` backend, so rendering needs no system fonts. Colours are assigned by the
//! policy's position in [`RunReport::policy_names`], so a policy has the same colour in every plot.
//! Non-finite values are skipped rather than drawn; a plot without data says so instead of failing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::model::{CdfSeries, Estimate, RunReport, ShareRow, TimeseriesRow};
use super::pareto::pareto_frontier;

/// Font family name the embedded font is registered under (plotters' default family).
pub const FONT: &str = "sans-serif";
/// DejaVu Sans 2.37, Bitstream Vera / Arev license (see `sim/assets/fonts/LICENSE-DejaVu.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

const TITLE_SIZE: u32 = 26;
const DESC_SIZE: u32 = 18;
const LABEL_SIZE: u32 = 15;
const LEGEND_SIZE: u32 = 16;

/// Size of single-panel plots, pixels.
const PLOT_SIZE: (u32, u32) = (1000, 640);

/// Tableau 10: distinct, colour-blind-aware colours.
const PALETTE: [RGBColor; 10] = [
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

/// Colour number `index` of the palette (cycling).
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

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

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

// ===== shared helpers =====

/// Title of each plot (also checked by the tests in the SVG output).
pub(crate) const TITLES: [(&str, &str); 4] = [
    ("latency_cdf", "End-to-end latency CDF per policy"),
    ("cost_vs_p95", "Cost per 1k requests vs p95 latency"),
    ("timeseries", "Traffic share per endpoint and p95 latency over time"),
    ("cost_bars", "Cost and error rate per policy"),
];

fn title(name: &str) -> &'static str {
    TITLES.iter().find(|(n, _)| *n == name).map_or("", |(_, t)| t)
}

fn policy_colour(report: &RunReport, policy: &str) -> RGBColor {
    let index = report.policy_names().iter().position(|p| *p == policy).unwrap_or(0);
    colour(index)
}

/// Fills the area white, draws the title and returns the area below it.
fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    root.titled(text, (FONT, TITLE_SIZE).into_font().color(&BLACK))
}

/// Writes a centred "no data" message.
fn draw_no_data<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, what: &str) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, DESC_SIZE).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(format!("no {what} in this report"), (w as i32 / 2, h as i32 / 2), style))
}

/// `lo..hi` widened by `frac` of its span on both sides, never empty.
fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = hi - lo;
    if span > 0.0 && span.is_finite() {
        (lo - span * frac, hi + span * frac)
    } else {
        let pad = (lo.abs() * 0.1).max(1e-3);
        (lo - pad, hi + pad)
    }
}

/// Minimum and maximum of finite values, if any.
fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
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
fn finite(e: Estimate) -> Option<Estimate> {
    let h = e.ci95.unwrap_or(0.0);
    (e.mean.is_finite() && h.is_finite()).then_some(Estimate { mean: e.mean, ci95: Some(h.abs()) })
}

/// An x-y chart of plain numbers.
type XyChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The light grid, compact tick labels and axis titles of an x-y chart.
fn draw_xy_mesh<DB: DrawingBackend>(chart: &mut XyChart<'_, DB>, x_desc: &str, y_desc: &str) -> DrawResult<DB> {
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
fn frontier_steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
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
fn draw_ci_cross<DB: DrawingBackend>(
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

/// The legend in the upper left (above the data: see the head room callers leave) and the note on the
/// error bars in the lower right of `area`.
fn draw_legend_and_ci_note<'a, DB: DrawingBackend + 'a>(
    chart: &mut XyChart<'a, DB>,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .margin(12)
        .label_font((FONT, LEGEND_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        "error bars: 95% CI over replications",
        (w as i32 - 20, h as i32 - 8),
        (FONT, 13).into_font().color(&BLACK.mix(0.6)).pos(Pos::new(HPos::Right, VPos::Bottom)),
    ))
}

// ===== latency CDF =====

fn draw_latency_cdf<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &RunReport) -> DrawResult<DB> {
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .margin(12)
        .label_font((FONT, LEGEND_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
}

// ===== cost vs p95 =====

fn draw_cost_vs_p95<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &RunReport) -> DrawResult<DB> {
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
    chart
        .draw_series(DashedLineSeries::new(steps, 10, 6, frontier_style))?
        .label("Pareto frontier")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], frontier_style));

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

// ===== tuning frontier =====

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

// ===== QQ plots =====

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

// ===== time series =====

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

fn timeseries_size(report: &RunReport) -> (u32, u32) {
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

fn draw_timeseries<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &RunReport) -> DrawResult<DB> {
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
const SHARE_COLUMNS: usize = 1000;

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

// ===== cost and error-rate bars =====

fn cost_bars_size(report: &RunReport) -> (u32, u32) {
    let n = report.rows.len() as u32;
    (1200, (160 + 60 * n).max(420))
}

fn draw_cost_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &RunReport) -> DrawResult<DB> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{PolicyRow, ShareRow, TimeseriesRow};

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

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(10.0), "10");
        assert_eq!(tick(0.0125), "0.0125");
        assert_eq!(tick(1234.5678), "1235");
        assert_eq!(tick(0.0), "0");
    }
}
