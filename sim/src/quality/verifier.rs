//! A cascade verifier in the simulator: a noisy judge of whether an answer is acceptable, described by its
//! precision and recall against the true outcome.
//!
//! Recall is `P(pass | acceptable)`. Precision is `P(acceptable | pass)`, which depends on how many answers
//! are acceptable: with base rate `pi` (the answering endpoint's stated accuracy on the class), Bayes gives the
//! false-pass rate `P(pass | unacceptable) = recall * pi * (1 - precision) / (precision * (1 - pi))`, clamped
//! to `[0, 1]`. The verdict is drawn with one uniform keyed by the request and the endpoint
//! ([`crate::quality::QualityKeys::verifier_uniform`]), so every policy gets the same verdict on the same
//! answer.

/// The two pass rates of a verifier on answers of one endpoint and class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verifier {
    /// `P(pass | acceptable)`.
    pub pass_acceptable: f64,
    /// `P(pass | unacceptable)`.
    pub pass_unacceptable: f64,
}

impl Verifier {
    /// The verifier of precision `precision` and recall `recall` on answers acceptable with probability
    /// `base_rate`.
    pub fn new(precision: f64, recall: f64, base_rate: f64) -> Self {
        let recall = recall.clamp(0.0, 1.0);
        let (precision, pi) = (precision.clamp(0.0, 1.0), base_rate.clamp(0.0, 1.0));
        let pass_unacceptable = if pi <= 0.0 || pi >= 1.0 {
            // Only one kind of answer exists: the other rate never applies.
            0.0
        } else if precision <= 0.0 {
            1.0
        } else {
            (recall * pi * (1.0 - precision) / (precision * (1.0 - pi))).clamp(0.0, 1.0)
        };
        Verifier { pass_acceptable: recall, pass_unacceptable }
    }

    /// Whether the verifier passes an answer that is `acceptable` (true outcome), given its uniform `u`.
    #[inline]
    pub fn passes(&self, acceptable: bool, u: f64) -> bool {
        u < if acceptable { self.pass_acceptable } else { self.pass_unacceptable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pass_rates_give_back_the_precision_and_recall() {
        for (precision, recall, pi) in [(0.9, 0.8, 0.6), (0.7, 0.95, 0.3), (0.99, 0.5, 0.5)] {
            let v = Verifier::new(precision, recall, pi);
            let true_pass = pi * v.pass_acceptable;
            let false_pass = (1.0 - pi) * v.pass_unacceptable;
            assert!((true_pass / (true_pass + false_pass) - precision).abs() < 1e-12);
            assert_eq!(v.pass_acceptable, recall);
        }
    }

    #[test]
    fn a_perfect_verifier_passes_exactly_the_acceptable_answers() {
        let v = Verifier::new(1.0, 1.0, 0.7);
        assert!(v.passes(true, 0.999_999));
        assert!(!v.passes(false, 0.0));
    }
}
