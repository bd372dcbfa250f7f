//! Distributions as a file declares them: service times (as durations) and token counts (as numbers).
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
//! [`DistConfig`] is the configuration only; the simulator compiles it into a sampler.

use router_core::Duration;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A value a distribution can describe: a duration (sampled in seconds) or a plain number.
pub trait DistValue: Copy + Debug + PartialEq {
    /// The value as a number (seconds for a duration).
    fn to_f64(self) -> f64;
}

impl DistValue for Duration {
    fn to_f64(self) -> f64 {
        self.as_secs_f64()
    }
}

impl DistValue for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}

/// A distribution as a scenario declares it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DistConfig<V> {
    /// Always `value`.
    Constant {
        /// The value.
        value: V,
    },
    /// Exponential with this mean.
    Exponential {
        /// The mean.
        mean: V,
    },
    /// Lognormal: `ln X ~ N(ln median, sigma^2)`.
    Lognormal {
        /// The median (`exp(mu)`).
        median: V,
        /// Standard deviation of `ln X`.
        sigma: f64,
    },
    /// Gamma with this mean and shape (shape 1 is exponential; larger is less variable).
    Gamma {
        /// The mean.
        mean: V,
        /// Shape parameter k (coefficient of variation `1/sqrt(k)`).
        shape: f64,
    },
    /// Uniform between `low` and `high`.
    Uniform {
        /// Lower bound.
        low: V,
        /// Upper bound.
        high: V,
    },
    /// Empirical quantiles, linearly interpolated: `values[i]` is the quantile at `probs[i]` (default: evenly
    /// spaced from 0 to 1).
    Empirical {
        /// Quantile values, non-decreasing.
        values: Vec<V>,
        /// Their probabilities, increasing from 0 to 1 (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probs: Option<Vec<f64>>,
    },
}

impl<V: DistValue> DistConfig<V> {
    /// Checks the parameters; `Err((field, message))` names the offending field of the distribution.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let nonneg = |field: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err((field.to_string(), format!("expected a finite value >= 0, found {v}")))
            }
        };
        let positive = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((field.to_string(), format!("expected a finite value > 0, found {v}")))
            }
        };
        match self {
            DistConfig::Constant { value } => nonneg("value", value.to_f64()),
            DistConfig::Exponential { mean } => positive("mean", mean.to_f64()),
            DistConfig::Lognormal { median, sigma } => {
                positive("median", median.to_f64())?;
                nonneg("sigma", *sigma)?;
                if *sigma > 5.0 {
                    return Err((
                        "sigma".into(),
                        format!("expected sigma <= 5 (a larger one has no usable mean), found {sigma}"),
                    ));
                }
                Ok(())
            }
            DistConfig::Gamma { mean, shape } => {
                positive("mean", mean.to_f64())?;
                positive("shape", *shape)
            }
            DistConfig::Uniform { low, high } => {
                nonneg("low", low.to_f64())?;
                nonneg("high", high.to_f64())?;
                if high.to_f64() < low.to_f64() {
                    return Err((
                        "high".into(),
                        format!("expected high >= low ({}), found {}", low.to_f64(), high.to_f64()),
                    ));
                }
                Ok(())
            }
            DistConfig::Empirical { values, probs } => {
                if values.len() < 2 {
                    return Err((
                        "values".into(),
                        format!("expected at least 2 quantile values, found {}", values.len()),
                    ));
                }
                for (i, w) in values.windows(2).enumerate() {
                    nonneg(&format!("values[{i}]"), w[0].to_f64())?;
                    if w[1].to_f64() < w[0].to_f64() || !w[1].to_f64().is_finite() {
                        return Err((
                            format!("values[{}]", i + 1),
                            "expected non-decreasing finite quantile values".into(),
                        ));
                    }
                }
                if let Some(p) = probs {
                    if p.len() != values.len() {
                        return Err((
                            "probs".into(),
                            format!("expected {} probabilities (one per value), found {}", values.len(), p.len()),
                        ));
                    }
                    if p.first() != Some(&0.0) || p.last() != Some(&1.0) {
                        return Err(("probs".into(), "expected probabilities from 0 to 1 (first 0, last 1)".into()));
                    }
                    if p.windows(2).any(|w| w[1] <= w[0] || w[1].is_nan()) {
                        return Err(("probs".into(), "expected strictly increasing probabilities".into()));
                    }
                }
                Ok(())
            }
        }
    }
}
