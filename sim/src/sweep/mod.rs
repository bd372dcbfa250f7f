//! `routesim sweep` and `routesim merge`: studies over scenarios x parameter grids x policies x replications,
//! sliced into shards that run anywhere (a Kubernetes Indexed Job, a Slurm array, a laptop) and merged into
//! exactly the files one process writes.
//!
//! - [`config`]: the sweep file (scenarios, parameters by field path, policies, baseline, replications).
//! - [`plan`]: points and cells in their fixed order, shards, fingerprints, `sweep-plan.json`.
//! - [`cells`]: running a shard's cells; the per-cell result files, written atomically, skipped on re-run.
//! - [`merge`]: combining shard outputs into `replications.parquet`, `summary.*` and `paired.*`.
//! - [`estimate`]: `--plan`'s calibration and core-hour estimate.
//! - [`aiq`]: `aiq.csv`, RouterBench's AIQ of each policy swept over `threshold` or `min_quality` (only
//!   with quality on).
//!
//! A cell is one policy of one scenario with one parameter point applied, over every replication. Its runs
//! use the scenario's keyed random streams (seed, replication, stream), so its result depends on nothing but
//! the cell: not on the shard, the machine, the thread count or the other cells. Replication `r` of every
//! policy at one point sees the same traffic, so the paired differences against the baseline are tight.

pub mod aiq;
pub mod cells;
pub mod config;
pub mod estimate;
pub mod merge;
pub mod plan;

pub use plan::{Shard, Sweep};
