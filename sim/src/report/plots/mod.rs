//! Plots, each written as PNG and SVG with plotters, one module per family:
//!
//! - `run`: the plots of a [`RunReport`](super::RunReport) (`routesim run`): `latency_cdf`, `cost_vs_p95`,
//!   `timeseries`, `cost_bars` ([`write_plots`]).
//! - `frontier`: the `pareto` plot of `routesim tune` ([`write_frontier_plot`]).
//! - `qq`: the QQ plots of `routesim fit` ([`write_qq_plot`]).
//! - `quality`: `cost_vs_quality`, answer quality against cost with the non-decreasing convex hull and its
//!   AIQ, only with quality on ([`write_quality_plot`]).
//! - `draw`: what they share: the embedded font, sizes, colours, axes, legends, and the writing of one
//!   figure as PNG and SVG.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (`sim/assets/fonts`), registered with
//! plotters' `ab_glyph` backend, so rendering needs no system fonts. Colours are assigned by the
//! policy's position in [`RunReport::policy_names`](super::RunReport::policy_names), so a policy has the same
//! colour in every plot. Non-finite values are skipped rather than drawn; a plot without data says so instead
//! of failing.

mod draw;
mod frontier;
mod qq;
mod quality;
mod run;

pub use draw::{FONT, colour, ensure_font, tick};
pub use frontier::{FrontierPlot, write_frontier_plot};
pub use qq::{QqPlot, write_qq_plot};
pub use quality::{QUALITY_PLOT_TITLE, QualityPlot, QualityPoint, point as quality_point, write_quality_plot};
pub use run::write_plots;
