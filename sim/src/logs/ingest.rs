//! Ingesting a log for replay: rows put in arrival order within bounded memory, cut to a time window,
//! summarised "as logged", and spilled to a compact binary file that every (policy, replication) run then
//! streams.
//!
//! Gateways write a row when a request *ends*, so a log is ordered by end time and its arrivals are out of
//! order by at most the longest request. A min-heap holds rows until a row arrives more than the reorder
//! window (default 1h) after them; memory is bounded by the rows of one window. A row that arrives more
//! than the window before an already released row is counted as malformed ("out of order by more than the
//! reorder window") rather than placed wrongly.

use super::quality::ScoreTally;
use super::read::{LogError, LogReader, LogRow, Outcome, RowErrors, Vocabulary};
use crate::metrics::LatencyHistogram;
use crate::report::{Estimate, PolicyRow};
use router_core::{ErrorClass, Nanos};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Reason of a row that arrives too late for the reorder window.
const LATE: &str = "out of order by more than the reorder window";

/// Ten years in nanoseconds: a relative time beyond it is an epoch time in the wrong format.
const TEN_YEARS: i64 = 10 * 365 * 86_400 * 1_000_000_000;

/// Bytes of one spilled row.
pub const RECORD: usize = 56;

/// What part of the log to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Keep rows arriving at least this long after the log's first arrival.
    pub from: Nanos,
    /// Keep rows arriving before this time after the log's first arrival.
    pub to: Option<Nanos>,
}

/// A log ready to replay.
#[derive(Debug)]
pub struct IngestedLog {
    /// The spill file (deleted when this is dropped).
    pub spill: PathBuf,
    /// Rows in the spill, in arrival order.
    pub rows: u64,
    /// Kept rows past the warm-up: the ones the measurements (and "as logged") count.
    pub measured: u64,
    /// Rows read from the file (good and malformed).
    pub read: u64,
    /// Malformed rows.
    pub errors: RowErrors,
    /// Names seen.
    pub vocab: Vocabulary,
    /// Time from the first to the last kept arrival.
    pub span: Nanos,
    /// The log's own summary over the kept rows.
    pub as_logged: PolicyRow,
    /// Whether the log has latencies (and so can drive trace-driven replay).
    pub has_latency: bool,
    /// The log format's name.
    pub format: String,
    /// The logged answer quality of the measured rows that did not fail, when the log has a `quality`
    /// column (`None` without one); see [`super::quality`].
    pub quality: Option<ScoreTally>,
}

impl Drop for IngestedLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spill);
    }
}

/// The reorder buffer: rows held until no earlier arrival can still come, released in (arrival, index)
/// order. The rows wait in a ring in the order they were pushed (so that a nearly sorted log releases them
/// from memory nearly in sequence), their keys in a sorted deque, where a row that arrives in order or
/// nearly (within [`NEAR`] keys of the end) is placed by a binary search and a short shift, and in a heap
/// for the rest. A log that is sorted or nearly sorted pays no heap operation per row.
#[derive(Default)]
struct Reorder {
    sorted: VecDeque<Key>,
    heap: BinaryHeap<Reverse<Key>>,
    /// Rows by push number, from `base` on; `None` once released.
    rows: VecDeque<Option<LogRow>>,
    base: u64,
}

/// A held row: (arrival, index in the file, push number).
type Key = (i64, u64, u64);

/// How far from the end of the sorted deque a key may be placed by shifting keys.
const NEAR: usize = 512;

impl Reorder {
    fn push(&mut self, row: LogRow) {
        let key = (row.arrival, row.index, self.base + self.rows.len() as u64);
        self.rows.push_back(Some(row));
        let n = self.sorted.len();
        let from = n.saturating_sub(NEAR);
        if n == 0 || self.sorted[n - 1] <= key {
            self.sorted.push_back(key);
        } else if self.sorted[from] <= key {
            // The first key after `key` among the last NEAR (keys are distinct: the index is).
            let (mut lo, mut hi) = (from, n - 1);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if self.sorted[mid] <= key { lo = mid + 1 } else { hi = mid }
            }
            self.sorted.insert(lo, key);
        } else {
            self.heap.push(Reverse(key));
        }
    }

    /// The earliest key held.
    fn first(&self) -> Option<Key> {
        match (self.sorted.front(), self.heap.peek()) {
            (Some(&a), Some(&Reverse(b))) => Some(a.min(b)),
            (Some(&a), None) => Some(a),
            (None, Some(&Reverse(b))) => Some(b),
            (None, None) => None,
        }
    }

    /// The earliest arrival held.
    fn first_arrival(&self) -> Option<i64> {
        self.first().map(|(arrival, _, _)| arrival)
    }

    fn pop(&mut self) -> Option<LogRow> {
        let first = self.first()?;
        if self.sorted.front() == Some(&first) {
            self.sorted.pop_front();
        } else {
            self.heap.pop();
        }
        let row = self.rows.get_mut((first.2 - self.base) as usize).and_then(Option::take);
        while matches!(self.rows.front(), Some(None)) {
            self.rows.pop_front();
            self.base += 1;
        }
        row
    }
}

/// Accumulates the "as logged" summary.
#[derive(Default)]
struct AsLogged {
    requests: u64,
    known: u64,
    ok: u64,
    errors: [u64; 4],
    latency: LatencyHistogram,
    ttft: LatencyHistogram,
    cost: f64,
    costed: u64,
    quality: ScoreTally,
}

impl AsLogged {
    fn push(&mut self, r: &LogRow) {
        self.requests += 1;
        // A failed request has no answer, so no quality (as in the simulator).
        if let Some(q) = r.quality
            && !matches!(r.outcome, Outcome::Failed(_))
        {
            self.quality.push(q);
        }
        match r.outcome {
            Outcome::Ok => {
                self.known += 1;
                self.ok += 1;
            }
            Outcome::Failed(c) => {
                self.known += 1;
                self.errors[c.index()] += 1;
            }
            Outcome::Unknown => {}
        }
        // Like the simulator, latency quantiles are over successful requests.
        if !matches!(r.outcome, Outcome::Failed(_)) {
            if let Some(l) = r.latency {
                self.latency.record(l.max(0) as Nanos);
            }
            if let Some(t) = r.ttft {
                self.ttft.record(t.max(0) as Nanos);
            }
        }
        if let Some(c) = r.cost {
            self.cost += c;
            self.costed += 1;
        }
    }

    /// The summary as a table row; `has_quality`: whether the log has a `quality` column (then the row has
    /// the quality metrics, as points: the log is one observation).
    fn row(&self, has_quality: bool) -> PolicyRow {
        let p = Estimate::point;
        let n = self.requests.max(1) as f64;
        let nan = f64::NAN;
        let q = |h: &LatencyHistogram, x: f64| if h.is_empty() { nan } else { h.quantile_s(x) };
        PolicyRow {
            policy: "as logged".into(),
            replications: 1,
            requests: p(self.requests as f64),
            success_rate: p(if self.known == 0 { nan } else { self.ok as f64 / self.known as f64 }),
            latency_mean_s: p(if self.latency.is_empty() { nan } else { self.latency.mean_s() }),
            latency_p50_s: p(q(&self.latency, 0.5)),
            latency_p95_s: p(q(&self.latency, 0.95)),
            latency_p99_s: p(q(&self.latency, 0.99)),
            ttft_p50_s: p(q(&self.ttft, 0.5)),
            ttft_p95_s: p(q(&self.ttft, 0.95)),
            cost_usd: p(if self.costed == 0 { nan } else { self.cost }),
            cost_per_1k_usd: p(if self.costed == 0 { nan } else { self.cost / n * 1000.0 }),
            errors_429: p(self.errors[ErrorClass::RateLimited.index()] as f64),
            errors_5xx: p(self.errors[ErrorClass::Server.index()] as f64),
            timeouts: p(self.errors[ErrorClass::Timeout.index()] as f64),
            ttft_timeouts: p(nan),
            retries: p(nan),
            fallbacks: p(nan),
            cache_hits: p(nan),
            rejected: p(nan),
            denied: p(nan),
            denied_rpm: p(nan),
            denied_tpm: p(nan),
            denied_concurrency: p(nan),
            denied_budget: p(nan),
            // Only a log with a `quality` column has quality; its 95% intervals are printed apart.
            quality_on: has_quality,
            quality: p(if self.quality.count() == 0 { nan } else { self.quality.acceptance().value }),
            mean_score: p(if self.quality.count() == 0 { nan } else { self.quality.mean_score().value }),
            cost_per_acceptable: p(if self.costed == 0 || self.quality.acceptable() == 0 {
                nan
            } else {
                self.cost / self.quality.acceptable() as f64
            }),
        }
    }
}

/// Which kept rows the "as logged" summary measures: like the simulator, those arriving at or after
/// `from` (relative to the window's start) that are at least the `from_request`-th.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    /// Warm-up time.
    pub from: Nanos,
    /// Warm-up requests.
    pub from_request: u64,
}

/// Rows handed from the reading thread to the spilling one at a time.
const BATCH: usize = 4096;

/// Reads `reader` into a spill file at `spill`, ordered by arrival within `reorder`, keeping `window`.
///
/// Two threads share the work (three with a CSV log's splitter, see [`LogReader::for_each`]): this one reads
/// and parses the rows and hands them over in batches, in file order, to a [`Spiller`] on a second thread,
/// which orders, windows, summarises and writes them. The rows are the same, in the same order, as one thread
/// doing both.
pub fn ingest(
    reader: &LogReader,
    window: Window,
    measured: Measured,
    reorder: Nanos,
    strict: bool,
    spill: &Path,
) -> Result<IngestedLog, LogError> {
    let io =
        |e: std::io::Error| LogError { file: spill.to_path_buf(), message: format!("writing the spill file: {e}") };
    let file = std::fs::File::create(spill).map_err(io)?;
    // Relative times already count from the log's origin; absolute ones count from the first arrival.
    let start = (reader.format.time == super::format::TimeFormat::RelativeS).then_some(0);
    let mut spiller = Spiller::new(BufWriter::with_capacity(1 << 20, file), window, measured, reorder, start);
    let mut vocab = Vocabulary::default();
    let mut errors = RowErrors::default();
    // Full batches go over a bounded channel (memory stays bounded) and come back empty to be refilled.
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<LogRow>>(4);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<LogRow>>();
    let (read, spiller) = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            for mut batch in full_rx {
                for row in batch.drain(..) {
                    spiller.take(row, reader.kind);
                }
                // The reader may be done and gone: an unreturned batch is simply dropped.
                let _ = empty_tx.send(batch);
            }
            spiller.finish();
            spiller
        });
        let mut batch = Vec::with_capacity(BATCH);
        let read = reader.for_each(strict, &mut vocab, &mut errors, |row| {
            batch.push(row);
            if batch.len() == BATCH {
                let next = empty_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
                // The spiller only stops when the channel closes, so the send cannot fail while it runs.
                let _ = full_tx.send(std::mem::replace(&mut batch, next));
            }
        });
        if read.is_ok() && !batch.is_empty() {
            let _ = full_tx.send(batch);
        }
        drop(full_tx);
        let spiller = worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, spiller)
    });
    let read = read?;
    let Spiller { rows, summary, has_latency, write_err, late, first_arrival, last_kept, out, .. } = spiller;
    if let Some(e) = write_err {
        return Err(io(e));
    }
    out.into_inner().map_err(|e| io(e.into_error()))?;
    let late_rows = late.total();
    if late_rows > 0 {
        let err = |message: String| LogError { file: reader.path.clone(), message };
        if strict {
            let (loc, _, detail) = &late.examples[0];
            return Err(err(format!("{loc}: {LATE} ({detail}; --strict stops at the first malformed row)")));
        }
        if late_rows * 2 > read {
            return Err(err(format!(
                "{late_rows} of {read} rows arrive more than the reorder window ({} s) before rows already \
                 replayed: the log looks sorted newest first or not at all; sort it by arrival, or raise \
                 --reorder-window",
                reorder as f64 / 1e9
            )));
        }
        errors.merge(late);
    }
    if reader.format.time == super::format::TimeFormat::RelativeS && first_arrival.is_some_and(|t| t > TEN_YEARS) {
        return Err(LogError {
            file: reader.path.clone(),
            message: format!(
                "the first arrival is {:.0} s after the start, which looks like an epoch time read as seconds \
                 since the start of the log: set `time_format` (epoch-s, epoch-ms, epoch-us) in [replay]",
                first_arrival.unwrap_or(0) as f64 / 1e9
            ),
        });
    }
    Ok(IngestedLog {
        spill: spill.to_path_buf(),
        rows,
        measured: summary.requests,
        read,
        errors,
        vocab,
        span: last_kept.max(0) as Nanos,
        as_logged: summary.row(reader.format.columns.quality.is_some()),
        has_latency,
        format: reader.format.name.clone(),
        quality: reader.format.columns.quality.is_some().then_some(summary.quality),
    })
}

/// The rows of a log from the reader on: put in arrival order within the reorder window (a row too late for
/// it counted, not placed), cut to the time window, summarised "as logged" and written to the spill file.
struct Spiller {
    out: BufWriter<std::fs::File>,
    window: Window,
    measured: Measured,
    reorder: Nanos,
    held: Reorder,
    max_seen: i64,
    /// Arrival of the last row released.
    released: Option<i64>,
    /// The time the kept rows' arrivals count from.
    start: Option<i64>,
    last_kept: i64,
    rows: u64,
    summary: AsLogged,
    has_latency: bool,
    write_err: Option<std::io::Error>,
    /// Rows too late for the reorder window: counted, with the first examples (bounded, unlike the rows).
    late: RowErrors,
    first_arrival: Option<i64>,
}

impl Spiller {
    /// A spiller writing to `out`, whose kept arrivals count from `start` (`None`: from the first row's).
    fn new(
        out: BufWriter<std::fs::File>,
        window: Window,
        measured: Measured,
        reorder: Nanos,
        start: Option<i64>,
    ) -> Spiller {
        Spiller {
            out,
            window,
            measured,
            reorder,
            held: Reorder::default(),
            max_seen: i64::MIN,
            released: None,
            start,
            last_kept: 0,
            rows: 0,
            summary: AsLogged::default(),
            has_latency: false,
            write_err: None,
            late: RowErrors::default(),
            first_arrival: None,
        }
    }

    /// The next row of the file (`kind` locates it in messages).
    fn take(&mut self, row: LogRow, kind: super::read::FileKind) {
        self.first_arrival.get_or_insert(row.arrival);
        if let Some(released) = self.released.filter(|&t| row.arrival < t) {
            let detail =
                format!("arrival {} ns, {} ns before a row already replayed", row.arrival, released - row.arrival);
            self.late.push(kind.locate(row.index), LATE, detail);
            return;
        }
        self.max_seen = self.max_seen.max(row.arrival);
        self.held.push(row);
        while let Some(first) = self.held.first_arrival() {
            if self.max_seen.saturating_sub(first) <= self.reorder as i64 {
                break;
            }
            let Some(r) = self.held.pop() else { break };
            self.released = Some(r.arrival);
            self.emit(r);
        }
    }

    /// Releases the rows still held, at the end of the file.
    fn finish(&mut self) {
        while let Some(r) = self.held.pop() {
            self.emit(r);
        }
    }

    /// Keeps a released row if it falls in the window.
    fn emit(&mut self, r: LogRow) {
        let t0 = *self.start.get_or_insert(r.arrival);
        let rel = r.arrival - t0;
        if rel < self.window.from as i64 || self.window.to.is_some_and(|to| rel >= to as i64) {
            return;
        }
        let rel = (rel - self.window.from as i64).max(0);
        self.last_kept = rel;
        if rel >= self.measured.from as i64 && self.rows >= self.measured.from_request {
            self.summary.push(&r);
        }
        self.rows += 1;
        self.has_latency |= r.latency.is_some();
        if let Err(e) = self.out.write_all(&encode(&r, rel)) {
            self.write_err.get_or_insert(e);
        }
    }
}

/// The spilled form of a row, with its arrival relative to the window's start.
pub fn encode(r: &LogRow, rel: i64) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[0..8].copy_from_slice(&rel.to_le_bytes());
    b[8..16].copy_from_slice(&r.latency.unwrap_or(-1).to_le_bytes());
    b[16..24].copy_from_slice(&r.ttft.unwrap_or(-1).to_le_bytes());
    b[24..28].copy_from_slice(&r.input_tokens.to_le_bytes());
    b[28..32].copy_from_slice(&r.output_tokens.to_le_bytes());
    b[32..36].copy_from_slice(&r.template.to_le_bytes());
    b[36..38].copy_from_slice(&r.class.to_le_bytes());
    b[38..40].copy_from_slice(&r.endpoint.unwrap_or(u16::MAX).to_le_bytes());
    b[40] = match r.outcome {
        Outcome::Unknown => 0,
        Outcome::Ok => 1,
        Outcome::Failed(c) => 2 + c.index() as u8,
    };
    b[41] = r.deferrable as u8 | (r.output_known as u8) << 1 | (r.cache_key.is_some() as u8) << 2;
    b[48..56].copy_from_slice(&r.cache_key.unwrap_or(0).to_le_bytes());
    b
}

/// A spilled row read back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spilled {
    /// Arrival relative to the window's start, nanoseconds.
    pub at: i64,
    /// Logged latency, nanoseconds.
    pub latency: Option<i64>,
    /// Logged TTFT, nanoseconds.
    pub ttft: Option<i64>,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Completion tokens.
    pub output_tokens: u32,
    /// Template index.
    pub template: u32,
    /// Class index.
    pub class: u16,
    /// Logged endpoint index.
    pub endpoint: Option<u16>,
    /// Logged outcome.
    pub outcome: Outcome,
    /// Deferrable.
    pub deferrable: bool,
    /// Announces its output length.
    pub output_known: bool,
    /// Cache key.
    pub cache_key: Option<u64>,
}

/// Decodes a spilled row.
pub fn decode(b: &[u8; RECORD]) -> Spilled {
    let i64_at = |o: usize| i64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap_or_default());
    let opt = |v: i64| (v >= 0).then_some(v);
    let ep = u16_at(38);
    Spilled {
        at: i64_at(0),
        latency: opt(i64_at(8)),
        ttft: opt(i64_at(16)),
        input_tokens: u32_at(24),
        output_tokens: u32_at(28),
        template: u32_at(32),
        class: u16_at(36),
        endpoint: (ep != u16::MAX).then_some(ep),
        outcome: match b[40] {
            0 => Outcome::Unknown,
            1 => Outcome::Ok,
            k => Outcome::Failed(ErrorClass::ALL[((k - 2) as usize).min(3)]),
        },
        deferrable: b[41] & 1 != 0,
        output_known: b[41] & 2 != 0,
        cache_key: (b[41] & 4 != 0).then(|| u64::from_le_bytes(b[48..56].try_into().unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_rows_round_trip() {
        let r = LogRow {
            index: 3,
            arrival: 99,
            latency: Some(1_500_000_000),
            ttft: None,
            input_tokens: 1200,
            output_tokens: 300,
            endpoint: Some(2),
            class: 1,
            template: 7,
            outcome: Outcome::Failed(ErrorClass::RateLimited),
            cost: Some(0.01),
            cache_key: Some(42),
            deferrable: true,
            output_known: false,
            quality: Some(0.5),
        };
        let s = decode(&encode(&r, 12));
        assert_eq!(s.at, 12);
        assert_eq!((s.latency, s.ttft), (Some(1_500_000_000), None));
        assert_eq!((s.input_tokens, s.output_tokens, s.template, s.class), (1200, 300, 7, 1));
        assert_eq!(s.endpoint, Some(2));
        assert_eq!(s.outcome, Outcome::Failed(ErrorClass::RateLimited));
        assert_eq!((s.deferrable, s.output_known, s.cache_key), (true, false, Some(42)));
    }

    fn row(index: u64, arrival: i64) -> LogRow {
        LogRow::arrival_only(index, arrival)
    }

    proptest::proptest! {
        /// Whatever the order rows come in (sorted, nearly sorted, shuffled), interleaving pushes and pops
        /// as ingest does releases each row once, in (arrival, index) order among the rows held.
        #[test]
        fn the_reorder_buffer_releases_rows_in_arrival_order(
            arrivals in proptest::collection::vec(0i64..200, 0..400),
            jitter in proptest::collection::vec(0i64..60, 400),
            pop_every in 1usize..5,
        ) {
            let mut held = Reorder::default();
            let mut out: Vec<(i64, u64)> = Vec::new();
            let mut rows: Vec<(i64, u64)> = Vec::new();
            let mut sorted = arrivals.clone();
            sorted.sort_unstable();
            // Nearly sorted: each arrival moved back by a little, as in a log written at each request's end.
            for (i, a) in sorted.iter().enumerate() {
                let r = row(i as u64, a - jitter[i]);
                rows.push((r.arrival, r.index));
                held.push(r);
                if i % pop_every == 0 {
                    // Pop only what is safe: at least 60 before the newest arrival, like the reorder window.
                    while held.first_arrival().is_some_and(|f| f < a - 60) {
                        let r = held.pop().expect("a row");
                        out.push((r.arrival, r.index));
                    }
                }
            }
            while let Some(r) = held.pop() {
                out.push((r.arrival, r.index));
            }
            rows.sort_unstable();
            proptest::prop_assert_eq!(out, rows);
        }
    }
}
