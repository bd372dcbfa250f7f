//! Running the simulator's parallel work on a worker pool of a chosen size.

use anyhow::Context;

/// Runs `f` on a rayon pool of `threads` threads, or on the global pool (all cores) when `None`. Results do
/// not depend on the number of threads.
pub fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    match threads {
        None => Ok(f()),
        Some(n) => {
            let pool =
                rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build().context("starting the worker threads")?;
            Ok(pool.install(f))
        }
    }
}
