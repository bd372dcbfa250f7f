//! The TPM estimate: the quota filter and `on_dispatch` count a request's tokens the same way, so an endpoint
//! is filled exactly to its TPM limit and not past it. And the quota windows move between feedback only when
//! some endpoint has a quota, which no decision can tell apart.

mod common;

use common::*;
use proptest::prelude::*;
use router_core::{
    Attempts, Decision, Endpoint, ErrorClass, Limits, NextAttempt, Outcome, PolicyKind, PolicySpec, Price, RequestInfo,
    Router, RouterConfig,
};

const TPM: &str = "[[endpoints]]\nid = \"a\"\nlimits = { tpm = 1000 }\n[[endpoints]]\nid = \"b\"\n\
                   [policy]\nname = \"f\"\nkind = \"fallback\"\ntargets = [\"a\", \"b\"]\n";

/// A request of `input` tokens that does not say how many it will produce (so 256 output tokens are assumed).
fn open_ended(id: u64, input: u32) -> RequestInfo {
    RequestInfo::new(id, input)
}

#[test]
fn the_filter_and_on_dispatch_count_the_same_tpm_estimate() {
    let mut r = router(TPM);
    let a = idx(&r, "a");
    // 244 input + 256 assumed output = 500 tokens.
    let first = open_ended(1, 244);
    assert_eq!(r.tracking().tpm_estimate(&first), 500);
    assert_eq!(pick_id(&mut r, &first, 0), "a");
    r.on_dispatch(a, &first, 0);
    assert_eq!(r.state(a).window_tokens(), 500, "on_dispatch counts what the filter counted");
    // 500 of 1000 used: a request of 501 tokens does not fit, one of exactly 500 does.
    assert!(!r.is_eligible(a, &open_ended(2, 245), 0), "500 + 501 > 1000");
    assert_eq!(pick_id(&mut r, &open_ended(2, 245), 0), "b");
    assert!(r.is_eligible(a, &open_ended(3, 244), 0), "500 + 500 = 1000 fits");
    let second = open_ended(3, 244);
    assert_eq!(pick_id(&mut r, &second, 0), "a");
    r.on_dispatch(a, &second, 0);
    assert_eq!(r.state(a).window_tokens(), 1000);
    // Full: even a one-token request (1 + 256) goes elsewhere.
    assert_eq!(pick_id(&mut r, &open_ended(4, 1), 0), "b");
    // A request that says how much it will produce is counted as input + that.
    let mut r = router(TPM);
    let sized = RequestInfo { expected_output_tokens: Some(600), ..RequestInfo::new(5, 400) };
    assert_eq!(pick_id(&mut r, &sized, 0), "a");
    r.on_dispatch(a, &sized, 0);
    assert_eq!(r.state(a).window_tokens(), 1000);
    assert_eq!(pick_id(&mut r, &open_ended(6, 1), 0), "b");
}

#[test]
fn on_result_adds_only_the_tokens_beyond_the_estimate() {
    let mut r = router(TPM);
    let a = idx(&r, "a");
    // 100 + 256 counted at dispatch; 300 were produced: 44 more.
    let long = open_ended(1, 100);
    r.on_dispatch(a, &long, 0);
    r.on_result(a, &long, &Outcome::success(1_000_000, None, 100, 300), 0);
    assert_eq!(r.state(a).window_tokens(), 400);
    // 100 + 256 counted; 50 produced: the reservation stays (the window never gives tokens back).
    let short = open_ended(2, 100);
    r.on_dispatch(a, &short, 0);
    r.on_result(a, &short, &Outcome::success(1_000_000, None, 100, 50), 0);
    assert_eq!(r.state(a).window_tokens(), 756);
}

// ===== window ticks =====

/// One step of a feedback sequence: a decision, or the end of the oldest attempt in flight (outcome code:
/// 0 success, 1 server error, 2 a 429 with Retry-After), each after `gap_ms` of virtual time.
#[derive(Clone, Debug)]
enum Step {
    Decide { gap_ms: u64 },
    Finish { gap_ms: u64, code: u8, latency_ms: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..1500).prop_map(|gap_ms| Step::Decide { gap_ms }),
        (0u64..1500, 0u8..3, 1u64..5000).prop_map(|(gap_ms, code, latency_ms)| Step::Finish {
            gap_ms,
            code,
            latency_ms
        }),
    ]
}

/// A router of `kind` over `n` endpoints with distinct prices, each with `limits`.
fn priced(kind: PolicyKind, n: usize, limits: Limits, seed: u64) -> RouterConfig {
    let endpoints = (0..n)
        .map(|i| Endpoint {
            price: Price { input_per_mtok: 1.0 + i as f64, output_per_mtok: 2.0 + i as f64 },
            limits,
            ..Endpoint::new(format!("e{i}"))
        })
        .collect();
    RouterConfig { endpoints, policy: PolicySpec::new("p", kind), groups: vec![], seed, quality: Default::default() }
}

/// Every decision and retry decision of a router over the steps (with their delays and reasons), with feedback
/// (circuit breaker and 429s included).
fn decisions(cfg: &RouterConfig, steps: &[Step]) -> Vec<(u64, String)> {
    let mut r = Router::new(cfg).expect("valid config");
    let (mut now, mut id, mut out) = (0u64, 0u64, Vec::new());
    let mut flying: Vec<(RequestInfo, Attempts)> = Vec::new();
    for s in steps {
        match *s {
            Step::Decide { gap_ms } => {
                now += gap_ms * MS;
                id += 1;
                let req = RequestInfo::new(id, 100 + (id % 7) as u32 * 50);
                let decision = r.decide(&req, now);
                out.push((now, format!("{decision:?}")));
                let picked = match decision {
                    Decision::Route { endpoint, .. } => Some(endpoint),
                    _ => None,
                };
                if let Some(e) = picked {
                    r.on_dispatch(e, &req, now);
                    flying.push((req, Attempts::first(e)));
                }
            }
            Step::Finish { gap_ms, code, latency_ms } => {
                now += gap_ms * MS;
                if flying.is_empty() {
                    continue;
                }
                let (req, mut attempts) = flying.remove(0);
                let o = match code {
                    0 => Outcome::success(latency_ms * MS, None, req.input_tokens, 80),
                    1 => Outcome::failure(ErrorClass::Server, latency_ms * MS),
                    _ => {
                        Outcome { retry_after: Some(latency_ms * MS), ..Outcome::failure(ErrorClass::RateLimited, MS) }
                    }
                };
                r.on_result(attempts.last, &req, &o, now);
                let next = r.next_attempt(&req, &mut attempts, &o, now);
                out.push((now, format!("{next:?}")));
                if let NextAttempt::Retry { endpoint, .. } = next {
                    r.on_dispatch(endpoint, &req, now);
                    flying.push((req, attempts));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Without any quota the router moves its windows once per window span (`Router::advance`); a quota that
    /// can never bind makes it move them at every bucket boundary. For every policy that does not weigh quota
    /// use (hybrid does, by a tiny amount under such a quota), the two make the same decisions and retry
    /// decisions over any feedback sequence spanning many buckets: nothing else reads the window sums.
    #[test]
    fn window_ticks_matter_only_with_a_quota(
        kind in prop::sample::select(vec![
            PolicyKind::RoundRobin, PolicyKind::Weighted, PolicyKind::LeastOutstanding, PolicyKind::P2c,
            PolicyKind::Latency, PolicyKind::Usage, PolicyKind::Cost, PolicyKind::Fallback,
        ]),
        n in 1usize..6,
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 1..400),
    ) {
        let free = priced(kind, n, Limits::default(), seed);
        let never = Limits { rpm: Some(u32::MAX), tpm: Some(u64::MAX / 2), ..Limits::default() };
        let ticking = priced(kind, n, never, seed);
        prop_assert_eq!(decisions(&free, &steps), decisions(&ticking, &steps));
    }
}

/// A router whose endpoints declare any RPM or TPM quota, however large, moves its windows at every bucket
/// boundary, so that its window sums are current after each decision; one without quotas moves them once per
/// window span (one minute by default).
#[test]
fn windows_move_every_bucket_with_any_quota_and_every_span_without() {
    let quota = |rpm: Option<u32>, tpm: Option<u64>| Limits { rpm, tpm, ..Limits::default() };
    let cases = [
        ("no quota", Limits::default(), false),
        ("rpm 1000", quota(Some(1000), None), true),
        ("tpm 1000", quota(None, Some(1000)), true),
        ("rpm u32::MAX", quota(Some(u32::MAX), None), true),
        ("tpm u64::MAX", quota(None, Some(u64::MAX)), true),
    ];
    for (name, limits, every_bucket) in cases {
        let mut r = Router::new(&priced(PolicyKind::RoundRobin, 1, limits, 7)).expect("valid config");
        let e = idx(&r, "e0");
        let requests = |r: &Router| r.state(e).window_requests();
        // The first decision moves the windows; without quotas the next move is due at 60 s.
        assert_eq!(pick(&mut r, &RequestInfo::new(1, 100), 0), Some(e), "{name}");
        r.on_dispatch(e, &RequestInfo::new(1, 100), 30 * S + S / 2);
        assert_eq!(requests(&r), 1, "{name}: counted in the bucket of second 30");
        assert_eq!(pick(&mut r, &RequestInfo::new(2, 100), 61 * S), Some(e), "{name}");
        assert_eq!(requests(&r), 1, "{name}: still in the window at 61 s");
        // The bucket of second 30 leaves the window at 90 s; without quotas the windows next move at 121 s.
        assert_eq!(pick(&mut r, &RequestInfo::new(3, 100), 91 * S), Some(e), "{name}");
        assert_eq!(requests(&r), if every_bucket { 0 } else { 1 }, "{name}: at 91 s");
        assert_eq!(pick(&mut r, &RequestInfo::new(4, 100), 121 * S), Some(e), "{name}");
        assert_eq!(requests(&r), 0, "{name}: every router has moved its windows by 121 s");
    }
}
