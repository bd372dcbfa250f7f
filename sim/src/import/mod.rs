//! `routesim import`: a LiteLLM proxy config (YAML) or a Portkey gateway config (JSON) turned into a scenario
//! that runs as is.
//!
//! Each gateway module ([`litellm`], [`portkey`]) reads its format (serde, with the key path and line of any
//! error) into an [`Imported`]: the endpoints (deployments, targets), the gateway's policy as router-core
//! specs (its strategies as compat policies, see `router_core::policy::compat`), the traffic classes its
//! routing distinguishes, and what it could not carry over. [`scenario::render`] then completes the
//! endpoints with provider models (`--providers`, else documented defaults flagged as assumptions) and prices
//! (the config, `--providers`, `--prices`, else routesim's dated table of well-known models, flagged as
//! assumptions, else an error naming the endpoints without one), puts the imported
//! policy first (the baseline) and routesim's own policies beside it, and checks that the result compiles.

pub mod litellm;
pub mod portkey;
pub mod prices;
pub mod scenario;
pub mod yaml;

use router_core::{PolicySpec, UpstreamConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An endpoint as a gateway config describes it, before provider models and prices are added.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointDraft {
    /// Endpoint id in the scenario.
    pub id: String,
    /// Provider (`azure`, `openai`, ...).
    pub provider: String,
    /// Model name as the gateway calls it (`azure/gpt-4o`), the key of price look-ups.
    pub model: String,
    /// USD per input token, from the config.
    pub input_cost_per_token: Option<f64>,
    /// USD per output token, from the config.
    pub output_cost_per_token: Option<f64>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Requests in flight at most.
    pub concurrency: Option<u32>,
    /// Context window (input tokens).
    pub context_window: Option<u32>,
    /// Static weight.
    pub weight: f64,
    /// Where a gateway would send it (`api_base`, `os.environ/...` key reference).
    pub upstream: Option<UpstreamConfig>,
}

/// A class of requests the imported routing tells apart (a LiteLLM model group, a Portkey condition).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassDraft {
    /// Class name.
    pub name: String,
    /// Metadata its requests carry: key -> the value as TOML text (`"paid"`, `5`, `true`).
    pub metadata: BTreeMap<String, String>,
}

/// A gateway config read into router-core terms.
#[derive(Clone, Debug)]
pub struct Imported {
    /// "LiteLLM" or "Portkey".
    pub gateway: &'static str,
    /// The config file.
    pub file: PathBuf,
    /// The endpoints.
    pub endpoints: Vec<EndpointDraft>,
    /// The gateway's policy (the baseline).
    pub policy: PolicySpec,
    /// Its groups.
    pub groups: Vec<PolicySpec>,
    /// Names of the groups that balance between endpoints: routesim's alternatives replace their kind.
    pub balancing: Vec<String>,
    /// Request classes.
    pub classes: Vec<ClassDraft>,
    /// Whether requests stream by default.
    pub streaming: bool,
    /// Keys read but not modelled because they do not change routing.
    pub warnings: Vec<String>,
    /// Defaults chosen where the config says nothing.
    pub assumptions: Vec<String>,
    /// Parts of the config that routesim reproduces only approximately.
    pub approximations: Vec<String>,
}

/// An error in a gateway config: file, key path, line when known, what was expected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), if path.is_empty() { String::new() } else { format!(": key `{path}`") })]
pub struct ImportError {
    /// The config file.
    pub file: PathBuf,
    /// Key path like `router_settings.routing_strategy` or `targets[1].weight`.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ImportError {
    /// An error at `path` of `file`, with the line of the key found in `text` when it can be.
    pub fn at(file: &Path, text: &str, path: &str, message: impl Into<String>) -> Self {
        ImportError {
            file: file.to_path_buf(),
            path: path.to_string(),
            line: line_of(text, path),
            message: message.into(),
        }
    }
}

/// The line of the last key of `path` (`a.b[2].c` -> `c`) in `text`: its first occurrence as a key after the
/// line of its parent, when the parent can be found. A best effort for errors found after parsing.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let keys: Vec<&str> = path.split(['.', '[']).filter(|k| !k.is_empty() && !k.ends_with(']')).collect();
    let mut from = 0usize;
    let mut line = None;
    for k in keys {
        let found = text[from..].lines().position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&format!("{k}:")) || t.starts_with(&format!("\"{k}\""))
        });
        if let Some(p) = found {
            let abs = text[..from].lines().count() + p;
            line = Some(abs + 1);
            from = text.lines().take(abs).map(|l| l.len() + 1).sum::<usize>().min(text.len());
        }
    }
    line
}

/// Turns a name into an id usable as an endpoint or group name (letters, digits, `-`, `_`, `.`).
pub fn slug(s: &str) -> String {
    let out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect();
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "x".into() } else { out }
}

/// `os.environ/NAME` -> `Some("NAME")`.
pub fn env_reference(v: &str) -> Option<&str> {
    v.strip_prefix("os.environ/")
}
