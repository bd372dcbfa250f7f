//! Checks of the plain settings: the endpoints, the tracking (averages, windows, circuit) and the retry policy.

use crate::config::{ConfigError, RetryConfig, check_range};
use crate::model::{Endpoint, MAX_ENDPOINTS};
use crate::quality::QualityConfig;
use crate::state::TrackingConfig;

/// Checks the endpoint list: not empty, at most [`MAX_ENDPOINTS`], unique non-empty ids, non-negative weights
/// and prices, positive limits.
pub(super) fn validate_endpoints(endpoints: &[Endpoint]) -> Result<(), ConfigError> {
    if endpoints.is_empty() {
        return Err(ConfigError::new("endpoints", "expected at least one endpoint"));
    }
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(ConfigError::new(
            "endpoints",
            format!("expected at most {MAX_ENDPOINTS} endpoints, found {}", endpoints.len()),
        ));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let p = format!("endpoints[{i}]");
        if e.id.trim().is_empty() {
            return Err(ConfigError::new(format!("{p}.id"), "expected a non-empty id"));
        }
        if let Some(j) = endpoints[..i].iter().position(|o| o.id == e.id) {
            return Err(ConfigError::new(
                format!("{p}.id"),
                format!("duplicate endpoint id `{}` (also endpoints[{j}])", e.id),
            ));
        }
        check_range(&format!("{p}.weight"), e.weight, 0.0, f64::MAX)?;
        check_range(&format!("{p}.price.input_per_mtok"), e.price.input_per_mtok, 0.0, f64::MAX)?;
        check_range(&format!("{p}.price.output_per_mtok"), e.price.output_per_mtok, 0.0, f64::MAX)?;
        let l = &e.limits;
        for (name, v) in [
            ("rpm", l.rpm.map(u64::from)),
            ("tpm", l.tpm),
            ("concurrency", l.concurrency.map(u64::from)),
            ("context_window", l.context_window.map(u64::from)),
        ] {
            if v == Some(0) {
                return Err(ConfigError::new(
                    format!("{p}.limits.{name}"),
                    "expected a positive limit (omit it for unlimited), found 0",
                ));
            }
        }
        for (class, &acc) in &e.quality.0 {
            if !(acc.is_finite() && (0.0..=1.0).contains(&acc)) {
                return Err(ConfigError::new(
                    format!("{p}.quality.{class}"),
                    format!("expected an accuracy (the fraction answered acceptably) in 0..=1, found {acc}"),
                ));
            }
        }
    }
    Ok(())
}

/// The quality model's shared parameters: every discrimination finite and positive.
pub(super) fn validate_quality(q: &QualityConfig) -> Result<(), ConfigError> {
    for (class, &a) in &q.discrimination {
        if !(a.is_finite() && a > 0.0) {
            return Err(ConfigError::new(
                format!("quality.discrimination.{class}"),
                format!("expected a finite discrimination > 0 (1.7 is the classical default), found {a}"),
            ));
        }
    }
    Ok(())
}

/// Checks the tracking configuration at path `p`: one of `window` or `alpha` per average, positive windows, an
/// error-rate threshold in (0, 1].
pub(super) fn validate_tracking(t: &TrackingConfig, p: &str) -> Result<(), ConfigError> {
    for (name, ema) in [("latency", &t.latency), ("ttft", &t.ttft)] {
        match (ema.window, ema.alpha) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(format!("{p}.{name}"), "expected either `window` or `alpha`, not both"));
            }
            (_, Some(a)) => check_range(&format!("{p}.{name}.alpha"), a, f64::MIN_POSITIVE, 1.0)?,
            (Some(w), None) if w.nanos() == 0 => {
                return Err(ConfigError::new(format!("{p}.{name}.window"), "expected a positive window like \"5m\""));
            }
            _ => {}
        }
    }
    for (name, d) in [("error_window", t.error_window), ("quota_window", t.quota_window), ("peak_decay", t.peak_decay)]
    {
        if d.nanos() == 0 {
            return Err(ConfigError::new(format!("{p}.{name}"), "expected a positive duration"));
        }
    }
    check_range(&format!("{p}.circuit.error_rate"), t.circuit.error_rate, f64::MIN_POSITIVE, 1.0)?;
    Ok(())
}

/// Checks the retry policy at path `p`: the attempt limit, the backoff multiplier and delays, the budget.
pub(super) fn validate_retry(r: &RetryConfig, p: &str) -> Result<(), ConfigError> {
    if !(1..=100).contains(&r.max_attempts) {
        return Err(ConfigError::new(
            format!("{p}.max_attempts"),
            format!("expected 1..=100, found {}", r.max_attempts),
        ));
    }
    check_range(&format!("{p}.multiplier"), r.multiplier, 1.0, 100.0)?;
    if r.base_delay > r.max_delay {
        return Err(ConfigError::new(format!("{p}.base_delay"), "expected base_delay <= max_delay"));
    }
    if let Some(b) = &r.budget {
        check_range(&format!("{p}.budget.ratio"), b.ratio, 0.0, 1000.0)?;
        check_range(&format!("{p}.budget.min_per_s"), b.min_per_s, 0.0, 1e9)?;
    }
    Ok(())
}
