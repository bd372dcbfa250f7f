//! What a request's `model` means, and which endpoints may answer it.
//!
//! The rule (also in the README's "Config"):
//!
//! - `auto`, `routesim`, the served policy's name, or a `model` value its conditional rules test (`when = { model =
//!   "gpt-4o" }`): the policy chooses among all its endpoints (its rules see the `model`);
//! - the name of a `[[groups]]` entry: that group's policy chooses among the endpoints it reaches;
//! - an endpoint's id: that endpoint; an endpoint's `model` or `upstream.model`: the endpoints serving it, the
//!   first eligible in config order (then the next on a retry);
//! - anything else: 404 `model_not_found`, before anything is sent.
//!
//! Retries and fallbacks stay inside the set the model names. A client key's `models` list (`name` or
//! `prefix*`) then limits the endpoints that may answer to those whose id, `model` or `upstream.model` it
//! matches; when none of the model's endpoints is left, the request is denied (403 `model_not_allowed`).
//! The rule is [`router_core::Scope`] per request: a chooser and a set of excluded endpoints, which
//! router-core honours on the first attempt, retries and fallbacks alike.

use crate::config::ResolvedUpstream;
use router_core::condition::RawValue;
use router_core::policy::EndpointSet;
use router_core::{Chooser, Endpoint, EndpointIdx, PolicySpec, Router, Scope};
use std::collections::HashMap;

/// The model names a gateway serves.
#[derive(Debug)]
pub struct ModelTable {
    names: HashMap<String, Scope>,
    /// Per endpoint: the names a key's `models` pattern may match (id, model, upstream model).
    endpoint_names: Vec<Vec<String>>,
    /// The names `/v1/models` lists, in order, with who owns them.
    listed: Vec<(String, String, Scope)>,
}

/// The `model` that means the served policy.
pub const AUTO: &str = "auto";

/// Another name of the served policy: the model `routesim load` / `routesim live` send, and the model
/// group the LiteLLM export routes.
pub const ROUTESIM: &str = "routesim";

impl ModelTable {
    /// The table of `router` (the served `policy` and its `groups`) over `endpoints` and their `upstreams`.
    pub fn new(
        router: &Router,
        policy: &PolicySpec,
        groups: &[PolicySpec],
        endpoints: &[Endpoint],
        upstreams: &[ResolvedUpstream],
    ) -> ModelTable {
        let n = endpoints.len();
        let excluding = |keep: &dyn Fn(usize) -> bool| {
            let mut ex = EndpointSet::default();
            (0..n).filter(|&i| !keep(i)).for_each(|i| ex.insert(EndpointIdx(i as u16)));
            ex
        };
        let mut names: HashMap<String, Scope> = HashMap::new();
        let mut listed = Vec::new();
        let root = Scope::default();
        for name in [AUTO, ROUTESIM, router.name()] {
            if names.insert(name.to_string(), root).is_none() {
                listed.push((name.to_string(), "routesim".to_string(), root));
            }
        }
        // Models the policy's rules test: routed by the policy, whose rules see them.
        let mut tested = Vec::new();
        for spec in std::iter::once(policy).chain(groups) {
            spec.rules.iter().for_each(|r| model_values(&r.when, false, &mut tested));
        }
        for m in tested {
            if !names.contains_key(&m) {
                names.insert(m.clone(), root);
                listed.push((m, "routesim".to_string(), root));
            }
        }
        // Groups: every policy of the router other than the root (index 0).
        let mut i = 1u16;
        while let Some(name) = router.policy_name(router_core::policy::PolicyIdx(i)) {
            let p = router_core::policy::PolicyIdx(i);
            let reach = router.reachable(p);
            let scope =
                Scope { chooser: Chooser::Policy(p), excluded: excluding(&|e| reach.contains(EndpointIdx(e as u16))) };
            if !names.contains_key(name) {
                names.insert(name.to_string(), scope);
                listed.push((name.to_string(), "routesim".to_string(), scope));
            }
            i += 1;
        }
        let endpoint_names: Vec<Vec<String>> = endpoints
            .iter()
            .zip(upstreams)
            .map(|(e, u)| {
                let mut v = vec![e.id.clone()];
                for m in [&e.model, &u.model] {
                    if !m.is_empty() && !v.contains(m) {
                        v.push(m.clone());
                    }
                }
                v
            })
            .collect();
        for (i, e) in endpoints.iter().enumerate() {
            if e.batch || names.contains_key(&e.id) {
                continue;
            }
            let scope = Scope { chooser: Chooser::InOrder, excluded: excluding(&|j| j == i) };
            names.insert(e.id.clone(), scope);
            let owner = if e.provider.is_empty() { "routesim".to_string() } else { e.provider.clone() };
            listed.push((e.id.clone(), owner, scope));
        }
        // Model names: the endpoints serving each (one name may be served by several).
        let mut models: Vec<String> = Vec::new();
        for (i, e) in endpoints.iter().enumerate() {
            if e.batch {
                continue;
            }
            for m in &endpoint_names[i][1..] {
                if !names.contains_key(m) && !models.contains(m) {
                    models.push(m.clone());
                }
            }
        }
        for m in models {
            let serves = |j: usize| !endpoints[j].batch && endpoint_names[j][1..].contains(&m);
            let scope = Scope { chooser: Chooser::InOrder, excluded: excluding(&serves) };
            names.insert(m.clone(), scope);
            listed.push((m, "routesim".to_string(), scope));
        }
        ModelTable { names, endpoint_names, listed }
    }

    /// The scope of a request for `model`; `None` for a model the gateway does not serve.
    pub fn resolve(&self, model: &str) -> Option<Scope> {
        self.names.get(model).copied()
    }

    /// The endpoints a key with `patterns` (its `models`; empty: any) may not be answered by.
    pub fn excluded_by_key(&self, patterns: &[String]) -> EndpointSet {
        let mut ex = EndpointSet::default();
        if patterns.is_empty() {
            return ex;
        }
        for (i, names) in self.endpoint_names.iter().enumerate() {
            if !names.iter().any(|n| crate::auth::keys::model_allowed(patterns, n)) {
                ex.insert(EndpointIdx(i as u16));
            }
        }
        ex
    }

    /// Whether a scope leaves any endpoint.
    pub fn any_left(&self, scope: &Scope) -> bool {
        (0..self.endpoint_names.len()).any(|i| !scope.excluded.contains(EndpointIdx(i as u16)))
    }

    /// The names `/v1/models` lists for a key with `patterns` (empty: any): (name, owner), those with no
    /// endpoint left for the key left out.
    pub fn listing(&self, patterns: &[String]) -> Vec<(&str, &str)> {
        let key = self.excluded_by_key(patterns);
        self.listed
            .iter()
            .filter(|(_, _, s)| self.any_left(&Scope { chooser: s.chooser, excluded: s.excluded.union(key) }))
            .map(|(n, o, _)| (n.as_str(), o.as_str()))
            .collect()
    }
}

/// The strings a condition compares the field `model` with (`model = "x"`, `model = { "$in" = [...] }`,
/// inside `$and` / `$or` / `$not`), pushed to `out`. `under_model` is true inside the operand of `model`.
fn model_values(v: &RawValue, under_model: bool, out: &mut Vec<String>) {
    match v {
        RawValue::Str(s) if under_model && !out.contains(s) => out.push(s.clone()),
        RawValue::List(items) => items.iter().for_each(|i| model_values(i, under_model, out)),
        RawValue::Map(m) => {
            for (k, v) in m {
                let field = k.strip_prefix("metadata.").unwrap_or(k);
                if field == "model" {
                    model_values(v, true, out);
                } else if k.starts_with('$') {
                    model_values(v, under_model, out);
                }
            }
        }
        _ => {}
    }
}
