//! `[quality]`: the quality model's shared settings, in a scenario and in a gateway config.
//!
//! ```toml
//! [quality]
//! discrimination = { default = 1.7, code = 2.2 }   # per task class, > 0 (router-core's `QualityConfig`)
//! router_auc = 0.8                                  # simulator only: ranking quality of the difficulty estimate
//! ```
//!
//! Endpoints state their accuracies in `[[endpoints]] quality = { default = 0.8, code = 0.62 }`; those are
//! checked by router-core when the policies are compiled (field `endpoints[i].quality.<class>`).

use crate::error::SchemaError;
use router_core::QualityConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The top-level `[quality]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySection {
    /// Task class -> discrimination `a` (finite, > 0); `default` applies to classes not listed (1.7 when
    /// neither is given).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub discrimination: BTreeMap<String, f64>,
    /// Simulator only (the gateway accepts and ignores it): the ranking quality of the difficulty estimate
    /// each request carries, in 0.5..=1 (0.5: no information, 1: the true difficulty). Without it requests
    /// carry no estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_auc: Option<f64>,
}

impl QualitySection {
    /// Checks the section: every discrimination finite and > 0 (`quality.discrimination.<class>`),
    /// `router_auc` in 0.5..=1 (`quality.router_auc`).
    pub fn validate(&self, file: &Path) -> Result<(), SchemaError> {
        for (class, &a) in &self.discrimination {
            if !(a.is_finite() && a > 0.0) {
                return Err(SchemaError::invalid(
                    file,
                    &format!("quality.discrimination.{class}"),
                    format!("expected a finite discrimination > 0 (1.7 is the classical default), found {a}"),
                ));
            }
        }
        if let Some(auc) = self.router_auc
            && !(auc.is_finite() && (0.5..=1.0).contains(&auc))
        {
            return Err(SchemaError::invalid(
                file,
                "quality.router_auc",
                format!("expected an AUC in 0.5..=1 (0.5: the estimate carries no information), found {auc}"),
            ));
        }
        Ok(())
    }

    /// The part router-core reads: the discrimination per class.
    pub fn router_config(&self) -> QualityConfig {
        QualityConfig { discrimination: self.discrimination.clone() }
    }
}

/// The validated router-core view of an optional `[quality]` section of `file` (the default when absent).
pub fn quality_config(section: Option<&QualitySection>, file: &Path) -> Result<QualityConfig, SchemaError> {
    match section {
        Some(q) => {
            q.validate(file)?;
            Ok(q.router_config())
        }
        None => Ok(QualityConfig::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> QualitySection {
        toml::from_str(text).expect("section")
    }

    #[test]
    fn parses_and_validates_with_field_paths() {
        let q = parse("discrimination = { default = 1.7, code = 2.2 }\nrouter_auc = 0.8");
        q.validate(Path::new("s.toml")).expect("valid");
        assert_eq!(q.router_config().discrimination(Some("code")), 2.2);
        let e = parse("discrimination = { code = 0 }").validate(Path::new("s.toml")).expect_err("a = 0");
        assert_eq!(e.path, "quality.discrimination.code");
        let e = parse("router_auc = 0.4").validate(Path::new("s.toml")).expect_err("auc < 0.5");
        assert_eq!(e.path, "quality.router_auc");
        assert!(toml::from_str::<QualitySection>("router_uac = 0.8").is_err(), "unknown fields are rejected");
    }
}
