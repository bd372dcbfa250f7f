//! The sweep file: which scenarios, which parameter grid, which policies, how many replications.
//!
//! ```toml
//! name = "rate-and-buffer"
//! scenarios = ["../hybrid-tuning.toml"]   # relative to the sweep file
//! policies = ["round-robin", "hybrid"]    # default: every policy of each scenario
//! baseline = "round-robin"                # default: each scenario's own baseline
//! replications = 3                        # default: each scenario's own
//! requests = 20000                        # per run (default: each scenario's run length)
//! seed = 7                                # default: each scenario's own
//!
//! [[params]]
//! path = "traffic.rate"                   # a scenario field, by its path in the TOML
//! values = [20.0, 40.0]
//!
//! [[params]]
//! path = "policies.hybrid.buffer"         # a policy field: `policies.<name>.` then the path [tune] uses
//! min = 0.0
//! max = 0.2
//! steps = 3
//! ```
//!
//! The parameter points are the grid of every parameter's values (the first parameter varies slowest).

use crate::params::ParamSpec;
use crate::scenario::diag::{ScenarioError, parse_toml};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Grid points along a `min`/`max` parameter when `steps` is not given.
pub const DEFAULT_STEPS: u32 = 3;

/// One swept parameter.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepParam {
    /// Dotted path into the scenario; array elements by index or by their `name`/`id`
    /// (`endpoints.gpt-4.1.rate_limit.rpm`, `policies.hybrid.retry.max_attempts`).
    pub path: String,
    /// The values, as written (numbers, or durations like `"30s"`).
    #[serde(default)]
    pub values: Option<Vec<toml::Value>>,
    /// Lower bound of an evenly spaced range (durations in seconds).
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound of the range.
    #[serde(default)]
    pub max: Option<f64>,
    /// Points along the range (default [`DEFAULT_STEPS`]; parts of the simplex for `simplex`).
    #[serde(default)]
    pub steps: Option<u32>,
    /// Whole numbers only.
    #[serde(default)]
    pub integer: bool,
    /// Spaced on a log scale.
    #[serde(default)]
    pub log: bool,
    /// The fields under `path` whose values sum to 1 (hybrid weights), gridded like `routesim tune`'s.
    #[serde(default)]
    pub simplex: Option<Vec<String>>,
}

impl SweepParam {
    /// The `[tune]`-style range of a `min`/`max` or `simplex` parameter (the path is not used by it).
    pub fn range_spec(&self) -> ParamSpec {
        ParamSpec {
            path: self.path.clone(),
            simplex: self.simplex.clone(),
            min: self.min,
            max: self.max,
            integer: self.integer,
            log: self.log,
            steps: Some(self.steps.unwrap_or(DEFAULT_STEPS)),
        }
    }
}

/// A sweep file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Name of the study (results folder, plan).
    pub name: String,
    /// What the study is for.
    #[serde(default)]
    pub description: String,
    /// Scenario files, relative to the sweep file.
    pub scenarios: Vec<PathBuf>,
    /// Policies to run (by name, in every scenario); default all.
    #[serde(default)]
    pub policies: Option<Vec<String>>,
    /// Policy the paired differences are taken against; default each scenario's baseline.
    #[serde(default)]
    pub baseline: Option<String>,
    /// Replications per cell, replacing each scenario's.
    #[serde(default)]
    pub replications: Option<u32>,
    /// Requests per run, replacing each scenario's run length.
    #[serde(default)]
    pub requests: Option<u64>,
    /// Master seed, replacing each scenario's.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The swept parameters (none: one point, the scenarios as written).
    #[serde(default)]
    pub params: Vec<SweepParam>,
}

impl SweepConfig {
    /// Reads a sweep file; errors name the file, the line and the field.
    pub fn load(file: &Path) -> Result<SweepConfig, ScenarioError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ScenarioError::invalid(file, "", format!("cannot read the sweep file: {e}")))?;
        let config: SweepConfig = parse_toml(file, &text)?;
        let err = |path: &str, msg: String| ScenarioError::invalid(file, path, msg);
        if config.scenarios.is_empty() {
            return Err(err("scenarios", "expected at least one scenario file".into()));
        }
        if let Some(r) = config.replications
            && !(1..=10_000).contains(&r)
        {
            return Err(err("replications", format!("expected 1..=10000, found {r}")));
        }
        if config.requests == Some(0) {
            return Err(err("requests", "expected at least one request per run".into()));
        }
        if let Some(p) = &config.policies
            && p.is_empty()
        {
            return Err(err("policies", "expected at least one policy name (or leave it out for all)".into()));
        }
        for (i, p) in config.params.iter().enumerate() {
            let here = |f: &str| format!("params[{i}].{f}");
            if p.path.trim().is_empty() {
                return Err(err(&here("path"), "expected a dotted field path like `traffic.rate`".into()));
            }
            let ranged = p.min.is_some() || p.max.is_some() || p.simplex.is_some();
            match (&p.values, ranged) {
                (Some(_), true) => {
                    return Err(err(
                        &here("values"),
                        "give either `values` or a range (`min`/`max` or `simplex`)".into(),
                    ));
                }
                (None, false) => {
                    return Err(err(&here("values"), "expected `values = [...]`, `min`/`max` or `simplex`".into()));
                }
                (Some(v), false) if v.is_empty() => {
                    return Err(err(&here("values"), "expected at least one value".into()));
                }
                _ => {}
            }
            if let Some(values) = &p.values {
                for (k, v) in values.iter().enumerate() {
                    if value_number(v).is_none() {
                        return Err(err(
                            &format!("params[{i}].values[{k}]"),
                            format!("expected a number or a duration like \"30s\", found `{v}`"),
                        ));
                    }
                }
            }
        }
        Ok(config)
    }
}

/// A value as a number for result tables: numbers as they are, durations in seconds.
pub fn value_number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(x) => Some(*x),
        toml::Value::String(s) => router_core::Duration::parse(s).ok().map(|d| d.nanos() as f64 / 1e9),
        _ => None,
    }
}
