//! The names a configuration refers to: endpoint ids and policy (root and group) names, resolved to indices
//! with errors that list what is known.

use crate::config::ConfigError;
use crate::model::EndpointIdx;
use crate::policy::{PolicyIdx, Target};
use std::collections::BTreeMap;

/// Endpoint ids and policy names, each with its index.
pub(super) struct Names<'c> {
    pub(super) endpoints: BTreeMap<&'c str, EndpointIdx>,
    pub(super) policies: BTreeMap<&'c str, PolicyIdx>,
}

impl Names<'_> {
    /// The endpoint or group `name`, named at `path` (the root cannot be a target).
    pub(super) fn target(&self, name: &str, path: &str) -> Result<Target, ConfigError> {
        if let Some(&e) = self.endpoints.get(name) {
            return Ok(Target::Endpoint(e));
        }
        if let Some(&p) = self.policies.get(name) {
            if p.0 == 0 {
                return Err(ConfigError::new(
                    path,
                    format!("`{name}` is the root policy itself: a policy cannot target itself"),
                ));
            }
            return Ok(Target::Policy(p));
        }
        Err(ConfigError::new(
            path,
            format!("unknown target `{name}`: expected an endpoint id or a group name ({})", self.known()),
        ))
    }

    /// The endpoint `name`, named at `path`.
    pub(super) fn endpoint(&self, name: &str, path: &str) -> Result<EndpointIdx, ConfigError> {
        self.endpoints.get(name).copied().ok_or_else(|| {
            let ids: Vec<_> = self.endpoints.keys().copied().collect();
            ConfigError::new(path, format!("unknown endpoint `{name}`: expected one of {}", ids.join(", ")))
        })
    }

    /// The known endpoints and groups, for an error message.
    pub(super) fn known(&self) -> String {
        let eps: Vec<_> = self.endpoints.keys().copied().collect();
        let gs: Vec<_> = self.policies.iter().filter(|(_, p)| p.0 != 0).map(|(n, _)| *n).collect();
        if gs.is_empty() {
            format!("endpoints: {}", eps.join(", "))
        } else {
            format!("endpoints: {}; groups: {}", eps.join(", "), gs.join(", "))
        }
    }
}
