//! `report.html` end to end: written by `run`, `replay` and `tune`, rebuilt by `routesim report`, parsed with an
//! HTML5 parser: no script or external resource, every plot inline, the tables equal to the CSV files, and
//! everything taken from the files escaped. Also `replications.csv`, which the summary is computed from.

use scraper::{ElementRef, Html, Selector};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn routesim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routesim")).args(args).current_dir(repo_root()).output().expect("routesim runs")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("routesim-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("selector")
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("csv");
    let header = reader.headers().expect("header").iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.expect("row").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect::<String>()
}

fn report(dir: &Path) -> Html {
    Html::parse_document(&std::fs::read_to_string(dir.join("report.html")).expect("report.html written"))
}

/// No script, no event handler, nothing loaded from elsewhere: links only to anchors in the page.
fn assert_self_contained(doc: &Html) {
    assert_eq!(doc.select(&sel("script, iframe, object, embed, link, img, foreignObject")).count(), 0);
    for e in doc.select(&sel("*")) {
        for (name, value) in e.value().attrs() {
            assert!(!name.to_ascii_lowercase().starts_with("on"), "event handler {name}={value}");
            if name == "href" || name == "src" || name.ends_with(":href") {
                assert!(value.starts_with('#'), "external reference {name}={value}");
            }
        }
    }
}

/// One inline `<svg>` per SVG file of `dir`, in a figure named after it (among the plots, or, for the
/// `cost_vs_quality` plot of a run with quality on, in the Quality section).
fn assert_every_plot_inline(doc: &Html, dir: &Path) -> BTreeSet<String> {
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| {
            let p = e.expect("entry").path();
            p.extension().is_some_and(|x| x == "svg").then(|| p.file_stem().expect("stem").to_string_lossy().into())
        })
        .collect();
    assert!(!files.is_empty());
    let figures: BTreeSet<String> = doc
        .select(&sel("section#plots figure, section#quality figure"))
        .map(|f| {
            assert_eq!(f.select(&sel("svg")).count(), 1, "figure {:?} holds one svg", f.value().id());
            f.value().id().expect("figure id").trim_start_matches("plot-").to_string()
        })
        .collect();
    assert_eq!(figures, files);
    figures
}

/// The headline table: one row per row of `csv` (same order), and each numeric cell carries the CSV's exact
/// mean and half-width; the text shows the same number (to the table's rounding).
fn assert_headline_matches(doc: &Html, csv: &Path) {
    let (header, rows) = read_csv(csv);
    let col = |name: &str| header.iter().position(|h| h == name);
    let table_rows: Vec<ElementRef> = doc.select(&sel("#headline-table tbody tr")).collect();
    assert_eq!(table_rows.len(), rows.len());
    let mut checked = 0;
    for (tr, row) in table_rows.iter().zip(&rows) {
        let policy = tr.select(&sel("td[data-column=policy]")).next().expect("policy cell");
        assert_eq!(text(policy), row[col("policy").expect("policy column")]);
        for td in tr.select(&sel("td[data-mean]")) {
            let metric = td.value().attr("data-column").expect("column");
            let mean = &row[col(metric).expect("metric in csv")];
            let ci = &row[col(&format!("{metric}_ci95")).expect("ci column")];
            assert_eq!(td.value().attr("data-mean"), Some(mean.as_str()), "{metric}");
            assert_eq!(td.value().attr("data-ci95"), Some(ci.as_str()), "{metric}");
            let shown = text(td);
            let value: f64 = mean.parse().expect("number");
            if value.is_finite() {
                let first = shown.split('±').next().expect("value").trim();
                let parsed: f64 = first.parse().unwrap_or_else(|_| panic!("{metric}: {shown:?}"));
                let scale = if ["success_rate", "quality"].contains(&metric) { 100.0 } else { 1.0 };
                let tolerance = 0.5 * 10f64.powi(-(first.split('.').nth(1).map_or(0, str::len) as i32)) + 1e-12;
                assert!((parsed - value * scale).abs() <= tolerance, "{metric}: shown {shown:?}, csv {mean}");
                assert_eq!(shown.contains('±'), !ci.is_empty(), "{metric}: {shown:?} with ci {ci:?}");
            }
            checked += 1;
        }
    }
    assert!(checked >= rows.len() * 10, "only {checked} cells compared");
}

/// The table `id` holds every cell of `csv` verbatim, header included.
fn assert_table_equals_csv(doc: &Html, id: &str, csv: &Path) {
    let (header, rows) = read_csv(csv);
    let th: Vec<String> = doc.select(&sel(&format!("#{id} thead th"))).map(text).collect();
    assert_eq!(th, header, "{id} header");
    let cells: Vec<Vec<String>> =
        doc.select(&sel(&format!("#{id} tbody tr"))).map(|tr| tr.select(&sel("td")).map(text).collect()).collect();
    assert_eq!(cells, rows, "{id} cells");
}

#[test]
fn a_run_writes_a_report_that_matches_its_files_and_report_rebuilds_it() {
    let dir = temp_dir("run");
    let out = routesim(&[
        "run",
        "scenarios/quickstart.toml",
        "--requests",
        "20000",
        "--replications",
        "3",
        "--policies",
        "round-robin,latency,cost",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = report(&dir);
    assert_self_contained(&doc);
    let plots = assert_every_plot_inline(&doc, &dir);
    // The quickstart states accuracies (quality on): the cost-quality plot, in the Quality section.
    assert_eq!(
        plots,
        ["cost_bars", "cost_vs_p95", "cost_vs_quality", "latency_cdf", "timeseries"].map(String::from).into()
    );
    assert_eq!(doc.select(&sel("section#quality figure#plot-cost_vs_quality svg")).count(), 1);
    assert_eq!(doc.select(&sel("#quality-table tbody tr")).count(), 3, "one quality row per policy");
    assert_headline_matches(&doc, &dir.join("summary.csv"));
    assert_table_equals_csv(&doc, "summary-table", &dir.join("summary.csv"));
    assert_table_equals_csv(&doc, "paired-all", &dir.join("paired.csv"));
    assert_table_equals_csv(&doc, "classes-table", &dir.join("classes.csv"));
    // The headline paired differences carry paired.csv's numbers: one row per policy against the baseline.
    let (_, paired) = read_csv(&dir.join("paired.csv"));
    let rows: Vec<ElementRef> = doc.select(&sel("#paired-table tbody tr")).collect();
    assert_eq!(rows.len(), 2, "two policies against the baseline");
    let mut cells = 0;
    for tr in rows {
        let policy = text(tr.select(&sel("td")).nth(1).expect("policy"));
        for td in tr.select(&sel("td[data-metric]")) {
            let (metric, mean, ci) = (
                td.value().attr("data-metric").expect("metric"),
                td.value().attr("data-mean").expect("mean"),
                td.value().attr("data-ci95").expect("ci"),
            );
            let row = paired.iter().find(|r| r[0] == policy && r[2] == metric).expect("in paired.csv");
            assert_eq!((mean, ci), (row[3].as_str(), row[4].as_str()), "{policy} {metric}");
            assert_eq!(text(td).ends_with('*'), row[5] == "true", "{policy} {metric}: {}", text(td));
            cells += 1;
        }
    }
    assert_eq!(cells, 2 * 6);
    let scenario = std::fs::read_to_string(dir.join("scenario.toml")).expect("scenario");
    assert_eq!(text(doc.select(&sel("#scenario pre")).next().expect("scenario section")), scenario);
    let manifest = text(doc.select(&sel("#manifest-table")).next().expect("manifest"));
    assert!(manifest.contains("report.html") && manifest.contains("warnings.txt") && manifest.contains("20250101"));
    assert!(doc.select(&sel("#warnings")).next().is_some());

    // `routesim report` rebuilds the same page from the files (the manifest is read, not rewritten).
    let before = std::fs::read_to_string(dir.join("report.html")).expect("report");
    std::fs::remove_file(dir.join("report.html")).expect("remove");
    let out = routesim(&["report", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("report.html")).expect("rebuilt"), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_per_replication_table_is_what_the_summary_averages() {
    let dir = temp_dir("reps");
    let out = routesim(&[
        "run",
        "scenarios/quickstart.toml",
        "--requests",
        "20000",
        "--replications",
        "4",
        "--policies",
        "round-robin,latency",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("replications.parquet").is_file());
    let (rh, reps) = read_csv(&dir.join("replications.csv"));
    let (sh, summary) = read_csv(&dir.join("summary.csv"));
    assert_eq!(&rh[..2], ["policy", "replication"]);
    assert_eq!(reps.len(), 2 * 4);
    for row in &summary {
        let mine: Vec<&Vec<String>> = reps.iter().filter(|r| r[0] == row[0]).collect();
        let indices: Vec<&str> = mine.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(indices, ["0", "1", "2", "3"], "{}", row[0]);
        for (j, metric) in rh.iter().enumerate().skip(2) {
            let values: Vec<f64> = mine.iter().map(|r| r[j].parse::<f64>().expect("number")).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let expected: f64 = row[sh.iter().position(|h| h == metric).expect("in summary")].parse().expect("number");
            assert!(expected.is_finite(), "{} {metric}: the run measured nothing", row[0]);
            assert!(
                (mean - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{} {metric}: {mean} vs {expected}",
                row[0]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_escapes_what_it_embeds_and_leaves_out_active_svg() {
    let dir = temp_dir("escape");
    let out = routesim(&[
        "run",
        "scenarios/quickstart.toml",
        "--requests",
        "1000",
        "--replications",
        "2",
        "--policies",
        "round-robin,latency",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hostile = "<script>alert('x')</script>&amp;\"q\"";
    let summary = std::fs::read_to_string(dir.join("summary.csv")).expect("summary");
    let edited = summary.replacen("\nlatency,", &format!("\n\"{}\",", hostile.replace('"', "\"\"")), 1);
    assert_ne!(edited, summary);
    std::fs::write(dir.join("summary.csv"), edited).expect("write");
    std::fs::write(dir.join("warnings.txt"), "queues <b>not</b> steady\n").expect("write");
    let mut scenario = std::fs::read_to_string(dir.join("scenario.toml")).expect("scenario");
    scenario.push_str("# </pre><script>x()</script>\n");
    std::fs::write(dir.join("scenario.toml"), &scenario).expect("write");
    std::fs::write(dir.join("evil.svg"), "<svg onload=\"alert(1)\"><rect/></svg>").expect("write");

    let out = routesim(&["report", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = report(&dir);
    assert_self_contained(&doc);
    let policies: Vec<String> = doc.select(&sel("#headline-table td[data-column=policy]")).map(text).collect();
    assert_eq!(policies, ["round-robin", hostile]);
    assert_eq!(text(doc.select(&sel("#warnings li")).next().expect("warning")), "queues <b>not</b> steady");
    assert_eq!(text(doc.select(&sel("#scenario pre")).next().expect("scenario")), scenario);
    let evil = doc.select(&sel("figure#plot-evil")).next().expect("the plot is named");
    assert_eq!(evil.select(&sel("svg")).count(), 0);
    assert!(text(evil).contains("left out"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_rejects_a_directory_without_results() {
    let dir = temp_dir("empty");
    std::fs::create_dir_all(&dir).expect("dir");
    let out = routesim(&["report", dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(dir.to_str().expect("utf-8")) && err.contains("summary.csv") && err.contains("candidates.csv"),
        "{err}"
    );
    std::fs::write(dir.join("summary.csv"), "policy,replications\na,1,extra\n").expect("write");
    let out = routesim(&["report", dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("summary.csv") && err.contains("row 2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_and_tune_write_their_reports() {
    let dir = temp_dir("replay-tune");
    let replay = dir.join("replay");
    let out = routesim(&[
        "replay",
        "scenarios/replay.toml",
        "--log",
        "scenarios/logs/litellm-spend-logs.csv",
        "--replications",
        "2",
        "--out",
        replay.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = report(&replay);
    assert_self_contained(&doc);
    assert_every_plot_inline(&doc, &replay);
    assert_headline_matches(&doc, &replay.join("summary.csv"));
    let policies: Vec<String> = doc.select(&sel("#headline-table td[data-column=policy]")).map(text).collect();
    assert_eq!(policies.last().map(String::as_str), Some("as logged"));
    assert!(doc.select(&sel("#malformed pre")).next().is_some());
    assert!(text(doc.select(&sel("h1")).next().expect("title")).starts_with("routesim replay"));

    let tune = dir.join("tune");
    let out = routesim(&[
        "tune",
        "scenarios/hybrid-tuning.toml",
        "--constraint",
        "success >= 0.9",
        "--candidates",
        "5",
        "--replications",
        "2",
        "--requests",
        "8000",
        "--method",
        "lhs",
        "--out",
        tune.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = report(&tune);
    assert_self_contained(&doc);
    assert_eq!(assert_every_plot_inline(&doc, &tune), ["pareto".to_string()].into());
    assert_headline_matches(&doc, &tune.join("baselines.csv"));
    assert_table_equals_csv(&doc, "summary-table", &tune.join("candidates.csv"));
    let (_, pareto) = read_csv(&tune.join("pareto.csv"));
    let frontier: Vec<String> = doc.select(&sel("#frontier-table tbody tr td:first-child")).map(text).collect();
    assert_eq!(frontier, pareto.iter().map(|r| r[0].clone()).collect::<Vec<_>>());
    let best = std::fs::read_to_string(tune.join("best-policy.toml")).expect("best");
    assert_eq!(text(doc.select(&sel("#best-policy pre")).next().expect("best section")), best);
    let _ = std::fs::remove_dir_all(&dir);
}
