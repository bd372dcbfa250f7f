//! End-to-end properties of the simulator: determinism, common random numbers, conservation, the cost
//! identity, faults, quotas, timeouts and retries.

use router_core::{ErrorClass, secs_to_nanos};
use sim::engine::{self, RequestRecord, RunOptions, RunResult};
use sim::experiment::{self, ExperimentOptions};
use sim::report::write_summary;
use sim::scenario::{Compiled, Scenario};
use std::path::Path;

const BASE: &str = include_str!("data/base.toml");
const QUICKSTART: &str = include_str!("../../scenarios/quickstart.toml");

fn compile(text: &str) -> Compiled {
    let path = Path::new("test.toml");
    Scenario::parse(path, text).unwrap_or_else(|e| panic!("{e}")).compile(path).unwrap_or_else(|e| panic!("{e}"))
}

fn quickstart(requests: u64, replications: u32) -> Compiled {
    let path = Path::new("scenarios/quickstart.toml");
    let mut s = Scenario::parse(path, QUICKSTART).expect("quickstart parses");
    s.requests = Some(requests);
    s.duration = None;
    s.replications = replications;
    s.compile(path).expect("quickstart compiles")
}

fn run_records(model: &Compiled, policy: usize) -> (RunResult, Vec<RequestRecord>) {
    let mut recs = Vec::new();
    let mut sink = |r: &RequestRecord| recs.push(r.clone());
    let res = engine::run(model, policy, 0, RunOptions { records: Some(&mut sink), ..Default::default() });
    (res, recs)
}

fn summary_bytes(model: &Compiled, threads: usize) -> Vec<u8> {
    let all: Vec<usize> = (0..model.scenario.policies.len()).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    let exp = pool.install(|| experiment::run(model, &all, &ExperimentOptions::default())).expect("runs");
    let dir = std::env::temp_dir().join(format!("routesim-det-{}-{threads}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    write_summary(&experiment::report(model, &exp), &dir).expect("summary");
    let bytes = std::fs::read(dir.join("summary.csv")).expect("csv");
    let parquet = std::fs::read(dir.join("summary.parquet")).expect("parquet");
    let _ = std::fs::remove_dir_all(&dir);
    [bytes, parquet].concat()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[test]
fn same_scenario_and_seed_give_byte_identical_summaries_for_any_thread_count() {
    // 3 replications: one thread runs each replication's six policies in one lockstep group, two threads
    // split them into groups of three.
    let model = quickstart(15_000, 3);
    let one = summary_bytes(&model, 1);
    assert_eq!(one, summary_bytes(&model, 2));
    assert_eq!(one, summary_bytes(&model, 1));
}

#[test]
fn every_policy_sees_the_same_traffic() {
    // Common random numbers: request i arrives at the same time with the same tokens under every policy,
    // whatever the routing did to the requests before it.
    let model = quickstart(5_000, 1);
    let (_, a) = run_records(&model, 0);
    let (_, b) = run_records(&model, 4);
    let key = |r: &RequestRecord| (r.id, r.arrival_s.to_bits(), r.class, r.input_tokens, r.output_tokens);
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort_unstable();
    kb.sort_unstable();
    assert_eq!(ka.len(), 5_000);
    assert_eq!(ka, kb);
}

#[test]
fn policies_that_decide_the_same_give_identical_results() {
    // With one endpoint, round-robin and cost-based routing make identical decisions: every draw (arrivals,
    // provider luck per attempt) must then coincide, so every metric is equal.
    let one = BASE.replace("fallbacks = [\"premium\"]\n", "targets = [\"cheap\"]\n").replace(
        "kind = \"round-robin\"",
        "kind = \"round-robin\"\ntargets = [\"cheap\"]\nretry = { max_attempts = 2 }",
    );
    let one = one.replace("kind = \"cost\"", "kind = \"cost\"\nretry = { max_attempts = 2 }");
    let one = one.replace(
        "tpot = { dist = \"constant\", value = \"10ms\" }",
        "tpot = { dist = \"constant\", value = \"10ms\" }\nerrors = { server = 0.1 }",
    );
    let model = compile(&one);
    let (a, ra) = run_records(&model, 0);
    let (b, rb) = run_records(&model, 1);
    assert_eq!(ra.len(), rb.len());
    // Compared through Debug so that NaN (the TTFT of a failed request) equals NaN.
    if let Some((x, y)) = ra.iter().zip(&rb).find(|(x, y)| format!("{x:?}") != format!("{y:?}")) {
        panic!("first difference:\n{x:?}\n{y:?}");
    }
    assert_eq!(a.metrics.counts, b.metrics.counts);
    assert_eq!(a.metrics.cost_usd, b.metrics.cost_usd);
    assert!(a.metrics.counts.retries > 0, "the test needs retries to be meaningful");
}

#[test]
fn batching_runs_in_lockstep_give_the_result_of_a_run_of_their_own() {
    // Two hours at 10 requests/s: 72,000 arrivals, past the first 65,536-arrival chunk of the shared traffic,
    // so batches held across the chunk boundary. The policy twice in one lockstep group.
    let model = compile(&BATCHING.replace("duration = \"600s\"", "duration = \"7200s\""));
    let (alone, recs) = run_records(&model, 0);
    assert!(alone.metrics.counts.arrivals > 70_000 && alone.metrics.counts.batched > 10_000);
    let mut got: Vec<Vec<RequestRecord>> = vec![Vec::new(), Vec::new()];
    let mut sinks: Vec<_> = got.iter_mut().map(|v| move |r: &RequestRecord| v.push(r.clone())).collect();
    let opts = sinks
        .iter_mut()
        .map(|s| RunOptions { records: Some(s as &mut dyn FnMut(&RequestRecord)), ..Default::default() })
        .collect();
    let results = engine::run_lockstep(&model, &[0, 0], 0, opts);
    drop(sinks);
    for (r, rs) in results.iter().zip(&got) {
        assert_eq!(r.metrics.counts, alone.metrics.counts);
        assert_eq!((r.events, r.end), (alone.events, alone.end));
        assert!(*rs == recs, "records differ");
    }
}

#[test]
fn requests_are_conserved_at_any_horizon() {
    let model = quickstart(30_000, 1);
    for policy in 0..model.scenario.policies.len() {
        for horizon_s in [60.0, 300.0, f64::INFINITY] {
            let horizon = horizon_s.is_finite().then(|| secs_to_nanos(horizon_s));
            let r = engine::run(&model, policy, 0, RunOptions { horizon, ..Default::default() });
            let c = &r.metrics.counts;
            // The quickstart's 10-minute warm-up: measured + warm-up requests = arrivals.
            let warm = c.arrivals - c.requests;
            let ended = c.succeeded + c.failed_total() + c.rejected;
            assert!(
                ended + r.in_flight >= c.requests && ended + r.in_flight <= c.requests + warm,
                "policy {policy} horizon {horizon_s}: {c:?} in flight {}",
                r.in_flight
            );
            if horizon.is_none() {
                assert_eq!(r.in_flight, 0);
                assert_eq!(ended, c.requests, "policy {policy}: every measured request ends exactly once");
            }
        }
    }
}

#[test]
fn conservation_is_exact_without_warmup() {
    let text = QUICKSTART.replace("warmup = \"10m\"\n", "");
    let mut model = compile(&text);
    model.limit.until = Some(secs_to_nanos(12.0 * 3600.0));
    model.limit.max_requests = Some(40_000);
    for policy in 0..model.scenario.policies.len() {
        let r =
            engine::run(&model, policy, 0, RunOptions { horizon: Some(secs_to_nanos(600.0)), ..Default::default() });
        let c = &r.metrics.counts;
        assert_eq!(c.arrivals, c.requests);
        assert_eq!(c.arrivals, c.succeeded + c.failed_total() + c.rejected + r.in_flight, "policy {policy}");
    }
}

#[test]
fn cost_equals_tokens_times_prices_and_the_routers_spend() {
    let text = QUICKSTART.replace("warmup = \"10m\"\n", "");
    let mut model = compile(&text);
    model.limit.max_requests = Some(20_000);
    for policy in 0..model.scenario.policies.len() {
        let r = engine::run(&model, policy, 0, RunOptions::default());
        let m = &r.metrics;
        let priced: f64 = model
            .endpoints
            .iter()
            .zip(&m.endpoint_tokens)
            .map(|(e, t)| (t[0] as f64 * e.price.input_per_mtok + t[1] as f64 * e.price.output_per_mtok) / 1e6)
            .sum();
        assert!(m.cost_usd > 0.0);
        assert!((priced - m.cost_usd).abs() <= 1e-9 * m.cost_usd, "policy {policy}: {priced} vs {}", m.cost_usd);
        let spend: f64 = r.router_spend.iter().sum();
        assert!((spend - m.cost_usd).abs() <= 1e-9 * m.cost_usd, "policy {policy}: router spend {spend}");
        let by_endpoint: f64 = m.endpoint_cost.iter().sum();
        assert!((by_endpoint - m.cost_usd).abs() <= 1e-9 * m.cost_usd);
    }
}

const TWO: &str = r#"
name = "two"
seed = 3
duration = "400s"

[traffic]
rate = 20.0

[[traffic.classes]]
name = "chat"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 10 }

[[endpoints]]
id = "a"
ttft = { dist = "constant", value = "100ms" }
tpot = { dist = "constant", value = "1ms" }

[[endpoints]]
id = "b"
ttft = { dist = "constant", value = "100ms" }
tpot = { dist = "constant", value = "1ms" }

[health]
interval = "1s"

[report]
interval = "10s"

[[policies]]
name = "rr"
kind = "round-robin"
retry = { max_attempts = 2 }
"#;

#[test]
fn an_outage_removes_its_endpoint_for_its_window() {
    let text = format!(
        "{TWO}\n[[faults]]\nendpoint = \"a\"\nkind = \"outage\"\nstart = \"100500ms\"\nduration = \"99500ms\"\n"
    );
    let model = compile(&text);
    let r = engine::run(&model, 0, 0, RunOptions::default());
    let rows = &r.metrics.series.rows;
    let t = |row: &sim::metrics::timeseries::Interval| row.start as f64 / 1e9;
    for row in rows {
        let (a, b) = (row.attempts[0], row.attempts[1]);
        if t(row) >= 110.0 && t(row) < 200.0 {
            assert_eq!(a, 0, "interval at {}s: endpoint a must get no attempt during the outage", t(row));
            assert!(b > 150, "interval at {}s: b takes everything", t(row));
        } else if t(row) >= 210.0 && t(row) < 390.0 || t(row) < 90.0 {
            assert!(a > 60 && b > 60, "interval at {}s: both serve outside the outage ({a}, {b})", t(row));
        }
    }
    // Within the first second of the outage, before a health check, a's refusals are retried on b.
    assert_eq!(r.metrics.counts.failed_total(), 0);
    assert!(r.metrics.counts.fallbacks > 0);
}

#[test]
fn rpm_limits_produce_429s_and_cap_the_served_rate() {
    let text = TWO
        .replace("id = \"a\"\n", "id = \"a\"\nlimits = { rpm = 300 }\nquota_aware = false\nretry_after = \"1s\"\n")
        .replace("retry = { max_attempts = 2 }", "targets = [\"a\"]\nretry = { max_attempts = 1 }");
    let model = compile(&text);
    let r = engine::run(&model, 0, 0, RunOptions::default());
    let c = &r.metrics.counts;
    // 20 req/s offered, 5 req/s allowed: about 3/4 of the attempts are refused with 429.
    let rl = c.attempt_errors[ErrorClass::RateLimited.index()];
    assert!(rl > 0);
    // The quota is a sliding window of 60 one-second buckets: at most 300 requests start in any 59-60 s, so
    // over 400 s at most 300 x ceil(400 / 59) = 2100, and at least 300 per full minute.
    assert!(c.succeeded <= 2100, "{c:?}");
    assert!(c.succeeded >= 6 * 300, "{c:?}");
    // After a 429 the router holds the endpoint back for its Retry-After (rejecting, with no other target).
    assert!(c.rejected > 0);
    assert_eq!(c.failed[ErrorClass::RateLimited.index()], rl);
}

#[test]
fn a_client_timeout_ends_hung_attempts_and_retries_elsewhere() {
    let text = TWO
        .replace(
            "tpot = { dist = \"constant\", value = \"1ms\" }\n\n[[endpoints]]\nid = \"b\"",
            "tpot = { dist = \"constant\", value = \"1ms\" }\nerrors = { timeout = 0.2 }\n\n[[endpoints]]\nid = \"b\"",
        )
        .replace("[health]", "[client]\ntimeout = \"2s\"\n\n[health]");
    let model = compile(&text);
    let r = engine::run(&model, 0, 0, RunOptions::default());
    let c = &r.metrics.counts;
    assert!(c.attempt_errors[ErrorClass::Timeout.index()] > 0);
    // A timed-out attempt costs 2 s and is retried on b (100 ms + 9 ms): no request takes much longer.
    assert!(r.metrics.latency.quantile_s(1.0) < 2.2, "{}", r.metrics.latency.quantile_s(1.0));
    assert!(r.metrics.latency.quantile_s(1.0) >= 2.0);
    assert_eq!(c.failed_total(), 0, "a retried timeout succeeds on b (b never hangs)");
}

const BATCHING: &str = r#"
name = "batching"
seed = 9
duration = "600s"

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
price = { input_per_mtok = 2.0, output_per_mtok = 8.0 }
ttft = { dist = "constant", value = "500ms" }
tpot = { dist = "constant", value = "10ms" }

[[endpoints]]
id = "batch-api"
batch = true
price = { input_per_mtok = 1.0, output_per_mtok = 4.0 }
ttft = { dist = "constant", value = "0s" }
tpot = { dist = "constant", value = "0s" }
batch_turnaround = { dist = "uniform", low = "60s", high = "120s" }

[health]
interval = "0s"

[[policies]]
name = "with-batching"
kind = "round-robin"
batching = { endpoint = "batch-api", max_size = 50, max_wait = "30s" }
"#;

#[test]
fn deferrable_requests_go_through_the_cheaper_slower_batch_endpoint() {
    let model = compile(BATCHING);
    let (r, recs) = run_records(&model, 0);
    let c = &r.metrics.counts;
    let nightly: Vec<_> = recs.iter().filter(|x| x.class == 1).collect();
    let interactive: Vec<_> = recs.iter().filter(|x| x.class == 0).collect();
    assert!(!nightly.is_empty() && !interactive.is_empty());
    assert_eq!(c.batched, nightly.len() as u64, "every deferrable request is batched");
    assert_eq!(c.failed_total(), 0);
    for x in &nightly {
        assert_eq!(x.endpoint, Some(1), "deferrable requests run on the batch endpoint");
        // Held at most max_wait, then the batch turnaround (60-120 s).
        assert!(x.latency_s >= 60.0 && x.latency_s <= 30.0 + 120.0 + 1e-6, "{}", x.latency_s);
        assert!((x.cost_usd - (1000.0 * 1.0 + 100.0 * 4.0) / 1e6).abs() < 1e-12, "batch price");
    }
    for x in &interactive {
        assert_eq!(x.endpoint, Some(0));
        assert!((x.latency_s - (0.5 + 99.0 * 0.01)).abs() < 1e-6, "{}", x.latency_s);
        assert!((x.cost_usd - (1000.0 * 2.0 + 100.0 * 8.0) / 1e6).abs() < 1e-12);
    }
    // Batches of 50 fill in about 10 s at 5 deferrable requests per second, before max_wait: the wait in the
    // batch is short, so most latencies are close to the turnaround alone.
    let mean = nightly.iter().map(|x| x.latency_s).sum::<f64>() / nightly.len() as f64;
    assert!((mean - (90.0 + 5.0)).abs() < 5.0, "{mean}");
}

const TTFT: &str = r#"
name = "ttft-timeout"
seed = 3
requests = 20000

[traffic]
rate = 20.0

[[traffic.classes]]
name = "chat"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 50 }

[[endpoints]]
id = "a"
slots = 100000
ttft = { dist = "exponential", mean = "1s" }
tpot = { dist = "constant", value = "1ms" }

[client]
ttft_timeout = "1s"

[health]
interval = "0s"

[[policies]]
name = "client-default"
kind = "round-robin"

[[policies]]
name = "own"
kind = "round-robin"
ttft_timeout = "2s"
"#;

#[test]
fn a_ttft_timeout_abandons_attempts_whose_first_token_is_late() {
    // Exponential TTFT with mean 1 s and no queueing: P(TTFT > x) = exp(-x). Without retries, each request
    // fails exactly when its only attempt times out.
    let model = compile(TTFT);
    for (policy, timeout) in [(0, 1.0f64), (1, 2.0)] {
        let r = engine::run(&model, policy, 0, RunOptions::default());
        let c = &r.metrics.counts;
        // (Per attempt: the circuit breaker opens on runs of timeouts and rejects some requests outright.)
        let share = c.ttft_timeouts as f64 / c.attempts as f64;
        assert!((share - (-timeout).exp()).abs() < 0.015, "policy {policy}: {share} vs {}", (-timeout).exp());
        assert_eq!(c.ttft_timeouts, c.attempt_errors[ErrorClass::Timeout.index()], "counted as timeouts too");
        assert_eq!(c.failed[ErrorClass::Timeout.index()], c.ttft_timeouts, "no retries");
        assert_eq!(c.succeeded + c.ttft_timeouts + c.rejected, c.requests);
        assert!(r.metrics.ttft.quantile_s(1.0) <= timeout * 1.01, "no success has a later first token");
    }
    // Unset, nothing times out.
    let model = compile(&TTFT.replace("[client]\nttft_timeout = \"1s\"\n", "").replace("ttft_timeout = \"2s\"\n", ""));
    let r = engine::run(&model, 0, 0, RunOptions::default());
    assert_eq!((r.metrics.counts.ttft_timeouts, r.metrics.counts.succeeded), (0, 20000));
}

#[test]
fn a_ttft_timeout_counts_the_wait_in_a_provider_queue() {
    // One slot at 70% utilisation: attempts queue, and a first token is late when wait + TTFT passes 1 s.
    let text = TTFT
        .replace("slots = 100000", "slots = 1")
        .replace("rate = 20.0", "rate = 2.0")
        .replace(
            "ttft = { dist = \"exponential\", mean = \"1s\" }",
            "ttft = { dist = \"constant\", value = \"300ms\" }",
        )
        .replace("requests = 20000", "requests = 4000");
    let model = compile(&text);
    let r = engine::run(&model, 0, 0, RunOptions::default());
    let c = &r.metrics.counts;
    assert!(c.ttft_timeouts > 0 && c.succeeded > c.requests / 2, "{c:?}");
    assert_eq!(c.succeeded + c.failed_total() + c.rejected, c.requests, "conservation");
    assert!(r.metrics.ttft.quantile_s(1.0) <= 1.01, "{}", r.metrics.ttft.quantile_s(1.0));
}

#[test]
fn a_scenario_may_carry_the_gateways_upstreams_and_still_catches_typos_in_them() {
    let with = BASE.replace(
        "id = \"cheap\"\n",
        "id = \"cheap\"\nupstream = { base_url = \"http://127.0.0.1:9/v1\", api_key_env = \"CHEAP_KEY\" }\n",
    );
    let model = compile(&with);
    let up = model.endpoints[0].upstream.as_ref().expect("upstream kept");
    assert_eq!((up.base_url.as_str(), up.api_key_env.as_deref()), ("http://127.0.0.1:9/v1", Some("CHEAP_KEY")));
    // The simulation ignores it: the same results as without.
    let without = compile(BASE);
    let (a, b) = (engine::run(&model, 0, 0, RunOptions::default()), engine::run(&without, 0, 0, RunOptions::default()));
    assert_eq!(a.metrics.counts, b.metrics.counts);
    let e = Scenario::parse(Path::new("test.toml"), &with.replace("base_url", "base_ur")).expect_err("typo");
    assert!(e.to_string().contains("endpoints[0].upstream"), "{e}");
}

/// Replications draw the router's random picks afresh: request `i` of replication 1 must not make the same
/// weighted pick as request `i` of replication 0 (issue 29: the router's keyed draws ignored the replication,
/// so shuffle, weighted and p2c choices did not vary across replications). Within a replication, two policies
/// that decide alike still pick alike (common random numbers).
#[test]
fn replications_draw_their_own_routing_picks_and_policies_share_them_within_one() {
    let text = format!(
        "{}\n[[policies]]\nname = \"shuffle\"\nkind = \"weighted\"\ntargets = [{{ id = \"cheap\", weight = 1.0 }}, \
         {{ id = \"premium\", weight = 1.0 }}]\n\n[[policies]]\nname = \"shuffle-again\"\nkind = \"weighted\"\n\
         targets = [{{ id = \"cheap\", weight = 1.0 }}, {{ id = \"premium\", weight = 1.0 }}]\n",
        BASE.replace("requests = 2000", "requests = 2000\nreplications = 2")
    );
    let model = compile(&text);
    let picks = |policy: usize, replication: u32| {
        let mut by_id = std::collections::BTreeMap::new();
        let mut sink = |r: &RequestRecord| {
            by_id.insert(r.id, r.endpoint);
        };
        engine::run(&model, policy, replication, RunOptions { records: Some(&mut sink), ..Default::default() });
        by_id
    };
    let (r0, r1) = (picks(2, 0), picks(2, 1));
    assert_eq!(r0, picks(3, 0), "two identical policies of one replication pick alike");
    assert_eq!(r1, picks(3, 1), "two identical policies of one replication pick alike");
    let common: Vec<_> = r0.keys().filter(|id| r1.contains_key(id)).collect();
    assert!(common.len() > 1500, "{} request ids in both replications", common.len());
    let same = common.iter().filter(|id| r0[**id] == r1[**id]).count();
    let share = same as f64 / common.len() as f64;
    // Independent fair picks agree half the time; shared draws agreed on every request.
    assert!((0.4..0.6).contains(&share), "replications 0 and 1 made the same pick for {share:.3} of the requests");
}

/// LiteLLM's retry order in the simulator (issue 29, point 2): a shuffled group of two deployments, one always
/// answering 429, `num_retries = 2`. LiteLLM retries every 429 at once on the other deployment, so every request
/// succeeds. The engine recycled request slots without resetting their place in the retry order, so after the
/// first requests most 429s were never retried (78.5% success).
#[test]
fn litellm_group_retries_survive_recycled_request_slots() {
    let text = "name = \"litellm-429\"\nseed = 3\nrequests = 3000\n[traffic]\nrate = 20.0\n\
        [[traffic.classes]]\nname = \"g\"\nmetadata = { model = \"g\" }\n\
        input_tokens = { dist = \"constant\", value = 100 }\noutput_tokens = { dist = \"constant\", value = 20 }\n\
        [[endpoints]]\nid = \"good\"\nprice = { input_per_mtok = 1.0, output_per_mtok = 2.0 }\n\
        ttft = { dist = \"constant\", value = \"10ms\" }\ntpot = { dist = \"constant\", value = \"0s\" }\n\
        [[endpoints]]\nid = \"bad\"\nprice = { input_per_mtok = 1.0, output_per_mtok = 2.0 }\n\
        ttft = { dist = \"constant\", value = \"10ms\" }\ntpot = { dist = \"constant\", value = \"0s\" }\n\
        errors = { rate_limited = 1.0 }\n\
        [[policies]]\nname = \"litellm\"\nkind = \"conditional\"\nrules = [{ when = { model = \"g\" }, target = \"g\" }]\n\
        [policies.retry]\nmax_attempts = 3\nretry_on = [\"rate_limited\", \"server\", \"timeout\"]\n\
        [policies.group_retry]\nnum_retries = 2\n\
        [policies.cooldown]\ncooldown_time = \"1s\"\n\
        [policies.tracking.circuit]\nenabled = false\n\
        [[groups]]\nname = \"g\"\nkind = \"weighted\"\ntargets = [\"good\", \"bad\"]\n";
    let model = compile(text);
    let (res, recs) = run_records(&model, 0);
    let c = &res.metrics.counts;
    assert_eq!(c.succeeded, c.requests, "every 429 is retried on `good`: {c:?}");
    let limited = c.attempt_errors[ErrorClass::RateLimited.index()];
    assert!(limited > 20, "`bad` keeps coming back after its 1 s cooldowns: {limited} 429s");
    assert_eq!(c.retries, limited, "one retry per 429");
    // Retries go at once: `good` is healthy (LiteLLM's `_time_to_sleep_before_retry` returns 0).
    let slowest = recs.iter().map(|r| r.latency_s).fold(0.0, f64::max);
    assert!(slowest < 0.3, "a retry waited a backoff (LiteLLM's is at least 0.375 s): {slowest} s");
}
