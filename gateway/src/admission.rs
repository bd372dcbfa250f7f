//! A request's admission at the HTTP edge, in two steps around body parsing: [`authenticate`] before the
//! body is read, [`admit`] after (the key's models, limits and budgets; see [`crate::auth`]). A denial is
//! counted, written to the request log with the key id (never the secret) and answered with an
//! OpenAI-shaped error; nothing denied reaches an upstream.

use crate::app::App;
use crate::auth::{Grant, Identity, denial_error, wall_nanos};
use crate::reqlog::LogRow;
use crate::request::ChatRequest;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use router_core::{DenyReason, Nanos};
use std::time::SystemTime;

/// Counts, logs and answers a denial. `req` is the parsed request when there is one.
fn deny(
    app: &App,
    reason: DenyReason,
    key_id: Option<String>,
    retry_after: Option<Nanos>,
    req: Option<&ChatRequest>,
) -> Response {
    app.access.count_denied(reason);
    if let Some(id) = &key_id {
        app.access.count_key_denied(id);
    }
    let e = denial_error(reason, retry_after);
    let arrival = app.now();
    let wall = app.started_wall + std::time::Duration::from_nanos(arrival);
    app.log.record(LogRow {
        request_id: app.next_id(),
        arrival_s: arrival as f64 / 1e9,
        time_unix_s: wall.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        class: req.and_then(|r| r.info.task_class.clone()).unwrap_or_else(|| "default".into()),
        input_tokens: req.map_or(0, |r| r.info.input_tokens),
        status: "rejected",
        deferrable: req.is_some_and(|r| r.info.deferrable),
        output_known: req.is_some_and(|r| r.info.expected_output_tokens.is_some()),
        http_status: e.status.as_u16(),
        streaming: req.is_some_and(|r| r.stream),
        key_id,
        denied: Some(reason.name()),
        ..LogRow::default()
    });
    e.into_response()
}

/// Step one, before the body is read: who is asking. A failure is counted, logged and answered (the
/// answer is boxed: a response is large and this is the rare path).
pub fn authenticate(app: &App, headers: &HeaderMap) -> Result<Identity, Box<Response>> {
    app.access.authenticate(headers, wall_nanos()).map_err(|(reason, id)| Box::new(deny(app, reason, id, None, None)))
}

/// Step two, after parsing: the model and the key's limits and budgets. Returns the request (with the
/// key's metadata merged in) and its grant (none when anonymous).
pub fn admit(app: &App, who: Identity, mut req: ChatRequest) -> Result<(ChatRequest, Option<Grant>), Box<Response>> {
    match who {
        Identity::Anonymous => Ok((req, None)),
        Identity::Key(key) => {
            // The key's `models` limit the endpoints that may answer (see `crate::models`).
            req.scope.excluded = req.scope.excluded.union(app.models.excluded_by_key(&key.entry.models));
            if !app.models.any_left(&req.scope) {
                let id = Some(key.entry.id.clone());
                return Err(Box::new(deny(app, DenyReason::NotAllowed, id, None, Some(&req))));
            }
            match app.access.admit(&key, &mut req, wall_nanos()) {
                Ok(g) => Ok((req, Some(g))),
                Err((reason, retry)) => Err(Box::new(deny(app, reason, Some(key.entry.id.clone()), retry, Some(&req)))),
            }
        }
    }
}
