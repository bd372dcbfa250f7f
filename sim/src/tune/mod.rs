//! `routesim tune`: searching a policy's numeric knobs for the configurations that trade cost against
//! latency best, and choosing the one that meets the user's constraints.
//!
//! - [`config`]: the `[tune]` section (parameters, method, budget, objectives, constraints); defined with the
//!   scenario's other sections in [`crate::scenario::tune`], which this module builds on.
//! - [`space`]: parameter ranges, candidate generation (grid, random, Latin hypercube) and writing values
//!   into a policy configuration by field path.
//! - [`search`]: evaluating candidates with common random numbers over replications, in parallel, with
//!   successive halving that drops clearly dominated candidates early.
//! - [`select`]: Pareto ranks, constraint violation and the choice of the best feasible point.
//! - [`shard`]: `--shard I/N` for grid, random and Latin-hypercube searches, and their merge.
//! - [`output`]: `candidates.csv`/`.parquet`, `pareto.csv`, the `pareto` plot, `best-policy.toml` and the
//!   terminal tables.
//!
//! Every candidate is an ordinary `[[policies]]` entry appended to the scenario, so it is validated, run
//! and reported exactly like a policy of `routesim run`; the scenario's own policies are the baselines.

pub use crate::scenario::tune as config;
pub mod output;
pub mod search;
pub mod select;
pub mod shard;
pub mod space;

use crate::scenario::diag::{ScenarioError, nearest};
use crate::scenario::{Compiled, Overrides, Scenario};
use config::{
    Constraint, Method, TuneConfig, higher_is_better, is_quality_metric, quality_off_message, resolve_metric,
};
use space::{Param, Value};
use std::path::Path;

/// Command-line replacements for fields of `[tune]`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TuneOverrides {
    /// `--method`.
    pub method: Option<Method>,
    /// `--candidates`.
    pub candidates: Option<u32>,
    /// `--replications`.
    pub replications: Option<u32>,
    /// `--requests`.
    pub requests: Option<u64>,
    /// `--constraint` (replaces the scenario's list when given).
    pub constraints: Option<Vec<String>>,
    /// `--seed`: the scenario's master seed (and the sampler's, unless `[tune] seed` is set).
    pub seed: Option<u64>,
}

/// A tuning run, ready to evaluate: the compiled scenario holds the scenario's policies (the baselines)
/// followed by one policy per candidate.
#[derive(Debug)]
pub struct TuneSetup {
    /// Scenario with baselines and candidates; its replication count is the tuning's.
    pub model: Compiled,
    /// The `[tune]` section after overrides.
    pub config: TuneConfig,
    /// Index of the tuned policy among the baselines.
    pub tuned: usize,
    /// Number of baseline policies; candidate `c` is policy `baselines + c`.
    pub baselines: usize,
    /// The parameters.
    pub params: Vec<Param>,
    /// Each candidate's parameter values.
    pub values: Vec<Vec<Value>>,
    /// Parsed constraints.
    pub constraints: Vec<Constraint>,
    /// The two objectives (metric columns): minimised, except those better higher (quality, mean score),
    /// which are maximised (see [`config::higher_is_better`]).
    pub objectives: [&'static str; 2],
    /// Replications per fully evaluated candidate.
    pub replications: u32,
    /// Whether the scenario states endpoint quality (some endpoint has `quality = { ... }`): then the
    /// frontier has quality as a third axis (unless an objective already measures it).
    pub quality: bool,
}

impl TuneSetup {
    /// Reads a scenario with a `[tune]` section, applies the overrides, generates the candidates and
    /// validates everything; errors name the file and the field.
    pub fn load(file: &Path, overrides: &TuneOverrides) -> Result<TuneSetup, ScenarioError> {
        let mut scenario = Scenario::load(file)?;
        Overrides { seed: overrides.seed, ..Default::default() }.apply(&mut scenario);
        Self::from_scenario(file, scenario, overrides)
    }

    /// As [`TuneSetup::load`], from a parsed scenario.
    pub fn from_scenario(
        file: &Path,
        mut scenario: Scenario,
        overrides: &TuneOverrides,
    ) -> Result<TuneSetup, ScenarioError> {
        let err = |path: &str, msg: String| ScenarioError::invalid(file, path, msg);
        let Some(mut tune) = scenario.tune.clone() else {
            return Err(err(
                "tune",
                "expected a [tune] section naming the policy, its parameters and the constraints \
                 (see scenarios/hybrid-tuning.toml)"
                    .into(),
            ));
        };
        if let Some(m) = overrides.method {
            tune.method = m;
        }
        if let Some(n) = overrides.candidates {
            tune.candidates = n;
        }
        if let Some(r) = overrides.replications {
            tune.replications = Some(r);
        }
        if let Some(n) = overrides.requests {
            tune.requests = Some(n);
        }
        if let Some(c) = &overrides.constraints {
            tune.constraints = c.clone();
        }
        let names: Vec<&str> = scenario.policies.iter().map(|p| p.name.as_str()).collect();
        let Some(tuned) = names.iter().position(|n| *n == tune.policy) else {
            return Err(err(
                "tune.policy",
                format!("unknown policy `{}`: expected one of {}", tune.policy, names.join(", ")),
            )
            .with_suggestion(nearest(&tune.policy, names.iter().copied())));
        };
        if tune.params.is_empty() {
            return Err(err("tune.params", "expected at least one [[tune.params]] entry".into()));
        }
        if tune.candidates == 0 {
            return Err(err("tune.candidates", "expected at least one candidate".into()));
        }
        if tune.eta < 2 {
            return Err(err("tune.eta", format!("expected 2 or more, found {}", tune.eta)));
        }
        let mut params = Vec::with_capacity(tune.params.len());
        for (i, spec) in tune.params.iter().enumerate() {
            let p = Param::new(spec).map_err(|(f, m)| err(&format!("tune.params[{i}].{f}"), m))?;
            // Both ends of the range must give a valid policy, so a wrong path or unit fails here.
            let base = &scenario.policies[tuned];
            for u in [0.0, 0.999_999] {
                let v = p.from_unit(&vec![u; p.dims()]);
                space::apply(base, std::slice::from_ref(&p), std::slice::from_ref(&v)).map_err(|m| {
                    err(&format!("tune.params[{i}].path"), format!("`{}` of policy `{}`: {m}", spec.path, tune.policy))
                })?;
            }
            params.push(p);
        }
        let constraints = tune
            .constraints
            .iter()
            .enumerate()
            .map(|(i, c)| Constraint::parse(c).map_err(|m| err(&format!("tune.constraints[{i}]"), m)))
            .collect::<Result<Vec<_>, _>>()?;
        if tune.objectives.len() != 2 {
            return Err(err(
                "tune.objectives",
                format!(
                    "expected two metrics to trade off, like [\"cost_per_1k_usd\", \"latency_p95_s\"], found {}",
                    tune.objectives.len()
                ),
            ));
        }
        let mut objectives = [""; 2];
        for (i, o) in tune.objectives.iter().enumerate() {
            objectives[i] = resolve_metric(o).map_err(|m| err(&format!("tune.objectives[{i}]"), m))?;
        }
        if objectives.contains(&"success_rate") {
            return Err(err(
                "tune.objectives",
                "objectives are minimised: bound the success rate with a constraint instead".into(),
            ));
        }
        let quality = scenario_states_quality(&scenario);
        if !quality {
            let bounds = constraints.iter().enumerate().map(|(i, c)| (format!("tune.constraints[{i}]"), c.metric));
            let goals = objectives.iter().enumerate().map(|(i, o)| (format!("tune.objectives[{i}]"), *o));
            if let Some((path, column)) = bounds.chain(goals).find(|(_, m)| is_quality_metric(m)) {
                return Err(err(&path, quality_off_message(column)));
            }
        }
        let replications = tune.replications.unwrap_or(scenario.replications);
        if !(1..=10_000).contains(&replications) {
            return Err(err("tune.replications", format!("expected 1..=10000, found {replications}")));
        }
        if tune.intervals_unavailable(replications) {
            return Err(err(
                "tune.confidence",
                "\"interval\" checks constraints on the 95% interval over replications: expected 2 or more \
                 replications, or confidence = \"mean\""
                    .into(),
            ));
        }
        if tune.method == Method::SuccessiveHalving && replications < 2 {
            return Err(err(
                "tune.replications",
                "successive halving races candidates over replications: expected 2 or more".into(),
            ));
        }
        let n = tune.candidates as usize;
        if tune.method == Method::Grid {
            let size = space::grid_size(&params, tune.steps);
            if size > n {
                return Err(err(
                    "tune.candidates",
                    format!(
                        "the grid has {size} points, more than the budget of {n} candidates: raise `candidates` or \
                         lower `steps`"
                    ),
                ));
            }
        }
        let seed = tune.seed.unwrap_or(scenario.seed);
        let base = scenario.policies[tuned].clone();
        // The configuration as written is candidate 0 (unless the grid is the whole search).
        let written = space::current(&base, &params).filter(|_| tune.method != Method::Grid);
        let sampled = n - usize::from(written.is_some());
        let mut values: Vec<Vec<Value>> = written.into_iter().collect();
        values.extend(space::generate(&params, tune.method, sampled, tune.steps, seed));
        let baselines = scenario.policies.len();
        for (c, v) in values.iter().enumerate() {
            let mut spec = space::apply(&base, &params, v).map_err(|m| err("tune.params", m))?;
            spec.name = candidate_name(&tune.policy, c);
            scenario.policies.push(spec);
        }
        if let Some(r) = tune.requests {
            scenario.requests = Some(r);
            scenario.duration = None;
        }
        scenario.replications = replications;
        let model = scenario.compile(file).map_err(|e| candidate_error(e, baselines, &tune.policy))?;
        Ok(TuneSetup {
            model,
            config: tune,
            tuned,
            baselines,
            params,
            values,
            constraints,
            objectives: [objectives[0], objectives[1]],
            replications,
            quality,
        })
    }

    /// Number of candidates.
    pub fn candidates(&self) -> usize {
        self.values.len()
    }

    /// Parameter column names, in the order of [`space::flatten`].
    pub fn param_columns(&self) -> Vec<String> {
        self.params.iter().flat_map(Param::columns).collect()
    }

    /// The frontier's axes: the two objectives, then `quality` (maximised) when the scenario states quality
    /// and neither objective is already `quality` or `mean_score`.
    pub fn frontier_axes(&self) -> Vec<&'static str> {
        let mut axes = self.objectives.to_vec();
        if self.quality && !axes.iter().any(|a| higher_is_better(a) && is_quality_metric(a)) {
            axes.push("quality");
        }
        axes
    }
}

/// Whether some endpoint of `scenario` states an accuracy (`quality = { ... }`): "quality on".
pub fn scenario_states_quality(scenario: &Scenario) -> bool {
    scenario.endpoints.iter().any(|e| !e.quality.is_empty())
}

/// The name of candidate `c` of `policy` in results.
pub fn candidate_name(policy: &str, c: usize) -> String {
    format!("{policy}#{c:04}")
}

/// A candidate that compiles to an invalid policy: say which parameters produced it, not `policies[207]`.
fn candidate_error(e: ScenarioError, baselines: usize, policy: &str) -> ScenarioError {
    let Some(rest) = e.path.strip_prefix("policies[") else { return e };
    let Some((index, field)) = rest.split_once(']') else { return e };
    match index.parse::<usize>() {
        Ok(i) if i >= baselines => ScenarioError::invalid(
            &e.file,
            "tune.params",
            format!(
                "candidate {} sets `{}` to a value the `{policy}` policy rejects: {}",
                candidate_name(policy, i - baselines),
                field.trim_start_matches('.'),
                e.message
            ),
        ),
        _ => e,
    }
}
