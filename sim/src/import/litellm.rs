//! `routesim import litellm`: a LiteLLM proxy `config.yaml` (`model_list`, `router_settings`,
//! `litellm_settings`) into router-core terms.
//!
//! - Each `model_list` entry is an endpoint; entries sharing a `model_name` form a model group, one group policy
//!   of the strategy's compat kind (`simple-shuffle` is `weighted` with LiteLLM's weights: `weight`, else `rpm`,
//!   else `tpm`, the first that some deployment of the group sets, a deployment without it weighing 0; `order`
//!   nests a fallback over the order tiers).
//! - The root is a `conditional` on the request's `model` metadata, with LiteLLM's cooldowns
//!   ([`router_core::CooldownConfig`]) instead of the circuit breaker and its retry-then-fallback order
//!   ([`router_core::GroupRetryConfig`]).
//! - `os.environ/NAME` keys stay references (`upstream.api_key_env`); literal keys are not copied.
//! - Keys that change routing but are not modelled are an error naming them; other unknown keys a warning.

use super::yaml::parse_yaml;
use super::{ClassDraft, EndpointDraft, ImportError, Imported, env_reference, slug};
use crate::import::scenario::secs;
use router_core::{
    CacheConfig, CooldownConfig, Duration, ErrorClass, GroupRetryConfig, PolicyKind, PolicySpec, RetryConfig, RuleSpec,
    TargetSpec, TrackingConfig, condition::RawValue,
};
use serde::Deserialize;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The routing strategies routesim reproduces, as LiteLLM names them.
pub const STRATEGIES: [&str; 5] =
    ["simple-shuffle", "least-busy", "usage-based-routing-v2", "latency-based-routing", "cost-based-routing"];

/// LiteLLM's Router retries a failed call this many times when neither `router_settings` nor
/// `litellm_settings` sets `num_retries` (`router_rust/core.py` of LiteLLM 1.110.2: `... else 2`).
pub const LITELLM_DEFAULT_NUM_RETRIES: u32 = 2;

/// OpenAI-compatible base URLs of providers that LiteLLM reaches without an `api_base`, for routesim-gateway's
/// upstream (listed as an assumption when used).
const OPENAI_COMPATIBLE_BASES: [(&str, &str); 3] = [
    ("openai", "https://api.openai.com/v1"),
    ("anthropic", "https://api.anthropic.com/v1"),
    ("gemini", "https://generativelanguage.googleapis.com/v1beta/openai"),
];

/// The top level of a proxy config.
#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    model_list: Vec<Deployment>,
    #[serde(default)]
    router_settings: RouterSettings,
    #[serde(default)]
    litellm_settings: LitellmSettings,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct Deployment {
    model_name: String,
    litellm_params: Params,
    #[serde(default)]
    model_info: ModelInfo,
    #[serde(default)]
    rpm: Option<u32>,
    #[serde(default)]
    tpm: Option<u64>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct Params {
    model: String,
    #[serde(default)]
    api_base: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    rpm: Option<u32>,
    #[serde(default)]
    tpm: Option<u64>,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    order: Option<u32>,
    #[serde(default)]
    max_parallel_requests: Option<u32>,
    #[serde(default)]
    input_cost_per_token: Option<f64>,
    #[serde(default)]
    output_cost_per_token: Option<f64>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    stream_timeout: Option<f64>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ModelInfo {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    base_model: Option<String>,
    #[serde(default)]
    max_input_tokens: Option<u64>,
    #[serde(default)]
    input_cost_per_token: Option<f64>,
    #[serde(default)]
    output_cost_per_token: Option<f64>,
    #[serde(default)]
    rpm: Option<u32>,
    #[serde(default)]
    tpm: Option<u64>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RouterSettings {
    #[serde(default)]
    routing_strategy: Option<String>,
    #[serde(default)]
    routing_strategy_args: Option<StrategyArgs>,
    #[serde(default)]
    num_retries: Option<u32>,
    #[serde(default)]
    retry_after: Option<f64>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    stream_timeout: Option<f64>,
    #[serde(default)]
    fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    #[serde(default)]
    context_window_fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    #[serde(default)]
    content_policy_fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    #[serde(default)]
    allowed_fails: Option<u32>,
    #[serde(default)]
    allowed_fails_policy: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    cooldown_time: Option<f64>,
    #[serde(default)]
    disable_cooldowns: Option<bool>,
    #[serde(default)]
    enable_pre_call_checks: Option<bool>,
    #[serde(default)]
    default_max_parallel_requests: Option<u32>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyArgs {
    #[serde(default)]
    ttl: Option<f64>,
    #[serde(default)]
    lowest_latency_buffer: Option<f64>,
    #[serde(default)]
    max_latency_list_size: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct LitellmSettings {
    #[serde(default)]
    cache: Option<bool>,
    #[serde(default)]
    cache_params: Option<CacheParams>,
    #[serde(default)]
    num_retries: Option<u32>,
    #[serde(default)]
    request_timeout: Option<f64>,
    #[serde(default)]
    fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    #[serde(default)]
    context_window_fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    #[serde(default)]
    content_policy_fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct CacheParams {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    ttl: Option<f64>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// Keys that change LiteLLM's routing but that routesim does not model, per section.
const ROUTER_NOT_MODELLED: [&str; 10] = [
    "model_group_alias",
    "retry_policy",
    "model_group_retry_policy",
    "provider_budget_config",
    "optional_pre_call_checks",
    "default_fallbacks",
    "max_fallbacks",
    "enable_tag_filtering",
    "tag_filtering_match_any",
    "routing_groups",
];
const PARAMS_NOT_MODELLED: [&str; 4] = ["region_name", "max_budget", "budget_duration", "model_group_affinity"];
const SETTINGS_NOT_MODELLED: [&str; 3] = ["default_fallbacks", "model_alias_map", "enable_tag_filtering"];

/// Reads a LiteLLM proxy config: each section in turn, in the order its errors and notes are reported.
pub fn import(file: &Path, text: &str) -> Result<Imported, ImportError> {
    let cfg: Config = parse_yaml(file, text)?;
    let (rs, ls) = (&cfg.router_settings, &cfg.litellm_settings);
    let mut r = Reader { file, text, warnings: Vec::new(), assumptions: Vec::new(), approximations: Vec::new() };
    r.unknown_keys(&cfg)?;
    if cfg.model_list.is_empty() {
        return Err(r.err("model_list", "expected at least one deployment in `model_list`".into()));
    }
    let strategy = r.routing_strategy(rs)?;
    let model_groups = r.model_groups(&cfg.model_list)?;
    let endpoints = r.deployments(&cfg, &model_groups);
    let (groups, balancing) = r.group_policies(&cfg, &strategy, &model_groups, &endpoints)?;
    let mut root = root_policy(&strategy, &model_groups);
    let fallbacks = r.fallbacks(rs, ls, &model_groups)?;
    r.unmodelled_fallbacks(rs, ls);
    r.retries(rs, ls, fallbacks, &mut root)?;
    r.cooldowns(rs, &model_groups, &endpoints, &mut root)?;
    timeouts(rs, ls, &mut root);
    r.pre_call_checks(rs);
    r.cache(ls, &mut root);
    let classes = model_groups
        .order
        .iter()
        .map(|m| ClassDraft {
            name: slug(m),
            metadata: BTreeMap::from([("model".to_string(), crate::import::scenario::toml_str(m))]),
        })
        .collect();
    r.assumptions
        .push("requests stream (`stream: true`), which latency-based routing scores by time to first token".into());
    Ok(Imported {
        gateway: "LiteLLM",
        file: file.to_path_buf(),
        endpoints,
        policy: root,
        groups,
        balancing,
        classes,
        streaming: true,
        warnings: r.warnings,
        assumptions: r.assumptions,
        approximations: r.approximations,
    })
}

/// The config being read (for errors with their line) and what the import notes about it.
struct Reader<'a> {
    file: &'a Path,
    text: &'a str,
    warnings: Vec<String>,
    assumptions: Vec<String>,
    approximations: Vec<String>,
}

/// The model groups of `model_list`, in config order: their names, their deployments (indices into
/// `model_list`) and the group policy name of each.
struct ModelGroups {
    /// Model names, in order of first appearance.
    order: Vec<String>,
    /// Model name -> the indices of its deployments.
    members: BTreeMap<String, Vec<usize>>,
    /// Model name -> its group policy's name.
    names: BTreeMap<String, String>,
}

impl Reader<'_> {
    /// An error at key `path` of the config.
    fn err(&self, path: &str, msg: String) -> ImportError {
        ImportError::at(self.file, self.text, path, msg)
    }

    /// Unknown keys of one section (`section` is its path with a trailing `.`): one that changes routing
    /// (`routing`) is an error, the others a warning.
    fn check_unknown(
        &mut self,
        section: &str,
        other: &BTreeMap<String, Value>,
        routing: &[&str],
    ) -> Result<(), ImportError> {
        let bad: Vec<&String> = other.keys().filter(|k| routing.contains(&k.as_str())).collect();
        if let Some(k) = bad.first() {
            return Err(self.err(
                &format!("{section}{k}"),
                format!(
                    "`{k}` changes routing but routesim does not model it (not modelled here: {}); remove it to \
                     simulate without it",
                    routing.join(", ")
                ),
            ));
        }
        let rest: Vec<String> = other.keys().map(|k| format!("{section}{k}")).collect();
        if !rest.is_empty() {
            self.warnings.push(rest.join(", "));
        }
        Ok(())
    }

    /// The unknown keys of every section: the top level, `router_settings`, `litellm_settings`, each
    /// `model_list` entry with its `litellm_params` and `model_info`, `litellm_settings.cache_params`.
    fn unknown_keys(&mut self, cfg: &Config) -> Result<(), ImportError> {
        self.check_unknown("", &cfg.other, &[])?;
        self.check_unknown("router_settings.", &cfg.router_settings.other, &ROUTER_NOT_MODELLED)?;
        self.check_unknown("litellm_settings.", &cfg.litellm_settings.other, &SETTINGS_NOT_MODELLED)?;
        for (i, d) in cfg.model_list.iter().enumerate() {
            self.check_unknown(&format!("model_list[{i}]."), &d.other, &[])?;
            self.check_unknown(
                &format!("model_list[{i}].litellm_params."),
                &d.litellm_params.other,
                &PARAMS_NOT_MODELLED,
            )?;
            self.check_unknown(&format!("model_list[{i}].model_info."), &d.model_info.other, &[])?;
        }
        if let Some(cp) = &cfg.litellm_settings.cache_params {
            self.check_unknown("litellm_settings.cache_params.", &cp.other, &["mode", "namespace"])?;
        }
        Ok(())
    }

    /// `router_settings.routing_strategy` (default `simple-shuffle`), one routesim reproduces; its
    /// `routing_strategy_args` are read by latency-based routing only.
    fn routing_strategy(&mut self, rs: &RouterSettings) -> Result<String, ImportError> {
        let strategy = rs.routing_strategy.clone().unwrap_or_else(|| "simple-shuffle".into());
        if !STRATEGIES.contains(&strategy.as_str()) {
            return Err(self.err(
                "router_settings.routing_strategy",
                format!(
                    "unknown or unsupported routing strategy `{strategy}`: expected one of {}",
                    STRATEGIES.join(", ")
                ),
            ));
        }
        if strategy == "simple-shuffle" && rs.routing_strategy.is_none() {
            self.assumptions.push("routing_strategy unset: LiteLLM's default `simple-shuffle`".into());
        }
        if rs.routing_strategy_args.is_some() && strategy != "latency-based-routing" {
            self.warnings.push(format!(
                "router_settings.routing_strategy_args (used by latency-based-routing only, not `{strategy}`)"
            ));
        }
        Ok(strategy)
    }

    /// The model groups of `model_list` (each `model_name`, in config order).
    fn model_groups(&self, model_list: &[Deployment]) -> Result<ModelGroups, ImportError> {
        let mut order: Vec<String> = Vec::new();
        let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, d) in model_list.iter().enumerate() {
            if d.model_name.trim().is_empty() {
                return Err(self.err(&format!("model_list[{i}].model_name"), "expected a non-empty model_name".into()));
            }
            if !members.contains_key(&d.model_name) {
                order.push(d.model_name.clone());
            }
            members.entry(d.model_name.clone()).or_default().push(i);
        }
        let names: BTreeMap<String, String> = order.iter().map(|m| (m.clone(), slug(m))).collect();
        Ok(ModelGroups { order, members, names })
    }

    /// The endpoints, one per `model_list` entry: id (`model_info.id`, else `<group>-<k>`, unique), provider and
    /// model, prices, quotas, concurrency, context window, weight and upstream.
    fn deployments(&mut self, cfg: &Config, groups: &ModelGroups) -> Vec<EndpointDraft> {
        let rs = &cfg.router_settings;
        let mut endpoints: Vec<EndpointDraft> = Vec::new();
        let mut ids = Vec::new();
        for (i, d) in cfg.model_list.iter().enumerate() {
            let p = &d.litellm_params;
            let group = &groups.members[&d.model_name];
            let k = group.iter().position(|&j| j == i).unwrap_or(0) + 1;
            let mut id = match &d.model_info.id {
                Some(x) => slug(x),
                None => format!("{}-{k}", slug(&d.model_name)),
            };
            while ids.contains(&id) || groups.names.values().any(|g| g == &id) {
                id.push('x');
            }
            ids.push(id.clone());
            let (provider, _) = p.model.split_once('/').unwrap_or(("openai", &p.model));
            let upstream = upstream(p, provider, &mut self.warnings, &mut self.assumptions, i);
            let weight = p.weight.unwrap_or(1.0);
            endpoints.push(EndpointDraft {
                id,
                provider: provider.to_string(),
                model: d.model_info.base_model.clone().unwrap_or_else(|| p.model.clone()),
                input_cost_per_token: p.input_cost_per_token.or(d.model_info.input_cost_per_token),
                output_cost_per_token: p.output_cost_per_token.or(d.model_info.output_cost_per_token),
                rpm: d.rpm.or(p.rpm).or(d.model_info.rpm),
                tpm: d.tpm.or(p.tpm).or(d.model_info.tpm),
                concurrency: p.max_parallel_requests.or(rs.default_max_parallel_requests),
                context_window: d.model_info.max_input_tokens.map(|c| c.min(u32::MAX as u64) as u32),
                weight,
                upstream,
            });
            if (p.max_parallel_requests.is_some() || rs.default_max_parallel_requests.is_some())
                && !self.approximations.iter().any(|a: &String| a.starts_with("max_parallel_requests"))
            {
                self.approximations.push(
                    "max_parallel_requests: LiteLLM queues a request for a free slot; routesim keeps a full \
                     deployment out of the choice (`limits.concurrency`)"
                        .into(),
                );
            }
            if p.timeout.is_some() || p.stream_timeout.is_some() {
                self.approximations.push(format!(
                    "model_list[{i}].litellm_params.timeout/stream_timeout: per-deployment timeouts are applied by \
                     the gateway only (`upstream.timeout`); the simulation uses the router-wide ones"
                ));
            }
            if p.tags.is_some() {
                self.warnings.push(format!("model_list[{i}].litellm_params.tags (tag routing is off)"));
            }
        }
        endpoints
    }

    /// One group policy per model group, of the strategy's kind (`order` tiers nest under a `fallback`), and the
    /// names of the balancing ones; `routing_strategy_args.max_latency_list_size` checked.
    fn group_policies(
        &self,
        cfg: &Config,
        strategy: &str,
        model_groups: &ModelGroups,
        endpoints: &[EndpointDraft],
    ) -> Result<(Vec<PolicySpec>, Vec<String>), ImportError> {
        let args = cfg.router_settings.routing_strategy_args.as_ref();
        let mut groups: Vec<PolicySpec> = Vec::new();
        let mut balancing = Vec::new();
        let mut tiers: Vec<PolicySpec> = Vec::new();
        let samples = args.and_then(|a| a.max_latency_list_size);
        if let Some(k) = samples
            && !(1..=router_core::state::MAX_LATENCY_SAMPLES as u32).contains(&k)
        {
            return Err(self.err(
                "router_settings.routing_strategy_args.max_latency_list_size",
                format!("expected 1..={}, found {k}", router_core::state::MAX_LATENCY_SAMPLES),
            ));
        }
        for m in &model_groups.order {
            let gname = model_groups.names[m].clone();
            let idx = &model_groups.members[m];
            let orders: Vec<Option<u32>> = idx.iter().map(|&i| cfg.model_list[i].litellm_params.order).collect();
            if orders.iter().any(Option::is_some) {
                let mut levels: Vec<u32> = orders.iter().map(|o| o.unwrap_or(u32::MAX)).collect();
                levels.sort_unstable();
                levels.dedup();
                let mut tier_names = Vec::new();
                for level in levels {
                    let sub: Vec<usize> = idx
                        .iter()
                        .copied()
                        .filter(|&i| cfg.model_list[i].litellm_params.order.unwrap_or(u32::MAX) == level)
                        .collect();
                    let tname =
                        if level == u32::MAX { format!("{gname}@unordered") } else { format!("{gname}@order{level}") };
                    tiers.push(strategy_spec(&tname, strategy, &sub, cfg, endpoints, args, samples));
                    balancing.push(tname.clone());
                    tier_names.push(TargetSpec::Name(tname));
                }
                let mut g = PolicySpec::new(gname.clone(), PolicyKind::Fallback);
                g.description =
                    Some(format!("LiteLLM model group `{m}`: the lowest `order` with a healthy deployment"));
                g.targets = tier_names;
                groups.push(g);
            } else {
                groups.push(strategy_spec(&gname, strategy, idx, cfg, endpoints, args, samples));
                balancing.push(gname.clone());
            }
        }
        groups.extend(tiers);
        Ok((groups, balancing))
    }

    /// `fallbacks` (`router_settings` wins over `litellm_settings`, as the proxy passes them to the Router): model
    /// group policy -> its fallback group policies.
    fn fallbacks(
        &self,
        rs: &RouterSettings,
        ls: &LitellmSettings,
        model_groups: &ModelGroups,
    ) -> Result<BTreeMap<String, Vec<String>>, ImportError> {
        let (group_order, group_names) = (&model_groups.order, &model_groups.names);
        let mut fallbacks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let (fb, fb_path) = match (&rs.fallbacks, &ls.fallbacks) {
            (Some(f), _) => (Some(f), "router_settings.fallbacks"),
            (None, Some(f)) => (Some(f), "litellm_settings.fallbacks"),
            _ => (None, ""),
        };
        for (i, entry) in fb.into_iter().flatten().enumerate() {
            for (from, to) in entry {
                let Some(g) = group_names.get(from) else {
                    return Err(self.err(
                        &format!("{fb_path}[{i}].{from}"),
                        format!("unknown model group `{from}`: expected one of {}", group_order.join(", ")),
                    ));
                };
                let mut chain = Vec::new();
                for (j, t) in to.iter().enumerate() {
                    match group_names.get(t) {
                        Some(tg) => chain.push(tg.clone()),
                        None => {
                            return Err(self.err(
                                &format!("{fb_path}[{i}].{from}[{j}]"),
                                format!(
                                    "unknown fallback model group `{t}`: expected one of {}",
                                    group_order.join(", ")
                                ),
                            ));
                        }
                    }
                }
                fallbacks.insert(g.clone(), chain);
            }
        }
        Ok(fallbacks)
    }

    /// `context_window_fallbacks` and `content_policy_fallbacks`: noted, as they never trigger in a simulation.
    fn unmodelled_fallbacks(&mut self, rs: &RouterSettings, ls: &LitellmSettings) {
        for (name, list) in [
            ("context_window_fallbacks", rs.context_window_fallbacks.as_ref().or(ls.context_window_fallbacks.as_ref())),
            ("content_policy_fallbacks", rs.content_policy_fallbacks.as_ref().or(ls.content_policy_fallbacks.as_ref())),
        ] {
            if list.is_some_and(|l| !l.is_empty()) {
                self.approximations.push(format!(
                    "{name}: routesim never sends a request to a deployment whose context window is too small and \
                     simulates no content-policy refusals, so these fallbacks never trigger in the simulation"
                ));
            }
        }
    }

    /// `num_retries` (`router_settings`, else `litellm_settings`, else LiteLLM's default) and `retry_after`: the
    /// root's retry policy and LiteLLM's retry-then-fallback order over `fallbacks`.
    fn retries(
        &mut self,
        rs: &RouterSettings,
        ls: &LitellmSettings,
        fallbacks: BTreeMap<String, Vec<String>>,
        root: &mut PolicySpec,
    ) -> Result<(), ImportError> {
        let num_retries = match rs.num_retries.or(ls.num_retries) {
            Some(n) => n,
            None => {
                self.assumptions.push(format!(
                    "num_retries unset: {LITELLM_DEFAULT_NUM_RETRIES}, LiteLLM's Router default (LiteLLM 1.110.2)"
                ));
                LITELLM_DEFAULT_NUM_RETRIES
            }
        };
        let longest = fallbacks.values().map(Vec::len).max().unwrap_or(0) as u32;
        let attempts = (1 + num_retries) * (1 + longest);
        if attempts > 100 {
            return Err(self.err(
                "router_settings.num_retries",
                format!(
                    "(1 + num_retries) x (1 + longest fallback chain) = {attempts} attempts: routesim allows at most \
                     100"
                ),
            ));
        }
        root.retry = Some(RetryConfig {
            max_attempts: attempts,
            retry_on: vec![ErrorClass::RateLimited, ErrorClass::Server, ErrorClass::Timeout],
            budget: None,
            same_endpoint: true,
            ..RetryConfig::default()
        });
        root.group_retry =
            Some(GroupRetryConfig { num_retries, retry_after: secs(rs.retry_after.unwrap_or(0.0)), fallbacks });
        Ok(())
    }

    /// Cooldowns instead of the circuit breaker (`disable_cooldowns`, `allowed_fails`, `allowed_fails_policy`,
    /// `cooldown_time`); single-deployment groups flagged as LiteLLM treats them.
    fn cooldowns(
        &mut self,
        rs: &RouterSettings,
        model_groups: &ModelGroups,
        endpoints: &[EndpointDraft],
        root: &mut PolicySpec,
    ) -> Result<(), ImportError> {
        let mut tracking = TrackingConfig::default();
        tracking.circuit.enabled = false;
        root.tracking = Some(tracking);
        if rs.disable_cooldowns == Some(true) {
            return Ok(());
        }
        let allowed_fails = match (&rs.allowed_fails_policy, rs.allowed_fails) {
            (Some(policy), _) => {
                let values: Vec<u32> = policy.values().copied().collect();
                match values.first() {
                    Some(&v) if values.iter().all(|&x| x == v) => Some(v),
                    None => rs.allowed_fails,
                    _ => {
                        return Err(self.err(
                            "router_settings.allowed_fails_policy",
                            "different allowed fails per exception type change routing and are not modelled: \
                             routesim applies one `allowed_fails` to every error; give them all the same value"
                                .into(),
                        ));
                    }
                }
            }
            // An explicit value, even LiteLLM's default 3, switches LiteLLM to the per-failure counter
            // (`_is_allowed_fails_set_on_router` reads `explicit_allowed_fails`, LiteLLM 1.110.2).
            (None, a) => a,
        };
        let single: Vec<String> = model_groups
            .order
            .iter()
            .filter(|m| model_groups.members[*m].len() == 1)
            .map(|m| endpoints[model_groups.members[m][0]].id.clone())
            .collect();
        if rs.cooldown_time.is_none() {
            self.assumptions.push("cooldown_time unset: LiteLLM's default 5s".into());
        }
        root.cooldown = Some(CooldownConfig {
            allowed_fails,
            cooldown_time: secs(rs.cooldown_time.unwrap_or(5.0)),
            single_deployment: single,
        });
        Ok(())
    }

    /// `enable_pre_call_checks: false`: noted, as routesim always checks the context window.
    fn pre_call_checks(&mut self, rs: &RouterSettings) {
        if rs.enable_pre_call_checks == Some(false) {
            self.approximations.push(
                "enable_pre_call_checks: false: routesim always keeps a deployment whose context window is too \
                 small out of the choice"
                    .into(),
            );
        }
    }

    /// `litellm_settings.cache` with its `cache_params` (`ttl`, `type`): an exact-match response cache.
    fn cache(&mut self, ls: &LitellmSettings, root: &mut PolicySpec) {
        if ls.cache != Some(true) {
            return;
        }
        let cp = ls.cache_params.as_ref();
        let ttl = cp.and_then(|c| c.ttl).unwrap_or(600.0);
        if cp.and_then(|c| c.ttl).is_none() {
            self.assumptions.push("cache_params.ttl unset: 600s (LiteLLM's default cache ttl)".into());
        }
        if let Some(kind) = cp.and_then(|c| c.kind.as_deref())
            && kind != "local"
            && kind != "redis"
            && kind != "s3"
        {
            self.approximations.push(format!("cache type `{kind}` is simulated as an exact-match cache"));
        }
        root.cache = Some(CacheConfig { ttl: secs(ttl), capacity: 100_000 });
    }
}

/// The root policy: a `conditional` on the request's `model` metadata, one rule per model group.
fn root_policy(strategy: &str, model_groups: &ModelGroups) -> PolicySpec {
    let mut root = PolicySpec::new("litellm", PolicyKind::Conditional);
    root.description = Some(format!("LiteLLM `{strategy}` as its router runs it (imported)"));
    root.rules = model_groups
        .order
        .iter()
        .map(|m| {
            let mut when = BTreeMap::new();
            when.insert("model".to_string(), RawValue::Str(m.clone()));
            RuleSpec { when: RawValue::Map(when), target: model_groups.names[m].clone() }
        })
        .collect();
    root
}

/// `router_settings.timeout` (else `litellm_settings.request_timeout`) and `stream_timeout`: the root's
/// attempt and time-to-first-token timeouts.
fn timeouts(rs: &RouterSettings, ls: &LitellmSettings, root: &mut PolicySpec) {
    if let Some(t) = rs.timeout.or(ls.request_timeout) {
        root.timeout = Some(secs(t));
    }
    if let Some(t) = rs.stream_timeout {
        root.ttft_timeout = Some(secs(t));
    }
}

/// The group policy of LiteLLM strategy `strategy` over the deployments `idx`.
fn strategy_spec(
    name: &str,
    strategy: &str,
    idx: &[usize],
    cfg: &Config,
    endpoints: &[EndpointDraft],
    args: Option<&StrategyArgs>,
    samples: Option<u32>,
) -> PolicySpec {
    let ids: Vec<&str> = idx.iter().map(|&i| endpoints[i].id.as_str()).collect();
    let kind = match strategy {
        "least-busy" => PolicyKind::LitellmLeastBusy,
        "usage-based-routing-v2" => PolicyKind::LitellmUsageV2,
        "latency-based-routing" => PolicyKind::LitellmLatency,
        "cost-based-routing" => PolicyKind::LitellmCost,
        _ => PolicyKind::Weighted,
    };
    let mut s = PolicySpec::new(name, kind);
    if kind == PolicyKind::Weighted {
        // simple_shuffle.py (LiteLLM 1.110.2): the first of `weight`, `rpm`, `tpm` that some deployment sets above
        // 0 weighs, a deployment without it counting 0; without any, a uniform pick.
        let metric = |i: usize, k: usize| -> f64 {
            let p = &cfg.model_list[i].litellm_params;
            match k {
                0 => p.weight.unwrap_or(0.0),
                1 => p.rpm.unwrap_or(0) as f64,
                _ => p.tpm.unwrap_or(0) as f64,
            }
        };
        let key = (0..3).find(|&k| idx.iter().any(|&i| metric(i, k) > 0.0));
        s.targets = idx
            .iter()
            .zip(&ids)
            .map(|(&i, id)| TargetSpec::Weighted { id: id.to_string(), weight: key.map_or(1.0, |k| metric(i, k)) })
            .collect();
    } else {
        s.targets = ids.iter().map(|id| TargetSpec::Name(id.to_string())).collect();
    }
    if kind == PolicyKind::LitellmLatency {
        s.buffer = args.and_then(|a| a.lowest_latency_buffer);
        s.ttl = args.and_then(|a| a.ttl).map(secs);
        s.samples = samples;
    }
    s
}

/// The endpoint's upstream for routesim-gateway: `api_base` (else the provider's OpenAI-compatible public base,
/// noted as an assumption), the key as a reference. An `api_base` that is itself an environment reference, or a
/// provider without a known OpenAI-compatible base, gives no upstream, with a warning saying so.
fn upstream(
    p: &Params,
    provider: &str,
    warnings: &mut Vec<String>,
    assumptions: &mut Vec<String>,
    i: usize,
) -> Option<router_core::UpstreamConfig> {
    let key_env = match p.api_key.as_deref() {
        Some(k) => match env_reference(k) {
            Some(name) => Some(name.to_string()),
            None => {
                warnings.push(format!("model_list[{i}].litellm_params.api_key (a literal key: not copied)"));
                None
            }
        },
        None => None,
    };
    let base = match p.api_base.as_deref() {
        Some(b) if env_reference(b).is_some() => {
            warnings.push(format!(
                "model_list[{i}].litellm_params.api_base (`{b}` is an environment reference, not a URL: no \
                 upstream written; set `upstream.base_url` for routesim-gateway)"
            ));
            return None;
        }
        Some(b) => b.to_string(),
        None => match OPENAI_COMPATIBLE_BASES.iter().find(|(p, _)| *p == provider) {
            Some((_, b)) => {
                if provider != "openai" {
                    assumptions.push(format!(
                        "model_list[{i}] (`{}`): upstream {b}, {provider}'s OpenAI-compatible API",
                        p.model
                    ));
                }
                b.to_string()
            }
            None => {
                warnings.push(format!(
                    "model_list[{i}].litellm_params (`{}`: no `api_base`, and routesim knows no OpenAI-compatible \
                     base URL for provider `{provider}`: no upstream written; set `upstream.base_url` for \
                     routesim-gateway)",
                    p.model
                ));
                return None;
            }
        },
    };
    let (_, bare) = p.model.split_once('/').unwrap_or(("", &p.model));
    Some(router_core::UpstreamConfig {
        base_url: base,
        api_key_env: key_env,
        model: Some(bare.to_string()),
        timeout: p.timeout.map(secs),
        auth: router_core::UpstreamAuth::Bearer,
    })
}

/// LiteLLM's `Duration` for seconds given as a number.
pub fn duration_secs(d: Duration) -> f64 {
    d.nanos() as f64 / 1e9
}
