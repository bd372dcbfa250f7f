//! A cascade's verifier in the gateway: after a successful answer from a stage that is not the last, the
//! gateway asks the verifier endpoint (a judge model, one of the config's endpoints) to score it, and the
//! router escalates when the score is below `min_score` (see `router_core::Router::verification` and
//! `Router::escalate`).
//!
//! The judge gets an OpenAI chat request: a system message asking for a score in 0..=1 and a user message with
//! the conversation and the answer. Its reply's assistant content must be a bare number (`0.8`) or a JSON
//! object `{"score": 0.8}`. Anything else (an upstream error, a timeout, an unparsable or out-of-range score)
//! is a rejection whose cause is logged: an answer nobody vouched for is escalated, never accepted by default.

use crate::app::App;
use crate::request::ChatRequest;
use crate::upstream::{Usage, usage_from_body};
use bytes::Bytes;
use router_core::{EndpointIdx, Nanos, Outcome, RequestInfo, VerifierSpec};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The instructions the judge model gets.
const INSTRUCTIONS: &str = "You grade answers. Given a conversation and an assistant's answer to it, score how \
acceptable the answer is, from 0 (unacceptable) to 1 (fully acceptable). Reply with the score alone, as a number \
such as 0.8, or as JSON {\"score\": 0.8}.";

/// Longest verifier reply read (bytes).
const MAX_REPLY: usize = 256 * 1024;

/// The verifier's verdict on one answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The judge's score, when it gave a usable one.
    pub score: Option<f64>,
    /// Whether the answer is accepted (`score >= min_score`).
    pub accepted: bool,
    /// Why no score was obtained, for the log (a rejection).
    pub cause: Option<String>,
    /// The judge call's token usage, when it answered.
    pub usage: Option<Usage>,
}

/// The judge request for `answer` (a completion body) to the request `req`, for the judge's `model`.
pub fn judge_body(model: &str, req: &ChatRequest, answer: &[u8]) -> Vec<u8> {
    let mut conversation = String::new();
    if let Some(Value::Array(messages)) = req.body.get("messages") {
        for m in messages {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            conversation.push_str(role);
            conversation.push_str(": ");
            conversation.push_str(&message_text(m.get("content")));
            conversation.push('\n');
        }
    }
    let answer = answer_text(answer);
    let user = format!("Conversation:\n{conversation}\nAnswer:\n{answer}");
    serde_json::to_vec(&json!({
        "model": model,
        "stream": false,
        "temperature": 0,
        "messages": [
            { "role": "system", "content": INSTRUCTIONS },
            { "role": "user", "content": user },
        ],
    }))
    .unwrap_or_default()
}

/// The text of a message's `content` (a string, or the text parts of an array).
fn message_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        Some(v) if !v.is_null() => v.to_string(),
        _ => String::new(),
    }
}

/// The answer of a completion body: the first choice's message content, else the whole message as JSON
/// (tool calls).
fn answer_text(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = &v["choices"][0]["message"];
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        _ => message.to_string(),
    }
}

/// The score in a judge's completion body: its first choice's assistant content, parsed by [`score_text`].
pub fn score_of_reply(body: &[u8]) -> Result<f64, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the verifier's reply is not JSON".to_string())?;
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| "the verifier's reply has no assistant content (choices[0].message.content)".to_string())?;
    score_text(content)
}

/// A score from an assistant's content: a bare number or `{"score": x}`, finite and in 0..=1.
pub fn score_text(content: &str) -> Result<f64, String> {
    let text = content.trim();
    let x = match text.parse::<f64>() {
        Ok(x) => x,
        Err(_) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => match o.get("score") {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| unparsable(text))?,
                _ => return Err(unparsable(text)),
            },
            _ => return Err(unparsable(text)),
        },
    };
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("the verifier's score {x} is outside 0..=1"))
    }
}

fn unparsable(text: &str) -> String {
    let shown: String = text.chars().take(60).collect();
    format!("the verifier's reply `{shown}` is not a score (expected a number in 0..=1 or {{\"score\": x}})")
}

/// Asks the verifier endpoint of `spec` to score `answer` (a completion body) to `req`, whose router view is
/// `info`, on the arm `arm` and router shard `shard`. The call is fed to the router (dispatch and result), so
/// the judge's quota, latency and circuit are tracked as any endpoint's.
pub async fn verify(
    app: &App,
    arm: usize,
    shard: usize,
    info: &RequestInfo,
    req: &ChatRequest,
    answer: &Bytes,
    spec: &VerifierSpec,
) -> Verdict {
    let reject =
        |cause: String, usage: Option<Usage>| Verdict { score: None, accepted: false, cause: Some(cause), usage };
    let Some(judge) = spec.endpoint.as_deref().and_then(|id| app.endpoints.iter().position(|e| e.id == id)) else {
        return reject("the cascade names no verifier endpoint".into(), None);
    };
    let upstream = app.upstreams.get(judge);
    let body = Bytes::from(judge_body(&upstream.model, req, answer));
    let ep = EndpointIdx(judge as u16);
    let now = app.now();
    app.routers.with_arm(arm, shard, |r| r.on_dispatch(ep, info, now));
    // Should the client go away while the judge is asked (this future dropped), the router gets the call back.
    let mut pending = InFlight { app, arm, shard, ep, info, sent: Instant::now(), done: false };
    let sent = pending.sent;
    let timeout = app.attempt_timeouts(arm, judge).attempt.map(Duration::from_nanos);
    let call = async {
        let resp =
            app.upstreams.send(judge, body).send().await.map_err(|e| format!("the verifier call failed: {e}"))?;
        let status = resp.status();
        let bytes = read_limited(resp).await?;
        if !status.is_success() {
            return Err(format!("the verifier answered HTTP {}", status.as_u16()));
        }
        Ok(bytes)
    };
    let result = match timeout {
        Some(t) => tokio::time::timeout(t, call)
            .await
            .unwrap_or_else(|_| Err(format!("the verifier did not answer within {}s", t.as_secs_f64()))),
        None => call.await,
    };
    let latency = sent.elapsed().as_nanos() as Nanos;
    let now = app.now();
    let (outcome, verdict) = match result {
        Ok(bytes) => {
            let usage = usage_from_body(&bytes);
            let u = usage.unwrap_or(Usage { input: 0, output: 0 });
            let outcome = Outcome::success(latency, None, u.input, u.output);
            let verdict = match score_of_reply(&bytes) {
                Ok(s) => Verdict { score: Some(s), accepted: s >= spec.min_score, cause: None, usage },
                Err(cause) => reject(cause, usage),
            };
            (outcome, verdict)
        }
        Err(cause) => (Outcome::failure(router_core::ErrorClass::Server, latency), reject(cause, None)),
    };
    pending.done = true;
    app.routers.with_arm(arm, shard, |r| r.on_result(ep, info, &outcome, now));
    verdict
}

/// A judge call the router was told of: dropped before it ends, it reports the call as an `other` failure, so
/// that the judge's in-flight count never leaks.
struct InFlight<'a> {
    app: &'a App,
    arm: usize,
    shard: usize,
    ep: EndpointIdx,
    info: &'a RequestInfo,
    sent: Instant,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            let outcome = Outcome::failure(router_core::ErrorClass::Other, self.sent.elapsed().as_nanos() as Nanos);
            let now = self.app.now();
            self.app.routers.with_arm(self.arm, self.shard, |r| r.on_result(self.ep, self.info, &outcome, now));
        }
    }
}

/// The body of a reply, at most [`MAX_REPLY`] bytes.
async fn read_limited(mut resp: reqwest::Response) -> Result<Bytes, String> {
    let mut out = Vec::new();
    while let Some(c) = resp.chunk().await.map_err(|e| format!("the verifier's reply broke off: {e}"))? {
        if out.len() + c.len() > MAX_REPLY {
            return Err(format!("the verifier's reply is longer than {MAX_REPLY} bytes"));
        }
        out.extend_from_slice(&c);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn scores_are_bare_numbers_or_json_in_range() {
        assert_eq!(score_text(" 0.75\n"), Ok(0.75));
        assert_eq!(score_text("{\"score\": 1}"), Ok(1.0));
        assert_eq!(score_text("{\"score\": \"0.2\"}"), Ok(0.2));
        assert!(score_text("1.5").unwrap_err().contains("outside 0..=1"));
        assert!(score_text("NaN").is_err());
        assert!(score_text("looks good").unwrap_err().contains("not a score"));
        assert!(score_text("{\"grade\": 0.5}").is_err());
        let reply = routesim_mock_upstream::completion_body("0.4", 5, 1);
        assert_eq!(score_of_reply(reply.as_bytes()), Ok(0.4));
        assert!(score_of_reply(b"{\"choices\": []}").is_err());
    }

    #[test]
    fn the_judge_sees_the_conversation_and_the_answer() {
        let req = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}]}"#,
            &HeaderMap::new(),
        )
        .unwrap();
        let answer = routesim_mock_upstream::completion_body("5", 3, 1);
        let body: Value = serde_json::from_slice(&judge_body("judge-model", &req, answer.as_bytes())).unwrap();
        assert_eq!(body["model"], "judge-model");
        assert_eq!(body["stream"], false);
        let user = body["messages"][1]["content"].as_str().unwrap();
        assert!(user.contains("user: What is 2+2?") && user.ends_with("Answer:\n5"), "{user}");
    }
}
