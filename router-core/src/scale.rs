//! Configurations with every duration divided by a factor: `routesim live` runs the gateway in a world
//! `factor` times faster than the scenario's, so the policies' delays, windows, timeouts and cool-downs all
//! shrink by that factor while every other value (names, counts, weights, probabilities) stays.
//!
//! Each implementation destructures its type field by field (no `..`), so a field added to a configuration
//! does not compile until it is placed here: scaled if it is a duration, kept if not.

use crate::config::{
    BatchConfig, CacheConfig, CooldownConfig, GroupRetryConfig, HealthConfig, PolicySpec, RetryConfig, RouterConfig,
    TargetRetryConfig,
};
use crate::duration::Duration;
use crate::state::{CircuitConfig, EmaConfig, TrackingConfig};

/// A value with every duration in it divided by `factor` (> 0).
pub trait TimeScaled {
    /// The value, its durations divided by `factor`.
    fn time_scaled(&self, factor: f64) -> Self;
}

impl TimeScaled for Duration {
    fn time_scaled(&self, factor: f64) -> Self {
        Duration::from_secs_f64(self.nanos() as f64 / 1e9 / factor)
    }
}

impl<T: TimeScaled> TimeScaled for Option<T> {
    fn time_scaled(&self, factor: f64) -> Self {
        self.as_ref().map(|x| x.time_scaled(factor))
    }
}

impl TimeScaled for RouterConfig {
    /// The policy and the groups scaled; endpoints carry no duration.
    fn time_scaled(&self, factor: f64) -> Self {
        let RouterConfig { endpoints, policy, groups, seed, quality } = self;
        RouterConfig {
            endpoints: endpoints.clone(),
            policy: policy.time_scaled(factor),
            groups: groups.iter().map(|g| g.time_scaled(factor)).collect(),
            seed: *seed,
            quality: quality.clone(),
        }
    }
}

impl TimeScaled for PolicySpec {
    fn time_scaled(&self, f: f64) -> Self {
        let PolicySpec {
            name,
            kind,
            description,
            targets,
            buffer,
            slow_threshold,
            threshold,
            strong,
            min_quality,
            verifier,
            tiers,
            weights,
            latency_ceiling,
            rules,
            default,
            key,
            virtual_nodes,
            ttl,
            samples,
            fallbacks,
            retry,
            cache,
            batching,
            tracking,
            timeout,
            ttft_timeout,
            cooldown,
            group_retry,
            target_retry,
        } = self;
        PolicySpec {
            name: name.clone(),
            kind: *kind,
            description: description.clone(),
            targets: targets.clone(),
            buffer: *buffer,
            slow_threshold: slow_threshold.time_scaled(f),
            threshold: *threshold,
            strong: strong.clone(),
            min_quality: *min_quality,
            verifier: verifier.clone(),
            tiers: tiers.clone(),
            weights: *weights,
            latency_ceiling: latency_ceiling.time_scaled(f),
            rules: rules.clone(),
            default: default.clone(),
            key: key.clone(),
            virtual_nodes: *virtual_nodes,
            ttl: ttl.time_scaled(f),
            samples: *samples,
            fallbacks: fallbacks.clone(),
            retry: retry.time_scaled(f),
            cache: cache.time_scaled(f),
            batching: batching.time_scaled(f),
            tracking: tracking.time_scaled(f),
            timeout: timeout.time_scaled(f),
            ttft_timeout: ttft_timeout.time_scaled(f),
            cooldown: cooldown.time_scaled(f),
            group_retry: group_retry.time_scaled(f),
            target_retry: target_retry.time_scaled(f),
        }
    }
}

impl TimeScaled for RetryConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let RetryConfig {
            max_attempts,
            retry_on,
            base_delay,
            max_delay,
            multiplier,
            jitter,
            honor_retry_after,
            same_endpoint,
            budget,
        } = self;
        RetryConfig {
            max_attempts: *max_attempts,
            retry_on: retry_on.clone(),
            base_delay: base_delay.time_scaled(f),
            max_delay: max_delay.time_scaled(f),
            multiplier: *multiplier,
            jitter: *jitter,
            honor_retry_after: *honor_retry_after,
            same_endpoint: *same_endpoint,
            budget: *budget,
        }
    }
}

impl TimeScaled for CacheConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let CacheConfig { ttl, capacity } = self;
        CacheConfig { ttl: ttl.time_scaled(f), capacity: *capacity }
    }
}

impl TimeScaled for BatchConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let BatchConfig { endpoint, max_size, max_wait } = self;
        BatchConfig { endpoint: endpoint.clone(), max_size: *max_size, max_wait: max_wait.time_scaled(f) }
    }
}

impl TimeScaled for TargetRetryConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let TargetRetryConfig { attempts, on, base_delay, fallback_on } = self;
        TargetRetryConfig {
            attempts: *attempts,
            on: on.clone(),
            base_delay: base_delay.time_scaled(f),
            fallback_on: fallback_on.clone(),
        }
    }
}

impl TimeScaled for CooldownConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let CooldownConfig { allowed_fails, cooldown_time, single_deployment } = self;
        CooldownConfig {
            allowed_fails: *allowed_fails,
            cooldown_time: cooldown_time.time_scaled(f),
            single_deployment: single_deployment.clone(),
        }
    }
}

impl TimeScaled for GroupRetryConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let GroupRetryConfig { num_retries, retry_after, fallbacks } = self;
        GroupRetryConfig {
            num_retries: *num_retries,
            retry_after: retry_after.time_scaled(f),
            fallbacks: fallbacks.clone(),
        }
    }
}

impl TimeScaled for TrackingConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let TrackingConfig {
            latency,
            ttft,
            peak_decay,
            peak_default,
            error_window,
            quota_window,
            retry_after_default,
            default_output_tokens,
            circuit,
        } = self;
        TrackingConfig {
            latency: latency.time_scaled(f),
            ttft: ttft.time_scaled(f),
            peak_decay: peak_decay.time_scaled(f),
            peak_default: peak_default.time_scaled(f),
            error_window: error_window.time_scaled(f),
            quota_window: quota_window.time_scaled(f),
            retry_after_default: retry_after_default.time_scaled(f),
            default_output_tokens: *default_output_tokens,
            circuit: circuit.time_scaled(f),
        }
    }
}

impl TimeScaled for EmaConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let EmaConfig { window, alpha, initial } = self;
        EmaConfig { window: window.time_scaled(f), alpha: *alpha, initial: initial.time_scaled(f) }
    }
}

impl TimeScaled for CircuitConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let CircuitConfig { enabled, consecutive_failures, error_rate, min_requests, cooldown, half_open_probes } =
            self;
        CircuitConfig {
            enabled: *enabled,
            consecutive_failures: *consecutive_failures,
            error_rate: *error_rate,
            min_requests: *min_requests,
            cooldown: cooldown.time_scaled(f),
            half_open_probes: *half_open_probes,
        }
    }
}

impl TimeScaled for HealthConfig {
    fn time_scaled(&self, f: f64) -> Self {
        let HealthConfig { interval } = self;
        HealthConfig { interval: interval.time_scaled(f) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> PolicySpec {
        toml::from_str(text).expect("policy")
    }

    #[test]
    fn durations_are_divided_and_names_are_left_alone() {
        let p = policy(
            r#"name = "5m"
kind = "latency"
targets = ["1h"]
slow_threshold = "20s"
retry = { max_attempts = 3, base_delay = "200ms", max_delay = "5s" }
tracking = { quota_window = "1m", circuit = { cooldown = "30s" } }
"#,
        )
        .time_scaled(10.0);
        assert_eq!(p.name, "5m");
        assert_eq!(p.targets[0].id(), "1h");
        assert_eq!(p.slow_threshold.map(|d| d.to_string()).as_deref(), Some("2s"));
        let r = p.retry.as_ref().expect("retry");
        assert_eq!((r.base_delay.to_string().as_str(), r.max_delay.to_string().as_str()), ("20ms", "500ms"));
        assert_eq!(r.max_attempts, 3);
        let t = p.tracking.as_ref().expect("tracking");
        assert_eq!(t.quota_window.to_string(), "6s");
        assert_eq!(t.circuit.cooldown.to_string(), "3s");
    }

    /// A string that reads like a duration but names something is not scaled (dividing every duration-like
    /// string of the TOML form, as `routesim live` once did, turned a batch endpoint `1h` into `6m`).
    #[test]
    fn names_that_look_like_durations_stay() {
        let p = policy(
            r#"name = "p"
kind = "round-robin"
batching = { endpoint = "1h", max_size = 8, max_wait = "2s" }
cooldown = { cooldown_time = "10s", single_deployment = ["30s"] }
"#,
        )
        .time_scaled(10.0);
        let b = p.batching.as_ref().expect("batching");
        assert_eq!((b.endpoint.as_str(), b.max_wait.to_string().as_str()), ("1h", "200ms"));
        let c = p.cooldown.as_ref().expect("cooldown");
        assert_eq!((c.single_deployment[0].as_str(), c.cooldown_time.to_string().as_str()), ("30s", "1s"));
    }
}
