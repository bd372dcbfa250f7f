//! The peer gateways routesim reads and writes configs of (LiteLLM, Portkey): which one, and reading a
//! config file of its format into an imported scenario ([`crate::import`]).

use crate::import::{self, ImportError, Imported};
use std::path::Path;

/// The gateways routesim reads and writes configs of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Gateway {
    /// A LiteLLM proxy config (YAML).
    Litellm,
    /// A Portkey gateway config (JSON).
    Portkey,
}

/// Reads `config` as `gateway`'s format.
pub fn read(gateway: Gateway, config: &Path) -> Result<(Imported, String), ImportError> {
    let text = std::fs::read_to_string(config).map_err(|e| ImportError {
        file: config.to_path_buf(),
        path: String::new(),
        line: None,
        message: format!("cannot read the config: {e}"),
    })?;
    let imported = parse(gateway, config, &text)?;
    Ok((imported, text))
}

/// Parses config text of `gateway`'s format.
pub fn parse(gateway: Gateway, config: &Path, text: &str) -> Result<Imported, ImportError> {
    match gateway {
        Gateway::Litellm => import::litellm::import(config, text),
        Gateway::Portkey => import::portkey::import(config, &import::portkey::strip_comments(text)),
    }
}
