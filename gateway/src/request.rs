//! What the gateway reads from a client's `POST /v1/chat/completions`: the OpenAI request body, checked,
//! and the routing metadata from headers and body, as a router-core [`RequestInfo`].
//!
//! Routing metadata: header `x-routesim-class` (task class), `x-routesim-complexity` (0..=1),
//! `x-routesim-deferrable: true` (may be batched), `x-routesim-meta-<key>: value` (metadata), the body's
//! `metadata` object (string, number and boolean values) and `user` (metadata `user`), and the requested
//! `model` (metadata `model`). The difficulty estimate quality-aware policies read comes from header
//! `x-routesim-difficulty` (a finite number), else the metadata key `difficulty` (a number or a numeric
//! string); any other value is a 400. Capabilities are inferred: `tools` when the body has tools, `vision` when a
//! message has an image part, `json` for a JSON `response_format`.
//!
//! `x-routesim-request-id: N` (an integer) gives the request the id `N` instead of the gateway's next one.
//! The router keys its random draws (ties, jitter of retry backoff) by the request id, so a load generator
//! that sends the simulator's ids (`routesim load`, `routesim live`) makes the gateway draw exactly what the
//! simulator drew for the same request.

use crate::error::ApiError;
use axum::http::HeaderMap;
use router_core::{MetaValue, RequestInfo, fnv1a};
use serde_json::{Map, Value};

/// A checked chat-completion request.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The body as sent (every field is passed upstream; `model` is replaced per endpoint).
    pub body: Map<String, Value>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The model the client asked for.
    pub model: String,
    /// What the router sees (its `id` is set by the gateway).
    pub info: RequestInfo,
    /// The body's canonical bytes, for non-streaming requests when a cache is on (see
    /// [`ChatRequest::with_canonical`]): the response cache's key material.
    pub canonical: Option<Vec<u8>>,
    /// The id the client gave the request (`x-routesim-request-id`), used instead of the gateway's own.
    pub client_id: Option<u64>,
    /// Where it may be routed: what its `model` names, narrowed by the client key's `models` (see
    /// [`crate::models`]); set by the API layer after parsing.
    pub scope: router_core::Scope,
}

/// Largest `max_tokens` / `max_completion_tokens` accepted (no model generates more; larger values are a
/// client's mistake, answered 400 rather than forwarded).
pub const MAX_OUTPUT_TOKENS: u64 = 1 << 24;

/// Estimated prompt tokens of a text (about four characters a token), used to route before the upstream
/// reports the real count.
fn estimate_tokens(chars: usize) -> u32 {
    chars.div_ceil(4).min(u32::MAX as usize) as u32
}

fn meta_value(v: &Value) -> Option<MetaValue> {
    match v {
        Value::String(s) => Some(MetaValue::Str(s.clone())),
        Value::Number(n) => n.as_f64().map(MetaValue::Num),
        Value::Bool(b) => Some(MetaValue::Bool(*b)),
        _ => None,
    }
}

fn push_meta(meta: &mut Vec<(String, MetaValue)>, key: &str, v: MetaValue) {
    if let Some(slot) = meta.iter_mut().find(|(k, _)| k == key) {
        slot.1 = v;
    } else {
        meta.push((key.to_string(), v));
    }
}

impl ChatRequest {
    /// Parses and checks a body and the routing headers. Errors never quote the body.
    pub fn parse(bytes: &[u8], headers: &HeaderMap) -> Result<ChatRequest, ApiError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::invalid(
                "invalid_json",
                None,
                format!("the body is not valid JSON ({} at line {} column {})", category(&e), e.line(), e.column()),
            )
        })?;
        let Value::Object(body) = value else {
            return Err(ApiError::invalid("invalid_json", None, "expected a JSON object as the request body"));
        };
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            Some(_) => return Err(ApiError::invalid("invalid_type", Some("model"), "expected `model` to be a string")),
            None => {
                return Err(ApiError::invalid("missing_required_parameter", Some("model"), "missing required `model`"));
            }
        };
        let messages = match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => m,
            Some(Value::Array(_)) => {
                return Err(ApiError::invalid(
                    "invalid_value",
                    Some("messages"),
                    "expected at least one message in `messages`",
                ));
            }
            Some(_) => {
                return Err(ApiError::invalid("invalid_type", Some("messages"), "expected `messages` to be an array"));
            }
            None => {
                return Err(ApiError::invalid(
                    "missing_required_parameter",
                    Some("messages"),
                    "missing required `messages`",
                ));
            }
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::invalid("invalid_type", Some("stream"), "expected `stream` to be a boolean"));
            }
        };
        let mut chars = 0usize;
        let mut vision = false;
        for (i, m) in messages.iter().enumerate() {
            let Value::Object(m) = m else {
                return Err(ApiError::invalid(
                    "invalid_type",
                    Some("messages"),
                    format!("expected messages[{i}] to be an object with `role` and `content`"),
                ));
            };
            if !matches!(m.get("role"), Some(Value::String(_))) {
                return Err(ApiError::invalid(
                    "invalid_value",
                    Some("messages"),
                    format!("expected messages[{i}].role to be a string"),
                ));
            }
            chars += 16; // role and framing
            match m.get("content") {
                Some(Value::String(s)) => chars += s.len(),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        match p.get("type").and_then(Value::as_str) {
                            Some("text") => chars += p.get("text").and_then(Value::as_str).map_or(0, str::len),
                            Some("image_url") | Some("input_image") => vision = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let mut expected_output = None;
        for key in ["max_completion_tokens", "max_tokens"] {
            match body.get(key) {
                None | Some(Value::Null) => {}
                // A positive integer (serde_json keeps 1e3 or 5.0 as floats: they are refused too).
                Some(Value::Number(n)) if n.as_u64().is_some_and(|t| (1..=MAX_OUTPUT_TOKENS).contains(&t)) => {
                    expected_output = expected_output.or(n.as_u64().map(|t| t as u32));
                }
                Some(Value::Number(_)) => {
                    return Err(ApiError::invalid(
                        "invalid_value",
                        Some(key),
                        format!("expected `{key}` to be an integer from 1 to {MAX_OUTPUT_TOKENS}"),
                    ));
                }
                Some(_) => {
                    return Err(ApiError::invalid(
                        "invalid_type",
                        Some(key),
                        format!("expected `{key}` to be an integer"),
                    ));
                }
            }
        }
        let mut info = RequestInfo::new(0, estimate_tokens(chars));
        info.expected_output_tokens = expected_output;
        info.streaming = stream;
        if body.get("tools").is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
            info.required_capabilities.push("tools".into());
        }
        if vision {
            info.required_capabilities.push("vision".into());
        }
        if body
            .get("response_format")
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("json"))
        {
            info.required_capabilities.push("json".into());
        }
        info.metadata.push(("model".into(), MetaValue::Str(model.clone())));
        if let Some(Value::String(u)) = body.get("user") {
            push_meta(&mut info.metadata, "user", MetaValue::Str(u.clone()));
        }
        if let Some(Value::Object(meta)) = body.get("metadata") {
            for (k, v) in meta {
                if let Some(v) = meta_value(v) {
                    push_meta(&mut info.metadata, k, v);
                }
            }
        }
        let mut client_id = None;
        for (name, value) in headers {
            let n = name.as_str();
            let Ok(v) = value.to_str() else { continue };
            if n == "x-routesim-class" {
                info.task_class = Some(v.trim().to_string()).filter(|c| !c.is_empty());
            } else if n == "x-routesim-complexity" {
                info.complexity =
                    Some(v.trim().parse::<f64>().ok().filter(|c| (0.0..=1.0).contains(c)).ok_or_else(|| {
                        ApiError::invalid("invalid_header", None, "expected x-routesim-complexity in 0..=1")
                    })?);
            } else if n == "x-routesim-difficulty" {
                info.difficulty = Some(difficulty(v.trim(), "header x-routesim-difficulty")?);
            } else if n == "x-routesim-request-id" {
                client_id = Some(v.trim().parse::<u64>().map_err(|_| {
                    ApiError::invalid("invalid_header", None, "expected x-routesim-request-id to be an integer")
                })?);
            } else if n == "x-routesim-deferrable" {
                info.deferrable = matches!(v.trim(), "true" | "1" | "yes");
            } else if let Some(key) = n.strip_prefix("x-routesim-meta-")
                && !key.is_empty()
            {
                let mv = match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() => MetaValue::Num(x),
                    _ => match v.trim() {
                        "true" => MetaValue::Bool(true),
                        "false" => MetaValue::Bool(false),
                        s => MetaValue::Str(s.to_string()),
                    },
                };
                push_meta(&mut info.metadata, key, mv);
            }
        }
        // The difficulty estimate: the header, else the metadata key `difficulty` (body or x-routesim-meta-).
        if info.difficulty.is_none()
            && let Some((_, v)) = info.metadata.iter().find(|(k, _)| k == "difficulty")
        {
            info.difficulty = Some(match v {
                MetaValue::Num(x) => difficulty(&x.to_string(), "metadata `difficulty`")?,
                MetaValue::Str(s) => difficulty(s.trim(), "metadata `difficulty`")?,
                MetaValue::Bool(_) => difficulty("a boolean", "metadata `difficulty`")?,
            });
        }
        Ok(ChatRequest { body, stream, model, info, canonical: None, client_id, scope: router_core::Scope::default() })
    }

    /// Computes the canonical bytes of a non-streaming request (streams are never cached): the body without
    /// its `metadata` object. Metadata tags a request (tenant, plan, trace ids) and does not change what the
    /// model generates, so two requests that differ only in their tags share a cache entry, as in LiteLLM's
    /// cache key and in the simulator's cache (keyed by the prompt).
    pub fn with_canonical(mut self) -> Self {
        if !self.stream {
            self.canonical = Some(serde_json::to_vec(&WithoutMetadata(&self.body)).unwrap_or_default());
        }
        self
    }

    /// The cache key of a non-streaming request (FNV-1a of its canonical bytes).
    pub fn cache_key(&self) -> Option<u64> {
        self.canonical.as_deref().map(fnv1a)
    }

    /// The body sent to an upstream serving `model` (the body is edited in place: no copy of the
    /// messages). With `stream_usage`, a streamed request without `stream_options` asks for the final
    /// usage chunk.
    pub fn upstream_body(&mut self, model: &str, stream_usage: bool) -> Vec<u8> {
        self.body.insert("model".into(), Value::String(model.to_string()));
        if self.stream && stream_usage && !self.body.contains_key("stream_options") {
            self.body.insert("stream_options".into(), serde_json::json!({ "include_usage": true }));
        }
        serde_json::to_vec(&self.body).unwrap_or_default()
    }
}

/// A difficulty estimate (see `router_core::quality`): a finite number, named by `what` in the 400 otherwise.
fn difficulty(text: &str, what: &str) -> Result<f64, ApiError> {
    text.parse::<f64>().ok().filter(|d| d.is_finite()).ok_or_else(|| {
        ApiError::invalid(
            "invalid_difficulty",
            None,
            format!(
                "expected {what} to be a finite number (the request's difficulty estimate on the quality model's \
                 scale: 0 is a typical request of its class, higher is harder)"
            ),
        )
    })
}

/// What kind of JSON error, without quoting the input.
fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "unexpected end of input",
    }
}

/// A body serialised without its `metadata` field (no copy of the rest).
struct WithoutMetadata<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for WithoutMetadata<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().filter(|(k, _)| k.as_str() != "metadata"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn routing_metadata_comes_from_headers_and_body() {
        let mut h = HeaderMap::new();
        h.insert("x-routesim-class", HeaderValue::from_static("code"));
        h.insert("x-routesim-meta-tenant", HeaderValue::from_static("acme"));
        h.insert("x-routesim-meta-priority", HeaderValue::from_static("3"));
        h.insert("x-routesim-deferrable", HeaderValue::from_static("true"));
        h.insert("x-routesim-request-id", HeaderValue::from_static("1019"));
        let body = br#"{"model":"m","messages":[{"role":"user","content":"abcdefgh"}],"user":"u1",
            "metadata":{"plan":"pro"},"max_tokens":50,"tools":[{"type":"function"}]}"#;
        let r = ChatRequest::parse(body, &h).unwrap().with_canonical();
        assert_eq!(r.info.task_class.as_deref(), Some("code"));
        assert_eq!(r.client_id, Some(1019));
        h.insert("x-routesim-request-id", HeaderValue::from_static("soon"));
        let e = ChatRequest::parse(body, &h).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("invalid_header", "expected x-routesim-request-id to be an integer"));
        assert!(r.info.deferrable);
        assert_eq!(r.info.expected_output_tokens, Some(50));
        assert_eq!(r.info.input_tokens, 6); // (16 + 8) / 4
        assert_eq!(r.info.required_capabilities, vec!["tools".to_string()]);
        let get = |k: &str| r.info.metadata.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
        assert_eq!(get("tenant"), Some(MetaValue::Str("acme".into())));
        assert_eq!(get("priority"), Some(MetaValue::Num(3.0)));
        assert_eq!(get("user"), Some(MetaValue::Str("u1".into())));
        assert_eq!(get("plan"), Some(MetaValue::Str("pro".into())));
        assert_eq!(get("model"), Some(MetaValue::Str("m".into())));
        assert!(r.cache_key().is_some());
    }

    #[test]
    fn the_difficulty_estimate_comes_from_the_header_or_the_metadata() {
        let body = |meta: &str| format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{meta}}}"#);
        let parse = |b: &str, h: &HeaderMap| ChatRequest::parse(b.as_bytes(), h);
        let none = HeaderMap::new();
        assert_eq!(parse(&body(""), &none).unwrap().info.difficulty, None);
        assert_eq!(parse(&body(r#","metadata":{"difficulty":"0.7"}"#), &none).unwrap().info.difficulty, Some(0.7));
        assert_eq!(parse(&body(r#","metadata":{"difficulty":-1.5}"#), &none).unwrap().info.difficulty, Some(-1.5));
        let mut h = HeaderMap::new();
        h.insert("x-routesim-difficulty", HeaderValue::from_static(" 1.25 "));
        let r = parse(&body(r#","metadata":{"difficulty":"0.7"}"#), &h).unwrap();
        assert_eq!(r.info.difficulty, Some(1.25), "the header wins");
        h.insert("x-routesim-difficulty", HeaderValue::from_static("hard"));
        let e = parse(&body(""), &h).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_difficulty"));
        assert!(e.message.contains("x-routesim-difficulty"), "{}", e.message);
        h.insert("x-routesim-difficulty", HeaderValue::from_static("inf"));
        assert!(parse(&body(""), &h).is_err());
        let e = parse(&body(r#","metadata":{"difficulty":"very"}"#), &none).unwrap_err();
        assert!(e.message.contains("metadata `difficulty`"), "{}", e.message);
        assert!(parse(&body(r#","metadata":{"difficulty":true}"#), &none).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-routesim-meta-difficulty", HeaderValue::from_static("0.3"));
        assert_eq!(parse(&body(""), &h).unwrap().info.difficulty, Some(0.3));
    }

    #[test]
    fn the_cache_key_leaves_out_metadata_and_nothing_else() {
        let key =
            |body: &str| ChatRequest::parse(body.as_bytes(), &HeaderMap::new()).unwrap().with_canonical().cache_key();
        let a = key(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"routesim_id":1}}"#);
        let b = key(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"routesim_id":2}}"#);
        let c = key(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
        assert_eq!(a, b, "tags do not change the answer");
        assert_eq!(a, c);
        assert_ne!(a, key(r#"{"model":"m","messages":[{"role":"user","content":"y"}]}"#));
        assert_ne!(a, key(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"user":"u"}"#));
        assert_ne!(a, key(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5}"#));
    }

    #[test]
    fn bad_bodies_are_named_without_quoting_them() {
        let h = HeaderMap::new();
        let e = ChatRequest::parse(b"{\"model\": \"secret prompt", &h).unwrap_err();
        assert_eq!(e.code, "invalid_json");
        assert!(!e.message.contains("secret"));
        assert_eq!(
            ChatRequest::parse(br#"{"messages":[{"role":"user","content":"x"}]}"#, &h).unwrap_err().param,
            Some("model")
        );
        assert_eq!(ChatRequest::parse(br#"{"model":"m"}"#, &h).unwrap_err().param, Some("messages"));
        assert_eq!(ChatRequest::parse(br#"{"model":"m","messages":[]}"#, &h).unwrap_err().code, "invalid_value");
        assert_eq!(ChatRequest::parse(b"[1]", &h).unwrap_err().code, "invalid_json");
    }

    #[test]
    fn max_tokens_must_be_a_positive_integer() {
        let h = HeaderMap::new();
        let with = |field: &str, v: &str| {
            let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"{field}":{v}}}"#);
            ChatRequest::parse(body.as_bytes(), &h)
        };
        for (v, code) in
            [("-5", "invalid_value"), ("0", "invalid_value"), ("1e30", "invalid_value"), ("2.5", "invalid_value")]
        {
            let e = with("max_tokens", v).unwrap_err();
            assert_eq!((e.code, e.param), (code, Some("max_tokens")), "{v}");
        }
        for v in [r#""abc""#, "true", "[1]", "{}"] {
            let e = with("max_completion_tokens", v).unwrap_err();
            assert_eq!((e.code, e.param), ("invalid_type", Some("max_completion_tokens")), "{v}");
        }
        assert_eq!(with("max_tokens", "16777217").unwrap_err().code, "invalid_value");
        assert_eq!(with("max_tokens", "null").unwrap().info.expected_output_tokens, None);
        assert_eq!(with("max_tokens", "16777216").unwrap().info.expected_output_tokens, Some(1 << 24));
    }

    #[test]
    fn upstream_body_replaces_the_model_and_asks_for_usage() {
        let mut r = ChatRequest::parse(
            br#"{"model":"alias","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
            &HeaderMap::new(),
        )
        .unwrap()
        .with_canonical();
        let v: Value = serde_json::from_slice(&r.upstream_body("gpt-4o-mini", true)).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(r.cache_key().is_none(), "streams are not cached");
    }
}
