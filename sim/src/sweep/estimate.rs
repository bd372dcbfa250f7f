//! `routesim sweep --plan`: the size of a sweep and its cost in core-hours, from a short calibration run of
//! every (scenario, policy) pair, so a user sizes the cluster job before launching it.

use super::plan::{Shard, Sweep};
use crate::engine::{self, RunOptions};
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Requests of one calibration run (fewer when the cell's runs are shorter).
pub const CALIBRATION_REQUESTS: u64 = 20_000;

/// CPU seconds this thread has used (Linux `schedstat`), or `None` where unavailable.
pub fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_memory_mib() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The calibration of one (scenario, policy) pair.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Requests the calibration run simulated.
    pub requests: u64,
    /// CPU seconds per simulated request.
    pub seconds_per_request: f64,
}

/// The estimate of a sweep's cost.
#[derive(Clone, Debug)]
pub struct Estimate {
    /// The calibration runs.
    pub calibrations: Vec<Calibration>,
    /// Estimated CPU seconds of every cell.
    pub cell_seconds: Vec<f64>,
    /// Peak memory of the calibrating process, MiB.
    pub peak_mib: Option<f64>,
}

impl Estimate {
    /// Core-hours of the whole sweep.
    pub fn core_hours(&self) -> f64 {
        self.cell_seconds.iter().sum::<f64>() / 3600.0
    }
}

/// Runs two short replications (of 5000 and 20,000 requests) of every (scenario, policy) pair at the scenario's
/// first point, on this thread, and prices every cell by its simulated requests.
pub fn estimate(sweep: &Sweep) -> Result<Estimate> {
    let mut per_pair: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut fixed_of: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut calibrations = Vec::new();
    for (k, cell) in sweep.plan.cells.iter().enumerate() {
        let (point, policy) = sweep.cell_runs[k];
        let scenario = sweep.points[point].scenario;
        if per_pair.contains_key(&(scenario, policy)) {
            continue;
        }
        // Two lengths, so the fixed cost of a run (compiling the router, allocating histograms) is not read
        // as a cost per request: time = fixed + per_request x requests.
        let full = cell.requests_per_run.max(1);
        let (short_n, long_n) = (full.clamp(1, CALIBRATION_REQUESTS / 4), full.min(CALIBRATION_REQUESTS));
        let measure = |n: u64| -> Result<(f64, u64)> {
            let mut short = sweep.points[point].clone();
            short.resolved.requests = Some(n);
            let model = short.compile()?;
            let (cpu0, wall0) = (thread_cpu_seconds(), std::time::Instant::now());
            let result = engine::run(&model, policy, 0, RunOptions::default());
            let wall = wall0.elapsed().as_secs_f64();
            let cpu = match (cpu0, thread_cpu_seconds()) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => wall,
            };
            Ok((cpu, result.metrics.counts.arrivals.max(1)))
        };
        let (t1, a1) = measure(short_n)?;
        let (t2, a2) = measure(long_n)?;
        let seconds_per_request = if a2 > a1 && t2 > t1 { (t2 - t1) / (a2 - a1) as f64 } else { t2 / a2 as f64 };
        let fixed = (t2 - seconds_per_request * a2 as f64).max(0.0);
        let requests = a2;
        fixed_of.insert((scenario, policy), fixed);
        per_pair.insert((scenario, policy), seconds_per_request);
        calibrations.push(Calibration {
            scenario: cell.scenario.clone(),
            policy: cell.policy.clone(),
            requests,
            seconds_per_request,
        });
    }
    let cell_seconds = sweep
        .plan
        .cells
        .iter()
        .enumerate()
        .map(|(k, c)| {
            if c.source as usize != k {
                return 0.0;
            }
            let (point, policy) = sweep.cell_runs[k];
            let pair = (sweep.points[point].scenario, policy);
            let rate = per_pair.get(&pair).copied().unwrap_or(0.0);
            let fixed = fixed_of.get(&pair).copied().unwrap_or(0.0);
            (fixed + rate * c.requests_per_run as f64) * c.replications as f64
        })
        .collect();
    Ok(Estimate { calibrations, cell_seconds, peak_mib: peak_memory_mib() })
}

/// The `--plan` report: size, calibration, core-hours, and wall time per shard for a few shard counts (and
/// for `shards`, when given, the cells and estimated time of its largest shard).
pub fn render(sweep: &Sweep, est: &Estimate, shards: Option<u32>) -> String {
    let plan = &sweep.plan;
    let mut out = String::new();
    let scenarios = sweep.config.scenarios.len();
    let points = sweep.points.len() / scenarios.max(1);
    let _ = writeln!(
        out,
        "Sweep \"{}\": {} scenario{} x {} parameter point{} x policies = {} cells, {} to run (the others repeat a \
         run: the point does not change their policy); {} runs (cell x replication)",
        plan.sweep,
        scenarios,
        if scenarios == 1 { "" } else { "s" },
        points,
        if points == 1 { "" } else { "s" },
        plan.cells.len(),
        plan.computed().len(),
        plan.runs()
    );
    let _ = writeln!(out, "Simulated requests: {} (warm-up included)", group(plan.simulated_requests()));
    let _ =
        writeln!(out, "\nCalibration (two short runs of each scenario and policy, on one core; CPU time per request):");
    for c in &est.calibrations {
        let _ = writeln!(
            out,
            "  {:<24} {:<24} {:>7} requests  {:>8.2} us/request",
            c.scenario,
            c.policy,
            c.requests,
            c.seconds_per_request * 1e6
        );
    }
    let hours = est.core_hours();
    let _ = writeln!(out, "\nEstimated CPU: {:.3} core-hours ({:.0} core-seconds)", hours, hours * 3600.0);
    if let Some(m) = est.peak_mib {
        let _ =
            writeln!(out, "Peak memory of this process while calibrating: {m:.0} MiB (size a shard's memory from it)");
    }
    let _ = writeln!(out, "\nWall time if the cells split evenly (each shard on 4 cores):");
    let mut counts = vec![1u32, 4, 16, 64];
    if let Some(n) = shards
        && !counts.contains(&n)
    {
        counts.push(n);
        counts.sort_unstable();
    }
    for n in counts {
        let largest = (0..n)
            .map(|i| plan.shard_cells(Shard { index: i, count: n }).iter().map(|&k| est.cell_seconds[k]).sum::<f64>())
            .fold(0.0, f64::max);
        let cells = plan.computed().len().div_ceil(n as usize);
        let _ = writeln!(
            out,
            "  {:>3} shard{} {:>6} cells each (at most)  longest shard about {}",
            n,
            if n == 1 { ": " } else { "s:" },
            cells,
            duration(largest / 4.0)
        );
    }
    out
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn duration(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
