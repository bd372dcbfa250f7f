//! Invalid configurations, written as users write them (TOML), are errors naming the field path and what was
//! expected.

mod common;

use common::config;
use router_core::{ConfigError, PolicyKind, PolicySpec, Router, RouterConfig, TargetSpec};

const TWO: &str = "[[endpoints]]\nid = \"a\"\n[[endpoints]]\nid = \"b\"\n";

fn error(src: &str) -> ConfigError {
    match Router::new(&config(src)) {
        Ok(_) => panic!("expected a config error for:\n{src}"),
        Err(e) => e,
    }
}

/// Each case: (config, field path, a fragment the message must contain).
fn cases() -> Vec<(String, &'static str, &'static str)> {
    let p = |extra: &str| format!("{TWO}[policy]\nname = \"root\"\n{extra}\n");
    vec![
        // Fallback chains.
        (p("kind = \"round-robin\"\nfallbacks = [\"a\", \"zz\"]"), "policy.fallbacks[1]", "unknown endpoint `zz`: expected one of a, b"),
        (p("kind = \"round-robin\"\nfallbacks = { default = [\"a\"], server = [\"b\", \"nope\"] }"), "policy.fallbacks.server[1]", "unknown endpoint `nope`"),
        (
            format!("{TWO}[[endpoints]]\nid = \"bulk\"\nbatch = true\n[policy]\nname = \"root\"\nkind = \"round-robin\"\nfallbacks = [\"bulk\"]"),
            "policy.fallbacks[0]",
            "batch endpoint",
        ),
        // Weights.
        (p("kind = \"hybrid\"\nweights = { cost = -1.0, latency = 1.0 }"), "policy.weights.cost", "expected a finite number >= 0, found -1"),
        (p("kind = \"hybrid\"\nweights = { latency = nan }"), "policy.weights.latency", "found NaN"),
        (p("kind = \"hybrid\"\nweights = { cost = 0.0 }"), "policy.weights", "at least one positive weight, found all zero"),
        (p("kind = \"hybrid\""), "policy.weights", "expected weights = {"),
        (
            p("kind = \"weighted\"\ntargets = [{ id = \"a\", weight = 0.0 }, { id = \"b\", weight = 0.0 }]"),
            "policy.targets",
            "found all zero",
        ),
        (p("kind = \"weighted\"\ntargets = [\"a\", { id = \"b\", weight = -2.0 }]"), "policy.targets[1].weight", "found -2"),
        (
            "[[endpoints]]\nid = \"a\"\n[[endpoints]]\nid = \"b\"\nweight = -1.0\n[policy]\nname = \"w\"\nkind = \"weighted\"".into(),
            "endpoints[1].weight",
            "expected a finite number >= 0, found -1",
        ),
        (
            "[[endpoints]]\nid = \"a\"\nweight = 0.0\n[[endpoints]]\nid = \"b\"\nweight = 0.0\n[policy]\nname = \"w\"\nkind = \"weighted\"".into(),
            "policy.targets",
            "found all zero",
        ),
        // A usage policy's shares are its targets' weights x their quota headroom: all zero is no policy at all.
        (
            p("kind = \"usage\"\ntargets = [{ id = \"a\", weight = 0.0 }, { id = \"b\", weight = 0.0 }]"),
            "policy.targets",
            "expected at least one positive weight, found all zero",
        ),
        (
            "[[endpoints]]\nid = \"a\"\nweight = 0.0\n[[endpoints]]\nid = \"b\"\nweight = 0.0\n[policy]\nname = \"u\"\nkind = \"usage\"".into(),
            "policy.targets",
            "endpoint's `weight`",
        ),
        (
            format!("{}[[groups]]\nname = \"g\"\nkind = \"usage\"\ntargets = [{{ id = \"a\", weight = 0.0 }}]", p("kind = \"fallback\"\ntargets = [\"g\"]")),
            "groups[0].targets",
            "found all zero",
        ),
        // Thresholds and fractions outside 0..1.
        (p("kind = \"usage\"\nthreshold = 1.5"), "policy.threshold", "strictly between 0 and 1, found 1.5"),
        (p("kind = \"usage\"\nthreshold = 0.0"), "policy.threshold", "strictly between 0 and 1"),
        (p("kind = \"usage\"\nthreshold = 1.0"), "policy.threshold", "strictly between 0 and 1"),
        (p("kind = \"round-robin\"\ntracking = { circuit = { error_rate = 1.5 } }"), "policy.tracking.circuit.error_rate", "found 1.5"),
        (p("kind = \"round-robin\"\ntracking = { latency = { alpha = 0.0 } }"), "policy.tracking.latency.alpha", "expected a number"),
        (p("kind = \"round-robin\"\ntracking = { latency = { alpha = 0.5, window = \"1m\" } }"), "policy.tracking.latency", "either `window` or `alpha`"),
        (p("kind = \"round-robin\"\ntracking = { quota_window = \"0s\" }"), "policy.tracking.quota_window", "positive duration"),
        (p("kind = \"latency\"\nbuffer = -0.1"), "policy.buffer", "found -0.1"),
        // Duplicate ids and names.
        ("[[endpoints]]\nid = \"a\"\n[[endpoints]]\nid = \"a\"\n[policy]\nname = \"p\"\nkind = \"round-robin\"".into(), "endpoints[1].id", "duplicate endpoint id `a` (also endpoints[0])"),
        ("[[endpoints]]\nid = \" \"\n[policy]\nname = \"p\"\nkind = \"round-robin\"".into(), "endpoints[0].id", "non-empty id"),
        (format!("{}[[groups]]\nname = \"a\"\nkind = \"round-robin\"", p("kind = \"round-robin\"")), "groups[0].name", "duplicate name `a`"),
        (p("kind = \"round-robin\"\ntargets = [\"a\", \"b\", \"a\"]"), "policy.targets[2]", "duplicate target `a` (also targets[0])"),
        // Unknown references.
        (p("kind = \"round-robin\"\ntargets = [\"a\", \"zz\"]"), "policy.targets[1]", "unknown target `zz`: expected an endpoint id or a group name (endpoints: a, b)"),
        (p("kind = \"conditional\"\nrules = [{ when = { plan = \"pro\" }, target = \"gold\" }]"), "policy.rules[0].target", "unknown target `gold`"),
        (p("kind = \"conditional\"\nrules = [{ when = { plan = \"pro\" }, target = \"a\" }]\ndefault = \"zz\""), "policy.default", "unknown target `zz`"),
        (p("kind = \"round-robin\"\nbatching = { endpoint = \"zz\", max_size = 10, max_wait = \"1m\" }"), "policy.batching.endpoint", "unknown endpoint `zz`"),
        // Group graphs.
        (
            format!(
                "{}[[groups]]\nname = \"g1\"\nkind = \"round-robin\"\ntargets = [\"a\", \"g2\"]\n\
                 [[groups]]\nname = \"g2\"\nkind = \"fallback\"\ntargets = [\"g1\"]",
                p("kind = \"weighted\"\ntargets = [\"g1\"]\n")
            ),
            "groups[1].targets[0]",
            "cycle: g1 -> g2 -> g1",
        ),
        (
            format!(
                "{}[[groups]]\nname = \"g\"\nkind = \"conditional\"\nrules = [{{ when = {{ x = 1 }}, target = \"a\" }}]\ndefault = \"g\"",
                p("kind = \"round-robin\"\ntargets = [\"g\"]\n")
            ),
            "groups[0].default",
            "cycle: g -> g",
        ),
        (
            format!("{}[[groups]]\nname = \"g\"\nkind = \"round-robin\"\ntargets = [\"root\"]", p("kind = \"round-robin\"\ntargets = [\"g\"]\n")),
            "groups[0].targets[0]",
            "cycle: root -> g -> root",
        ),
        (format!("{}[[groups]]\nname = \"g\"\nkind = \"round-robin\"\nretry = {{ max_attempts = 2 }}", p("kind = \"round-robin\"")), "groups[0].retry", "only allowed on the root policy"),
        // Fields of the wrong kind, missing fields.
        (p("kind = \"round-robin\"\nbuffer = 0.2"), "policy.buffer", "`buffer` does not apply to kind `round-robin`"),
        (p("kind = \"latency\"\nweights = { cost = 1.0 }"), "policy.weights", "it accepts buffer, slow_threshold"),
        (p("kind = \"conditional\""), "policy.rules", "at least one rule"),
        (p("kind = \"conditional\"\nrules = [{ when = { plan = { \"$gtx\" = 1 } }, target = \"a\" }]"), "policy.rules[0].when.plan.$gtx", "unknown operator `$gtx`"),
        (p("kind = \"conditional\"\nrules = [{ when = { \"$or\" = [{ region = { \"$in\" = \"eu\" } }] }, target = \"a\" }]"), "policy.rules[0].when.$or[0].region.$in", "expected a list of values"),
        (p("kind = \"sticky\""), "policy.key", "e.g. key = \"user\""),
        (p("kind = \"sticky\"\nkey = \"user\"\nvirtual_nodes = 0"), "policy.virtual_nodes", "expected 1..=1024"),
        // Batch endpoints and batching.
        (
            format!("{TWO}[[endpoints]]\nid = \"bulk\"\nbatch = true\n[policy]\nname = \"root\"\nkind = \"round-robin\"\ntargets = [\"bulk\"]"),
            "policy.targets[0]",
            "batch endpoint",
        ),
        (p("kind = \"round-robin\"\nbatching = { endpoint = \"a\", max_size = 10, max_wait = \"1m\" }"), "policy.batching.endpoint", "set `batch = true`"),
        (
            format!("{TWO}[[endpoints]]\nid = \"bulk\"\nbatch = true\n[policy]\nname = \"root\"\nkind = \"round-robin\"\nbatching = {{ endpoint = \"bulk\", max_size = 0, max_wait = \"1m\" }}"),
            "policy.batching.max_size",
            "positive batch size",
        ),
        ("[[endpoints]]\nid = \"bulk\"\nbatch = true\n[policy]\nname = \"root\"\nkind = \"round-robin\"".into(), "policy.targets", "not a batch endpoint"),
        // Cache and retry.
        (p("kind = \"round-robin\"\ncache = { ttl = \"1m\", capacity = 0 }"), "policy.cache.capacity", "expected a capacity in 1..="),
        (p("kind = \"round-robin\"\ncache = { ttl = \"1m\", capacity = 100000000000 }"), "policy.cache.capacity", "found 100000000000"),
        (p("kind = \"round-robin\"\ncache = { ttl = \"0s\", capacity = 10 }"), "policy.cache.ttl", "positive ttl"),
        (p("kind = \"round-robin\"\nretry = { max_attempts = 0 }"), "policy.retry.max_attempts", "expected 1..=100, found 0"),
        (p("kind = \"round-robin\"\nretry = { multiplier = 0.5 }"), "policy.retry.multiplier", "expected a number in 1..="),
        (p("kind = \"round-robin\"\nretry = { base_delay = \"5s\", max_delay = \"1s\" }"), "policy.retry.base_delay", "base_delay <= max_delay"),
        (p("kind = \"round-robin\"\nretry = { budget = { ratio = -1.0 } }"), "policy.retry.budget.ratio", "found -1"),
        // Endpoints.
        ("endpoints = []\n[policy]\nname = \"p\"\nkind = \"round-robin\"".into(), "endpoints", "at least one endpoint"),
        ("[[endpoints]]\nid = \"a\"\nlimits = { rpm = 0 }\n[policy]\nname = \"p\"\nkind = \"round-robin\"".into(), "endpoints[0].limits.rpm", "positive limit"),
        ("[[endpoints]]\nid = \"a\"\nprice = { input_per_mtok = -0.5 }\n[policy]\nname = \"p\"\nkind = \"round-robin\"".into(), "endpoints[0].price.input_per_mtok", "found -0.5"),
    ]
}

#[test]
fn every_invalid_config_names_its_field_path_and_what_was_expected() {
    for (src, path, fragment) in cases() {
        let e = error(&src);
        assert_eq!(e.path, path, "wrong path for:\n{src}\n-> {e}");
        assert!(e.message.contains(fragment), "message for {path} lacks {fragment:?}: {}", e.message);
        assert_eq!(e.to_string(), format!("{}: {}", e.path, e.message));
        let first = e.message.split_whitespace().next().unwrap_or("");
        assert!(
            [
                "expected",
                "unknown",
                "duplicate",
                "policies",
                "groups",
                "`a`",
                "`bulk`",
                "`buffer`",
                "`weights`",
                "`retry`",
                "`g`",
                "`root`"
            ]
            .contains(&first),
            "message should say what was expected: {}",
            e.message
        );
    }
}

#[test]
fn a_full_valid_config_builds() {
    let src = r#"
seed = 7

[[endpoints]]
id = "mini"
tier = 0
price = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
limits = { rpm = 5000, tpm = 2000000, concurrency = 64, context_window = 128000 }

[[endpoints]]
id = "sonnet"
tier = 2
price = { input_per_mtok = 3.0, output_per_mtok = 15.0 }
capabilities = ["vision"]

[[endpoints]]
id = "bulk"
batch = true

[policy]
name = "root"
kind = "conditional"
rules = [{ when = { "$and" = [{ plan = "pro" }, { priority = { "$gte" = 3 } }] }, target = "smart" }]
default = "cheap-first"
fallbacks = { default = ["mini"], rate_limited = ["sonnet", "mini"] }
retry = { max_attempts = 4, base_delay = "250ms", max_delay = "8s", jitter = "equal", budget = { ratio = 0.1, min_per_s = 5 } }
cache = { ttl = "10m", capacity = 10000 }
batching = { endpoint = "bulk", max_size = 100, max_wait = "30m" }
tracking = { latency = { window = "5m" }, circuit = { consecutive_failures = 5, cooldown = "30s" } }

[[groups]]
name = "smart"
kind = "hybrid"
weights = { cost = 0.2, latency = 0.6, load = 0.2 }
latency_ceiling = "20s"
buffer = 0.05

[[groups]]
name = "cheap-first"
kind = "usage"
threshold = 0.8
tiers = { simple = 0, complex = 2 }
"#;
    let r = Router::new(&config(src)).unwrap();
    assert_eq!(r.name(), "root");
    assert_eq!(r.kind(), PolicyKind::Conditional);
    assert_eq!(r.retry_config().max_attempts, 4);
    assert_eq!(r.fallback_chain(router_core::ErrorClass::RateLimited).len(), 2);
}

#[test]
fn groups_nested_too_deep_are_rejected() {
    let mut cfg = RouterConfig {
        endpoints: vec![router_core::Endpoint::new("a")],
        policy: PolicySpec::new("root", PolicyKind::RoundRobin),
        groups: vec![],
        seed: 0,
        quality: Default::default(),
    };
    cfg.policy.targets = vec![TargetSpec::Name("g0".into())];
    for i in 0..router_core::router::MAX_GROUP_DEPTH {
        let mut g = PolicySpec::new(format!("g{i}"), PolicyKind::Fallback);
        g.targets = vec![TargetSpec::Name(format!("g{}", i + 1))];
        cfg.groups.push(g);
    }
    let mut last = PolicySpec::new(format!("g{}", router_core::router::MAX_GROUP_DEPTH), PolicyKind::Fallback);
    last.targets = vec![TargetSpec::Name("a".into())];
    cfg.groups.push(last);
    // root -> g0 -> ... -> g16: 17 levels of groups.
    let e = Router::new(&cfg).unwrap_err();
    assert!(e.message.contains("nest more than 16 levels"), "{e}");
    assert_eq!(e.path, "policy.targets[0]");
    // One level less builds, and routes through every level.
    cfg.groups.remove(0);
    cfg.policy.targets = vec![TargetSpec::Name("g1".into())];
    let mut r = Router::new(&cfg).unwrap();
    assert!(matches!(r.decide(&router_core::RequestInfo::new(1, 1), 0), router_core::Decision::Route { .. }));
}

#[test]
fn serde_rejects_unknown_fields_and_kinds() {
    let bad_kind = format!("{TWO}[policy]\nname = \"p\"\nkind = \"fastest\"");
    let e = toml::from_str::<RouterConfig>(&bad_kind).unwrap_err().to_string();
    assert!(e.contains("round-robin") && e.contains("fastest"), "{e}");
    let typo = format!("{TWO}[policy]\nname = \"p\"\nkind = \"latency\"\nbufer = 0.2");
    let e = toml::from_str::<RouterConfig>(&typo).unwrap_err().to_string();
    assert!(e.contains("bufer"), "{e}");
}

/// An unlimited retry budget (`None`) must survive a round trip through TOML: a missing `budget` is the default
/// budget, so imported LiteLLM and Portkey baselines (no budget) got one when their scenario was read back, and
/// lost retries under load (issue 29).
#[test]
fn an_unlimited_retry_budget_survives_a_round_trip_through_toml() {
    let r = router_core::RetryConfig { budget: None, ..router_core::RetryConfig::default() };
    let text = toml::to_string(&r).expect("serialise");
    let back: router_core::RetryConfig = toml::from_str(&text).expect("parse back");
    assert_eq!(back.budget, None, "{text}");
    let missing: router_core::RetryConfig = toml::from_str("max_attempts = 2").expect("parse");
    assert!(missing.budget.is_some(), "no `budget` key is the default budget");
    let err = toml::from_str::<router_core::RetryConfig>("budget = \"none\"").unwrap_err().to_string();
    assert!(err.contains("unlimited"), "{err}");
    let err = toml::from_str::<router_core::RetryConfig>("budget = { ratoi = 0.2 }").unwrap_err().to_string();
    assert!(err.contains("ratoi"), "{err}");
}
