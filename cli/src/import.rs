//! `routesim import litellm|portkey CONFIG`: a gateway config turned into a scenario that runs as is (see
//! [`sim::import`]).

use anyhow::Context;
use sim::failure::Failure;
use sim::import::prices::{PriceMap, ProviderModels};
use sim::import::{self, ImportError, slug};
use sim::peer_gateway::{Gateway, read};
use std::path::PathBuf;

/// Arguments of `routesim import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Which gateway the config is for.
    #[arg(value_enum)]
    pub gateway: Gateway,
    /// The config file.
    pub config: PathBuf,
    /// Where to write the scenario (default: `<config name>.scenario.toml` in the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Provider models fitted by `routesim fit` (`providers.toml`), matched by endpoint id, else by model.
    #[arg(long)]
    pub providers: Option<PathBuf>,
    /// LiteLLM's model price file (`model_prices_and_context_window.json`) for endpoints without a price.
    #[arg(long)]
    pub prices: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &ImportArgs) -> Result<(), Failure> {
    let invalid = |e: ImportError| Failure::Invalid(e.to_string());
    let (imported, _) = read(args.gateway, &args.config).map_err(invalid)?;
    let providers = args.providers.as_deref().map(ProviderModels::load).transpose().map_err(invalid)?;
    let prices = args.prices.as_deref().map(PriceMap::load).transpose().map_err(invalid)?;
    let stem = args.config.file_stem().map_or("imported".into(), |s| s.to_string_lossy().to_string());
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("{}.scenario.toml", slug(&stem))));
    let rendered = import::scenario::render(&imported, providers.as_ref(), prices.as_ref(), &slug(&stem), &out)
        .map_err(invalid)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, &rendered.text).with_context(|| format!("writing {}", out.display()))?;
    if !imported.warnings.is_empty() {
        eprintln!("warning: keys ignored (they do not change routing): {}", imported.warnings.join(", "));
    }
    for a in &imported.approximations {
        eprintln!("note: approximated: {a}");
    }
    if !rendered.defaulted.is_empty() {
        eprintln!(
            "note: default provider models (flagged in the file) for {}; pass --providers with `routesim fit` output",
            rendered.defaulted.join(", ")
        );
    }
    println!(
        "{} config {}: {} endpoints, policy `{}` with {} groups; scenario written to {}\nnext: routesim run {}",
        imported.gateway,
        args.config.display(),
        imported.endpoints.len(),
        imported.policy.name,
        imported.groups.len(),
        out.display(),
        out.display()
    );
    Ok(())
}
