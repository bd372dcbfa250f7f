//! Canary runs (`engine::run_canary`, what `routesim ab --predict` simulates): both policies route at once
//! in one run, each request by its arm's router, the arm picked as the gateway picks it, the arms sharing
//! the providers.

use router_core::canary::point;
use sim::engine::{self, Arm, Canary, CanaryError, RequestRecord, RunOptions, RunResult};
use sim::scenario::{Compiled, Scenario};
use std::collections::HashMap;
use std::path::Path;

const QUICKSTART: &str = include_str!("../../scenarios/quickstart.toml");
const STRONG_WEAK: &str = include_str!("../../scenarios/strong-weak.toml");

/// Deferrable requests and a policy that batches them (`with-batching`), beside one that does not.
const BATCHING: &str = r#"
name = "batching"
seed = 9
requests = 600

[traffic]
rate = 10.0

[[traffic.classes]]
name = "interactive"
input_tokens = { dist = "constant", value = 1000 }
output_tokens = { dist = "constant", value = 100 }

[[traffic.classes]]
name = "nightly"
input_tokens = { dist = "constant", value = 1000 }
output_tokens = { dist = "constant", value = 100 }
deferrable = 1.0

[[endpoints]]
id = "online"
ttft = { dist = "constant", value = "500ms" }
tpot = { dist = "constant", value = "10ms" }

[[endpoints]]
id = "batch-api"
batch = true
ttft = { dist = "constant", value = "0s" }
tpot = { dist = "constant", value = "0s" }
batch_turnaround = { dist = "uniform", low = "60s", high = "120s" }

[[policies]]
name = "plain"
kind = "round-robin"

[[policies]]
name = "with-batching"
kind = "round-robin"
batching = { endpoint = "batch-api", max_size = 50, max_wait = "30s" }
"#;

/// Two endpoints: `small`, cheap, with 4 slots (about 4 requests/s at a mean service time of 1 s) and a
/// deep queue, and `big`, dear, with room for everything. At 4.8 requests/s, round-robin (`rr`) sends
/// 2.4/s to `small` (60% busy), the cost policy (`cost`) all 4.8/s (over its capacity: its own run queues
/// without bound until its 20 s timeout falls back to `big`), and a 50% canary of `cost` beside `rr`
/// 1.2 + 2.4 = 3.6/s (90% busy).
const SHARED: &str = r#"
name = "shared-capacity"
seed = 11
requests = 4000

[traffic]
rate = 4.8

[[traffic.classes]]
name = "chat"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 100 }

[[endpoints]]
id = "small"
price = { input_per_mtok = 0.10, output_per_mtok = 0.30 }
slots = 4
queue_capacity = 100000
ttft = { dist = "exponential", mean = "400ms" }
tpot = { dist = "constant", value = "6ms" }

[[endpoints]]
id = "big"
price = { input_per_mtok = 3.0, output_per_mtok = 15.0 }
slots = 1000
ttft = { dist = "exponential", mean = "400ms" }
tpot = { dist = "constant", value = "6ms" }

[client]
timeout = "60s"

[health]
interval = "5s"

[[policies]]
name = "rr"
kind = "round-robin"

[[policies]]
name = "cost"
kind = "cost"
timeout = "20s"
fallbacks = ["big"]
retry = { max_attempts = 2 }
"#;

fn compile(name: &str, text: &str, requests: u64) -> Compiled {
    let path = Path::new(name);
    let mut s = Scenario::parse(path, text).unwrap_or_else(|e| panic!("{e}"));
    s.requests = Some(requests);
    s.duration = None;
    s.replications = 1;
    s.compile(path).unwrap_or_else(|e| panic!("{e}"))
}

fn policy(model: &Compiled, name: &str) -> usize {
    model.policy_names().iter().position(|p| p == name).unwrap_or_else(|| panic!("no policy {name}"))
}

/// A run's result and records, sorted by request id.
fn records(run: impl FnOnce(RunOptions<'_>) -> RunResult) -> (RunResult, Vec<RequestRecord>) {
    let mut out = Vec::new();
    let mut sink = |r: &RequestRecord| out.push(r.clone());
    let result = run(RunOptions { records: Some(&mut sink), ..Default::default() });
    out.sort_by_key(|r| r.id);
    (result, out)
}

fn plain(model: &Compiled, p: usize) -> (RunResult, Vec<RequestRecord>) {
    records(|o| engine::run(model, p, 0, o))
}

fn canary(model: &Compiled, control: usize, canary: usize, fraction: f64) -> (RunResult, Vec<RequestRecord>) {
    records(|o| engine::run_canary(model, control, Canary { policy: canary, fraction }, 0, o).expect("a canary run"))
}

/// What two runs must share to be the same run (all but the policy's name).
fn same_run(a: &RunResult, b: &RunResult) {
    assert_eq!(a.end, b.end);
    assert_eq!(a.events, b.events);
    assert_eq!(a.metrics.counts, b.metrics.counts);
    assert_eq!(a.metrics.cost_usd.to_bits(), b.metrics.cost_usd.to_bits());
    let q = |r: &RunResult| [0.5, 0.99].map(|p| r.metrics.latency.quantile_s(p).to_bits());
    assert_eq!(q(a), q(b));
    let spend = |r: &RunResult| r.router_spend.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(spend(a), spend(b));
}

#[test]
fn a_canary_at_fraction_zero_is_the_controls_own_run_and_at_one_the_canarys() {
    // The quickstart (retries, the cache, health checks, an outage) and the shared-capacity scenario (the
    // canary's own timeout and fallback).
    for (model, control, cand) in [
        (compile("scenarios/quickstart.toml", QUICKSTART, 3_000), "latency", "cost"),
        (compile("shared.toml", SHARED, 1_500), "rr", "cost"),
    ] {
        let (c, k) = (policy(&model, control), policy(&model, cand));
        let (want, want_recs) = plain(&model, c);
        let (got, got_recs) = canary(&model, c, k, 0.0);
        same_run(&got, &want);
        assert!(got_recs.iter().all(|r| r.arm == Arm::Control));
        assert!(got_recs == want_recs, "{}: fraction 0 differs from {control}'s own run", model.scenario.name);

        let (want, want_recs) = plain(&model, k);
        let (got, got_recs) = canary(&model, c, k, 1.0);
        same_run(&got, &want);
        assert!(got_recs.iter().all(|r| r.arm == Arm::Canary));
        let relabelled: Vec<RequestRecord> =
            want_recs.into_iter().map(|r| RequestRecord { arm: Arm::Canary, ..r }).collect();
        assert!(got_recs == relabelled, "{}: fraction 1 differs from {cand}'s own run", model.scenario.name);
        assert_eq!(got.policy, format!("{control} + canary {cand} (100%)"));
    }
}

#[test]
fn arms_are_the_gateways_and_stable_as_the_fraction_grows() {
    let model = compile("shared.toml", SHARED, 2_000);
    let (rr, cost) = (policy(&model, "rr"), policy(&model, "cost"));
    let in_canary = |fraction: f64| -> Vec<bool> {
        canary(&model, rr, cost, fraction).1.iter().map(|r| r.arm == Arm::Canary).collect()
    };
    let (a, b) = (in_canary(0.1), in_canary(0.2));
    assert_eq!((a.len(), b.len()), (2_000, 2_000));
    for (id, (&at_a, &at_b)) in a.iter().zip(&b).enumerate() {
        // The gateway's arm for `x-routesim-request-id: id` under `by = "request"`: the hash of the id's text
        // salted with the canary policy's name.
        assert_eq!(at_a, point("cost", &id.to_string()) < 0.1, "request {id}");
        assert_eq!(at_b, point("cost", &id.to_string()) < 0.2, "request {id}");
        assert!(!at_a || at_b, "request {id} left the canary when the fraction grew");
    }
    let share = |v: &[bool]| v.iter().filter(|&&x| x).count() as f64 / v.len() as f64;
    // Binomial(2000, f): within 4 sigma.
    assert!((share(&a) - 0.1).abs() < 4.0 * (0.1f64 * 0.9 / 2000.0).sqrt(), "{}", share(&a));
    assert!((share(&b) - 0.2).abs() < 4.0 * (0.2f64 * 0.8 / 2000.0).sqrt(), "{}", share(&b));
}

/// Mean latency of the successful requests among `recs` that `keep` selects and that ended on endpoint `ep`.
fn mean_latency(recs: &[RequestRecord], ep: u16, keep: impl Fn(&RequestRecord) -> bool) -> (f64, usize) {
    let l: Vec<f64> =
        recs.iter().filter(|r| keep(r) && r.error.is_none() && r.endpoint == Some(ep)).map(|r| r.latency_s).collect();
    (l.iter().sum::<f64>() / l.len() as f64, l.len())
}

#[test]
fn the_control_arm_meets_the_congestion_the_canary_creates() {
    let model = compile("shared.toml", SHARED, 4_000);
    let (rr, cost) = (policy(&model, "rr"), policy(&model, "cost"));
    let small = model.endpoint_ids().iter().position(|e| e == "small").unwrap() as u16;
    let (_, mixed) = canary(&model, rr, cost, 0.5);
    let arm: HashMap<u64, Arm> = mixed.iter().map(|r| (r.id, r.arm)).collect();
    let control_arm = |r: &RequestRecord| arm[&r.id] == Arm::Control;
    // The control arm's requests on `small` in the canary run, against the same requests in round-robin's own
    // run (what the former prediction, each policy over all the traffic, gave the control arm).
    let (shared, n_shared) = mean_latency(&mixed, small, control_arm);
    let (alone, n_alone) = mean_latency(&plain(&model, rr).1, small, control_arm);
    eprintln!("control arm on small: {shared:.3} s shared ({n_shared} requests), {alone:.3} s alone ({n_alone})");
    assert!(n_shared > 700 && n_alone > 700, "{n_shared} {n_alone}");
    // Alone, `small` is 60% busy: little queueing beyond the 1 s service (1.04 s in all). Shared with the
    // canary, 90% busy: 1.73 s.
    assert!(alone < 1.2, "{alone}");
    assert!(shared > 1.4 * alone, "shared {shared} vs alone {alone}");
    // And the canary arm, on half the traffic, queues far less than the cost policy over all of it (1.8 s
    // against 11.3 s).
    let canary_arm = |r: &RequestRecord| arm[&r.id] == Arm::Canary;
    let (shared, _) = mean_latency(&mixed, small, canary_arm);
    let (alone, _) = mean_latency(&plain(&model, cost).1, small, canary_arm);
    eprintln!("canary arm on small: {shared:.3} s shared, {alone:.3} s alone");
    assert!(alone > shared + 2.0, "shared {shared} vs alone {alone}");
}

#[test]
fn a_canary_that_cannot_run_is_named() {
    let model = compile("shared.toml", SHARED, 100);
    let (rr, cost) = (policy(&model, "rr"), policy(&model, "cost"));
    let err = |p: usize, c: usize, fraction: f64| {
        engine::run_canary(&model, p, Canary { policy: c, fraction }, 0, RunOptions::default()).err()
    };
    assert_eq!(err(rr, cost, 1.5), Some(CanaryError::Fraction(1.5)));
    assert!(matches!(err(rr, cost, f64::NAN), Some(CanaryError::Fraction(_))));
    assert_eq!(err(rr, rr, 0.5), Some(CanaryError::SamePolicy("rr".into())));
    assert_eq!(
        err(rr, rr, 0.5).unwrap().to_string(),
        "`rr` is both the control and the canary: a canary names another policy"
    );
    assert!(err(rr, cost, 0.5).is_none());

    // A canary cannot batch (the gateway refuses it too); a control that batches keeps its batches.
    let model = compile("batching.toml", BATCHING, 600);
    let (plain_rr, batching) = (policy(&model, "plain"), policy(&model, "with-batching"));
    let run = |p: usize, c: usize| {
        engine::run_canary(&model, p, Canary { policy: c, fraction: 0.5 }, 0, RunOptions::default())
    };
    assert_eq!(run(plain_rr, batching).err(), Some(CanaryError::Batches("with-batching".into())));
    let r = run(batching, plain_rr).expect("a control that batches");
    assert!(r.metrics.counts.batched > 0 && r.metrics.counts.requests == 600, "{:?}", r.metrics.counts);

    // The oracle knows each request's outcome: no gateway serves it, in either arm.
    let model = compile("scenarios/strong-weak.toml", STRONG_WEAK, 200);
    let (oracle, random) = (policy(&model, "oracle"), policy(&model, "random-50"));
    let run = |p: usize, c: usize| {
        engine::run_canary(&model, p, Canary { policy: c, fraction: 0.5 }, 0, RunOptions::default())
    };
    assert_eq!(run(random, oracle).err(), Some(CanaryError::Oracle("oracle".into())));
    assert_eq!(run(oracle, random).err(), Some(CanaryError::Oracle("oracle".into())));
}
