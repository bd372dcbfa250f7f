//! `routesim ab --predict SCENARIO`: the simulator's prediction of the same A/B test.
//!
//! **What is simulated.** Both policies are run over the scenario's full traffic (the same arrivals, the
//! same request attributes and the same provider luck: common random numbers), and each request is then
//! assigned to the canary with probability `fraction` by a draw keyed by its id and the seed, to the control
//! otherwise; an arm's rows are its requests as its own policy served them. The two simulated arms are
//! analysed exactly as the log's (the same bootstrap, replicate count and seed), with as many requests as
//! the log's arms hold by default, so the two intervals have comparable widths.
//!
//! **What this leaves out.** In the live canary both policies route at once and share the providers'
//! capacity (slots, RPM/TPM quotas, queues): each provider sees the control's share of traffic placed by
//! the control and the rest placed by the canary. Here each policy sees the providers loaded by its own
//! placement of all the traffic. The two agree whenever the providers are not congested (each request's
//! latency and cost then depend on where it goes, not on the others), and they diverge under congestion
//! or quota pressure, where the prediction is of "each policy at 100%" rather than of the mixture. Scaling
//! the rate by each arm's fraction instead would understate the load on the shared providers (each arm
//! would see idle capacity the other arm uses), which is further from the canary; modelling the mixture
//! exactly would take a routing step that picks the policy per request inside one run, which router-core
//! does not offer.

use super::analysis::{self, Comparison};
use super::read::{AbRow, ArmRows};
use crate::engine::{self, RequestRecord, RunOptions};
use crate::scenario::Compiled;
use router_core::keyed_rand::mix64;
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

/// Whether request `id` goes to the canary: a uniform draw keyed by the seed and the id, below `fraction`.
pub fn in_canary(seed: u64, id: u64, fraction: f64) -> bool {
    crate::rng::unit(mix64(mix64(seed ^ 0x6162_5f61_726d_7321) ^ id)) < fraction
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

/// The measured (post-warm-up) records of one run of `policy`, in request-id order.
fn records(model: &Compiled, policy: usize) -> Vec<RequestRecord> {
    let mut out = Vec::new();
    let mut sink = |r: &RequestRecord| {
        if r.measured {
            out.push(r.clone());
        }
    };
    engine::run(model, policy, 0, RunOptions { records: Some(&mut sink), ..Default::default() });
    out.sort_by_key(|r| r.id);
    out
}

/// The two simulated arms: `control` and `canary` (policy indices of `model`, whose request count is already
/// set) each run over the full traffic, request `id` kept in the canary's rows when [`in_canary`] holds for
/// it under `seed`, in the control's otherwise.
pub fn simulate_arms(model: &Compiled, control: usize, canary: usize, fraction: f64, seed: u64) -> [ArmRows; 2] {
    let (a, b) = rayon::join(|| records(model, control), || records(model, canary));
    let names = model.policy_names();
    let mut arms = [
        ArmRows { name: "control".into(), policy: Some(names[control].clone()), rows: Vec::new() },
        ArmRows { name: "canary".into(), policy: Some(names[canary].clone()), rows: Vec::new() },
    ];
    arms[0].rows = a.iter().filter(|r| !in_canary(seed, r.id, fraction)).map(row).collect();
    arms[1].rows = b.iter().filter(|r| in_canary(seed, r.id, fraction)).map(row).collect();
    arms
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
) -> Prediction {
    let arms = simulate_arms(model, control, canary, fraction, seed);
    let comparison = analysis::compare(&arms[0], &arms[1], replicates, seed);
    let names = model.policy_names();
    Prediction {
        scenario: model.scenario.name.clone(),
        policies: [names[control].clone(), names[canary].clone()],
        requests: (arms[0].rows.len() + arms[1].rows.len()) as u64,
        fraction,
        method: "each policy over the full traffic (common random numbers), requests split between the arms by \
                 the fraction; capacity sharing between the arms is not modelled"
            .into(),
        comparison,
    }
}
