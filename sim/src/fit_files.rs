//! The files of `routesim fit`: `providers.toml` (the fitted endpoints, ready for `include_endpoints`), a QQ
//! plot per endpoint (`qq-<id>.png/.svg`) and their points (`qq.parquet`), beside `providers.toml`.

use crate::logs::fit::EndpointFit;
use crate::report::{QqPlot, write_qq_plot};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Writes `out` (`providers.toml`) and, in its directory, the QQ plots and `qq.parquet` of `fits`, fitted from
/// `log` (`format`, `read` rows of which `malformed` were skipped).
pub fn write_files(
    fits: &[EndpointFit],
    out: &Path,
    log: &Path,
    format: &str,
    read: u64,
    malformed: u64,
) -> anyhow::Result<()> {
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), PathBuf::from);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = format!(
        "# Fitted by `routesim fit --log {}` ({} format, {read} rows, {} malformed).\n# Load it in a scenario with \
         `include_endpoints = [\"{}\"]`, or paste the entries.\n\n",
        log.display(),
        format,
        malformed,
        out.file_name().map_or("providers.toml".into(), |f| f.to_string_lossy())
    );
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        endpoints: Vec<&'a crate::provider::EndpointSpec>,
    }
    text.push_str(
        &toml::to_string(&Doc { endpoints: fits.iter().map(|f| &f.spec).collect() })
            .context("serialising the endpoints")?,
    );
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    let mut qq_rows: Vec<(String, String, f64, f64)> = Vec::new();
    for f in fits {
        let mut panels = Vec::new();
        if let Some(t) = &f.ttft {
            let what = if f.slope.is_some() { "latency intercept (s)" } else { "TTFT (s)" };
            panels.push((format!("{what}: {} fit", t.family.name()), t.qq(100)));
        }
        if let Some(t) = &f.tpot {
            panels.push((format!("time per output token (s): {} fit", t.family.name()), t.qq(100)));
        }
        for (panel, points) in &panels {
            qq_rows
                .extend(points.iter().map(|&(fitted, observed)| (f.spec.id.clone(), panel.clone(), fitted, observed)));
        }
        let plot = QqPlot { title: format!("QQ plot: {}", f.name), panels };
        write_qq_plot(&plot, &dir, &format!("qq-{}", f.spec.id))?;
    }
    write_qq_table(&qq_rows, &dir.join("qq.parquet"))?;
    Ok(())
}

/// Writes `qq.parquet`: one row per QQ point, columns `endpoint`, `panel` (the fitted quantity and family),
/// `fitted` (the fitted distribution's quantile, seconds) and `observed` (the log's quantile, seconds).
fn write_qq_table(rows: &[(String, String, f64, f64)], path: &Path) -> anyhow::Result<()> {
    use polars::prelude::{Column, DataFrame};
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("endpoint".into(), rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>()),
            Column::new("panel".into(), rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>()),
            Column::new("fitted".into(), rows.iter().map(|r| r.2).collect::<Vec<f64>>()),
            Column::new("observed".into(), rows.iter().map(|r| r.3).collect::<Vec<f64>>()),
        ],
    )
    .context("building the QQ table")?;
    let bytes = crate::report::parquet_bytes(&mut df)?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
