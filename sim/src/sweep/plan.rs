//! The plan of a sweep: the parameter points, the cells (scenario x point x policy) in their fixed order,
//! which shard runs which cell, and `sweep-plan.json`, which every shard writes and `routesim merge` reads.
//!
//! A cell's fingerprint hashes everything its result depends on (the resolved scenario with the point
//! applied, without the other policies, the replications and the routesim version), so a result file is only
//! ever taken for the cell that produced it, and cells with the same fingerprint (a baseline at points that
//! only change another policy's knob) are run once: later ones take the first one's result (`source`).
//! The `i`-th computed cell belongs to shard `i mod N`, which spreads the cells of one scenario and point
//! over the shards and balances shards whose cells differ in cost.

use super::config::{SweepConfig, SweepParam, value_number};
use crate::params::{Param, Value};
use crate::scenario::diag::{ScenarioError, nearest};
use crate::scenario::{Compiled, Overrides, Scenario};
use crate::setup::expected_requests;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the `sweep-plan.json` layout.
pub const PLAN_FORMAT: u32 = 1;

/// A slice of the cells: shard `index` of `count` (0-based, as `JOB_COMPLETION_INDEX` and a Slurm array
/// `--array=0-(N-1)` number them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// The whole sweep in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard expects I/N with 0 <= I < N, like 3/8, found `{text}`");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether item `k` of a fixed order belongs to this shard.
    pub fn owns(&self, k: usize) -> bool {
        k as u64 % self.count as u64 == self.index as u64
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One cell of the plan as `sweep-plan.json` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellPlan {
    /// Its name, also the stem of its result file.
    pub id: String,
    /// Scenario name.
    pub scenario: String,
    /// Index of the parameter point.
    pub point: u32,
    /// Index of the (scenario, point) pair: cells of one group share traffic and are paired.
    pub group: u32,
    /// The point's values, one per parameter column, as shortest round-trip decimal text.
    pub params: Vec<String>,
    /// Policy name.
    pub policy: String,
    /// The baseline of its paired differences.
    pub baseline: String,
    /// Replications.
    pub replications: u32,
    /// Requests one run simulates (warm-up included; an estimate for duration-limited runs).
    pub requests_per_run: u64,
    /// Hash of everything the result depends on.
    pub fingerprint: String,
    /// Index of the cell whose result file holds this cell's result: itself, or an earlier cell with the
    /// same fingerprint (a policy that a point does not change is run once, not once per point).
    pub source: u32,
}

/// `sweep-plan.json`: the whole sweep's cells, identical in every shard's output directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT`].
    pub format: u32,
    /// Always `"sweep"`.
    pub kind: String,
    /// The routesim version that made it (results of different versions are not merged).
    pub routesim_version: String,
    /// The sweep's name.
    pub sweep: String,
    /// Parameter columns of the result tables.
    pub param_columns: Vec<String>,
    /// Every cell, in the order of the result tables.
    pub cells: Vec<CellPlan>,
}

impl Plan {
    /// Indices of the cells that are run (their own source), in order.
    pub fn computed(&self) -> Vec<usize> {
        (0..self.cells.len()).filter(|&k| self.cells[k].source as usize == k).collect()
    }

    /// Indices of the cells `shard` runs: the `i`-th computed cell belongs to shard `i mod N`.
    pub fn shard_cells(&self, shard: Shard) -> Vec<usize> {
        self.computed().into_iter().enumerate().filter(|(i, _)| shard.owns(*i)).map(|(_, k)| k).collect()
    }

    /// Runs (computed cell x replication) in all.
    pub fn runs(&self) -> u64 {
        self.computed().iter().map(|&k| self.cells[k].replications as u64).sum()
    }

    /// Simulated requests in all.
    pub fn simulated_requests(&self) -> u64 {
        self.computed().iter().map(|&k| self.cells[k].replications as u64 * self.cells[k].requests_per_run).sum()
    }
}

/// One scenario with one parameter point applied, ready to compile.
#[derive(Clone, Debug)]
pub struct PointScenario {
    /// Index of the scenario in the sweep file.
    pub scenario: usize,
    /// Index of the point.
    pub point: usize,
    /// The scenario file (replay logs and error messages are relative to it).
    pub file: PathBuf,
    /// The scenario with the point and the sweep's overrides applied.
    pub resolved: Scenario,
}

impl PointScenario {
    /// Compiles it (validated when the sweep was loaded).
    pub fn compile(&self) -> Result<Compiled, ScenarioError> {
        self.resolved.clone().compile(&self.file)
    }
}

/// A loaded sweep: the plan and, per cell, how to run it.
#[derive(Debug)]
pub struct Sweep {
    /// The sweep file.
    pub file: PathBuf,
    /// Its contents.
    pub config: SweepConfig,
    /// The plan.
    pub plan: Plan,
    /// Every (scenario, point), scenario-major.
    pub points: Vec<PointScenario>,
    /// Per cell: index into `points` and the policy's index in that scenario.
    pub cell_runs: Vec<(usize, usize)>,
}

/// One value of a swept parameter: the (path, TOML value) assignments it makes and its numbers for the
/// result columns.
type AxisValue = (Vec<(String, toml::Value)>, Vec<f64>);

/// One swept parameter's values.
struct Axis {
    /// Columns in the result tables.
    columns: Vec<String>,
    /// Each value.
    values: Vec<AxisValue>,
}

fn axis(file: &Path, i: usize, p: &SweepParam) -> Result<Axis, ScenarioError> {
    if let Some(values) = &p.values {
        let values = values
            .iter()
            .map(|v| (vec![(p.path.clone(), v.clone())], vec![value_number(v).unwrap_or(f64::NAN)]))
            .collect();
        return Ok(Axis { columns: vec![p.path.clone()], values });
    }
    let param =
        Param::new(&p.range_spec()).map_err(|(f, m)| ScenarioError::invalid(file, &format!("params[{i}].{f}"), m))?;
    let values = param
        .grid(p.steps.unwrap_or(super::config::DEFAULT_STEPS))
        .into_iter()
        .map(|v| match v {
            Value::Scalar(x) => {
                let item = if p.integer { toml::Value::Integer(x as i64) } else { toml::Value::Float(x) };
                (vec![(p.path.clone(), item)], vec![x])
            }
            Value::Simplex(w) => {
                let fields = p.simplex.as_deref().unwrap_or_default();
                let sets = fields.iter().zip(&w).map(|(f, x)| (format!("{}.{f}", p.path), toml::Value::Float(*x)));
                (sets.collect(), w.clone())
            }
        })
        .collect();
    Ok(Axis { columns: param.columns(), values })
}

impl Sweep {
    /// Reads the sweep file and its scenarios, applies every point and compiles it once, so that a wrong
    /// path, value or policy name fails here, naming the sweep file and the parameter.
    pub fn load(file: &Path) -> Result<Sweep, ScenarioError> {
        let config = SweepConfig::load(file)?;
        let err = |path: &str, msg: String| ScenarioError::invalid(file, path, msg);
        let axes: Vec<Axis> =
            config.params.iter().enumerate().map(|(i, p)| axis(file, i, p)).collect::<Result<_, _>>()?;
        let param_columns: Vec<String> = axes.iter().flat_map(|a| a.columns.clone()).collect();
        // The grid, first parameter slowest: per point, the indices of each axis' value.
        let mut grid: Vec<Vec<usize>> = vec![Vec::new()];
        for a in &axes {
            grid =
                grid.iter().flat_map(|prefix| (0..a.values.len()).map(move |v| [&prefix[..], &[v]].concat())).collect();
        }
        let base_dir = file.parent().unwrap_or(Path::new("."));
        let overrides = Overrides { seed: config.seed, requests: config.requests, replications: config.replications };
        let version = env!("CARGO_PKG_VERSION");
        let mut points = Vec::new();
        let mut cells = Vec::new();
        let mut cell_runs = Vec::new();
        for (s, rel) in config.scenarios.iter().enumerate() {
            let scenario_file = base_dir.join(rel);
            let mut scenario =
                Scenario::load(&scenario_file).map_err(|e| err(&format!("scenarios[{s}]"), e.to_string()))?;
            scenario.tune = None;
            let names: Vec<String> = scenario.policies.iter().map(|p| p.name.clone()).collect();
            let selected: Vec<usize> = match &config.policies {
                None => (0..names.len()).collect(),
                Some(list) => list
                    .iter()
                    .map(|n| {
                        names.iter().position(|x| x == n).ok_or_else(|| {
                            err(
                                "policies",
                                format!(
                                    "scenario {} has no policy `{n}`: expected one of {}",
                                    scenario_file.display(),
                                    names.join(", ")
                                ),
                            )
                            .with_suggestion(nearest(n, names.iter().map(String::as_str)))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            for (pt, choice) in grid.iter().enumerate() {
                let sets: Vec<&(String, toml::Value)> =
                    choice.iter().enumerate().flat_map(|(a, &v)| axes[a].values[v].0.iter()).collect();
                let numbers: Vec<f64> =
                    choice.iter().enumerate().flat_map(|(a, &v)| axes[a].values[v].1.iter().copied()).collect();
                let describe = || sets.iter().map(|(p, v)| format!("{p} = {v}")).collect::<Vec<_>>().join(", ");
                let mut resolved = apply_point(&scenario, &sets).map_err(|(k, m)| {
                    let i = param_index(&config.params, &sets[k].0);
                    err(&format!("params[{i}].path"), format!("in scenario {}: {m}", scenario_file.display()))
                })?;
                overrides.apply(&mut resolved);
                let model = resolved.clone().compile(&scenario_file).map_err(|e| {
                    err("params", format!("point {pt} ({}) gives an invalid scenario: {e}", describe()))
                })?;
                let base_name = config.baseline.clone().unwrap_or_else(|| names[model.baseline].clone());
                if !selected.iter().any(|&p| names[p] == base_name) {
                    let listed: Vec<&str> = selected.iter().map(|&p| names[p].as_str()).collect();
                    return Err(err(
                        "baseline",
                        format!(
                            "the baseline `{base_name}` of scenario {} is not among the swept policies ({}): add it \
                             to `policies`",
                            scenario_file.display(),
                            listed.join(", ")
                        ),
                    ));
                }
                let per_run = expected_requests(&model);
                for &p in &selected {
                    let policy = &names[p];
                    // The run of policy p depends on the scenario and p alone (common random numbers): hash
                    // the scenario without the other policies.
                    let mut alone = resolved.clone();
                    alone.policies.retain(|x| x.name == *policy);
                    let text = toml::to_string(&alone)
                        .map_err(|e| err("", format!("cannot represent the resolved scenario: {e}")))?;
                    let fingerprint = fingerprint(&[version, &text, &resolved.replications.to_string()]);
                    let source =
                        cells.iter().position(|c: &CellPlan| c.fingerprint == fingerprint).unwrap_or(cells.len());
                    let id = format!("s{s:02}-{}.pt{pt:04}.p{p:02}-{}", safe(&scenario.name), safe(policy));
                    cells.push(CellPlan {
                        id,
                        scenario: scenario.name.clone(),
                        point: pt as u32,
                        group: points.len() as u32,
                        params: numbers.iter().map(|x| x.to_string()).collect(),
                        policy: policy.clone(),
                        baseline: base_name.clone(),
                        replications: resolved.replications,
                        requests_per_run: per_run,
                        fingerprint,
                        source: source as u32,
                    });
                    cell_runs.push((points.len(), p));
                }
                points.push(PointScenario { scenario: s, point: pt, file: scenario_file.clone(), resolved });
            }
        }
        let plan = Plan {
            format: PLAN_FORMAT,
            kind: "sweep".into(),
            routesim_version: version.into(),
            sweep: config.name.clone(),
            param_columns,
            cells,
        };
        Ok(Sweep { file: file.to_path_buf(), config, plan, points, cell_runs })
    }
}

/// The index of the parameter whose path (or simplex field path) is `path`.
fn param_index(params: &[SweepParam], path: &str) -> usize {
    params.iter().position(|p| path == p.path || path.starts_with(&format!("{}.", p.path))).unwrap_or(0)
}

/// A file-name-safe form of a name.
fn safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// FNV-1a (64 bit) over the parts, each followed by a 0 byte, as 16 hex digits: stable across machines.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The scenario with each `(path, value)` written in; the error gives the index of the failing assignment.
pub fn apply_point(scenario: &Scenario, sets: &[&(String, toml::Value)]) -> Result<Scenario, (usize, String)> {
    let mut doc = toml::Value::try_from(scenario).map_err(|e| (0, format!("cannot represent the scenario: {e}")))?;
    for (k, (path, value)) in sets.iter().enumerate() {
        set_path(&mut doc, path, value.clone()).map_err(|m| (k, format!("`{path}`: {m}")))?;
    }
    let text = toml::to_string(&doc).map_err(|e| (0, format!("cannot represent the scenario: {e}")))?;
    let de = toml::Deserializer::parse(&text).map_err(|e| (0, e.message().to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let k = sets.iter().position(|(p, _)| at.contains(p.rsplit('.').next().unwrap_or(p))).unwrap_or(0);
        (k, format!("`{}` gives an invalid scenario at `{at}`: {}", sets[k].0, e.inner().message().trim()))
    })
}

/// Sets the dotted `path` of a TOML document. Inside an array, a segment (or several joined by dots, for ids
/// like `gpt-4.1`) is an index or the `name`/`id` of an element. Missing tables are created; an existing
/// value must be a number or a duration.
pub fn set_path(doc: &mut toml::Value, path: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut node = doc;
    let mut i = 0;
    while i < parts.len() {
        if let toml::Value::Array(items) = node {
            let mut found = None;
            for k in (1..=parts.len() - i).rev() {
                let key = parts[i..i + k].join(".");
                let hit = key.parse::<usize>().ok().filter(|&n| n < items.len()).or_else(|| {
                    items.iter().position(|it| {
                        ["name", "id"].iter().any(|f| it.get(f).and_then(toml::Value::as_str) == Some(key.as_str()))
                    })
                });
                if let Some(n) = hit {
                    found = Some((n, k));
                    break;
                }
            }
            let Some((n, k)) = found else {
                let names: Vec<String> = items
                    .iter()
                    .filter_map(|it| it.get("name").or_else(|| it.get("id")).and_then(toml::Value::as_str))
                    .map(str::to_string)
                    .collect();
                return Err(format!(
                    "`{}` has no element `{}`: expected an index below {} or one of {}",
                    parts[..i].join("."),
                    parts[i],
                    items.len(),
                    names.join(", ")
                ));
            };
            node = &mut items[n];
            i += k;
            continue;
        }
        let table = node.as_table_mut().ok_or_else(|| format!("`{}` is not a table", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            if let Some(old) = table.get(parts[i])
                && value_number(old).is_none()
            {
                return Err(format!("expected a numeric field, found `{old}`"));
            }
            table.insert(parts[i].to_string(), value);
            return Ok(());
        }
        node = table.entry(parts[i].to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        i += 1;
    }
    Err("expected a field path".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_cells() {
        for n in 1..6u32 {
            let mut seen = vec![0; 23];
            for i in 0..n {
                let shard = Shard::parse(&format!("{i}/{n}")).unwrap();
                for (k, count) in seen.iter_mut().enumerate() {
                    if shard.owns(k) {
                        *count += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{n}: {seen:?}");
        }
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("1").is_err());
        assert_eq!(Shard::parse(" 2 / 4").unwrap(), Shard { index: 2, count: 4 });
    }

    #[test]
    fn paths_reach_array_elements_by_name_id_or_index() {
        let mut doc: toml::Value = toml::from_str(
            "[traffic]\nrate = 1.0\n[[endpoints]]\nid = \"gpt-4.1\"\nprice = 2.0\n[[policies]]\nname = \"h\"\n",
        )
        .unwrap();
        set_path(&mut doc, "traffic.rate", toml::Value::Float(3.0)).unwrap();
        set_path(&mut doc, "endpoints.gpt-4.1.price", toml::Value::Float(5.0)).unwrap();
        set_path(&mut doc, "policies.0.retry.max_attempts", toml::Value::Integer(2)).unwrap();
        assert_eq!(doc["traffic"]["rate"].as_float(), Some(3.0));
        assert_eq!(doc["endpoints"][0]["price"].as_float(), Some(5.0));
        assert_eq!(doc["policies"][0]["retry"]["max_attempts"].as_integer(), Some(2));
        let e = set_path(&mut doc, "policies.hybird.buffer", toml::Value::Float(0.1)).unwrap_err();
        assert!(e.contains("hybird") && e.contains("h"), "{e}");
        let e = set_path(&mut doc, "policies.h.name", toml::Value::Float(0.1)).unwrap_err();
        assert!(e.contains("numeric"), "{e}");
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["x"]), fingerprint(&["x"]));
    }

    proptest::proptest! {
        /// Whatever cells share a run and however many shards there are, every computed cell is run by
        /// exactly one shard, and no alias (a cell that takes another's result) is run at all.
        #[test]
        fn shards_run_every_computed_cell_once(links in proptest::collection::vec(0usize..4, 1..60), n in 1u32..9) {
            let cells: Vec<CellPlan> = links
                .iter()
                .enumerate()
                .map(|(k, &back)| CellPlan {
                    id: format!("c{k}"),
                    scenario: "s".into(),
                    point: 0,
                    group: 0,
                    params: Vec::new(),
                    policy: "p".into(),
                    baseline: "p".into(),
                    replications: 1,
                    requests_per_run: 1,
                    fingerprint: String::new(),
                    // Every fourth link points back to an earlier computed cell, as a shared fingerprint does.
                    source: if back == 0 && k > 0 { 0 } else { k as u32 },
                })
                .collect();
            let plan = Plan {
                format: PLAN_FORMAT,
                kind: "sweep".into(),
                routesim_version: String::new(),
                sweep: String::new(),
                param_columns: Vec::new(),
                cells,
            };
            let mut runs = vec![0u32; plan.cells.len()];
            for i in 0..n {
                for k in plan.shard_cells(Shard { index: i, count: n }) {
                    runs[k] += 1;
                }
            }
            for (k, c) in plan.cells.iter().enumerate() {
                proptest::prop_assert_eq!(runs[k], u32::from(c.source as usize == k), "cell {}", k);
            }
        }
    }
}
