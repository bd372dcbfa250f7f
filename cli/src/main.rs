//! The `routesim` command line: argument parsing (clap) and one module per subcommand, each a thin call into
//! the simulator library (`sim`) or the live harness (`routesim-live`, cargo feature `live`, on by default)
//! and the printing of what it returns.
//!
//! Exit status: 0 on success, 1 when a run fails (I/O, a failed validation check), 2 when the input is
//! invalid (scenario, arguments) or the command needs the live harness this build lacks.

mod ab;
mod bench;
mod export;
mod fit;
mod gen_log;
mod import;
mod live;
mod policies;
mod replay;
mod report;
mod run;
mod sweep;
mod tune;
mod validate;

use clap::{Parser, Subcommand};
use sim::failure::Failure;
use std::process::ExitCode;

/// routesim: decide how your LLM gateway should route before you deploy it.
#[derive(Debug, Parser)]
#[command(name = "routesim", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every policy of a scenario against the same traffic and report cost and latency.
    Run(run::RunArgs),
    /// Simulate a scenario without writing files and print simulated requests per second of wall time.
    Bench(bench::BenchArgs),
    /// List the routing policies, one line each.
    Policies,
    /// Replay a gateway log (LiteLLM, Portkey, Azure trace, BurstGPT, generic) through the scenario's policies.
    Replay(replay::ReplayArgs),
    /// Fit provider models (latency distributions, error rates, limits, prices) to a log.
    Fit(fit::FitArgs),
    /// Write a scenario's simulated traffic as a log in the generic schema.
    GenLog(gen_log::GenLogArgs),
    /// Search a policy's knobs (the scenario's [tune] section) for the cost/latency frontier and the best
    /// configuration that meets the constraints.
    Tune(tune::TuneArgs),
    /// Turn a LiteLLM or Portkey config into a scenario: the gateway's routing (exact compat policies) as the
    /// baseline, routesim's policies beside it.
    Import(import::ImportArgs),
    /// Write a policy as the closest LiteLLM or Portkey config, with what it cannot express and what that costs.
    Export(export::ExportArgs),
    /// A study over scenarios x parameter grids x policies x replications, whole or one shard (--shard I/N).
    Sweep(sweep::SweepArgs),
    /// Merge the output directories of the shards of `routesim sweep` or `routesim tune --shard`.
    Merge(sweep::MergeArgs),
    /// Rebuild report.html (the self-contained HTML report) from the files of a results directory.
    Report(report::ReportArgs),
    /// A canary's A/B test from the gateway's request log: per-arm metrics with bootstrap 95% intervals,
    /// differences, minimum detectable effects and verdicts; `--predict SCENARIO` adds the simulator's.
    Ab(ab::AbArgs),
    /// Check the simulator against queueing theory (M/M/c, M/G/1, Erlang B, Little's law, identities).
    Validate(validate::ValidateArgs),
    /// Serve a scenario's endpoints as mock OpenAI-compatible providers that behave as its provider models.
    Mock(live::MockArgs),
    /// Send a scenario's traffic (or a log's arrivals) to a gateway on loopback, open loop.
    Load(live::LoadArgs),
    /// Mock providers + the gateway + the load on loopback, compared with the simulator's run.
    Live(live::LiveArgs),
    /// The gateway's overhead on the live harness: mock providers, the gateway, and open-loop loads straight
    /// to a mock and through the gateway on the same schedule (a benchmark).
    Overhead(live::OverheadArgs),
}

/// Parses the command line, runs the subcommand and maps failures to an exit status.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Policies => {
            print!("{}", policies::render());
            Ok(())
        }
        Command::Validate(args) => validate::run(&args),
        Command::Ab(args) => ab::run(&args),
        Command::Tune(args) => tune::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Fit(args) => fit::run(&args),
        Command::GenLog(args) => gen_log::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Merge(args) => sweep::run_merge(&args),
        Command::Report(args) => report::run(&args),
        Command::Mock(args) => live::run_mock(&args),
        Command::Load(args) => live::run_load(&args),
        Command::Live(args) => live::run_live(&args),
        Command::Overhead(args) => live::run_overhead(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
