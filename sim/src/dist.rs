//! Distributions a scenario declares: service times (as durations) and token counts (as numbers).
//!
//! In TOML a distribution is an inline table tagged by `dist`:
//!
//! ```toml
//! ttft = { dist = "lognormal", median = "600ms", sigma = 0.4 }
//! tpot = { dist = "constant", value = "12ms" }
//! output_tokens = { dist = "gamma", mean = 300, shape = 2.0 }
//! latency = { dist = "empirical", values = ["0.2s", "0.5s", "1.1s", "4s"] }   # quantiles at 0, 1/3, 2/3, 1
//! ```
//!
//! [`DistConfig`] is what the file says (in `routesim-schema`, shared with the gateway); [`Sampler`] is the
//! compiled form that draws values (always as `f64`, in seconds for durations) and knows its first two
//! moments, which the validation checks use.

use rand::Rng;
use rand_distr::{Distribution, Exp, Gamma, LogNormal};
/// The configuration side (shared with the gateway, which reads the same endpoints).
pub use routesim_schema::dist::{DistConfig, DistValue};

/// Compiles a [`DistConfig`] into its [`Sampler`].
pub trait ToSampler {
    /// The compiled sampler (call [`DistConfig::validate`] first: invalid parameters are clamped to
    /// something harmless, never a panic).
    fn sampler(&self) -> Sampler;
}

impl<V: DistValue> ToSampler for DistConfig<V> {
    fn sampler(&self) -> Sampler {
        match self {
            DistConfig::Constant { value } => Sampler::Constant(value.to_f64().max(0.0)),
            DistConfig::Exponential { mean } => {
                let m = mean.to_f64();
                match Exp::new(1.0 / m) {
                    Ok(d) if m > 0.0 => Sampler::Exponential { dist: d, mean: m },
                    _ => Sampler::Constant(0.0),
                }
            }
            DistConfig::Lognormal { median, sigma } => {
                let mu = median.to_f64().max(f64::MIN_POSITIVE).ln();
                match LogNormal::new(mu, *sigma) {
                    Ok(d) => Sampler::Lognormal { dist: d, mu, sigma: *sigma },
                    Err(_) => Sampler::Constant(median.to_f64().max(0.0)),
                }
            }
            DistConfig::Gamma { mean, shape } => {
                let m = mean.to_f64();
                match Gamma::new(*shape, m / shape) {
                    Ok(d) => Sampler::Gamma { dist: d, mean: m, shape: *shape },
                    Err(_) => Sampler::Constant(m.max(0.0)),
                }
            }
            DistConfig::Uniform { low, high } => {
                Sampler::Uniform { low: low.to_f64(), high: high.to_f64().max(low.to_f64()) }
            }
            DistConfig::Empirical { values, probs } => {
                let v: Vec<f64> = values.iter().map(|x| x.to_f64()).collect();
                let n = v.len().max(2);
                let p = probs.clone().unwrap_or_else(|| (0..v.len()).map(|i| i as f64 / (n - 1) as f64).collect());
                if v.len() < 2 || p.len() != v.len() {
                    return Sampler::Constant(v.first().copied().unwrap_or(0.0));
                }
                Sampler::Empirical { probs: p, values: v }
            }
        }
    }
}

/// A compiled distribution: draws `f64` values (seconds for durations) and knows its moments.
#[derive(Clone, Debug)]
pub enum Sampler {
    /// A constant.
    Constant(f64),
    /// Exponential.
    Exponential {
        /// rand_distr's sampler.
        dist: Exp<f64>,
        /// Its mean.
        mean: f64,
    },
    /// Lognormal.
    Lognormal {
        /// rand_distr's sampler.
        dist: LogNormal<f64>,
        /// Mean of `ln X`.
        mu: f64,
        /// Standard deviation of `ln X`.
        sigma: f64,
    },
    /// Gamma.
    Gamma {
        /// rand_distr's sampler.
        dist: Gamma<f64>,
        /// Its mean.
        mean: f64,
        /// Its shape.
        shape: f64,
    },
    /// Uniform.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Piecewise-linear inverse CDF.
    Empirical {
        /// Probabilities, 0 to 1.
        probs: Vec<f64>,
        /// Quantile values.
        values: Vec<f64>,
    },
}

impl Sampler {
    /// One draw.
    #[inline(always)]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        // A constant (a peer model's token counts, a zero time per token) is read in place: the call to the
        // random draws, which the compiler keeps out of line, cost more than the draw.
        match self {
            Sampler::Constant(v) => *v,
            _ => self.sample_random(rng),
        }
    }

    /// [`Sampler::sample`] of a distribution that draws.
    #[inline]
    fn sample_random<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Sampler::Constant(v) => *v,
            Sampler::Exponential { dist, .. } => dist.sample(rng),
            Sampler::Lognormal { dist, .. } => dist.sample(rng),
            Sampler::Gamma { dist, .. } => dist.sample(rng),
            Sampler::Uniform { low, high } => low + (high - low) * crate::rng::unit(rng.next_u64()),
            Sampler::Empirical { probs, values } => {
                let u = crate::rng::unit(rng.next_u64());
                let i = probs.partition_point(|&p| p <= u).clamp(1, probs.len() - 1);
                let (p0, p1, v0, v1) = (probs[i - 1], probs[i], values[i - 1], values[i]);
                v0 + (v1 - v0) * (u - p0) / (p1 - p0)
            }
        }
    }

    /// Whether every draw is the same value.
    pub fn is_constant(&self) -> bool {
        matches!(self, Sampler::Constant(_))
    }

    /// The mean, `E[X]`.
    pub fn mean(&self) -> f64 {
        match self {
            Sampler::Constant(v) => *v,
            Sampler::Exponential { mean, .. } | Sampler::Gamma { mean, .. } => *mean,
            Sampler::Lognormal { mu, sigma, .. } => (mu + sigma * sigma / 2.0).exp(),
            Sampler::Uniform { low, high } => (low + high) / 2.0,
            Sampler::Empirical { probs, values } => segments(probs, values).map(|(w, a, b)| w * (a + b) / 2.0).sum(),
        }
    }

    /// The second moment, `E[X^2]`.
    pub fn second_moment(&self) -> f64 {
        match self {
            Sampler::Constant(v) => v * v,
            Sampler::Exponential { mean, .. } => 2.0 * mean * mean,
            Sampler::Lognormal { mu, sigma, .. } => (2.0 * mu + 2.0 * sigma * sigma).exp(),
            Sampler::Gamma { mean, shape, .. } => mean * mean * (1.0 + 1.0 / shape),
            Sampler::Uniform { low, high } => (low * low + low * high + high * high) / 3.0,
            Sampler::Empirical { probs, values } => {
                segments(probs, values).map(|(w, a, b)| w * (a * a + a * b + b * b) / 3.0).sum()
            }
        }
    }
}

/// `(probability mass, low value, high value)` of each linear piece of an empirical distribution.
fn segments<'a>(probs: &'a [f64], values: &'a [f64]) -> impl Iterator<Item = (f64, f64, f64)> + 'a {
    probs.windows(2).zip(values.windows(2)).map(|(p, v)| (p[1] - p[0], v[0], v[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::KeyedRng;
    use router_core::Duration;
    use serde::Deserialize;

    fn parse(text: &str) -> DistConfig<Duration> {
        #[derive(Deserialize)]
        struct W {
            d: DistConfig<Duration>,
        }
        toml::from_str::<W>(&format!("d = {text}")).expect("parses").d
    }

    /// Sample mean and second moment agree with the closed forms within five standard errors.
    fn check_moments(s: &Sampler) {
        let mut rng = KeyedRng::new(11);
        let n = 400_000;
        let (mut m1, mut m2, mut m4) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let x = s.sample(&mut rng);
            assert!(x >= 0.0);
            m1 += x;
            m2 += x * x;
            m4 += x * x * x * x;
        }
        let (m1, m2, m4) = (m1 / n as f64, m2 / n as f64, m4 / n as f64);
        let se1 = ((m2 - m1 * m1) / n as f64).sqrt();
        let se2 = ((m4 - m2 * m2) / n as f64).sqrt();
        assert!((m1 - s.mean()).abs() <= 5.0 * se1 + 1e-12, "{s:?}: mean {m1} vs {}", s.mean());
        assert!((m2 - s.second_moment()).abs() <= 5.0 * se2 + 1e-12, "{s:?}: E[X^2] {m2} vs {}", s.second_moment());
    }

    #[test]
    fn every_distribution_parses_and_matches_its_moments() {
        for text in [
            r#"{ dist = "constant", value = "250ms" }"#,
            r#"{ dist = "exponential", mean = "1s" }"#,
            r#"{ dist = "lognormal", median = "600ms", sigma = 0.4 }"#,
            r#"{ dist = "gamma", mean = 2, shape = 3.0 }"#,
            r#"{ dist = "uniform", low = "100ms", high = "300ms" }"#,
            r#"{ dist = "empirical", values = ["0.1s", "0.5s", "2s"] }"#,
            r#"{ dist = "empirical", values = [0.1, 0.5, 2.0], probs = [0.0, 0.9, 1.0] }"#,
        ] {
            let d = parse(text);
            d.validate().unwrap_or_else(|e| panic!("{text}: {e:?}"));
            check_moments(&d.sampler());
        }
    }

    #[test]
    fn lognormal_median_is_the_median() {
        let s = parse(r#"{ dist = "lognormal", median = "2s", sigma = 0.8 }"#).sampler();
        let mut rng = KeyedRng::new(5);
        let n = 100_000;
        let below = (0..n).filter(|_| s.sample(&mut rng) < 2.0).count();
        // Binomial(n, 0.5): sd = 158; 5 sd.
        assert!((below as i64 - n as i64 / 2).abs() < 800, "{below}");
    }

    #[test]
    fn invalid_parameters_name_their_field() {
        let cases = [
            (r#"{ dist = "exponential", mean = 0 }"#, "mean"),
            (r#"{ dist = "lognormal", median = "1s", sigma = -1.0 }"#, "sigma"),
            (r#"{ dist = "gamma", mean = 1, shape = 0.0 }"#, "shape"),
            (r#"{ dist = "uniform", low = "2s", high = "1s" }"#, "high"),
            (r#"{ dist = "empirical", values = ["1s"] }"#, "values"),
            (r#"{ dist = "empirical", values = ["2s", "1s"] }"#, "values[1]"),
            (r#"{ dist = "empirical", values = ["1s", "2s"], probs = [0.0, 0.5] }"#, "probs"),
        ];
        for (text, field) in cases {
            let err = parse(text).validate().expect_err(text);
            assert_eq!(err.0, field, "{text}: {}", err.1);
        }
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct W {
            d: DistConfig<f64>,
        }
        assert!(toml::from_str::<W>(r#"d = { dist = "lognormal", median = 1, sigma = 1, mean = 2 }"#).is_err());
        assert!(toml::from_str::<W>(r#"d = { dist = "weibull", scale = 1 }"#).is_err());
    }
}
