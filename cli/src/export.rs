//! `routesim export litellm|portkey POLICY.toml --scenario S`: the closest gateway config to a policy, with
//! what it cannot express and the metric cost of the approximation, measured by running both (see
//! [`sim::export`]).

use anyhow::Context;
use router_core::PolicySpec;
use serde::Deserialize;
use sim::export::round_trip::{Exported, RoundTripOptions, round_trip};
use sim::export::{self, Source};
use sim::failure::Failure;
use sim::import::slug;
use sim::peer_gateway::Gateway;
use sim::report::render_paired_rows;
use sim::scenario::Scenario;
use sim::scenario::diag::parse_toml;
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

/// Imports the exported config back and runs it against the policy ([`round_trip`]); prints the paired
/// table and returns the cost lines for the file's comment block.
fn compare(
    args: &ExportArgs,
    scenario: &Scenario,
    scenario_path: &Path,
    policy: &PolicySpec,
    groups: &[PolicySpec],
    body: &str,
    out: &Path,
) -> Result<Vec<String>, Failure> {
    let options = RoundTripOptions { requests: args.requests, replications: args.replications };
    let exported = Exported { gateway: args.gateway, body, file: out };
    let trip = round_trip(exported, scenario, scenario_path, policy, groups, options)?;
    let mut table = String::new();
    render_paired_rows(&trip.rows, false, &mut table);
    println!(
        "Metric cost of the approximation: `{}` (the exported config, imported back) minus `{}`, {} replications:\n{table}",
        trip.approximation, policy.name, trip.replications
    );
    if let Some(n) = &trip.note {
        println!("note: {n}");
    }
    Ok(trip.cost_lines())
}
