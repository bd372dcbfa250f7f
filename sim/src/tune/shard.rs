//! `routesim tune --shard I/N` and the merge of its shards: a grid, random or Latin-hypercube search split
//! over processes or machines.
//!
//! The unit of work is one policy (a baseline or a candidate) over every replication; unit `k` (baselines
//! first, then candidates in generation order) belongs to shard `k mod N`. Each shard writes
//! `tune-plan.json` and one file per unit under `cells/` (the format and atomic write of `routesim sweep`,
//! see [`crate::sweep::cells`]); `routesim merge` rebuilds the search from the plan, reads every unit and
//! writes the files `routesim tune` writes in one process, byte for byte.
//!
//! Successive halving decides after each rung which candidates go on, from every candidate's results: it
//! needs all of them in one place, so it stays on one machine.

use super::config::Method;
use super::search::{Status, assemble};
use super::{TuneOverrides, TuneSetup, output};
use crate::failure::Failure;
use crate::scenario::Scenario;
use crate::scenario::diag::ScenarioError;
use crate::setup::expected_requests;
use crate::sweep::Shard;
use crate::sweep::cells::{run_cells, write_plan_file};
use crate::sweep::merge::collect_cells;
use crate::sweep::plan::{CellPlan, fingerprint};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Name of the plan file of a sharded tuning run.
pub const PLAN_FILE: &str = "tune-plan.json";

/// `tune-plan.json`: everything `routesim merge` needs to rebuild the search without the scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunePlan {
    /// Layout version (1).
    pub format: u32,
    /// Always `"tune"`.
    pub kind: String,
    /// The routesim version that made it.
    pub routesim_version: String,
    /// The scenario file as given on the command line.
    pub scenario_file: PathBuf,
    /// Its text, as read (copied to `scenario.toml`).
    pub scenario_text: String,
    /// The command-line overrides.
    pub overrides: TuneOverrides,
    /// One unit per baseline and candidate.
    pub cells: Vec<CellPlan>,
}

/// The shard's units, from a loaded search.
fn plan(file: &Path, text: String, overrides: &TuneOverrides, setup: &TuneSetup) -> Result<TunePlan> {
    let version = env!("CARGO_PKG_VERSION");
    let settings = serde_json::to_string(overrides).context("serialising the options")?;
    let per_run = expected_requests(&setup.model);
    let cells = setup
        .model
        .scenario
        .policies
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let safe: String = p
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                .collect();
            CellPlan {
                id: format!("u{k:05}-{safe}"),
                scenario: setup.model.scenario.name.clone(),
                point: 0,
                group: 0,
                params: Vec::new(),
                policy: p.name.clone(),
                baseline: String::new(),
                replications: setup.replications,
                requests_per_run: per_run,
                fingerprint: fingerprint(&[version, &text, &settings, &p.name]),
                source: k as u32,
            }
        })
        .collect();
    Ok(TunePlan {
        format: 1,
        kind: "tune".into(),
        routesim_version: version.into(),
        scenario_file: file.to_path_buf(),
        scenario_text: text,
        overrides: overrides.clone(),
        cells,
    })
}

/// Rebuilds the search a plan describes.
fn setup_of(plan: &TunePlan) -> Result<TuneSetup, ScenarioError> {
    let file = &plan.scenario_file;
    let mut scenario = Scenario::parse(file, &plan.scenario_text)?;
    scenario.resolve_includes(file)?;
    crate::scenario::Overrides { seed: plan.overrides.seed, ..Default::default() }.apply(&mut scenario);
    TuneSetup::from_scenario(file, scenario, &plan.overrides)
}

/// What one shard of a tuning run did (for `routesim tune --shard I/N` to print).
#[derive(Clone, Debug)]
pub struct ShardRun {
    /// The shard.
    pub shard: Shard,
    /// Candidates (policies) in the plan.
    pub candidates: usize,
    /// Candidates this shard owns.
    pub owned: usize,
    /// Of those, how many ran now (the others were already done in `out`).
    pub ran: usize,
    /// Requests simulated now.
    pub simulated: u64,
    /// Wall time of the runs, in seconds.
    pub wall_s: f64,
}

impl std::fmt::Display for ShardRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tune shard {}: {} of {} policies ({} run now, {} already done); {} simulated requests in {:.2} s of wall time",
            self.shard,
            self.owned,
            self.candidates,
            self.ran,
            self.owned - self.ran,
            self.simulated,
            self.wall_s
        )
    }
}

/// `routesim tune --shard I/N`: runs the units of one shard into `out`.
pub fn run_shard(
    file: &Path,
    overrides: &TuneOverrides,
    shard: Shard,
    out: Option<&Path>,
    threads: Option<usize>,
) -> Result<ShardRun, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ScenarioError::invalid(file, "", format!("cannot read the scenario file: {e}")))?;
    let mut plan = TunePlan { scenario_text: text.clone(), ..plan_stub(file, overrides) };
    let setup = setup_of(&plan)?;
    if setup.config.method == Method::SuccessiveHalving {
        return Err(Failure::Invalid(format!(
            "{}: field `tune.method`: successive halving decides after each rung which candidates go on, from all \
             of them, so it runs on one machine: --shard works with method grid, random or lhs (set `tune.method` \
             or pass --method)",
            file.display()
        )));
    }
    let Some(dir) = out else {
        return Err(Failure::Invalid(
            "--shard needs --out: the shards must write where `routesim merge` can find them".into(),
        ));
    };
    plan = self::plan(file, text, overrides, &setup)?;
    write_plan_file(dir, PLAN_FILE, &plan)?;
    let todo: Vec<(&CellPlan, &crate::scenario::Compiled, usize)> = plan
        .cells
        .iter()
        .enumerate()
        .filter(|(k, c)| shard.owns(*k) && crate::sweep::cells::read_cell(dir, c).is_none())
        .map(|(k, c)| (c, &setup.model, k))
        .collect();
    let mine = (0..plan.cells.len()).filter(|&k| shard.owns(k)).count();
    let start = std::time::Instant::now();
    let runs = todo.iter().map(|(c, _, _)| c.replications as u64).sum();
    let bar = crate::progress::progress_bar(runs, "runs");
    let tick = |n: u64| bar.set_position(n);
    let simulated = crate::threads::with_threads(threads, || run_cells(&todo, dir, Some(&tick)))??;
    bar.finish_and_clear();
    Ok(ShardRun {
        shard,
        candidates: plan.cells.len(),
        owned: mine,
        ran: todo.len(),
        simulated,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

fn plan_stub(file: &Path, overrides: &TuneOverrides) -> TunePlan {
    TunePlan {
        format: 1,
        kind: "tune".into(),
        routesim_version: env!("CARGO_PKG_VERSION").into(),
        scenario_file: file.to_path_buf(),
        scenario_text: String::new(),
        overrides: overrides.clone(),
        cells: Vec::new(),
    }
}

fn read_plan(dir: &Path) -> Result<TunePlan> {
    let path = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let plan: TunePlan = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if plan.format != 1 || plan.kind != "tune" {
        bail!("{}: expected a tuning plan of format 1", path.display());
    }
    Ok(plan)
}

/// A merged sharded tuning run (for `routesim merge` to print).
#[derive(Clone, Debug)]
pub struct MergedTune {
    /// The tuning table, as `routesim tune` prints it.
    pub table: String,
    /// Runs merged.
    pub runs: u64,
    /// When constraints were set and no candidate meets them: the failure to report after the table.
    pub unmet: Option<String>,
}

/// `routesim merge` of `routesim tune --shard` outputs: writes the files of `routesim tune`, and its report,
/// into `out`.
pub fn merge_shards(dirs: &[PathBuf], out: &Path) -> Result<MergedTune, Failure> {
    let plan = read_plan(&dirs[0])?;
    for d in &dirs[1..] {
        if read_plan(d)? != plan {
            return Err(Failure::Failed(anyhow::anyhow!(
                "{} and {} hold different tuning runs (their {PLAN_FILE} differ)",
                dirs[0].display(),
                d.display()
            )));
        }
    }
    let setup = setup_of(&plan)?;
    let reps = collect_cells(&plan.cells, dirs)?;
    let runs = reps.iter().map(|r| r.len() as u64).sum();
    let simulated = plan.cells.iter().map(|c| c.requests_per_run * c.replications as u64).sum();
    let status = vec![Status::Complete; setup.candidates()];
    let result = assemble(&setup, reps, status, runs, simulated, 0.0);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let table = output::render(&setup, &result);
    output::write_files(&setup, &result, out)?;
    let scenario_path = out.join("scenario.toml");
    std::fs::write(&scenario_path, &plan.scenario_text)
        .with_context(|| format!("writing {}", scenario_path.display()))?;
    // The same closing files as a single-process tune (`routesim tune`).
    crate::report::html::write_warnings(out, &[])?;
    crate::report::html::write_report(out)?;
    let unmet = (result.chosen.is_none() && !setup.constraints.is_empty()).then(|| {
        format!(
            "no candidate meets the constraints ({}); see the closest ones above",
            setup.constraints.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(", ")
        )
    });
    Ok(MergedTune { table, runs, unmet })
}
