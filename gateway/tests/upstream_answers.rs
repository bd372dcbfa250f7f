//! Issue 28, what upstreams answer: a 2xx that is not a usable completion is an upstream failure (retried,
//! failed over, logged and counted); an upstream 401/403 is the gateway's own credential failure (502, circuit
//! opened, failover); an upstream 4xx body reaches the client scrubbed of credentials.

mod common;

use common::*;
use routesim_mock_upstream::{MockReply, completion_body};

const FALLBACK: &str = "[[policies]]\nname = \"fb\"\nkind = \"fallback\"\nfallbacks = [\"e1\"]\n";

fn raw(status: u16, content_type: &'static str, body: &str) -> MockReply {
    MockReply::Raw { status, content_type, body: body.to_string() }
}

/// Each misbehaviour of a 2xx answer, on e0 with e1 behind it: the client gets e1's answer, e0's failure is
/// counted as a server error and as an invalid answer, and the log has one row, `ok`, two attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_2xx_answers_are_upstream_failures_and_fail_over() {
    let full = completion_body("fine", 3, 1);
    let cases: Vec<(&str, MockReply, bool, &str)> = vec![
        ("not JSON", raw(200, "application/json", "<html>oops</html>"), false, "not_json"),
        (
            "an error object in a 200",
            raw(200, "application/json", r#"{"error":{"message":"overloaded"}}"#),
            false,
            "error_object",
        ),
        ("a truncated JSON body", raw(200, "application/json", &full[..full.len() / 2]), false, "truncated"),
        ("JSON that is no completion", raw(200, "application/json", r#"{"id":"x"}"#), false, "no_choices"),
        ("plain JSON to a stream", raw(200, "application/json", &full), true, "not_a_stream"),
        ("plain JSON to a stream, without a content type", raw(200, "text/plain", &full), true, "not_a_stream"),
        (
            "an error object to a stream",
            raw(200, "application/json", r#"{"error":{"message":"x"}}"#),
            true,
            "error_object",
        ),
        (
            "an error event opening a stream",
            raw(200, "text/event-stream", "data: {\"error\":{\"message\":\"overloaded\"}}\n\n"),
            true,
            "error_object",
        ),
        ("an empty stream", raw(200, "text/event-stream", ""), true, "empty_stream"),
    ];
    for (what, bad, stream, reason) in cases {
        let m = mocks(vec![bad, MockReply::ok(2)]).await;
        let dir = temp_dir(&format!("invalid-{reason}-{stream}"));
        let log = dir.join("requests.jsonl");
        let rest = format!("[request_log]\npath = \"{}\"\n\n{FALLBACK}", log.display());
        let gw = gateway(&config_text(&urls(&m), &rest)).await;
        let c = client();
        let r = post(&c, &gw, chat("hi", stream)).await;
        assert_eq!(r.status(), 200, "{what}");
        assert_eq!(served_by(&r), "e1", "{what}: failed over");
        assert_eq!(r.headers()["x-routesim-attempts"], "2", "{what}");
        let text = r.text().await.unwrap();
        assert!(text.contains("tok0"), "{what}: e1's answer: {text}");
        assert_eq!((m[0].requests(), m[1].requests()), (1, 1), "{what}");
        let mt = metrics(&c, &gw).await;
        assert_eq!(
            metric(&mt, "routesim_gateway_upstream_errors_total{endpoint=\"e0\",class=\"server\"}"),
            Some(1.0),
            "{what}"
        );
        let series = format!("routesim_gateway_upstream_invalid_answers_total{{endpoint=\"e0\",reason=\"{reason}\"}}");
        assert_eq!(metric(&mt, &series), Some(1.0), "{what}: {mt}");
        gw.shutdown();
        gw.wait().await.unwrap();
        let rows = std::fs::read_to_string(&log).unwrap();
        let row: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
        assert_eq!((row["status"].as_str(), row["attempts"].as_u64()), (Some("ok"), Some(2)), "{what}");
    }
}

/// With no endpoint behind it, an invalid answer is the client's 502 (logged `server`), never a 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_answer_with_nowhere_to_go_is_a_502() {
    let m = mocks(vec![raw(200, "application/json", r#"{"error":{"message":"overloaded"}}"#)]).await;
    let dir = temp_dir("invalid-502");
    let log = dir.join("requests.jsonl");
    let rest =
        format!("[request_log]\npath = \"{}\"\n\n[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n", log.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let r = post(&c, &gw, chat("hi", false)).await;
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "upstream_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("error object"), "{v}");
    let mt = metrics(&c, &gw).await;
    assert_eq!(metric(&mt, "routesim_gateway_requests_total{status=\"server\"}"), Some(1.0));
    assert_eq!(metric(&mt, "routesim_gateway_requests_total{status=\"ok\"}"), Some(0.0));
    gw.shutdown();
    gw.wait().await.unwrap();
    let row: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(row["status"], "server");
}

/// An upstream that answers 401 echoing the key it was sent: the endpoint's circuit opens, the request fails
/// over, and no later request goes there; alone, it is a 502 with the gateway's own message. The key shows up
/// nowhere the client can see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_refusing_the_gateways_key_is_a_502_with_failover_and_an_open_circuit() {
    for status in [401, 403] {
        let m = mocks(vec![MockReply::EchoAuth { status }, MockReply::ok(2)]).await;
        let gw = gateway(&config_text(&urls(&m), FALLBACK)).await;
        let c = client();
        for i in 0..3 {
            let r = post(&c, &gw, chat("hi", i == 1)).await;
            assert_eq!(r.status(), 200, "{status}");
            assert_eq!(served_by(&r), "e1");
            let text = r.text().await.unwrap();
            assert!(!text.contains("SECRETKEY") && !text.contains("sk-tes"), "{text}");
        }
        assert_eq!(m[0].requests(), 1, "{status}: the circuit is open after the first refusal");
        let mt = metrics(&c, &gw).await;
        assert_eq!(metric(&mt, "routesim_gateway_circuit_state{endpoint=\"e0\"}"), Some(1.0), "{status}: open");
        assert_eq!(metric(&mt, "routesim_gateway_upstream_auth_failures_total{endpoint=\"e0\"}"), Some(1.0));
        gw.shutdown();
        gw.wait().await.unwrap();
    }
    // Alone: a 502 of the gateway's own.
    let m = mocks(vec![MockReply::EchoAuth { status: 401 }]).await;
    let gw = gateway(&config_text(&urls(&m), "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n")).await;
    let c = client();
    let r = post(&c, &gw, chat("hi", false)).await;
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    for leak in [KEY, "SECRETKEY", "sk-tes", "TKEY", "Incorrect API key"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "upstream_auth_failed");
    assert_eq!(v["error"]["type"], "api_error");
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// An upstream 400 (the client's request at fault) is passed on with its status, message, type and code,
/// scrubbed of the key it echoes, in full or masked; its other fields are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_4xx_bodies_reach_the_client_scrubbed() {
    let m = mocks(vec![MockReply::EchoAuth { status: 400 }]).await;
    let gw = gateway(&config_text(&urls(&m), "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n")).await;
    let c = client();
    for stream in [false, true] {
        let r = post(&c, &gw, chat("hi", stream)).await;
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        for leak in [KEY, "SECRETKEY", "sk-tes", "TKEY", "0123456789"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"].get("key").is_none(), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().starts_with("Incorrect API key provided: [redacted]"), "{v}");
    }
    assert_eq!(m[0].requests(), 2, "a 4xx of the client's own request is not retried");
    gw.shutdown();
    gw.wait().await.unwrap();
}
