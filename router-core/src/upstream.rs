//! Where a gateway sends an endpoint's requests: the `upstream = { base_url, api_key_env, model, timeout }`
//! table of an `[[endpoints]]` entry.
//!
//! Configuration only (serde, no I/O): the production gateway (`routesim-gateway`) reads it, and the
//! simulator may accept the same field so that one file serves both. API keys are never written in a
//! file: `api_key_env` names the environment variable that holds the key.

use crate::duration::Duration;
use serde::{Deserialize, Serialize};

/// How the API key is sent to the upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamAuth {
    /// `Authorization: Bearer <key>` (OpenAI, vLLM, Together, Groq, the OpenAI-compatible endpoints of
    /// Gemini and Anthropic).
    #[default]
    Bearer,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKey,
}

/// An OpenAI-compatible upstream serving one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL of the OpenAI-compatible API, up to and including its version, e.g.
    /// `https://api.openai.com/v1` or `http://localhost:11434/v1`; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// Name of the environment variable holding the API key; absent for upstreams without authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The model name sent upstream (default: the endpoint's `model`, else its `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Per-attempt timeout for this upstream (a policy's `timeout` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// How the key is sent (default `bearer`).
    #[serde(default, skip_serializing_if = "is_default_auth")]
    pub auth: UpstreamAuth,
}

fn is_default_auth(a: &UpstreamAuth) -> bool {
    *a == UpstreamAuth::Bearer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_table_and_rejects_unknown_fields() {
        let u: UpstreamConfig = toml::from_str(
            "base_url = \"https://api.openai.com/v1\"\napi_key_env = \"OPENAI_API_KEY\"\ntimeout = \"30s\"",
        )
        .unwrap();
        assert_eq!(u.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
        assert_eq!(u.timeout, Some(Duration::from_secs(30)));
        assert_eq!(u.auth, UpstreamAuth::Bearer);
        assert!(toml::from_str::<UpstreamConfig>("base_url = \"x\"\napi_key = \"sk-secret\"").is_err());
    }
}
