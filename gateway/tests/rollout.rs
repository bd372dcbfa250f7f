//! Issue 31, rolling out a policy: `[rollout]` canary and shadow policies, their log columns and metrics,
//! and its validation.

mod common;

use common::*;
use routesim_gateway::mock::MockReply;
use routesim_gateway::rollout::{Arm, arm_of, point};
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
