//! Parsing a gateway config (YAML with `serde_norway`, JSON with `serde_json`) into typed structs, with the
//! key path (serde_path_to_error) and line of any error.

use super::ImportError;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Parses YAML text into `T`.
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ImportError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = clean(&e.path().to_string());
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line()).or_else(|| super::line_of(text, &path));
        ImportError { file: file.to_path_buf(), path, line, message: strip_location(&inner.to_string()) }
    })
}

/// Parses JSON text into `T`.
pub fn parse_json<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ImportError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = clean(&e.path().to_string());
        let inner = e.into_inner();
        let line = (inner.line() > 0).then_some(inner.line());
        ImportError { file: file.to_path_buf(), path, line, message: strip_location(&inner.to_string()) }
    })
}

/// serde_path_to_error writes `.` for the root and `?` for a step it cannot follow.
fn clean(p: &str) -> String {
    if p == "." || p == "?" { String::new() } else { p.trim_end_matches(".?").to_string() }
}

/// Drops the " at line L column C" both parsers append (the line is reported separately).
fn strip_location(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}
