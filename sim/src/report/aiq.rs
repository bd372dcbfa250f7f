//! RouterBench's AIQ ("average improvement in quality", Hu et al. 2024, arXiv 2403.12031, section 3): how
//! much quality a family of routers buys over a range of cost.
//!
//! A family is one policy swept over its knob (a `threshold` policy over `threshold`, a `quality` policy over
//! `min_quality`): each setting is one point `(cost, quality)`. Any two settings can be mixed (send a
//! fraction of the requests to each), so every point on a segment between two settings is attainable, and a
//! cheaper setting that is also better makes a dearer one pointless: what the family offers at a cost is
//! the **non-decreasing convex hull** of its points ([`nondecreasing_hull`]): the upper concave envelope of
//! the points up to the cheapest point of highest quality, then flat at that quality.
//!
//! **AIQ** is the mean height of that hull over a cost range:
//! `AIQ = 1 / (c_max - c_min) * integral from c_min to c_max of hull(c) dc`. [`aiq`] takes the range of the
//! family's own costs (the paper's definition); [`aiq_over`] takes a range shared by several families so
//! their AIQs compare (as RouterBench's `evaluation/AIQ.py` does: a hull is extended flat to the right of its
//! last point, and the cost below a family's cheapest point counts as quality 0, since the family cannot
//! answer for less). With a single cost (one point, or every point at one cost) the range is empty and the
//! AIQ is the hull's height there, the family's best quality: the limit of the mean over a shrinking range.
//!
//! Costs are any cost unit (USD per 1k requests in routesim's outputs); qualities are fractions in `[0, 1]`.
//! Points with a non-finite coordinate are ignored.

/// The non-decreasing convex hull of `(cost, quality)` points, as its vertices by ascending cost: the upper
/// concave envelope from the cheapest point (the best one at that cost) to the cheapest point of highest
/// quality. Points below it are not vertices; collinear points are dropped. Empty when no point is finite.
/// The input need not be sorted.
pub fn nondecreasing_hull(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    // By cost, the best quality first at each cost; then one point per cost.
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    pts.dedup_by(|later, kept| later.0 == kept.0);
    let Some(best) = pts.iter().map(|p| p.1).max_by(f64::total_cmp) else { return Vec::new() };
    // Beyond the cheapest point of highest quality nothing is better: the hull is flat from there.
    let last = pts.iter().position(|p| p.1 == best).unwrap_or(0);
    pts.truncate(last + 1);
    // Andrew's monotone chain, upper half: keep only right turns (clockwise), so the chain is concave.
    let mut hull: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
    for p in pts {
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
            if cross >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(p);
    }
    hull
}

/// The area under the hull (its vertices, by ascending cost) between `lo` and `hi`: linear between vertices,
/// flat at the last vertex's height to its right, 0 left of the first vertex. Exact (piecewise linear).
fn area_under(hull: &[(f64, f64)], lo: f64, hi: f64) -> f64 {
    let Some(&(last, top)) = hull.last() else { return 0.0 };
    let mut area = 0.0;
    for w in hull.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let (a, b) = (x0.max(lo), x1.min(hi));
        if a < b {
            let at = |c: f64| y0 + (y1 - y0) * (c - x0) / (x1 - x0);
            area += (b - a) * (at(a) + at(b)) / 2.0;
        }
    }
    let flat_from = last.max(lo);
    if flat_from < hi {
        area += (hi - flat_from) * top;
    }
    area
}

/// The AIQ of a family over the range of its own costs: the mean height of its [`nondecreasing_hull`]
/// between its cheapest and its dearest point (the dearest may lie right of the hull's last vertex, where
/// the hull is flat). `None` when no point is finite.
pub fn aiq(points: &[(f64, f64)]) -> Option<f64> {
    let costs = points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).map(|p| p.0);
    let lo = costs.clone().min_by(f64::total_cmp)?;
    let hi = costs.max_by(f64::total_cmp)?;
    aiq_over(points, lo, hi)
}

/// The AIQ of a family over the cost range `[lo, hi]` shared with other families: the hull is flat right of
/// its last vertex and 0 left of its cheapest point. With `lo == hi`, the hull's height at `lo`. `None` when
/// no point is finite or the range is not finite with `lo <= hi`.
pub fn aiq_over(points: &[(f64, f64)], lo: f64, hi: f64) -> Option<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return None;
    }
    let hull = nondecreasing_hull(points);
    let &(first, _) = hull.first()?;
    if lo == hi {
        // The limit of the mean height over a shrinking range at `lo`.
        return Some(if lo < first { 0.0 } else { height_at(&hull, lo) });
    }
    Some(area_under(&hull, lo, hi) / (hi - lo))
}

/// The hull's height at `c` (flat right of its last vertex; the first vertex's height at and right of it).
fn height_at(hull: &[(f64, f64)], c: f64) -> f64 {
    for w in hull.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if c <= x1 {
            return y0 + (y1 - y0) * (c - x0) / (x1 - x0);
        }
    }
    hull.last().map_or(0.0, |p| p.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn points_below_the_hull_are_not_vertices() {
        // (1, 0.5) lies below the chord from (0, 0.4) to (2, 0.9) (0.65 at cost 1); (3, 0.8) is dearer and worse
        // than (2, 0.9), so the hull stops at (2, 0.9).
        let pts = [(0.0, 0.4), (1.0, 0.5), (2.0, 0.9), (3.0, 0.8)];
        assert_eq!(nondecreasing_hull(&pts), vec![(0.0, 0.4), (2.0, 0.9)]);
        // Area on [0, 3]: trapezoid 2 * (0.4 + 0.9) / 2 = 1.3, then flat 1 * 0.9: 2.2; AIQ 2.2 / 3.
        assert!(close(aiq(&pts).unwrap(), 2.2 / 3.0));
    }

    #[test]
    fn a_concave_chain_keeps_every_vertex() {
        let pts = [(0.0, 0.2), (1.0, 0.6), (2.0, 0.8), (4.0, 0.9)];
        assert_eq!(nondecreasing_hull(&pts), pts.to_vec());
        // 0.4 + 0.7 + 2 * 0.85 = 2.8 over a range of 4.
        assert!(close(aiq(&pts).unwrap(), 0.7));
    }

    #[test]
    fn an_unsorted_input_gives_the_sorted_hull() {
        let pts = [(4.0, 0.9), (0.0, 0.2), (2.0, 0.8), (1.0, 0.6), (3.0, 0.5)];
        assert_eq!(nondecreasing_hull(&pts), vec![(0.0, 0.2), (1.0, 0.6), (2.0, 0.8), (4.0, 0.9)]);
        assert!(close(aiq(&pts).unwrap(), 0.7));
    }

    #[test]
    fn ties_keep_the_best_quality_at_a_cost_and_the_cheapest_at_the_best_quality() {
        // Two points at cost 0: the better one starts the hull. Two at quality 0.9: the cheaper ends it.
        let pts = [(0.0, 0.1), (0.0, 0.3), (2.0, 0.9), (3.0, 0.9), (1.0, 0.7)];
        assert_eq!(nondecreasing_hull(&pts), vec![(0.0, 0.3), (1.0, 0.7), (2.0, 0.9)]);
        // 0.5 + 0.8 + 0.9 = 2.2 over 3.
        assert!(close(aiq(&pts).unwrap(), 2.2 / 3.0));
        // Collinear points are not vertices, and exact duplicates count once.
        let line = [(0.0, 0.0), (1.0, 0.5), (2.0, 1.0), (1.0, 0.5)];
        assert_eq!(nondecreasing_hull(&line), vec![(0.0, 0.0), (2.0, 1.0)]);
        assert!(close(aiq(&line).unwrap(), 0.5));
    }

    #[test]
    fn a_single_point_is_its_own_hull_and_aiq() {
        assert_eq!(nondecreasing_hull(&[(1.5, 0.7)]), vec![(1.5, 0.7)]);
        assert!(close(aiq(&[(1.5, 0.7)]).unwrap(), 0.7));
        // Every point at one cost: the best quality there.
        assert!(close(aiq(&[(1.0, 0.2), (1.0, 0.6)]).unwrap(), 0.6));
        assert_eq!(aiq(&[]), None);
        assert_eq!(aiq(&[(f64::NAN, 0.5), (1.0, f64::INFINITY)]), None);
    }

    #[test]
    fn the_cheapest_point_being_the_best_gives_a_flat_hull() {
        let pts = [(1.0, 0.9), (2.0, 0.5), (3.0, 0.7)];
        assert_eq!(nondecreasing_hull(&pts), vec![(1.0, 0.9)]);
        assert!(close(aiq(&pts).unwrap(), 0.9));
    }

    #[test]
    fn a_shared_range_extends_the_hull_flat_and_counts_zero_below_its_cheapest_point() {
        let pts = [(1.0, 0.4), (2.0, 0.8)];
        // On [0, 4]: 0 on [0, 1], 0.6 on [1, 2], 0.8 * 2 on [2, 4]: 2.2 / 4.
        assert!(close(aiq_over(&pts, 0.0, 4.0).unwrap(), 0.55));
        // On its own range [1, 2]: 0.6.
        assert!(close(aiq(&pts).unwrap(), 0.6));
        // A range inside the hull: [1.5, 2] averages 0.6 and 0.8.
        assert!(close(aiq_over(&pts, 1.5, 2.0).unwrap(), 0.7));
        // Degenerate ranges: the height there.
        assert!(close(aiq_over(&pts, 1.5, 1.5).unwrap(), 0.6));
        assert!(close(aiq_over(&pts, 0.5, 0.5).unwrap(), 0.0));
        assert!(close(aiq_over(&pts, 9.0, 9.0).unwrap(), 0.8));
        assert_eq!(aiq_over(&pts, 2.0, 1.0), None);
        assert_eq!(aiq_over(&pts, 0.0, f64::NAN), None);
    }

    proptest::proptest! {
        /// The hull lies on or above every point up to its last vertex, is non-decreasing and concave, and the
        /// AIQ lies between the lowest and the highest quality.
        #[test]
        fn the_hull_majorises_the_points_and_is_concave_and_non_decreasing(
            raw in proptest::collection::vec((0u8..30, 0u8..=100), 1..25)
        ) {
            let pts: Vec<(f64, f64)> = raw.iter().map(|&(c, q)| (c as f64, q as f64 / 100.0)).collect();
            let hull = nondecreasing_hull(&pts);
            proptest::prop_assert!(!hull.is_empty());
            for w in hull.windows(2) {
                proptest::prop_assert!(w[0].0 < w[1].0 && w[0].1 < w[1].1, "{:?}", hull);
            }
            for w in hull.windows(3) {
                let s1 = (w[1].1 - w[0].1) / (w[1].0 - w[0].0);
                let s2 = (w[2].1 - w[1].1) / (w[2].0 - w[1].0);
                proptest::prop_assert!(s2 < s1 + 1e-12, "not concave: {:?}", hull);
            }
            for &(c, q) in &pts {
                if c >= hull[0].0 {
                    proptest::prop_assert!(height_at(&hull, c) >= q - 1e-12, "({c}, {q}) above {:?}", hull);
                }
            }
            let a = aiq(&pts).unwrap();
            let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            proptest::prop_assert!(lo - 1e-12 <= a && a <= hi + 1e-12);
        }
    }
}
