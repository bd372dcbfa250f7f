//! `routesim export` against the real gateways (issue 29): every shipped scenario's policies exported to
//! LiteLLM load in `litellm.Router` with every deployment, and route as the export intends against a loopback
//! mock; the import -> export -> LiteLLM round trip keeps what it claims; the Portkey exports are accepted by the
//! real Portkey gateway and route as intended (weights, fallback on the configured codes only, conditional).
//! The peers are installed by `scripts/peers/install.sh` (see `peers/mod.rs`); the drivers are
//! `scripts/peers/litellm_check.py` and `scripts/peers/portkey_check.py`.

mod peers;

use serde_json::{Value, json};
use sim::export::{self, Source};
use sim::peer_gateway::{Gateway, parse};
use sim::scenario::Scenario;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("routesim-peer-exports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Every policy of every shipped scenario (`scenarios/*.toml`), exported: (label, config text).
fn shipped_exports(gateway: Gateway) -> Vec<(String, String)> {
    let dir = peers::repo_root().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "the shipped scenarios: {files:?}");
    let mut out = Vec::new();
    for f in files {
        let s = Scenario::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for p in &s.policies {
            let src =
                Source { policy: p, groups: &s.groups, endpoints: &s.endpoints, client_timeout: s.client.timeout };
            let text = match gateway {
                Gateway::Litellm => export::litellm::export(&src).yaml,
                Gateway::Portkey => export::portkey::export(&src).json,
            };
            out.push((format!("{} / {}", s.name, p.name), text));
        }
    }
    out
}

/// Runs `scripts/peers/litellm_check.py` on `(requests, config)` pairs; one JSON result per config.
fn litellm_check(jobs: &[(u32, PathBuf)]) -> Vec<Value> {
    let peers = peers::peers();
    let mut results = Vec::new();
    // One process per request count (the script takes one), run side by side.
    let mut by_n: BTreeMap<u32, Vec<&PathBuf>> = BTreeMap::new();
    for (n, p) in jobs {
        by_n.entry(*n).or_default().push(p);
    }
    // Output to files: a full pipe of one child must not stall it while the test waits on another.
    let children: Vec<_> = by_n
        .into_iter()
        .map(|(n, paths)| {
            static RUN: AtomicUsize = AtomicUsize::new(0);
            let k = RUN.fetch_add(1, Ordering::Relaxed);
            let (out, err) = (tmp(&format!("litellm-check-{k}.out")), tmp(&format!("litellm-check-{k}.err")));
            let child = Command::new(&peers.python)
                .arg(peers::repo_root().join("scripts/peers/litellm_check.py"))
                .arg(n.to_string())
                .args(paths)
                .stdout(std::fs::File::create(&out).unwrap())
                .stderr(std::fs::File::create(&err).unwrap())
                .spawn()
                .expect("run litellm_check.py");
            (child, out, err)
        })
        .collect();
    for (mut child, out, err) in children {
        let status = child.wait().expect("litellm_check.py ends");
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        assert!(status.success(), "litellm_check.py failed:\n{stderr}");
        for line in std::fs::read_to_string(&out).unwrap().lines() {
            results.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
    }
    results
}

/// A deployment of an exported LiteLLM config.
struct Dep {
    id: String,
    weight: Option<f64>,
    order: Option<u64>,
    cost: f64,
}

fn deployments(cfg: &Value) -> BTreeMap<String, Vec<Dep>> {
    let mut groups: BTreeMap<String, Vec<Dep>> = BTreeMap::new();
    for d in cfg["model_list"].as_array().unwrap() {
        let p = &d["litellm_params"];
        groups.entry(d["model_name"].as_str().unwrap().to_string()).or_default().push(Dep {
            id: d["model_info"]["id"].as_str().unwrap().to_string(),
            weight: p["weight"].as_f64(),
            order: p["order"].as_u64(),
            cost: p["input_cost_per_token"].as_f64().unwrap_or(0.0)
                + p["output_cost_per_token"].as_f64().unwrap_or(0.0),
        });
    }
    groups
}

fn count(v: &Value, id: &str) -> f64 {
    v.get(id).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Requests per routing check, by strategy: enough for the share tolerance below, few enough to stay fast
/// (LiteLLM takes ~50 ms a request on a loaded machine).
fn requests_for(strategy: &str) -> u32 {
    match strategy {
        "simple-shuffle" => 100,
        _ => 16,
    }
}

/// Checks that the requests of one model group went where the exported strategy sends them.
fn check_routing(label: &str, strategy: &str, group: &str, deps: &[Dep], r: &Value, failover: Option<&Value>) {
    let n = requests_for(strategy) as f64;
    assert_eq!(r["errors"], 0, "{label}: group {group}: failed requests: {r}");
    let served = &r["served"];
    println!("{label}: {strategy}, group {group}: served {served}, failover {failover:?}");
    let low = deps.iter().filter_map(|d| d.order).min();
    let tier: Vec<&Dep> = deps.iter().filter(|d| low.is_none() || d.order == low).collect();
    let outside: f64 = deps.iter().filter(|d| !tier.iter().any(|t| t.id == d.id)).map(|d| count(served, &d.id)).sum();
    assert_eq!(outside, 0.0, "{label}: group {group}: requests left the lowest `order` tier: {r}");
    match strategy {
        "simple-shuffle" => {
            // Shares follow the weights. Python's random is seeded, so the run is reproducible; the tolerance
            // is 4.5 binomial standard deviations of the share at n requests (plus 1%), which an unseeded run
            // would exceed about once in 150 000 checks.
            let total: f64 = tier.iter().map(|d| d.weight.unwrap_or(0.0)).sum();
            assert!(total > 0.0, "{label}: group {group}: every deployment has weight 0 or none: {r}");
            for d in &tier {
                let want = d.weight.unwrap_or(0.0) / total;
                let got = count(served, &d.id) / n;
                let tol = 4.5 * (want * (1.0 - want) / n).sqrt() + 0.01;
                assert!(
                    (got - want).abs() <= tol,
                    "{label}: group {group}: `{}` got {got:.3}, want {want:.3} +- {tol:.3}: {r}",
                    d.id
                );
            }
        }
        "cost-based-routing" => {
            let min = tier.iter().map(|d| d.cost).fold(f64::INFINITY, f64::min);
            let cheapest: f64 = tier.iter().filter(|d| d.cost == min).map(|d| count(served, &d.id)).sum();
            assert_eq!(cheapest, n, "{label}: group {group}: every request to the cheapest: {r}");
        }
        // least-busy: sequential requests leave every deployment idle, so any pick is right. latency-based and
        // usage-based-routing-v2: LiteLLM 1.110.2 driven this way (sequential `acompletion` against the mock)
        // neither preferred the mock's 0 ms deployment over its 30..120 ms ones nor spread by tokens used (the
        // shares came out even, resp. uneven, in 30 requests), so only that every request is served is checked.
        _ => {}
    }
    if let Some(f) = failover {
        // Every order-1 deployment answers 500: the requests still succeed, on the next tier.
        assert_eq!(f["errors"], 0, "{label}: group {group}: failover failed requests: {f}");
        let on_tier: f64 = tier.iter().map(|d| count(&f["served"], &d.id)).sum();
        assert_eq!(on_tier, 0.0, "{label}: group {group}: served by a failing deployment: {f}");
    }
}

#[test]
fn litellm_exports_of_every_shipped_policy_load_with_every_deployment_and_route_as_intended() {
    let exports = shipped_exports(Gateway::Litellm);
    let mut jobs = Vec::new();
    let mut routed: Vec<String> = Vec::new();
    let mut configs = Vec::new();
    for (i, (label, text)) in exports.iter().enumerate() {
        let cfg: Value = serde_norway::from_str(text).unwrap();
        let strategy = cfg["router_settings"]["routing_strategy"].as_str().unwrap_or("simple-shuffle").to_string();
        // Load every config; route each distinct routing problem once: the strategy and, per model group, the
        // deployments' weights, orders and prices (ids, limits and URLs do not change where a request goes
        // against the mock).
        let shape: Vec<Value> = cfg["model_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let p = &d["litellm_params"];
                json!([d["model_name"], p["weight"], p["order"], p["input_cost_per_token"], p["output_cost_per_token"]])
            })
            .collect();
        let key = json!([strategy, shape]).to_string();
        let n = if routed.contains(&key) { 0 } else { requests_for(&strategy) };
        routed.push(key);
        let path = tmp(&format!("export-{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        jobs.push((n, path.clone()));
        configs.push((label.clone(), strategy, cfg, path, n));
    }
    let results = litellm_check(&jobs);
    let mut routed_count = 0;
    for (label, strategy, cfg, path, n) in &configs {
        let r = results.iter().find(|r| r["file"] == path.to_str().unwrap()).unwrap();
        let load = &r["load"];
        assert!(load.get("error").is_none(), "{label}: litellm.Router rejects the export: {}\n{}", load["error"], cfg);
        assert_eq!(load["deployments"], load["listed"], "{label}: litellm.Router dropped deployments");
        if *n == 0 {
            continue;
        }
        routed_count += 1;
        for (group, deps) in deployments(cfg) {
            check_routing(label, strategy, &group, &deps, &r["groups"][&group], r["failover"].get(&group));
        }
    }
    assert!(routed_count >= 8, "distinct exports routed: {routed_count}");
}

/// The documented LiteLLM proxy config, imported, exported back and loaded in the real LiteLLM: what the export
/// claims to keep (deployments' models, URLs, key references, limits, order; the strategy and its arguments,
/// retries, fallbacks, cooldowns, timeouts) is what the original said, and LiteLLM loads and routes it.
#[test]
fn litellm_round_trip_import_export_keeps_what_it_claims_in_the_real_litellm() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gateways/litellm-proxy.yaml");
    let text = std::fs::read_to_string(&fixture).unwrap();
    let original: Value = serde_norway::from_str(&text).unwrap();
    let imp = parse(Gateway::Litellm, &fixture, &text).unwrap();
    let out = tmp("round-trip.toml");
    let r = sim::import::scenario::render(&imp, None, None, "rt", &out).unwrap_or_else(|e| panic!("{e}"));
    let s = Scenario::parse(&out, &r.text).unwrap();
    let src =
        Source { policy: &imp.policy, groups: &imp.groups, endpoints: &s.endpoints, client_timeout: s.client.timeout };
    let exported_text = export::litellm::export(&src).yaml;
    let exported: Value = serde_norway::from_str(&exported_text).unwrap();

    let orig = original["model_list"].as_array().unwrap();
    let exp = exported["model_list"].as_array().unwrap();
    assert_eq!(orig.len(), exp.len(), "{exported_text}");
    for (i, (o, e)) in orig.iter().zip(exp).enumerate() {
        assert_eq!(o["model_name"], e["model_name"], "deployment {i}");
        for k in ["model", "api_base", "api_key", "rpm", "tpm", "max_parallel_requests", "order"] {
            assert_eq!(
                o["litellm_params"][k], e["litellm_params"][k],
                "deployment {i}: litellm_params.{k}\n{exported_text}"
            );
        }
        if !o["model_info"]["id"].is_null() {
            assert_eq!(o["model_info"]["id"], e["model_info"]["id"], "deployment {i}");
        }
        // A context window the config gives is kept (the import may add one from the known-prices table).
        if !o["model_info"]["max_input_tokens"].is_null() {
            assert_eq!(o["model_info"]["max_input_tokens"], e["model_info"]["max_input_tokens"], "deployment {i}");
        }
    }
    let (ro, re) = (&original["router_settings"], &exported["router_settings"]);
    // Fallbacks: one `{group: [groups]}` entry per group, in any order.
    let sorted = |v: &Value| {
        let mut l: Vec<String> = v.as_array().into_iter().flatten().map(Value::to_string).collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&ro["fallbacks"]), sorted(&re["fallbacks"]), "router_settings.fallbacks\n{exported_text}");
    assert!(!sorted(&re["fallbacks"]).is_empty());
    for k in [
        "routing_strategy",
        "routing_strategy_args",
        "num_retries",
        "retry_after",
        "timeout",
        "stream_timeout",
        "allowed_fails",
        "cooldown_time",
    ] {
        assert_eq!(ro[k], re[k], "router_settings.{k}\n{exported_text}");
    }

    let path = tmp("round-trip.litellm.yaml");
    std::fs::write(&path, &exported_text).unwrap();
    let results = litellm_check(&[(requests_for("latency-based-routing"), path)]);
    let r = &results[0];
    assert!(r["load"].get("error").is_none(), "{}", r["load"]);
    assert_eq!(r["load"]["deployments"], r["load"]["listed"]);
    for (group, deps) in deployments(&exported) {
        check_routing("round trip", "latency-based-routing", &group, &deps, &r["groups"][&group], None);
    }
}

/// Runs `scripts/peers/portkey_check.py` inside a fresh network namespace (the gateway binds every interface).
fn portkey_check(job: &Value) -> Value {
    let peers = peers::peers();
    let script = peers::repo_root().join("scripts/peers/portkey_check.py");
    let cmd = format!(
        "ip link set lo up && exec '{}' '{}' '{}'",
        peers.python.display(),
        script.display(),
        peers.portkey_dir.display()
    );
    let mut child = Command::new("unshare")
        .args(["-n", "bash", "-c", &cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare -n (a network namespace for the Portkey gateway)");
    child.stdin.take().unwrap().write_all(job.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "portkey_check.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A scenario whose root is a conditional on the request's model and a metadata key, over a weighted group
/// (0.7 / 0.3), a fallback group that moves on 429 only, and a default endpoint.
const PORTKEY_SCENARIO: &str = r#"
name = "portkey-peer"
seed = 1
requests = 200
[traffic]
rate = 10.0
[[traffic.classes]]
name = "chat"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 20 }
metadata = { plan = "paid", model = "big" }
[client]
timeout = "30s"
[[endpoints]]
id = "w-a"
provider = "openai"
model = "gpt-4o"
ttft = { dist = "constant", value = "100ms" }
tpot = { dist = "constant", value = "5ms" }
[[endpoints]]
id = "w-b"
provider = "self-hosted"
model = "llama-3.3-70b"
upstream = { base_url = "http://127.0.0.1:9/v1" }
ttft = { dist = "constant", value = "100ms" }
tpot = { dist = "constant", value = "5ms" }
[[endpoints]]
id = "f-a"
provider = "google"
model = "gemini-2.5-flash"
ttft = { dist = "constant", value = "100ms" }
tpot = { dist = "constant", value = "5ms" }
[[endpoints]]
id = "f-b"
provider = "anthropic"
model = "claude-sonnet-4"
ttft = { dist = "constant", value = "100ms" }
tpot = { dist = "constant", value = "5ms" }
[[endpoints]]
id = "d"
provider = "azure"
model = "gpt-4o-mini"
upstream = { base_url = "https://example.openai.azure.com/openai/v1", api_key_env = "AZURE_KEY" }
ttft = { dist = "constant", value = "100ms" }
tpot = { dist = "constant", value = "5ms" }
[[policies]]
name = "routed"
kind = "conditional"
rules = [
  { when = { plan = "paid" }, target = "pool" },
  { when = { model = "big" }, target = "chain" },
]
default = "d"
retry = { max_attempts = 2, retry_on = ["rate_limited"] }
[[groups]]
name = "pool"
kind = "weighted"
targets = [{ id = "w-a", weight = 0.7 }, { id = "w-b", weight = 0.3 }]
[[groups]]
name = "chain"
kind = "fallback"
targets = ["f-a", "f-b"]
"#;

#[test]
fn portkey_exports_are_accepted_by_the_real_gateway_and_route_as_intended() {
    let scen_path = tmp("portkey-peer.toml");
    std::fs::write(&scen_path, PORTKEY_SCENARIO).unwrap();
    let s = Scenario::load(&scen_path).unwrap_or_else(|e| panic!("{e}"));
    let src =
        Source { policy: &s.policies[0], groups: &s.groups, endpoints: &s.endpoints, client_timeout: s.client.timeout };
    let e = export::portkey::export(&src);
    let cfg: Value = serde_json::from_str(&e.json).unwrap();
    assert_eq!(cfg["request_timeout"], 30000, "the scenario's client timeout: {}", e.json);

    let mut accept: Vec<String> = shipped_exports(Gateway::Portkey).into_iter().map(|(_, t)| t).collect();
    let shipped = accept.len();
    accept.push(e.json.clone());
    const N: u32 = 400;
    let job = json!({
        "accept": accept,
        "route": [
            { "config": e.json, "n": N, "metadata": { "plan": "paid" }, "model": "other" },
            { "config": e.json, "n": 20, "model": "big", "fail": { "f-a": 429 } },
            { "config": e.json, "n": 20, "model": "big", "fail": { "f-a": 500 } },
            { "config": e.json, "n": 20, "model": "other" },
        ],
    });
    let out = portkey_check(&job);
    let labels: Vec<String> =
        shipped_exports(Gateway::Portkey).into_iter().map(|(l, _)| l).chain(["portkey-peer".into()]).collect();
    for (label, a) in labels.iter().zip(out["accept"].as_array().unwrap()) {
        // Accepted: the gateway validated the config, routed and called the chosen provider, which is
        // unreachable inside the namespace (a rejected config is a 400 "Invalid config passed").
        let body = a["body"].as_str().unwrap_or("");
        assert!(
            body.contains("fetch failed") && a["status"] != 400,
            "{label}: the Portkey gateway rejects the export: {a}"
        );
    }
    assert_eq!(out["accept"].as_array().unwrap().len(), shipped + 1);

    let route = out["route"].as_array().unwrap();
    // Weights: Portkey draws with Math.random (unseeded): 4.5 binomial standard deviations at N requests
    // (~0.10 for 0.7) is exceeded about once in 150 000 runs.
    let hits = &route[0]["hits"];
    assert_eq!(route[0]["statuses"]["200"], N, "{}", route[0]);
    println!("Portkey routes: {route:?}");
    let share = count(hits, "w-a") / N as f64;
    let tol = 4.5 * (0.7f64 * 0.3 / N as f64).sqrt();
    assert!((share - 0.7).abs() <= tol, "w-a got {share:.3}, want 0.7 +- {tol:.3}: {}", route[0]);
    assert_eq!(count(hits, "w-a") + count(hits, "w-b"), N as f64, "only the pool: {}", route[0]);
    // Fallback on the configured code (429, from retry_on = rate_limited): every request served by f-b.
    assert_eq!(route[1]["statuses"]["200"], 20, "{}", route[1]);
    assert_eq!(count(&route[1]["hits"], "f-b"), 20.0, "{}", route[1]);
    // Not on others: a 500 reaches the client and f-b is never tried.
    assert_eq!(count(&route[2]["hits"], "f-b"), 0.0, "{}", route[2]);
    assert!(route[2]["statuses"]["200"].is_null(), "{}", route[2]);
    // Neither rule: the default.
    assert_eq!(count(&route[3]["hits"], "d"), 20.0, "{}", route[3]);
}
