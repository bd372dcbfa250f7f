//! Answer quality counters of one run (only with quality on).

/// What the measured answers of one run were worth, per task class. An answer of unknown quality (a cache
/// hit, or an endpoint stating no accuracy for the class) counts in `unscored` only; failed requests count
/// nowhere (they have no answer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QualityCounts {
    /// Answered requests with a known score, per class.
    pub answered: Vec<u64>,
    /// Of those, acceptable answers (score >= [`crate::quality::ACCEPTABLE_SCORE`]), per class.
    pub acceptable: Vec<u64>,
    /// Sum of their scores, per class.
    pub score_sum: Vec<f64>,
    /// Answered requests whose quality is unknown.
    pub unscored: u64,
    /// Cascade escalations: answers a verifier rejected, sent on to the next stage.
    pub escalations: u64,
}

impl QualityCounts {
    /// Empty counters for `classes` task classes.
    pub fn new(classes: usize) -> Self {
        let classes = classes.max(1);
        QualityCounts {
            answered: vec![0; classes],
            acceptable: vec![0; classes],
            score_sum: vec![0.0; classes],
            unscored: 0,
            escalations: 0,
        }
    }

    /// A measured answer to a request of class `class`, of score `score` (`None`: unknown).
    #[inline]
    pub fn answer(&mut self, class: usize, score: Option<f64>) {
        let Some(s) = score else {
            self.unscored += 1;
            return;
        };
        let c = class.min(self.answered.len() - 1);
        self.answered[c] += 1;
        self.acceptable[c] += u64::from(crate::quality::acceptable(s));
        self.score_sum[c] += s;
    }

    /// Answered requests with a known score, all classes.
    pub fn answered_total(&self) -> u64 {
        self.answered.iter().sum()
    }

    /// Acceptable answers, all classes.
    pub fn acceptable_total(&self) -> u64 {
        self.acceptable.iter().sum()
    }

    /// Acceptable answers over answered requests (NaN without answers).
    pub fn quality(&self) -> f64 {
        ratio(self.acceptable_total() as f64, self.answered_total())
    }

    /// Mean score of the answered requests (NaN without answers).
    pub fn mean_score(&self) -> f64 {
        ratio(self.score_sum.iter().sum(), self.answered_total())
    }

    /// Quality of class `class` (NaN without answers).
    pub fn class_quality(&self, class: usize) -> f64 {
        ratio(self.acceptable[class] as f64, self.answered[class])
    }

    /// Mean score of class `class` (NaN without answers).
    pub fn class_mean_score(&self, class: usize) -> f64 {
        ratio(self.score_sum[class], self.answered[class])
    }
}

fn ratio(x: f64, n: u64) -> f64 {
    if n == 0 { f64::NAN } else { x / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_counts_acceptable_over_answered_and_leaves_unknown_out() {
        let mut q = QualityCounts::new(2);
        q.answer(0, Some(1.0));
        q.answer(0, Some(0.0));
        q.answer(1, Some(1.0));
        q.answer(1, Some(0.7));
        q.answer(1, None);
        assert_eq!((q.answered_total(), q.acceptable_total(), q.unscored), (4, 3, 1));
        assert_eq!(q.quality(), 0.75);
        assert!((q.mean_score() - 2.7 / 4.0).abs() < 1e-15);
        assert_eq!(q.class_quality(0), 0.5);
        assert!(QualityCounts::new(1).quality().is_nan());
    }
}
