//! The LiteLLM compat settings: cooldowns and the tracking that feeds the compat policies.

use super::super::compat::CompatTracking;
use super::super::cooldown::Cooldown;
use super::names::Names;
use crate::config::{ConfigError, PolicyKind, PolicySpec};
use crate::model::EndpointIdx;
use crate::state::TrackingConfig;

/// Compiles the root's `cooldown` (LiteLLM cooldowns, which need the circuit breaker off).
pub(super) fn compile_cooldown(
    root: &PolicySpec,
    tracking: &TrackingConfig,
    names: &Names<'_>,
) -> Result<Option<Cooldown>, ConfigError> {
    Ok(match &root.cooldown {
        Some(c) => {
            if tracking.circuit.enabled {
                return Err(ConfigError::new(
                    "policy.cooldown",
                    "LiteLLM cooldowns replace the circuit breaker: set tracking.circuit.enabled = false",
                ));
            }
            if c.cooldown_time.nanos() == 0 {
                return Err(ConfigError::new(
                    "policy.cooldown.cooldown_time",
                    "expected a positive duration like \"5s\"",
                ));
            }
            for (i, id) in c.single_deployment.iter().enumerate() {
                names.endpoint(id, &format!("policy.cooldown.single_deployment[{i}]"))?;
            }
            Some(Cooldown { allowed_fails: c.allowed_fails, time: c.cooldown_time.nanos() })
        }
        None => None,
    })
}

/// The LiteLLM compat tracking a router needs: `Some` when a policy is a LiteLLM compat kind or cooldowns are on.
pub(super) fn compat_tracking(
    specs: &[(&PolicySpec, String)],
    reachable: &[bool],
    policies_targets: &[Vec<EndpointIdx>],
    n: usize,
    cooldown: bool,
) -> Result<Option<CompatTracking>, ConfigError> {
    let compat_kind = |k: PolicyKind| {
        matches!(
            k,
            PolicyKind::LitellmLeastBusy
                | PolicyKind::LitellmUsageV2
                | PolicyKind::LitellmLatency
                | PolicyKind::LitellmCost
        )
    };
    if !cooldown && !specs.iter().enumerate().any(|(i, (s, _))| reachable[i] && compat_kind(s.kind)) {
        return Ok(None);
    }
    let mut samples: Option<(u32, &str)> = None;
    let mut latency_group_of = vec![u16::MAX; n];
    let mut latency_groups = Vec::new();
    for (i, (s, p)) in specs.iter().enumerate() {
        if s.kind != PolicyKind::LitellmLatency || !reachable[i] {
            continue;
        }
        let k = s.samples.unwrap_or(10);
        if !(1..=crate::state::MAX_LATENCY_SAMPLES as u32).contains(&k) {
            return Err(ConfigError::new(
                format!("{p}.samples"),
                format!("expected 1..={}, found {k}", crate::state::MAX_LATENCY_SAMPLES),
            ));
        }
        match samples {
            Some((other, q)) if other != k => {
                return Err(ConfigError::new(
                    format!("{p}.samples"),
                    format!(
                        "every litellm-latency policy of a router keeps the same list size: {q} has {other}, found {k}"
                    ),
                ));
            }
            _ => samples = Some((k, p)),
        }
        let ttl = s.ttl.map_or(3_600 * crate::model::NANOS_PER_SEC, |d| d.nanos());
        for (j, e) in policies_targets[i].iter().enumerate() {
            if latency_group_of[e.get()] != u16::MAX {
                return Err(ConfigError::new(
                    format!("{p}.targets[{j}]"),
                    "an endpoint belongs to at most one litellm-latency policy (one LiteLLM model group)",
                ));
            }
            latency_group_of[e.get()] = latency_groups.len() as u16;
        }
        latency_groups.push((policies_targets[i].clone(), ttl));
    }
    Ok(Some(CompatTracking { samples: samples.map_or(10, |(k, _)| k as usize), latency_group_of, latency_groups }))
}
