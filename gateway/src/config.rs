//! The gateway's configuration file: router-core's `[[endpoints]]`, `[[policies]]` and `[[groups]]` exactly
//! as a scenario writes them, each endpoint with an `upstream` table, plus `[server]` and `[request_log]`.
//!
//! A scenario file is a valid gateway config once its endpoints have an `upstream`: the provider-model
//! fields of its endpoints (`slots`, `ttft`, `errors`, ...) and its simulation tables (`traffic`, `faults`,
//! `report`, `replay`, `tune`, ...) are accepted by name and ignored, while any misspelt field is an error
//! naming the file, the field path and what was expected (exit status 2), as scenario errors do. `[client]`
//! gives the default per-attempt and time-to-first-token timeouts, `[health]` the health-check interval.
//! API keys come from the environment only (`upstream.api_key_env`), never from the file. Client keys
//! (`[[keys]]`, `[auth]`) hold salted hashes only (see [`crate::auth`]); `[server] tls` names PEM files.

use crate::auth::AuthConfig;
use crate::auth::keys::KeyEntry;
use router_core::{Duration, Endpoint, HealthConfig, PolicyKind, PolicySpec, RouterConfig};
use routesim_schema::{DistConfig, EndpointConfig, parse_toml};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// An invalid configuration: the file, the field path, the line when known and what was expected (the
/// schema's error, the same type as the simulator's `ScenarioError`).
pub use routesim_schema::SchemaError as ConfigError;

/// `[server]`: where and how the gateway listens.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address (default `127.0.0.1:8080`; `0.0.0.0:8080` to accept from other hosts).
    pub listen: String,
    /// Largest request body accepted, in bytes (default 4 MiB); larger bodies get a 413.
    pub max_body_bytes: usize,
    /// How long SIGTERM waits for in-flight requests before exiting (default 30s).
    pub shutdown_timeout: Duration,
    /// Routers the state is split over (default 1: one router behind one mutex; see the README's
    /// benchmark for why). With N > 1 each request goes to router `id % N`, and each router sees only its
    /// share of the traffic (its quotas, averages and circuit breakers are per router).
    pub router_shards: usize,
    /// Ask streaming upstreams for a final usage chunk (`stream_options.include_usage`) when the client did
    /// not set `stream_options` (default true), so that streamed requests are billed with real token counts.
    pub stream_usage: bool,
    /// Path under each upstream's `base_url` probed by health checks (default `/models`).
    pub health_path: String,
    /// Timeout of one health check (default 5s).
    pub health_timeout: Duration,
    /// TCP connect timeout to upstreams (default 5s); a connect timeout is a `timeout` error.
    pub connect_timeout: Duration,
    /// TLS termination: `tls = { cert = "cert.pem", key = "key.pem" }` (absent: plain HTTP).
    pub tls: Option<crate::tls::TlsFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 4 << 20,
            shutdown_timeout: Duration::from_secs(30),
            router_shards: 1,
            stream_usage: true,
            health_path: "/models".into(),
            health_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            tls: None,
        }
    }
}

/// `[request_log]`: the per-request log in routesim's generic schema (JSONL).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLogConfig {
    /// The log file (`.jsonl`); absent: no request log. Rotated files are `NAME.1.jsonl`, `NAME.2.jsonl`, ...
    pub path: Option<PathBuf>,
    /// Rotate when the file exceeds this many bytes (default 256 MiB).
    pub max_bytes: u64,
    /// Rotated files kept (default 5).
    pub keep: u32,
    /// Rows the channel to the writer holds (default 65536); when it is full, rows are dropped and counted
    /// in `/metrics` (`routesim_gateway_log_rows_dropped_total`): a request never waits for the log.
    pub channel: usize,
}

impl Default for RequestLogConfig {
    fn default() -> Self {
        RequestLogConfig { path: None, max_bytes: 256 << 20, keep: 5, channel: 65536 }
    }
}

/// `[connections]`: limits on client connections (issue 28), so that slow or idle clients cannot hold the
/// gateway's sockets and file descriptors.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Time a client has to send a whole request head: from the connection's opening for its first request,
    /// from the head's first byte for later ones (default 10s). A connection that sends nothing is closed
    /// after it as well.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request body, from the handler's first read (default 30s); slower: 408.
    pub body_read_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests (default 30s).
    pub keep_alive_timeout: Duration,
    /// Most client connections open at once (default: half the process's open-file limit, at most 16384).
    /// At the cap, the connection idle longest is closed to make room; a busy one is never closed.
    pub max_connections: Option<usize>,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(30),
            max_connections: None,
        }
    }
}

impl ConnectionsConfig {
    /// The connection cap in force: `max_connections`, else half the soft `RLIMIT_NOFILE` (at most 16384).
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| match crate::ops::open_files_limit() {
            Some(n) => (n / 2).clamp(1, 16384) as usize,
            None => 1024,
        })
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        for (name, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("keep_alive_timeout", self.keep_alive_timeout),
        ] {
            if d.nanos() == 0 {
                return Err((name, "expected a positive duration like \"10s\"".into()));
            }
        }
        if self.max_connections == Some(0) {
            return Err(("max_connections", "expected a positive number of connections".into()));
        }
        Ok(())
    }
}

/// `[metrics]`: where `/metrics` is served.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A separate listen address for `GET /metrics` (for example `127.0.0.1:9464`, or a private network's
    /// address); the API's listener then answers `/metrics` with 404. Absent: `/metrics` is on the API's
    /// listener.
    pub listen: Option<String>,
}

/// `[client]`: default timeouts of an attempt, as in a scenario (the schema's [`routesim_schema::ClientConfig`];
/// `cache_latency` is the simulator's); a policy's `timeout` and `ttft_timeout` override them, and an
/// upstream's `timeout` overrides `timeout` for that upstream.
pub type ClientDefaults = routesim_schema::ClientConfig;

/// `[stream]`: how long a committed stream may go quiet, and (optionally) last. The attempt timeout (the
/// policy's `timeout`, else the upstream's, else `[client] timeout`) bounds a stream only until its first
/// chunk; then `idle_timeout` bounds every gap between chunks and `total_timeout` the whole stream from the
/// attempt's dispatch. A stream cut by either ends with an OpenAI-style `error` event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Longest gap between two chunks of a committed stream (default: the attempt timeout; none without one).
    pub idle_timeout: Option<Duration>,
    /// Longest whole stream, from dispatch to its last chunk (default: none).
    pub total_timeout: Option<Duration>,
}

/// `[response_cache]`: who shares an answer of the policy's response cache. Entries are scoped by the
/// client key (anonymous requests share one scope), or by the value the keys' `metadata` gives a field
/// (`team`: keys of one team share), and always by where the request may be routed (its
/// model, the key's `models` and `endpoint_tags`, its capabilities): an answer is never served to a request
/// its producing endpoint could not have taken.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseCacheConfig {
    /// Scope entries by the value the client keys' own `metadata` gives this field, instead of by key
    /// (absent: by key); a key whose `metadata` lacks the field is its own scope. A value the client sends
    /// is never used: it could name another tenant.
    pub tenant_field: Option<String>,
}

/// One `[[endpoints]]` entry: the schema's endpoint (router view, `upstream`, provider model), with the
/// service-time distributions optional: the gateway reads the router view and the upstream, and parses the
/// provider model only so that a file is checked alike by both tools.
pub type EndpointEntry = EndpointConfig<Option<DistConfig<Duration>>>;

/// The router's view of endpoint `e` as the gateway serves it: the schema's view, with each tag also a
/// capability `tag:NAME`, so that a client key's `endpoint_tags` confine routing through router-core's
/// capability filter.
pub fn router_endpoint(e: &EndpointEntry) -> Endpoint {
    let mut endpoint = e.router_endpoint();
    endpoint.capabilities.extend(e.tags.iter().map(|t| crate::auth::tag_capability(t)));
    endpoint
}

/// The file as written. Simulation-only top-level fields are accepted by name and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[request_log]`.
    #[serde(default)]
    pub request_log: RequestLogConfig,
    /// `[client]`.
    #[serde(default)]
    pub client: ClientDefaults,
    /// `[health]`.
    #[serde(default)]
    pub health: HealthConfig,
    /// `[stream]`: timeouts of committed streams.
    #[serde(default)]
    pub stream: StreamConfig,
    /// `[response_cache]`: how cached answers are shared.
    #[serde(default)]
    pub response_cache: ResponseCacheConfig,
    /// `[auth]`: key file and usage store.
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[connections]`: client connection limits.
    #[serde(default)]
    pub connections: ConnectionsConfig,
    /// `[metrics]`: a separate listener for `/metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Client keys (more may come from `[auth] key_file`).
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
    /// Seed of the router's keyed random choices.
    #[serde(default)]
    pub seed: u64,
    /// The endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointEntry>,
    /// The policies; `--policy NAME` picks one (default: the first).
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    /// Named policies that policies may target.
    #[serde(default)]
    pub groups: Vec<PolicySpec>,
    /// `[rollout]`: canary and shadow policies (see [`crate::rollout`]).
    #[serde(default)]
    pub rollout: crate::rollout::RolloutFile,
    /// `[quality]`: the quality model's discrimination per task class (`router_auc` is the simulator's and is
    /// ignored here: the gateway reads each request's difficulty estimate from the request).
    #[serde(default)]
    pub quality: Option<routesim_schema::QualitySection>,
    /// Scenario only.
    #[serde(default)]
    pub name: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub description: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub replications: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub duration: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub requests: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub warmup: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub warmup_requests: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub traffic: Option<IgnoredAny>,
    /// Scenario only (fitted provider models; endpoints served by the gateway are listed in the file).
    #[serde(default)]
    pub include_endpoints: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub faults: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub report: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub replay: Option<IgnoredAny>,
    /// Scenario only.
    #[serde(default)]
    pub tune: Option<IgnoredAny>,
}

/// A resolved upstream: URLs, the model sent and the key read from the environment.
#[derive(Clone)]
pub struct ResolvedUpstream {
    /// `{base_url}/chat/completions`.
    pub chat_url: String,
    /// `{base_url}{health_path}`.
    pub health_url: String,
    /// The model name sent upstream.
    pub model: String,
    /// This upstream's own per-attempt timeout.
    pub timeout: Option<Duration>,
    /// How the key is sent.
    pub auth: router_core::UpstreamAuth,
    /// The key (never printed: `Debug` hides it).
    pub api_key: Option<String>,
}

impl fmt::Debug for ResolvedUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedUpstream")
            .field("chat_url", &self.chat_url)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A validated configuration, ready to start a gateway.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Where the config came from.
    pub file: PathBuf,
    /// The listen address.
    pub listen: SocketAddr,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[request_log]`.
    pub request_log: RequestLogConfig,
    /// `[client]`.
    pub client: ClientDefaults,
    /// `[health]`.
    pub health: HealthConfig,
    /// `[stream]`.
    pub stream: StreamConfig,
    /// `[response_cache]`.
    pub response_cache: ResponseCacheConfig,
    /// The router configuration of the chosen policy.
    pub router: RouterConfig,
    /// One upstream per endpoint, in endpoint order.
    pub upstreams: Vec<ResolvedUpstream>,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[connections]`.
    pub connections: ConnectionsConfig,
    /// The separate `/metrics` listener (`[metrics] listen`), if any.
    pub metrics_listen: Option<SocketAddr>,
    /// The config's own `[[keys]]` (checked).
    pub keys: Vec<KeyEntry>,
    /// Serve without client keys on a non-loopback address (`--allow-anonymous`).
    pub allow_anonymous: bool,
    /// `[rollout]`, validated.
    pub rollout: crate::rollout::Rollout,
    /// The `--policy` it was loaded with (`None`: the first policy); a reload picks the policy the same way.
    pub policy_arg: Option<String>,
}

impl GatewayConfig {
    /// Reads, parses and validates `file`, picking `policy` (default: the first policy). Keys are read from
    /// the process environment.
    pub fn load(file: &Path, policy: Option<&str>) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            path: String::new(),
            line: None,
            message: format!("cannot read the config file: {e}"),
            suggestion: None,
        })?;
        Self::parse(file, &text, policy, &|k| std::env::var(k).ok())
    }

    /// Parses and validates config `text` (named `file` in errors), reading keys through `env`.
    pub fn parse(
        file: &Path,
        text: &str,
        policy: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GatewayConfig, ConfigError> {
        let raw: GatewayFile = parse_toml(file, text)?;
        Self::from_file(file, raw, policy, env)
    }

    /// Validates a parsed file (named `file` in errors), picking `policy` (default: the first policy) and
    /// reading keys through `env`. The checks run in the order of the file's sections, so the first error
    /// reported is the same whichever way the file was built.
    pub fn from_file(
        file: &Path,
        raw: GatewayFile,
        policy: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GatewayConfig, ConfigError> {
        let listen = check_server(file, &raw.server)?;
        check_request_log(file, &raw.request_log)?;
        let upstreams = resolve_upstreams(file, &raw.endpoints, &raw.server.health_path, env)?;
        let (router, rollout) = choose_policy(file, &raw, policy)?;
        check_keys(file, &raw)?;
        check_stream(file, &raw.stream)?;
        check_response_cache(file, &raw.response_cache)?;
        raw.connections.validate().map_err(|(f, m)| invalid(file, format!("connections.{f}"), m))?;
        let metrics_listen = metrics_listen(file, &raw.metrics)?;
        if raw.auth.flush_interval.nanos() == 0 {
            return Err(invalid(file, "auth.flush_interval", "expected a positive duration like \"5s\""));
        }
        if let Some(tls) = &raw.server.tls {
            crate::tls::load_pair(tls).map_err(|(f, m)| {
                let field = if f == tls.cert { "server.tls.cert" } else { "server.tls.key" };
                invalid(file, field, format!("{}: {m}", f.display()))
            })?;
        }
        Ok(GatewayConfig {
            file: file.to_path_buf(),
            listen,
            server: raw.server,
            request_log: raw.request_log,
            client: raw.client,
            health: raw.health,
            stream: raw.stream,
            response_cache: raw.response_cache,
            router,
            upstreams,
            auth: raw.auth,
            connections: raw.connections,
            metrics_listen,
            keys: raw.keys,
            allow_anonymous: false,
            rollout,
            policy_arg: policy.map(str::to_string),
        })
    }

    /// Whether requests need a client key (`[[keys]]` or a key file is configured).
    pub fn requires_keys(&self) -> bool {
        !self.keys.is_empty() || self.auth.key_file.is_some()
    }

    /// Refuses an anonymous gateway on an address other hosts can reach, unless `--allow-anonymous`.
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.requires_keys() || self.allow_anonymous || self.listen.ip().is_loopback() {
            return Ok(());
        }
        Err(format!(
            "{}: no [[keys]] and no [auth] key_file, but listening on {}, which other hosts can reach: add client \
             keys (`routesim-gateway keys new`), listen on 127.0.0.1, or pass --allow-anonymous",
            self.file.display(),
            self.listen
        ))
    }
}

/// An error at `path` of `file`.
fn invalid(file: &Path, path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(file, &path.into(), message)
}

/// `[server]`: the listen address, the body limit, the router shards and the health path.
fn check_server(file: &Path, server: &ServerConfig) -> Result<SocketAddr, ConfigError> {
    let listen: SocketAddr = server.listen.parse().map_err(|_| {
        invalid(
            file,
            "server.listen",
            format!("expected an address like \"127.0.0.1:8080\", found {:?}", server.listen),
        )
    })?;
    if server.max_body_bytes == 0 {
        return Err(invalid(file, "server.max_body_bytes", "expected a positive number of bytes"));
    }
    if !(1..=64).contains(&server.router_shards) {
        return Err(invalid(file, "server.router_shards", format!("expected 1..=64, found {}", server.router_shards)));
    }
    if !server.health_path.starts_with('/') {
        return Err(invalid(
            file,
            "server.health_path",
            format!("expected a path starting with `/`, found {:?}", server.health_path),
        ));
    }
    Ok(listen)
}

/// `[request_log]`: a positive channel and a `.jsonl` path.
fn check_request_log(file: &Path, log: &RequestLogConfig) -> Result<(), ConfigError> {
    if log.channel == 0 {
        return Err(invalid(file, "request_log.channel", "expected a positive capacity"));
    }
    if let Some(p) = &log.path
        && p.extension().and_then(|e| e.to_str()) != Some("jsonl")
    {
        return Err(invalid(
            file,
            "request_log.path",
            format!("expected a file ending in .jsonl, found {:?}", p.display().to_string()),
        ));
    }
    Ok(())
}

/// Every endpoint's `upstream`, resolved: its URLs, the model sent and the key read through `env`.
fn resolve_upstreams(
    file: &Path,
    endpoints: &[EndpointEntry],
    health_path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ResolvedUpstream>, ConfigError> {
    if endpoints.is_empty() {
        return Err(invalid(file, "endpoints", "expected at least one [[endpoints]] entry with an upstream"));
    }
    endpoints.iter().enumerate().map(|(i, e)| resolve_upstream(file, i, e, health_path, env)).collect()
}

/// Endpoint number `i`'s upstream.
fn resolve_upstream(
    file: &Path,
    i: usize,
    e: &EndpointEntry,
    health_path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedUpstream, ConfigError> {
    let p = format!("endpoints[{i}].upstream");
    let u = e.upstream.as_ref().ok_or_else(|| {
        invalid(
            file,
            p.clone(),
            format!(
                "endpoint `{}` has no upstream: expected upstream = {{ base_url = \"https://...\", \
                 api_key_env = \"...\" }}",
                e.id
            ),
        )
    })?;
    let base = u.base_url.trim_end_matches('/');
    let rest = base.strip_prefix("http://").or_else(|| base.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) || base.contains(char::is_whitespace) {
        return Err(invalid(
            file,
            format!("{p}.base_url"),
            format!("expected an http:// or https:// URL like \"https://api.openai.com/v1\", found {:?}", u.base_url),
        ));
    }
    let api_key = match &u.api_key_env {
        None => None,
        Some(var) => Some(api_key(file, &p, var, env)?),
    };
    if u.timeout.is_some_and(|t| t.nanos() == 0) {
        return Err(invalid(file, format!("{p}.timeout"), "expected a positive duration like \"30s\""));
    }
    let model = u
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| if e.model.is_empty() { e.id.clone() } else { e.model.clone() });
    Ok(ResolvedUpstream {
        chat_url: format!("{base}/chat/completions"),
        health_url: format!("{base}{health_path}"),
        model,
        timeout: u.timeout,
        auth: u.auth,
        api_key,
    })
}

/// The API key in environment variable `var` (named by the upstream at field path `p`), trimmed.
fn api_key(file: &Path, p: &str, var: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    if var.is_empty() {
        return Err(invalid(file, format!("{p}.api_key_env"), "expected the name of an environment variable"));
    }
    match env(var) {
        Some(k) if !k.trim().is_empty() => {
            let k = k.trim();
            // The key goes into a header: a newline, a space or a non-ASCII character in it would make the
            // request go out with no key at all. (The key itself is never quoted.)
            if let Some(at) = k.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
                return Err(invalid(
                    file,
                    format!("{p}.api_key_env"),
                    format!(
                        "the environment variable `{var}` holds a key with a character an HTTP header cannot \
                         carry (a newline, space or non-ASCII character at byte {at}): export the key alone"
                    ),
                ));
            }
            Ok(k.to_string())
        }
        _ => Err(invalid(
            file,
            format!("{p}.api_key_env"),
            format!("the environment variable `{var}` is not set: export it with the API key"),
        )),
    }
}

/// Every policy validated (as a scenario's are); the one named `policy` (default: the first) is served,
/// with the `[rollout]` around it.
fn choose_policy(
    file: &Path,
    raw: &GatewayFile,
    policy: Option<&str>,
) -> Result<(RouterConfig, crate::rollout::Rollout), ConfigError> {
    if raw.policies.is_empty() {
        return Err(invalid(
            file,
            "policies",
            "expected at least one [[policies]] entry (a best-policy.toml pastes in as is)",
        ));
    }
    let endpoints: Vec<Endpoint> = raw.endpoints.iter().map(router_endpoint).collect();
    let quality = routesim_schema::quality_config(raw.quality.as_ref(), file)?;
    let configs = routesim_schema::compile_policies(file, &endpoints, &raw.policies, &raw.groups, raw.seed, &quality)
        // The gateway's policy errors have never carried a "did you mean".
        .map_err(|e| ConfigError { suggestion: None, ..e })?;
    let router = configs.into_iter().find(|cfg| policy.is_none_or(|n| n == cfg.policy.name)).ok_or_else(|| {
        let names: Vec<&str> = raw.policies.iter().map(|p| p.name.as_str()).collect();
        invalid(
            file,
            "policies",
            format!("no policy named `{}`: expected one of {}", policy.unwrap_or(""), names.join(", ")),
        )
    })?;
    let rollout =
        crate::rollout::resolve(file, &raw.rollout, &raw.policies, &router.policy.name, |spec| RouterConfig {
            endpoints: endpoints.clone(),
            policy: spec.clone(),
            groups: raw.groups.clone(),
            seed: raw.seed,
            quality: quality.clone(),
        })?;
    let served = std::iter::once(&router).chain(rollout.canary.as_ref().map(|c| &c.router)).chain(&rollout.shadows);
    for cfg in served {
        check_servable(file, raw, cfg)?;
    }
    Ok((router, rollout))
}

/// What the gateway cannot serve in a policy it runs (the served one, the canary, a shadow): an `oracle`
/// (root or group), which needs each answer's quality before it is made, and a `cascade` without a verifier
/// endpoint to ask.
fn check_servable(file: &Path, raw: &GatewayFile, cfg: &RouterConfig) -> Result<(), ConfigError> {
    let root_path = match raw.policies.iter().position(|p| p.name == cfg.policy.name) {
        Some(i) => format!("policies[{i}]"),
        None => "policies".to_string(),
    };
    let specs = std::iter::once((&cfg.policy, root_path.clone()))
        .chain(cfg.groups.iter().enumerate().map(|(j, g)| (g, format!("groups[{j}]"))));
    for (spec, path) in specs {
        if spec.kind == PolicyKind::Oracle {
            return Err(invalid(
                file,
                format!("{path}.kind"),
                "kind `oracle` is simulator only: it routes knowing whether each endpoint would answer acceptably, \
                 which a gateway cannot know before it asks (serve `quality`, `threshold` or `cascade`)",
            ));
        }
    }
    if cfg.policy.kind == PolicyKind::Cascade
        && cfg.policy.verifier.as_ref().and_then(|v| v.endpoint.as_deref()).is_none()
    {
        return Err(invalid(
            file,
            format!("{root_path}.verifier.endpoint"),
            "expected the endpoint that scores a stage's answer (a judge model), e.g. \
             verifier = { endpoint = \"judge\", min_score = 0.5 }: the gateway escalates when its score is below min_score",
        ));
    }
    Ok(())
}

/// The file's `[[keys]]`, and the ids of `[auth] key_file`'s keys against them.
fn check_keys(file: &Path, raw: &GatewayFile) -> Result<(), ConfigError> {
    crate::auth::check_entries(file, &raw.keys, &[])?;
    if let Some(kf) = &raw.auth.key_file {
        let from_file = crate::auth::load_key_file(kf)?;
        if let Some(i) = from_file.iter().position(|(e, _)| raw.keys.iter().any(|c| c.id == e.id)) {
            return Err(ConfigError::invalid(
                kf,
                &format!("keys[{i}].id"),
                format!("key id `{}` is also defined in {}", from_file[i].0.id, file.display()),
            ));
        }
    }
    Ok(())
}

/// `[stream]`: positive timeouts when given.
fn check_stream(file: &Path, stream: &StreamConfig) -> Result<(), ConfigError> {
    for (field, d) in [("stream.idle_timeout", stream.idle_timeout), ("stream.total_timeout", stream.total_timeout)] {
        if d.is_some_and(|d| d.nanos() == 0) {
            return Err(invalid(file, field, "expected a positive duration like \"60s\" (leave it out for none)"));
        }
    }
    Ok(())
}

/// `[response_cache]`: a tenant field, when given, is a name.
fn check_response_cache(file: &Path, cache: &ResponseCacheConfig) -> Result<(), ConfigError> {
    if cache.tenant_field.as_deref().is_some_and(|f| f.trim().is_empty()) {
        return Err(invalid(
            file,
            "response_cache.tenant_field",
            "expected the name of a routing-metadata field such as \"team\" (leave it out to scope by key)",
        ));
    }
    Ok(())
}

/// `[metrics] listen`, parsed.
fn metrics_listen(file: &Path, metrics: &MetricsConfig) -> Result<Option<SocketAddr>, ConfigError> {
    match &metrics.listen {
        None => Ok(None),
        Some(a) => a.parse::<SocketAddr>().map(Some).map_err(|_| {
            invalid(file, "metrics.listen", format!("expected an address like \"127.0.0.1:9464\", found {a:?}"))
        }),
    }
}
