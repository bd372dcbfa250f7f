//! `routesim replay`: a gateway log's traffic through every policy of a scenario, next to what the log itself
//! shows ("as logged").

use crate::run::{RunSelection, warn};
use anyhow::Context;
use router_core::Duration;
use sim::experiment::{self, ExperimentOptions};
use sim::failure::Failure;
use sim::logs::ReplaySettings;
use sim::logs::ingest::Window;
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
    #[arg(long)]
    pub log: PathBuf,
    /// The log's format (litellm, portkey, azure, burstgpt, generic); default: the scenario's [replay]
    /// section, else detected from the columns.
    #[arg(long)]
    pub format: Option<String>,
    /// Replay from this long after the log's start (like "2h").
    #[arg(long, value_parser = parse_duration)]
    pub from: Option<Duration>,
    /// Replay until this long after the log's start.
    #[arg(long, value_parser = parse_duration)]
    pub to: Option<Duration>,
    /// Rate scale: 2 replays the same requests at twice the rate (time compressed).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Fraction of requests replayed, drawn per replication (common to every policy).
    #[arg(long, default_value_t = 1.0)]
    pub sample: f64,
    /// Play the log this many times back to back.
    #[arg(long = "loop", default_value_t = 1)]
    pub loops: u32,
    /// Reuse the logged latency when a policy sends a request's first attempt to the endpoint that served it.
    #[arg(long)]
    pub trace_driven: bool,
    /// How far out of arrival order rows may be (default 1h).
    #[arg(long, value_parser = parse_duration)]
    pub reorder_window: Option<Duration>,
    /// Stop at the first malformed row instead of counting and skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Warm-up excluded from the measurements, from the start of the replayed window (default: the
    /// scenario's `warmup` and `warmup_requests`); "0" measures every row.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Output (default `results/<scenario>-replay-<UTC timestamp>`), seed, policies, replications (the
    /// log's traffic is the same in each; provider luck and sampling differ), threads.
    #[command(flatten)]
    pub common: RunSelection,
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
    let log = attach(&mut model, &args.log, &settings, &dir).map_err(|e| Failure::Invalid(e.to_string()))?;
    let read_s = started.elapsed().as_secs_f64();
    let malformed = log.errors.total();
    // Warnings about the log, printed now and kept for report.html.
    let mut warnings: Vec<String> = Vec::new();
    if malformed > 0 {
        let text = log.errors.render(&args.log, log.read);
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
            args.log.display(),
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
        args.log.display(),
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
    std::fs::write(&errors_path, log.errors.render(&args.log, log.read))
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
