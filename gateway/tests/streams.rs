//! Issue 28, committed streams: the attempt timeout bounds a stream only until its first chunk, then the
//! idle gap and (optionally) the total are bounded; a stream cut for any reason ends with an OpenAI-style
//! `error` event and a whole HTTP body; the usage chunk the gateway asked for on the client's behalf is not
//! passed to a client that did not ask for it.

mod common;

use common::*;
use routesim_mock_upstream::{MockReply, stream_chunk};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The data payloads of an SSE body.
fn events(body: &str) -> Vec<&str> {
    body.split("\n\n").filter_map(|e| e.trim().strip_prefix("data:")).map(str::trim).collect()
}

fn slow(chunks: usize, gap_ms: u64) -> MockReply {
    MockReply::Ok {
        delay: Duration::ZERO,
        gap: Duration::from_millis(gap_ms),
        chunks: (0..chunks).map(|i| format!("t{i} ")).collect(),
        prompt_tokens: 21,
    }
}

fn log_row(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(std::fs::read_to_string(path).unwrap().lines().next().unwrap()).unwrap()
}

/// The 90 s stream under a 60 s `[client] timeout`, scaled: a 300 ms timeout and a stream of 12
/// chunks 60 ms apart (720 ms) goes through whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_longer_than_the_attempt_timeout_is_not_cut() {
    let m = mocks(vec![slow(12, 60)]).await;
    let dir = temp_dir("long-stream");
    let log = dir.join("requests.jsonl");
    let rest = format!(
        "[client]\ntimeout = \"300ms\"\n\n[request_log]\npath = \"{}\"\n\n[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n",
        log.display()
    );
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let r = post(&c, &gw, chat("x", true)).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("a whole body");
    let ev = events(&body);
    assert_eq!(ev.len(), 13, "12 chunks and [DONE]: {body}");
    assert_eq!(ev.last(), Some(&"[DONE]"));
    gw.shutdown();
    gw.wait().await.unwrap();
    let row = log_row(&log);
    assert_eq!(row["status"], "ok");
    assert!(row["latency_s"].as_f64().unwrap() > 0.6);
}

/// A stream that goes quiet past `[stream] idle_timeout`, or runs past `total_timeout`, ends with an error
/// event; the client's HTTP body is whole, the log says `timeout`, the cut is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_total_stream_timeouts_end_with_an_error_event() {
    for (stream_cfg, reply, code, reason) in [
        ("idle_timeout = \"150ms\"", slow(3, 600), "stream_idle_timeout", "idle_timeout"),
        ("total_timeout = \"500ms\"", slow(40, 50), "stream_total_timeout", "total_timeout"),
    ] {
        let m = mocks(vec![reply]).await;
        let dir = temp_dir(&format!("cut-{reason}"));
        let log = dir.join("requests.jsonl");
        let rest = format!(
            "[stream]\n{stream_cfg}\n\n[request_log]\npath = \"{}\"\n\n[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n",
            log.display()
        );
        let gw = gateway(&config_text(&urls(&m), &rest)).await;
        let c = client();
        let t = std::time::Instant::now();
        let r = post(&c, &gw, chat("x", true)).await;
        assert_eq!(r.status(), 200);
        let body = r.text().await.expect("the HTTP body ends cleanly");
        let took = t.elapsed();
        assert!(took < Duration::from_millis(1500), "{reason}: cut after {took:?}");
        let ev = events(&body);
        assert!(ev.len() >= 2, "{reason}: some chunks went through first: {body}");
        let last: serde_json::Value = serde_json::from_str(ev.last().unwrap()).unwrap();
        assert_eq!(last["error"]["code"], code, "{body}");
        assert_eq!(last["error"]["type"], "timeout_error");
        assert!(!body.contains("[DONE]"));
        let mt = metrics(&c, &gw).await;
        let series = format!("routesim_gateway_stream_cuts_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&mt, &series), Some(1.0), "{mt}");
        gw.shutdown();
        gw.wait().await.unwrap();
        assert_eq!(log_row(&log)["status"], "timeout", "{reason}");
    }
}

/// A raw upstream on 127.0.0.1 that answers one request with an SSE head, `first`, and then `then`: closes
/// the connection mid-body (`None`) or ends the chunked body cleanly.
async fn raw_upstream(first: String, clean_end: bool) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok(Ok((mut s, _))) = tokio::time::timeout(Duration::from_secs(10), l.accept()).await else { return };
        let mut buf = vec![0u8; 65536];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{first}\r\n", first.len());
        let _ = s.write_all(format!("{head}{chunk}").as_bytes()).await;
        if clean_end {
            let _ = s.write_all(b"0\r\n\r\n").await;
        }
        let _ = s.flush().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Dropped: the connection closes (mid-body unless the body ended).
    });
    format!("http://{addr}/v1")
}

/// An upstream that breaks mid-stream, or ends it without `[DONE]` (cut short mid-event, too): the client
/// gets the chunks that came, then an error event, in a whole HTTP body; the log says `server`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_unfinished_stream_ends_with_an_error_event() {
    let two = format!("{}{}", stream_chunk("a"), stream_chunk("b"));
    for (first, clean, code) in [
        (two.clone(), false, "upstream_stream_broken"),
        (two.clone(), true, "upstream_stream_incomplete"),
        (format!("{two}data: {{\"choi"), true, "upstream_stream_incomplete"),
    ] {
        let url = raw_upstream(first.clone(), clean).await;
        let dir = temp_dir("broken-stream");
        let log = dir.join("requests.jsonl");
        let rest = format!(
            "[request_log]\npath = \"{}\"\n\n[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n",
            log.display()
        );
        let gw = gateway(&config_text(&[url], &rest)).await;
        let c = client();
        let r = post(&c, &gw, chat("x", true)).await;
        assert_eq!(r.status(), 200);
        let body = r.text().await.expect("the HTTP body ends cleanly");
        assert!(body.starts_with(&two), "{body}");
        let ev = events(&body);
        let last: serde_json::Value =
            serde_json::from_str(ev.last().unwrap()).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(last["error"]["code"], code, "{body}");
        gw.shutdown();
        gw.wait().await.unwrap();
        assert_eq!(log_row(&log)["status"], "server", "{code}");
    }
}

/// A client that did not ask for usage gets no `choices: []` chunk (its `choices[0]` loop holds), while the
/// gateway still bills the usage; a client that asked gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_chunk_reaches_only_clients_that_asked_for_it() {
    let m = mocks(vec![slow(4, 0)]).await;
    let dir = temp_dir("usage-strip");
    let log = dir.join("requests.jsonl");
    let rest =
        format!("[request_log]\npath = \"{}\"\n\n[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n", log.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let body = post(&c, &gw, chat("x", true)).await.text().await.unwrap();
    let ev = events(&body);
    assert_eq!(ev.last(), Some(&"[DONE]"));
    let mut text = String::new();
    for e in &ev[..ev.len() - 1] {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        text.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or_else(|| panic!("choices[0] in {e}")));
    }
    assert_eq!(text, "t0 t1 t2 t3 ");
    let sent: serde_json::Value =
        serde_json::from_slice(m[0].state.last_body.lock().unwrap().as_ref().unwrap()).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true, "the gateway still asks for usage");
    let asked = serde_json::json!({"model": "auto", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "x"}]});
    let body = post(&c, &gw, asked.to_string()).await.text().await.unwrap();
    let usage: Vec<serde_json::Value> = events(&body)
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter(|v| v["choices"].as_array().is_some_and(|c| c.is_empty()))
        .collect();
    assert_eq!(usage.len(), 1, "{body}");
    assert_eq!(usage[0]["usage"]["prompt_tokens"], 21);
    gw.shutdown();
    gw.wait().await.unwrap();
    let row = log_row(&log);
    assert_eq!((row["input_tokens"].as_u64(), row["output_tokens"].as_u64()), (Some(21), Some(4)), "billed with usage");
}
