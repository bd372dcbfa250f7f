//! `routesim gen-log`: a scenario simulated under one of its policies and written as a gateway log in the
//! generic schema, which `routesim replay` and `routesim fit` read without options.
//!
//! Rows are written when requests finish, as a gateway writes them, so they are out of arrival order by up
//! to the longest request (replay reorders them). Columns: `request_id`, `arrival_s` (seconds since the
//! start, exact to the nanosecond), `class`, `input_tokens`, `output_tokens`, `endpoint`, `ttft_s`,
//! `latency_s`, `status` (`ok`, `rate_limited`, `server`, `timeout`, `other`, `rejected`), `cost_usd`,
//! `cache_key`, `deferrable`, `output_known`. Memory is bounded: CSV and JSONL are written row by row and
//! Parquet in chunks.

use super::read::FileKind;
use crate::engine::{self, RequestRecord, RunOptions};
use crate::scenario::Compiled;
use anyhow::{Context, Result};
use polars::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Rows buffered per Parquet chunk.
const CHUNK: usize = 1 << 16;

/// Simulates `policy` of `model` (replication 0) and writes every finished request to `out`; returns the
/// number of rows written.
pub fn generate(model: &Compiled, policy: usize, out: &Path) -> Result<u64> {
    let kind = FileKind::of(out).context("the output must end in .csv, .jsonl/.ndjson or .parquet")?;
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let classes = model.class_names();
    let endpoints = model.endpoint_ids();
    let mut writer = LogWriter::new(kind, file, &classes, &endpoints)?;
    let mut failure: Option<anyhow::Error> = None;
    let mut sink = |r: &RequestRecord| {
        if failure.is_none()
            && let Err(e) = writer.push(r)
        {
            failure = Some(e);
        }
    };
    engine::run(model, policy, 0, RunOptions { records: Some(&mut sink), ..Default::default() });
    if let Some(e) = failure {
        return Err(e).with_context(|| format!("writing {}", out.display()));
    }
    writer.finish().with_context(|| format!("writing {}", out.display()))
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")).into() } else { s.into() }
}

/// Seconds with nine decimals, exactly.
fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

fn status(r: &RequestRecord) -> &'static str {
    match (r.error, r.rejected) {
        (Some(e), _) => e.name(),
        (None, true) => "rejected",
        (None, false) => "ok",
    }
}

/// Writes records in one of the three encodings.
struct LogWriter<'a> {
    kind: FileKind,
    text: Option<BufWriter<File>>,
    parquet: Option<polars::io::parquet::write::BatchedWriter<File>>,
    buf: Vec<RequestRecord>,
    classes: &'a [String],
    endpoints: &'a [String],
    rows: u64,
}

const COLUMNS: [&str; 13] = [
    "request_id",
    "arrival_s",
    "class",
    "input_tokens",
    "output_tokens",
    "endpoint",
    "ttft_s",
    "latency_s",
    "status",
    "cost_usd",
    "cache_key",
    "deferrable",
    "output_known",
];

impl<'a> LogWriter<'a> {
    fn new(kind: FileKind, file: File, classes: &'a [String], endpoints: &'a [String]) -> Result<Self> {
        let mut w = LogWriter { kind, text: None, parquet: None, buf: Vec::new(), classes, endpoints, rows: 0 };
        match kind {
            FileKind::Csv => {
                let mut out = BufWriter::with_capacity(1 << 20, file);
                writeln!(out, "{}", COLUMNS.join(","))?;
                w.text = Some(out);
            }
            FileKind::Jsonl => w.text = Some(BufWriter::with_capacity(1 << 20, file)),
            FileKind::Parquet => {
                let schema = w.frame(&[])?.schema().as_ref().clone();
                w.parquet =
                    Some(ParquetWriter::new(file).with_compression(ParquetCompression::Zstd(None)).batched(&schema)?);
            }
        }
        Ok(w)
    }

    fn endpoint(&self, r: &RequestRecord) -> &str {
        r.endpoint.and_then(|e| self.endpoints.get(e as usize)).map_or("", String::as_str)
    }

    fn push(&mut self, r: &RequestRecord) -> Result<()> {
        self.rows += 1;
        let ttft = if r.ttft_s.is_finite() { format!("{}", r.ttft_s) } else { String::new() };
        let class = self.classes.get(r.class as usize).map_or("", String::as_str);
        let endpoint = self.endpoint(r).to_string();
        let key = r.cache_key.map_or(String::new(), |k| k.to_string());
        match self.kind {
            FileKind::Csv => {
                let out = self.text.as_mut().context("no CSV writer")?;
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.id,
                    seconds(r.arrival_ns),
                    csv_field(class),
                    r.input_tokens,
                    r.output_tokens,
                    csv_field(&endpoint),
                    ttft,
                    r.latency_s,
                    status(r),
                    r.cost_usd,
                    key,
                    r.deferrable,
                    r.output_known
                )?;
            }
            FileKind::Jsonl => {
                let out = self.text.as_mut().context("no JSONL writer")?;
                let row = serde_json::json!({
                    "request_id": r.id,
                    "arrival_s": seconds(r.arrival_ns),
                    "class": class,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "endpoint": endpoint,
                    "ttft_s": r.ttft_s.is_finite().then_some(r.ttft_s),
                    "latency_s": r.latency_s,
                    "status": status(r),
                    "cost_usd": r.cost_usd,
                    "cache_key": r.cache_key.map(|k| k.to_string()),
                    "deferrable": r.deferrable,
                    "output_known": r.output_known,
                });
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")?;
            }
            FileKind::Parquet => {
                self.buf.push(r.clone());
                if self.buf.len() >= CHUNK {
                    self.flush_parquet()?;
                }
            }
        }
        Ok(())
    }

    fn frame(&self, rows: &[RequestRecord]) -> Result<DataFrame> {
        let s = |f: &dyn Fn(&RequestRecord) -> String| rows.iter().map(f).collect::<Vec<String>>();
        let columns = vec![
            Column::new("request_id".into(), rows.iter().map(|r| r.id).collect::<Vec<u64>>()),
            Column::new("arrival_s".into(), s(&|r| seconds(r.arrival_ns))),
            Column::new("class".into(), s(&|r| self.classes.get(r.class as usize).cloned().unwrap_or_default())),
            Column::new("input_tokens".into(), rows.iter().map(|r| r.input_tokens).collect::<Vec<u32>>()),
            Column::new("output_tokens".into(), rows.iter().map(|r| r.output_tokens).collect::<Vec<u32>>()),
            Column::new("endpoint".into(), s(&|r| self.endpoint(r).to_string())),
            Column::new(
                "ttft_s".into(),
                rows.iter().map(|r| r.ttft_s.is_finite().then_some(r.ttft_s)).collect::<Vec<Option<f64>>>(),
            ),
            Column::new("latency_s".into(), rows.iter().map(|r| r.latency_s).collect::<Vec<f64>>()),
            Column::new("status".into(), s(&|r| status(r).to_string())),
            Column::new("cost_usd".into(), rows.iter().map(|r| r.cost_usd).collect::<Vec<f64>>()),
            Column::new("cache_key".into(), rows.iter().map(|r| r.cache_key).collect::<Vec<Option<u64>>>()),
            Column::new("deferrable".into(), rows.iter().map(|r| r.deferrable).collect::<Vec<bool>>()),
            Column::new("output_known".into(), rows.iter().map(|r| r.output_known).collect::<Vec<bool>>()),
        ];
        anyhow::Context::context(DataFrame::new(rows.len(), columns), "building a log chunk")
    }

    fn flush_parquet(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let df = self.frame(&self.buf)?;
        self.buf.clear();
        self.parquet.as_mut().context("no Parquet writer")?.write_batch(&df)?;
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        match self.kind {
            FileKind::Parquet => {
                self.flush_parquet()?;
                self.parquet.take().context("no Parquet writer")?.finish()?;
            }
            _ => self.text.take().context("no writer")?.flush()?,
        }
        Ok(self.rows)
    }
}
