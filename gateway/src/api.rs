//! The HTTP API: `POST /v1/chat/completions`, `GET /v1/models`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`; anything else gets an OpenAI-shaped 404 or 405.

use crate::app::Live;
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
    let limit = live.load().cfg.server.max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(live)
}

async fn chat(State(live): State<Arc<Live>>, request: Request) -> Response {
    // The generation in force when the request arrived, to its end.
    let app = live.load();
    // The key first, from the headers alone: an unauthenticated client's body is never read.
    let who = match crate::auth::authenticate(&app, request.headers()) {
        Ok(who) => who,
        Err(denied) => return *denied,
    };
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    // (The extensions keep the `DefaultBodyLimit` the extractor enforces.)
    let body: Result<Bytes, BytesRejection> = Bytes::from_request(Request::from_parts(parts, body), &()).await;
    let bytes = match body {
        Ok(b) => b,
        Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                format!("the request body exceeds the gateway's limit of {} bytes", app.cfg.server.max_body_bytes),
            )
            .into_response();
        }
        Err(_) => {
            return ApiError::invalid("invalid_body", None, "the request body could not be read").into_response();
        }
    };
    match ChatRequest::parse(&bytes, &headers) {
        Ok(mut req) => {
            let Some(scope) = app.models.resolve(&req.model) else {
                return ApiError {
                    param: Some("model"),
                    ..ApiError::new(
                        StatusCode::NOT_FOUND,
                        "invalid_request_error",
                        "model_not_found",
                        "the requested model is not served by this gateway (GET /v1/models lists the models it serves)",
                    )
                }
                .into_response();
            };
            req.scope = scope;
            match crate::auth::admit(&app, who, req) {
                Ok((req, grant)) => crate::routing::complete_as(app, req, grant).await,
                Err(denied) => *denied,
            }
        }
        Err(e) => e.into_response(),
    }
}

async fn models(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    // The generation in force when the request arrived, to its end.
    let app = live.load();
    let who = match crate::auth::authenticate(&app, &headers) {
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

async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(uri.path()).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
