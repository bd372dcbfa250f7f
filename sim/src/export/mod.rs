//! `routesim export`: a policy (a scenario's, or `routesim tune`'s `best-policy.toml`) written as the closest
//! LiteLLM or Portkey config, with a comment block listing every part of the policy the target cannot express.
//!
//! [`litellm`] and [`portkey`] each build the config text and the list of what they could not carry over.
//! [`round_trip`] then imports the written config back ([`crate::import`]), runs the policy and that
//! approximation on the scenario's traffic, and reports the metric cost of the approximation (paired
//! differences with their 95% intervals), also written into the comment block.

pub mod litellm;
pub mod portkey;
pub mod round_trip;

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
    /// The scenario's `[client] timeout`, written as the gateway's timeout when the policy sets none.
    pub client_timeout: Option<router_core::Duration>,
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

/// The status codes an error list names (Portkey's `on_status_codes`): a class's codes as [`codes_of`] gives
/// them, a status itself; sorted, each once.
pub fn codes_of_matches(list: &[router_core::ErrorMatch]) -> Vec<u16> {
    use router_core::ErrorMatch;
    let mut out = Vec::new();
    for m in list {
        match *m {
            ErrorMatch::Class(c) => out.extend(codes_of(&[c])),
            ErrorMatch::Status(s) => out.push(s),
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

/// LiteLLM's provider prefixes: (routesim or gateway provider name, LiteLLM prefix). A provider not listed is
/// reached as `openai/` with an `api_base` (an OpenAI-compatible server).
pub const LITELLM_PROVIDERS: [(&str, &str); 20] = [
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("google", "gemini"),
    ("gemini", "gemini"),
    ("vertex_ai", "vertex_ai"),
    ("vertex-ai", "vertex_ai"),
    ("azure", "azure"),
    ("azure-openai", "azure"),
    ("mistral", "mistral"),
    ("mistral-ai", "mistral"),
    ("groq", "groq"),
    ("deepseek", "deepseek"),
    ("together_ai", "together_ai"),
    ("together-ai", "together_ai"),
    ("bedrock", "bedrock"),
    ("ollama", "ollama"),
    ("hosted_vllm", "hosted_vllm"),
    ("self-hosted", "hosted_vllm"),
    ("vllm", "hosted_vllm"),
    ("fireworks_ai", "fireworks_ai"),
];

/// Portkey's provider names: (routesim or LiteLLM provider name, Portkey provider). A provider not listed is
/// reached as `openai` with a `custom_host` (an OpenAI-compatible server).
pub const PORTKEY_PROVIDERS: [(&str, &str); 17] = [
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("google", "google"),
    ("gemini", "google"),
    ("vertex_ai", "vertex-ai"),
    ("vertex-ai", "vertex-ai"),
    ("azure", "azure-openai"),
    ("azure-openai", "azure-openai"),
    ("mistral", "mistral-ai"),
    ("mistral-ai", "mistral-ai"),
    ("groq", "groq"),
    ("deepseek", "deepseek"),
    ("together_ai", "together-ai"),
    ("together-ai", "together-ai"),
    ("bedrock", "bedrock"),
    ("ollama", "ollama"),
    ("fireworks_ai", "fireworks-ai"),
];

/// Where an endpoint is, as a gateway names it: its provider and the bare model name.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    /// The endpoint's provider (`openai`, `google`, `self-hosted`), or the LiteLLM prefix its model carries
    /// (`azure` for `azure/gpt-4o`).
    pub provider: String,
    /// The model name without a provider prefix (the upstream's model when it names one).
    pub model: String,
    /// The OpenAI-compatible base URL routesim-gateway would call, if any.
    pub base_url: Option<String>,
    /// The environment variable holding its key, if any.
    pub key_env: Option<String>,
}

/// The endpoint as a gateway sees it (a LiteLLM-style `prefix/model` is split when the prefix is a known
/// provider; otherwise the whole name is the model).
pub fn deployment(ep: &EndpointSpec) -> Deployment {
    let known = |p: &str| LITELLM_PROVIDERS.iter().any(|(k, v)| *k == p || *v == p);
    let (provider, model) = match ep.model.split_once('/') {
        Some((p, m)) if known(p) => (p.to_string(), m.to_string()),
        _ => (if ep.provider.is_empty() { "openai".to_string() } else { ep.provider.clone() }, ep.model.clone()),
    };
    let upstream = ep.upstream.as_ref();
    let model = upstream.and_then(|u| u.model.clone()).filter(|m| !m.is_empty()).unwrap_or(model);
    let model = if model.is_empty() { ep.id.clone() } else { model };
    Deployment {
        provider,
        model,
        base_url: upstream.map(|u| u.base_url.clone()),
        key_env: upstream.and_then(|u| u.api_key_env.clone()),
    }
}

/// The conventional environment variable of a provider's key (`OPENAI_API_KEY`), else `<ID>_API_KEY`.
pub fn default_key_env(provider: &str, id: &str) -> String {
    let known = match provider {
        "openai" => "OPENAI_API_KEY",
        "anthropic" => "ANTHROPIC_API_KEY",
        "google" | "gemini" => "GEMINI_API_KEY",
        "azure" | "azure-openai" => "AZURE_API_KEY",
        "mistral" | "mistral-ai" => "MISTRAL_API_KEY",
        "groq" => "GROQ_API_KEY",
        "deepseek" => "DEEPSEEK_API_KEY",
        _ => "",
    };
    if known.is_empty() {
        let id: String =
            id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("{id}_API_KEY")
    } else {
        known.to_string()
    }
}

/// Public base URLs of providers (their OpenAI-compatible APIs): a gateway reaches these providers natively,
/// so an export names the provider and leaves the URL out.
pub const PUBLIC_BASES: [&str; 3] = [
    "https://api.openai.com/v1",
    "https://api.anthropic.com/v1",
    "https://generativelanguage.googleapis.com/v1beta/openai",
];

/// Whether `url` is a provider's public base (a trailing `/` aside).
pub fn is_public_base(url: &str) -> bool {
    PUBLIC_BASES.contains(&url.trim_end_matches('/'))
}
