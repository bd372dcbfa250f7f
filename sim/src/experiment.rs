//! Experiments: every policy of a scenario x every replication, run in parallel, summarised with confidence
//! intervals and paired differences.
//!
//! Each (policy, replication) run is independent and deterministic: its random streams depend only on
//! (seed, replication, what is drawn), never on the thread that runs it, so results are identical for any
//! thread count. Replication r of every policy sees the same traffic and provider luck (common random
//! numbers), which is what makes the paired differences against the baseline tight.
//!
//! Since every policy of a replication sees the same arrivals, the runs of one replication are simulated
//! in lockstep groups ([`engine::run_lockstep`]) that generate the traffic once for the whole group; the
//! grouping depends on the thread count, the results do not.

use crate::engine::{self, RequestRecord, RunOptions, RunResult};
use crate::metrics::LatencyHistogram;
use crate::records::RecordWriter;
use crate::report::{
    CdfSeries, ClassQualityRow, ClassRow, Estimate, METRICS, PairedRow, PolicyRow, ReplicationRow, RunReport, ShareRow,
    TimeseriesRow, metrics, quality_on,
};
use crate::scenario::Compiled;
use crate::stats::{mean_ci95, paired_diff};
use anyhow::Result;
use rayon::prelude::*;
use router_core::ErrorClass;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The raw results of an experiment: `runs[p][r]` is policy `p` (in scenario order), replication `r`.
#[derive(Debug)]
pub struct Experiment {
    /// Policy names, in the order of `runs`.
    pub policies: Vec<String>,
    /// Results per policy and replication.
    pub runs: Vec<Vec<RunResult>>,
    /// Wall-clock seconds the runs took.
    pub wall_s: f64,
}

impl Experiment {
    /// Requests simulated in total (all policies, replications, warm-up included).
    pub fn simulated_requests(&self) -> u64 {
        self.runs.iter().flatten().map(|r| r.metrics.counts.arrivals).sum()
    }

    /// Simulated requests per second of wall-clock time.
    pub fn requests_per_s(&self) -> f64 {
        self.simulated_requests() as f64 / self.wall_s.max(1e-9)
    }
}

/// What an experiment reports besides its results.
#[derive(Default)]
pub struct ExperimentOptions<'a> {
    /// Told the number of requests generated so far, summed over runs (progress bars).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// When set, every run streams its per-request records to `<dir>/<policy>-r<replication>.parquet`.
    pub records_dir: Option<&'a Path>,
}

/// Runs the policies `selected` (indices into the scenario's policies) for every replication, in parallel on
/// rayon's current pool.
pub fn run(model: &Compiled, selected: &[usize], opts: &ExperimentOptions<'_>) -> Result<Experiment> {
    let reps = model.scenario.replications;
    let jobs: Vec<(usize, u32)> = selected.iter().flat_map(|&p| (0..reps).map(move |r| (p, r))).collect();
    let done = AtomicU64::new(0);
    let per_run_last: Vec<AtomicU64> = jobs.iter().map(|_| AtomicU64::new(0)).collect();
    let start = Instant::now();
    // Runs of one replication share its generated traffic when they run together (`engine::run_lockstep`).
    let groups = lockstep_groups(&jobs, rayon::current_num_threads());
    let grouped: Vec<Vec<(usize, Result<RunResult>)>> = groups
        .par_iter()
        .map(|idx| {
            let r = jobs[idx[0]].1;
            let policies: Vec<usize> = idx.iter().map(|&j| jobs[j].0).collect();
            let ticks: Vec<_> = idx
                .iter()
                .map(|&j| {
                    let (done, last) = (&done, &per_run_last[j]);
                    move |n: u64| {
                        let prev = last.swap(n, Ordering::Relaxed);
                        let total = done.fetch_add(n.saturating_sub(prev), Ordering::Relaxed) + n.saturating_sub(prev);
                        if let Some(f) = opts.progress {
                            f(total);
                        }
                    }
                })
                .collect();
            let progress = |i: usize| opts.progress.is_some().then_some(&ticks[i] as &(dyn Fn(u64) + Sync));
            let Some(dir) = opts.records_dir else {
                let run_opts = (0..idx.len()).map(|i| RunOptions { progress: progress(i), ..Default::default() });
                let results = engine::run_lockstep(model, &policies, r, run_opts.collect());
                return idx.iter().copied().zip(results.into_iter().map(Ok)).collect();
            };
            let mut writers = Vec::with_capacity(idx.len());
            for &p in &policies {
                let name = &model.scenario.policies[p].name;
                let path = dir.join(format!("{name}-r{r}.parquet"));
                match RecordWriter::create(&path, name, r, model.class_names(), model.endpoint_ids()) {
                    Ok(w) => writers.push(w),
                    Err(e) => {
                        // Close the files already created (empty but valid) and fail every run of the group.
                        for w in writers {
                            let _ = w.finish();
                        }
                        return idx.iter().map(|&j| (j, Err(anyhow::anyhow!("{e:#}")))).collect();
                    }
                }
            }
            let mut sinks: Vec<_> = writers.iter_mut().map(|w| move |rec: &RequestRecord| w.push(rec)).collect();
            let run_opts = sinks
                .iter_mut()
                .enumerate()
                .map(|(i, sink)| RunOptions {
                    progress: progress(i),
                    records: Some(sink as &mut dyn FnMut(&RequestRecord)),
                    ..Default::default()
                })
                .collect();
            let results = engine::run_lockstep(model, &policies, r, run_opts);
            drop(sinks);
            idx.iter().zip(writers).zip(results).map(|((&j, w), res)| (j, w.finish().map(|_| res))).collect()
        })
        .collect();
    let wall_s = start.elapsed().as_secs_f64();
    let results = in_job_order(jobs.len(), grouped);
    let mut runs: Vec<Vec<RunResult>> = selected.iter().map(|_| Vec::with_capacity(reps as usize)).collect();
    for (res, &(p, _)) in results.into_iter().zip(&jobs) {
        let slot = selected.iter().position(|&q| q == p).unwrap_or(0);
        let res = res?;
        if let Some(e) = &res.input_error {
            anyhow::bail!("{e}");
        }
        runs[slot].push(res);
    }
    let policies = selected.iter().map(|&p| model.scenario.policies[p].name.clone()).collect();
    Ok(Experiment { policies, runs, wall_s })
}

/// Most runs simulated together in one lockstep group. Each run holds its own state (a few MiB, mostly
/// latency histograms, and with `--records` its record writer's buffer of about 5.5 MiB), so this bounds the
/// memory of a group however many policies a tuning compares.
const MAX_GROUP: usize = 8;

/// Splits `jobs` (policy, replication) into lockstep groups (lists of job indices) for `threads` workers.
/// A group is runs of one replication, so that it generates that replication's traffic once for all of
/// them. One thread puts every run of a replication in one group (at most [`MAX_GROUP`]). More threads
/// split each replication's runs into the fewest groups that keep the workers evenly loaded: a number of
/// groups that is a multiple of the threads, or at least four per thread, or else one run per group. (When
/// replications have different numbers of runs, as in a successive-halving rung, the split is by the
/// largest.)
fn lockstep_groups(jobs: &[(usize, u32)], threads: usize) -> Vec<Vec<usize>> {
    let mut by_rep: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (j, &(_, r)) in jobs.iter().enumerate() {
        by_rep.entry(r).or_default().push(j);
    }
    let (reps, threads) = (by_rep.len(), threads.max(1));
    let longest = by_rep.values().map(Vec::len).max().unwrap_or(0);
    let mut per_rep = longest.div_ceil(MAX_GROUP).max(1);
    while per_rep < longest && (reps * per_rep) % threads != 0 && reps * per_rep < 4 * threads {
        per_rep += 1;
    }
    let mut groups = Vec::with_capacity(reps * per_rep);
    for runs in by_rep.values() {
        let parts = per_rep.min(runs.len());
        groups.extend((0..parts).map(|g| runs[g * runs.len() / parts..(g + 1) * runs.len() / parts].to_vec()));
    }
    groups
}

/// The values of `grouped`, `(job index, value)` per lockstep group, back in job order.
fn in_job_order<T>(jobs: usize, grouped: Vec<Vec<(usize, T)>>) -> Vec<T> {
    let mut slots: Vec<Option<T>> = (0..jobs).map(|_| None).collect();
    for (j, v) in grouped.into_iter().flatten() {
        slots[j] = Some(v);
    }
    slots.into_iter().map(|v| v.expect("lockstep_groups puts every job in one group")).collect()
}

/// Runs the jobs `(policy, replication)` in parallel on rayon's current pool, in lockstep groups as
/// [`run`] does, and returns each run's summary row, in job order, and the requests simulated in all
/// (warm-up included). `progress` is told the number of runs finished so far. Used by `routesim tune`, which
/// needs only the summaries of thousands of runs, not their histograms and time series.
pub fn run_rows(
    model: &Compiled,
    jobs: &[(usize, u32)],
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> (Vec<PolicyRow>, u64) {
    let done = AtomicU64::new(0);
    let arrivals = AtomicU64::new(0);
    let groups = lockstep_groups(jobs, rayon::current_num_threads());
    let grouped: Vec<Vec<(usize, PolicyRow)>> = groups
        .par_iter()
        .map(|idx| {
            let policies: Vec<usize> = idx.iter().map(|&j| jobs[j].0).collect();
            let opts = idx.iter().map(|_| RunOptions::default()).collect();
            let results = engine::run_lockstep(model, &policies, jobs[idx[0]].1, opts);
            let n = done.fetch_add(idx.len() as u64, Ordering::Relaxed) + idx.len() as u64;
            if let Some(f) = progress {
                f(n);
            }
            idx.iter()
                .zip(results)
                .map(|(&j, result)| {
                    arrivals.fetch_add(result.metrics.counts.arrivals, Ordering::Relaxed);
                    (j, replication_row(&result))
                })
                .collect()
        })
        .collect();
    (in_job_order(jobs.len(), grouped), arrivals.into_inner())
}

/// Per-replication values of every summary metric of one run, keyed like [`METRICS`]' columns.
pub fn replication_row(r: &RunResult) -> PolicyRow {
    let m = &r.metrics;
    let c = &m.counts;
    let n = c.requests.max(1) as f64;
    let p = |x: f64| Estimate::point(x);
    let quality = m.quality.as_ref();
    let q = |f: &dyn Fn(&crate::metrics::QualityCounts) -> f64| p(quality.map_or(f64::NAN, f));
    PolicyRow {
        policy: r.policy.clone(),
        replications: 1,
        requests: p(c.requests as f64),
        success_rate: p(c.succeeded as f64 / n),
        latency_mean_s: p(m.latency.mean_s()),
        latency_p50_s: p(m.latency.quantile_s(0.50)),
        latency_p95_s: p(m.latency.quantile_s(0.95)),
        latency_p99_s: p(m.latency.quantile_s(0.99)),
        ttft_p50_s: p(m.ttft.quantile_s(0.50)),
        ttft_p95_s: p(m.ttft.quantile_s(0.95)),
        cost_usd: p(m.cost_usd),
        cost_per_1k_usd: p(m.cost_usd / n * 1000.0),
        errors_429: p(c.attempt_errors[ErrorClass::RateLimited.index()] as f64),
        errors_5xx: p(c.attempt_errors[ErrorClass::Server.index()] as f64),
        timeouts: p(c.attempt_errors[ErrorClass::Timeout.index()] as f64),
        ttft_timeouts: p(c.ttft_timeouts as f64),
        retries: p(c.retries as f64),
        fallbacks: p(c.fallbacks as f64),
        cache_hits: p(c.cache_hits as f64),
        rejected: p(c.rejected as f64),
        denied: p(c.denied_total() as f64),
        denied_rpm: p(c.denied[0] as f64),
        denied_tpm: p(c.denied[1] as f64),
        denied_concurrency: p(c.denied[2] as f64),
        denied_budget: p((c.denied[3] + c.denied[4]) as f64),
        quality_on: quality.is_some(),
        quality: q(&|qc| qc.quality()),
        mean_score: q(&|qc| qc.mean_score()),
        // Infinite when nothing acceptable was answered (every dollar was spent on unacceptable answers).
        cost_per_acceptable: q(&|qc| m.cost_usd / qc.acceptable_total() as f64),
    }
}

/// One row whose metrics are the mean and 95% half-width of the per-replication rows `reps`.
pub fn summarize(policy: &str, reps: &[PolicyRow]) -> PolicyRow {
    let mut row = PolicyRow {
        policy: policy.to_string(),
        replications: reps.len() as u32,
        quality_on: quality_on(reps),
        ..Default::default()
    };
    for m in METRICS {
        let xs: Vec<f64> = reps.iter().map(|r| (m.get)(r).mean).collect();
        let iv = mean_ci95(&xs);
        *(m.get_mut)(&mut row) = Estimate::from(&iv);
    }
    row
}

/// `policy - baseline` on every metric of [`METRICS`] (the quality metrics only when both have quality on), paired replication by replication (common random
/// numbers) over the replications both have.
pub fn paired_rows(policy: &str, reps: &[PolicyRow], baseline: &str, base_reps: &[PolicyRow]) -> Vec<PairedRow> {
    let k = reps.len().min(base_reps.len());
    metrics(quality_on(reps) && quality_on(base_reps))
        .filter_map(|m| {
            let a: Vec<f64> = reps[..k].iter().map(|r| (m.get)(r).mean).collect();
            let z: Vec<f64> = base_reps[..k].iter().map(|r| (m.get)(r).mean).collect();
            let iv = paired_diff(&a, &z).ok()?;
            Some(PairedRow::new(policy, baseline, m.column, iv.mean, iv.half_width))
        })
        .collect()
}

/// Summarises an experiment: one row per policy with 95% intervals over replications, paired differences
/// against the baseline, pooled latency CDFs and the time series.
pub fn report(model: &Compiled, exp: &Experiment) -> RunReport {
    let per_rep: Vec<Vec<PolicyRow>> = exp.runs.iter().map(|runs| runs.iter().map(replication_row).collect()).collect();
    let rows: Vec<PolicyRow> = exp.policies.iter().zip(&per_rep).map(|(name, reps)| summarize(name, reps)).collect();
    let base_name = &model.scenario.policies[model.baseline].name;
    let baseline = exp.policies.iter().position(|p| p == base_name);
    let mut paired = Vec::new();
    if let Some(b) = baseline {
        for (i, name) in exp.policies.iter().enumerate() {
            if i != b {
                paired.extend(paired_rows(name, &per_rep[i], base_name, &per_rep[b]));
            }
        }
    }
    let cdf = exp
        .policies
        .iter()
        .zip(&exp.runs)
        .map(|(name, runs)| {
            let mut pooled = LatencyHistogram::default();
            runs.iter().for_each(|r| pooled.merge(&r.metrics.latency));
            CdfSeries { policy: name.clone(), points: pooled.cdf(200) }
        })
        .collect();
    let ids: Vec<Arc<str>> = model.endpoint_ids().iter().map(|id| Arc::from(id.as_str())).collect();
    let rows_in = |runs: &[RunResult]| runs.iter().map(|r| r.metrics.series.rows.len()).sum::<usize>();
    let total_rows: usize = exp.runs.iter().map(|runs| rows_in(runs)).sum();
    let mut timeseries = Vec::with_capacity(total_rows);
    let mut shares = Vec::with_capacity(total_rows * ids.len());
    for (name, runs) in exp.policies.iter().zip(&exp.runs) {
        let name: Arc<str> = Arc::from(name.as_str());
        for r in runs {
            for row in &r.metrics.series.rows {
                let width_s = row.width.max(1) as f64 / 1e9;
                let t = row.start as f64 / 1e9;
                let finished = row.completed + row.failed;
                timeseries.push(TimeseriesRow {
                    policy: name.clone(),
                    replication: r.replication,
                    t_start_s: t,
                    interval_s: width_s,
                    throughput_rps: row.completed as f64 / width_s,
                    p95_s: row.p95_s.is_finite().then_some(row.p95_s),
                    error_rate: if finished == 0 { 0.0 } else { row.failed as f64 / finished as f64 },
                    cost_usd: row.cost_usd,
                    queue_len: row.queue_len as f64,
                    drain: row.drain,
                });
                let total: u64 = row.attempts.iter().sum();
                for (e, &a) in row.attempts.iter().enumerate() {
                    shares.push(ShareRow {
                        policy: name.clone(),
                        replication: r.replication,
                        t_start_s: t,
                        endpoint: ids[e].clone(),
                        share: if total == 0 { 0.0 } else { a as f64 / total as f64 },
                    });
                }
            }
        }
    }
    let mut classes = Vec::new();
    for (name, runs) in exp.policies.iter().zip(&exp.runs) {
        for (c, class) in model.class_names().into_iter().enumerate() {
            let (mut lat, mut ttft) = (LatencyHistogram::default(), LatencyHistogram::default());
            for r in runs {
                let (l, t) = r.metrics.class_latency(c);
                lat.merge(l);
                ttft.merge(t);
            }
            classes.push(ClassRow {
                policy: name.clone(),
                class,
                succeeded: lat.len(),
                latency_p50_s: lat.quantile_s(0.5),
                latency_p95_s: lat.quantile_s(0.95),
                ttft_p50_s: ttft.quantile_s(0.5),
                ttft_p95_s: ttft.quantile_s(0.95),
            });
        }
    }
    let class_quality = class_quality_rows(model, exp);
    RunReport {
        scenario: model.scenario.name.clone(),
        seed: model.seed,
        replications: model.scenario.replications,
        baseline: baseline.map(|_| base_name.clone()),
        rows,
        paired,
        per_replication: per_rep
            .into_iter()
            .zip(&exp.runs)
            .flat_map(|(reps, runs)| {
                reps.into_iter().zip(runs).map(|(row, r)| ReplicationRow { replication: r.replication, row })
            })
            .collect(),
        cdf,
        timeseries,
        shares,
        classes,
        class_quality,
    }
}

/// Answer quality per policy and task class: mean and 95% interval over replications (empty with quality
/// off). A replication without a scored answer of the class has no quality for it and is left out.
fn class_quality_rows(model: &Compiled, exp: &Experiment) -> Vec<ClassQualityRow> {
    let mut out = Vec::new();
    for (name, runs) in exp.policies.iter().zip(&exp.runs) {
        let counts: Vec<&crate::metrics::QualityCounts> =
            runs.iter().filter_map(|r| r.metrics.quality.as_ref()).collect();
        if counts.is_empty() {
            continue;
        }
        for (c, class) in model.class_names().into_iter().enumerate() {
            let answered: Vec<f64> = counts.iter().map(|q| q.answered.get(c).copied().unwrap_or(0) as f64).collect();
            let finite = |f: &dyn Fn(&crate::metrics::QualityCounts) -> f64| -> Vec<f64> {
                counts.iter().filter(|q| q.answered.get(c).is_some_and(|&n| n > 0)).map(|q| f(q)).collect()
            };
            out.push(ClassQualityRow {
                policy: name.clone(),
                class,
                answered: answered.iter().sum::<f64>() / answered.len() as f64,
                quality: Estimate::from(&mean_ci95(&finite(&|q| q.class_quality(c)))),
                mean_score: Estimate::from(&mean_ci95(&finite(&|q| q.class_mean_score(c)))),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{MAX_GROUP, lockstep_groups};
    use proptest::prelude::*;

    /// The jobs of `experiment::run`: policy-major.
    fn grid(policies: usize, reps: u32) -> Vec<(usize, u32)> {
        (0..policies).flat_map(|p| (0..reps).map(move |r| (p, r))).collect()
    }

    /// Each group as (replication, policies).
    fn named(jobs: &[(usize, u32)], groups: &[Vec<usize>]) -> Vec<(u32, Vec<usize>)> {
        groups.iter().map(|g| (jobs[g[0]].1, g.iter().map(|&j| jobs[j].0).collect())).collect()
    }

    #[test]
    fn one_thread_runs_every_policy_of_a_replication_together() {
        let jobs = grid(6, 3);
        let want: Vec<(u32, Vec<usize>)> = (0..3).map(|r| (r, (0..6).collect())).collect();
        assert_eq!(named(&jobs, &lockstep_groups(&jobs, 1)), want);
    }

    #[test]
    fn more_threads_split_the_policies_to_keep_every_worker_busy() {
        // 3 replications on 2 threads: 3 groups would leave a thread idle for a third of the time; 6 do not.
        let jobs = grid(6, 3);
        let g = named(&jobs, &lockstep_groups(&jobs, 2));
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], (0, vec![0, 1, 2]));
        assert_eq!(g[1], (0, vec![3, 4, 5]));
        // 2 replications on 2 threads: one group each.
        assert_eq!(lockstep_groups(&grid(6, 2), 2).len(), 2);
        // Many threads, few runs: one run per group.
        assert_eq!(lockstep_groups(&grid(3, 1), 16).len(), 3);
    }

    #[test]
    fn a_group_holds_at_most_max_group_runs() {
        let jobs = grid(50, 2);
        let groups = lockstep_groups(&jobs, 1);
        assert!(groups.iter().all(|g| g.len() <= MAX_GROUP), "{groups:?}");
        assert_eq!(groups.len(), 2 * 50usize.div_ceil(MAX_GROUP));
    }

    proptest! {
        #[test]
        fn every_job_is_in_exactly_one_group_of_one_replication(
            jobs in prop::collection::vec((0usize..12, 0u32..5), 1..60),
            threads in 1usize..20,
        ) {
            let groups = lockstep_groups(&jobs, threads);
            let mut seen = vec![0u32; jobs.len()];
            for g in &groups {
                prop_assert!(!g.is_empty() && g.len() <= MAX_GROUP);
                prop_assert!(g.iter().all(|&j| jobs[j].1 == jobs[g[0]].1), "one replication: {g:?}");
                for &j in g {
                    seen[j] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "{groups:?}");
        }
    }
}
