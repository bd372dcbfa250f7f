//! `routesim replay`: a gateway log's traffic through every policy of a scenario, next to what the log itself
//! shows ("as logged").

use crate::run::{RunSelection, warn};
use anyhow::Context;
use router_core::Duration;
use sim::experiment::{self, ExperimentOptions};
use sim::failure::Failure;
use sim::logs::ReplaySettings;
use sim::logs::ingest::Window;
use sim::matrix_replay::{MatrixSettings, attach_matrix};
use sim::progress::progress_bar;
use sim::replay::attach;
use sim::report::render_table;
use sim::results::{results_dir, write_results};
use sim::scenario::Overrides;
use sim::setup::{load_scenario, select_policies};
use sim::threads::with_threads;
use std::path::PathBuf;

/// Arguments of `routesim replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The scenario (endpoints, faults, policies; its traffic section names task classes).
    pub scenario: PathBuf,
    /// The log: .csv, .jsonl/.ndjson or .parquet.
    #[arg(long, required_unless_present = "matrix", conflicts_with = "matrix")]
    pub log: Option<PathBuf>,
    /// A matrix log instead (.csv: every prompt's outcome on every model, RouterBench's layout: prompt_id,
    /// class, model, quality, cost_usd, input_tokens, output_tokens): each prompt arrives by the scenario's
    /// traffic and is answered with its real outcome, tokens and cost on the model of the endpoint chosen.
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// The log's format (litellm, portkey, azure, burstgpt, generic); default: the scenario's [replay]
    /// section, else detected from the columns.
    #[arg(long, conflicts_with = "matrix")]
    pub format: Option<String>,
    /// Replay from this long after the log's start (like "2h").
    #[arg(long, value_parser = parse_duration, conflicts_with = "matrix")]
    pub from: Option<Duration>,
    /// Replay until this long after the log's start.
    #[arg(long, value_parser = parse_duration, conflicts_with = "matrix")]
    pub to: Option<Duration>,
    /// Rate scale: 2 replays the same requests at twice the rate (time compressed).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Fraction of requests replayed, drawn per replication (common to every policy).
    #[arg(long, default_value_t = 1.0, conflicts_with = "matrix")]
    pub sample: f64,
    /// Play the log this many times back to back.
    #[arg(long = "loop", default_value_t = 1)]
    pub loops: u32,
    /// Reuse the logged latency when a policy sends a request's first attempt to the endpoint that served it.
    #[arg(long, conflicts_with = "matrix")]
    pub trace_driven: bool,
    /// How far out of arrival order rows may be (default 1h).
    #[arg(long, value_parser = parse_duration, conflicts_with = "matrix")]
    pub reorder_window: Option<Duration>,
    /// Stop at the first malformed row instead of counting and skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Warm-up excluded from the measurements, from the start of the replayed window (default: the
    /// scenario's `warmup` and `warmup_requests`; with --matrix, none: every prompt counts); "0" measures every
    /// row.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Output (default `results/<scenario>-replay-<UTC timestamp>`), seed, policies, replications (the
    /// log's traffic is the same in each; provider luck and sampling differ), threads.
    #[command(flatten)]
    pub common: RunSelection,
}

/// `routesim replay --matrix`: the prompts of a matrix log through every policy, with their real outcomes.
fn run_matrix(
    args: &ReplayArgs,
    matrix: &std::path::Path,
    mut model: sim::scenario::Compiled,
    selected: &[usize],
    dir: PathBuf,
) -> Result<(), Failure> {
    let common = &args.common;
    let settings = MatrixSettings { scale: args.scale, loops: args.loops, strict: args.strict };
    let started = std::time::Instant::now();
    let attached = attach_matrix(&mut model, matrix, &settings, &dir).map_err(|e| Failure::Invalid(e.to_string()))?;
    let read_s = started.elapsed().as_secs_f64();
    let mut warnings: Vec<String> = Vec::new();
    let malformed = attached.errors.total();
    if malformed > 0 {
        let text = attached.errors.render(matrix, attached.read);
        eprint!("warning: {text}");
        warnings.push(format!("{} (details in malformed.txt)", text.lines().next().unwrap_or_default()));
    }
    let runs = selected.len() as u64 * model.scenario.replications as u64;
    let per_run = attached.prompts * args.loops.max(1) as u64;
    let bar = progress_bar(per_run.saturating_mul(runs), "requests");
    let tick = |n: u64| bar.set_position(n);
    let opts = ExperimentOptions { progress: Some(&tick), records_dir: None };
    let exp = with_threads(common.threads, || experiment::run(&model, selected, &opts))??;
    bar.finish_and_clear();
    let report = experiment::report(&model, &exp);
    let mapping: Vec<String> =
        model.endpoints.iter().zip(&attached.models).map(|(e, m)| format!("{} = {m}", e.id)).collect();
    println!(
        "Replaying the matrix log {}: {} prompts x {} models ({}), {} of {} rows malformed; arrivals from the \
         scenario's traffic, scale {}x, {} loop(s), warm-up {}",
        matrix.display(),
        attached.prompts,
        attached.single_models.len(),
        mapping.join(", "),
        malformed,
        attached.read,
        args.scale,
        args.loops.max(1),
        warmup_text(&model)
    );
    print!("{}", render_table(&report));
    println!("\nEach model alone, straight from the file (no load, no failure; one pass over the prompts):");
    for (name, tally, cost) in &attached.single_models {
        let per_acceptable = if tally.acceptable() == 0 {
            "n/a".to_string()
        } else {
            format!("{:.6}", cost / tally.acceptable() as f64)
        };
        let mean = if tally.is_binary() { String::new() } else { format!("; mean score {}", tally.mean_score()) };
        println!(
            "  {name}: acceptance {}{mean}; cost {cost:.6} USD, {per_acceptable} USD per acceptable answer",
            tally.acceptance()
        );
    }
    warnings.extend(warn(&model, &exp));
    let errors_path = dir.join("malformed.txt");
    std::fs::write(&errors_path, attached.errors.render(matrix, attached.read))
        .with_context(|| format!("writing {}", errors_path.display()))?;
    write_results(&model, &exp, &report, common.threads, &dir, vec![errors_path], &warnings)?;
    println!(
        "\nRead the matrix log in {read_s:.2} s; {} simulated requests in {:.2} s of wall time ({:.0} requests/s); \
         results in {}",
        exp.simulated_requests(),
        exp.wall_s,
        exp.requests_per_s(),
        dir.display()
    );
    drop(attached);
    Ok(())
}

/// A duration argument like "90s" or "2h".
fn parse_duration(s: &str) -> Result<Duration, String> {
    Duration::parse(s)
}

/// The warm-up in force, as the header and the warning show it.
fn warmup_text(model: &sim::scenario::Compiled) -> String {
    let time = format!("{}s", model.warmup_until as f64 / 1e9);
    match model.warmup_requests {
        0 => time,
        n => format!("{time} and {n} requests"),
    }
}

/// Runs the command.
pub fn run(args: &ReplayArgs) -> Result<(), Failure> {
    let common = &args.common;
    let overrides = Overrides { seed: common.seed, requests: None, replications: common.replications };
    let mut model = load_scenario(&args.scenario, &overrides)?;
    if let Some(w) = args.warmup {
        model.warmup_until = w.nanos();
        model.warmup_requests = 0;
    }
    let selected = select_policies(&model, common.policies.as_deref())?;
    let dir = common.out.clone().unwrap_or_else(|| results_dir(&model.scenario.name, "-replay"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the output directory {}", dir.display()))?;
    let log_path = match (&args.log, &args.matrix) {
        (_, Some(matrix)) => {
            if args.warmup.is_none() {
                model.warmup_until = 0;
                model.warmup_requests = 0;
            }
            return run_matrix(args, matrix, model, &selected, dir);
        }
        (Some(log), None) => log,
        (None, None) => return Err(Failure::Invalid("replay needs --log or --matrix".into())),
    };
    let settings = ReplaySettings {
        format: args.format.clone(),
        window: Window { from: args.from.map_or(0, |d| d.nanos()), to: args.to.map(|d| d.nanos()) },
        scale: args.scale,
        sample: args.sample,
        loops: args.loops,
        trace_driven: args.trace_driven,
        reorder: args.reorder_window.map(|d| d.nanos()),
        strict: args.strict,
    };
    let started = std::time::Instant::now();
    let log = attach(&mut model, log_path, &settings, &dir).map_err(|e| Failure::Invalid(e.to_string()))?;
    let read_s = started.elapsed().as_secs_f64();
    let malformed = log.errors.total();
    // Warnings about the log, printed now and kept for report.html.
    let mut warnings: Vec<String> = Vec::new();
    if malformed > 0 {
        let text = log.errors.render(log_path, log.read);
        eprint!("warning: {text}");
        warnings.push(format!("{} (details in malformed.txt)", text.lines().next().unwrap_or_default()));
    }
    let mut say = |w: String| {
        eprintln!("warning: {w}");
        warnings.push(w);
    };
    let warmed = log.rows - log.measured;
    if warmed * 10 > log.rows {
        say(format!(
            "the warm-up ({}) leaves {warmed} of the {} replayed rows ({:.0}%) out of the measurements; \
             pass --warmup 0 (or a shorter one) to measure them",
            warmup_text(&model),
            log.rows,
            100.0 * warmed as f64 / log.rows as f64
        ));
    }
    let mapped = log.vocab.endpoints.len();
    let unknown: Vec<&str> = model.replay.as_ref().map_or(Vec::new(), |r| {
        r.endpoints.iter().zip(&log.vocab.endpoints).filter(|(e, _)| e.is_none()).map(|(_, n)| n.as_str()).collect()
    });
    let trace_driven = model.replay.as_ref().is_some_and(|r| r.trace_driven);
    if trace_driven && (!log.has_latency || mapped == 0) {
        return Err(Failure::Invalid(format!(
            "{}: trace-driven replay needs the endpoint that served each request and its latency, and this \
             log ({} format) has no {}",
            log_path.display(),
            log.format,
            if mapped == 0 { "endpoint" } else { "latency" }
        )));
    }
    if trace_driven && !unknown.is_empty() {
        say(format!(
            "{} of {mapped} logged endpoints match no scenario endpoint (by id or model): {}; their \
             requests are replayed counterfactually",
            unknown.len(),
            unknown.join(", ")
        ));
    }

    let runs = selected.len() as u64 * model.scenario.replications as u64;
    let per_run = (log.rows as f64 * args.sample * args.loops.max(1) as f64).round() as u64;
    let bar = progress_bar(per_run.saturating_mul(runs), "requests");
    let tick = |n: u64| bar.set_position(n);
    let opts = ExperimentOptions { progress: Some(&tick), records_dir: None };
    let exp = with_threads(common.threads, || experiment::run(&model, &selected, &opts))??;
    bar.finish_and_clear();

    let mut report = experiment::report(&model, &exp);
    report.rows.push(log.as_logged.clone());
    println!(
        "Replaying {} ({} format): {} of {} rows, {} malformed, {} measured after a warm-up of {}; scale {}x, \
         sample {}, {} loop(s){}",
        log_path.display(),
        log.format,
        log.rows,
        log.read,
        malformed,
        log.measured,
        warmup_text(&model),
        args.scale,
        args.sample,
        args.loops.max(1),
        if trace_driven { ", trace-driven" } else { ", counterfactual" }
    );
    print!("{}", render_table(&report));
    println!(
        "(\"as logged\" is the log itself: what really happened to these requests, one observation, no interval.)"
    );
    if let Some(q) = &log.quality {
        println!("{}", sim::replay::as_logged_quality(q, log.as_logged.cost_usd.mean));
    }
    warnings.extend(warn(&model, &exp));
    let errors_path = dir.join("malformed.txt");
    std::fs::write(&errors_path, log.errors.render(log_path, log.read))
        .with_context(|| format!("writing {}", errors_path.display()))?;
    write_results(&model, &exp, &report, common.threads, &dir, vec![errors_path], &warnings)?;
    println!(
        "\nRead the log in {read_s:.2} s; {} simulated requests in {:.2} s of wall time ({:.0} requests/s); results in {}",
        exp.simulated_requests(),
        exp.wall_s,
        exp.requests_per_s(),
        dir.display()
    );
    drop(log);
    Ok(())
}
