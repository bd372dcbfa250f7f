//! The metric cost of an export: the written config is imported back ([`crate::peer_gateway::parse`]) and
//! run against the policy it approximates on the scenario's traffic, paired replication by replication.

use crate::experiment::{self, ExperimentOptions};
use crate::failure::Failure;
use crate::peer_gateway::{Gateway, parse};
use crate::report::model::PairedRow;
use crate::scenario::Scenario;
use crate::scenario::diag::ScenarioError;
use router_core::{PolicyKind, PolicySpec};
use std::path::Path;

/// The metrics whose paired differences go into the exported file's comment block.
const COST_METRICS: [&str; 6] =
    ["success_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s", "cost_per_1k_usd", "errors_429"];

/// Run lengths of the comparison (default: the scenario's).
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundTripOptions {
    /// Requests per replication (replacing the scenario's duration and warm-up).
    pub requests: Option<u64>,
    /// Replications.
    pub replications: Option<u32>,
}

/// The policy against its exported approximation.
#[derive(Clone, Debug)]
pub struct RoundTrip {
    /// The approximation's policy name (`<policy>-as-<gateway>`).
    pub approximation: String,
    /// Replications run.
    pub replications: u32,
    /// The approximation's paired rows against the policy (every metric).
    pub rows: Vec<PairedRow>,
    /// Said when no endpoint of the scenario ever fails: resilience settings the export approximates are
    /// then not exercised, and cost nothing here.
    pub note: Option<String>,
}

impl RoundTrip {
    /// The lines of the exported file's comment block: the note, then each cost metric's paired difference
    /// with its 95% interval.
    pub fn cost_lines(&self) -> Vec<String> {
        let metrics = self.rows.iter().filter(|p| COST_METRICS.contains(&p.metric.as_str())).map(|p| match p.ci95 {
            Some(h) => format!("{}: {:+.6} [{:+.6}, {:+.6}]", p.metric, p.mean_diff, p.mean_diff - h, p.mean_diff + h),
            None => format!("{}: {:+.6} (no interval: one replication)", p.metric, p.mean_diff),
        });
        self.note.iter().cloned().chain(metrics).collect()
    }
}

/// A config written for a gateway.
#[derive(Clone, Copy, Debug)]
pub struct Exported<'a> {
    /// Whose format.
    pub gateway: Gateway,
    /// The config text.
    pub body: &'a str,
    /// Where it is written (named in errors).
    pub file: &'a Path,
}

/// Imports `exported` back and runs it beside `policy` (with `groups`) on the traffic of `scenario` (read
/// from `scenario_path`).
pub fn round_trip(
    exported: Exported<'_>,
    scenario: &Scenario,
    scenario_path: &Path,
    policy: &PolicySpec,
    groups: &[PolicySpec],
    options: RoundTripOptions,
) -> Result<RoundTrip, Failure> {
    let imported = parse(exported.gateway, exported.file, exported.body)
        .map_err(|e| Failure::Failed(anyhow::anyhow!("the exported config does not import back: {e}")))?;
    if let Some(e) = imported.endpoints.iter().find(|e| !scenario.endpoints.iter().any(|s| s.id == e.id)) {
        return Err(Failure::Failed(anyhow::anyhow!(
            "the exported config names endpoint `{}`, which the scenario does not have",
            e.id
        )));
    }
    let suffix = "~export";
    let (mut approx, approx_groups) = renamed(&imported.policy, &imported.groups, suffix);
    approx.name = format!("{}-as-{}", policy.name, imported.gateway.to_lowercase());
    // Portkey's order may name the root (a top-level fallback): it follows the root's new name.
    if let Some(t) = &mut approx.target_retry
        && let Some(codes) = t.fallback_on.remove(&imported.policy.name)
    {
        t.fallback_on.insert(approx.name.clone(), codes);
    }
    // A single model group: requests that name no model go to it.
    if approx.kind == PolicyKind::Conditional && approx.rules.len() == 1 && approx.default.is_none() {
        approx.default = Some(approx.rules[0].target.clone());
    }
    let mut s = scenario.clone();
    s.policies = vec![policy.clone(), approx.clone()];
    s.groups = groups.to_vec();
    s.groups.extend(approx_groups);
    s.report.baseline = Some(policy.name.clone());
    s.tune = None;
    if let Some(n) = options.requests {
        s.requests = Some(n);
        s.duration = None;
        s.warmup = None;
        s.warmup_requests = None;
    }
    if let Some(r) = options.replications {
        s.replications = r;
    }
    let model = s.compile(scenario_path).map_err(|e: ScenarioError| {
        Failure::Failed(anyhow::anyhow!("the policy and its approximation do not compile together: {e}"))
    })?;
    let exp = experiment::run(&model, &[0, 1], &ExperimentOptions::default())?;
    let report = experiment::report(&model, &exp);
    let rows: Vec<PairedRow> = report.paired.iter().filter(|p| p.policy == approx.name).cloned().collect();
    let never_fail = scenario.faults.is_empty() && scenario.endpoints.iter().all(|e| e.errors.total() == 0.0);
    let note = never_fail.then(|| {
        "(no endpoint of the scenario ever fails: retries, fallbacks, cooldowns and circuit breakers are not \
         exercised, so whatever of them the config approximates costs nothing here)"
            .to_string()
    });
    Ok(RoundTrip { approximation: approx.name, replications: model.scenario.replications, rows, note })
}

/// `root` and `groups` with every group renamed `<name><suffix>` (and every reference to it).
pub fn renamed(root: &PolicySpec, groups: &[PolicySpec], suffix: &str) -> (PolicySpec, Vec<PolicySpec>) {
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let rename = |n: &str| if names.contains(&n) { format!("{n}{suffix}") } else { n.to_string() };
    let fix = |s: &PolicySpec| {
        let mut s = s.clone();
        crate::import::scenario::rename_references(&mut s, &rename);
        s
    };
    let root = fix(root);
    let gs = groups
        .iter()
        .map(|g| {
            let mut s = fix(g);
            s.name = rename(&g.name);
            s
        })
        .collect();
    (root, gs)
}
