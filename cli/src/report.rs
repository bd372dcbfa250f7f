//! `routesim report RESULTS_DIR`: rebuilds `report.html` from the files a `run`, `replay` or `tune` left in a
//! directory (for results written before the report existed, or after editing them).

use anyhow::Context;
use sim::failure::Failure;
use sim::report::html::{REPORT_FILE, render_report};
use std::path::PathBuf;

/// Arguments of `routesim report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The results directory (written by `routesim run`, `replay` or `tune`).
    pub results_dir: PathBuf,
    /// Where to write the page (default `RESULTS_DIR/report.html`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &ReportArgs) -> Result<(), Failure> {
    let html = render_report(&args.results_dir).map_err(|e| Failure::Invalid(e.to_string()))?;
    let out = args.out.clone().unwrap_or_else(|| args.results_dir.join(REPORT_FILE));
    std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
    println!("Wrote {}", out.display());
    Ok(())
}
