//! The policy graph: the root policy and its groups, named and indexed, their edges (the policies each targets),
//! the check that they form a tree, and what each can reach.

use super::names::Names;
use crate::config::{ConfigError, GroupRetryConfig, PolicyKind, PolicySpec, RouterConfig};
use crate::model::{Endpoint, EndpointIdx};
use crate::policy::{EndpointSet, PolicyIdx};
use std::collections::BTreeMap;

/// Deepest nesting of groups a router accepts (root -> group -> group ... counts the groups below the root).
pub const MAX_GROUP_DEPTH: usize = 16;

/// Most groups one router can hold.
pub const MAX_GROUPS: usize = 4096;

/// The policies a spec targets, each with the path of the field that names it (`targets[0]`, `rules[1].target`,
/// `default`).
pub(super) fn policy_edges(s: &PolicySpec, names: &Names<'_>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut add = |name: &str, field: String| {
        if let Some(p) = names.policies.get(name) {
            out.push((p.0 as usize, field));
        }
    };
    s.targets.iter().enumerate().for_each(|(i, t)| add(t.id(), format!("targets[{i}]")));
    s.strong.iter().enumerate().for_each(|(i, t)| add(t.id(), format!("strong[{i}]")));
    s.rules.iter().enumerate().for_each(|(i, r)| add(&r.target, format!("rules[{i}].target")));
    if let Some(d) = &s.default {
        add(d, "default".to_string());
    }
    out
}

/// Rejects a policy graph with a cycle (naming the field that closes it and the cycle itself), or nested
/// deeper than [`MAX_GROUP_DEPTH`].
fn check_cycles(specs: &[(&PolicySpec, String)], names: &Names<'_>) -> Result<(), ConfigError> {
    let edges: Vec<Vec<(usize, String)>> = specs.iter().map(|(s, _)| policy_edges(s, names)).collect();
    // 0 = unvisited, 1 = on the stack, 2 = done; height = longest chain of groups below a policy.
    struct Walk<'a> {
        specs: &'a [(&'a PolicySpec, String)],
        edges: &'a [Vec<(usize, String)>],
        color: Vec<u8>,
        height: Vec<usize>,
        stack: Vec<usize>,
    }
    fn dfs(w: &mut Walk<'_>, v: usize) -> Result<(), ConfigError> {
        w.color[v] = 1;
        w.stack.push(v);
        let mut height = 0;
        for (to, field) in &w.edges[v] {
            let to = *to;
            if w.color[to] == 1 {
                let pos = w.stack.iter().position(|&x| x == to).unwrap_or(0);
                let mut cycle: Vec<&str> = w.stack[pos..].iter().map(|&i| w.specs[i].0.name.as_str()).collect();
                cycle.push(&w.specs[to].0.name);
                return Err(ConfigError::new(
                    format!("{}.{field}", w.specs[v].1),
                    format!(
                        "policies target each other in a cycle: {}; expected groups that form a tree",
                        cycle.join(" -> ")
                    ),
                ));
            }
            if w.color[to] == 0 {
                dfs(w, to)?;
            }
            height = height.max(1 + w.height[to]);
            if height > MAX_GROUP_DEPTH {
                return Err(ConfigError::new(
                    format!("{}.{field}", w.specs[v].1),
                    format!("groups nest more than {MAX_GROUP_DEPTH} levels deep below `{}`", w.specs[v].0.name),
                ));
            }
        }
        w.height[v] = height;
        w.stack.pop();
        w.color[v] = 2;
        Ok(())
    }
    let n = specs.len();
    let mut w = Walk { specs, edges: &edges, color: vec![0; n], height: vec![0; n], stack: Vec::new() };
    for v in 0..n {
        if w.color[v] == 0 {
            dfs(&mut w, v)?;
        }
    }
    Ok(())
}

/// The root policy and its groups, in [`PolicyIdx`] order (the root first), each with the path of its table
/// (`policy`, `groups[j]`), and the names a config may refer to.
pub(super) struct PolicyGraph<'c> {
    /// Every policy spec with its path.
    pub(super) specs: Vec<(&'c PolicySpec, String)>,
    /// Endpoint ids and policy names.
    pub(super) names: Names<'c>,
}

impl<'c> PolicyGraph<'c> {
    /// Names the endpoints and the policies: at most [`MAX_GROUPS`] groups, each policy with a non-empty name
    /// unique among policies and endpoints, and root-only fields on the root only.
    pub(super) fn name_policies(cfg: &'c RouterConfig) -> Result<Self, ConfigError> {
        let mut names = Names {
            endpoints: cfg.endpoints.iter().enumerate().map(|(i, e)| (e.id.as_str(), EndpointIdx(i as u16))).collect(),
            policies: BTreeMap::new(),
        };
        if cfg.groups.len() > MAX_GROUPS {
            return Err(ConfigError::new(
                "groups",
                format!("expected at most {MAX_GROUPS} groups, found {}", cfg.groups.len()),
            ));
        }
        let mut specs: Vec<(&PolicySpec, String)> = vec![(&cfg.policy, "policy".to_string())];
        specs.extend(cfg.groups.iter().enumerate().map(|(j, g)| (g, format!("groups[{j}]"))));
        for (i, (spec, p)) in specs.iter().enumerate() {
            if spec.name.trim().is_empty() {
                return Err(ConfigError::new(format!("{p}.name"), "expected a non-empty name"));
            }
            if names.endpoints.contains_key(spec.name.as_str()) || names.policies.contains_key(spec.name.as_str()) {
                return Err(ConfigError::new(
                    format!("{p}.name"),
                    format!("duplicate name `{}`: names of policies, groups and endpoints must be unique", spec.name),
                ));
            }
            if i > 0
                && let Some(f) = spec.root_fields().first()
            {
                return Err(ConfigError::new(
                    format!("{p}.{f}"),
                    format!("`{f}` is only allowed on the root policy, not on a group"),
                ));
            }
            names.policies.insert(spec.name.as_str(), PolicyIdx(i as u16));
        }
        Ok(PolicyGraph { specs, names })
    }

    /// Rejects a graph with a cycle or nested deeper than [`MAX_GROUP_DEPTH`] (see [`check_cycles`]).
    pub(super) fn check_cycles(&self) -> Result<(), ConfigError> {
        check_cycles(&self.specs, &self.names)
    }

    /// The endpoint targets of every policy (all non-batch endpoints when it names none).
    pub(super) fn endpoint_targets(&self, endpoints: &[Endpoint]) -> Vec<Vec<EndpointIdx>> {
        let names = &self.names;
        self.specs
            .iter()
            .map(|(s, _)| {
                if s.kind == PolicyKind::Conditional {
                    let named = s.rules.iter().map(|r| r.target.as_str()).chain(s.default.as_deref());
                    named.filter_map(|n| names.endpoints.get(n).copied()).collect()
                } else if s.targets.is_empty() {
                    (0..endpoints.len()).filter(|&i| !endpoints[i].batch).map(|i| EndpointIdx(i as u16)).collect()
                } else {
                    let named = s.targets.iter().chain(&s.strong);
                    named.filter_map(|t| names.endpoints.get(t.id()).copied()).collect()
                }
            })
            .collect()
    }

    /// Policies the root can reach (through its targets, and through the groups `group_retry`'s fallbacks
    /// name): a scenario's groups are shared by all its policies, and only this root's own ones define its
    /// model groups and latency groups.
    pub(super) fn reachable_from_root(&self, group_retry: Option<&GroupRetryConfig>) -> Vec<bool> {
        let (specs, names) = (&self.specs, &self.names);
        let mut seen = vec![false; specs.len()];
        let mut stack = vec![0usize];
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v], true) {
                continue;
            }
            stack.extend(policy_edges(specs[v].0, names).into_iter().map(|(to, _)| to));
        }
        if let Some(g) = group_retry {
            for name in g.fallbacks.values().flatten().chain(g.fallbacks.keys()) {
                if let Some(p) = names.policies.get(name.as_str()) {
                    let mut stack = vec![p.0 as usize];
                    while let Some(v) = stack.pop() {
                        if std::mem::replace(&mut seen[v], true) {
                            continue;
                        }
                        stack.extend(policy_edges(specs[v].0, names).into_iter().map(|(to, _)| to));
                    }
                }
            }
        }
        seen
    }

    /// Every endpoint each policy can reach, through the policies it targets (a tree: the cycle check ran).
    pub(super) fn reach_sets(&self, policies_targets: &[Vec<EndpointIdx>]) -> Vec<EndpointSet> {
        let (specs, names) = (&self.specs, &self.names);
        (0..specs.len())
            .map(|i| {
                let mut set = EndpointSet::default();
                let mut seen = vec![false; specs.len()];
                let mut stack = vec![i];
                while let Some(v) = stack.pop() {
                    if std::mem::replace(&mut seen[v], true) {
                        continue;
                    }
                    policies_targets[v].iter().for_each(|&e| set.insert(e));
                    stack.extend(policy_edges(specs[v].0, names).into_iter().map(|(to, _)| to));
                }
                set
            })
            .collect()
    }

    /// The policies' names, in [`PolicyIdx`] order.
    pub(super) fn policy_names(&self) -> Vec<String> {
        self.specs.iter().map(|(s, _)| s.name.clone()).collect()
    }
}
