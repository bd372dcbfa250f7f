//! Issue 30, the cascade in the gateway: after a successful answer from a stage that is not the last, the
//! verifier endpoint (a judge model) scores it; a score below `min_score`, a broken reply or a verifier error
//! escalates to the next stage. One log row per request, with `attempts`, `quality` (the verifier's score of
//! the answer served) and `cascade_stage`. A cascade cannot stream (400). Also: the difficulty header, and the
//! `oracle` kind refused at config load.

mod common;

use common::*;
use routesim_mock_upstream::{MockReply, completion_body};

/// e0 (cheap stage), e1 (strong stage), e2 (the judge); each a mock.
const CASCADE: &str = "[[policies]]\nname = \"c\"\nkind = \"cascade\"\ntargets = [\"e0\", \"e1\"]\n\
                       verifier = { endpoint = \"e2\", min_score = 0.5 }\n";

fn judge(content: &str) -> MockReply {
    MockReply::Raw { status: 200, content_type: "application/json", body: completion_body(content, 40, 1) }
}

/// Runs one non-streaming request through a cascade whose judge answers `verdict`; returns the served
/// endpoint, the attempts header, the requests each mock saw and the log row.
async fn run(name: &str, verdict: MockReply) -> (String, String, [u64; 3], serde_json::Value) {
    let m = mocks(vec![MockReply::ok(2), MockReply::ok(3), verdict]).await;
    let dir = temp_dir(&format!("cascade-{name}"));
    let log = dir.join("requests.jsonl");
    let rest = format!("[request_log]\npath = \"{}\"\n\n{CASCADE}", log.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let r = post(&c, &gw, chat("What is 2+2?", false)).await;
    assert_eq!(r.status(), 200, "{name}");
    let served = served_by(&r);
    let attempts = r.headers()["x-routesim-attempts"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let want = if served == "e0" { "tok1 " } else { "tok2 " };
    assert!(text.contains(want), "{name}: the served stage's answer: {text}");
    gw.shutdown();
    gw.wait().await.unwrap();
    let rows = std::fs::read_to_string(&log).unwrap();
    assert_eq!(rows.lines().count(), 1, "{name}: one row per request");
    let row: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    (served, attempts, [m[0].requests(), m[1].requests(), m[2].requests()], row)
}

/// Cost of `input` and `output` tokens at the test endpoints' prices (1 and 2 USD per million).
fn cost(input: u32, output: u32) -> f64 {
    (input as f64 + 2.0 * output as f64) / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_cheap_answer_escalates_and_both_attempts_are_logged() {
    let (served, attempts, seen, row) = run("reject", judge("0.2")).await;
    assert_eq!((served.as_str(), attempts.as_str()), ("e1", "2"));
    assert_eq!(seen, [1, 1, 1], "cheap stage, judge, strong stage; the last stage's answer is not verified");
    assert_eq!(row["status"], "ok");
    assert_eq!(row["endpoint"], "e1");
    assert_eq!(row["attempts"], 2);
    assert_eq!(row["cascade_stage"], 1);
    assert!(row.get("quality").is_none(), "the served answer (last stage) was not scored: {row}");
    // Both stages and the judge are billed: the mocks report 10 prompt tokens and one per chunk; the judge 40+1.
    let want = cost(10, 2) + cost(40, 1) + cost(10, 3);
    assert!((row["cost_usd"].as_f64().unwrap() - want).abs() < 1e-12, "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_cheap_answer_is_served_with_its_score() {
    let (served, attempts, seen, row) = run("accept", judge("{\"score\": 0.9}")).await;
    assert_eq!((served.as_str(), attempts.as_str()), ("e0", "1"));
    assert_eq!(seen, [1, 0, 1], "the strong stage is never called");
    assert_eq!(row["quality"], 0.9);
    assert_eq!(row["cascade_stage"], 0);
    assert_eq!(row["attempts"], 1);
    let want = cost(10, 2) + cost(40, 1);
    assert!((row["cost_usd"].as_f64().unwrap() - want).abs() < 1e-12, "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_verdicts_and_escalations_per_policy() {
    let m = mocks(vec![MockReply::ok(2), MockReply::ok(3), judge("0.9")]).await;
    // The judge accepts, rejects (escalation), then breaks (a judge error, escalated too).
    m[2].script([judge("0.9"), judge("0.1"), judge("not a score")]);
    let gw = gateway(&config_text(&urls(&m), CASCADE)).await;
    let c = client();
    let before = metrics(&c, &gw).await;
    let series = |v: &str| format!("routesim_gateway_cascade_verdicts_total{{policy=\"c\",verdict=\"{v}\"}}");
    let escalations = "routesim_gateway_cascade_escalations_total{policy=\"c\"}";
    for v in ["accepted", "rejected", "judge_error"] {
        assert_eq!(metric(&before, &series(v)), Some(0.0), "every series from the start: {before}");
    }
    assert_eq!(metric(&before, escalations), Some(0.0));
    let mut served = Vec::new();
    for _ in 0..3 {
        let r = post(&c, &gw, chat("What is 2+2?", false)).await;
        assert_eq!(r.status(), 200);
        served.push(served_by(&r));
    }
    assert_eq!(served, ["e0", "e1", "e1"]);
    let after = metrics(&c, &gw).await;
    for v in ["accepted", "rejected", "judge_error"] {
        assert_eq!(metric(&after, &series(v)), Some(1.0), "{v}: {after}");
    }
    assert_eq!(metric(&after, escalations), Some(2.0));
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_failing_verifier_is_a_logged_reject_not_a_panic() {
    for (name, verdict) in [
        ("unparsable", judge("looks fine to me")),
        ("out-of-range", judge("7")),
        ("not-json", MockReply::Raw { status: 200, content_type: "application/json", body: "<html>".into() }),
        ("http-500", MockReply::status(500)),
    ] {
        let (served, attempts, seen, row) = run(name, verdict).await;
        assert_eq!((served.as_str(), attempts.as_str()), ("e1", "2"), "{name}: escalated");
        assert_eq!(seen, [1, 1, 1], "{name}");
        assert!(row.get("quality").is_none(), "{name}: no score: {row}");
        assert_eq!(row["cascade_stage"], 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_refuses_streams_with_a_clear_400() {
    let m = mocks(vec![MockReply::ok(2), MockReply::ok(3), judge("1")]).await;
    let gw = gateway(&config_text(&urls(&m), CASCADE)).await;
    let c = client();
    let r = post(&c, &gw, chat("hi", true)).await;
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "stream_unsupported");
    assert!(v["error"]["message"].as_str().unwrap().contains("cascade"), "{v}");
    assert_eq!((m[0].requests(), m[1].requests(), m[2].requests()), (0, 0, 0));
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_difficulty_estimate_is_a_400_and_a_good_one_routes() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let policy =
        "[[policies]]\nname = \"t\"\nkind = \"threshold\"\ntargets = [\"e0\"]\nstrong = [\"e1\"]\nthreshold = 0.5\n";
    let gw = gateway(&config_text(&urls(&m), policy)).await;
    let c = client();
    let send = |d: &'static str| {
        c.post(format!("{}/v1/chat/completions", gw.url()))
            .header("content-type", "application/json")
            .header("x-routesim-difficulty", d)
            .body(chat("hi", false))
            .send()
    };
    let r = send("not-a-number").await.unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "invalid_difficulty");
    assert_eq!(served_by(&send("0.1").await.unwrap()), "e0", "easy: the weak side");
    assert_eq!(served_by(&send("2").await.unwrap()), "e1", "hard: the strong side");
    assert_eq!(served_by(&post(&c, &gw, chat("hi", false)).await), "e1", "no estimate: the strong side");
    gw.shutdown();
    gw.wait().await.unwrap();
}

#[test]
fn oracle_and_a_cascade_without_a_judge_are_refused_at_load() {
    let urls = vec!["http://127.0.0.1:9/v1".to_string(), "http://127.0.0.1:9/v1".to_string()];
    let parse = |rest: &str| {
        routesim_gateway::GatewayConfig::parse(std::path::Path::new("gw.toml"), &config_text(&urls, rest), None, &|k| {
            (k == "GW_TEST_KEY").then(|| KEY.to_string())
        })
    };
    let e =
        parse("[[policies]]\nname = \"o\"\nkind = \"oracle\"\n").err().unwrap_or_else(|| panic!("oracle: accepted"));
    assert_eq!(e.path, "policies[0].kind");
    assert!(e.message.contains("simulator only"), "{e}");
    let e = parse("[[policies]]\nname = \"c\"\nkind = \"cascade\"\ntargets = [\"e0\", \"e1\"]\n")
        .err()
        .unwrap_or_else(|| panic!("no judge: accepted"));
    assert_eq!(e.path, "policies[0].verifier.endpoint");
    // A file may hold an oracle row for the simulator while the gateway serves another policy.
    parse("[[policies]]\nname = \"cost\"\nkind = \"cost\"\n[[policies]]\nname = \"o\"\nkind = \"oracle\"\n")
        .expect("the served policy is not the oracle");
    // [quality] is accepted (router_auc ignored), and validated.
    parse("[quality]\ndiscrimination = { default = 1.7 }\nrouter_auc = 0.8\n[[policies]]\nname = \"c\"\nkind = \"cost\"\n")
        .expect("quality section");
    let e = parse("[quality]\nrouter_auc = 2.0\n[[policies]]\nname = \"c\"\nkind = \"cost\"\n")
        .err()
        .unwrap_or_else(|| panic!("auc: accepted"));
    assert_eq!(e.path, "quality.router_auc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_one_endpoint_is_not_cascaded() {
    let m = mocks(vec![MockReply::ok(2), MockReply::ok(3), judge("0")]).await;
    let gw = gateway(&config_text(&urls(&m), CASCADE)).await;
    let c = client();
    let body = serde_json::json!({"model": "e0", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let r = post(&c, &gw, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&r), "e0", "the model names e0 alone: its answer is served, unjudged");
    assert_eq!((m[0].requests(), m[1].requests(), m[2].requests()), (1, 0, 0));
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// A client that goes away while the judge is asked gives the router the judge call back: the judge (here
/// also the last stage, with room for one request) is free for the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_during_the_verdict_frees_the_judge() {
    let m = mocks(vec![MockReply::ok(2), MockReply::ok(3)]).await;
    m[0].script([MockReply::ok(2), MockReply::status(500)]);
    m[1].script([MockReply::Hang, MockReply::ok(3)]);
    let mut text = config_text(&urls(&m), "");
    text =
        text.replacen("[[endpoints]]\nid = \"e1\"\n", "[[endpoints]]\nid = \"e1\"\nlimits = { concurrency = 1 }\n", 1);
    text.push_str(
        "[[policies]]\nname = \"c\"\nkind = \"cascade\"\ntargets = [\"e0\", \"e1\"]\n\
         verifier = { endpoint = \"e1\" }\nretry = { max_attempts = 2 }\n",
    );
    let gw = gateway(&text).await;
    let quick = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_millis(300)).build().unwrap();
    let gone = quick
        .post(format!("{}/v1/chat/completions", gw.url()))
        .header("content-type", "application/json")
        .body(chat("hi", false))
        .send()
        .await;
    assert!(gone.is_err(), "the judge hangs: the client gives up");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // e0 fails now; the retry goes to e1, which must not still count the abandoned judge call.
    let r = post(&client(), &gw, chat("hi", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&r), "e1");
    gw.shutdown();
    gw.wait().await.unwrap();
}
