//! Gateway logs and public traces: reading them (`routesim replay`, `routesim fit`) and writing them
//! (`routesim gen-log`).
//!
//! - [`format`]: the built-in column mappings (LiteLLM, Portkey, Azure traces, BurstGPT, generic) and
//!   timestamp parsing.
//! - [`read`]: streaming a CSV (the `csv` crate), JSONL (serde_json, a line at a time) or Parquet (polars, a
//!   slice of row groups at a time) file into parsed rows, with malformed rows counted by reason.
//! - [`ingest`]: ordering rows by arrival within a bounded reorder window, the time window, the "as logged"
//!   summary, and the compact spill file that replay runs stream.
//! - [`source`]: the arrivals of one replay run (rate scale, sampling, loops, trace-driven latencies).
//! - [`fit`]: provider models fitted to a log (maximum likelihood, KS statistic, QQ plots).
//! - [`generate`]: `routesim gen-log`, a scenario's simulated traffic written as a log.

pub mod fit;
pub mod format;
pub mod generate;
pub mod ingest;
pub mod read;
pub mod source;

use crate::scenario::Compiled;
use format::{ColumnMap, TimeFormat};

use ingest::{IngestedLog, Window};
use read::{LogError, LogReader};
use router_core::{Duration, EndpointIdx, MetaValue, Nanos, RequestInfo};
use serde::{Deserialize, Serialize};
use source::ReplayInput;
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

/// Reads `log` and attaches it to `model`, whose runs then replay it; the spill file goes to `spill_dir`.
/// Returns the ingested log (its summary and malformed-row counts); keep it alive while runs use the spill.
pub fn attach(
    model: &mut Compiled,
    log: &Path,
    settings: &ReplaySettings,
    spill_dir: &Path,
) -> Result<IngestedLog, LogError> {
    if !(settings.scale.is_finite() && settings.scale > 0.0) {
        return Err(LogError {
            file: log.into(),
            message: format!("--scale must be positive, found {}", settings.scale),
        });
    }
    if !(settings.sample > 0.0 && settings.sample <= 1.0) {
        return Err(LogError {
            file: log.into(),
            message: format!("--sample must be in (0, 1], found {}", settings.sample),
        });
    }
    let cfg = model.scenario.replay.clone();
    let reader = open(log, settings.format.as_deref(), cfg.as_ref())?;
    let reorder = settings
        .reorder
        .or_else(|| cfg.as_ref().and_then(|c| c.reorder_window).map(|d| d.nanos()))
        .unwrap_or(3_600_000_000_000);
    let spill = spill_dir.join(format!(".replay-{}.spill", std::process::id()));
    // Scaled replay compresses time, so the warm-up is measured on the scaled clock like the runs.
    let measured = ingest::Measured {
        from: (model.warmup_until as f64 * settings.scale) as Nanos,
        from_request: model.warmup_requests,
    };
    let ingested = ingest::ingest(&reader, settings.window, measured, reorder, settings.strict, &spill)?;
    if ingested.rows == 0 {
        return Err(LogError {
            file: log.into(),
            message: format!(
                "no request to replay: {} rows read, {} malformed, none in the window",
                ingested.read,
                ingested.errors.total()
            ),
        });
    }
    let trace_driven = settings.trace_driven || cfg.as_ref().is_some_and(|c| c.trace_driven);
    model.replay = Some(replay_input(model, &ingested, settings, trace_driven));
    Ok(ingested)
}

/// Templates and endpoint mapping of an ingested log against a scenario.
fn replay_input(model: &Compiled, log: &IngestedLog, settings: &ReplaySettings, trace_driven: bool) -> ReplayInput {
    let class_names = model.traffic.class_names();
    let templates = log
        .vocab
        .templates
        .iter()
        .map(|(class, meta)| {
            let name = &log.vocab.classes[*class as usize];
            // A class the scenario defines brings its complexity, tags and capabilities; the log's metadata
            // is added on top.
            let mut info = match class_names.iter().position(|c| c == name) {
                Some(c) => model.traffic.request_template(c),
                None => {
                    let mut i = RequestInfo::new(0, 0);
                    i.task_class = Some(name.clone());
                    i
                }
            };
            for (k, v) in meta {
                let value = match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => MetaValue::Num(x),
                    _ => match v.as_str() {
                        "true" => MetaValue::Bool(true),
                        "false" => MetaValue::Bool(false),
                        _ => MetaValue::Str(v.clone()),
                    },
                };
                info.metadata.retain(|(key, _)| key != k);
                info.metadata.push((k.clone(), value));
            }
            info
        })
        .collect();
    let endpoints = log
        .vocab
        .endpoints
        .iter()
        .map(|name| {
            model
                .endpoints
                .iter()
                .position(|e| &e.id == name)
                .or_else(|| model.endpoints.iter().position(|e| &e.model == name))
                .map(|i| EndpointIdx(i as u16))
        })
        .collect();
    ReplayInput {
        spill: log.spill.clone(),
        rows: log.rows,
        span: log.span,
        scale: settings.scale,
        sample: settings.sample,
        loops: settings.loops.max(1),
        trace_driven,
        classes: log.vocab.classes.clone(),
        templates,
        endpoints,
    }
}
