//! Fuzzing, bounded so that it runs in `cargo test` (and so in CI): the request parser and the config parser
//! get arbitrary bytes and mutations of valid inputs, and must answer with a value or an error, never
//! panic. Each property runs `CASES` cases (proptest's shrinking reports a minimal failing input).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use routesim_gateway::GatewayConfig;
use routesim_gateway::request::ChatRequest;
use std::path::Path;

/// Cases per property: about a second each on one core of a CI runner.
const CASES: u32 = 2000;

const VALID_BODY: &str = r#"{"model":"m","stream":true,"max_tokens":50,"metadata":{"plan":"pro","n":3},"user":"u",
"messages":[{"role":"user","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"x"}}]}],
"tools":[{"type":"function"}],"response_format":{"type":"json_object"}}"#;

const VALID_CONFIG: &str = r#"[server]
listen = "127.0.0.1:0"
max_body_bytes = 1000

[connections]
header_read_timeout = "2s"
max_connections = 10

[[endpoints]]
id = "e0"
model = "m0"
price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }
upstream = { base_url = "http://127.0.0.1:9/v1", api_key_env = "K" }

[[policies]]
name = "rr"
kind = "round-robin"
"#;

fn env(k: &str) -> Option<String> {
    (k == "K").then(|| "sk-fuzz".to_string())
}

/// Checks what a successful parse must hold.
fn check_request(r: &ChatRequest) {
    assert!(!r.model.is_empty());
    if let Some(t) = r.info.expected_output_tokens {
        assert!(t >= 1 && u64::from(t) <= routesim_gateway::request::MAX_OUTPUT_TOKENS);
    }
    if let Some(c) = r.info.complexity {
        assert!((0.0..=1.0).contains(&c));
    }
}

/// `bytes` with the byte at each of `edits` (position, value) replaced.
fn mutate(base: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(i, b) in edits {
        let n = v.len();
        if n > 0 {
            v[i % n] = b;
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_request_parser_takes_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = ChatRequest::parse(&body, &HeaderMap::new()) {
            check_request(&r);
        }
    }

    #[test]
    fn the_request_parser_takes_mutated_bodies_and_headers(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        header in prop_oneof![
            Just("x-routesim-complexity"), Just("x-routesim-request-id"), Just("x-routesim-class"),
            Just("x-routesim-deferrable"), Just("x-routesim-meta-tier"),
        ],
        value in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let body = mutate(VALID_BODY.as_bytes(), &edits);
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            h.insert(HeaderName::from_static(header), v);
        }
        if let Ok(r) = ChatRequest::parse(&body, &h) {
            check_request(&r);
            // A parsed request always makes an upstream body that is JSON again.
            let mut r = r.with_canonical();
            let out = r.upstream_body("upstream-model", true);
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        }
    }

    #[test]
    fn the_config_parser_takes_arbitrary_text(text in "\\PC{0,300}") {
        if let Err(e) = GatewayConfig::parse(Path::new("fuzz.toml"), &text, None, &env) {
            prop_assert_eq!(e.file.as_path(), Path::new("fuzz.toml"));
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn the_config_parser_takes_mutated_configs(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let bytes = mutate(VALID_CONFIG.as_bytes(), &edits);
        let text = String::from_utf8_lossy(&bytes);
        match GatewayConfig::parse(Path::new("fuzz.toml"), &text, None, &env) {
            Ok(cfg) => prop_assert!(!cfg.upstreams.is_empty()),
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                prop_assert!(!e.to_string().contains("sk-fuzz"), "an error quotes the provider key");
            }
        }
    }
}

#[test]
fn the_seeds_are_valid() {
    check_request(&ChatRequest::parse(VALID_BODY.as_bytes(), &HeaderMap::new()).unwrap());
    GatewayConfig::parse(Path::new("fuzz.toml"), VALID_CONFIG, None, &env).unwrap();
}
