//! The upstream client: one pooled reqwest client (rustls) for every endpoint, and the mapping of upstream
//! statuses and transport errors to router-core's error classes, of usage to tokens.
//!
//! | upstream | class |
//! |---|---|
//! | 2xx | success |
//! | 429 (with `Retry-After` in seconds or as an HTTP date) | `rate_limited` |
//! | 408, 504, an attempt or TTFT timeout, a connect timeout | `timeout` |
//! | other 5xx (500, 502, 503, 529, ...), connection refused or reset, a broken stream | `server` |
//! | 401, 403 (the provider refused the gateway's key; see `routing`) | `server`, circuit opened |
//! | other 4xx | `other` |

use crate::config::ResolvedUpstream;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use router_core::{ErrorClass, Nanos, UpstreamAuth};
use std::time::{Duration, SystemTime};

/// The class of an upstream HTTP status; `None` for success.
pub fn classify_status(status: u16) -> Option<ErrorClass> {
    match status {
        200..=399 => None,
        429 => Some(ErrorClass::RateLimited),
        408 | 504 => Some(ErrorClass::Timeout),
        500..=599 => Some(ErrorClass::Server),
        _ => Some(ErrorClass::Other),
    }
}

/// The class of a transport error, and a short description that names no URL, header or key.
pub fn classify_transport(e: &reqwest::Error) -> (ErrorClass, &'static str) {
    if e.is_timeout() {
        (ErrorClass::Timeout, "timed out")
    } else if e.is_connect() {
        (ErrorClass::Server, "connection failed (refused or unreachable)")
    } else if e.is_body() || e.is_decode() {
        (ErrorClass::Server, "the response body was cut off")
    } else {
        (ErrorClass::Server, "connection error (reset or closed)")
    }
}

/// `Retry-After` as nanoseconds: delta-seconds, or an HTTP date relative to `now`.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Nanos> {
    let v = v.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| router_core::secs_to_nanos(s));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).map(|d| d.as_nanos() as Nanos).unwrap_or(0))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP dates take.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day: u64 = it.next()?.parse().ok()?;
    let month = it.next()?;
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month)? as u64
        + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = router_core::access::days_from_civil(year, mon as u32, day as u32);
    let secs = days * 86400 + (h * 3600 + m * 60 + sec) as i64;
    (secs >= 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Tokens an upstream reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u32,
    /// Completion tokens.
    pub output: u32,
}

fn usage_of(v: &serde_json::Value) -> Option<Usage> {
    let u = v.get("usage")?;
    let n = |k: &str| u.get(k).and_then(serde_json::Value::as_u64).map(|x| x.min(u32::MAX as u64) as u32);
    Some(Usage { input: n("prompt_tokens")?, output: n("completion_tokens").unwrap_or(0) })
}

/// The usage of a non-streaming response body.
pub fn usage_from_body(body: &[u8]) -> Option<Usage> {
    usage_of(&serde_json::from_slice(body).ok()?)
}

/// Reads an SSE stream as it passes through, chunk by chunk and without holding it: counts `data:` events,
/// notes `[DONE]`, and keeps the usage of the chunk that carries it (the final one, with `include_usage`).
#[derive(Clone, Debug, Default)]
pub struct SseScanner {
    partial: Vec<u8>,
    /// Data events seen (an estimate of output tokens when no usage comes).
    pub events: u32,
    /// Whether `data: [DONE]` was seen.
    pub done: bool,
    /// The last usage reported.
    pub usage: Option<Usage>,
}

/// A line longer than this is not kept across chunks (it cannot be a usage chunk).
const MAX_LINE: usize = 64 * 1024;

impl SseScanner {
    /// Feeds the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut full = std::mem::take(&mut self.partial);
                full.extend_from_slice(line);
                self.line(&full);
            }
        }
        if !rest.is_empty() && self.partial.len() + rest.len() <= MAX_LINE {
            self.partial.extend_from_slice(rest);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else { return };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        self.events += 1;
        if contains(data, b"\"usage\"")
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
            && let Some(u) = usage_of(&v)
        {
            self.usage = Some(u);
        }
    }
}

impl SseScanner {
    /// Whether the bytes seen so far end inside a line (the upstream has sent part of an event).
    pub fn mid_line(&self) -> bool {
        !self.partial.is_empty()
    }
}

/// Removes the usage-only events of a stream (`choices: []` with a `usage`), which the gateway asked for on
/// the client's behalf (`stream_options.include_usage`), and the blank line that ends each. Lines pass
/// through as soon as they are whole; only a line not yet ended is held back, until its end arrives.
#[derive(Clone, Debug, Default)]
pub struct UsageFilter {
    held: Vec<u8>,
    skip_blank: bool,
}

impl UsageFilter {
    /// The bytes of `chunk` to pass on (with any line held from before, less usage-only events).
    pub fn filter(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(self.held.len() + chunk.len());
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos + 1);
            rest = tail;
            if self.held.is_empty() {
                self.line(line, &mut out);
            } else {
                let mut full = std::mem::take(&mut self.held);
                full.extend_from_slice(line);
                self.line(&full, &mut out);
            }
        }
        self.held.extend_from_slice(rest);
        Bytes::from(out)
    }

    /// What is still held back (a last line without its end), at the end of the stream.
    pub fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if std::mem::take(&mut self.skip_blank) && bare.is_empty() {
            return;
        }
        if is_usage_only(bare) {
            self.skip_blank = true;
            return;
        }
        out.extend_from_slice(line);
    }
}

/// Whether an SSE line is `data: {...}` with `choices: []` and a `usage`.
fn is_usage_only(line: &[u8]) -> bool {
    let Some(data) = line.strip_prefix(b"data:") else { return false };
    // Cheap tests first: most chunks carry `"usage": null` and a non-empty `choices`.
    if !contains(data, b"\"usage\"") || !has_empty_choices(data) {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(data.trim_ascii()) {
        Ok(v) => {
            v.get("choices").and_then(serde_json::Value::as_array).is_some_and(|c| c.is_empty())
                && v.get("usage").is_some_and(|u| !u.is_null())
        }
        Err(_) => false,
    }
}

/// Whether `"choices"` is followed by `:` and `[]` (whitespace allowed) somewhere in `data`.
fn has_empty_choices(data: &[u8]) -> bool {
    const KEY: &[u8] = b"\"choices\"";
    let mut rest = data;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let mut it = rest.iter().copied().filter(|b| !b.is_ascii_whitespace());
        if it.next() == Some(b':') && it.next() == Some(b'[') && it.next() == Some(b']') {
            return true;
        }
    }
    false
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The upstreams of every endpoint, behind one connection pool.
pub struct Upstreams {
    client: reqwest::Client,
    list: Vec<ResolvedUpstream>,
    auth: Vec<Option<(HeaderName, HeaderValue)>>,
}

impl Upstreams {
    /// A client for `list` (endpoint order).
    pub fn new(list: Vec<ResolvedUpstream>, connect_timeout: Duration) -> anyhow::Result<Upstreams> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .no_proxy()
            .build()?;
        let auth = list
            .iter()
            .map(|u| {
                let key = u.api_key.as_ref()?;
                let (name, value) = match u.auth {
                    UpstreamAuth::Bearer => (AUTHORIZATION, format!("Bearer {key}")),
                    UpstreamAuth::ApiKey => (HeaderName::from_static("api-key"), key.clone()),
                };
                let mut v = HeaderValue::from_str(&value).ok()?;
                v.set_sensitive(true);
                Some((name, v))
            })
            .collect();
        Ok(Upstreams { client, list, auth })
    }

    /// The upstream of endpoint `i`.
    pub fn get(&self, i: usize) -> &ResolvedUpstream {
        &self.list[i]
    }

    /// Sends a chat-completion body to endpoint `i`.
    pub fn send(&self, i: usize, body: Bytes) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((n, v)) = &self.auth[i] {
            headers.insert(n.clone(), v.clone());
        }
        self.client.post(&self.list[i].chat_url).headers(headers).body(body)
    }

    /// A health check of endpoint `i`: `GET {base_url}{health_path}`.
    pub fn health(&self, i: usize, timeout: Duration) -> reqwest::RequestBuilder {
        let mut req = self.client.get(&self.list[i].health_url).timeout(timeout);
        if let Some((n, v)) = &self.auth[i] {
            req = req.header(n.clone(), v.clone());
        }
        req
    }

    /// The shared client (for the load generator and tests).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Installs rustls' ring provider once (reqwest is built without a default provider, so no C toolchain is
/// needed for aws-lc).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(classify_status(200), None);
        assert_eq!(classify_status(429), Some(ErrorClass::RateLimited));
        assert_eq!(classify_status(503), Some(ErrorClass::Server));
        assert_eq!(classify_status(529), Some(ErrorClass::Server));
        assert_eq!(classify_status(504), Some(ErrorClass::Timeout));
        assert_eq!(classify_status(400), Some(ErrorClass::Other));
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("2", now), Some(2_000_000_000));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now), Some(3_000_000_000));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now), Some(0));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn the_usage_only_event_is_removed_across_chunk_boundaries() {
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34}}\r\n\r\ndata: [DONE]\n\n";
        let want = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: [DONE]\n\n";
        let b = stream.as_bytes();
        for split in 0..b.len() {
            let mut f = UsageFilter::default();
            let mut got = f.filter(&b[..split]).to_vec();
            got.extend_from_slice(&f.filter(&b[split..]));
            got.extend_from_slice(&f.flush());
            assert_eq!(String::from_utf8(got).unwrap(), want, "split at {split}");
        }
        assert!(has_empty_choices(b"{\"choices\" : [ ], \"usage\": {}}"));
        assert!(!has_empty_choices(b"{\"choices\":[{\"delta\":{}}],\"usage\":null}"));
        let mut f = UsageFilter::default();
        assert_eq!(&f.filter(b"data: {\"choi")[..], b"", "a line is held until it ends");
        assert_eq!(f.flush(), b"data: {\"choi", "and given back at the end");
    }

    #[test]
    fn sse_usage_is_found_across_chunk_boundaries() {
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34}}\n\ndata: [DONE]\n\n";
        for split in 1..stream.len() {
            let mut s = SseScanner::default();
            s.feed(&stream[..split]);
            s.feed(&stream[split..]);
            assert_eq!(s.usage, Some(Usage { input: 12, output: 34 }), "split at {split}");
            assert!(s.done);
            assert_eq!(s.events, 2);
        }
    }
}
