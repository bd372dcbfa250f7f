//! `routesim import portkey`: a Portkey gateway config (JSON) into router-core terms.
//!
//! It follows `src/handlers/handlerUtils.ts` (`tryTargetsRecursively`) and `src/services/conditionalRouter.ts`
//! of Portkey-AI/gateway (commit 669825c): a node with a `strategy` chooses among its `targets`, which nest to
//! any depth; a leaf (a `provider` or `virtual_key`) is an endpoint.
//!
//! - `single` takes the first target (`fallback` over it); `loadbalance` is `weighted` (a missing weight is 1;
//!   0 drains a target), with `sticky_session` (`hash_fields`, `ttl`) it is `sticky`; `fallback` is `fallback`;
//!   `conditional` is `conditional` with the same query operators (`$regex` is not modelled: an error).
//! - Retries and fallbacks follow Portkey's order ([`router_core::TargetRetryConfig`] on the root): `retry`
//!   (`attempts`, `on_status_codes`) retries the same target; each `fallback` node's own `on_status_codes`
//!   (absent: any error) decide when it moves to its next target; a load balancer never draws again. The code
//!   lists carry over exactly ([`match_of`]): a list naming 503 but not 500 retries a 503 and not a 500.
//! - `request_timeout` (ms), `cache` (`simple`, `max_age`) and `override_params.model` (inherited by nested
//!   targets, as Portkey merges them) are read.
//! - Keys that change routing but are not modelled are an error naming them; other unknown keys a warning.

use super::yaml::parse_json;
use super::{ClassDraft, EndpointDraft, ImportError, Imported, env_reference, slug};
use crate::import::scenario::secs;
use router_core::{
    CacheConfig, Duration, ErrorClass, ErrorMatch, PolicyKind, PolicySpec, RetryConfig, RuleSpec, TargetRetryConfig,
    TargetSpec, TrackingConfig, condition::RawValue,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The strategy modes routesim reproduces.
pub const MODES: [&str; 4] = ["single", "loadbalance", "fallback", "conditional"];

/// One node of a Portkey config (the root, a strategy node or a leaf target).
#[derive(Debug, Default, Deserialize)]
pub struct Node {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    strategy: Option<Strategy>,
    #[serde(default)]
    targets: Vec<Node>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    virtual_key: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    custom_host: Option<String>,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    override_params: Option<OverrideParams>,
    #[serde(default)]
    retry: Option<Retry>,
    #[serde(default)]
    request_timeout: Option<f64>,
    #[serde(default)]
    cache: Option<Cache>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Strategy {
    mode: String,
    #[serde(default)]
    on_status_codes: Option<Vec<u16>>,
    #[serde(default)]
    conditions: Vec<Condition>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    sticky_session: Option<Sticky>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Condition {
    query: Value,
    then: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sticky {
    hash_fields: Vec<String>,
    #[serde(default)]
    ttl: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct OverrideParams {
    #[serde(default)]
    model: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Retry {
    attempts: u32,
    #[serde(default)]
    on_status_codes: Option<Vec<u16>>,
    #[serde(default)]
    use_retry_after_header: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cache {
    mode: String,
    #[serde(default)]
    max_age: Option<f64>,
}

/// Keys that change Portkey's routing but are not modelled.
const NODE_NOT_MODELLED: [&str; 3] = ["cb_config", "circuit_breaker", "forward_headers_routing"];
const STRATEGY_NOT_MODELLED: [&str; 1] = ["cb_config"];

/// Portkey's default retry status codes.
const DEFAULT_RETRY_CODES: [u16; 5] = [429, 500, 502, 503, 504];

/// What a status code of Portkey's `on_status_codes` names in routesim: 429 is the `rate_limited` class (which
/// is 429 and nothing else), 408 the `timeout` class (Portkey answers 408 when its `request_timeout` runs out,
/// routesim's client timeout), any other code that status alone (a `server` failure answered 500 is not one
/// answered 503).
pub fn match_of(code: u16) -> ErrorMatch {
    match code {
        429 => ErrorMatch::Class(ErrorClass::RateLimited),
        408 => ErrorMatch::Class(ErrorClass::Timeout),
        _ => ErrorMatch::Status(code),
    }
}

/// The walk over a config's node tree: what it has built so far (endpoints, groups, classes) and noted.
struct Walk<'a> {
    file: &'a Path,
    text: &'a str,
    endpoints: Vec<EndpointDraft>,
    groups: Vec<PolicySpec>,
    balancing: Vec<String>,
    names: Vec<String>,
    classes: Vec<ClassDraft>,
    warnings: Vec<String>,
    assumptions: Vec<String>,
    approximations: Vec<String>,
    /// Fallback group name -> the error classes of its `on_status_codes`.
    fallback_on: BTreeMap<String, Vec<ErrorMatch>>,
    longest_fallback: u32,
}

impl Walk<'_> {
    fn err(&self, path: &str, msg: impl Into<String>) -> ImportError {
        ImportError::at(self.file, self.text, path, msg)
    }

    fn unique(&mut self, base: String) -> String {
        let mut n = base.clone();
        let mut k = 2;
        while self.names.contains(&n) {
            n = format!("{base}-{k}");
            k += 1;
        }
        self.names.push(n.clone());
        n
    }

    fn unknown(&mut self, path: &str, other: &BTreeMap<String, Value>, routing: &[&str]) -> Result<(), ImportError> {
        if let Some(k) = other.keys().find(|k| routing.contains(&k.as_str())) {
            return Err(self.err(
                &format!("{path}{k}"),
                format!("`{k}` changes routing but routesim does not model it; remove it to simulate without it"),
            ));
        }
        self.warnings.extend(other.keys().map(|k| format!("{path}{k}")));
        Ok(())
    }

    /// Imports `node` at `path` (`""` for the root); returns its endpoint id or group name. A leaf is an
    /// endpoint ([`Walk::leaf`]); a strategy node's targets are imported first, then its mode makes it a group
    /// ([`Walk::fallback`], [`Walk::loadbalance`], [`Walk::conditional`]; `single` is a `fallback` over its first).
    fn node(&mut self, node: &Node, path: &str, model: Option<&str>, root: bool) -> Result<String, ImportError> {
        let at = NodePath(path);
        self.unknown(
            &if path.is_empty() { String::new() } else { format!("{path}.") },
            &node.other,
            &NODE_NOT_MODELLED,
        )?;
        if let Some(o) = &node.override_params {
            self.warnings.extend(o.other.keys().map(|k| format!("{}.{k}", at.key("override_params"))));
        }
        let model = node.override_params.as_ref().and_then(|o| o.model.as_deref()).or(model);
        if !root {
            if node.retry.is_some() {
                self.approximations.push(format!("{}: a nested retry is applied router-wide", at.key("retry")));
            }
            if node.request_timeout.is_some() {
                self.approximations
                    .push(format!("{}: a nested timeout is applied router-wide", at.key("request_timeout")));
            }
        }
        let Some(strategy) = &node.strategy else {
            if !node.targets.is_empty() {
                return Err(self.err(&at.key("strategy"), "expected a `strategy` on a node with `targets`"));
            }
            return self.leaf(node, path, model);
        };
        self.unknown(&format!("{}.", at.key("strategy")), &strategy.other, &STRATEGY_NOT_MODELLED)?;
        if !MODES.contains(&strategy.mode.as_str()) {
            return Err(self.err(
                &at.key("strategy.mode"),
                format!("unknown strategy mode `{}`: expected one of {}", strategy.mode, MODES.join(", ")),
            ));
        }
        if node.targets.is_empty() {
            return Err(
                self.err(&at.key("targets"), format!("expected at least one target for mode `{}`", strategy.mode))
            );
        }
        let name = self.unique(match &node.name {
            Some(n) => slug(n),
            None if root => "portkey".into(),
            None => format!("pk-{}", slug(&path.replace(['[', ']'], "").replace('.', "-"))),
        });
        // Targets first (they may be referenced by name).
        let mut children = Vec::new();
        for (i, t) in node.targets.iter().enumerate() {
            let cp = format!("{}[{i}]", at.key("targets"));
            children.push(self.node(t, &cp, model, false)?);
        }
        let mut spec = PolicySpec::new(name.clone(), PolicyKind::Fallback);
        match strategy.mode.as_str() {
            "single" => spec.targets = vec![TargetSpec::Name(children[0].clone())],
            "fallback" => self.fallback(&mut spec, strategy, &children, at)?,
            "loadbalance" => self.loadbalance(&mut spec, node, strategy, &children, at)?,
            _ => self.conditional(&mut spec, node, strategy, &children, at)?,
        }
        self.groups.push(spec);
        Ok(name)
    }

    /// A `fallback` node: its children in order; its `on_status_codes` (absent: any error) decide when it moves
    /// on.
    fn fallback(
        &mut self,
        spec: &mut PolicySpec,
        strategy: &Strategy,
        children: &[String],
        at: NodePath<'_>,
    ) -> Result<(), ImportError> {
        spec.targets = children.iter().cloned().map(TargetSpec::Name).collect();
        self.longest_fallback = self.longest_fallback.max(children.len() as u32);
        if let Some(codes) = &strategy.on_status_codes {
            let matches = self.matches_of(codes, &at.key("strategy.on_status_codes"))?;
            self.fallback_on.insert(spec.name.clone(), matches);
        }
        Ok(())
    }

    /// A `loadbalance` node: `weighted` by the targets' weights (a missing weight is 1), or `sticky` with a
    /// `sticky_session` (`hash_fields`, `ttl`).
    fn loadbalance(
        &mut self,
        spec: &mut PolicySpec,
        node: &Node,
        strategy: &Strategy,
        children: &[String],
        at: NodePath<'_>,
    ) -> Result<(), ImportError> {
        let weights: Vec<f64> = node.targets.iter().map(|t| t.weight.unwrap_or(1.0)).collect();
        if let Some(i) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(self.err(&format!("{}[{i}].weight", at.key("targets")), "expected a weight >= 0"));
        }
        if weights.iter().all(|&w| w == 0.0) {
            return Err(self.err(&at.key("targets"), "every weight is 0: Portkey throws \"No provider selected\""));
        }
        let total: f64 = weights.iter().sum();
        spec.kind = PolicyKind::Weighted;
        spec.targets = children
            .iter()
            .zip(&weights)
            .map(|(c, w)| TargetSpec::Weighted { id: c.clone(), weight: w / total })
            .collect();
        let Some(s) = &strategy.sticky_session else {
            self.balancing.push(spec.name.clone());
            return Ok(());
        };
        let Some(first) = s.hash_fields.first() else {
            return Err(self.err(&at.key("strategy.sticky_session.hash_fields"), "expected at least one field"));
        };
        if s.hash_fields.len() > 1 {
            self.approximations.push(format!(
                "{}: routesim sticks on one field, `{first}`",
                at.key("strategy.sticky_session.hash_fields")
            ));
        }
        if s.ttl.is_some() {
            self.approximations.push(format!(
                "{}: routesim keeps a key on its endpoint for as long as the endpoint is eligible (consistent \
                 hashing, no expiry), and ignores the weights",
                at.key("strategy.sticky_session.ttl")
            ));
        }
        spec.kind = PolicyKind::Sticky;
        spec.key = Some(first.strip_prefix("metadata.").unwrap_or(first).to_string());
        Ok(())
    }

    /// A `conditional` node: one rule per condition (`query` -> `then`, a target named in the node), its
    /// `default`, and a traffic class per condition whose query some metadata satisfies.
    fn conditional(
        &mut self,
        spec: &mut PolicySpec,
        node: &Node,
        strategy: &Strategy,
        children: &[String],
        at: NodePath<'_>,
    ) -> Result<(), ImportError> {
        spec.kind = PolicyKind::Conditional;
        let by_name = |n: &str, path: String, w: &Walk<'_>| -> Result<String, ImportError> {
            node.targets.iter().position(|t| t.name.as_deref() == Some(n)).map(|i| children[i].clone()).ok_or_else(
                || {
                    w.err(
                        &path,
                        format!("no target named `{n}` (Portkey: \"Invalid target name found in the query router\")"),
                    )
                },
            )
        };
        if strategy.conditions.is_empty() {
            return Err(self.err(&at.key("strategy.conditions"), "expected at least one condition"));
        }
        for (i, c) in strategy.conditions.iter().enumerate() {
            let cp = format!("{}[{i}]", at.key("strategy.conditions"));
            let when = self.query(&c.query, &format!("{cp}.query"))?;
            let target = by_name(&c.then, format!("{cp}.then"), self)?;
            if let Some(meta) = satisfying(&c.query) {
                self.classes.push(ClassDraft { name: slug(&c.then), metadata: meta });
            } else {
                self.approximations.push(format!(
                    "{cp}.query: no traffic class was generated for it (add one with matching metadata)"
                ));
            }
            spec.rules.push(RuleSpec { when, target });
        }
        if let Some(d) = &strategy.default {
            spec.default = Some(by_name(d, at.key("strategy.default"), self)?);
        }
        Ok(())
    }

    fn leaf(&mut self, node: &Node, path: &str, model: Option<&str>) -> Result<String, ImportError> {
        let provider = node.provider.clone().or_else(|| node.virtual_key.clone()).ok_or_else(|| {
            self.err(path, "expected a target with `provider` or `virtual_key`, or a `strategy` with `targets`")
        })?;
        let model = model.unwrap_or("").to_string();
        let base = match &node.name {
            Some(n) => slug(n),
            None if model.is_empty() => slug(&provider),
            None => slug(&format!("{provider}-{model}")),
        };
        let id = self.unique(base);
        let key_env = match node.api_key.as_deref() {
            Some(k) => match env_reference(k).or_else(|| placeholder(k)) {
                Some(e) => Some(e.to_string()),
                None => {
                    self.warnings.push(format!("{path}.api_key (a literal key: not copied)"));
                    None
                }
            },
            None => None,
        };
        let upstream = node
            .custom_host
            .clone()
            .or_else(|| (provider == "openai").then(|| "https://api.openai.com/v1".into()))
            .map(|base_url| router_core::UpstreamConfig {
                base_url,
                api_key_env: key_env,
                model: (!model.is_empty()).then(|| model.clone()),
                timeout: None,
                auth: router_core::UpstreamAuth::Bearer,
            });
        self.endpoints.push(EndpointDraft {
            id: id.clone(),
            provider,
            model,
            weight: 1.0,
            upstream,
            ..EndpointDraft::default()
        });
        Ok(id)
    }

    /// What a list of status codes names ([`match_of`]), each once, in the list's order; a code that is not an
    /// HTTP status (outside 100..=599) is an error naming the list.
    fn matches_of(&self, codes: &[u16], path: &str) -> Result<Vec<ErrorMatch>, ImportError> {
        let mut out: Vec<ErrorMatch> = Vec::new();
        for (i, &c) in codes.iter().enumerate() {
            if !(100..=599).contains(&c) {
                return Err(self.err(&format!("{path}[{i}]"), format!("{c} is not an HTTP status code (100..=599)")));
            }
            let m = match_of(c);
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// A Portkey query as a router-core condition.
    fn query(&self, q: &Value, path: &str) -> Result<RawValue, ImportError> {
        Ok(match q {
            Value::Null => return Err(self.err(path, "expected a value, found null")),
            Value::Bool(b) => RawValue::Bool(*b),
            Value::Number(n) => RawValue::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => RawValue::Str(s.clone()),
            Value::Array(a) => RawValue::List(
                a.iter().enumerate().map(|(i, v)| self.query(v, &format!("{path}[{i}]"))).collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let k = &query_field(k);
                    if k == "$regex" {
                        return Err(self.err(
                            &format!("{path}.{k}"),
                            "`$regex` changes routing but routesim's conditions do not model it (supported: $eq $ne \
                             $in $nin $gt $gte $lt $lte $and $or)",
                        ));
                    }
                    out.insert(k.clone(), self.query(v, &format!("{path}.{k}"))?);
                }
                RawValue::Map(out)
            }
        })
    }
}

/// The path of a node in the config (`""` for the root), to name its keys in errors and notes.
#[derive(Clone, Copy)]
struct NodePath<'a>(&'a str);

impl NodePath<'_> {
    /// The path of the node's key `k` (`targets[1].strategy.mode`).
    fn key(self, k: &str) -> String {
        if self.0.is_empty() { k.to_string() } else { format!("{}.{k}", self.0) }
    }
}

/// A Portkey query field as routesim's condition names it: `params.model` (the request's model) is `model`,
/// `params.stream` is `streaming`; `metadata.X` and anything else stay as they are.
fn query_field(k: &str) -> String {
    match k {
        "params.model" => "model".into(),
        "params.stream" => "streaming".into(),
        k => k.to_string(),
    }
}

/// `${NAME}` (the placeholder `routesim export portkey` writes for a key) -> `Some("NAME")`.
fn placeholder(v: &str) -> Option<&str> {
    let name = v.strip_prefix("${")?.strip_suffix('}')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// Metadata satisfying a query (values as TOML text), if one can be read off it: equalities, `$eq`, the first
/// of `$in`, a value beside `$ne`/`$nin`, a number past `$gt`/`$gte`/`$lt`/`$lte`, every branch of `$and`, the
/// first of `$or`.
fn satisfying(q: &Value) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Value::Object(m) = q else { return None };
    for (k, v) in m {
        if k == "$and" {
            for sub in v.as_array()? {
                out.extend(satisfying(sub)?);
            }
            continue;
        }
        if k == "$or" {
            out.extend(satisfying(v.as_array()?.first()?)?);
            continue;
        }
        let key = query_field(k);
        let key = key.strip_prefix("metadata.").unwrap_or(&key).to_string();
        let value = match v {
            Value::Object(ops) => {
                let (op, x) = ops.iter().next()?;
                match op.as_str() {
                    "$eq" => x.clone(),
                    "$in" => x.as_array()?.first()?.clone(),
                    "$ne" | "$nin" => {
                        Value::String(format!("not-{}", x.as_str().map_or_else(|| x.to_string(), str::to_string)))
                    }
                    "$gt" => serde_json::json!(x.as_f64()? + 1.0),
                    "$lt" => serde_json::json!(x.as_f64()? - 1.0),
                    "$gte" | "$lte" => serde_json::json!(x.as_f64()?),
                    _ => return None,
                }
            }
            x => x.clone(),
        };
        let text = match &value {
            Value::String(s) => crate::import::scenario::toml_str(s),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            _ => return None,
        };
        out.insert(key, text);
    }
    Some(out)
}

/// Reads a Portkey config: the node tree, then the root's sections in turn, in the order their errors and notes
/// are reported.
pub fn import(file: &Path, text: &str) -> Result<Imported, ImportError> {
    let root: Node = parse_json(file, text)?;
    let mut w = Walk {
        file,
        text,
        endpoints: Vec::new(),
        groups: Vec::new(),
        balancing: Vec::new(),
        names: Vec::new(),
        classes: Vec::new(),
        warnings: Vec::new(),
        assumptions: Vec::new(),
        approximations: Vec::new(),
        fallback_on: BTreeMap::new(),
        longest_fallback: 1,
    };
    let mut policy = w.root_policy(&root)?;
    w.retry(&root, &mut policy)?;
    w.tracking(&mut policy);
    request_timeout(&root, &mut policy);
    w.cache(&root, &mut policy)?;
    w.default_class(&policy);
    w.sticky_key(&policy);
    w.assumptions.push("requests do not stream".into());
    Ok(Imported {
        gateway: "Portkey",
        file: file.to_path_buf(),
        endpoints: w.endpoints,
        policy,
        groups: w.groups,
        balancing: w.balancing,
        classes: w.classes,
        streaming: false,
        warnings: w.warnings,
        assumptions: w.assumptions,
        approximations: w.approximations,
    })
}

impl Walk<'_> {
    /// The root policy: the root node's group (taken out of the groups), or a `single` over a root that is a
    /// single target.
    fn root_policy(&mut self, root: &Node) -> Result<PolicySpec, ImportError> {
        let mut policy = if root.strategy.is_none() {
            // A single target config: a root `single` over it.
            let leaf = self.node(root, "", None, true)?;
            let mut s = PolicySpec::new(self.unique("portkey".into()), PolicyKind::Fallback);
            s.targets = vec![TargetSpec::Name(leaf)];
            s
        } else {
            let name = self.node(root, "", None, true)?;
            let i = self.groups.iter().position(|g| g.name == name).expect("the root node is a group");
            self.groups.remove(i)
        };
        policy.description = Some("Portkey config as its gateway routes it (imported)".into());
        Ok(policy)
    }

    /// The root's `retry` (`attempts`, `on_status_codes`) with the fallback nodes' `on_status_codes`: Portkey's
    /// order as the root's retry policy and [`TargetRetryConfig`] (one attempt when nothing retries or falls back).
    fn retry(&mut self, root: &Node, policy: &mut PolicySpec) -> Result<(), ImportError> {
        let attempts = root.retry.as_ref().map_or(0, |r| r.attempts);
        if root.retry.as_ref().is_some_and(|r| r.use_retry_after_header.is_some()) {
            self.warnings.push("retry.use_retry_after_header".into());
        }
        let has_fallback =
            self.groups.iter().chain([&*policy]).any(|g| g.kind == PolicyKind::Fallback && g.targets.len() > 1);
        if attempts == 0 && !has_fallback {
            policy.retry = Some(RetryConfig { max_attempts: 1, budget: None, ..RetryConfig::default() });
            return Ok(());
        }
        let per_target = 1 + attempts;
        if per_target * self.longest_fallback.max(1) > 100 {
            return Err(self.err(
                "retry.attempts",
                format!(
                    "(1 + retry.attempts) x (longest fallback) = {} attempts: routesim allows at most 100",
                    per_target * self.longest_fallback.max(1)
                ),
            ));
        }
        let codes = root.retry.as_ref().and_then(|r| r.on_status_codes.clone()).unwrap_or(DEFAULT_RETRY_CODES.to_vec());
        let on = if attempts > 0 { self.matches_of(&codes, "retry.on_status_codes")? } else { Vec::new() };
        policy.retry = Some(RetryConfig {
            // Portkey tries each leaf at most 1 + attempts times; target_retry decides the order.
            max_attempts: (per_target * self.endpoints.len().max(1) as u32).min(100),
            retry_on: ErrorClass::ALL.to_vec(),
            budget: None,
            same_endpoint: attempts > 0,
            base_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(16),
            jitter: router_core::Jitter::None,
            ..RetryConfig::default()
        });
        policy.target_retry = Some(TargetRetryConfig {
            attempts,
            on: if on.is_empty() { ErrorClass::ALL.map(ErrorMatch::Class).to_vec() } else { on },
            base_delay: Duration::from_millis(1000),
            fallback_on: std::mem::take(&mut self.fallback_on),
        });
        Ok(())
    }

    /// No circuit breaker (Portkey's open-source gateway has none); without Portkey's order, the note that a 429's
    /// Retry-After keeps routesim's router off the endpoint.
    fn tracking(&mut self, policy: &mut PolicySpec) {
        let mut tracking = TrackingConfig::default();
        tracking.circuit.enabled = false;
        policy.tracking = Some(tracking);
        if policy.target_retry.is_none() {
            self.approximations.push(
                "a 429 with Retry-After keeps routesim's router off that endpoint until then; Portkey does not \
                 remember it"
                    .into(),
            );
        }
    }

    /// The root's `cache`: `simple` is an exact-match cache (`max_age`, default 7 days); `semantic` is an error.
    fn cache(&mut self, root: &Node, policy: &mut PolicySpec) -> Result<(), ImportError> {
        let Some(c) = &root.cache else { return Ok(()) };
        match c.mode.as_str() {
            "simple" => {
                let age = c.max_age.unwrap_or(604_800.0);
                if c.max_age.is_none() {
                    self.assumptions.push("cache.max_age unset: 7 days (Portkey's default)".into());
                }
                policy.cache = Some(CacheConfig { ttl: secs(age), capacity: 100_000 });
                Ok(())
            }
            "semantic" => Err(self.err(
                "cache.mode",
                "`semantic` caching changes routing but routesim models exact-match caching only (use `simple`)",
            )),
            m => Err(self.err("cache.mode", format!("unknown cache mode `{m}`: expected simple or semantic"))),
        }
    }

    /// A `default` traffic class when the conditions gave none, or when a conditional may send a request to its
    /// default.
    fn default_class(&mut self, policy: &PolicySpec) {
        if self.classes.is_empty()
            || policy.kind == PolicyKind::Conditional
            || self.groups.iter().any(|g| g.kind == PolicyKind::Conditional)
        {
            self.classes.push(ClassDraft { name: "default".into(), metadata: BTreeMap::new() });
        }
    }

    /// The note on a sticky session's key, which routesim's generated traffic does not repeat by itself.
    fn sticky_key(&mut self, policy: &PolicySpec) {
        if self.groups.iter().chain([policy]).any(|g| g.kind == PolicyKind::Sticky) {
            let key = self.groups.iter().chain([policy]).find_map(|g| g.key.clone()).unwrap_or_default();
            self.assumptions.push(format!("sticky key `{key}`: routesim's generated traffic gives every request a distinct key unless you add it to the classes' metadata"));
        }
    }
}

/// The root's `request_timeout` (milliseconds): the root's attempt timeout.
fn request_timeout(root: &Node, policy: &mut PolicySpec) {
    if let Some(ms) = root.request_timeout {
        policy.timeout = Some(secs(ms / 1000.0));
    }
}

/// Blanks whole-line `//` comments (the notes `routesim export portkey` writes at the top), keeping line numbers.
pub fn strip_comments(text: &str) -> String {
    text.lines().map(|l| if l.trim_start().starts_with("//") { "" } else { l }).collect::<Vec<_>>().join("\n")
}
