//! `routesim replay`: a gateway log attached to a compiled scenario, whose runs then take their arrivals
//! (and, trace-driven, their latencies) from the log instead of the traffic model.

use crate::logs::ingest::{self, IngestedLog};
use crate::logs::read::LogError;
use crate::logs::source::ReplayInput;
use crate::logs::{ReplaySettings, open};
use crate::scenario::Compiled;
use router_core::{EndpointIdx, MetaValue, Nanos, RequestInfo};
use std::path::Path;

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
    if model.quality.is_some() {
        // The log's task classes, not the traffic model's, index the quality model.
        let classes = model.class_names();
        model.quality = model.quality_model(&classes);
    }
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
