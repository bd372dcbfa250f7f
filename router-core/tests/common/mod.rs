//! Helpers shared by the integration tests: build routers from TOML, drive them by hand, count picks.
#![allow(dead_code)]

use router_core::{Decision, EndpointIdx, MetaValue, Outcome, RequestInfo, Router, RouterConfig};

/// One second and one millisecond in nanoseconds.
pub const S: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;

/// Parses a router config from TOML.
pub fn config(src: &str) -> RouterConfig {
    toml::from_str(src).unwrap_or_else(|e| panic!("invalid TOML in test: {e}\n{src}"))
}

/// Builds a router from TOML, panicking with the config error.
pub fn router(src: &str) -> Router {
    Router::new(&config(src)).unwrap_or_else(|e| panic!("config error: {e}"))
}

/// `[[endpoints]]` tables for plain endpoints with the given ids.
pub fn endpoints(ids: &[&str]) -> String {
    ids.iter().map(|id| format!("[[endpoints]]\nid = \"{id}\"\n")).collect()
}

/// The index of endpoint `id`.
pub fn idx(r: &Router, id: &str) -> EndpointIdx {
    r.endpoint_index(id).unwrap_or_else(|| panic!("no endpoint {id}"))
}

/// The id of endpoint `e`.
pub fn id(r: &Router, e: EndpointIdx) -> &str {
    &r.endpoints()[e.get()].id
}

/// A request with metadata.
pub fn req_with(id: u64, meta: &[(&str, MetaValue)]) -> RequestInfo {
    let mut r = RequestInfo::new(id, 500);
    r.metadata = meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    r
}

/// The endpoint `decide` routes to, or `None` for any other decision.
pub fn pick(r: &mut Router, req: &RequestInfo, now: u64) -> Option<EndpointIdx> {
    match r.decide(req, now) {
        Decision::Route { endpoint, .. } => Some(endpoint),
        _ => None,
    }
}

/// The id `decide` routes to (panics on any other decision).
pub fn pick_id(r: &mut Router, req: &RequestInfo, now: u64) -> String {
    let e = pick(r, req, now).unwrap_or_else(|| panic!("expected a route, got {:?}", r.decide(req, now)));
    id(r, e).to_string()
}

/// Feeds one completed attempt on `ep`: dispatched at `now`, finished `latency` later.
pub fn complete(r: &mut Router, ep: EndpointIdx, now: u64, latency: u64) {
    let req = RequestInfo::new(u64::MAX, 100);
    r.on_dispatch(ep, &req, now);
    r.on_result(ep, &req, &Outcome::success(latency, Some(latency / 4), 100, 50), now + latency);
}

/// Feeds one failed attempt of `class` on `ep` at `now`.
pub fn fail(r: &mut Router, ep: EndpointIdx, now: u64, class: router_core::ErrorClass) {
    let req = RequestInfo::new(u64::MAX, 100);
    r.on_dispatch(ep, &req, now);
    r.on_result(ep, &req, &Outcome::failure(class, 10 * MS), now);
}

/// Counts `decide` picks per endpoint over `n` requests with ids `0..n` at time `now`, without feedback.
pub fn counts(r: &mut Router, n: u64, now: u64, make: impl Fn(u64) -> RequestInfo) -> Vec<u64> {
    let mut c = vec![0u64; r.endpoints().len()];
    for i in 0..n {
        if let Some(e) = pick(r, &make(i), now) {
            c[e.get()] += 1;
        }
    }
    c
}
