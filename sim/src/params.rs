//! A tuned or swept parameter: its spec as a scenario writes it ([`ParamSpec`], in `[[tune.params]]` and, as a
//! range, in a sweep's `[[params]]`), the validated [`Param`] with its range, its grid and its mapping from unit
//! coordinates, and a candidate's [`Value`]. `tune` searches over these and `sweep` lays them out as a grid; both
//! build on this module, neither on the other.

use routesim_schema::round_sig;
use serde::{Deserialize, Serialize};

/// One tuned (or swept) parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// Field path inside the policy, like `buffer`, `retry.max_attempts` or `tracking.circuit.failure_rate`.
    pub path: String,
    /// For a simplex: the fields under `path` whose values are drawn to sum to 1 (hybrid weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simplex: Option<Vec<String>>,
    /// Lower bound (scalars; durations in seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound (scalars; durations in seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Round to whole numbers (counts such as `retry.max_attempts`).
    #[serde(default)]
    pub integer: bool,
    /// Sample on a log scale (both bounds must be positive).
    #[serde(default)]
    pub log: bool,
    /// Grid points along this parameter (default `tune.steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
}

/// One parameter's value in a candidate.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar.
    Scalar(f64),
    /// Simplex weights, in the order of the parameter's fields; they sum to 1.
    Simplex(Vec<f64>),
}

/// A validated parameter.
#[derive(Clone, Debug)]
pub struct Param {
    /// The spec as written.
    pub spec: ParamSpec,
    /// Lower and upper bound (scalars), or `None` for a simplex.
    pub range: Option<(f64, f64)>,
}

impl Param {
    /// Validates a spec; errors are `(field, message)` relative to the parameter.
    pub fn new(spec: &ParamSpec) -> Result<Param, (String, String)> {
        if spec.path.trim().is_empty() {
            return Err(("path".into(), "expected the field path of a policy knob, like `buffer`".into()));
        }
        if let Some(fields) = &spec.simplex {
            if fields.len() < 2 {
                return Err(("simplex".into(), "expected at least two fields that share a weight of 1".into()));
            }
            if spec.min.is_some() || spec.max.is_some() || spec.integer || spec.log {
                return Err(("simplex".into(), "a simplex takes no min, max, integer or log".into()));
            }
            return Ok(Param { spec: spec.clone(), range: None });
        }
        let (Some(lo), Some(hi)) = (spec.min, spec.max) else {
            return Err(("min".into(), "expected `min` and `max` (or `simplex = [...]`)".into()));
        };
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(("max".into(), format!("expected finite bounds with min <= max, found {lo} and {hi}")));
        }
        if spec.log && lo <= 0.0 {
            return Err(("min".into(), format!("a log-scale range needs min > 0, found {lo}")));
        }
        if spec.integer && lo.ceil() > hi.floor() {
            return Err(("max".into(), format!("no whole number lies in [{lo}, {hi}]")));
        }
        if spec.steps == Some(0) {
            return Err(("steps".into(), "expected at least one grid point".into()));
        }
        Ok(Param { spec: spec.clone(), range: Some((lo, hi)) })
    }

    /// Unit coordinates this parameter uses.
    pub fn dims(&self) -> usize {
        self.spec.simplex.as_ref().map_or(1, Vec::len)
    }

    /// Column names of this parameter in result tables (`path`, or `path.field` per simplex field).
    pub fn columns(&self) -> Vec<String> {
        match &self.spec.simplex {
            None => vec![self.spec.path.clone()],
            Some(fields) => fields.iter().map(|f| format!("{}.{f}", self.spec.path)).collect(),
        }
    }

    /// Maps unit coordinates in `[0, 1)` onto the range (a simplex via normalised exponentials, which is
    /// uniform on the simplex for uniform coordinates).
    pub fn from_unit(&self, u: &[f64]) -> Value {
        match self.range {
            None => {
                let e: Vec<f64> = u.iter().map(|&x| -(1.0 - x.clamp(0.0, 1.0 - 1e-12)).ln()).collect();
                let sum: f64 = e.iter().sum();
                let n = e.len() as f64;
                let w: Vec<f64> = if sum > 0.0 { e.iter().map(|x| x / sum).collect() } else { vec![1.0 / n; e.len()] };
                Value::Simplex(round_simplex(&w))
            }
            Some((lo, hi)) => {
                let x = u[0].clamp(0.0, 1.0);
                let v = if self.spec.integer {
                    let (a, b) = (lo.ceil(), hi.floor());
                    (a + (x * (b - a + 1.0)).floor()).min(b)
                } else if self.spec.log {
                    round_sig((lo.ln() + x * (hi.ln() - lo.ln())).exp()).clamp(lo, hi)
                } else {
                    round_sig(lo + x * (hi - lo)).clamp(lo, hi)
                };
                Value::Scalar(v)
            }
        }
    }

    /// The grid values of this parameter with `steps` points (or parts of the simplex).
    pub fn grid(&self, default_steps: u32) -> Vec<Value> {
        let steps = self.spec.steps.unwrap_or(default_steps).max(1);
        match self.range {
            None => compositions(steps, self.dims())
                .into_iter()
                .map(|c| Value::Simplex(c.iter().map(|&k| k as f64 / steps as f64).collect()))
                .collect(),
            Some((lo, hi)) => {
                let mut out: Vec<Value> = Vec::new();
                for i in 0..steps {
                    let x = if steps == 1 { 0.5 } else { i as f64 / (steps - 1) as f64 };
                    let v = if self.spec.integer {
                        (lo.ceil() + (x * (hi.floor() - lo.ceil())).round()).min(hi.floor())
                    } else if self.spec.log {
                        round_sig((lo.ln() + x * (hi.ln() - lo.ln())).exp()).clamp(lo, hi)
                    } else {
                        round_sig(lo + x * (hi - lo)).clamp(lo, hi)
                    };
                    if !out.contains(&Value::Scalar(v)) {
                        out.push(Value::Scalar(v));
                    }
                }
                out
            }
        }
    }
}

/// Every way to split `n` parts over `k` fields, in lexicographic order.
pub(crate) fn compositions(n: u32, k: usize) -> Vec<Vec<u32>> {
    if k == 1 {
        return vec![vec![n]];
    }
    let mut out = Vec::new();
    for first in (0..=n).rev() {
        for mut rest in compositions(n - first, k - 1) {
            rest.insert(0, first);
            out.push(rest);
        }
    }
    out
}

/// Rounds weights to 4 decimals, keeping their sum exactly representable as 1 (the largest absorbs the rest).
pub(crate) fn round_simplex(w: &[f64]) -> Vec<f64> {
    let mut r: Vec<f64> = w.iter().map(|x| (x * 1e4).round() / 1e4).collect();
    let largest = (0..r.len()).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap_or(0);
    let others: f64 = r.iter().enumerate().filter(|(i, _)| *i != largest).map(|(_, v)| v).sum();
    r[largest] = ((1.0 - others) * 1e4).round() / 1e4;
    r
}
