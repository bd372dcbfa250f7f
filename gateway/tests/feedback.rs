//! Issue 30, client feedback: `POST /v1/feedback` rates an earlier request's answer into the request log as a
//! feedback row (joined to the request by routesim when it reads the log). Keys rate only their own requests;
//! bad bodies, unknown or unanswered requests and oversize bodies get clear 4xx errors and no row. Loopback
//! only, a handful of requests.

mod common;

use common::*;
use routesim_gateway::auth::keys::{StoredHash, new_secret};
use routesim_mock_upstream::MockReply;

const RR: &str = "[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n\n";

async fn feedback(c: &reqwest::Client, url: &str, secret: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut r = c.post(format!("{url}/v1/feedback")).header("content-type", "application/json").body(body.to_string());
    if let Some(s) = secret {
        r = r.bearer_auth(s);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(serde_json::Value::Null))
}

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn rows(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_on_an_answer_is_logged_and_every_mistake_is_a_clear_4xx() {
    let m = mocks(vec![MockReply::ok(2)]).await;
    let dir = temp_dir("feedback-anon");
    let log = dir.join("requests.jsonl");
    let gw = gateway(&config_text(&urls(&m), &format!("[request_log]\npath = \"{}\"\n\n{RR}", log.display()))).await;
    let c = client();
    let url = gw.url();
    let send = |id: u64| {
        c.post(format!("{url}/v1/chat/completions"))
            .header("x-routesim-request-id", id.to_string())
            .body(chat("hi", false))
            .send()
    };
    assert_eq!(send(100).await.unwrap().status(), 200);
    m[0].script([MockReply::status(400)]);
    assert_eq!(send(101).await.unwrap().status(), 400, "the upstream's 400 is passed on");

    let (s, v) = feedback(&c, &url, None, r#"{"request_id": 100, "quality": 0.25}"#).await;
    assert_eq!((s, &v), (200, &serde_json::json!({"request_id": 100, "quality": 0.25, "recorded": true})));
    let (s, _) = feedback(&c, &url, None, r#"{"request_id": 100, "quality": true}"#).await;
    assert_eq!(s, 200, "a second rating is recorded too (the reader keeps the latest)");
    for (body, status, want) in [
        ("{\"request_id\": 100, ", 400, "invalid_json"),
        (r#"{"request_id": 100, "quality": 1, "note": "x"}"#, 400, "unknown_field"),
        (r#"{"request_id": 100, "quality": 1.5}"#, 400, "quality_out_of_range"),
        (r#"{"request_id": 100, "quality": "good"}"#, 400, "invalid_quality"),
        (r#"{"quality": 1}"#, 400, "invalid_request_id"),
        (r#"{"request_id": 101, "quality": 1}"#, 409, "request_not_answered"),
        (r#"{"request_id": 999, "quality": 1}"#, 404, "unknown_request"),
    ] {
        let (s, v) = feedback(&c, &url, None, body).await;
        assert_eq!((s, code(&v)), (status, want), "{body}: {v}");
    }
    let big = format!(r#"{{"request_id": 100, "quality": 1, "pad": "{}"}}"#, "x".repeat(5000));
    let (s, v) = feedback(&c, &url, None, &big).await;
    assert_eq!((s, code(&v)), (413, "request_too_large"));
    let text = metrics(&c, &gw).await;
    assert_eq!(metric(&text, "routesim_gateway_feedback_total{outcome=\"recorded\"}"), Some(2.0));
    assert_eq!(metric(&text, "routesim_gateway_feedback_total{outcome=\"refused\"}"), Some(8.0));
    gw.shutdown();
    gw.wait().await.unwrap();

    let rows = rows(&log);
    assert_eq!(rows.len(), 4, "two requests and two ratings, nothing for the refused calls: {rows:?}");
    assert_eq!((rows[0]["request_id"].as_u64(), rows[0]["status"].as_str()), (Some(100), Some("ok")));
    assert!(rows[0].get("feedback").is_none() && rows[0].get("quality").is_none(), "{}", rows[0]);
    assert_eq!((rows[1]["request_id"].as_u64(), rows[1]["status"].as_str()), (Some(101), Some("other")));
    for (row, q) in rows[2..].iter().zip([0.25, 1.0]) {
        assert_eq!((row["request_id"].as_u64(), row["feedback"].as_bool()), (Some(100), Some(true)), "{row}");
        assert_eq!(row["quality"].as_f64(), Some(q), "{row}");
        assert!(row.get("key_id").is_none() && row["arrival_s"].is_f64() && row["time_unix_s"].is_f64(), "{row}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rates_only_its_own_requests() {
    let m = mocks(vec![MockReply::ok(1)]).await;
    let dir = temp_dir("feedback-keys");
    let log = dir.join("requests.jsonl");
    let key = |id: &str| {
        let secret = new_secret(id);
        (format!("[[keys]]\nid = \"{id}\"\nhash = \"{}\"\n\n", StoredHash::new(&secret).encode()), secret)
    };
    let ((ka, sa), (kb, sb)) = (key("alice"), key("bob"));
    let rest = format!("[request_log]\npath = \"{}\"\n\n{RR}{ka}{kb}", log.display());
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let c = client();
    let url = gw.url();
    let r = c.post(format!("{url}/v1/chat/completions")).bearer_auth(&sa).body(chat("hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id: u64 = r.headers()["x-request-id"].to_str().unwrap().parse().unwrap();
    let body = format!(r#"{{"request_id": {id}, "quality": false}}"#);
    let (s, v) = feedback(&c, &url, Some(&sb), &body).await;
    assert_eq!((s, code(&v)), (403, "not_your_request"), "{v}");
    let (s, v) = feedback(&c, &url, None, &body).await;
    assert_eq!(s, 401, "no key: refused before the body is read: {v}");
    let (s, _) = feedback(&c, &url, Some(&sa), &body).await;
    assert_eq!(s, 200);
    // The limit of ratings per request.
    for _ in 1..8 {
        assert_eq!(feedback(&c, &url, Some(&sa), &body).await.0, 200);
    }
    let (s, v) = feedback(&c, &url, Some(&sa), &body).await;
    assert_eq!((s, code(&v)), (429, "feedback_limit"), "{v}");
    gw.shutdown();
    gw.wait().await.unwrap();
    // A restarted gateway reads the request and its ratings back from the log: the same answers.
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let url = gw.url();
    let (s, v) = feedback(&c, &url, Some(&sb), &body).await;
    assert_eq!((s, code(&v)), (403, "not_your_request"), "after a restart: {v}");
    let (s, v) = feedback(&c, &url, Some(&sa), &body).await;
    assert_eq!((s, code(&v)), (429, "feedback_limit"), "after a restart: {v}");
    gw.shutdown();
    gw.wait().await.unwrap();
    let rows = rows(&log);
    let fb: Vec<_> = rows.iter().filter(|r| r.get("feedback").is_some()).collect();
    assert_eq!(fb.len(), 8, "{rows:?}");
    assert!(fb.iter().all(|r| r["key_id"] == "alice" && r["quality"] == 0.0 && r["request_id"] == id), "{fb:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A restarted gateway continues its log: ids go on after the last run's (so a rating joins one request,
/// not one per run), arrivals never go back, and the earlier run's answers can still be rated (the keys and
/// the limit of ratings carry over too: `a_key_rates_only_its_own_requests`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_continues_the_logs_ids_and_arrivals() {
    let m = mocks(vec![MockReply::ok(2)]).await;
    let dir = temp_dir("feedback-restart");
    let log = dir.join("requests.jsonl");
    let text = config_text(&urls(&m), &format!("[request_log]\npath = \"{}\"\n\n{RR}", log.display()));
    let c = client();
    let mut ids = Vec::new();
    for run in 0..2 {
        let gw = gateway(&text).await;
        let url = gw.url();
        for _ in 0..2 {
            let r = c.post(format!("{url}/v1/chat/completions")).body(chat("hi", false)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            ids.push(r.headers()["x-request-id"].to_str().unwrap().parse::<u64>().unwrap());
        }
        if run == 1 {
            let (s, v) = feedback(&c, &url, None, &format!(r#"{{"request_id": {}, "quality": 1}}"#, ids[2])).await;
            assert_eq!(s, 200, "{v}");
            let (s, v) = feedback(&c, &url, None, &format!(r#"{{"request_id": {}, "quality": 1}}"#, ids[0])).await;
            assert_eq!(s, 200, "run 1's answer is rated after the restart: {v}");
            let (s, v) = feedback(&c, &url, None, &format!(r#"{{"request_id": {}, "quality": 1}}"#, 99)).await;
            assert_eq!((s, code(&v)), (404, "unknown_request"), "{v}");
        }
        gw.shutdown();
        gw.wait().await.unwrap();
    }
    assert_eq!(ids, vec![1, 2, 3, 4], "the second run's ids follow the first's");
    let rows = rows(&log);
    let logged: Vec<u64> =
        rows.iter().filter(|r| r.get("feedback").is_none()).map(|r| r["request_id"].as_u64().unwrap()).collect();
    assert_eq!(logged, ids, "{rows:?}");
    let arrivals: Vec<f64> = rows.iter().map(|r| r["arrival_s"].as_f64().unwrap()).collect();
    assert!(arrivals.windows(2).all(|w| w[0] <= w[1]), "arrivals never go back across the restart: {arrivals:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
