//! Replaying an ingested log: the arrivals of one run, streamed from the spill file with the rate scale,
//! the sample fraction and the loops applied.
//!
//! Every run streams the spill from disk with a small buffer, so a replay of any length uses bounded
//! memory. Sampling is keyed by (seed, replication, row), so every policy of a replication sees the same
//! sampled requests (common random numbers) and replications see different samples.

use super::ingest::{RECORD, Spilled, decode};
use super::read::Outcome;
use crate::rng::Stream;
use crate::traffic::Arrival;
use router_core::{EndpointIdx, ErrorClass, Nanos, RequestInfo};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Everything a replay run needs besides the scenario.
#[derive(Debug)]
pub struct ReplayInput {
    /// The spill file of the ingested log.
    pub spill: PathBuf,
    /// Rows in it.
    pub rows: u64,
    /// Time from the first to the last row.
    pub span: Nanos,
    /// Rate scale: arrival times are divided by it (2 = the same traffic at twice the rate).
    pub scale: f64,
    /// Fraction of rows replayed, in `(0, 1]`.
    pub sample: f64,
    /// Times the log is played back to back (1 = once).
    pub loops: u32,
    /// Reuse the logged latency when a request's first attempt goes to the endpoint that served it.
    pub trace_driven: bool,
    /// Task class names, by the log's class index.
    pub classes: Vec<String>,
    /// Request templates (class and metadata), by the log's template index.
    pub templates: Vec<RequestInfo>,
    /// The scenario endpoint of each endpoint named in the log, if any.
    pub endpoints: Vec<Option<EndpointIdx>>,
}

/// What the log says happened to a request on the endpoint that served it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trace {
    /// The scenario endpoint that served it.
    pub endpoint: EndpointIdx,
    /// Logged time to first token.
    pub ttft: Option<Nanos>,
    /// Logged end-to-end latency.
    pub latency: Nanos,
    /// Logged failure, if it failed.
    pub error: Option<ErrorClass>,
}

/// The arrivals of one replay run.
pub struct LogSource<'m> {
    input: &'m ReplayInput,
    reader: Option<BufReader<File>>,
    sample_keys: crate::rng::StreamBase,
    next_id: u64,
    row: u64,
    lap: u32,
    lap_offset: f64,
    trace: Option<Trace>,
    error: Option<String>,
}

impl<'m> LogSource<'m> {
    /// The arrivals of replication `replication` under `seed`.
    pub fn new(input: &'m ReplayInput, seed: u64, replication: u32) -> Self {
        let (reader, error) = match File::open(&input.spill) {
            Ok(f) => (Some(BufReader::with_capacity(1 << 16, f)), None),
            Err(e) => (None, Some(format!("cannot open the replay spill file {}: {e}", input.spill.display()))),
        };
        LogSource {
            input,
            reader,
            sample_keys: crate::rng::StreamBase::new(seed, replication, Stream::LogSample),
            next_id: 0,
            row: 0,
            lap: 0,
            lap_offset: 0.0,
            trace: None,
            error,
        }
    }

    /// An I/O error that ended the arrivals early, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// What the log says of the last arrival returned (trace-driven replay only).
    pub fn trace(&self) -> Option<Trace> {
        self.trace
    }

    /// Requests generated so far.
    pub fn generated(&self) -> u64 {
        self.next_id
    }

    fn read_row(&mut self) -> Option<Spilled> {
        let reader = self.reader.as_mut()?;
        let mut buf = [0u8; RECORD];
        loop {
            match reader.read_exact(&mut buf) {
                Ok(()) => return Some(decode(&buf)),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.lap += 1;
                    if self.lap >= self.input.loops.max(1) {
                        return None;
                    }
                    // The next lap starts one mean gap after this one's last arrival.
                    let gap = self.input.span as f64 / self.input.rows.max(1) as f64;
                    self.lap_offset += (self.input.span as f64 + gap) / self.input.scale;
                    if let Err(e) = reader.seek(SeekFrom::Start(0)) {
                        self.error = Some(format!("rewinding the replay spill file: {e}"));
                        return None;
                    }
                }
                Err(e) => {
                    self.error = Some(format!("reading the replay spill file: {e}"));
                    return None;
                }
            }
        }
    }

    /// The next arrival, or `None` at the end of the last lap.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Arrival> {
        loop {
            let s = self.read_row()?;
            let row = self.row;
            self.row += 1;
            if self.input.sample < 1.0 {
                let u = crate::rng::unit(self.sample_keys.key(row, 0));
                if u >= self.input.sample {
                    continue;
                }
            }
            let at = (self.lap_offset + s.at as f64 / self.input.scale).round().max(0.0) as Nanos;
            let id = self.next_id;
            self.next_id += 1;
            self.trace = if self.input.trace_driven { self.trace_of(&s) } else { None };
            return Some(Arrival {
                id,
                at,
                class: s.class,
                template: s.template,
                input_tokens: s.input_tokens,
                output_tokens: s.output_tokens,
                expected_output: s.output_known,
                deferrable: s.deferrable,
                cache_key: s.cache_key,
            });
        }
    }

    fn trace_of(&self, s: &Spilled) -> Option<Trace> {
        let endpoint = self.input.endpoints.get(s.endpoint? as usize).copied().flatten()?;
        let latency = s.latency? as Nanos;
        let error = match s.outcome {
            Outcome::Failed(c) => Some(c),
            _ => None,
        };
        Some(Trace { endpoint, ttft: s.ttft.map(|t| t as Nanos), latency, error })
    }
}
