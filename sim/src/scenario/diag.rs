//! Scenario diagnostics: errors that name the file, the field path and what was expected, with a
//! "did you mean" for typos. The error type and the parsing are `routesim-schema`'s, shared with the gateway
//! (whose `ConfigError` is the same type).

/// An invalid scenario: where (file, field path, line when known) and what was expected.
pub use routesim_schema::SchemaError as ScenarioError;
pub use routesim_schema::{nearest, parse_toml};
