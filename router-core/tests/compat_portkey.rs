//! Portkey's retry and fallback order ([`router_core::TargetRetryConfig`]) against what its gateway does
//! (`tryTargetsRecursively` and `retryRequest`, @portkey-ai/gateway 1.15.2): retries stay on the target, a load
//! balancer never draws again, and each fallback node moves on only on its own status codes.

mod common;

use common::*;
use router_core::{Attempts, ErrorClass, GiveUpReason, NextAttempt, Outcome, RequestInfo, Router};

/// Root: load balancer over `a` (0.7) and `fb` (0.3); `fb`: fallback over `b`, `c`. Retry: 2 attempts on 429;
/// `fb` moves on after 429 or 5xx.
fn src() -> String {
    format!(
        "{}[policy]\nname = \"lb\"\nkind = \"weighted\"\ntargets = [{{ id = \"a\", weight = 0.7 }}, {{ id = \"fb\", weight = 0.3 }}]\n\
         [policy.retry]\nmax_attempts = 9\nretry_on = [\"rate_limited\", \"server\", \"timeout\", \"other\"]\n\
         [policy.target_retry]\nattempts = 2\non = [\"rate_limited\"]\nbase_delay = \"1s\"\n\
         fallback_on = {{ fb = [\"rate_limited\", \"server\"] }}\n\
         [policy.tracking.circuit]\nenabled = false\n\
         [[groups]]\nname = \"fb\"\nkind = \"fallback\"\ntargets = [\"b\", \"c\"]\n",
        endpoints(&["a", "b", "c"])
    )
}

/// A request id whose first pick is `want`.
fn request_to(r: &mut Router, want: &str) -> (RequestInfo, router_core::EndpointIdx) {
    for id in 0..1000 {
        let req = RequestInfo::new(id, 10);
        let e = pick(r, &req, 0).expect("a pick");
        if r.endpoints()[e.get()].id == want {
            return (req, e);
        }
    }
    panic!("no request goes to {want}");
}

#[test]
fn an_error_not_in_the_retry_codes_fails_without_drawing_the_load_balancer_again() {
    let mut r = router(&src());
    let (req, a) = request_to(&mut r, "a");
    let mut att = Attempts::first(a);
    let err = Outcome::failure(ErrorClass::Server, 10 * MS);
    r.on_dispatch(a, &req, 0);
    r.on_result(a, &req, &err, 10 * MS);
    // A 500 is not retried (retry on 429 only), and no fallback node is above `a`: Portkey answers the 500.
    assert_eq!(r.next_attempt(&req, &mut att, &err, 10 * MS), NextAttempt::GiveUp(GiveUpReason::NoEndpoint));
}

#[test]
fn retries_stay_on_the_target_with_doubling_backoff() {
    let mut r = router(&src());
    let (req, a) = request_to(&mut r, "a");
    let mut att = Attempts::first(a);
    let err = Outcome::failure(ErrorClass::RateLimited, 10 * MS);
    let mut seen = Vec::new();
    while let NextAttempt::Retry { endpoint, delay, fallback } = r.next_attempt(&req, &mut att, &err, S) {
        seen.push((id(&r, endpoint).to_string(), delay, fallback));
    }
    assert_eq!(seen, [("a".to_string(), S, false), ("a".to_string(), 2 * S, false)], "1 + 2 attempts on a, then 429");
}

#[test]
fn a_fallback_node_moves_on_after_its_codes_once_the_retries_are_spent() {
    let mut r = router(&src());
    let (req, b) = request_to(&mut r, "b");
    let mut att = Attempts::first(b);
    let limited = Outcome::failure(ErrorClass::RateLimited, 10 * MS);
    let mut seen = Vec::new();
    while let NextAttempt::Retry { endpoint, delay, .. } = r.next_attempt(&req, &mut att, &limited, S) {
        seen.push((id(&r, endpoint).to_string(), delay));
    }
    // b three times (retries 1 s, 2 s), then c at once, then c's retries.
    assert_eq!(
        seen,
        [("b".into(), S), ("b".into(), 2 * S), ("c".into(), 0), ("c".into(), S), ("c".into(), 2 * S)]
            .map(|(e, d): (String, u64)| (e, d))
    );
    // A 400 (`other`) is neither retried nor in fb's codes: the request fails on b.
    let mut att = Attempts::first(b);
    let bad = Outcome::failure(ErrorClass::Other, 10 * MS);
    assert_eq!(r.next_attempt(&req, &mut att, &bad, S), NextAttempt::GiveUp(GiveUpReason::NoEndpoint));
    // A 500 is not retried but fb moves on: c at once.
    let mut att = Attempts::first(b);
    let five = Outcome::failure(ErrorClass::Server, 10 * MS);
    match r.next_attempt(&req, &mut att, &five, S) {
        NextAttempt::Retry { endpoint, delay, fallback } => {
            assert_eq!((id(&r, endpoint), delay, fallback), ("c", 0, true));
        }
        other => panic!("expected the fallback to c, got {other:?}"),
    }
}

#[test]
fn target_retry_names_unknown_or_non_fallback_groups_and_excludes_group_retry() {
    let bad = src().replace("fallback_on = { fb = ", "fallback_on = { fbx = ");
    let err = Router::new(&config(&bad)).unwrap_err();
    assert_eq!(err.path, "policy.target_retry.fallback_on.fbx", "{err}");
    let not_fallback = src().replace("fallback_on = { fb = ", "fallback_on = { lb = ");
    let err = Router::new(&config(&not_fallback)).unwrap_err();
    assert!(err.message.contains("not a `fallback` policy"), "{err}");
    let both =
        src().replace("[policy.tracking.circuit]", "[policy.group_retry]\nnum_retries = 1\n[policy.tracking.circuit]");
    let err = Router::new(&config(&both)).unwrap_err();
    assert_eq!(err.path, "policy.target_retry", "{err}");
}

#[test]
fn a_retry_after_does_not_keep_a_portkey_target_out() {
    // Portkey keeps no state between requests: after b's 429 with Retry-After 60 s, the next request's fallback
    // still goes to b first (routesim's own throttling would skip it for a minute).
    let mut r = router(&src());
    let (req, b) = request_to(&mut r, "b");
    r.on_dispatch(b, &req, 0);
    let mut limited = Outcome::failure(ErrorClass::RateLimited, 10 * MS);
    limited.retry_after = Some(60 * S);
    r.on_result(b, &req, &limited, 10 * MS);
    assert!(r.is_eligible(b, &req, 20 * MS), "b is not throttled by its Retry-After");
}

#[test]
fn a_fallback_never_leaves_the_requests_scope() {
    use router_core::policy::EndpointSet;
    use router_core::{Chooser, Decision, Scope};
    // fb's next target after b is c: a scope without c gives up instead of moving there.
    let mut r = router(&src());
    let (b, c) = (idx(&r, "b"), idx(&r, "c"));
    let mut no_c = EndpointSet::default();
    no_c.insert(c);
    let scope = Scope { chooser: Chooser::Root, excluded: no_c };
    let five = Outcome::failure(ErrorClass::Server, 10 * MS);
    let req = (0..1000)
        .map(|id| RequestInfo::new(id, 10))
        .find(|req| r.decide_in(req, 0, &scope) == Decision::Route { endpoint: b, max_attempts: 9 })
        .expect("a request routed to b");
    let next = r.next_attempt_in(&req, &mut Attempts::first(b), &five, S, &scope);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::NoEndpoint), "c is out of scope");
    match r.next_attempt(&req, &mut Attempts::first(b), &five, S) {
        NextAttempt::Retry { endpoint, .. } => assert_eq!(endpoint, c, "unscoped, fb moves on to c"),
        other => panic!("expected the fallback to c, got {other:?}"),
    }
    // A fallback whose next target is a load balancer over b and c draws among the scope's endpoints only.
    let nested = format!(
        "{}[policy]\nname = \"fb\"\nkind = \"fallback\"\ntargets = [\"a\", \"lb\"]\n\
         [policy.retry]\nmax_attempts = 9\nretry_on = [\"server\"]\nbudget = \"unlimited\"\n\
         [policy.target_retry]\nattempts = 0\non = []\nbase_delay = \"1s\"\n\
         [policy.tracking.circuit]\nenabled = false\n\
         [[groups]]\nname = \"lb\"\nkind = \"weighted\"\ntargets = [\"b\", \"c\"]\n",
        endpoints(&["a", "b", "c"])
    );
    let mut r = router(&nested);
    let (a, b, c) = (idx(&r, "a"), idx(&r, "b"), idx(&r, "c"));
    let mut no_c = EndpointSet::default();
    no_c.insert(c);
    let scope = Scope { chooser: Chooser::Root, excluded: no_c };
    let mut unscoped_c = 0;
    for id in 0..200 {
        let req = RequestInfo::new(id, 10);
        let next = r.next_attempt_in(&req, &mut Attempts::first(a), &five, S, &scope);
        assert_eq!(next, NextAttempt::Retry { endpoint: b, delay: 0, fallback: true }, "request {id}");
        if let NextAttempt::Retry { endpoint, .. } = r.next_attempt(&req, &mut Attempts::first(a), &five, S) {
            unscoped_c += u32::from(endpoint == c);
        }
    }
    assert!(unscoped_c > 50, "unscoped, the load balancer draws c too ({unscoped_c} of 200)");
}

/// Issue 29: Portkey's code lists name statuses, not classes. `retry.on_status_codes` [429, 503] retries a 503 on
/// the same target and not a 500 (both are `server`); a fallback on [429, 500] moves on after a 500 and not after
/// a 503. Before, the import turned both lists into the `server` class, which retried and moved on after both.
#[test]
fn status_lists_tell_a_500_from_a_503() {
    let exact = src().replace("on = [\"rate_limited\"]", "on = [429, 503]").replace(
        "fallback_on = { fb = [\"rate_limited\", \"server\"] }",
        "fallback_on = { fb = [\"rate_limited\", 500] }",
    );
    let cfg = config(&exact);
    assert_eq!(
        cfg.policy.target_retry.as_ref().map(|t| t.on.clone()),
        Some(vec![router_core::ErrorMatch::Status(429), router_core::ErrorMatch::Status(503)]),
        "a number is a status"
    );
    let mut r = router(&exact);
    let (req, a) = request_to(&mut r, "a");
    let fails = |code: u16| Outcome::failure(ErrorClass::Server, 10 * MS).with_status(code);
    // On `a` (no fallback above it): a 503 is retried on `a` after 1 s, a 500 is answered.
    let next = r.next_attempt(&req, &mut Attempts::first(a), &fails(503), S);
    assert_eq!(next, NextAttempt::Retry { endpoint: a, delay: S, fallback: false }, "503 retried");
    let next = r.next_attempt(&req, &mut Attempts::first(a), &fails(500), S);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::NoEndpoint), "500 not retried");
    // A 5xx with no status (a broken connection) is neither 500 nor 503.
    let next = r.next_attempt(&req, &mut Attempts::first(a), &Outcome::failure(ErrorClass::Server, MS), S);
    assert_eq!(next, NextAttempt::GiveUp(GiveUpReason::NoEndpoint), "no status, not in [429, 503]");
    // On `b` under fb (moves on after 429 or 500): a 500 goes to c at once; a 503 is retried on b, and once
    // b's retries are spent the request fails there, since fb does not move on after a 503.
    let (req, b) = request_to(&mut r, "b");
    let c = idx(&r, "c");
    let next = r.next_attempt(&req, &mut Attempts::first(b), &fails(500), S);
    assert_eq!(next, NextAttempt::Retry { endpoint: c, delay: 0, fallback: true }, "500: fb moves on");
    let mut att = Attempts::first(b);
    let mut seen = Vec::new();
    let last = loop {
        match r.next_attempt(&req, &mut att, &fails(503), S) {
            NextAttempt::Retry { endpoint, .. } => seen.push(id(&r, endpoint).to_string()),
            give_up => break give_up,
        }
    };
    assert_eq!(seen, ["b", "b"], "503: b's two retries");
    assert_eq!(last, NextAttempt::GiveUp(GiveUpReason::NoEndpoint), "503: fb does not move on");
}

#[test]
fn an_error_list_names_classes_and_statuses_and_rejects_anything_else() {
    use router_core::ErrorMatch;
    let parse = |s: &str| toml::from_str::<std::collections::BTreeMap<String, Vec<ErrorMatch>>>(&format!("on = {s}"));
    let ok = parse("[\"server\", 503, \"timeout\"]").expect("classes and statuses");
    assert_eq!(
        ok["on"],
        [ErrorMatch::Class(ErrorClass::Server), ErrorMatch::Status(503), ErrorMatch::Class(ErrorClass::Timeout)]
    );
    for bad in ["[\"5xx\"]", "[99]", "[600]", "[-1]", "[5.0]"] {
        let err = parse(bad).expect_err(bad).to_string();
        assert!(
            err.contains("an error class (rate_limited, server, timeout, other) or an HTTP status code"),
            "{bad}: {err}"
        );
    }
    let written = toml::to_string(&std::collections::BTreeMap::from([("on", ok["on"].clone())])).expect("serialize");
    assert_eq!(written.trim(), "on = [\"server\", 503, \"timeout\"]");
}
