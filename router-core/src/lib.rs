//! router-core: the routing policies of a multi-LLM gateway, as a clock-free library.
//!
//! The same code decides in a production gateway (a tokio service) and inside the `routesim` simulator,
//! so it never reads a clock, spawns a task or touches the network: time is an argument (`now`, integer
//! nanoseconds) of every call. A [`Router`] is built from a validated [`RouterConfig`] and answers
//! [`Router::decide`]; the caller feeds back what happened through [`Router::on_dispatch`],
//! [`Router::on_result`] and [`Router::on_health`].
//!
//! ```
//! use router_core::{Decision, Endpoint, Outcome, PolicyKind, PolicySpec, RequestInfo, Router, RouterConfig};
//!
//! let cfg = RouterConfig {
//!     endpoints: vec![Endpoint::new("a"), Endpoint::new("b")],
//!     policy: PolicySpec::new("rr", PolicyKind::RoundRobin),
//!     groups: vec![],
//!     seed: 7,
//!     quality: Default::default(),
//! };
//! let mut router = Router::new(&cfg).unwrap();
//! let req = RequestInfo::new(1, 500);
//! let Decision::Route { endpoint, .. } = router.decide(&req, 0) else { panic!() };
//! router.on_dispatch(endpoint, &req, 0);
//! router.on_result(endpoint, &req, &Outcome::success(800_000_000, Some(200_000_000), 500, 120), 800_000_000);
//! ```
//!
//! Module map: [`model`] (endpoints, requests, outcomes), [`state`] (per-endpoint live state),
//! [`policy`] (filter -> scorer -> selector, one type per policy), [`condition`] (metadata rules),
//! [`resilience`] (retry, cache, batching), [`quality`] (answer quality: the item-response model), [`access`] (per-client-key limits and budgets), [`canary`] (the stable hash that picks a request's canary arm), [`config`] (what users write), [`router`] (the entry point).

#![warn(missing_docs)]

pub mod access;
pub mod canary;
pub mod condition;
pub mod config;
pub mod duration;
pub mod keyed_rand;
pub mod model;
pub mod policy;
pub mod quality;
pub mod resilience;
pub mod router;
pub mod scale;
pub mod state;
pub mod upstream;

pub use access::{Admission, Denial, DenyReason, KeyLimits, KeyMeter, Periods, SpendRecord};
pub use config::{
    BatchConfig, BudgetConfig, CacheConfig, ConfigError, CooldownConfig, FallbackSpec, GroupRetryConfig, HealthConfig,
    HybridWeights, Jitter, PolicyKind, PolicySpec, RetryConfig, RouterConfig, RuleSpec, TargetRetryConfig, TargetSpec,
    VerifierSpec,
};
pub use duration::Duration;
pub use model::*;
pub use quality::{Accuracy, QualityConfig};
pub use router::{
    Attempts, Chooser, Decision, GiveUpReason, MAX_GROUP_DEPTH, MAX_GROUPS, NextAttempt, RejectReason, Router, Scope,
    Timeouts,
};
pub use scale::TimeScaled;
pub use state::{CircuitConfig, EmaConfig, TrackingConfig};
pub use upstream::{UpstreamAuth, UpstreamConfig};

/// The code blocks of `README.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
