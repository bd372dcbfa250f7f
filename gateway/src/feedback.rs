//! Client feedback on answers (issue 30): `POST /v1/feedback` with `{"request_id": N, "quality": q}` rates
//! the answer to an earlier request (the id the gateway answered it with, header `x-request-id`); `q` is a
//! score in 0..=1 or `true`/`false` (1/0). The rating is appended to the request log as a feedback row (see
//! [`crate::reqlog::FeedbackRow`]), which routesim joins to the request's row when it reads the log.
//!
//! The request must be one the log still remembers (the last [`crate::reqlog::RECENT_REQUESTS`] requests,
//! read back from the log's last rows after a restart), answered (status `ok`), and made with the same
//! client key as the feedback (with keys required; without keys anyone may rate any remembered request).
//! Answers, all OpenAI-shaped errors except the 200:
//!
//! | status | code | when |
//! |---|---|---|
//! | 200 | | recorded: `{"request_id": N, "quality": q, "recorded": true}` |
//! | 400 | `invalid_json` | the body is not a JSON object |
//! | 400 | `unknown_field` | a field other than `request_id` and `quality` |
//! | 400 | `invalid_request_id` | `request_id` missing or not a non-negative integer |
//! | 400 | `invalid_quality` | `quality` missing, or neither a number nor a boolean |
//! | 400 | `quality_out_of_range` | a number outside 0..=1 (or not finite) |
//! | 401/403 | as for requests | the key is missing, unknown, revoked or expired |
//! | 403 | `not_your_request` | the request was made with another key |
//! | 404 | `unknown_request` | the log does not remember that id (never issued, too old, its row dropped or lost) |
//! | 404 | `feedback_disabled` | the gateway keeps no request log |
//! | 408 | `request_timeout` | the body did not arrive in time |
//! | 409 | `request_not_answered` | the request failed or was refused: there is no answer to rate |
//! | 413 | `request_too_large` | a body over [`FEEDBACK_MAX_BYTES`] |
//! | 429 | `feedback_limit` | the request already has [`crate::reqlog::FEEDBACK_PER_REQUEST`] ratings |
//! | 503 | `log_busy` | the log's channel is full (the rating was dropped and counted; retry) |
//!
//! Feedback calls are not request rows: a refused one is counted in `routesim_gateway_feedback_total{outcome}`
//! and `routesim_gateway_client_errors_total` (or, for a key refused, `routesim_gateway_denied_total`), never
//! logged as a request.

use crate::app::App;
use crate::duration::IntoStd;
use crate::error::ApiError;
use crate::reqlog::{FEEDBACK_PER_REQUEST, FeedbackRow, RECENT_REQUESTS};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::SystemTime;

/// The largest feedback body read, in bytes (a body is two small fields).
pub const FEEDBACK_MAX_BYTES: usize = 4096;

/// A parsed feedback body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Feedback {
    /// The rated request's id.
    pub request_id: u64,
    /// The rating, 0..=1.
    pub quality: f64,
}

/// Parses a feedback body; the error names the field at fault and never quotes the body.
pub fn parse(body: &[u8]) -> Result<Feedback, ApiError> {
    let not_object =
        || ApiError::invalid("invalid_json", None, "expected a JSON object {\"request_id\": N, \"quality\": q}");
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| not_object())?;
    let serde_json::Value::Object(obj) = value else { return Err(not_object()) };
    if obj.keys().any(|k| k != "request_id" && k != "quality") {
        return Err(ApiError::invalid(
            "unknown_field",
            None,
            "unknown field: a feedback body has only `request_id` and `quality`",
        ));
    }
    let request_id = obj.get("request_id").and_then(|v| v.as_u64()).ok_or_else(|| {
        ApiError::invalid(
            "invalid_request_id",
            Some("request_id"),
            "expected `request_id` to be the request's id, a non-negative integer (its `x-request-id` header)",
        )
    })?;
    let quality = match obj.get("quality") {
        Some(serde_json::Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(serde_json::Value::Number(n)) => {
            let q = n.as_f64().filter(|q| q.is_finite() && (0.0..=1.0).contains(q));
            q.ok_or_else(|| ApiError::invalid("quality_out_of_range", Some("quality"), "expected `quality` in 0..=1"))?
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_quality",
                Some("quality"),
                "expected `quality` to be a score in 0..=1 or true/false",
            ));
        }
    };
    Ok(Feedback { request_id, quality })
}

/// Serves `POST /v1/feedback` on `app` (the generation in force when it arrived).
pub async fn serve(app: &App, headers: &HeaderMap, body: Body) -> Response {
    // The key first, from the headers alone, as for a request; a denial is counted and answered as for a
    // request, but not logged (a feedback call is not a request).
    let who = match app.access.authenticate(headers, crate::auth::wall_nanos()) {
        Ok(who) => who,
        Err((reason, _)) => {
            app.access.count_denied(reason);
            app.metrics.quality.feedback(false);
            return crate::auth::denial_error(reason, None).into_response();
        }
    };
    let key_id = who.key_id();
    let Some(recent) = app.log.recent() else {
        return refused(
            app,
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "feedback_disabled",
                "this gateway keeps no request log ([request_log] path), so feedback has nowhere to go",
            ),
        );
    };
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("a feedback body is at most {FEEDBACK_MAX_BYTES} bytes"),
        )
    };
    if let Some(n) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        && n > FEEDBACK_MAX_BYTES as u64
    {
        return refused(app, too_large());
    }
    let limit = app.cfg.connections.body_read_timeout.into_std();
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, FEEDBACK_MAX_BYTES)).await {
        Ok(Ok(b)) => b,
        // `to_bytes` fails on a body over the limit (or one that broke off: then the client is gone).
        Ok(Err(_)) => return refused(app, too_large()),
        Err(_) => {
            app.metrics.ops.body_timeouts.inc();
            let mut r = refused(app, ApiError::body_timeout("feedback", limit));
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let fb = match parse(&bytes) {
        Ok(fb) => fb,
        Err(e) => return refused(app, e),
    };
    {
        let mut recent = recent.lock().unwrap_or_else(|p| p.into_inner());
        let Some(req) = recent.get_mut(fb.request_id) else {
            return refused(
                app,
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "unknown_request",
                    format!(
                        "request {} is not among the last {RECENT_REQUESTS} requests of this gateway's log",
                        fb.request_id
                    ),
                ),
            );
        };
        if req.key_id != key_id {
            return refused(
                app,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "permission_error",
                    "not_your_request",
                    format!("request {} was made with another key: a key rates only its own requests", fb.request_id),
                ),
            );
        }
        if !req.answered {
            return refused(
                app,
                ApiError::new(
                    StatusCode::CONFLICT,
                    "invalid_request_error",
                    "request_not_answered",
                    format!("request {} was not answered: there is no answer to rate", fb.request_id),
                ),
            );
        }
        if req.feedback >= FEEDBACK_PER_REQUEST {
            return refused(
                app,
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    "feedback_limit",
                    format!("request {} already has {FEEDBACK_PER_REQUEST} ratings", fb.request_id),
                ),
            );
        }
        req.feedback += 1;
    }
    let arrival = app.now();
    let wall = app.started_wall + std::time::Duration::from_nanos(arrival);
    let row = FeedbackRow {
        request_id: fb.request_id,
        feedback: true,
        quality: fb.quality,
        arrival_s: app.log.arrival_s(arrival),
        time_unix_s: wall.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        key_id,
    };
    if !app.log.record_feedback(row) {
        let e = ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "log_busy",
                "the request log cannot take the feedback now; retry",
            )
        };
        app.metrics.quality.feedback(false);
        return e.into_response();
    }
    app.metrics.quality.feedback(true);
    let body = serde_json::json!({ "request_id": fb.request_id, "quality": fb.quality, "recorded": true });
    let mut r = (StatusCode::OK, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Counts and answers a refused feedback call (not logged: it is not a request).
fn refused(app: &App, e: ApiError) -> Response {
    app.metrics.ops.client_error(e.status.as_u16());
    app.metrics.quality.feedback(false);
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_score_or_a_boolean_and_names_each_mistake() {
        assert_eq!(parse(br#"{"request_id": 7, "quality": 0.25}"#).unwrap(), Feedback { request_id: 7, quality: 0.25 });
        assert_eq!(parse(br#"{"quality": true, "request_id": 7}"#).unwrap().quality, 1.0);
        assert_eq!(parse(br#"{"request_id": 7, "quality": false}"#).unwrap().quality, 0.0);
        assert_eq!(parse(br#"{"request_id": 7, "quality": 1}"#).unwrap().quality, 1.0);
        let code = |b: &[u8]| parse(b).unwrap_err().code;
        assert_eq!(code(b"{\"request_id\": 7, "), "invalid_json");
        assert_eq!(code(b"[1, 2]"), "invalid_json");
        assert_eq!(code(br#"{"request_id": 7, "quality": 1, "comment": "secret"}"#), "unknown_field");
        assert_eq!(code(br#"{"quality": 1}"#), "invalid_request_id");
        assert_eq!(code(br#"{"request_id": -3, "quality": 1}"#), "invalid_request_id");
        assert_eq!(code(br#"{"request_id": "7", "quality": 1}"#), "invalid_request_id");
        assert_eq!(code(br#"{"request_id": 7}"#), "invalid_quality");
        assert_eq!(code(br#"{"request_id": 7, "quality": "good"}"#), "invalid_quality");
        assert_eq!(code(br#"{"request_id": 7, "quality": 1.5}"#), "quality_out_of_range");
        assert_eq!(code(br#"{"request_id": 7, "quality": -0.1}"#), "quality_out_of_range");
        let e = parse(br#"{"request_id": 7, "quality": 1, "comment": "secret"}"#).unwrap_err();
        assert!(!e.message.contains("secret") && !e.message.contains("comment"), "the body is never quoted");
    }
}
