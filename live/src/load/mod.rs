//! An open-loop load generator driven by a scenario: the simulator's own arrivals (the traffic model of
//! replication 0, or a replayed log's arrivals) sent to a gateway at their scheduled times, scaled, whether
//! or not earlier requests returned. Latency and time to first byte are measured from the *scheduled* send
//! time (no coordinated omission) and converted back to scenario time.
//!
//! A request carries what the simulator knows of it: its class (`x-routesim-class`), complexity, deferrable
//! flag and metadata (`x-routesim-meta-<key>`) as headers; a prompt of four characters per input token (so
//! the gateway's estimate of the input tokens is the simulated count); `max_tokens` when the class announces
//! its output length; `stream` per class; and, for the mock providers, `metadata.routesim_id`,
//! `routesim_input_tokens` and `routesim_output_tokens`. A request that repeats an earlier prompt (a cache
//! key) sends the same messages every time, so that a gateway's response cache (keyed without metadata)
//! can hit; it keeps its id, so that the mock draws the simulator's luck for it on a miss.

pub mod generator;

use crate::provider::LiveClock;
use bytes::Bytes;
use router_core::{MetaValue, Nanos, RequestInfo};
use sim::logs::source::LogSource;
use sim::scenario::Compiled;
use sim::traffic::{Arrival, ArrivalSource};
use std::time::{Duration, Instant};

/// One request to send.
#[derive(Clone, Debug)]
pub struct PlannedRequest {
    /// The simulator's request id.
    pub id: u64,
    /// Scheduled send time, scenario nanoseconds since the start.
    pub at: Nanos,
    /// Class index.
    pub class: u16,
    /// Whether it streams.
    pub stream: bool,
    /// The body.
    pub body: Bytes,
    /// Routing headers.
    pub headers: Vec<(String, String)>,
}

/// Bounds of a load run, in scenario time.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadBounds {
    /// At most this many requests.
    pub requests: Option<u64>,
    /// Only arrivals before this scenario time.
    pub until: Option<Nanos>,
}

/// The requests of replication `replication` of `model` within `bounds`: from its traffic model, or from
/// the log attached to it (`model.replay`).
pub fn plan(model: &Compiled, replication: u32, bounds: LoadBounds) -> Vec<PlannedRequest> {
    let mut out = Vec::new();
    let mut push = |a: Arrival, t: &RequestInfo| {
        if bounds.requests.is_some_and(|n| out.len() as u64 >= n) || bounds.until.is_some_and(|u| a.at >= u) {
            return false;
        }
        out.push(request(&a, t));
        true
    };
    match &model.replay {
        None => {
            let templates: Vec<RequestInfo> =
                (0..model.traffic.class_count()).map(|c| model.traffic.request_template(c)).collect();
            let mut src = ArrivalSource::new(&model.traffic, model.seed, replication, model.limit);
            while let Some(a) = src.next() {
                if !push(a, &templates[a.template as usize]) {
                    break;
                }
            }
        }
        Some(input) => {
            let mut src = LogSource::new(input, model.seed, replication);
            while let Some(a) = src.next() {
                if !push(a, &input.templates[a.template as usize]) {
                    break;
                }
            }
        }
    }
    out
}

fn meta_text(v: &MetaValue) -> String {
    match v {
        MetaValue::Bool(b) => b.to_string(),
        MetaValue::Num(x) => x.to_string(),
        MetaValue::Str(s) => s.clone(),
    }
}

/// A prompt the gateway estimates at `tokens` input tokens (`ceil((16 + chars) / 4)` for one message), whose
/// text starts with `tag`, so that different prompts never share a response-cache entry. A prompt too short
/// for its tag (`tokens < (16 + tag length) / 4`) is the tag alone, and the estimate is over by that much.
fn prompt(tokens: u32, tag: &str) -> String {
    const PATTERN: &str = " lorem ipsum dolor sit amet";
    let len = (tokens as usize * 4).saturating_sub(16).max(tag.len());
    let mut s = String::with_capacity(len + PATTERN.len());
    s.push_str(tag);
    while s.len() < len {
        s.push_str(PATTERN);
    }
    s.truncate(len);
    s
}

fn request(a: &Arrival, t: &RequestInfo) -> PlannedRequest {
    // A repeated prompt has the same text every time, so that a gateway's response cache (which leaves
    // metadata out of its key) can hit; any other request has a text of its own.
    let tag = match a.cache_key {
        Some(k) => format!("p{k}"),
        None => format!("r{}", a.id),
    };
    let mut body = serde_json::json!({
        "model": "routesim",
        "stream": t.streaming,
        "messages": [{"role": "user", "content": prompt(a.input_tokens, &tag)}],
        "metadata": {
            "routesim_input_tokens": a.input_tokens,
            "routesim_output_tokens": a.output_tokens,
        },
    });
    body["metadata"]["routesim_id"] = a.id.into();
    if a.expected_output {
        body["max_tokens"] = a.output_tokens.into();
    }
    // The simulator's id: the gateway's router then draws this request's random numbers as the engine did.
    let mut headers = vec![("x-routesim-request-id".to_string(), a.id.to_string())];
    if let Some(c) = &t.task_class {
        headers.push(("x-routesim-class".to_string(), c.clone()));
    }
    if let Some(c) = t.complexity {
        headers.push(("x-routesim-complexity".to_string(), c.to_string()));
    }
    if a.deferrable {
        headers.push(("x-routesim-deferrable".to_string(), "true".to_string()));
    }
    for (k, v) in &t.metadata {
        headers.push((format!("x-routesim-meta-{k}"), meta_text(v)));
    }
    PlannedRequest {
        id: a.id,
        at: a.at,
        class: a.class,
        stream: t.streaming,
        body: Bytes::from(body.to_string()),
        headers,
    }
}

/// Refuses a target that is not on the loopback interface (`127.0.0.0/8`, `::1`, `localhost`).
pub fn check_loopback(url: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("--target {url:?} is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("--target {url:?}: expected an http:// or https:// URL"));
    }
    let host = u.host_str().unwrap_or("");
    let ok = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--target {url:?}: the load generator only sends to loopback (127.0.0.1, ::1, localhost), found {}",
            u.host_str().unwrap_or("no host")
        ))
    }
}

/// What one request saw, in scenario time.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientResult {
    /// The simulator's request id.
    pub id: u64,
    /// Scheduled send time (scenario nanoseconds).
    pub at: Nanos,
    /// Class index.
    pub class: u16,
    /// Whether it streamed.
    pub stream: bool,
    /// HTTP status (0: no response: transport error or the client's timeout).
    pub status: u16,
    /// 2xx with the whole body read.
    pub ok: bool,
    /// From the scheduled send to the end of the body (scenario nanoseconds).
    pub latency: Nanos,
    /// From the scheduled send to the first body chunk of a stream.
    pub ttft: Option<Nanos>,
    /// `x-routesim-endpoint` of the response.
    pub endpoint: Option<String>,
    /// `x-routesim-attempts` of the response.
    pub attempts: u32,
}

/// What a load run saw.
#[derive(Clone, Debug)]
pub struct LoadOutcome {
    /// One result per request, in id order.
    pub results: Vec<ClientResult>,
    /// Real time from the first scheduled send to the last answer.
    pub elapsed: Duration,
    /// The largest lag of a send behind its schedule, real time (the generator itself saturated if large).
    pub max_lag: Duration,
}

/// Sends `plan` to `url` (a chat-completions URL) on `clock`; each request gives up after `timeout` (real).
pub async fn run(
    client: &reqwest::Client,
    url: &str,
    plan: &[PlannedRequest],
    clock: LiveClock,
    timeout: Duration,
) -> LoadOutcome {
    let start = Instant::now();
    let times = plan.iter().map(|p| clock.instant_at(p.at));
    let (mut results, max_lag) = generator::at_scheduled_times(times, |i, scheduled| {
        let p = plan[i].clone();
        let mut req = client.post(url).header("content-type", "application/json").body(p.body.clone());
        for (k, v) in &p.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        async move { one(req, &p, scheduled, clock, timeout).await }
    })
    .await;
    results.sort_by_key(|r| r.id);
    LoadOutcome { results, elapsed: start.elapsed(), max_lag }
}

/// `routesim load`: sends `plan` to the gateway at `target` (its base URL) on a clock `time_scale` times
/// faster than the scenario's, starting 100 ms from now; each request gives up after 600 s of scenario time
/// (5 s to 600 s real).
pub fn send_to(target: &str, plan: &[PlannedRequest], time_scale: f64) -> anyhow::Result<LoadOutcome> {
    let url = format!("{}/v1/chat/completions", target.trim_end_matches('/'));
    let rt = crate::runtime()?;
    Ok(rt.block_on(async {
        let clock = LiveClock::starting_at(Instant::now() + Duration::from_millis(100), time_scale);
        let client = generator::client();
        let timeout = Duration::from_secs_f64((600.0 / time_scale).clamp(5.0, 600.0));
        run(&client, &url, plan, clock, timeout).await
    }))
}

/// Writes one row per request (CSV: id, scheduled time, class, stream, status, ok, latency, TTFT, endpoint,
/// attempts; times in scenario seconds) to `path`.
pub fn write_csv(path: &std::path::Path, results: &[ClientResult]) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut w = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    let mut rows = || -> anyhow::Result<()> {
        w.write_record([
            "id",
            "scheduled_s",
            "class",
            "stream",
            "status",
            "ok",
            "latency_s",
            "ttft_s",
            "endpoint",
            "attempts",
        ])?;
        for r in results {
            w.write_record([
                r.id.to_string(),
                (r.at as f64 / 1e9).to_string(),
                r.class.to_string(),
                r.stream.to_string(),
                r.status.to_string(),
                r.ok.to_string(),
                (r.latency as f64 / 1e9).to_string(),
                r.ttft.map_or(String::new(), |t| (t as f64 / 1e9).to_string()),
                r.endpoint.clone().unwrap_or_default(),
                r.attempts.to_string(),
            ])?;
        }
        w.flush()?;
        Ok(())
    };
    rows().with_context(|| format!("writing {}", path.display()))
}

async fn one(
    req: reqwest::RequestBuilder,
    p: &PlannedRequest,
    scheduled: Instant,
    clock: LiveClock,
    timeout: Duration,
) -> ClientResult {
    let virt = |i: Instant| (i.saturating_duration_since(scheduled).as_nanos() as f64 * clock.scale()) as Nanos;
    let mut r = ClientResult {
        id: p.id,
        at: p.at,
        class: p.class,
        stream: p.stream,
        status: 0,
        ok: false,
        latency: 0,
        ttft: None,
        endpoint: None,
        attempts: 0,
    };
    let fut = async {
        let mut resp = req.send().await.ok()?;
        r.status = resp.status().as_u16();
        let h = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        r.endpoint = h("x-routesim-endpoint");
        r.attempts = h("x-routesim-attempts").and_then(|a| a.parse().ok()).unwrap_or(0);
        let mut first = true;
        while let Some(c) = resp.chunk().await.ok()? {
            if first && p.stream && !c.is_empty() {
                r.ttft = Some(virt(Instant::now()));
                first = false;
            }
        }
        Some(resp.status().is_success())
    };
    let ok = matches!(tokio::time::timeout(timeout, fut).await, Ok(Some(true)));
    r.ok = ok;
    if !ok {
        r.ttft = None;
    }
    r.latency = virt(Instant::now());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    use routesim_gateway::request::ChatRequest;

    #[test]
    fn only_loopback_targets_are_accepted() {
        for ok in ["http://127.0.0.1:8080", "http://localhost:1/x", "http://[::1]:9000", "http://127.3.4.5"] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in
            ["http://10.0.0.1:8080", "http://example.com", "ftp://127.0.0.1", "not a url", "http://[2001:db8::1]"]
        {
            let e = check_loopback(bad).unwrap_err();
            assert!(e.contains("--target"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_gateway_reads_the_simulated_request_from_what_is_sent() {
        let mut t = RequestInfo::new(0, 0);
        t.task_class = Some("code".into());
        t.complexity = Some(0.85);
        t.streaming = true;
        t.metadata = vec![("plan".into(), MetaValue::Str("pro".into()))];
        for input in [1u32, 4, 5, 600, 3001] {
            let a = Arrival {
                id: 7,
                at: 0,
                class: 0,
                template: 0,
                input_tokens: input,
                output_tokens: 250,
                expected_output: true,
                deferrable: true,
                cache_key: None,
            };
            let p = request(&a, &t);
            let mut h = HeaderMap::new();
            for (k, v) in &p.headers {
                h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            let r = ChatRequest::parse(&p.body, &h).expect("the gateway accepts it");
            // The gateway's estimate of the prompt is the simulated count (from 5 tokens: the framing and the
            // tag "r7").
            assert_eq!(r.info.input_tokens, input.max(5), "input {input}");
            assert_eq!(r.info.expected_output_tokens, Some(250));
            assert_eq!(r.info.task_class.as_deref(), Some("code"));
            assert_eq!(r.info.complexity, Some(0.85));
            assert!(r.info.deferrable && r.stream);
            assert!(r.info.metadata.iter().any(|(k, v)| k == "plan" && *v == MetaValue::Str("pro".into())));
            let m = crate::mock::MockRequest::parse(&p.body).unwrap();
            assert_eq!((m.id, m.input_tokens, m.output_tokens), (Some(7), input, 250));
        }
    }

    #[test]
    fn repeats_of_a_prompt_share_a_cache_key_and_keep_their_ids() {
        let t = RequestInfo::new(0, 0);
        let arrival = |id: u64, cache_key: Option<u64>| Arrival {
            id,
            at: 0,
            class: 0,
            template: 0,
            input_tokens: 400,
            output_tokens: 60,
            expected_output: true,
            deferrable: false,
            cache_key,
        };
        let sent = |a: Arrival| {
            let p = request(&a, &t);
            let key = ChatRequest::parse(&p.body, &HeaderMap::new()).unwrap().with_canonical().cache_key();
            (key.expect("not streamed: cacheable"), crate::mock::MockRequest::parse(&p.body).unwrap().id)
        };
        let (k1, id1) = sent(arrival(1, Some(42)));
        let (k2, id2) = sent(arrival(2, Some(42)));
        assert_eq!(k1, k2, "the same prompt again: the gateway's cache can hit");
        assert_eq!((id1, id2), (Some(1), Some(2)), "the mock still draws each request's own luck");
        assert_ne!(k1, sent(arrival(3, Some(43))).0, "another prompt of the same length");
        assert_ne!(sent(arrival(4, None)).0, sent(arrival(5, None)).0, "requests without a prompt key never share");
    }
}
