//! Errors returned to clients, in OpenAI's shape:
//! `{"error": {"message": "...", "type": "...", "param": null, "code": "..."}}`.
//!
//! Messages are written by the gateway and never quote a request body, a header or a key, so a client's
//! prompt or credentials cannot leak through an error (a test checks it).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI error type (`invalid_request_error`, `rate_limit_error`, `api_error`, ...).
    pub kind: &'static str,
    /// Machine-readable code.
    pub code: &'static str,
    /// The request field at fault, if any.
    pub param: Option<&'static str>,
    /// Human-readable message.
    pub message: String,
    /// Seconds for a `Retry-After` header, if any.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 about the request body.
    pub fn invalid(code: &'static str, param: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code,
            param,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An error of any status.
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, code, param: None, message: message.into(), retry_after: None }
    }

    /// 408 for a body (`what`: "request", "feedback") that did not arrive within `limit`
    /// (`[connections] body_read_timeout`).
    pub fn body_timeout(what: &str, limit: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            format!("the {what} body did not arrive within {} s", limit.as_secs_f64()),
        )
    }

    /// 404 for an unknown route.
    pub fn not_found(path: &str) -> Self {
        // The path is the client's own, but it may be long: bound what is echoed.
        let shown: String = path.chars().take(100).collect();
        ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", "unknown_url", format!("unknown URL: {shown}"))
    }

    /// 405 for a known route with the wrong method.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            "method not allowed for this URL",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
        .to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
