//! `report.html`: one self-contained page per results directory, readable offline, with no JavaScript.
//!
//! The page is built from the files a command left in its directory, never from memory, so a run, a replay
//! and a tuning write it the same way at the end (see [`write_report`]) and `routesim report DIR` rebuilds
//! it for an old directory. It holds, in order: the warnings (`warnings.txt`), the headline table with 95%
//! intervals (`summary.csv`, or `baselines.csv` and `pareto.csv` for a tuning), the paired differences
//! (`paired.csv`), every plot (each `*.svg`, inlined), the per-class latencies (`classes.csv`), the whole
//! summary, the scenario (`scenario.toml`), the chosen configuration (`best-policy.toml`), the malformed
//! rows of a replayed log (`malformed.txt`) and the manifest (`manifest.json`).
//!
//! Everything taken from a file is HTML-escaped ([`escape`]), except the SVG plots, which are inlined as
//! markup after a check that they hold no script, event handler or foreign object ([`inline_svg`]); a plot
//! failing the check is named and left out. Every numeric cell of the headline table carries the exact CSV
//! strings in `data-mean` and `data-ci95`, so tests (and scripts) can compare the page with `summary.csv`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::model::{Estimate, Format, METRICS, metric};
use super::table::format_estimate;

/// The report's file name inside a results directory.
pub const REPORT_FILE: &str = "report.html";
/// The warnings a command printed, one per line, kept for the report.
pub const WARNINGS_FILE: &str = "warnings.txt";

/// Plots in the order the report shows them; other SVG files follow in name order.
const PLOT_ORDER: [&str; 5] = ["cost_vs_p95", "latency_cdf", "timeseries", "cost_bars", "pareto"];

/// The paired-difference metrics the report shows first (all of `paired.csv` follows, folded).
const PAIRED_HEADLINE: [&str; 6] =
    ["success_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s", "cost_per_1k_usd", "errors_429"];

/// A results directory the report cannot be built from: the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ResultsError {
    /// The file (or directory) at fault.
    pub path: String,
    /// What was expected.
    pub message: String,
}

impl ResultsError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        Self { path: path.display().to_string(), message: message.into() }
    }
}

/// Writes `warnings.txt` (one warning per line; empty when there were none) into `dir` and returns its path.
pub fn write_warnings(dir: &Path, warnings: &[String]) -> Result<PathBuf> {
    let path = dir.join(WARNINGS_FILE);
    let text: String = warnings.iter().map(|w| format!("{}\n", w.replace('\n', " "))).collect();
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Builds `report.html` from the files in `dir` and writes it there; returns its path.
pub fn write_report(dir: &Path) -> Result<PathBuf> {
    let html = render_report(dir)?;
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// What kind of command wrote a results directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsKind {
    /// `routesim run`: `summary.csv` and no log.
    Run,
    /// `routesim replay`: `summary.csv` and `malformed.txt`.
    Replay,
    /// `routesim tune`: `candidates.csv`.
    Tune,
}

impl ResultsKind {
    /// Recognises a results directory by its files.
    pub fn detect(dir: &Path) -> Result<Self, ResultsError> {
        if !dir.is_dir() {
            return Err(ResultsError::new(
                dir,
                "not a directory; expected the output directory of `routesim run`, `replay` or `tune`",
            ));
        }
        if dir.join("summary.csv").is_file() {
            Ok(if dir.join("malformed.txt").is_file() { Self::Replay } else { Self::Run })
        } else if dir.join("candidates.csv").is_file() {
            Ok(Self::Tune)
        } else {
            Err(ResultsError::new(
                dir,
                "holds neither summary.csv (written by `routesim run` and `replay`) nor candidates.csv (written by \
                 `routesim tune`); expected a results directory",
            ))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Replay => "replay",
            Self::Tune => "tune",
        }
    }
}

/// The report of the results in `dir` as an HTML document.
pub fn render_report(dir: &Path) -> Result<String, ResultsError> {
    let kind = ResultsKind::detect(dir)?;
    let manifest = read_manifest(dir)?;
    let scenario_text = read_optional(&dir.join("scenario.toml"))?;
    let scenario_name = manifest
        .as_ref()
        .and_then(|m| m.get("scenario"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| scenario_text.as_deref().and_then(scenario_name_of))
        .unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());

    let mut body = String::new();
    let title = format!("routesim {}: {}", kind.name(), scenario_name);
    let _ = writeln!(body, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(body, "<p class=\"sub\">{}</p>", escape(&subtitle(dir, manifest.as_ref())));
    // The policies' table: its `quality` column says whether quality is on.
    let policies = match kind {
        ResultsKind::Run | ResultsKind::Replay => CsvTable::read(&dir.join("summary.csv"))?,
        ResultsKind::Tune => CsvTable::read(&dir.join("baselines.csv"))?,
    };
    let quality = policies.column("quality").is_some();
    body.push_str(&contents(kind, dir, quality));
    body.push_str(&warnings_section(dir)?);
    match kind {
        ResultsKind::Run | ResultsKind::Replay => {
            body.push_str(&headline_section(&policies, "headline", "Summary", &summary_note(kind, quality))?);
            if quality {
                body.push_str(&quality_section(dir, &policies, "summary.csv")?);
            }
        }
        ResultsKind::Tune => {
            body.push_str(&headline_section(
                &policies,
                "headline",
                "The scenario's policies",
                "Each row: mean over replications ± 95% confidence half-width.",
            )?);
            if quality {
                body.push_str(&quality_section(dir, &policies, "baselines.csv")?);
            }
            if let Some(best) = read_optional(&dir.join("best-policy.toml"))? {
                body.push_str(&pre_section("best-policy", "Chosen configuration (best-policy.toml)", &best));
            }
            let pareto = CsvTable::read(&dir.join("pareto.csv"))?;
            body.push_str(&pareto_section(&pareto)?);
        }
    }
    if let Some(paired) = CsvTable::read_optional(&dir.join("paired.csv"))? {
        body.push_str(&paired_section(&paired)?);
    }
    body.push_str(&plots_section(dir, quality)?);
    if let Some(classes) = CsvTable::read_optional(&dir.join("classes.csv"))? {
        let _ = writeln!(body, "<section id=\"classes\"><h2>Latency per task class</h2>");
        body.push_str("<p>Quantiles pooled over replications, seconds.</p>\n");
        body.push_str(&plain_table("classes-table", &classes));
        body.push_str("</section>\n");
    }
    let full = match kind {
        ResultsKind::Tune => ("candidates.csv", "Every candidate (candidates.csv)"),
        _ => ("summary.csv", "Every metric (summary.csv)"),
    };
    let table = CsvTable::read(&dir.join(full.0))?;
    let _ =
        writeln!(body, "<section id=\"summary\"><h2>{}</h2><details><summary>show the table</summary>", escape(full.1));
    body.push_str(&plain_table("summary-table", &table));
    body.push_str("</details></section>\n");
    if let Some(text) = scenario_text {
        body.push_str(&pre_section("scenario", "Scenario (scenario.toml)", &text));
    }
    if let Some(text) = read_optional(&dir.join("malformed.txt"))? {
        body.push_str(&pre_section("malformed", "Malformed log rows (malformed.txt)", &text));
    }
    body.push_str(&manifest_section(manifest.as_ref()));

    let mut html = String::with_capacity(body.len() + 4096);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(html, "<title>{}</title>", escape(&title));
    let _ = writeln!(html, "<style>{STYLE}</style>\n</head>\n<body>");
    html.push_str(&body);
    html.push_str("<footer>Written by routesim; no scripts, every plot inline.</footer>\n</body>\n</html>\n");
    Ok(html)
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;\
max-width:1240px;padding:0 1rem;color:#1b1b1b;line-height:1.4}h1{margin-bottom:.2rem}.sub{color:#555;margin-top:0}\
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}table{border-collapse:collapse;font-size:.8rem;\
margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;white-space:nowrap}\
th{background:#f3f4f6}td.text,th.text{text-align:left}.ci{color:#666}tr.frontier td:first-child{font-weight:600}\
.better{color:#0a6b2d;font-weight:600}.worse{color:#a3261d;font-weight:600}.wide{overflow-x:auto}\
.warnings{background:#fff7e6;border:1px solid #f0c36d;padding:.5rem 1rem}.nowarn{color:#0a6b2d}\
figure{margin:1rem 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;\
font-size:.9rem}pre{background:#f6f8fa;padding:.75rem;overflow-x:auto;font-size:.8rem}nav ul{columns:2}\
footer{margin-top:3rem;color:#888;font-size:.8rem}";

// ===== escaping =====

/// `s` with the five HTML-special characters replaced by entities: safe as element text and inside a quoted
/// attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The `<svg>` element of an SVG file, ready to inline: the XML prolog and anything before `<svg` dropped.
/// `None` when the text is not an SVG or holds something that could run or load code in a page (a script, an
/// event-handler attribute, a `javascript:` link, a foreign object, an external reference).
pub fn inline_svg(text: &str) -> Option<&str> {
    let start = text.find("<svg")?;
    let svg = text[start..].trim_end();
    if !svg.ends_with("</svg>") {
        return None;
    }
    let lower = svg.to_ascii_lowercase();
    let forbidden = ["<script", "javascript:", "<foreignobject", "<iframe", "<object", "<embed", "xlink:href", "href="];
    if forbidden.iter().any(|f| lower.contains(f)) {
        return None;
    }
    // An attribute whose name starts with "on" (onload=, onclick=, ...), after whitespace.
    let bytes = lower.as_bytes();
    let handler = bytes.windows(3).enumerate().any(|(i, w)| {
        w[0].is_ascii_whitespace()
            && w[1] == b'o'
            && w[2] == b'n'
            && lower[i + 3..].chars().take_while(|c| c.is_ascii_alphanumeric()).count() > 0
            && lower[i + 3..].trim_start_matches(|c: char| c.is_ascii_alphanumeric()).trim_start().starts_with('=')
    });
    (!handler).then_some(svg)
}

// ===== files =====

/// A CSV file read as text: the header and the rows, cells exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl CsvTable {
    /// Reads `path`; every row must have as many cells as the header.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .map_err(|e| ResultsError::new(path, format!("cannot be read: {e}")))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| ResultsError::new(path, format!("no CSV header: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| {
                ResultsError::new(path, format!("row {}: expected {} comma-separated cells: {e}", i + 2, header.len()))
            })?;
            rows.push(record.iter().map(str::to_string).collect());
        }
        Ok(Self { header, rows })
    }

    /// Reads `path` when it exists.
    pub fn read_optional(path: &Path) -> Result<Option<Self>, ResultsError> {
        if path.is_file() { Self::read(path).map(Some) } else { Ok(None) }
    }

    /// Index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn require(&self, name: &str, path: &str) -> Result<usize, ResultsError> {
        self.column(name).ok_or_else(|| ResultsError {
            path: path.to_string(),
            message: format!("no column `{name}`; expected the columns routesim writes"),
        })
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, ResultsError> {
    if !path.is_file() {
        return Ok(None);
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| ResultsError::new(path, format!("cannot be read as UTF-8 text: {e}")))
}

fn read_manifest(dir: &Path) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ResultsError> {
    let path = dir.join("manifest.json");
    let Some(text) = read_optional(&path)? else { return Ok(None) };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ResultsError::new(&path, "expected a JSON object")),
        Err(e) => Err(ResultsError::new(&path, format!("invalid JSON: {e}"))),
    }
}

/// The `name = "..."` at the top level of a scenario.
fn scenario_name_of(text: &str) -> Option<String> {
    let value: toml::Table = toml::from_str(text).ok()?;
    value.get("name")?.as_str().map(str::to_string)
}

// ===== sections =====

fn subtitle(dir: &Path, manifest: Option<&serde_json::Map<String, serde_json::Value>>) -> String {
    let mut parts = vec![format!("results in {}", dir.display())];
    if let Some(m) = manifest {
        let get = |k: &str| m.get(k).map(json_text);
        if let Some(v) = get("seed") {
            parts.push(format!("seed {v}"));
        }
        if let Some(v) = get("replications") {
            parts.push(format!("{v} replications"));
        }
        if let Some(v) = get("created_utc") {
            parts.push(format!("created {v}"));
        }
        if let Some(v) = get("routesim_version") {
            parts.push(format!("routesim {v}"));
        }
    }
    parts.join(" · ")
}

fn contents(kind: ResultsKind, dir: &Path, quality: bool) -> String {
    let mut items = vec![("warnings", "Warnings"), ("headline", "Summary")];
    if quality {
        items.push(("quality", "Quality"));
    }
    if kind == ResultsKind::Tune {
        items.push(("frontier", "Frontier"));
    }
    if dir.join("paired.csv").is_file() {
        items.push(("paired", "Paired differences"));
    }
    items.push(("plots", "Plots"));
    if dir.join("classes.csv").is_file() {
        items.push(("classes", "Per task class"));
    }
    items.extend([("summary", "Every metric"), ("scenario", "Scenario")]);
    if dir.join("manifest.json").is_file() {
        items.push(("manifest", "Manifest"));
    }
    let links: String = items.iter().map(|(id, t)| format!("<li><a href=\"#{id}\">{t}</a></li>")).collect();
    format!("<nav><ul>{links}</ul></nav>\n")
}

fn summary_note(kind: ResultsKind, quality: bool) -> String {
    // With quality on, the run's frontier has it as a third metric (see `RunReport::frontier`).
    let frontier = if quality {
        "cost per 1k requests, p95 latency and quality (a dearer or slower policy stays on it when it answers better)"
    } else {
        "cost per 1k requests against p95 latency"
    };
    let mut s = format!(
        "Cells: mean over replications ± 95% confidence half-width (none with one replication). Bold policies are \
         on the Pareto frontier of {frontier}."
    );
    if kind == ResultsKind::Replay {
        s.push_str(" \"as logged\" is the log itself: one observation, no interval.");
    }
    s
}

fn warnings_section(dir: &Path) -> Result<String, ResultsError> {
    let text = read_optional(&dir.join(WARNINGS_FILE))?;
    let lines: Vec<&str> =
        text.as_deref().map(|t| t.lines().filter(|l| !l.trim().is_empty()).collect()).unwrap_or_default();
    let mut out = String::from("<section id=\"warnings\"><h2>Warnings</h2>\n");
    if text.is_none() {
        out.push_str("<p>No warnings.txt in this directory: results written before routesim kept its warnings; see the log of the command that made them.</p>\n");
    } else if lines.is_empty() {
        out.push_str("<p class=\"nowarn\">No warnings.</p>\n");
    } else {
        out.push_str("<div class=\"warnings\"><ul>\n");
        for l in lines {
            let _ = writeln!(out, "<li>{}</li>", escape(l));
        }
        out.push_str("</ul></div>\n");
    }
    out.push_str("</section>\n");
    Ok(out)
}

/// Parses a CSV number; an empty cell (a null) is `None`.
fn number(cell: &str) -> Option<f64> {
    if cell.is_empty() { None } else { cell.parse().ok() }
}

/// A `mean ± half-width` cell formatted like the terminal table, with the CSV strings as data attributes.
fn estimate_cell(column: &str, mean: &str, ci95: &str, format: Format) -> String {
    let est = Estimate { mean: number(mean).unwrap_or(f64::NAN), ci95: number(ci95) };
    let (value, half) = format_estimate(est, format);
    let text = match half {
        Some(h) => format!("{} <span class=\"ci\">± {}</span>", escape(&value), escape(&h)),
        None => escape(&value),
    };
    format!(
        "<td data-column=\"{}\" data-mean=\"{}\" data-ci95=\"{}\">{text}</td>",
        escape(column),
        escape(mean),
        escape(ci95)
    )
}

fn headline_section(table: &CsvTable, id: &str, heading: &str, note: &str) -> Result<String, ResultsError> {
    let path = format!("{id} table");
    let policy = table.require("policy", &path)?;
    let reps = table.column("replications");
    let frontier = table.column("on_pareto_frontier");
    let metrics: Vec<(usize, Option<usize>, &'static super::model::Metric)> = METRICS
        .iter()
        .filter(|m| m.in_table)
        .filter_map(|m| table.column(m.column).map(|c| (c, table.column(&format!("{}_ci95", m.column)), m)))
        .collect();
    let mut out = format!("<section id=\"{id}\"><h2>{}</h2>\n<p>{}</p>\n", escape(heading), escape(note));
    out.push_str("<div class=\"wide\"><table id=\"headline-table\">\n<thead><tr><th class=\"text\">policy</th>");
    if reps.is_some() {
        out.push_str("<th>replications</th>");
    }
    for (_, _, m) in &metrics {
        let _ = write!(out, "<th title=\"{}\">{}</th>", escape(m.column), escape(m.header));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        let on_frontier = frontier.is_some_and(|c| row[c] == "true");
        let _ = write!(
            out,
            "<tr{}><td class=\"text\" data-column=\"policy\">{}</td>",
            if on_frontier { " class=\"frontier\"" } else { "" },
            escape(&row[policy])
        );
        if let Some(c) = reps {
            let _ = write!(out, "<td data-column=\"replications\">{}</td>", escape(&row[c]));
        }
        for &(c, ci, m) in &metrics {
            out.push_str(&estimate_cell(m.column, &row[c], ci.map_or("", |i| row[i].as_str()), m.format));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div></section>\n");
    Ok(out)
}

fn pareto_section(pareto: &CsvTable) -> Result<String, ResultsError> {
    let name = pareto.require("candidate", "pareto.csv")?;
    let policy = pareto.require("policy", "pareto.csv")?;
    let chosen = pareto.column("chosen");
    let feasible = pareto.column("feasible");
    let params: Vec<usize> = (name + 2..policy).collect(); // between `status` and `policy`
    let metrics: Vec<(usize, Option<usize>, &'static super::model::Metric)> = METRICS
        .iter()
        .filter(|m| m.in_table)
        .filter_map(|m| pareto.column(m.column).map(|c| (c, pareto.column(&format!("{}_ci95", m.column)), m)))
        .collect();
    let mut out = String::from(
        "<section id=\"frontier\"><h2>Frontier of the candidates (pareto.csv)</h2>\n<p>Candidates no other \
         beats on both objectives, by ascending first objective; the chosen one is bold.</p>\n<div \
         class=\"wide\"><table id=\"frontier-table\"><thead><tr><th class=\"text\">candidate</th>",
    );
    for &p in &params {
        let _ = write!(out, "<th>{}</th>", escape(&pareto.header[p]));
    }
    for (_, _, m) in &metrics {
        let _ = write!(out, "<th title=\"{}\">{}</th>", escape(m.column), escape(m.header));
    }
    out.push_str("<th>meets constraints</th></tr></thead>\n<tbody>\n");
    for row in &pareto.rows {
        let is_chosen = chosen.is_some_and(|c| row[c] == "true");
        let _ = write!(
            out,
            "<tr{}><td class=\"text\">{}</td>",
            if is_chosen { " class=\"frontier\"" } else { "" },
            escape(&row[name])
        );
        for &p in &params {
            let _ = write!(out, "<td>{}</td>", escape(&row[p]));
        }
        for &(c, ci, m) in &metrics {
            out.push_str(&estimate_cell(m.column, &row[c], ci.map_or("", |i| row[i].as_str()), m.format));
        }
        let _ = writeln!(out, "<td>{}</td></tr>", escape(feasible.map_or("", |c| row[c].as_str())));
    }
    out.push_str("</tbody></table></div></section>\n");
    Ok(out)
}

fn paired_section(paired: &CsvTable) -> Result<String, ResultsError> {
    let path = "paired.csv";
    let (p, b, m, d, ci, sig) = (
        paired.require("policy", path)?,
        paired.require("baseline", path)?,
        paired.require("metric", path)?,
        paired.require("mean_diff", path)?,
        paired.require("ci95", path)?,
        paired.require("significant", path)?,
    );
    let baselines: Vec<&str> = {
        let mut v: Vec<&str> = paired.rows.iter().map(|r| r[b].as_str()).collect();
        v.dedup();
        v
    };
    let mut out = format!(
        "<section id=\"paired\"><h2>Paired differences</h2>\n<p>policy − baseline ({}), paired replication by \
         replication over common random numbers, ± the 95% half-width. <b>*</b>: the interval excludes zero, in \
         green when the policy is better, in red when worse.</p>\n",
        escape(&baselines.join(", "))
    );
    // One row per (baseline, policy), one column per headline metric present.
    let metrics: Vec<&str> =
        PAIRED_HEADLINE.iter().copied().filter(|h| paired.rows.iter().any(|r| r[m] == *h)).collect();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for r in &paired.rows {
        if !pairs.contains(&(r[b].as_str(), r[p].as_str())) {
            pairs.push((r[b].as_str(), r[p].as_str()));
        }
    }
    out.push_str("<div class=\"wide\"><table id=\"paired-table\"><thead><tr><th class=\"text\">baseline</th><th class=\"text\">policy</th>");
    for name in &metrics {
        let label = match metric(name).map(|x| x.format) {
            Some(Format::Percent) => format!("{name} (% points)"),
            _ => (*name).to_string(),
        };
        let _ = write!(out, "<th>{}</th>", escape(&label));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (base, policy) in pairs {
        let _ = write!(out, "<tr><td class=\"text\">{}</td><td class=\"text\">{}</td>", escape(base), escape(policy));
        for name in &metrics {
            let Some(row) = paired.rows.iter().find(|r| r[b] == base && r[p] == policy && r[m] == *name) else {
                out.push_str("<td>-</td>");
                continue;
            };
            let format = metric(name).map_or(Format::Significant(4), |x| x.format);
            let est = Estimate { mean: number(&row[d]).unwrap_or(f64::NAN), ci95: number(&row[ci]) };
            let (value, half) = format_estimate(est, format);
            let significant = row[sig] == "true";
            let text = match half {
                Some(h) => format!("{value} ± {h}"),
                None => value,
            };
            // Higher is better only for the success rate; every other headline metric is a cost.
            let class = match (significant, est.mean > 0.0, *name == "success_rate") {
                (true, up, higher_better) if up == higher_better => " class=\"better\"",
                (true, _, _) => " class=\"worse\"",
                _ => "",
            };
            let _ = write!(
                out,
                "<td{class} data-metric=\"{}\" data-mean=\"{}\" data-ci95=\"{}\">{}{}</td>",
                escape(name),
                escape(&row[d]),
                escape(&row[ci]),
                escape(&text),
                if significant { " *" } else { "" }
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n<details><summary>every metric (paired.csv)</summary>\n");
    out.push_str(&plain_table("paired-all", paired));
    out.push_str("</details></section>\n");
    Ok(out)
}

/// Every cell of `table` verbatim.
fn plain_table(id: &str, table: &CsvTable) -> String {
    let mut out = format!("<div class=\"wide\"><table id=\"{id}\"><thead><tr>");
    for h in &table.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The SVG files of `dir`: the known plots in [`PLOT_ORDER`], then the others by name.
pub fn plot_files(dir: &Path) -> Result<Vec<PathBuf>, ResultsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ResultsError::new(dir, format!("cannot be listed: {e}")))?;
    let mut svgs: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "svg") && path.is_file() {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            svgs.insert(stem, path);
        }
    }
    let mut out: Vec<PathBuf> = PLOT_ORDER.iter().filter_map(|name| svgs.remove(*name)).collect();
    out.extend(svgs.into_values());
    Ok(out)
}

fn plot_caption(stem: &str) -> String {
    match stem {
        "cost_vs_p95" => "Cost per 1k requests against p95 latency, with 95% intervals and the Pareto frontier.".into(),
        "latency_cdf" => "End-to-end latency CDF per policy, pooled over replications.".into(),
        "timeseries" => "Throughput, p95 latency, error rate and cost over time (the drain shaded).".into(),
        "cost_bars" => "Cost per 1k requests per policy with 95% intervals.".into(),
        "pareto" => "Every candidate of the tuning, the frontier, the baselines and the chosen configuration.".into(),
        "cost_vs_quality" => "Answer quality against cost per 1k requests, with 95% intervals, each policy's p95 \
                              latency and the non-decreasing convex hull with its AIQ."
            .into(),
        other => format!("{other}.svg"),
    }
}

fn plots_section(dir: &Path, quality: bool) -> Result<String, ResultsError> {
    let mut out = String::from("<section id=\"plots\"><h2>Plots</h2>\n");
    let mut files = plot_files(dir)?;
    if quality {
        // Shown in the Quality section.
        files.retain(|p| p.file_stem().is_none_or(|s| s != QUALITY_PLOT));
    }
    if files.is_empty() {
        out.push_str("<p>No plot in this directory.</p>\n");
    }
    for path in files {
        out.push_str(&figure(&path)?);
    }
    out.push_str("</section>\n");
    Ok(out)
}

/// One plot as a `<figure>`: the SVG inlined (or a note saying why it was left out) and its caption.
fn figure(path: &Path) -> Result<String, ResultsError> {
    let mut out = String::new();
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let text = read_optional(path)?.unwrap_or_default();
    let _ = writeln!(out, "<figure id=\"plot-{}\" data-file=\"{}.svg\">", escape(&stem), escape(&stem));
    match inline_svg(&text) {
        Some(svg) => {
            out.push_str(svg);
            out.push('\n');
        }
        None => {
            let _ = writeln!(
                out,
                "<p class=\"worse\">{}.svg left out: not a plain SVG drawing (holds a script, a link or \
                 foreign content, or is not SVG).</p>",
                escape(&stem)
            );
        }
    }
    let _ = writeln!(out, "<figcaption>{}</figcaption>\n</figure>", escape(&plot_caption(&stem)));
    Ok(out)
}

/// The stem of the cost-quality plot, shown in the Quality section rather than with the other plots.
const QUALITY_PLOT: &str = "cost_vs_quality";

/// The quality columns of the Quality table, after the policy, in order.
const QUALITY_COLUMNS: [&str; 5] = ["quality", "mean_score", "cost_per_acceptable", "cost_per_1k_usd", "latency_p95_s"];

/// The Quality section (only with quality on): per policy its quality, mean score and cost per acceptable
/// answer next to its cost and p95, whether it is on the non-decreasing convex hull of (cost per 1k,
/// quality), the hull's AIQ, the `cost_vs_quality` plot and `quality_by_class.csv`.
fn quality_section(dir: &Path, table: &CsvTable, file: &str) -> Result<String, ResultsError> {
    let policy = table.require("policy", file)?;
    let columns: Vec<(usize, Option<usize>, &str, Format, &str)> = QUALITY_COLUMNS
        .iter()
        .filter_map(|&name| {
            let c = table.column(name)?;
            let (format, header) = metric(name).map_or((Format::Significant(4), name), |m| (m.format, m.header));
            Some((c, table.column(&format!("{name}_ci95")), name, format, header))
        })
        .collect();
    let point = |row: &[String]| {
        let get = |name: &str| table.column(name).and_then(|c| number(&row[c])).unwrap_or(f64::NAN);
        (get("cost_per_1k_usd"), get("quality"))
    };
    let points: Vec<(f64, f64)> = table.rows.iter().map(|r| point(r)).collect();
    let hull = super::aiq::nondecreasing_hull(&points);
    let aiq = super::aiq::aiq(&points);
    let mut out = String::from("<section id=\"quality\"><h2>Quality</h2>\n");
    let _ = writeln!(
        out,
        "<p>Answer quality per policy: <b>quality</b> is acceptable answers over answered requests (a failed \
         request has no answer), <b>mean score</b> the mean score of the answers, <b>$/acceptable</b> the total \
         cost over the acceptable answers; mean over replications ± 95% confidence half-width. Bold policies \
         are on the non-decreasing convex hull of (cost per 1k requests, quality): the best quality any mix of \
         these policies reaches at its cost. {}</p>",
        escape(&match aiq {
            Some(a) => format!(
                "Its AIQ (RouterBench's average improvement in quality: the hull's mean height over the policies' \
                 cost range) is {}.",
                super::plots::tick(a)
            ),
            None => "No policy has a finite cost and quality, so there is no hull.".into(),
        })
    );
    out.push_str("<div class=\"wide\"><table id=\"quality-table\">\n<thead><tr><th class=\"text\">policy</th>");
    for (_, _, name, _, header) in &columns {
        let _ = write!(out, "<th title=\"{}\">{}</th>", escape(name), escape(header));
    }
    out.push_str("<th>on the hull</th></tr></thead>\n<tbody>\n");
    for (row, p) in table.rows.iter().zip(&points) {
        let on_hull = hull.contains(p);
        let _ = write!(
            out,
            "<tr{}><td class=\"text\" data-column=\"policy\">{}</td>",
            if on_hull { " class=\"frontier\"" } else { "" },
            escape(&row[policy])
        );
        for &(c, ci, name, format, _) in &columns {
            out.push_str(&estimate_cell(name, &row[c], ci.map_or("", |i| row[i].as_str()), format));
        }
        let _ = writeln!(out, "<td>{}</td></tr>", if on_hull { "yes" } else { "no" });
    }
    out.push_str("</tbody></table></div>\n");
    let plot = dir.join(format!("{QUALITY_PLOT}.svg"));
    if plot.is_file() {
        out.push_str(&figure(&plot)?);
    }
    if let Some(classes) = CsvTable::read_optional(&dir.join("quality_by_class.csv"))? {
        out.push_str("<h3>Quality per task class (quality_by_class.csv)</h3>\n");
        out.push_str(&plain_table("quality-classes-table", &classes));
    }
    out.push_str("</section>\n");
    Ok(out)
}

fn pre_section(id: &str, heading: &str, text: &str) -> String {
    format!("<section id=\"{id}\"><h2>{}</h2>\n<pre>{}</pre></section>\n", escape(heading), escape(text))
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(json_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn manifest_section(manifest: Option<&serde_json::Map<String, serde_json::Value>>) -> String {
    let Some(m) = manifest else { return String::new() };
    let mut out = String::from(
        "<section id=\"manifest\"><h2>Manifest (manifest.json)</h2>\n<table id=\"manifest-table\"><tbody>\n",
    );
    for (k, v) in m {
        let _ = writeln!(
            out,
            "<tr><th class=\"text\">{}</th><td class=\"text\">{}</td></tr>",
            escape(k),
            escape(&json_text(v))
        );
    }
    out.push_str("</tbody></table></section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_every_special_character() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape("plain ± text"), "plain ± text");
    }

    proptest::proptest! {
        #[test]
        fn escaped_text_holds_no_markup_and_round_trips(s in "\\PC*") {
            let e = escape(&s);
            proptest::prop_assert!(!e.contains(['<', '>', '"', '\'']));
            let back = e
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            proptest::prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn inline_svg_drops_the_prolog_and_refuses_active_content() {
        let svg = "<?xml version=\"1.0\"?>\n<svg viewBox=\"0 0 1 1\"><text>a &lt; b</text></svg>\n";
        assert_eq!(inline_svg(svg), Some("<svg viewBox=\"0 0 1 1\"><text>a &lt; b</text></svg>"));
        for bad in [
            "<svg><script>alert(1)</script></svg>",
            "<svg onload=\"alert(1)\"></svg>",
            "<svg><rect\n onclick = \"x()\"/></svg>",
            "<svg><a href=\"javascript:x()\">t</a></svg>",
            "<svg><foreignObject><div/></foreignObject></svg>",
            "<svg><image xlink:href=\"http://x/y.png\"/></svg>",
            "<html>no svg</html>",
            "<svg>unterminated",
        ] {
            assert_eq!(inline_svg(bad), None, "{bad}");
        }
        // The check is conservative: text that reads like a handler attribute is refused too.
        assert!(inline_svg("<svg><text font-size=\"3\"> one = two</text></svg>").is_none());
        assert!(inline_svg("<svg><text font-size=\"3\">online</text></svg>").is_some());
    }

    /// A results directory with a `summary.csv` of three policies, with or without the quality columns.
    fn run_dir(name: &str, quality: bool) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("routesim-html-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut header =
            "policy,replications,latency_p95_s,latency_p95_s_ci95,cost_per_1k_usd,cost_per_1k_usd_ci95".to_string();
        let mut rows = vec!["weak,3,1.5,0.1,0.5,0.01", "mid,3,2,0.1,1,0.02", "strong,3,3,0.2,2.5,0.05"]
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        if quality {
            header.push_str(
                ",quality,quality_ci95,mean_score,mean_score_ci95,cost_per_acceptable,cost_per_acceptable_ci95",
            );
            // (0.5, 0.6), (1, 0.65) below the chord to (2.5, 0.9) (0.675 at cost 1), (2.5, 0.9).
            for (row, q) in rows.iter_mut().zip([
                "0.6,0.01,0.6,0.01,0.00083,0.0001",
                "0.65,0.01,0.65,0.01,0.0015,0.0001",
                "0.9,0.01,0.9,0.01,0.0028,0.0001",
            ]) {
                row.push(',');
                row.push_str(q);
            }
        }
        std::fs::write(dir.join("summary.csv"), format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        dir
    }

    #[test]
    fn the_quality_section_appears_only_with_quality_columns() {
        let off = run_dir("quality-off", false);
        let html = render_report(&off).unwrap();
        assert!(!html.contains("id=\"quality\"") && !html.contains("href=\"#quality\""), "{html}");

        let on = run_dir("quality-on", true);
        std::fs::write(on.join("cost_vs_quality.svg"), "<svg viewBox=\"0 0 1 1\"><text>q</text></svg>").unwrap();
        std::fs::write(on.join("cost_vs_p95.svg"), "<svg viewBox=\"0 0 1 1\"><text>c</text></svg>").unwrap();
        std::fs::write(on.join("quality_by_class.csv"), "policy,class,quality\nweak,code,0.5\n").unwrap();
        let html = render_report(&on).unwrap();
        let section = &html[html.find("<section id=\"quality\">").expect("quality section")..];
        let section = &section[..section.find("</section>").unwrap()];
        assert!(html.contains("<li><a href=\"#quality\">Quality</a></li>"));
        // The middle policy is below the hull (0.675 at its cost); the AIQ is the hull's mean height: the
        // chord from (0.5, 0.6) to (2.5, 0.9) averages 0.75.
        assert!(section.contains("<tr class=\"frontier\"><td class=\"text\" data-column=\"policy\">weak</td>"));
        assert!(section.contains("<tr><td class=\"text\" data-column=\"policy\">mid</td>"));
        assert!(section.contains("<tr class=\"frontier\"><td class=\"text\" data-column=\"policy\">strong</td>"));
        assert!(section.contains("AIQ (RouterBench"), "{section}");
        assert!(section.contains("is 0.75."), "{section}");
        assert!(section.contains("data-column=\"quality\" data-mean=\"0.65\" data-ci95=\"0.01\""));
        assert!(section.contains("data-column=\"cost_per_acceptable\""));
        // The plot sits in the section, not again among the plots; the per-class table follows it.
        assert!(section.contains("<figure id=\"plot-cost_vs_quality\""));
        assert_eq!(html.matches("plot-cost_vs_quality").count(), 1);
        assert!(html.contains("<figure id=\"plot-cost_vs_p95\""));
        assert!(section.contains("quality-classes-table"));
        for dir in [off, on] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
