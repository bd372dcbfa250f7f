//! Scenario files: the TOML a user writes, parsed, validated and compiled into what the engine runs.
//!
//! A scenario names the traffic, the endpoints (router view + provider model), scheduled faults, the policies
//! to compare, the seed, the run length and the warm-up. Every error names the file, the field path and what
//! was expected, with a "did you mean" for typos (see [`diag`]).

pub mod diag;
pub mod tune;
/// Distributions: the configuration (`routesim-schema`) and the samplers, at [`crate::dist`].
pub use crate::dist;

use crate::provider::{EndpointSpec, FaultSpec};
use crate::traffic::{Limit, TrafficConfig, TrafficModel};
use diag::ScenarioError;
/// The `[health]` table (shared with the gateway, which runs the checks for real).
pub use router_core::HealthConfig;
use router_core::{Duration, EndpointIdx, Nanos, PolicySpec, RouterConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Client behaviour around each request (`[client]`, shared with the gateway).
pub use routesim_schema::ClientConfig;

/// Report settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Width of a time-series interval (default 1m).
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Policy the others are compared with (default: the first).
    #[serde(default)]
    pub baseline: Option<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig { interval: default_interval(), baseline: None }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_one() -> u32 {
    1
}

/// A scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, used for the results folder.
    pub name: String,
    /// What the scenario shows.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Master seed of every random stream.
    #[serde(default)]
    pub seed: u64,
    /// Independent replications (each with its own streams derived from the seed).
    #[serde(default = "default_one")]
    pub replications: u32,
    /// Simulated time during which requests arrive.
    #[serde(default)]
    pub duration: Option<Duration>,
    /// Number of requests (whichever of duration and requests comes first ends the arrivals).
    #[serde(default)]
    pub requests: Option<u64>,
    /// Requests arriving before this time are simulated but not measured.
    #[serde(default)]
    pub warmup: Option<Duration>,
    /// Requests with an id below this are simulated but not measured.
    #[serde(default)]
    pub warmup_requests: Option<u64>,
    /// The traffic model.
    pub traffic: TrafficConfig,
    /// The endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    /// Files of `[[endpoints]]` entries (such as `routesim fit`'s `providers.toml`) added to `endpoints`,
    /// relative to the scenario file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_endpoints: Vec<PathBuf>,
    /// Scheduled faults.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// The policies to compare.
    pub policies: Vec<PolicySpec>,
    /// Named policies that policies may target.
    #[serde(default)]
    pub groups: Vec<PolicySpec>,
    /// Client behaviour.
    #[serde(default)]
    pub client: ClientConfig,
    /// Health checks.
    #[serde(default)]
    pub health: HealthConfig,
    /// Report settings.
    #[serde(default)]
    pub report: ReportConfig,
    /// How `routesim replay` and `routesim fit` read logs (ignored by the other commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<crate::logs::ReplayConfig>,
    /// What `routesim tune` searches (ignored by the other commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<tune::TuneConfig>,
    /// Client keys with their limits and budgets, and the share of traffic each carries (see
    /// [`crate::keys`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<crate::keys::KeySpec>,
    /// `[quality]`: the quality model's discrimination per class and the router's estimate (`router_auc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<routesim_schema::QualitySection>,
}

/// Overrides (from the command line or a validation run) of a scenario's settings.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--requests`: a request count, replacing the duration.
    pub requests: Option<u64>,
    /// `--replications`.
    pub replications: Option<u32>,
}

impl Overrides {
    /// Applies the overrides to a parsed scenario (a request count replaces the duration).
    pub fn apply(&self, scenario: &mut Scenario) {
        if let Some(s) = self.seed {
            scenario.seed = s;
        }
        if let Some(n) = self.requests {
            scenario.requests = Some(n);
            scenario.duration = None;
        }
        if let Some(r) = self.replications {
            scenario.replications = r;
        }
    }
}

/// A fault bound to its endpoint.
#[derive(Clone, Debug)]
pub struct CompiledFault {
    /// The endpoint.
    pub endpoint: EndpointIdx,
    /// The fault.
    pub spec: FaultSpec,
}

/// A validated scenario, ready to run.
#[derive(Debug)]
pub struct Compiled {
    /// The scenario as resolved (after command-line overrides).
    pub scenario: Scenario,
    /// The file it came from.
    pub file: PathBuf,
    /// Traffic model.
    pub traffic: TrafficModel,
    /// Endpoints (provider models).
    pub endpoints: Vec<EndpointSpec>,
    /// One router configuration per policy, in scenario order.
    pub router_configs: Vec<RouterConfig>,
    /// Faults.
    pub faults: Vec<CompiledFault>,
    /// When arrivals stop.
    pub limit: Limit,
    /// Warm-up end time.
    pub warmup_until: Nanos,
    /// Warm-up request count.
    pub warmup_requests: u64,
    /// Client timeout per attempt (a policy's own `timeout` overrides it).
    pub timeout: Option<Nanos>,
    /// Client time-to-first-token timeout (a policy's own `ttft_timeout` overrides it).
    pub ttft_timeout: Option<Nanos>,
    /// Latency of a cache hit.
    pub cache_latency: Nanos,
    /// Health-check interval.
    pub health_interval: Option<Nanos>,
    /// Time-series interval.
    pub interval: Nanos,
    /// Master seed.
    pub seed: u64,
    /// Index of the baseline policy.
    pub baseline: usize,
    /// When set, arrivals come from this replayed log instead of the traffic model (`routesim replay`).
    pub replay: Option<crate::logs::source::ReplayInput>,
    /// Where answer quality comes from: the item-response model of the endpoints' stated accuracies
    /// ([`Compiled::quality_model`]), or a matrix log of real outcomes; `None` when quality is off (no
    /// endpoint states an accuracy), and the engine then runs without any quality code.
    pub quality: Option<std::sync::Arc<dyn crate::quality::Outcomes>>,
}

impl Scenario {
    /// Reads and parses a scenario file (no semantic validation yet: see [`Scenario::compile`]).
    pub fn load(file: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ScenarioError::invalid(file, "", format!("cannot read the scenario file: {e}")))?;
        let mut scenario = Scenario::parse(file, &text)?;
        scenario.resolve_includes(file)?;
        Ok(scenario)
    }

    /// Appends the endpoints of the `include_endpoints` files (relative to `file`) and clears the list, so
    /// that the resolved scenario is self-contained. Errors name the included file.
    pub fn resolve_includes(&mut self, file: &Path) -> Result<(), ScenarioError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct EndpointsFile {
            endpoints: Vec<EndpointSpec>,
        }
        let base = file.parent().unwrap_or(Path::new("."));
        for (i, inc) in std::mem::take(&mut self.include_endpoints).into_iter().enumerate() {
            let path = base.join(&inc);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ScenarioError::invalid(
                    file,
                    &format!("include_endpoints[{i}]"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let included: EndpointsFile = diag::parse_toml(&path, &text)?;
            self.endpoints.extend(included.endpoints);
        }
        Ok(())
    }

    /// Parses scenario text; `file` names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        diag::parse_toml(file, text)
    }

    /// Validates the scenario and builds everything the engine needs.
    pub fn compile(self, file: &Path) -> Result<Compiled, ScenarioError> {
        let err = |path: String, msg: String| ScenarioError::invalid(file, &path, msg);
        if self.name.trim().is_empty() {
            return Err(err("name".into(), "expected a non-empty name".into()));
        }
        if self.duration.is_none() && self.requests.is_none() {
            return Err(err(
                "duration".into(),
                "expected `duration` (like \"1h\") or `requests` (a count), found neither".into(),
            ));
        }
        if self.requests == Some(0) || self.duration.is_some_and(|d| d.nanos() == 0) {
            return Err(err(
                if self.requests == Some(0) { "requests" } else { "duration" }.into(),
                "expected a positive run length".into(),
            ));
        }
        if !(1..=10_000).contains(&self.replications) {
            return Err(err("replications".into(), format!("expected 1..=10000, found {}", self.replications)));
        }
        if self.report.interval.nanos() == 0 {
            return Err(err("report.interval".into(), "expected a positive interval like \"1m\"".into()));
        }
        let traffic = TrafficModel::new(&self.traffic).map_err(|(path, msg)| err(join("traffic", &path), msg))?;
        crate::keys::validate(&self.keys, &traffic.class_names())
            .map_err(|(path, msg, near)| err(path, msg).with_suggestion(near))?;
        if self.endpoints.is_empty() {
            return Err(err(
                "endpoints".into(),
                "expected at least one [[endpoints]] entry (or a file of them in `include_endpoints`)".into(),
            ));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            e.validate().map_err(|(f, m)| err(format!("endpoints[{i}].{f}"), m))?;
        }
        let ids: Vec<&str> = self.endpoints.iter().map(|e| e.id.as_str()).collect();
        let mut faults = Vec::new();
        for (i, f) in self.faults.iter().enumerate() {
            f.validate().map_err(|(p, m)| err(format!("faults[{i}].{p}"), m))?;
            let Some(idx) = ids.iter().position(|id| *id == f.endpoint) else {
                let e = err(
                    format!("faults[{i}].endpoint"),
                    format!("unknown endpoint `{}`: expected one of {}", f.endpoint, ids.join(", ")),
                );
                return Err(e.with_suggestion(diag::nearest(&f.endpoint, ids.iter().copied())));
            };
            faults.push(CompiledFault { endpoint: EndpointIdx(idx as u16), spec: f.clone() });
        }
        if self.policies.is_empty() {
            return Err(err("policies".into(), "expected at least one [[policies]] entry to simulate".into()));
        }
        let router_endpoints: Vec<_> = self.endpoints.iter().map(EndpointSpec::router_endpoint).collect();
        let quality = routesim_schema::quality_config(self.quality.as_ref(), file)?;
        let router_configs = routesim_schema::compile_policies(
            file,
            &router_endpoints,
            &self.policies,
            &self.groups,
            self.seed,
            &quality,
        )?;
        let baseline = match &self.report.baseline {
            None => 0,
            Some(b) => self.policies.iter().position(|p| &p.name == b).ok_or_else(|| {
                let pn: Vec<&str> = self.policies.iter().map(|p| p.name.as_str()).collect();
                err("report.baseline".into(), format!("unknown policy `{b}`: expected one of {}", pn.join(", ")))
                    .with_suggestion(diag::nearest(b, pn.iter().copied()))
            })?,
        };
        let limit = Limit { until: self.duration.map(|d| d.nanos()), max_requests: self.requests };
        let outcomes = quality_model(&self, &traffic.class_names());
        Ok(Compiled {
            file: file.to_path_buf(),
            traffic,
            endpoints: self.endpoints.clone(),
            router_configs,
            faults,
            limit,
            warmup_until: self.warmup.map_or(0, |d| d.nanos()),
            warmup_requests: self.warmup_requests.unwrap_or(0),
            timeout: self.client.timeout.map(|d| d.nanos()).filter(|&t| t > 0),
            ttft_timeout: self.client.ttft_timeout.map(|d| d.nanos()).filter(|&t| t > 0),
            cache_latency: self.client.cache_latency.map_or(5_000_000, |d| d.nanos()),
            health_interval: Some(self.health.interval.nanos()).filter(|&t| t > 0),
            interval: self.report.interval.nanos(),
            seed: self.seed,
            baseline,
            replay: None,
            quality: outcomes,
            scenario: self,
        })
    }
}

/// The quality model of `scenario`'s endpoints for the task classes `classes` (see [`Compiled::quality`]).
fn quality_model(scenario: &Scenario, classes: &[String]) -> Option<std::sync::Arc<dyn crate::quality::Outcomes>> {
    // `[quality]` was validated with the policies (`routesim_schema::quality_config`).
    let config = scenario.quality.as_ref().map(|q| q.router_config()).unwrap_or_default();
    let auc = scenario.quality.as_ref().and_then(|q| q.router_auc);
    let endpoints = scenario.endpoints.iter().map(|e| (e.id.as_str(), &e.quality));
    crate::quality::QualityModel::new(endpoints, &config, auc, classes)
        .map(|m| std::sync::Arc::new(m) as std::sync::Arc<dyn crate::quality::Outcomes>)
}

impl Compiled {
    /// The quality model of the scenario's endpoints for the task classes `classes`: what
    /// [`Compiled::quality`] holds for the traffic model's classes; a replayed log's classes need their own
    /// (`crate::replay` sets it).
    pub fn quality_model(&self, classes: &[String]) -> Option<std::sync::Arc<dyn crate::quality::Outcomes>> {
        quality_model(&self.scenario, classes)
    }

    /// Policy names in scenario order.
    pub fn policy_names(&self) -> Vec<String> {
        self.scenario.policies.iter().map(|p| p.name.clone()).collect()
    }

    /// Endpoint ids in scenario order.
    pub fn endpoint_ids(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.id.clone()).collect()
    }

    /// Task class names in scenario order.
    pub fn class_names(&self) -> Vec<String> {
        match &self.replay {
            Some(r) => r.classes.clone(),
            None => self.traffic.class_names(),
        }
    }
}

/// `x` rounded to 4 significant digits (the schema's writing convention for generated numbers).
pub use routesim_schema::round_sig;

fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() { prefix.to_string() } else { format!("{prefix}.{path}") }
}
