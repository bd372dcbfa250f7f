//! What an upstream answered, checked before a client sees it.
//!
//! A 2xx is not trusted as such: a non-streaming answer must be a JSON object with a `choices` array and no
//! `error` object; a streamed answer must be a server-sent-event stream (not a plain JSON body), must not open
//! with an `error` event and must end with `data: [DONE]`. Anything else is an upstream failure of class
//! `server` ([`Invalid`]): retried or failed over like a 5xx, logged and counted
//! (`routesim_gateway_upstream_invalid_answers_total{endpoint, reason}`).
//!
//! An upstream error body never reaches a client as it was sent: [`scrub_error`] rebuilds it from its
//! `message` (with anything that looks like a credential, the endpoint's key in full or masked among them,
//! replaced by `[redacted]`), `type`, `param` and `code`.

use serde_json::Value;

/// Why an upstream's 2xx answer is not a usable chat completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The body is not JSON.
    NotJson,
    /// The body is JSON cut short (ends mid-document).
    Truncated,
    /// The body (or the stream's first event) is an `error` object.
    ErrorObject,
    /// A JSON object without a `choices` array.
    NoChoices,
    /// A plain (non-SSE) body answered to a streaming request.
    NotAStream,
    /// A streaming answer with no bytes at all.
    EmptyStream,
    /// A stream that ended without `data: [DONE]`.
    NoDone,
}

impl Invalid {
    /// Every reason, in a fixed order.
    pub const ALL: [Invalid; 7] = [
        Invalid::NotJson,
        Invalid::Truncated,
        Invalid::ErrorObject,
        Invalid::NoChoices,
        Invalid::NotAStream,
        Invalid::EmptyStream,
        Invalid::NoDone,
    ];

    /// The label in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Invalid::NotJson => "not_json",
            Invalid::Truncated => "truncated",
            Invalid::ErrorObject => "error_object",
            Invalid::NoChoices => "no_choices",
            Invalid::NotAStream => "not_a_stream",
            Invalid::EmptyStream => "empty_stream",
            Invalid::NoDone => "no_done",
        }
    }

    /// What happened, as the client's error message says it.
    pub fn what(self) -> &'static str {
        match self {
            Invalid::NotJson => "answered 2xx with a body that is not JSON",
            Invalid::Truncated => "answered 2xx with a JSON body cut short",
            Invalid::ErrorObject => "answered 2xx with an error object",
            Invalid::NoChoices => "answered 2xx with JSON that is not a chat completion (no `choices`)",
            Invalid::NotAStream => "answered a streaming request with a plain (non-SSE) body",
            Invalid::EmptyStream => "answered a streaming request with an empty body",
            Invalid::NoDone => "ended the stream without `data: [DONE]`",
        }
    }
}

/// Checks a non-streaming 2xx body: a JSON object with a `choices` array and no `error`.
pub fn check_completion(body: &[u8]) -> Result<(), Invalid> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| if e.is_eof() { Invalid::Truncated } else { Invalid::NotJson })?;
    let Value::Object(o) = v else { return Err(Invalid::NoChoices) };
    if o.get("error").is_some_and(|e| !e.is_null()) {
        return Err(Invalid::ErrorObject);
    }
    if !o.get("choices").is_some_and(Value::is_array) {
        return Err(Invalid::NoChoices);
    }
    Ok(())
}

/// Whether a `Content-Type` names a plain JSON body (not an event stream).
pub fn is_json_content_type(ct: Option<&[u8]>) -> bool {
    ct.is_some_and(|c| {
        let c = c.trim_ascii_start();
        c.len() >= 16 && c[..16].eq_ignore_ascii_case(b"application/json")
    })
}

/// Checks the first chunk of a streamed 2xx answer: it must look like server-sent events (a field line or a
/// comment, not a JSON document), and its first complete `data:` event must not be an `error` object.
pub fn check_stream_head(first: &[u8]) -> Result<(), Invalid> {
    let s = first.strip_prefix("\u{feff}".as_bytes()).unwrap_or(first).trim_ascii_start();
    if s.first().is_some_and(|&b| b == b'{' || b == b'[') {
        return Err(Invalid::NotAStream);
    }
    // The first data line, when it arrived whole.
    if let Some(line) = s.split_inclusive(|&b| b == b'\n').find(|l| l.starts_with(b"data:"))
        && line.ends_with(b"\n")
        && let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line[5..].trim_ascii())
        && o.get("error").is_some_and(|e| !e.is_null())
    {
        return Err(Invalid::ErrorObject);
    }
    Ok(())
}

/// Classifies a whole plain-JSON body answered to a streaming request: an `error` object or not a stream.
pub fn classify_plain_answer(body: &[u8]) -> Invalid {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) if o.get("error").is_some_and(|e| !e.is_null()) => Invalid::ErrorObject,
        _ => Invalid::NotAStream,
    }
}

/// The most characters of an upstream's error message passed on.
const MAX_MESSAGE: usize = 512;

/// An upstream error body rebuilt for a client, or `None` when it holds no JSON `error`: `message` scrubbed of
/// credentials (`secrets` in full or in part, and anything shaped like a key) and bounded, `type`, `param` and
/// `code` kept only when they are short identifiers. Nothing else of the body is kept.
pub fn scrub_error(body: &[u8], secrets: &[&str]) -> Option<Value> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let (message, kind, param, code) = match e {
        Value::Object(o) => {
            (o.get("message").and_then(Value::as_str).unwrap_or(""), o.get("type"), o.get("param"), o.get("code"))
        }
        Value::String(s) => (s.as_str(), None, None, None),
        _ => return None,
    };
    let ident = |v: Option<&Value>| -> Value {
        match v {
            Some(Value::String(s))
                if (1..=64).contains(&s.len())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    && !looks_like_secret(s, secrets) =>
            {
                Value::String(s.clone())
            }
            Some(Value::Number(n)) => Value::Number(n.clone()),
            _ => Value::Null,
        }
    };
    let mut message = scrub_text(message, secrets);
    if message.chars().count() > MAX_MESSAGE {
        message = message.chars().take(MAX_MESSAGE).collect::<String>() + "...";
    }
    Some(serde_json::json!({
        "error": { "message": message, "type": ident(kind), "param": ident(param), "code": ident(code) }
    }))
}

/// `text` with every word that is or looks like a credential replaced by `[redacted]`: the secrets
/// themselves, a word sharing six leading or four trailing characters with one (a masked echo such as
/// `sk-abc****wxyz`), the word after `Bearer`, words with key prefixes (`sk-`, `rsk-`, `pk-`, `key-`,
/// `AIza`), masked words (`***`, `...` inside), and long random-looking words (24+ characters of letters
/// and digits mixed).
pub fn scrub_text(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_string();
    for k in secrets.iter().filter(|k| k.len() >= 4) {
        s = s.replace(k, "[redacted]");
    }
    let mut out = String::with_capacity(s.len());
    let mut after_bearer = false;
    for piece in s.split_inclusive(is_delimiter) {
        let (word, delim) = match piece.char_indices().last() {
            Some((i, c)) if is_delimiter(c) => piece.split_at(i),
            _ => (piece, ""),
        };
        if word.is_empty() {
            out.push_str(delim);
            continue;
        }
        if after_bearer || (looks_like_secret(word, secrets) && word != "[redacted]") {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        after_bearer = word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("bearer:");
        out.push_str(delim);
    }
    out
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '`' | '=')
}

fn looks_like_secret(word: &str, secrets: &[&str]) -> bool {
    let w = word.trim_matches(|c: char| matches!(c, '.' | ':' | '!' | '?'));
    if w.is_empty() || w == "[redacted]" {
        return false;
    }
    for k in secrets.iter().filter(|k| k.len() >= 8) {
        let (kb, wb) = (k.as_bytes(), w.as_bytes());
        if (wb.len() >= 6 && kb.starts_with(&wb[..6])) || (wb.len() >= 4 && kb.ends_with(&wb[wb.len() - 4..])) {
            return true;
        }
    }
    let lower = w.to_ascii_lowercase();
    if ["sk-", "sk_", "rsk-", "pk-", "key-", "aiza"].iter().any(|p| lower.starts_with(p) && w.len() > p.len() + 3) {
        return true;
    }
    let masked = w.contains("***") || w.contains('\u{2026}') || w.trim_end_matches('.').contains("...");
    if masked && w.chars().filter(|c| c.is_ascii_alphanumeric()).count() >= 3 {
        return true;
    }
    let alnum = w.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let digits = w.chars().any(|c| c.is_ascii_digit());
    let letters = w.chars().any(|c| c.is_ascii_alphabetic());
    w.len() >= 24 && alnum && digits && letters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_are_checked() {
        assert_eq!(check_completion(br#"{"choices":[]}"#), Ok(()));
        assert_eq!(check_completion(b"<html>"), Err(Invalid::NotJson));
        assert_eq!(check_completion(br#"{"id":"x","choices":[{"mess"#), Err(Invalid::Truncated));
        assert_eq!(check_completion(b""), Err(Invalid::Truncated));
        assert_eq!(check_completion(br#"{"error":{"message":"overloaded"}}"#), Err(Invalid::ErrorObject));
        assert_eq!(check_completion(br#"{"id":"x"}"#), Err(Invalid::NoChoices));
        assert_eq!(check_completion(b"[1]"), Err(Invalid::NoChoices));
    }

    #[test]
    fn stream_heads_are_checked() {
        assert_eq!(check_stream_head(b"data: {\"choices\":[]}\n\n"), Ok(()));
        assert_eq!(check_stream_head(b": keep-alive\n\n"), Ok(()));
        assert_eq!(check_stream_head(b"data: {\"choi"), Ok(()), "an event cut by the chunk is not judged");
        assert_eq!(check_stream_head(b" {\"choices\":[]}"), Err(Invalid::NotAStream));
        assert_eq!(check_stream_head(b"data: {\"error\":{\"message\":\"x\"}}\n\n"), Err(Invalid::ErrorObject));
        assert_eq!(classify_plain_answer(br#"{"error":{"message":"x"}}"#), Invalid::ErrorObject);
        assert_eq!(classify_plain_answer(br#"{"choices":[]}"#), Invalid::NotAStream);
        assert!(is_json_content_type(Some(b"application/json; charset=utf-8")));
        assert!(!is_json_content_type(Some(b"text/event-stream")));
        assert!(!is_json_content_type(None));
    }

    #[test]
    fn credentials_are_scrubbed_from_error_messages() {
        let key = "sk-test-0123456789-SECRETKEY";
        let cases = [
            format!("Incorrect API key provided: {key}."),
            "Incorrect API key provided: sk-test-*************TKEY.".to_string(),
            "Incorrect API key provided: sk-tes...TKEY".to_string(),
            format!("header was 'Authorization: Bearer {key}'"),
            "token AIzaSyA1234567890abcdefghijkl rejected".to_string(),
            "bad key ab12cd34ef56gh78ij90kl12mn34".to_string(),
        ];
        for m in &cases {
            let s = scrub_text(m, &[key]);
            assert!(s.contains("[redacted]"), "{m} -> {s}");
            for part in ["0123456789", "SECRETKEY", "TKEY", "sk-tes", "AIza", "ab12cd34"] {
                assert!(!s.contains(part), "{m} -> {s}");
            }
        }
        assert_eq!(
            scrub_text("max_tokens is too large: 9999 > 4096", &[key]),
            "max_tokens is too large: 9999 > 4096",
            "ordinary messages are kept"
        );
        let body = format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {key}","type":"invalid_request_error","param":null,"code":"invalid_api_key","key":"{key}"}},"echo":"{key}"}}"#
        );
        let v = scrub_error(body.as_bytes(), &[key]).unwrap();
        let text = v.to_string();
        assert!(!text.contains("SECRETKEY") && !text.contains("echo"), "{text}");
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(scrub_error(b"not json", &[key]).is_none());
    }
}
