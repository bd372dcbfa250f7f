//! `routesim ab --predict SCENARIO`: the simulator's prediction of the same A/B test.
//!
//! **What is simulated.** One run of the scenario in which the two policies route at once, as in the
//! gateway's canary: each request is routed by the router of its arm, the canary's when the stable hash of
//! its id salted with the canary policy's name falls below `fraction` (the arm the gateway picks with
//! `[rollout] canary = { by = "request" }` for the same request id: `routesim live --canary` sends the
//! simulator's ids, so the simulated and the live split are the same requests), the control's otherwise
//! ([`engine::run_canary`]). Each arm's router sees its own requests' decisions, dispatches and results, and
//! both see the health checks, as the gateway's one router per arm does; the two arms share the providers'
//! capacity (slots, queues, RPM/TPM quotas), so each arm meets the congestion the other creates. The arms'
//! requests are analysed exactly as the log's (the same bootstrap, replicate count and seed), with as many
//! requests in all as the log's arms hold by default, so the two intervals have comparable widths.
//!
//! **What this leaves out.** The log's arms may be split by client key or user (`by = "key"` / `"user"`),
//! which the scenario's requests do not carry: the prediction splits by request id, which gives the same
//! shares but not the same requests. Keys and users that send very different traffic make the measured arms
//! differ by who is in them, which no simulated split reproduces.

use super::analysis::{self, Comparison};
use super::read::{AbRow, ArmRows};
use crate::engine::{self, Arm, Canary, CanaryError, RequestRecord, RunOptions};
use crate::scenario::Compiled;
use serde::Serialize;

/// The simulator's prediction of an A/B test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The scenario's name.
    pub scenario: String,
    /// Control and canary policies.
    pub policies: [String; 2],
    /// Simulated requests (both arms).
    pub requests: u64,
    /// Share of requests assigned to the canary.
    pub fraction: f64,
    /// How the arms were simulated, in a sentence.
    pub method: String,
    /// The simulated arms' comparison.
    pub comparison: Comparison,
}

fn row(r: &RequestRecord) -> AbRow {
    AbRow {
        ok: r.error.is_none() && !r.rejected,
        latency_s: r.latency_s,
        ttft_s: r.ttft_s.is_finite().then_some(r.ttft_s),
        cost_usd: r.cost_usd,
        quality: None,
    }
}

/// The two simulated arms of one canary run ([`engine::run_canary`]) of `control` with `canary` beside it at
/// `fraction` (policy indices of `model`, whose request count is already set): each arm's measured
/// (post-warm-up) requests, in request-id order.
pub fn simulate_arms(
    model: &Compiled,
    control: usize,
    canary: usize,
    fraction: f64,
) -> Result<[ArmRows; 2], CanaryError> {
    let names = model.policy_names();
    let mut arms = [
        ArmRows { name: "control".into(), policy: Some(names[control].clone()), rows: Vec::new() },
        ArmRows { name: "canary".into(), policy: Some(names[canary].clone()), rows: Vec::new() },
    ];
    let mut records: Vec<RequestRecord> = Vec::new();
    let mut sink = |r: &RequestRecord| {
        if r.measured {
            records.push(r.clone());
        }
    };
    let opts = RunOptions { records: Some(&mut sink), ..Default::default() };
    engine::run_canary(model, control, Canary { policy: canary, fraction }, 0, opts)?;
    records.sort_by_key(|r| r.id);
    for r in &records {
        arms[(r.arm == Arm::Canary) as usize].rows.push(row(r));
    }
    Ok(arms)
}

/// Simulates the two arms ([`simulate_arms`]) and compares them with `replicates` bootstrap replicates under
/// `seed`.
pub fn predict(
    model: &Compiled,
    control: usize,
    canary: usize,
    fraction: f64,
    replicates: u32,
    seed: u64,
) -> Result<Prediction, CanaryError> {
    let arms = simulate_arms(model, control, canary, fraction)?;
    let comparison = analysis::compare(&arms[0], &arms[1], replicates, seed);
    let names = model.policy_names();
    Ok(Prediction {
        scenario: model.scenario.name.clone(),
        policies: [names[control].clone(), names[canary].clone()],
        requests: (arms[0].rows.len() + arms[1].rows.len()) as u64,
        fraction,
        method: "one run with both policies routing at once, each request by its arm's policy (the gateway's \
                 stable hash of the request id salted with the canary policy's name, below the fraction), the arms \
                 sharing the providers' capacity"
            .into(),
        comparison,
    })
}
