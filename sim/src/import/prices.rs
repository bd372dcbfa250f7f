//! Prices and context windows from a LiteLLM model-price file (`model_prices_and_context_window.json`, passed
//! with `--prices`), and provider models from a `routesim fit` output (`--providers`).

use super::ImportError;
use crate::provider::EndpointSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The known-prices table (see [`PriceMap::known`]).
const KNOWN_PRICES: &str = include_str!("known-prices.json");

/// One entry of LiteLLM's price map (other keys are ignored).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PriceEntry {
    /// USD per input token.
    #[serde(default)]
    pub input_cost_per_token: Option<f64>,
    /// USD per output token.
    #[serde(default)]
    pub output_cost_per_token: Option<f64>,
    /// Context window.
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
}

/// A price map: model name -> entry.
#[derive(Clone, Debug, Default)]
pub struct PriceMap(pub BTreeMap<String, PriceEntry>);

impl PriceMap {
    /// Reads a LiteLLM price JSON. Entries that are not objects (its `sample_spec` documentation) are skipped.
    pub fn load(file: &Path) -> Result<PriceMap, ImportError> {
        let text = std::fs::read_to_string(file).map_err(|e| ImportError {
            file: file.to_path_buf(),
            path: String::new(),
            line: None,
            message: format!("cannot read the price file: {e}"),
        })?;
        let raw: BTreeMap<String, serde_json::Value> = super::yaml::parse_json(file, &text)?;
        let mut map = BTreeMap::new();
        for (k, v) in raw {
            if let Ok(e) = serde_json::from_value::<PriceEntry>(v) {
                map.insert(k, e);
            }
        }
        Ok(PriceMap(map))
    }

    /// routesim's dated table of list prices and context windows of well-known models (`known-prices.json`,
    /// taken by `scripts/known_prices.py` from the price map of the pinned LiteLLM), used when neither the
    /// config nor `--providers` nor `--prices` prices an endpoint; [`PriceMap::known_source`] says where from.
    pub fn known() -> PriceMap {
        let raw: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(KNOWN_PRICES).expect("known-prices.json is valid JSON (checked by a test)");
        PriceMap(
            raw.into_iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .filter_map(|(k, v)| serde_json::from_value::<PriceEntry>(v).ok().map(|e| (k, e)))
                .collect(),
        )
    }

    /// Where the known table comes from and when it was taken (`LiteLLM 1.110.2 ..., 2026-12-07`).
    pub fn known_source() -> String {
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(KNOWN_PRICES).unwrap_or_default();
        let field = |k: &str| raw.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
        format!("{}, taken {}", field("_source"), field("_date"))
    }

    /// The entry for `model` (`azure/gpt-4o`), else for the model without its provider prefix (`gpt-4o`).
    pub fn lookup(&self, model: &str) -> Option<&PriceEntry> {
        self.0.get(model).or_else(|| model.split_once('/').and_then(|(_, m)| self.0.get(m)))
    }

    /// [`PriceMap::lookup`], then the same without a trailing release date (`claude-3-5-sonnet-20241022` ->
    /// `claude-3-5-sonnet`), as the known table names models.
    pub fn lookup_undated(&self, model: &str) -> Option<&PriceEntry> {
        self.lookup(model).or_else(|| {
            let (head, tail) = model.rsplit_once('-')?;
            (tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
            self.lookup(head)
        })
    }
}

/// Provider models fitted by `routesim fit`: `[[endpoints]]` entries, found by endpoint id, else by model.
#[derive(Clone, Debug, Default)]
pub struct ProviderModels(pub Vec<EndpointSpec>);

impl ProviderModels {
    /// Reads a `providers.toml`.
    pub fn load(file: &Path) -> Result<ProviderModels, ImportError> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            endpoints: Vec<EndpointSpec>,
        }
        let text = std::fs::read_to_string(file).map_err(|e| ImportError {
            file: file.to_path_buf(),
            path: String::new(),
            line: None,
            message: format!("cannot read the providers file: {e}"),
        })?;
        let doc: Doc = crate::scenario::diag::parse_toml(file, &text).map_err(|e| ImportError {
            file: file.to_path_buf(),
            path: e.path.clone(),
            line: e.line,
            message: e.message.clone(),
        })?;
        Ok(ProviderModels(doc.endpoints))
    }

    /// The fitted model of endpoint `id`, else of the first endpoint serving `model` (with or without its
    /// provider prefix).
    pub fn find(&self, id: &str, model: &str) -> Option<&EndpointSpec> {
        let bare = model.split_once('/').map_or(model, |(_, m)| m);
        self.0
            .iter()
            .find(|e| e.id == id)
            .or_else(|| self.0.iter().find(|e| !e.model.is_empty() && (e.model == model || e.model == bare)))
    }
}
