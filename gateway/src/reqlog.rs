//! The request log: one JSON line per request in routesim's generic schema (see `docs/log-formats.md`), so
//! that `routesim replay` and `routesim fit` read it with no mapping.
//!
//! Rows are written off the request path: a request hands its row to a bounded channel with `try_send` and
//! moves on; a writer thread serialises, appends and rotates. When the channel is full the row is dropped
//! and counted (`routesim_gateway_log_rows_dropped_total`): the log never slows a request down.
//!
//! Columns: the generic ones (`request_id`, `arrival_s` = seconds since the log began, see [`LeftOff`], `class`,
//! `input_tokens`, `output_tokens`, `endpoint`, `ttft_s`, `latency_s`, `status`, `cost_usd`, `cache_key`,
//! `deferrable`, `output_known`) and, read past by routesim, `time_unix_s`, `attempts`, `http_status`,
//! `streaming`, `cache_hit`, `cancelled`, `key_id`, `denied` and `client_error` (a request whose client went away is logged with status
//! `other` and `cancelled = true`, as `other` is the class routesim gives a 499). Never a prompt, a
//! header or a key.
//!
//! Rollout columns (issue 31; `routesim ab` reads them), each omitted when not applicable: `policy` (the
//! policy that routed the request: the served one, or the canary policy), `arm` (`"control"` or
//! `"canary"`, present when `[rollout]` has a canary) and `shadow` (an object: shadow policy name -> the
//! endpoint id it would have chosen first, or `null` when it would have rejected the request; present when
//! `[rollout]` has shadow policies).
//!
//! Cascade columns (issue 30), after all the others and omitted when not applicable, so that a log without a
//! cascade is unchanged and old logs read as before: `quality` (the verifier's score of the answer served, in
//! 0..=1, when a verifier scored it) and `cascade_stage` (the stage whose answer was served, 0 = cheapest).
//! A cascaded request is one row: `attempts` counts every stage tried, `cost_usd` sums them and the verifier
//! calls.
//!
//! Feedback rows (issue 30, `POST /v1/feedback`, see [`crate::feedback`]): `{"request_id", "feedback":
//! true, "quality", "arrival_s", "time_unix_s", "key_id"}`, a client's rating of an earlier request's answer,
//! appended when it arrives. routesim joins them to their request rows by `request_id` (the latest one wins
//! over the judge's score). The log remembers the last [`RECENT_REQUESTS`] rows it accepted
//! ([`RecentRequests`]: id, key id, answered or not, ratings so far), so that feedback can be checked against
//! them.
//!
//! A restarted gateway continues the log it finds ([`LogTail`]): its request ids go on after the largest id
//! of the file's last rows and its `arrival_s` after their latest arrival ([`LeftOff`]), so that ids stay
//! unique within a log (a rating joins one request, not one per run) and arrivals never go back (routesim
//! would count a run's rows as out of order); and it remembers the requests of those rows, so that a client
//! can still rate an answer it got before the restart. The time the gateway was down is not in `arrival_s`;
//! `time_unix_s` has it.

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;

/// One request, as logged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogRow {
    /// The gateway's request id.
    pub request_id: u64,
    /// Arrival, seconds since the log began (monotonic clock; a restart continues after the log's last row).
    pub arrival_s: f64,
    /// Arrival, seconds since the Unix epoch (wall clock), for people.
    pub time_unix_s: f64,
    /// Task class (`default` when the request named none).
    pub class: String,
    /// Prompt tokens (the upstream's usage, else the gateway's estimate).
    pub input_tokens: u32,
    /// Completion tokens.
    pub output_tokens: u32,
    /// Endpoint of the last attempt (empty when none).
    pub endpoint: String,
    /// Time to first token of a streamed success, seconds.
    pub ttft_s: Option<f64>,
    /// End-to-end latency, seconds.
    pub latency_s: f64,
    /// `ok`, `rate_limited`, `server`, `timeout`, `other` or `rejected`.
    pub status: &'static str,
    /// Cost, USD.
    pub cost_usd: f64,
    /// Cache key (decimal), for cacheable requests.
    pub cache_key: Option<String>,
    /// Whether the request was marked deferrable.
    pub deferrable: bool,
    /// Whether the request announced its output length (`max_tokens`).
    pub output_known: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Status code answered to the client.
    pub http_status: u16,
    /// Whether the response was streamed.
    pub streaming: bool,
    /// Whether the response came from the cache.
    pub cache_hit: bool,
    /// Whether the client went away before the end.
    pub cancelled: bool,
    /// The client key's id (never its secret), when keys are required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Why access control denied the request (`missing_key`, `invalid_key`, `revoked`, `expired`,
    /// `not_allowed`, `rpm`, `tpm`, `concurrency`, `daily_budget`, `monthly_budget`); its status is
    /// `rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied: Option<&'static str>,
    /// The error code of the gateway's answer to a client mistake (`invalid_json`, `request_too_large`,
    /// `request_timeout`, `unknown_url`, `method_not_allowed`, ...); its status is `rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_error: Option<&'static str>,
    /// The policy that routed the request (the served one, or the canary's); absent for a request denied
    /// before routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The rollout arm, `control` or `canary`, when `[rollout]` has a canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<&'static str>,
    /// Each shadow policy's would-be first endpoint (`null`: it would reject), when `[rollout]` has shadows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<std::collections::BTreeMap<String, Option<String>>>,
    /// The cascade verifier's score (0..=1) of the answer served, when one ran on it (issue 30); absent
    /// otherwise (no cascade, the last stage's answer, or a verifier that gave no usable score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
    /// The cascade stage (0 = the first, cheapest) whose answer was served, when the policy is a cascade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascade_stage: Option<u32>,
}

/// A client's rating of an earlier request's answer (`POST /v1/feedback`), as logged: its own row, joined
/// to the request's row by `request_id` when the log is read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeedbackRow {
    /// The rated request's id.
    pub request_id: u64,
    /// Always `true`: what tells a feedback row from a request row.
    pub feedback: bool,
    /// The rating: a score in 0..=1 (`true`/`false` are written as 1/0).
    pub quality: f64,
    /// When the feedback arrived, on the request rows' `arrival_s` scale.
    pub arrival_s: f64,
    /// When the feedback arrived, seconds since the Unix epoch.
    pub time_unix_s: f64,
    /// The client key that sent it, when keys are required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// What the writer appends: a request row or a feedback row (each serialised as itself).
/// (Request rows are nearly every entry: boxing them would cost an allocation per request.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Entry {
    Request(LogRow),
    Feedback(FeedbackRow),
}

/// Logged requests remembered for feedback: the last this many rows the log accepted.
pub const RECENT_REQUESTS: usize = 1 << 16;

/// Feedback rows accepted per request (a later one replaces an earlier one when the log is read; the bound
/// keeps one request from growing the log without end).
pub const FEEDBACK_PER_REQUEST: u8 = 8;

/// What the log remembers of a recent request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentRequest {
    /// The client key that made it (`None`: no keys are required).
    pub key_id: Option<String>,
    /// Whether it was answered (status `ok`): only an answer can be rated.
    pub answered: bool,
    /// Feedback rows accepted for it so far.
    pub feedback: u8,
    /// Its place in the order of arrival, so that an id logged again (a client-given id) is evicted once.
    seq: u64,
}

/// The last [`RECENT_REQUESTS`] requests the log accepted, by request id (bounded: the oldest is forgotten
/// first). A restarted gateway reads them back from the log's last rows ([`LogTail`]), with the ratings
/// they got; a row the earlier run did not write (dropped, or lost in a crash) is not among them.
#[derive(Debug, Default)]
pub struct RecentRequests {
    by_id: HashMap<u64, RecentRequest>,
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
    capacity: usize,
}

impl RecentRequests {
    /// Remembers at most `capacity` requests.
    pub fn new(capacity: usize) -> RecentRequests {
        RecentRequests { capacity: capacity.max(1), ..RecentRequests::default() }
    }

    /// Remembers request `id` (a later row with the same id replaces it).
    pub fn insert(&mut self, id: u64, key_id: Option<String>, answered: bool) {
        if self.order.len() == self.capacity
            && let Some((old, seq)) = self.order.pop_front()
            && self.by_id.get(&old).is_some_and(|r| r.seq == seq)
        {
            self.by_id.remove(&old);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((id, seq));
        self.by_id.insert(id, RecentRequest { key_id, answered, feedback: 0, seq });
    }

    /// The request `id`, when it is still remembered.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut RecentRequest> {
        self.by_id.get_mut(&id)
    }

    /// Requests remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The sending side of the request log (cheap to share).
pub struct RequestLog {
    tx: RwLock<Option<SyncSender<Entry>>>,
    dropped: Counter,
    /// The requests logged lately, for feedback; `None` when the log is disabled.
    recent: Option<Mutex<RecentRequests>>,
    /// Where the file left off when it was opened.
    left_off: LeftOff,
}

/// Where an existing log left off: the largest `request_id` and the latest `arrival_s` among its last rows
/// (request and feedback rows alike), read when the gateway opens it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LeftOff {
    /// The largest request id, if the log has a row.
    pub last_id: Option<u64>,
    /// The latest arrival, seconds (0 for a new log): this run's `arrival_s` starts here.
    pub arrival_s: f64,
}

/// What a gateway takes over from the log it continues, read when it opens it ([`LogTail::read`]): where the
/// log left off, and its last [`RECENT_REQUESTS`] requests with the ratings they got, so that a client can
/// rate an answer it got before a restart.
#[derive(Debug)]
pub struct LogTail {
    /// Where the log left off.
    pub left_off: LeftOff,
    /// The requests of the log's last rows, as [`RequestLog::record`] remembered them.
    pub recent: RecentRequests,
}

/// The most of one file's end [`LogTail::read`] reads (a request row is a few hundred bytes, so
/// [`RECENT_REQUESTS`] of them fit several times over): it bounds the time and memory of a start on a log
/// of huge rows.
const TAIL_BYTES_MAX: u64 = 64 << 20;

/// [`LogTail::read`] reads a file's end in blocks of this many bytes, from the last.
const TAIL_BLOCK: u64 = 1 << 20;

/// The columns of a log row that [`LogTail::read`] reads (a request row has a status, a feedback row says
/// so; any other line with an id and an arrival only moves where the log left off).
#[derive(serde::Deserialize)]
struct TailRow {
    request_id: u64,
    arrival_s: f64,
    #[serde(default)]
    feedback: bool,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
}

impl LogTail {
    /// Reads the last `rows` complete rows of the log at `path`: those of the file, preceded by those of its
    /// first rotated file when the file has fewer (a run that logged little after a rotation). A missing
    /// file, or one without a readable row, leaves off nowhere (ids start at 1 and arrivals at 0) and
    /// remembers no request. A row cut short (a crash while writing it) or not in the log's format is
    /// skipped. Each file's last [`TAIL_BYTES_MAX`] bytes at most are read.
    pub fn read(path: &Path, rows: usize) -> std::io::Result<LogTail> {
        let (mut read, whole) = tail_rows(path, rows)?;
        if whole && read.lines < rows {
            let (earlier, _) = tail_rows(&rotated_path(path, 1), rows - read.lines)?;
            read.rows.splice(0..0, earlier.rows);
        }
        let mut tail = LogTail { left_off: LeftOff::default(), recent: RecentRequests::new(rows) };
        for row in read.rows {
            let left_off = &mut tail.left_off;
            left_off.last_id = left_off.last_id.max(Some(row.request_id));
            // Arrivals count from 0: a negative one (not the gateway's) does not move the start back.
            if row.arrival_s.is_finite() && row.arrival_s > left_off.arrival_s {
                left_off.arrival_s = row.arrival_s;
            }
            if row.feedback {
                if let Some(r) = tail.recent.get_mut(row.request_id) {
                    r.feedback = r.feedback.saturating_add(1);
                }
            } else if let Some(status) = row.status {
                tail.recent.insert(row.request_id, row.key_id, status == "ok");
            }
        }
        Ok(tail)
    }
}

/// The rows of a file's last lines (see [`tail_rows`]).
#[derive(Default)]
struct TailRows {
    /// The readable rows, in file order.
    rows: Vec<TailRow>,
    /// The complete lines they were read from, readable or not.
    lines: usize,
}

/// The readable rows among the last `rows` complete lines of the file at `path` (read backwards in
/// [`TAIL_BLOCK`]s, at most [`TAIL_BYTES_MAX`]), and whether those lines reach back to the file's start (a
/// missing file: none, from its start).
fn tail_rows(path: &Path, rows: usize) -> std::io::Result<(TailRows, bool)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((TailRows::default(), true)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let floor = len.saturating_sub(TAIL_BYTES_MAX);
    let (mut pos, mut blocks, mut newlines) = (len, Vec::new(), 0usize);
    // One newline more than the rows wanted: the line before them may have been cut by the block's start.
    while pos > floor && newlines <= rows {
        let step = TAIL_BLOCK.min(pos - floor);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let mut block = vec![0; step as usize];
        file.read_exact(&mut block)?;
        newlines += block.iter().filter(|&&b| b == b'\n').count();
        blocks.push(block);
    }
    blocks.reverse();
    let text = blocks.concat();
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // The last piece follows the last newline: empty, or a row cut short. The first may be a row's end.
    lines.pop();
    if pos > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    // The lines reach back to the file's start when it was read from there and none is left out.
    let whole = pos == 0 && lines.len() <= rows;
    let lines = &lines[lines.len().saturating_sub(rows)..];
    let read = lines.iter().filter_map(|l| serde_json::from_slice::<TailRow>(l).ok()).collect();
    Ok((TailRows { rows: read, lines: lines.len() }, whole))
}

/// The writer thread; join it after the last [`RequestLog`] is dropped to flush the file.
pub struct LogWriter {
    handle: JoinHandle<()>,
}

impl LogWriter {
    /// Waits for the writer to flush and exit (after every sender is gone).
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

impl RequestLog {
    /// A log that records nothing.
    pub fn disabled() -> RequestLog {
        RequestLog { tx: RwLock::new(None), dropped: Counter::default(), recent: None, left_off: LeftOff::default() }
    }

    /// Opens (appends to) `path`, rotating past `max_bytes` and keeping `keep` old files, with a channel of
    /// `capacity` rows. `written` and `dropped` count rows. The log's end is read first ([`LogTail`]): where
    /// it left off ([`RequestLog::left_off`]) and its last requests, which feedback may rate.
    pub fn open(
        path: &Path,
        max_bytes: u64,
        keep: u32,
        capacity: usize,
        written: Counter,
        dropped: Counter,
    ) -> std::io::Result<(RequestLog, LogWriter)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tail = LogTail::read(path, RECENT_REQUESTS)?;
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = sync_channel(capacity);
        let mut w = Writer {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
            size,
            max_bytes,
            keep,
            written,
        };
        let handle = std::thread::Builder::new().name("request-log".into()).spawn(move || w.run(rx))?;
        let (recent, left_off) = (Some(Mutex::new(tail.recent)), tail.left_off);
        Ok((RequestLog { tx: RwLock::new(Some(tx)), dropped, recent, left_off }, LogWriter { handle }))
    }

    /// Where the file left off when the gateway opened it (nowhere for a new or disabled log).
    pub fn left_off(&self) -> LeftOff {
        self.left_off
    }

    /// The `arrival_s` to log for an event `ns` nanoseconds after the gateway started: after where the file
    /// left off.
    pub fn arrival_s(&self, ns: u64) -> f64 {
        self.left_off.arrival_s + ns as f64 / 1e9
    }

    /// Hands a row to the writer without waiting; a full channel drops it and counts the drop. A row
    /// handed over is remembered for feedback ([`RecentRequests`]).
    pub fn record(&self, row: LogRow) {
        let (id, key_id, answered) = (row.request_id, row.key_id.clone(), row.status == "ok");
        if self.send(Entry::Request(row))
            && let Some(recent) = &self.recent
        {
            recent.lock().unwrap_or_else(|p| p.into_inner()).insert(id, key_id, answered);
        }
    }

    /// Hands a feedback row to the writer without waiting; false when it was dropped (a full channel,
    /// counted, or a closed log).
    pub fn record_feedback(&self, row: FeedbackRow) -> bool {
        self.send(Entry::Feedback(row))
    }

    /// The requests logged lately, or `None` when the log is disabled (feedback has nowhere to go).
    pub fn recent(&self) -> Option<&Mutex<RecentRequests>> {
        self.recent.as_ref()
    }

    fn send(&self, entry: Entry) -> bool {
        let guard = self.tx.read().unwrap_or_else(|p| p.into_inner());
        match &*guard {
            Some(tx) => match tx.try_send(entry) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.dropped.inc();
                    false
                }
            },
            None => false,
        }
    }

    /// Closes the channel: the writer writes what it holds, flushes and exits.
    pub fn close(&self) {
        *self.tx.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
    written: Counter,
}

/// `dir/name.jsonl` -> `dir/name.N.jsonl`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("requests");
    path.with_file_name(format!("{stem}.{n}.jsonl"))
}

impl Writer {
    fn run(&mut self, rx: Receiver<Entry>) {
        let mut line = Vec::with_capacity(512);
        // Block for a row, then take whatever else is queued before flushing once.
        while let Ok(row) = rx.recv() {
            self.write(&row, &mut line);
            while let Ok(row) = rx.try_recv() {
                self.write(&row, &mut line);
            }
            if let Err(e) = self.out.flush() {
                tracing::error!("request log: cannot write {}: {e}", self.path.display());
            }
        }
        let _ = self.out.flush();
    }

    fn write(&mut self, row: &Entry, line: &mut Vec<u8>) {
        line.clear();
        if serde_json::to_writer(&mut *line, row).is_err() {
            return;
        }
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate();
        }
        match self.out.write_all(line) {
            Ok(()) => {
                self.size += line.len() as u64;
                self.written.inc();
            }
            Err(e) => tracing::error!("request log: cannot write {}: {e}", self.path.display()),
        }
    }

    fn rotate(&mut self) {
        let _ = self.out.flush();
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(rotated_path(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1));
            }
            let _ = std::fs::rename(&self.path, rotated_path(&self.path, 1));
        }
        match OpenOptions::new().create(true).append(true).open(&self.path) {
            Ok(f) => {
                self.out = BufWriter::with_capacity(1 << 16, f);
                self.size = 0;
            }
            Err(e) => tracing::error!("request log: cannot reopen {}: {e}", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64) -> LogRow {
        LogRow {
            request_id: id,
            arrival_s: id as f64,
            time_unix_s: 0.0,
            class: "default".into(),
            input_tokens: 1,
            output_tokens: 2,
            endpoint: "a".into(),
            ttft_s: None,
            latency_s: 0.5,
            status: "ok",
            cost_usd: 0.0,
            cache_key: None,
            deferrable: false,
            output_known: false,
            attempts: 1,
            http_status: 200,
            streaming: false,
            cache_hit: false,
            cancelled: false,
            key_id: None,
            denied: None,
            client_error: None,
            policy: None,
            arm: None,
            shadow: None,
            quality: None,
            cascade_stage: None,
        }
    }

    #[test]
    fn the_cascade_columns_trail_and_are_absent_without_a_cascade() {
        let plain = serde_json::to_string(&row(1)).unwrap();
        assert!(!plain.contains("quality") && !plain.contains("cascade_stage"), "{plain}");
        let r = LogRow { quality: Some(0.75), cascade_stage: Some(0), ..row(1) };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.ends_with(r#","quality":0.75,"cascade_stage":0}"#), "{text}");
        assert_eq!(&text[..plain.len() - 1], &plain[..plain.len() - 1], "the older columns are unchanged, in order");
    }

    #[test]
    fn rotates_by_size_and_keeps_every_row() {
        let dir = std::env::temp_dir().join(format!("gw-reqlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("requests.jsonl");
        let (written, dropped) = (Counter::default(), Counter::default());
        let (log, w) = RequestLog::open(&path, 2_000, 40, 1_000, written.clone(), dropped.clone()).unwrap();
        for i in 0..100 {
            log.record(row(i));
        }
        log.close();
        w.join();
        let mut ids = Vec::new();
        for f in [path.clone()].into_iter().chain((1..=40).map(|n| rotated_path(&path, n))) {
            if let Ok(text) = std::fs::read_to_string(&f) {
                assert!(text.len() <= 2_000, "{} is {} bytes", f.display(), text.len());
                for l in text.lines() {
                    ids.push(serde_json::from_str::<serde_json::Value>(l).unwrap()["request_id"].as_u64().unwrap());
                }
            }
        }
        ids.sort();
        assert_eq!(ids, (0..100).collect::<Vec<_>>());
        assert_eq!(written.get(), 100);
        assert_eq!(dropped.get(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Where the log at `path` left off, as a gateway opening it reads it.
    fn left_off(path: &Path) -> LeftOff {
        LogTail::read(path, RECENT_REQUESTS).unwrap().left_off
    }

    /// A new, empty directory named after `name` and this process, and a log path in it.
    fn fresh_log(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("requests.jsonl");
        (dir, path)
    }

    #[test]
    fn a_log_is_continued_where_it_left_off() {
        let (dir, path) = fresh_log("gw-reqlog-left-off");
        assert_eq!(left_off(&path), LeftOff::default(), "no file: ids from 1, arrivals from 0");
        // A client-given id above the later ones, a feedback row, and a row cut short by a crash.
        let text = [
            r#"{"request_id":1,"arrival_s":0.5,"class":"default"}"#,
            r#"{"request_id":90,"arrival_s":1.25,"class":"default"}"#,
            r#"{"request_id":2,"arrival_s":2.0,"class":"default"}"#,
            r#"{"request_id":1,"feedback":true,"quality":1.0,"arrival_s":3.5,"time_unix_s":9.0}"#,
            r#"{"request_id":500,"arrival_s":99"#,
        ]
        .join("\n");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(left_off(&path), LeftOff { last_id: Some(90), arrival_s: 3.5 });
        // A run that logged nothing after a rotation: the rotated file tells.
        std::fs::rename(&path, rotated_path(&path, 1)).unwrap();
        std::fs::write(&path, "").unwrap();
        assert_eq!(left_off(&path), LeftOff { last_id: Some(90), arrival_s: 3.5 });
        // Opening the log continues it: arrivals after 3.5 s.
        let (log, w) = RequestLog::open(&path, 1 << 20, 2, 16, Counter::default(), Counter::default()).unwrap();
        assert_eq!(log.left_off().last_id, Some(90));
        assert_eq!(log.arrival_s(1_500_000_000), 5.0);
        log.close();
        w.join();
        // A file of other lines leaves off nowhere.
        std::fs::write(&path, "not json\n{\"id\": 3}\n").unwrap();
        std::fs::remove_file(rotated_path(&path, 1)).unwrap();
        assert_eq!(left_off(&path), LeftOff::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reopened_log_remembers_its_last_requests_and_their_ratings() {
        let (dir, path) = fresh_log("gw-reqlog-tail");
        let request = |id: u64, status: &str, key: &str| {
            format!(r#"{{"request_id":{id},"arrival_s":{id}.0,"status":"{status}","key_id":"{key}","cost_usd":0.0}}"#)
        };
        let rating = |id: u64| format!(r#"{{"request_id":{id},"feedback":true,"quality":1.0,"arrival_s":9.0}}"#);
        let lines = [request(1, "ok", "a"), request(2, "server", "b"), rating(1), request(3, "ok", "a"), rating(1)];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let mut tail = LogTail::read(&path, 100).unwrap();
        assert_eq!(tail.left_off, LeftOff { last_id: Some(3), arrival_s: 9.0 });
        assert_eq!(tail.recent.len(), 3);
        let one = tail.recent.get_mut(1).unwrap();
        assert_eq!((one.key_id.as_deref(), one.answered, one.feedback), (Some("a"), true, 2), "two ratings of 1");
        let two = tail.recent.get_mut(2).unwrap();
        assert_eq!((two.key_id.as_deref(), two.answered, two.feedback), (Some("b"), false, 0), "2 failed");
        // Only the last rows: the ratings of a request read before the window are not counted against it.
        let mut last = LogTail::read(&path, 2).unwrap();
        assert_eq!(last.recent.len(), 1);
        assert_eq!(last.recent.get_mut(3).map(|r| r.feedback), Some(0));
        // After a rotation the rotated file's last rows come first.
        std::fs::rename(&path, rotated_path(&path, 1)).unwrap();
        std::fs::write(&path, request(4, "ok", "c") + "\n").unwrap();
        let mut rotated = LogTail::read(&path, 3).unwrap();
        assert_eq!(rotated.left_off.last_id, Some(4));
        let remembered: Vec<u64> = (1..=4).filter(|&id| rotated.recent.get_mut(id).is_some()).collect();
        assert_eq!(
            remembered,
            vec![3, 4],
            "the last three lines: request 3, a rating of 1 (forgotten with it), request 4"
        );
        // A long log is read back in blocks: exactly its last rows, whichever block they start in.
        let long: String = (1..=6_000u64).map(|id| request(id, "ok", &"k".repeat(200)) + "\n").collect();
        assert!(long.len() as u64 > TAIL_BLOCK, "more than one block");
        std::fs::write(&path, &long).unwrap();
        for rows in [1, 10, 4_321, 6_000, 7_000] {
            let mut tail = LogTail::read(&path, rows).unwrap();
            let kept = rows.min(6_000) as u64;
            assert_eq!(tail.recent.len() as u64, kept, "{rows} rows");
            let first = 6_001 - kept;
            assert!(tail.recent.get_mut(first).is_some() && tail.recent.get_mut(first - 1).is_none(), "{rows} rows");
        }
        // Opening the log takes them over: a rating can follow a restart.
        let (log, w) = RequestLog::open(&path, 1 << 30, 2, 16, Counter::default(), Counter::default()).unwrap();
        assert!(log.recent().unwrap().lock().unwrap().get_mut(6_000).is_some_and(|r| r.answered));
        assert_eq!(log.left_off().last_id, Some(6_000));
        log.close();
        w.join();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let (tx, _rx) = sync_channel(2);
        let log = RequestLog {
            tx: RwLock::new(Some(tx)),
            dropped: Counter::default(),
            recent: None,
            left_off: LeftOff::default(),
        };
        for i in 0..5 {
            log.record(row(i));
        }
        assert_eq!(log.dropped.get(), 3);
    }

    #[test]
    fn a_feedback_row_is_its_own_shape_and_a_request_row_is_unchanged() {
        let fb = FeedbackRow {
            request_id: 7,
            feedback: true,
            quality: 1.0,
            arrival_s: 2.5,
            time_unix_s: 100.0,
            key_id: Some("team".into()),
        };
        let text = serde_json::to_string(&Entry::Feedback(fb)).unwrap();
        assert_eq!(
            text,
            r#"{"request_id":7,"feedback":true,"quality":1.0,"arrival_s":2.5,"time_unix_s":100.0,"key_id":"team"}"#
        );
        let plain = serde_json::to_string(&row(1)).unwrap();
        assert_eq!(serde_json::to_string(&Entry::Request(row(1))).unwrap(), plain, "the entry adds no tag");
    }

    #[test]
    fn recent_requests_are_bounded_and_forget_the_oldest_first() {
        let mut r = RecentRequests::new(3);
        for id in 1..=3 {
            r.insert(id, None, true);
        }
        // Id 2 logged again (a client-given id): it is not evicted with its older entry.
        r.insert(2, Some("k".into()), false);
        assert!(r.get_mut(1).is_none(), "the oldest is forgotten");
        r.insert(4, None, true);
        assert_eq!(r.len(), 3);
        let two = r.get_mut(2).unwrap();
        assert_eq!((two.key_id.as_deref(), two.answered), (Some("k"), false), "the latest row of id 2");
        assert!(r.get_mut(3).is_some() && r.get_mut(4).is_some());
        r.insert(5, None, true);
        r.insert(6, None, true);
        assert!(r.get_mut(2).is_none() && r.get_mut(3).is_none() && r.len() == 3);
    }
}
