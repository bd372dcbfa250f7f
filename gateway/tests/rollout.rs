//! Issue 31, rolling out a policy: `[rollout]` canary and shadow policies, their log columns and metrics,
//! and its validation.

mod common;

use common::*;
use routesim_gateway::rollout::{Arm, arm_of, point};
use routesim_mock_upstream::MockReply;
use std::path::Path;

/// Two policies whose choices differ: `ctl` always takes e0 first, `cand` always e1.
const POLICIES: &str = "[[policies]]\nname = \"ctl\"\nkind = \"fallback\"\ntargets = [\"e0\", \"e1\"]\n\n\
                        [[policies]]\nname = \"cand\"\nkind = \"fallback\"\ntargets = [\"e1\", \"e0\"]\n\n";

fn parse(text: &str) -> Result<routesim_gateway::GatewayConfig, routesim_gateway::ConfigError> {
    routesim_gateway::GatewayConfig::parse(Path::new("gw.toml"), text, None, &|k| {
        (k == "GW_TEST_KEY").then(|| KEY.to_string())
    })
}

async fn ask_as(c: &reqwest::Client, gw: &routesim_gateway::RunningGateway, user: Option<&str>) -> (u16, String) {
    let mut body = serde_json::json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    if let Some(u) = user {
        body["user"] = serde_json::Value::String(u.into());
    }
    let r = c.post(format!("{}/v1/chat/completions", gw.url())).body(body.to_string()).send().await.unwrap();
    let status = r.status().as_u16();
    let ep = r.headers().get("x-routesim-endpoint").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, ep)
}

fn rows(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_arms_follow_the_user_and_the_log_and_metrics_say_which() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let dir = temp_dir("rollout-canary");
    let log = dir.join("requests.jsonl");
    let rest = format!(
        "[request_log]\npath = \"{}\"\n\n{POLICIES}[rollout]\nshadow = [\"cand\"]\n\
         canary = {{ policy = \"cand\", fraction = 0.5, by = \"user\" }}\n",
        log.display()
    );
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let users: Vec<String> = (0..24).map(|i| format!("user-{i}")).collect();
    let mut canary = 0;
    for round in 0..2 {
        for u in &users {
            let (status, ep) = ask_as(&c, &gw, Some(u)).await;
            assert_eq!(status, 200);
            let want = if point("cand", u) < 0.5 { "e1" } else { "e0" };
            assert_eq!(ep, want, "{u} (round {round}) served by the other arm");
            canary += (ep == "e1") as usize;
        }
    }
    assert!(canary > 0 && canary < 2 * users.len(), "both arms serve some users ({canary} canary)");
    // No user: control.
    assert_eq!(ask_as(&c, &gw, None).await, (200, "e0".to_string()));
    let text = metrics(&c, &gw).await;
    let total = (2 * users.len() + 1) as f64;
    let arm = |a: &str, p: &str| {
        metric(&text, &format!("routesim_gateway_rollout_requests_total{{arm=\"{a}\",policy=\"{p}\"}}")).unwrap_or(0.0)
    };
    assert_eq!(arm("canary", "cand"), canary as f64);
    assert_eq!(arm("control", "ctl"), total - canary as f64);
    assert_eq!(metric(&text, "routesim_gateway_canary_fraction"), Some(0.5));
    // The shadow `cand` always picks e1: it agrees exactly with the canary arm's requests.
    assert_eq!(metric(&text, "routesim_gateway_shadow_decisions_total{shadow=\"cand\"}"), Some(total));
    assert_eq!(metric(&text, "routesim_gateway_shadow_agreements_total{shadow=\"cand\"}"), Some(canary as f64));
    let ratio = metric(&text, "routesim_gateway_shadow_agreement_ratio{shadow=\"cand\"}").unwrap();
    assert!((ratio - canary as f64 / total).abs() < 1e-9, "{ratio}");
    assert_eq!(metric(&text, "routesim_gateway_shadow_share{shadow=\"cand\",endpoint=\"e1\"}"), Some(1.0));
    assert_eq!(metric(&text, "routesim_gateway_shadow_share{shadow=\"cand\",endpoint=\"e0\"}"), Some(0.0));
    // Served usage (10 prompt + 1 completion tokens per request) at e1's prices (1 and 2 USD per Mtok).
    let cost = metric(&text, "routesim_gateway_shadow_cost_usd_total{shadow=\"cand\"}").unwrap();
    assert!((cost - total * 12e-6).abs() < 1e-12, "{cost}");
    gw.shutdown();
    gw.wait().await.unwrap();
    let rows = rows(&log);
    assert_eq!(rows.len(), total as usize);
    for r in &rows {
        let (arm, policy, ep) = (r["arm"].as_str().unwrap(), r["policy"].as_str().unwrap(), r["endpoint"].as_str());
        assert_eq!((arm, policy), if ep == Some("e1") { ("canary", "cand") } else { ("control", "ctl") }, "{r}");
        assert_eq!(r["shadow"], serde_json::json!({"cand": "e1"}), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_rollout_the_log_names_the_policy_only() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let dir = temp_dir("rollout-none");
    let log = dir.join("requests.jsonl");
    let rest = format!("[request_log]\npath = \"{}\"\n\n{POLICIES}", log.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    assert_eq!(ask_as(&c, &gw, Some("u")).await.0, 200);
    gw.shutdown();
    gw.wait().await.unwrap();
    let rows = rows(&log);
    assert_eq!(rows[0]["policy"], "ctl");
    assert!(rows[0].get("arm").is_none() && rows[0].get("shadow").is_none(), "{}", rows[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_that_would_reject_is_logged_as_null() {
    // `picky` routes only to e1, whose context window is smaller than the request.
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let dir = temp_dir("rollout-null");
    let log = dir.join("requests.jsonl");
    let rest = format!(
        "[request_log]\npath = \"{}\"\n\n{POLICIES}[[policies]]\nname = \"picky\"\nkind = \"fallback\"\n\
         targets = [\"e1\"]\n\n[rollout]\nshadow = [\"picky\", \"cand\"]\n",
        log.display()
    );
    let text = config_text(&urls(&m), &rest).replace(
        "id = \"e1\"\nmodel = \"model-1\"",
        "id = \"e1\"\nmodel = \"model-1\"\nlimits = { context_window = 8 }",
    );
    let gw = gateway(&text).await;
    let c = client();
    let body = serde_json::json!({"model": "auto", "messages": [{"role": "user", "content": "x".repeat(400)}]});
    let r = c.post(format!("{}/v1/chat/completions", gw.url())).body(body.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    gw.shutdown();
    gw.wait().await.unwrap();
    let rows = rows(&log);
    assert_eq!(rows[0]["endpoint"], "e0");
    assert_eq!(rows[0]["shadow"], serde_json::json!({"picky": null, "cand": "e0"}), "{}", rows[0]);
}

#[test]
fn raising_the_fraction_only_moves_users_from_control_to_the_canary() {
    let cfg = |fraction: f64| {
        let text = config_text(
            &["http://127.0.0.1:9/v1".into(), "http://127.0.0.1:9/v1".into()],
            &format!("{POLICIES}[rollout]\ncanary = {{ policy = \"cand\", fraction = {fraction} }}\n"),
        );
        parse(&text).unwrap().rollout.canary.unwrap()
    };
    let (low, high) = (cfg(0.1), cfg(0.3));
    let keys: Vec<String> = (0..5000).map(|i| format!("key-{i}")).collect();
    let arms = |c| keys.iter().map(|k| arm_of(c, Some(k))).collect::<Vec<_>>();
    let (a, b) = (arms(&low), arms(&high));
    assert!(a.iter().zip(&b).all(|(x, y)| *x == Arm::Control || *y == Arm::Canary), "a canary user went back");
    for (arms, want) in [(&a, 0.1), (&b, 0.3)] {
        let share = arms.iter().filter(|x| **x == Arm::Canary).count() as f64 / keys.len() as f64;
        assert!((share - want).abs() < 0.02, "share {share} for fraction {want}");
    }
    assert!(keys.iter().all(|k| arm_of(&low, Some(k)) == arm_of(&low, Some(k))));
    assert_eq!(arm_of(&high, None), Arm::Control);
}

#[test]
fn rollout_errors_name_the_field() {
    let base = config_text(&["http://127.0.0.1:9/v1".into(), "http://127.0.0.1:9/v1".into()], POLICIES);
    let cases = [
        ("[rollout]\nshadow = [\"cnad\"]\n", "rollout.shadow[0]", Some("cand")),
        ("[rollout]\nshadow = [\"cand\", \"cand\"]\n", "rollout.shadow[1]", None),
        ("[rollout]\ncanary = { policy = \"candidate\", fraction = 0.1 }\n", "rollout.canary.policy", Some("cand")),
        ("[rollout]\ncanary = { policy = \"ctl\", fraction = 0.1 }\n", "rollout.canary.policy", None),
        ("[rollout]\ncanary = { policy = \"cand\", fraction = 1.5 }\n", "rollout.canary.fraction", None),
        ("[rollout]\ncanary = { policy = \"cand\", fraction = -0.1 }\n", "rollout.canary.fraction", None),
        ("[rollout]\ncanary = { policy = \"cand\", fraction = 0.1, by = \"kye\" }\n", "rollout.canary.by", Some("key")),
        ("[rollout]\nshaddow = [\"cand\"]\n", "rollout.shaddow", Some("shadow")),
    ];
    for (extra, path, suggestion) in cases {
        let e = parse(&format!("{base}{extra}")).expect_err(extra);
        assert_eq!(e.path, path, "{extra}: {e}");
        assert_eq!(e.suggestion.as_deref(), suggestion, "{extra}: {e}");
    }
}

// ===== hot reload =====

/// `[[endpoints]]` with the given ids on the given mocks (no provider key: the reload reads the process
/// environment).
fn eps(ids: &[&str], urls: &[String]) -> String {
    ids.iter()
        .zip(urls)
        .map(|(id, u)| {
            format!(
                "[[endpoints]]\nid = \"{id}\"\nprice = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}\n\
                 upstream = {{ base_url = \"{u}\" }}\n\n"
            )
        })
        .collect()
}

/// A whole config file: `[server]` on 127.0.0.1:0, no health checks, config watched every `watch`.
fn file_text(watch: &str, log: &Path, body: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"10s\"\n\n[health]\ninterval = \"0s\"\n\n\
         [auth]\nreload_interval = \"{watch}\"\n\n[request_log]\npath = \"{}\"\n\n{body}",
        log.display()
    )
}

async fn start_file(path: &Path) -> routesim_gateway::RunningGateway {
    let cfg = routesim_gateway::GatewayConfig::load(path, None).unwrap_or_else(|e| panic!("{e}"));
    routesim_gateway::start(cfg).await.expect("gateway starts")
}

/// Fallback from `first` (which always fails) to `second`: every request makes exactly two attempts.
fn failover(name: &str, first: &str, second: &str) -> String {
    format!(
        "[[policies]]\nname = \"{name}\"\nkind = \"fallback\"\ntargets = [\"{first}\", \"{second}\"]\n\
         retry = {{ budget = {{ ratio = 1.0, min_per_s = 100000.0 }} }}\n\
         tracking = {{ circuit = {{ enabled = false }} }}\n\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_lose_no_request_and_never_mix_two_configs() {
    let delay = std::time::Duration::from_millis(3);
    let fail = MockReply::Status { code: 500, retry_after: None, delay };
    let ok = MockReply::Ok { delay, gap: delay, chunks: vec!["x".into()], prompt_tokens: 10 };
    let m = mocks(vec![fail.clone(), ok.clone(), fail, ok]).await;
    let u = urls(&m);
    let dir = temp_dir("rollout-reload-load");
    let (path, log) = (dir.join("gw.toml"), dir.join("requests.jsonl"));
    // Config A: a0 (fails) then a1; config B: b0 (fails) then b1, on other mocks.
    let a = file_text("0s", &log, &format!("{}{}", eps(&["a0", "a1"], &u[..2]), failover("pa", "a0", "a1")));
    let b = file_text("0s", &log, &format!("{}{}", eps(&["b0", "b1"], &u[2..]), failover("pa", "b0", "b1")));
    std::fs::write(&path, &a).unwrap();
    let gw = std::sync::Arc::new(start_file(&path).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (gw, stop, c) = (gw.clone(), stop.clone(), client());
        clients.push(tokio::spawn(async move {
            let (mut sent, mut ok) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sent += 1;
                let (status, ep) = ask_as(&c, &gw, None).await;
                ok += (status == 200 && (ep == "a1" || ep == "b1")) as u64;
            }
            (sent, ok)
        }));
    }
    let reloads = 10;
    for k in 0..reloads {
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        std::fs::write(&path, if k % 2 == 0 { &b } else { &a }).unwrap();
        assert_eq!(gw.reload_config(), Ok(true));
    }
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut sent, mut ok) = (0, 0);
    for c in clients {
        let (s, o) = c.await.unwrap();
        sent += s;
        ok += o;
    }
    let c = client();
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_config_reloads_total{result=\"ok\"}"), Some(reloads as f64));
    assert_eq!(metric(&text, "routesim_gateway_config_generation"), Some(reloads as f64 + 1.0));
    let gw = std::sync::Arc::into_inner(gw).unwrap();
    gw.shutdown();
    gw.wait().await.unwrap();
    assert!(sent > 50, "only {sent} requests under load");
    assert_eq!(ok, sent, "every request answered 200 by a config's second endpoint");
    let rows = rows(&log);
    assert_eq!(rows.len() as u64, sent, "one log row per request");
    let count = |ep: &str| rows.iter().filter(|r| r["endpoint"] == ep).count() as u64;
    let (on_a, on_b) = (count("a1"), count("b1"));
    assert_eq!(on_a + on_b, sent, "every request ended on a1 or b1");
    assert!(on_a > 0 && on_b > 0, "both configs served ({on_a}, {on_b})");
    assert!(rows.iter().all(|r| r["attempts"] == 2 && r["status"] == "ok"), "two attempts each");
    // Each request's failed first attempt went to its own config's first endpoint: a request that started on
    // one config and retried on the other would unbalance these counts.
    assert_eq!((m[0].requests(), m[1].requests()), (on_a, on_a), "config A's mocks saw exactly A's requests");
    assert_eq!((m[2].requests(), m[3].requests()), (on_b, on_b), "config B's mocks saw exactly B's requests");
}

async fn wait_metric(c: &reqwest::Client, gw: &routesim_gateway::RunningGateway, series: &str, want: f64) {
    let t = std::time::Instant::now();
    while metric(&metrics(c, gw).await, series) != Some(want) {
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "{series} never reached {want}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_reloaded_and_an_invalid_one_keeps_the_running_config() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let u = urls(&m);
    let dir = temp_dir("rollout-reload-file");
    let (path, log) = (dir.join("gw.toml"), dir.join("requests.jsonl"));
    let rr = "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\n\n";
    std::fs::write(&path, file_text("30ms", &log, &format!("{}{rr}", eps(&["old"], &u[..1])))).unwrap();
    let gw = start_file(&path).await;
    let c = client();
    assert_eq!(ask_as(&c, &gw, None).await, (200, "old".to_string()));
    // Invalid: a canary naming no policy. Reported, counted, and the running config stays.
    let bad = format!("{}{rr}[rollout]\ncanary = {{ policy = \"q\", fraction = 0.5 }}\n", eps(&["new"], &u[1..]));
    std::fs::write(&path, file_text("30ms", &log, &bad)).unwrap();
    wait_metric(&c, &gw, "routesim_gateway_config_reloads_total{result=\"error\"}", 1.0).await;
    let e = gw.reload_config().unwrap_err();
    assert!(e.contains("rollout.canary.policy") && e.contains("did you mean"), "{e}");
    for _ in 0..4 {
        assert_eq!(ask_as(&c, &gw, None).await, (200, "old".to_string()));
    }
    assert_eq!(gw.app().generation, 1);
    assert_eq!(m[1].requests(), 0);
    // Fixed: picked up from the file, no signal.
    std::fs::write(&path, file_text("30ms", &log, &format!("{}{rr}", eps(&["new"], &u[1..])))).unwrap();
    wait_metric(&c, &gw, "routesim_gateway_config_generation", 2.0).await;
    for _ in 0..4 {
        assert_eq!(ask_as(&c, &gw, None).await, (200, "new".to_string()));
    }
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_what_the_router_learned_about_kept_endpoints() {
    // e0 refuses the gateway's key: its circuit opens at once. e1 answers and builds a latency average.
    let m = mocks(vec![MockReply::status(401), MockReply::ok(1), MockReply::ok(1)]).await;
    let u = urls(&m);
    let dir = temp_dir("rollout-reload-state");
    let (path, log) = (dir.join("gw.toml"), dir.join("requests.jsonl"));
    let fb = |name: &str, targets: &str| {
        format!(
            "[[policies]]\nname = \"{name}\"\nkind = \"fallback\"\ntargets = [{targets}]\n\
             retry = {{ budget = {{ ratio = 1.0, min_per_s = 1000.0 }} }}\n\n"
        )
    };
    let first = format!("{}{}", eps(&["e0", "e1"], &u[..2]), fb("p", "\"e0\", \"e1\""));
    std::fs::write(&path, file_text("0s", &log, &first)).unwrap();
    let gw = start_file(&path).await;
    let c = client();
    for _ in 0..6 {
        assert_eq!(ask_as(&c, &gw, None).await, (200, "e1".to_string()));
    }
    assert_eq!(m[0].requests(), 1, "e0's circuit opened after its 401");
    let app = gw.app();
    let (e1_samples, e1_latency) = app.routers.with(0, |r| {
        let s = r.state(r.endpoint_index("e1").unwrap());
        (s.latency.samples(), s.latency.value())
    });
    assert!(e1_samples >= 6);
    drop(app);
    // Reordered, one endpoint added, another policy: e0 and e1 keep their state by id.
    let order = ["e2", "e1", "e0"];
    let urls3 = [u[2].clone(), u[1].clone(), u[0].clone()];
    // The new policy tries e0 first: only its carried-over open circuit keeps requests away from it.
    let second = format!("{}{}", eps(&order, &urls3), fb("q", "\"e0\", \"e1\", \"e2\""));
    std::fs::write(&path, file_text("0s", &log, &second)).unwrap();
    assert_eq!(gw.reload_config(), Ok(true));
    let app = gw.app();
    app.routers.with(0, |r| {
        let e0 = r.state(r.endpoint_index("e0").unwrap());
        assert!(matches!(e0.circuit, router_core::state::Circuit::Open { .. }), "{:?}", e0.circuit);
        let e1 = r.state(r.endpoint_index("e1").unwrap());
        assert_eq!((e1.latency.samples(), e1.latency.value()), (e1_samples, e1_latency));
        assert_eq!(r.state(r.endpoint_index("e2").unwrap()).latency.samples(), 0);
    });
    drop(app);
    for _ in 0..6 {
        let (status, ep) = ask_as(&c, &gw, None).await;
        assert_eq!((status, ep.as_str()), (200, "e1"));
    }
    assert_eq!(m[0].requests(), 1, "no request reached e0 after the reload: its circuit stayed open");
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_circuit_state{endpoint=\"e0\"}"), Some(1.0));
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_canary_fraction_on_reload_moves_users_only_into_the_canary() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let u = urls(&m);
    let dir = temp_dir("rollout-reload-canary");
    let (path, log) = (dir.join("gw.toml"), dir.join("requests.jsonl"));
    let body = |f: f64| {
        format!(
            "{}{POLICIES}[rollout]\ncanary = {{ policy = \"cand\", fraction = {f}, by = \"user\" }}\n",
            eps(&["e0", "e1"], &u)
        )
    };
    std::fs::write(&path, file_text("0s", &log, &body(0.2))).unwrap();
    let gw = start_file(&path).await;
    let c = client();
    let users: Vec<String> = (0..40).map(|i| format!("person-{i}")).collect();
    let mut before = Vec::new();
    for u in &users {
        before.push(ask_as(&c, &gw, Some(u)).await.1 == "e1");
    }
    std::fs::write(&path, file_text("0s", &log, &body(0.6))).unwrap();
    assert_eq!(gw.reload_config(), Ok(true));
    let mut after = Vec::new();
    for u in &users {
        after.push(ask_as(&c, &gw, Some(u)).await.1 == "e1");
    }
    assert!(before.iter().zip(&after).all(|(b, a)| !b || *a), "a canary user moved back to control");
    let (nb, na) = (before.iter().filter(|x| **x).count(), after.iter().filter(|x| **x).count());
    assert!(nb > 0 && na > nb, "canary users before {nb}, after {na}");
    assert_eq!(metric(&metrics(&c, &gw).await, "routesim_gateway_canary_fraction"), Some(0.6));
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_arms_attempts_time_out_by_the_canary_policys_own_timeout() {
    // e0 hangs. The canary `cand` tries e0 first with its own 100 ms timeout, then falls back to e1; the
    // control `ctl` has none, so its attempts would wait the [client]'s 10 s. Every request is in the canary (fraction 1 by request id).
    let m = mocks(vec![MockReply::Hang, MockReply::ok(1)]).await;
    let policies = "[[policies]]\nname = \"ctl\"\nkind = \"fallback\"\ntargets = [\"e1\", \"e0\"]\n\n\
                    [[policies]]\nname = \"cand\"\nkind = \"fallback\"\nfallbacks = [\"e1\"]\n\
                    timeout = \"100ms\"\n\n";
    let rest = format!(
        "[client]\ntimeout = \"10s\"\n\n{policies}[rollout]\ncanary = {{ policy = \"cand\", fraction = 1.0, by = \"request\" }}\n"
    );
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let app = gw.app();
    assert_eq!(app.attempt_timeouts(0, 0).attempt, Some(10_000_000_000));
    assert_eq!(app.attempt_timeouts(1, 0).attempt, Some(100_000_000));
    let c = client();
    let t = std::time::Instant::now();
    assert_eq!(ask_as(&c, &gw, None).await, (200, "e1".to_string()));
    let took = t.elapsed();
    assert!(took >= std::time::Duration::from_millis(100) && took < std::time::Duration::from_secs(2), "{took:?}");
    gw.shutdown();
    gw.wait().await.unwrap();
}
