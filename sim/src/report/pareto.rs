//! The Pareto frontier of two objectives that are both minimised (e.g. p95 latency and cost).
//!
//! Used by the report (cost against p95 per policy) and by tuning sweeps. It only ranks points; it
//! does not know what the coordinates mean.

/// Indices of the points not dominated by any other point, minimising both coordinates.
///
/// A point `a` dominates `b` when `a.0 <= b.0`, `a.1 <= b.1` and at least one is strictly smaller.
/// Exact duplicates do not dominate each other, so all copies of a frontier point are returned.
/// Points with a non-finite coordinate are never on the frontier.
///
/// The result is ordered by ascending first coordinate (then ascending second coordinate, then
/// index), so along it the second coordinate strictly decreases between distinct points: the order
/// in which to draw the frontier as a step line. Runs in `O(n log n)`.
pub fn pareto_frontier(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> =
        (0..points.len()).filter(|&i| points[i].0.is_finite() && points[i].1.is_finite()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (points[a], points[b]);
        pa.0.total_cmp(&pb.0).then(pa.1.total_cmp(&pb.1)).then(a.cmp(&b))
    });

    let mut frontier = Vec::new();
    let mut last: Option<(f64, f64)> = None;
    for i in order {
        let p = points[i];
        let keep = match last {
            None => true,
            // Sorted by x, so an earlier point has x <= p.x: p survives only with a strictly
            // smaller y, or as an exact duplicate of the last frontier point.
            Some(l) => p.1 < l.1 || p == l,
        };
        if keep {
            frontier.push(i);
            last = Some(p);
        }
    }
    frontier
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frontier_of_known_set_in_ascending_x() {
        // (1,5) (2,3) (4,1) are non-dominated; (3,4) is dominated by (2,3); (5,5) by everything.
        let pts = [(3.0, 4.0), (4.0, 1.0), (1.0, 5.0), (5.0, 5.0), (2.0, 3.0)];
        assert_eq!(pareto_frontier(&pts), vec![2, 4, 1]);
    }

    #[test]
    fn single_point_dominating_all_is_the_whole_frontier() {
        let pts = [(2.0, 2.0), (1.0, 1.0), (1.0, 3.0), (3.0, 1.0)];
        assert_eq!(pareto_frontier(&pts), vec![1]);
    }

    #[test]
    fn ties_on_one_coordinate_keep_only_the_better_other_coordinate() {
        // Same x: the lower y wins. Same y: the lower x wins.
        let pts = [(1.0, 2.0), (1.0, 1.0), (2.0, 1.0)];
        assert_eq!(pareto_frontier(&pts), vec![1]);
    }

    #[test]
    fn exact_duplicates_are_all_kept() {
        let pts = [(1.0, 1.0), (1.0, 1.0), (0.5, 2.0)];
        assert_eq!(pareto_frontier(&pts), vec![2, 0, 1]);
    }

    #[test]
    fn non_finite_points_are_ignored() {
        let pts = [(f64::NAN, 0.0), (1.0, f64::INFINITY), (2.0, 2.0)];
        assert_eq!(pareto_frontier(&pts), vec![2]);
        assert!(pareto_frontier(&[]).is_empty());
    }

    fn dominates(a: (f64, f64), b: (f64, f64)) -> bool {
        a.0 <= b.0 && a.1 <= b.1 && (a.0 < b.0 || a.1 < b.1)
    }

    proptest! {
        #[test]
        fn frontier_matches_quadratic_definition(
            pts in proptest::collection::vec((0u8..20, 0u8..20), 0..40)
        ) {
            let pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, y)| (x as f64, y as f64)).collect();
            let mut expected: Vec<usize> = (0..pts.len())
                .filter(|&i| !pts.iter().any(|&q| dominates(q, pts[i])))
                .collect();
            let mut got = pareto_frontier(&pts);
            // Order: ascending x, and y strictly decreasing between distinct points.
            for w in got.windows(2) {
                let (a, b) = (pts[w[0]], pts[w[1]]);
                prop_assert!(a.0 <= b.0);
                prop_assert!(a == b || a.1 > b.1);
            }
            got.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(got, expected);
        }
    }
}
