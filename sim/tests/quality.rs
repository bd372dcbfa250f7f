//! Answer quality end to end (issue 30): the closed forms with no capacity limit, RouteLLM's ordering on
//! `scenarios/strong-weak.toml`, the cascade, determinism and common random numbers with quality on, and
//! the golden output of a small quality scenario.
//!
//! Regenerate the golden file after an intended change with `UPDATE_GOLDEN=1 cargo test -p sim --test quality`.

use router_core::quality::{acceptance, solve_theta};
use sim::engine::{self, RunOptions, RunResult};
use sim::experiment::{self, ExperimentOptions};
use sim::quality::estimate_sigma;
use sim::report::{PolicyRow, render_table};
use sim::scenario::{Compiled, Scenario};
use sim::validate::quality::{
    CLASSES, MODEL, closed_forms, expect_over_difficulty, mix_quality, oracle_quality, threshold_form,
};
use std::path::Path;

const STRONG_WEAK: &str = include_str!("../../scenarios/strong-weak.toml");

fn compile(file: &str, text: &str, requests: u64, replications: u32) -> Compiled {
    let path = Path::new(file);
    let mut s = Scenario::parse(path, text).unwrap_or_else(|e| panic!("{e}"));
    s.requests = Some(requests);
    s.duration = None;
    s.replications = replications;
    s.warmup = None;
    s.warmup_requests = Some(requests / 10);
    s.compile(path).unwrap_or_else(|e| panic!("{e}"))
}

fn rows(model: &Compiled) -> Vec<PolicyRow> {
    let all: Vec<usize> = (0..model.scenario.policies.len()).collect();
    let exp = experiment::run(model, &all, &ExperimentOptions::default()).expect("runs");
    experiment::report(model, &exp).rows
}

fn row<'a>(rows: &'a [PolicyRow], name: &str) -> &'a PolicyRow {
    rows.iter().find(|r| r.policy == name).unwrap_or_else(|| panic!("no policy {name}"))
}

/// `|mean - expected|` within the row's 95% half-width (plus 1e-9 for rounding).
fn within_ci(r: &PolicyRow, get: fn(&PolicyRow) -> sim::report::Estimate, expected: f64, what: &str) {
    let e = get(r);
    let half = e.ci95.expect("several replications");
    assert!((e.mean - expected).abs() <= half + 1e-9, "{} {what}: {} ± {half}, expected {expected}", r.policy, e.mean);
}

#[test]
fn quality_off_leaves_runs_without_quality_counters() {
    let text = include_str!("../../scenarios/quickstart.toml");
    let model = compile("scenarios/quickstart.toml", text, 2_000, 1);
    if model.quality.is_some() {
        return; // the quickstart states accuracies: nothing to check here
    }
    let r = engine::run(&model, 0, 0, RunOptions::default());
    assert!(r.metrics.quality.is_none());
    assert!(!experiment::replication_row(&r).quality_on);
}

#[test]
fn the_closed_forms_hold_in_the_validation_model() {
    // scenarios/validation/quality.toml at 10 replications of 40,000 requests. Twelve checks at 95% would
    // fail by chance about half the time for a correct simulator, so each bound is the 99.9% interval
    // (t(9) quantiles 4.781 and 2.262 scale the 95% half-width).
    let model = compile(MODEL.0, MODEL.1, 40_000, 10);
    let all: Vec<usize> = (0..model.scenario.policies.len()).collect();
    let exp = experiment::run(&model, &all, &ExperimentOptions::default()).expect("runs");
    let report = experiment::report(&model, &exp);
    let rows = &report.rows;
    let widen = 4.781 / 2.262;
    let check = |what: &str, v: sim::report::Estimate, expected: f64| {
        let half = v.ci95.expect("replications") * widen;
        assert!((v.mean - expected).abs() <= half, "{what}: {} ± {half}, expected {expected}", v.mean);
    };
    let (random, share, threshold, oracle) = closed_forms();
    check("random-30 quality (linear mix)", row(rows, "random-30").quality, random);
    check("threshold quality (integral over d)", row(rows, "threshold").quality, threshold);
    check("oracle quality = P(some endpoint accepts)", row(rows, "oracle").quality, oracle);
    let at = |name: &str| model.policy_names().iter().position(|p| p == name).expect("policy");
    let shares: Vec<f64> = exp.runs[at("threshold")]
        .iter()
        .map(|r: &RunResult| r.metrics.endpoint_attempts[0] as f64 / r.metrics.counts.attempts as f64)
        .collect();
    check("threshold strong share", (&sim::stats::mean_ci95(&shares)).into(), share);
    for (policy, strong) in [("all-strong", true), ("all-weak", false)] {
        for c in CLASSES {
            let q = report
                .class_quality
                .iter()
                .find(|q| q.policy == policy && q.class == c.name)
                .unwrap_or_else(|| panic!("{policy} {}", c.name));
            check(&format!("{policy} on {}", c.name), q.quality, if strong { c.strong } else { c.weak });
        }
    }
}

#[test]
fn strong_weak_reproduces_routellms_ordering_at_every_strong_share() {
    let model = compile("scenarios/strong-weak.toml", STRONG_WEAK, 20_000, 5);
    let rows = rows(&model);
    let (ts, tw, a) = (solve_theta(0.9, 1.7), solve_theta(0.6, 1.7), 1.7);
    let sigma = estimate_sigma(0.8);
    let oracle = row(&rows, "oracle");
    within_ci(oracle, |r| r.quality, oracle_quality(&[ts, tw], a), "quality");
    for (share, t) in [(20, 1.04), (50, 0.0), (80, -1.04)] {
        let random = row(&rows, &format!("random-{share}"));
        let threshold = row(&rows, &format!("threshold-{share}"));
        // Each against its closed form...
        let w = share as f64 / 100.0;
        within_ci(random, |r| r.quality, mix_quality(&[(w, 0.9), (1.0 - w, 0.6)]), "quality");
        let (_, q) = threshold_form(ts, tw, a, sigma, t);
        within_ci(threshold, |r| r.quality, q, "quality");
        // ... and the ordering at the same strong share: oracle >= threshold (AUC 0.8) >= random.
        assert!(threshold.quality.mean > random.quality.mean, "share {share}: {threshold:?} vs {random:?}");
        assert!(oracle.quality.mean > threshold.quality.mean, "share {share}");
        assert!(threshold.quality.lower() > random.quality.mean - random.quality.ci95.unwrap_or(0.0) - 1e-9);
        // Cheaper per acceptable answer than random at the same share.
        assert!(threshold.cost_per_acceptable.mean < random.cost_per_acceptable.mean, "share {share}");
    }
    // The oracle has the highest quality of all, at a strong share of P(weak fails and strong succeeds).
    assert!(rows.iter().all(|r| r.policy == "oracle" || r.quality.mean < oracle.quality.mean));
}

/// Two endpoints of constant service time and a cascade weak -> strong with a perfect verifier.
const CASCADE: &str = r#"
name = "cascade"
seed = 3
replications = 6
requests = 20000

[traffic]
rate = 20.0

[[traffic.classes]]
name = "chat"
input_tokens = { dist = "constant", value = 1000 }
output_tokens = { dist = "constant", value = 100 }

[[endpoints]]
id = "strong"
price = { input_per_mtok = 10.0, output_per_mtok = 30.0 }
slots = 100000
ttft = { dist = "constant", value = "1s" }
tpot = { dist = "constant", value = "0s" }
quality = { default = 0.9 }

[[endpoints]]
id = "weak"
price = { input_per_mtok = 1.0, output_per_mtok = 1.0 }
slots = 100000
ttft = { dist = "constant", value = "200ms" }
tpot = { dist = "constant", value = "0s" }
quality = { default = 0.6 }

[health]
interval = "0s"

[[policies]]
name = "cascade"
kind = "cascade"
targets = ["weak", "strong"]
verifier = { precision = 1.0, recall = 1.0 }
"#;

#[test]
fn a_cascade_with_a_perfect_verifier_escalates_exactly_the_unacceptable_answers() {
    let model = compile("cascade.toml", CASCADE, 20_000, 6);
    let exp = experiment::run(&model, &[0], &ExperimentOptions::default()).expect("runs");
    let (ts, tw, a) = (solve_theta(0.9, 1.7), solve_theta(0.6, 1.7), 1.7);
    // Quality: the weak answer when acceptable, else the strong one: E[p_w + (1 - p_w) p_s], the oracle's.
    let want = expect_over_difficulty(|d| {
        let (pw, ps) = (acceptance(tw, a, d), acceptance(ts, a, d));
        pw + (1.0 - pw) * ps
    });
    let row = &experiment::report(&model, &exp).rows[0];
    let half = row.quality.ci95.expect("reps") * 4.032 / 2.571; // 99% with 6 replications
    assert!((row.quality.mean - want).abs() <= half, "{:?} vs {want}", row.quality);
    for r in &exp.runs[0] {
        let q = r.metrics.quality.as_ref().expect("quality on");
        let m = &r.metrics;
        // Every request tries the weak endpoint; exactly the escalated ones then try the strong one.
        assert_eq!(m.endpoint_attempts[1], m.counts.requests);
        assert_eq!(m.endpoint_attempts[0], q.escalations);
        // Both attempts are paid for: 1000 in and 100 out per attempt.
        let weak = (1000.0 * 1.0 + 100.0 * 1.0) / 1e6;
        let strong = (1000.0 * 10.0 + 100.0 * 30.0) / 1e6;
        let cost = m.counts.requests as f64 * weak + q.escalations as f64 * strong;
        assert!((m.cost_usd - cost).abs() < 1e-9 * cost, "{} vs {cost}", m.cost_usd);
        // The latency ends at the final answer: 0.2 s, or 0.2 + 1 s when escalated.
        let mean = (m.counts.requests as f64 * 0.2 + q.escalations as f64 * 1.0) / m.counts.requests as f64;
        assert!((m.latency.mean_s() - mean).abs() < 0.002 * mean, "{} vs {mean}", m.latency.mean_s());
        // The escalated share is the weak endpoint's failure rate, 0.4 (standard error 0.0035).
        let share = q.escalations as f64 / m.counts.requests as f64;
        assert!((share - 0.4).abs() < 0.02, "escalated {share}");
    }
}

fn summary_bytes(model: &Compiled, threads: usize) -> String {
    let all: Vec<usize> = (0..model.scenario.policies.len()).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    let exp = pool.install(|| experiment::run(model, &all, &ExperimentOptions::default())).expect("runs");
    let report = experiment::report(model, &exp);
    let mut df = sim::report::files::summary_frame(&report).expect("frame");
    let csv = String::from_utf8(sim::report::csv_bytes(&mut df).expect("csv")).expect("utf8");
    format!("{csv}{:?}", report.class_quality)
}

#[test]
fn quality_runs_are_deterministic_for_any_thread_count() {
    let model = compile("scenarios/strong-weak.toml", STRONG_WEAK, 4_000, 3);
    let one = summary_bytes(&model, 1);
    assert!(one.contains("quality"), "{one}");
    assert_eq!(one, summary_bytes(&model, 2));
    assert_eq!(one, summary_bytes(&model, 1));
}

#[test]
fn every_policy_sees_the_same_outcome_on_the_same_endpoint() {
    // Two policies that send everything to `strong` (one by fallback, one by weight) see the same outcomes;
    // so does the same policy in a scenario listing the endpoints in the other order (outcomes are keyed by
    // the endpoint's id, not its index).
    let base = MODEL.1.replace("[[policies]]\nname = \"random-30\"", "[[policies]]\nname = \"random-strong\"").replace(
        "targets = [{ id = \"strong\", weight = 0.3 }, { id = \"weak\", weight = 0.7 }]",
        "targets = [{ id = \"strong\", weight = 1.0 }, { id = \"weak\", weight = 0.0 }]",
    );
    let model = compile(MODEL.0, &base, 5_000, 1);
    let names = model.policy_names();
    let at = |n: &str| names.iter().position(|p| p == n).expect("policy");
    let counts = |m: &Compiled, p: usize| engine::run(m, p, 0, RunOptions::default()).metrics.quality.expect("on");
    let by_weight = counts(&model, at("random-strong"));
    let by_fallback = counts(&model, at("all-strong"));
    assert_eq!(by_weight, by_fallback);
    // Swap the two [[endpoints]] blocks.
    let strong_start = base.find("[[endpoints]]\nid = \"strong\"").expect("strong");
    let weak_start = base.find("[[endpoints]]\nid = \"weak\"").expect("weak");
    let end = base.find("[health]").expect("health");
    let swapped = format!(
        "{}{}{}{}",
        &base[..strong_start],
        &base[weak_start..end],
        &base[strong_start..weak_start],
        &base[end..]
    );
    let other = compile(MODEL.0, &swapped, 5_000, 1);
    assert_eq!(other.endpoint_ids(), ["weak", "strong"]);
    assert_eq!(counts(&other, at("all-strong")), by_fallback);
}

#[test]
fn golden_quality_table_and_class_file() {
    let model = compile(MODEL.0, MODEL.1, 3_000, 2);
    let all: Vec<usize> = (0..model.scenario.policies.len()).collect();
    let exp = experiment::run(&model, &all, &ExperimentOptions::default()).expect("runs");
    let report = experiment::report(&model, &exp);
    let dir = std::env::temp_dir().join(format!("routesim-quality-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let class_file = sim::report::write_class_quality(&report, &dir).expect("quality_by_class.csv");
    let classes = std::fs::read_to_string(&class_file).expect("read");
    let mut df = sim::report::files::summary_frame(&report).expect("frame");
    let summary = String::from_utf8(sim::report::csv_bytes(&mut df).expect("csv")).expect("utf8");
    let _ = std::fs::remove_dir_all(&dir);
    let got = format!(
        "{}\n--- summary.csv header ---\n{}\n--- quality_by_class.csv ---\n{classes}",
        render_table(&report),
        summary.lines().next().unwrap_or_default()
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quality.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("write golden");
    }
    let golden = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(got, golden, "\n{got}");
}
