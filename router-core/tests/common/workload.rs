//! A representative routing workload for every policy kind, shared by the zero-allocation test and the
//! `decide` benchmark: `n` endpoints with prices, tiers, limits and capabilities, a pool of requests with
//! metadata, and a driver that runs decide + on_dispatch + on_result with an advancing clock.
#![allow(dead_code)]

use router_core::condition::RawValue;
use router_core::quality::Accuracy;
use router_core::{
    Decision, Duration, Endpoint, HybridWeights, Limits, MetaValue, Nanos, Outcome, PolicyKind, PolicySpec, Price,
    RequestInfo, Router, RouterConfig, RuleSpec, TargetSpec, VerifierSpec,
};
use std::collections::BTreeMap;

const MS: Nanos = 1_000_000;

/// `n` endpoints `e0..`: three tiers, seven price levels, generous quotas (so the quota paths run but never
/// bind), half of them with vision, some with a smaller context window.
pub fn endpoints(n: usize) -> Vec<Endpoint> {
    (0..n)
        .map(|i| Endpoint {
            tier: (i % 3) as u8,
            price: Price { input_per_mtok: 0.1 + (i % 7) as f64 * 0.5, output_per_mtok: 0.4 + (i % 7) as f64 * 2.0 },
            limits: Limits {
                rpm: Some(1_000_000),
                tpm: Some(1_000_000_000),
                concurrency: Some(1_000),
                context_window: Some(if i % 4 == 3 { 32_000 } else { 128_000 }),
            },
            capabilities: if i % 2 == 0 { vec!["vision".into()] } else { vec![] },
            weight: 1.0 + (i % 4) as f64,
            // Accuracy rising with price, lower on the complex class.
            quality: Accuracy(BTreeMap::from([
                ("default".to_string(), 0.55 + 0.06 * (i % 7) as f64),
                ("complex".to_string(), 0.35 + 0.08 * (i % 7) as f64),
            ])),
            ..Endpoint::new(format!("e{i}"))
        })
        .collect()
}

fn names(range: std::ops::Range<usize>) -> Vec<TargetSpec> {
    range.map(|i| TargetSpec::Name(format!("e{i}"))).collect()
}

fn map(entries: &[(&str, RawValue)]) -> RawValue {
    RawValue::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>())
}

/// The root policy of kind `kind` over `n` endpoints, with the groups it needs.
pub fn policy(kind: PolicyKind, n: usize) -> (PolicySpec, Vec<PolicySpec>) {
    let mut p = PolicySpec::new(kind.name(), kind);
    let mut groups = Vec::new();
    match kind {
        PolicyKind::Latency => p.buffer = Some(0.1),
        PolicyKind::Usage => {
            p.threshold = Some(0.8);
            p.tiers = Some(BTreeMap::from([("simple".to_string(), 0), ("complex".to_string(), 1)]));
        }
        PolicyKind::Hybrid => {
            p.weights = Some(HybridWeights { cost: 0.5, latency: 0.3, load: 0.1, quota: 0.1 });
            p.buffer = Some(0.05);
            p.latency_ceiling = Some(Duration::from_secs(30));
        }
        PolicyKind::Conditional => {
            let half = (n / 2).max(1);
            let mut premium = PolicySpec::new("premium", PolicyKind::Latency);
            premium.targets = names(0..half);
            premium.buffer = Some(0.1);
            let mut cheap = PolicySpec::new("cheap", PolicyKind::Cost);
            cheap.targets = names(half.min(n - 1)..n);
            groups = vec![premium, cheap, PolicySpec::new("everyone", PolicyKind::P2c)];
            let s = |v: &str| RawValue::Str(v.into());
            p.rules = vec![
                RuleSpec { when: map(&[("plan", s("enterprise"))]), target: "premium".into() },
                RuleSpec {
                    when: map(&[(
                        "$or",
                        RawValue::List(vec![
                            map(&[("region", map(&[("$in", RawValue::List(vec![s("eu"), s("uk")]))]))]),
                            map(&[("priority", map(&[("$gte", RawValue::Num(8.0))]))]),
                        ]),
                    )]),
                    target: "cheap".into(),
                },
            ];
            p.default = Some("everyone".into());
        }
        PolicyKind::Sticky => p.key = Some("user".into()),
        PolicyKind::Threshold => {
            let half = (n / 2).max(1);
            p.targets = names(0..half);
            p.strong = names(half..n);
            p.threshold = Some(0.3);
        }
        PolicyKind::Quality => p.min_quality = Some(0.8),
        PolicyKind::Cascade => {
            p.targets = names(0..n);
            p.verifier = Some(VerifierSpec { endpoint: Some(format!("e{}", n - 1)), ..VerifierSpec::default() });
        }
        _ => {}
    }
    (p, groups)
}

/// A router config for `kind` over `n` endpoints.
pub fn config(kind: PolicyKind, n: usize) -> RouterConfig {
    let (policy, groups) = policy(kind, n);
    RouterConfig { endpoints: endpoints(n), policy, groups, seed: 42, quality: Default::default() }
}

/// A pool of 1024 varied requests (built once: the driver only rewrites their ids).
pub fn requests() -> Vec<RequestInfo> {
    (0..1024u64)
        .map(|k| {
            let mut r = RequestInfo::new(k, 200 + (k * 37 % 3800) as u32);
            r.expected_output_tokens = (k % 3 != 0).then_some(100 + (k * 13 % 900) as u32);
            r.task_class = Some(if k % 4 == 0 { "complex" } else { "simple" }.into());
            r.metadata = vec![
                ("user".into(), MetaValue::Str(format!("user-{}", k % 97))),
                ("plan".into(), MetaValue::Str(if k % 5 == 0 { "enterprise" } else { "free" }.into())),
                ("region".into(), MetaValue::Str(["eu", "us", "uk", "ap"][(k % 4) as usize].into())),
                ("priority".into(), MetaValue::Num((k % 10) as f64)),
            ];
            r.streaming = k % 2 == 0;
            r.difficulty = (k % 5 != 0).then(|| (k % 11) as f64 / 5.0 - 1.0);
            r
        })
        .collect()
}

/// Runs decide + on_dispatch + on_result, one request per millisecond of virtual time.
pub struct Driver {
    /// The router under test.
    pub router: Router,
    /// The request pool.
    pub reqs: Vec<RequestInfo>,
    /// Virtual time.
    pub now: Nanos,
    /// Requests decided so far.
    pub i: u64,
}

impl Driver {
    /// A driver for `kind` over `n` endpoints.
    pub fn new(kind: PolicyKind, n: usize) -> Self {
        let router = Router::new(&config(kind, n)).expect("workload config is valid");
        Driver { router, reqs: requests(), now: 0, i: 0 }
    }

    /// One request: decide, dispatch, and report a success whose latency depends on the endpoint.
    #[inline]
    pub fn step(&mut self) -> Decision {
        self.i += 1;
        self.now += MS;
        let k = (self.i % self.reqs.len() as u64) as usize;
        let req = &mut self.reqs[k];
        req.id = self.i;
        let d = self.router.decide(req, self.now);
        if let Decision::Route { endpoint, .. } = d {
            self.router.on_dispatch(endpoint, req, self.now);
            let e = endpoint.get() as u64;
            let latency = (300 + 40 * (e % 7) + self.i % 50) * MS;
            let out = req.expected_output_tokens.unwrap_or(200);
            let o = Outcome::success(latency, Some(latency / 5), req.input_tokens, out);
            self.router.on_result(endpoint, req, &o, self.now);
        }
        d
    }
}
