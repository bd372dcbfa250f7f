//! Issue 28, gateway hardening, on 127.0.0.1: slow and idle clients are cut by the connection timeouts,
//! an idle-socket flood under a low descriptor limit leaves room for real requests, an oversized
//! `content-length` is refused at once, TPM limits reserve a request's estimate at admission.

mod common;

use common::*;
use routesim_gateway::auth::keys::{StoredHash, new_secret};
use routesim_mock_upstream::MockReply;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `[[keys]]` entry for `id` with `extra` TOML lines; returns the entry and the secret.
fn key(id: &str, extra: &str) -> (String, String) {
    let secret = new_secret(id);
    let entry = format!("[[keys]]\nid = \"{id}\"\nhash = \"{}\"\n{extra}\n", StoredHash::new(&secret).encode());
    (entry, secret)
}

const RR: &str = "[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n\n";

/// Reads until the peer closes (or `limit` passes); returns what was read and whether it closed.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

const LIMITS: &str =
    "[connections]\nheader_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"\nkeep_alive_timeout = \"1s\"\n\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_by_their_timeouts() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let gw = gateway(&config_text(&urls(&m), &format!("{LIMITS}{RR}"))).await;
    let addr = gw.addr();
    let t0 = Instant::now();

    // A connection that sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Headers at one byte every 200 ms: never complete within 1 s; the gateway closes the connection.
    let slow_head = tokio::spawn(async move {
        let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
        tokio::spawn(async move {
            for b in b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
                if wr.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut buf = [0u8; 256];
        let closed =
            matches!(tokio::time::timeout(Duration::from_secs(4), rd.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)));
        (t0.elapsed(), closed)
    });
    // A body at one byte every 200 ms (the head arrives whole): 408 after the body-read timeout.
    let slow_body = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let body = chat("hi", false);
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let writer = async {
            for b in body.as_bytes() {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
        read_to_close(&mut s, Duration::from_secs(3)).await
    });
    // A kept-alive connection, idle after one request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let (_, closed) = read_to_close(&mut silent, Duration::from_secs(4)).await;
    assert!(closed, "a connection that sends nothing is closed");
    let (_, closed) = read_to_close(&mut idle, Duration::from_secs(4)).await;
    assert!(closed, "an idle kept-alive connection is closed");
    let (at, cut) = slow_head.await.unwrap();
    assert!(cut, "a head sent at 5 bytes/s is cut (after {at:?})");
    let (answer, closed) = slow_body.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "a slow body gets 408: {answer:?}");
    assert!(
        answer.contains(r#""code":"request_timeout""#) && answer.contains("the request body did not arrive within"),
        "with its code and cause: {answer:?}"
    );
    assert!(closed, "and its connection is closed");
    assert!(t0.elapsed() < Duration::from_secs(8), "all within a few timeouts: {:?}", t0.elapsed());
    assert_eq!(m[0].requests(), 0, "nothing reached the upstream");

    let text = metrics(&client(), &gw).await;
    assert!(metric(&text, "routesim_gateway_connections_closed_total{reason=\"header_timeout\"}").unwrap() >= 2.0);
    assert!(metric(&text, "routesim_gateway_connections_closed_total{reason=\"keep_alive_timeout\"}").unwrap() >= 1.0);
    assert_eq!(metric(&text, "routesim_gateway_body_read_timeouts_total"), Some(1.0));
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_is_refused_before_the_body() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let gw = gateway(&config_text(&urls(&m), RR)).await;
    let mut s = TcpStream::connect(gw.addr()).await.unwrap();
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 99999999999\r\n\r\n{",
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    let (answer, _) = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("request_too_large"), "{answer:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "at once: {:?}", t0.elapsed());
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// The gateway binary as a child process with `RLIMIT_NOFILE` at `nofile` (through `prlimit`), on config
/// `text`; returns the child and its address.
fn spawn_limited(text: &str, dir: &std::path::Path, nofile: u32) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut child = std::process::Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_routesim-gateway"))
        .arg(&cfg)
        .env("GW_TEST_KEY", KEY)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) runs the gateway");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split(':').take(2).collect::<Vec<_>>().join(":");
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("the gateway starts");
    (child, addr.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_socket_flood_under_a_low_descriptor_limit_leaves_room_for_real_requests() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let dir = temp_dir("fd-flood");
    let (k, secret) = key("real", "");
    // Timeouts far longer than the test: only the connection cap can make room.
    let text = config_text(
        &urls(&m),
        &format!("[connections]\nheader_read_timeout = \"60s\"\nkeep_alive_timeout = \"60s\"\n\n{RR}{k}"),
    );
    let (mut child, addr) = spawn_limited(&text, &dir, 256);
    let outcome = async {
        let mut flood = Vec::new();
        for _ in 0..300 {
            flood.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let c = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
        let mut ok = 0;
        for _ in 0..3 {
            let r = c
                .post(format!("http://{addr}/v1/chat/completions"))
                .bearer_auth(&secret)
                .body(chat("hi", false))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().as_u16() == 200) {
                ok += 1;
            }
        }
        let text = match c.get(format!("http://{addr}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        drop(flood);
        (ok, text)
    };
    let result = tokio::time::timeout(Duration::from_secs(40), outcome).await;
    let _ = child.kill();
    let _ = child.wait();
    let (ok, text) = result.expect("the flood test finishes");
    assert_eq!(ok, 3, "authenticated requests are served despite 300 idle sockets");
    let open = metric(&text, "routesim_gateway_connections").expect("the connections gauge");
    assert!(open <= 128.0, "at most half the 256 descriptors hold client connections: {open}");
    assert!(metric(&text, "routesim_gateway_connections_closed_total{reason=\"evicted\"}").unwrap() >= 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_reserves_each_requests_estimate_at_admission() {
    let m = mocks(vec![MockReply::Ok {
        delay: Duration::from_millis(500),
        gap: Duration::ZERO,
        chunks: vec!["a".into()],
        prompt_tokens: 5,
    }])
    .await;
    let (k, secret) = key("thin", "limits = { tpm = 1000 }");
    let gw = gateway(&config_text(&urls(&m), &format!("{RR}{k}"))).await;
    let c = client();
    let url = format!("{}/v1/chat/completions", gw.url());
    let body = |max: u64| {
        serde_json::json!({"model": "auto", "max_tokens": max, "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
    };
    // One request above the whole limit.
    let r = c.post(&url).bearer_auth(&secret).body(body(1_000_000)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "tpm_limit_exceeded");
    // Two concurrent 600-token requests: the second would pass the limit with the first's reservation.
    let send = || {
        let (c, url, s, b) = (c.clone(), url.clone(), secret.clone(), body(595));
        tokio::spawn(async move { c.post(&url).bearer_auth(&s).body(b).send().await.unwrap().status().as_u16() })
    };
    let a = send();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let b = send();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!((a, b), (200, 429));
    assert_eq!(m[0].requests(), 1, "only the admitted request reached the upstream");
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// The rows of a JSONL request log.
fn log_rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cut_at_the_shutdown_timeout_are_logged_and_charged() {
    // Streams that send one chunk and then stall; requests after the scripted ones hang with no answer.
    let m = mocks(vec![MockReply::Hang]).await;
    let stall = MockReply::Ok {
        delay: Duration::ZERO,
        gap: Duration::from_secs(60),
        chunks: vec!["a".into(), "b".into()],
        prompt_tokens: 5,
    };
    m[0].script(std::iter::repeat_n(stall, 10));
    let dir = temp_dir("shutdown-cut");
    let log = dir.join("requests.jsonl");
    let (k, secret) = key("team", "limits = { daily_budget_usd = 100.0 }");
    let text = config_text(&urls(&m), &format!("[request_log]\npath = \"{}\"\n\n{RR}{k}", log.display()))
        .replace("shutdown_timeout = \"10s\"", "shutdown_timeout = \"1s\"");
    let gw = gateway(&text).await;
    let app = gw.app().clone();
    let c = client();
    let url = format!("{}/v1/chat/completions", gw.url());
    let mut streams = Vec::new();
    for _ in 0..10 {
        // Each stream is committed (its first chunk arrives) before the next request goes out.
        let r = c.post(&url).bearer_auth(&secret).body(chat("hi", true)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        streams.push(r);
    }
    let mut waiting = Vec::new();
    for _ in 0..10 {
        let (c, url, s) = (c.clone(), url.clone(), secret.clone());
        waiting.push(tokio::spawn(async move { c.post(&url).bearer_auth(&s).body(chat("hi", false)).send().await }));
    }
    let t0 = Instant::now();
    while m[0].requests() < 20 && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m[0].requests(), 20);
    let t0 = Instant::now();
    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.wait()).await.expect("the drain ends").unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "cut at the 1 s timeout: {:?}", t0.elapsed());
    let rows = log_rows(&log);
    assert_eq!(rows.len(), 20, "one row per request cut");
    for r in &rows {
        assert_eq!((r["status"].as_str(), r["cancelled"].as_bool()), (Some("other"), Some(true)), "{r}");
        assert_eq!(r["key_id"], "team");
    }
    let streamed: Vec<_> = rows.iter().filter(|r| r["streaming"] == true).collect();
    assert_eq!(streamed.len(), 10);
    assert!(streamed.iter().all(|r| r["output_tokens"].as_u64() >= Some(1) && r["cost_usd"].as_f64() > Some(0.0)));
    let (spend, in_flight) = app.access.usage("team").unwrap();
    assert_eq!(in_flight, 0, "every cut request gave its slot back");
    let logged: f64 = rows.iter().map(|r| r["cost_usd"].as_f64().unwrap()).sum();
    assert!(spend.day_usd > 0.0 && (spend.day_usd - logged).abs() < 1e-12, "charged {} logged {logged}", spend.day_usd);
    drop(streams);
    for w in waiting {
        let _ = w.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_are_counted_and_logged_and_never_forwarded() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let dir = temp_dir("client-errors");
    let log = dir.join("requests.jsonl");
    let text = config_text(&urls(&m), &format!("[request_log]\npath = \"{}\"\n\n{RR}", log.display()))
        .replace("[server]\n", "[server]\nmax_body_bytes = 1000\n");
    let gw = gateway(&text).await;
    let c = client();
    let url = gw.url();
    let body = |extra: &str| format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{extra}}}"#);
    let chat_url = format!("{url}/v1/chat/completions");
    let mut cases = vec![
        (c.post(&chat_url).body("{not json"), 400, "invalid_json"),
        (c.post(&chat_url).body(body(r#","max_tokens":-5"#)), 400, "invalid_value"),
        (c.post(&chat_url).body(body(r#","max_tokens":"abc""#)), 400, "invalid_type"),
        (c.post(&chat_url).body(body(r#","max_tokens":1e30"#)), 400, "invalid_value"),
        (c.post(&chat_url).body("x".repeat(2000)), 413, "request_too_large"),
        (c.get(format!("{url}/v2/nothing")), 404, "unknown_url"),
        (c.get(&chat_url), 405, "method_not_allowed"),
    ];
    for (i, (req, status, code)) in cases.drain(..).enumerate() {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "case {i}");
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], code, "case {i}");
    }
    // Heads hyper refuses itself: malformed (400) and too large (431).
    for (head, status) in [
        ("NOT HTTP AT ALL\r\n\r\n".to_string(), "HTTP/1.1 400"),
        (format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(1 << 20)), "HTTP/1.1 431"),
    ] {
        let mut s = TcpStream::connect(gw.addr()).await.unwrap();
        let _ = s.write_all(head.as_bytes()).await;
        let (answer, _) = read_to_close(&mut s, Duration::from_secs(3)).await;
        assert!(answer.starts_with(status), "{answer:?}");
    }
    assert_eq!(m[0].requests(), 0, "nothing was forwarded");
    let text = metrics(&c, &gw).await;
    for (status, n) in [("400", 5.0), ("404", 1.0), ("405", 1.0), ("408", 0.0), ("413", 1.0), ("431", 1.0)] {
        let series = format!("routesim_gateway_client_errors_total{{status=\"{status}\"}}");
        assert_eq!(metric(&text, &series), Some(n), "{series}");
    }
    gw.shutdown();
    gw.wait().await.unwrap();
    let rows = log_rows(&log);
    assert_eq!(rows.len(), 7);
    let codes: Vec<&str> = rows.iter().map(|r| r["client_error"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "invalid_json",
            "invalid_value",
            "invalid_type",
            "invalid_value",
            "request_too_large",
            "unknown_url",
            "method_not_allowed"
        ]
    );
    assert!(rows.iter().all(|r| r["status"] == "rejected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_from_clients_are_trusted_only_without_keys_and_never_reused() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let c = client();
    let id_of = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().parse::<u64>().unwrap();
    // Anonymous (loopback): the operator's own callers; the gateway's ids continue above theirs.
    let gw = gateway(&config_text(&urls(&m), RR)).await;
    let url = format!("{}/v1/chat/completions", gw.url());
    let r = c.post(&url).header("x-routesim-request-id", "1000").body(chat("hi", false)).send().await.unwrap();
    assert_eq!(id_of(&r), 1000);
    let r = c.post(&url).body(chat("hi", false)).send().await.unwrap();
    assert!(id_of(&r) > 1000, "the gateway's next id does not collide: {}", id_of(&r));
    gw.shutdown();
    gw.wait().await.unwrap();
    // With keys: a client's id is ignored, so two clients sending the same id get different ones.
    let (k, secret) = key("a", "");
    let gw = gateway(&config_text(&urls(&m), &format!("{RR}{k}"))).await;
    let url = format!("{}/v1/chat/completions", gw.url());
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = c
            .post(&url)
            .bearer_auth(&secret)
            .header("x-routesim-request-id", "7")
            .body(chat("hi", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        ids.push(id_of(&r));
    }
    assert!(ids[0] != ids[1] && !ids.contains(&7), "{ids:?}");
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[test]
fn a_provider_key_with_a_newline_is_refused_at_start_up() {
    let dir = temp_dir("key-newline");
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, config_text(&["http://127.0.0.1:9/v1".to_string()], RR)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway"))
        .arg(&cfg)
        .arg("--check")
        .env("GW_TEST_KEY", "sk-first-half\nsk-second-half")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("endpoints[0].upstream.api_key_env") && stderr.contains("GW_TEST_KEY"), "{stderr}");
    assert!(!stderr.contains("sk-first-half"), "the key is not quoted: {stderr}");
    // A key alone (with the trailing newline `echo` adds) is fine.
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway"))
        .arg(&cfg)
        .arg("--check")
        .env("GW_TEST_KEY", "sk-whole-key\n")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn keys_new_refuses_an_expiry_in_the_past() {
    let dir = temp_dir("keys-past");
    let file = dir.join("keys.toml");
    let run = |expires: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway"))
            .args(["keys", "new", "--file"])
            .arg(&file)
            .args(["--id", "late", "--expires", expires])
            .output()
            .unwrap()
    };
    let out = run("2001-01-01");
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expires: 2001-01-01 is in the past"));
    assert!(!file.exists() || !std::fs::read_to_string(&file).unwrap().contains("late"), "nothing written");
    assert_eq!(run("2999-01-01").status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_serve_on_call_series_from_the_start_and_on_their_own_listener() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let (k, secret) = key("team", "limits = { daily_budget_usd = 2.0, monthly_budget_usd = 30.0 }");
    let text = config_text(&urls(&m), &format!("[metrics]\nlisten = \"127.0.0.1:0\"\n\n{RR}{k}"));
    let gw = gateway(&text).await;
    let c = client();
    // /metrics is on its own listener; the API's answers 404.
    assert_eq!(c.get(format!("{}/metrics", gw.url())).send().await.unwrap().status().as_u16(), 404);
    let murl = format!("http://{}/metrics", gw.metrics_addr().expect("a metrics listener"));
    let scrape = || async { c.get(&murl).send().await.unwrap().text().await.unwrap() };
    let before = scrape().await;
    for (series, v) in [
        ("routesim_gateway_key_requests_total{key=\"team\",outcome=\"admitted\"}", 0.0),
        ("routesim_gateway_key_requests_total{key=\"team\",outcome=\"denied\"}", 0.0),
        ("routesim_gateway_key_spend_usd{key=\"team\",period=\"day\"}", 0.0),
        ("routesim_gateway_key_budget_remaining_usd{key=\"team\",period=\"day\"}", 2.0),
        ("routesim_gateway_key_budget_remaining_usd{key=\"team\",period=\"month\"}", 30.0),
        ("routesim_gateway_key_in_flight{key=\"team\"}", 0.0),
        ("routesim_gateway_client_errors_total{status=\"400\"}", 0.0),
        ("routesim_gateway_rejected_total{reason=\"all_circuits_open\"}", 0.0),
        ("routesim_gateway_failed_request_duration_seconds_count{status=\"timeout\"}", 0.0),
        ("routesim_gateway_build_info{version=\"0.1.0\"}", 1.0),
        ("routesim_gateway_connections_closed_total{reason=\"evicted\"}", 0.0),
    ] {
        assert_eq!(metric(&before, series), Some(v), "{series} from the start");
    }
    let fds = metric(&before, "process_open_fds").expect("process_open_fds");
    assert!(fds >= 3.0 && metric(&before, "process_max_fds").is_some_and(|m| m >= fds));
    assert!(metric(&before, "process_resident_memory_bytes").is_some_and(|b| b > 1e6));
    // One request: counted, charged, its budget left shrinks.
    let r = c.post(format!("{}/v1/chat/completions", gw.url())).bearer_auth(&secret).body(chat("hi", false));
    assert_eq!(r.send().await.unwrap().status().as_u16(), 200);
    let after = scrape().await;
    assert_eq!(metric(&after, "routesim_gateway_key_requests_total{key=\"team\",outcome=\"admitted\"}"), Some(1.0));
    let spent = metric(&after, "routesim_gateway_key_spend_usd{key=\"team\",period=\"day\"}").unwrap();
    assert!(spent > 0.0);
    let left = metric(&after, "routesim_gateway_key_budget_remaining_usd{key=\"team\",period=\"day\"}").unwrap();
    assert!((left - (2.0 - spent)).abs() < 1e-12);
    // A failure's latency is recorded too: no key is a denial (not a routed failure), so make the upstream
    // fail instead.
    m[0].script([MockReply::status(500)]);
    let r = c.post(format!("{}/v1/chat/completions", gw.url())).bearer_auth(&secret).body(chat("x", false));
    assert_eq!(r.send().await.unwrap().status().as_u16(), 502);
    let after = scrape().await;
    assert_eq!(metric(&after, "routesim_gateway_failed_request_duration_seconds_count{status=\"server\"}"), Some(1.0));
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// Metric names a PromQL expression mentions (identifiers of the gateway's and the process's series).
fn series_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("routesim_gateway_") || t.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_of_the_grafana_dashboard_names_an_exported_series() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/routesim-gateway.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let m = mocks(vec![MockReply::ok(1)]).await;
    let (k, _) = key("team", "limits = { daily_budget_usd = 2.0 }");
    let gw = gateway(&config_text(&urls(&m), &format!("{RR}{k}"))).await;
    let text = metrics(&client(), &gw).await;
    let exported: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut queries = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            let names = series_in(expr);
            assert!(!names.is_empty(), "panel {:?}: {expr} names no series", panel["title"]);
            for n in names {
                assert!(exported.contains(n.as_str()), "panel {:?}: `{n}` is not exported", panel["title"]);
            }
            queries += 1;
        }
    }
    assert!(queries >= 20, "{queries} queries");
    gw.shutdown();
    gw.wait().await.unwrap();
}
