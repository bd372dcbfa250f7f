//! Behaviour of every policy kind, driven through the public `Router` API with time advanced by hand.

mod common;

use common::*;
use router_core::{Decision, ErrorClass, MetaValue, RejectReason, RequestInfo, Router, state::Circuit};

fn share(c: &[u64], i: usize) -> f64 {
    c[i] as f64 / c.iter().sum::<u64>() as f64
}

// ===== round-robin =====

#[test]
fn round_robin_rotates_in_order_and_skips_ineligible_targets() {
    let mut r = router(&format!("{}[policy]\nname = \"rr\"\nkind = \"round-robin\"\n", endpoints(&["a", "b", "c"])));
    let seq: Vec<String> = (0..6).map(|i| pick_id(&mut r, &RequestInfo::new(i, 10), 0)).collect();
    assert_eq!(seq, ["a", "b", "c", "a", "b", "c"]);
    let b = idx(&r, "b");
    r.on_health(b, false, 0);
    let seq: Vec<String> = (0..6).map(|i| pick_id(&mut r, &RequestInfo::new(i, 10), 0)).collect();
    assert_eq!(seq, ["a", "c", "a", "c", "a", "c"], "an unhealthy target is skipped, the others share equally");
    r.on_health(b, true, 0);
    let c = counts(&mut r, 300, 0, |i| RequestInfo::new(i, 10));
    assert_eq!(c, vec![100, 100, 100]);
}

/// A root policy over a round-robin `pool` (x, y) and an endpoint `cheap`, as TOML.
fn pool_and_cheap(root: &str) -> String {
    "[[endpoints]]\nid = \"x\"\nprice = { input_per_mtok = 5.0 }\n\
     [[endpoints]]\nid = \"y\"\nprice = { input_per_mtok = 5.0 }\n\
     [[endpoints]]\nid = \"cheap\"\nprice = { input_per_mtok = 1.0 }\n"
        .to_string()
        + &format!("[policy]\nname = \"root\"\n{root}\n")
        + "[[groups]]\nname = \"pool\"\nkind = \"round-robin\"\ntargets = [\"x\", \"y\"]\n"
}

/// Asserts that the picks other than `cheap` alternate x, y, x, y, ... from the first.
fn assert_alternates(picks: &[String], what: &str) {
    let served: Vec<&str> = picks.iter().map(String::as_str).filter(|&e| e != "cheap").collect();
    assert!(served.len() >= 100, "{what}: the pool served only {} requests", served.len());
    for (k, e) in served.iter().enumerate() {
        assert_eq!(*e, ["x", "y"][k % 2], "{what}: the pool's pick #{k} breaks its rotation: {served:?}");
    }
}

#[test]
fn a_nested_round_robin_cycles_exactly_over_the_requests_it_serves() {
    // Weighted 3:1 between the pool and cheap: the pool is only asked when it is drawn.
    let mut r = router(&pool_and_cheap(
        "kind = \"weighted\"\ntargets = [{ id = \"pool\", weight = 3.0 }, { id = \"cheap\", weight = 1.0 }]",
    ));
    let picks: Vec<String> = (0..2000).map(|i| pick_id(&mut r, &RequestInfo::new(i, 10), 0)).collect();
    assert_alternates(&picks, "weighted");
    // Scoring policies must see the pool's pick to score it, but only a pick they use moves the pool on:
    // cheap wins whenever it is eligible, and is out of rotation on every fourth request.
    for root in ["kind = \"cost\"", "kind = \"hybrid\"\nweights = { cost = 1.0 }", "kind = \"least-outstanding\""] {
        let mut r = router(&pool_and_cheap(&format!("{root}\ntargets = [\"cheap\", \"pool\"]")));
        let (cheap, x, y) = (idx(&r, "cheap"), idx(&r, "x"), idx(&r, "y"));
        // One request in flight on x and y: least-outstanding, too, prefers cheap while it is eligible.
        r.on_dispatch(x, &RequestInfo::new(0, 10), 0);
        r.on_dispatch(y, &RequestInfo::new(0, 10), 0);
        let picks: Vec<String> = (0..2000u64)
            .map(|i| {
                r.on_health(cheap, i % 4 != 3, 0);
                pick_id(&mut r, &RequestInfo::new(i, 10), 0)
            })
            .collect();
        assert_alternates(&picks, root);
    }
}

// ===== weighted =====

#[test]
fn weighted_random_follows_target_and_endpoint_weights() {
    let src = format!(
        "{}[[endpoints]]\nid = \"d\"\nweight = 2.0\n[policy]\nname = \"w\"\nkind = \"weighted\"\n\
         targets = [{{ id = \"a\", weight = 6.0 }}, {{ id = \"b\", weight = 3.0 }}, {{ id = \"c\", weight = 0.0 }}, \"d\"]\n",
        endpoints(&["a", "b", "c"])
    );
    let mut r = router(&src);
    let c = counts(&mut r, 40_000, 0, |i| RequestInfo::new(i, 10));
    assert_eq!(c[2], 0, "a zero weight never wins while others are eligible");
    for (i, want) in [(0, 6.0 / 11.0), (1, 3.0 / 11.0), (3, 2.0 / 11.0)] {
        assert!((share(&c, i) - want).abs() < 0.01, "endpoint {i}: {c:?}");
    }
    // An ineligible target's share goes to the others in proportion.
    r.on_health(idx(&r, "a"), false, 0);
    let c = counts(&mut r, 40_000, 0, |i| RequestInfo::new(i, 10));
    assert_eq!(c[0], 0);
    assert!((share(&c, 1) - 0.6).abs() < 0.01, "{c:?}");
}

// ===== least-outstanding =====

#[test]
fn least_outstanding_picks_the_endpoint_with_fewest_in_flight() {
    let mut r =
        router(&format!("{}[policy]\nname = \"lo\"\nkind = \"least-outstanding\"\n", endpoints(&["a", "b", "c"])));
    let (a, b, c) = (idx(&r, "a"), idx(&r, "b"), idx(&r, "c"));
    let req = RequestInfo::new(1, 10);
    for _ in 0..2 {
        r.on_dispatch(a, &req, 0);
    }
    r.on_dispatch(b, &req, 0);
    for i in 0..50 {
        assert_eq!(pick(&mut r, &RequestInfo::new(i, 10), 0), Some(c));
    }
    r.on_dispatch(c, &req, 0);
    r.on_dispatch(c, &req, 0);
    for i in 0..50 {
        assert_eq!(pick(&mut r, &RequestInfo::new(i, 10), 0), Some(b), "b has 1 in flight, a and c have 2");
    }
    // Ties are shared, not given to the first.
    r.on_dispatch(b, &req, 0);
    let n = counts(&mut r, 3000, 0, |i| RequestInfo::new(i, 10));
    assert!(n.iter().all(|&x| x > 800), "{n:?}");
}

// ===== p2c =====

#[test]
fn p2c_compares_two_random_endpoints_by_peak_ewma_times_load() {
    let mut r = router(&format!("{}[policy]\nname = \"p2c\"\nkind = \"p2c\"\n", endpoints(&["fast", "mid", "slow"])));
    let (fast, mid, slow) = (idx(&r, "fast"), idx(&r, "mid"), idx(&r, "slow"));
    complete(&mut r, fast, 0, 100 * MS);
    complete(&mut r, mid, 0, 500 * MS);
    complete(&mut r, slow, 0, 3 * S);
    let now = S;
    let c = counts(&mut r, 6000, now, |i| RequestInfo::new(i, 10));
    assert_eq!(c[slow.get()], 0, "the worst endpoint loses every comparison");
    // fast wins both pairs it is in (2/3), mid wins only against slow (1/3).
    assert!((share(&c, fast.get()) - 2.0 / 3.0).abs() < 0.03, "{c:?}");
    // Load counts: 20 requests in flight make `fast` cost about 0.09 s x 21 = 1.9 s: above mid (0.48 s), still
    // below slow (3 s, its sample is too recent to have decayed). Now mid wins 2/3 and fast 1/3.
    let req = RequestInfo::new(1, 10);
    for _ in 0..20 {
        r.on_dispatch(fast, &req, now);
    }
    let c = counts(&mut r, 6000, now, |i| RequestInfo::new(i, 10));
    assert_eq!(c[slow.get()], 0, "{c:?}");
    assert!((share(&c, mid.get()) - 2.0 / 3.0).abs() < 0.03, "{c:?}");
    // A new endpoint counts as the 1 s default until measured: it loses to mid (0.48 s), beats slow (3 s).
    let mut r = router(&format!("{}[policy]\nname = \"p2c\"\nkind = \"p2c\"\n", endpoints(&["new", "mid", "slow"])));
    complete(&mut r, mid, 0, 500 * MS);
    complete(&mut r, slow, 0, 3 * S);
    let c = counts(&mut r, 6000, now, |i| RequestInfo::new(i, 10));
    assert_eq!(c[slow.get()], 0, "{c:?}");
    assert!((share(&c, 0) - 1.0 / 3.0).abs() < 0.03, "{c:?}");
}

#[test]
fn p2c_compares_a_new_sample_with_the_decayed_peak() {
    let mut r = router(&format!("{}[policy]\nname = \"p2c\"\nkind = \"p2c\"\n", endpoints(&["a", "b"])));
    let (a, b) = (idx(&r, "a"), idx(&r, "b"));
    // a peaked at 2 s, 7 s before a 1 s sample: the peak has decayed to 2 e^-0.7 = 0.99 s, so 1 s is the new peak
    // (blending it into the undecayed 2 s would give 1.5 s). b has one 1.2 s sample.
    complete(&mut r, a, 0, 2 * S);
    complete(&mut r, a, 8 * S, S);
    complete(&mut r, b, 8 * S, 1200 * MS);
    let c = counts(&mut r, 1000, 9200 * MS, |i| RequestInfo::new(i, 10));
    assert_eq!(c, vec![1000, 0], "a (about 0.98 s) is faster than b (1.2 s)");
}

// ===== latency =====

fn latency_router(buffer: f64) -> Router {
    let mut r = router(&format!(
        "{}[policy]\nname = \"lat\"\nkind = \"latency\"\nbuffer = {buffer}\n",
        endpoints(&["a", "b", "c", "d"])
    ));
    for (e, ms) in [("a", 1000), ("b", 1050), ("c", 1100), ("d", 2000)] {
        let e = idx(&r, e);
        complete(&mut r, e, 0, ms * MS);
    }
    r
}

#[test]
fn latency_without_buffer_sends_everything_to_the_lowest_average() {
    let mut r = latency_router(0.0);
    let c = counts(&mut r, 2000, 3 * S, |i| RequestInfo::new(i, 10));
    assert_eq!(c, vec![2000, 0, 0, 0]);
}

#[test]
fn latency_with_buffer_spreads_load_across_near_equal_endpoints() {
    let mut r = latency_router(0.2);
    let c = counts(&mut r, 9000, 3 * S, |i| RequestInfo::new(i, 10));
    assert_eq!(c[3], 0, "2 s is not within 20% of 1 s");
    for i in 0..3 {
        assert!((share(&c, i) - 1.0 / 3.0).abs() < 0.03, "{c:?}");
    }
}

#[test]
fn latency_routes_to_the_simplest_tier_when_everything_is_slow() {
    let src = "[[endpoints]]\nid = \"small\"\ntier = 0\n[[endpoints]]\nid = \"big\"\ntier = 2\n\
               [policy]\nname = \"lat\"\nkind = \"latency\"\nslow_threshold = \"20s\"\n";
    let mut r = router(src);
    let (small, big) = (idx(&r, "small"), idx(&r, "big"));
    complete(&mut r, small, 0, 30 * S);
    complete(&mut r, big, 0, 25 * S);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 10), 40 * S), "small", "all above 20 s: lowest tier");
    complete(&mut r, big, 40 * S, 10 * S);
    complete(&mut r, big, 50 * S, 10 * S);
    assert!(r.state(big).latency.value() < 20.0 * S as f64);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 10), 61 * S), "big", "big recovered below the threshold");
}

// ===== usage =====

#[test]
fn usage_shifts_traffic_away_before_the_quota_is_hit() {
    let src = "[[endpoints]]\nid = \"small\"\nlimits = { rpm = 100 }\n[[endpoints]]\nid = \"large\"\nlimits = { rpm = 100000 }\n\
               [policy]\nname = \"u\"\nkind = \"usage\"\nthreshold = 0.5\n";
    let mut r = router(src);
    let small = idx(&r, "small");
    let c = counts(&mut r, 10_000, 0, |i| RequestInfo::new(i, 10));
    assert!((share(&c, 0) - 0.5).abs() < 0.02, "no usage: equal shares {c:?}");
    let req = RequestInfo::new(0, 10);
    let mut used = 0;
    for (until, want) in [(40, 0.5), (80, 0.4 / 1.4), (95, 0.1 / 1.1)] {
        while used < until {
            r.on_dispatch(small, &req, 0);
            used += 1;
        }
        assert!(r.is_eligible(small, &req, 0), "quota not hit yet at {used}/100");
        let c = counts(&mut r, 20_000, 0, |i| RequestInfo::new(i, 10));
        assert!((share(&c, 0) - want).abs() < 0.02, "at {used}/100 rpm: share {} want {want}", share(&c, 0));
    }
    while used < 100 {
        r.on_dispatch(small, &req, 0);
        used += 1;
    }
    let c = counts(&mut r, 2000, 0, |i| RequestInfo::new(i, 10));
    assert_eq!(c[0], 0, "exhausted quota: never chosen");
    // The window slides: a minute later the quota is free again.
    let c = counts(&mut r, 10_000, 61 * S, |i| RequestInfo::new(i, 10));
    assert!((share(&c, 0) - 0.5).abs() < 0.02, "{c:?}");
}

#[test]
fn usage_maps_task_classes_to_tiers_and_spills_upward_when_a_tier_is_full() {
    let src = "[[endpoints]]\nid = \"t0\"\ntier = 0\n\
               [[endpoints]]\nid = \"t1\"\ntier = 1\nlimits = { rpm = 2 }\n\
               [[endpoints]]\nid = \"t2\"\ntier = 2\nlimits = { rpm = 2 }\n\
               [policy]\nname = \"u\"\nkind = \"usage\"\ntiers = { simple = 0, complex = 1 }\n";
    let mut r = router(src);
    let class = |c: &str, i| RequestInfo { task_class: Some(c.into()), ..RequestInfo::new(i, 10) };
    for i in 0..200 {
        assert_eq!(pick_id(&mut r, &class("simple", i), 0), "t0");
        assert_eq!(pick_id(&mut r, &class("complex", i), 0), "t1");
    }
    let c = counts(&mut r, 3000, 0, |i| RequestInfo::new(i, 10));
    assert!(c.iter().all(|&x| x > 800), "no class: every tier shares {c:?}");
    let req = RequestInfo::new(0, 10);
    let (t1, t2) = (idx(&r, "t1"), idx(&r, "t2"));
    r.on_dispatch(t1, &req, 0);
    r.on_dispatch(t1, &req, 0);
    assert_eq!(pick_id(&mut r, &class("complex", 1), 0), "t2", "tier 1 full: spill to tier 2");
    r.on_dispatch(t2, &req, 0);
    r.on_dispatch(t2, &req, 0);
    assert_eq!(pick_id(&mut r, &class("complex", 1), 0), "t0", "nothing at or above tier 1: the highest below");
}

// ===== cost =====

#[test]
fn cost_picks_the_cheapest_endpoint_that_can_serve_the_request() {
    let src = "[[endpoints]]\nid = \"cheap\"\nprice = { input_per_mtok = 0.1, output_per_mtok = 0.4 }\nlimits = { context_window = 4000, rpm = 3 }\n\
               [[endpoints]]\nid = \"vision\"\nprice = { input_per_mtok = 1.0, output_per_mtok = 4.0 }\ncapabilities = [\"vision\"]\nlimits = { context_window = 128000 }\n\
               [[endpoints]]\nid = \"big\"\nprice = { input_per_mtok = 3.0, output_per_mtok = 15.0 }\ncapabilities = [\"vision\"]\nlimits = { context_window = 200000 }\n\
               [[endpoints]]\nid = \"long-out\"\nprice = { input_per_mtok = 5.0, output_per_mtok = 0.5 }\nlimits = { context_window = 128000 }\n\
               [policy]\nname = \"c\"\nkind = \"cost\"\n";
    let mut r = router(src);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 1000), 0), "cheap");
    assert_eq!(pick_id(&mut r, &RequestInfo::new(2, 10_000), 0), "vision", "beyond cheap's context window");
    let vision = RequestInfo { required_capabilities: vec!["vision".into()], ..RequestInfo::new(3, 1000) };
    assert_eq!(pick_id(&mut r, &vision, 0), "vision", "cheap lacks the capability");
    // Expected output tokens change the ranking: 100 in, 20k out is cheapest where output is cheap.
    let long = RequestInfo { expected_output_tokens: Some(20_000), ..RequestInfo::new(4, 100) };
    assert_eq!(pick_id(&mut r, &long, 0), "long-out");
    // Out of quota: the next cheapest.
    let cheap = idx(&r, "cheap");
    for _ in 0..3 {
        r.on_dispatch(cheap, &RequestInfo::new(0, 1000), 0);
    }
    assert_eq!(pick_id(&mut r, &RequestInfo::new(5, 1000), 0), "vision");
    // Nothing has a 300k context window.
    assert_eq!(r.decide(&RequestInfo::new(6, 300_000), 0), Decision::Reject(RejectReason::NoCapableEndpoint));
}

// ===== hybrid =====

fn hybrid_src(weights: &str, extra: &str) -> String {
    format!(
        "[[endpoints]]\nid = \"cheap\"\nprice = {{ input_per_mtok = 0.1, output_per_mtok = 0.1 }}\nlimits = {{ rpm = 5 }}\n\
         [[endpoints]]\nid = \"mid\"\nprice = {{ input_per_mtok = 1.0, output_per_mtok = 1.0 }}\n\
         [[endpoints]]\nid = \"dear\"\nprice = {{ input_per_mtok = 10.0, output_per_mtok = 10.0 }}\n\
         [policy]\nname = \"h\"\nkind = \"hybrid\"\nweights = {weights}\n{extra}\
         tracking = {{ circuit = {{ consecutive_failures = 3, cooldown = \"10s\" }} }}\n"
    )
}

#[test]
fn hybrid_scores_by_its_weights() {
    let mut r = router(&hybrid_src("{ cost = 1.0 }", ""));
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 1000), 0), "cheap");
    let mut r = router(&hybrid_src("{ latency = 1.0 }", ""));
    let (cheap, mid, dear) = (idx(&r, "cheap"), idx(&r, "mid"), idx(&r, "dear"));
    complete(&mut r, cheap, 0, 3 * S);
    complete(&mut r, mid, 0, 2 * S);
    complete(&mut r, dear, 0, S);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 1000), 4 * S), "dear");
    // Cost and latency together, each min-max normalised: cheap scores (3 x 0 + 1 x 1) / 4 = 0.25, mid
    // (3 x 0.09 + 1 x 0.5) / 4 = 0.19, dear (3 x 1 + 0) / 4 = 0.75. Mid wins although it is best on neither.
    let mut r = router(&hybrid_src("{ cost = 3.0, latency = 1.0 }", ""));
    complete(&mut r, cheap, 0, 3 * S);
    complete(&mut r, mid, 0, 2 * S);
    complete(&mut r, dear, 0, S);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 1000), 4 * S), "mid");
    // With cost at 10:1, cheap wins.
    let mut r = router(&hybrid_src("{ cost = 10.0, latency = 1.0 }", ""));
    complete(&mut r, cheap, 0, 3 * S);
    complete(&mut r, mid, 0, 2 * S);
    complete(&mut r, dear, 0, S);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 1000), 4 * S), "cheap");
    // Load: in-flight requests move traffic off an endpoint.
    let mut r = router(&hybrid_src("{ cost = 1.0, load = 2.0 }", ""));
    let req = RequestInfo::new(0, 10);
    r.on_dispatch(cheap, &req, 0);
    r.on_dispatch(cheap, &req, 0);
    r.on_dispatch(dear, &req, 0);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 1000), 0), "mid", "cheap is loaded; mid beats dear on cost");
}

#[test]
fn hybrid_never_picks_an_open_circuit_or_an_exhausted_quota() {
    let mut r = router(&hybrid_src("{ cost = 1.0 }", ""));
    let (cheap, mid) = (idx(&r, "cheap"), idx(&r, "mid"));
    for t in 0..3 {
        fail(&mut r, cheap, t * MS, ErrorClass::Server);
    }
    assert!(matches!(r.state(cheap).circuit, Circuit::Open { .. }));
    for i in 0..200 {
        assert_eq!(pick(&mut r, &RequestInfo::new(i, 1000), S), Some(mid), "open circuit is filtered");
    }
    // After the cooldown the cheapest gets one probe, then nothing until the probe reports.
    assert_eq!(pick(&mut r, &RequestInfo::new(1, 1000), 11 * S), Some(cheap));
    r.on_dispatch(cheap, &RequestInfo::new(1, 1000), 11 * S);
    assert_eq!(pick(&mut r, &RequestInfo::new(2, 1000), 11 * S), Some(mid));

    // Quota: cheap has rpm 5.
    let mut r = router(&hybrid_src("{ cost = 1.0 }", ""));
    for i in 0..5 {
        let req = RequestInfo::new(i, 1000);
        assert_eq!(pick(&mut r, &req, 0), Some(cheap));
        r.on_dispatch(cheap, &req, 0);
    }
    for i in 0..200 {
        assert_eq!(pick(&mut r, &RequestInfo::new(i, 1000), S), Some(mid), "exhausted quota is filtered");
    }
}

#[test]
fn hybrid_latency_ceiling_excludes_slow_endpoints_unless_all_are_slow() {
    let mut r = router(&hybrid_src("{ cost = 1.0 }", "latency_ceiling = \"30s\"\n"));
    let (cheap, mid, dear) = (idx(&r, "cheap"), idx(&r, "mid"), idx(&r, "dear"));
    complete(&mut r, cheap, 0, 40 * S);
    for i in 0..100 {
        assert_eq!(pick_id(&mut r, &RequestInfo::new(i, 1000), 41 * S), "mid");
    }
    complete(&mut r, mid, 41 * S, 35 * S);
    complete(&mut r, dear, 41 * S, 50 * S);
    assert_eq!(pick(&mut r, &RequestInfo::new(1, 1000), 80 * S), Some(cheap), "all above the ceiling: it is ignored");
}

#[test]
fn hybrid_buffer_spreads_load_over_near_equal_scores() {
    let src = "[[endpoints]]\nid = \"a\"\nprice = { input_per_mtok = 1.00, output_per_mtok = 1.0 }\n\
               [[endpoints]]\nid = \"b\"\nprice = { input_per_mtok = 1.01, output_per_mtok = 1.01 }\n\
               [[endpoints]]\nid = \"c\"\nprice = { input_per_mtok = 2.00, output_per_mtok = 2.0 }\n\
               [policy]\nname = \"h\"\nkind = \"hybrid\"\nweights = { cost = 10.0 }\n";
    let mut r = router(src);
    let c = counts(&mut r, 4000, 0, |i| RequestInfo::new(i, 1000));
    assert_eq!(c, vec![4000, 0, 0], "no buffer: the best only");
    // The buffer is a margin on the 0..1 score whatever the weights' scale: b is at 0.01, c at 1.
    let mut r = router(&src.replace("weights", "buffer = 0.05\nweights"));
    let c = counts(&mut r, 4000, 0, |i| RequestInfo::new(i, 1000));
    assert_eq!(c[2], 0);
    assert!((share(&c, 0) - 0.5).abs() < 0.03, "{c:?}");
}

// ===== conditional =====

const CONDITIONAL: &str = r#"
[[endpoints]]
id = "big-a"
[[endpoints]]
id = "big-b"
[[endpoints]]
id = "cheap"
[[endpoints]]
id = "x"
[[endpoints]]
id = "y"

[policy]
name = "root"
kind = "conditional"
rules = [
  { when = { plan = "enterprise", input_tokens = { "$gt" = 1000 } }, target = "premium" },
  { when = { "$or" = [ { region = { "$in" = ["eu", "uk"] } }, { priority = { "$lt" = 2 } } ] }, target = "cheap" },
]
default = "balanced"

[[groups]]
name = "premium"
kind = "latency"
targets = ["big-a", "big-b"]

[[groups]]
name = "balanced"
kind = "weighted"
targets = [{ id = "pool", weight = 3.0 }, { id = "cheap", weight = 1.0 }]

[[groups]]
name = "pool"
kind = "round-robin"
targets = ["x", "y"]
"#;

#[test]
fn conditional_rules_choose_nested_groups() {
    let mut r = router(CONDITIONAL);
    let s = |v: &str| MetaValue::Str(v.into());
    let enterprise = |i| RequestInfo { input_tokens: 5000, ..req_with(i, &[("plan", s("enterprise"))]) };
    for i in 0..100 {
        let got = pick_id(&mut r, &enterprise(i), 0);
        assert!(got == "big-a" || got == "big-b", "{got}");
    }
    // The first rule needs both conditions: a short enterprise request falls through to later rules / default.
    let short = req_with(1, &[("plan", s("enterprise")), ("region", s("uk"))]);
    assert_eq!(pick_id(&mut r, &short, 0), "cheap");
    assert_eq!(pick_id(&mut r, &req_with(2, &[("priority", MetaValue::Num(1.0))]), 0), "cheap");
    // Default: weighted 3:1 between the round-robin pool (alternating x, y) and cheap.
    let c = counts(&mut r, 8000, 0, |i| req_with(i, &[("region", s("us"))]));
    let (cheap, x, y) = (idx(&r, "cheap").get(), idx(&r, "x").get(), idx(&r, "y").get());
    assert!((share(&c, cheap) - 0.25).abs() < 0.02, "{c:?}");
    // (The pool's rotation advances only on the requests it serves.)
    assert!((c[x] as f64 / c[y] as f64 - 1.0).abs() < 0.05, "the nested round robin shares: {c:?}");
    assert_eq!(c[idx(&r, "big-a").get()] + c[idx(&r, "big-b").get()], 0);
    // The matched group has nothing eligible: the default takes over.
    r.on_health(idx(&r, "big-a"), false, 0);
    r.on_health(idx(&r, "big-b"), false, 0);
    let got = pick_id(&mut r, &enterprise(7), 0);
    assert!(["x", "y", "cheap"].contains(&got.as_str()), "{got}");
}

#[test]
fn conditional_without_default_rejects_unmatched_requests() {
    let src = CONDITIONAL.replace("default = \"balanced\"\n", "");
    let mut r = router(&src);
    assert_eq!(r.decide(&req_with(1, &[]), 0), Decision::Reject(RejectReason::NoRoute));
    assert_eq!(pick_id(&mut r, &req_with(2, &[("region", MetaValue::Str("eu".into()))]), 0), "cheap");
}

// ===== sticky =====

fn sticky_src(ids: &[&str]) -> String {
    format!("{}[policy]\nname = \"s\"\nkind = \"sticky\"\nkey = \"user\"\n", endpoints(ids))
}

fn user(i: u64, u: u64) -> RequestInfo {
    req_with(i, &[("user", MetaValue::Str(format!("user-{u}")))])
}

#[test]
fn sticky_keeps_a_key_on_its_endpoint_while_it_is_eligible() {
    let mut r = router(&sticky_src(&["a", "b", "c", "d"]));
    let home: Vec<String> = (0..400).map(|u| pick_id(&mut r, &user(u, u), 0)).collect();
    for u in 0..400u64 {
        for i in 0..5 {
            assert_eq!(pick_id(&mut r, &user(1000 + i * 7 + u, u), 0), home[u as usize], "user {u}");
        }
    }
    for e in ["a", "b", "c", "d"] {
        let n = home.iter().filter(|h| *h == e).count();
        assert!(n > 40, "keys spread over endpoints: {e} has {n}");
    }
    // Take `a` out: its keys move, the others stay; they come back when it recovers.
    let a = idx(&r, "a");
    r.on_health(a, false, 0);
    for u in 0..400u64 {
        let now = pick_id(&mut r, &user(u, u), 0);
        if home[u as usize] == "a" {
            assert_ne!(now, "a");
        } else {
            assert_eq!(now, home[u as usize]);
        }
    }
    r.on_health(a, true, 0);
    for u in 0..400u64 {
        assert_eq!(pick_id(&mut r, &user(u, u), 0), home[u as usize]);
    }
}

#[test]
fn sticky_adding_an_endpoint_moves_few_keys_and_only_to_it() {
    let mut four = router(&sticky_src(&["a", "b", "c", "d"]));
    let mut five = router(&sticky_src(&["a", "b", "c", "d", "e"]));
    let n = 4000;
    let mut moved = 0;
    for u in 0..n {
        let before = pick_id(&mut four, &user(u, u), 0);
        let after = pick_id(&mut five, &user(u, u), 0);
        if before != after {
            moved += 1;
            assert_eq!(after, "e", "a key only moves to the new endpoint");
        }
    }
    let frac = moved as f64 / n as f64;
    assert!(frac > 0.1 && frac < 0.3, "about 1/5 of keys move, moved {frac}");
}

#[test]
fn sticky_requests_without_the_key_use_the_default_then_the_ring() {
    let src = format!("{}default = \"c\"\n", sticky_src(&["a", "b", "c"]));
    let mut r = router(&src);
    for i in 0..50 {
        assert_eq!(pick_id(&mut r, &RequestInfo::new(i, 10), 0), "c");
    }
    r.on_health(idx(&r, "c"), false, 0);
    let c = counts(&mut r, 300, 0, |i| RequestInfo::new(i, 10));
    assert_eq!(c[2], 0);
    assert!(c[0] > 0 && c[1] > 0, "without an eligible default the ring serves: {c:?}");
}

// ===== fallback policy =====

#[test]
fn fallback_policy_takes_the_first_eligible_target_in_order() {
    let src = format!(
        "{}[policy]\nname = \"f\"\nkind = \"fallback\"\ntargets = [\"b\", \"c\", \"a\"]\n",
        endpoints(&["a", "b", "c"])
    );
    let mut r = router(&src);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 10), 0), "b");
    r.on_health(idx(&r, "b"), false, 0);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 10), 0), "c");
    r.on_health(idx(&r, "c"), false, 0);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 10), 0), "a");
    r.on_health(idx(&r, "a"), false, 0);
    assert_eq!(r.decide(&RequestInfo::new(1, 10), 0), Decision::Reject(RejectReason::AllUnhealthy));
}

// ===== circuit breaker through the router =====

#[test]
fn circuit_opens_after_n_failures_and_half_opens_after_the_cooldown() {
    let src = format!(
        "{}[policy]\nname = \"f\"\nkind = \"fallback\"\ntargets = [\"a\", \"b\"]\n\
         tracking = {{ circuit = {{ consecutive_failures = 3, cooldown = \"10s\" }} }}\n",
        endpoints(&["a", "b"])
    );
    let mut r = router(&src);
    let (a, b) = (idx(&r, "a"), idx(&r, "b"));
    fail(&mut r, a, 0, ErrorClass::Server);
    fail(&mut r, a, MS, ErrorClass::Timeout);
    assert_eq!(pick(&mut r, &RequestInfo::new(1, 10), 2 * MS), Some(a), "two failures: still closed");
    // A 429 is quota, not health: it neither counts nor resets.
    r.on_dispatch(a, &RequestInfo::new(1, 10), 2 * MS);
    let mut limited = router_core::Outcome::failure(ErrorClass::RateLimited, MS);
    limited.retry_after = Some(1);
    r.on_result(a, &RequestInfo::new(1, 10), &limited, 2 * MS);
    assert_eq!(r.state(a).circuit, Circuit::Closed);
    fail(&mut r, a, 3 * MS, ErrorClass::Server);
    assert_eq!(r.state(a).circuit, Circuit::Open { until: 3 * MS + 10 * S });
    for t in [4 * MS, S, 10 * S] {
        assert_eq!(pick(&mut r, &RequestInfo::new(1, 10), t), Some(b), "open at {t}");
    }
    let probe_at = 3 * MS + 10 * S;
    assert_eq!(pick(&mut r, &RequestInfo::new(1, 10), probe_at), Some(a), "cooldown over: a probe");
    r.on_dispatch(a, &RequestInfo::new(1, 10), probe_at);
    assert_eq!(r.state(a).circuit, Circuit::HalfOpen { probes: 1 });
    assert_eq!(pick(&mut r, &RequestInfo::new(2, 10), probe_at), Some(b), "one probe at a time");
    // The probe fails: open again for a full cooldown.
    r.on_result(a, &RequestInfo::new(1, 10), &router_core::Outcome::failure(ErrorClass::Server, S), probe_at + S);
    assert_eq!(r.state(a).circuit, Circuit::Open { until: probe_at + 11 * S });
    // The next probe succeeds: closed.
    let t = probe_at + 11 * S;
    assert_eq!(pick(&mut r, &RequestInfo::new(3, 10), t), Some(a));
    complete(&mut r, a, t, S);
    assert_eq!(r.state(a).circuit, Circuit::Closed);
    assert_eq!(pick(&mut r, &RequestInfo::new(4, 10), t + S), Some(a));
}

#[test]
fn circuit_opens_on_error_rate_over_the_window() {
    let src = format!(
        "{}[policy]\nname = \"rr\"\nkind = \"round-robin\"\n\
         tracking = {{ circuit = {{ consecutive_failures = 0, error_rate = 0.5, min_requests = 10 }} }}\n",
        endpoints(&["a", "b"])
    );
    let mut r = router(&src);
    let a = idx(&r, "a");
    for i in 0..10 {
        if i % 2 == 0 {
            fail(&mut r, a, i * MS, ErrorClass::Server);
        } else {
            complete(&mut r, a, i * MS, MS);
        }
        if i < 9 {
            assert_eq!(r.state(a).circuit, Circuit::Closed, "below min_requests at {i}");
        }
    }
    fail(&mut r, a, 20 * MS, ErrorClass::Server);
    assert!(matches!(r.state(a).circuit, Circuit::Open { .. }), "6 of 11 failed");
    let c = counts(&mut r, 10, 21 * MS, |i| RequestInfo::new(i, 10));
    assert_eq!(c, vec![0, 10]);
}

#[test]
fn retry_after_keeps_an_endpoint_out_of_rotation_until_it_passes() {
    let mut r = router(&format!("{}[policy]\nname = \"rr\"\nkind = \"round-robin\"\n", endpoints(&["a", "b"])));
    let a = idx(&r, "a");
    let req = RequestInfo::new(1, 10);
    r.on_dispatch(a, &req, 0);
    let mut o = router_core::Outcome::failure(ErrorClass::RateLimited, MS);
    o.retry_after = Some(5 * S);
    r.on_result(a, &req, &o, S);
    assert!(!r.is_eligible(a, &req, 6 * S - 1));
    assert_eq!(counts(&mut r, 10, 3 * S, |i| RequestInfo::new(i, 10)), vec![0, 10]);
    assert!(r.is_eligible(a, &req, 6 * S));
    assert_eq!(counts(&mut r, 10, 6 * S, |i| RequestInfo::new(i, 10)), vec![5, 5]);
}

#[test]
fn the_peak_ewma_is_kept_only_when_a_policy_reads_it() {
    for (kind, kept) in [("p2c", true), ("round-robin", false), ("latency", false)] {
        let mut r = router(&format!("{}[policy]\nname = \"p\"\nkind = \"{kind}\"\n", endpoints(&["a", "b"])));
        let a = idx(&r, "a");
        assert_eq!(r.state(a).track_peak, kept, "{kind}");
        let before = r.state(a).peak.estimate(0);
        complete(&mut r, a, 1_000, 7_000_000_000);
        let after = r.state(a).peak.estimate(1_000);
        assert_eq!(after != before, kept, "{kind}: peak {before} -> {after}");
    }
}

#[test]
fn the_ttft_average_is_kept_only_for_a_caller_that_reads_it() {
    // No policy reads it: every router's endpoints leave it alone ...
    for kind in ["latency", "usage", "p2c", "round-robin"] {
        let mut r = router(&format!("{}[policy]\nname = \"p\"\nkind = \"{kind}\"\n", endpoints(&["a", "b"])));
        let a = idx(&r, "a");
        assert!(!r.state(a).track_ttft, "{kind}");
        complete(&mut r, a, 1_000, 4_000_000_000);
        assert_eq!(r.state(a).ttft.samples(), 0, "{kind}: the TTFT average took a sample");
        assert_eq!(r.state(a).latency.samples(), 1, "{kind}: the latency average missed its sample");
    }
    // ... and an endpoint state that tracks it (the default of a fresh one) averages the first tokens.
    let tracking = router_core::state::TrackingConfig::default();
    let mut st = router_core::state::EndpointState::new(&tracking);
    assert!(st.track_ttft);
    st.on_result(&router_core::Outcome::success(4 * S, Some(S), 10, 10), 0.0, 0, 5 * S, &tracking);
    assert_eq!(st.ttft.samples(), 1);
    assert_eq!(st.ttft.value(), S as f64);
}
