//! Reading a log (CSV, JSONL/NDJSON or Parquet) row by row with polars' streaming engine, so that memory
//! stays bounded whatever the file's size, and turning each row into a [`LogRow`].
//!
//! Every mapped column is read as text and parsed here, so that a malformed value is caught with its row,
//! counted by reason and skipped (or, with `strict`, reported as an error), never silently dropped.

use super::format::{LogFormat, TimeFormat, parse_time};
use polars::prelude::*;
use router_core::ErrorClass;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

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
}

impl Vocabulary {
    fn endpoint(&mut self, name: &str) -> Option<u16> {
        if let Some(&i) = self.endpoint_ix.get(name) {
            return Some(i);
        }
        let i = u16::try_from(self.endpoints.len()).ok()?;
        self.endpoints.push(name.to_string());
        self.endpoint_ix.insert(name.to_string(), i);
        Some(i)
    }

    fn class(&mut self, name: &str) -> Option<u16> {
        if let Some(&i) = self.class_ix.get(name) {
            return Some(i);
        }
        let i = u16::try_from(self.classes.len()).ok()?;
        self.classes.push(name.to_string());
        self.class_ix.insert(name.to_string(), i);
        Some(i)
    }

    fn template(&mut self, class: u16, meta: Vec<(String, String)>) -> u32 {
        let key = (class, meta);
        if let Some(&i) = self.template_ix.get(&key) {
            return i;
        }
        let i = self.templates.len() as u32;
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
}

/// A lazy scan of the file; `text` names JSON fields read as text whatever their values look like (so a
/// number the first rows show as whole does not fail the read later, and a bad value reaches the row parser).
fn scan(path: &Path, kind: FileKind, text: &[String]) -> PolarsResult<LazyFrame> {
    let p = PlRefPath::try_from_path(path)?;
    match kind {
        FileKind::Csv => LazyCsvReader::new(p).with_has_header(true).with_infer_schema_length(Some(0)).finish(),
        FileKind::Jsonl => {
            let overwrite = (!text.is_empty()).then(|| {
                Arc::new(text.iter().map(|c| Field::new(c.as_str().into(), DataType::String)).collect::<Schema>())
            });
            LazyJsonLineReader::new(p).with_schema_overwrite(overwrite).finish()
        }
        FileKind::Parquet => LazyFrame::scan_parquet(p, ScanArgsParquet::default()),
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
        let schema = scan(path, kind, &[])
            .and_then(|mut lf| lf.collect_schema())
            .map_err(|e| LogError::new(path, format!("cannot read the log: {e}")))?;
        let columns: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
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
        Ok(LogReader { path: path.to_path_buf(), kind, format: fmt, columns })
    }

    /// Streams every row to `sink` in file order. Malformed rows are counted in the returned errors and
    /// skipped; with `strict` the first one is an error. Returns the rows read (good and bad).
    pub fn for_each(
        &self,
        strict: bool,
        vocab: &mut Vocabulary,
        errors: &mut RowErrors,
        mut sink: impl FnMut(LogRow),
    ) -> Result<u64, LogError> {
        let mapped = self.format.columns.mapped();
        let columns: Vec<String> = mapped.iter().map(|(_, c)| c.clone()).collect();
        let lf = scan(&self.path, self.kind, &columns).map_err(|e| LogError::new(&self.path, e.to_string()))?;
        let exprs: Vec<Expr> =
            mapped.iter().map(|(f, c)| col(c.as_str()).cast(DataType::String).alias(f.as_str())).collect();
        let (tx, rx) = sync_channel::<DataFrame>(2);
        let path = self.path.clone();
        let mut index = 0u64;
        let parser = RowParser::new(&self.format, &mapped);
        let mut failure: Option<LogError> = None;
        let mut on_batch = |df: DataFrame, failure: &mut Option<LogError>, index: &mut u64| {
            if failure.is_some() {
                return; // drain so the reader can finish
            }
            let cols: Vec<Vec<Option<&str>>> = df
                .columns()
                .iter()
                .map(|c| c.str().map(|ca| ca.iter().collect()).unwrap_or_else(|_| vec![None; df.height()]))
                .collect();
            for i in 0..df.height() {
                match parser.parse(&cols, i, *index, vocab) {
                    Ok(row) => sink(row),
                    Err((reason, detail)) => {
                        let loc = self.kind.locate(*index);
                        if strict {
                            *failure = Some(LogError::new(
                                &path,
                                format!("{loc}: {reason}: {detail} (--strict stops at the first malformed row)"),
                            ));
                            return;
                        }
                        errors.push(loc, reason, detail);
                    }
                }
                *index += 1;
            }
        };
        let read_err = |e: PolarsError| LogError::new(&path, format!("cannot read the log: {e}"));
        if self.kind == FileKind::Parquet {
            // Parquet: one slice of row groups at a time (slices are pushed down to the row groups), which
            // bounds memory by the slice; the streaming engine decodes far ahead of a slow consumer.
            let mut offset = 0i64;
            loop {
                let df = lf
                    .clone()
                    .slice(offset, PARQUET_SLICE as IdxSize)
                    .select(exprs.clone())
                    .collect()
                    .map_err(read_err)?;
                let n = df.height();
                on_batch(df, &mut failure, &mut index);
                if failure.is_some() || n < PARQUET_SLICE {
                    break;
                }
                offset += n as i64;
            }
            return match failure {
                Some(f) => Err(f),
                None => Ok(index),
            };
        }
        let result = std::thread::scope(|scope| {
            let reader = scope.spawn(move || -> PolarsResult<()> {
                let callback = PlanCallback::new(move |df: DataFrame| Ok(tx.send(df).is_err()));
                lf.select(exprs).sink_batches(callback, true, None)?.collect_with_engine(Engine::Streaming)?;
                Ok(())
            });
            for df in rx.iter() {
                on_batch(df, &mut failure, &mut index);
            }
            let read = reader.join().map_err(|_| LogError::new(&path, "the log reader thread panicked"))?;
            if let Some(f) = failure.take() {
                return Err(f);
            }
            read.map_err(read_err)
        });
        result.map(|()| index)
    }
}

/// Column positions of the mapped fields and how to parse them.
struct RowParser {
    time: TimeFormat,
    cost_scale: f64,
    latency_scale: f64,
    fmt: String,
    at: HashMap<String, usize>,
    meta: Vec<(String, usize)>,
}

type RowError = (&'static str, String);

impl RowParser {
    fn new(format: &LogFormat, mapped: &[(String, String)]) -> Self {
        let at: HashMap<String, usize> = mapped.iter().enumerate().map(|(i, (f, _))| (f.clone(), i)).collect();
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

    fn get<'a>(&self, cols: &[Vec<Option<&'a str>>], field: &str, i: usize) -> Option<&'a str> {
        let c = *self.at.get(field)?;
        cols[c][i].map(str::trim).filter(|s| !s.is_empty() && *s != "null" && *s != "None")
    }

    fn time(&self, cols: &[Vec<Option<&str>>], field: &str, i: usize) -> Result<Option<i64>, RowError> {
        match self.get(cols, field, i) {
            None => Ok(None),
            Some(s) => parse_time(s, self.time)
                .map(Some)
                .ok_or(("unparsable time", format!("{field} = {s:?} is not a {:?} time", self.time))),
        }
    }

    fn number(&self, cols: &[Vec<Option<&str>>], field: &str, i: usize) -> Result<Option<f64>, RowError> {
        match self.get(cols, field, i) {
            None => Ok(None),
            Some(s) => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(("negative or non-numeric value", format!("{field} = {s:?}"))),
            },
        }
    }

    fn tokens(&self, cols: &[Vec<Option<&str>>], field: &str, i: usize) -> Result<u32, RowError> {
        match self.get(cols, field, i) {
            None => Ok(0),
            Some(s) => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 && v <= u32::MAX as f64 && v.fract() == 0.0 => Ok(v as u32),
                _ => Err(("negative or non-numeric tokens", format!("{field} = {s:?}"))),
            },
        }
    }

    fn flag(&self, cols: &[Vec<Option<&str>>], field: &str, i: usize) -> bool {
        matches!(self.get(cols, field, i), Some("true" | "True" | "1" | "yes"))
    }

    fn parse(
        &self,
        cols: &[Vec<Option<&str>>],
        i: usize,
        index: u64,
        vocab: &mut Vocabulary,
    ) -> Result<LogRow, RowError> {
        let arrival = self.time(cols, "arrival", i)?.ok_or(("missing arrival time", "arrival is empty".to_string()))?;
        let input_tokens = self.tokens(cols, "input_tokens", i)?;
        let output_tokens = self.tokens(cols, "output_tokens", i)?;
        let latency = match (self.time(cols, "end", i)?, self.number(cols, "latency", i)?) {
            (Some(end), _) => Some(end - arrival),
            (None, Some(l)) => Some((l * self.latency_scale * 1e9).round() as i64),
            (None, None) => None,
        };
        let ttft = match (self.time(cols, "first_token", i)?, self.number(cols, "ttft", i)?) {
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
        let cost = self.number(cols, "cost", i)?.map(|c| c * self.cost_scale);
        let mut outcome = match self.get(cols, "status", i) {
            None => Outcome::Unknown,
            Some(s) => parse_status(s).ok_or(("unknown status", format!("status = {s:?}")))?,
        };
        if self.fmt == "burstgpt" {
            // BurstGPT logs a failed request with a response of 0 tokens.
            outcome = if output_tokens == 0 { Outcome::Failed(ErrorClass::Server) } else { Outcome::Ok };
        }
        let endpoint = match self.get(cols, "endpoint", i) {
            None => None,
            Some(e) => {
                Some(vocab.endpoint(e).ok_or(("too many endpoints", format!("more than 65535 distinct: {e:?}")))?)
            }
        };
        let class_name = self.get(cols, "class", i).map(first_tag).unwrap_or("default");
        let class =
            vocab.class(class_name).ok_or(("too many classes", format!("more than 65536 distinct: {class_name:?}")))?;
        let meta: Vec<(String, String)> = self
            .meta
            .iter()
            .filter_map(|(k, c)| cols[*c][i].filter(|s| !s.is_empty()).map(|v| (k.clone(), v.to_string())))
            .collect();
        let template = vocab.template(class, meta);
        let cache_key = self
            .get(cols, "cache_key", i)
            .map(|s| s.parse::<u64>().unwrap_or_else(|_| router_core::keyed_rand::mix64(fnv1a(s.as_bytes()))));
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
            deferrable: self.flag(cols, "deferrable", i),
            output_known: self.flag(cols, "output_known", i),
        })
    }
}

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

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// An outcome from an HTTP status code or a word.
pub fn parse_status(s: &str) -> Option<Outcome> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "success" | "ok" | "true" | "completed" => return Some(Outcome::Ok),
        "failure" | "error" | "false" | "failed" => return Some(Outcome::Failed(ErrorClass::Server)),
        "rate_limited" => return Some(Outcome::Failed(ErrorClass::RateLimited)),
        "server" => return Some(Outcome::Failed(ErrorClass::Server)),
        "timeout" => return Some(Outcome::Failed(ErrorClass::Timeout)),
        "other" | "rejected" => return Some(Outcome::Failed(ErrorClass::Other)),
        _ => {}
    }
    let code: u16 = lower.parse::<f64>().ok().filter(|c| c.fract() == 0.0 && (100.0..600.0).contains(c))? as u16;
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

    #[test]
    fn statuses_map_to_error_classes() {
        assert_eq!(parse_status("200"), Some(Outcome::Ok));
        assert_eq!(parse_status("success"), Some(Outcome::Ok));
        assert_eq!(parse_status("429"), Some(Outcome::Failed(ErrorClass::RateLimited)));
        assert_eq!(parse_status("503"), Some(Outcome::Failed(ErrorClass::Server)));
        assert_eq!(parse_status("504"), Some(Outcome::Failed(ErrorClass::Timeout)));
        assert_eq!(parse_status("400"), Some(Outcome::Failed(ErrorClass::Other)));
        assert_eq!(parse_status("teapot"), None);
        assert_eq!(first_tag("[\"code\", \"prod\"]"), "code");
        assert_eq!(first_tag("chat"), "chat");
    }
}
