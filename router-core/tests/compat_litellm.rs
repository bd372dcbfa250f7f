//! LiteLLM compat policies, cooldowns and retry order against the behaviour LiteLLM's source defines
//! (`litellm/router_strategy/*.py`, `litellm/router_utils/cooldown_handlers.py`, `litellm/router.py`).

mod common;

use common::*;
use router_core::{Attempts, ErrorClass, NextAttempt, Outcome, RequestInfo, Router};

const NO_CIRCUIT: &str = "[policy.tracking.circuit]\nenabled = false\n";

fn success(r: &mut Router, id: &str, now: u64, latency: u64, ttft: Option<u64>, output: u32, streaming: bool) {
    let e = idx(r, id);
    let mut req = RequestInfo::new(u64::MAX, 100);
    req.streaming = streaming;
    r.on_dispatch(e, &req, now);
    r.on_result(e, &req, &Outcome::success(latency, ttft, 100, output), now + latency);
}

// ===== least-busy =====

#[test]
fn least_busy_takes_the_first_deployment_with_fewest_in_flight() {
    let mut r =
        router(&format!("{}[policy]\nname = \"lb\"\nkind = \"litellm-least-busy\"\n", endpoints(&["a", "b", "c"])));
    let (a, b) = (idx(&r, "a"), idx(&r, "b"));
    let req = RequestInfo::new(1, 10);
    r.on_dispatch(a, &req, 0);
    r.on_dispatch(b, &req, 0);
    r.on_dispatch(b, &req, 0);
    assert_eq!(counts(&mut r, 100, 0, |i| RequestInfo::new(i, 10)), vec![0, 0, 100], "c has none in flight");
    // Ties go to the first in order (LiteLLM's strict `<` over its map), not at random.
    let c = idx(&r, "c");
    r.on_dispatch(c, &req, 0);
    assert_eq!(counts(&mut r, 100, 0, |i| RequestInfo::new(i, 10)), vec![100, 0, 0]);
}

#[test]
fn least_busy_takes_the_next_least_busy_healthy_deployment_when_the_least_busy_one_is_not_healthy() {
    let mut r =
        router(&format!("{}[policy]\nname = \"lb\"\nkind = \"litellm-least-busy\"\n", endpoints(&["a", "b", "c"])));
    let (b, c) = (idx(&r, "b"), idx(&r, "c"));
    let req = RequestInfo::new(1, 10);
    for _ in 0..5 {
        r.on_dispatch(b, &req, 0);
    }
    r.on_dispatch(c, &req, 0);
    // a (0 in flight) is the minimum but fails its health check. LiteLLM 1.110.2 takes the first minimum over
    // the healthy deployments only: c (1 in flight) every time. (Commit 00e06b8 picked uniformly among the
    // healthy b and c instead.)
    r.on_health(idx(&r, "a"), false, 0);
    assert_eq!(counts(&mut r, 4000, 0, |i| RequestInfo::new(i, 10)), vec![0, 0, 4000]);
    // Once c is as busy as b, the first of the two in order.
    for _ in 0..4 {
        r.on_dispatch(c, &req, 0);
    }
    assert_eq!(counts(&mut r, 100, 0, |i| RequestInfo::new(i, 10)), vec![0, 100, 0]);
}

// ===== usage-based-routing-v2 =====

#[test]
fn usage_v2_picks_fewest_tokens_this_minute_within_tpm() {
    let src = "[[endpoints]]\nid = \"a\"\nlimits = { tpm = 100000 }\n[[endpoints]]\nid = \"b\"\nlimits = { tpm = 1000 }\n\
               [[endpoints]]\nid = \"c\"\n[policy]\nname = \"u\"\nkind = \"litellm-usage-v2\"\n";
    let mut r = router(src);
    success(&mut r, "a", 0, 100 * MS, None, 400, false); // 500 tokens
    success(&mut r, "c", 0, 100 * MS, None, 900, false); // 1000 tokens
    // b has 0 tokens but a request of 1200 input tokens would exceed its tpm of 1000.
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 1200), S), "a");
    assert_eq!(pick_id(&mut r, &RequestInfo::new(2, 100), S), "b", "the fewest tokens this minute");
    // A new calendar minute starts every count at zero: ties share at random.
    let n = counts(&mut r, 3000, 61 * S, |i| RequestInfo::new(i, 100));
    assert!(n.iter().all(|&k| k > 800), "{n:?}");
}

/// LiteLLM 1.110.2's usage-based-routing-v2 also skips a deployment whose calls this UTC minute, counted before
/// each call (failures too), plus one reach its `rpm`: with `rpm = 5` it takes 4 calls a minute. routesim before
/// had only the shared quota filter (5 per sliding minute) and gave it 5.
#[test]
fn usage_v2_skips_a_deployment_whose_calls_this_minute_plus_one_reach_its_rpm() {
    let src = "[[endpoints]]\nid = \"a\"\nlimits = { rpm = 5 }\n[[endpoints]]\nid = \"b\"\n\
               [policy]\nname = \"u\"\nkind = \"litellm-usage-v2\"\n[policy.tracking.circuit]\nenabled = false\n";
    let mut r = router(src);
    let (a, b) = (idx(&r, "a"), idx(&r, "b"));
    success(&mut r, "b", 0, 100 * MS, None, 100, false); // b: 200 tokens, a: none
    // `a` fails every call: failures add no tokens, so it stays the one with the fewest, but each call counts.
    let picks = |r: &mut Router, from: u64| -> Vec<&'static str> {
        (0..8)
            .map(|i| {
                let now = from + i * S;
                let req = RequestInfo::new(i, 100);
                let e = pick(r, &req, now).expect("a pick");
                r.on_dispatch(e, &req, now);
                let out =
                    if e == a { Outcome::failure(ErrorClass::Server, MS) } else { Outcome::success(MS, None, 1, 1) };
                r.on_result(e, &req, &out, now + MS);
                if e == a { "a" } else { "b" }
            })
            .collect()
    };
    assert_eq!(picks(&mut r, S), ["a", "a", "a", "a", "b", "b", "b", "b"], "rpm - 1 = 4 calls on a this minute");
    assert_eq!(r.state(a).compat.minute_dispatches(9 * S), 4);
    assert_eq!(r.state(b).compat.minute_dispatches(9 * S), 5, "b's success and its 4 picks");
    // The next calendar minute starts a's count afresh (the shared filter's sliding minute has let go too).
    success(&mut r, "b", 124 * S, 100 * MS, None, 100, false);
    assert_eq!(picks(&mut r, 125 * S), ["a", "a", "a", "a", "b", "b", "b", "b"]);
    // rpm = 1 leaves no call at all (0 + 1 >= 1): b every time, a's tokens notwithstanding.
    let mut r = router(&src.replace("rpm = 5", "rpm = 1"));
    success(&mut r, "b", 0, 100 * MS, None, 100, false);
    assert_eq!(counts(&mut r, 100, S, |i| RequestInfo::new(i, 100)), vec![0, 100]);
}

// ===== latency-based-routing =====

fn latency_src(extra: &str) -> String {
    format!("{}[policy]\nname = \"l\"\nkind = \"litellm-latency\"\n{extra}", endpoints(&["a", "b", "c"]))
}

#[test]
fn latency_scores_seconds_per_output_token_and_tries_unmeasured_deployments_first() {
    let mut r = router(&latency_src(""));
    // a: 2 s for 100 tokens = 0.02 s/token; b: 1 s for 10 tokens = 0.1 s/token. c unmeasured = 0: tried first.
    success(&mut r, "a", 0, 2 * S, None, 100, false);
    success(&mut r, "b", 0, S, None, 10, false);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 10), 3 * S), "c");
    // That pick wrote c's placeholder [0] into the group's map (LiteLLM 1.110.2): c's first sample, 0.03 s/token,
    // joins it, and the mean 0.015 beats a's 0.02.
    assert_eq!(r.state(idx(&r, "c")).compat.latencies(), [0.0]);
    success(&mut r, "c", 0, 3 * S, None, 100, false);
    assert_eq!(r.state(idx(&r, "c")).compat.latencies(), [0.0, 0.03]);
    assert_eq!(counts(&mut r, 500, 4 * S, |i| RequestInfo::new(i, 10)), vec![0, 0, 500], "the placeholder halves c");
    // Ten more samples slide the 0 out of c's window of 10: a is fastest per token again.
    for _ in 0..10 {
        success(&mut r, "c", 5 * S, 3 * S, None, 100, false);
    }
    assert_eq!(counts(&mut r, 500, 9 * S, |i| RequestInfo::new(i, 10)), vec![500, 0, 0], "a is fastest per token");
}

#[test]
fn latency_uses_ttft_for_streaming_and_penalises_timeouts() {
    let mut r = router(&latency_src(""));
    for id in ["a", "b", "c"] {
        success(&mut r, id, 0, S, Some(if id == "b" { 10 * MS } else { 500 * MS }), 100, true);
    }
    let mut stream = RequestInfo::new(1, 10);
    stream.streaming = true;
    assert_eq!(pick_id(&mut r, &stream, 2 * S), "b", "streaming: lowest time to first token");
    // 1.110.2 keeps the time to first token in seconds (not per output token).
    assert_eq!(r.state(idx(&r, "b")).compat.ttfts(), [0.01]);
    // A timeout on b appends a 1000 s penalty to its latency list.
    let b = idx(&r, "b");
    fail(&mut r, b, 2 * S, ErrorClass::Timeout);
    assert_ne!(pick_id(&mut r, &RequestInfo::new(2, 10), 3 * S), "b");
    // Streaming: the mean of b's TTFT list (the timeout added nothing to it), so b stays best.
    assert_eq!(pick_id(&mut r, &stream, 3 * S), "b");
}

#[test]
fn latency_buffer_spreads_within_a_fraction_of_the_best() {
    let mut r = router(&latency_src("buffer = 0.5\n"));
    success(&mut r, "a", 0, S, None, 100, false); // 0.010
    success(&mut r, "b", 0, 1400 * MS, None, 100, false); // 0.014: within 50%
    success(&mut r, "c", 0, 1600 * MS, None, 100, false); // 0.016: beyond
    let n = counts(&mut r, 4000, 2 * S, |i| RequestInfo::new(i, 10));
    assert_eq!(n[2], 0, "{n:?}");
    assert!(n[0] > 1800 && n[1] > 1800, "{n:?}");
}

#[test]
fn latency_lists_are_a_sliding_window_of_the_last_samples() {
    let mut r = router(&latency_src("samples = 3\n"));
    // b: 0.01, 0.01 then 1.0, 1.0, 0.01: LiteLLM 1.110.2 keeps the last 3 (`latency[1:] + [value]`), where the
    // releases before kept the first 2 and replaced the last ([0.01, 0.01, 0.01]); a and c steady at 0.02.
    for lat in [S, S, 100 * S, 100 * S, S] {
        success(&mut r, "b", 0, lat, None, 100, false);
    }
    for _ in 0..3 {
        success(&mut r, "a", 0, 2 * S, None, 100, false);
        success(&mut r, "c", 0, 2 * S, None, 100, false);
    }
    let b = r.state(idx(&r, "b")).compat.latencies().to_vec();
    assert_eq!(b, vec![1.0, 1.0, 0.01], "the window of the last 3");
    assert_ne!(pick_id(&mut r, &RequestInfo::new(1, 10), 200 * S), "b");
}

#[test]
fn latency_lists_expire_ttl_after_the_last_write_to_the_group() {
    let mut r = router(&latency_src("ttl = \"10s\"\n"));
    success(&mut r, "a", 0, S, None, 100, false);
    success(&mut r, "b", 0, 5 * S, None, 100, false);
    success(&mut r, "c", 0, 5 * S, None, 100, false);
    assert_eq!(counts(&mut r, 300, 6 * S, |i| RequestInfo::new(i, 10)), vec![300, 0, 0]);
    // 10 s after the last write every list is gone: all score 0, chosen at random.
    let n = counts(&mut r, 3000, 16 * S, |i| RequestInfo::new(i, 10));
    assert!(n.iter().all(|&k| k > 800), "{n:?}");
    // The next write starts the group afresh: b's list holds only the new sample, a's and c's are gone (score
    // 0), so a and c share the traffic and b gets none.
    success(&mut r, "b", 16 * S, 2 * S, None, 100, false);
    assert_eq!(r.state(idx(&r, "a")).compat.latencies().len(), 0, "a's list was cleared with the group's");
    assert_eq!(r.state(idx(&r, "b")).compat.latencies(), [0.02]);
    let n = counts(&mut r, 3000, 19 * S, |i| RequestInfo::new(i, 10));
    assert!(n[1] == 0 && n[0] > 1300 && n[2] > 1300, "{n:?}");
}

// ===== cost-based-routing =====

#[test]
fn cost_picks_lowest_per_token_price_sum_first_in_order() {
    let src = "[[endpoints]]\nid = \"a\"\nprice = { input_per_mtok = 1.0, output_per_mtok = 4.0 }\n\
               [[endpoints]]\nid = \"b\"\nprice = { input_per_mtok = 3.0, output_per_mtok = 2.0 }\nlimits = { rpm = 1 }\n\
               [[endpoints]]\nid = \"c\"\nprice = { input_per_mtok = 0.5, output_per_mtok = 6.0 }\n\
               [policy]\nname = \"cheapest\"\nkind = \"litellm-cost\"\n";
    let mut r = router(src);
    // a and b tie at 5e-6 per token: the first in order wins every time (a stable sort), c (6.5e-6) never.
    assert_eq!(counts(&mut r, 200, 0, |i| RequestInfo::new(i, 10)), vec![200, 0, 0]);
    r.on_health(idx(&r, "a"), false, 0);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(1, 10), 0), "b");
    // One success this minute uses b's rpm of 1 (`item_rpm + 1 > rpm`): the next cheapest serves.
    success(&mut r, "b", 0, S, None, 10, false);
    assert_eq!(pick_id(&mut r, &RequestInfo::new(2, 10), 2 * S), "c");
}

// ===== cooldowns =====

fn cooldown_src(cooldown: &str) -> String {
    format!(
        "{}[policy]\nname = \"s\"\nkind = \"weighted\"\n[policy.cooldown]\ncooldown_time = \"5s\"\n{cooldown}{NO_CIRCUIT}",
        endpoints(&["a", "b"])
    )
}

#[test]
fn a_429_cools_a_deployment_down_at_once_for_cooldown_time() {
    let mut r = router(&cooldown_src(""));
    let a = idx(&r, "a");
    let req = RequestInfo::new(1, 10);
    r.on_dispatch(a, &req, 0);
    let mut o = Outcome::failure(ErrorClass::RateLimited, 10 * MS);
    o.retry_after = Some(60 * S);
    r.on_result(a, &req, &o, S);
    assert!(!r.is_eligible(a, &req, S + 4 * S), "cooling down for 5 s");
    assert!(r.is_eligible(a, &req, 6 * S + MS), "back after cooldown_time, whatever the Retry-After said");
}

#[test]
fn the_only_deployment_of_its_group_is_spared_the_429_and_failure_rate_cooldowns() {
    let mut r = router(&cooldown_src("single_deployment = [\"a\"]\n"));
    let a = idx(&r, "a");
    for k in 0..10 {
        fail(&mut r, a, k * MS, ErrorClass::RateLimited);
        fail(&mut r, a, k * MS, ErrorClass::Server);
    }
    assert!(r.is_eligible(a, &RequestInfo::new(1, 10), S), "20 failures of 20, but fewer than 1000");
}

#[test]
fn more_than_half_failed_this_minute_cools_down() {
    let mut r = router(&cooldown_src(""));
    let a = idx(&r, "a");
    let req = RequestInfo::new(1, 10);
    complete(&mut r, a, 0, 10 * MS);
    fail(&mut r, a, S, ErrorClass::Server); // 1 of 2 failed: 50% is not more than half
    assert!(r.is_eligible(a, &req, S + MS));
    fail(&mut r, a, 2 * S, ErrorClass::Timeout); // 2 of 3
    assert!(!r.is_eligible(a, &req, 2 * S + MS));
    assert!(r.is_eligible(a, &req, 7 * S + MS));
    // A 400-class error (`other`) never cools down.
    let b = idx(&r, "b");
    for k in 0..5 {
        fail(&mut r, b, k * MS, ErrorClass::Other);
    }
    assert!(r.is_eligible(b, &req, S));
}

#[test]
fn allowed_fails_counts_failures_and_cools_down_past_the_allowance() {
    let mut r = router(&cooldown_src("allowed_fails = 2\n"));
    let a = idx(&r, "a");
    let req = RequestInfo::new(1, 10);
    fail(&mut r, a, 0, ErrorClass::RateLimited); // legacy logic: a 429 is counted, not an instant cooldown
    fail(&mut r, a, S, ErrorClass::Server);
    assert!(r.is_eligible(a, &req, S + MS), "2 failures allowed");
    // The count expires cooldown_time after the last failure it counted.
    fail(&mut r, a, 7 * S, ErrorClass::Server);
    assert!(r.is_eligible(a, &req, 7 * S + MS), "the count restarted at 1");
    fail(&mut r, a, 8 * S, ErrorClass::Server);
    fail(&mut r, a, 9 * S, ErrorClass::Server);
    assert!(!r.is_eligible(a, &req, 9 * S + MS), "the third failure within the window cools down");
}

#[test]
fn cooldowns_require_the_circuit_breaker_off() {
    let src = format!("{}[policy]\nname = \"s\"\nkind = \"weighted\"\n[policy.cooldown]\n", endpoints(&["a"]));
    let err = Router::new(&config(&src)).unwrap_err();
    assert_eq!(err.path, "policy.cooldown");
}

// ===== retries and fallbacks =====

fn groups_src() -> String {
    format!(
        "{}[policy]\nname = \"root\"\nkind = \"conditional\"\nrules = [{{ when = {{ model = \"g1\" }}, target = \"g1\" }}]\ndefault = \"g2\"\n\
         [policy.retry]\nmax_attempts = 6\nbudget = {{ ratio = 1000.0, min_per_s = 1000000.0 }}\n\
         [policy.group_retry]\nnum_retries = 1\nfallbacks = {{ g1 = [\"g2\", \"g3\"] }}\n\
         [[groups]]\nname = \"g1\"\nkind = \"fallback\"\ntargets = [\"a1\", \"a2\"]\n\
         [[groups]]\nname = \"g2\"\nkind = \"fallback\"\ntargets = [\"b\"]\n\
         [[groups]]\nname = \"g3\"\nkind = \"fallback\"\ntargets = [\"c\"]\n",
        endpoints(&["a1", "a2", "b", "c"])
    )
}

#[test]
fn retries_stay_in_the_model_group_then_fallback_groups_go_in_order() {
    let mut r = router(&groups_src());
    let req = req_with(7, &[("model", router_core::MetaValue::Str("g1".into()))]);
    let first = pick(&mut r, &req, 0).unwrap();
    assert_eq!(id(&r, first), "a1");
    let mut att = Attempts::first(first);
    let err = Outcome::failure(ErrorClass::Server, 10 * MS);
    let mut seq = Vec::new();
    let mut delays = Vec::new();
    while let NextAttempt::Retry { endpoint, delay, .. } = r.next_attempt(&req, &mut att, &err, S) {
        seq.push(id(&r, endpoint).to_string());
        delays.push(delay);
    }
    // One retry in g1 (its policy picks a1 again: LiteLLM does not exclude the failed deployment), then g2 with
    // one retry, then g3 with one retry: 6 attempts in all.
    assert_eq!(seq, ["a1", "b", "b", "c", "c"]);
    assert_eq!(delays[0], 0, "g1 has two healthy deployments: retry at once");
    assert_eq!(delays[1], 0, "the first attempt in a fallback group goes at once");
    assert!(
        delays[2] >= 375 * MS && delays[2] <= 500 * MS,
        "b is alone: LiteLLM's backoff 0.5 s x (1 - 0.25u): {}",
        delays[2]
    );
}

#[test]
fn a_model_group_over_order_tiers_retries_as_a_whole_and_other_roots_groups_do_not_interfere() {
    // g1 is a fallback over two order tiers; `other` (a group no policy of this root reaches, as another
    // policy of a scenario would have) also targets a1 and must not be taken for a1's model group.
    let src = format!(
        "{}[policy]\nname = \"root\"\nkind = \"conditional\"\nrules = [{{ when = {{ model = \"g1\" }}, target = \"g1\" }}]\n\
         [policy.retry]\nmax_attempts = 4\nbudget = {{ ratio = 1000.0, min_per_s = 1000000.0 }}\n\
         [policy.group_retry]\nnum_retries = 2\nfallbacks = {{ g1 = [\"g2\"] }}\n\
         [[groups]]\nname = \"other\"\nkind = \"litellm-latency\"\ntargets = [\"a1\"]\n\
         [[groups]]\nname = \"g1\"\nkind = \"fallback\"\ntargets = [\"t1\", \"t2\"]\n\
         [[groups]]\nname = \"t1\"\nkind = \"litellm-least-busy\"\ntargets = [\"a1\"]\n\
         [[groups]]\nname = \"t2\"\nkind = \"litellm-least-busy\"\ntargets = [\"a2\"]\n\
         [[groups]]\nname = \"g2\"\nkind = \"fallback\"\ntargets = [\"b\"]\n\
         [[groups]]\nname = \"other-latency\"\nkind = \"litellm-latency\"\ntargets = [\"a1\", \"b\"]\n",
        endpoints(&["a1", "a2", "b"])
    );
    let mut r = router(&src);
    let req = req_with(3, &[("model", router_core::MetaValue::Str("g1".into()))]);
    let first = pick(&mut r, &req, 0).unwrap();
    assert_eq!(id(&r, first), "a1", "the lowest order first");
    // a1 answers 429 and cools down at once (g1 has two deployments): the retries stay in g1, on tier 2.
    let mut att = Attempts::first(first);
    let o = Outcome::failure(ErrorClass::RateLimited, 10 * MS);
    r.on_dispatch(first, &req, 0);
    r.on_result(first, &req, &o, MS);
    let mut seq = Vec::new();
    let mut now = MS;
    while let NextAttempt::Retry { endpoint, delay, .. } = r.next_attempt(&req, &mut att, &o, now) {
        seq.push(id(&r, endpoint).to_string());
        now += delay;
        r.on_dispatch(endpoint, &req, now);
        r.on_result(endpoint, &req, &o, now + MS);
    }
    // a1 is throttled by its 429, so g1's retry goes to its second tier (a2); with a2 throttled too, g1 has
    // nothing left and the request falls back to g2 (b); with b out as well, nothing is left.
    assert_eq!(seq, ["a2", "b"]);
}

#[test]
fn a_retry_goes_at_once_while_one_deployment_of_a_larger_group_is_healthy() {
    // g1 = {a1, a2} (shuffled), with LiteLLM's cooldowns. a1 answered 429 and cools down; a2 has served well
    // and now fails with a 500 (1 of 4 this minute: no cooldown). `_time_to_sleep_before_retry` returns 0 as
    // long as one deployment is healthy (a2 itself): the retry must not wait a backoff.
    let src = format!(
        "{}[policy]\nname = \"root\"\nkind = \"conditional\"\nrules = [{{ when = {{ model = \"g1\" }}, target = \"g1\" }}]\n\
         [policy.retry]\nmax_attempts = 3\n\
         [policy.group_retry]\nnum_retries = 2\n\
         [policy.cooldown]\ncooldown_time = \"5s\"\n{NO_CIRCUIT}\
         [[groups]]\nname = \"g1\"\nkind = \"weighted\"\ntargets = [\"a1\", \"a2\"]\n",
        endpoints(&["a1", "a2"])
    );
    let mut r = router(&src);
    let (a1, a2) = (idx(&r, "a1"), idx(&r, "a2"));
    for k in 0..3 {
        complete(&mut r, a2, k * MS, 10 * MS);
    }
    fail(&mut r, a1, S, ErrorClass::RateLimited);
    let req = req_with(11, &[("model", router_core::MetaValue::Str("g1".into()))]);
    assert!(!r.is_eligible(a1, &req, S + MS), "a1 cools down after its 429");
    let err = Outcome::failure(ErrorClass::Server, 10 * MS);
    r.on_dispatch(a2, &req, S);
    r.on_result(a2, &req, &err, S + MS);
    assert!(r.is_eligible(a2, &req, S + MS), "1 failure of 4 does not cool a2");
    let mut att = Attempts::first(a2);
    match r.next_attempt(&req, &mut att, &err, S + MS) {
        NextAttempt::Retry { endpoint, delay, .. } => {
            assert_eq!(endpoint, a2, "the only healthy deployment");
            assert_eq!(delay, 0, "one healthy deployment in a group of two: LiteLLM retries at once");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}
