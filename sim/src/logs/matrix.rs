//! Matrix logs: every prompt's real outcome on every model, in RouterBench's layout (one CSV row per
//! prompt x model), read into the table a replay draws each prompt's outcome, tokens and cost from.
//!
//! Columns (by name, any order, others ignored): `prompt_id`, `class` (the task class; empty or absent:
//! `default`), `model`, `quality` (0/1 or a score in `0..=1`), `cost_usd` (what the call cost, US dollars),
//! `input_tokens`, `output_tokens`. `docs/log-formats.md` documents the layout and converting RouterBench's
//! own files.
//!
//! The file's model names map to the scenario's endpoints: an endpoint takes the rows of the model named
//! like its `id`, else like its `model` (several endpoints may serve one model: they get the same
//! outcomes). Bad rows (a value that does not parse, a model no endpoint maps, a second row for the same
//! prompt and model, a class that contradicts the prompt's first row) are counted as malformed by reason
//! with their line, as in every log reader, and skipped; with `strict` the first one is an error. Then
//! every prompt must have a row for every mapped model: a prompt that lacks one is an error naming the
//! file, the prompt and the model (a replay cannot route it without that outcome); so is an endpoint whose
//! model the file does not have at all.

use super::read::{LogError, RowErrors, parse_quality};
use crate::quality::{Asked, Outcomes, QualityKeys, RealCall};
use router_core::EndpointIdx;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The columns a matrix log must have.
pub const REQUIRED: [&str; 6] = ["prompt_id", "model", "quality", "cost_usd", "input_tokens", "output_tokens"];

/// Reason of a row whose model maps to no scenario endpoint.
pub const UNMAPPED_MODEL: &str = "model maps to no endpoint";

/// One prompt's real outcome on one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatrixCell {
    /// Answer quality: 0/1 or a score in `0..=1`.
    pub score: f64,
    /// What the call cost, US dollars.
    pub cost_usd: f64,
    /// Prompt tokens as this model counted them.
    pub input_tokens: u32,
    /// Completion tokens this model produced.
    pub output_tokens: u32,
}

/// One prompt: its id, task class and its outcome on each scenario endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixPrompt {
    /// The file's prompt id.
    pub id: String,
    /// Task class (`default` when the file gives none).
    pub class: String,
    /// The outcome on each scenario endpoint, by endpoint index.
    pub cells: Vec<MatrixCell>,
}

/// A scenario endpoint's names, as the matrix mapping matches them.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointNames {
    /// The endpoint's `id`.
    pub id: String,
    /// The endpoint's `model`.
    pub model: String,
}

/// A matrix log read against a scenario's endpoints.
#[derive(Clone, Debug)]
pub struct MatrixTable {
    /// The file.
    pub path: PathBuf,
    /// Prompts in file order (of their first row).
    pub prompts: Vec<MatrixPrompt>,
    /// The file's model name each endpoint takes its outcomes from, by endpoint index.
    pub models: Vec<String>,
    /// Data rows read (good and malformed).
    pub read: u64,
    /// Malformed rows.
    pub errors: RowErrors,
}

impl MatrixTable {
    /// The outcome of prompt `prompt` on endpoint `endpoint`.
    pub fn cell(&self, prompt: usize, endpoint: usize) -> Option<&MatrixCell> {
        self.prompts.get(prompt)?.cells.get(endpoint)
    }

    /// Reads `path` and maps its models onto `endpoints`.
    pub fn read(path: &Path, endpoints: &[EndpointNames], strict: bool) -> Result<MatrixTable, LogError> {
        let err = |message: String| LogError { file: path.to_path_buf(), message };
        if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            return Err(err("a matrix log is a .csv file (see docs/log-formats.md, \"Matrix logs\")".into()));
        }
        let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read the matrix log: {e}")))?;
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| err(format!("cannot read the matrix log: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| !header.iter().any(|h| h == c)).collect();
        if !missing.is_empty() {
            return Err(err(format!(
                "a matrix log needs the column(s) {} but the file has: {} (layout: prompt_id, class, model, \
                 quality, cost_usd, input_tokens, output_tokens; see docs/log-formats.md)",
                missing.join(", "),
                header.join(", ")
            )));
        }
        let at = |name: &str| header.iter().position(|h| h == name);
        let columns = Columns {
            prompt: at("prompt_id").unwrap_or_default(),
            class: at("class"),
            model: at("model").unwrap_or_default(),
            quality: at("quality").unwrap_or_default(),
            cost: at("cost_usd").unwrap_or_default(),
            input: at("input_tokens").unwrap_or_default(),
            output: at("output_tokens").unwrap_or_default(),
        };
        // The file model names the endpoints map to, each endpoint by id first, then by model; only the
        // file tells which names exist, so the mapping is settled after the first pass over the names below.
        let mut errors = RowErrors::default();
        let mut read = 0u64;
        let mut rows: Vec<(u64, String, Option<String>, String, MatrixCell)> = Vec::new();
        for record in reader.records() {
            read += 1;
            let record = record.map_err(|e| err(format!("cannot read the matrix log: {e}")))?;
            let line = record.position().map_or(read + 1, |p| p.line());
            match columns.parse(&record, header.len()) {
                Ok((prompt, class, model, cell)) => rows.push((line, prompt, class, model, cell)),
                Err((reason, detail)) => {
                    if strict {
                        return Err(err(format!(
                            "line {line}: {reason}: {detail} (--strict stops at the first malformed row)"
                        )));
                    }
                    errors.push(format!("line {line}"), reason, detail);
                }
            }
        }
        let file_models: Vec<&str> = {
            let mut seen: Vec<&str> = Vec::new();
            for (_, _, _, m, _) in &rows {
                if !seen.contains(&m.as_str()) {
                    seen.push(m);
                }
            }
            seen
        };
        let models: Vec<String> = endpoints
            .iter()
            .map(|e| {
                file_models
                    .iter()
                    .find(|m| **m == e.id)
                    .or_else(|| file_models.iter().find(|m| **m == e.model))
                    .map(|m| m.to_string())
                    .ok_or_else(|| {
                        err(format!(
                            "endpoint `{}` (model `{}`) matches no model of the matrix log by id or model; the \
                             file's models: {}",
                            e.id,
                            e.model,
                            file_models.join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        // Model name -> its slot among the distinct mapped names.
        let mut mapped: Vec<&str> = Vec::new();
        for m in &models {
            if !mapped.contains(&m.as_str()) {
                mapped.push(m);
            }
        }
        let mut prompt_ix: HashMap<String, usize> = HashMap::new();
        // Per prompt: id, class, the line of its first row, its cell per mapped model.
        let mut gathered: Vec<(String, String, u64, Vec<Option<MatrixCell>>)> = Vec::new();
        for (line, prompt, class, model, cell) in rows {
            let loc = format!("line {line}");
            let bad = |errors: &mut RowErrors, reason: &'static str, detail: String| -> Result<(), LogError> {
                if strict {
                    return Err(err(format!("{loc}: {reason}: {detail} (--strict stops at the first malformed row)")));
                }
                errors.push(loc.clone(), reason, detail);
                Ok(())
            };
            let Some(slot) = mapped.iter().position(|m| *m == model) else {
                bad(
                    &mut errors,
                    UNMAPPED_MODEL,
                    format!("model = {model:?}: no scenario endpoint has this id or model"),
                )?;
                continue;
            };
            let class = class.unwrap_or_else(|| router_core::quality::DEFAULT_CLASS.to_string());
            let p = *prompt_ix.entry(prompt.clone()).or_insert_with(|| {
                gathered.push((prompt.clone(), class.clone(), line, vec![None; mapped.len()]));
                gathered.len() - 1
            });
            let entry = &mut gathered[p];
            if entry.1 != class {
                bad(
                    &mut errors,
                    "class differs from the prompt's first row",
                    format!("prompt_id = {prompt:?}: class = {class:?}, line {} says {:?}", entry.2, entry.1),
                )?;
                continue;
            }
            if entry.3[slot].is_some() {
                bad(
                    &mut errors,
                    "duplicate prompt and model",
                    format!("prompt_id = {prompt:?}, model = {model:?} already has a row"),
                )?;
                continue;
            }
            entry.3[slot] = Some(cell);
        }
        if gathered.is_empty() {
            return Err(err(format!(
                "no usable row: {read} rows read, {} malformed{}",
                errors.total(),
                errors.examples.first().map_or(String::new(), |(l, r, d)| format!(" (e.g. {l}: {r}: {d})"))
            )));
        }
        let mut prompts = Vec::with_capacity(gathered.len());
        for (id, class, line, cells) in gathered {
            let mut by_endpoint = Vec::with_capacity(models.len());
            for m in &models {
                let slot = mapped.iter().position(|x| x == m).unwrap_or_default();
                match cells[slot] {
                    Some(c) => by_endpoint.push(c),
                    None => {
                        return Err(err(format!(
                            "prompt {id:?} (first row at line {line}) has no usable row for model `{m}`, which the \
                             scenario maps (every prompt needs every mapped model's outcome: add the row, or drop \
                             the prompt or the endpoint){}",
                            malformed_hint(&errors)
                        )));
                    }
                }
            }
            prompts.push(MatrixPrompt { id, class, cells: by_endpoint });
        }
        Ok(MatrixTable { path: path.to_path_buf(), prompts, models, read, errors })
    }
}

/// A matrix log as the engine's outcome source: request `id` is prompt `id mod prompts` (a replay plays the
/// prompts in file order, looping), and its outcome on an endpoint is the file's.
#[derive(Clone, Debug)]
pub struct MatrixOutcomes {
    table: MatrixTable,
    /// Mean score per (class index, endpoint): the base rate a cascade verifier's precision needs.
    accuracy: Vec<Vec<Option<f64>>>,
}

impl MatrixOutcomes {
    /// The source of `table`, whose prompts' classes index into `classes` (the replay's class names).
    pub fn new(table: MatrixTable, classes: &[String]) -> Self {
        let endpoints = table.models.len();
        let accuracy = classes
            .iter()
            .map(|class| {
                (0..endpoints)
                    .map(|e| {
                        let scores: Vec<f64> =
                            table.prompts.iter().filter(|p| &p.class == class).map(|p| p.cells[e].score).collect();
                        (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
                    })
                    .collect()
            })
            .collect();
        MatrixOutcomes { table, accuracy }
    }

    /// The table.
    pub fn table(&self) -> &MatrixTable {
        &self.table
    }

    /// The prompt request `id` replays.
    fn prompt(&self, id: u64) -> Option<&MatrixPrompt> {
        let n = self.table.prompts.len() as u64;
        (n > 0).then(|| &self.table.prompts[(id % n) as usize])
    }
}

impl Outcomes for MatrixOutcomes {
    fn score(&self, _keys: &QualityKeys, request: Asked, endpoint: EndpointIdx) -> Option<f64> {
        Some(self.prompt(request.id)?.cells.get(endpoint.get())?.score)
    }

    fn estimate(&self, _keys: &QualityKeys, _request: Asked) -> Option<f64> {
        None
    }

    fn has_estimate(&self) -> bool {
        false
    }

    fn accuracy(&self, class: u16, endpoint: EndpointIdx) -> Option<f64> {
        self.accuracy.get(class as usize)?.get(endpoint.get()).copied().flatten()
    }

    fn has_real_calls(&self) -> bool {
        true
    }

    /// The file's tokens and cost of request `request`'s prompt on `endpoint`.
    fn real_call(&self, request: Asked, endpoint: EndpointIdx) -> Option<RealCall> {
        let c = self.prompt(request.id)?.cells.get(endpoint.get())?;
        Some(RealCall { input_tokens: c.input_tokens, output_tokens: c.output_tokens, cost_usd: c.cost_usd })
    }
}

/// ` (N malformed rows were skipped: ...)` when some were, since the missing row may be one of them.
fn malformed_hint(errors: &RowErrors) -> String {
    match errors.examples.first() {
        None => String::new(),
        Some((loc, reason, detail)) => {
            format!("; {} malformed row(s) were skipped, e.g. {loc}: {reason}: {detail}", errors.total())
        }
    }
}

/// Column positions in a matrix log.
struct Columns {
    prompt: usize,
    class: Option<usize>,
    model: usize,
    quality: usize,
    cost: usize,
    input: usize,
    output: usize,
}

/// A parsed row: prompt id, class (when given), model, outcome.
type Parsed = (String, Option<String>, String, MatrixCell);

impl Columns {
    fn parse(&self, record: &csv::StringRecord, width: usize) -> Result<Parsed, (&'static str, String)> {
        if record.len() != width {
            let reason = if record.len() < width { "short row" } else { "long row" };
            return Err((reason, format!("{} fields, the header has {width}", record.len())));
        }
        let text = |i: usize| record.get(i).map(str::trim).filter(|s| !s.is_empty());
        let prompt = text(self.prompt).ok_or(("missing field", "prompt_id is empty".to_string()))?;
        let model = text(self.model).ok_or(("missing field", "model is empty".to_string()))?;
        let score = parse_quality(
            text(self.quality)
                .ok_or(("missing field", "quality is empty (every cell needs its outcome)".to_string()))?,
        )?;
        let cost = text(self.cost).ok_or(("missing field", "cost_usd is empty".to_string()))?;
        let cost_usd = match cost.parse::<f64>() {
            Ok(c) if c.is_finite() && c >= 0.0 => c,
            _ => return Err(("negative or non-numeric value", format!("cost_usd = {cost:?}"))),
        };
        let tokens = |i: usize, name: &str| -> Result<u32, (&'static str, String)> {
            let s = text(i).ok_or(("missing field", format!("{name} is empty")))?;
            match s.parse::<u32>() {
                Ok(v) => Ok(v),
                Err(_) => Err(("negative or non-numeric tokens", format!("{name} = {s:?}"))),
            }
        };
        let cell = MatrixCell {
            score,
            cost_usd,
            input_tokens: tokens(self.input, "input_tokens")?,
            output_tokens: tokens(self.output, "output_tokens")?,
        };
        Ok((prompt.to_string(), self.class.and_then(text).map(str::to_string), model.to_string(), cell))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[(&str, &str)]) -> Vec<EndpointNames> {
        v.iter().map(|(id, model)| EndpointNames { id: id.to_string(), model: model.to_string() }).collect()
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("routesim-matrix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const HEADER: &str = "prompt_id,class,model,quality,cost_usd,input_tokens,output_tokens\n";

    #[test]
    fn reads_cells_by_endpoint_id_then_model() {
        let p = write(
            "ok.csv",
            &format!(
                "{HEADER}p1,code,big,1,0.01,100,50\np1,code,small,0,0.001,100,80\np2,,big,0.7,0.02,10,5\np2,,small,0.2,0.002,10,6\n"
            ),
        );
        // `b` maps by id, `s1` and `s2` both by model: same outcomes.
        let t = MatrixTable::read(&p, &names(&[("big", "x"), ("s1", "small"), ("s2", "small")]), false).unwrap();
        assert_eq!(t.models, ["big", "small", "small"]);
        assert_eq!(t.prompts.len(), 2);
        assert_eq!(t.prompts[1].class, "default");
        assert_eq!(t.cell(0, 1), t.cell(0, 2));
        assert_eq!(t.cell(0, 0).unwrap().output_tokens, 50);
        assert_eq!(t.cell(1, 0).unwrap().score, 0.7);
        assert_eq!((t.read, t.errors.total()), (4, 0));
    }

    #[test]
    fn bad_rows_are_counted_with_their_line_and_field() {
        let p = write(
            "bad.csv",
            &format!(
                "{HEADER}p1,code,big,1,0.01,100,50\np1,code,small,yes,0.001,100,80\np1,code,small,1.5,0.001,100,80\n\
                 p1,code,small,0,0.001,100,80\np1,code,other,1,0.01,1,1\np1,code,big,1,0.01,100,50\np1,chat,big,1,0.01,1,1\n"
            ),
        );
        let t = MatrixTable::read(&p, &names(&[("big", "big"), ("small", "small")]), false).unwrap();
        assert_eq!(t.errors.total(), 5);
        let reason = |line: usize| t.errors.examples.iter().find(|e| e.0 == format!("line {line}")).unwrap();
        assert_eq!(reason(3).1, crate::logs::read::QUALITY_NOT_A_NUMBER);
        assert!(reason(3).2.contains("quality = \"yes\""));
        assert_eq!(reason(4).1, crate::logs::read::QUALITY_OUT_OF_RANGE);
        assert_eq!(reason(6).1, UNMAPPED_MODEL);
        assert!(reason(6).2.contains("\"other\""));
        assert_eq!(reason(7).1, "duplicate prompt and model");
        // A strict read stops at the first.
        let e = MatrixTable::read(&p, &names(&[("big", "big"), ("small", "small")]), true).unwrap_err();
        assert!(e.to_string().contains("line 3: quality is not a number"), "{e}");
    }

    #[test]
    fn a_prompt_without_a_mapped_model_is_an_error_naming_file_prompt_and_model() {
        let p = write("hole.csv", &format!("{HEADER}p1,,big,1,0.01,1,1\np1,,small,1,0.01,1,1\np2,,big,0,0.01,1,1\n"));
        let e = MatrixTable::read(&p, &names(&[("big", "big"), ("small", "small")]), false).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("hole.csv") && text.contains("\"p2\"") && text.contains("`small`"), "{text}");
        // An endpoint whose model the file lacks altogether.
        let e = MatrixTable::read(&p, &names(&[("big", "big"), ("judge", "gpt-judge")]), false).unwrap_err();
        assert!(e.to_string().contains("endpoint `judge`"), "{e}");
        // A missing column.
        let q = write("cols.csv", "prompt_id,model,quality\np1,big,1\n");
        let e = MatrixTable::read(&q, &names(&[("big", "big")]), false).unwrap_err();
        assert!(e.to_string().contains("cost_usd, input_tokens, output_tokens"), "{e}");
    }
}
