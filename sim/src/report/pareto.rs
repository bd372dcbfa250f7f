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

/// Indices of the points not dominated by any other point, minimising every coordinate (a coordinate to
/// maximise, like quality, is passed negated).
///
/// The same rules as [`pareto_frontier`] in any number of coordinates (every point must have as many):
/// `a` dominates `b` when it is no worse on every coordinate and better on one; exact duplicates are all
/// kept; a point with a non-finite coordinate is never on the frontier. Ordered lexicographically by
/// coordinates, then index. Runs in `O(n^2 k)`, which suits the few thousand candidates of a tuning.
pub fn pareto_frontier_n(points: &[Vec<f64>]) -> Vec<usize> {
    let finite: Vec<usize> = (0..points.len()).filter(|&i| points[i].iter().all(|x| x.is_finite())).collect();
    let dominates = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y);
    let mut frontier: Vec<usize> =
        finite.iter().copied().filter(|&i| !finite.iter().any(|&j| dominates(&points[j], &points[i]))).collect();
    frontier.sort_by(|&a, &b| {
        points[a]
            .iter()
            .zip(&points[b])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
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

    #[test]
    fn a_third_coordinate_rescues_points_the_first_two_dominate() {
        // (cost, p95, -quality): point 1 is dearer and slower than point 0 but better on quality, so it stays;
        // point 2 is worse on all three than point 0; point 3 duplicates point 0.
        let pts = [vec![1.0, 1.0, -0.7], vec![2.0, 2.0, -0.9], vec![3.0, 3.0, -0.6], vec![1.0, 1.0, -0.7]];
        assert_eq!(pareto_frontier_n(&pts), vec![0, 3, 1]);
        // Without the third coordinate, 0 dominates 1.
        let two: Vec<(f64, f64)> = pts.iter().map(|p| (p[0], p[1])).collect();
        assert_eq!(pareto_frontier(&two), vec![0, 3]);
        // A non-finite coordinate keeps a point off.
        assert_eq!(pareto_frontier_n(&[vec![0.0, 0.0, f64::NAN], vec![1.0, 1.0, 1.0]]), vec![1]);
        assert!(pareto_frontier_n(&[]).is_empty());
    }

    proptest! {
        /// In two coordinates the n-dimensional frontier is the two-dimensional one (same set, same order).
        #[test]
        fn n_dimensional_frontier_agrees_in_two_dimensions(
            pts in proptest::collection::vec((0u8..20, 0u8..20), 0..40)
        ) {
            let pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, y)| (x as f64, y as f64)).collect();
            let as_vecs: Vec<Vec<f64>> = pts.iter().map(|p| vec![p.0, p.1]).collect();
            prop_assert_eq!(pareto_frontier_n(&as_vecs), pareto_frontier(&pts));
        }

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
