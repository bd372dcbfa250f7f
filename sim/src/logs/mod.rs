//! Gateway logs and public traces: reading them (`routesim replay`, `routesim fit`). Attaching a log to a
//! scenario is the crate's `replay` module; writing one (`routesim gen-log`) its `gen_log` module. This
//! module uses neither the scenario nor the engine, which both use it.
//!
//! - [`format`]: the built-in column mappings (LiteLLM, Portkey, Azure traces, BurstGPT, generic) and
//!   timestamp parsing.
//! - [`csv_split`]: a CSV log cut into records as the `csv` crate cuts it, without its rules for the lines
//!   that need none.
//! - [`read`]: streaming a CSV (the `csv` crate), JSONL (serde_json, a line at a time) or Parquet (polars, a
//!   slice of row groups at a time) file into parsed rows, with malformed rows counted by reason.
//! - [`ingest`]: ordering rows by arrival within a bounded reorder window, the time window, the "as logged"
//!   summary, and the compact spill file that replay runs stream.
//! - [`source`]: the arrivals of one replay run (rate scale, sampling, loops, trace-driven latencies).
//! - [`fit`]: provider models fitted to a log (maximum likelihood, KS statistic, QQ plots) and accuracies
//!   per endpoint and task class from a `quality` column.
//! - [`feedback`]: a gateway log's client feedback rows, joined to their requests by request id.
//! - [`quality`]: logged answer quality tallied into an acceptance rate and a mean score with 95% intervals.
//! - [`number`]: numbers of a log's cells, parsed faster than `str::parse` and to the same bits.
//! - [`matrix`]: a matrix log (every prompt's outcome on every model, RouterBench's layout) and the table
//!   a replay draws each prompt's real outcome from.

pub mod csv_split;
pub mod feedback;
pub mod fit;
pub mod format;
pub mod ingest;
pub mod matrix;
pub mod number;
pub mod quality;
pub mod read;
pub mod source;

use format::{ColumnMap, TimeFormat};

use ingest::Window;
use read::{LogError, LogReader};
use router_core::{Duration, Nanos};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `[replay]` section of a scenario: how to read its logs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// Built-in format name (`litellm`, `portkey`, `azure`, `burstgpt`, `generic`); default: detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// A generic mapping: field -> column of the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<ColumnMap>,
    /// Time format of the mapped time columns (default `relative-s` for a generic mapping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_format: Option<TimeFormat>,
    /// How far out of arrival order rows may be (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder_window: Option<Duration>,
    /// Reuse logged latencies on the endpoint that served a request (default false: counterfactual).
    #[serde(default)]
    pub trace_driven: bool,
    /// Multiplier from the mapped `latency` and `ttft` columns to seconds (0.001 for milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_scale: Option<f64>,
    /// Multiplier from the mapped `cost` column to US dollars (0.01 for cents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_scale: Option<f64>,
}

/// How to replay a log: from the command line over the scenario's `[replay]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplaySettings {
    /// Built-in format name; `None` = the scenario's, else detected.
    pub format: Option<String>,
    /// Part of the log to replay.
    pub window: Window,
    /// Rate scale (arrival times divided by it).
    pub scale: f64,
    /// Fraction of rows replayed.
    pub sample: f64,
    /// Times the log is played.
    pub loops: u32,
    /// Trace-driven latencies.
    pub trace_driven: bool,
    /// Reorder window.
    pub reorder: Option<Nanos>,
    /// Stop at the first malformed row.
    pub strict: bool,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            format: None,
            window: Window { from: 0, to: None },
            scale: 1.0,
            sample: 1.0,
            loops: 1,
            trace_driven: false,
            reorder: None,
            strict: false,
        }
    }
}

/// Opens a log with the format named on the command line, else the scenario's `[replay]` section, else the
/// one its columns reveal.
pub fn open(log: &Path, format: Option<&str>, cfg: Option<&ReplayConfig>) -> Result<LogReader, LogError> {
    let format = format.or_else(|| cfg.and_then(|c| c.format.as_deref()));
    let mapping = cfg.and_then(|c| {
        Some(format::LogFormat {
            name: "generic".into(),
            columns: c.columns.clone()?,
            time: c.time_format.unwrap_or(TimeFormat::RelativeS),
            cost_scale: c.cost_scale.unwrap_or(1.0),
            latency_scale: c.latency_scale.unwrap_or(1.0),
            strict: true,
        })
    });
    LogReader::open(log, format, mapping)
}
