//! Client keys in a scenario: what per-key limits and budgets do to latency and success before a gateway
//! enforces them.
//!
//! A scenario's `[[keys]]` entries are the gateway's, plus `share` (the fraction of the traffic the key
//! carries) and optionally `classes` (the task classes it carries; default all):
//!
//! ```toml
//! [[keys]]
//! id = "search"
//! share = 0.6
//! classes = ["chat", "extract"]
//! metadata = { team = "search", plan = "pro" }
//! limits = { rpm = 600, tpm = 200000, concurrency = 20, daily_budget_usd = 50.0 }
//! ```
//!
//! Each request is given a key by a draw keyed by (seed, replication, request id), among the keys carrying
//! its class in proportion to their shares; what the shares of a class leave over is traffic without a
//! key (no limits). The key's metadata (and `key = "<id>"`) is merged into the request's routing metadata,
//! so conditional and tier rules on `team` or `plan` see it, exactly as in the gateway. Its limits are
//! router-core's [`KeyMeter`], the very accounting the gateway runs: a denied request ends at once, counted
//! in the `denied_*` columns by reason, and never reaches the router. Costs charged to budgets are the
//! endpoints' prices, as everywhere. The simulation clock starts on 1970-01-01T00:00Z, so daily budgets
//! reset every 86 400 simulated seconds.
//!
//! Fields the gateway needs and the simulator does not (`hash`, `models`, `endpoint_tags`, `expires`,
//! `revoked`, `description`, `created`) are accepted and ignored, so a gateway's keys paste in with a
//! `share` added.

use crate::rng::{KeyedRng, Stream, StreamBase};
use crate::traffic::Arrival;
use rand::Rng;
use router_core::{Admission, DenyReason, KeyLimits, KeyMeter, MetaValue, Nanos, RequestInfo};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One `[[keys]]` entry of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Unique id.
    pub id: String,
    /// Fraction of the traffic of its classes that the key carries, in (0, 1].
    pub share: f64,
    /// Task classes the key carries (empty: every class).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Routing metadata merged into each of its requests (`team`, `plan`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, MetaValue>,
    /// Limits and budgets (router-core's [`KeyLimits`]).
    #[serde(default, skip_serializing_if = "KeyLimits::is_unlimited")]
    pub limits: KeyLimits,
    /// Gateway only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub hash: Option<IgnoredAny>,
    /// Gateway only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub description: Option<IgnoredAny>,
    /// Gateway only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub models: Option<IgnoredAny>,
    /// Gateway only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub endpoint_tags: Option<IgnoredAny>,
    /// Gateway only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub expires: Option<IgnoredAny>,
    /// Gateway only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub revoked: Option<IgnoredAny>,
    /// Gateway only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub created: Option<IgnoredAny>,
}

/// Checks the scenario's keys against its task classes. The error is a field path (`keys[1].share`), a
/// message and, for an unknown class, the nearest class name.
pub fn validate(keys: &[KeySpec], classes: &[String]) -> Result<(), (String, String, Option<String>)> {
    for (i, k) in keys.iter().enumerate() {
        let p = format!("keys[{i}]");
        if k.id.trim().is_empty() {
            return Err((format!("{p}.id"), "expected a non-empty id".into(), None));
        }
        if let Some(j) = keys[..i].iter().position(|o| o.id == k.id) {
            return Err((format!("{p}.id"), format!("duplicate key id `{}` (also keys[{j}])", k.id), None));
        }
        if !(k.share > 0.0 && k.share <= 1.0) {
            return Err((
                format!("{p}.share"),
                format!("expected a fraction of the traffic in (0, 1], found {}", k.share),
                None,
            ));
        }
        for (j, c) in k.classes.iter().enumerate() {
            if !classes.iter().any(|x| x == c) {
                let near = routesim_schema::nearest(c, classes.iter().map(String::as_str));
                return Err((
                    format!("{p}.classes[{j}]"),
                    format!("unknown task class `{c}`: expected one of {}", classes.join(", ")),
                    near,
                ));
            }
        }
        k.limits.validate().map_err(|(f, m)| (format!("{p}.limits.{f}"), m, None))?;
    }
    for c in classes {
        let total: f64 = keys.iter().filter(|k| carries(k, c)).map(|k| k.share).sum();
        if total > 1.0 + 1e-9 {
            return Err((
                "keys".into(),
                format!("the shares of the keys carrying class `{c}` add up to {total}: expected at most 1"),
                None,
            ));
        }
    }
    Ok(())
}

fn carries(k: &KeySpec, class: &str) -> bool {
    k.classes.is_empty() || k.classes.iter().any(|c| c == class)
}

/// The keys' state during one run: which key each request carries, and each key's meter.
#[derive(Debug)]
pub struct KeyLimiter {
    meters: Vec<KeyMeter>,
    /// Per task class: (cumulative share, key index) of the keys carrying it.
    by_class: Vec<Vec<(f64, u16)>>,
    /// Templates per original template: slot 0 is "no key", slot k + 1 is key k.
    stride: u32,
    draws: StreamBase,
}

impl KeyLimiter {
    /// The limiter of replication `replication` for `keys`, over task classes `classes` (a class no key
    /// names is carried only by the keys without `classes`).
    pub fn new(keys: &[KeySpec], classes: &[String], seed: u64, replication: u32) -> KeyLimiter {
        let by_class = classes
            .iter()
            .map(|c| {
                let mut acc = 0.0;
                keys.iter()
                    .enumerate()
                    .filter(|(_, k)| carries(k, c))
                    .map(|(i, k)| {
                        acc += k.share;
                        (acc, i as u16)
                    })
                    .collect()
            })
            .collect();
        KeyLimiter {
            meters: keys.iter().map(|k| KeyMeter::new(k.limits)).collect(),
            by_class,
            stride: keys.len() as u32 + 1,
            draws: StreamBase::new(seed, replication, Stream::ClientKey),
        }
    }

    /// The request templates with every key's metadata: `templates.len() x (keys + 1)` of them, template
    /// `t` with key slot `s` at `t x (keys + 1) + s`.
    pub fn expand_templates(keys: &[KeySpec], templates: Vec<RequestInfo>) -> Vec<RequestInfo> {
        let mut out = Vec::with_capacity(templates.len() * (keys.len() + 1));
        for t in templates {
            for k in keys {
                let mut x = t.clone();
                for (name, v) in
                    k.metadata.iter().chain(std::iter::once((&"key".to_string(), &MetaValue::Str(k.id.clone()))))
                {
                    match x.metadata.iter_mut().find(|(n, _)| n == name) {
                        Some(slot) => slot.1 = v.clone(),
                        None => x.metadata.push((name.clone(), v.clone())),
                    }
                }
                out.push(x);
            }
            // Slot 0 first: rotate the key templates after it.
            let first = out.len() - keys.len();
            out.insert(first, t);
        }
        out
    }

    /// Gives arrival `a` its key (rewriting its template index) and checks the key's limits at `now`.
    /// A denied request is left without a key, so that [`KeyLimiter::finish`] ignores it.
    pub fn admit(&mut self, a: &mut Arrival, now: Nanos) -> Result<(), DenyReason> {
        let base = a.template * self.stride;
        a.template = base;
        let Some(choices) = self.by_class.get(a.class as usize).filter(|c| !c.is_empty()) else { return Ok(()) };
        let mut rng = KeyedRng::new(self.draws.key(a.id, 0));
        let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let Some(&(_, k)) = choices.iter().find(|(c, _)| u < *c) else { return Ok(()) };
        let estimate = a.input_tokens as u64 + if a.expected_output { a.output_tokens as u64 } else { 0 };
        let admission = self.meters[k as usize].admit(now, estimate).map_err(|d| d.reason)?;
        // The reservation is recomputed from the arrival at the end (see `finish`).
        debug_assert_eq!((admission.reserved_tokens, admission.reserved_at), (estimate, a.at));
        a.template = base + k as u32 + 1;
        Ok(())
    }

    /// Reports the end at `now` of a request admitted by [`KeyLimiter::admit`]: `tokens` used and `cost`.
    pub fn finish(&mut self, a: &Arrival, tokens: u64, cost: f64, now: Nanos) {
        let slot = a.template % self.stride;
        if slot == 0 {
            return;
        }
        let estimate = a.input_tokens as u64 + if a.expected_output { a.output_tokens as u64 } else { 0 };
        // Admission happens at arrival: the reservation is recomputed from the arrival.
        let admission = Admission { reserved_tokens: estimate, reserved_at: a.at };
        self.meters[slot as usize - 1].finish(now, admission, tokens, cost);
    }

    /// Key `k`'s meter (tests, reports).
    pub fn meter(&self, k: usize) -> &KeyMeter {
        &self.meters[k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, share: f64) -> KeySpec {
        toml::from_str(&format!("id = \"{id}\"\nshare = {share}\n")).unwrap()
    }

    #[test]
    fn shares_are_checked_per_class_and_unknown_classes_named() {
        let classes = vec!["chat".to_string(), "code".to_string()];
        assert!(validate(&[spec("a", 0.6), spec("b", 0.4)], &classes).is_ok());
        let e = validate(&[spec("a", 0.6), spec("b", 0.5)], &classes).unwrap_err();
        assert_eq!(e.0, "keys");
        let mut c = spec("c", 0.5);
        c.classes = vec!["chta".into()];
        let e = validate(&[c], &classes).unwrap_err();
        assert_eq!((e.0.as_str(), e.2.as_deref()), ("keys[0].classes[0]", Some("chat")));
        assert_eq!(validate(&[spec("a", 0.0)], &classes).unwrap_err().0, "keys[0].share");
    }

    #[test]
    fn templates_carry_each_keys_metadata_at_their_slots() {
        let mut a = spec("a", 0.5);
        a.metadata.insert("team".into(), MetaValue::Str("search".into()));
        let mut t = RequestInfo::new(0, 10);
        t.task_class = Some("chat".into());
        t.metadata.push(("team".into(), MetaValue::Str("client".into())));
        let out = KeyLimiter::expand_templates(&[a, spec("b", 0.5)], vec![t.clone(), t]);
        assert_eq!(out.len(), 6);
        assert_eq!(out[0].meta("team").and_then(|m| m.as_str()), Some("client"));
        assert_eq!(out[1].meta("team").and_then(|m| m.as_str()), Some("search"));
        assert_eq!(out[2].meta("key").and_then(|m| m.as_str()), Some("b"));
        assert_eq!(out[4].meta("key").and_then(|m| m.as_str()), Some("a"));
    }

    #[test]
    fn keys_are_drawn_in_proportion_to_their_shares() {
        let keys = [spec("a", 0.25), spec("b", 0.5)];
        let mut lim = KeyLimiter::new(&keys, &["default".into()], 7, 0);
        let mut n = [0u32; 3];
        for id in 0..20_000u64 {
            let mut a = Arrival {
                id,
                at: id,
                class: 0,
                template: 0,
                input_tokens: 1,
                output_tokens: 1,
                expected_output: false,
                deferrable: false,
                cache_key: None,
            };
            lim.admit(&mut a, id).unwrap();
            n[a.template as usize] += 1;
            lim.finish(&a, 2, 0.0, id);
        }
        let f = |i: usize| n[i] as f64 / 20_000.0;
        assert!((f(0) - 0.25).abs() < 0.02 && (f(1) - 0.25).abs() < 0.02 && (f(2) - 0.5).abs() < 0.02, "{n:?}");
    }
}
