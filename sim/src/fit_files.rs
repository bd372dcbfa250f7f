//! The files of `routesim fit`: `providers.toml` (the fitted endpoints, ready for `include_endpoints`), a QQ
//! plot per endpoint (`qq-<id>.png/.svg`) and their points (`qq.parquet`), beside `providers.toml`.

use crate::logs::fit::{EndpointFit, MIN_QUALITY_ROWS};
use crate::report::{QqPlot, write_qq_plot};
use anyhow::Context;
use std::fmt::Write as _;
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
    struct Doc {
        endpoints: Vec<crate::provider::EndpointSpec>,
    }
    // The accuracies are written by hand below (an inline table with its intervals in a comment), so the
    // serialiser gets the endpoints without them.
    let endpoints =
        fits.iter().map(|f| crate::provider::EndpointSpec { quality: Default::default(), ..f.spec.clone() });
    let body = toml::to_string(&Doc { endpoints: endpoints.collect() }).context("serialising the endpoints")?;
    text.push_str(&with_quality(&body, fits));
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

/// `body` (the serialised `[[endpoints]]`, in `fits` order) with each endpoint's fitted accuracies inserted
/// after its plain keys: a comment giving every estimate with its 95% interval and row count, and the line
/// `quality = { default = 0.812, code = 0.62 }` of those resting on at least
/// [`MIN_QUALITY_ROWS`] rows. Endpoints without quality estimates are left as they are.
fn with_quality(body: &str, fits: &[EndpointFit]) -> String {
    const HEADER: &str = "[[endpoints]]\n";
    let mut blocks: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(at) = rest[1..].find(&format!("\n{HEADER}")).map(|i| i + 2) {
        blocks.push(&rest[..at]);
        rest = &rest[at..];
    }
    blocks.push(rest);
    if blocks.len() != fits.len() || fits.iter().all(|f| f.quality.is_empty()) {
        return body.to_string();
    }
    let mut out = String::with_capacity(body.len() + 256 * fits.len());
    for (block, fit) in blocks.iter().zip(fits) {
        if fit.quality.is_empty() {
            out.push_str(block);
            continue;
        }
        // The plain keys end where the first sub-table (`[endpoints.price]`, ...) starts.
        let split = block.find("\n[endpoints.").map_or(block.len(), |i| i + 1);
        let (keys, tables) = block.split_at(split);
        let keys = keys.strip_suffix("\n\n").map_or(keys.to_string(), |k| format!("{k}\n"));
        out.push_str(&keys);
        let _ = writeln!(
            out,
            "# quality: accuracy per task class from the log's `quality` column (mean score of the rows that did \
             not fail;\n# `default` pools every class), with its 95% confidence interval; no estimate from fewer \
             than {MIN_QUALITY_ROWS} rows."
        );
        for q in &fit.quality {
            if q.stated() {
                let _ = writeln!(out, "#   {}: {}", q.class, q.estimate);
            } else {
                let _ = writeln!(
                    out,
                    "#   {}: not estimated, {} row(s) (fewer than {MIN_QUALITY_ROWS}); measured {:.3}",
                    q.class, q.estimate.n, q.estimate.value
                );
            }
        }
        let stated: Vec<String> =
            fit.spec.quality.0.iter().map(|(class, v)| format!("{} = {v}", toml_key(class))).collect();
        if stated.is_empty() {
            let _ = writeln!(out, "# (no class has enough rows: no `quality` written)");
        } else {
            let _ = writeln!(out, "quality = {{ {} }}", stated.join(", "));
        }
        if !tables.is_empty() {
            out.push('\n');
        }
        out.push_str(tables);
    }
    out
}

/// A TOML key: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
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
