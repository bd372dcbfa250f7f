//! `routesim sweep` (a study, whole or one shard, or its `--plan`) and `routesim merge` (shard outputs into
//! the study's files; also the shards of `routesim tune --shard`).

use sim::failure::Failure;
use sim::progress::progress_bar;
use sim::report::metric;
use sim::results::results_dir;
use sim::sweep::merge::{Merged, MissingCells, merge};
use sim::sweep::{Shard, Sweep, estimate};
use sim::threads::with_threads;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Arguments of `routesim sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The sweep file (TOML): scenarios, parameters, policies, replications.
    pub sweep: PathBuf,
    /// Output directory (default `results/<sweep>-sweep-<UTC timestamp>`; required with --shard, and shared
    /// by the shards or one per shard).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only shard I of N (0-based: `$JOB_COMPLETION_INDEX/N`, `$SLURM_ARRAY_TASK_ID/N`); then merge.
    #[arg(long, value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Print the cells, simulated requests and estimated core-hours (from a short calibration run) and exit.
    #[arg(long)]
    pub plan: bool,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Arguments of `routesim merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Output directories of the shards of one sweep (or of one `routesim tune --shard` search).
    #[arg(required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged files (may be one of the shard directories).
    #[arg(long)]
    pub out: PathBuf,
    /// While cells are missing, poll every 30 s for up to this many seconds (a merge step started with the
    /// shards, as in deploy/kubernetes/sweep-job.yaml). Default: fail at once, listing them.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
}

/// Runs `routesim sweep`.
pub fn run(args: &SweepArgs) -> Result<(), Failure> {
    let sweep = Sweep::load(&args.sweep)?;
    if args.plan {
        let est = with_threads(Some(1), || estimate::estimate(&sweep))??;
        print!("{}", estimate::render(&sweep, &est, args.shard.map(|s| s.count)));
        return Ok(());
    }
    let shard = args.shard.unwrap_or(Shard::ALL);
    let dir = match (&args.out, args.shard) {
        (Some(d), _) => d.clone(),
        (None, None) => results_dir(&sweep.plan.sweep, "-sweep"),
        (None, Some(_)) => {
            return Err(Failure::Invalid(
                "--shard needs --out: the shards of one sweep must write where `routesim merge` can find them".into(),
            ));
        }
    };
    let runs: u64 = sweep.plan.shard_cells(shard).iter().map(|&k| sweep.plan.cells[k].replications as u64).sum();
    let bar = progress_bar(runs, "runs");
    let tick = |n: u64| bar.set_position(n);
    let outcome = with_threads(args.threads, || sim::sweep::cells::run_shard(&sweep, shard, &dir, Some(&tick)))??;
    bar.finish_and_clear();
    println!(
        "shard {shard}: {} cells ({} run now, {} already done); {} simulated requests in {:.2} s of wall time",
        outcome.cells, outcome.ran, outcome.skipped, outcome.simulated_requests, outcome.wall_s
    );
    if shard.count > 1 {
        println!("when every shard is done: routesim merge {} --out {}", dir.display(), dir.display());
        return Ok(());
    }
    let (merged, files) = merge(std::slice::from_ref(&dir), &dir)?;
    print!("{}", render(&merged));
    warn_unmeasured(&merged);
    println!("results in {} ({} files)", dir.display(), files.len());
    Ok(())
}

/// Runs `routesim merge`.
pub fn run_merge(args: &MergeArgs) -> Result<(), Failure> {
    let first = &args.dirs[0];
    if first.join(sim::tune::shard::PLAN_FILE).exists() {
        let merged = sim::tune::shard::merge_shards(&args.dirs, &args.out)?;
        print!("{}", merged.table);
        println!("\nmerged {} directories: {} runs; results in {}", args.dirs.len(), merged.runs, args.out.display());
        return match merged.unmet {
            Some(why) => Err(Failure::Failed(anyhow::anyhow!(why))),
            None => Ok(()),
        };
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.wait);
    let (merged, files) = loop {
        match merge(&args.dirs, &args.out) {
            Ok(done) => break done,
            Err(e) if e.downcast_ref::<MissingCells>().is_some() && std::time::Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                eprintln!("waiting for the shards: {e}");
                std::thread::sleep(left.min(std::time::Duration::from_secs(30)));
            }
            Err(e) => return Err(Failure::Failed(e.context(format!("merging into {}", args.out.display())))),
        }
    };
    print!("{}", render(&merged));
    warn_unmeasured(&merged);
    println!("merged {} directories into {} ({} files)", args.dirs.len(), args.out.display(), files.len());
    Ok(())
}

/// Warns about cells that measured no request (the warm-up covers the whole run): their metrics are empty.
fn warn_unmeasured(m: &Merged) {
    let empty: Vec<&str> = m
        .plan
        .cells
        .iter()
        .zip(&m.summaries)
        .filter(|(_, s)| s.requests.mean == 0.0)
        .map(|(c, _)| c.id.as_str())
        .collect();
    if let Some(first) = empty.first() {
        eprintln!(
            "warning: {} of {} cells measured no request (first: {first}): the warm-up covers the whole run; raise \
             `requests` in the sweep file or shorten the scenario's `warmup`",
            empty.len(),
            m.plan.cells.len()
        );
    }
}

/// Rows of the terminal table at most (the files have every cell).
const TABLE_ROWS: usize = 40;

/// The terminal summary: one line per cell with cost, p95 and success, and the paired cost and p95
/// differences against the baseline (`*` when the 95% interval excludes zero).
pub fn render(m: &Merged) -> String {
    let mut out = String::new();
    let show = ["cost_per_1k_usd", "latency_p95_s", "success_rate"];
    let _ = writeln!(
        out,
        "{:<28} {:<28} {:>22} {:>22} {:>10} {:>18} {:>18}",
        "scenario / point", "policy", "USD/1k req", "p95 s", "success %", "d USD/1k vs base", "d p95 s vs base"
    );
    for (k, cell) in m.plan.cells.iter().enumerate().take(TABLE_ROWS) {
        let params: Vec<String> = m
            .plan
            .param_columns
            .iter()
            .zip(&cell.params)
            .map(|(c, v)| format!("{}={v}", c.rsplit('.').next().unwrap_or(c)))
            .collect();
        let label =
            if params.is_empty() { cell.scenario.clone() } else { format!("{} {}", cell.scenario, params.join(" ")) };
        let s = &m.summaries[k];
        let est = |name: &str| {
            let Some(mm) = metric(name) else { return String::new() };
            let e = (mm.get)(s);
            match e.ci95 {
                Some(h) => format!("{:.4} ± {:.4}", e.mean, h),
                None => format!("{:.4}", e.mean),
            }
        };
        let success = metric(show[2]).map_or(0.0, |mm| (mm.get)(s).mean * 100.0);
        let diff = |name: &str| {
            m.paired[k].iter().find(|p| p.metric == name).map_or_else(
                || "-".to_string(),
                |p| format!("{:+.4}{}", p.mean_diff, if p.significant { "*" } else { "" }),
            )
        };
        let _ = writeln!(
            out,
            "{:<28} {:<28} {:>22} {:>22} {:>10.2} {:>18} {:>18}",
            label,
            cell.policy,
            est(show[0]),
            est(show[1]),
            success,
            diff(show[0]),
            diff(show[1])
        );
    }
    if m.plan.cells.len() > TABLE_ROWS {
        let _ = writeln!(out, "... {} more cells in summary.csv", m.plan.cells.len() - TABLE_ROWS);
    }
    out
}
