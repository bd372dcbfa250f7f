//! `routesim gen-log`: a scenario simulated under one of its policies and written as a gateway log in the
//! generic schema, which `routesim replay` and `routesim fit` read without options.
//!
//! Rows are written when requests finish, as a gateway writes them, so they are out of arrival order by up
//! to the longest request (replay reorders them). Columns: `request_id`, `arrival_s` (seconds since the
//! start, exact to the nanosecond), `class`, `input_tokens`, `output_tokens`, `endpoint`, `ttft_s`,
//! `latency_s`, `status` (`ok`, `rate_limited`, `server`, `timeout`, `other`, `rejected`), `cost_usd`,
//! `cache_key`, `deferrable`, `output_known`. The three encodings are written from the same chunks of rows
//! (CSV and Parquet by polars' batched writers, JSON lines by serde_json), so memory is bounded and the files
//! hold the same values.

use crate::engine::{self, RequestRecord, RunOptions};
use crate::logs::read::FileKind;
use crate::scenario::Compiled;
use anyhow::{Context, Result};
use polars::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Rows buffered per chunk.
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

/// One of polars' batched writers (each writes a whole chunk at once, so the file needs no buffer), or
/// JSON lines written from the same chunks with serde_json.
enum Encoder {
    Csv(polars::io::csv::write::BatchedWriter<File>),
    Jsonl(BufWriter<File>),
    Parquet(Box<polars::io::parquet::write::BatchedWriter<File>>),
}

/// Buffers records and writes them a chunk at a time.
struct LogWriter<'a> {
    encoder: Encoder,
    buf: Vec<RequestRecord>,
    classes: &'a [String],
    endpoints: &'a [String],
    rows: u64,
}

impl<'a> LogWriter<'a> {
    fn new(kind: FileKind, file: File, classes: &'a [String], endpoints: &'a [String]) -> Result<Self> {
        let schema = frame(&[], classes, endpoints)?.schema().as_ref().clone();
        let encoder = match kind {
            FileKind::Csv => Encoder::Csv(CsvWriter::new(file).batched(&schema)?),
            FileKind::Jsonl => Encoder::Jsonl(BufWriter::new(file)),
            FileKind::Parquet => Encoder::Parquet(Box::new(
                ParquetWriter::new(file).with_compression(ParquetCompression::Zstd(None)).batched(&schema)?,
            )),
        };
        Ok(LogWriter { encoder, buf: Vec::new(), classes, endpoints, rows: 0 })
    }

    fn push(&mut self, r: &RequestRecord) -> Result<()> {
        self.rows += 1;
        self.buf.push(r.clone());
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let df = frame(&self.buf, self.classes, self.endpoints)?;
        self.buf.clear();
        match &mut self.encoder {
            Encoder::Csv(w) => w.write_batch(&df)?,
            Encoder::Jsonl(w) => write_json_lines(w, &df)?,
            Encoder::Parquet(w) => w.write_batch(&df)?,
        }
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        self.flush()?;
        match self.encoder {
            Encoder::Csv(mut w) => w.finish()?,
            Encoder::Jsonl(mut w) => w.flush()?,
            Encoder::Parquet(w) => {
                w.finish()?;
            }
        }
        Ok(self.rows)
    }
}

/// Writes `df` as JSON lines: one object per row, keys in column order, nulls as `null` (so every row has
/// every field, as the reader requires).
fn write_json_lines(w: &mut impl Write, df: &DataFrame) -> Result<()> {
    let columns = df.columns();
    for i in 0..df.height() {
        w.write_all(b"{")?;
        for (k, c) in columns.iter().enumerate() {
            let value = match c.get(i)? {
                AnyValue::Null => serde_json::Value::Null,
                AnyValue::Boolean(b) => b.into(),
                AnyValue::String(s) => s.into(),
                AnyValue::StringOwned(s) => s.as_str().into(),
                AnyValue::UInt32(x) => x.into(),
                AnyValue::UInt64(x) => x.into(),
                AnyValue::Int64(x) => x.into(),
                AnyValue::Float64(x) => serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into),
                other => {
                    anyhow::bail!("column {} holds a {} value, which gen-log does not write", c.name(), other.dtype())
                }
            };
            if k > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, c.name().as_str())?;
            w.write_all(b":")?;
            serde_json::to_writer(&mut *w, &value)?;
        }
        w.write_all(b"}\n")?;
    }
    Ok(())
}

/// A chunk of records in the generic schema. Arrival times and cache keys are text: exact to the nanosecond
/// and to the last bit of a 64-bit key in every encoding (a JSON number would round them).
fn frame(rows: &[RequestRecord], classes: &[String], endpoints: &[String]) -> Result<DataFrame> {
    let s = |f: &dyn Fn(&RequestRecord) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let name = |names: &[String], i: Option<usize>| i.and_then(|i| names.get(i)).cloned().unwrap_or_default();
    let columns = vec![
        Column::new("request_id".into(), rows.iter().map(|r| r.id).collect::<Vec<u64>>()),
        Column::new("arrival_s".into(), s(&|r| seconds(r.arrival_ns))),
        Column::new("class".into(), s(&|r| name(classes, Some(r.class as usize)))),
        Column::new("input_tokens".into(), rows.iter().map(|r| r.input_tokens).collect::<Vec<u32>>()),
        Column::new("output_tokens".into(), rows.iter().map(|r| r.output_tokens).collect::<Vec<u32>>()),
        Column::new("endpoint".into(), s(&|r| name(endpoints, r.endpoint.map(usize::from)))),
        Column::new(
            "ttft_s".into(),
            rows.iter().map(|r| r.ttft_s.is_finite().then_some(r.ttft_s)).collect::<Vec<Option<f64>>>(),
        ),
        Column::new("latency_s".into(), rows.iter().map(|r| r.latency_s).collect::<Vec<f64>>()),
        Column::new("status".into(), s(&|r| status(r).to_string())),
        Column::new("cost_usd".into(), rows.iter().map(|r| r.cost_usd).collect::<Vec<f64>>()),
        Column::new(
            "cache_key".into(),
            rows.iter().map(|r| r.cache_key.map(|k| k.to_string())).collect::<Vec<Option<String>>>(),
        ),
        Column::new("deferrable".into(), rows.iter().map(|r| r.deferrable).collect::<Vec<bool>>()),
        Column::new("output_known".into(), rows.iter().map(|r| r.output_known).collect::<Vec<bool>>()),
    ];
    anyhow::Context::context(DataFrame::new(rows.len(), columns), "building a log chunk")
}
