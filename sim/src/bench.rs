//! `routesim bench`'s measurement: a scenario's selected policies simulated together, repeatedly, without
//! writing files; per policy its own time (median over the repeats) and simulated requests and events per
//! second, in total the median wall time, and the peak memory of the process.

use crate::experiment::{self, ExperimentOptions};
use crate::scenario::Compiled;
use crate::threads::with_threads;

/// One policy's figures.
#[derive(Debug, serde::Serialize)]
pub struct BenchRow {
    /// The policy's name.
    pub policy: String,
    /// Requests simulated, warm-up included, over the replications.
    pub requests: u64,
    /// Events processed, over the replications.
    pub events: u64,
    /// The policy's own time (its runs' `busy_s`: their events and their share of generating the traffic),
    /// median over the repeats. With one thread the rows add up to about the total wall time.
    pub wall_s: f64,
    /// Requests per second of the policy's own time.
    pub requests_per_s: f64,
    /// Events per second of the policy's own time.
    pub events_per_s: f64,
}

/// What `routesim bench` measured.
#[derive(Debug)]
pub struct Bench {
    /// One row per selected policy.
    pub rows: Vec<BenchRow>,
    /// Median wall time of the whole experiment, seconds.
    pub wall_s: f64,
    /// Requests simulated in one experiment, over the policies.
    pub requests: u64,
    /// Peak resident memory of the process, MiB (Linux only).
    pub peak_rss_mib: Option<f64>,
}

/// Runs the selected policies of `model` together `repeat` times (at least once) on `threads` threads.
pub fn bench(model: &Compiled, selected: &[usize], threads: usize, repeat: u32) -> anyhow::Result<Bench> {
    // All the selected policies run together, as `routesim run` runs them: the runs of a replication share
    // its generated traffic. A policy's wall time is its runs' own busy time (its events and its share of the
    // traffic), median over the repeats; the total is the median wall time of the whole experiment.
    let repeat = repeat.max(1) as usize;
    let mut walls = Vec::with_capacity(repeat);
    let mut busy: Vec<Vec<f64>> = vec![Vec::with_capacity(repeat); selected.len()];
    let mut last = None;
    for _ in 0..repeat {
        let exp = with_threads(Some(threads), || experiment::run(model, selected, &ExperimentOptions::default()))??;
        walls.push(exp.wall_s);
        for (b, runs) in busy.iter_mut().zip(&exp.runs) {
            b.push(runs.iter().map(|r| r.busy_s).sum());
        }
        last = Some(exp);
    }
    let exp = last.ok_or_else(|| anyhow::anyhow!("no repeat ran"))?;
    let median = |xs: &mut Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2].max(1e-9)
    };
    let wall = median(&mut walls);
    let mut rows = Vec::with_capacity(selected.len());
    for ((name, runs), b) in exp.policies.iter().zip(&exp.runs).zip(&mut busy) {
        let wall_s = median(b);
        let events: u64 = runs.iter().map(|r| r.events).sum();
        let requests: u64 = runs.iter().map(|r| r.metrics.counts.arrivals).sum();
        rows.push(BenchRow {
            policy: name.clone(),
            requests,
            events,
            wall_s,
            requests_per_s: requests as f64 / wall_s,
            events_per_s: events as f64 / wall_s,
        });
    }
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    let peak_rss_mib = peak_rss_kib().map(|k| k as f64 / 1024.0);
    Ok(Bench { rows, wall_s: wall, requests, peak_rss_mib })
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
