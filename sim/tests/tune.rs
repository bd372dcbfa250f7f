//! `routesim tune` end to end on a small version of `scenarios/hybrid-tuning.toml`: the chosen point meets
//! its constraints and is the cheapest that does, the emitted configuration loads back and reproduces the
//! reported metrics exactly, impossible constraints emit no configuration, successive halving drops
//! candidates early, and invalid `[tune]` sections give errors naming the field.

use sim::experiment::{self, ExperimentOptions, summarize};
use sim::report::{METRICS, PolicyRow};
use sim::scenario::Scenario;
use sim::tune::config::{Confidence, Method};
use sim::tune::search::{Status, TuneResult, evaluate};
use sim::tune::{TuneOverrides, TuneSetup, output};
use std::path::{Path, PathBuf};

fn scenario_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/hybrid-tuning.toml")
}

fn small(method: Method, constraints: &[&str]) -> TuneOverrides {
    TuneOverrides {
        method: Some(method),
        candidates: Some(16),
        replications: Some(3),
        requests: Some(12_000),
        constraints: Some(constraints.iter().map(|s| s.to_string()).collect()),
        seed: None,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("routesim-tune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn run(overrides: &TuneOverrides) -> (TuneSetup, TuneResult) {
    let setup = TuneSetup::load(&scenario_path(), overrides).expect("valid tuning scenario");
    let result = evaluate(&setup, None);
    (setup, result)
}

fn cost(r: &PolicyRow) -> f64 {
    r.cost_per_1k_usd.mean
}

#[test]
fn chosen_point_meets_its_constraints_and_is_the_cheapest_that_does() {
    // A p95 bound between the fastest and the slowest candidates, so that it binds.
    let (setup, probe) = run(&small(Method::Lhs, &[]));
    let mut p95: Vec<f64> = probe.candidates.iter().map(|c| c.summary.latency_p95_s.mean).collect();
    p95.sort_by(f64::total_cmp);
    let bound = p95[p95.len() / 2];
    drop(setup);
    let text = format!("latency_p95_s <= {bound}");
    let (setup, result) = run(&small(Method::Lhs, &[&text, "success_rate >= 0.99"]));
    let chosen = result.chosen.expect("half the candidates are within the median p95");
    let row = &result.candidates[chosen].summary;
    for c in &setup.constraints {
        assert_eq!(c.violation(row, Confidence::Interval), 0.0, "{} violated by the chosen point", c.text);
    }
    assert!(row.latency_p95_s.upper() <= bound);
    for (i, c) in result.candidates.iter().enumerate() {
        if result.feasible(&setup, i) {
            assert!(cost(&c.summary) >= cost(row), "{} is feasible and cheaper than the chosen point", c.name);
        }
    }
    // The frontier is non-dominated among complete candidates.
    for &f in &result.frontier {
        let a = &result.candidates[f].summary;
        for c in result.candidates.iter().filter(|c| c.status == Status::Complete) {
            let b = &c.summary;
            let dominates = cost(b) <= cost(a)
                && b.latency_p95_s.mean <= a.latency_p95_s.mean
                && (cost(b) < cost(a) || b.latency_p95_s.mean < a.latency_p95_s.mean);
            assert!(!dominates, "{} on the frontier is dominated by {}", result.candidates[f].name, c.name);
        }
    }
    // Paired differences against every baseline on every metric (the scenario has no quality: the quality
    // metrics do not exist for it).
    assert_eq!(result.paired.len(), setup.baselines * sim::report::metrics(false).count());
}

#[test]
fn emitted_config_loads_back_and_reproduces_the_reported_metrics() {
    let (setup, result) = run(&small(Method::SuccessiveHalving, &["success_rate >= 0.9"]));
    let chosen = result.chosen.expect("a loose constraint is met");
    let dir = scratch("reproduce");
    let files = output::write_files(&setup, &result, &dir).expect("files written");
    for f in ["candidates.csv", "candidates.parquet", "pareto.csv", "pareto.png", "pareto.svg", "best-policy.toml"] {
        assert!(files.contains(&dir.join(f)), "{f} not written");
    }
    let text = std::fs::read_to_string(dir.join("best-policy.toml")).expect("best-policy.toml");
    assert!(text.contains("success_rate >= 0.9"), "the comment names the constraint it meets:\n{text}");

    // Paste the emitted policy into the scenario and run it like `routesim run` would.
    #[derive(serde::Deserialize)]
    struct Doc {
        policies: Vec<router_core::PolicySpec>,
    }
    let doc: Doc = toml::from_str(&text).expect("best-policy.toml parses as scenario policies");
    assert_eq!(doc.policies.len(), 1);
    let mut scenario = Scenario::load(&scenario_path()).expect("scenario");
    scenario.requests = Some(12_000);
    scenario.duration = None;
    scenario.replications = 3;
    scenario.policies.push(doc.policies[0].clone());
    let model = scenario.compile(&scenario_path()).expect("the emitted policy is valid in the scenario");
    let p = model.scenario.policies.len() - 1;
    let exp = experiment::run(&model, &[p], &ExperimentOptions::default()).expect("runs");
    let reps: Vec<PolicyRow> = exp.runs[0].iter().map(experiment::replication_row).collect();
    let again = summarize("", &reps);
    let reported = &result.candidates[chosen].summary;
    for m in METRICS {
        let (a, b) = ((m.get)(&again), (m.get)(reported));
        assert!(a.mean == b.mean || (a.mean.is_nan() && b.mean.is_nan()), "{}: {} vs {}", m.column, a.mean, b.mean);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn impossible_constraints_emit_no_config_and_show_the_closest() {
    let (setup, result) = run(&small(Method::Random, &["latency_p95_s <= 10ms"]));
    assert!(result.chosen.is_none());
    assert!(!result.closest.is_empty() && result.closest.len() <= 5);
    // Closest first: ordered by violation.
    let v: Vec<f64> = result
        .closest
        .iter()
        .map(|&c| sim::tune::select::violation(&result.candidates[c].summary, &setup.constraints, Confidence::Interval))
        .collect();
    assert!(v.windows(2).all(|w| w[0] <= w[1]), "{v:?}");
    let dir = scratch("impossible");
    let files = output::write_files(&setup, &result, &dir).expect("files written");
    assert!(!files.iter().any(|f| f.ends_with("best-policy.toml")));
    assert!(!dir.join("best-policy.toml").exists());
    let text = output::render(&setup, &result);
    assert!(text.contains("No candidate meets the constraints"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn successive_halving_races_candidates_over_replications() {
    let mut o = small(Method::SuccessiveHalving, &["latency_p95_s <= 60s"]);
    o.candidates = Some(30);
    o.replications = Some(6);
    let (setup, result) = run(&o);
    let complete: Vec<_> = result.candidates.iter().filter(|c| c.status == Status::Complete).collect();
    let pruned: Vec<_> = result.candidates.iter().filter(|c| c.status != Status::Complete).collect();
    assert!(!pruned.is_empty(), "successive halving dropped nobody");
    assert!(complete.len() <= 10, "at most a third survive the first rung: {}", complete.len());
    assert!(complete.iter().all(|c| c.reps.len() == 6));
    assert!(pruned.iter().all(|c| c.reps.len() == 2), "dropped after the first rung of 2 replications");
    // The configuration as written is candidate 0.
    let written = &setup.model.scenario.policies[setup.tuned];
    let first = &setup.model.scenario.policies[setup.baselines];
    assert_eq!(first.weights, written.weights);
    assert_eq!(first.latency_ceiling, written.latency_ceiling);
    assert!(result.runs < (setup.baselines as u64 + 30) * 6, "fewer runs than a full sweep");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let o = small(Method::Lhs, &[]);
    let setup = TuneSetup::load(&scenario_path(), &o).expect("valid");
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool").install(|| evaluate(&setup, None));
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("pool").install(|| evaluate(&setup, None));
    for (a, b) in one.candidates.iter().zip(&two.candidates) {
        // Debug output compares NaN (no latency) equal to NaN.
        assert_eq!(format!("{:?}", a.summary), format!("{:?}", b.summary), "{}", a.name);
        assert!(a.summary.requests.mean > 0.0);
    }
    assert_eq!(one.chosen, two.chosen);
}

#[test]
fn invalid_tune_sections_name_the_field() {
    let base = std::fs::read_to_string(scenario_path()).expect("scenario");
    let cases = [
        (
            base.replace("policy = \"hybrid\"\nmethod", "policy = \"hybird\"\nmethod"),
            "tune.policy",
            "did you mean `hybrid`",
        ),
        (base.replace("path = \"buffer\"", "path = \"bufer\""), "tune.params[1].path", "bufer"),
        (base.replace("min = 0.0\nmax = 0.2", "min = 0.5\nmax = 0.2"), "tune.params[1].max", "min <= max"),
        (
            base.replace("\"latency_p95_s <= 7s\"", "\"latency_p59_s <= 7s\""),
            "tune.constraints[0]",
            "did you mean `latency_p95_s`",
        ),
        (
            base.replace("objectives = [\"cost_per_1k_usd\", \"latency_p95_s\"]", "objectives = [\"cost_per_1k_usd\"]"),
            "tune.objectives",
            "two metrics",
        ),
        (
            base.replace("method = \"successive-halving\"", "method = \"grid\"\nsteps = 9"),
            "tune.candidates",
            "the grid has",
        ),
    ];
    for (text, path, needle) in cases {
        let file = Path::new("bad-tune.toml");
        let scenario = Scenario::parse(file, &text).expect("parses");
        let err = TuneSetup::from_scenario(file, scenario, &TuneOverrides::default()).expect_err("invalid");
        let msg = err.to_string();
        assert_eq!(err.path, path, "{msg}");
        assert!(msg.contains(needle) && msg.contains("bad-tune.toml"), "{msg}");
    }
}

#[test]
fn quality_bounds_and_objectives_need_a_scenario_that_states_quality() {
    let base = std::fs::read_to_string(scenario_path()).expect("scenario");
    let file = Path::new("no-quality.toml");
    let load = |text: &str, overrides: &TuneOverrides| {
        TuneSetup::from_scenario(file, Scenario::parse(file, text).expect("parses"), overrides)
    };
    // A bound on quality (from the command line, or an alias of a quality metric in the file): not a
    // silent pass but an error naming the field and saying why.
    let cli = TuneOverrides { constraints: Some(vec!["quality >= 0.9".into()]), ..Default::default() };
    let err = load(&base, &cli).expect_err("no endpoint states quality");
    assert_eq!(err.path, "tune.constraints[0]");
    let msg = err.to_string();
    assert!(msg.contains("the scenario states no endpoint quality") && msg.contains("no-quality.toml"), "{msg}");
    let in_file = base.replace("\"success_rate >= 0.998\"", "\"acceptable <= 0.01\"");
    let err = load(&in_file, &TuneOverrides::default()).expect_err("cost per acceptable answer");
    assert_eq!(err.path, "tune.constraints[1]");
    assert!(err.to_string().contains("`cost_per_acceptable` measures answer quality"), "{err}");
    let objective = base.replace(
        "objectives = [\"cost_per_1k_usd\", \"latency_p95_s\"]",
        "objectives = [\"cost_per_1k_usd\", \"score\"]",
    );
    let err = load(&objective, &TuneOverrides::default()).expect_err("mean score");
    assert_eq!(err.path, "tune.objectives[1]");
    assert!(err.to_string().contains("states no endpoint quality"), "{err}");

    // Without quality the frontier keeps its two axes; once an endpoint states an accuracy, quality is
    // the third (unless an objective measures it already), and the quality bound is accepted.
    let plain = load(&base, &TuneOverrides::default()).expect("valid");
    assert!(!plain.quality);
    assert_eq!(plain.frontier_axes(), ["cost_per_1k_usd", "latency_p95_s"]);
    let with_quality = base.replacen("id = \"gpt-4.1\"", "id = \"gpt-4.1\"\nquality = { default = 0.9 }", 1);
    let setup = load(&with_quality, &cli).expect("quality stated");
    assert!(setup.quality);
    assert_eq!(setup.constraints[0].metric, "quality");
    assert_eq!(setup.frontier_axes(), ["cost_per_1k_usd", "latency_p95_s", "quality"]);
    let quality_objective = with_quality.replace(
        "objectives = [\"cost_per_1k_usd\", \"latency_p95_s\"]",
        "objectives = [\"cost_per_1k_usd\", \"quality\"]",
    );
    let setup = load(&quality_objective, &TuneOverrides::default()).expect("quality objective");
    assert_eq!(setup.frontier_axes(), ["cost_per_1k_usd", "quality"]);
}
