//! `aiq.csv`: RouterBench's AIQ of every policy family a sweep traces (see [`crate::report::aiq`]).
//!
//! A family is one policy swept over its quality knob: a parameter `policies.<name>.threshold` (a `threshold`
//! policy) or `policies.<name>.min_quality` (a `quality` policy), in one scenario, at fixed values of every
//! other parameter. Its points are the cells of that policy along the knob, at `(cost_per_1k_usd, quality)`
//! (means over replications). Written by `routesim sweep` and `routesim merge` only when the cells have
//! quality on and the sweep has such a knob; other sweeps write the files they wrote before.
//!
//! Columns: `scenario`, `policy`, `knob` (the parameter's path), `fixed` (the other parameters as
//! `path=value` pairs joined by `; `, empty when there are none), `points`, `cost_min`, `cost_max` (USD per 1k
//! requests), `quality_min`, `quality_max`, `aiq` (over the family's own cost range), `aiq_shared` (over the
//! cost range of every family of the same scenario and knob, so that families compare: a hull is flat right
//! of its dearest point and 0 left of its cheapest, as RouterBench's code does), `hull` (the hull's vertices
//! as `cost:quality` joined by spaces).

use super::plan::Plan;
use crate::report::PolicyRow;
use crate::report::aiq::{aiq, aiq_over, nondecreasing_hull};
use anyhow::{Context, Result};
use polars::prelude::{Column, DataFrame};

/// The file name of the AIQ table in a sweep's output directory.
pub const AIQ_FILE: &str = "aiq.csv";

/// The knobs a family is swept over: a policy field of this name.
pub const KNOBS: [&str; 2] = ["threshold", "min_quality"];

/// One policy family along its knob.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// The knob's parameter column (`policies.<policy>.threshold` or `.min_quality`).
    pub knob: String,
    /// The other parameters' values, `path=value` joined by `; `.
    pub fixed: String,
    /// `(cost per 1k USD, quality)` of each cell along the knob, in plan order.
    pub points: Vec<(f64, f64)>,
    /// The non-decreasing convex hull of the points.
    pub hull: Vec<(f64, f64)>,
    /// AIQ over the family's own cost range.
    pub aiq: Option<f64>,
    /// AIQ over the cost range shared by the families of the same scenario and knob.
    pub aiq_shared: Option<f64>,
}

/// The policy a parameter column tunes, when it is one of the [`KNOBS`]: `policies.<name>.<knob>`.
pub fn knob_policy(column: &str) -> Option<&str> {
    let rest = column.strip_prefix("policies.")?;
    KNOBS.iter().find_map(|k| rest.strip_suffix(k)?.strip_suffix('.')).filter(|p| !p.is_empty())
}

/// Every family of a merged sweep (its plan and each cell's summary, in plan order) whose cells have quality
/// on (none otherwise), in the order of their first cell in the plan.
pub fn families(plan: &Plan, summaries: &[PolicyRow]) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    for (j, column) in plan.param_columns.iter().enumerate() {
        let Some(policy) = knob_policy(column) else { continue };
        for (k, cell) in plan.cells.iter().enumerate() {
            let Some(row) = summaries.get(k) else { continue };
            if cell.policy != policy || !row.quality_on {
                continue;
            }
            let fixed: Vec<String> = plan
                .param_columns
                .iter()
                .zip(&cell.params)
                .enumerate()
                .filter(|(i, _)| *i != j)
                .map(|(_, (c, v))| format!("{c}={v}"))
                .collect();
            let fixed = fixed.join("; ");
            let point = (row.cost_per_1k_usd.mean, row.quality.mean);
            match out
                .iter_mut()
                .find(|f| f.scenario == cell.scenario && f.policy == policy && f.knob == *column && f.fixed == fixed)
            {
                Some(f) => f.points.push(point),
                None => out.push(Family {
                    scenario: cell.scenario.clone(),
                    policy: policy.to_string(),
                    knob: column.clone(),
                    fixed,
                    points: vec![point],
                    hull: Vec::new(),
                    aiq: None,
                    aiq_shared: None,
                }),
            }
        }
    }
    for k in 0..out.len() {
        let shared = |f: &Family| f.scenario == out[k].scenario && f.knob == out[k].knob;
        let costs = out.iter().filter(|f| shared(f)).flat_map(|f| f.points.iter()).filter(|p| p.1.is_finite());
        let costs: Vec<f64> = costs.map(|p| p.0).filter(|c| c.is_finite()).collect();
        let lo = costs.iter().copied().reduce(f64::min);
        let hi = costs.iter().copied().reduce(f64::max);
        let f = &mut out[k];
        f.hull = nondecreasing_hull(&f.points);
        f.aiq = aiq(&f.points);
        f.aiq_shared = lo.zip(hi).and_then(|(lo, hi)| aiq_over(&f.points, lo, hi));
    }
    out
}

/// The content of `aiq.csv`.
pub fn aiq_frame(families: &[Family]) -> Result<DataFrame> {
    let text = |f: fn(&Family) -> String| Column::new("".into(), families.iter().map(f).collect::<Vec<String>>());
    let number = |name: &str, f: &dyn Fn(&Family) -> Option<f64>| {
        Column::new(name.into(), families.iter().map(f).collect::<Vec<Option<f64>>>())
    };
    let range = |f: &Family, pick: fn((f64, f64)) -> f64, max: bool| {
        let xs = f.points.iter().copied().map(pick).filter(|x| x.is_finite());
        if max { xs.reduce(f64::max) } else { xs.reduce(f64::min) }
    };
    let columns = vec![
        text(|f| f.scenario.clone()).with_name("scenario".into()),
        text(|f| f.policy.clone()).with_name("policy".into()),
        text(|f| f.knob.clone()).with_name("knob".into()),
        text(|f| f.fixed.clone()).with_name("fixed".into()),
        Column::new("points".into(), families.iter().map(|f| f.points.len() as u32).collect::<Vec<u32>>()),
        number("cost_min", &|f| range(f, |p| p.0, false)),
        number("cost_max", &|f| range(f, |p| p.0, true)),
        number("quality_min", &|f| range(f, |p| p.1, false)),
        number("quality_max", &|f| range(f, |p| p.1, true)),
        number("aiq", &|f| f.aiq),
        number("aiq_shared", &|f| f.aiq_shared),
        text(|f| f.hull.iter().map(|(c, q)| format!("{c}:{q}")).collect::<Vec<_>>().join(" ")).with_name("hull".into()),
    ];
    DataFrame::new(families.len(), columns).context("building the AIQ table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knob_columns_name_their_policy() {
        assert_eq!(knob_policy("policies.strong-weak.threshold"), Some("strong-weak"));
        assert_eq!(knob_policy("policies.v1.2.min_quality"), Some("v1.2"));
        assert_eq!(knob_policy("policies.hybrid.buffer"), None);
        assert_eq!(knob_policy("traffic.threshold"), None);
        assert_eq!(knob_policy("policies..threshold"), None);
    }
}
