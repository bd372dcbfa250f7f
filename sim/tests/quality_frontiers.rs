//! Tuning, sweeps and AIQ with quality on, on `scenarios/strong-weak.toml` (unlimited capacity, so only
//! routing matters): a `[tune]` over the threshold router's `threshold` with a quality constraint chooses the
//! cheapest candidate that meets it, and a sweep over the threshold writes `aiq.csv` whose hull and AIQ are
//! those of the summary's points.

use sim::report::aiq::{aiq, nondecreasing_hull};
use sim::scenario::Scenario;
use sim::sweep::cells::run_shard;
use sim::sweep::merge::merge;
use sim::sweep::{Shard, Sweep};
use sim::tune::config::Confidence;
use sim::tune::search::{Status, evaluate};
use sim::tune::{TuneOverrides, TuneSetup, output};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("routesim-quality-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.headers().expect("header").iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.expect("row").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

#[test]
fn tuning_the_threshold_under_a_quality_bound_picks_the_cheapest_candidate_that_meets_it() {
    let file = repo().join("scenarios/strong-weak.toml");
    let text = std::fs::read_to_string(&file).expect("scenario")
        + "\n[tune]\npolicy = \"threshold-50\"\nmethod = \"grid\"\ncandidates = 9\nsteps = 9\nreplications = 3\n\
           requests = 4000\nconstraints = [\"quality >= 0.75\"]\n\n[[tune.params]]\npath = \"threshold\"\n\
           min = -2.0\nmax = 2.0\n";
    let setup =
        TuneSetup::from_scenario(&file, Scenario::parse(&file, &text).expect("parses"), &TuneOverrides::default())
            .expect("valid tuning");
    assert!(setup.quality);
    assert_eq!(setup.frontier_axes(), ["cost_per_1k_usd", "latency_p95_s", "quality"]);
    let result = evaluate(&setup, None);
    assert!(result.candidates.iter().all(|c| c.status == Status::Complete && c.summary.quality_on));
    let chosen = result.chosen.expect("a low threshold sends most calls to the strong model (0.9)");
    let q = |c: usize| result.candidates[c].summary.quality;
    let cost = |c: usize| result.candidates[c].summary.cost_per_1k_usd.mean;
    assert!(q(chosen).lower() >= 0.75, "chosen quality {:?}", q(chosen));
    for c in 0..result.candidates.len() {
        if cost(c) < cost(chosen) {
            assert!(q(c).lower() < 0.75, "candidate {c} is cheaper and meets the bound");
        }
    }
    assert!(setup.constraints[0].violation(&result.candidates[chosen].summary, Confidence::Interval) == 0.0);
    // Lower thresholds cost more and answer better, so every candidate trades one for the other: with quality
    // as the third axis none is dominated, whereas on cost and p95 alone the cheapest few would be.
    assert_eq!(result.frontier.len(), result.candidates.len());
    // The outputs say which candidates are on the frontier, and the chosen policy's comment states its quality.
    let dir = scratch("tune");
    output::write_files(&setup, &result, &dir).expect("tune outputs");
    let (header, rows) = read_csv(&dir.join("candidates.csv"));
    let on = header.iter().position(|h| h == "on_frontier").expect("on_frontier column");
    assert!(header.iter().any(|h| h == "quality") && header.iter().any(|h| h == "cost_per_acceptable"));
    assert!(rows.iter().all(|r| r[on] == "true"));
    assert!(dir.join("cost_vs_quality.svg").is_file() && dir.join("cost_vs_quality.png").is_file());
    let best = std::fs::read_to_string(dir.join("best-policy.toml")).expect("best-policy.toml");
    assert!(best.contains("#   quality = ") && best.contains("quality >= 0.75"), "{best}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_over_the_threshold_writes_the_family_s_hull_and_aiq() {
    let sweep = Sweep::load(&repo().join("scenarios/sweeps/strong-weak-threshold.toml")).expect("sweep");
    let dir = scratch("sweep");
    run_shard(&sweep, Shard::ALL, &dir, None).expect("cells");
    merge(std::slice::from_ref(&dir), &dir).expect("merge");
    let (sh, summary) = read_csv(&dir.join("summary.csv"));
    let col = |name: &str| sh.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name}"));
    let (policy, cost, quality) = (col("policy"), col("cost_per_1k_usd"), col("quality"));
    let points: Vec<(f64, f64)> = summary
        .iter()
        .filter(|r| r[policy] == "threshold-50")
        .map(|r| (r[cost].parse().unwrap(), r[quality].parse().unwrap()))
        .collect();
    assert_eq!(points.len(), 7);
    // Lowering the threshold sends more calls to the strong model: dearer and better.
    let mut by_cost = points.clone();
    by_cost.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(by_cost.first().unwrap().1 < by_cost.last().unwrap().1 - 0.1, "{by_cost:?}");

    let (ah, families) = read_csv(&dir.join("aiq.csv"));
    assert_eq!(families.len(), 1, "one family: the threshold router (the random one has no knob)");
    let f = &families[0];
    let get = |name: &str| f[ah.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name}"))].clone();
    assert_eq!(get("policy"), "threshold-50");
    assert_eq!(get("knob"), "policies.threshold-50.threshold");
    assert_eq!(get("points"), "7");
    let value: f64 = get("aiq").parse().unwrap();
    let expected = aiq(&points).unwrap();
    assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
    assert_eq!(get("aiq_shared"), get("aiq"), "a single family shares its own range");
    let (qmin, qmax): (f64, f64) = (get("quality_min").parse().unwrap(), get("quality_max").parse().unwrap());
    assert!(qmin < value && value < qmax, "{qmin} < {value} < {qmax}");
    // The hull's vertices are points of the family, starting at the cheapest.
    let hull: Vec<(f64, f64)> = get("hull")
        .split(' ')
        .map(|v| {
            let (c, q) = v.split_once(':').unwrap();
            (c.parse().unwrap(), q.parse().unwrap())
        })
        .collect();
    assert_eq!(hull, nondecreasing_hull(&points));
    assert!(hull.iter().all(|v| points.contains(v)));
    assert_eq!(hull[0], by_cost[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
