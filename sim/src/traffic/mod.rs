//! Traffic: when requests arrive and what they are.
//!
//! Arrivals are a Poisson process whose rate is `rate x profile(t) x spikes(t) x burst state(t)` (a
//! non-homogeneous Poisson process simulated by thinning, optionally modulated by a Markov chain: MMPP
//! bursts). Each request belongs to a task class (chosen by weight) that gives its token-count
//! distributions, complexity, metadata tags, required capabilities, and whether it may be deferred to a
//! batch or repeat an earlier prompt (cache).
//!
//! - [`profile`]: rate profiles (constant, business hours, diurnal, points) and spikes.
//! - [`arrivals`]: the arrival source that the engine pulls from, one request at a time.

pub mod arrivals;
pub mod profile;

pub use arrivals::{Arrival, ArrivalSource, Limit};
pub use profile::{Profile, Spike};

use crate::dist::{DistConfig, Sampler, ToSampler};
use router_core::{Duration, MetaValue, Nanos, RequestInfo, nanos_to_secs, secs_to_nanos};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One state of the MMPP burst chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstState {
    /// Rate multiplier in this state.
    pub factor: f64,
    /// Mean time spent in this state (exponentially distributed).
    pub mean_duration: Duration,
}

/// Markov-modulated bursts: the chain starts in the first state and, when it leaves a state, moves to the
/// next one in the list (cyclically): two states give an on/off burst process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstConfig {
    /// The states, at least two.
    pub states: Vec<BurstState>,
}

/// A task class: a kind of request with its own token counts and tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassConfig {
    /// Name, shown as the request's `task_class`.
    pub name: String,
    /// Relative frequency (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// Prompt tokens (rounded, at least 1).
    pub input_tokens: DistConfig<f64>,
    /// Completion tokens (rounded, at least 1).
    pub output_tokens: DistConfig<f64>,
    /// Whether the request announces its output length (like `max_tokens`), so routers can price it exactly.
    #[serde(default)]
    pub output_known: bool,
    /// Complexity score the router may use (0..=1).
    #[serde(default)]
    pub complexity: Option<f64>,
    /// Metadata tags (string, number or boolean) for conditional routing.
    #[serde(default)]
    pub metadata: BTreeMap<String, MetaValue>,
    /// Capabilities an endpoint needs to serve it.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Whether the client streams the response.
    #[serde(default)]
    pub streaming: bool,
    /// Fraction of requests that may be deferred to a batch endpoint.
    #[serde(default)]
    pub deferrable: f64,
    /// Fraction of requests that repeat one of `distinct_prompts` earlier prompts exactly (cacheable).
    #[serde(default)]
    pub repeat: f64,
    /// How many distinct prompts repeats are drawn from, uniformly (default 1000).
    #[serde(default = "thousand")]
    pub distinct_prompts: u64,
}

fn one() -> f64 {
    1.0
}
fn thousand() -> u64 {
    1000
}

/// The `[traffic]` table of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficConfig {
    /// Arrival rate in requests per second at profile factor 1.
    pub rate: f64,
    /// Rate profile (default constant).
    #[serde(default)]
    pub profile: Profile,
    /// Time of day at the start of the run, for daily profiles (default 0 = midnight).
    #[serde(default)]
    pub clock: Duration,
    /// Temporary multiplications of the rate.
    #[serde(default)]
    pub spikes: Vec<Spike>,
    /// MMPP bursts.
    #[serde(default)]
    pub bursts: Option<BurstConfig>,
    /// Task classes (at least one).
    pub classes: Vec<ClassConfig>,
}

/// One compiled class.
#[derive(Clone, Debug)]
pub(crate) struct Class {
    pub(crate) input: Sampler,
    pub(crate) output: Sampler,
    pub(crate) output_known: bool,
    pub(crate) deferrable: f64,
    pub(crate) repeat: f64,
    pub(crate) distinct: u64,
}

/// The validated traffic model, shared (read-only) by every run of a scenario.
#[derive(Clone, Debug)]
pub struct TrafficModel {
    config: TrafficConfig,
    pub(crate) classes: Vec<Class>,
    /// Cumulative normalised class weights.
    pub(crate) cum_weights: Vec<f64>,
    /// Upper bound of the rate (thinning envelope), requests per second.
    pub(crate) rate_max: f64,
    /// Whether the rate is constant (no thinning needed).
    pub(crate) constant: bool,
}

impl TrafficModel {
    /// Validates a traffic config; `Err((field path relative to [traffic], message))`.
    pub fn new(cfg: &TrafficConfig) -> Result<TrafficModel, (String, String)> {
        if !(cfg.rate.is_finite() && cfg.rate > 0.0) {
            return Err(("rate".into(), format!("expected a rate in requests per second > 0, found {}", cfg.rate)));
        }
        cfg.profile.validate().map_err(|(f, m)| (format!("profile.{f}"), m))?;
        for (i, s) in cfg.spikes.iter().enumerate() {
            s.validate().map_err(|(f, m)| (format!("spikes[{i}].{f}"), m))?;
        }
        let mut burst_max = 1.0f64;
        if let Some(b) = &cfg.bursts {
            if b.states.len() < 2 {
                return Err(("bursts.states".into(), format!("expected at least 2 states, found {}", b.states.len())));
            }
            for (i, s) in b.states.iter().enumerate() {
                if !(s.factor.is_finite() && s.factor >= 0.0) {
                    return Err((
                        format!("bursts.states[{i}].factor"),
                        format!("expected a multiplier >= 0, found {}", s.factor),
                    ));
                }
                if s.mean_duration.nanos() == 0 {
                    return Err((format!("bursts.states[{i}].mean_duration"), "expected a positive duration".into()));
                }
            }
            burst_max = b.states.iter().map(|s| s.factor).fold(0.0, f64::max);
        }
        if cfg.classes.is_empty() {
            return Err(("classes".into(), "expected at least one [[traffic.classes]] entry".into()));
        }
        let mut classes = Vec::with_capacity(cfg.classes.len());
        for (i, c) in cfg.classes.iter().enumerate() {
            let at = |f: &str| format!("classes[{i}].{f}");
            if cfg.classes[..i].iter().any(|d| d.name == c.name) {
                return Err((at("name"), format!("duplicate class name `{}`", c.name)));
            }
            if !(c.weight.is_finite() && c.weight >= 0.0) {
                return Err((at("weight"), format!("expected a weight >= 0, found {}", c.weight)));
            }
            c.input_tokens.validate().map_err(|(f, m)| (at(&format!("input_tokens.{f}")), m))?;
            c.output_tokens.validate().map_err(|(f, m)| (at(&format!("output_tokens.{f}")), m))?;
            for (name, p) in [("deferrable", c.deferrable), ("repeat", c.repeat)] {
                if !(0.0..=1.0).contains(&p) {
                    return Err((at(name), format!("expected a fraction in 0..=1, found {p}")));
                }
            }
            if let Some(x) = c.complexity
                && !(0.0..=1.0).contains(&x)
            {
                return Err((at("complexity"), format!("expected 0..=1, found {x}")));
            }
            if c.repeat > 0.0 && c.distinct_prompts == 0 {
                return Err((at("distinct_prompts"), "expected at least 1 distinct prompt when repeat > 0".into()));
            }
            classes.push(Class {
                input: c.input_tokens.sampler(),
                output: c.output_tokens.sampler(),
                output_known: c.output_known,
                deferrable: c.deferrable,
                repeat: c.repeat,
                distinct: c.distinct_prompts.max(1),
            });
        }
        let total: f64 = cfg.classes.iter().map(|c| c.weight).sum();
        if total <= 0.0 {
            return Err(("classes".into(), "expected some class with a weight above 0".into()));
        }
        let mut acc = 0.0;
        let mut cum_weights: Vec<f64> = cfg
            .classes
            .iter()
            .map(|c| {
                acc += c.weight / total;
                acc
            })
            .collect();
        if let Some(last) = cum_weights.last_mut() {
            *last = 1.0;
        }
        let spike_max: f64 = cfg.spikes.iter().map(|s| s.factor.max(1.0)).product();
        let rate_max = cfg.rate * cfg.profile.max_factor() * spike_max * burst_max;
        let constant = matches!(cfg.profile, Profile::Constant) && cfg.spikes.is_empty() && cfg.bursts.is_none();
        Ok(TrafficModel { config: cfg.clone(), classes, cum_weights, rate_max, constant })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &TrafficConfig {
        &self.config
    }

    /// Number of task classes.
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// Task class names, in scenario order.
    pub fn class_names(&self) -> Vec<String> {
        self.config.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// The request rate (requests per second) at `t` seconds since the start, without MMPP bursts.
    pub fn rate_at(&self, t: f64) -> f64 {
        let tn = router_core::secs_to_nanos(t);
        let spikes: f64 = self.config.spikes.iter().map(|s| s.factor_at(tn)).product();
        self.config.rate * self.config.profile.factor(t, self.config.clock.as_secs_f64()) * spikes
    }

    /// [`rate_at`](Self::rate_at) of the time `now` (nanoseconds since the start), with the times
    /// `[from, until]` around `now` over which `rate_at` gives bit for bit the same rate: the flat piece of
    /// the profile (see [`Profile::flat_span`]) between spike edges, kept clear of each edge by
    /// [`profile::FLAT_MARGIN_S`]. On a ramp or near an edge the span is `now` alone.
    pub fn rate_span(&self, now: Nanos) -> (f64, Nanos, Nanos) {
        let t = nanos_to_secs(now);
        let rate = self.rate_at(t);
        let Some((lo, hi)) = self.config.profile.flat_span(t, self.config.clock.as_secs_f64()) else {
            return (rate, now, now);
        };
        let (mut from, mut until) = (secs_to_nanos(lo), secs_to_nanos(hi));
        // A spike's multiplier changes at its start and its end (`rate_at` reads them at `now` rounded
        // through seconds, which moves it by far less than the margin).
        let m = secs_to_nanos(profile::FLAT_MARGIN_S);
        for s in &self.config.spikes {
            let start = s.at.nanos();
            for edge in [start, start.saturating_add(s.duration.nanos())] {
                if now.saturating_add(m) < edge {
                    until = until.min(edge - m);
                } else if now >= edge.saturating_add(m) {
                    from = from.max(edge + m);
                } else {
                    return (rate, now, now);
                }
            }
        }
        if from > now || until < now {
            return (rate, now, now);
        }
        (rate, from, until)
    }

    /// The fixed part of a class's requests: name, complexity, metadata, capabilities, streaming. The engine
    /// fills in the per-request fields, so no request allocates.
    pub fn request_template(&self, class: usize) -> RequestInfo {
        let c = &self.config.classes[class];
        let mut info = RequestInfo::new(0, 0);
        info.task_class = Some(c.name.clone());
        info.complexity = c.complexity;
        info.metadata = c.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        info.required_capabilities = c.capabilities.clone();
        info.streaming = c.streaming;
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config(text: &str) -> TrafficConfig {
        toml::from_str(text).expect("traffic parses")
    }

    const BASE: &str = r#"
rate = 10.0
[[classes]]
name = "chat"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 50 }
"#;

    #[test]
    fn templates_carry_the_class_tags() {
        let text = format!(
            "{BASE}complexity = 0.7\ncapabilities = [\"vision\"]\nmetadata = {{ tier = \"pro\", priority = 2 }}\n"
        );
        let m = TrafficModel::new(&config(&text)).expect("valid");
        let t = m.request_template(0);
        assert_eq!(t.task_class.as_deref(), Some("chat"));
        assert_eq!(t.complexity, Some(0.7));
        assert_eq!(t.required_capabilities, vec!["vision".to_string()]);
        assert_eq!(t.metadata.len(), 2);
        assert_eq!(m.class_names(), vec!["chat".to_string()]);
    }

    #[test]
    fn invalid_traffic_names_the_field() {
        let cases = [
            (BASE.replace("rate = 10.0", "rate = 0.0"), "rate"),
            (format!("{BASE}deferrable = 1.5\n"), "classes[0].deferrable"),
            (BASE.replace("value = 50", "value = -5"), "classes[0].output_tokens.value"),
            (
                format!(
                    "{BASE}[[classes]]\nname = \"chat\"\ninput_tokens = {{ dist = \"constant\", value = 1 }}\noutput_tokens = {{ dist = \"constant\", value = 1 }}\n"
                ),
                "classes[1].name",
            ),
            (format!("{BASE}[bursts]\nstates = [{{ factor = 1.0, mean_duration = \"1m\" }}]\n"), "bursts.states"),
        ];
        for (text, path) in cases {
            let err = TrafficModel::new(&config(&text)).expect_err(path);
            assert_eq!(err.0, path, "{}", err.1);
        }
    }

    #[test]
    fn rate_follows_profile_and_spikes() {
        let text = BASE.replace(
            "rate = 10.0",
            "rate = 10.0\nprofile = { kind = \"business-hours\", off_hours = 0.1, ramp = \"0s\" }\nspikes = [{ at = \"10h\", duration = \"1h\", factor = 3.0 }]",
        );
        let m = TrafficModel::new(&config(&text)).expect("valid");
        assert!((m.rate_at(3.0 * 3600.0) - 1.0).abs() < 1e-9);
        assert!((m.rate_at(12.0 * 3600.0) - 10.0).abs() < 1e-9);
        assert!((m.rate_at(10.5 * 3600.0) - 30.0).abs() < 1e-9);
        assert!(m.rate_max >= 30.0);
    }
}
