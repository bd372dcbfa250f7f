//! Log formats: which column of a gateway log or public trace holds which field of a request.
//!
//! Built in: LiteLLM spend logs, Portkey log exports, the Azure LLM inference traces, BurstGPT, and the
//! generic schema (what `routesim gen-log` writes; any other log maps its columns onto it in the scenario's
//! `[replay.columns]`). `docs/log-formats.md` documents each with a sample under `scenarios/logs/`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a timestamp column is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFormat {
    /// RFC 3339 / ISO 8601 (`2025-01-01T12:00:00.123Z`), also with a space for `T` and without a zone
    /// (read as UTC), as written by databases and the Azure traces.
    Rfc3339,
    /// Seconds since the Unix epoch (fractions allowed).
    EpochS,
    /// Milliseconds since the Unix epoch.
    EpochMs,
    /// Microseconds since the Unix epoch.
    EpochUs,
    /// Seconds since the start of the log (BurstGPT, `routesim gen-log`).
    RelativeS,
}

/// Which column holds which field. Only `arrival` is required; every other field is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMap {
    /// Request arrival (start) time.
    pub arrival: String,
    /// Request end time (same format as `arrival`); gives the logged latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Logged end-to-end latency in seconds (alternative to `end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// Time of the first token (same format as `arrival`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token: Option<String>,
    /// Logged time to first token in seconds (alternative to `first_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<String>,
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<String>,
    /// Completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<String>,
    /// The endpoint (deployment, model) that served the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Task class (a tag; a JSON list keeps its first element).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Outcome: an HTTP status code, `success`/`failure`, or `true`/`false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Cost of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// Hash of the prompt, for exact-match caching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Whether the request may be deferred to a batch endpoint (`true`/`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferrable: Option<String>,
    /// Whether the request announced its output length (`true`/`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_known: Option<String>,
    /// Answer quality: 0/1 (unacceptable/acceptable) or a score in `0..=1`, from a verifier, a judge or client
    /// feedback. A value that is not a number in `0..=1` makes the row malformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Request metadata for conditional and sticky policies: metadata key -> column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// A log format: a column mapping, how its times are written and the unit of its costs.
#[derive(Clone, Debug, PartialEq)]
pub struct LogFormat {
    /// Name (`litellm`, `portkey`, `azure`, `burstgpt`, `generic`).
    pub name: String,
    /// The mapping.
    pub columns: ColumnMap,
    /// Time format of `arrival`, `end` and `first_token`.
    pub time: TimeFormat,
    /// Multiplier from the logged cost to US dollars.
    pub cost_scale: f64,
    /// Multiplier from the logged latency and TTFT to seconds.
    pub latency_scale: f64,
    /// Whether every mapped column must be in the file (a scenario's own mapping: a misspelt column is an
    /// error), rather than only `arrival` (built-in formats: a log need not log everything).
    pub strict: bool,
}

fn col(s: &str) -> Option<String> {
    Some(s.to_string())
}

impl LogFormat {
    /// LiteLLM's spend logs (`LiteLLM_SpendLogs` table, or its CSV/JSON export).
    pub fn litellm() -> Self {
        LogFormat {
            name: "litellm".into(),
            columns: ColumnMap {
                arrival: "startTime".into(),
                end: col("endTime"),
                first_token: col("completionStartTime"),
                input_tokens: col("prompt_tokens"),
                output_tokens: col("completion_tokens"),
                endpoint: col("model"),
                class: col("request_tags"),
                status: col("status"),
                cost: col("spend"),
                cache_key: col("cache_key"),
                metadata: [("user".to_string(), "user".to_string())].into(),
                ..Default::default()
            },
            time: TimeFormat::Rfc3339,
            cost_scale: 1.0,
            latency_scale: 1.0,
            strict: false,
        }
    }

    /// Portkey's log export (`created_at`, `ai_model`, `req_units`, `res_units`, `cost` in cents,
    /// `response_time` in milliseconds, `response_status_code`).
    pub fn portkey() -> Self {
        LogFormat {
            name: "portkey".into(),
            columns: ColumnMap {
                arrival: "created_at".into(),
                latency: col("response_time"),
                input_tokens: col("req_units"),
                output_tokens: col("res_units"),
                endpoint: col("ai_model"),
                status: col("response_status_code"),
                cost: col("cost"),
                ..Default::default()
            },
            time: TimeFormat::Rfc3339,
            cost_scale: 0.01,
            latency_scale: 0.001,
            strict: false,
        }
    }

    /// The Azure LLM inference traces (`AzureLLMInferenceTrace_*.csv`: `TIMESTAMP`, `ContextTokens`,
    /// `GeneratedTokens`).
    pub fn azure() -> Self {
        LogFormat {
            name: "azure".into(),
            columns: ColumnMap {
                arrival: "TIMESTAMP".into(),
                input_tokens: col("ContextTokens"),
                output_tokens: col("GeneratedTokens"),
                ..Default::default()
            },
            time: TimeFormat::Rfc3339,
            cost_scale: 1.0,
            latency_scale: 1.0,
            strict: false,
        }
    }

    /// BurstGPT (`Timestamp` in seconds from the start, `Model`, `Request tokens`, `Response tokens`,
    /// `Total tokens`, `Log Type`). A response of 0 tokens marks a failed request.
    pub fn burstgpt() -> Self {
        LogFormat {
            name: "burstgpt".into(),
            columns: ColumnMap {
                arrival: "Timestamp".into(),
                input_tokens: col("Request tokens"),
                output_tokens: col("Response tokens"),
                endpoint: col("Model"),
                class: col("Log Type"),
                ..Default::default()
            },
            time: TimeFormat::RelativeS,
            cost_scale: 1.0,
            latency_scale: 1.0,
            strict: false,
        }
    }

    /// The generic schema written by `routesim gen-log`.
    pub fn generic() -> Self {
        LogFormat {
            name: "generic".into(),
            columns: ColumnMap {
                arrival: "arrival_s".into(),
                latency: col("latency_s"),
                ttft: col("ttft_s"),
                input_tokens: col("input_tokens"),
                output_tokens: col("output_tokens"),
                endpoint: col("endpoint"),
                class: col("class"),
                status: col("status"),
                cost: col("cost_usd"),
                cache_key: col("cache_key"),
                deferrable: col("deferrable"),
                output_known: col("output_known"),
                quality: col("quality"),
                ..Default::default()
            },
            time: TimeFormat::RelativeS,
            cost_scale: 1.0,
            latency_scale: 1.0,
            strict: false,
        }
    }

    /// Every built-in format.
    pub fn builtin() -> Vec<LogFormat> {
        vec![Self::litellm(), Self::portkey(), Self::azure(), Self::burstgpt(), Self::generic()]
    }

    /// The built-in format of this name.
    pub fn named(name: &str) -> Option<LogFormat> {
        Self::builtin().into_iter().find(|f| f.name == name)
    }

    /// The built-in format whose arrival column and most mapped columns the file has (ties: the first).
    pub fn detect(columns: &[String]) -> Option<LogFormat> {
        Self::builtin().into_iter().filter(|f| columns.contains(&f.columns.arrival)).max_by_key(|f| {
            let present = f.columns.mapped().iter().filter(|(_, c)| columns.contains(c)).count();
            (present, usize::MAX - f.columns.mapped().len())
        })
    }

    /// The columns this format needs that the file lacks: `arrival`, or every mapped column when strict.
    pub fn missing(&self, columns: &[String]) -> Vec<String> {
        let needed: Vec<String> = if self.strict {
            self.columns.mapped().into_iter().map(|(_, c)| c).collect()
        } else {
            vec![self.columns.arrival.clone()]
        };
        needed.into_iter().filter(|c| !columns.contains(c)).collect()
    }
}

impl ColumnMap {
    /// `(field, column)` of every mapped field, `arrival` first; metadata fields are `metadata.<key>`.
    pub fn mapped(&self) -> Vec<(String, String)> {
        let mut out = vec![("arrival".to_string(), self.arrival.clone())];
        let optional = [
            ("end", &self.end),
            ("latency", &self.latency),
            ("first_token", &self.first_token),
            ("ttft", &self.ttft),
            ("input_tokens", &self.input_tokens),
            ("output_tokens", &self.output_tokens),
            ("endpoint", &self.endpoint),
            ("class", &self.class),
            ("status", &self.status),
            ("cost", &self.cost),
            ("cache_key", &self.cache_key),
            ("deferrable", &self.deferrable),
            ("output_known", &self.output_known),
            ("quality", &self.quality),
        ];
        for (field, c) in optional {
            if let Some(c) = c {
                out.push((field.to_string(), c.clone()));
            }
        }
        for (k, c) in &self.metadata {
            out.push((format!("metadata.{k}"), c.clone()));
        }
        out
    }

    /// This mapping without the optional columns the file lacks (a log need not log everything).
    pub fn restricted_to(&self, columns: &[String]) -> ColumnMap {
        let keep = |c: &Option<String>| c.clone().filter(|c| columns.contains(c));
        ColumnMap {
            arrival: self.arrival.clone(),
            end: keep(&self.end),
            latency: keep(&self.latency),
            first_token: keep(&self.first_token),
            ttft: keep(&self.ttft),
            input_tokens: keep(&self.input_tokens),
            output_tokens: keep(&self.output_tokens),
            endpoint: keep(&self.endpoint),
            class: keep(&self.class),
            status: keep(&self.status),
            cost: keep(&self.cost),
            cache_key: keep(&self.cache_key),
            deferrable: keep(&self.deferrable),
            output_known: keep(&self.output_known),
            quality: keep(&self.quality),
            metadata: self
                .metadata
                .iter()
                .filter(|(_, c)| columns.contains(c))
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect(),
        }
    }
}

/// Parses a timestamp to nanoseconds (since the epoch, or since the log's start for `relative-s`).
pub fn parse_time(s: &str, format: TimeFormat) -> Option<i64> {
    let s = s.trim();
    match format {
        TimeFormat::EpochS | TimeFormat::RelativeS => scaled_decimal(s, 9),
        TimeFormat::EpochMs => scaled_decimal(s, 6),
        TimeFormat::EpochUs => scaled_decimal(s, 3),
        TimeFormat::Rfc3339 => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                return t.timestamp_nanos_opt();
            }
            // Databases and CSV exports: `2025-01-01 12:00:00.1234567`, no zone (UTC); also `T`, and
            // polars' text form of a UTC datetime column (`... UTC`).
            let naive = s.trim_end_matches(" UTC").trim_end_matches('Z').replace('T', " ");
            chrono::NaiveDateTime::parse_from_str(&naive, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(&naive, "%Y-%m-%d %H:%M:%S"))
                .ok()
                .and_then(|t| t.and_utc().timestamp_nanos_opt())
        }
    }
}

/// `s` times `10^digits`, rounded to an integer, read digit by digit so that epoch nanoseconds (beyond
/// the 53 bits of an `f64`) stay exact; exponent notation goes through `f64`.
fn scaled_decimal(s: &str, digits: u32) -> Option<i64> {
    if s.contains(['e', 'E']) {
        let v: f64 = s.parse().ok().filter(|v: &f64| v.is_finite())?;
        return Some((v * 10f64.powi(digits as i32)).round() as i64);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = 10i64.checked_pow(digits)?;
    let mut v = if int.is_empty() { 0 } else { int.parse::<i64>().ok()?.checked_mul(scale)? };
    let mut place = scale;
    for (k, b) in frac.bytes().enumerate() {
        let d = (b - b'0') as i64;
        if (k as u32) < digits {
            place /= 10;
            v = v.checked_add(d * place)?;
        } else {
            // Round half up on the first dropped digit.
            if k as u32 == digits && d >= 5 {
                v = v.checked_add(1)?;
            }
            break;
        }
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_format() {
        let base = 1_735_689_600_000_000_000i64; // 2025-01-01T00:00:00Z
        assert_eq!(parse_time("2025-01-01T00:00:00Z", TimeFormat::Rfc3339), Some(base));
        assert_eq!(parse_time("2025-01-01T01:00:00.5+01:00", TimeFormat::Rfc3339), Some(base + 500_000_000));
        assert_eq!(parse_time("2025-01-01 00:00:01.2500000", TimeFormat::Rfc3339), Some(base + 1_250_000_000));
        assert_eq!(parse_time("2025-01-01 00:00:02", TimeFormat::Rfc3339), Some(base + 2_000_000_000));
        assert_eq!(parse_time("2025-01-01 00:00:02.5 UTC", TimeFormat::Rfc3339), Some(base + 2_500_000_000));
        assert_eq!(parse_time("1735689600.25", TimeFormat::EpochS), Some(base + 250_000_000));
        assert_eq!(parse_time("1735689600250", TimeFormat::EpochMs), Some(base + 250_000_000));
        assert_eq!(parse_time("1735689600250000", TimeFormat::EpochUs), Some(base + 250_000_000));
        assert_eq!(parse_time("12.000000001", TimeFormat::RelativeS), Some(12_000_000_001));
        assert_eq!(parse_time("yesterday", TimeFormat::Rfc3339), None);
        assert_eq!(parse_time("NaN", TimeFormat::RelativeS), None);
        assert_eq!(parse_time("1.5e3", TimeFormat::RelativeS), Some(1_500_000_000_000));
        assert_eq!(parse_time("0.0000000015", TimeFormat::RelativeS), Some(2));
        assert_eq!(parse_time("-1.5", TimeFormat::RelativeS), Some(-1_500_000_000));
        assert_eq!(parse_time("1.2.3", TimeFormat::RelativeS), None);
    }

    #[test]
    fn detection_picks_the_format_with_the_most_columns() {
        let cols = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let litellm = cols(&["request_id", "startTime", "endTime", "model", "spend", "prompt_tokens"]);
        assert_eq!(LogFormat::detect(&litellm).unwrap().name, "litellm");
        assert_eq!(LogFormat::detect(&cols(&["TIMESTAMP", "ContextTokens", "GeneratedTokens"])).unwrap().name, "azure");
        let burst = cols(&["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]);
        assert_eq!(LogFormat::detect(&burst).unwrap().name, "burstgpt");
        assert_eq!(LogFormat::detect(&cols(&["arrival_s", "input_tokens"])).unwrap().name, "generic");
        assert!(LogFormat::detect(&cols(&["ts", "in"])).is_none());
    }
}
