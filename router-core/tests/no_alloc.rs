//! The hot path does not allocate: after warm-up, `decide` + `on_dispatch` + `on_result` for every policy kind,
//! the retry path (`next_attempt`), cache hits, batching and health updates make zero heap allocations.
//!
//! A counting global allocator counts allocations made by the current thread only, so the test harness's
//! other threads do not disturb the count.

#[path = "common/workload.rs"]
mod workload;

use router_core::{
    Attempts, BatchConfig, CacheConfig, Decision, Duration, Endpoint, ErrorClass, FallbackSpec, NextAttempt, Outcome,
    PolicyKind, PolicySpec, RetryConfig, TargetSpec,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use workload::Driver;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn decide_and_feedback_do_not_allocate_for_any_policy() {
    for kind in PolicyKind::ALL {
        for n in [4, 16, 64] {
            let mut d = Driver::new(kind, n);
            for _ in 0..5_000 {
                d.step();
            }
            let mut routed = 0;
            let a = allocations(|| {
                for _ in 0..20_000 {
                    if matches!(std::hint::black_box(d.step()), Decision::Route { .. }) {
                        routed += 1;
                    }
                }
            });
            assert_eq!(a, 0, "{} at {n} endpoints allocated {a} times", kind.name());
            assert_eq!(routed, 20_000, "{} at {n}: every request is routed", kind.name());
        }
    }
}

#[test]
fn nested_round_robins_under_scoring_policies_do_not_allocate() {
    // Round robins asked speculatively by scoring policies journal their cursor moves: the journal's capacity
    // is reserved up front.
    for root in [PolicyKind::Cost, PolicyKind::Hybrid, PolicyKind::P2c, PolicyKind::Weighted, PolicyKind::Latency] {
        let mut cfg = workload::config(root, 16);
        cfg.groups.clear();
        let mut groups = Vec::new();
        for g in 0..4 {
            let mut rr = PolicySpec::new(format!("rr{g}"), PolicyKind::RoundRobin);
            rr.targets = (0..4).map(|k| TargetSpec::Name(format!("e{}", g * 4 + k))).collect();
            groups.push(rr);
        }
        let mut inner = PolicySpec::new("inner", PolicyKind::LeastOutstanding);
        inner.targets = vec![TargetSpec::Name("rr2".into()), TargetSpec::Name("rr3".into())];
        groups.push(inner);
        cfg.policy.targets = ["rr0", "rr1", "inner"].map(|n| TargetSpec::Name(n.into())).to_vec();
        cfg.groups = groups;
        let mut d =
            Driver { router: router_core::Router::new(&cfg).unwrap(), reqs: workload::requests(), now: 0, i: 0 };
        for _ in 0..2_000 {
            d.step();
        }
        let a = allocations(|| {
            for _ in 0..10_000 {
                std::hint::black_box(d.step());
            }
        });
        assert_eq!(a, 0, "{} over nested round robins allocated {a} times", root.name());
    }
}

/// A driver whose router also has fallbacks, retries, a cache and batching.
fn full(kind: PolicyKind) -> Driver {
    let mut cfg = workload::config(kind, 16);
    cfg.endpoints.push(Endpoint { batch: true, ..Endpoint::new("bulk") });
    cfg.policy.fallbacks = Some(FallbackSpec::List(vec!["e3".into(), "e5".into(), "e7".into()]));
    cfg.policy.retry = Some(RetryConfig { max_attempts: 4, ..RetryConfig::default() });
    cfg.policy.cache = Some(CacheConfig { ttl: Duration::from_secs(2), capacity: 64 });
    cfg.policy.batching =
        Some(BatchConfig { endpoint: "bulk".into(), max_size: 8, max_wait: Duration::from_millis(500) });
    Driver { router: router_core::Router::new(&cfg).unwrap(), reqs: workload::requests(), now: 0, i: 0 }
}

/// One request through the whole protocol: cache keys, deferrable requests, failures of every class with
/// retries and fallbacks, health checks and batch polls.
fn full_step(d: &mut Driver) {
    d.i += 1;
    d.now += 1_000_000;
    let (i, now) = (d.i, d.now);
    let k = (i % d.reqs.len() as u64) as usize;
    let req = &mut d.reqs[k];
    req.id = i;
    req.cache_key = (i % 3 == 0).then_some(i % 200);
    req.deferrable = i % 17 == 0;
    let r = &mut d.router;
    if let Decision::Route { endpoint, .. } = r.decide(req, now) {
        let mut attempts = Attempts::first(endpoint);
        let mut ep = endpoint;
        loop {
            r.on_dispatch(ep, req, now);
            let outcome = match (i + attempts.count as u64) % 11 {
                0 => Outcome::failure(ErrorClass::Server, 50_000_000),
                1 => Outcome { retry_after: Some(200_000_000), ..Outcome::failure(ErrorClass::RateLimited, 1_000_000) },
                2 => Outcome::failure(ErrorClass::Timeout, 30_000_000_000),
                3 if i % 2 == 0 => Outcome::failure(ErrorClass::Other, 1_000_000),
                _ => Outcome::success(400_000_000, Some(80_000_000), req.input_tokens, 150),
            };
            r.on_result(ep, req, &outcome, now);
            match r.next_attempt(req, &mut attempts, &outcome, now) {
                NextAttempt::Retry { endpoint, .. } => ep = endpoint,
                NextAttempt::GiveUp(_) => break,
            }
        }
    }
    if i % 100 == 0 {
        let e = router_core::EndpointIdx((i / 100 % 16) as u16);
        r.on_health(e, i % 300 != 0, now);
    }
    let _ = r.poll_batch(now);
}

#[test]
fn retries_fallbacks_cache_and_batching_do_not_allocate() {
    for kind in PolicyKind::ALL {
        let mut d = full(kind);
        for _ in 0..20_000 {
            full_step(&mut d);
        }
        let a = allocations(|| {
            for _ in 0..50_000 {
                full_step(&mut d);
            }
        });
        assert_eq!(a, 0, "{} allocated {a} times on the full protocol", kind.name());
    }
}

/// LiteLLM's model groups, cooldowns and retry-then-fallback order (`cooldown`, `group_retry`) on the full
/// protocol: no allocation either.
#[test]
fn litellm_cooldowns_and_group_retries_do_not_allocate() {
    for kind in
        [PolicyKind::LitellmLatency, PolicyKind::LitellmLeastBusy, PolicyKind::LitellmUsageV2, PolicyKind::LitellmCost]
    {
        let mut cfg = workload::config(kind, 16);
        let half = |from: usize| (from..from + 8).map(|i| TargetSpec::Name(format!("e{i}"))).collect::<Vec<_>>();
        let mut g1 = PolicySpec::new("g1", kind);
        g1.targets = half(0);
        let mut g2 = PolicySpec::new("g2", kind);
        g2.targets = half(8);
        cfg.groups = vec![g1, g2];
        let mut root = PolicySpec::new("root", PolicyKind::Weighted);
        root.targets = vec![TargetSpec::Name("g1".into()), TargetSpec::Name("g2".into())];
        let mut tracking = router_core::TrackingConfig::default();
        tracking.circuit.enabled = false;
        root.tracking = Some(tracking);
        root.cooldown = Some(router_core::CooldownConfig {
            allowed_fails: None,
            cooldown_time: Duration::from_millis(300),
            single_deployment: vec![],
        });
        root.group_retry = Some(router_core::GroupRetryConfig {
            num_retries: 2,
            retry_after: Duration::ZERO,
            fallbacks: [("g1".to_string(), vec!["g2".to_string()]), ("g2".to_string(), vec!["g1".to_string()])]
                .into_iter()
                .collect(),
        });
        root.retry = Some(RetryConfig { max_attempts: 9, budget: None, ..RetryConfig::default() });
        cfg.policy = root;
        let mut d =
            Driver { router: router_core::Router::new(&cfg).unwrap(), reqs: workload::requests(), now: 0, i: 0 };
        for _ in 0..20_000 {
            full_step(&mut d);
        }
        let a = allocations(|| {
            for _ in 0..50_000 {
                full_step(&mut d);
            }
        });
        assert_eq!(a, 0, "{} with cooldowns and group retries allocated {a} times", kind.name());
    }
}

/// A cascade's verification and escalation (issue 30) do not allocate either.
#[test]
fn cascade_escalation_does_not_allocate() {
    let mut d = Driver::new(PolicyKind::Cascade, 16);
    for _ in 0..5_000 {
        d.step();
    }
    let mut escalated = 0;
    let a = allocations(|| {
        for k in 0..20_000u64 {
            let req = &d.reqs[(k % d.reqs.len() as u64) as usize];
            let Decision::Route { endpoint, .. } = d.router.decide(req, d.now) else { continue };
            let mut attempts = Attempts::first(endpoint);
            let mut at = endpoint;
            while d.router.verification(req, at).is_some() {
                match d.router.escalate(req, &mut attempts, d.now) {
                    NextAttempt::Retry { endpoint, .. } => {
                        at = endpoint;
                        escalated += 1;
                    }
                    NextAttempt::GiveUp(_) => break,
                }
            }
            d.now += 1_000_000;
        }
    });
    assert!(escalated > 20_000, "the cascade escalated ({escalated})");
    assert_eq!(a, 0, "cascade verification and escalation allocated {a} times");
}
