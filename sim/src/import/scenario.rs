//! The scenario an import writes: endpoints completed with provider models and prices, the imported policy as
//! the baseline, routesim's own policies beside it (the same routing structure, each balancing group replaced
//! by one routesim policy, with routesim's default resilience), and a comment block of what was assumed.

use super::prices::{PriceMap, ProviderModels};
use super::{ImportError, Imported};
use crate::provider::EndpointSpec;
use crate::scenario::Scenario;
use router_core::{Duration, Limits, PolicyKind, PolicySpec, Price, TargetSpec};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Provider model assumed for an endpoint that `--providers` does not describe (flagged in the file).
pub const DEFAULT_TTFT_MS: u64 = 600;
/// Time per output token assumed likewise.
pub const DEFAULT_TPOT_MS: u64 = 20;
/// Concurrent requests a provider serves for the account, assumed likewise.
pub const DEFAULT_SLOTS: u32 = 64;
/// Share of attempts a provider answers with a 429, assumed likewise (so that retries, fallbacks and
/// cooldowns act, and an export's cost of approximating them is measured, not 0 by construction).
pub const DEFAULT_RATE_LIMITED: f64 = 0.002;
/// Share of attempts a provider answers with a 5xx, assumed likewise.
pub const DEFAULT_SERVER_ERRORS: f64 = 0.003;
/// Request rate of the imported traffic (requests per second), assumed.
pub const DEFAULT_RATE: f64 = 5.0;

/// routesim's own policies set beside the imported one: (name suffix, kind, buffer).
const ALTERNATIVES: [(&str, PolicyKind, Option<f64>); 3] = [
    ("least-outstanding", PolicyKind::LeastOutstanding, None),
    ("p2c", PolicyKind::P2c, None),
    ("latency", PolicyKind::Latency, Some(0.2)),
];

/// What [`render`] produced.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The scenario's TOML text.
    pub text: String,
    /// Endpoints whose provider model is the documented default.
    pub defaulted: Vec<String>,
}

/// Completes the endpoints of `imp`, adds routesim's policies, writes the scenario and checks that it compiles
/// (as if written to `out`).
pub fn render(
    imp: &Imported,
    providers: Option<&ProviderModels>,
    prices: Option<&PriceMap>,
    name: &str,
    out: &Path,
) -> Result<Rendered, ImportError> {
    let mut endpoints = Vec::new();
    let mut missing = Vec::new();
    let mut defaulted = Vec::new();
    let mut assumptions = imp.assumptions.clone();
    let known = PriceMap::known();
    let mut assumed_prices = Vec::new();
    for d in &imp.endpoints {
        let fitted = providers.and_then(|p| p.find(&d.id, &d.model));
        let mut spec = match fitted {
            Some(f) => EndpointSpec { id: d.id.clone(), ..f.clone() },
            None => {
                defaulted.push(d.id.clone());
                default_spec(&d.id)
            }
        };
        spec.provider = d.provider.clone();
        spec.model = d.model.clone();
        spec.weight = d.weight;
        spec.upstream = d.upstream.clone();
        let given = prices.and_then(|p| p.lookup(&d.model));
        let known_entry = known.lookup_undated(&d.model);
        let entry = given.or(known_entry);
        spec.price = if d.input_cost_per_token.is_some() || d.output_cost_per_token.is_some() {
            Price {
                input_per_mtok: round6(d.input_cost_per_token.unwrap_or(0.0) * 1e6),
                output_per_mtok: round6(d.output_cost_per_token.unwrap_or(0.0) * 1e6),
            }
        } else {
            match (fitted.map(|f| f.price), entry) {
                (Some(p), _) if p.input_per_mtok > 0.0 || p.output_per_mtok > 0.0 => p,
                (_, Some(e)) if e.input_cost_per_token.is_some() || e.output_cost_per_token.is_some() => {
                    let p = Price {
                        input_per_mtok: round6(e.input_cost_per_token.unwrap_or(0.0) * 1e6),
                        output_per_mtok: round6(e.output_cost_per_token.unwrap_or(0.0) * 1e6),
                    };
                    if given.is_none() {
                        assumed_prices.push(format!(
                            "{} ({}): ${} in / ${} out per 1M tokens",
                            d.id, d.model, p.input_per_mtok, p.output_per_mtok
                        ));
                    }
                    p
                }
                _ => {
                    missing.push(format!("{} ({})", d.id, d.model));
                    Price::default()
                }
            }
        };
        let fitted_limits = spec.limits;
        spec.limits = Limits {
            rpm: d.rpm.or(fitted_limits.rpm),
            tpm: d.tpm.or(fitted_limits.tpm),
            concurrency: d.concurrency.or(fitted_limits.concurrency),
            context_window: d
                .context_window
                .or(fitted_limits.context_window)
                .or_else(|| entry.and_then(|e| e.max_input_tokens).map(|c| c.min(u32::MAX as u64) as u32)),
        };
        endpoints.push(spec);
    }
    if !assumed_prices.is_empty() {
        assumptions.push(format!(
            "prices of {}: list prices from routesim's table of well-known models ({}); set \
             input_cost_per_token and output_cost_per_token in the config, or pass --prices, for your own",
            assumed_prices.join(", "),
            PriceMap::known_source()
        ));
    }
    if !missing.is_empty() {
        return Err(ImportError {
            file: imp.file.clone(),
            path: String::new(),
            line: None,
            message: format!(
                "no price for {}: set input_cost_per_token and output_cost_per_token in the config, or pass \
                 --prices with LiteLLM's model_prices_and_context_window.json, or --providers with fitted prices \
                 (routesim's own table of well-known models has none for them)",
                missing.join(", ")
            ),
        });
    }
    if !defaulted.is_empty() {
        assumptions.push(format!(
            "provider models of {}: documented defaults (TTFT lognormal median {DEFAULT_TTFT_MS}ms sigma 0.5, \
             {DEFAULT_TPOT_MS}ms per output token, {DEFAULT_SLOTS} slots, {DEFAULT_RATE_LIMITED} of attempts answered \
             429 and {DEFAULT_SERVER_ERRORS} a 5xx); pass --providers with \
             `routesim fit` output to use measured ones",
            defaulted.join(", ")
        ));
    }
    assumptions.push(format!(
        "traffic: {DEFAULT_RATE} requests/s, Poisson; input tokens lognormal median 800, output lognormal median 250; \
         the classes are the ones the imported routing distinguishes, equally frequent"
    ));

    let mut policies = vec![imp.policy.clone()];
    let mut groups = imp.groups.clone();
    for (suffix, kind, buffer) in ALTERNATIVES {
        let (root, gs) = alternative(imp, suffix, kind, buffer);
        policies.push(root);
        groups.extend(gs);
    }

    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Imported from the {} config {} by `routesim import {}`.\n#\n# Policy `{}` reproduces the gateway's \
         routing (the baseline); {} run routesim's own policies on the same routing structure with routesim's \
         default retries and circuit breaker, so `routesim run` shows what would change if you switched.",
        imp.gateway,
        imp.file.display(),
        imp.gateway.to_lowercase(),
        imp.policy.name,
        policies[1..].iter().map(|p| format!("`{}`", p.name)).collect::<Vec<_>>().join(", ")
    );
    comment_block(&mut text, "ASSUMPTIONS (edit them to match your traffic and providers)", &assumptions);
    comment_block(&mut text, "APPROXIMATIONS (what routesim reproduces only approximately)", &imp.approximations);
    comment_block(&mut text, "IGNORED (keys read but not modelled: they do not change routing)", &imp.warnings);
    text.push('\n');

    #[derive(Serialize)]
    struct Head<'a> {
        name: &'a str,
        description: String,
        seed: u64,
        replications: u32,
        requests: u64,
    }
    let head = Head {
        name,
        description: format!("{} config {} imported by routesim", imp.gateway, imp.file.display()),
        seed: 1,
        replications: 3,
        requests: 20_000,
    };
    text += &toml::to_string(&head).map_err(|e| internal(imp, e))?;
    let _ = writeln!(text, "\n[traffic]\nrate = {DEFAULT_RATE:.1}\n");
    for c in &imp.classes {
        let _ = writeln!(
            text,
            "[[traffic.classes]]\nname = {}\ninput_tokens = {{ dist = \"lognormal\", median = 800, sigma = 0.8 }}\n\
             output_tokens = {{ dist = \"lognormal\", median = 250, sigma = 0.6 }}\nstreaming = {}",
            toml_str(&c.name),
            imp.streaming
        );
        if !c.metadata.is_empty() {
            let kv: Vec<String> = c.metadata.iter().map(|(k, v)| format!("{} = {v}", toml_str(k))).collect();
            let _ = writeln!(text, "metadata = {{ {} }}", kv.join(", "));
        }
        text.push('\n');
    }
    #[derive(Serialize)]
    struct Tail<'a> {
        endpoints: &'a [EndpointSpec],
        policies: &'a [PolicySpec],
        // An empty `groups = []` would be written as a key of the last `[[traffic.classes]]` table.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        groups: &'a [PolicySpec],
    }
    text += &toml::to_string(&Tail { endpoints: &endpoints, policies: &policies, groups: &groups })
        .map_err(|e| internal(imp, e))?;

    let scenario = Scenario::parse(out, &text).map_err(|e| compile_error(imp, e))?;
    scenario.compile(out).map_err(|e| compile_error(imp, e))?;
    Ok(Rendered { text, defaulted })
}

fn compile_error(imp: &Imported, e: crate::scenario::diag::ScenarioError) -> ImportError {
    ImportError {
        file: imp.file.clone(),
        path: String::new(),
        line: None,
        message: format!("the imported scenario does not compile ({e}); the config is inconsistent there"),
    }
}

fn internal(imp: &Imported, e: impl std::fmt::Display) -> ImportError {
    ImportError {
        file: imp.file.clone(),
        path: String::new(),
        line: None,
        message: format!("writing the scenario: {e}"),
    }
}

fn comment_block(text: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(text, "#\n# {title}:");
    for l in lines {
        let _ = writeln!(text, "#   - {l}");
    }
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The provider model assumed when none is given (see the constants).
pub fn default_spec(id: &str) -> EndpointSpec {
    let text = format!(
        "id = {}\nttft = {{ dist = \"lognormal\", median = \"{DEFAULT_TTFT_MS}ms\", sigma = 0.5 }}\n\
         tpot = {{ dist = \"lognormal\", median = \"{DEFAULT_TPOT_MS}ms\", sigma = 0.3 }}\nslots = {DEFAULT_SLOTS}\n\
         errors = {{ rate_limited = {DEFAULT_RATE_LIMITED}, server = {DEFAULT_SERVER_ERRORS} }}\n",
        toml_str(id)
    );
    toml::from_str(&text).expect("the default provider model is valid")
}

/// Renames every reference `spec` makes to another policy or group (targets, conditional rules and default,
/// group-retry fallbacks) with `rename`.
pub fn rename_references(spec: &mut PolicySpec, rename: &impl Fn(&str) -> String) {
    for t in &mut spec.targets {
        match t {
            TargetSpec::Name(n) => *n = rename(n),
            TargetSpec::Weighted { id, .. } => *id = rename(id),
        }
    }
    for r in &mut spec.rules {
        r.target = rename(&r.target);
    }
    spec.default = spec.default.as_deref().map(rename);
    if let Some(g) = &mut spec.group_retry {
        g.fallbacks = g.fallbacks.iter().map(|(k, v)| (rename(k), v.iter().map(|n| rename(n)).collect())).collect();
    }
    if let Some(t) = &mut spec.target_retry {
        t.fallback_on = t.fallback_on.iter().map(|(k, v)| (rename(k), v.clone())).collect();
    }
}

/// The imported routing with each balancing group (and the root, if it balances) replaced by `kind`, its groups
/// renamed `<name>~<suffix>`, and routesim's default resilience.
pub fn alternative(
    imp: &Imported,
    suffix: &str,
    kind: PolicyKind,
    buffer: Option<f64>,
) -> (PolicySpec, Vec<PolicySpec>) {
    let names: Vec<&str> = imp.groups.iter().map(|g| g.name.as_str()).collect();
    let rename = |n: &str| if names.contains(&n) { format!("{n}~{suffix}") } else { n.to_string() };
    let convert = |spec: &PolicySpec, balancing: bool| -> PolicySpec {
        let mut s = if balancing {
            let mut s = PolicySpec::new(spec.name.clone(), kind);
            s.targets = spec.targets.clone();
            s.buffer = buffer;
            s
        } else {
            spec.clone()
        };
        rename_references(&mut s, &rename);
        s
    };
    let root_balances = imp.balancing.iter().any(|b| b == &imp.policy.name);
    let mut root = convert(&imp.policy, root_balances);
    root.name = suffix.to_string();
    root.description = Some(format!("routesim `{}` in place of the imported balancing", kind.name()));
    // routesim's default resilience: its retry policy and circuit breaker instead of the gateway's.
    root.cooldown = None;
    root.group_retry = None;
    root.target_retry = None;
    root.retry = Some(router_core::RetryConfig::default());
    root.tracking = None;
    root.fallbacks = None;
    root.timeout = imp.policy.timeout;
    root.ttft_timeout = imp.policy.ttft_timeout;
    root.cache = imp.policy.cache;
    let groups = imp
        .groups
        .iter()
        .map(|g| {
            let mut s = convert(g, imp.balancing.contains(&g.name));
            s.name = rename(&g.name);
            s
        })
        .collect();
    (root, groups)
}

/// A duration of `secs` seconds (as a config gives it), rounded to the millisecond.
pub fn secs(secs: f64) -> Duration {
    Duration::from_millis((secs * 1000.0).round().max(0.0) as u64)
}
