//! The one configuration schema that routesim's simulator (`sim`) and gateway (`routesim-gateway`) read.
//!
//! A scenario file is also a gateway config: both tools parse the same `[[endpoints]]`, `[[policies]]` and
//! `[[groups]]`, with the same errors. This crate holds what they share, once:
//!
//! - [`error`]: [`SchemaError`], an invalid file named by path, field path, line and expectation.
//! - [`parse`]: [`parse_toml`], TOML into any serde type with field-path errors and a "did you mean".
//! - [`client`]: [`ClientConfig`], the `[client]` section (timeouts around each request).
//! - [`dist`]: [`DistConfig`], a distribution as a file declares it (the simulator samples it).
//! - [`endpoint`]: [`EndpointConfig`], one `[[endpoints]]` entry with its sections: the router's view, the
//!   `upstream` the gateway sends to, and the provider model the simulator runs.
//! - [`numbers`]: [`round_sig`], numbers of generated configurations to 4 significant digits.
//! - [`policies`]: [`compile_policies`], the validation of every `[[policies]]` entry against the endpoints.
//! - [`quality`]: [`QualitySection`], the top-level `[quality]` section (discrimination, `router_auc`).
//! - [`scale`]: [`Scale`], a configuration with every duration divided by a factor (`routesim live`).

pub mod client;
pub mod dist;
pub mod endpoint;
pub mod error;
pub mod numbers;
pub mod parse;
pub mod policies;
pub mod quality;

pub use client::ClientConfig;
pub use dist::{DistConfig, DistValue};
pub use endpoint::{EndpointConfig, ErrorRates};
pub use error::SchemaError;
pub use numbers::round_sig;
pub use parse::{nearest, parse_toml};
pub use policies::compile_policies;
pub use quality::{QualitySection, quality_config};
