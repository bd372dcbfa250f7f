//! The retry settings: LiteLLM's group retry, Portkey's target retry, the fallback chains and the retry
//! policy with its budget.

use super::super::group_retry::GroupRetry;
use super::super::target_retry::TargetRetry;
use super::graph::{PolicyGraph, policy_edges};
use super::names::Names;
use super::validate::validate_retry;
use crate::config::{ConfigError, GroupRetryConfig, PolicyKind, PolicySpec, RetryConfig, RouterConfig, TargetSpec};
use crate::model::{Endpoint, EndpointIdx, ErrorClass, ErrorMatch};
use crate::policy::{PolicyIdx, Target};

/// Compiles LiteLLM's order ([`GroupRetryConfig`]): the model groups (the root's own targets and every group the
/// fallbacks name), each with its fallback groups and its members, every endpoint it can reach.
pub(super) fn compile_group_retry(
    g: &GroupRetryConfig,
    graph: &PolicyGraph<'_>,
    policies_targets: &[Vec<EndpointIdx>],
    endpoint_count: usize,
) -> Result<GroupRetry, ConfigError> {
    let (specs, names) = (&graph.specs, &graph.names);
    // Every endpoint each policy can reach (groups are a tree: the cycle check ran above).
    fn reach(
        i: usize,
        specs: &[(&PolicySpec, String)],
        names: &Names<'_>,
        direct: &[Vec<EndpointIdx>],
        out: &mut Vec<EndpointIdx>,
    ) {
        for e in &direct[i] {
            if !out.contains(e) {
                out.push(*e);
            }
        }
        for (to, _) in policy_edges(specs[i].0, names) {
            reach(to, specs, names, direct, out);
        }
    }
    let closure: Vec<Vec<EndpointIdx>> = (0..specs.len())
        .map(|i| {
            let mut out = Vec::new();
            reach(i, specs, names, policies_targets, &mut out);
            out
        })
        .collect();
    let mut groups: Vec<(PolicyIdx, Vec<PolicyIdx>)> = Vec::new();
    let mut group_of = vec![u16::MAX; endpoint_count];
    let policy = |name: &str, path: &str| -> Result<PolicyIdx, ConfigError> {
        match names.policies.get(name) {
            Some(p) if p.0 != 0 => Ok(*p),
            _ => Err(ConfigError::new(
                path,
                format!("unknown model group `{name}`: expected a group name ({})", names.known()),
            )),
        }
    };
    // The model groups: the root's own targets (its rules, default and targets) and every group the
    // fallbacks name. Each is asked as a whole (an `order` fallback over tiers included); its members
    // are every endpoint it can reach.
    let mut model_groups: Vec<usize> = Vec::new();
    let root_children = policy_edges(specs[0].0, names).into_iter().map(|(to, _)| to);
    let named = g
        .fallbacks
        .iter()
        .flat_map(|(k, v)| std::iter::once(k).chain(v))
        .filter_map(|n| names.policies.get(n.as_str()).map(|p| p.0 as usize));
    for i in root_children.chain(named) {
        if i != 0 && !model_groups.contains(&i) {
            model_groups.push(i);
        }
    }
    for &i in &model_groups {
        let s = specs[i].0;
        let fallbacks = match g.fallbacks.get(&s.name) {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(j, f)| policy(f, &format!("policy.group_retry.fallbacks.{}[{j}]", s.name)))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        for e in &closure[i] {
            if group_of[e.get()] == u16::MAX {
                group_of[e.get()] = groups.len() as u16;
            }
        }
        groups.push((PolicyIdx(i as u16), fallbacks));
    }
    for k in g.fallbacks.keys() {
        policy(k, &format!("policy.group_retry.fallbacks.{k}"))?;
    }
    Ok(GroupRetry {
        num_retries: g.num_retries,
        retry_after: g.retry_after.nanos(),
        groups,
        group_of,
        members: closure,
    })
}

/// Compiles the root's `target_retry` (Portkey's order), which excludes `group_retry`.
pub(super) fn compile_target_retry_setting(
    graph: &PolicyGraph<'_>,
    cfg: &RouterConfig,
) -> Result<Option<TargetRetry>, ConfigError> {
    let root = &cfg.policy;
    Ok(match &root.target_retry {
        Some(_) if root.group_retry.is_some() => {
            return Err(ConfigError::new(
                "policy.target_retry",
                "`target_retry` (Portkey's order) and `group_retry` (LiteLLM's) exclude each other: keep one",
            ));
        }
        Some(t) => Some(compile_target_retry(t, &graph.specs, &graph.names, cfg)?),
        None => None,
    })
}

/// Compiles Portkey's retry order: each fallback policy's children, and each endpoint's fallback ancestors on
/// its first path from the root (the policy graph is acyclic: checked before).
fn compile_target_retry(
    t: &crate::TargetRetryConfig,
    specs: &[(&PolicySpec, String)],
    names: &Names<'_>,
    cfg: &RouterConfig,
) -> Result<TargetRetry, ConfigError> {
    let resolve = |name: &str| -> Option<Target> {
        names
            .endpoints
            .get(name)
            .map(|&e| Target::Endpoint(e))
            .or_else(|| names.policies.get(name).map(|&p| Target::Policy(p)))
    };
    let all = || {
        (0..cfg.endpoints.len()).filter(|&i| !cfg.endpoints[i].batch).map(|i| Target::Endpoint(EndpointIdx(i as u16)))
    };
    // Every child of every policy, in order (a policy that names none has every non-batch endpoint).
    let kids: Vec<Vec<Target>> = specs
        .iter()
        .map(|(s, _)| {
            let named: Vec<&str> = if s.kind == PolicyKind::Conditional {
                s.rules.iter().map(|r| r.target.as_str()).chain(s.default.as_deref()).collect()
            } else {
                s.targets.iter().map(TargetSpec::id).chain(s.default.as_deref()).collect()
            };
            if named.is_empty() && s.kind != PolicyKind::Conditional {
                all().collect()
            } else {
                named.into_iter().filter_map(resolve).collect()
            }
        })
        .collect();
    let mut ancestors: Vec<Option<Vec<(PolicyIdx, u16)>>> = vec![None; cfg.endpoints.len()];
    fn walk(
        p: usize,
        path: &mut Vec<(PolicyIdx, u16)>,
        specs: &[(&PolicySpec, String)],
        kids: &[Vec<Target>],
        out: &mut [Option<Vec<(PolicyIdx, u16)>>],
    ) {
        let fallback = specs[p].0.kind == PolicyKind::Fallback;
        for (pos, child) in kids[p].iter().enumerate() {
            if fallback {
                path.push((PolicyIdx(p as u16), pos as u16));
            }
            match *child {
                Target::Endpoint(e) => {
                    if out[e.get()].is_none() {
                        out[e.get()] = Some(path.iter().rev().copied().collect());
                    }
                }
                Target::Policy(q) => walk(q.0 as usize, path, specs, kids, out),
            }
            if fallback {
                path.pop();
            }
        }
    }
    walk(0, &mut Vec::new(), specs, &kids, &mut ancestors);
    let mut moves_on: Vec<Option<Vec<ErrorMatch>>> = vec![None; specs.len()];
    for (name, classes) in &t.fallback_on {
        let path = format!("policy.target_retry.fallback_on.{name}");
        match names.policies.get(name.as_str()) {
            Some(p) if specs[p.0 as usize].0.kind == PolicyKind::Fallback => {
                moves_on[p.0 as usize] = Some(classes.clone());
            }
            Some(_) => return Err(ConfigError::new(path, format!("`{name}` is not a `fallback` policy"))),
            None => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "unknown fallback policy `{name}`: expected a fallback group or the root ({})",
                        names.known()
                    ),
                ));
            }
        }
    }
    if t.on.is_empty() && t.attempts > 0 {
        return Err(ConfigError::new("policy.target_retry.on", "expected at least one error class or status to retry"));
    }
    let children = kids
        .into_iter()
        .enumerate()
        .map(|(i, k)| if specs[i].0.kind == PolicyKind::Fallback { k } else { Vec::new() })
        .collect();
    Ok(TargetRetry {
        attempts: t.attempts,
        on: t.on.clone(),
        base_delay: t.base_delay.nanos(),
        ancestors: ancestors.into_iter().map(Option::unwrap_or_default).collect(),
        children,
        moves_on,
    })
}

/// Compiles the root's `fallbacks`: per error class, the chain of endpoints tried in turn (no batch endpoint).
pub(super) fn compile_fallbacks(
    root: &PolicySpec,
    names: &Names<'_>,
    endpoints: &[Endpoint],
) -> Result<[Vec<EndpointIdx>; 4], ConfigError> {
    let mut fallbacks: [Vec<EndpointIdx>; 4] = Default::default();
    if let Some(spec) = &root.fallbacks {
        for class in ErrorClass::ALL {
            let chain = spec.chain(class);
            fallbacks[class.index()] = chain
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let path = match spec {
                        crate::config::FallbackSpec::List(_) => format!("policy.fallbacks[{i}]"),
                        crate::config::FallbackSpec::PerClass(_) => {
                            format!("policy.fallbacks.{}[{i}]", class.name())
                        }
                    };
                    let e = names.endpoint(id, &path)?;
                    if endpoints[e.get()].batch {
                        return Err(ConfigError::new(
                            path,
                            format!("`{id}` is a batch endpoint and cannot serve a fallback"),
                        ));
                    }
                    Ok(e)
                })
                .collect::<Result<_, _>>()?;
        }
    }
    Ok(fallbacks)
}

/// The root's retry policy, checked: its `retry`, else one attempt per endpoint of the longest fallback chain
/// (no same-endpoint retry, no budget).
pub(super) fn compile_retry(root: &PolicySpec, fallbacks: &[Vec<EndpointIdx>; 4]) -> Result<RetryConfig, ConfigError> {
    let retry = match &root.retry {
        Some(r) => r.clone(),
        None => RetryConfig {
            max_attempts: 1 + fallbacks.iter().map(Vec::len).max().unwrap_or(0) as u32,
            same_endpoint: false,
            budget: None,
            ..RetryConfig::default()
        },
    };
    validate_retry(&retry, "policy.retry")?;
    Ok(retry)
}
