//! Simulator against live: mock providers that behave as a scenario says, an open-loop load generator that
//! sends the scenario's traffic, and `routesim live`, which runs both around the production gateway on
//! loopback and compares what happened with the simulator's run of the same scenario and seed.
//!
//! - [`provider`]: the engine's provider model ([`sim::provider::Provider`]) on a scaled real-time clock.
//! - [`mock`]: every endpoint as an OpenAI-compatible upstream (axum) driven by [`provider`].
//! - [`load`]: the scenario's arrivals (or a log's) as HTTP requests at their scheduled times.
//! - [`compare`]: the same metrics from both sides, with tolerances, as a table and CSV.
//! - [`plots`]: overlaid latency CDFs and endpoint shares over time.
//! - [`overhead`]: the gateway's overhead on this harness (direct against through the gateway).
//!
//! Time scaling: with `time_scale` X every duration on the live side is divided by X (provider service
//! times, faults, Retry-After; and, in the gateway config written here, every duration of the policy, the
//! router's measurement windows, the client timeouts and the health interval), so the gateway lives in a
//! world X times faster; what the client measures is multiplied by X back into scenario time.
//!
//! Beside them: [`harness`] (`routesim live`: the run and its gateway config), [`scenario`] (a scenario
//! reshaped for a live run), [`load::generator`] (open- and closed-loop HTTP loads), the programmable mock
//! upstream of [`mock_upstream`] (scripted replies, for the overhead benchmark and the tests), and
//! [`runtime`] (the tokio runtime the commands run on).

pub mod compare;
pub mod harness;
pub mod load;
pub mod mock;
pub mod overhead;
pub mod plots;
pub mod provider;
pub mod scenario;

/// The programmable mock upstream (scripted replies) and the OpenAI wire-format builders, shared with the
/// gateway's tests (crate `routesim-mock-upstream`).
pub use routesim_mock_upstream as mock_upstream;

use anyhow::Context;

/// The tokio runtime the live commands run on: two worker threads, I/O and timers.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")
}
