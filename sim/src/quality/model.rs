//! [`QualityModel`]: the item-response outcome source compiled from a scenario's stated accuracies.

use super::keys::{QualityKeys, endpoint_key};
use super::outcomes::{Asked, Outcomes};
use router_core::EndpointIdx;
use router_core::quality::estimate_sigma;
use router_core::quality::{Accuracy, QualityConfig, acceptance, accepts, solve_theta};

/// The quality model of one scenario: for every task class and endpoint the ability `theta` solved from the
/// stated accuracy ([`solve_theta`]), the class's discrimination, the id keys of the endpoints and the noise
/// of the router-visible estimate. Compiled once per scenario (solving is a bisection over a numerical
/// integral); a run only draws from it.
///
/// Request `r` of class `c` has difficulty `d_r ~ N(0, 1)` ([`QualityKeys::difficulty`]); endpoint `e`
/// answers it acceptably (score 1, else 0) iff `u_{r,e} < acceptance(theta_{e,c}, a_c, d_r)`, with `u_{r,e}`
/// uniform, keyed by the request and the endpoint's id ([`QualityKeys::outcome_uniform`]). Given `d_r`, the
/// outcomes on different endpoints are independent.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityModel {
    classes: Vec<String>,
    endpoints: usize,
    /// `theta[class * endpoints + endpoint]`; `None` where the endpoint states no accuracy for the class.
    theta: Vec<Option<f64>>,
    /// The stated accuracies, same layout.
    accuracy: Vec<Option<f64>>,
    /// Discrimination per class.
    discrimination: Vec<f64>,
    /// [`endpoint_key`] of every endpoint's id.
    keys: Vec<u64>,
    /// Noise of the router-visible estimate (`None`: routers see no estimate; `+inf`: the noise alone).
    sigma: Option<f64>,
}

impl QualityModel {
    /// The model of `endpoints` (id and stated accuracy, in index order) for the task classes `classes`, or
    /// `None` when no endpoint states an accuracy (quality is off). `router_auc` is the ranking quality of
    /// the estimate routers see (`None`: they see none).
    pub fn new<'a>(
        endpoints: impl IntoIterator<Item = (&'a str, &'a Accuracy)>,
        config: &QualityConfig,
        router_auc: Option<f64>,
        classes: &[String],
    ) -> Option<Self> {
        let endpoints: Vec<(&str, &Accuracy)> = endpoints.into_iter().collect();
        if endpoints.iter().all(|(_, acc)| acc.is_empty()) {
            return None;
        }
        let n = endpoints.len();
        let discrimination: Vec<f64> = classes.iter().map(|c| config.discrimination(Some(c))).collect();
        let mut theta = Vec::with_capacity(classes.len() * n);
        let mut accuracy = Vec::with_capacity(classes.len() * n);
        // Each solve is a bisection over a numerical integral (millions of instructions); classes that fall
        // back to `default` repeat the same (accuracy, discrimination) pairs, solved once each.
        let mut solved: Vec<((u64, u64), f64)> = Vec::new();
        for (c, class) in classes.iter().enumerate() {
            for (_, acc) in &endpoints {
                let p = acc.for_class(Some(class));
                accuracy.push(p);
                theta.push(p.map(|p| {
                    let a = discrimination[c];
                    let pair = (p.to_bits(), a.to_bits());
                    match solved.iter().find(|(k, _)| *k == pair) {
                        Some(&(_, t)) => t,
                        None => {
                            let t = solve_theta(p, a);
                            solved.push((pair, t));
                            t
                        }
                    }
                }));
            }
        }
        Some(QualityModel {
            classes: classes.to_vec(),
            endpoints: n,
            theta,
            accuracy,
            discrimination,
            keys: endpoints.iter().map(|(id, _)| endpoint_key(id)).collect(),
            sigma: router_auc.map(estimate_sigma),
        })
    }

    /// The task classes, in index order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The ability of `endpoint` on class `class`, when it states an accuracy for it.
    #[inline]
    pub fn theta(&self, class: u16, endpoint: EndpointIdx) -> Option<f64> {
        self.theta.get(class as usize * self.endpoints + endpoint.get()).copied().flatten()
    }

    /// The discrimination of class `class`.
    pub fn discrimination(&self, class: u16) -> f64 {
        self.discrimination[class as usize]
    }

    /// The noise of the router-visible estimate, when routers see one.
    pub fn sigma(&self) -> Option<f64> {
        self.sigma
    }

    /// The probability that `endpoint` answers a request of class `class` and difficulty `d` acceptably.
    pub fn probability(&self, class: u16, endpoint: EndpointIdx, d: f64) -> Option<f64> {
        self.theta(class, endpoint).map(|t| acceptance(t, self.discrimination(class), d))
    }

    /// The outcome of `endpoint` on a request of difficulty `d` (already drawn).
    #[inline]
    fn score_at(&self, keys: &QualityKeys, request: Asked, endpoint: usize, d: f64) -> Option<f64> {
        let t = self.theta[request.class as usize * self.endpoints + endpoint]?;
        Some(self.outcome(keys, request, endpoint, t, d))
    }

    /// The score (1 or 0) of the endpoint of index `endpoint` and ability `theta` (its [`QualityModel::theta`]
    /// on the request's class) on a request of difficulty `d`: acceptable iff its keyed outcome uniform is
    /// below the acceptance probability.
    #[inline(always)]
    pub fn outcome(&self, keys: &QualityKeys, request: Asked, endpoint: usize, theta: f64, d: f64) -> f64 {
        f64::from(u8::from(self.accepts(keys, request, endpoint, theta, d)))
    }

    /// [`QualityModel::outcome`] as a bool: whether the answer is acceptable.
    #[inline(always)]
    pub fn accepts(&self, keys: &QualityKeys, request: Asked, endpoint: usize, theta: f64, d: f64) -> bool {
        let u = keys.outcome_uniform(request.id, self.keys[endpoint]);
        accepts(u, theta, self.discrimination[request.class as usize], d)
    }
}

impl Outcomes for QualityModel {
    fn score(&self, keys: &QualityKeys, request: Asked, endpoint: EndpointIdx) -> Option<f64> {
        self.theta(request.class, endpoint)?;
        self.score_at(keys, request, endpoint.get(), keys.difficulty(request.id))
    }

    fn scores(&self, keys: &QualityKeys, request: Asked, out: &mut [Option<f64>]) {
        let d = keys.difficulty(request.id);
        for (e, slot) in out.iter_mut().enumerate().take(self.endpoints) {
            *slot = self.score_at(keys, request, e, d);
        }
    }

    fn estimate(&self, keys: &QualityKeys, request: Asked) -> Option<f64> {
        let sigma = self.sigma?;
        let z = keys.estimate_noise(request.id);
        Some(if sigma.is_infinite() { z } else { keys.difficulty(request.id) + sigma * z })
    }

    fn has_estimate(&self) -> bool {
        self.sigma.is_some()
    }

    fn accuracy(&self, class: u16, endpoint: EndpointIdx) -> Option<f64> {
        self.accuracy.get(class as usize * self.endpoints + endpoint.get()).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(pairs: &[(&str, f64)]) -> Accuracy {
        Accuracy(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }

    #[test]
    fn no_stated_accuracy_is_quality_off() {
        let none = Accuracy::default();
        assert!(
            QualityModel::new([("a", &none), ("b", &none)], &QualityConfig::default(), None, &["x".into()]).is_none()
        );
    }

    #[test]
    fn class_entries_fall_back_to_default_and_missing_ones_have_no_score() {
        let strong = acc(&[("default", 0.9), ("code", 0.7)]);
        let other = acc(&[("code", 0.5)]);
        let classes = vec!["chat".to_string(), "code".to_string()];
        let m = QualityModel::new([("s", &strong), ("o", &other)], &QualityConfig::default(), None, &classes)
            .expect("quality on");
        assert_eq!(m.accuracy(0, EndpointIdx(0)), Some(0.9));
        assert_eq!(m.accuracy(1, EndpointIdx(0)), Some(0.7));
        assert_eq!(m.accuracy(0, EndpointIdx(1)), None);
        let keys = QualityKeys::new(1, 0);
        assert_eq!(m.score(&keys, Asked { id: 3, class: 0 }, EndpointIdx(1)), None);
        assert!(m.score(&keys, Asked { id: 3, class: 1 }, EndpointIdx(1)).is_some());
        assert_eq!(m.estimate(&keys, Asked { id: 3, class: 1 }), None);
    }

    #[test]
    fn drawn_outcomes_reproduce_the_stated_accuracy() {
        // 40,000 requests: the standard error of an accuracy is at most 0.0025; the bound is 4 of them.
        let a = acc(&[("default", 0.8), ("code", 0.62)]);
        let b = acc(&[("default", 0.35)]);
        let cfg = QualityConfig { discrimination: [("code".to_string(), 2.2)].into_iter().collect() };
        let classes = vec!["chat".to_string(), "code".to_string()];
        let m = QualityModel::new([("a", &a), ("b", &b)], &cfg, Some(0.8), &classes).expect("on");
        let keys = QualityKeys::new(11, 2);
        for class in 0..2u16 {
            for e in 0..2u16 {
                let n = 40_000u64;
                let hits: f64 =
                    (0..n).filter_map(|id| m.score(&keys, Asked { id, class }, EndpointIdx(e))).sum::<f64>();
                let want = m.accuracy(class, EndpointIdx(e)).expect("stated");
                assert!((hits / n as f64 - want).abs() < 0.01, "class {class} endpoint {e}: {}", hits / n as f64);
            }
        }
    }

    #[test]
    fn scores_of_every_endpoint_are_each_ones_score() {
        let a = acc(&[("default", 0.8)]);
        let b = acc(&[("default", 0.4)]);
        let m = QualityModel::new([("a", &a), ("b", &b)], &QualityConfig::default(), None, &["default".into()])
            .expect("on");
        let keys = QualityKeys::new(5, 1);
        let mut out = [None; 2];
        for id in 0..500 {
            let asked = Asked { id, class: 0 };
            m.scores(&keys, asked, &mut out);
            assert_eq!(out, [m.score(&keys, asked, EndpointIdx(0)), m.score(&keys, asked, EndpointIdx(1))]);
        }
    }
}
