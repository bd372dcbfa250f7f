//! `routesim ab`: the canary's A/B test from the gateway's request log, with the simulator's prediction
//! beside it (`--predict SCENARIO`).

use anyhow::Context;
use sim::ab::{self, AbReport, analysis, predict, read};
use sim::failure::Failure;
use sim::scenario::Overrides;
use sim::setup::{load_scenario, select_policies};
use std::path::PathBuf;

/// Arguments of `routesim ab`.
#[derive(Debug, clap::Args)]
pub struct AbArgs {
    /// The gateway's request log (.jsonl/.ndjson, or .csv with a header), in the generic schema with an
    /// `arm` (or `policy`) column.
    pub log: PathBuf,
    /// The column that splits requests into arms: `arm` (control / canary) or `policy`.
    #[arg(long, value_enum, default_value_t = read::GroupBy::Arm)]
    pub by: read::GroupBy,
    /// The control's policy: with `--by policy` the control group; with `--by arm` the policy `--predict`
    /// simulates for the control (default: the log's `policy` column).
    #[arg(long)]
    pub control: Option<String>,
    /// The canary's policy (as `--control`).
    #[arg(long)]
    pub canary: Option<String>,
    /// Bootstrap replicates.
    #[arg(long, default_value_t = 2000)]
    pub replicates: u32,
    /// Seed of the bootstrap: same log, same seed, same output. (The simulated arms are split as the gateway
    /// splits them, by a stable hash of the request id salted with the canary policy's name.)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop at the first malformed row instead of counting and skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Output directory (default `results/ab-<UTC timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also simulate this scenario with the control and canary policies routing at once (one run, each
    /// request routed by its arm's policy, the arms sharing the providers), and print the predicted
    /// differences beside the measured ones.
    #[arg(long)]
    pub predict: Option<PathBuf>,
    /// The canary's fraction in the prediction. Pass the gateway's `[rollout] canary` fraction to split exactly
    /// the log's requests (a canary `by = "request"` whose ids are the scenario's, as `routesim live --canary`
    /// runs it); the default, the log's canary share, gives the same share but not the same requests.
    #[arg(long)]
    pub fraction: Option<f64>,
    /// Requests simulated by the prediction (default: as many as the log's two arms hold).
    #[arg(long)]
    pub requests: Option<u64>,
    /// The time scale the log was written at: a `routesim live --time-scale X` run divides every duration by
    /// X, so pass the same X to read its latencies and times to first token in the scenario's seconds.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
}

/// Runs the command.
pub fn run(args: &AbArgs) -> Result<(), Failure> {
    if args.replicates < 100 {
        return Err(Failure::Invalid(format!("--replicates must be at least 100, found {}", args.replicates)));
    }
    let grouping = match args.by {
        read::GroupBy::Arm => read::Grouping { by: args.by, control: "control".into(), canary: "canary".into() },
        read::GroupBy::Policy => match (&args.control, &args.canary) {
            (Some(a), Some(b)) if a != b => read::Grouping { by: args.by, control: a.clone(), canary: b.clone() },
            (Some(_), Some(_)) => return Err(Failure::Invalid("--control and --canary name the same policy".into())),
            _ => {
                return Err(Failure::Invalid(
                    "--by policy needs the two policies compared: --control NAME --canary NAME".into(),
                ));
            }
        },
    };
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return Err(Failure::Invalid(format!("--time-scale must be a positive number, found {}", args.time_scale)));
    }
    let mut log = read::read(&args.log, &grouping, args.strict).map_err(|e| Failure::Invalid(e.to_string()))?;
    log.scale_time(args.time_scale);
    let malformed = log.errors.render(&args.log, log.read);
    if log.errors.total() > 0 {
        eprint!("warning: {malformed}");
    }
    for arm in [&log.control, &log.canary] {
        if arm.rows.is_empty() {
            return Err(Failure::Invalid(format!(
                "{}: no request in the {} arm ({} rows read, {} malformed, {} without an `{}` column)",
                args.log.display(),
                arm.name,
                log.read,
                log.errors.total(),
                log.ungrouped,
                if args.by == read::GroupBy::Arm { "arm" } else { "policy" }
            )));
        }
    }
    let measured = analysis::compare(&log.control, &log.canary, args.replicates, args.seed);
    let by = if args.by == read::GroupBy::Arm { "arm" } else { "policy" };
    let mut report = AbReport::new(&args.log, by, &log, measured);
    if let Some(scenario) = &args.predict {
        let name = |flag: &Option<String>, arm: &read::ArmRows| {
            flag.clone().or_else(|| arm.policy.clone()).ok_or_else(|| {
                Failure::Invalid(format!(
                    "--predict needs the {0} arm's policy: the log has no `policy` column for it; pass --{0} NAME",
                    arm.name
                ))
            })
        };
        let (control, canary) = match args.by {
            read::GroupBy::Arm => (name(&args.control, &log.control)?, name(&args.canary, &log.canary)?),
            read::GroupBy::Policy => (grouping.control.clone(), grouping.canary.clone()),
        };
        let fraction = args.fraction.unwrap_or(report.canary_fraction);
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Failure::Invalid(format!("--fraction must be in (0, 1), found {fraction}")));
        }
        let requests = args.requests.unwrap_or(report.measured.requests.iter().sum());
        let model =
            load_scenario(scenario, &Overrides { seed: None, requests: Some(requests), replications: Some(1) })?;
        let ix = select_policies(&model, Some(&[control, canary]))?;
        let prediction = predict::predict(&model, ix[0], ix[1], fraction, args.replicates, args.seed)
            .map_err(|e| Failure::Invalid(format!("--predict {}: {e}", scenario.display())))?;
        report.predicted = Some(prediction);
    }
    print!("{}", ab::render(&report));
    let dir = args.out.clone().unwrap_or_else(|| sim::results::results_dir("ab", ""));
    let files = ab::write(&dir, &report, &malformed).context("writing the results")?;
    println!("\nResults in {} ({} files)", dir.display(), files.len());
    Ok(())
}
