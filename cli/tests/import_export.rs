//! `routesim import` and `routesim export`: real-shaped LiteLLM and Portkey configs (written from their
//! documentation) imported into scenarios that run, errors with key paths and lines, and the round trip
//! import -> export -> import giving the same policy.

use router_core::{Duration, PolicyKind, PolicySpec, TargetSpec};
use sim::export::{self, Source};
use sim::import::prices::PriceMap;
use sim::import::{Imported, scenario};
use sim::peer_gateway::{Gateway, parse};
use sim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/tests/fixtures/gateways").join(name)
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
fn simple_shuffle_weighs_by_weight_else_rpm_else_tpm_as_some_deployment_has_them() {
    let src = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/a, rpm: 300 }\n  \
               - model_name: m\n    litellm_params: { model: openai/b, rpm: 100, weight: 9 }\n  \
               - model_name: m\n    litellm_params: { model: openai/c }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    let g = group(&imp, "m");
    assert_eq!(g.kind, PolicyKind::Weighted);
    let w: Vec<f64> =
        g.targets.iter().map(|t| if let TargetSpec::Weighted { weight, .. } = t { *weight } else { -1.0 }).collect();
    assert_eq!(
        w,
        [0.0, 9.0, 0.0],
        "one deployment sets a weight: weights decide (LiteLLM 1.110.2), a missing one is 0"
    );
    let src = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/a }\n  \
               - model_name: m\n    litellm_params: { model: openai/b, rpm: 100 }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    let w: Vec<f64> = group(&imp, "m")
        .targets
        .iter()
        .map(|t| if let TargetSpec::Weighted { weight, .. } = t { *weight } else { -1.0 })
        .collect();
    assert_eq!(w, [0.0, 100.0], "the second's rpm decides although the first has none");
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
    let src = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/in-house-7b, api_base: http://h/v1 }\n  \
               - model_name: m\n    litellm_params: { model: openai/gpt-4o }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    let e = scenario::render(&imp, None, None, "x", &tmp("unpriced.toml")).unwrap_err();
    assert!(e.message.contains("no price for m-1 (openai/in-house-7b):"), "{}", e.message);
    assert!(!e.message.contains("m-2"), "gpt-4o is in the known table: {}", e.message);
    let (imp, _) = read(Gateway::Litellm, "litellm-proxy.yaml");
    let out = tmp("prices.toml");
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

#[test]
fn an_explicit_allowed_fails_of_3_keeps_litellms_per_failure_counter() {
    // LiteLLM 1.110.2 `_is_allowed_fails_set_on_router`: an explicitly passed value counts, even LiteLLM's
    // default 3; unset keeps the failure-rate logic.
    for (line, want) in [("  allowed_fails: 3\n", Some(3)), ("  cooldown_time: 7\n", None)] {
        let src = format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{ model: openai/gpt-4o }}\nrouter_settings:\n{line}"
        );
        let imp = parse(Gateway::Litellm, Path::new("c.yaml"), &src).unwrap();
        assert_eq!(imp.policy.cooldown.as_ref().unwrap().allowed_fails, want, "{line}");
    }
}

#[test]
fn unset_num_retries_is_the_litellm_routers_default_of_2() {
    let src = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/gpt-4o }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    assert_eq!(imp.policy.group_retry.as_ref().unwrap().num_retries, 2);
    assert_eq!(imp.policy.retry.as_ref().unwrap().max_attempts, 3);
    assert!(imp.assumptions.iter().any(|a| a.starts_with("num_retries unset: 2")), "{:?}", imp.assumptions);
}

#[test]
fn upstreams_are_urls_or_absent_with_a_warning_never_an_env_reference() {
    let src = "model_list:\n  - model_name: m\n    litellm_params: { model: azure/gpt-4o, api_base: os.environ/AZURE_API_BASE, api_key: os.environ/AZURE_API_KEY }\n  \
               - model_name: m\n    litellm_params: { model: anthropic/claude-sonnet-4-20250514 }\n  \
               - model_name: m\n    litellm_params: { model: bedrock/anthropic.claude-v2, input_cost_per_token: 0.000008, output_cost_per_token: 0.000024 }\n  \
               - model_name: m\n    litellm_params: { model: gemini/gemini-2.5-flash }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    let base = |i: usize| imp.endpoints[i].upstream.as_ref().map(|u| u.base_url.as_str());
    assert_eq!(base(0), None, "os.environ/AZURE_API_BASE is not a URL");
    assert!(
        imp.warnings
            .iter()
            .any(|w| w.contains("model_list[0].litellm_params.api_base") && w.contains("AZURE_API_BASE"))
    );
    assert_eq!(base(1), Some("https://api.anthropic.com/v1"));
    assert!(imp.assumptions.iter().any(|a| a.contains("model_list[1]") && a.contains("api.anthropic.com")));
    assert_eq!(base(2), None);
    assert!(
        imp.warnings.iter().any(|w| w.contains("model_list[2]") && w.contains("no upstream")),
        "{:?}",
        imp.warnings
    );
    assert_eq!(base(3), Some("https://generativelanguage.googleapis.com/v1beta/openai"));
    // Every upstream written is a URL the gateway accepts.
    let out = tmp("upstreams.toml");
    let r = scenario::render(&imp, None, None, "x", &out).unwrap();
    let s = Scenario::parse(&out, &r.text).unwrap();
    for e in &s.endpoints {
        if let Some(u) = &e.upstream {
            assert!(u.base_url.starts_with("http"), "{}: {}", e.id, u.base_url);
        }
    }
}

#[test]
fn common_models_are_priced_from_the_dated_known_table_and_the_file_says_so() {
    let (imp, _) = read(Gateway::Portkey, "portkey-config.json");
    let out = tmp("known-prices.toml");
    let r = scenario::render(&imp, None, None, "x", &out).unwrap_or_else(|e| panic!("{e}"));
    let s = Scenario::parse(&out, &r.text).unwrap();
    let price = |id: &str| s.endpoints.iter().find(|e| e.id == id).unwrap().price;
    assert_eq!((price("openai-4o").input_per_mtok, price("openai-4o").output_per_mtok), (2.5, 10.0));
    assert_eq!(price("anthropic-sonnet").output_per_mtok, 15.0, "claude-3-5-sonnet-20241022, undated");
    assert_eq!(price("free-model").input_per_mtok, 0.15);
    let known = sim::import::prices::PriceMap::known_source();
    assert!(known.starts_with("LiteLLM 1.110.2") && known.contains("taken 20"), "{known}");
    assert!(r.text.contains("prices of openai-4o (gpt-4o): $2.5 in / $10 out per 1M tokens"), "{}", r.text);
    assert!(r.text.contains(&known), "the file names the table's source and date");
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
    // The code lists carry over exactly: 429 is the `rate_limited` class, a 5xx code that status alone.
    use router_core::ErrorMatch::{Class, Status};
    let limited = Class(router_core::ErrorClass::RateLimited);
    assert_eq!((tr.attempts, &tr.on[..]), (2, &[limited, Status(500), Status(502)][..]));
    assert_eq!(tr.fallback_on.get("paid-fallback").map(Vec::as_slice), Some(&[limited, Status(503)][..]));
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
    let src = Source { policy: &first.policy, groups: &first.groups, endpoints: &s.endpoints, client_timeout: None };
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

// ===== exports the real gateways accept (issue 29; the peers themselves run in peer_exports.rs) =====

fn quickstart() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.toml")).unwrap()
}

#[test]
fn litellm_export_uses_litellm_providers_weighs_every_shuffled_deployment_and_keeps_the_client_timeout() {
    let s = quickstart();
    let p = s.policies.iter().find(|p| p.name == "round-robin").unwrap();
    let src = Source { policy: p, groups: &s.groups, endpoints: &s.endpoints, client_timeout: s.client.timeout };
    let e = export::litellm::export(&src);
    let cfg: serde_json::Value = serde_norway::from_str(&e.yaml).unwrap();
    let models: Vec<&str> =
        cfg["model_list"].as_array().unwrap().iter().map(|d| d["litellm_params"]["model"].as_str().unwrap()).collect();
    assert_eq!(
        models,
        [
            "openai/gpt-4o-mini",
            "gemini/gemini-2.5-flash",
            "anthropic/claude-sonnet-4",
            "openai/gpt-4.1",
            "hosted_vllm/llama-3.3-70b-instruct"
        ]
    );
    // simple-shuffle weighs by rpm when no deployment has a weight (llama-70b has no rpm: it would get nothing).
    for d in cfg["model_list"].as_array().unwrap() {
        assert_eq!(d["litellm_params"]["weight"], 1.0, "{d}");
    }
    assert_eq!(cfg["router_settings"]["timeout"], 60, "the scenario's [client] timeout (LiteLLM waits 6000 s)");
    assert!(e.unexpressed.iter().any(|u| u.contains("llama-70b") && u.contains("api_base")), "{:?}", e.unexpressed);
    assert!(e.unexpressed.iter().any(|u| u.contains("uniform random pick")), "{:?}", e.unexpressed);
}

#[test]
fn portkey_export_uses_portkey_providers_key_placeholders_bare_models_and_params_model_queries() {
    let src = "model_list:\n  - model_name: big\n    litellm_params: { model: azure/gpt-4o, api_base: https://x.openai.azure.com/, api_key: os.environ/AZ_KEY, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }\n  \
               - model_name: small\n    litellm_params: { model: hosted_vllm/llama, api_base: http://gpu:8000/v1, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }\n";
    let imp = parse(Gateway::Litellm, Path::new("c.yaml"), src).unwrap();
    let out = tmp("pk-export.toml");
    let r = scenario::render(&imp, None, None, "x", &out).unwrap();
    let s = Scenario::parse(&out, &r.text).unwrap();
    let src = Source { policy: &imp.policy, groups: &imp.groups, endpoints: &s.endpoints, client_timeout: None };
    let e = export::portkey::export(&src);
    let cfg: serde_json::Value = serde_json::from_str(&e.json).unwrap();
    assert_eq!(cfg["strategy"]["conditions"][0]["query"], serde_json::json!({ "params.model": "big" }), "{}", e.json);
    let leaf = |i: usize| &cfg["targets"][i]["targets"][0];
    assert_eq!(leaf(0)["provider"], "azure-openai");
    assert_eq!(leaf(0)["api_key"], "${AZ_KEY}", "a placeholder, not `os.environ/AZ_KEY` sent as the key");
    assert_eq!(leaf(0)["override_params"]["model"], "gpt-4o", "no LiteLLM prefix");
    assert_eq!(leaf(1)["provider"], "openai", "hosted_vllm is not a Portkey provider: OpenAI-compatible at its host");
    assert_eq!(leaf(1)["custom_host"], "http://gpu:8000/v1");
    assert!(leaf(1)["api_key"].as_str().unwrap().starts_with("${"), "Portkey needs a key on every target");
    assert_eq!(e.keys, ["AZ_KEY", "SMALL_1_API_KEY"]);
    // And it imports back to the same routing.
    let back = parse(Gateway::Portkey, Path::new("p.json"), &e.json).unwrap();
    assert_eq!(back.policy.rules[0].when, imp.policy.rules[0].when);
    assert_eq!(back.endpoints[0].upstream.as_ref().unwrap().api_key_env.as_deref(), Some("AZ_KEY"));
}

#[test]
fn imported_endpoints_fail_a_little_and_export_says_when_no_endpoint_can_fail() {
    // The default provider models fail sometimes, so an export's cost covers retries and fallbacks (it read
    // 0 +- 0 when they never failed).
    let (imp, _) = read(Gateway::Portkey, "portkey-config.json");
    let out = tmp("failing.toml");
    let r = scenario::render(&imp, None, None, "x", &out).unwrap();
    let s = Scenario::parse(&out, &r.text).unwrap();
    assert!(s.endpoints.iter().all(|e| e.errors.rate_limited > 0.0 && e.errors.server > 0.0));
    // A scenario whose endpoints never fail: the cost block says what was not exercised.
    let gw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/gateway-overhead.toml");
    let exported = tmp("never-fails.yaml");
    let o = routesim(&[
        "export",
        "litellm",
        gw.to_str().unwrap(),
        "--requests",
        "200",
        "--replications",
        "2",
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("no endpoint of the scenario ever fails"), "{text}");
}

/// Issue 29, point 3: Portkey's `retry.on_status_codes` and a fallback's `on_status_codes` stay apart, and a retry
/// never draws the load balancer again. The 0.7-weight target answers 500, which `retry` (on 429 and 503) does
/// not retry and no fallback is above: about 70% of the requests fail, as they do through the real gateway (73 of
/// 100). routesim merged the codes into one router-wide set and switched targets: 99.7% succeeded; then, with the
/// lists kept apart but read as classes, it retried the 500s as if they were 503s.
#[test]
fn portkey_retry_and_fallback_codes_stay_apart_and_a_load_balancer_draws_once() {
    let leaf = |id: &str| {
        format!(
            "{{\"name\": \"{id}\", \"provider\": \"openai\", \"api_key\": \"sk-x\", \"custom_host\": \"http://127.0.0.1:9/{id}/v1\"}}"
        )
    };
    let config = format!(
        "{{\"retry\": {{\"attempts\": 2, \"on_status_codes\": [429, 503]}}, \"strategy\": {{\"mode\": \"loadbalance\"}}, \
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
    assert!(!rendered.text.contains("5xx"), "the code lists carry over exactly, nothing flagged:\n{}", rendered.text);
    assert!(rendered.text.contains("on = [\"rate_limited\", 503]"), "{}", rendered.text);
    // routesim's own policies beside it keep routesim's default resilience, not Portkey's order.
    assert_eq!(rendered.text.matches("[policies.target_retry]").count(), 1, "{}", rendered.text);
}
