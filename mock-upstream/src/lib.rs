//! A programmable mock OpenAI-compatible upstream for the gateway's tests and routesim's live harness (the
//! overhead benchmark): an in-process axum server on
//! `127.0.0.1` (ephemeral port) whose replies are scripted.
//!
//! Replies are deterministic (fixed ids and timestamps), so a stream can be compared byte for byte.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// One scripted reply.
#[derive(Clone, Debug, PartialEq)]
pub enum MockReply {
    /// A completion: after `delay`, the content (non-streaming) or, streamed, `chunks` pieces of it after
    /// `delay` (the TTFT), `gap` apart, then a usage chunk when asked for and `[DONE]`.
    Ok {
        /// Delay before the response (non-streaming) or the first chunk (streaming).
        delay: Duration,
        /// Gap between chunks of a stream.
        gap: Duration,
        /// Content pieces of a stream (their concatenation is the non-streaming content).
        chunks: Vec<String>,
        /// Prompt tokens reported in usage.
        prompt_tokens: u32,
    },
    /// An error status after `delay`, with an optional `Retry-After` (seconds).
    Status {
        /// HTTP status.
        code: u16,
        /// `Retry-After` header value, seconds.
        retry_after: Option<u64>,
        /// Delay before answering.
        delay: Duration,
    },
    /// Never answers (until the client gives up).
    Hang,
    /// A fixed answer, whatever the request: for misbehaving upstreams (invalid JSON, an `error` object with a
    /// 200, a truncated body, plain JSON to a streaming request).
    Raw {
        /// HTTP status.
        status: u16,
        /// `Content-Type`.
        content_type: &'static str,
        /// The body, sent whole.
        body: String,
    },
    /// An error status whose JSON error message echoes the credential the request carried, in full and
    /// masked (`sk-abc***wxyz`), as some providers do.
    EchoAuth {
        /// HTTP status.
        status: u16,
    },
}

impl MockReply {
    /// A quick completion of `n` chunks.
    pub fn ok(n: usize) -> MockReply {
        MockReply::Ok {
            delay: Duration::ZERO,
            gap: Duration::ZERO,
            chunks: (0..n).map(|i| format!("tok{i} ")).collect(),
            prompt_tokens: 10,
        }
    }

    /// An error status.
    pub fn status(code: u16) -> MockReply {
        MockReply::Status { code, retry_after: None, delay: Duration::ZERO }
    }
}

/// What the mock has seen, and its script.
#[derive(Debug)]
pub struct MockState {
    script: Mutex<VecDeque<MockReply>>,
    default: Mutex<MockReply>,
    /// Chat requests received.
    pub requests: AtomicU64,
    /// Streams whose client went away before the end.
    pub cancelled: AtomicU64,
    /// Streams sent to the end.
    pub completed: AtomicU64,
    /// Status answered to health checks (`GET /v1/models`).
    pub health_status: AtomicU16,
    /// Health checks received.
    pub health_checks: AtomicU64,
    /// The last `Authorization` (or `api-key`) header received.
    pub last_auth: Mutex<Option<String>>,
    /// The last chat body received.
    pub last_body: Mutex<Option<Bytes>>,
}

/// A running mock upstream.
pub struct MockUpstream {
    addr: SocketAddr,
    /// Its state.
    pub state: Arc<MockState>,
    stop: watch::Sender<bool>,
}

impl MockUpstream {
    /// Starts a mock answering `default` unless a scripted reply is queued.
    pub async fn start(default: MockReply) -> MockUpstream {
        let state = Arc::new(MockState {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            requests: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            health_status: AtomicU16::new(200),
            health_checks: AtomicU64::new(0),
            last_auth: Mutex::new(None),
            last_body: Mutex::new(None),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        });
        MockUpstream { addr, state, stop }
    }

    /// `http://127.0.0.1:PORT/v1`, the `base_url` of an upstream.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues replies for the next requests (then the default again).
    pub fn script(&self, replies: impl IntoIterator<Item = MockReply>) {
        self.state.script.lock().unwrap_or_else(|p| p.into_inner()).extend(replies);
    }

    /// Replaces the default reply.
    pub fn set_default(&self, r: MockReply) {
        *self.state.default.lock().unwrap_or_else(|p| p.into_inner()) = r;
    }

    /// Chat requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The body of a non-streaming completion of `content`.
pub fn completion_body(content: &str, prompt_tokens: u32, completion_tokens: u32) -> String {
    serde_json::json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": "mock",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens + completion_tokens }
    })
    .to_string()
}

/// One SSE event of a streamed completion.
pub fn stream_chunk(content: &str) -> String {
    let v = serde_json::json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": "mock",
        "choices": [{ "index": 0, "delta": { "content": content }, "finish_reason": null }]
    });
    format!("data: {v}\n\n")
}

/// The usage event of a stream.
pub fn usage_chunk(prompt_tokens: u32, completion_tokens: u32) -> String {
    let v = serde_json::json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": "mock", "choices": [],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens + completion_tokens }
    });
    format!("data: {v}\n\n")
}

async fn models(State(s): State<Arc<MockState>>) -> Response {
    s.health_checks.fetch_add(1, Ordering::SeqCst);
    let code = StatusCode::from_u16(s.health_status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    (code, r#"{"object":"list","data":[{"id":"mock","object":"model"}]}"#).into_response()
}

struct StreamGuard {
    state: Arc<MockState>,
    finished: bool,
}

impl StreamGuard {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let c = if self.finished { &self.state.completed } else { &self.state.cancelled };
        c.fetch_add(1, Ordering::SeqCst);
    }
}

async fn chat(State(s): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers.get(header::AUTHORIZATION).or_else(|| headers.get("api-key"));
    *s.last_auth.lock().unwrap_or_else(|p| p.into_inner()) = auth.and_then(|v| v.to_str().ok()).map(String::from);
    *s.last_body.lock().unwrap_or_else(|p| p.into_inner()) = Some(body.clone());
    let reply = {
        let next = s.script.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        next.unwrap_or_else(|| s.default.lock().unwrap_or_else(|p| p.into_inner()).clone())
    };
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let stream = req.get("stream").and_then(|v| v.as_bool()).unwrap_or(false);
    let usage = req.pointer("/stream_options/include_usage").and_then(|v| v.as_bool()).unwrap_or(false);
    match reply {
        MockReply::Raw { status, content_type, body } => {
            let mut r =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        MockReply::EchoAuth { status } => {
            let sent = headers
                .get(header::AUTHORIZATION)
                .or_else(|| headers.get("api-key"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let key = sent.strip_prefix("Bearer ").unwrap_or(&sent);
            let masked = format!(
                "{}{}{}",
                key.get(..6).unwrap_or(""),
                "*".repeat(key.len().saturating_sub(10)),
                key.get(key.len().saturating_sub(4)..).unwrap_or("")
            );
            let body = serde_json::json!({"error": {
                "message": format!("Incorrect API key provided: {masked}. You sent `Authorization: {sent}`."),
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key", "key": key,
            }});
            let mut r =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED), body.to_string()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        MockReply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        MockReply::Status { code, retry_after, delay } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let body =
                serde_json::json!({"error": {"message": format!("mock status {code}"), "type": "mock", "code": code}});
            let mut r = (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body.to_string())
                .into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(ra) = retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(ra));
            }
            r
        }
        MockReply::Ok { delay, gap, chunks, prompt_tokens } => {
            if !stream {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let mut r = completion_body(&chunks.concat(), prompt_tokens, chunks.len() as u32).into_response();
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                return r;
            }
            let n = chunks.len() as u32;
            let mut events: Vec<String> = chunks.iter().map(|c| stream_chunk(c)).collect();
            if usage {
                events.push(usage_chunk(prompt_tokens, n));
            }
            events.push("data: [DONE]\n\n".to_string());
            let guard = StreamGuard { state: s.clone(), finished: false };
            let st = futures_util::stream::unfold(
                (events.into_iter(), guard, true),
                move |(mut it, mut g, first)| async move {
                    let e = it.next();
                    let Some(e) = e else {
                        g.finish();
                        return None;
                    };
                    let wait = if first { delay } else { gap };
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    Some((Ok::<Bytes, std::io::Error>(Bytes::from(e)), (it, g, false)))
                },
            );
            let mut r = Body::from_stream(st).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            r
        }
    }
}

/// The exact bytes the mock streams for `reply` (with the usage chunk when `usage`).
pub fn expected_stream(reply: &MockReply, usage: bool) -> String {
    match reply {
        MockReply::Ok { chunks, prompt_tokens, .. } => {
            let mut s: String = chunks.iter().map(|c| stream_chunk(c)).collect();
            if usage {
                s.push_str(&usage_chunk(*prompt_tokens, chunks.len() as u32));
            }
            s.push_str("data: [DONE]\n\n");
            s
        }
        _ => String::new(),
    }
}
