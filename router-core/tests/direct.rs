//! The direct decision (`src/policy/direct.rs`) against the general one, over random routers and events.
//!
//! A root of kind latency (no slow threshold), least-outstanding, cost or oracle over endpoints only is decided
//! directly from the scoreboard; test builds (debug assertions on) decide every such request the general way
//! too and assert the same pick and the same filter counts (`Router::select`). These properties drive that
//! comparison through random endpoints (limits, capabilities), random requests, failures with Retry-After,
//! health changes, exclusions and retries, so that both ways meet every filter verdict; and they check what
//! any decision must satisfy (an eligible endpoint in scope, never a rejection while one is eligible).

mod common;

use common::{MS, S};
use proptest::prelude::*;
use router_core::policy::{EndpointSet, PolicyIdx};
use router_core::{
    Attempts, Chooser, Decision, Endpoint, EndpointIdx, ErrorClass, Limits, NextAttempt, Outcome, PolicyKind,
    PolicySpec, Price, RequestInfo, Router, RouterConfig, Scope,
};

/// One endpoint: `(rpm, tpm, concurrency, context window, vision, price in, price out)`.
type Ep = (Option<u32>, Option<u64>, Option<u32>, Option<u32>, bool, f64, f64);

fn endpoint() -> impl Strategy<Value = Ep> {
    (
        prop::option::of(1u32..20),
        prop::option::of(1_000u64..20_000),
        prop::option::of(1u32..4),
        prop::option::of(500u32..5_000),
        any::<bool>(),
        0.0f64..3.0,
        0.0f64..3.0,
    )
}

fn config(eps: &[Ep], kind: PolicyKind, buffer: f64, subset: u64) -> RouterConfig {
    let endpoints: Vec<Endpoint> = eps
        .iter()
        .enumerate()
        .map(|(i, &(rpm, tpm, concurrency, context, vision, pi, po))| Endpoint {
            price: Price { input_per_mtok: pi.floor(), output_per_mtok: po.floor() },
            limits: Limits { rpm, tpm, concurrency, context_window: context },
            capabilities: if vision { vec!["vision".into()] } else { vec![] },
            ..Endpoint::new(format!("e{i}"))
        })
        .collect();
    let mut policy = PolicySpec::new("root", kind);
    // A subset of the endpoints as targets, in an order of their own (or, empty, every endpoint).
    let mut targets: Vec<usize> = (0..eps.len()).filter(|i| subset >> i & 1 == 1).collect();
    if subset >> 40 & 1 == 1 {
        targets.reverse();
    }
    policy.targets = targets.iter().map(|i| router_core::TargetSpec::Name(format!("e{i}"))).collect();
    if kind == PolicyKind::Latency {
        policy.buffer = Some(buffer);
    }
    let mut tracking = router_core::TrackingConfig::default();
    tracking.circuit.consecutive_failures = 2;
    tracking.circuit.cooldown = router_core::Duration::from_secs(2);
    policy.tracking = Some(tracking);
    RouterConfig { endpoints, policy, groups: vec![], seed: 7, quality: Default::default() }
}

const KINDS: [PolicyKind; 4] =
    [PolicyKind::Latency, PolicyKind::LeastOutstanding, PolicyKind::Cost, PolicyKind::Oracle];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every decision and retry of a directly decided root, through random events: the debug build's
    /// comparison with the general path holds (it panics otherwise), and every pick is eligible and in scope.
    #[test]
    fn direct_decisions_are_the_general_ones(
        eps in prop::collection::vec(endpoint(), 1..7),
        kind in 0usize..4,
        buffer in prop_oneof![Just(0.0), 0.0f64..0.5],
        subset in any::<u64>(),
        // Each event: (what, an endpoint, tokens, a choice).
        events in prop::collection::vec((0u8..8, 0usize..8, 0u32..6_000, any::<u8>()), 1..120),
    ) {
        let cfg = config(&eps, KINDS[kind], buffer, subset);
        let Ok(mut router) = Router::new(&cfg) else { return Ok(()) };
        let n = eps.len();
        let mut now = 0;
        let mut flight: Vec<(EndpointIdx, RequestInfo, Attempts)> = Vec::new();
        for (i, &(what, e, tokens, choice)) in events.iter().enumerate() {
            now += (choice as u64 % 7) * 150 * MS;
            let mut req = RequestInfo::new(i as u64, tokens);
            req.expected_output_tokens = (choice % 3 != 0).then_some(tokens / 4);
            if choice % 11 == 0 {
                req.required_capabilities = vec!["vision".into()];
            }
            match what {
                0..=3 => {
                    let mut excluded = EndpointSet::default();
                    if what == 3 {
                        excluded.insert(EndpointIdx((e % n) as u16));
                    }
                    let scope = Scope { chooser: Chooser::Root, excluded };
                    match router.decide_in(&req, now, &scope) {
                        Decision::Route { endpoint, .. } => {
                            prop_assert!(!excluded.contains(endpoint));
                            prop_assert!(router.is_eligible(endpoint, &req, now), "{endpoint} is eligible");
                            router.on_dispatch(endpoint, &req, now);
                            flight.push((endpoint, req, Attempts::first(endpoint)));
                        }
                        Decision::Reject(_) => {
                            for k in 0..n {
                                let k = EndpointIdx(k as u16);
                                prop_assert!(
                                    excluded.contains(k) || !router.reachable(PolicyIdx(0)).contains(k)
                                        || !router.is_eligible(k, &req, now),
                                    "rejected while {k} is eligible"
                                );
                            }
                        }
                        other => prop_assert!(false, "unexpected {other:?}"),
                    }
                }
                4..=6 if !flight.is_empty() => {
                    let (ep, req, mut attempts) = flight.remove(e % flight.len());
                    let outcome = match what {
                        4 => Outcome::success(300 * MS + tokens as u64 * MS, None, req.input_tokens, tokens),
                        5 => Outcome { retry_after: (choice % 2 == 0).then_some(S), ..Outcome::failure(ErrorClass::RateLimited, 50 * MS) },
                        _ => Outcome::failure(ErrorClass::Server, 80 * MS),
                    };
                    router.on_result(ep, &req, &outcome, now);
                    if let NextAttempt::Retry { endpoint, .. } = router.next_attempt(&req, &mut attempts, &outcome, now) {
                        router.on_dispatch(endpoint, &req, now);
                        flight.push((endpoint, req, attempts));
                    }
                }
                _ => router.on_health(EndpointIdx((e % n) as u16), choice % 4 != 0, now),
            }
        }
    }
}
