//! Per-request records (`routesim run --records`): one row per finished request, streamed to Parquet in
//! chunks so that memory stays bounded however many requests a run simulates.

use crate::engine::RequestRecord;
use anyhow::{Context, Result};
use polars::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows buffered before a chunk is written.
const CHUNK: usize = 65_536;

/// Streams [`RequestRecord`]s of one run to a Parquet file.
pub struct RecordWriter {
    path: PathBuf,
    policy: String,
    replication: u32,
    classes: Vec<String>,
    endpoints: Vec<String>,
    buf: Vec<RequestRecord>,
    writer: polars::io::parquet::write::BatchedWriter<File>,
    rows: u64,
    error: Option<anyhow::Error>,
}

impl RecordWriter {
    /// Creates `path` for the records of `policy`, replication `replication`.
    pub fn create(
        path: &Path,
        policy: &str,
        replication: u32,
        classes: Vec<String>,
        endpoints: Vec<String>,
    ) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let schema = Self::frame(&[], policy, replication, &classes, &endpoints)?.schema().as_ref().clone();
        let writer = ParquetWriter::new(file)
            .batched(&schema)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("starting the Parquet writer for {}", path.display()))?;
        Ok(RecordWriter {
            path: path.to_path_buf(),
            policy: policy.to_string(),
            replication,
            classes,
            endpoints,
            buf: Vec::with_capacity(CHUNK),
            writer,
            rows: 0,
            error: None,
        })
    }

    fn frame(
        recs: &[RequestRecord],
        policy: &str,
        replication: u32,
        classes: &[String],
        endpoints: &[String],
    ) -> Result<DataFrame> {
        let n = recs.len();
        let name = |i: Option<u16>, names: &[String]| i.and_then(|i| names.get(i as usize).cloned());
        let df = DataFrame::new_infer_height(vec![
            Column::new("policy".into(), vec![policy.to_string(); n]),
            Column::new("replication".into(), vec![replication; n]),
            Column::new("id".into(), recs.iter().map(|r| r.id).collect::<Vec<_>>()),
            Column::new("class".into(), recs.iter().map(|r| name(Some(r.class), classes)).collect::<Vec<_>>()),
            Column::new("arrival_s".into(), recs.iter().map(|r| r.arrival_s).collect::<Vec<_>>()),
            Column::new("latency_s".into(), recs.iter().map(|r| r.latency_s).collect::<Vec<_>>()),
            Column::new(
                "ttft_s".into(),
                recs.iter().map(|r| r.ttft_s.is_finite().then_some(r.ttft_s)).collect::<Vec<_>>(),
            ),
            Column::new("success".into(), recs.iter().map(|r| r.error.is_none() && !r.rejected).collect::<Vec<_>>()),
            Column::new("error".into(), recs.iter().map(|r| r.error.map(|e| e.name().to_string())).collect::<Vec<_>>()),
            Column::new("rejected".into(), recs.iter().map(|r| r.rejected).collect::<Vec<_>>()),
            Column::new("cache_hit".into(), recs.iter().map(|r| r.cache_hit).collect::<Vec<_>>()),
            Column::new("attempts".into(), recs.iter().map(|r| r.attempts).collect::<Vec<_>>()),
            Column::new("endpoint".into(), recs.iter().map(|r| name(r.endpoint, endpoints)).collect::<Vec<_>>()),
            Column::new("cost_usd".into(), recs.iter().map(|r| r.cost_usd).collect::<Vec<_>>()),
            Column::new("input_tokens".into(), recs.iter().map(|r| r.input_tokens).collect::<Vec<_>>()),
            Column::new("output_tokens".into(), recs.iter().map(|r| r.output_tokens).collect::<Vec<_>>()),
            Column::new("measured".into(), recs.iter().map(|r| r.measured).collect::<Vec<_>>()),
        ])?;
        Ok(df)
    }

    /// Buffers a record, writing a chunk when the buffer is full. A write error is kept and returned by
    /// [`RecordWriter::finish`] (the simulation itself goes on).
    pub fn push(&mut self, rec: &RequestRecord) {
        self.buf.push(rec.clone());
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.error.is_some() {
            self.buf.clear();
            return;
        }
        let res = Self::frame(&self.buf, &self.policy, self.replication, &self.classes, &self.endpoints)
            .and_then(|df| self.writer.write_batch(&df).map_err(anyhow::Error::from));
        match res {
            Ok(()) => self.rows += self.buf.len() as u64,
            Err(e) => self.error = Some(e.context(format!("writing records to {}", self.path.display()))),
        }
        self.buf.clear();
    }

    /// Writes the last chunk and the Parquet footer; returns the number of rows written.
    pub fn finish(mut self) -> Result<u64> {
        self.flush();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.writer
            .finish()
            .map_err(anyhow::Error::from)
            .with_context(|| format!("finishing {}", self.path.display()))?;
        Ok(self.rows)
    }
}
