//! Golden tests of the `routesim` command line: error messages for invalid scenarios, the policy listing,
//! and a quickstart run end to end with every promised output file.
//!
//! Regenerate the golden files after an intended change with `UPDATE_GOLDEN=1 cargo test -p routesim --test cli`.

mod golden_file;

use golden_file::golden;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn routesim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routesim")).args(args).current_dir(repo_root()).output().expect("routesim runs")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

#[test]
fn invalid_scenarios_give_the_promised_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/tests/data/invalid");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("invalid scenarios")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let mut all = String::new();
    for name in &names {
        let rel = format!("sim/tests/data/invalid/{name}");
        let out = routesim(&["run", &rel, "--out", "target/never-written"]);
        assert_eq!(out.status.code(), Some(2), "{name}: expected exit status 2");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(&format!("error: {rel}")), "{name}: the error must name the file:\n{stderr}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        all.push_str(&format!("$ routesim run {rel}\n{stderr}\n"));
    }
    golden("invalid-scenarios.txt", &all);
}

#[test]
fn unknown_policy_on_the_command_line_suggests_the_nearest() {
    let out = routesim(&["run", "sim/tests/data/base.toml", "--policies", "cheapst", "--out", "target/never-written"]);
    assert_eq!(out.status.code(), Some(2));
    golden("unknown-policy.txt", &String::from_utf8_lossy(&out.stderr));
}

#[test]
fn policies_lists_one_line_each() {
    let out = routesim(&["policies"]);
    assert!(out.status.success());
    golden("policies.txt", &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn run_writes_every_promised_file_and_a_table() {
    let out_dir = std::env::temp_dir().join(format!("routesim-cli-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = routesim(&[
        "run",
        "scenarios/quickstart.toml",
        "--requests",
        "20000",
        "--replications",
        "2",
        "--policies",
        "round-robin,hybrid",
        "--records",
        "--out",
        out_dir.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("round-robin") && stdout.contains("hybrid") && stdout.contains('±'), "{stdout}");
    for f in [
        "summary.csv",
        "summary.parquet",
        "paired.csv",
        "timeseries.parquet",
        "latency_cdf.png",
        "latency_cdf.svg",
        "cost_vs_p95.png",
        "cost_vs_p95.svg",
        "timeseries.png",
        "timeseries.svg",
        "cost_bars.png",
        "cost_bars.svg",
        "manifest.json",
        "scenario.toml",
        "records/round-robin-r0.parquet",
        "records/hybrid-r1.parquet",
    ] {
        let p = out_dir.join(f);
        assert!(p.is_file() && std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false), "{f} missing or empty");
    }
    let summary = std::fs::read_to_string(out_dir.join("summary.csv")).expect("summary");
    let header = summary.lines().next().expect("header");
    for col in [
        "policy",
        "requests",
        "success_rate",
        "latency_p50_s",
        "latency_p95_s",
        "latency_p99_s",
        "ttft_p50_s",
        "cost_usd",
        "cost_per_1k_usd",
        "errors_429",
        "retries",
        "fallbacks",
        "latency_p95_s_ci95",
    ] {
        assert!(header.split(',').any(|c| c == col), "summary.csv lacks {col}: {header}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).expect("manifest")).expect("json");
    assert!(manifest["simulated_requests_per_s"].as_f64().is_some_and(|x| x > 0.0));
    assert_eq!(manifest["seed"].as_u64(), Some(20250101));
    // The resolved scenario loads back.
    let resolved = out_dir.join("scenario.toml");
    let out = routesim(&["bench", resolved.to_str().expect("utf-8"), "--requests", "1000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn tune_writes_its_files_and_fails_when_nothing_is_feasible() {
    let dir = std::env::temp_dir().join(format!("routesim-cli-tune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let small = ["--candidates", "6", "--replications", "2", "--requests", "8000", "--method", "lhs"];
    let feasible = dir.join("ok");
    let mut args = vec!["tune", "scenarios/hybrid-tuning.toml", "--constraint", "success >= 0.9", "--out"];
    args.push(feasible.to_str().expect("utf-8"));
    args.extend(small);
    let out = routesim(&args);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Pareto frontier") && stdout.contains("Chosen: hybrid#"), "{stdout}");
    for f in ["candidates.csv", "candidates.parquet", "pareto.csv", "baselines.csv", "paired.csv", "pareto.png"] {
        assert!(feasible.join(f).is_file(), "{f} missing");
    }
    let best = std::fs::read_to_string(feasible.join("best-policy.toml")).expect("best-policy.toml");
    assert!(best.contains("name = \"hybrid-tuned\"") && best.contains("success >= 0.9"), "{best}");

    let infeasible = dir.join("none");
    let mut args = vec!["tune", "scenarios/hybrid-tuning.toml", "--constraint", "p95 <= 10ms", "--out"];
    args.push(infeasible.to_str().expect("utf-8"));
    args.extend(small);
    let out = routesim(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no candidate meets the constraints (p95 <= 10ms)"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("The closest ones"));
    assert!(infeasible.join("candidates.csv").is_file() && !infeasible.join("best-policy.toml").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_sample_log_replays_and_fits_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("routesim-cli-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let samples = std::fs::read_dir(repo_root().join("scenarios/logs")).expect("samples");
    let mut n = 0;
    for entry in samples {
        let log = entry.expect("entry").path();
        let name = log.file_name().expect("name").to_string_lossy().into_owned();
        let log_arg = format!("scenarios/logs/{name}");
        let out_dir = dir.join(&name);
        let out = routesim(&[
            "replay",
            "scenarios/replay.toml",
            "--log",
            &log_arg,
            "--replications",
            "2",
            "--out",
            out_dir.to_str().expect("utf-8"),
        ]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("as logged") && stdout.contains("40 of 40 rows, 0 malformed"), "{name}: {stdout}");
        assert!(out_dir.join("summary.csv").is_file() && out_dir.join("malformed.txt").is_file());
        let manifest = std::fs::read_to_string(out_dir.join("manifest.json")).expect("manifest.json");
        assert!(manifest.contains("\"malformed.txt\"") && manifest.contains("\"scenario.toml\""), "{manifest}");
        let providers = out_dir.join("providers.toml");
        let fit = routesim(&[
            "fit",
            "--scenario",
            "scenarios/replay.toml",
            "--log",
            &log_arg,
            "--out",
            providers.to_str().expect("utf-8"),
        ]);
        assert!(fit.status.success(), "{name}: {}", String::from_utf8_lossy(&fit.stderr));
        assert!(std::fs::read_to_string(&providers).expect("providers").contains("[[endpoints]]"));
        n += 1;
    }
    assert_eq!(n, 5, "one sample per format");
    let _ = std::fs::remove_dir_all(&dir);
}
