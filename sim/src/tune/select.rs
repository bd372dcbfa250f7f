//! Ranking candidates: constraint violation, Pareto ranks over the two objectives, dominance with
//! confidence, and the choice of the best feasible point.
//!
//! Objectives are compared as values to minimise: a metric better higher (quality, mean score) enters
//! negated ([`minimised`]), so "lower is better" holds for every coordinate here.

use super::config::{Confidence, Constraint, higher_is_better};
use crate::report::{PolicyRow, metric, pareto_frontier, pareto_frontier_n};

/// The mean of metric `name` in `row` as a value to minimise: negated for a metric better higher; NaN for
/// an unknown metric.
pub fn minimised(row: &PolicyRow, name: &str) -> f64 {
    let mean = metric(name).map_or(f64::NAN, |m| (m.get)(row).mean);
    if higher_is_better(name) { -mean } else { mean }
}

/// The two objectives read from a row as values to minimise: `(first, second)`.
pub fn objectives(row: &PolicyRow, names: &[&'static str; 2]) -> (f64, f64) {
    (minimised(row, names[0]), minimised(row, names[1]))
}

/// Indices of `rows` on the Pareto frontier of `axes` (each minimised as by [`minimised`]), ordered by
/// ascending first axis (then the others, then index). With two axes this is exactly
/// [`pareto_frontier`]; a third (quality) keeps candidates that are dearer or slower but answer better.
pub fn frontier(rows: &[&PolicyRow], axes: &[&str]) -> Vec<usize> {
    if let [a, b] = axes {
        let points: Vec<(f64, f64)> = rows.iter().map(|r| (minimised(r, a), minimised(r, b))).collect();
        return pareto_frontier(&points);
    }
    let points: Vec<Vec<f64>> = rows.iter().map(|r| axes.iter().map(|a| minimised(r, a)).collect()).collect();
    pareto_frontier_n(&points)
}

/// Total relative violation of the constraints (0 = feasible).
pub fn violation(row: &PolicyRow, constraints: &[Constraint], confidence: Confidence) -> f64 {
    constraints.iter().map(|c| c.violation(row, confidence)).sum()
}

/// Pareto rank of every point (0 = non-dominated, 1 = non-dominated once rank 0 is removed, ...); points
/// with a non-finite coordinate get `usize::MAX`.
pub fn pareto_ranks(points: &[(f64, f64)]) -> Vec<usize> {
    let mut rank = vec![usize::MAX; points.len()];
    let mut left: Vec<usize> = (0..points.len()).collect();
    let mut level = 0;
    while !left.is_empty() {
        let sub: Vec<(f64, f64)> = left.iter().map(|&i| points[i]).collect();
        let front = pareto_frontier(&sub);
        if front.is_empty() {
            break;
        }
        for &k in &front {
            rank[left[k]] = level;
        }
        let on: Vec<usize> = front.iter().map(|&k| left[k]).collect();
        left.retain(|i| !on.contains(i));
        level += 1;
    }
    rank
}

/// Whether `a` dominates `b` with confidence: on both objectives `a`'s 95% interval lies wholly on the
/// better side of `b`'s (below it, or above it for a metric better higher).
pub fn surely_dominates(a: &PolicyRow, b: &PolicyRow, names: &[&'static str; 2]) -> bool {
    names.iter().all(|n| {
        metric(n).is_some_and(|m| {
            let (x, y) = ((m.get)(a), (m.get)(b));
            let separated = if higher_is_better(n) { x.lower() > y.upper() } else { x.upper() < y.lower() };
            x.ci95.is_some() && y.ci95.is_some() && separated
        })
    })
}

/// Orders candidates from best to worst for successive halving: those feasible by the means first, then by
/// violation; within each group by Pareto rank *among that group* (an infeasible point must not push a
/// feasible one down a rank), then by the first objective and index.
pub fn race_order(rows: &[&PolicyRow], names: &[&'static str; 2], constraints: &[Constraint]) -> Vec<usize> {
    let points: Vec<(f64, f64)> = rows.iter().map(|r| objectives(r, names)).collect();
    let viol: Vec<f64> = rows.iter().map(|r| violation(r, constraints, Confidence::Mean)).collect();
    let mut ranks = vec![usize::MAX; rows.len()];
    for feasible in [true, false] {
        let group: Vec<usize> = (0..rows.len()).filter(|&i| (viol[i] == 0.0) == feasible).collect();
        let sub: Vec<(f64, f64)> = group.iter().map(|&i| points[i]).collect();
        for (k, r) in pareto_ranks(&sub).into_iter().enumerate() {
            ranks[group[k]] = r;
        }
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (viol[a] == 0.0, viol[b] == 0.0);
        fb.cmp(&fa)
            .then(viol[a].total_cmp(&viol[b]))
            .then(ranks[a].cmp(&ranks[b]))
            .then(points[a].0.total_cmp(&points[b].0))
            .then(a.cmp(&b))
    });
    order
}

/// The best feasible point: the lowest first objective (then second) among rows meeting every constraint.
pub fn choose(
    rows: &[&PolicyRow],
    names: &[&'static str; 2],
    constraints: &[Constraint],
    confidence: Confidence,
) -> Option<usize> {
    (0..rows.len())
        .filter(|&i| violation(rows[i], constraints, confidence) == 0.0)
        .filter(|&i| {
            let (a, b) = objectives(rows[i], names);
            a.is_finite() && b.is_finite()
        })
        .min_by(|&a, &b| {
            let (pa, pb) = (objectives(rows[a], names), objectives(rows[b], names));
            pa.0.total_cmp(&pb.0).then(pa.1.total_cmp(&pb.1)).then(a.cmp(&b))
        })
}

/// The `n` rows closest to feasibility (smallest total violation), for when none is feasible.
pub fn closest(rows: &[&PolicyRow], constraints: &[Constraint], confidence: Confidence, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        violation(rows[a], constraints, confidence).total_cmp(&violation(rows[b], constraints, confidence))
    });
    order.truncate(n);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Estimate;

    const NAMES: [&str; 2] = ["cost_per_1k_usd", "latency_p95_s"];

    fn row(cost: f64, p95: f64, ci: f64, success: f64) -> PolicyRow {
        PolicyRow {
            cost_per_1k_usd: Estimate::with_ci(cost, ci),
            latency_p95_s: Estimate::with_ci(p95, ci),
            success_rate: Estimate::with_ci(success, 0.0),
            ..Default::default()
        }
    }

    fn quality_row(cost: f64, p95: f64, quality: f64) -> PolicyRow {
        PolicyRow { quality: Estimate::with_ci(quality, 0.01), quality_on: true, ..row(cost, p95, 0.1, 1.0) }
    }

    #[test]
    fn quality_is_the_frontier_s_third_axis() {
        let rows = [
            quality_row(1.0, 1.0, 0.9),  // cheap, fast, good
            quality_row(1.0, 1.0, 0.8),  // the same cost and p95, worse answers: dominated by quality
            quality_row(2.0, 2.0, 0.95), // dearer and slower, but the best answers
            quality_row(2.0, 2.0, 0.85), // dearer, slower and worse than the first
        ];
        let refs: Vec<&PolicyRow> = rows.iter().collect();
        let axes = ["cost_per_1k_usd", "latency_p95_s", "quality"];
        assert_eq!(frontier(&refs, &axes), vec![0, 2]);
        // Without quality, the first two tie and the dearer ones are dominated.
        assert_eq!(frontier(&refs, &NAMES), vec![0, 1]);
        // Quality as an objective is maximised: the better answers win at equal cost.
        assert_eq!(frontier(&refs, &["cost_per_1k_usd", "quality"]), vec![0, 2]);
        assert_eq!(objectives(&rows[0], &["cost_per_1k_usd", "quality"]), (1.0, -0.9));
        // Confident dominance on a maximised objective needs the other's interval wholly below.
        let names = ["cost_per_1k_usd", "quality"];
        assert!(surely_dominates(&quality_row(1.0, 1.0, 0.9), &quality_row(2.0, 1.0, 0.8), &names));
        assert!(!surely_dominates(&quality_row(1.0, 1.0, 0.8), &quality_row(2.0, 1.0, 0.9), &names));
        assert!(!surely_dominates(&quality_row(1.0, 1.0, 0.9), &quality_row(2.0, 1.0, 0.89), &names));
    }

    #[test]
    fn ranks_peel_frontiers_in_layers() {
        let pts = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0), (5.0, 5.0), (f64::NAN, 1.0)];
        assert_eq!(pareto_ranks(&pts), vec![0, 0, 1, 0, 2, usize::MAX]);
    }

    #[test]
    fn choice_is_the_cheapest_feasible_point() {
        let cs = [Constraint::parse("p95 <= 4s").unwrap(), Constraint::parse("success >= 0.99").unwrap()];
        let rows = [
            row(1.0, 6.0, 0.1, 1.0),  // cheapest, too slow
            row(2.0, 3.0, 0.1, 0.98), // fast, fails too often
            row(3.0, 3.9, 0.2, 1.0),  // feasible by the mean, not by the interval
            row(4.0, 2.0, 0.1, 1.0),  // feasible either way
        ];
        let refs: Vec<&PolicyRow> = rows.iter().collect();
        assert_eq!(choose(&refs, &NAMES, &cs, Confidence::Mean), Some(2));
        assert_eq!(choose(&refs, &NAMES, &cs, Confidence::Interval), Some(3));
        let strict = [Constraint::parse("p95 <= 1s").unwrap()];
        assert_eq!(choose(&refs, &NAMES, &strict, Confidence::Mean), None);
        assert_eq!(closest(&refs, &strict, Confidence::Mean, 2), vec![3, 1]);
        let chosen = choose(&refs, &NAMES, &cs, Confidence::Interval).unwrap();
        assert!(cs.iter().all(|c| c.violation(refs[chosen], Confidence::Interval) == 0.0));
    }

    #[test]
    fn confident_dominance_needs_separated_intervals() {
        let (a, b, c) = (row(1.0, 1.0, 0.1, 1.0), row(2.0, 2.0, 0.1, 1.0), row(1.15, 1.15, 0.1, 1.0));
        assert!(surely_dominates(&a, &b, &NAMES));
        assert!(!surely_dominates(&a, &c, &NAMES), "overlapping intervals");
        assert!(!surely_dominates(&b, &a, &NAMES));
    }

    #[test]
    fn an_infeasible_point_does_not_push_a_feasible_one_down() {
        // 0 is cheap and fast but fails the success-rate bound; it dominates 1, which is the cheapest feasible.
        let cs = [Constraint::parse("success >= 0.99").unwrap()];
        let rows = [row(1.0, 1.0, 0.1, 0.5), row(2.0, 2.0, 0.1, 1.0), row(3.0, 1.5, 0.1, 1.0), row(4.0, 3.0, 0.1, 1.0)];
        let refs: Vec<&PolicyRow> = rows.iter().collect();
        assert_eq!(race_order(&refs, &NAMES, &cs), vec![1, 2, 3, 0]);
    }

    #[test]
    fn race_order_puts_feasible_frontier_first() {
        let cs = [Constraint::parse("p95 <= 4s").unwrap()];
        let rows = [row(1.0, 6.0, 0.1, 1.0), row(3.0, 3.0, 0.1, 1.0), row(2.0, 3.5, 0.1, 1.0), row(2.5, 3.6, 0.1, 1.0)];
        let refs: Vec<&PolicyRow> = rows.iter().collect();
        assert_eq!(race_order(&refs, &NAMES, &cs), vec![2, 1, 3, 0]);
    }
}
