//! TOML parsing with errors that name the file, the field path and the line, and a "did you mean" for a
//! misspelt field or variant (or, through [`nearest`], any misspelt name).

use crate::error::SchemaError;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Parses TOML text into `T`, turning any syntax or type error into a [`SchemaError`] with the field path
/// (from serde_path_to_error), the line, and a suggestion for an unknown field or variant.
pub fn parse_toml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, SchemaError> {
    let de = toml::Deserializer::parse(text).map_err(|e| from_toml(file, text, "", &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = clean_path(&e.path().to_string());
        from_toml(file, text, &path, e.inner())
    })
}

fn from_toml(file: &Path, text: &str, path: &str, e: &toml::de::Error) -> SchemaError {
    let message = e.message().trim().to_string();
    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let suggestion = suggest_from_message(&message);
    SchemaError { file: file.to_path_buf(), path: path.to_string(), line, message, suggestion }
}

/// serde_path_to_error writes `?` for a path it cannot follow and `.` for the root.
fn clean_path(p: &str) -> String {
    if p == "." || p == "?" { String::new() } else { p.trim_end_matches(".?").to_string() }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" and "unknown variant ..." messages, the nearest
/// expected name.
fn suggest_from_message(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))?;
    let (got, tail) = rest.split_once('`')?;
    let expected = tail.split('`').skip(1).step_by(2);
    nearest(got, expected)
}

/// The candidate closest to `name` (Jaro-Winkler similarity at least 0.8, or edit distance at most 2), if any.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let sim = strsim::jaro_winkler(name, c);
        let close = sim >= 0.8 || strsim::levenshtein(name, c) <= 2;
        if close && best.is_none_or(|(s, _)| sim > s) {
            best = Some((sim, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rate: f64,
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Kind {
        RoundRobin,
        Weighted,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    fn err(text: &str) -> SchemaError {
        parse_toml::<Outer>(Path::new("s.toml"), text).expect_err("invalid")
    }

    #[test]
    fn unknown_field_names_path_line_and_suggestion() {
        let e = err("[[items]]\nrate = 1.0\nkind = \"weighted\"\n\n[[items]]\nrtae = 2.0\nkind = \"weighted\"\n");
        assert_eq!(e.path, "items[1].rtae");
        assert_eq!(e.line, Some(6));
        assert_eq!(e.suggestion.as_deref(), Some("rate"));
        assert!(e.to_string().starts_with("s.toml:6: field `items[1].rtae`: unknown field `rtae`"), "{e}");
    }

    #[test]
    fn wrong_type_and_unknown_variant_name_the_field() {
        let e = err("[[items]]\nrate = \"fast\"\nkind = \"weighted\"\n");
        assert_eq!(e.path, "items[0].rate");
        assert!(e.message.contains("expected"), "{}", e.message);
        let e = err("[[items]]\nrate = 1.0\nkind = \"round-robbin\"\n");
        assert_eq!(e.path, "items[0].kind");
        assert_eq!(e.suggestion.as_deref(), Some("round-robin"));
    }

    #[test]
    fn syntax_errors_give_a_line() {
        let e = err("[[items]]\nrate = = 1\n");
        assert_eq!(e.line, Some(2));
        assert!(e.path.is_empty());
    }

    #[test]
    fn nearest_ignores_unrelated_names() {
        assert_eq!(nearest("gpt4o", ["gpt-4o", "claude"]), Some("gpt-4o".into()));
        assert_eq!(nearest("zzz", ["gpt-4o", "claude"]), None);
    }
}
