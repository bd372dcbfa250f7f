//! The closest Portkey gateway config to a routesim policy.
//!
//! The policy tree maps node for node: `weighted` is `loadbalance`, `sticky` is `loadbalance` with a
//! `sticky_session`, `fallback` is `fallback` (with `on_status_codes` from the retried error classes),
//! `conditional` is `conditional` (the same query operators); any other kind becomes a `loadbalance` over its
//! targets with their weights. Endpoints are leaf targets named by their id. Retries, the timeout and the
//! cache carry over; circuit breakers, cooldowns and measurement windows do not.

use super::{PORTKEY_PROVIDERS, Source, codes_of, codes_of_matches, comment_block, is_public_base};
use crate::import::scenario::toml_str;
use router_core::condition::RawValue;
use router_core::{ErrorClass, ErrorMatch, PolicyKind, PolicySpec};
use serde_json::{Map, Value, json};

/// The typed request fields of routesim's conditions (not metadata): Portkey cannot see them.
const TYPED_FIELDS: [&str; 5] = ["task_class", "complexity", "input_tokens", "expected_output_tokens", "deferrable"];

/// The exported config text (without the comment lines) and what it cannot express.
pub struct Exported {
    /// JSON text.
    pub json: String,
    /// Parts of the policy Portkey cannot express.
    pub unexpressed: Vec<String>,
    /// The environment variables named by the `${NAME}` key placeholders.
    pub keys: Vec<String>,
}

/// A condition value as JSON.
fn raw_to_json(v: &RawValue) -> Value {
    match v {
        RawValue::Bool(b) => json!(b),
        RawValue::Num(n) => json!(n),
        RawValue::Str(s) => json!(s),
        RawValue::List(l) => Value::Array(l.iter().map(raw_to_json).collect()),
        RawValue::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), raw_to_json(v))).collect()),
    }
}

/// The writer of a Portkey config: the policy and what it has noted (unexpressed parts, key names).
struct Writer<'a, 'b> {
    src: &'b Source<'a>,
    un: Vec<String>,
    codes: Option<Vec<u16>>,
    longest_fallback: u32,
    keys: Vec<String>,
}

impl Writer<'_, '_> {
    /// The target `name`: a group's strategy node, else an endpoint's leaf, with its `weight`.
    fn target(&mut self, name: &str, weight: Option<f64>, depth: usize) -> Value {
        let mut node = match self.src.group(name) {
            Some(g) if depth <= router_core::MAX_GROUP_DEPTH => self.policy(g, depth + 1),
            _ => self.leaf(name),
        };
        if let (Some(w), Value::Object(m)) = (weight, &mut node) {
            m.insert("weight".into(), json!(w));
        }
        node
    }

    /// An endpoint as a leaf target: provider, `custom_host` (not for a provider's public base), the key as a
    /// `${NAME}` placeholder, the model.
    fn leaf(&mut self, id: &str) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(id));
        match self.src.endpoint(id) {
            Some(ep) => {
                let dep = super::deployment(ep);
                let provider = PORTKEY_PROVIDERS.iter().find(|(k, _)| *k == dep.provider).map(|(_, v)| *v);
                let host = dep.base_url.as_deref().filter(|b| !is_public_base(b));
                let provider = match (provider, host) {
                    (Some(p), _) => p,
                    (None, Some(_)) => "openai",
                    (None, None) => {
                        self.un.push(format!(
                            "endpoint `{id}`: provider `{}` is not a Portkey provider and has no upstream URL: \
                             written as `openai`; set its `custom_host`",
                            dep.provider
                        ));
                        "openai"
                    }
                };
                m.insert("provider".into(), json!(provider));
                if let Some(h) = host {
                    m.insert("custom_host".into(), json!(h));
                }
                // Portkey needs a key on every provider target; the config carries a `${NAME}` placeholder.
                let env = dep.key_env.clone().unwrap_or_else(|| super::default_key_env(&dep.provider, id));
                m.insert("api_key".into(), json!(format!("${{{env}}}")));
                self.keys.push(env);
                m.insert("override_params".into(), json!({ "model": dep.model }));
            }
            None => self.un.push(format!("target `{id}` is neither a group nor an endpoint")),
        }
        Value::Object(m)
    }

    /// A routesim condition as a Portkey query: Portkey reads `params.X` (the request body) and `metadata.X`
    /// (the `x-portkey-metadata` header) only, so `model` becomes `params.model`, `streaming` `params.stream`,
    /// and every other field `metadata.<field>`.
    fn query(&mut self, when: &RawValue, group: &str) -> Value {
        match when {
            RawValue::Map(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let key = if k.starts_with('$') {
                            k.clone()
                        } else {
                            match k.as_str() {
                                "model" => "params.model".to_string(),
                                "streaming" => "params.stream".to_string(),
                                k if ["metadata.", "params.", "url."].iter().any(|p| k.starts_with(p)) => k.to_string(),
                                k => {
                                    if TYPED_FIELDS.contains(&k) {
                                        let note = format!(
                                            "`{group}`: condition on `{k}`, which routesim knows of every request; \
                                             Portkey sees it only if clients send it in `x-portkey-metadata`"
                                        );
                                        if !self.un.contains(&note) {
                                            self.un.push(note);
                                        }
                                    }
                                    format!("metadata.{k}")
                                }
                            }
                        };
                        let value = match (k.starts_with('$'), v) {
                            (true, RawValue::List(l)) => Value::Array(l.iter().map(|x| self.query(x, group)).collect()),
                            _ => raw_to_json(v),
                        };
                        (key, value)
                    })
                    .collect(),
            ),
            x => raw_to_json(x),
        }
    }

    /// A group as a strategy node: its `name`, its `strategy` (by kind: [`Writer::conditional`],
    /// [`Writer::fallback`], else [`Writer::loadbalance`]) and its `targets`.
    fn policy(&mut self, g: &PolicySpec, depth: usize) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(g.name));
        let mut strategy = Map::new();
        let children = match g.kind {
            PolicyKind::Conditional => self.conditional(g, &mut strategy, depth),
            PolicyKind::Fallback => self.fallback(g, &mut strategy, depth),
            _ => self.loadbalance(g, &mut strategy, depth),
        };
        m.insert("strategy".into(), Value::Object(strategy));
        m.insert("targets".into(), Value::Array(children));
        Value::Object(m)
    }

    /// A `conditional` strategy: one condition per rule, the default, and the targets they name (each once).
    fn conditional(&mut self, g: &PolicySpec, strategy: &mut Map<String, Value>, depth: usize) -> Vec<Value> {
        strategy.insert("mode".into(), json!("conditional"));
        let mut names: Vec<String> = Vec::new();
        let mut conditions = Vec::new();
        for r in &g.rules {
            conditions.push(json!({ "query": self.query(&r.when, &g.name), "then": r.target }));
            if !names.contains(&r.target) {
                names.push(r.target.clone());
            }
        }
        strategy.insert("conditions".into(), Value::Array(conditions));
        if let Some(d) = &g.default {
            strategy.insert("default".into(), json!(d));
            if !names.contains(d) {
                names.push(d.clone());
            }
        }
        names.into_iter().map(|n| self.target(&n, None, depth)).collect()
    }

    /// A `fallback` strategy over the group's targets, with the `on_status_codes` on which it moves on.
    fn fallback(&mut self, g: &PolicySpec, strategy: &mut Map<String, Value>, depth: usize) -> Vec<Value> {
        strategy.insert("mode".into(), json!("fallback"));
        // Portkey's own order (an imported config): each fallback node's codes; otherwise the retried ones.
        let own = match &self.src.policy.target_retry {
            Some(t) => t
                .fallback_on
                .get(&g.name)
                .filter(|c| !c.contains(&ErrorMatch::Class(ErrorClass::Other)))
                .map(|c| codes_of_matches(c)),
            None => self.codes.clone(),
        };
        if let Some(c) = own {
            strategy.insert("on_status_codes".into(), json!(c));
        }
        let targets = self.src.targets(g);
        self.longest_fallback = self.longest_fallback.max(targets.len() as u32);
        targets.iter().map(|(n, w)| self.target(n, *w, depth)).collect()
    }

    /// A `loadbalance` strategy over the group's weighted targets (a `sticky_session` for `sticky`); any kind but
    /// `weighted` is noted.
    fn loadbalance(&mut self, g: &PolicySpec, strategy: &mut Map<String, Value>, depth: usize) -> Vec<Value> {
        strategy.insert("mode".into(), json!("loadbalance"));
        if g.kind == PolicyKind::Sticky {
            let key = g.key.clone().unwrap_or_default();
            strategy.insert("sticky_session".into(), json!({ "hash_fields": [format!("metadata.{key}")] }));
            self.un.push(format!(
                "`{}`: sticky: Portkey draws by weight on a key's first request; routesim's consistent-hash ring \
                 ignores weights and walks on when the endpoint is not eligible",
                g.name
            ));
        } else if g.kind != PolicyKind::Weighted {
            self.un.push(format!(
                "`{}`: kind `{}`: Portkey load-balances at random by weight instead",
                g.name,
                g.kind.name()
            ));
        }
        let targets = self.src.targets(g);
        targets
            .iter()
            .map(|(n, w)| {
                let w = w.or_else(|| self.src.endpoint(n).map(|e| e.weight)).unwrap_or(1.0);
                self.target(n, Some(w), depth)
            })
            .collect()
    }

    /// The root's `retry`: Portkey's own (an imported config), else the retry policy's attempts per target
    /// (its backoff and budget noted).
    fn retry(&mut self, doc: &mut Map<String, Value>) {
        let root = self.src.policy;
        if let Some(t) = &root.target_retry {
            if t.attempts > 0 {
                let codes = codes_of_matches(&t.on);
                doc.insert("retry".into(), json!({ "attempts": t.attempts, "on_status_codes": codes }));
            }
        } else if let Some(r) = &root.retry {
            let attempts = (r.max_attempts / self.longest_fallback.max(1)).saturating_sub(1);
            if attempts > 0 {
                let mut rt = Map::new();
                rt.insert("attempts".into(), json!(attempts));
                rt.insert("on_status_codes".into(), json!(self.codes.clone().unwrap_or_else(|| codes_of(&r.retry_on))));
                doc.insert("retry".into(), Value::Object(rt));
                self.un.push(format!(
                    "retry: backoff {}..{} with {:?} jitter and retry budget; Portkey backs off exponentially on its \
                     own",
                    r.base_delay, r.max_delay, r.jitter
                ));
            }
        }
    }

    /// The root's `request_timeout` (milliseconds: the policy's timeout, else the scenario's client timeout); a
    /// time-to-first-token timeout is noted.
    fn timeouts(&mut self, doc: &mut Map<String, Value>) {
        if let Some(t) = self.src.policy.timeout.or(self.src.client_timeout) {
            doc.insert("request_timeout".into(), json!(t.nanos() / 1_000_000));
        }
        if self.src.policy.ttft_timeout.is_some() {
            self.un.push("ttft_timeout: Portkey has no time-to-first-token timeout".into());
        }
    }

    /// The root's settings Portkey has no place for: endpoint fallback chains, cooldowns, group retries, the
    /// circuit breaker, batching.
    fn unexpressed_settings(&mut self) {
        let root = self.src.policy;
        if root.fallbacks.is_some() {
            self.un.push("fallbacks: router-wide chains of endpoints (use a `fallback` node)".into());
        }
        if root.cooldown.is_some() {
            self.un.push("cooldown: LiteLLM-style deployment cooldowns".into());
        }
        if root.group_retry.is_some() {
            self.un.push("group_retry: LiteLLM's retries within a model group, then fallback groups".into());
        }
        if root.tracking.unwrap_or_default().circuit.enabled {
            self.un.push("circuit breaker: Portkey OSS does not take failing targets out of rotation".into());
        }
        if root.batching.is_some() {
            self.un.push("batching of deferrable requests".into());
        }
    }
}

/// Writes the policy as a Portkey config: the node tree (strategy and targets), then the root's `retry`,
/// `request_timeout` and `cache`, noting what Portkey cannot express.
pub fn export(src: &Source<'_>) -> Exported {
    let root = src.policy;
    let retry_on: Vec<ErrorClass> = root.retry.as_ref().map_or(Vec::new(), |r| r.retry_on.clone());
    let codes = (!retry_on.contains(&ErrorClass::Other)).then(|| codes_of(&retry_on));
    let mut w = Writer { src, un: Vec::new(), codes, longest_fallback: 1, keys: Vec::new() };
    let mut doc = match w.policy(root, 0) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    doc.remove("name");
    w.retry(&mut doc);
    w.timeouts(&mut doc);
    cache(&mut doc, root);
    w.unexpressed_settings();
    let json = serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default();
    let mut keys = w.keys;
    keys.sort();
    keys.dedup();
    Exported { json, unexpressed: w.un, keys }
}

/// The root's `cache`: a `simple` cache with the ttl as `max_age` (seconds).
fn cache(doc: &mut Map<String, Value>, root: &PolicySpec) {
    if let Some(c) = &root.cache {
        doc.insert("cache".into(), json!({ "mode": "simple", "max_age": c.ttl.nanos() / 1_000_000_000 }));
    }
}

/// The header comment of an exported Portkey config (`//` lines: strip them before uploading the config).
pub fn header(policy: &str, scenario: &str, keys: &[String], unexpressed: &[String], cost: &[String]) -> String {
    let mut s = format!(
        "// Portkey config exported by `routesim export portkey` from policy {} of scenario {}.\n// JSON with \
         comment lines: remove the lines starting with // before uploading it (routesim import reads it as is).\n\
         // Keys are `${{NAME}}` placeholders ({}): fill them in, e.g. `grep -v '^//' FILE | envsubst`.\n//\n",
        toml_str(policy),
        toml_str(scenario),
        keys.join(", ")
    );
    s += &comment_block("//", "NOT EXPRESSIBLE IN PORTKEY (approximated as described):", unexpressed);
    s += "//\n";
    s += &comment_block("//", "METRIC COST OF THE APPROXIMATION (this config minus the policy, 95% interval):", cost);
    s
}
