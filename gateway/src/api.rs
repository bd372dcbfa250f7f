//! The HTTP API: `POST /v1/chat/completions`, `POST /v1/feedback` (see [`crate::feedback`]), `GET /v1/models`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics` (or that on its own listener, [`metrics_router`]); anything else gets an OpenAI-shaped 404
//! or 405.

use crate::app::{App, Live};
use crate::duration::IntoStd;
use crate::error::ApiError;
use crate::request::ChatRequest;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use std::sync::Arc;

/// The gateway's routes over `app`.
pub fn router(live: Arc<Live>) -> Router {
    let app = live.load();
    let limit = app.cfg.server.max_body_bytes;
    let mut r = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/feedback", post(feedback))
        .route("/v1/models", get(models))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if app.cfg.metrics_listen.is_none() {
        r = r.route("/metrics", get(metrics));
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(live)
}

/// The routes of the separate `/metrics` listener (`[metrics] listen`): `/metrics` and `/healthz`.
pub fn metrics_router(live: Arc<Live>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(live)
}

async fn chat(State(live): State<Arc<Live>>, request: Request) -> Response {
    // The generation in force when the request arrived, to its end.
    let app = live.load();
    // The key first, from the headers alone: an unauthenticated client's body is never read.
    let who = match crate::admission::authenticate(&app, request.headers()) {
        Ok(who) => who,
        Err(denied) => return *denied,
    };
    let key_id = who.key_id();
    let too_large = || {
        let e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("the request body exceeds the gateway's limit of {} bytes", app.cfg.server.max_body_bytes),
        );
        client_error(&app, e, key_id.clone(), None)
    };
    // A declared length over the limit is refused at once, before a byte of the body is read.
    if let Some(len) = request.headers().get(header::CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(n) if n > app.cfg.server.max_body_bytes as u64 => return too_large(),
            Some(_) => {}
            None => {
                let e = ApiError::invalid("invalid_header", None, "expected content-length to be a number of bytes");
                return client_error(&app, e, key_id, None);
            }
        }
    }
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    // (The extensions keep the `DefaultBodyLimit` the extractor enforces.)
    let read = Bytes::from_request(Request::from_parts(parts, body), &());
    let limit = app.cfg.connections.body_read_timeout.into_std();
    let body: Result<Bytes, BytesRejection> = match tokio::time::timeout(limit, read).await {
        Ok(b) => b,
        Err(_) => {
            app.metrics.ops.body_timeouts.inc();
            let mut r = client_error(&app, ApiError::body_timeout("request", limit), key_id, None);
            // The rest of the body is not read: the connection cannot be reused.
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let bytes = match body {
        Ok(b) => b,
        Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(_) => {
            let e = ApiError::invalid("invalid_body", None, "the request body could not be read");
            return client_error(&app, e, key_id, None);
        }
    };
    match ChatRequest::parse(&bytes, &headers) {
        Ok(mut req) => {
            let Some(scope) = app.models.resolve(&req.model) else {
                let e = ApiError {
                    param: Some("model"),
                    ..ApiError::new(
                        StatusCode::NOT_FOUND,
                        "invalid_request_error",
                        "model_not_found",
                        "the requested model is not served by this gateway (GET /v1/models lists the models it serves)",
                    )
                };
                return client_error(&app, e, key_id, Some(&headers));
            };
            req.scope = scope;
            if req.stream && app.serves_cascade() {
                let e = ApiError::invalid(
                    "stream_unsupported",
                    Some("stream"),
                    "this gateway serves a cascade, which verifies each answer before it escalates or answers: it \
                     cannot stream (send `stream: false`)",
                );
                return client_error(&app, e, key_id, Some(&headers));
            }
            match crate::admission::admit(&app, who, req) {
                Ok((mut req, grant)) => {
                    // `x-routesim-request-id` is trusted only where every caller is the operator's (no client
                    // keys: loopback unless --allow-anonymous); a keyed client's is ignored, so no client can
                    // collide another's log rows. Gateway ids then continue above the ids given.
                    if grant.is_some() {
                        req.client_id = None;
                    } else if let Some(id) = req.client_id {
                        app.skip_ids_to(id);
                    }
                    crate::routing::complete_as(app, req, grant).await
                }
                Err(denied) => *denied,
            }
        }
        Err(e) => client_error(&app, e, key_id, Some(&headers)),
    }
}

async fn feedback(State(live): State<Arc<Live>>, request: Request) -> Response {
    // The generation in force when the feedback arrived.
    let app = live.load();
    let (parts, body) = request.into_parts();
    crate::feedback::serve(&app, &parts.headers, body).await
}

/// Counts, logs (status `rejected`, with the error's code) and answers a client's mistake.
fn client_error(app: &App, e: ApiError, key_id: Option<String>, headers: Option<&HeaderMap>) -> Response {
    app.metrics.ops.client_error(e.status.as_u16());
    let arrival = app.now();
    let wall = app.started_wall + std::time::Duration::from_nanos(arrival);
    let class = headers
        .and_then(|h| h.get("x-routesim-class"))
        .and_then(|v| v.to_str().ok())
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    app.log.record(crate::reqlog::LogRow {
        request_id: app.next_id(),
        arrival_s: arrival as f64 / 1e9,
        time_unix_s: wall.duration_since(std::time::SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        class: class.unwrap_or_else(|| "default".into()),
        status: "rejected",
        http_status: e.status.as_u16(),
        key_id,
        client_error: Some(e.code),
        ..Default::default()
    });
    e.into_response()
}

async fn models(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    // The generation in force when the request arrived, to its end.
    let app = live.load();
    let who = match crate::admission::authenticate(&app, &headers) {
        Ok(who) => who,
        Err(denied) => return *denied,
    };
    // Every name a request's `model` may take (see `crate::models`), those a key may not use left out.
    let patterns = match &who {
        crate::auth::Identity::Key(k) => k.entry.models.as_slice(),
        crate::auth::Identity::Anonymous => &[],
    };
    let data: Vec<serde_json::Value> = app
        .models
        .listing(patterns)
        .into_iter()
        .map(|(id, owner)| serde_json::json!({ "id": id, "object": "model", "created": 0, "owned_by": owner }))
        .collect();
    json(StatusCode::OK, serde_json::json!({ "object": "list", "data": data }).to_string())
}

async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#.to_string())
}

async fn readyz(State(live): State<Arc<Live>>) -> Response {
    // The generation in force when the request arrived, to its end.
    let app = live.load();
    if app.draining() {
        json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#.to_string())
    } else if !app.any_healthy() {
        json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"no healthy endpoint"}"#.to_string())
    } else {
        json(StatusCode::OK, r#"{"status":"ready"}"#.to_string())
    }
}

async fn metrics(State(live): State<Arc<Live>>) -> Response {
    // The generation in force when the request arrived, to its end.
    let app = live.load();
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

async fn not_found(State(live): State<Arc<Live>>, uri: Uri) -> Response {
    client_error(&live.load(), ApiError::not_found(uri.path()), None, None)
}

async fn method_not_allowed(State(live): State<Arc<Live>>) -> Response {
    client_error(&live.load(), ApiError::method_not_allowed(), None, None)
}

fn json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
