//! Evaluating candidates: every (candidate, replication) run in parallel with common random numbers, and
//! successive halving over replications.
//!
//! Replication `r` of every candidate and baseline sees the same traffic and provider luck, so candidates
//! are compared on the same requests and the paired differences against the baselines are tight.
//!
//! Successive halving (`method = "successive-halving"`) starts every candidate on 2 replications, then
//! keeps the best `1/eta` (feasible by the means first, then by Pareto rank over the two objectives, then by
//! the first objective) and gives them `eta` times more replications, until the survivors have
//! `replications`. At each rung it also drops, whatever their rank, candidates that are dominated with
//! confidence (another candidate, feasible by the means, has 95% upper bounds below their lower bounds on
//! both objectives) and candidates that surely violate a constraint (the whole 95% interval on the wrong
//! side). Only fully evaluated candidates can be chosen or appear on the frontier.

use super::TuneSetup;
use super::config::{Confidence, Method};
use super::select::{self, objectives, surely_dominates, violation};
use crate::experiment::{paired_rows, run_rows, summarize};
use crate::report::{PairedRow, PolicyRow};
use std::time::Instant;

/// Why a candidate stopped before its last replication.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Evaluated on every replication.
    Complete,
    /// Dropped by successive halving after the rung with this many replications.
    Pruned {
        /// Replications it had.
        after: u32,
        /// `rank`, `dominated` or `infeasible`.
        reason: &'static str,
    },
}

/// One evaluated candidate.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its name (`<policy>#<index>`).
    pub name: String,
    /// Summary over the replications it got (mean and 95% half-width).
    pub summary: PolicyRow,
    /// Per-replication rows, replication 0 first.
    pub reps: Vec<PolicyRow>,
    /// Complete or pruned.
    pub status: Status,
}

/// One baseline policy of the scenario.
#[derive(Clone, Debug)]
pub struct Baseline {
    /// Summary over replications.
    pub summary: PolicyRow,
    /// Per-replication rows.
    pub reps: Vec<PolicyRow>,
}

/// The best candidate against one baseline at equal or better second objective.
#[derive(Clone, Debug)]
pub struct BaselineMatch {
    /// Index of the baseline.
    pub baseline: usize,
    /// The candidate, if any is at least as good on the second objective.
    pub candidate: Option<usize>,
    /// `candidate - baseline` on the first objective.
    pub first_diff: Option<PairedRow>,
    /// `candidate - baseline` on the second objective.
    pub second_diff: Option<PairedRow>,
}

/// The outcome of a tuning run.
#[derive(Clone, Debug)]
pub struct TuneResult {
    /// Every candidate, in generation order.
    pub candidates: Vec<Candidate>,
    /// The scenario's policies, in scenario order.
    pub baselines: Vec<Baseline>,
    /// Complete candidates on the Pareto frontier of the two objectives (and quality, when the scenario
    /// states it: see [`TuneSetup::frontier_axes`]), by ascending first objective.
    pub frontier: Vec<usize>,
    /// The chosen candidate: the lowest first objective among complete candidates meeting every constraint.
    pub chosen: Option<usize>,
    /// When nothing is feasible, the complete candidates closest to feasibility (at most five).
    pub closest: Vec<usize>,
    /// Paired differences `chosen - baseline` on every metric, per baseline.
    pub paired: Vec<PairedRow>,
    /// Per baseline: the complete candidate with the lowest first objective among those at least as good
    /// on the second (e.g. the cheapest at equal or better p95), with the paired difference of the first.
    pub matches: Vec<BaselineMatch>,
    /// Runs simulated (candidates and baselines).
    pub runs: u64,
    /// Requests simulated in total (warm-up included).
    pub simulated_requests: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

impl TuneResult {
    /// Whether candidate `c` meets every constraint (under the configured confidence).
    pub fn feasible(&self, setup: &TuneSetup, c: usize) -> bool {
        self.candidates[c].status == Status::Complete
            && violation(&self.candidates[c].summary, &setup.constraints, setup.config.confidence) == 0.0
    }
}

/// The replication counts of successive-halving rungs: 2, then `eta` times more, up to `replications`.
pub fn rungs(replications: u32, eta: u32) -> Vec<u32> {
    let mut out = vec![replications.min(2)];
    while *out.last().unwrap_or(&replications) < replications {
        let next = out.last().copied().unwrap_or(1).saturating_mul(eta).min(replications);
        out.push(next);
    }
    out
}

/// Runs planned before any early drop (for the progress bar): baselines plus candidates.
pub fn planned_runs(setup: &TuneSetup) -> u64 {
    let r = setup.replications as u64;
    let base = setup.baselines as u64 * r;
    let n = setup.candidates() as u64;
    if setup.config.method != Method::SuccessiveHalving {
        return base + n * r;
    }
    let (mut alive, mut done, mut total) = (n, 0u64, base);
    let levels = rungs(setup.replications, setup.config.eta);
    for (k, &reps) in levels.iter().enumerate() {
        total += alive * (reps as u64 - done);
        done = reps as u64;
        if k + 1 < levels.len() {
            alive = alive.div_ceil(setup.config.eta as u64);
        }
    }
    total
}

/// Evaluates every candidate and baseline; `progress` is told the number of runs finished.
pub fn evaluate(setup: &TuneSetup, progress: Option<&(dyn Fn(u64) + Sync)>) -> TuneResult {
    let start = Instant::now();
    let n = setup.candidates();
    let r_max = setup.replications;
    let mut reps: Vec<Vec<PolicyRow>> = vec![Vec::new(); setup.baselines + n];
    let mut status = vec![Status::Complete; n];
    let mut finished = 0u64;
    let mut simulated_requests = 0u64;
    let mut run = |jobs: Vec<(usize, u32)>, reps: &mut Vec<Vec<PolicyRow>>| {
        let offset = finished;
        let tick = |k: u64| {
            if let Some(f) = progress {
                f(offset + k);
            }
        };
        let (rows, arrivals) = run_rows(&setup.model, &jobs, Some(&tick));
        finished += jobs.len() as u64;
        simulated_requests += arrivals;
        for (&(p, _), row) in jobs.iter().zip(rows) {
            reps[p].push(row);
        }
    };
    let baseline_jobs = (0..setup.baselines).flat_map(|p| (0..r_max).map(move |r| (p, r)));
    let policy = |c: usize| setup.baselines + c;
    if setup.config.method != Method::SuccessiveHalving {
        let jobs = baseline_jobs.chain((0..n).flat_map(|c| (0..r_max).map(move |r| (policy(c), r)))).collect();
        run(jobs, &mut reps);
    } else {
        let levels = rungs(r_max, setup.config.eta);
        let mut alive: Vec<usize> = (0..n).collect();
        let mut done = 0u32;
        let mut first = Some(baseline_jobs);
        for (k, &target) in levels.iter().enumerate() {
            let cand_jobs = alive.iter().flat_map(|&c| (done..target).map(move |r| (policy(c), r)));
            let jobs: Vec<(usize, u32)> = match first.take() {
                Some(b) => b.chain(cand_jobs).collect(),
                None => cand_jobs.collect(),
            };
            run(jobs, &mut reps);
            done = target;
            if k + 1 == levels.len() {
                break;
            }
            alive = prune(setup, &alive, &reps, target, &mut status);
        }
    }

    assemble(setup, reps, status, finished, simulated_requests, start.elapsed().as_secs_f64())
}

/// Builds the result from the per-replication rows of every policy (`reps[p]`: baselines first, then the
/// candidates, replication 0 first) and the candidates' status: summaries, frontier, choice, paired
/// differences. `routesim merge` calls it with the rows that the shards of `routesim tune --shard` wrote.
pub fn assemble(
    setup: &TuneSetup,
    mut reps: Vec<Vec<PolicyRow>>,
    status: Vec<Status>,
    runs: u64,
    simulated_requests: u64,
    wall_s: f64,
) -> TuneResult {
    let n = setup.candidates();
    let policy = |c: usize| setup.baselines + c;
    let name_of = |c: usize| setup.model.scenario.policies[policy(c)].name.clone();
    let candidates: Vec<Candidate> = (0..n)
        .map(|c| Candidate {
            name: name_of(c),
            summary: summarize(&name_of(c), &reps[policy(c)]),
            reps: std::mem::take(&mut reps[policy(c)]),
            status: status[c].clone(),
        })
        .collect();
    let baselines: Vec<Baseline> = (0..setup.baselines)
        .map(|p| {
            let name = &setup.model.scenario.policies[p].name;
            Baseline { summary: summarize(name, &reps[p]), reps: std::mem::take(&mut reps[p]) }
        })
        .collect();

    let complete: Vec<usize> = (0..n).filter(|&c| candidates[c].status == Status::Complete).collect();
    let rows: Vec<&PolicyRow> = complete.iter().map(|&c| &candidates[c].summary).collect();
    let frontier = select::frontier(&rows, &setup.frontier_axes()).into_iter().map(|i| complete[i]).collect();
    let confidence = setup.config.confidence;
    let chosen = select::choose(&rows, &setup.objectives, &setup.constraints, confidence).map(|i| complete[i]);
    let closest = if chosen.is_none() {
        select::closest(&rows, &setup.constraints, confidence, 5).into_iter().map(|i| complete[i]).collect()
    } else {
        Vec::new()
    };
    let paired = chosen.map_or_else(Vec::new, |c| paired_against_baselines(&candidates[c], &baselines));
    let matches = (0..baselines.len())
        .map(|b| {
            let target = objectives(&baselines[b].summary, &setup.objectives).1;
            let candidate = complete
                .iter()
                .copied()
                .filter(|&c| objectives(&candidates[c].summary, &setup.objectives).1 <= target)
                .min_by(|&x, &y| {
                    let (px, py) = (
                        objectives(&candidates[x].summary, &setup.objectives),
                        objectives(&candidates[y].summary, &setup.objectives),
                    );
                    px.0.total_cmp(&py.0).then(px.1.total_cmp(&py.1)).then(x.cmp(&y))
                });
            let diff = |k: usize| {
                let c = candidate?;
                paired_against_baselines(&candidates[c], std::slice::from_ref(&baselines[b]))
                    .into_iter()
                    .find(|p| p.metric == setup.objectives[k])
            };
            BaselineMatch { baseline: b, candidate, first_diff: diff(0), second_diff: diff(1) }
        })
        .collect();
    TuneResult { candidates, baselines, frontier, chosen, closest, paired, matches, runs, simulated_requests, wall_s }
}

/// One successive-halving cut: keeps the best `1/eta` of `alive` and drops clearly bad ones; marks the
/// dropped in `status`.
fn prune(setup: &TuneSetup, alive: &[usize], reps: &[Vec<PolicyRow>], had: u32, status: &mut [Status]) -> Vec<usize> {
    let names = &setup.objectives;
    let summaries: Vec<PolicyRow> = alive.iter().map(|&c| summarize("", &reps[setup.baselines + c])).collect();
    let refs: Vec<&PolicyRow> = summaries.iter().collect();
    let order = select::race_order(&refs, names, &setup.constraints);
    let keep = alive.len().div_ceil(setup.config.eta as usize);
    let feasible_by_mean: Vec<bool> =
        refs.iter().map(|r| violation(r, &setup.constraints, Confidence::Mean) == 0.0).collect();
    let mut survivors = Vec::with_capacity(keep);
    for (rank, &i) in order.iter().enumerate() {
        let c = alive[i];
        let reason = if setup.constraints.iter().any(|k| k.surely_violated(refs[i])) {
            Some("infeasible")
        } else if (0..refs.len()).any(|j| j != i && feasible_by_mean[j] && surely_dominates(refs[j], refs[i], names)) {
            Some("dominated")
        } else if rank >= keep {
            Some("rank")
        } else {
            None
        };
        match reason {
            Some(reason) => status[c] = Status::Pruned { after: had, reason },
            None => survivors.push(c),
        }
    }
    if survivors.is_empty() {
        // Everything surely violates a constraint: keep the closest ones racing, so the report can show
        // the nearest misses on full replications.
        for &i in order.iter().take(keep) {
            status[alive[i]] = Status::Complete;
            survivors.push(alive[i]);
        }
    }
    survivors.sort_unstable();
    survivors
}

/// `chosen - baseline` for every metric and baseline, over the replications both have.
fn paired_against_baselines(chosen: &Candidate, baselines: &[Baseline]) -> Vec<PairedRow> {
    baselines.iter().flat_map(|b| paired_rows(&chosen.name, &chosen.reps, &b.summary.policy, &b.reps)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_eta_up_to_the_replications() {
        assert_eq!(rungs(5, 3), vec![2, 5]);
        assert_eq!(rungs(20, 3), vec![2, 6, 18, 20]);
        assert_eq!(rungs(2, 3), vec![2]);
        assert_eq!(rungs(1, 3), vec![1]);
    }
}
