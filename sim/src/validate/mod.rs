//! Validation of the simulator against queueing theory (`routesim validate`).
//!
//! Each check runs an ordinary scenario (shipped in `scenarios/validation/` and embedded in the binary, so
//! the command works from any directory) for R independent replications and compares the mean of a
//! per-replication estimate with its closed form ([`theory`]) or an exact identity.
//!
//! **Pass rule.** A stochastic check passes when `|simulated mean - expected| <= t * s / sqrt(R)`, where `s`
//! is the standard deviation over replications and `t` the Student t quantile at level `1 - alpha / 2`
//! with `alpha = 0.01 / K` for the `K` stochastic checks of the run (Bonferroni): if the simulator is
//! right, the whole table fails by chance at most 1% of the time. Nothing else is added to the tolerance,
//! so the pass rule is only as loose as the simulation's own noise. Warm-up requests are deleted (10% of
//! each run) to remove the bias of starting empty. Exact identities (conservation, cost, determinism) must
//! hold to floating-point rounding.

pub mod quality;
pub mod theory;

use crate::engine::RunResult;
use crate::experiment::{self, ExperimentOptions};
use crate::report::files::summary_frame;
use crate::scenario::{Compiled, Overrides, Scenario};
use crate::stats::{mean_ci, mean_ci95};
use anyhow::{Context, Result, anyhow};
use std::path::Path;
use theory::{Mg1, Mmc, ServiceMoments, erlang_b};

/// The validation models, as shipped in `scenarios/validation/` (path, text).
pub const MODELS: [(&str, &str); 6] = [
    ("scenarios/validation/mm1.toml", include_str!("../../../scenarios/validation/mm1.toml")),
    ("scenarios/validation/mmc.toml", include_str!("../../../scenarios/validation/mmc.toml")),
    ("scenarios/validation/mg1-lognormal.toml", include_str!("../../../scenarios/validation/mg1-lognormal.toml")),
    ("scenarios/validation/md1.toml", include_str!("../../../scenarios/validation/md1.toml")),
    ("scenarios/validation/erlang-b.toml", include_str!("../../../scenarios/validation/erlang-b.toml")),
    ("scenarios/validation/littles-law.toml", include_str!("../../../scenarios/validation/littles-law.toml")),
];

/// The quickstart, for the conservation, cost and determinism checks.
pub const QUICKSTART: (&str, &str) = ("scenarios/quickstart.toml", include_str!("../../../scenarios/quickstart.toml"));

/// How much to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effort {
    /// Replications per check.
    pub replications: u32,
    /// Requests per replication of a queueing model.
    pub requests: u64,
    /// Requests per replication of the quickstart checks.
    pub quickstart_requests: u64,
}

impl Effort {
    /// `--quick`: seconds on two cores; runs in CI.
    pub const QUICK: Effort = Effort { replications: 8, requests: 60_000, quickstart_requests: 40_000 };
    /// The full run: tighter intervals.
    pub const FULL: Effort = Effort { replications: 20, requests: 1_000_000, quickstart_requests: 400_000 };
}

/// One row of the validation table.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    /// What is checked, e.g. `M/M/1 rho=0.80 Wq (s)`.
    pub name: String,
    /// The closed form (or exact value).
    pub expected: f64,
    /// The simulated mean over replications.
    pub simulated: f64,
    /// 95% half-width over replications (`None` for exact checks).
    pub ci95: Option<f64>,
    /// The half-width the pass rule allows (Bonferroni-corrected; `None` for exact checks).
    pub tolerance: Option<f64>,
    /// `(simulated - expected) / expected`.
    pub rel_err: f64,
    /// Whether the check passed.
    pub pass: bool,
}

/// A stochastic check before the pass rule is applied: per-replication values and the expected value.
struct Pending {
    name: String,
    expected: f64,
    values: Vec<f64>,
}

/// Runs every check with the given effort; `progress` is told the name of each model as it starts.
pub fn run_all(effort: Effort, progress: &dyn Fn(&str)) -> Result<Vec<CheckResult>> {
    let mut pending = Vec::new();
    let loads = [0.5, 0.8, 0.95];
    for &rho in &loads {
        progress(&format!("M/M/1 rho={rho}"));
        let runs = simulate(MODELS[0], effort, effort.requests, |s| s.traffic.rate = rho)?;
        let q = Mmc::mm1(rho, 1.0)?;
        pending.push(wait_check(format!("M/M/1 rho={rho:.2} Wq (s)"), q.mean_wait(), &runs));
        pending.push(pwait_check(format!("M/M/1 rho={rho:.2} P(wait)"), q.p_wait(), &runs));
    }
    for &rho in &loads {
        progress(&format!("M/M/10 rho={rho}"));
        let lambda = 10.0 * rho;
        let runs = simulate(MODELS[1], effort, effort.requests, |s| s.traffic.rate = lambda)?;
        let q = Mmc::new(lambda, 1.0, 10)?;
        pending.push(wait_check(format!("M/M/10 rho={rho:.2} Wq (s)"), q.mean_wait(), &runs));
        pending.push(pwait_check(format!("M/M/10 rho={rho:.2} P(wait)"), q.p_wait(), &runs));
    }
    for (model, label, service) in [
        (MODELS[2], "M/G/1 lognormal", ServiceMoments::lognormal(0.8, 0.6)?),
        (MODELS[3], "M/D/1", ServiceMoments::deterministic(1.0)?),
    ] {
        for &rho in &[0.5, 0.8] {
            progress(&format!("{label} rho={rho}"));
            let lambda = rho / service.mean();
            let runs = simulate(model, effort, effort.requests, |s| s.traffic.rate = lambda)?;
            let q = Mg1::new(lambda, service)?;
            pending.push(wait_check(format!("{label} rho={rho:.2} Wq (s)"), q.mean_wait(), &runs));
        }
    }
    progress("M/M/10/10 Erlang B");
    for &a in &[5.0, 8.0] {
        let runs = simulate(MODELS[4], effort, effort.requests, |s| s.traffic.rate = a)?;
        let blocked: Vec<f64> = runs
            .iter()
            .map(|r| r.metrics.counts.failed_total() as f64 / r.metrics.counts.requests.max(1) as f64)
            .collect();
        pending.push(Pending {
            name: format!("M/M/10/10 a={a} P(block)"),
            expected: erlang_b(10, a)?,
            values: blocked,
        });
    }
    progress("Little's law");
    let runs = simulate(MODELS[5], effort, effort.requests, |_| {})?;
    let little = littles_law_check(&runs);
    progress("answer quality (closed forms)");
    pending.extend(quality::checks(effort.replications, effort.requests)?);

    let k = pending.len() as f64;
    let mut results: Vec<CheckResult> = pending.into_iter().map(|p| judge(p, 0.01 / k)).collect();

    results.push(little);
    progress("quickstart identities");
    results.extend(quickstart_checks(effort)?);
    Ok(results)
}

/// Compiles an embedded model with overrides and runs its replications.
fn simulate(
    model: (&str, &str),
    effort: Effort,
    requests: u64,
    edit: impl FnOnce(&mut Scenario),
) -> Result<Vec<RunResult>> {
    let compiled = compile(model, effort.replications, requests, edit)?;
    let exp = experiment::run(&compiled, &[0], &ExperimentOptions::default())?;
    exp.runs.into_iter().next().ok_or_else(|| anyhow!("{}: no runs", model.0))
}

fn compile(
    model: (&str, &str),
    replications: u32,
    requests: u64,
    edit: impl FnOnce(&mut Scenario),
) -> Result<Compiled> {
    let path = Path::new(model.0);
    let mut s = Scenario::parse(path, model.1)?;
    Overrides { seed: None, requests: Some(requests), replications: Some(replications) }.apply(&mut s);
    s.warmup = None;
    s.warmup_requests = Some(requests / 10);
    edit(&mut s);
    Ok(s.compile(path)?)
}

/// Little's law on a sample path that starts and ends empty: the time-average number of measured requests in
/// the system (integrated event by event) equals the arrival rate times their mean time in the system
/// (summed request by request), `L = lambda W`, up to floating-point rounding.
fn littles_law_check(runs: &[RunResult]) -> CheckResult {
    let (mut l, mut lw) = (0.0, 0.0);
    for r in runs {
        let q = &r.metrics.queueing;
        l += q.mean_in_system();
        let lambda = q.finished as f64 / q.observed_s.max(1e-9);
        lw += lambda * q.sojourn_sum_s / q.finished.max(1) as f64;
    }
    let n = runs.len().max(1) as f64;
    exact("Little's law L = lambda W (p2c, retries, 3 providers)", lw / n, l / n, 1e-9)
}

fn wait_check(name: String, expected: f64, runs: &[RunResult]) -> Pending {
    Pending { name, expected, values: runs.iter().map(|r| r.metrics.queueing.mean_wait_s()).collect() }
}

fn pwait_check(name: String, expected: f64, runs: &[RunResult]) -> Pending {
    Pending { name, expected, values: runs.iter().map(|r| r.metrics.queueing.p_wait()).collect() }
}

/// Applies the pass rule with per-check level `alpha`.
fn judge(p: Pending, alpha: f64) -> CheckResult {
    let iv = mean_ci95(&p.values);
    let tolerance = mean_ci(&p.values, 1.0 - alpha).ok().and_then(|w| w.half_width);
    let pass = iv.mean.is_finite() && tolerance.is_some_and(|t| (iv.mean - p.expected).abs() <= t);
    CheckResult {
        name: p.name,
        expected: p.expected,
        simulated: iv.mean,
        ci95: iv.half_width,
        tolerance,
        rel_err: rel(iv.mean, p.expected),
        pass,
    }
}

fn rel(sim: f64, expected: f64) -> f64 {
    if expected == 0.0 { sim } else { (sim - expected) / expected }
}

/// Conservation, the cost identity and determinism on the quickstart (every policy).
fn quickstart_checks(effort: Effort) -> Result<Vec<CheckResult>> {
    let reps = effort.replications.min(4);
    let model = compile(QUICKSTART, reps, effort.quickstart_requests, |_| {})?;
    let all: Vec<usize> = (0..model.scenario.policies.len()).collect();
    let exp = experiment::run(&model, &all, &ExperimentOptions::default())?;
    let mut out = Vec::new();
    // Conservation: every measured request succeeded, failed or was rejected (none left in flight).
    let (mut requests, mut accounted) = (0u64, 0u64);
    for r in exp.runs.iter().flatten() {
        let c = &r.metrics.counts;
        requests += c.requests;
        accounted += c.succeeded + c.failed_total() + c.rejected + c.denied_total() + r.in_flight;
    }
    out.push(exact(
        "quickstart conservation: requests = ok + failed + rejected",
        requests as f64,
        accounted as f64,
        0.0,
    ));
    // Cost identity: cost = sum over endpoints of tokens x prices.
    let (mut cost, mut priced) = (0.0, 0.0);
    for r in exp.runs.iter().flatten() {
        cost += r.metrics.cost_usd;
        for (e, t) in model.endpoints.iter().zip(&r.metrics.endpoint_tokens) {
            priced += (t[0] as f64 * e.price.input_per_mtok + t[1] as f64 * e.price.output_per_mtok) / 1e6;
        }
    }
    out.push(exact("quickstart cost = sum(tokens x price) (USD)", priced, cost, 1e-9));
    // Determinism: the same scenario and seed give a byte-identical summary, with 1 thread or many.
    let again =
        crate::threads::with_threads(Some(1), || experiment::run(&model, &all, &ExperimentOptions::default()))??;
    use polars::prelude::SerWriter;
    let csv = |e: &experiment::Experiment| -> Result<String> {
        let mut df = summary_frame(&experiment::report(&model, e))?;
        let mut buf = Vec::new();
        polars::prelude::CsvWriter::new(&mut buf)
            .finish(&mut df)
            .context("rendering the summary for the determinism check")?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let same = csv(&exp)? == csv(&again)?;
    out.push(exact("determinism: identical summary (1 vs all threads)", 1.0, same as u8 as f64, 0.0));
    Ok(out)
}

fn exact(name: &str, expected: f64, simulated: f64, rel_tol: f64) -> CheckResult {
    let err = rel(simulated, expected);
    CheckResult {
        name: name.to_string(),
        expected,
        simulated,
        ci95: None,
        tolerance: None,
        rel_err: err,
        pass: err.abs() <= rel_tol,
    }
}

/// The validation table, aligned, one row per check.
pub fn render(results: &[CheckResult]) -> String {
    let width = results.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$}  {:>12}  {:>12}  {:>10}  {:>10}  {:>9}  {}\n",
        "check", "expected", "simulated", "ci95", "tolerance", "rel.err", "result"
    );
    let num = |x: f64| if x.abs() >= 1e5 { format!("{x:.4e}") } else { format!("{x:.5}") };
    let opt = |x: Option<f64>| x.map_or_else(|| "exact".to_string(), num);
    for r in results {
        out.push_str(&format!(
            "{:<width$}  {:>12}  {:>12}  {:>10}  {:>10}  {:>8.2}%  {}\n",
            r.name,
            num(r.expected),
            num(r.simulated),
            opt(r.ci95),
            opt(r.tolerance),
            r.rel_err * 100.0,
            if r.pass { "pass" } else { "FAIL" }
        ));
    }
    let failed = results.iter().filter(|r| !r.pass).count();
    out.push_str(&format!("{} checks, {} passed, {} failed\n", results.len(), results.len() - failed, failed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_compiles_as_shipped() {
        for m in MODELS {
            let s = Scenario::parse(Path::new(m.0), m.1).unwrap_or_else(|e| panic!("{e}"));
            s.compile(Path::new(m.0)).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn judge_passes_within_noise_and_fails_outside() {
        let values = vec![0.9, 1.1, 1.0, 0.95, 1.05];
        let ok = judge(Pending { name: "x".into(), expected: 1.0, values: values.clone() }, 0.01);
        assert!(ok.pass);
        let bad = judge(Pending { name: "x".into(), expected: 1.5, values }, 0.01);
        assert!(!bad.pass);
        assert!(bad.tolerance.is_some_and(|t| t > 0.0));
    }
}
