//! `routesim replay --matrix`: a matrix log (every prompt's real outcome on every model) attached to a
//! compiled scenario. Each prompt becomes one request; its arrival time comes from the scenario's traffic
//! model (its rate, profile and spikes: the load the scenario describes), its task class and tokens from the
//! file; whichever endpoint a policy sends it to answers with that prompt's real outcome on that endpoint's
//! model: its quality score, its output length (the service time) and its cost. Queueing, quotas, faults,
//! retries and fallbacks are the scenario's. With unlimited capacity the quality and cost of a policy are
//! exactly what the file says of the endpoints it chose: an exact counterfactual.
//!
//! The prompts are written to a spill file in the replayed-log layout ([`crate::logs::ingest::encode`]),
//! so the engine's log source replays them unchanged; the outcomes are the scenario's quality source
//! ([`crate::logs::matrix::MatrixOutcomes`]).

use crate::logs::ingest::encode;
use crate::logs::matrix::{EndpointNames, MatrixOutcomes, MatrixTable};
use crate::logs::quality::ScoreTally;
use crate::logs::read::{LogError, LogRow, RowErrors};
use crate::logs::source::ReplayInput;
use crate::replay::class_template;
use crate::scenario::Compiled;
use crate::traffic::{ArrivalSource, Limit};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How a matrix log is replayed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatrixSettings {
    /// Rate scale: the scenario's arrival times are divided by it.
    pub scale: f64,
    /// Times the prompts are played back to back.
    pub loops: u32,
    /// Stop at the first malformed row.
    pub strict: bool,
}

/// A matrix log attached to a scenario: what the report says of it. Keep it alive while runs use the spill.
#[derive(Debug)]
pub struct MatrixReplay {
    /// The spill file (deleted when this is dropped).
    pub spill: PathBuf,
    /// Prompts replayed per loop.
    pub prompts: u64,
    /// Data rows read (good and malformed).
    pub read: u64,
    /// Malformed rows.
    pub errors: RowErrors,
    /// The file's model each endpoint answers as, by endpoint index.
    pub models: Vec<String>,
    /// Each distinct mapped model alone, straight from the file (no load, no failure): its scores and its
    /// total cost over one pass of the prompts. RouterBench's single-model points.
    pub single_models: Vec<(String, ScoreTally, f64)>,
}

impl Drop for MatrixReplay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spill);
    }
}

/// Reads the matrix log `matrix`, maps its models onto `model`'s endpoints and attaches it: the runs then
/// replay its prompts with their real outcomes. The spill file goes to `spill_dir`.
pub fn attach_matrix(
    model: &mut Compiled,
    matrix: &Path,
    settings: &MatrixSettings,
    spill_dir: &Path,
) -> Result<MatrixReplay, LogError> {
    let err = |message: String| LogError { file: matrix.to_path_buf(), message };
    if !(settings.scale.is_finite() && settings.scale > 0.0) {
        return Err(err(format!("--scale must be positive, found {}", settings.scale)));
    }
    let names: Vec<EndpointNames> =
        model.endpoints.iter().map(|e| EndpointNames { id: e.id.clone(), model: e.model.clone() }).collect();
    let table = MatrixTable::read(matrix, &names, settings.strict)?;
    // Classes in order of first appearance; one template per class.
    let mut classes: Vec<String> = Vec::new();
    for p in &table.prompts {
        if !classes.contains(&p.class) {
            classes.push(p.class.clone());
        }
    }
    let class_names = model.traffic.class_names();
    let templates = classes.iter().map(|c| class_template(model, &class_names, c)).collect();
    // The scenario's arrival process gives the times; everything else of the drawn requests is dropped.
    let n = table.prompts.len() as u64;
    let mut times = ArrivalSource::new(&model.traffic, model.seed, 0, Limit { until: None, max_requests: Some(n) });
    let spill = spill_dir.join(format!(".matrix-{}.spill", std::process::id()));
    let io = |e: std::io::Error| LogError { file: spill.clone(), message: format!("writing the spill file: {e}") };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&spill).map_err(io)?);
    let mut last = 0i64;
    for (i, p) in table.prompts.iter().enumerate() {
        let at = times.next().map(|a| a.at).ok_or_else(|| {
            err(format!(
                "the scenario's traffic ends after {i} arrivals, before the matrix log's {n} prompts: give it a \
                 rate that does not fall to zero for good"
            ))
        })? as i64;
        last = at;
        let class = classes.iter().position(|c| c == &p.class).unwrap_or_default() as u16;
        // What the router sees before it chooses: the largest prompt any model counted (context windows),
        // and no announced output length. The chosen endpoint's real tokens replace both.
        let input_tokens = p.cells.iter().map(|c| c.input_tokens).max().unwrap_or(0);
        let output_tokens = p.cells.iter().map(|c| c.output_tokens).max().unwrap_or(0);
        let row =
            LogRow { input_tokens, output_tokens, class, template: class as u32, ..LogRow::arrival_only(i as u64, at) };
        out.write_all(&encode(&row, at)).map_err(io)?;
    }
    out.flush().map_err(io)?;
    drop(out);
    let mut single_models: Vec<(String, ScoreTally, f64)> = Vec::new();
    for (e, m) in table.models.iter().enumerate() {
        if single_models.iter().any(|(name, _, _)| name == m) {
            continue;
        }
        let mut tally = ScoreTally::default();
        let mut cost = 0.0;
        for p in &table.prompts {
            tally.push(p.cells[e].score);
            cost += p.cells[e].cost_usd;
        }
        single_models.push((m.clone(), tally, cost));
    }
    let attached = MatrixReplay {
        spill: spill.clone(),
        prompts: n,
        read: table.read,
        errors: table.errors.clone(),
        models: table.models.clone(),
        single_models,
    };
    model.replay = Some(ReplayInput {
        spill,
        rows: n,
        span: last.max(0) as router_core::Nanos,
        scale: settings.scale,
        sample: 1.0,
        loops: settings.loops.max(1),
        trace_driven: false,
        classes: classes.clone(),
        templates,
        endpoints: Vec::new(),
    });
    model.quality = Some(std::sync::Arc::new(MatrixOutcomes::new(table, &classes)));
    Ok(attached)
}
