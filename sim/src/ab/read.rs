//! Reading a gateway request log (JSONL or CSV, the generic schema) into the two arms of an A/B test.
//!
//! A row needs `status`, `latency_s` and `cost_usd`, plus the grouping column (`arm`, or `policy` with
//! `--by policy`); `ttft_s` and `quality` are optional. A row without the grouping column was routed by no
//! arm (a cache hit, a request denied by its key) and is counted apart, not as malformed. A malformed row
//! (bad JSON, a missing or non-numeric column, an unknown status, a group that is neither arm) is counted by
//! reason with its line, and skipped; with `strict` the first one is an error naming the file and line.
//!
//! In a JSONL log, client feedback rows (`POST /v1/feedback`) give their request's `quality`, joined as the
//! log readers join them ([`crate::logs::feedback`]: the latest rating wins, a rating wins over the judge's
//! score, a rating of an unknown request is a malformed row); they are not requests and not counted as rows.

use crate::logs::feedback::{self, FeedbackIndex};
use crate::logs::read::{FileKind, LogError, RowErrors};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Which column splits the rows into arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// The `arm` column: `control` or `canary`.
    Arm,
    /// The `policy` column: the policy that routed the request (`--control` / `--canary` name them).
    Policy,
}

/// The statuses the generic schema knows.
const STATUSES: [&str; 6] = ["ok", "rate_limited", "server", "timeout", "other", "rejected"];

/// One request of an arm.
#[derive(Clone, Debug, PartialEq)]
pub struct AbRow {
    /// Whether it succeeded (`status` = `ok`).
    pub ok: bool,
    /// End-to-end latency, seconds.
    pub latency_s: f64,
    /// Time to first token, seconds, when logged.
    pub ttft_s: Option<f64>,
    /// Cost, US dollars.
    pub cost_usd: f64,
    /// Quality (0/1 or a score in [0, 1]), when logged.
    pub quality: Option<f64>,
}

/// The rows of one arm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmRows {
    /// The arm's name (`control`, `canary`, or a policy name).
    pub name: String,
    /// The policy that routed most of its rows, when the log says.
    pub policy: Option<String>,
    /// Its requests.
    pub rows: Vec<AbRow>,
}

/// A log split into its two arms.
#[derive(Clone, Debug, Default)]
pub struct AbLog {
    /// The control arm.
    pub control: ArmRows,
    /// The canary arm.
    pub canary: ArmRows,
    /// Non-blank rows read.
    pub read: u64,
    /// Rows without the grouping column (routed by no arm).
    pub ungrouped: u64,
    /// Malformed rows, by reason.
    pub errors: RowErrors,
}

impl AbLog {
    /// Multiplies every row's latency and time to first token by `factor`: a log written by `routesim live
    /// --time-scale X` has its durations divided by X, and `factor` = X brings them back to the scenario's
    /// seconds. Costs and outcomes do not depend on the clock and stay as logged.
    pub fn scale_time(&mut self, factor: f64) {
        for row in self.control.rows.iter_mut().chain(self.canary.rows.iter_mut()) {
            row.latency_s *= factor;
            row.ttft_s = row.ttft_s.map(|t| t * factor);
        }
    }
}

/// How rows are grouped: the column and the names of the two groups.
#[derive(Clone, Debug)]
pub struct Grouping {
    /// The column.
    pub by: GroupBy,
    /// The control group's value (`control` by arm, a policy name by policy).
    pub control: String,
    /// The canary group's value.
    pub canary: String,
}

/// A field of a row, whatever the encoding.
trait Fields {
    /// The field's text (`None` when absent, null or empty).
    fn text(&self, name: &str) -> Result<Option<String>, String>;
}

impl Fields for Map<String, Value> {
    fn text(&self, name: &str) -> Result<Option<String>, String> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(format!("`{name}` is {other}, expected a string or a number")),
        }
    }
}

struct CsvRow<'a> {
    headers: &'a csv::StringRecord,
    record: &'a csv::StringRecord,
}

impl Fields for CsvRow<'_> {
    fn text(&self, name: &str) -> Result<Option<String>, String> {
        let Some(i) = self.headers.iter().position(|h| h == name) else { return Ok(None) };
        Ok(self.record.get(i).filter(|s| !s.is_empty()).map(str::to_string))
    }
}

/// A row rejected: its reason (a fixed category) and detail.
type Bad = (&'static str, String);

fn number(row: &dyn Fields, name: &str) -> Result<Option<f64>, Bad> {
    let Some(text) = row.text(name).map_err(|d| ("non-scalar column", d))? else { return Ok(None) };
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        _ => Err(("non-numeric value", format!("`{name}` = {text:?}, expected a finite number"))),
    }
}

fn required(row: &dyn Fields, name: &str) -> Result<f64, Bad> {
    number(row, name)?.ok_or(("missing column", format!("no `{name}`")))
}

fn nonnegative(name: &str, x: f64) -> Result<f64, Bad> {
    if x < 0.0 { Err(("negative value", format!("`{name}` = {x}, expected >= 0"))) } else { Ok(x) }
}

/// What a row is: in an arm (0 control, 1 canary) with its policy, or ungrouped.
enum Parsed {
    Arm(usize, Option<String>, AbRow),
    Ungrouped,
}

fn parse(row: &dyn Fields, grouping: &Grouping) -> Result<Parsed, Bad> {
    let column = match grouping.by {
        GroupBy::Arm => "arm",
        GroupBy::Policy => "policy",
    };
    let Some(group) = row.text(column).map_err(|d| ("non-scalar column", d))? else { return Ok(Parsed::Ungrouped) };
    let arm = if group == grouping.control {
        0
    } else if group == grouping.canary {
        1
    } else {
        return Err((
            "unknown group",
            format!("`{column}` = {group:?}, expected {:?} or {:?}", grouping.control, grouping.canary),
        ));
    };
    let status =
        row.text("status").map_err(|d| ("non-scalar column", d))?.ok_or(("missing column", "no `status`".into()))?;
    if !STATUSES.contains(&status.as_str()) {
        return Err(("unknown status", format!("`status` = {status:?}, expected one of {}", STATUSES.join(", "))));
    }
    let latency_s = nonnegative("latency_s", required(row, "latency_s")?)?;
    let cost_usd = nonnegative("cost_usd", required(row, "cost_usd")?)?;
    let ttft_s = number(row, "ttft_s")?.map(|x| nonnegative("ttft_s", x)).transpose()?;
    let quality = number(row, "quality")?;
    if let Some(q) = quality
        && !(0.0..=1.0).contains(&q)
    {
        return Err(("quality out of range", format!("`quality` = {q}, expected a score in [0, 1]")));
    }
    let policy = row.text("policy").map_err(|d| ("non-scalar column", d))?;
    Ok(Parsed::Arm(arm, policy, AbRow { ok: status == "ok", latency_s, ttft_s, cost_usd, quality }))
}

/// Reads `path` (`.jsonl`/`.ndjson`/`.json` one object per line, or `.csv` with a header) and splits it.
pub fn read(path: &Path, grouping: &Grouping, strict: bool) -> Result<AbLog, LogError> {
    let err = |message: String| LogError { file: path.into(), message };
    let kind = FileKind::of(path).ok_or_else(|| err("expected a .jsonl, .ndjson, .json or .csv log".into()))?;
    if kind == FileKind::Parquet {
        return Err(err("`routesim ab` reads JSONL or CSV logs; convert this Parquet log first".into()));
    }
    let file = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let mut log = AbLog {
        control: ArmRows { name: grouping.control.clone(), ..Default::default() },
        canary: ArmRows { name: grouping.canary.clone(), ..Default::default() },
        ..Default::default()
    };
    // Policies seen per arm, counted, to name each arm's policy.
    let mut policies: [std::collections::BTreeMap<String, u64>; 2] = Default::default();
    let mut handle = |index: u64, parsed: Result<Parsed, Bad>, log: &mut AbLog| -> Result<(), LogError> {
        log.read += 1;
        match parsed {
            Ok(Parsed::Ungrouped) => log.ungrouped += 1,
            Ok(Parsed::Arm(arm, policy, row)) => {
                if let Some(p) = policy {
                    *policies[arm].entry(p).or_default() += 1;
                }
                if arm == 0 { &mut log.control } else { &mut log.canary }.rows.push(row);
            }
            Err((reason, detail)) => {
                let at = kind.locate(index);
                if strict {
                    return Err(err(format!("{at}: {reason}: {detail}")));
                }
                log.errors.push(at, reason, detail);
            }
        }
        Ok(())
    };
    match kind {
        FileKind::Jsonl => {
            // Client ratings (`POST /v1/feedback` rows) join their requests as the log readers join them.
            let mut feedback = FeedbackIndex::scan(path).map_err(|e| err(format!("cannot read: {e}")))?;
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| err(format!("line {}: cannot read: {e}", i + 1)))?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = match serde_json::from_str::<Map<String, Value>>(&line) {
                    Ok(obj) if feedback::is_feedback(&obj) => match feedback::parse_row(&obj) {
                        // A rating is not a request: it is joined to its request row, not counted as a row.
                        Ok(_) => continue,
                        Err(bad) => Err(bad),
                    },
                    Ok(obj) => parse(&obj, grouping).map(|p| match (p, feedback.rating_of(&obj)) {
                        (Parsed::Arm(arm, policy, row), Some(q)) => {
                            Parsed::Arm(arm, policy, AbRow { quality: Some(q), ..row })
                        }
                        (p, _) => p,
                    }),
                    Err(e) => Err(("invalid JSON", e.to_string())),
                };
                handle(i as u64, parsed, &mut log)?;
            }
            for (line, id) in feedback.unmatched() {
                let detail = format!("request_id {id}: no request row of this log has it");
                handle(line - 1, Err((feedback::UNKNOWN_REQUEST, detail)), &mut log)?;
            }
        }
        _ => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
            let headers = reader.headers().map_err(|e| err(format!("cannot read the header: {e}")))?.clone();
            for (i, record) in reader.records().enumerate() {
                let parsed = match record {
                    Ok(r) if r.len() != headers.len() => {
                        Err(("wrong number of fields", format!("{} fields, the header has {}", r.len(), headers.len())))
                    }
                    Ok(record) => parse(&CsvRow { headers: &headers, record: &record }, grouping),
                    Err(e) => Err(("invalid CSV", e.to_string())),
                };
                handle(i as u64, parsed, &mut log)?;
            }
        }
    }
    for (arm, seen) in [&mut log.control, &mut log.canary].into_iter().zip(policies) {
        // The most frequent policy, ties to the first name.
        arm.policy = seen
            .into_iter()
            .fold(None::<(String, u64)>, |best, (p, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((p, n)),
            })
            .map(|(p, _)| p);
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(latency_s: f64, ttft_s: Option<f64>) -> AbRow {
        AbRow { ok: true, latency_s, ttft_s, cost_usd: 0.5, quality: None }
    }

    #[test]
    fn scaling_time_multiplies_latencies_of_both_arms_and_nothing_else() {
        let arm = |name: &str, rows| ArmRows { name: name.into(), policy: None, rows };
        let mut log = AbLog {
            control: arm("control", vec![row(0.1, Some(0.02)), row(0.3, None)]),
            canary: arm("canary", vec![row(0.2, Some(0.05))]),
            ..AbLog::default()
        };
        log.scale_time(20.0);
        let seen: Vec<(f64, Option<f64>, f64)> =
            log.control.rows.iter().chain(&log.canary.rows).map(|r| (r.latency_s, r.ttft_s, r.cost_usd)).collect();
        assert_eq!(seen, vec![(2.0, Some(0.4), 0.5), (6.0, None, 0.5), (4.0, Some(1.0), 0.5)]);
    }

    /// Feedback rows give their request's quality (before or after it, the latest one winning over earlier
    /// ones and over the judge's score), are not rows themselves, and a rating of an unknown request or
    /// without a usable quality is a malformed row with its line.
    #[test]
    fn feedback_rows_join_their_requests_and_bad_ones_are_counted_with_their_line() {
        let dir = std::env::temp_dir().join(format!("routesim-ab-feedback-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        let req = |id: u64, arm: &str, judge: Option<f64>| {
            let q = judge.map_or("null".to_string(), |q| q.to_string());
            format!(
                r#"{{"request_id":{id},"arm":"{arm}","status":"ok","latency_s":1.0,"cost_usd":0.01,"quality":{q}}}"#
            )
        };
        let fb = |id: u64, q: &str| format!(r#"{{"request_id":{id},"feedback":true,"quality":{q}}}"#);
        let lines = [
            fb(2, "0.25"),                // line 1: before its request
            req(1, "control", Some(0.9)), // line 2: judged 0.9, rated 0 below
            req(2, "canary", None),       // line 3
            req(3, "canary", Some(0.4)),  // line 4: judged only
            fb(1, "1"),                   // line 5
            fb(1, "false"),               // line 6: the latest rating of request 1
            fb(9, "1"),                   // line 7: no request 9
            fb(3, r#""very good""#),      // line 8: not a score
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let grouping = Grouping { by: GroupBy::Arm, control: "control".into(), canary: "canary".into() };
        let log = read(&path, &grouping, false).unwrap();
        let qualities = |arm: &ArmRows| arm.rows.iter().map(|r| r.quality).collect::<Vec<_>>();
        assert_eq!(qualities(&log.control), vec![Some(0.0)]);
        assert_eq!(qualities(&log.canary), vec![Some(0.25), Some(0.4)]);
        assert_eq!(log.read, 5, "3 requests and the 2 malformed ratings");
        assert_eq!(log.errors.total(), 2);
        assert_eq!(log.errors.counts.get(feedback::UNKNOWN_REQUEST), Some(&1));
        let lines_of: Vec<&str> = log.errors.examples.iter().map(|(at, _, _)| at.as_str()).collect();
        assert_eq!(lines_of, vec!["line 8", "line 7"]);
        let strict = read(&path, &grouping, true).unwrap_err();
        assert!(strict.message.starts_with("line 8:"), "{}", strict.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
