//! The gateway as a service: bad input, the request log, metrics, models, client disconnects, graceful
//! shutdown, redaction of keys and prompts, and config errors (including the binary's exit status).

mod common;

use common::*;
use routesim_mock_upstream::MockReply;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const RR: &str = "[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n";

async fn json_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_openai_shaped_errors() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let text = config_text(&urls(&m), RR).replace("shutdown_timeout", "max_body_bytes = 2000\nshutdown_timeout");
    let gw = gateway(&text).await;
    let c = client();
    let url = format!("{}/v1/chat/completions", gw.url());
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        ("{not json".into(), 400, "invalid_json", None),
        (r#"{"messages":[{"role":"user","content":"x"}]}"#.into(), 400, "missing_required_parameter", Some("model")),
        (r#"{"model":"m"}"#.into(), 400, "missing_required_parameter", Some("messages")),
        (r#"{"model":"m","messages":"hello"}"#.into(), 400, "invalid_type", Some("messages")),
        (r#"{"model":7,"messages":[{"role":"user","content":"x"}]}"#.into(), 400, "invalid_type", Some("model")),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#.into(),
            400,
            "invalid_type",
            Some("stream"),
        ),
        (
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(5000)),
            413,
            "request_too_large",
            None,
        ),
    ];
    for (body, status, code, param) in cases {
        let (s, v) = json_of(c.post(&url).body(body.clone()).send().await.unwrap()).await;
        assert_eq!(s, status, "{body:.60}");
        assert_eq!(v["error"]["code"], code, "{body:.60}");
        assert_eq!(v["error"]["param"].as_str(), param);
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(v["error"]["type"].is_string());
    }
    let (s, v) = json_of(c.get(format!("{}/v1/nothing", gw.url())).send().await.unwrap()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("unknown_url")));
    let (s, v) = json_of(c.get(&url).send().await.unwrap()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (405, Some("method_not_allowed")));
    let (s, v) = json_of(c.delete(format!("{}/v1/models", gw.url())).send().await.unwrap()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (405, Some("method_not_allowed")));
    assert_eq!(m[0].requests(), 0, "no bad request reaches an upstream");
    // Still serving.
    assert_eq!(c.post(&url).body(chat("x", false)).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_health_and_metrics_endpoints() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let gw = gateway(&config_text(&urls(&m), RR)).await;
    let c = client();
    let (s, v) = json_of(c.get(format!("{}/v1/models", gw.url())).send().await.unwrap()).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["auto", "routesim", "rr", "e0", "e1", "model-0", "model-1"], "every name a `model` may take");
    assert_eq!(c.get(format!("{}/healthz", gw.url())).send().await.unwrap().status(), 200);
    assert_eq!(c.get(format!("{}/readyz", gw.url())).send().await.unwrap().status(), 200);
    for _ in 0..4 {
        c.post(format!("{}/v1/chat/completions", gw.url())).body(chat("x", false)).send().await.unwrap();
    }
    let text = metrics(&c, &gw).await;
    for series in [
        "routesim_gateway_requests_total{status=\"ok\"} 4",
        "routesim_gateway_upstream_attempts_total{endpoint=\"e0\"} 2",
        "routesim_gateway_in_flight 0",
        "routesim_gateway_request_duration_seconds_count{streaming=\"false\"} 4",
        "routesim_gateway_overhead_seconds_count 4",
        "routesim_gateway_tokens_total{endpoint=\"e1\",kind=\"input\"} 20",
        "routesim_gateway_circuit_state{endpoint=\"e0\"} 0",
        "routesim_gateway_log_rows_dropped_total 0",
    ] {
        assert!(text.lines().any(|l| l == series), "missing `{series}` in\n{text}");
    }
    // 2 requests x (10 input x $1 + 1 output x $2) per million tokens.
    let cost = metric(&text, "routesim_gateway_cost_usd_total{endpoint=\"e0\"}").unwrap();
    assert!((cost - 2.0 * 12e-6).abs() < 1e-12, "{cost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rows_match_what_happened() {
    let m = mocks(vec![MockReply::ok(4), MockReply::status(500)]).await;
    let dir = temp_dir("log");
    let log = dir.join("requests.jsonl");
    let rest = format!(
        "[request_log]\npath = \"{}\"\n\n[[policies]]\nname = \"c\"\nkind = \"conditional\"\nrules = [{{ when = {{ task_class = \"bad\" }}, target = \"e1\" }}]\ndefault = \"e0\"\n",
        log.display()
    );
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let url = format!("{}/v1/chat/completions", gw.url());
    let body = serde_json::json!({"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(
        c.post(&url).header("x-routesim-class", "chat").body(body.to_string()).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.post(&url).header("x-routesim-class", "bad").body(chat("x", false)).send().await.unwrap().status(),
        502
    );
    gw.shutdown();
    gw.wait().await.unwrap();
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let ok = rows.iter().find(|r| r["class"] == "chat").unwrap();
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["endpoint"], "e0");
    assert_eq!(ok["input_tokens"], 10);
    assert_eq!(ok["output_tokens"], 4);
    assert_eq!(ok["output_known"], true);
    assert_eq!(ok["http_status"], 200);
    assert!((ok["cost_usd"].as_f64().unwrap() - 18e-6).abs() < 1e-12);
    assert!(ok["ttft_s"].is_null(), "no TTFT for a non-streaming request");
    let bad = rows.iter().find(|r| r["class"] == "bad").unwrap();
    assert_eq!(bad["status"], "server");
    assert_eq!(bad["endpoint"], "e1");
    assert_eq!(bad["http_status"], 502);
    assert_eq!(bad["output_known"], false);
    for r in &rows {
        let a = r["arrival_s"].as_f64().unwrap();
        assert!((0.0..60.0).contains(&a), "arrival relative to the gateway's start: {a}");
        assert!(r["latency_s"].as_f64().unwrap() > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_stream_cancels_the_upstream_call() {
    let reply = MockReply::Ok {
        delay: Duration::ZERO,
        gap: Duration::from_millis(100),
        chunks: (0..50).map(|i| format!("t{i}")).collect(),
        prompt_tokens: 5,
    };
    let m = mocks(vec![reply]).await;
    let dir = temp_dir("cancel");
    let log = dir.join("requests.jsonl");
    let gw = gateway(&config_text(&urls(&m), &format!("[request_log]\npath = \"{}\"\n\n{RR}", log.display()))).await;
    let c = client();
    let mut r = c.post(format!("{}/v1/chat/completions", gw.url())).body(chat("x", true)).send().await.unwrap();
    assert!(r.chunk().await.unwrap().is_some());
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    drop(c);
    let t = Instant::now();
    while m[0].state.cancelled.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m[0].state.cancelled.load(Ordering::SeqCst), 1, "the upstream stream was dropped");
    assert_eq!(m[0].state.completed.load(Ordering::SeqCst), 0);
    let c = client();
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_requests_total{status=\"cancelled\"}"), Some(1.0));
    assert_eq!(metric(&text, "routesim_gateway_upstream_in_flight{endpoint=\"e0\"}"), Some(0.0));
    assert_eq!(gw.app().routers.with(0, |r| r.state(router_core::EndpointIdx(0)).in_flight), 0);
    gw.shutdown();
    gw.wait().await.unwrap();
    let row: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(row["cancelled"], true);
    assert_eq!(row["status"], "other");
    assert_eq!(row["http_status"], 499);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_loses_no_request() {
    let slow = MockReply::Ok {
        delay: Duration::from_millis(800),
        gap: Duration::from_millis(20),
        chunks: vec!["a".into(), "b".into()],
        prompt_tokens: 1,
    };
    let m = mocks(vec![slow]).await;
    let dir = temp_dir("drain");
    let log = dir.join("requests.jsonl");
    let gw = gateway(&config_text(&urls(&m), &format!("[request_log]\npath = \"{}\"\n\n{RR}", log.display()))).await;
    let url = format!("{}/v1/chat/completions", gw.url());
    let c = client();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let r = c.post(&url).body(chat("x", i % 2 == 0)).send().await.unwrap();
                let s = r.status().as_u16();
                let body = r.text().await.unwrap();
                (s, body)
            })
        })
        .collect();
    let t = Instant::now();
    while m[0].requests() < 20 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(m[0].requests(), 20, "all in flight");
    let addr = gw.addr();
    gw.shutdown();
    let t = Instant::now();
    gw.wait().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    for t in tasks {
        let (s, body) = t.await.unwrap();
        assert_eq!(s, 200);
        assert!(body.contains("\"usage\"") || body.ends_with("data: [DONE]\n\n"), "complete body: {body}");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 20, "every request logged and flushed");
    assert!(std::net::TcpStream::connect(addr).is_err(), "no longer listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_prompts_never_reach_logs_metrics_or_errors() {
    const PROMPT: &str = "PROMPT-TEXT-7c1e-CONFIDENTIAL";
    let m = mocks(vec![MockReply::ok(2), MockReply::status(500)]).await;
    let dir = temp_dir("redact");
    let log = dir.join("requests.jsonl");
    let rest = format!("[request_log]\npath = \"{}\"\n\n{RR}", log.display());
    let cfg = config(&config_text(&[m[0].base_url(), m[1].base_url(), closed_url()], &rest));
    assert!(!format!("{cfg:?}").contains(KEY), "Debug of the config hides the key");
    let gw = routesim_gateway::start(cfg).await.unwrap();
    let c = client();
    let url = format!("{}/v1/chat/completions", gw.url());
    let mut answers = String::new();
    for body in [
        chat(PROMPT, false),
        chat(PROMPT, true),
        chat(PROMPT, false),
        chat(PROMPT, false),
        format!("{{\"model\": \"m\", \"messages\": [{{\"role\": \"user\", \"content\": \"{PROMPT}\""),
        format!("{{\"model\": \"{PROMPT}\"}}"),
        format!("{{\"model\": \"m\", \"messages\": [\"{PROMPT}\"]}}"),
    ] {
        let r = c.post(&url).header("authorization", format!("Bearer {KEY}")).body(body).send().await.unwrap();
        let ok = r.status().is_success();
        let text = r.text().await.unwrap();
        if !ok {
            answers.push_str(&text);
        }
    }
    assert_eq!(
        m[0].state.last_auth.lock().unwrap().as_deref(),
        Some(format!("Bearer {KEY}").as_str()),
        "the key is used upstream"
    );
    assert!(!answers.is_empty(), "some requests failed");
    let metrics_text = metrics(&c, &gw).await;
    gw.shutdown();
    gw.wait().await.unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.lines().count() >= 4);
    for (what, text) in [("error bodies", &answers), ("metrics", &metrics_text), ("log", &log_text)] {
        assert!(!text.contains(KEY), "the key leaked into {what}");
        assert!(!text.contains("SECRETKEY"), "part of the key leaked into {what}");
        assert!(!text.contains(PROMPT), "the prompt leaked into {what}:\n{text}");
    }
}

#[test]
fn a_scenario_with_upstreams_is_a_valid_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("scenarios/quickstart.toml")).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    for e in doc["endpoints"].as_array_mut().unwrap() {
        let mut u = toml::Table::new();
        u.insert("base_url".into(), "http://127.0.0.1:9/v1".into());
        u.insert("api_key_env".into(), "GW_TEST_KEY".into());
        e.as_table_mut().unwrap().insert("upstream".into(), toml::Value::Table(u));
    }
    let with = toml::to_string(&doc).unwrap();
    let env = |k: &str| (k == "GW_TEST_KEY").then(|| KEY.to_string());
    let cfg = routesim_gateway::GatewayConfig::parse(Path::new("q.toml"), &with, Some("hybrid"), &env).unwrap();
    assert_eq!(cfg.router.policy.name, "hybrid");
    assert_eq!(cfg.router.endpoints.len(), 5);
    assert_eq!(cfg.upstreams[4].model, "llama-3.3-70b-instruct");
    assert_eq!(cfg.upstreams[0].chat_url, "http://127.0.0.1:9/v1/chat/completions");
    assert_eq!(cfg.health.interval, router_core::Duration::from_secs(10), "the scenario's [health]");

    // Without upstreams it names the first endpoint's missing table.
    let e = routesim_gateway::GatewayConfig::parse(Path::new("q.toml"), &text, None, &env).unwrap_err();
    assert_eq!(e.path, "endpoints[0].upstream");

    // A best-policy.toml pastes in unchanged.
    let best = "# Chosen by `routesim tune`\n[[policies]]\nname = \"hybrid-tuned\"\nkind = \"hybrid\"\nbuffer = 0.05\n\n[policies.weights]\ncost = 0.7\nlatency = 0.3\nload = 0.0\nquota = 0.0\n";
    let base = "[[endpoints]]\nid = \"a\"\nupstream = { base_url = \"http://127.0.0.1:9/v1\" }\n\n";
    let cfg =
        routesim_gateway::GatewayConfig::parse(Path::new("g.toml"), &format!("{base}{best}"), None, &env).unwrap();
    assert_eq!(cfg.router.policy.name, "hybrid-tuned");
}

#[test]
fn config_errors_name_the_file_and_the_field() {
    let env = |k: &str| (k == "GW_TEST_KEY").then(|| KEY.to_string());
    let base = |ep1: &str, rest: &str| {
        format!(
            "[[endpoints]]\nid = \"a\"\nupstream = {{ base_url = \"http://127.0.0.1:9/v1\" }}\n\n[[endpoints]]\nid = \"b\"\n{ep1}\n\n[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n{rest}"
        )
    };
    let cases = [
        (
            base("upstream = { base_ur = \"http://x/v1\" }", ""),
            "endpoints[1].upstream.base_ur",
            "unknown field `base_ur`",
        ),
        (
            base("upstream = { base_url = \"ftp://x\" }", ""),
            "endpoints[1].upstream.base_url",
            "expected an http:// or https:// URL",
        ),
        (
            base("upstream = { base_url = \"http://x/v1\", api_key_env = \"NOT_SET_ANYWHERE\" }", ""),
            "endpoints[1].upstream.api_key_env",
            "`NOT_SET_ANYWHERE` is not set",
        ),
        (
            base("upstream = { base_url = \"http://x/v1\", api_key = \"sk-123\" }", ""),
            "endpoints[1].upstream.api_key",
            "unknown field `api_key`",
        ),
        (
            base(
                "slots = 4\nttft = { dist = \"constant\", value = \"1s\" }\nslotz = 3\nupstream = { base_url = \"http://x/v1\" }",
                "",
            ),
            "endpoints[1].slotz",
            "unknown field `slotz`",
        ),
        (
            base("upstream = { base_url = \"http://x/v1\" }", "retry = { max_attempts = 0 }\n"),
            "policies[0].retry.max_attempts",
            "",
        ),
        (
            base("upstream = { base_url = \"http://x/v1\" }", "targets = [\"zz\"]\n"),
            "policies[0].targets[0]",
            "unknown target `zz`",
        ),
        (
            format!("[servr]\nlisten = \"x\"\n{}", base("upstream = { base_url = \"http://x/v1\" }", "")),
            "servr",
            "unknown field `servr`",
        ),
        (
            format!("[server]\nlisten = \"nowhere\"\n{}", base("upstream = { base_url = \"http://x/v1\" }", "")),
            "server.listen",
            "expected an address",
        ),
    ];
    for (text, path, msg) in cases {
        let e = routesim_gateway::GatewayConfig::parse(Path::new("gw.toml"), &text, None, &env).unwrap_err();
        assert_eq!(e.path, path, "{e}");
        assert!(e.message.contains(msg), "{e}");
        let shown = e.to_string();
        assert!(shown.starts_with("gw.toml"), "{shown}");
        assert!(!shown.contains("sk-123"), "{shown}");
    }
    let ok = base("upstream = { base_url = \"http://x/v1\" }", "");
    let e = routesim_gateway::GatewayConfig::parse(Path::new("gw.toml"), &ok, Some("nope"), &env).unwrap_err();
    assert!(e.message.contains("no policy named `nope`: expected one of rr"), "{e}");
}

#[test]
fn the_binary_exits_2_on_an_invalid_config_and_checks_a_valid_one() {
    let dir = temp_dir("cli");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[endpoints]]\nid = \"a\"\nupstream = { base_url = \"http://127.0.0.1:9/v1\", timout = \"1s\" }\n[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway")).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: {}:3: field `endpoints[0].upstream.timout`: unknown field `timout`",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.trim_end().ends_with("(did you mean `timeout`?)"), "{err}");
    let good = dir.join("good.toml");
    std::fs::write(&good, "[[endpoints]]\nid = \"a\"\nupstream = { base_url = \"http://127.0.0.1:9/v1\" }\n[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n").unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway")).arg(&good).arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("policy `rr` (round-robin) over 1 endpoint(s): a"));
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let env = |k: &str| k.ends_with("_API_KEY").then(|| "k".to_string());
    for policy in ["hybrid", "conditional"] {
        let cfg = routesim_gateway::GatewayConfig::parse(&path, &text, Some(policy), &env).unwrap();
        assert_eq!(cfg.router.policy.name, policy);
        assert_eq!(cfg.upstreams.len(), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_on_a_slow_answer_cancels_it_too() {
    let slow = MockReply::Ok {
        delay: Duration::from_secs(3),
        gap: Duration::ZERO,
        chunks: vec!["a".into()],
        prompt_tokens: 1,
    };
    let m = mocks(vec![slow]).await;
    let gw = gateway(&config_text(&urls(&m), RR)).await;
    let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(300)).build().unwrap();
    let r = impatient.post(format!("{}/v1/chat/completions", gw.url())).body(chat("x", false)).send().await;
    assert!(r.is_err(), "the client timed out");
    let c = client();
    let t = Instant::now();
    let mut text = metrics(&c, &gw).await;
    while metric(&text, "routesim_gateway_requests_total{status=\"cancelled\"}") != Some(1.0)
        && t.elapsed() < Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = metrics(&c, &gw).await;
    }
    assert_eq!(metric(&text, "routesim_gateway_requests_total{status=\"cancelled\"}"), Some(1.0), "{text}");
    assert!(t.elapsed() < Duration::from_secs(2), "cancelled long before the upstream would answer");
    assert_eq!(gw.app().routers.with(0, |r| r.state(router_core::EndpointIdx(0)).in_flight), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_binary_and_it_exits_0() {
    let slow = MockReply::Ok {
        delay: Duration::from_millis(800),
        gap: Duration::ZERO,
        chunks: vec!["a".into()],
        prompt_tokens: 1,
    };
    let m = mocks(vec![slow]).await;
    let dir = temp_dir("sigterm");
    let log = dir.join("requests.jsonl");
    let cfg = dir.join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[health]\ninterval = \"0s\"\n\n[request_log]\npath = \"{}\"\n\n[[endpoints]]\nid = \"a\"\nupstream = {{ base_url = \"{}\" }}\n\n{RR}",
            log.display(),
            m[0].base_url()
        ),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    /// Kills the child if the test fails before it exits, so nothing outlives the test.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if self.0.try_wait().ok().flatten().is_none() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Reap(
        std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway"))
            .arg(&cfg)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let c = client();
    let t = Instant::now();
    while c.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (c2, url) = (c.clone(), format!("{base}/v1/chat/completions"));
    let pending =
        tokio::spawn(async move { c2.post(url).body(chat("x", false)).send().await.unwrap().status().as_u16() });
    while m[0].requests() == 0 {
        assert!(t.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kill = std::process::Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    assert!(kill.success());
    assert_eq!(pending.await.unwrap(), 200, "the in-flight request completes");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the gateway did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1, "logged and flushed before exiting");
}
