//! `routesim import` and `routesim export`: real-shaped LiteLLM and Portkey configs (written from their
//! documentation) imported into scenarios that run, errors with key paths and lines, and the round trip
//! import -> export -> import giving the same policy.

use router_core::{Duration, PolicyKind, PolicySpec, TargetSpec};
use sim::commands::import::{Gateway, parse};
use sim::export::{self, Source};
use sim::import::prices::PriceMap;
use sim::import::{Imported, scenario};
use sim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gateways").join(name)
}

fn read(gateway: Gateway, name: &str) -> (Imported, String) {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (parse(gateway, &path, &text).unwrap_or_else(|e| panic!("{e}")), text)
}

fn prices() -> PriceMap {
    PriceMap::load(&fixture("model-prices.json")).unwrap()
}

fn group<'a>(imp: &'a Imported, name: &str) -> &'a PolicySpec {
    imp.groups.iter().find(|g| g.name == name).unwrap_or_else(|| panic!("no group {name}: {:?}", imp.groups))
}

fn routesim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_routesim")).args(args).output().expect("routesim runs")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("routesim-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

// ===== LiteLLM =====

#[test]
fn litellm_config_imports_groups_strategy_retries_fallbacks_and_cooldowns() {
    let (imp, _) = read(Gateway::Litellm, "litellm-proxy.yaml");
    let ids: Vec<&str> = imp.endpoints.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["gpt-4o-eastus", "gpt-4o-sweden", "gpt-4o-3", "claude-sonnet-1", "gpt-4o-mini-1"]);
    // The root routes by model group.
    assert_eq!(imp.policy.kind, PolicyKind::Conditional);
    assert_eq!(
        imp.policy.rules.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(),
        ["gpt-4o", "claude-sonnet", "gpt-4o-mini"]
    );
    // Latency-based routing with its args, per model group.
    let g = group(&imp, "gpt-4o");
    assert_eq!(g.kind, PolicyKind::LitellmLatency);
    assert_eq!((g.buffer, g.ttl), (Some(0.3), Some(Duration::from_secs(600))));
    assert_eq!(g.targets.len(), 3);
    // Cooldowns: allowed_fails 2 (not LiteLLM's default 3, so the legacy logic), 30 s; single deployments.
    let cd = imp.policy.cooldown.as_ref().unwrap();
    assert_eq!((cd.allowed_fails, cd.cooldown_time), (Some(2), Duration::from_secs(30)));
    assert_eq!(cd.single_deployment, ["claude-sonnet-1", "gpt-4o-mini-1"]);
    assert!(!imp.policy.tracking.unwrap().circuit.enabled);
    // Retries then fallbacks: (1 + 2) x (1 + 2) attempts at most.
    let gr = imp.policy.group_retry.as_ref().unwrap();
    assert_eq!(gr.num_retries, 2);
    assert_eq!(gr.retry_after, Duration::from_secs(1));
    assert_eq!(gr.fallbacks["gpt-4o"], ["claude-sonnet", "gpt-4o-mini"]);
    assert_eq!(imp.policy.retry.as_ref().unwrap().max_attempts, 9);
    assert_eq!(
        (imp.policy.timeout, imp.policy.ttft_timeout),
        (Some(Duration::from_secs(60)), Some(Duration::from_secs(20)))
    );
    assert_eq!(imp.policy.cache.unwrap().ttl, Duration::from_secs(300));
    // Keys stay references; prices and limits come through.
    let east = &imp.endpoints[0];
    assert_eq!(east.upstream.as_ref().unwrap().api_key_env.as_deref(), Some("AZURE_EASTUS_API_KEY"));
    assert_eq!((east.rpm, east.tpm, east.context_window), (Some(900), Some(150_000), Some(128_000)));
    assert_eq!(imp.endpoints[4].concurrency, Some(100));
    // Non-routing keys are listed, routing ones that cannot trigger are noted.
    let warned = imp.warnings.join(" ");
    for k in ["router_settings.redis_host", "litellm_settings.drop_params", "general_settings", "api_version"] {
        assert!(warned.contains(k), "{k} not in {warned}");
    }
    assert!(imp.approximations.iter().any(|a| a.starts_with("context_window_fallbacks")));
}

#[test]
fn simple_shuffle_weighs_by_weight_else_rpm_else_tpm_as_the_first_deployment_has_them() {
    let src = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/a, rpm: 300 }\n  \
               - model_name: m\n    litellm_params: { model: openai/b, rpm: 100, weight: 9 }\n  \
               - model_name: m\n    litellm_params: { model: openai/c }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    let g = group(&imp, "m");
    assert_eq!(g.kind, PolicyKind::Weighted);
    let w: Vec<f64> =
        g.targets.iter().map(|t| if let TargetSpec::Weighted { weight, .. } = t { *weight } else { -1.0 }).collect();
    assert_eq!(w, [300.0, 100.0, 0.0], "the first has rpm but no weight: rpm decides, a missing rpm counts 0");
}

#[test]
fn litellm_order_nests_a_fallback_over_order_tiers() {
    let src = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/a, order: 2 }\n  \
               - model_name: m\n    litellm_params: { model: openai/b, order: 1 }\n\
               router_settings: { routing_strategy: least-busy }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    let g = group(&imp, "m");
    assert_eq!(g.kind, PolicyKind::Fallback);
    assert_eq!(g.targets, [TargetSpec::Name("m@order1".into()), TargetSpec::Name("m@order2".into())]);
    assert_eq!(group(&imp, "m@order1").kind, PolicyKind::LitellmLeastBusy);
    assert_eq!(group(&imp, "m@order1").targets, [TargetSpec::Name("m-2".into())]);
}

#[test]
fn litellm_errors_name_the_key_path_and_line() {
    let bad_type = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/a\n      rpm: lots\n";
    let e = parse(Gateway::Litellm, Path::new("c.yaml"), bad_type).unwrap_err();
    assert_eq!(e.path, "model_list[0].litellm_params.rpm");
    assert_eq!(e.line, Some(5));
    assert!(e.to_string().starts_with("c.yaml:5: key `model_list[0].litellm_params.rpm`: "), "{e}");

    let unknown = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/a }\nrouter_settings:\n  routing_strategy: fastest\n";
    let e = parse(Gateway::Litellm, Path::new("c.yaml"), unknown).unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("router_settings.routing_strategy", Some(5)));
    for s in sim::import::litellm::STRATEGIES {
        assert!(e.message.contains(s), "{}", e.message);
    }

    let routing = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/a }\nrouter_settings:\n  model_group_alias: { gpt: m }\n";
    let e = parse(Gateway::Litellm, Path::new("c.yaml"), routing).unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("router_settings.model_group_alias", Some(5)));
    assert!(e.message.contains("changes routing"), "{}", e.message);

    let fallback = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/a }\nrouter_settings:\n  fallbacks: [{ m: [nope] }]\n";
    let e = parse(Gateway::Litellm, Path::new("c.yaml"), fallback).unwrap_err();
    assert_eq!(e.path, "router_settings.fallbacks[0].m[0]");
    assert!(e.message.contains("unknown fallback model group `nope`"), "{}", e.message);
}

#[test]
fn prices_come_from_the_config_then_the_price_file_else_an_error_names_the_endpoints() {
    let (imp, _) = read(Gateway::Litellm, "litellm-proxy.yaml");
    let out = tmp("prices.toml");
    let e = scenario::render(&imp, None, None, "x", &out).unwrap_err();
    assert!(e.message.contains("gpt-4o-3 (openai/gpt-4o), gpt-4o-mini-1 (openai/gpt-4o-mini)"), "{}", e.message);
    let r = scenario::render(&imp, None, Some(&prices()), "x", &out).unwrap();
    let s = Scenario::parse(&out, &r.text).unwrap();
    let price = |id: &str| s.endpoints.iter().find(|e| e.id == id).unwrap().price;
    assert_eq!(price("gpt-4o-mini-1").input_per_mtok, 0.15);
    assert_eq!(price("gpt-4o-mini-1").output_per_mtok, 0.6);
    assert_eq!(price("claude-sonnet-1").output_per_mtok, 15.0, "the config's own price");
    assert_eq!(r.defaulted.len(), 5, "no --providers: every provider model is a flagged default");
    assert!(r.text.contains("# ASSUMPTIONS"));
    assert!(r.text.contains("provider models of gpt-4o-eastus"));
    // The imported policy is the baseline, routesim's beside it on the same model groups.
    let names: Vec<&str> = s.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["litellm", "least-outstanding", "p2c", "latency"]);
    assert!(s.groups.iter().any(|g| g.name == "gpt-4o~p2c" && g.kind == PolicyKind::P2c));
}

// ===== Portkey =====

#[test]
fn portkey_config_nests_conditional_loadbalance_and_fallback() {
    let (imp, _) = read(Gateway::Portkey, "portkey-config.json");
    assert_eq!(imp.policy.kind, PolicyKind::Conditional);
    assert_eq!(imp.policy.rules.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(), ["paid-pool", "eu-pool"]);
    assert_eq!(imp.policy.default.as_deref(), Some("free-model"));
    let pool = group(&imp, "paid-pool");
    assert_eq!(pool.kind, PolicyKind::Weighted);
    assert_eq!(
        pool.targets,
        [
            TargetSpec::Weighted { id: "openai-4o".into(), weight: 0.7 },
            TargetSpec::Weighted { id: "paid-fallback".into(), weight: 0.3 },
            TargetSpec::Weighted { id: "drained-4o".into(), weight: 0.0 },
        ]
    );
    let fb = group(&imp, "paid-fallback");
    assert_eq!(fb.kind, PolicyKind::Fallback);
    assert_eq!(fb.targets, [TargetSpec::Name("anthropic-sonnet".into()), TargetSpec::Name("azure-4o".into())]);
    let eu = group(&imp, "eu-pool");
    assert_eq!((eu.kind, eu.key.as_deref()), (PolicyKind::Sticky, Some("user_id")));
    // Portkey's order: 1 + 2 attempts per target, then the fallback node's own codes (not merged).
    let tr = imp.policy.target_retry.as_ref().unwrap();
    use router_core::ErrorClass::*;
    assert_eq!((tr.attempts, &tr.on[..]), (2, &[RateLimited, Server][..]));
    assert_eq!(tr.fallback_on.get("paid-fallback").map(Vec::as_slice), Some(&[RateLimited, Server][..]));
    let retry = imp.policy.retry.as_ref().unwrap();
    assert_eq!(retry.max_attempts, 3 * imp.endpoints.len() as u32, "at most 1 + 2 attempts on each target");
    assert_eq!(imp.policy.timeout, Some(Duration::from_secs(30)));
    assert_eq!(imp.policy.cache.unwrap().ttl, Duration::from_secs(120));
    assert_eq!(imp.endpoints.iter().find(|e| e.id == "free-model").unwrap().model, "gpt-4o-mini");
    assert!(imp.warnings.iter().any(|w| w.ends_with("override_params.temperature")), "{:?}", imp.warnings);
    // Traffic classes that reach each branch.
    let classes: Vec<(&str, Vec<(&str, &str)>)> = imp
        .classes
        .iter()
        .map(|c| (c.name.as_str(), c.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()))
        .collect();
    assert_eq!(classes[0], ("paid-pool", vec![("user_plan", "\"paid\"")]));
    assert_eq!(classes[1], ("eu-pool", vec![("region", "\"eu\""), ("tier", "\"not-free\"")]));
    assert_eq!(classes[2], ("default", vec![]));
}

#[test]
fn portkey_errors_name_the_key_path_and_line() {
    let mode = "{\n  \"strategy\": { \"mode\": \"round-robin\" },\n  \"targets\": [ { \"provider\": \"openai\" } ]\n}";
    let e = parse(Gateway::Portkey, Path::new("p.json"), mode).unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("strategy.mode", Some(2)));
    assert!(e.message.contains("single, loadbalance, fallback, conditional"), "{}", e.message);

    let regex = "{\"strategy\": {\"mode\": \"conditional\", \"conditions\": [{\"query\": {\"metadata.x\": {\"$regex\": \"^a\"}}, \"then\": \"a\"}]},\n \"targets\": [{\"name\": \"a\", \"provider\": \"openai\"}]}";
    let e = parse(Gateway::Portkey, Path::new("p.json"), regex).unwrap_err();
    assert_eq!(e.path, "strategy.conditions[0].query.metadata.x.$regex");

    let bad = "{\n  \"targets\": [\n    { \"provider\": \"openai\", \"weight\": \"heavy\" }\n  ],\n  \"strategy\": { \"mode\": \"loadbalance\" }\n}";
    let e = parse(Gateway::Portkey, Path::new("p.json"), bad).unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("targets[0].weight", Some(3)));
}

// ===== round trip =====

/// Import -> export -> import gives the same policy and groups.
fn round_trip(gateway: Gateway, name: &str) {
    let (first, _) = read(gateway, name);
    let out = tmp(&format!("{name}.toml"));
    let r = scenario::render(&first, None, Some(&prices()), "rt", &out).unwrap();
    let s = Scenario::parse(&out, &r.text).unwrap();
    let src = Source { policy: &first.policy, groups: &first.groups, endpoints: &s.endpoints };
    let text = match gateway {
        Gateway::Litellm => export::litellm::export(&src).yaml,
        Gateway::Portkey => export::portkey::export(&src).json,
    };
    let second = parse(gateway, Path::new("exported"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(second.policy, first.policy, "{text}");
    assert_eq!(second.groups, first.groups, "{text}");
    let ids = |i: &Imported| i.endpoints.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&second), ids(&first));
}

#[test]
fn litellm_import_export_import_gives_the_same_policy() {
    round_trip(Gateway::Litellm, "litellm-proxy.yaml");
}

#[test]
fn portkey_import_export_import_gives_the_same_policy() {
    round_trip(Gateway::Portkey, "portkey-config.json");
}

// ===== end to end =====

#[test]
fn imported_scenarios_run_end_to_end_and_export_reports_the_cost() {
    for (gw, name) in [("litellm", "litellm-proxy.yaml"), ("portkey", "portkey-config.json")] {
        let out = tmp(&format!("{gw}.scenario.toml"));
        let o = routesim(&[
            "import",
            gw,
            fixture(name).to_str().unwrap(),
            "--prices",
            fixture("model-prices.json").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let results = tmp(&format!("{gw}-results"));
        let o = routesim(&[
            "run",
            out.to_str().unwrap(),
            "--requests",
            "400",
            "--replications",
            "2",
            "--out",
            results.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains(gw) && stdout.contains("p2c"), "{stdout}");
        // Export the imported policy back and measure the approximation on the scenario's traffic.
        let exported = tmp(&format!("{gw}.exported"));
        let o = routesim(&[
            "export",
            gw,
            out.to_str().unwrap(),
            "--name",
            "p2c",
            "--requests",
            "300",
            "--replications",
            "2",
            "--out",
            exported.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("Metric cost of the approximation"), "{stdout}");
        let text = std::fs::read_to_string(&exported).unwrap();
        assert!(text.contains("NOT EXPRESSIBLE IN"), "{text}");
        assert!(text.contains("p2c"), "p2c is named among what the gateway cannot express: {text}");
        assert!(text.contains("latency_p95_s: "), "{text}");
        // The imported policy itself is exactly expressible: its export decides identically (zero cost).
        let o = routesim(&[
            "export",
            gw,
            out.to_str().unwrap(),
            "--name",
            gw,
            "--requests",
            "300",
            "--replications",
            "2",
            "--out",
            exported.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&exported).unwrap();
        assert!(text.contains("latency_p95_s: +0.000000 [+0.000000, +0.000000]"), "{text}");
    }
}

/// Issue 29, point 3: Portkey's `retry.on_status_codes` and a fallback's `on_status_codes` stay apart, and a retry
/// never draws the load balancer again. The 0.7-weight target answers 500, which `retry` (on 429) does not retry
/// and no fallback is above: about 70% of the requests fail, as they do through the real gateway (73 of 100 with
/// retry on [429, 503]; routesim's `server` class cannot split 500 from 503, see the README). routesim merged the
/// codes into one router-wide set and switched targets: 99.7% succeeded.
#[test]
fn portkey_retry_and_fallback_codes_stay_apart_and_a_load_balancer_draws_once() {
    let leaf = |id: &str| {
        format!(
            "{{\"name\": \"{id}\", \"provider\": \"openai\", \"api_key\": \"sk-x\", \"custom_host\": \"http://127.0.0.1:9/{id}/v1\"}}"
        )
    };
    let config = format!(
        "{{\"retry\": {{\"attempts\": 2, \"on_status_codes\": [429]}}, \"strategy\": {{\"mode\": \"loadbalance\"}}, \
         \"targets\": [{{\"name\": \"a\", \"provider\": \"openai\", \"api_key\": \"sk-x\", \"custom_host\": \
         \"http://127.0.0.1:9/a/v1\", \"weight\": 0.7}}, {{\"strategy\": {{\"mode\": \"fallback\", \"on_status_codes\": \
         [429, 500, 503]}}, \"weight\": 0.3, \"targets\": [{}, {}]}}]}}",
        leaf("b"),
        leaf("c")
    );
    let path = tmp("pk-codes.json");
    std::fs::write(&path, &config).unwrap();
    let imp = parse(Gateway::Portkey, &path, &config).unwrap_or_else(|e| panic!("{e}"));
    let providers = tmp("pk-codes.providers.toml");
    let ep = |id: &str, errors: &str| {
        format!(
            "[[endpoints]]\nid = \"{id}\"\nprice = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}\n\
             ttft = {{ dist = \"constant\", value = \"10ms\" }}\ntpot = {{ dist = \"constant\", value = \"0s\" }}\n{errors}"
        )
    };
    std::fs::write(&providers, ep("a", "errors = { server = 1.0 }\n") + &ep("b", "") + &ep("c", "")).unwrap();
    let models = sim::import::prices::ProviderModels::load(&providers).unwrap();
    let out = tmp("pk-codes.toml");
    let rendered = scenario::render(&imp, Some(&models), None, "pk-codes", &out).unwrap_or_else(|e| panic!("{e}"));
    let mut s = Scenario::parse(&out, &rendered.text).unwrap_or_else(|e| panic!("{e}"));
    s.requests = Some(4000);
    s.duration = None;
    let model = s.compile(&out).unwrap_or_else(|e| panic!("{e}"));
    let res = sim::engine::run(&model, 0, 0, sim::engine::RunOptions::default());
    let c = &res.metrics.counts;
    let success = c.succeeded as f64 / c.requests as f64;
    assert!((0.26..0.34).contains(&success), "success {success:.3}, expected about 0.3: {c:?}");
    // The 500s of `a` are answered as they are: no retry on `a`, no switch to the other branch.
    assert_eq!(c.retries, 0, "{c:?}");
    assert!(rendered.text.contains("stand for every 5xx"), "the 500/503 split is flagged:\n{}", rendered.text);
    // routesim's own policies beside it keep routesim's default resilience, not Portkey's order.
    assert_eq!(rendered.text.matches("[policies.target_retry]").count(), 1, "{}", rendered.text);
}
