//! Selectors: the last stage of a policy, picking one candidate from the scored set.
//!
//! Each returns the index of the chosen candidate in the slice, or `None` for an empty slice. Randomness
//! comes from the request-keyed [`KeyedRand`], so the same request makes the same choice in every run.

use super::Cand;
use crate::keyed_rand::KeyedRand;

/// The first candidate (ordered fallback).
#[inline]
pub fn first(c: &[Cand]) -> Option<usize> {
    (!c.is_empty()).then_some(0)
}

/// The lowest score; ties go to a uniformly random one of the tied candidates (so equal endpoints share
/// load instead of the first one taking everything).
#[inline]
pub fn min_score(c: &[Cand], rand: &mut KeyedRand) -> Option<usize> {
    within(c, 0.0, rand)
}

/// Scores to select among, by position: the candidates' own, or plain numbers (the direct decision of
/// `policy/direct.rs`, which keeps no [`Cand`]s). One implementation of each selector serves both, so they
/// choose alike and draw alike.
pub(crate) trait Scores {
    /// How many candidates.
    fn count(&self) -> usize;
    /// The score of candidate `i` (`i < count()`).
    fn at(&self, i: usize) -> f64;
}

impl Scores for [Cand] {
    #[inline(always)]
    fn count(&self) -> usize {
        self.len()
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        self[i].score
    }
}

impl Scores for [f64] {
    #[inline(always)]
    fn count(&self) -> usize {
        self.len()
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        self[i]
    }
}

/// The lowest score (`inf` when there is none). A NaN score is passed over, as `f64::min` does; a plain
/// comparison is one instruction where `f64::min` is five, on the loop's dependency chain. (The two may keep
/// different zeros of `0.0` and `-0.0`, which every use below treats alike.)
#[inline]
fn lowest<S: Scores + ?Sized>(c: &S) -> f64 {
    (0..c.count()).fold(f64::INFINITY, |best, i| if c.at(i) < best { c.at(i) } else { best })
}

/// Uniformly random among the candidates whose score is within `buffer` (a fraction) of the best:
/// `score <= best * (1 + buffer)`, or `score <= best + buffer` when the best is zero or negative.
/// This is the anti-herding tolerance of latency-based routing.
#[inline]
pub fn within(c: &[Cand], buffer: f64, rand: &mut KeyedRand) -> Option<usize> {
    within_of(c, buffer, rand)
}

/// [`within`] over any [`Scores`].
#[inline(always)]
pub(crate) fn within_of<S: Scores + ?Sized>(c: &S, buffer: f64, rand: &mut KeyedRand) -> Option<usize> {
    if buffer == 0.0 {
        return lowest_tied(c, rand);
    }
    within_scan(c, buffer, rand)
}

/// [`within`] in three passes (the lowest score, how many are within the limit, the chosen one): any buffer.
#[inline]
fn within_scan<S: Scores + ?Sized>(c: &S, buffer: f64, rand: &mut KeyedRand) -> Option<usize> {
    let best = lowest(c);
    if !best.is_finite() {
        return (c.count() > 0).then(|| rand.below(c.count()));
    }
    let limit = if best > 0.0 { best * (1.0 + buffer) } else { best + buffer };
    nth_at_most_of(c, limit, (0..c.count()).filter(|&i| c.at(i) <= limit).count(), rand)
}

/// [`within`] with no buffer, in one pass: the lowest score and how many candidates hold it, then a uniformly
/// random one of them. The same choice and the same draws as the general case: with a zero buffer its limit is
/// the best score itself (`best * 1` or `best + 0`), and the candidates at or below it are exactly those equal
/// to it (none is lower, a NaN is neither; `0.0` and `-0.0` are equal both ways).
#[inline(always)]
fn lowest_tied<S: Scores + ?Sized>(c: &S, rand: &mut KeyedRand) -> Option<usize> {
    let (mut best, mut first, mut n) = (f64::INFINITY, 0, 0usize);
    for i in 0..c.count() {
        let x = c.at(i);
        if x < best {
            (best, first, n) = (x, i, 1);
        } else if x == best {
            n += 1;
        }
    }
    if !best.is_finite() {
        return (c.count() > 0).then(|| rand.below(c.count()));
    }
    if n == 1 {
        // One choice: the draw only moves along the sequence.
        rand.below(1);
        return Some(first);
    }
    nth_at_most_of(c, best, n, rand)
}

/// Uniformly random among the candidates whose score is within `margin` (an absolute amount) of the best:
/// `score <= best + margin`. Hybrid routing uses it on scores normalised to 0..=1. Infinite scores never
/// win unless every score is infinite.
#[inline]
pub fn within_abs(c: &[Cand], margin: f64, rand: &mut KeyedRand) -> Option<usize> {
    let best = lowest(c);
    if !best.is_finite() {
        return (!c.is_empty()).then(|| rand.below(c.len()));
    }
    let limit = best + margin.max(0.0);
    nth_at_most(c, limit, c.iter().filter(|x| x.score <= limit).count(), rand)
}

/// A uniformly random candidate among the `n` (> 0) whose `score <= limit`.
#[inline]
pub fn nth_at_most(c: &[Cand], limit: f64, n: usize, rand: &mut KeyedRand) -> Option<usize> {
    nth_at_most_of(c, limit, n, rand)
}

/// [`nth_at_most`] over any [`Scores`].
#[inline]
fn nth_at_most_of<S: Scores + ?Sized>(c: &S, limit: f64, n: usize, rand: &mut KeyedRand) -> Option<usize> {
    let mut k = rand.below(n.max(1));
    (0..c.count()).position(|i| {
        if c.at(i) <= limit {
            if k == 0 {
                return true;
            }
            k -= 1;
        }
        false
    })
}

/// Random, proportional to `score` used as a weight (non-positive weights never win unless all are).
#[inline]
pub fn weighted(c: &[Cand], rand: &mut KeyedRand) -> Option<usize> {
    if c.is_empty() {
        return None;
    }
    let total: f64 = c.iter().map(|x| x.score.max(0.0)).sum();
    if !total.is_finite() || total <= 0.0 {
        return Some(rand.below(c.len()));
    }
    let mut u = rand.unit() * total;
    for (i, x) in c.iter().enumerate() {
        let w = x.score.max(0.0);
        if u < w {
            return Some(i);
        }
        u -= w;
    }
    c.iter().rposition(|x| x.score > 0.0)
}

/// Power of two choices: two distinct random candidates, the lower score wins.
#[inline]
pub fn two_choices(c: &[Cand], rand: &mut KeyedRand) -> Option<usize> {
    match c.len() {
        0 => None,
        1 => Some(0),
        n => {
            let a = rand.below(n);
            let mut b = rand.below(n - 1);
            if b >= a {
                b += 1;
            }
            Some(if c[b].score < c[a].score { b } else { a })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EndpointIdx;

    fn cands(scores: &[f64]) -> Vec<Cand> {
        scores.iter().enumerate().map(|(i, &s)| Cand::new(EndpointIdx(i as u16), 1.0, s)).collect()
    }

    #[test]
    fn within_buffer_spreads_over_near_equal_candidates_only() {
        let c = cands(&[1.0, 1.1, 1.5, 0.95]);
        let mut seen = [0u32; 4];
        for id in 0..4000 {
            seen[within(&c, 0.2, &mut KeyedRand::new(0, id, 0)).unwrap()] += 1;
        }
        assert_eq!(seen[2], 0, "1.5 is beyond 20% of 0.95");
        for i in [0, 1, 3] {
            assert!(seen[i] > 1100, "{seen:?}");
        }
        assert_eq!(min_score(&c, &mut KeyedRand::new(0, 1, 0)), Some(3));
    }

    /// With no buffer, the one-pass selection makes the same choice as the three passes, and leaves the
    /// keyed sequence at the same place, for every set of up to four scores among zeros of both signs,
    /// ties, infinities and NaN.
    #[test]
    fn within_without_buffer_chooses_as_the_three_passes() {
        let values = [0.0, -0.0, 1.0, 2.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        let mut sets: Vec<Vec<f64>> = vec![vec![]];
        for len in 1..=4u32 {
            for code in 0..values.len().pow(len) {
                let mut rest = code;
                sets.push((0..len).map(|_| (values[rest % values.len()], rest /= values.len()).0).collect());
            }
        }
        for scores in &sets {
            let c = cands(scores);
            for id in 0..8 {
                for buffer in [0.0, -0.0] {
                    let (mut fast, mut scan) = (KeyedRand::new(9, id, 0), KeyedRand::new(9, id, 0));
                    assert_eq!(
                        within(&c, buffer, &mut fast),
                        within_scan(c.as_slice(), buffer, &mut scan),
                        "{scores:?}"
                    );
                    assert_eq!(fast.next_u64(), scan.next_u64(), "the sequence moved alike: {scores:?}");
                }
            }
        }
    }

    #[test]
    fn within_abs_uses_an_absolute_margin() {
        let c = cands(&[0.0, 0.04, 0.06, f64::INFINITY]);
        let mut seen = [0u32; 4];
        for id in 0..3000 {
            seen[within_abs(&c, 0.05, &mut KeyedRand::new(3, id, 0)).unwrap()] += 1;
        }
        assert_eq!((seen[2], seen[3]), (0, 0), "{seen:?}");
        assert!(seen[0] > 1300 && seen[1] > 1300, "{seen:?}");
        assert_eq!(within_abs(&c, 0.0, &mut KeyedRand::new(3, 1, 0)), Some(0));
        let inf = cands(&[f64::INFINITY, f64::INFINITY]);
        assert!(within_abs(&inf, 0.0, &mut KeyedRand::new(3, 1, 0)).is_some(), "all infinite: any");
    }

    #[test]
    fn weighted_follows_weights_and_skips_zero() {
        let c = cands(&[3.0, 1.0, 0.0]);
        let mut seen = [0u32; 3];
        for id in 0..40_000 {
            seen[weighted(&c, &mut KeyedRand::new(1, id, 0)).unwrap()] += 1;
        }
        assert_eq!(seen[2], 0);
        let share = seen[0] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "{share}");
    }

    #[test]
    fn two_choices_never_picks_the_worst_of_three_by_much() {
        let c = cands(&[1.0, 2.0, 3.0]);
        let mut worst = 0;
        for id in 0..3000 {
            if two_choices(&c, &mut KeyedRand::new(2, id, 0)) == Some(2) {
                worst += 1;
            }
        }
        assert_eq!(worst, 0, "the worst can only win against itself, and the two picks are distinct");
    }

    #[test]
    fn empty_sets_give_none() {
        let mut r = KeyedRand::new(0, 0, 0);
        assert_eq!(within(&[], 0.1, &mut r), None);
        assert_eq!(weighted(&[], &mut r), None);
        assert_eq!(two_choices(&[], &mut r), None);
        assert_eq!(first(&[]), None);
    }
}
