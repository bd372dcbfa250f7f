//! Reading a log (CSV, JSONL/NDJSON or Parquet) row by row, so that memory stays bounded whatever the
//! file's size, and turning each row into a [`LogRow`]: CSV with the `csv` crate (which hands over rows of
//! any length, so a short or long row is caught), JSONL a line at a time with serde_json, Parquet a slice
//! of row groups at a time with polars.
//!
//! Every mapped column is read as text and parsed here, so that a malformed value is caught with its row,
//! counted by reason and skipped (or, with `strict`, reported as an error), never silently dropped.

use super::csv_split::{Records, Splitter};
use super::format::{LogFormat, TimeFormat, parse_time};
use super::number::{parse_f64, short_integer};
use polars::prelude::*;
use router_core::ErrorClass;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The file's encoding, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `.csv`
    Csv,
    /// `.jsonl`, `.ndjson`, `.json` (one object per line)
    Jsonl,
    /// `.parquet`
    Parquet,
}

impl FileKind {
    /// From the file name's extension.
    pub fn of(path: &Path) -> Option<FileKind> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileKind::Csv),
            "jsonl" | "ndjson" | "json" => Some(FileKind::Jsonl),
            "parquet" | "pq" => Some(FileKind::Parquet),
            _ => None,
        }
    }

    /// How a row is located in messages: `line N` (CSV counts the header) or `row N` (Parquet).
    pub fn locate(self, index: u64) -> String {
        match self {
            FileKind::Csv => format!("line {}", index + 2),
            FileKind::Jsonl => format!("line {}", index + 1),
            FileKind::Parquet => format!("row {}", index + 1),
        }
    }
}

/// An error about a log file: it names the file and says what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LogError {
    /// The log file.
    pub file: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl LogError {
    fn new(file: &Path, message: impl Into<String>) -> Self {
        LogError { file: file.to_path_buf(), message: message.into() }
    }
}

/// The outcome a row logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded.
    Ok,
    /// Failed with this class.
    Failed(ErrorClass),
    /// Not logged.
    Unknown,
}

/// One request of a log, parsed. Names (endpoint, class, metadata) are interned in [`Vocabulary`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogRow {
    /// Index of the row in the file, from 0.
    pub index: u64,
    /// Arrival in nanoseconds (epoch or relative, per the format).
    pub arrival: i64,
    /// Logged end-to-end latency, nanoseconds.
    pub latency: Option<i64>,
    /// Logged time to first token, nanoseconds.
    pub ttft: Option<i64>,
    /// Prompt tokens (0 when not logged).
    pub input_tokens: u32,
    /// Completion tokens (0 when not logged).
    pub output_tokens: u32,
    /// Endpoint that served it (index in [`Vocabulary::endpoints`]).
    pub endpoint: Option<u16>,
    /// Task class (index in [`Vocabulary::classes`]).
    pub class: u16,
    /// Class and metadata combination (index in [`Vocabulary::templates`]).
    pub template: u32,
    /// Outcome.
    pub outcome: Outcome,
    /// Cost in US dollars.
    pub cost: Option<f64>,
    /// Exact-match cache key.
    pub cache_key: Option<u64>,
    /// May be deferred to a batch endpoint.
    pub deferrable: bool,
    /// Announces its output length.
    pub output_known: bool,
    /// Logged answer quality: 0/1 or a score in `0..=1` (`None` when the log has no `quality` column or the
    /// row leaves it empty).
    pub quality: Option<f64>,
}

impl LogRow {
    /// Row `index` arriving at `arrival` and nothing else known: no tokens, latency, endpoint, cost or
    /// quality, class 0, outcome unknown (the base that a row built by hand fills in).
    pub fn arrival_only(index: u64, arrival: i64) -> LogRow {
        LogRow {
            index,
            arrival,
            latency: None,
            ttft: None,
            input_tokens: 0,
            output_tokens: 0,
            endpoint: None,
            class: 0,
            template: 0,
            outcome: Outcome::Unknown,
            cost: None,
            cache_key: None,
            deferrable: false,
            output_known: false,
            quality: None,
        }
    }
}

/// The distinct names seen in a log.
#[derive(Clone, Debug, Default)]
pub struct Vocabulary {
    /// Endpoint names.
    pub endpoints: Vec<String>,
    /// Class names (`default` for rows without a class).
    pub classes: Vec<String>,
    /// `(class, metadata)` combinations.
    pub templates: Vec<(u16, Vec<(String, String)>)>,
    endpoint_ix: HashMap<String, u16>,
    class_ix: HashMap<String, u16>,
    template_ix: HashMap<(u16, Vec<(String, String)>), u32>,
    /// Per class, the index of its template without metadata, once seen.
    bare_templates: Vec<Option<u32>>,
}

/// Names a vocabulary looks up by comparing them in turn, before it hashes: a log names a handful of endpoints
/// and classes, and comparing a few short strings costs less than hashing one.
const SCANNED: usize = 16;

/// The index of `name` among the first [`SCANNED`] of `names`, if there.
#[inline]
fn scan(names: &[String], name: &str) -> Option<u16> {
    names.iter().take(SCANNED).position(|n| n == name).map(|i| i as u16)
}

impl Vocabulary {
    fn endpoint(&mut self, name: &str) -> Option<u16> {
        if let Some(i) = scan(&self.endpoints, name) {
            return Some(i);
        }
        if let Some(&i) = self.endpoint_ix.get(name) {
            return Some(i);
        }
        let i = u16::try_from(self.endpoints.len()).ok()?;
        self.endpoints.push(name.to_string());
        self.endpoint_ix.insert(name.to_string(), i);
        Some(i)
    }

    fn class(&mut self, name: &str) -> Option<u16> {
        if let Some(i) = scan(&self.classes, name) {
            return Some(i);
        }
        if let Some(&i) = self.class_ix.get(name) {
            return Some(i);
        }
        let i = u16::try_from(self.classes.len()).ok()?;
        self.classes.push(name.to_string());
        self.class_ix.insert(name.to_string(), i);
        Some(i)
    }

    fn template(&mut self, class: u16, meta: Vec<(String, String)>) -> u32 {
        // A row without metadata (most logs have none) finds its class's template without hashing.
        if meta.is_empty()
            && let Some(Some(i)) = self.bare_templates.get(class as usize)
        {
            return *i;
        }
        let key = (class, meta);
        if let Some(&i) = self.template_ix.get(&key) {
            return i;
        }
        let i = self.templates.len() as u32;
        if key.1.is_empty() {
            let c = key.0 as usize;
            if self.bare_templates.len() <= c {
                self.bare_templates.resize(c + 1, None);
            }
            self.bare_templates[c] = Some(i);
        }
        self.templates.push(key.clone());
        self.template_ix.insert(key, i);
        i
    }
}

/// Malformed rows: counts by reason and the first few examples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowErrors {
    /// Skipped rows per reason.
    pub counts: BTreeMap<&'static str, u64>,
    /// The first examples: (location, reason, detail).
    pub examples: Vec<(String, &'static str, String)>,
}

/// Rows read at once from a Parquet log.
const PARQUET_SLICE: usize = 1 << 18;

/// Examples kept per log.
const EXAMPLES: usize = 5;

impl RowErrors {
    /// Rows skipped in total.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Records a skipped row.
    pub fn push(&mut self, location: String, reason: &'static str, detail: String) {
        *self.counts.entry(reason).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push((location, reason, detail));
        }
    }

    /// Adds `other`'s counts and as many of its examples as there is room for.
    pub fn merge(&mut self, other: RowErrors) {
        for (reason, n) in other.counts {
            *self.counts.entry(reason).or_default() += n;
        }
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }

    /// A multi-line report: counts by reason, then the examples.
    pub fn render(&self, file: &Path, rows: u64) -> String {
        let mut out = format!("{}: {} of {rows} rows skipped as malformed\n", file.display(), self.total());
        for (reason, n) in &self.counts {
            out.push_str(&format!("  {n:>10}  {reason}\n"));
        }
        for (loc, reason, detail) in &self.examples {
            out.push_str(&format!("  e.g. {loc}: {reason}: {detail}\n"));
        }
        out
    }
}

/// A log file opened with its format, ready to stream.
#[derive(Clone, Debug)]
pub struct LogReader {
    /// The file.
    pub path: PathBuf,
    /// Its encoding.
    pub kind: FileKind,
    /// The format, restricted to the columns the file has.
    pub format: LogFormat,
    /// The file's columns.
    pub columns: Vec<String>,
    /// A JSONL log's client feedback rows, joined to their requests as the rows are read.
    feedback: super::feedback::FeedbackIndex,
}

/// Objects read from the start of a JSONL log to learn its fields (as polars infers a schema).
const JSONL_SCHEMA_ROWS: usize = 100;

/// The columns of a log: the CSV header, the keys of the first JSONL objects (in first-seen order), or the
/// Parquet schema.
fn read_columns(path: &Path, kind: FileKind) -> Result<Vec<String>, String> {
    match kind {
        FileKind::Csv => {
            let mut reader = csv_reader(path)?;
            let header = reader.headers().map_err(|e| e.to_string())?;
            Ok(header.iter().map(|c| c.trim().to_string()).collect())
        }
        FileKind::Jsonl => {
            let file = BufReader::new(File::open(path).map_err(|e| e.to_string())?);
            let mut columns: Vec<String> = Vec::new();
            let mut seen = 0;
            for line in file.lines() {
                let line = line.map_err(|e| e.to_string())?;
                if line.trim().is_empty() {
                    continue;
                }
                // A malformed first line is reported with its row when the log is read.
                if let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(&line) {
                    for k in obj.keys() {
                        if !columns.contains(k) {
                            columns.push(k.clone());
                        }
                    }
                }
                seen += 1;
                if seen == JSONL_SCHEMA_ROWS {
                    break;
                }
            }
            Ok(columns)
        }
        FileKind::Parquet => {
            let file = File::open(path).map_err(|e| e.to_string())?;
            let schema = ParquetReader::new(file).schema().map_err(|e| e.to_string())?;
            Ok(schema.iter_names().map(|n| n.to_string()).collect())
        }
    }
}

/// A CSV reader that hands over rows of any length, so that short and long rows are caught, not padded.
fn csv_reader(path: &Path) -> Result<csv::Reader<File>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    Ok(csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file))
}

/// The text form of a JSON value, as a CSV cell would hold it; `null` is not logged.
fn json_text(v: &serde_json::Value) -> Option<Cow<'_, str>> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

impl LogReader {
    /// Opens `path`; `format` is a built-in format name, or `None` to use the scenario's `mapping` when the
    /// file has its arrival column, else detect the format from the columns.
    pub fn open(path: &Path, format: Option<&str>, mapping: Option<LogFormat>) -> Result<LogReader, LogError> {
        let kind = FileKind::of(path).ok_or_else(|| {
            LogError::new(path, "unknown log encoding: expected a .csv, .jsonl/.ndjson or .parquet file")
        })?;
        if !path.exists() {
            return Err(LogError::new(path, "no such file"));
        }
        let mut columns =
            read_columns(path, kind).map_err(|e| LogError::new(path, format!("cannot read the log: {e}")))?;
        // A gateway log's feedback rows, wherever they are, give it a `quality` column.
        let feedback = match kind {
            FileKind::Jsonl => super::feedback::FeedbackIndex::scan(path)
                .map_err(|e| LogError::new(path, format!("cannot read the log: {e}")))?,
            _ => super::feedback::FeedbackIndex::default(),
        };
        if feedback.any() && !columns.iter().any(|c| c == "quality") {
            columns.push("quality".into());
        }
        let mut fmt = match (format, mapping) {
            (Some(name), _) => LogFormat::named(name).ok_or_else(|| {
                let names: Vec<String> = LogFormat::builtin().into_iter().map(|f| f.name).collect();
                LogError::new(path, format!("unknown log format `{name}`: expected one of {}", names.join(", ")))
            })?,
            (None, Some(m)) if columns.contains(&m.columns.arrival) => m,
            (None, _) => LogFormat::detect(&columns).ok_or_else(|| {
                LogError::new(
                    path,
                    format!(
                        "cannot tell the log's format from its columns ({}): pass --format (litellm, portkey, \
                         azure, burstgpt, generic) or map the columns in the scenario's [replay.columns]",
                        columns.join(", ")
                    ),
                )
            })?,
        };
        let missing = fmt.missing(&columns);
        // (A scenario's own mapping needs every column it names; a built-in format reads what the log has.)
        if !missing.is_empty() {
            return Err(LogError::new(
                path,
                format!(
                    "the `{}` format needs the column(s) {} but the file has: {}",
                    fmt.name,
                    missing.join(", "),
                    columns.join(", ")
                ),
            ));
        }
        fmt.columns = fmt.columns.restricted_to(&columns);
        Ok(LogReader { path: path.to_path_buf(), kind, format: fmt, columns, feedback })
    }

    /// Streams every row to `sink` in file order. Malformed rows are counted in the returned errors and
    /// skipped; with `strict` the first one is an error. Returns the rows read (good and bad).
    ///
    /// A row is malformed when a value does not parse, and also when it is incomplete: a CSV row with fewer
    /// or more fields than the header (the trace of an interrupted writer), a JSONL line that is not a JSON
    /// object, or a JSONL object without one of the log's mapped fields (write `null` for "not logged"),
    /// except `quality`, which the gateway writes only for the answers it scored (absent = not scored).
    ///
    /// A JSONL log's client feedback rows are not rows: each request row takes the latest rating of its
    /// `request_id` as its quality, over a logged judge score, and a rating no request row has is malformed
    /// (see [`super::feedback`]).
    pub fn for_each(
        &self,
        strict: bool,
        vocab: &mut Vocabulary,
        errors: &mut RowErrors,
        mut sink: impl FnMut(LogRow),
    ) -> Result<u64, LogError> {
        let mapped = self.format.columns.mapped();
        let parser = RowParser::new(&self.format, &mapped);
        let mut index = 0u64;
        // Every row, good or bad, passes through here: `Err` carries the row's location, reason and detail.
        let mut take = |index: &mut u64, row: Result<LogRow, (String, RowError)>| -> Result<(), LogError> {
            *index += 1;
            match row {
                Ok(row) => sink(row),
                Err((loc, (reason, detail))) => {
                    if strict {
                        return Err(LogError::new(
                            &self.path,
                            format!("{loc}: {reason}: {detail} (--strict stops at the first malformed row)"),
                        ));
                    }
                    errors.push(loc, reason, detail);
                }
            }
            Ok(())
        };
        let io_err = |e: &dyn std::fmt::Display| LogError::new(&self.path, format!("cannot read the log: {e}"));
        match self.kind {
            FileKind::Csv => {
                let mut reader = csv_reader(&self.path).map_err(|e| io_err(&e))?;
                let header: Vec<String> =
                    reader.headers().map_err(|e| io_err(&e))?.iter().map(|c| c.trim().to_string()).collect();
                let at: Vec<usize> = mapped
                    .iter()
                    .map(|(_, c)| header.iter().position(|h| h == c).ok_or_else(|| io_err(&format!("no column `{c}`"))))
                    .collect::<Result<_, _>>()?;
                // The rows after the header: split by `csv_split` (the `csv` crate's records and lines).
                let after_header = reader.position().clone();
                drop(reader);
                let mut splitter =
                    Splitter::open(&self.path, after_header.byte(), after_header.line()).map_err(|e| io_err(&e))?;
                // A second thread splits the file into records while this one parses them (the two halves of
                // reading cost about the same): batches of records go over a bounded channel, in file order, and
                // come back to be refilled, so memory stays bounded and nothing is allocated per row.
                let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Records>(2);
                let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Records>();
                std::thread::scope(|scope| -> Result<(), LogError> {
                    scope.spawn(move || {
                        loop {
                            let mut batch = empty_rx.try_recv().unwrap_or_default();
                            let more = splitter.fill(&mut batch, CSV_BATCH);
                            if full_tx.send(batch).is_err() || !more {
                                return;
                            }
                        }
                    });
                    for batch in full_rx {
                        // The batch checked as UTF-8 at once: a field of a valid batch is valid where it starts
                        // and ends on a character; any other is checked alone.
                        let text = std::str::from_utf8(batch.bytes()).ok();
                        let mut cells: Vec<Option<&str>> = Vec::with_capacity(at.len());
                        for i in 0..batch.len() {
                            let record = batch.get(i);
                            let loc = || format!("line {}", record.line);
                            let row = if record.len() != header.len() {
                                let reason = if record.len() < header.len() { "short row" } else { "long row" };
                                Err((
                                    loc(),
                                    (reason, format!("{} fields, the header has {}", record.len(), header.len())),
                                ))
                            } else {
                                cells.clear();
                                let mut bad = None;
                                for &c in &at {
                                    let cell = text.and_then(|t| t.get(record.span(c)));
                                    match cell.map_or_else(|| std::str::from_utf8(record.field(c)), Ok) {
                                        Ok(v) => cells.push(Some(v)),
                                        Err(_) => {
                                            bad = Some((loc(), ("invalid UTF-8", format!("column {}", header[c]))));
                                            break;
                                        }
                                    }
                                }
                                match bad {
                                    Some(b) => Err(b),
                                    None => parser.parse(&cells, index, vocab).map_err(|e| (loc(), e)),
                                }
                            };
                            take(&mut index, row)?;
                        }
                        if let Some(e) = &batch.error {
                            return Err(io_err(e));
                        }
                        drop(cells);
                        let _ = empty_tx.send(batch);
                    }
                    Ok(())
                })?;
            }
            FileKind::Jsonl => {
                let mut file = BufReader::new(File::open(&self.path).map_err(|e| io_err(&e))?);
                let mut text = String::new();
                let mut line = 0u64;
                let mut feedback = self.feedback.any().then(|| self.feedback.clone());
                loop {
                    text.clear();
                    if file.read_line(&mut text).map_err(|e| io_err(&e))? == 0 {
                        break;
                    }
                    line += 1;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let loc = || format!("line {line}");
                    let row = match serde_json::from_str::<serde_json::Value>(&text) {
                        Err(e) => Err((loc(), ("invalid JSON", e.to_string()))),
                        Ok(serde_json::Value::Object(obj))
                            if feedback.is_some() && super::feedback::is_feedback(&obj) =>
                        {
                            // Read at open; only a malformed one is reported here, in place.
                            match super::feedback::parse_row(&obj) {
                                Ok(_) => continue,
                                Err(e) => Err((loc(), e)),
                            }
                        }
                        Ok(serde_json::Value::Object(obj)) => {
                            let mut cells: Vec<Option<Cow<str>>> = Vec::with_capacity(mapped.len());
                            let mut absent = None;
                            for (field, column) in &mapped {
                                match obj.get(column) {
                                    Some(v) => cells.push(json_text(v)),
                                    // The gateway writes `quality` only for the answers it scored.
                                    None if field == Field::Quality.name() => cells.push(None),
                                    None => {
                                        absent = Some((field, column));
                                        break;
                                    }
                                }
                            }
                            match absent {
                                Some((field, column)) => Err((
                                    loc(),
                                    ("missing field", format!("no `{column}` ({field}); write null when not logged")),
                                )),
                                None => {
                                    let refs: Vec<Option<&str>> = cells.iter().map(|c| c.as_deref()).collect();
                                    let row = parser.parse(&refs, index, vocab).map_err(|e| (loc(), e));
                                    match feedback.as_mut().map(|f| f.rating_of(&obj)) {
                                        Some(Some(q)) => row.map(|r| LogRow { quality: Some(q), ..r }),
                                        _ => row,
                                    }
                                }
                            }
                        }
                        Ok(other) => Err((loc(), ("not a JSON object", truncate(&other.to_string(), 60)))),
                    };
                    take(&mut index, row)?;
                }
                for (line, id) in feedback.map(|f| f.unmatched()).unwrap_or_default() {
                    let detail = format!("request_id {id}: no request row of this log has it");
                    take(&mut index, Err((format!("line {line}"), (super::feedback::UNKNOWN_REQUEST, detail))))?;
                }
            }
            FileKind::Parquet => {
                // One slice of row groups at a time, which bounds memory by the slice.
                let columns: Vec<String> = mapped.iter().map(|(_, c)| c.clone()).collect();
                let open = || File::open(&self.path).map_err(|e| io_err(&e));
                let rows = ParquetReader::new(open()?).num_rows().map_err(|e| io_err(&e))?;
                let mut offset = 0usize;
                while offset < rows {
                    let df = ParquetReader::new(open()?)
                        .with_columns(Some(columns.clone()))
                        .with_slice(Some((offset, PARQUET_SLICE)))
                        .finish()
                        .map_err(|e| io_err(&e))?;
                    let text: Vec<Column> = columns
                        .iter()
                        .map(|c| df.column(c).and_then(|s| s.cast(&DataType::String)))
                        .collect::<PolarsResult<_>>()
                        .map_err(|e| io_err(&e))?;
                    let cols: Vec<Vec<Option<&str>>> = text
                        .iter()
                        .map(|c| c.str().map(|ca| ca.iter().collect()))
                        .collect::<PolarsResult<_>>()
                        .map_err(|e| io_err(&e))?;
                    let mut cells: Vec<Option<&str>> = Vec::with_capacity(cols.len());
                    for i in 0..df.height() {
                        cells.clear();
                        cells.extend(cols.iter().map(|c| c[i]));
                        let row = parser.parse(&cells, index, vocab).map_err(|e| (self.kind.locate(index), e));
                        take(&mut index, row)?;
                    }
                    if df.height() == 0 {
                        break;
                    }
                    offset += df.height();
                }
            }
        }
        Ok(index)
    }
}

/// Records per batch handed from the CSV splitting thread to the parsing one.
const CSV_BATCH: usize = 4096;

/// At most `n` characters of `s`.
fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A field a row parser reads (the mapped fields other than metadata).
#[derive(Clone, Copy, Debug)]
enum Field {
    Arrival,
    End,
    Latency,
    FirstToken,
    Ttft,
    InputTokens,
    OutputTokens,
    Endpoint,
    Class,
    Status,
    Cost,
    CacheKey,
    Deferrable,
    OutputKnown,
    Quality,
}

impl Field {
    const ALL: [Field; 15] = [
        Field::Arrival,
        Field::End,
        Field::Latency,
        Field::FirstToken,
        Field::Ttft,
        Field::InputTokens,
        Field::OutputTokens,
        Field::Endpoint,
        Field::Class,
        Field::Status,
        Field::Cost,
        Field::CacheKey,
        Field::Deferrable,
        Field::OutputKnown,
        Field::Quality,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Arrival => "arrival",
            Field::End => "end",
            Field::Latency => "latency",
            Field::FirstToken => "first_token",
            Field::Ttft => "ttft",
            Field::InputTokens => "input_tokens",
            Field::OutputTokens => "output_tokens",
            Field::Endpoint => "endpoint",
            Field::Class => "class",
            Field::Status => "status",
            Field::Cost => "cost",
            Field::CacheKey => "cache_key",
            Field::Deferrable => "deferrable",
            Field::OutputKnown => "output_known",
            Field::Quality => "quality",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Column positions of the mapped fields and how to parse them.
struct RowParser {
    time: TimeFormat,
    cost_scale: f64,
    latency_scale: f64,
    fmt: String,
    /// Position of each [`Field`] among the mapped columns.
    at: [Option<usize>; Field::ALL.len()],
    meta: Vec<(String, usize)>,
}

type RowError = (&'static str, String);

impl RowParser {
    fn new(format: &LogFormat, mapped: &[(String, String)]) -> Self {
        let at = Field::ALL.map(|f| mapped.iter().position(|(name, _)| name == f.name()));
        let meta = mapped
            .iter()
            .enumerate()
            .filter_map(|(i, (f, _))| f.strip_prefix("metadata.").map(|k| (k.to_string(), i)))
            .collect();
        RowParser {
            time: format.time,
            cost_scale: format.cost_scale,
            latency_scale: format.latency_scale,
            fmt: format.name.clone(),
            at,
            meta,
        }
    }

    fn get<'a>(&self, cells: &[Option<&'a str>], field: Field) -> Option<&'a str> {
        let c = self.at[field as usize]?;
        cells[c].map(str::trim).filter(|s| !s.is_empty() && *s != "null" && *s != "None")
    }

    fn time(&self, cells: &[Option<&str>], field: Field) -> Result<Option<i64>, RowError> {
        match self.get(cells, field) {
            None => Ok(None),
            Some(s) => parse_time(s, self.time)
                .map(Some)
                .ok_or_else(|| ("unparsable time", format!("{field} = {s:?} is not a {:?} time", self.time))),
        }
    }

    fn number(&self, cells: &[Option<&str>], field: Field) -> Result<Option<f64>, RowError> {
        match self.get(cells, field) {
            None => Ok(None),
            Some(s) => match parse_f64(s) {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(("negative or non-numeric value", format!("{field} = {s:?}"))),
            },
        }
    }

    fn tokens(&self, cells: &[Option<&str>], field: Field) -> Result<u32, RowError> {
        match self.get(cells, field) {
            None => Ok(0),
            // A short run of digits is its own value; anything else is read as a number that must be whole.
            Some(s) => match short_integer(s) {
                Some(n) => Ok(n),
                None => match parse_f64(s) {
                    Ok(v) if v.is_finite() && v >= 0.0 && v <= u32::MAX as f64 && v.fract() == 0.0 => Ok(v as u32),
                    _ => Err(("negative or non-numeric tokens", format!("{field} = {s:?}"))),
                },
            },
        }
    }

    /// The answer quality: a number in `0..=1` (0/1 or a score); anything else makes the row malformed.
    fn quality(&self, cells: &[Option<&str>]) -> Result<Option<f64>, RowError> {
        match self.get(cells, Field::Quality) {
            None => Ok(None),
            Some(s) => parse_quality(s).map(Some),
        }
    }

    fn flag(&self, cells: &[Option<&str>], field: Field) -> bool {
        matches!(self.get(cells, field), Some("true" | "True" | "1" | "yes"))
    }

    fn parse(&self, cells: &[Option<&str>], index: u64, vocab: &mut Vocabulary) -> Result<LogRow, RowError> {
        let arrival = self
            .time(cells, Field::Arrival)?
            .ok_or_else(|| ("missing arrival time", "arrival is empty".to_string()))?;
        let input_tokens = self.tokens(cells, Field::InputTokens)?;
        let output_tokens = self.tokens(cells, Field::OutputTokens)?;
        let latency = match (self.time(cells, Field::End)?, self.number(cells, Field::Latency)?) {
            (Some(end), _) => Some(end - arrival),
            (None, Some(l)) => Some((l * self.latency_scale * 1e9).round() as i64),
            (None, None) => None,
        };
        let ttft = match (self.time(cells, Field::FirstToken)?, self.number(cells, Field::Ttft)?) {
            (Some(ft), _) => Some(ft - arrival),
            (None, Some(t)) => Some((t * self.latency_scale * 1e9).round() as i64),
            (None, None) => None,
        };
        if latency.is_some_and(|l| l < 0) || ttft.is_some_and(|t| t < 0) {
            return Err(("ends before it starts", format!("latency {latency:?} ns, ttft {ttft:?} ns")));
        }
        // A non-streaming call logs its first token at its end (LiteLLM sets completionStartTime = endTime):
        // that is no time to first token.
        let ttft = ttft.filter(|&t| latency.is_none_or(|l| t < l));
        let cost = self.number(cells, Field::Cost)?.map(|c| c * self.cost_scale);
        let mut outcome = match self.get(cells, Field::Status) {
            None => Outcome::Unknown,
            Some(s) => parse_status(s).ok_or_else(|| ("unknown status", format!("status = {s:?}")))?,
        };
        if self.fmt == "burstgpt" {
            // BurstGPT logs a failed request with a response of 0 tokens.
            outcome = if output_tokens == 0 { Outcome::Failed(ErrorClass::Server) } else { Outcome::Ok };
        }
        let endpoint = match self.get(cells, Field::Endpoint) {
            None => None,
            Some(e) => Some(
                vocab.endpoint(e).ok_or_else(|| ("too many endpoints", format!("more than 65535 distinct: {e:?}")))?,
            ),
        };
        let class_name = self.get(cells, Field::Class).map(first_tag).unwrap_or("default");
        let class = vocab
            .class(class_name)
            .ok_or_else(|| ("too many classes", format!("more than 65536 distinct: {class_name:?}")))?;
        let meta: Vec<(String, String)> = self
            .meta
            .iter()
            .filter_map(|(k, c)| cells[*c].filter(|s| !s.is_empty()).map(|v| (k.clone(), v.to_string())))
            .collect();
        let template = vocab.template(class, meta);
        let cache_key = self.get(cells, Field::CacheKey).map(|s| {
            s.parse::<u64>().unwrap_or_else(|_| router_core::keyed_rand::mix64(router_core::fnv1a(s.as_bytes())))
        });
        Ok(LogRow {
            index,
            arrival,
            latency,
            ttft,
            input_tokens,
            output_tokens,
            endpoint,
            class,
            template,
            outcome,
            cost,
            cache_key,
            deferrable: self.flag(cells, Field::Deferrable),
            output_known: self.flag(cells, Field::OutputKnown),
            quality: self.quality(cells)?,
        })
    }
}

// The `quality` column's parsing lives with the tallies (`super::quality`), shared with the feedback rows.
pub use super::quality::{QUALITY_NOT_A_NUMBER, QUALITY_OUT_OF_RANGE, parse_quality};

/// The first tag of a JSON list like `["chat", "prod"]`, or the text itself.
fn first_tag(s: &str) -> &str {
    let t = s.trim();
    if let Some(inner) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let first = inner.split(',').next().unwrap_or("").trim().trim_matches('"').trim_matches('\'');
        if first.is_empty() { "default" } else { first }
    } else {
        t
    }
}

/// An outcome from an HTTP status code or a word.
pub fn parse_status(s: &str) -> Option<Outcome> {
    // Words in any case, compared in place (no lower-case copy per row).
    const WORDS: [(&str, Outcome); 13] = [
        ("ok", Outcome::Ok),
        ("success", Outcome::Ok),
        ("true", Outcome::Ok),
        ("completed", Outcome::Ok),
        ("failure", Outcome::Failed(ErrorClass::Server)),
        ("error", Outcome::Failed(ErrorClass::Server)),
        ("false", Outcome::Failed(ErrorClass::Server)),
        ("failed", Outcome::Failed(ErrorClass::Server)),
        ("rate_limited", Outcome::Failed(ErrorClass::RateLimited)),
        ("server", Outcome::Failed(ErrorClass::Server)),
        ("timeout", Outcome::Failed(ErrorClass::Timeout)),
        ("other", Outcome::Failed(ErrorClass::Other)),
        ("rejected", Outcome::Failed(ErrorClass::Other)),
    ];
    if let Some((_, outcome)) = WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(s)) {
        return Some(*outcome);
    }
    // A number reads the same in any case (`1E2`, `inf`), and only codes 100-599 count.
    let code: u16 = s.parse::<f64>().ok().filter(|c| c.fract() == 0.0 && (100.0..600.0).contains(c))? as u16;
    Some(match code {
        200..=399 => Outcome::Ok,
        429 => Outcome::Failed(ErrorClass::RateLimited),
        408 | 504 => Outcome::Failed(ErrorClass::Timeout),
        500..=599 => Outcome::Failed(ErrorClass::Server),
        _ => Outcome::Failed(ErrorClass::Other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names get the indices of their first appearance whether found by scanning or by hashing, and a row
    /// without metadata gets its class's one template.
    #[test]
    fn vocabularies_index_names_in_order_of_appearance() {
        let mut v = Vocabulary::default();
        let names: Vec<String> = (0..40).map(|i| format!("e{}", i % 23)).collect();
        let got: Vec<u16> = names.iter().map(|n| v.endpoint(n).expect("room")).collect();
        let want: Vec<u16> = (0..40).map(|i| (i % 23) as u16).collect();
        assert_eq!(got, want);
        assert_eq!(v.endpoints.len(), 23);
        assert_eq!(v.class("a"), Some(0));
        assert_eq!(v.class("b"), Some(1));
        assert_eq!(v.class("a"), Some(0));
        let meta = vec![("plan".to_string(), "pro".to_string())];
        let (t0, t1, t2) = (v.template(1, Vec::new()), v.template(1, meta.clone()), v.template(0, Vec::new()));
        assert_eq!((t0, t1, t2), (0, 1, 2));
        assert_eq!((v.template(1, Vec::new()), v.template(1, meta), v.template(0, Vec::new())), (0, 1, 2));
        assert_eq!(v.templates.len(), 3);
    }

    #[test]
    fn statuses_map_to_error_classes() {
        assert_eq!(parse_status("200"), Some(Outcome::Ok));
        assert_eq!(parse_status("success"), Some(Outcome::Ok));
        assert_eq!(parse_status("429"), Some(Outcome::Failed(ErrorClass::RateLimited)));
        assert_eq!(parse_status("503"), Some(Outcome::Failed(ErrorClass::Server)));
        assert_eq!(parse_status("504"), Some(Outcome::Failed(ErrorClass::Timeout)));
        assert_eq!(parse_status("400"), Some(Outcome::Failed(ErrorClass::Other)));
        assert_eq!(parse_status("teapot"), None);
        // Words in any case, numbers in any notation, as the lower-cased text read.
        assert_eq!(parse_status("Rate_Limited"), Some(Outcome::Failed(ErrorClass::RateLimited)));
        assert_eq!(parse_status("OK"), Some(Outcome::Ok));
        assert_eq!(parse_status("Rejected"), Some(Outcome::Failed(ErrorClass::Other)));
        assert_eq!(parse_status("5E2"), Some(Outcome::Failed(ErrorClass::Server)));
        assert_eq!(parse_status("429.0"), Some(Outcome::Failed(ErrorClass::RateLimited)));
        assert_eq!(parse_status("INF"), None);
        assert_eq!(parse_status("okay"), None);
        assert_eq!(first_tag("[\"code\", \"prod\"]"), "code");
        assert_eq!(first_tag("chat"), "chat");
    }
}
