//! `[client]`: the client's timeouts around each request, read by both tools (the gateway takes `timeout`
//! and `ttft_timeout` as its defaults and ignores `cache_latency`).

use router_core::Duration;
use serde::{Deserialize, Serialize};

/// Client behaviour around each request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Per-attempt timeout; a timed-out attempt is a `timeout` error the router may retry. None = wait forever.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Time-to-first-token timeout (LiteLLM's `stream_timeout`): an attempt whose first token (or error
    /// response) has not arrived this long after it was sent is abandoned as a `timeout` error, counted
    /// in `ttft_timeouts` too. None = no such timeout. A policy's own `ttft_timeout` overrides it.
    #[serde(default)]
    pub ttft_timeout: Option<Duration>,
    /// Latency of a response served from the router's cache (default 5ms).
    #[serde(default)]
    pub cache_latency: Option<Duration>,
}
