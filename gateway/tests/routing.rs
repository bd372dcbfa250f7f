//! Routing through router-core against mock upstreams on loopback: the policy, failover on 5xx, 429,
//! timeouts and refused connections, Retry-After, streams passed through byte for byte, the cache, the
//! circuit breaker, health checks and batching.

mod common;

use common::*;
use routesim_mock_upstream::{MockReply, expected_stream};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_and_the_model_is_rewritten() {
    let m = mocks(vec![MockReply::ok(2), MockReply::ok(2)]).await;
    let gw = gateway(&config_text(&urls(&m), "[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n")).await;
    let c = client();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let r = post(&c, &gw, chat("hi", false)).await;
        assert_eq!(r.status(), 200);
        seen.push(served_by(&r));
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["usage"]["prompt_tokens"], 10);
    }
    assert_eq!(m[0].requests(), 5);
    assert_eq!(m[1].requests(), 5);
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "alternates: {seen:?}");
    let sent: serde_json::Value =
        serde_json::from_slice(m[1].state.last_body.lock().unwrap().as_ref().unwrap()).unwrap();
    assert_eq!(sent["model"], "model-1", "the upstream's model replaces the client's");
    assert_eq!(m[0].state.last_auth.lock().unwrap().as_deref(), Some(format!("Bearer {KEY}").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_rules_read_headers_and_body_metadata() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1), MockReply::ok(1)]).await;
    let policy = r#"
[[policies]]
name = "cond"
kind = "conditional"
rules = [
  { when = { task_class = "code" }, target = "e1" },
  { when = { plan = "pro" }, target = "e2" },
]
default = "e0"
"#;
    let gw = gateway(&config_text(&urls(&m), policy)).await;
    let c = client();
    let r = c
        .post(format!("{}/v1/chat/completions", gw.url()))
        .header("x-routesim-class", "code")
        .body(chat("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(served_by(&r), "e1");
    let body = serde_json::json!({"model": "auto", "metadata": {"plan": "pro"}, "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(served_by(&post(&c, &gw, body.to_string()).await), "e2");
    let r = c
        .post(format!("{}/v1/chat/completions", gw.url()))
        .header("x-routesim-meta-plan", "pro")
        .body(chat("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(served_by(&r), "e2");
    assert_eq!(served_by(&post(&c, &gw, chat("x", false)).await), "e0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_keeps_a_user_on_one_endpoint() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1), MockReply::ok(1)]).await;
    let gw = gateway(&config_text(&urls(&m), "[[policies]]\nname = \"s\"\nkind = \"sticky\"\nkey = \"user\"\n")).await;
    let c = client();
    for user in ["alice", "bob", "carol"] {
        let body = serde_json::json!({"model": "auto", "user": user, "messages": [{"role": "user", "content": "x"}]});
        let first = served_by(&post(&c, &gw, body.to_string()).await);
        for _ in 0..4 {
            assert_eq!(served_by(&post(&c, &gw, body.to_string()).await), first, "{user} stays put");
        }
    }
}

const FALLBACK: &str = "[[policies]]\nname = \"fb\"\nkind = \"fallback\"\nfallbacks = [\"e1\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_on_5xx_and_counts_it() {
    let m = mocks(vec![MockReply::status(503), MockReply::ok(1)]).await;
    let gw = gateway(&config_text(&urls(&m), FALLBACK)).await;
    let c = client();
    let r = post(&c, &gw, chat("x", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&r), "e1");
    assert_eq!(r.headers()["x-routesim-attempts"], "2");
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_upstream_errors_total{endpoint=\"e0\",class=\"server\"}"), Some(1.0));
    assert_eq!(metric(&text, "routesim_gateway_fallbacks_total"), Some(1.0));
    assert_eq!(metric(&text, "routesim_gateway_requests_total{status=\"ok\"}"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_on_429_and_on_a_refused_connection() {
    let m =
        mocks(vec![MockReply::Status { code: 429, retry_after: Some(30), delay: Duration::ZERO }, MockReply::ok(1)])
            .await;
    let gw = gateway(&config_text(&urls(&m), FALLBACK)).await;
    let c = client();
    let r = post(&c, &gw, chat("x", false)).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "e1".to_string()));

    let m2 = mocks(vec![MockReply::ok(1)]).await;
    let gw2 = gateway(&config_text(&[closed_url(), m2[0].base_url()], FALLBACK)).await;
    let r = post(&c, &gw2, chat("x", false)).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "e1".to_string()));
    let text = metrics(&c, &gw2).await;
    assert_eq!(metric(&text, "routesim_gateway_upstream_errors_total{endpoint=\"e0\",class=\"server\"}"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_on_the_same_endpoint() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    m[0].script([MockReply::Status { code: 429, retry_after: Some(1), delay: Duration::ZERO }]);
    let policy = "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\nretry = { max_attempts = 2, base_delay = \"10ms\", max_delay = \"20ms\", budget = { ratio = 1.0, min_per_s = 100.0 } }\n";
    let gw = gateway(&config_text(&urls(&m), policy)).await;
    let c = client();
    let t = Instant::now();
    let r = post(&c, &gw, chat("x", false)).await;
    let took = t.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(m[0].requests(), 2);
    assert!(took >= Duration::from_millis(1000), "waited {took:?}, less than Retry-After: 1");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Without attempts left, the 429 reaches the client with its Retry-After.
    m[0].script([
        MockReply::Status { code: 429, retry_after: Some(7), delay: Duration::ZERO },
        MockReply::Status { code: 429, retry_after: Some(7), delay: Duration::ZERO },
    ]);
    let policy1 = "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n";
    let gw1 = gateway(&config_text(&urls(&m), policy1)).await;
    let r = post(&c, &gw1, chat("x", false)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_and_ttft_timeouts_fail_over() {
    let m = mocks(vec![MockReply::Hang, MockReply::ok(2)]).await;
    let policy = "[[policies]]\nname = \"fb\"\nkind = \"fallback\"\nfallbacks = [\"e1\"]\ntimeout = \"300ms\"\n";
    let gw = gateway(&config_text(&urls(&m), policy)).await;
    let c = client();
    let t = Instant::now();
    let r = post(&c, &gw, chat("x", false)).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "e1".to_string()));
    assert!(t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_upstream_errors_total{endpoint=\"e0\",class=\"timeout\"}"), Some(1.0));

    // TTFT: the first chunk of e0 comes after 2s; the policy's ttft_timeout is 200ms; the attempt timeout
    // ([client]) is longer.
    let slow = MockReply::Ok {
        delay: Duration::from_secs(2),
        gap: Duration::ZERO,
        chunks: vec!["a".into()],
        prompt_tokens: 1,
    };
    let m2 = mocks(vec![slow, MockReply::ok(3)]).await;
    let policy = "[client]\ntimeout = \"10s\"\n\n[[policies]]\nname = \"fb\"\nkind = \"fallback\"\nfallbacks = [\"e1\"]\nttft_timeout = \"200ms\"\n";
    let gw2 = gateway(&config_text(&urls(&m2), policy)).await;
    let t = Instant::now();
    let r = post(&c, &gw2, chat("x", true)).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "e1".to_string()));
    let body = r.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    // A non-streaming request is not subject to the TTFT timeout.
    let r = post(&c, &gw2, chat("x", false)).await;
    assert_eq!(served_by(&r), "e0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_passes_through_byte_for_byte_as_it_arrives() {
    let reply = MockReply::Ok {
        delay: Duration::from_millis(50),
        gap: Duration::from_millis(150),
        chunks: (0..5).map(|i| format!("piece {i} ")).collect(),
        prompt_tokens: 21,
    };
    let m = mocks(vec![reply.clone()]).await;
    let dir = temp_dir("stream");
    let log = dir.join("requests.jsonl");
    let rest =
        format!("[request_log]\npath = \"{}\"\n\n[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n", log.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let t = Instant::now();
    let mut r = post(&c, &gw, chat("x", true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut got = Vec::new();
    let mut first_at = None;
    while let Some(chunk) = r.chunk().await.unwrap() {
        first_at.get_or_insert(t.elapsed());
        got.extend_from_slice(&chunk);
    }
    let total = t.elapsed();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        expected_stream(&reply, false),
        "byte-exact (less the usage chunk the client did not ask for)"
    );
    let first_at = first_at.unwrap();
    assert!(first_at < Duration::from_millis(400), "first chunk after {first_at:?}: buffered?");
    assert!(total >= Duration::from_millis(600), "{total:?}");
    gw.shutdown();
    gw.wait().await.unwrap();
    let row: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(row["status"], "ok");
    assert_eq!(row["input_tokens"], 21, "usage from the final chunk");
    assert_eq!(row["output_tokens"], 5);
    let ttft = row["ttft_s"].as_f64().unwrap();
    assert!((0.04..0.4).contains(&ttft), "ttft {ttft}");
    assert!(row["latency_s"].as_f64().unwrap() >= 0.6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_arrive_together_leave_together_and_byte_for_byte() {
    // The mock writes its 8 content events, the usage event and `[DONE]` at once (no gap): they reach the
    // gateway in one read. Passed on frame by frame, the client would see 9 frames per response (the usage
    // event is not passed on); the relay passes what has already arrived as one write.
    let reply = MockReply::ok(8);
    let m = mocks(vec![reply.clone()]).await;
    let gw = gateway(&config_text(&urls(&m), "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n")).await;
    let c = client();
    let (requests, events) = (20, 9);
    let mut frames = 0;
    for _ in 0..requests {
        let mut r = post(&c, &gw, chat("x", true)).await;
        assert_eq!(r.status(), 200);
        let mut got = Vec::new();
        while let Some(chunk) = r.chunk().await.unwrap() {
            frames += 1;
            got.extend_from_slice(&chunk);
        }
        assert_eq!(
            String::from_utf8(got).unwrap(),
            expected_stream(&reply, false),
            "byte-exact (less the usage chunk the client did not ask for)"
        );
    }
    // Scheduling may split a burst (on a busy machine, often); never coalescing gives exactly requests x events.
    assert!(frames < requests * events, "{frames} frames for {requests} responses of {events} events");
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_hit_the_cache() {
    let m = mocks(vec![MockReply::ok(3)]).await;
    let policy = "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\ncache = { ttl = \"10m\", capacity = 100 }\n";
    let gw = gateway(&config_text(&urls(&m), policy)).await;
    let c = client();
    let a = post(&c, &gw, chat("same", false)).await;
    assert!(a.headers().get("x-routesim-cache").is_none());
    let a = a.text().await.unwrap();
    let b = post(&c, &gw, chat("same", false)).await;
    assert_eq!(b.headers()["x-routesim-cache"], "hit");
    assert_eq!(b.text().await.unwrap(), a);
    assert_eq!(m[0].requests(), 1);
    post(&c, &gw, chat("different", false)).await;
    assert_eq!(m[0].requests(), 2);
    post(&c, &gw, chat("same", true)).await.text().await.unwrap();
    post(&c, &gw, chat("same", true)).await.text().await.unwrap();
    assert_eq!(m[0].requests(), 4, "streams are not cached");
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_cache_hits_total"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_opens_and_recovers() {
    let m = mocks(vec![MockReply::status(500), MockReply::ok(1)]).await;
    let policy = r#"
[[policies]]
name = "fb"
kind = "fallback"
targets = ["e0", "e1"]
fallbacks = ["e1"]
tracking = { circuit = { enabled = true, consecutive_failures = 3, error_rate = 1.0, min_requests = 1000, cooldown = "400ms", half_open_probes = 1 } }
"#;
    let gw = gateway(&config_text(&urls(&m), policy)).await;
    let c = client();
    for _ in 0..3 {
        assert_eq!(post(&c, &gw, chat("x", false)).await.status(), 200);
    }
    assert_eq!(m[0].requests(), 3);
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_circuit_state{endpoint=\"e0\"}"), Some(1.0), "open");
    for _ in 0..5 {
        assert_eq!(served_by(&post(&c, &gw, chat("x", false)).await), "e1");
    }
    assert_eq!(m[0].requests(), 3, "no request reaches an open circuit");
    m[0].set_default(MockReply::ok(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served_by(&post(&c, &gw, chat("x", false)).await), "e0", "the half-open probe succeeds");
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_circuit_state{endpoint=\"e0\"}"), Some(0.0), "closed again");
    assert_eq!(served_by(&post(&c, &gw, chat("x", false)).await), "e0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_an_endpoint_out_and_back() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let rest = "[health]\ninterval = \"100ms\"\n\n[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n";
    let gw = gateway(&config_text(&urls(&m), rest)).await;
    let c = client();
    m[0].state.health_status.store(503, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(m[0].state.health_checks.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let before = m[0].requests();
    for _ in 0..6 {
        assert_eq!(served_by(&post(&c, &gw, chat("x", false)).await), "e1");
    }
    assert_eq!(m[0].requests(), before);
    assert_eq!(c.get(format!("{}/readyz", gw.url())).send().await.unwrap().status(), 200, "one endpoint is healthy");
    m[1].state.health_status.store(503, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.get(format!("{}/readyz", gw.url())).send().await.unwrap().status(), 503);
    let r = post(&c, &gw, chat("x", false)).await;
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "all_unhealthy");
    m[0].state.health_status.store(200, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(served_by(&post(&c, &gw, chat("x", false)).await), "e0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferrable_requests_are_batched() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let mut text = config_text(&urls(&m), "");
    // e1 is the batch endpoint.
    text = text.replacen("id = \"e1\"\n", "id = \"e1\"\nbatch = true\n", 1);
    text.push_str(
        "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\nbatching = { endpoint = \"e1\", max_size = 3, max_wait = \"400ms\" }\n",
    );
    let gw = gateway(&text).await;
    let c = client();
    let send = |c: reqwest::Client, url: String| async move {
        let t = Instant::now();
        let r = c
            .post(format!("{url}/v1/chat/completions"))
            .header("x-routesim-deferrable", "true")
            .body(chat("x", false))
            .send()
            .await
            .unwrap();
        (served_by(&r), t.elapsed())
    };
    // A full batch of three goes at once.
    let all = futures_util::future::join_all((0..3).map(|_| send(c.clone(), gw.url()))).await;
    for (ep, took) in &all {
        assert_eq!(ep, "e1");
        assert!(*took < Duration::from_millis(350), "{took:?}");
    }
    // A lone request waits for the deadline.
    let (ep, took) = send(c.clone(), gw.url()).await;
    assert_eq!(ep, "e1");
    assert!(took >= Duration::from_millis(380) && took < Duration::from_secs(2), "{took:?}");
    // Interactive requests never go to the batch endpoint.
    for _ in 0..3 {
        assert_eq!(served_by(&post(&c, &gw, chat("x", false)).await), "e0");
    }
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_batches_total"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_take_the_policy_then_the_upstream_then_client_value() {
    let m = mocks(vec![MockReply::Hang, MockReply::ok(1)]).await;
    let c = client();
    // [client] says 10s, e0's upstream says 250ms: the upstream's wins.
    let text = config_text(&urls(&m), &format!("[client]\ntimeout = \"10s\"\n\n{FALLBACK}")).replacen(
        "api_key_env = \"GW_TEST_KEY\" }",
        "api_key_env = \"GW_TEST_KEY\", timeout = \"250ms\" }",
        1,
    );
    let gw = gateway(&text).await;
    let t = Instant::now();
    let r = post(&c, &gw, chat("x", false)).await;
    assert_eq!(served_by(&r), "e1");
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The policy's timeout (100ms) overrides the upstream's (5s).
    let text = config_text(&urls(&m), &format!("{FALLBACK}timeout = \"100ms\"\n")).replacen(
        "api_key_env = \"GW_TEST_KEY\" }",
        "api_key_env = \"GW_TEST_KEY\", timeout = \"5s\" }",
        1,
    );
    let gw = gateway(&text).await;
    let t = Instant::now();
    let r = post(&c, &gw, chat("x", false)).await;
    assert_eq!(served_by(&r), "e1");
    assert!(t.elapsed() >= Duration::from_millis(100) && t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(gw.app().timeouts[0].attempt, Some(100_000_000));
    assert_eq!(gw.app().timeouts[1].attempt, Some(100_000_000));
}

/// Portkey's order with a fallback that moves on after a 503 only (`fallback_on = { fb = [503] }`): the gateway
/// passes the upstream's own code to the router, so a 503 from e0 goes on to e1 and a 500 (the same `server`
/// class) is answered as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_on_503_moves_on_after_a_503_and_not_after_a_500() {
    let m = mocks(vec![MockReply::status(503), MockReply::ok(1)]).await;
    let policy = "[[policies]]\nname = \"fb\"\nkind = \"fallback\"\ntargets = [\"e0\", \"e1\"]\n\
                  [policies.retry]\nmax_attempts = 4\nretry_on = [\"rate_limited\", \"server\", \"timeout\", \"other\"]\n\
                  budget = \"unlimited\"\n[policies.target_retry]\nattempts = 0\non = []\nfallback_on = { fb = [503] }\n\
                  [policies.tracking.circuit]\nenabled = false\n";
    let gw = gateway(&config_text(&urls(&m), policy)).await;
    let c = client();
    let r = post(&c, &gw, chat("x", false)).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "e1".to_string()), "503: on to e1");
    assert_eq!(r.headers()["x-routesim-attempts"], "2");
    m[0].set_default(MockReply::status(500));
    let r = post(&c, &gw, chat("x", false)).await;
    assert!(r.status().is_server_error(), "500: answered, not moved on ({})", r.status());
    assert_eq!((m[0].requests(), m[1].requests()), (2, 1));
}
