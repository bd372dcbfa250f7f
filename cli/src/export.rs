//! `routesim export litellm|portkey POLICY.toml --scenario S`: the closest gateway config to a policy, with
//! what it cannot express and the metric cost of the approximation, measured by running both (see
//! [`sim::export`]).

use anyhow::Context;
use router_core::{PolicyKind, PolicySpec};
use serde::Deserialize;
use sim::experiment::{self, ExperimentOptions};
use sim::export::{self, Source};
use sim::failure::Failure;
use sim::import::slug;
use sim::peer_gateway::{Gateway, parse};
use sim::report::render_paired_rows;
use sim::scenario::Scenario;
use sim::scenario::diag::{ScenarioError, parse_toml};
use std::path::{Path, PathBuf};

/// Arguments of `routesim export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Which gateway's format to write.
    #[arg(value_enum)]
    pub gateway: Gateway,
    /// A file of `[[policies]]` (such as `routesim tune`'s `best-policy.toml`), or a scenario.
    pub policy: PathBuf,
    /// The scenario whose endpoints and groups the policy uses and whose traffic measures the cost (default:
    /// the policy file itself, when it is a scenario).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Which policy of the file to export (default: its first).
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write the config (default: `<policy>.litellm.yaml` or `<policy>.portkey.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Requests per replication of the comparison run (default: the scenario's).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Replications of the comparison run (default: the scenario's).
    #[arg(long)]
    pub replications: Option<u32>,
}

/// A file of policies (and groups).
#[derive(Debug, Deserialize)]
struct PolicyFile {
    policies: Vec<PolicySpec>,
    #[serde(default)]
    groups: Vec<PolicySpec>,
}

/// Runs the command.
pub fn run(args: &ExportArgs) -> Result<(), Failure> {
    let scenario_path = args.scenario.clone().unwrap_or_else(|| args.policy.clone());
    let scenario = Scenario::load(&scenario_path)?;
    let text = std::fs::read_to_string(&args.policy)
        .map_err(|e| Failure::Invalid(format!("{}: cannot read: {e}", args.policy.display())))?;
    let file: PolicyFile = if args.scenario.is_some() {
        parse_toml(&args.policy, &text)?
    } else {
        PolicyFile { policies: scenario.policies.clone(), groups: Vec::new() }
    };
    let policy = match &args.name {
        Some(n) => file.policies.iter().find(|p| &p.name == n).ok_or_else(|| {
            let names: Vec<_> = file.policies.iter().map(|p| p.name.as_str()).collect();
            Failure::Invalid(format!(
                "{}: no policy named `{n}`: expected one of {}",
                args.policy.display(),
                names.join(", ")
            ))
        })?,
        None => file.policies.first().ok_or_else(|| {
            Failure::Invalid(format!("{}: expected at least one [[policies]] entry", args.policy.display()))
        })?,
    };
    let mut groups = scenario.groups.clone();
    groups.extend(file.groups.iter().cloned());
    let src =
        Source { policy, groups: &groups, endpoints: &scenario.endpoints, client_timeout: scenario.client.timeout };
    let (body, unexpressed, keys) = match args.gateway {
        Gateway::Litellm => {
            let e = export::litellm::export(&src);
            (e.yaml, e.unexpressed, Vec::new())
        }
        Gateway::Portkey => {
            let e = export::portkey::export(&src);
            (e.json, e.unexpressed, e.keys)
        }
    };
    let ext = match args.gateway {
        Gateway::Litellm => "litellm.yaml",
        Gateway::Portkey => "portkey.json",
    };
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("{}.{ext}", slug(&policy.name))));

    let cost = compare(args, &scenario, &scenario_path, policy, &groups, &body, &out)?;
    let header = match args.gateway {
        Gateway::Litellm => export::litellm::header(&policy.name, &scenario.name, &unexpressed, &cost),
        Gateway::Portkey => export::portkey::header(&policy.name, &scenario.name, &keys, &unexpressed, &cost),
    };
    std::fs::write(&out, format!("{header}\n{body}")).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} config written to {}",
        if args.gateway == Gateway::Litellm { "LiteLLM" } else { "Portkey" },
        out.display()
    );
    println!("not expressible ({}):", unexpressed.len());
    for u in &unexpressed {
        println!("  - {u}");
    }
    Ok(())
}

/// Imports the exported config back and runs it against the policy; returns the cost lines and prints the
/// paired table.
fn compare(
    args: &ExportArgs,
    scenario: &Scenario,
    scenario_path: &Path,
    policy: &PolicySpec,
    groups: &[PolicySpec],
    body: &str,
    out: &Path,
) -> Result<Vec<String>, Failure> {
    let imported = parse(args.gateway, out, body)
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
    if let Some(n) = args.requests {
        s.requests = Some(n);
        s.duration = None;
        s.warmup = None;
        s.warmup_requests = None;
    }
    if let Some(r) = args.replications {
        s.replications = r;
    }
    let model = s.compile(scenario_path).map_err(|e: ScenarioError| {
        Failure::Failed(anyhow::anyhow!("the policy and its approximation do not compile together: {e}"))
    })?;
    let exp = experiment::run(&model, &[0, 1], &ExperimentOptions::default())?;
    let report = experiment::report(&model, &exp);
    let rows: Vec<_> = report.paired.iter().filter(|p| p.policy == approx.name).cloned().collect();
    let mut table = String::new();
    render_paired_rows(&rows, false, &mut table);
    println!(
        "Metric cost of the approximation: `{}` (the exported config, imported back) minus `{}`, {} replications:\n{table}",
        approx.name, policy.name, model.scenario.replications
    );
    let never_fail = scenario.faults.is_empty() && scenario.endpoints.iter().all(|e| e.errors.total() == 0.0);
    let note = never_fail.then(|| {
        "(no endpoint of the scenario ever fails: retries, fallbacks, cooldowns and circuit breakers are not \
         exercised, so whatever of them the config approximates costs nothing here)"
            .to_string()
    });
    if let Some(n) = &note {
        println!("note: {n}");
    }
    Ok(note
        .into_iter()
        .chain(
            rows.iter()
                .filter(|p| {
                    ["success_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s", "cost_per_1k_usd", "errors_429"]
                        .contains(&p.metric.as_str())
                })
                .map(|p| match p.ci95 {
                    Some(h) => {
                        format!("{}: {:+.6} [{:+.6}, {:+.6}]", p.metric, p.mean_diff, p.mean_diff - h, p.mean_diff + h)
                    }
                    None => format!("{}: {:+.6} (no interval: one replication)", p.metric, p.mean_diff),
                }),
        )
        .collect())
}

/// `root` and `groups` with every group renamed `<name><suffix>` (and every reference to it).
pub fn renamed(root: &PolicySpec, groups: &[PolicySpec], suffix: &str) -> (PolicySpec, Vec<PolicySpec>) {
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let rename = |n: &str| if names.contains(&n) { format!("{n}{suffix}") } else { n.to_string() };
    let fix = |s: &PolicySpec| {
        let mut s = s.clone();
        sim::import::scenario::rename_references(&mut s, &rename);
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
