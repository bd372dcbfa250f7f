//! Access control end to end, on 127.0.0.1: client keys, denials (status, error shape, nothing sent
//! upstream), per-key limits and budgets, spend surviving a restart, key file reloads, the metadata a key
//! adds to routing, the audit in `/metrics` and the request log, secrets never echoed, refusal of an
//! anonymous public gateway, and TLS with a self-signed certificate made in the test.

mod common;

use common::*;
use routesim_gateway::auth::keys::{StoredHash, new_secret};
use routesim_mock_upstream::MockReply;
use std::path::Path;
use std::time::Duration;

/// A `[[keys]]` entry for `id` with `extra` TOML lines; returns the entry and the secret.
fn key(id: &str, extra: &str) -> (String, String) {
    let secret = new_secret(id);
    let entry = format!("[[keys]]\nid = \"{id}\"\nhash = \"{}\"\n{extra}\n", StoredHash::new(&secret).encode());
    (entry, secret)
}

const RR: &str = "[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n\n";

async fn post(c: &reqwest::Client, url: &str, secret: Option<&str>, body: String) -> reqwest::Response {
    let mut r = c.post(format!("{url}/v1/chat/completions")).body(body);
    if let Some(s) = secret {
        r = r.bearer_auth(s);
    }
    r.send().await.unwrap()
}

/// Status, `Retry-After` and the parsed body.
async fn answer(r: reqwest::Response) -> (u16, Option<u64>, serde_json::Value, String) {
    let s = r.status().as_u16();
    let ra = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (s, ra, v, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_denial_has_its_status_and_shape_and_reaches_no_upstream() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let dir = temp_dir("access-denials");
    let log = dir.join("requests.jsonl");
    let (k_ok, s_ok) = key("ok", "");
    let (k_rev, s_rev) = key("gone", "revoked = true");
    let (k_exp, s_exp) = key("old", "expires = 2001-01-01");
    let (k_model, s_model) = key("narrow", "models = [\"gpt-4o*\"]");
    let (k_rpm, s_rpm) = key("slow", "limits = { rpm = 2 }");
    // "hi" is estimated at (16 + 2) / 4 = 5 tokens; the mock reports 10 + 1: after one request the
    // minute holds 11 >= 8.
    let (k_tpm, s_tpm) = key("thin", "limits = { tpm = 8 }");
    let (k_conc, s_conc) = key("one", "limits = { concurrency = 1 }");
    let keys = [k_ok, k_rev, k_exp, k_model, k_rpm, k_tpm, k_conc].concat();
    let rest = format!("[request_log]\npath = \"{}\"\n\n{RR}{keys}", log.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let url = gw.url();
    let hi = || chat("hi", false);

    let cases: Vec<(&str, Option<String>, u16, &str, &str)> = vec![
        ("no key", None, 401, "invalid_request_error", "missing_api_key"),
        ("garbage", Some("sk-not-a-routesim-key".into()), 401, "invalid_request_error", "invalid_api_key"),
        // The right shape and id, the wrong random part.
        ("wrong secret", Some(new_secret("ok")), 401, "invalid_request_error", "invalid_api_key"),
        ("unknown id", Some(new_secret("nobody")), 401, "invalid_request_error", "invalid_api_key"),
        ("revoked", Some(s_rev.clone()), 401, "invalid_request_error", "key_revoked"),
        ("expired", Some(s_exp.clone()), 401, "invalid_request_error", "key_expired"),
        ("model", Some(s_model.clone()), 403, "permission_error", "model_not_allowed"),
    ];
    for (what, secret, status, kind, code) in &cases {
        let (s, ra, v, text) = answer(post(&c, &url, secret.as_deref(), hi()).await).await;
        assert_eq!(s, *status, "{what}: {text}");
        assert_eq!(v["error"]["type"], *kind, "{what}");
        assert_eq!(v["error"]["code"], *code, "{what}");
        assert!(ra.is_none(), "{what}: no Retry-After for an authentication failure");
        if let Some(sec) = secret {
            assert!(!text.contains(sec.as_str()), "{what}: the error echoes the secret");
        }
    }
    // /v1/models needs a key too.
    assert_eq!(c.get(format!("{url}/v1/models")).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(c.get(format!("{url}/v1/models")).bearer_auth(&s_ok).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(m[0].requests(), 0, "no denied request reached the upstream");

    // The valid key works; the RPM key takes two then gets 429 with a Retry-After within the minute.
    assert_eq!(post(&c, &url, Some(&s_ok), hi()).await.status().as_u16(), 200);
    for _ in 0..2 {
        assert_eq!(post(&c, &url, Some(&s_rpm), hi()).await.status().as_u16(), 200);
    }
    let (s, ra, v, _) = answer(post(&c, &url, Some(&s_rpm), hi()).await).await;
    assert_eq!(
        (s, v["error"]["type"].as_str(), v["error"]["code"].as_str()),
        (429, Some("rate_limit_error"), Some("rpm_limit_exceeded"))
    );
    assert!(ra.is_some_and(|r| (1..=60).contains(&r)), "Retry-After {ra:?}");
    // TPM: the first request fits, the second finds the minute full.
    assert_eq!(post(&c, &url, Some(&s_tpm), hi()).await.status().as_u16(), 200);
    let (s, ra, v, _) = answer(post(&c, &url, Some(&s_tpm), hi()).await).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("tpm_limit_exceeded")));
    assert!(ra.is_some_and(|r| (1..=60).contains(&r)));
    // Concurrency: one request held upstream, the second is refused at once.
    m[0].script([MockReply::Ok {
        delay: Duration::from_millis(600),
        gap: Duration::ZERO,
        chunks: vec!["a".into()],
        prompt_tokens: 1,
    }]);
    let held = {
        let (c, url, s) = (c.clone(), url.clone(), s_conc.clone());
        tokio::spawn(async move { post(&c, &url, Some(&s), chat("hi", false)).await.status().as_u16() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, ra, v, _) = answer(post(&c, &url, Some(&s_conc), hi()).await).await;
    assert_eq!((s, v["error"]["code"].as_str(), ra), (429, Some("concurrency_limit_exceeded"), Some(1)));
    assert_eq!(held.await.unwrap(), 200);
    assert_eq!(post(&c, &url, Some(&s_conc), hi()).await.status().as_u16(), 200, "the slot is given back");
    assert_eq!(m[0].requests(), 6, "exactly the admitted requests reached the upstream");

    let metrics = metrics(&c, &gw).await;
    for (reason, n) in [
        ("missing_key", 2.0), // the chat and /v1/models
        ("invalid_key", 3.0),
        ("revoked", 1.0),
        ("expired", 1.0),
        ("not_allowed", 1.0),
        ("rpm", 1.0),
        ("tpm", 1.0),
        ("concurrency", 1.0),
        ("daily_budget", 0.0),
    ] {
        let series = format!("routesim_gateway_denied_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&metrics, &series), Some(n), "{series}");
    }
    gw.shutdown();
    gw.wait().await.unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    let rows: Vec<serde_json::Value> = log_text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let denied: Vec<_> = rows.iter().filter(|r| r.get("denied").is_some()).collect();
    assert_eq!(denied.len(), 11, "every chat denial is logged");
    assert!(denied.iter().all(|r| r["status"] == "rejected" && r["endpoint"] == ""));
    let revoked = denied.iter().find(|r| r["denied"] == "revoked").unwrap();
    assert_eq!(revoked["key_id"], "gone");
    assert_eq!(revoked["http_status"], 401);
    assert!(rows.iter().any(|r| r["key_id"] == "ok" && r["status"] == "ok"), "served rows carry the key id");
    for s in [&s_ok, &s_rev, &s_exp, &s_model, &s_rpm, &s_tpm, &s_conc] {
        let random = s.rsplit_once('.').unwrap().1;
        assert!(!log_text.contains(random), "a secret is in the request log");
        assert!(!metrics.contains(random), "a secret is in /metrics");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends the headers of a chat completion with a `len`-byte body and the first 64 KiB of it, then reads the
/// answer's status line and headers.
async fn raw_answer_head(url: &str, secret: Option<&str>, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = secret.map(|s| format!("authorization: Bearer {s}\r\n")).unwrap_or_default();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         {auth}content-length: {len}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&vec![b'x'; 64 << 10]).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await.expect("an answer").unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_checked_before_the_body_is_read() {
    // A body over the 4 MiB limit: a client without a key gets 401, not 413 (the body is never read); with
    // the key, the limit applies. Neither reaches the upstream.
    let m = mocks(vec![MockReply::ok(1)]).await;
    let (k_ok, s_ok) = key("ok", "");
    let gw = gateway(&config_text(&urls(&m), &format!("{RR}{k_ok}"))).await;
    let c = client();
    let big = (4 << 20) + 1;
    // Without a key, over a raw socket: the gateway answers and closes while the body is still being sent,
    // which an HTTP client may report as a broken pipe instead of the answer.
    let head = raw_answer_head(&gw.url(), None, big).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // With the key, the declared length alone gets the 413 (over a raw socket too: it is answered before the
    // body is read, so a client still sending may see a broken pipe instead).
    let head = raw_answer_head(&gw.url(), Some(&s_ok), big).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // A body that never ends: answered at once without a key (reading it first would wait forever).
    use futures_util::StreamExt;
    let stalled =
        futures_util::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"model\":")) })
            .chain(futures_util::stream::pending());
    let send = c.post(format!("{}/v1/chat/completions", gw.url())).body(reqwest::Body::wrap_stream(stalled)).send();
    let r =
        tokio::time::timeout(std::time::Duration::from_secs(5), send).await.expect("answered before the body ended");
    assert_eq!(r.unwrap().status().as_u16(), 401);
    assert_eq!(m[0].requests(), 0);
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_is_402_and_survives_a_restart() {
    // A million prompt tokens at $1/Mtok: each answer costs just over $1.
    let reply = MockReply::Ok {
        delay: Duration::ZERO,
        gap: Duration::ZERO,
        chunks: vec!["a".into()],
        prompt_tokens: 1_000_000,
    };
    let m = mocks(vec![reply]).await;
    let dir = temp_dir("access-budget");
    let (k, secret) = key("team-a", "limits = { daily_budget_usd = 0.5 }");
    let rest =
        format!("[auth]\nusage_store = \"{}\"\nflush_interval = \"1h\"\n\n{RR}{k}", dir.join("usage.redb").display());
    let text = config_text(&urls(&m), &rest);
    let c = client();
    {
        let gw = gateway(&text).await;
        assert_eq!(post(&c, &gw.url(), Some(&secret), chat("hi", false)).await.status().as_u16(), 200);
        let (s, ra, v, _) = answer(post(&c, &gw.url(), Some(&secret), chat("hi", false)).await).await;
        assert_eq!(s, 402);
        assert_eq!(v["error"]["type"], "insufficient_quota");
        assert_eq!(v["error"]["code"], "budget_exceeded");
        assert!(ra.is_some_and(|r| (1..=86_400).contains(&r)), "Retry-After until midnight UTC: {ra:?}");
        // The flush interval is an hour: only the shutdown flush can have saved the spend.
        gw.shutdown();
        gw.wait().await.unwrap();
    }
    let gw = gateway(&text).await;
    let (spend, _) = gw.app().access.usage("team-a").unwrap();
    assert!((spend.day_usd - 1.000_002).abs() < 1e-9, "restored spend {spend:?}");
    let (s, _, v, _) = answer(post(&c, &gw.url(), Some(&secret), chat("hi", false)).await).await;
    assert_eq!((s, v["error"]["code"].as_str()), (402, Some("budget_exceeded")), "denied after the restart");
    assert_eq!(m[0].requests(), 1, "only the first request was forwarded");
    gw.shutdown();
    gw.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_metadata_feeds_conditional_routing_and_tags_confine_endpoints() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1), MockReply::ok(1)]).await;
    let (k_search, s_search) = key("search", "metadata = { team = \"search\" }");
    let (k_eu, s_eu) = key("eu-only", "endpoint_tags = [\"eu\"]");
    let policy = "[[policies]]\nname = \"cond\"\nkind = \"conditional\"\nrules = [{ when = { team = \"search\" }, target = \"e1\" }]\ndefault = \"e0\"\n\n[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n\n";
    let text = config_text(&urls(&m), &format!("{policy}{k_search}{k_eu}"))
        .replace("id = \"e2\"\n", "id = \"e2\"\ntags = [\"eu\"]\n");
    let gw = gateway(&text).await;
    let c = client();
    let served = |r: &reqwest::Response| r.headers()["x-routesim-endpoint"].to_str().unwrap().to_string();
    // The key's team routes to e1, whatever the client claims.
    let r = c
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(&s_search)
        .header("x-routesim-meta-team", "other")
        .body(chat("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(served(&r), "e1");
    // The EU key's requests would go to the default, e0, which is not tagged eu: refused, not misrouted.
    let r = post(&c, &gw.url(), Some(&s_eu), chat("x", false)).await;
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(m[0].requests() + m[2].requests(), 0);
    gw.shutdown();
    gw.wait().await.unwrap();
    // Under round-robin, the EU key only ever reaches the endpoint tagged eu.
    let gw = routesim_gateway::start(
        routesim_gateway::GatewayConfig::parse(Path::new("t.toml"), &text, Some("rr"), &|k| {
            (k == "GW_TEST_KEY").then(|| KEY.to_string())
        })
        .unwrap(),
    )
    .await
    .unwrap();
    for _ in 0..4 {
        assert_eq!(served(&post(&c, &gw.url(), Some(&s_eu), chat("x", false)).await), "e2");
    }
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_file_reloads_on_change_without_dropping_requests() {
    use routesim_gateway::auth::manage::{NewKey, new_key, revoke};
    let slow = MockReply::Ok {
        delay: Duration::from_millis(800),
        gap: Duration::ZERO,
        chunks: vec!["a".into()],
        prompt_tokens: 1,
    };
    let m = mocks(vec![MockReply::ok(1)]).await;
    let dir = temp_dir("access-reload");
    let file = dir.join("keys.toml");
    let opts = |id: &str| NewKey {
        file: file.clone(),
        id: id.into(),
        description: None,
        models: vec![],
        endpoint_tags: vec![],
        metadata: vec![],
        rpm: None,
        tpm: None,
        concurrency: None,
        daily_budget_usd: None,
        monthly_budget_usd: None,
        expires: None,
    };
    let a = new_key(&opts("a"), 0).unwrap();
    let rest = format!("[auth]\nkey_file = \"{}\"\nreload_interval = \"50ms\"\n\n{RR}", file.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    m[0].script([slow]);
    let in_flight = {
        let (c, url, a) = (c.clone(), gw.url(), a.clone());
        tokio::spawn(async move { post(&c, &url, Some(&a), chat("x", false)).await.status().as_u16() })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    revoke(&file, "a").unwrap();
    let b = new_key(&opts("b"), 0).unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if gw.app().access.key_ids().contains(&"b".to_string()) {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the new key file was picked up");
    assert_eq!(in_flight.await.unwrap(), 200, "a request admitted before the reload completes");
    let (s, _, v, _) = answer(post(&c, &gw.url(), Some(&a), chat("x", false)).await).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("key_revoked")));
    assert_eq!(post(&c, &gw.url(), Some(&b), chat("x", false)).await.status().as_u16(), 200);
    // A broken key file leaves the keys in force.
    std::fs::write(&file, "[[keys]]\nid = \"c\"\nhash = \"plain text\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post(&c, &gw.url(), Some(&b), chat("x", false)).await.status().as_u16(), 200);
    gw.shutdown();
    gw.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn key_errors_name_the_file_and_field_and_anonymous_public_gateways_are_refused() {
    let urls = vec!["http://127.0.0.1:9/v1".to_string()];
    let env = |k: &str| (k == "GW_TEST_KEY").then(|| KEY.to_string());
    let parse = |t: &str| routesim_gateway::GatewayConfig::parse(Path::new("gw.toml"), t, None, &env);
    let e = parse(&config_text(&urls, &format!("{RR}[[keys]]\nid = \"a\"\nhash = \"hunter2\"\n"))).unwrap_err();
    assert_eq!(e.path, "keys[0].hash");
    assert!(e.to_string().starts_with("gw.toml"), "{e}");
    let (k, _) = key("a", "limits = { rpm = 0 }");
    assert_eq!(parse(&config_text(&urls, &format!("{RR}{k}"))).unwrap_err().path, "keys[0].limits.rpm");
    let (k, _) = key("a", "limits = { rpn = 3 }");
    let e = parse(&config_text(&urls, &format!("{RR}{k}"))).unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("rpm"), "{e}");
    let (k1, _) = key("a", "");
    let (k2, _) = key("a", "");
    assert_eq!(parse(&config_text(&urls, &format!("{RR}{k1}{k2}"))).unwrap_err().path, "keys[1].id");
    let e = parse(&config_text(&urls, &format!("[auth]\nkey_file = \"/nonexistent/keys.toml\"\n\n{RR}"))).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/keys.toml") && e.message.contains("cannot read"), "{e}");

    let public = config_text(&urls, RR).replace("127.0.0.1:0", "0.0.0.0:0");
    let mut cfg = parse(&public).unwrap();
    let refused = cfg.check_exposure().unwrap_err();
    assert!(refused.contains("--allow-anonymous"), "{refused}");
    cfg.allow_anonymous = true;
    assert!(cfg.check_exposure().is_ok());
    let (k, _) = key("a", "");
    assert!(parse(&format!("{public}{k}")).unwrap().check_exposure().is_ok(), "keys make a public address fine");
    assert!(parse(&config_text(&urls, RR)).unwrap().check_exposure().is_ok(), "loopback may be anonymous");

    // The binary: exit status 2 and the reason, without binding anything (--check).
    let dir = temp_dir("access-cli");
    let f = dir.join("gw.toml");
    std::fs::write(&f, &public).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway"))
        .arg(&f)
        .arg("--check")
        .env("GW_TEST_KEY", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-anonymous"));
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_routesim-gateway"))
        .arg(&f)
        .args(["--check", "--allow-anonymous"])
        .env("GW_TEST_KEY", "x")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secrets_are_compared_in_constant_time() {
    // The comparison is `subtle`'s constant-time equality on the full 32-byte digests, and a secret naming
    // no key is hashed and compared against a dummy all the same: no early exit reveals a prefix or an id.
    let src = include_str!("../src/auth/keys.rs");
    let verify = &src[src.find("pub fn verify").unwrap()..];
    let verify = &verify[..verify.find("\n    }").unwrap()];
    assert!(verify.contains(".ct_eq(&self.digest)"), "{verify}");
    assert!(!verify.contains("=="), "{verify}");
    let auth = include_str!("../src/auth/mod.rs");
    assert!(auth.contains("keys::dummy_hash().verify(presented)"));
    // And it decides correctly on every byte position.
    let s = new_secret("k");
    let h = StoredHash::new(&s);
    assert!(h.verify(&s));
    for i in [4usize, 10, s.len() - 1] {
        let mut b = s.clone().into_bytes();
        b[i] ^= 1;
        assert!(!h.verify(std::str::from_utf8(&b).unwrap()));
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM: (cert path, key path, cert PEM).
fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = ck.cert.pem();
    let (cp, kp) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cp, &cert).unwrap();
    std::fs::write(&kp, ck.signing_key.serialize_pem()).unwrap();
    (cp, kp, cert)
}

fn tls_client(cert_pem: &str) -> reqwest::Client {
    routesim_gateway::upstream::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_with_a_self_signed_certificate_and_reloads_it() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let dir = temp_dir("access-tls");
    let (cp, kp, first) = self_signed(&dir, "a");
    let (k, secret) = key("t", "");
    let text = config_text(&urls(&m), &format!("{RR}{k}")).replace(
        "shutdown_timeout",
        &format!("tls = {{ cert = \"{}\", key = \"{}\" }}\nshutdown_timeout", cp.display(), kp.display()),
    );
    let mut cfg = config(&text);
    cfg.auth.reload_interval = router_core::Duration::from_secs(0);
    let gw = routesim_gateway::start(cfg).await.unwrap();
    assert!(gw.url().starts_with("https://127.0.0.1:"));
    let c = tls_client(&first);
    let r = c.get(format!("{}/healthz", gw.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(post(&c, &gw.url(), Some(&secret), chat("x", false)).await.status().as_u16(), 200);
    // Plain HTTP on the TLS port gets no answer.
    let plain = client().get(format!("http://{}/healthz", gw.addr())).send().await;
    assert!(plain.is_err() || plain.unwrap().status().as_u16() != 200);

    // A new certificate: after a reload, a client trusting only the new one connects, the old one cannot.
    let (_, _, second) = self_signed(&dir, "b");
    std::fs::copy(dir.join("b.crt"), &cp).unwrap();
    std::fs::copy(dir.join("b.key"), &kp).unwrap();
    routesim_gateway::server::reload(&gw.app(), true);
    let fresh = tls_client(&second);
    assert_eq!(fresh.get(format!("{}/healthz", gw.url())).send().await.unwrap().status().as_u16(), 200);
    let stale = tls_client(&first);
    assert!(stale.get(format!("{}/healthz", gw.url())).send().await.is_err(), "the old certificate is gone");
    // A broken pair leaves the current one in force.
    std::fs::write(&kp, "not a key").unwrap();
    routesim_gateway::server::reload(&gw.app(), true);
    assert_eq!(fresh.get(format!("{}/healthz", gw.url())).send().await.unwrap().status().as_u16(), 200);
    gw.shutdown();
    gw.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
