//! Fallback chains, retries (backoff, Retry-After, budget), the response cache and batching, through `Router`.

mod common;

use common::*;
use router_core::{
    Attempts, Decision, ErrorClass, GiveUpReason, NextAttempt, Outcome, RejectReason, RequestInfo, Router,
};

fn failure(class: ErrorClass) -> Outcome {
    Outcome::failure(class, 10 * MS)
}

fn limited(retry_after: u64) -> Outcome {
    Outcome { retry_after: Some(retry_after), ..failure(ErrorClass::RateLimited) }
}

/// Sends `req` to its first endpoint and fails it with `outcome`; returns the attempt log and the router's answer.
fn first_failure(r: &mut Router, req: &RequestInfo, outcome: &Outcome, now: u64) -> (Attempts, NextAttempt) {
    let Decision::Route { endpoint, .. } = r.decide(req, now) else { panic!("expected a route") };
    r.on_dispatch(endpoint, req, now);
    r.on_result(endpoint, req, outcome, now);
    let mut attempts = Attempts::first(endpoint);
    let next = r.next_attempt(req, &mut attempts, outcome, now);
    (attempts, next)
}

// ===== fallback chains =====

const PER_CLASS: &str = r#"
[[endpoints]]
id = "a"
[[endpoints]]
id = "b"
[[endpoints]]
id = "c"
[[endpoints]]
id = "d"

[policy]
name = "primary"
kind = "fallback"
targets = ["a"]
fallbacks = { default = ["d"], rate_limited = ["b"], server = ["c", "d"] }
"#;

#[test]
fn fallback_chains_are_followed_per_error_class() {
    let r0 = router(PER_CLASS);
    let (a, b, c, d) = (idx(&r0, "a"), idx(&r0, "b"), idx(&r0, "c"), idx(&r0, "d"));
    assert_eq!(r0.fallback_chain(ErrorClass::Server), &[c, d]);
    assert_eq!(r0.fallback_chain(ErrorClass::Other), &[d], "classes without a chain use the default");
    assert_eq!(r0.retry_config().max_attempts, 3, "without a retry section: one attempt per chain step");
    for (class, want) in [(ErrorClass::RateLimited, b), (ErrorClass::Server, c), (ErrorClass::Timeout, d)] {
        let mut r = router(PER_CLASS);
        let (attempts, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &failure(class), 0);
        assert_eq!(next, NextAttempt::Retry { endpoint: want, delay: 0, fallback: true }, "{class:?}");
        assert_eq!((attempts.count, attempts.last), (2, want));
        assert!(attempts.tried.contains(a) && attempts.tried.contains(want));
    }
    // `other` is not retried by default even though it has a chain.
    let mut r = router(PER_CLASS);
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &failure(ErrorClass::Other), 0);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::NotRetryable));
}

#[test]
fn a_fallback_chain_skips_tried_and_ineligible_endpoints_and_stops_at_max_attempts() {
    let mut r = router(PER_CLASS);
    let (a, c, d) = (idx(&r, "a"), idx(&r, "c"), idx(&r, "d"));
    let req = RequestInfo::new(1, 10);
    let server = failure(ErrorClass::Server);
    let (mut attempts, next) = first_failure(&mut r, &req, &server, 0);
    assert_eq!(next, NextAttempt::Retry { endpoint: c, delay: 0, fallback: true });
    assert_eq!((attempts.count, attempts.last), (2, c));
    assert!(attempts.tried.contains(a) && attempts.tried.contains(c));
    let next = r.next_attempt(&req, &mut attempts, &server, 0);
    assert_eq!(next, NextAttempt::Retry { endpoint: d, delay: 0, fallback: true }, "c was tried: d is next");
    let next = r.next_attempt(&req, &mut attempts, &server, 0);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::MaxAttempts));
    // An unhealthy chain member is skipped.
    let mut r = router(PER_CLASS);
    r.on_health(c, false, 0);
    let (_, next) = first_failure(&mut r, &req, &server, 0);
    assert_eq!(next, NextAttempt::Retry { endpoint: d, delay: 0, fallback: true });
    // Nothing left in the chain and no same-endpoint retries configured: give up.
    let mut r = router(PER_CLASS);
    r.on_health(idx(&r, "b"), false, 0);
    let (_, next) = first_failure(&mut r, &req, &limited(S), 0);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::NoEndpoint));
}

#[test]
fn without_a_chain_the_policy_chooses_again_among_untried_endpoints() {
    let src = format!(
        "{}[policy]\nname = \"lo\"\nkind = \"least-outstanding\"\nretry = {{ max_attempts = 3 }}\n",
        endpoints(&["a", "b", "c"])
    );
    for id in 0..200 {
        let mut r = router(&src);
        let req = RequestInfo::new(id, 10);
        let server = failure(ErrorClass::Server);
        let Decision::Route { endpoint: first, .. } = r.decide(&req, 0) else { panic!() };
        r.on_dispatch(first, &req, 0);
        r.on_result(first, &req, &server, 0);
        let mut attempts = Attempts::first(first);
        let next = r.next_attempt(&req, &mut attempts, &server, 0);
        let NextAttempt::Retry { endpoint: second, delay: 0, fallback: true } = next else { panic!("{next:?}") };
        let next = r.next_attempt(&req, &mut attempts, &server, 0);
        let NextAttempt::Retry { endpoint: third, fallback: true, .. } = next else { panic!("{next:?}") };
        let mut all = [first, second, third].map(|e| e.get());
        all.sort();
        assert_eq!(all, [0, 1, 2], "each endpoint once");
    }
}

// ===== retries on the same endpoint =====

const NO_CIRCUIT: &str = "tracking = { circuit = { enabled = false } }";

fn single(retry: impl AsRef<str>) -> Router {
    let retry = retry.as_ref();
    router(&format!("{}[policy]\nname = \"one\"\nkind = \"round-robin\"\nretry = {retry}\n", endpoints(&["a"])))
}

#[test]
fn backoff_grows_exponentially_up_to_the_cap() {
    let mut r = single(
        "{ max_attempts = 6, base_delay = \"100ms\", max_delay = \"500ms\", multiplier = 2.0, jitter = \"none\" }",
    );
    let req = RequestInfo::new(1, 10);
    let server = failure(ErrorClass::Server);
    let (mut attempts, next) = first_failure(&mut r, &req, &server, 0);
    let mut delays = vec![next];
    for _ in 0..4 {
        delays.push(r.next_attempt(&req, &mut attempts, &server, 0));
    }
    let a = idx(&r, "a");
    let want: Vec<NextAttempt> = [100, 200, 400, 500, 500]
        .iter()
        .map(|ms| NextAttempt::Retry { endpoint: a, delay: ms * MS, fallback: false })
        .collect();
    assert_eq!(delays, want);
    assert_eq!(r.next_attempt(&req, &mut attempts, &server, 0), NextAttempt::GiveUp(GiveUpReason::MaxAttempts));
}

#[test]
fn full_jitter_spreads_delays_below_the_backoff() {
    let mut delays = Vec::new();
    for id in 0..500 {
        let mut r = single("{ base_delay = \"1s\", max_delay = \"10s\" }");
        let (_, next) = first_failure(&mut r, &RequestInfo::new(id, 10), &failure(ErrorClass::Timeout), 0);
        let NextAttempt::Retry { delay, .. } = next else { panic!() };
        assert!(delay <= S);
        delays.push(delay);
    }
    let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64 / S as f64;
    assert!((mean - 0.5).abs() < 0.05, "{mean}");
    delays.dedup();
    assert!(delays.len() > 400, "delays differ between requests");
}

#[test]
fn retry_after_is_honoured_on_429() {
    let retry = "{ base_delay = \"100ms\", jitter = \"none\" }";
    let mut r = single(retry);
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &limited(5 * S), 0);
    assert_eq!(next, NextAttempt::Retry { endpoint: idx(&r, "a"), delay: 5 * S, fallback: false });
    // A Retry-After shorter than the backoff does not shorten it.
    let mut r = single(retry);
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &limited(MS), 0);
    assert_eq!(next, NextAttempt::Retry { endpoint: idx(&r, "a"), delay: 100 * MS, fallback: false });
    // Switched off: the plain backoff.
    let mut r = single("{ base_delay = \"100ms\", jitter = \"none\", honor_retry_after = false }");
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &limited(5 * S), 0);
    assert_eq!(next, NextAttempt::Retry { endpoint: idx(&r, "a"), delay: 100 * MS, fallback: false });
    // With another endpoint available, a 429 fails over at once instead of waiting.
    let mut r =
        router(&format!("{}[policy]\nname = \"f\"\nkind = \"fallback\"\nretry = {retry}\n", endpoints(&["a", "b"])));
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &limited(5 * S), 0);
    assert_eq!(next, NextAttempt::Retry { endpoint: idx(&r, "b"), delay: 0, fallback: true });
}

#[test]
fn the_retry_budget_limits_retries_to_a_share_of_first_attempts() {
    // No ratio and no floor: only the minimum burst of one retry.
    let mut r = single("{ budget = { ratio = 0.0, min_per_s = 0.0 } }\n".to_owned() + NO_CIRCUIT);
    let server = failure(ErrorClass::Server);
    assert!(matches!(first_failure(&mut r, &RequestInfo::new(1, 10), &server, 0).1, NextAttempt::Retry { .. }));
    for id in 2..50 {
        let (_, next) = first_failure(&mut r, &RequestInfo::new(id, 10), &server, 0);
        assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::BudgetExhausted));
    }
    // ratio 0.5: a burst of 50 plus half the first attempts.
    let mut r = single("{ budget = { ratio = 0.5, min_per_s = 0.0 } }\n".to_owned() + NO_CIRCUIT);
    let retried = (0..1000)
        .filter(|&id| {
            matches!(first_failure(&mut r, &RequestInfo::new(id, 10), &server, 0).1, NextAttempt::Retry { .. })
        })
        .count();
    assert!((540..=560).contains(&retried), "{retried}");
    // The floor refills with time: 2 per second.
    let mut r = single("{ budget = { ratio = 0.0, min_per_s = 2.0 } }\n".to_owned() + NO_CIRCUIT);
    let mut now = 0;
    while matches!(first_failure(&mut r, &RequestInfo::new(now, 10), &server, now).1, NextAttempt::Retry { .. }) {
        now += 1;
    }
    let retried = (0..100u64)
        .filter(|k| {
            let t = now + k * S / 10;
            matches!(first_failure(&mut r, &RequestInfo::new(t, 10), &server, t).1, NextAttempt::Retry { .. })
        })
        .count();
    assert!((19..=21).contains(&retried), "10 s at 2 per second: {retried}");
}

#[test]
fn rejected_requests_earn_no_retry_budget() {
    let mut r = single("{ budget = { ratio = 0.1, min_per_s = 0.0 } }\n".to_owned() + NO_CIRCUIT);
    let server = failure(ErrorClass::Server);
    // Spend the initial allowance.
    let mut id = 0;
    while matches!(first_failure(&mut r, &RequestInfo::new(id, 10), &server, 0).1, NextAttempt::Retry { .. }) {
        id += 1;
    }
    // A thousand requests rejected while the only endpoint is down are not first attempts: no allowance.
    let a = idx(&r, "a");
    r.on_health(a, false, 0);
    for k in 0..1000 {
        assert_eq!(r.decide(&RequestInfo::new(10_000 + k, 10), 0), Decision::Reject(RejectReason::AllUnhealthy));
    }
    r.on_health(a, true, 0);
    // Five first attempts earn 0.5 of a retry, on top of less than one left over.
    let retried = (0..5)
        .filter(|k| {
            let req = RequestInfo::new(20_000 + k, 10);
            matches!(first_failure(&mut r, &req, &server, 0).1, NextAttempt::Retry { .. })
        })
        .count();
    assert!(retried <= 1, "rejections earned retries: {retried} of 5 failures retried");
}

#[test]
fn successes_and_unlisted_classes_are_not_retried() {
    let mut r = single("{ retry_on = [\"server\"] }");
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &Outcome::success(S, None, 1, 1), 0);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::Succeeded));
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &failure(ErrorClass::Timeout), 0);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::NotRetryable));
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &failure(ErrorClass::Server), 0);
    assert!(matches!(next, NextAttempt::Retry { .. }));
}

#[test]
fn a_same_endpoint_retry_waits_for_an_open_circuit() {
    let mut r = single("{ max_attempts = 5 }\ntracking = { circuit = { consecutive_failures = 1 } }");
    let (_, next) = first_failure(&mut r, &RequestInfo::new(1, 10), &failure(ErrorClass::Server), 0);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::NoEndpoint), "the only endpoint's circuit just opened");
}

// ===== response cache =====

fn cached() -> Router {
    router(&format!(
        "{}[policy]\nname = \"rr\"\nkind = \"round-robin\"\ncache = {{ ttl = \"10s\", capacity = 2 }}\n",
        endpoints(&["a", "b"])
    ))
}

fn keyed(id: u64, key: u64) -> RequestInfo {
    RequestInfo { cache_key: Some(key), ..RequestInfo::new(id, 10) }
}

#[test]
fn a_cached_response_is_a_decision_until_its_ttl() {
    let mut r = cached();
    let first = keyed(1, 42);
    let Decision::Route { endpoint, .. } = r.decide(&first, 0) else { panic!() };
    assert!(matches!(r.decide(&keyed(2, 42), 0), Decision::Route { .. }), "nothing cached before a result");
    r.on_dispatch(endpoint, &first, 0);
    r.on_result(endpoint, &first, &Outcome::success(S, None, 10, 10), S);
    assert_eq!(r.decide(&keyed(3, 42), 2 * S), Decision::CacheHit);
    assert_eq!(r.decide(&keyed(4, 42), 11 * S - 1), Decision::CacheHit);
    assert!(matches!(r.decide(&keyed(5, 42), 11 * S), Decision::Route { .. }), "expired");
    assert!(matches!(r.decide(&keyed(6, 43), 2 * S), Decision::Route { .. }), "another key");
    assert!(matches!(r.decide(&RequestInfo::new(7, 10), 2 * S), Decision::Route { .. }), "no key");
}

#[test]
fn failures_are_not_cached_and_capacity_evicts_the_oldest() {
    let mut r = cached();
    let a = idx(&r, "a");
    let q = keyed(1, 1);
    r.on_dispatch(a, &q, 0);
    r.on_result(a, &q, &failure(ErrorClass::Server), 0);
    assert!(matches!(r.decide(&keyed(2, 1), 0), Decision::Route { .. }));
    for key in [1, 2, 3] {
        let q = keyed(key, key);
        r.on_dispatch(a, &q, key);
        r.on_result(a, &q, &Outcome::success(1, None, 1, 1), key);
    }
    assert!(matches!(r.decide(&keyed(9, 1), 5), Decision::Route { .. }), "key 1 was evicted by key 3");
    assert_eq!(r.decide(&keyed(9, 2), 5), Decision::CacheHit);
    assert_eq!(r.decide(&keyed(9, 3), 5), Decision::CacheHit);
}

// ===== batching =====

const BATCHED: &str = r#"
[[endpoints]]
id = "online"
[[endpoints]]
id = "batch-api"
batch = true
price = { input_per_mtok = 0.05, output_per_mtok = 0.2 }

[policy]
name = "cost"
kind = "cost"
batching = { endpoint = "batch-api", max_size = 3, max_wait = "10m" }
"#;

fn deferrable(id: u64) -> RequestInfo {
    RequestInfo { deferrable: true, ..RequestInfo::new(id, 10) }
}

#[test]
fn deferrable_requests_are_batched_and_released_by_size() {
    let mut r = router(BATCHED);
    let batch = idx(&r, "batch-api");
    let t: Vec<Decision> = (0..4).map(|i| r.decide(&deferrable(i), i * S)).collect();
    let ticket = |d: &Decision| match d {
        Decision::Batch(t) => *t,
        other => panic!("expected a batch ticket, got {other:?}"),
    };
    for (i, d) in t.iter().enumerate() {
        assert_eq!(ticket(d).endpoint, batch);
        assert_eq!(ticket(d).batch, (i / 3) as u64);
    }
    assert_eq!(ticket(&t[0]).release, None);
    assert_eq!(ticket(&t[1]).release, None);
    assert_eq!(ticket(&t[2]).release, Some(3), "the third request fills the batch");
    assert_eq!(ticket(&t[0]).deadline, 600 * S, "held at most max_wait after the first");
    assert_eq!(ticket(&t[3]).deadline, 3 * S + 600 * S, "a new batch opens with the fourth");
    // Interactive requests never go to the batch endpoint, even though it is the cheapest.
    for i in 0..50 {
        assert_eq!(pick_id(&mut r, &RequestInfo::new(100 + i, 10), 4 * S), "online");
    }
}

#[test]
fn a_partial_batch_is_released_at_max_wait() {
    let mut r = router(BATCHED);
    assert!(matches!(r.decide(&deferrable(1), 5 * S), Decision::Batch(_)));
    assert!(matches!(r.decide(&deferrable(2), 6 * S), Decision::Batch(_)));
    assert_eq!(r.poll_batch(5 * S + 600 * S - 1), None);
    assert_eq!(r.poll_batch(5 * S + 600 * S), Some((0, 2)));
    assert_eq!(r.poll_batch(10_000 * S), None, "released once");
    let Decision::Batch(t) = r.decide(&deferrable(3), 10_000 * S) else { panic!() };
    assert_eq!((t.batch, t.deadline), (1, 10_600 * S));
}

#[test]
fn without_batching_deferrable_requests_route_normally() {
    let mut r =
        router(&BATCHED.replace("batching = { endpoint = \"batch-api\", max_size = 3, max_wait = \"10m\" }\n", ""));
    for i in 0..20 {
        assert_eq!(pick_id(&mut r, &deferrable(i), 0), "online");
    }
}

// ===== scopes (the gateway's `model` and key allow-lists) and forced circuits =====

const SCOPED: &str = r#"
[[endpoints]]
id = "a"
[[endpoints]]
id = "b"
[[endpoints]]
id = "c"

[policy]
name = "rr"
kind = "round-robin"
fallbacks = ["a"]

[[groups]]
name = "bc"
kind = "round-robin"
targets = ["b", "c"]
"#;

#[test]
fn a_scope_confines_the_decision_retries_and_fallbacks() {
    use router_core::policy::EndpointSet;
    use router_core::{Chooser, Scope};
    let mut r = router(SCOPED);
    let (a, b, c) = (idx(&r, "a"), idx(&r, "b"), idx(&r, "c"));
    let group = r.policy_index("bc").expect("the group's index");
    assert_eq!(r.policy_name(group), Some("bc"));
    let reach = r.reachable(group);
    assert!(!reach.contains(a) && reach.contains(b) && reach.contains(c));
    let mut not_bc = EndpointSet::default();
    not_bc.insert(a);
    let scope = Scope { chooser: Chooser::Policy(group), excluded: not_bc };
    for id in 0..20 {
        let req = RequestInfo::new(id, 10);
        let Decision::Route { endpoint, .. } = r.decide_in(&req, 0, &scope) else { panic!("a route") };
        assert_ne!(endpoint, a, "request {id}");
        // The root's fallback chain names `a`: the scope keeps the retry out of it.
        let mut attempts = Attempts::first(endpoint);
        let next = r.next_attempt_in(&req, &mut attempts, &failure(ErrorClass::Server), 0, &scope);
        assert!(matches!(next, NextAttempt::GiveUp(_)), "request {id}: {next:?}");
        let next = r.next_attempt(&req, &mut Attempts::first(endpoint), &failure(ErrorClass::Server), 0);
        assert_eq!(
            next,
            NextAttempt::Retry { endpoint: a, delay: 0, fallback: true },
            "unscoped, the chain is followed"
        );
    }
    // In order: the first eligible endpoint not excluded (max_attempts: the chain of one, plus one).
    let mut only_c = EndpointSet::default();
    only_c.insert(a);
    only_c.insert(b);
    let scope = Scope { chooser: Chooser::InOrder, excluded: only_c };
    assert_eq!(r.decide_in(&RequestInfo::new(99, 10), 0, &scope), Decision::Route { endpoint: c, max_attempts: 2 });
    let mut all = only_c;
    all.insert(c);
    let none = Scope { chooser: Chooser::Root, excluded: all };
    assert!(matches!(r.decide_in(&RequestInfo::new(100, 10), 0, &none), Decision::Reject(_)));
}

#[test]
fn open_circuit_takes_an_endpoint_out_for_the_cooldown() {
    let mut r = router(SCOPED);
    let a = idx(&r, "a");
    let req = RequestInfo::new(1, 10);
    assert!(r.is_eligible(a, &req, 0));
    r.open_circuit(a, 0);
    assert!(!r.is_eligible(a, &req, 0), "open at once, whatever the error counts");
    let cooldown = r.tracking().circuit.cooldown.nanos();
    assert!(!r.is_eligible(a, &req, cooldown - 1));
    assert!(r.is_eligible(a, &req, cooldown), "half-open after the cooldown");
    for id in 0..10 {
        let Decision::Route { endpoint, .. } = r.decide(&RequestInfo::new(id, 10), MS) else { panic!("a route") };
        assert_ne!(endpoint, a);
    }
}

// ===== state carried over a reload =====

#[test]
fn a_new_router_adopts_the_state_of_endpoints_it_keeps_by_id() {
    let src = |order: &[&str], extra: &str| {
        format!("{}[policy]\nname = \"p\"\nkind = \"round-robin\"\n{extra}", endpoints(order))
    };
    let mut old = router(&src(&["a", "b"], ""));
    let (a, b) = (idx(&old, "a"), idx(&old, "b"));
    let req = RequestInfo::new(1, 10);
    for t in 1..=5 {
        old.on_dispatch(b, &req, t * MS);
        old.on_result(b, &req, &Outcome::success(40 * MS, None, 10, 5), t * MS);
    }
    old.open_circuit(a, 10 * MS);
    old.on_dispatch(b, &req, 11 * MS); // still in flight on the old router
    // Endpoints reordered, one new, one gone: matched by id.
    let mut new = router(&src(&["c", "b", "a"], ""));
    assert_eq!(new.adopt_state(&old), 2);
    let (na, nb, nc) = (idx(&new, "a"), idx(&new, "b"), idx(&new, "c"));
    assert!(matches!(new.state(na).circuit, router_core::state::Circuit::Open { .. }));
    assert_eq!(new.state(nb).latency.samples(), 5);
    assert_eq!(new.state(nb).latency.value(), old.state(b).latency.value());
    assert_eq!(new.state(nb).in_flight, 0, "attempts in flight finish on the old router");
    assert_eq!(new.state(nc).latency.samples(), 0);
    for i in 0..20 {
        assert_ne!(pick(&mut new, &RequestInfo::new(i, 10), 20 * MS), Some(na), "the open circuit carried over");
    }
    // Another tracking configuration: the circuit carries over, not the averages.
    let mut other = router(&src(&["a", "b"], "tracking = { latency = { alpha = 0.5 } }\n"));
    assert_eq!(other.adopt_state(&old), 2);
    assert!(matches!(other.state(a).circuit, router_core::state::Circuit::Open { .. }));
    assert_eq!(other.state(b).latency.samples(), 0);
}
