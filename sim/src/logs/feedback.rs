//! Client feedback rows of a gateway log, joined to their requests (issue 30).
//!
//! The gateway appends a row `{"request_id": N, "feedback": true, "quality": q, ...}` when a client rates the
//! answer to request `N` (`POST /v1/feedback`). Reading a JSONL log, [`FeedbackIndex::scan`] first collects
//! every feedback row (a pass that JSON-parses only the lines containing `"feedback"`), then the reader gives
//! each request row the rating of its `request_id`:
//!
//! - a feedback row may come before or after its request row (a log written by something other than the
//!   gateway, or files put together out of order);
//! - the **latest** rating of a request (the last feedback row for its id, in file order) wins over earlier
//!   ones;
//! - a rating wins over the gateway judge's score in the request row's own `quality` (the user's word over a
//!   model's);
//! - a feedback row whose `request_id` no request row of the log has is counted as a malformed row
//!   ([`UNKNOWN_REQUEST`], with its line), as is a feedback row without a usable `request_id` or `quality`;
//! - a rating applies to every request row of its id (ids repeat only when clients gave ids, or in logs of
//!   gateways before 2026-12-08, which started their ids again at 1 after a restart; a gateway now continues
//!   its log's ids and arrivals).
//!
//! Feedback rows are not requests: they are not counted among the log's rows (except the malformed ones) and
//! never replayed. A log without feedback rows reads exactly as before.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Reason of a malformed row: a feedback row whose `request_id` no request row of the log has.
pub const UNKNOWN_REQUEST: &str = "feedback for an unknown request";
/// Reason of a malformed row: a feedback row without a non-negative integer `request_id`.
pub const BAD_REQUEST_ID: &str = "feedback without a request_id";

/// The key that marks a feedback row (with the value `true`).
const MARK: &str = "feedback";

/// The ratings of one request id.
#[derive(Clone, Debug, PartialEq)]
struct Ratings {
    /// The latest rating (file order).
    quality: f64,
    /// The lines of every feedback row for the id, in file order.
    lines: Vec<u64>,
    /// Whether a request row of the log has the id.
    matched: bool,
}

/// Every feedback row of a log, by request id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedbackIndex {
    by_id: HashMap<u64, Ratings>,
    /// Whether the log has any feedback row, well-formed or not.
    any: bool,
}

/// Whether a JSON object is a feedback row.
pub fn is_feedback(obj: &Map<String, Value>) -> bool {
    obj.get(MARK) == Some(&Value::Bool(true))
}

/// A feedback row's request id and rating, or why it is malformed (reason, detail).
pub fn parse_row(obj: &Map<String, Value>) -> Result<(u64, f64), (&'static str, String)> {
    let id = obj.get("request_id").and_then(Value::as_u64).ok_or_else(|| {
        (BAD_REQUEST_ID, format!("request_id = {}", obj.get("request_id").map_or("absent".into(), |v| v.to_string())))
    })?;
    let quality = match obj.get("quality") {
        Some(Value::String(s)) => super::quality::parse_quality(s)?,
        Some(Value::Null) | None => {
            return Err((super::quality::QUALITY_NOT_A_NUMBER, "a feedback row without its quality".into()));
        }
        Some(v) => super::quality::parse_quality(&v.to_string())?,
    };
    Ok((id, quality))
}

impl FeedbackIndex {
    /// Collects the feedback rows of the JSONL log `path` (lines counted from 1, blank lines included, as the
    /// reader counts them). Malformed feedback rows are left to the reader, which reports them in place.
    pub fn scan(path: &Path) -> std::io::Result<FeedbackIndex> {
        let mut file = BufReader::new(File::open(path)?);
        let mut index = FeedbackIndex::default();
        let mut text = String::new();
        let mut line = 0u64;
        loop {
            text.clear();
            if file.read_line(&mut text)? == 0 {
                break;
            }
            line += 1;
            if !text.contains("\"feedback\"") {
                continue;
            }
            let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&text) else { continue };
            if !is_feedback(&obj) {
                continue;
            }
            index.any = true;
            if let Ok((id, quality)) = parse_row(&obj) {
                let r = index.by_id.entry(id).or_insert(Ratings { quality, lines: Vec::new(), matched: false });
                r.quality = quality;
                r.lines.push(line);
            }
        }
        Ok(index)
    }

    /// Whether the log has a feedback row (well-formed or not): when not, the reader skips every check.
    pub fn any(&self) -> bool {
        self.any
    }

    /// Whether some request has a rating.
    pub fn has_ratings(&self) -> bool {
        !self.by_id.is_empty()
    }

    /// The rating of the request row `obj` (by its `request_id`), marking the rating used.
    pub fn rating_of(&mut self, obj: &Map<String, Value>) -> Option<f64> {
        let id = obj.get("request_id")?.as_u64()?;
        let r = self.by_id.get_mut(&id)?;
        r.matched = true;
        Some(r.quality)
    }

    /// The feedback rows no request row matched: (line, request id), in line order.
    pub fn unmatched(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .by_id
            .iter()
            .filter(|(_, r)| !r.matched)
            .flat_map(|(&id, r)| r.lines.iter().map(move |&l| (l, id)))
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_feedback_row_is_marked_and_parsed_strictly() {
        assert!(is_feedback(&obj(r#"{"request_id": 1, "feedback": true, "quality": 1}"#)));
        assert!(!is_feedback(&obj(r#"{"request_id": 1, "feedback": "yes", "quality": 1}"#)));
        assert!(!is_feedback(&obj(r#"{"request_id": 1, "quality": 1}"#)));
        assert_eq!(parse_row(&obj(r#"{"request_id": 4, "feedback": true, "quality": 0.5}"#)), Ok((4, 0.5)));
        assert_eq!(parse_row(&obj(r#"{"request_id": 4, "feedback": true, "quality": false}"#)), Ok((4, 0.0)));
        let reason = |t: &str| parse_row(&obj(t)).unwrap_err().0;
        assert_eq!(reason(r#"{"feedback": true, "quality": 1}"#), BAD_REQUEST_ID);
        assert_eq!(reason(r#"{"request_id": -1, "feedback": true, "quality": 1}"#), BAD_REQUEST_ID);
        assert_eq!(
            reason(r#"{"request_id": 4, "feedback": true, "quality": 2}"#),
            super::super::quality::QUALITY_OUT_OF_RANGE
        );
        assert_eq!(reason(r#"{"request_id": 4, "feedback": true}"#), super::super::quality::QUALITY_NOT_A_NUMBER);
        assert_eq!(
            reason(r#"{"request_id": 4, "feedback": true, "quality": "good"}"#),
            super::super::quality::QUALITY_NOT_A_NUMBER
        );
    }
}
