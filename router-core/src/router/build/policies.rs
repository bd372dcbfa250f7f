//! Compiling each policy spec into its [`Policy`]: its targets and its kind's own settings.

use super::graph::PolicyGraph;
use super::names::Names;
use crate::condition::Condition;
use crate::config::{ConfigError, PolicyKind, PolicySpec, TargetSpec, check_range};
use crate::model::{Endpoint, EndpointIdx, MAX_ENDPOINTS};
use crate::policy::compat::litellm;
use crate::policy::{
    Cascade, Conditional, CostBased, Direct, FallbackChain, Hybrid, LatencyBased, LeastOutstanding, Policy, PolicyIdx,
    PowerOfTwo, QualityBar, QualityTable, RoundRobin, Sticky, Target, Threshold, UsageBased, WeightedRandom,
    WeightedTarget,
};
use std::sync::Arc;

/// Compiles every policy of the graph, the root first, in [`PolicyIdx`] order. Quality-aware policies predict
/// with `table`.
pub(super) fn compile_policies(
    graph: &PolicyGraph<'_>,
    endpoints: &[Endpoint],
    table: &Arc<QualityTable>,
) -> Result<Vec<Box<dyn Policy>>, ConfigError> {
    graph
        .specs
        .iter()
        .enumerate()
        .map(|(i, (spec, p))| compile_policy(PolicyIdx(i as u16), spec, p, &graph.names, endpoints, table))
        .collect()
}

/// The root policy's direct form (see [`Direct`]), when it has one; `default_output` is the tracking's
/// `default_output_tokens`. Call it after [`compile_policies`] succeeded (the root's targets are valid).
pub(super) fn direct_root(graph: &PolicyGraph<'_>, endpoints: &[Endpoint], default_output: u32) -> Option<Direct> {
    let (spec, p) = graph.specs.first()?;
    let targets = compile_targets(spec, p, &graph.names, endpoints).ok()?;
    Direct::of(spec, &targets, default_output)
}

/// The weighted targets of a policy at path `p` (every non-batch endpoint when it names none), checked.
fn compile_targets(
    spec: &PolicySpec,
    p: &str,
    names: &Names<'_>,
    endpoints: &[Endpoint],
) -> Result<Vec<WeightedTarget>, ConfigError> {
    compile_target_list(spec, &spec.targets, "targets", p, names, endpoints)
}

/// The weighted targets of list `field` (`targets`, `strong`) of a policy at path `p`, checked; an empty
/// `targets` is every non-batch endpoint.
fn compile_target_list(
    spec: &PolicySpec,
    list: &[TargetSpec],
    field: &str,
    p: &str,
    names: &Names<'_>,
    endpoints: &[Endpoint],
) -> Result<Vec<WeightedTarget>, ConfigError> {
    let targets: Vec<WeightedTarget> = if list.is_empty() && field == "targets" {
        endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.batch)
            .map(|(i, e)| WeightedTarget { target: Target::Endpoint(EndpointIdx(i as u16)), weight: e.weight })
            .collect()
    } else {
        list.iter()
            .enumerate()
            .map(|(i, t)| {
                let tp = format!("{p}.{field}[{i}]");
                let target = names.target(t.id(), &tp)?;
                if let Target::Endpoint(e) = target
                    && endpoints[e.get()].batch
                {
                    return Err(ConfigError::new(
                        tp,
                        format!("`{}` is a batch endpoint: only `batching` may send to it", t.id()),
                    ));
                }
                let weight = match (t, target) {
                    (TargetSpec::Weighted { weight, .. }, _) => {
                        check_range(&format!("{tp}.weight"), *weight, 0.0, f64::MAX)?;
                        *weight
                    }
                    (_, Target::Endpoint(e)) => endpoints[e.get()].weight,
                    _ => 1.0,
                };
                Ok(WeightedTarget { target, weight })
            })
            .collect::<Result<_, _>>()?
    };
    if targets.is_empty() {
        return Err(ConfigError::new(
            format!("{p}.{field}"),
            "expected at least one target that is not a batch endpoint",
        ));
    }
    if targets.len() > MAX_ENDPOINTS {
        return Err(ConfigError::new(
            format!("{p}.{field}"),
            format!("expected at most {MAX_ENDPOINTS} targets, found {}", targets.len()),
        ));
    }
    for (i, t) in list.iter().enumerate() {
        if let Some(j) = list[..i].iter().position(|o| o.id() == t.id()) {
            return Err(ConfigError::new(
                format!("{p}.{field}[{i}]"),
                format!(
                    "duplicate target `{}` (also {field}[{j}]): list each target once and give it a weight instead",
                    t.id()
                ),
            ));
        }
    }
    // Weighted random draws by these weights and usage routing scales them by quota headroom: with every weight
    // zero there is nothing to draw by (the selector would fall back to uniform), so say so here.
    if matches!(spec.kind, PolicyKind::Weighted | PolicyKind::Usage) && targets.iter().all(|t| t.weight == 0.0) {
        let source = if spec.targets.is_empty() {
            "without `targets` every non-batch endpoint is a target and its weight is the endpoint's `weight`"
        } else {
            "a target's weight is its `weight`, else its endpoint's `weight` (1 for a group)"
        };
        return Err(ConfigError::new(
            format!("{p}.targets"),
            format!("expected at least one positive weight, found all zero ({source})"),
        ));
    }
    Ok(targets)
}

/// The targets of a LiteLLM compat policy, which must all be endpoints (deployments of one model group).
fn endpoint_targets(
    spec: &PolicySpec,
    p: &str,
    targets: Vec<WeightedTarget>,
) -> Result<Vec<WeightedTarget>, ConfigError> {
    if let Some(i) = targets.iter().position(|t| matches!(t.target, Target::Policy(_))) {
        return Err(ConfigError::new(
            format!("{p}.targets[{i}]"),
            format!(
                "kind `{}` reproduces a LiteLLM model group and takes endpoints (deployments) as targets, not a group",
                spec.kind.name()
            ),
        ));
    }
    Ok(targets)
}

/// Compiles one policy at path `p`, index `idx`: its fields, its targets and its kind's settings.
fn compile_policy(
    idx: PolicyIdx,
    spec: &PolicySpec,
    p: &str,
    names: &Names<'_>,
    endpoints: &[Endpoint],
    table: &Arc<QualityTable>,
) -> Result<Box<dyn Policy>, ConfigError> {
    spec.check_fields(p)?;
    let targets = compile_targets(spec, p, names, endpoints)?;
    let buffer = spec.buffer.unwrap_or(0.0);
    check_range(&format!("{p}.buffer"), buffer, 0.0, 10.0)?;
    Ok(match spec.kind {
        PolicyKind::RoundRobin => Box::new(RoundRobin::new(idx, targets)),
        PolicyKind::Weighted => Box::new(WeightedRandom::new(targets)),
        PolicyKind::LeastOutstanding => Box::new(LeastOutstanding::new(targets)),
        PolicyKind::P2c => Box::new(PowerOfTwo::new(targets)),
        PolicyKind::Cost => Box::new(CostBased::new(targets)),
        PolicyKind::Fallback => Box::new(FallbackChain::new(targets)),
        PolicyKind::LitellmLeastBusy => Box::new(litellm::LeastBusy::new(endpoint_targets(spec, p, targets)?)),
        PolicyKind::LitellmUsageV2 => Box::new(litellm::UsageV2::new(endpoint_targets(spec, p, targets)?)),
        PolicyKind::LitellmCost => Box::new(litellm::Cost::new(endpoint_targets(spec, p, targets)?)),
        PolicyKind::LitellmLatency => {
            let ttl = spec.ttl.map_or(3_600 * crate::model::NANOS_PER_SEC, |d| d.nanos());
            if ttl == 0 {
                return Err(ConfigError::new(format!("{p}.ttl"), "expected a positive duration like \"1h\""));
            }
            Box::new(litellm::Latency::new(endpoint_targets(spec, p, targets)?, buffer, ttl))
        }
        PolicyKind::Latency => Box::new(LatencyBased::new(targets, buffer, spec.slow_threshold.map(|d| d.nanos()))),
        PolicyKind::Usage => {
            let threshold = spec.threshold.unwrap_or(0.8);
            if !(threshold > 0.0 && threshold < 1.0) {
                return Err(ConfigError::new(
                    format!("{p}.threshold"),
                    format!("expected a fraction strictly between 0 and 1, found {threshold}"),
                ));
            }
            let tiers = spec.tiers.clone().unwrap_or_default().into_iter().collect();
            Box::new(UsageBased::new(targets, threshold, tiers))
        }
        PolicyKind::Hybrid => {
            let w = spec.weights.ok_or_else(|| {
                ConfigError::new(
                    format!("{p}.weights"),
                    "expected weights = { cost = .., latency = .., load = .., quota = .. }",
                )
            })?;
            for (n, v) in [("cost", w.cost), ("latency", w.latency), ("load", w.load), ("quota", w.quota)] {
                check_range(&format!("{p}.weights.{n}"), v, 0.0, f64::MAX)?;
            }
            if w.cost + w.latency + w.load + w.quota <= 0.0 {
                return Err(ConfigError::new(
                    format!("{p}.weights"),
                    "expected at least one positive weight, found all zero",
                ));
            }
            Box::new(Hybrid::new(targets, w, buffer, spec.latency_ceiling.map(|d| d.nanos())))
        }
        PolicyKind::Conditional => {
            if spec.rules.is_empty() {
                return Err(ConfigError::new(
                    format!("{p}.rules"),
                    "expected at least one rule { when = {...}, target = \"...\" }",
                ));
            }
            let rules = spec
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let rp = format!("{p}.rules[{i}]");
                    let cond = Condition::compile(&r.when, &format!("{rp}.when"))
                        .map_err(|(path, m)| ConfigError::new(path, m))?;
                    Ok((cond, names.target(&r.target, &format!("{rp}.target"))?))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            let default = spec.default.as_deref().map(|d| names.target(d, &format!("{p}.default"))).transpose()?;
            Box::new(Conditional::new(rules, default))
        }
        PolicyKind::Sticky => {
            let key = spec.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
                ConfigError::new(format!("{p}.key"), "expected the metadata field to stick on, e.g. key = \"user\"")
            })?;
            let vnodes = spec.virtual_nodes.unwrap_or(64);
            if !(1..=1024).contains(&vnodes) {
                return Err(ConfigError::new(
                    format!("{p}.virtual_nodes"),
                    format!("expected 1..=1024, found {vnodes}"),
                ));
            }
            let target_names: Vec<String> = if spec.targets.is_empty() {
                endpoints.iter().filter(|e| !e.batch).map(|e| e.id.clone()).collect()
            } else {
                spec.targets.iter().map(|t| t.id().to_string()).collect()
            };
            let default = spec.default.as_deref().map(|d| names.target(d, &format!("{p}.default"))).transpose()?;
            Box::new(Sticky::new(key, targets, &target_names, vnodes, default))
        }
        PolicyKind::Threshold => {
            if spec.targets.is_empty() {
                return Err(ConfigError::new(
                    format!("{p}.targets"),
                    "expected the weak targets, e.g. targets = [\"small\"] (`strong` are the strong ones)",
                ));
            }
            let threshold = spec.threshold.ok_or_else(|| {
                ConfigError::new(
                    format!("{p}.threshold"),
                    "expected the difficulty above which requests go to the strong targets, e.g. threshold = 0.5",
                )
            })?;
            if !threshold.is_finite() {
                return Err(ConfigError::new(
                    format!("{p}.threshold"),
                    format!("expected a finite number on the difficulty scale, found {threshold}"),
                ));
            }
            if spec.strong.is_empty() {
                return Err(ConfigError::new(
                    format!("{p}.strong"),
                    "expected the strong targets, e.g. strong = [\"premium\"] (`targets` are the weak ones)",
                ));
            }
            let strong = compile_target_list(spec, &spec.strong, "strong", p, names, endpoints)?;
            if let Some(i) = spec.strong.iter().position(|s| spec.targets.iter().any(|t| t.id() == s.id())) {
                return Err(ConfigError::new(
                    format!("{p}.strong[{i}]"),
                    format!(
                        "`{}` is also a weak target (in `targets`): a target is strong or weak",
                        spec.strong[i].id()
                    ),
                ));
            }
            Box::new(Threshold::new(targets, strong, threshold))
        }
        PolicyKind::Quality => {
            let min_quality = spec.min_quality.ok_or_else(|| {
                ConfigError::new(
                    format!("{p}.min_quality"),
                    "expected the least predicted acceptance to meet, e.g. min_quality = 0.8",
                )
            })?;
            check_range(&format!("{p}.min_quality"), min_quality, 0.0, 1.0)?;
            Box::new(QualityBar::new(targets, min_quality, Arc::clone(table)))
        }
        PolicyKind::Cascade => {
            if idx.0 != 0 {
                return Err(ConfigError::new(
                    format!("{p}.kind"),
                    "kind `cascade` must be the root policy (a [[policies]] entry), not a group: its escalation \
                     after a rejected answer is driven from the root",
                ));
            }
            if spec.targets.is_empty() {
                return Err(ConfigError::new(
                    format!("{p}.targets"),
                    "expected the stages, cheapest first, e.g. targets = [\"small\", \"large\"]",
                ));
            }
            let v = spec.verifier.clone().unwrap_or_default();
            check_range(&format!("{p}.verifier.precision"), v.precision, 0.0, 1.0)?;
            check_range(&format!("{p}.verifier.recall"), v.recall, 0.0, 1.0)?;
            check_range(&format!("{p}.verifier.min_score"), v.min_score, 0.0, 1.0)?;
            if let Some(e) = &v.endpoint {
                names.endpoint(e, &format!("{p}.verifier.endpoint"))?;
            }
            if targets.len() < 2 {
                return Err(ConfigError::new(
                    format!("{p}.targets"),
                    "expected at least two stages, cheapest first: a cascade escalates from one to the next",
                ));
            }
            Box::new(Cascade::new(targets))
        }
        PolicyKind::Oracle => Box::new(CostBased::new(targets)),
    })
}

/// Every target of a `quality` policy must state an accuracy for every task class the configuration names
/// (its own entry or `default`) and a `default` (requests of other classes, or of none, may come): the policy
/// predicts from them, and a missing one is an error, never a silent default. A target that is a group is
/// checked through every endpoint it reaches. `reach` is every policy's reachable endpoints.
pub(super) fn check_quality_targets(
    graph: &PolicyGraph<'_>,
    reach: &[crate::policy::EndpointSet],
    endpoints: &[Endpoint],
    table: &QualityTable,
) -> Result<(), ConfigError> {
    for (spec, p) in graph.specs.iter().filter(|(s, _)| s.kind == PolicyKind::Quality) {
        let all: Vec<TargetSpec> = if spec.targets.is_empty() {
            endpoints.iter().filter(|e| !e.batch).map(|e| TargetSpec::Name(e.id.clone())).collect()
        } else {
            spec.targets.clone()
        };
        for (i, t) in all.iter().enumerate() {
            let path = if spec.targets.is_empty() { format!("{p}.targets") } else { format!("{p}.targets[{i}]") };
            let reached: Vec<EndpointIdx> = match graph.names.target(t.id(), &path)? {
                Target::Endpoint(e) => vec![e],
                Target::Policy(g) => (0..endpoints.len())
                    .map(|k| EndpointIdx(k as u16))
                    .filter(|&e| reach[g.0 as usize].contains(e))
                    .collect(),
            };
            for e in reached {
                let ep = &endpoints[e.get()];
                let mut named = table.named_classes().iter().map(String::as_str);
                let missing = named.find(|&c| table.accuracy(e, Some(c)).is_none());
                let what = match missing {
                    _ if ep.quality.is_empty() => Some("states no accuracy (`quality`)".to_string()),
                    Some(class) => Some(format!("states no accuracy for task class `{class}` (nor a `default`)")),
                    None if table.accuracy(e, None).is_none() => Some(
                        "states no `default` accuracy, which requests of the classes it does not list (or of none) need"
                            .to_string(),
                    ),
                    None => None,
                };
                if let Some(what) = what {
                    let class = missing.unwrap_or(crate::quality::DEFAULT_CLASS);
                    return Err(ConfigError::new(
                        path,
                        format!(
                            "endpoint `{}` {what}, and kind `quality` predicts from it: add `quality = {{ {class} = .. }}` \
                             to the endpoint",
                            ep.id
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
