//! Building a [`Router`] from a [`RouterConfig`]: validation and compilation, one named step per part of the
//! configuration ([`Router::new`] lists them in order). The first step that finds an error returns it: the
//! order of the steps is the order in which a config's errors are reported.
//!
//! - [`validate`]: the endpoints, the tracking and the retry policy;
//! - [`names`] and [`graph`]: the policies named and indexed, checked to form a tree, what each reaches;
//! - [`policies`]: each policy spec compiled into its [`crate::policy::Policy`];
//! - [`compat`]: LiteLLM cooldowns and compat tracking;
//! - [`retry`]: group retry (LiteLLM), target retry (Portkey), fallback chains, the retry policy;
//! - [`resilience`]: the response cache and the batcher.

mod compat;
mod graph;
mod names;
mod policies;
mod resilience;
mod retry;
mod validate;

pub use graph::{MAX_GROUP_DEPTH, MAX_GROUPS};

use super::cascade::CascadePlan;
use super::{Router, Timeouts};
use crate::config::{PolicyKind, PolicySpec, RouterConfig};
use crate::policy::{EndpointSet, QualityTable, Target};
use crate::policy::{Gate, Reads, Scoreboard, Terms};
use crate::resilience::RetryBudget;
use crate::state::{EndpointState, TrackingConfig};
use graph::PolicyGraph;
use std::sync::Arc;

impl Router {
    /// Builds a router from a configuration, validating all of it.
    pub fn new(cfg: &RouterConfig) -> Result<Router, crate::config::ConfigError> {
        let root = &cfg.policy;
        validate::validate_endpoints(&cfg.endpoints)?;
        validate::validate_quality(&cfg.quality)?;
        let graph = PolicyGraph::name_policies(cfg)?;
        graph.check_cycles()?;
        // Abilities are solved only for a router that predicts from them (a few milliseconds per class).
        let table = Arc::new(if graph.specs.iter().any(|(s, _)| s.kind == PolicyKind::Quality) {
            QualityTable::new(&cfg.endpoints, &cfg.quality)
        } else {
            QualityTable::new(&[], &cfg.quality)
        });
        let policies = policies::compile_policies(&graph, &cfg.endpoints, &table)?;
        let tracking = root.tracking.unwrap_or_default();
        validate::validate_tracking(&tracking, "policy.tracking")?;
        let policies_targets = graph.endpoint_targets(&cfg.endpoints);
        let cooldown = compat::compile_cooldown(root, &tracking, &graph.names)?;
        let reachable = graph.reachable_from_root(root.group_retry.as_ref());
        let compat = compat::compat_tracking(
            &graph.specs,
            &reachable,
            &policies_targets,
            cfg.endpoints.len(),
            cooldown.is_some(),
        )?;
        let reach = graph.reach_sets(&policies_targets);
        policies::check_quality_targets(&graph, &reach, &cfg.endpoints, &table)?;
        let cascade = cascade_plan(root, &graph, &reach, cfg.endpoints.len());
        let policy_names = graph.policy_names();
        let group_retry = match &root.group_retry {
            Some(g) => Some(retry::compile_group_retry(g, &graph, &policies_targets, cfg.endpoints.len())?),
            None => None,
        };
        let target_retry = retry::compile_target_retry_setting(&graph, cfg)?;
        let fallbacks = retry::compile_fallbacks(root, &graph.names, &cfg.endpoints)?;
        let retry = retry::compile_retry(root, &fallbacks)?;
        let cache = resilience::compile_cache(root)?;
        let batcher = resilience::compile_batcher(root, &graph.names, &cfg.endpoints)?;
        let Live { gates, states, board, idle_tick } = initial_state(cfg, &graph, &tracking);
        let Capacity { scratch, journal, widest } = capacity(&graph.specs, cfg.endpoints.len());
        let direct = policies::direct_root(&graph, &cfg.endpoints, tracking.default_output_tokens);
        Ok(Router {
            name: root.name.clone(),
            kind: root.kind,
            endpoints: cfg.endpoints.clone(),
            gates,
            states,
            board,
            counters: vec![0; policies.len()],
            journal: Vec::with_capacity(journal),
            policies,
            direct,
            scratch: Vec::with_capacity(scratch),
            terms: Terms::with_len(widest),
            tracking,
            budget: retry.budget.map(RetryBudget::new),
            retry,
            fallbacks,
            cache,
            batcher,
            timeouts: Timeouts {
                attempt: root.timeout.map(|d| d.nanos()).filter(|&t| t > 0),
                ttft: root.ttft_timeout.map(|d| d.nanos()).filter(|&t| t > 0),
            },
            seed: cfg.seed,
            next_tick: 0,
            idle_tick,
            emulates: compat.is_some() || cooldown.is_some() || target_retry.is_some(),
            compat,
            cooldown,
            group_retry,
            policy_names,
            reach,
            target_retry,
            cascade,
        })
    }
}

/// The root cascade's plan (its stages, the stage of each endpoint, the verifier); `None` for another kind.
fn cascade_plan(
    root: &PolicySpec,
    graph: &PolicyGraph<'_>,
    reach: &[EndpointSet],
    n: usize,
) -> Option<Box<CascadePlan>> {
    if root.kind != PolicyKind::Cascade {
        return None;
    }
    // The targets were checked, and required, when the policy was compiled.
    let stages: Vec<Target> =
        root.targets.iter().filter_map(|t| graph.names.target(t.id(), "policy.targets").ok()).collect();
    let stage_reach: Vec<EndpointSet> = stages
        .iter()
        .map(|t| match *t {
            Target::Endpoint(e) => {
                let mut s = EndpointSet::default();
                s.insert(e);
                s
            }
            Target::Policy(p) => reach[p.0 as usize],
        })
        .collect();
    Some(Box::new(CascadePlan::new(stages, &stage_reach, n, root.verifier.clone().unwrap_or_default())))
}

/// The live state a new router starts from.
struct Live {
    gates: Vec<Gate>,
    states: Vec<EndpointState>,
    board: Scoreboard,
    idle_tick: Option<crate::model::Nanos>,
}

/// The endpoints' fresh states (peak EWMA only when p2c reads it, no TTFT average; LiteLLM's single-deployment
/// flags), the gates and scoreboard over them, and how often the windows move without quotas (see
/// `Router::advance`).
fn initial_state(cfg: &RouterConfig, graph: &PolicyGraph<'_>, tracking: &TrackingConfig) -> Live {
    let (root, specs, names) = (&cfg.policy, &graph.specs, &graph.names);
    let n = cfg.endpoints.len();
    let gates: Vec<Gate> = cfg.endpoints.iter().map(Gate::new).collect();
    let mut states: Vec<EndpointState> = (0..n).map(|_| EndpointState::new(tracking)).collect();
    // Only p2c reads the peak EWMA: without it, results need not update it.
    let peak_read = specs.iter().any(|(s, _)| s.kind == PolicyKind::P2c);
    for st in &mut states {
        st.track_peak = peak_read;
        // No policy reads the TTFT average (see `EndpointState::track_ttft`).
        st.track_ttft = false;
    }
    if let Some(c) = &root.cooldown {
        for id in &c.single_deployment {
            if let Some(&e) = names.endpoints.get(id.as_str()) {
                states[e.get()].compat.single_deployment = true;
            }
        }
    }
    // The scoreboard refreshes only the score columns some policy reads.
    let board = Scoreboard::new(&gates, &states, Reads::of(specs.iter().map(|(s, _)| s.kind)));
    // Only quotas read the sliding windows between feedback (see `Router::advance`). Any declared quota
    // counts, even `tpm = u64::MAX`: its gate's reciprocal still weighs the window in the quota score.
    let quotas = cfg.endpoints.iter().any(|e| e.limits.rpm.is_some() || e.limits.tpm.is_some());
    let idle_tick = (!quotas).then(|| tracking.error_window.nanos().max(tracking.quota_window.nanos()).max(1));
    Live { gates, states, board, idle_tick }
}

/// Capacities allocated up front so that deciding never allocates.
struct Capacity {
    /// Candidates on the scratch stack.
    scratch: usize,
    /// Entries of the journal of speculative cursor moves.
    journal: usize,
    /// The most targets of one policy (the width of the scoring terms).
    widest: usize,
}

/// The capacities of the scratch stack, the journal and the scoring terms for `specs` over `n` endpoints.
fn capacity(specs: &[(&PolicySpec, String)], n: usize) -> Capacity {
    // Scratch for candidates: the policies active at once form a chain of at most MAX_GROUP_DEPTH + 1, each
    // with at most its target count of candidates, so this capacity is never exceeded (no allocation later).
    let per_policy: Vec<usize> =
        specs.iter().map(|(s, _)| if s.targets.is_empty() { n } else { s.targets.len() }.max(s.strong.len())).collect();
    let widest = per_policy.iter().copied().max().unwrap_or(n);
    let scratch_cap = per_policy.iter().sum::<usize>().min((MAX_GROUP_DEPTH + 1) * widest);
    // Journal of speculative cursor moves: each candidate on the scratch stack (and the one being resolved)
    // carries at most one entry per round robin on its path, and a path holds at most MAX_GROUP_DEPTH + 1.
    let round_robins = specs.iter().filter(|(s, _)| s.kind == PolicyKind::RoundRobin).count();
    let journal_cap = (scratch_cap + 1) * round_robins.min(MAX_GROUP_DEPTH + 1);
    Capacity { scratch: scratch_cap, journal: journal_cap, widest }
}
