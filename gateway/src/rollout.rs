//! Rolling out a policy (issue 31): `[rollout]` names a canary policy that serves a stable fraction of the
//! traffic, and shadow policies that see every request and the feedback of the real attempts and record
//! what they would have chosen, never acting.
//!
//! ```toml
//! [rollout]
//! shadow = ["candidate"]
//! canary = { policy = "candidate", fraction = 0.1, by = "key" }
//! ```
//!
//! The canary arm is picked by a stable hash of the client key's id (`by = "key"`, the default), the
//! request's user (`by = "user"`: the body's `user` or the `x-routesim-meta-user` header) or the request id
//! (`by = "request"`), salted with the canary policy's name, to a point in [0, 1): the request goes to the
//! canary when the point is below `fraction`. Raising the fraction therefore only moves users from the
//! control arm to the canary, and lowering it only moves them back. A request without the value it is
//! hashed by (no key, no user) stays in the control arm.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use router_core::{PolicySpec, RouterConfig};
use routesim_schema::SchemaError as ConfigError;
use serde::Deserialize;
use std::path::Path;
use std::sync::atomic::AtomicU64;

/// `[rollout]` as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutFile {
    /// Names of `[[policies]]` run in shadow.
    pub shadow: Vec<String>,
    /// The canary: a policy serving a fraction of the traffic.
    pub canary: Option<CanarySpec>,
}

/// `[rollout] canary = { policy, fraction, by }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    /// The `[[policies]]` entry serving the canary arm.
    pub policy: String,
    /// Share of the hash space sent to the canary, in [0, 1].
    pub fraction: f64,
    /// What the arm is hashed from (default `key`).
    #[serde(default)]
    pub by: CanaryBy,
}

/// What picks a request's arm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CanaryBy {
    /// The client key's id.
    #[default]
    Key,
    /// The request's `user` (body field or `x-routesim-meta-user` header).
    User,
    /// The request id.
    Request,
}

/// A validated canary.
#[derive(Clone, Debug)]
pub struct Canary {
    /// The canary policy's router configuration.
    pub router: RouterConfig,
    /// Share of the hash space sent to the canary.
    pub fraction: f64,
    /// What the arm is hashed from.
    pub by: CanaryBy,
}

impl Canary {
    /// The canary policy's name.
    pub fn policy(&self) -> &str {
        &self.router.policy.name
    }
}

/// A validated `[rollout]`.
#[derive(Clone, Debug, Default)]
pub struct Rollout {
    /// The canary, when one is configured.
    pub canary: Option<Canary>,
    /// The shadow policies' router configurations, in the order written.
    pub shadows: Vec<RouterConfig>,
}

/// The arm of a request (router-core's, shared with the simulator's canary runs).
pub use router_core::canary::Arm;

/// The stable point in [0, 1) of `value` for a canary of policy `salt` (router-core's
/// [`router_core::canary`], which the simulator's canary runs share).
pub fn point(salt: &str, value: &str) -> f64 {
    router_core::canary::point(salt, value)
}

/// The arm of a request whose hashed value is `value` (`None`: it has none, and stays in control).
pub fn arm_of(canary: &Canary, value: Option<&str>) -> Arm {
    match value {
        Some(v) if point(canary.policy(), v) < canary.fraction => Arm::Canary,
        _ => Arm::Control,
    }
}

/// The nearest of `names` to `got`, for a did-you-mean.
fn nearest<'a>(got: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in names {
        let sim = strsim::jaro_winkler(got, c);
        if (sim >= 0.8 || strsim::levenshtein(got, c) <= 2) && best.is_none_or(|(s, _)| sim > s) {
            best = Some((sim, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// Validates `[rollout]` against the file's `policies` (the served one is `served`); `router` builds the
/// router configuration of a policy (already validated).
pub fn resolve(
    file: &Path,
    raw: &RolloutFile,
    policies: &[PolicySpec],
    served: &str,
    router: impl Fn(&PolicySpec) -> RouterConfig,
) -> Result<Rollout, ConfigError> {
    let err = |path: String, message: String, suggestion: Option<String>| ConfigError {
        file: file.to_path_buf(),
        path,
        line: None,
        message,
        suggestion,
    };
    let find = |path: String, name: &str| -> Result<&PolicySpec, ConfigError> {
        policies.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            err(
                path,
                format!("no policy named `{name}`: expected one of {}", names.join(", ")),
                nearest(name, names.iter().copied()),
            )
        })
    };
    let mut shadows = Vec::with_capacity(raw.shadow.len());
    for (i, name) in raw.shadow.iter().enumerate() {
        let path = format!("rollout.shadow[{i}]");
        if let Some(j) = raw.shadow[..i].iter().position(|o| o == name) {
            return Err(err(path, format!("duplicate shadow policy `{name}` (also rollout.shadow[{j}])"), None));
        }
        let spec = find(path.clone(), name)?;
        if spec.batching.is_some() {
            return Err(err(path, format!("`{name}` batches deferrable requests: a shadow policy cannot batch"), None));
        }
        shadows.push(router(spec));
    }
    let canary = match &raw.canary {
        None => None,
        Some(c) => {
            if !(c.fraction.is_finite() && (0.0..=1.0).contains(&c.fraction)) {
                return Err(err(
                    "rollout.canary.fraction".into(),
                    format!("expected a share in [0, 1] such as 0.1, found {}", c.fraction),
                    None,
                ));
            }
            let spec = find("rollout.canary.policy".into(), &c.policy)?;
            if spec.name == served {
                return Err(err(
                    "rollout.canary.policy".into(),
                    format!("`{}` is the policy already served: a canary names another policy", c.policy),
                    None,
                ));
            }
            if spec.batching.is_some() {
                return Err(err(
                    "rollout.canary.policy".into(),
                    format!("`{}` batches deferrable requests: a canary policy cannot batch", c.policy),
                    None,
                ));
            }
            Some(Canary { router: router(spec), fraction: c.fraction, by: c.by })
        }
    };
    Ok(Rollout { canary, shadows })
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ArmLabel {
    arm: &'static str,
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShadowLabel {
    shadow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShadowEndpointLabel {
    shadow: String,
    endpoint: String,
}

/// The series of one shadow policy.
#[derive(Clone, Debug)]
pub struct ShadowMetrics {
    /// Requests the shadow decided on.
    pub decisions: Counter,
    /// Decisions equal to the served first choice (both rejecting counts as agreeing).
    pub agreements: Counter,
    /// Would-be first choices per endpoint, in endpoint order (the last entry: rejections).
    pub choices: Vec<Counter>,
    /// What the served requests would have cost at the shadow's choice's prices, USD.
    pub cost: Counter<f64, AtomicU64>,
    agreement_rate: Gauge<f64, AtomicU64>,
    shares: Vec<Gauge<f64, AtomicU64>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// `/metrics` of the rollout: requests per arm, the canary fraction, per shadow its agreement rate,
/// would-be traffic shares and cost, and the configuration reloads.
pub struct RolloutMetrics {
    arms: Family<ArmLabel, Counter>,
    /// `[rollout] canary.fraction` in force (0 without a canary).
    pub canary_fraction: Gauge<f64, AtomicU64>,
    decisions: Family<ShadowLabel, Counter>,
    agreements: Family<ShadowLabel, Counter>,
    rate: Family<ShadowLabel, Gauge<f64, AtomicU64>>,
    choices: Family<ShadowEndpointLabel, Counter>,
    shares: Family<ShadowEndpointLabel, Gauge<f64, AtomicU64>>,
    cost: Family<ShadowLabel, Counter<f64, AtomicU64>>,
    reloads: Family<ResultLabel, Counter>,
    generation: Gauge,
    /// The shadows of the generation in force (their ratios are refreshed before rendering).
    current: std::sync::RwLock<Vec<ShadowMetrics>>,
}

impl RolloutMetrics {
    /// Registers the rollout's series.
    pub fn register(r: &mut Registry) -> RolloutMetrics {
        let arms = Family::<ArmLabel, Counter>::default();
        r.register(
            "routesim_gateway_rollout_requests",
            "Requests by rollout arm and the policy that routed them",
            arms.clone(),
        );
        let canary_fraction = Gauge::<f64, AtomicU64>::default();
        r.register(
            "routesim_gateway_canary_fraction",
            "Share of the hash space sent to the canary",
            canary_fraction.clone(),
        );
        let decisions = Family::<ShadowLabel, Counter>::default();
        r.register("routesim_gateway_shadow_decisions", "Requests each shadow policy decided on", decisions.clone());
        let agreements = Family::<ShadowLabel, Counter>::default();
        r.register(
            "routesim_gateway_shadow_agreements",
            "Shadow decisions equal to the served first choice",
            agreements.clone(),
        );
        let rate = Family::<ShadowLabel, Gauge<f64, AtomicU64>>::default();
        r.register(
            "routesim_gateway_shadow_agreement_ratio",
            "Share of a shadow's decisions equal to the served first choice",
            rate.clone(),
        );
        let choices = Family::<ShadowEndpointLabel, Counter>::default();
        r.register(
            "routesim_gateway_shadow_choices",
            "Would-be first choices of each shadow policy by endpoint (endpoint=\"\": would reject)",
            choices.clone(),
        );
        let shares = Family::<ShadowEndpointLabel, Gauge<f64, AtomicU64>>::default();
        r.register(
            "routesim_gateway_shadow_share",
            "Would-be traffic share of each endpoint under each shadow policy",
            shares.clone(),
        );
        let cost = Family::<ShadowLabel, Counter<f64, AtomicU64>>::default();
        r.register(
            "routesim_gateway_shadow_cost_usd",
            "What served requests would have cost on each shadow's choice, at the served usage and its prices",
            cost.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        r.register(
            "routesim_gateway_config_reloads",
            "Reloads of endpoints, policies, groups and rollout, by result (ok, error)",
            reloads.clone(),
        );
        let generation = Gauge::default();
        generation.set(1);
        r.register("routesim_gateway_config_generation", "The configuration generation in force", generation.clone());
        RolloutMetrics {
            arms,
            canary_fraction,
            decisions,
            agreements,
            rate,
            choices,
            shares,
            cost,
            reloads,
            generation,
            current: std::sync::RwLock::new(Vec::new()),
        }
    }

    /// The series of shadows `shadows` over endpoints `endpoints` (a shadow kept by a reload keeps counting).
    pub fn shadow_series(&self, shadows: &[String], endpoints: &[String]) -> Vec<ShadowMetrics> {
        shadows
            .iter()
            .map(|s| {
                let l = ShadowLabel { shadow: s.clone() };
                let per_ep = |e: &str| ShadowEndpointLabel { shadow: s.clone(), endpoint: e.to_string() };
                let ids = endpoints.iter().map(String::as_str).chain([""]);
                let choices: Vec<Counter> =
                    ids.clone().map(|e| self.choices.get_or_create(&per_ep(e)).clone()).collect();
                let shares = ids.map(|e| self.shares.get_or_create(&per_ep(e)).clone()).collect();
                let decisions = self.decisions.get_or_create(&l).clone();
                let agreements = self.agreements.get_or_create(&l).clone();
                let agreement_rate = self.rate.get_or_create(&l).clone();
                let cost = self.cost.get_or_create(&l).clone();
                ShadowMetrics { decisions, agreements, choices, cost, agreement_rate, shares }
            })
            .collect()
    }

    /// Makes `shadows` the series refreshed before rendering, and `fraction` the canary fraction shown.
    pub fn set_current(&self, shadows: Vec<ShadowMetrics>, fraction: f64) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = shadows;
        self.canary_fraction.set(fraction);
    }

    /// Counts a configuration reload (`ok`: generation `generation` is in force).
    pub fn reloaded(&self, ok: bool, generation: u64) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "error" } }).inc();
        self.generation.set(generation as i64);
    }

    /// The request counters of the arms, resolved once per generation: `[0]` control routed by
    /// `policies[0]`, `[1]` canary routed by `policies[1]` (when there is a canary).
    pub fn arm_series(&self, policies: &[String]) -> Vec<Counter> {
        [Arm::Control, Arm::Canary]
            .iter()
            .zip(policies)
            .map(|(a, p)| self.arms.get_or_create(&ArmLabel { arm: a.name(), policy: p.clone() }).clone())
            .collect()
    }

    /// Sets the ratios (agreement rate, shares) from the counters; called before rendering.
    pub fn refresh(&self) {
        for s in self.current.read().unwrap_or_else(|p| p.into_inner()).iter() {
            let d = s.decisions.get();
            if d == 0 {
                continue;
            }
            s.agreement_rate.set(s.agreements.get() as f64 / d as f64);
            for (c, g) in s.choices.iter().zip(&s.shares) {
                g.set(c.get() as f64 / d as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_stable_and_spread() {
        assert_eq!(point("cand", "key-1"), point("cand", "key-1"));
        assert_ne!(point("cand", "key-1"), point("other", "key-1"));
        let n = 20_000;
        let below = (0..n).filter(|i| point("cand", &format!("k{i}")) < 0.1).count();
        let share = below as f64 / n as f64;
        assert!((share - 0.1).abs() < 0.01, "share {share}");
        assert!((0..n).all(|i| (0.0..1.0).contains(&point("c", &i.to_string()))));
    }
}
