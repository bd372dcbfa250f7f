//! The closest LiteLLM proxy config to a routesim policy.
//!
//! A root `conditional` whose rules all test `model = "..."` becomes one model group per rule; any other root
//! is one model group `routesim` holding every endpoint it can reach. A group's kind picks the router-wide
//! `routing_strategy` (LiteLLM has one for all groups): the compat kinds map exactly, `weighted` is
//! `simple-shuffle` with its weights, `fallback` over endpoints is `order`, `least-outstanding`, `latency`,
//! `cost` and `usage` map to their nearest strategy, anything else to `simple-shuffle`. LiteLLM cooldowns and
//! group retries carry over; routesim's retry and circuit breaker become `num_retries`, `allowed_fails` and
//! `cooldown_time`.

use super::{LITELLM_PROVIDERS, Source, comment_block, is_public_base};
use crate::import::scenario::toml_str;
use crate::provider::EndpointSpec;
use router_core::condition::RawValue;
use router_core::{Duration, PolicyKind, PolicySpec};
use serde_json::{Map, Value, json};

/// The exported config text (without the cost lines) and what it cannot express.
pub struct Exported {
    /// YAML text.
    pub yaml: String,
    /// Parts of the policy LiteLLM cannot express.
    pub unexpressed: Vec<String>,
}

/// A duration as LiteLLM writes seconds: an integer when whole.
fn secs(d: Duration) -> Value {
    let s = d.nanos() as f64 / 1e9;
    if s.fract() == 0.0 { json!(s as u64) } else { json!(s) }
}

/// The model groups of the policy: (model name, group spec).
fn model_groups<'a>(src: &Source<'a>) -> Vec<(String, &'a PolicySpec)> {
    let root = src.policy;
    if root.kind == PolicyKind::Conditional && !root.rules.is_empty() {
        let mut out = Vec::new();
        for r in &root.rules {
            let RawValue::Map(m) = &r.when else { return vec![("routesim".into(), root)] };
            let (Some(RawValue::Str(model)), 1) = (m.get("model"), m.len()) else {
                return vec![("routesim".into(), root)];
            };
            match src.group(&r.target) {
                Some(g) => out.push((model.clone(), g)),
                None => return vec![("routesim".into(), root)],
            }
        }
        return out;
    }
    vec![("routesim".into(), root)]
}

/// The router's routing strategy as LiteLLM names it, with the policy that chose it.
type Strategy<'a> = (&'static str, &'a PolicySpec);

/// Writes the policy as a LiteLLM config: `model_list`, `router_settings` (routing strategy, retries and
/// fallbacks, cooldowns, timeouts) and `litellm_settings` (the cache), each noting what it cannot express.
pub fn export(src: &Source<'_>) -> Exported {
    let mut un: Vec<String> = Vec::new();
    let root = src.policy;
    let groups = model_groups(src);
    root_conditional(root, &groups, &mut un);
    let (model_list, strategy) = model_list(src, &groups, &mut un);
    let mut rs = Map::new();
    routing_strategy(&mut rs, strategy.unwrap_or(("simple-shuffle", root)));
    retries_and_fallbacks(&mut rs, root, &groups, &mut un);
    cooldowns(&mut rs, root, &mut un);
    timeouts(&mut rs, src);
    unexpressed_settings(root, &mut un);
    let mut doc = Map::new();
    doc.insert("model_list".into(), Value::Array(model_list));
    doc.insert("router_settings".into(), Value::Object(rs));
    litellm_settings(&mut doc, root, &mut un);
    let yaml = serde_norway::to_string(&Value::Object(doc)).unwrap_or_default();
    Exported { yaml, unexpressed: un }
}

/// The root's routing by model name: a conditional whose rules are not all `model = "..."`, or the default
/// target of one that is, LiteLLM cannot express.
fn root_conditional(root: &PolicySpec, groups: &[(String, &PolicySpec)], un: &mut Vec<String>) {
    if groups.len() == 1 && groups[0].1.name == root.name && root.kind == PolicyKind::Conditional {
        un.push(format!(
            "`{}`: conditional rules other than `model = \"...\"` (LiteLLM routes by model name only)",
            root.name
        ));
    }
    if root.kind == PolicyKind::Conditional && root.default.is_some() && groups.len() > 1 {
        un.push(format!("`{}`: the default target for requests naming no model group", root.name));
    }
}

/// `model_list`: every deployment of every model group, and the router's one routing strategy (the first
/// group's; a group wanting another is noted).
fn model_list<'a>(
    src: &Source<'a>,
    groups: &[(String, &'a PolicySpec)],
    un: &mut Vec<String>,
) -> (Vec<Value>, Option<Strategy<'a>>) {
    let mut strategy: Option<Strategy<'a>> = None;
    let mut model_list = Vec::new();
    let mut seen_ids: Vec<String> = Vec::new();
    for (model_name, g) in groups {
        let (leaf, tiers) = order_tiers(src, g);
        let (name, kind_note) = strategy_of(leaf.kind);
        if let Some(note) = kind_note {
            un.push(format!("`{}`: {note}", leaf.name));
        }
        match strategy {
            None => strategy = Some((name, leaf)),
            Some((s, _)) if s != name => {
                un.push(format!(
                    "`{}`: LiteLLM has one routing strategy per router; it uses `{s}` here, not `{name}`",
                    leaf.name
                ));
            }
            _ => {}
        }
        let weights: Vec<(String, Option<f64>)> =
            if leaf.kind == PolicyKind::Weighted { src.targets(leaf) } else { Vec::new() };
        let shuffle = strategy.map_or(name, |(s, _)| s) == "simple-shuffle";
        for (order, members) in &tiers {
            for id in members {
                let Some(ep) = src.endpoint(id) else { continue };
                let mut dep_id = ep.id.clone();
                while seen_ids.contains(&dep_id) {
                    dep_id.push('x');
                }
                if dep_id != ep.id {
                    un.push(format!(
                        "endpoint `{}` serves several model groups: its copies have ids `{dep_id}`...",
                        ep.id
                    ));
                }
                seen_ids.push(dep_id.clone());
                // simple-shuffle weighs by `weight`, else `rpm`, else `tpm` of the deployments (a deployment
                // without the key gets nothing): every deployment gets its weight, 1 when the policy has none.
                let weight =
                    shuffle.then(|| weights.iter().find(|(n, _)| n == id).map_or(1.0, |(_, w)| w.unwrap_or(ep.weight)));
                let order = (*order > 0 && tiers.len() > 1).then_some(*order);
                let params = litellm_params(ep, weight, order, un);
                let mut info = Map::new();
                info.insert("id".into(), json!(dep_id));
                if let Some(c) = ep.limits.context_window {
                    info.insert("max_input_tokens".into(), json!(c));
                }
                model_list.push(json!({ "model_name": model_name, "litellm_params": params, "model_info": info }));
            }
        }
    }
    (model_list, strategy)
}

/// A model group's deployments in LiteLLM's `order` tiers: a fallback over tiers (groups of endpoints) or over
/// endpoints is LiteLLM's `order` (1, 2, ...; the first tier's policy picks the strategy); any other group is one
/// tier (order 0: none written) of every endpoint it reaches. Returns the policy that picks the strategy and the
/// tiers.
fn order_tiers<'a>(src: &Source<'a>, g: &'a PolicySpec) -> (&'a PolicySpec, Vec<(u32, Vec<String>)>) {
    if g.kind == PolicyKind::Fallback {
        let tiers: Vec<(u32, Vec<String>)> = src
            .targets(g)
            .iter()
            .enumerate()
            .map(|(k, (n, _))| match src.group(n) {
                Some(t) => (k as u32 + 1, src.closure(t)),
                None => (k as u32 + 1, vec![n.clone()]),
            })
            .collect();
        let first_tier = src.targets(g).first().and_then(|(n, _)| src.group(n)).unwrap_or(g);
        (first_tier, tiers)
    } else {
        (g, vec![(0, src.closure(g))])
    }
}

/// The LiteLLM routing strategy of a policy kind, with a note when it only approximates the kind.
fn strategy_of(kind: PolicyKind) -> (&'static str, Option<&'static str>) {
    match kind {
        PolicyKind::LitellmLeastBusy => ("least-busy", None),
        PolicyKind::LitellmUsageV2 => ("usage-based-routing-v2", None),
        PolicyKind::LitellmLatency => ("latency-based-routing", None),
        PolicyKind::LitellmCost => ("cost-based-routing", None),
        PolicyKind::Weighted | PolicyKind::Fallback => ("simple-shuffle", None),
        PolicyKind::LeastOutstanding => (
            "least-busy",
            Some("least-outstanding breaks ties at random; least-busy takes the first of the least busy"),
        ),
        PolicyKind::Latency => (
            "latency-based-routing",
            Some(
                "latency: a time-decayed average of seconds per request (and `slow_threshold`); LiteLLM averages a list of seconds per output token",
            ),
        ),
        PolicyKind::Cost => (
            "cost-based-routing",
            Some("cost: expected cost of each request; LiteLLM compares input + output price per token"),
        ),
        PolicyKind::Usage => (
            "usage-based-routing-v2",
            Some(
                "usage: quota headroom tapering past `threshold`, and `tiers`; LiteLLM takes the fewest tokens this minute",
            ),
        ),
        k => (
            "simple-shuffle",
            Some(match k {
                PolicyKind::RoundRobin => "round-robin: a uniform random pick (`weight: 1` each) instead of a rotation",
                PolicyKind::P2c => {
                    "p2c: a uniform random pick (`weight: 1` each) instead of two choices on peak-EWMA load"
                }
                PolicyKind::Hybrid => "hybrid: a uniform random pick (`weight: 1` each) instead of the weighted score",
                PolicyKind::Sticky => {
                    "sticky: a uniform random pick (`weight: 1` each); LiteLLM has no consistent hashing"
                }
                _ => "nested conditional: a uniform random pick over every endpoint it reaches",
            }),
        ),
    }
}

/// One deployment's `litellm_params`: provider-prefixed model, `api_base` (not for a provider's public base), key
/// reference, quotas, concurrency, `weight` (simple-shuffle), `order` (tiers) and prices.
fn litellm_params(
    ep: &EndpointSpec,
    weight: Option<f64>,
    order: Option<u32>,
    un: &mut Vec<String>,
) -> Map<String, Value> {
    let mut params = Map::new();
    let dep = super::deployment(ep);
    let prefix = LITELLM_PROVIDERS.iter().find(|(k, _)| *k == dep.provider).map(|(_, v)| *v);
    let api_base = dep.base_url.as_deref().filter(|b| !is_public_base(b));
    let prefix = match (prefix, api_base) {
        (Some(p), _) => p,
        (None, Some(_)) => "openai",
        (None, None) => {
            un.push(format!(
                "endpoint `{}`: provider `{}` is not a LiteLLM provider and has no upstream URL: written as \
                 `openai/{}`; set its `api_base`",
                ep.id, dep.provider, dep.model
            ));
            "openai"
        }
    };
    if prefix == "hosted_vllm" && api_base.is_none() {
        un.push(format!(
            "endpoint `{}` ({}): no upstream URL in the scenario: set `api_base` to its server",
            ep.id, dep.provider
        ));
    }
    params.insert("model".into(), json!(format!("{prefix}/{}", dep.model)));
    if let Some(b) = api_base {
        params.insert("api_base".into(), json!(b));
    }
    if let Some(k) = &dep.key_env {
        params.insert("api_key".into(), json!(format!("os.environ/{k}")));
    }
    if let Some(r) = ep.limits.rpm {
        params.insert("rpm".into(), json!(r));
    }
    if let Some(t) = ep.limits.tpm {
        params.insert("tpm".into(), json!(t));
    }
    if let Some(c) = ep.limits.concurrency {
        params.insert("max_parallel_requests".into(), json!(c));
    }
    if let Some(w) = weight {
        params.insert("weight".into(), json!(w));
    }
    if let Some(order) = order {
        params.insert("order".into(), json!(order));
    }
    params.insert("input_cost_per_token".into(), json!(ep.price.input_per_mtok / 1e6));
    params.insert("output_cost_per_token".into(), json!(ep.price.output_per_mtok / 1e6));
    params
}

/// `router_settings.routing_strategy`, with `routing_strategy_args` (buffer, ttl, list size) for latency-based
/// routing, from the policy that chose the strategy.
fn routing_strategy(rs: &mut Map<String, Value>, (strategy_name, leaf): Strategy<'_>) {
    rs.insert("routing_strategy".into(), json!(strategy_name));
    if strategy_name == "latency-based-routing" {
        let mut args = Map::new();
        if let Some(b) = leaf.buffer {
            args.insert("lowest_latency_buffer".into(), json!(b));
        }
        if let Some(t) = leaf.ttl {
            args.insert("ttl".into(), secs(t));
        }
        if let Some(k) = leaf.samples {
            args.insert("max_latency_list_size".into(), json!(k));
        }
        if !args.is_empty() {
            rs.insert("routing_strategy_args".into(), Value::Object(args));
        }
    }
}

/// `router_settings.num_retries`, `retry_after` and `fallbacks` (between model groups): from the root's group
/// retry, else its retry policy (backoff, budget and classes noted); endpoint fallback chains are noted.
fn retries_and_fallbacks(
    rs: &mut Map<String, Value>,
    root: &PolicySpec,
    groups: &[(String, &PolicySpec)],
    un: &mut Vec<String>,
) {
    let group_model = |name: &str| groups.iter().find(|(_, g)| g.name == name).map(|(m, _)| m.clone());
    match (&root.group_retry, &root.retry) {
        (Some(gr), _) => {
            rs.insert("num_retries".into(), json!(gr.num_retries));
            if gr.retry_after.nanos() > 0 {
                rs.insert("retry_after".into(), secs(gr.retry_after));
            }
            let mut fbs = Vec::new();
            for (from, to) in &gr.fallbacks {
                let (Some(f), Some(t)) =
                    (group_model(from), to.iter().map(|n| group_model(n)).collect::<Option<Vec<_>>>())
                else {
                    un.push(format!("fallbacks from `{from}`: a group that is not a model group"));
                    continue;
                };
                fbs.push(json!({ f: t }));
            }
            if !fbs.is_empty() {
                rs.insert("fallbacks".into(), Value::Array(fbs));
            }
        }
        (None, Some(r)) => {
            rs.insert("num_retries".into(), json!(r.max_attempts.saturating_sub(1)));
            un.push(format!(
                "retry: backoff {}..{} x{} with {:?} jitter, retry budget, retry_on {:?}; LiteLLM retries at once while \
                 the group has other healthy deployments, else backs off from 0.5 s",
                r.base_delay, r.max_delay, r.multiplier, r.jitter, r.retry_on
            ));
        }
        (None, None) => {
            rs.insert("num_retries".into(), json!(0));
        }
    }
    if root.fallbacks.is_some() {
        un.push("fallbacks: chains of endpoints (LiteLLM falls back between model groups)".into());
    }
}

/// `router_settings.allowed_fails` and `cooldown_time` (LiteLLM cooldowns, or the circuit breaker's nearest), else
/// `disable_cooldowns`.
fn cooldowns(rs: &mut Map<String, Value>, root: &PolicySpec, un: &mut Vec<String>) {
    let circuit = root.tracking.unwrap_or_default().circuit;
    match &root.cooldown {
        Some(c) => {
            if let Some(a) = c.allowed_fails {
                rs.insert("allowed_fails".into(), json!(a));
            }
            rs.insert("cooldown_time".into(), secs(c.cooldown_time));
        }
        None if circuit.enabled => {
            rs.insert("allowed_fails".into(), json!(circuit.consecutive_failures));
            rs.insert("cooldown_time".into(), secs(circuit.cooldown));
            un.push(format!(
                "circuit breaker: the error-rate trigger ({} over {} requests) and half-open probes; LiteLLM cools a \
                 deployment down after `allowed_fails` failures within `cooldown_time`",
                circuit.error_rate, circuit.min_requests
            ));
        }
        None => {
            rs.insert("disable_cooldowns".into(), json!(true));
        }
    }
}

/// `router_settings.timeout` and `stream_timeout`. LiteLLM waits 6000 s by default: the policy's timeout, else
/// the scenario's client timeout.
fn timeouts(rs: &mut Map<String, Value>, src: &Source<'_>) {
    if let Some(t) = src.policy.timeout.or(src.client_timeout) {
        rs.insert("timeout".into(), secs(t));
    }
    if let Some(t) = src.policy.ttft_timeout {
        rs.insert("stream_timeout".into(), secs(t));
    }
}

/// The root's settings LiteLLM has no place for: batching and custom measurement windows.
fn unexpressed_settings(root: &PolicySpec, un: &mut Vec<String>) {
    if root.batching.is_some() {
        un.push("batching of deferrable requests".into());
    }
    if root.tracking.is_some_and(|t| t != router_core::TrackingConfig { circuit: t.circuit, ..Default::default() }) {
        un.push("tracking: custom measurement windows".into());
    }
}

/// `litellm_settings`: the response cache (`cache_params` of a local cache with its ttl), when the root has one.
fn litellm_settings(doc: &mut Map<String, Value>, root: &PolicySpec, un: &mut Vec<String>) {
    if let Some(c) = &root.cache {
        doc.insert(
            "litellm_settings".into(),
            json!({ "cache": true, "cache_params": { "type": "local", "ttl": secs(c.ttl) } }),
        );
        if c.capacity < 100_000 {
            un.push(format!("cache capacity {} (LiteLLM's cache is bounded by its backend)", c.capacity));
        }
    }
}

/// The header comment of an exported LiteLLM config.
pub fn header(policy: &str, scenario: &str, unexpressed: &[String], cost: &[String]) -> String {
    let mut s = format!(
        "# LiteLLM proxy config exported by `routesim export litellm` from policy {} of scenario {}.\n#\n",
        toml_str(policy),
        toml_str(scenario)
    );
    s += &comment_block("#", "NOT EXPRESSIBLE IN LITELLM (approximated as described):", unexpressed);
    s += "#\n";
    s += &comment_block("#", "METRIC COST OF THE APPROXIMATION (this config minus the policy, 95% interval):", cost);
    s
}
