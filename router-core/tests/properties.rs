//! Property tests over random configurations and random event sequences.
//!
//! - Building a router from any configuration, however wild, returns `Ok` or `Err` and never panics; a router
//!   that builds survives any sequence of calls.
//! - A decision never names an unknown, open-circuit, unhealthy or quota-exhausted endpoint, nor one outside
//!   the policy's targets, and never rejects while one of its targets is eligible. A fallback never names an
//!   endpoint already tried or ineligible.
//! - Weighted random converges to its weights; round robin is exactly fair over the eligible targets.

mod common;

use common::{MS, S};
use proptest::prelude::*;
use router_core::condition::RawValue;
use router_core::state::Circuit;
use router_core::{
    Attempts, BatchConfig, BudgetConfig, CacheConfig, Decision, Duration, Endpoint, EndpointIdx, ErrorClass,
    FallbackSpec, HybridWeights, Limits, MetaValue, NextAttempt, Outcome, PolicyKind, PolicySpec, Price, RequestInfo,
    RetryConfig, Router, RouterConfig, RuleSpec, TargetSpec, TrackingConfig, VerifierSpec,
};
use std::collections::BTreeMap;

// ===== strategies: valid-ish configurations =====

#[derive(Clone, Debug)]
struct EpParams {
    rpm: Option<u32>,
    tpm: Option<u64>,
    concurrency: Option<u32>,
    context: Option<u32>,
    tier: u8,
    price_in: f64,
    price_out: f64,
    weight: f64,
    vision: bool,
}

fn ep_params() -> impl Strategy<Value = EpParams> {
    (
        (prop::option::of(1u32..30), prop::option::of(2_000u64..20_000), prop::option::of(1u32..4)),
        (prop::option::of(600u32..5_000), 0u8..3),
        (0.0f64..10.0, 0.0f64..30.0, 0.1f64..5.0, any::<bool>()),
    )
        .prop_map(|((rpm, tpm, concurrency), (context, tier), (price_in, price_out, weight, vision))| EpParams {
            rpm,
            tpm,
            concurrency,
            context,
            tier,
            price_in,
            price_out,
            weight,
            vision,
        })
}

#[derive(Clone, Debug)]
struct PolicyParams {
    kind: usize,
    inner_kind: usize,
    subset: u64,
    buffer: f64,
    threshold: f64,
    weights: [f64; 4],
    ceiling_s: Option<u64>,
    slow_s: Option<u64>,
    sticky_default: bool,
    fallbacks: Vec<usize>,
    per_class: bool,
    max_attempts: Option<u32>,
    same_endpoint: bool,
    budget: Option<(f64, f64)>,
    consecutive: u32,
    cooldown_s: u64,
    cache: bool,
    batching: Option<u32>,
}

fn policy_params() -> impl Strategy<Value = PolicyParams> {
    (
        (0usize..11, 0usize..11, any::<u64>(), 0.0f64..0.5, 0.05f64..0.95),
        (prop::array::uniform4(0.0f64..1.0), prop::option::of(1u64..30), prop::option::of(1u64..30), any::<bool>()),
        (prop::collection::vec(0usize..8, 0..4), any::<bool>(), prop::option::of(1u32..5), any::<bool>()),
        (prop::option::of((0.0f64..1.0, 0.0f64..5.0)), 0u32..5, 1u64..20, any::<bool>(), prop::option::of(1u32..5)),
    )
        .prop_map(|(a, b, c, d)| PolicyParams {
            kind: a.0,
            inner_kind: a.1,
            subset: a.2,
            buffer: a.3,
            threshold: a.4,
            weights: b.0,
            ceiling_s: b.1,
            slow_s: b.2,
            sticky_default: b.3,
            fallbacks: c.0,
            per_class: c.1,
            max_attempts: c.2,
            same_endpoint: c.3,
            budget: d.0,
            consecutive: d.1,
            cooldown_s: d.2,
            cache: d.3,
            batching: d.4,
        })
}

/// A router config and, for each endpoint, whether the root policy may route to it.
fn build(eps: &[EpParams], p: &PolicyParams) -> (RouterConfig, Vec<bool>) {
    let n = eps.len();
    let mut endpoints: Vec<Endpoint> = eps
        .iter()
        .enumerate()
        .map(|(i, e)| Endpoint {
            tier: e.tier,
            price: Price { input_per_mtok: e.price_in, output_per_mtok: e.price_out },
            limits: Limits { rpm: e.rpm, tpm: e.tpm, concurrency: e.concurrency, context_window: e.context },
            capabilities: if e.vision { vec!["vision".into()] } else { vec![] },
            weight: e.weight,
            ..Endpoint::new(format!("e{i}"))
        })
        .collect();
    let kind = |k: usize| PolicyKind::ALL[k % PolicyKind::ALL.len()];
    let mut kind_root = kind(p.kind);
    let mut inner_kind = kind(p.inner_kind);
    if inner_kind == PolicyKind::Conditional {
        inner_kind = PolicyKind::RoundRobin;
    }
    // A subset of the endpoints as the root's targets (never empty).
    let mut allowed: Vec<bool> = (0..n).map(|i| p.subset >> i & 1 == 1).collect();
    if !allowed.iter().any(|&a| a) {
        allowed = vec![true; n];
    }
    let names: Vec<TargetSpec> = (0..n).filter(|&i| allowed[i]).map(|i| TargetSpec::Name(format!("e{i}"))).collect();
    let mut groups = Vec::new();
    let configure = |spec: &mut PolicySpec, k: PolicyKind| match k {
        PolicyKind::Latency => {
            spec.buffer = Some(p.buffer);
            spec.slow_threshold = p.slow_s.map(Duration::from_secs);
        }
        PolicyKind::Usage => {
            spec.threshold = Some(p.threshold);
            spec.tiers = Some(BTreeMap::from([("simple".to_string(), 0), ("complex".to_string(), 2)]));
        }
        PolicyKind::Hybrid => {
            let w = p.weights;
            spec.weights = Some(HybridWeights { cost: w[0] + 0.01, latency: w[1], load: w[2], quota: w[3] });
            spec.buffer = Some(p.buffer);
            spec.latency_ceiling = p.ceiling_s.map(Duration::from_secs);
        }
        PolicyKind::Sticky => {
            spec.key = Some("user".into());
            spec.default = p.sticky_default.then(|| "e0".to_string());
        }
        _ => {}
    };
    let mut root = PolicySpec::new("root", kind_root);
    if kind_root == PolicyKind::Conditional {
        // Rules to an endpoint and to a group; the default group covers every endpoint, so the conditional
        // as a whole may route anywhere.
        let mut inner = PolicySpec::new("inner", inner_kind);
        configure(&mut inner, inner_kind);
        if inner_kind == PolicyKind::Sticky {
            inner.default = None;
        }
        groups.push(inner);
        let first = (0..n).find(|&i| allowed[i]).unwrap_or(0);
        root.rules = vec![
            RuleSpec {
                when: RawValue::Map(BTreeMap::from([("user".to_string(), RawValue::Str("u1".into()))])),
                target: format!("e{first}"),
            },
            RuleSpec {
                when: RawValue::Map(BTreeMap::from([(
                    "input_tokens".to_string(),
                    RawValue::Map(BTreeMap::from([("$gt".to_string(), RawValue::Num(1000.0))])),
                )])),
                target: "inner".into(),
            },
        ];
        root.default = Some("inner".into());
        allowed = vec![true; n];
    } else {
        root.targets = names;
        configure(&mut root, kind_root);
        if kind_root == PolicyKind::Sticky && root.default.is_some() && !allowed[0] {
            root.default = None;
        }
    }
    let chain: Vec<String> = p.fallbacks.iter().filter(|&&i| i < n).map(|&i| format!("e{i}")).collect();
    if !chain.is_empty() {
        root.fallbacks = Some(if p.per_class {
            FallbackSpec::PerClass(router_core::config::PerClassFallbacks {
                server: Some(chain.clone()),
                rate_limited: Some(chain.iter().rev().cloned().collect()),
                ..Default::default()
            })
        } else {
            FallbackSpec::List(chain)
        });
    }
    if let Some(m) = p.max_attempts {
        root.retry = Some(RetryConfig {
            max_attempts: m,
            same_endpoint: p.same_endpoint,
            budget: p.budget.map(|(ratio, min_per_s)| BudgetConfig { ratio, min_per_s }),
            ..RetryConfig::default()
        });
    }
    let mut tracking = TrackingConfig::default();
    tracking.circuit.consecutive_failures = p.consecutive;
    tracking.circuit.min_requests = 5;
    tracking.circuit.cooldown = Duration::from_secs(p.cooldown_s);
    root.tracking = Some(tracking);
    if p.cache {
        root.cache = Some(CacheConfig { ttl: Duration::from_secs(5), capacity: 3 });
    }
    if let Some(size) = p.batching {
        endpoints.push(Endpoint { batch: true, ..Endpoint::new("bulk") });
        root.batching =
            Some(BatchConfig { endpoint: "bulk".into(), max_size: size, max_wait: Duration::from_secs(30) });
        allowed.push(false);
    }
    if kind_root == PolicyKind::Weighted && root.targets.is_empty() {
        kind_root = PolicyKind::RoundRobin;
        root.kind = kind_root;
    }
    (RouterConfig { endpoints, policy: root, groups, seed: p.subset, quality: Default::default() }, allowed)
}

// ===== strategies: events =====

#[derive(Clone, Debug)]
enum Op {
    Decide { input: u32, output: Option<u32>, user: u8, class: u8, deferrable: bool, vision: bool, key: Option<u8> },
    Finish { which: usize, outcome: u8, latency_ms: u64, retry_after_ms: Option<u64> },
    Health { ep: usize, healthy: bool },
    Advance { ms: u64 },
    PollBatch,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (10u32..1500, prop::option::of(10u32..1000), 0u8..6, 0u8..3, prop::bool::weighted(0.1), prop::bool::weighted(0.2), prop::option::of(0u8..4))
            .prop_map(|(input, output, user, class, deferrable, vision, key)| Op::Decide { input, output, user, class, deferrable, vision, key }),
        5 => (any::<usize>(), 0u8..8, 1u64..40_000, prop::option::of(1u64..20_000))
            .prop_map(|(which, outcome, latency_ms, retry_after_ms)| Op::Finish { which, outcome, latency_ms, retry_after_ms }),
        1 => (0usize..8, prop::bool::weighted(0.7)).prop_map(|(ep, healthy)| Op::Health { ep, healthy }),
        2 => prop_oneof![0u64..50, 0u64..5_000, 0u64..120_000].prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::PollBatch),
    ]
}

fn request(id: u64, op: &Op) -> RequestInfo {
    let Op::Decide { input, output, user, class, deferrable, vision, key } = *op else { unreachable!() };
    let mut r = RequestInfo::new(id, input);
    r.expected_output_tokens = output;
    if user < 5 {
        r.metadata.push(("user".into(), MetaValue::Str(format!("u{user}"))));
    }
    r.task_class = match class {
        0 => Some("simple".into()),
        1 => Some("complex".into()),
        _ => None,
    };
    r.deferrable = deferrable;
    if vision {
        r.required_capabilities.push("vision".into());
    }
    r.cache_key = key.map(u64::from);
    r
}

fn outcome(code: u8, latency: u64, retry_after: Option<u64>, req: &RequestInfo) -> Outcome {
    let class = match code {
        0..=3 => {
            return Outcome::success(
                latency,
                Some(latency / 5),
                req.input_tokens,
                req.expected_output_tokens.unwrap_or(200),
            );
        }
        4 => ErrorClass::RateLimited,
        5 => ErrorClass::Server,
        6 => ErrorClass::Timeout,
        _ => ErrorClass::Other,
    };
    Outcome { retry_after, ..Outcome::failure(class, latency) }
}

/// Checks that `e` is a legitimate choice for `req` at `now`.
fn assert_legit(
    r: &Router,
    e: EndpointIdx,
    req: &RequestInfo,
    now: u64,
    allowed: &[bool],
) -> Result<(), TestCaseError> {
    prop_assert!(e.get() < r.endpoints().len(), "unknown endpoint {e}");
    prop_assert!(allowed[e.get()], "endpoint {e} is not a target of the policy");
    prop_assert!(r.is_eligible(e, req, now), "ineligible endpoint {e}");
    let st = r.state(e);
    let ep = &r.endpoints()[e.get()];
    prop_assert!(!matches!(st.circuit, Circuit::Open { until } if now < until), "open circuit {e}");
    prop_assert!(st.healthy, "unhealthy {e}");
    prop_assert!(!ep.batch, "batch endpoint {e}");
    if let Some(rpm) = ep.limits.rpm {
        prop_assert!(st.window_requests() < rpm as u64, "rpm exhausted on {e}");
    }
    if let Some(c) = ep.limits.concurrency {
        prop_assert!(st.in_flight < c, "at capacity {e}");
    }
    Ok(())
}

struct InFlight {
    ep: EndpointIdx,
    req: RequestInfo,
    attempts: Attempts,
}

fn run_events(cfg: &RouterConfig, allowed: &[bool], ops: &[Op]) -> Result<(), TestCaseError> {
    let mut r = Router::new(cfg).map_err(|e| TestCaseError::fail(format!("valid config rejected: {e}")))?;
    let n = r.endpoints().len();
    let mut now = 0u64;
    let mut next_id = 0u64;
    let mut flying: Vec<InFlight> = Vec::new();
    for op in ops {
        match op {
            Op::Decide { .. } => {
                next_id += 1;
                let req = request(next_id, op);
                match r.decide(&req, now) {
                    Decision::Route { endpoint, max_attempts } => {
                        assert_legit(&r, endpoint, &req, now, allowed)?;
                        prop_assert_eq!(max_attempts, r.retry_config().max_attempts);
                        r.on_dispatch(endpoint, &req, now);
                        flying.push(InFlight { ep: endpoint, attempts: Attempts::first(endpoint), req });
                    }
                    Decision::Reject(reason) => {
                        for i in (0..n).filter(|&i| allowed[i]) {
                            prop_assert!(
                                !r.is_eligible(EndpointIdx(i as u16), &req, now),
                                "rejected ({reason:?}) while e{i} is eligible"
                            );
                        }
                    }
                    Decision::Batch(t) => {
                        prop_assert!(req.deferrable && cfg.policy.batching.is_some());
                        prop_assert!(r.endpoints()[t.endpoint.get()].batch);
                        prop_assert!(t.deadline >= now || t.release.is_some(), "an overdue batch must be released");
                    }
                    Decision::CacheHit => prop_assert!(req.cache_key.is_some() && cfg.policy.cache.is_some()),
                }
            }
            Op::Finish { which, outcome: code, latency_ms, retry_after_ms } => {
                if flying.is_empty() {
                    continue;
                }
                let InFlight { ep, req, mut attempts } = flying.swap_remove(which % flying.len());
                let o = outcome(*code, latency_ms * MS, retry_after_ms.map(|ms| ms * MS), &req);
                r.on_result(ep, &req, &o, now);
                let before = attempts;
                match r.next_attempt(&req, &mut attempts, &o, now) {
                    NextAttempt::Retry { endpoint, delay, fallback } => {
                        prop_assert!(o.error.is_some());
                        prop_assert!(endpoint.get() < n);
                        prop_assert!(
                            attempts.count == before.count + 1 && attempts.count <= r.retry_config().max_attempts
                        );
                        prop_assert_eq!(fallback, endpoint != before.last);
                        if fallback {
                            prop_assert!(!before.tried.contains(endpoint), "fallback to an endpoint already tried");
                            prop_assert!(r.is_eligible(endpoint, &req, now), "fallback to an ineligible endpoint");
                            prop_assert_eq!(delay, 0);
                        } else {
                            prop_assert!(r.retry_config().same_endpoint);
                            prop_assert!(delay <= r.retry_config().max_delay.nanos().max(o.retry_after.unwrap_or(0)));
                        }
                        r.on_dispatch(endpoint, &req, now);
                        flying.push(InFlight { ep: endpoint, req, attempts });
                    }
                    NextAttempt::GiveUp(_) => prop_assert_eq!(attempts, before, "giving up leaves the log alone"),
                }
            }
            Op::Health { ep, healthy } => r.on_health(EndpointIdx((*ep % n) as u16), *healthy, now),
            Op::Advance { ms } => now += ms * MS,
            Op::PollBatch => {
                if let Some((_, size)) = r.poll_batch(now) {
                    prop_assert!(size >= 1);
                }
            }
        }
        let in_flight: u32 = (0..n).map(|i| r.state(EndpointIdx(i as u16)).in_flight).sum();
        prop_assert_eq!(in_flight as usize, flying.len(), "in-flight accounting");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// No decision names an unknown, open-circuit, unhealthy or quota-exhausted endpoint, and nothing is
    /// rejected while a target is eligible, over random configurations and event sequences.
    #[test]
    fn decisions_only_name_eligible_targets(
        eps in prop::collection::vec(ep_params(), 1..7),
        p in policy_params(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let (cfg, allowed) = build(&eps, &p);
        run_events(&cfg, &allowed, &ops)?;
    }
}

// ===== weighted and round robin =====

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Weighted random converges to its weights (20,000 decisions: a share is within 0.02 of its weight's
    /// fraction, more than 5 standard deviations).
    #[test]
    fn weighted_random_converges_to_its_weights(
        weights in prop::collection::vec(0u32..10, 1..6).prop_filter("one positive", |w| w.iter().any(|&x| x > 0)),
        seed in any::<u64>(),
    ) {
        let endpoints = weights.iter().enumerate().map(|(i, &w)| Endpoint { weight: w as f64, ..Endpoint::new(format!("e{i}")) }).collect();
        let mut r = Router::new(&RouterConfig { endpoints, policy: PolicySpec::new("w", PolicyKind::Weighted), groups: vec![], seed, quality: Default::default() }).unwrap();
        let total = 20_000u64;
        let mut counts = vec![0u64; weights.len()];
        for id in 0..total {
            let req = RequestInfo::new(id, 100);
            let now = id * MS;
            let Decision::Route { endpoint, .. } = r.decide(&req, now) else { panic!("rejected") };
            counts[endpoint.get()] += 1;
            r.on_dispatch(endpoint, &req, now);
            r.on_result(endpoint, &req, &Outcome::success(MS, None, 100, 10), now);
        }
        let sum: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let share = counts[i] as f64 / total as f64;
            let want = w as f64 / sum as f64;
            prop_assert!((share - want).abs() < 0.02, "e{} share {} want {} ({:?})", i, share, want, counts);
            if w == 0 {
                prop_assert_eq!(counts[i], 0);
            }
        }
    }

    /// Round robin is exactly fair: over k rounds each eligible target gets k requests, whatever the
    /// feedback, and ineligible ones none.
    #[test]
    fn round_robin_is_fair(
        n in 1usize..9,
        rounds in 1u64..30,
        down in any::<u8>(),
        latencies in prop::collection::vec(1u64..5_000, 8),
    ) {
        let endpoints = (0..n).map(|i| Endpoint::new(format!("e{i}"))).collect();
        let mut r = Router::new(&RouterConfig { endpoints, policy: PolicySpec::new("rr", PolicyKind::RoundRobin), groups: vec![], seed: 1, quality: Default::default() }).unwrap();
        let mut healthy: Vec<bool> = (0..n).map(|i| down >> i & 1 == 0).collect();
        if !healthy.iter().any(|&h| h) {
            healthy[0] = true;
        }
        for (i, &h) in healthy.iter().enumerate() {
            r.on_health(EndpointIdx(i as u16), h, 0);
        }
        let up = healthy.iter().filter(|&&h| h).count() as u64;
        let mut counts = vec![0u64; n];
        for id in 0..rounds * up {
            let req = RequestInfo::new(id, 100);
            let Decision::Route { endpoint, .. } = r.decide(&req, id) else { panic!("rejected") };
            counts[endpoint.get()] += 1;
            r.on_dispatch(endpoint, &req, id);
            let lat = latencies[endpoint.get() % 8] * MS;
            r.on_result(endpoint, &req, &Outcome::success(lat, None, 100, 10), id);
        }
        for i in 0..n {
            prop_assert_eq!(counts[i], if healthy[i] { rounds } else { 0 }, "{:?}", counts);
        }
    }
}

// ===== wild configurations: no panic =====

fn wild_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(1.0),
        Just(1e308),
        Just(f64::MIN_POSITIVE),
        0.0f64..2.0,
    ]
}

fn wild_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![Just(0u64), Just(1u64), Just(u64::MAX), 0u64..100 * S].prop_map(Duration)
}

fn wild_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "", "root", "g0", "g1", "zz", "bulk"]).prop_map(String::from)
}

fn wild_spec(name: BoxedStrategy<String>) -> impl Strategy<Value = PolicySpec> {
    (
        (name, 0usize..PolicyKind::ALL.len(), prop::collection::vec((wild_name(), prop::option::of(wild_f64())), 0..4)),
        (
            prop::option::of(wild_f64()),
            prop::option::of(wild_f64()),
            prop::option::of((wild_f64(), wild_f64(), wild_f64(), wild_f64())),
        ),
        (
            prop::option::of(wild_duration()),
            prop::option::of(wild_duration()),
            prop::option::of(wild_name()),
            prop::option::of(0u32..2000),
        ),
        (prop::collection::vec(wild_name(), 0..3), any::<bool>()),
    )
        .prop_map(
            |((name, kind, targets), (buffer, threshold, weights), (ceiling, slow, default, vnodes), (rules, key))| {
                let mut s = PolicySpec::new(name, PolicyKind::ALL[kind]);
                s.targets = targets
                    .into_iter()
                    .map(|(id, w)| match w {
                        Some(weight) => TargetSpec::Weighted { id, weight },
                        None => TargetSpec::Name(id),
                    })
                    .collect();
                s.buffer = buffer;
                s.threshold = threshold;
                s.weights = weights.map(|(cost, latency, load, quota)| HybridWeights { cost, latency, load, quota });
                s.latency_ceiling = ceiling;
                s.slow_threshold = slow;
                s.default = default;
                s.virtual_nodes = vnodes;
                s.key = key.then(|| "user".to_string());
                // The quality-aware kinds' fields, from the same draws.
                s.strong = s.rules.iter().map(|r| TargetSpec::Name(r.target.clone())).collect();
                s.min_quality = buffer;
                s.verifier = weights.map(|(precision, recall, min_score, _)| VerifierSpec {
                    precision,
                    recall,
                    min_score,
                    endpoint: s.default.clone(),
                });
                s.rules = rules
                    .into_iter()
                    .map(|target| RuleSpec {
                        when: RawValue::Map(BTreeMap::from([("user".to_string(), RawValue::Num(1.0))])),
                        target,
                    })
                    .collect();
                s
            },
        )
}

fn wild_config() -> impl Strategy<Value = RouterConfig> {
    let endpoint = (
        wild_name(),
        (wild_f64(), wild_f64(), wild_f64()),
        (
            prop::option::of(0u32..3),
            prop::option::of(0u64..3000),
            prop::option::of(0u32..3),
            prop::option::of(0u32..2000),
        ),
        any::<bool>(),
    )
        .prop_map(|(id, (weight, pin, pout), (rpm, tpm, concurrency, context_window), batch)| Endpoint {
            weight,
            price: Price { input_per_mtok: pin, output_per_mtok: pout },
            limits: Limits { rpm, tpm, concurrency, context_window },
            batch,
            // Accuracies from the same draws: some valid, some out of range, some absent.
            quality: router_core::Accuracy(match pin {
                x if x.is_nan() => BTreeMap::new(),
                x => BTreeMap::from([("default".to_string(), x.min(1.0)), ("code".to_string(), pout)]),
            }),
            ..Endpoint::new(id)
        });
    let retry = (
        0u32..6,
        wild_f64(),
        wild_duration(),
        wild_duration(),
        any::<bool>(),
        prop::option::of((wild_f64(), wild_f64())),
    )
        .prop_map(|(max_attempts, multiplier, base_delay, max_delay, same_endpoint, budget)| RetryConfig {
            max_attempts,
            multiplier,
            base_delay,
            max_delay,
            same_endpoint,
            budget: budget.map(|(ratio, min_per_s)| BudgetConfig { ratio, min_per_s }),
            ..RetryConfig::default()
        });
    let tracking =
        (wild_f64(), wild_duration(), wild_duration(), 0u32..4, wild_duration(), prop::option::of(wild_f64()))
            .prop_map(|(error_rate, quota_window, error_window, consecutive, cooldown, alpha)| {
                let mut t = TrackingConfig::default();
                t.circuit.error_rate = error_rate;
                t.circuit.consecutive_failures = consecutive;
                t.circuit.cooldown = cooldown;
                t.quota_window = quota_window;
                t.error_window = error_window;
                if alpha.is_some() {
                    t.latency.window = None;
                    t.latency.alpha = alpha;
                }
                t
            });
    (
        prop::collection::vec(endpoint, 0..5),
        wild_spec(Just("root".to_string()).boxed()),
        prop::collection::vec(
            wild_spec(prop::sample::select(vec!["g0", "g1", "a", "root"]).prop_map(String::from).boxed()),
            0..3,
        ),
        (
            prop::option::of(prop::collection::vec(wild_name(), 0..3)),
            prop::option::of(retry),
            prop::option::of(tracking),
        ),
        (
            prop::option::of((wild_duration(), prop::sample::select(vec![0usize, 1, 3, usize::MAX]))),
            prop::option::of((wild_name(), 0u32..3, wild_duration())),
        ),
    )
        .prop_map(|(endpoints, mut policy, groups, (fallbacks, retry, tracking), (cache, batching))| {
            policy.fallbacks = fallbacks.map(FallbackSpec::List);
            policy.retry = retry;
            policy.tracking = tracking;
            policy.cache = cache.map(|(ttl, capacity)| CacheConfig { ttl, capacity });
            policy.batching =
                batching.map(|(endpoint, max_size, max_wait)| BatchConfig { endpoint, max_size, max_wait });
            RouterConfig { endpoints, policy, groups, seed: 3, quality: Default::default() }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any configuration builds or fails with a path; a router that builds survives any calls, at any time.
    #[test]
    fn no_panic_on_any_config_or_call(
        cfg in wild_config(),
        calls in prop::collection::vec((any::<u64>(), 0u8..8, prop_oneof![Just(0u64), Just(u64::MAX), Just(u64::MAX - 1), 0u64..1000 * S]), 0..60),
    ) {
        match Router::new(&cfg) {
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                prop_assert!(e.path.starts_with("endpoints") || e.path.starts_with("policy") || e.path.starts_with("groups"), "{}", e);
            }
            Ok(mut r) => {
                let n = r.endpoints().len() as u64;
                for (x, code, now) in calls {
                    let req = RequestInfo {
                        deferrable: x & 1 == 1,
                        cache_key: (x & 2 == 2).then_some(x >> 60),
                        expected_output_tokens: (x & 4 == 4).then_some((x >> 20) as u32),
                        task_class: (x & 32 == 32).then(|| "code".to_string()),
                        difficulty: (x & 64 == 64).then_some((x >> 7) as f64 / 1e15 - 5.0),
                        ..RequestInfo::new(x, (x >> 32) as u32)
                    };
                    let ep = EndpointIdx((x % (n + 2)) as u16);
                    let o = outcome(code, x >> 40, (x & 8 == 8).then_some(x >> 3), &req);
                    match r.decide(&req, now) {
                        Decision::Route { endpoint, .. } => {
                            r.on_dispatch(endpoint, &req, now);
                            r.on_result(endpoint, &req, &o, now);
                            let mut a = Attempts::first(endpoint);
                            let _ = r.next_attempt(&req, &mut a, &o, now);
                            if r.verification(&req, endpoint).is_some() {
                                let _ = r.escalate(&req, &mut a, now);
                            }
                        }
                        _ => {
                            r.on_dispatch(ep, &req, now);
                            r.on_result(ep, &req, &o, now);
                            let mut a = Attempts::first(ep);
                            let _ = r.next_attempt(&req, &mut a, &o, now);
                            let _ = r.verification(&req, ep);
                            let _ = r.escalate(&req, &mut a, now);
                        }
                    }
                    r.on_health(ep, x & 16 == 0, now);
                    let _ = r.poll_batch(now);
                    let _ = r.is_eligible(ep, &req, now);
                }
            }
        }
    }
}
