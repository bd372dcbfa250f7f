//! `routesim export`: a policy (a scenario's, or `routesim tune`'s `best-policy.toml`) written as the closest
//! LiteLLM or Portkey config, with a comment block listing every part of the policy the target cannot express.
//!
//! [`litellm`] and [`portkey`] each build the config text and the list of what they could not carry over.
//! `routesim export` then imports the written config back ([`crate::import`]), runs the policy and that
//! approximation on the scenario's traffic, and reports the metric cost of the approximation (paired
//! differences with their 95% intervals), also written into the comment block.

pub mod litellm;
pub mod portkey;

use crate::provider::EndpointSpec;
use router_core::{PolicySpec, TargetSpec};

/// A policy with the groups and endpoints it refers to.
pub struct Source<'a> {
    /// The policy.
    pub policy: &'a PolicySpec,
    /// The scenario's groups.
    pub groups: &'a [PolicySpec],
    /// The scenario's endpoints.
    pub endpoints: &'a [EndpointSpec],
}

impl<'a> Source<'a> {
    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&'a PolicySpec> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The endpoint with id `id`.
    pub fn endpoint(&self, id: &str) -> Option<&'a EndpointSpec> {
        self.endpoints.iter().find(|e| e.id == id)
    }

    /// The target names of `spec` (every non-batch endpoint when it names none).
    pub fn targets(&self, spec: &PolicySpec) -> Vec<(String, Option<f64>)> {
        if spec.targets.is_empty() {
            return self.endpoints.iter().filter(|e| !e.batch).map(|e| (e.id.clone(), None)).collect();
        }
        spec.targets
            .iter()
            .map(|t| match t {
                TargetSpec::Name(n) => (n.clone(), None),
                TargetSpec::Weighted { id, weight } => (id.clone(), Some(*weight)),
            })
            .collect()
    }

    /// The endpoints `spec` can reach, in order, each once.
    pub fn closure(&self, spec: &PolicySpec) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(spec, &mut out, 0);
        out
    }

    fn walk(&self, spec: &PolicySpec, out: &mut Vec<String>, depth: usize) {
        if depth > router_core::MAX_GROUP_DEPTH + 1 {
            return;
        }
        let mut names: Vec<String> = self.targets(spec).into_iter().map(|(n, _)| n).collect();
        names.extend(spec.rules.iter().map(|r| r.target.clone()));
        names.extend(spec.default.clone());
        for n in names {
            if let Some(g) = self.group(&n) {
                self.walk(g, out, depth + 1);
            } else if !out.contains(&n) {
                out.push(n);
            }
        }
    }
}

/// The error classes as HTTP status codes a gateway config names.
pub fn codes_of(classes: &[router_core::ErrorClass]) -> Vec<u16> {
    use router_core::ErrorClass;
    let mut out = Vec::new();
    for c in classes {
        match c {
            ErrorClass::RateLimited => out.push(429),
            ErrorClass::Server => out.extend([500, 502, 503, 504]),
            ErrorClass::Timeout => out.push(408),
            ErrorClass::Other => {}
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A comment block: `prefix` before every line.
pub fn comment_block(prefix: &str, title: &str, lines: &[String]) -> String {
    let mut s = format!("{prefix} {title}\n");
    if lines.is_empty() {
        s += &format!("{prefix}   (nothing: the config expresses the whole policy)\n");
    }
    for l in lines {
        s += &format!("{prefix}   - {l}\n");
    }
    s
}
