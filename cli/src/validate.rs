//! `routesim validate`: the simulator against queueing theory; exit status 1 when a check fails.

use anyhow::anyhow;
use sim::failure::Failure;
use sim::validate::{Effort, render, run_all};

/// Arguments of `routesim validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Fewer replications and requests: finishes in seconds (this is what CI runs).
    #[arg(long)]
    pub quick: bool,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the command.
pub fn run(args: &ValidateArgs) -> Result<(), Failure> {
    let effort = if args.quick { Effort::QUICK } else { Effort::FULL };
    eprintln!(
        "routesim validate{}: {} replications x {} requests per model",
        if args.quick { " --quick" } else { "" },
        effort.replications,
        effort.requests
    );
    let start = std::time::Instant::now();
    let progress = |name: &str| eprintln!("  running {name} ...");
    let results = sim::threads::with_threads(args.threads, || run_all(effort, &progress))??;
    print!("{}", render(&results));
    eprintln!("validation took {:.1} s", start.elapsed().as_secs_f64());
    let failed = results.iter().filter(|r| !r.pass).count();
    if failed > 0 {
        return Err(Failure::Failed(anyhow!("{failed} validation check(s) failed")));
    }
    Ok(())
}
