//! The quality-aware policies (issue 30): `threshold`, `quality`, `cascade` and `oracle`, through the public
//! `Router` API: unit tests of their rules, their composition with the shared filter (health, circuit,
//! quota) and groups, their configuration errors, and property tests against a brute-force reference.

mod common;

use common::*;
use proptest::prelude::*;
use router_core::policy::EndpointSet;
use router_core::quality::{acceptance, solve_theta};
use router_core::{
    Accuracy, Attempts, EndpointIdx, ErrorClass, GiveUpReason, Limits, NextAttempt, PolicyKind, PolicySpec, Price,
    QualityConfig, RequestInfo, Router, RouterConfig, Scope, TargetSpec,
};
use std::collections::BTreeMap;

/// An endpoint `id` with an input price and accuracies per class.
fn ep(id: &str, price: f64, acc: &[(&str, f64)]) -> router_core::Endpoint {
    router_core::Endpoint {
        price: Price { input_per_mtok: price, output_per_mtok: 0.0 },
        quality: Accuracy(acc.iter().map(|(c, p)| (c.to_string(), *p)).collect()),
        ..router_core::Endpoint::new(id)
    }
}

fn names(ids: &[&str]) -> Vec<TargetSpec> {
    ids.iter().map(|i| TargetSpec::Name(i.to_string())).collect()
}

fn cfg(endpoints: Vec<router_core::Endpoint>, policy: PolicySpec, groups: Vec<PolicySpec>) -> RouterConfig {
    RouterConfig { endpoints, policy, groups, seed: 7, quality: QualityConfig::default() }
}

fn req(id: u64, difficulty: Option<f64>) -> RequestInfo {
    RequestInfo { difficulty, expected_output_tokens: Some(10), ..RequestInfo::new(id, 1000) }
}

fn threshold_policy(weak: &[&str], strong: &[&str], t: f64) -> PolicySpec {
    let mut p = PolicySpec::new("t", PolicyKind::Threshold);
    p.targets = names(weak);
    p.strong = names(strong);
    p.threshold = Some(t);
    p
}

fn quality_policy(targets: &[&str], bar: f64) -> PolicySpec {
    let mut p = PolicySpec::new("q", PolicyKind::Quality);
    p.targets = names(targets);
    p.min_quality = Some(bar);
    p
}

// ===== threshold =====

#[test]
fn threshold_sends_hard_and_unestimated_requests_to_the_cheapest_strong_target() {
    let eps = vec![ep("w1", 2.0, &[]), ep("w0", 1.0, &[]), ep("s1", 9.0, &[]), ep("s0", 5.0, &[])];
    let mut r = Router::new(&cfg(eps, threshold_policy(&["w1", "w0"], &["s1", "s0"], 0.5), vec![])).unwrap();
    assert_eq!(pick_id(&mut r, &req(1, Some(0.2)), 0), "w0");
    assert_eq!(pick_id(&mut r, &req(2, Some(0.5)), 0), "w0", "at the threshold is not above it");
    assert_eq!(pick_id(&mut r, &req(3, Some(0.51)), 0), "s0");
    assert_eq!(pick_id(&mut r, &req(4, None), 0), "s0", "no estimate: the strong side");
    // A side without an eligible target spills to the other.
    for e in ["s0", "s1"] {
        let i = idx(&r, e);
        r.on_health(i, false, 0);
    }
    assert_eq!(pick_id(&mut r, &req(5, Some(3.0)), 0), "w0");
    let w0 = idx(&r, "w0");
    r.on_health(w0, false, 0);
    assert_eq!(pick_id(&mut r, &req(6, Some(3.0)), 0), "w1");
}

#[test]
fn threshold_spills_weak_to_strong_when_the_weak_quota_is_spent() {
    let mut weak = ep("weak", 1.0, &[]);
    weak.limits = Limits { rpm: Some(2), ..Limits::default() };
    let eps = vec![weak, ep("strong", 5.0, &[])];
    let mut r = Router::new(&cfg(eps, threshold_policy(&["weak"], &["strong"], 0.0), vec![])).unwrap();
    let easy = req(1, Some(-1.0));
    let got: Vec<String> = (0..4)
        .map(|i| {
            let e = pick(&mut r, &easy, i * MS).expect("routed");
            r.on_dispatch(e, &easy, i * MS);
            id(&r, e).to_string()
        })
        .collect();
    assert_eq!(got, ["weak", "weak", "strong", "strong"]);
}

// ===== quality =====

#[test]
fn quality_picks_the_cheapest_endpoint_meeting_the_bar() {
    let eps = vec![
        ep("small", 1.0, &[("default", 0.6)]),
        ep("mid", 3.0, &[("default", 0.85)]),
        ep("large", 10.0, &[("default", 0.95)]),
    ];
    let mut r = Router::new(&cfg(eps, quality_policy(&["small", "mid", "large"], 0.8), vec![])).unwrap();
    // Without an estimate the prediction is the class accuracy.
    assert_eq!(pick_id(&mut r, &req(1, None), 0), "mid");
    // An easy request: small's acceptance at d = -2 is above 0.8.
    let a = router_core::quality::DEFAULT_DISCRIMINATION;
    assert!(acceptance(solve_theta(0.6, a), a, -2.0) > 0.8);
    assert_eq!(pick_id(&mut r, &req(2, Some(-2.0)), 0), "small");
    // A very hard request: nobody reaches 0.8, so the most likely to answer well (spilling upward).
    assert!(acceptance(solve_theta(0.95, a), a, 4.0) < 0.8);
    assert_eq!(pick_id(&mut r, &req(3, Some(4.0)), 0), "large");
}

#[test]
fn quality_spills_upward_when_the_cheap_endpoint_is_excluded() {
    let mut mid = ep("mid", 3.0, &[("default", 0.85)]);
    mid.limits = Limits { rpm: Some(1), ..Limits::default() };
    let eps = vec![ep("small", 1.0, &[("default", 0.6)]), mid, ep("large", 10.0, &[("default", 0.95)])];
    let mut r = Router::new(&cfg(eps, quality_policy(&["small", "mid", "large"], 0.8), vec![])).unwrap();
    let q = req(1, None);
    let first = pick(&mut r, &q, 0).unwrap();
    assert_eq!(id(&r, first), "mid");
    r.on_dispatch(first, &q, 0);
    // mid's quota is spent: the next meeting the bar is large, never the cheaper small below the bar.
    assert_eq!(pick_id(&mut r, &req(2, None), MS), "large");
    // large's circuit opens: no candidate meets the bar, the best remaining is small.
    let large = idx(&r, "large");
    for k in 0..10 {
        fail(&mut r, large, 2 * MS + k, ErrorClass::Server);
    }
    assert_eq!(pick_id(&mut r, &req(3, None), 3 * MS), "small");
}

#[test]
fn quality_uses_the_class_row_and_the_discrimination() {
    let eps = vec![
        ep("coder", 5.0, &[("default", 0.5), ("code", 0.9)]),
        ep("chatter", 1.0, &[("default", 0.9), ("code", 0.4)]),
    ];
    let mut c = cfg(eps, quality_policy(&["coder", "chatter"], 0.8), vec![]);
    c.quality.discrimination = BTreeMap::from([("code".to_string(), 3.0)]);
    let mut r = Router::new(&c).unwrap();
    let mut code = req(1, None);
    code.task_class = Some("code".into());
    assert_eq!(pick_id(&mut r, &code, 0), "coder");
    let mut chat = req(2, None);
    chat.task_class = Some("chat".into());
    assert_eq!(pick_id(&mut r, &chat, 0), "chatter", "an unlisted class takes `default`");
    // With an estimate, the class's discrimination shapes the prediction.
    code.difficulty = Some(0.3);
    let p = acceptance(solve_theta(0.9, 3.0), 3.0, 0.3);
    let bar = (p * 1e6).floor() / 1e6;
    let mut c2 = c.clone();
    c2.policy.min_quality = Some(bar);
    assert_eq!(pick_id(&mut Router::new(&c2).unwrap(), &code, 0), "coder", "meets a bar just below {p}");
    c2.policy.min_quality = Some(p + 1e-9);
    // Nobody meets a bar just above: coder is still the most likely.
    assert_eq!(pick_id(&mut Router::new(&c2).unwrap(), &code, 0), "coder");
}

#[test]
fn quality_composes_with_groups_as_targets() {
    let eps = vec![
        ep("a", 1.0, &[("default", 0.7)]),
        ep("b", 1.0, &[("default", 0.7)]),
        ep("premium", 8.0, &[("default", 0.97)]),
    ];
    let mut pool = PolicySpec::new("pool", PolicyKind::RoundRobin);
    pool.targets = names(&["a", "b"]);
    let mut r = Router::new(&cfg(eps, quality_policy(&["pool", "premium"], 0.6), vec![pool])).unwrap();
    let picks: Vec<String> = (0..4).map(|i| pick_id(&mut r, &req(i, None), 0)).collect();
    assert_eq!(picks, ["a", "b", "a", "b"], "the pool meets the bar and is cheaper; it rotates as it serves");
    let mut r2 = Router::new(&cfg(
        vec![
            ep("a", 1.0, &[("default", 0.7)]),
            ep("b", 1.0, &[("default", 0.7)]),
            ep("premium", 8.0, &[("default", 0.97)]),
        ],
        quality_policy(&["pool", "premium"], 0.9),
        vec![{
            let mut g = PolicySpec::new("pool", PolicyKind::RoundRobin);
            g.targets = names(&["a", "b"]);
            g
        }],
    ))
    .unwrap();
    assert_eq!(pick_id(&mut r2, &req(9, None), 0), "premium");
}

// ===== cascade =====

fn cascade(stages: &[&str]) -> PolicySpec {
    let mut p = PolicySpec::new("c", PolicyKind::Cascade);
    p.targets = names(stages);
    p.verifier = Some(router_core::VerifierSpec { endpoint: Some("judge".into()), ..Default::default() });
    p
}

fn cascade_router(stages: &[&str]) -> Router {
    let mut eps: Vec<_> = ["s0", "s1", "s2"].iter().enumerate().map(|(i, s)| ep(s, i as f64, &[])).collect();
    eps.push(ep("judge", 0.1, &[]));
    Router::new(&cfg(eps, cascade(stages), vec![])).unwrap()
}

#[test]
fn cascade_starts_cheap_escalates_in_order_and_stops_at_the_last_stage() {
    let mut r = cascade_router(&["s0", "s1", "s2"]);
    let q = req(1, None);
    let first = pick(&mut r, &q, 0).unwrap();
    assert_eq!(id(&r, first), "s0");
    assert_eq!(r.verification(&q, first).map(|v| v.endpoint.as_deref()), Some(Some("judge")));
    let mut a = Attempts::first(first);
    let mut seen = vec![];
    loop {
        match r.escalate(&q, &mut a, 0) {
            NextAttempt::Retry { endpoint, delay, fallback } => {
                assert_eq!((delay, fallback), (0, true));
                seen.push(id(&r, endpoint).to_string());
                if r.verification(&q, endpoint).is_none() {
                    break;
                }
            }
            NextAttempt::GiveUp(why) => panic!("gave up early: {why:?}"),
        }
    }
    assert_eq!(seen, ["s1", "s2"]);
    assert_eq!(a.count, 3);
    assert!(r.verification(&q, idx(&r, "s2")).is_none(), "the last stage's answer is final");
    assert_eq!(r.escalate(&q, &mut a, 0), NextAttempt::GiveUp(GiveUpReason::NoEndpoint));
}

#[test]
fn cascade_skips_ineligible_stages_and_does_not_spend_the_retry_budget() {
    let mut c = cascade(&["s0", "s1", "s2"]);
    c.retry = Some(router_core::RetryConfig {
        budget: Some(router_core::BudgetConfig { ratio: 0.0, min_per_s: 0.0 }),
        ..Default::default()
    });
    let mut eps: Vec<_> = ["s0", "s1", "s2"].iter().enumerate().map(|(i, s)| ep(s, i as f64, &[])).collect();
    eps.push(ep("judge", 0.1, &[]));
    let mut r = Router::new(&cfg(eps, c, vec![])).unwrap();
    let s1 = idx(&r, "s1");
    r.on_health(s1, false, 0);
    for i in 0..5 {
        let q = req(i, None);
        let first = pick(&mut r, &q, 0).unwrap();
        let mut a = Attempts::first(first);
        match r.escalate(&q, &mut a, 0) {
            NextAttempt::Retry { endpoint, .. } => assert_eq!(id(&r, endpoint), "s2"),
            other => panic!("expected s2 with an empty retry budget, got {other:?}"),
        }
    }
}

#[test]
fn cascade_escalation_respects_the_scope() {
    let mut r = cascade_router(&["s0", "s1", "s2"]);
    let q = req(1, None);
    let mut excluded = EndpointSet::default();
    excluded.insert(idx(&r, "s1"));
    let scope = Scope { excluded, ..Scope::default() };
    let mut a = Attempts::first(idx(&r, "s0"));
    let NextAttempt::Retry { endpoint, .. } = r.escalate_in(&q, &mut a, 0, &scope) else { panic!("escalates") };
    assert_eq!(id(&r, endpoint), "s2", "an excluded stage is skipped");
    let other = Scope { chooser: router_core::Chooser::InOrder, ..Scope::default() };
    let mut a = Attempts::first(idx(&r, "s0"));
    assert_eq!(r.escalate_in(&q, &mut a, 0, &other), NextAttempt::GiveUp(GiveUpReason::NoEndpoint));
}

#[test]
fn cascade_stages_may_be_groups_and_verification_is_root_only() {
    let mut eps: Vec<_> = ["s0", "s1", "s2"].iter().enumerate().map(|(i, s)| ep(s, i as f64, &[])).collect();
    eps.push(ep("judge", 0.1, &[]));
    let mut big = PolicySpec::new("big", PolicyKind::Cost);
    big.targets = names(&["s1", "s2"]);
    let mut r = Router::new(&cfg(eps.clone(), cascade(&["s0", "big"]), vec![big.clone()])).unwrap();
    let q = req(1, None);
    let mut a = Attempts::first(idx(&r, "s0"));
    let NextAttempt::Retry { endpoint, .. } = r.escalate(&q, &mut a, 0) else { panic!("escalates") };
    assert_eq!(id(&r, endpoint), "s1", "the group stage picks its cheapest");
    assert!(r.verification(&q, endpoint).is_none(), "s1 is in the last stage");
    assert!(r.verification(&q, idx(&r, "s2")).is_none());
    // Another root kind never asks for a verifier.
    let mut r = Router::new(&cfg(eps, PolicySpec::new("cost", PolicyKind::Cost), vec![])).unwrap();
    assert!(r.verification(&q, EndpointIdx(0)).is_none());
    assert_eq!(r.escalate(&q, &mut Attempts::first(EndpointIdx(0)), 0), NextAttempt::GiveUp(GiveUpReason::NoEndpoint));
}

// ===== oracle =====

#[test]
fn oracle_is_the_cheapest_within_scope() {
    let eps = vec![ep("a", 1.0, &[]), ep("b", 2.0, &[]), ep("c", 3.0, &[])];
    let mut r = Router::new(&cfg(eps, PolicySpec::new("o", PolicyKind::Oracle), vec![])).unwrap();
    assert_eq!(pick_id(&mut r, &req(1, None), 0), "a");
    let mut excluded = EndpointSet::default();
    excluded.insert(idx(&r, "a"));
    let scope = Scope { excluded, ..Scope::default() };
    let router_core::Decision::Route { endpoint, .. } = r.decide_in(&req(2, None), 0, &scope) else { panic!() };
    assert_eq!(id(&r, endpoint), "b");
}

// ===== configuration errors =====

fn err(c: &RouterConfig) -> router_core::ConfigError {
    Router::new(c).expect_err("invalid")
}

#[test]
fn configuration_errors_name_the_field() {
    let eps = || vec![ep("cheap", 1.0, &[("code", 0.5)]), ep("good", 5.0, &[("default", 0.9)])];
    // A quality target without an accuracy for a class the configuration names.
    let e = err(&cfg(eps(), quality_policy(&["good", "cheap"], 0.8), vec![]));
    assert_eq!(e.path, "policy.targets[1]");
    assert!(e.message.contains("`cheap`") && e.message.contains("`default`"), "{e}");
    let e = err(&cfg(
        vec![
            ep("a", 1.0, &[("default", 0.9), ("code", 0.8)]),
            ep("b", 1.0, &[("code", 0.7)]),
            ep("c", 1.0, &[("chat", 0.5)]),
        ],
        quality_policy(&["a", "c"], 0.8),
        vec![],
    ));
    assert_eq!(e.path, "policy.targets[1]");
    assert!(e.message.contains("`c`") && e.message.contains("`code`"), "{e}");
    let e = err(&cfg(vec![ep("a", 1.0, &[]), ep("b", 1.0, &[("default", 0.9)])], quality_policy(&[], 0.8), vec![]));
    assert_eq!(e.path, "policy.targets");
    assert!(e.message.contains("`a`"), "{e}");
    // Through a group.
    let mut g = PolicySpec::new("pool", PolicyKind::RoundRobin);
    g.targets = names(&["cheap"]);
    let e = err(&cfg(eps(), quality_policy(&["good", "pool"], 0.8), vec![g]));
    assert_eq!(e.path, "policy.targets[1]");
    // Threshold and cascade need no accuracy.
    Router::new(&cfg(eps(), threshold_policy(&["cheap"], &["good"], 0.0), vec![])).expect("threshold");
    // Fields.
    let e = err(&cfg(eps(), quality_policy(&["good"], 1.5), vec![]));
    assert_eq!(e.path, "policy.min_quality");
    let mut p = quality_policy(&["good"], 0.5);
    p.min_quality = None;
    assert_eq!(err(&cfg(eps(), p, vec![])).path, "policy.min_quality");
    let mut p = threshold_policy(&["cheap"], &[], 0.0);
    assert_eq!(err(&cfg(eps(), p.clone(), vec![])).path, "policy.strong");
    p.strong = names(&["cheap"]);
    assert_eq!(err(&cfg(eps(), p.clone(), vec![])).path, "policy.strong[0]");
    p.strong = names(&["good"]);
    p.threshold = Some(f64::NAN);
    assert_eq!(err(&cfg(eps(), p.clone(), vec![])).path, "policy.threshold");
    p.threshold = None;
    assert_eq!(err(&cfg(eps(), p, vec![])).path, "policy.threshold");
    let mut p = cascade(&["cheap", "good"]);
    p.verifier.as_mut().unwrap().endpoint = Some("jugde".into());
    assert_eq!(err(&cfg(eps(), p.clone(), vec![])).path, "policy.verifier.endpoint");
    p.verifier = Some(router_core::VerifierSpec { recall: 1.2, ..Default::default() });
    assert_eq!(err(&cfg(eps(), p, vec![])).path, "policy.verifier.recall");
    let mut one = cascade(&["cheap"]);
    one.verifier = None;
    assert_eq!(err(&cfg(eps(), one, vec![])).path, "policy.targets");
    let mut p = threshold_policy(&[], &["good"], 0.0);
    p.targets.clear();
    assert_eq!(err(&cfg(eps(), p, vec![])).path, "policy.targets", "threshold names its weak targets");
    let mut none = cascade(&[]);
    none.verifier = None;
    assert_eq!(err(&cfg(eps(), none, vec![])).path, "policy.targets", "a cascade names its stages");
    let mut root = PolicySpec::new("root", PolicyKind::Fallback);
    root.targets = names(&["inner"]);
    let mut inner = cascade(&["cheap", "good"]);
    inner.name = "inner".into();
    inner.verifier = None;
    assert_eq!(err(&cfg(eps(), root, vec![inner])).path, "groups[0].kind", "a cascade is a root");
    let mut p = PolicySpec::new("cost", PolicyKind::Cost);
    p.min_quality = Some(0.5);
    assert_eq!(err(&cfg(eps(), p, vec![])).path, "policy.min_quality", "a field of another kind");
    // Accuracies and discrimination.
    let e = err(&cfg(vec![ep("a", 1.0, &[("code", 1.2)])], PolicySpec::new("c", PolicyKind::Cost), vec![]));
    assert_eq!(e.path, "endpoints[0].quality.code");
    let mut c = cfg(eps(), PolicySpec::new("c", PolicyKind::Cost), vec![]);
    c.quality.discrimination = BTreeMap::from([("code".to_string(), -1.0)]);
    assert_eq!(err(&c).path, "quality.discrimination.code");
}

#[test]
fn the_new_fields_round_trip_through_toml() {
    let src = "[[endpoints]]\nid = \"a\"\nquality = { default = 0.7 }\n[[endpoints]]\nid = \"b\"\n\
               [[endpoints]]\nid = \"j\"\n\
               [policy]\nname = \"c\"\nkind = \"cascade\"\ntargets = [\"a\", \"b\"]\n\
               verifier = { endpoint = \"j\", min_score = 0.7 }\n";
    let c = config(src);
    assert_eq!(c.policy.verifier.as_ref().map(|v| (v.precision, v.recall, v.min_score)), Some((1.0, 1.0, 0.7)));
    let back: RouterConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    assert!(toml::from_str::<RouterConfig>(&src.replace("min_score", "min_scor")).is_err(), "unknown verifier field");
}

// ===== properties =====

/// The reference choice of `quality`: the cheapest meeting the bar, else the highest prediction, ties by cost
/// then index, among `eligible`.
fn reference_quality(acc: &[f64], price: &[f64], eligible: &[bool], d: Option<f64>, bar: f64) -> Option<usize> {
    let a = router_core::quality::DEFAULT_DISCRIMINATION;
    let pred = |i: usize| d.map_or(acc[i], |d| acceptance(solve_theta(acc[i], a), a, d));
    let cands: Vec<usize> = (0..acc.len()).filter(|&i| eligible[i]).collect();
    let meets: Vec<usize> = cands.iter().copied().filter(|&i| pred(i) >= bar).collect();
    if !meets.is_empty() {
        return meets.into_iter().reduce(|b, i| if price[i] < price[b] { i } else { b });
    }
    cands.into_iter().reduce(|b, i| {
        let (pb, pi) = (pred(b), pred(i));
        if pi > pb || (pi == pb && price[i] < price[b]) { i } else { b }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// `quality` picks what the brute-force reference picks, with some endpoints unhealthy.
    #[test]
    fn quality_matches_the_reference(
        eps in prop::collection::vec((0.01f64..0.99, 0u32..6, any::<bool>()), 1..7),
        d in prop::option::of(-3.0f64..3.0),
        bar in 0.0f64..1.0,
    ) {
        let acc: Vec<f64> = eps.iter().map(|e| e.0).collect();
        let price: Vec<f64> = eps.iter().map(|e| e.1 as f64).collect();
        let healthy: Vec<bool> = eps.iter().map(|e| e.2).collect();
        let endpoints = (0..eps.len()).map(|i| ep(&format!("e{i}"), price[i], &[("default", acc[i])])).collect();
        let mut r = Router::new(&cfg(endpoints, quality_policy(&[], bar), vec![])).unwrap();
        for (i, &h) in healthy.iter().enumerate() {
            r.on_health(EndpointIdx(i as u16), h, 0);
        }
        let got = pick(&mut r, &req(1, d), 0).map(|e| e.get());
        prop_assert_eq!(got, reference_quality(&acc, &price, &healthy, d, bar));
    }

    /// `threshold` sends exactly the requests above the threshold (or without an estimate) to the strong side,
    /// each side's cheapest, while both sides have an eligible target.
    #[test]
    fn threshold_splits_exactly_at_the_threshold(
        t in -2.0f64..2.0,
        ds in prop::collection::vec(prop::option::of(-3.0f64..3.0), 1..50),
        weak_prices in prop::collection::vec(0u32..100, 1..4),
        strong_prices in prop::collection::vec(0u32..100, 1..4),
    ) {
        let mut endpoints = vec![];
        let mut weak = vec![];
        let mut strong = vec![];
        for (i, &p) in weak_prices.iter().enumerate() {
            endpoints.push(ep(&format!("w{i}"), p as f64 + i as f64 * 1e-3, &[]));
            weak.push(format!("w{i}"));
        }
        for (i, &p) in strong_prices.iter().enumerate() {
            endpoints.push(ep(&format!("s{i}"), p as f64 + i as f64 * 1e-3, &[]));
            strong.push(format!("s{i}"));
        }
        let cheapest = |side: &[u32], prefix: &str| {
            let i = (0..side.len()).min_by(|&a, &b| (side[a] as f64 + a as f64 * 1e-3).total_cmp(&(side[b] as f64 + b as f64 * 1e-3))).unwrap();
            format!("{prefix}{i}")
        };
        let w: Vec<&str> = weak.iter().map(String::as_str).collect();
        let s: Vec<&str> = strong.iter().map(String::as_str).collect();
        let mut r = Router::new(&cfg(endpoints, threshold_policy(&w, &s, t), vec![])).unwrap();
        for (k, d) in ds.iter().enumerate() {
            let got = pick_id(&mut r, &req(k as u64, *d), 0);
            let hard = d.is_none_or(|d| d > t);
            let want = if hard { cheapest(&strong_prices, "s") } else { cheapest(&weak_prices, "w") };
            prop_assert_eq!(got, want, "d = {:?}, t = {}", d, t);
        }
    }

    /// A cascade escalates through every later stage in order, skipping unhealthy ones, and stops after the last.
    #[test]
    fn cascade_escalates_in_order(healthy in prop::collection::vec(any::<bool>(), 2..8), id0 in any::<u64>()) {
        let n = healthy.len();
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let mut endpoints: Vec<_> = ids.iter().map(|s| ep(s, 1.0, &[])).collect();
        endpoints.push(ep("judge", 0.0, &[]));
        let stages: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut r = Router::new(&cfg(endpoints, cascade(&stages), vec![])).unwrap();
        for (i, &h) in healthy.iter().enumerate() {
            r.on_health(EndpointIdx(i as u16), h, 0);
        }
        let q = req(id0, None);
        let want: Vec<usize> = (0..n).filter(|&i| healthy[i]).collect();
        let Some(first) = pick(&mut r, &q, 0) else {
            prop_assert!(want.is_empty());
            return Ok(());
        };
        let mut got = vec![first.get()];
        let mut a = Attempts::first(first);
        while r.verification(&q, *got.last().map(|&i| EndpointIdx(i as u16)).as_ref().unwrap()).is_some() {
            match r.escalate(&q, &mut a, 0) {
                NextAttempt::Retry { endpoint, .. } => got.push(endpoint.get()),
                NextAttempt::GiveUp(_) => break,
            }
        }
        prop_assert_eq!(got, want);
    }
}
