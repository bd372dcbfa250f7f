//! The response cache and the batcher of the root policy.

use super::names::Names;
use crate::config::{ConfigError, PolicySpec};
use crate::model::Endpoint;
use crate::resilience::cache::MAX_CACHE_CAPACITY;
use crate::resilience::{Batcher, ResponseCache};

/// Compiles the root's `cache`: a capacity in range and a positive ttl.
pub(super) fn compile_cache(root: &PolicySpec) -> Result<Option<ResponseCache>, ConfigError> {
    Ok(match &root.cache {
        Some(c) if c.capacity == 0 || c.capacity > MAX_CACHE_CAPACITY => {
            return Err(ConfigError::new(
                "policy.cache.capacity",
                format!("expected a capacity in 1..={MAX_CACHE_CAPACITY}, found {}", c.capacity),
            ));
        }
        Some(c) if c.ttl.nanos() == 0 => {
            return Err(ConfigError::new("policy.cache.ttl", "expected a positive ttl like \"10m\""));
        }
        Some(c) => Some(ResponseCache::new(c)),
        None => None,
    })
}

/// Compiles the root's `batching`: a batch endpoint, a positive size and wait.
pub(super) fn compile_batcher(
    root: &PolicySpec,
    names: &Names<'_>,
    endpoints: &[Endpoint],
) -> Result<Option<Batcher>, ConfigError> {
    Ok(match &root.batching {
        Some(b) => {
            let e = names.endpoint(&b.endpoint, "policy.batching.endpoint")?;
            if !endpoints[e.get()].batch {
                return Err(ConfigError::new(
                    "policy.batching.endpoint",
                    format!("`{}` is not a batch endpoint: set `batch = true` on it", b.endpoint),
                ));
            }
            if b.max_size == 0 {
                return Err(ConfigError::new("policy.batching.max_size", "expected a positive batch size"));
            }
            if b.max_wait.nanos() == 0 {
                return Err(ConfigError::new("policy.batching.max_wait", "expected a positive duration like \"30m\""));
            }
            Some(Batcher::new(b, e))
        }
        None => None,
    })
}
