//! The plain-text summary table printed at the end of a run.
//!
//! One aligned row per policy with `value ± half-width` cells, followed by the paired differences
//! against the baseline. Plain ASCII layout (apart from `±`), no colours, no terminal-width probing:
//! the same report always renders to the same string. Which metrics appear, their headers and their
//! number formats come from [`METRICS`](super::model::METRICS).

use std::fmt::Write as _;

use super::model::{Estimate, Format, Metric, PairedRow, RunReport, metric, metrics};

/// The metrics whose paired differences the terminal shows (`paired.csv` has every metric).
const HEADLINE: [&str; 6] =
    ["success_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s", "cost_per_1k_usd", "errors_429"];

/// Separator between columns.
const GAP: &str = "  ";

/// Renders the summary table and the paired-difference block of `report`.
///
/// Cells read `value ± half-width` where a 95% half-width exists, and just `value` otherwise.
/// Paired differences whose interval excludes zero are marked with `*`. The output ends with a
/// newline and is identical for identical input.
pub fn render_table(report: &RunReport) -> String {
    let mut out = String::new();
    let reps = report.replications;
    let _ = writeln!(
        out,
        "Scenario \"{}\", seed {}, {} replication{}{}",
        report.scenario,
        report.seed,
        reps,
        if reps == 1 { "" } else { "s" },
        if reps > 1 {
            "; cells show mean ± 95% CI half-width"
        } else {
            "; no confidence intervals with one replication"
        },
    );
    out.push('\n');
    render_policy_rows(report, &mut out);
    if !report.paired.is_empty() {
        out.push('\n');
        render_paired(report, &mut out);
    }
    out
}

// ===== policy rows =====

fn render_policy_rows(report: &RunReport, out: &mut String) {
    // `denied` (client keys) joins the table when some policy has denials.
    let denials = report.rows.iter().any(|r| r.denied.mean > 0.0);
    // The quality columns (`quality %`, `$/acceptable`) only with quality on.
    let metrics: Vec<&Metric> =
        metrics(report.quality_on()).filter(|m| m.in_table || (denials && m.column == "denied")).collect();
    let mut columns: Vec<Column> = Vec::with_capacity(metrics.len() + 1);
    columns.push(Column {
        header: "policy".to_string(),
        left_align: true,
        cells: report.rows.iter().map(|r| Cell::plain(r.policy.clone())).collect(),
    });
    for m in &metrics {
        columns.push(Column {
            header: m.header.to_string(),
            left_align: false,
            cells: report.rows.iter().map(|r| Cell::estimate((m.get)(r), m.format)).collect(),
        });
    }
    write_columns(&columns, report.rows.len(), out);
}

// ===== paired block =====

fn render_paired(report: &RunReport, out: &mut String) {
    let baseline =
        report.baseline.as_deref().or_else(|| report.paired.first().map(|p| p.baseline.as_str())).unwrap_or("");
    let _ = writeln!(
        out,
        "Paired differences against baseline \"{baseline}\" (policy - baseline; * = 95% CI excludes zero; \
         headline metrics, all in paired.csv)"
    );
    out.push('\n');
    render_paired_rows(&report.paired, false, out);
}

/// The headline paired differences of `paired` as aligned rows (with a `baseline` column when
/// `show_baseline`), without a heading.
pub fn render_paired_rows(paired: &[PairedRow], show_baseline: bool, out: &mut String) {
    let rows: Vec<_> = paired.iter().filter(|p| HEADLINE.contains(&p.metric.as_str())).collect();
    let format_of = |name: &str| metric(name).map_or(Format::Significant(4), |m| m.format);
    let mut columns = Vec::with_capacity(5);
    if show_baseline {
        columns.push(Column {
            header: "baseline".to_string(),
            left_align: true,
            cells: rows.iter().map(|p| Cell::plain(p.baseline.clone())).collect(),
        });
    }
    columns.extend([
        Column {
            header: "policy".to_string(),
            left_align: true,
            cells: rows.iter().map(|p| Cell::plain(p.policy.clone())).collect(),
        },
        Column {
            header: "metric".to_string(),
            left_align: true,
            cells: rows
                .iter()
                .map(|p| {
                    let label = match format_of(&p.metric) {
                        Format::Percent => format!("{} (% points)", p.metric),
                        _ => p.metric.clone(),
                    };
                    Cell::plain(label)
                })
                .collect(),
        },
        Column {
            header: "difference".to_string(),
            left_align: false,
            cells: rows
                .iter()
                .map(|p| {
                    let est = Estimate { mean: p.mean_diff, ci95: p.ci95 };
                    Cell::estimate(est, format_of(&p.metric))
                })
                .collect(),
        },
        Column {
            header: String::new(),
            left_align: true,
            cells: rows.iter().map(|p| Cell::plain(if p.significant { "*" } else { "" }.to_string())).collect(),
        },
    ]);
    write_columns(&columns, rows.len(), out);
}

// ===== layout =====

/// A table cell: a value and an optional half-width, aligned separately.
pub(crate) struct Cell {
    value: String,
    half_width: Option<String>,
}

impl Cell {
    /// A cell without a half-width.
    pub(crate) fn plain(value: String) -> Self {
        Self { value, half_width: None }
    }

    /// The cell with `mark` appended (e.g. `*` for a significant difference).
    pub(crate) fn marked(mut self, mark: &str) -> Self {
        match &mut self.half_width {
            Some(h) => h.push_str(&format!(" {mark}")),
            None => self.value.push_str(&format!(" {mark}")),
        }
        self
    }

    /// A cell `value ± half-width` in the metric's format.
    pub(crate) fn estimate(est: Estimate, format: Format) -> Self {
        let (value, half_width) = format_estimate(est, format);
        Self { value, half_width }
    }
}

/// A table column: header, alignment and cells.
pub(crate) struct Column {
    /// Header text.
    pub(crate) header: String,
    /// Left-aligned (text) rather than right-aligned (numbers).
    pub(crate) left_align: bool,
    /// One cell per row.
    pub(crate) cells: Vec<Cell>,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Writes aligned columns (header, rule, rows) to `out`.
pub(crate) fn write_columns(columns: &[Column], n_rows: usize, out: &mut String) {
    // Per column: width of the value part, of the half-width part, and of the whole column.
    let layout: Vec<(usize, usize, usize)> = columns
        .iter()
        .map(|c| {
            let vw = c.cells.iter().map(|x| width(&x.value)).max().unwrap_or(0);
            let hw = c
                .cells
                .iter()
                .filter_map(|x| x.half_width.as_deref().map(width))
                .max()
                .map_or(0, |w| w + " ± ".len() - 1); // "±" is one column, two bytes
            let total = (vw + hw).max(width(&c.header));
            (vw, hw, total)
        })
        .collect();

    let mut lines: Vec<String> = Vec::with_capacity(n_rows + 2);
    let header: Vec<String> =
        columns.iter().zip(&layout).map(|(c, &(_, _, total))| pad(&c.header, total, c.left_align)).collect();
    lines.push(header.join(GAP));
    let rule: Vec<String> = layout.iter().map(|&(_, _, total)| "-".repeat(total)).collect();
    lines.push(rule.join(GAP));
    for row in 0..n_rows {
        let cells: Vec<String> = columns
            .iter()
            .zip(&layout)
            .map(|(c, &(vw, hw, total))| {
                let Some(cell) = c.cells.get(row) else {
                    return " ".repeat(total);
                };
                let mut text = pad(&cell.value, vw, c.left_align);
                if hw > 0 {
                    match &cell.half_width {
                        Some(h) => text.push_str(&pad(&format!(" ± {h}"), hw, false)),
                        None => text.push_str(&" ".repeat(hw)),
                    }
                }
                pad(&text, total, c.left_align)
            })
            .collect();
        lines.push(cells.join(GAP));
    }
    for line in lines {
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn pad(s: &str, total: usize, left_align: bool) -> String {
    let fill = " ".repeat(total.saturating_sub(width(s)));
    if left_align { format!("{s}{fill}") } else { format!("{fill}{s}") }
}

// ===== number formats =====

/// Formats an estimate's mean and half-width with the same number of decimals.
pub(crate) fn format_estimate(est: Estimate, format: Format) -> (String, Option<String>) {
    if est.mean.is_nan() {
        // Not measured (no successful request, or a quantity a log does not record).
        return ("-".to_string(), None);
    }
    let (scale, decimals) = match format {
        Format::Count => {
            let integral = est.ci95.is_none() && est.mean.is_finite() && est.mean.fract() == 0.0;
            (1.0, if integral { 0 } else { 1 })
        }
        Format::Percent => (100.0, 2),
        Format::Significant(digits) => {
            let magnitude =
                [est.mean, est.ci95.unwrap_or(0.0)].into_iter().map(f64::abs).find(|x| x.is_finite() && *x > 0.0);
            (1.0, decimals_for(magnitude, digits))
        }
    };
    let value = fixed(est.mean * scale, decimals);
    let half_width = est.ci95.map(|h| fixed(h * scale, decimals));
    (value, half_width)
}

/// Decimals that show `digits` significant digits of `magnitude` (at most 9).
fn decimals_for(magnitude: Option<f64>, digits: u32) -> usize {
    let Some(m) = magnitude else {
        return digits.saturating_sub(1) as usize;
    };
    let exponent = m.log10().floor() as i64;
    (i64::from(digits) - 1 - exponent).clamp(0, 9) as usize
}

/// Fixed-point formatting without a negative zero.
fn fixed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{PairedRow, PolicyRow};

    fn row(policy: &str, p95: f64, ci: Option<f64>) -> PolicyRow {
        let e = |mean: f64, hw: f64| Estimate { mean, ci95: ci.map(|_| hw) };
        PolicyRow {
            policy: policy.to_string(),
            replications: 3,
            requests: e(1000.0, 0.0),
            success_rate: e(0.995, 0.0021),
            latency_mean_s: e(1.1, 0.05),
            latency_p50_s: e(0.8123, 0.0213),
            latency_p95_s: e(p95, ci.unwrap_or(0.0)),
            latency_p99_s: e(4.5, 0.31),
            ttft_p50_s: e(0.4512, 0.0101),
            ttft_p95_s: e(0.9, 0.02),
            cost_usd: e(12.3456, 0.123),
            cost_per_1k_usd: e(12.3456, 0.123),
            errors_429: e(14.0 / 3.0, 2.0),
            errors_5xx: e(1.0, 0.5),
            timeouts: e(0.0, 0.0),
            ttft_timeouts: e(0.0, 0.0),
            retries: e(20.0, 3.0),
            fallbacks: e(3.0, 1.5),
            cache_hits: e(0.0, 0.0),
            rejected: e(0.0, 0.0),
            ..PolicyRow::default()
        }
    }

    fn report() -> RunReport {
        RunReport {
            scenario: "quickstart".into(),
            seed: 42,
            replications: 3,
            baseline: Some("round-robin".into()),
            rows: vec![row("round-robin", 2.5, Some(0.2)), row("hybrid", 1.75, Some(0.1))],
            paired: vec![
                PairedRow::new("hybrid", "round-robin", "latency_p95_s", -0.75, Some(0.12)),
                PairedRow::new("hybrid", "round-robin", "success_rate", 0.001, Some(0.002)),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn golden_table_with_confidence_intervals_and_paired_block() {
        let expected = "\
Scenario \"quickstart\", seed 42, 3 replications; cells show mean ± 95% CI half-width

policy            requests        success %           p50 s          p95 s      p99 s       TTFT p50 s         cost USD       USD/1k req     429s       retries     fallbacks
-----------  -------------  ---------------  --------------  -------------  ---------  ---------------  ---------------  ---------------  ---------  ----------  ------------
round-robin  1000.0 ± 0.0  99.50 ± 0.21  0.8123 ± 0.0213  2.500 ± 0.200  4.500 ± 0.310  0.4512 ± 0.0101  12.35 ± 0.12  12.35 ± 0.12  4.7 ± 2.0  20.0 ± 3.0  3.0 ± 1.5
";
        let got = render_table(&report());
        assert_eq!(got.lines().next(), expected.lines().next());
        // The full output is pinned in a golden file (regenerate with UPDATE_GOLDEN=1).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/table.txt");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &got).expect("write golden");
        }
        let golden = std::fs::read_to_string(&path).expect("golden table");
        assert_eq!(got, golden, "\n{got}");
    }

    #[test]
    fn single_replication_shows_plain_values() {
        let mut r = report();
        r.replications = 1;
        r.rows = vec![row("only", 2.0, None)];
        r.paired.clear();
        let got = render_table(&r);
        assert!(!got.contains('±'), "{got}");
        assert!(got.contains("no confidence intervals"), "{got}");
        assert!(!got.contains("Paired"), "{got}");
        // Integral counts without an interval have no decimals.
        let line = got.lines().find(|l| l.starts_with("only")).expect("row");
        assert!(line.split_whitespace().nth(1) == Some("1000"), "{got}");
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render_table(&report()), render_table(&report()));
    }

    #[test]
    fn negative_zero_is_printed_without_sign() {
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(-0.01, 2), "-0.01");
    }

    #[test]
    fn significant_digits_follow_magnitude() {
        assert_eq!(decimals_for(Some(0.4567), 4), 4);
        assert_eq!(decimals_for(Some(12.3), 4), 2);
        assert_eq!(decimals_for(Some(12345.0), 4), 0);
        assert_eq!(decimals_for(None, 4), 3);
    }
}
