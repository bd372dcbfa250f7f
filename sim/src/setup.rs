//! Setting up an experiment from a command's choices: the scenario loaded with its overrides (seed, request
//! count, replications), the policies selected by name, and the expected size of a run (for progress bars).

use crate::scenario::diag::{ScenarioError, nearest};
use crate::scenario::{Compiled, Overrides, Scenario};
use std::path::Path;

/// Reads, overrides and compiles a scenario.
pub fn load_scenario(file: &Path, overrides: &Overrides) -> Result<Compiled, ScenarioError> {
    let mut scenario = Scenario::load(file)?;
    overrides.apply(&mut scenario);
    scenario.compile(file)
}

/// Indices of the policies named in `--policies` (all when `None`), or an error naming the unknown one.
pub fn select_policies(model: &Compiled, names: Option<&[String]>) -> Result<Vec<usize>, ScenarioError> {
    let all = model.policy_names();
    let Some(names) = names else { return Ok((0..all.len()).collect()) };
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let Some(i) = all.iter().position(|p| p == n) else {
            let e = ScenarioError::invalid(
                &model.file,
                "policies",
                format!(
                    "--policies names `{n}`, which the scenario does not define: expected one of {}",
                    all.join(", ")
                ),
            );
            return Err(e.with_suggestion(nearest(n, all.iter().map(String::as_str))));
        };
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// The number of requests one run of the scenario generates, for progress bars: exact with a request count,
/// else the integral of the rate profile over the duration (without MMPP bursts), whichever is smaller.
pub fn expected_requests(model: &Compiled) -> u64 {
    let by_count = model.limit.max_requests.unwrap_or(u64::MAX);
    let Some(until) = model.limit.until else { return by_count };
    let end = until as f64 / 1e9;
    let steps = 2_000usize;
    let dt = end / steps as f64;
    let integral: f64 = (0..steps).map(|i| model.traffic.rate_at((i as f64 + 0.5) * dt) * dt).sum();
    by_count.min(integral.round() as u64)
}
