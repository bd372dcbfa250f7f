//! The error of an invalid configuration file, shared by the simulator (as `ScenarioError`) and the gateway
//! (as `ConfigError`).

use std::fmt;
use std::path::{Path, PathBuf};

/// An invalid file: where (file, field path, line when known) and what was expected.
///
/// Displayed as `FILE[:LINE][: field `PATH`]: MESSAGE[ (did you mean `NAME`?)]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SchemaError {
    /// The file.
    pub file: PathBuf,
    /// The field path, like `endpoints[2].ttft.median` (empty for the whole file, or a syntax error).
    pub path: String,
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The nearest valid name, for a typo.
    pub suggestion: Option<String>,
}

impl SchemaError {
    /// An error at `path` of `file`.
    pub fn invalid(file: &Path, path: &str, message: impl Into<String>) -> Self {
        SchemaError {
            file: file.to_path_buf(),
            path: path.to_string(),
            line: None,
            message: message.into(),
            suggestion: None,
        }
    }

    /// Adds a "did you mean" suggestion (no-op for `None`).
    pub fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        if suggestion.is_some() {
            self.suggestion = suggestion;
        }
        self
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": field `{}`", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}
