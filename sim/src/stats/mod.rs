//! Statistics over replications: confidence intervals, paired differences, running moments, batch
//! means and a steady-state check.
//!
//! Every number routesim reports with an uncertainty goes through this module:
//!
//! - [`mean_ci95`] / [`mean_ci`]: the mean of independent replications with a Student-t interval.
//! - [`paired_diff`]: the mean difference between two policies run with common random numbers
//!   (replication `i` of policy A and of policy B saw the same traffic and the same provider luck),
//!   with its t interval. Pairing removes the shared noise, so the interval is far narrower than the
//!   difference of two independent intervals.
//! - [`RunningStats`]: Welford's numerically stable running mean and variance, mergeable, cheap
//!   enough for hot loops.
//! - [`batch_means_ci`]: an interval from ONE long (autocorrelated) run, used by the validator.
//! - [`steady_state_warning`]: flags a per-interval series (queue length, p95) that is still rising.
//!
//! What this module is *not* for: collecting metrics during a run (that is `metrics`, with HDR
//! histograms), warm-up deletion (the engine drops observations before the warm-up time), or
//! formatting tables (`report`). Closed-form queueing results live in `validate::theory`.
//!
//! Non-finite samples (NaN, ±inf) are never averaged in silently: every estimator excludes them and
//! counts them (`Interval::non_finite`, [`RunningStats::non_finite`]) so a report can say so.

mod batch;
mod interval;
mod running;
mod steady;

pub use batch::{batch_means_ci, lag1_autocorrelation};
pub use interval::{Interval, mean_ci, mean_ci95, paired_diff, paired_diff_ci, student_t_quantile};
pub use running::RunningStats;
pub use steady::{MIN_STEADY_STATE_POINTS, steady_state_warning};

/// Errors from the statistics helpers. Each names what was wrong and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// Paired samples must have one entry per replication on each side.
    #[error("paired samples differ in length: {left} vs {right} (expected one value per replication on each side)")]
    LengthMismatch {
        /// Length of the first sample.
        left: usize,
        /// Length of the second sample.
        right: usize,
    },
    /// A confidence level outside the open interval (0, 1).
    #[error("confidence level {0} is invalid (expected a value strictly between 0 and 1, e.g. 0.95)")]
    InvalidConfidence(f64),
}
