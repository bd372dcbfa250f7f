//! Access control: client keys, per-key limits and budgets, and the audit of denied requests.
//!
//! A request is checked in two steps around body parsing (see [`crate::admission`], which answers and logs
//! the denials): [`Access::authenticate`] (the `Authorization: Bearer` secret: missing, unknown, wrong,
//! revoked, expired) before the body is read, so an unauthenticated client learns nothing about the API;
//! then the model allowed and [`Access::admit`] (the key's [`router_core::KeyMeter`]: budgets, concurrency,
//! RPM, TPM). An admitted request carries a [`Grant`]
//! that gives the key its concurrency back and charges its tokens and cost (priced with the endpoint's
//! prices, as in the simulator) when the request ends. The key's `metadata` (team, plan, ...) is merged
//! into the request's routing metadata, so router-core's conditional and tier rules see it, and its
//! `endpoint_tags` become required capabilities `tag:NAME`, which only endpoints carrying the tag have.
//!
//! Denials are answered with OpenAI-shaped errors (401, 403, 429 with `Retry-After`, 402 for a spent
//! budget), counted in `routesim_gateway_denied_total{reason}` and written to the request log with the key
//! id, never the secret. Nothing denied reaches an upstream.
//!
//! Keys come from `[[keys]]` in the config and from `[auth] key_file`; the set is swapped atomically
//! (`arc-swap`) when the key file changes or on SIGHUP, so requests in flight are never dropped and
//! usage carries over by key id. With no key configured at all the gateway is anonymous (every request
//! admitted), which `routesim-gateway` refuses on a non-loopback address unless `--allow-anonymous`.

pub mod keys;
pub mod manage;
pub mod store;

use crate::error::ApiError;
use crate::ops::{KeyFigures, KeySnapshot};
use crate::request::ChatRequest;
use arc_swap::ArcSwap;
use axum::http::{HeaderMap, StatusCode, header};
use keys::{KeyEntry, KeyFile, StoredHash};
use prometheus_client::metrics::counter::Counter;
use router_core::{Admission, DenyReason, KeyMeter, MetaValue, Nanos};
use routesim_schema::SchemaError as ConfigError;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use store::UsageStore;

/// `[auth]`: where keys and usage live.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A key file (`[[keys]]` entries, as `routesim-gateway keys new` writes them), reloaded on change or
    /// SIGHUP. Its keys add to the config's own `[[keys]]`.
    pub key_file: Option<PathBuf>,
    /// The usage store (a redb file) holding each key's daily and monthly spend across restarts. Absent:
    /// spend is counted in memory only.
    pub usage_store: Option<PathBuf>,
    /// How often changed spend is written to the store (default 5s; also written at shutdown).
    pub flush_interval: router_core::Duration,
    /// How often the key file's and TLS files' modification times are polled (default 2s; "0s": only on
    /// SIGHUP).
    pub reload_interval: router_core::Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            key_file: None,
            usage_store: None,
            flush_interval: router_core::Duration::from_secs(5),
            reload_interval: router_core::Duration::from_secs(2),
        }
    }
}

/// A key ready to check requests against.
#[derive(Debug)]
pub struct ClientKey {
    /// The entry as written.
    pub entry: KeyEntry,
    hash: StoredHash,
    expires: Option<Nanos>,
    /// Metadata merged into every request.
    metadata: Vec<(String, MetaValue)>,
    /// `tag:NAME` capabilities required of endpoints.
    required: Vec<String>,
}

impl ClientKey {
    fn new(entry: KeyEntry, hash: StoredHash) -> ClientKey {
        let expires = entry.expires.as_ref().and_then(keys::datetime_nanos);
        let metadata = entry.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let required = entry.endpoint_tags.iter().map(|t| tag_capability(t)).collect();
        ClientKey { entry, hash, expires, metadata, required }
    }
}

/// The capability an endpoint tagged `tag` is given, so that a key's `endpoint_tags` confine routing.
pub fn tag_capability(tag: &str) -> String {
    format!("tag:{tag}")
}

/// Reads and checks a key file; errors name the file, the field path and the line.
pub fn load_key_file(path: &Path) -> Result<Vec<(KeyEntry, StoredHash)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        path: String::new(),
        line: None,
        message: format!("cannot read the key file: {e}"),
        suggestion: None,
    })?;
    let file: KeyFile = routesim_schema::parse_toml(path, &text)?;
    check_entries(path, &file.keys, &[])
}

/// Checks `entries` (ids unique, also against `others`); errors name `file` and `keys[i].field`.
pub fn check_entries(
    file: &Path,
    entries: &[KeyEntry],
    others: &[KeyEntry],
) -> Result<Vec<(KeyEntry, StoredHash)>, ConfigError> {
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let err = |path: String, message: String| ConfigError {
            file: file.to_path_buf(),
            path,
            line: None,
            message,
            suggestion: None,
        };
        let hash = keys::check_entry(&format!("keys[{i}]"), e).map_err(|(p, m)| err(p, m))?;
        if entries[..i].iter().chain(others).any(|o| o.id == e.id) {
            return Err(err(format!("keys[{i}].id"), format!("duplicate key id `{}`", e.id)));
        }
        out.push((e.clone(), hash));
    }
    Ok(out)
}

/// The keys in force.
#[derive(Debug, Default)]
struct KeySet {
    by_id: HashMap<String, Arc<ClientKey>>,
}

/// Who a request is.
#[derive(Clone, Debug)]
pub enum Identity {
    /// No keys are configured: anyone.
    Anonymous,
    /// A valid client key.
    Key(Arc<ClientKey>),
}

impl Identity {
    /// The key's id, when there is a key.
    pub fn key_id(&self) -> Option<String> {
        match self {
            Identity::Anonymous => None,
            Identity::Key(k) => Some(k.entry.id.clone()),
        }
    }
}

/// Access control state, shared by every request.
pub struct Access {
    enabled: bool,
    config_keys: Vec<KeyEntry>,
    key_file: Option<PathBuf>,
    key_file_stamp: Mutex<Option<(SystemTime, u64)>>,
    keys: ArcSwap<KeySet>,
    meters: Mutex<HashMap<String, KeyMeter>>,
    store: Option<UsageStore>,
    denied: [Counter; 10],
    /// Requests admitted and denied per key id, for `/metrics`.
    counts: Mutex<HashMap<String, [u64; 2]>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("enabled", &self.enabled).field("keys", &self.keys.load().by_id.len()).finish()
    }
}

/// Wall-clock nanoseconds since the Unix epoch (the meters' clock: budgets follow UTC days and months).
pub fn wall_nanos() -> Nanos {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as Nanos).unwrap_or(0)
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Access {
    /// Builds the state from the config's keys and key file, opening the usage store and restoring spend.
    /// `denied` are the `routesim_gateway_denied_total` counters, in [`DenyReason::ALL`] order.
    pub fn new(auth: &AuthConfig, config_keys: &[KeyEntry], denied: [Counter; 10]) -> Result<Access, String> {
        let store = match &auth.usage_store {
            Some(p) => Some(UsageStore::open(p)?),
            None => None,
        };
        let enabled = !config_keys.is_empty() || auth.key_file.is_some();
        let access = Access {
            enabled,
            config_keys: config_keys.to_vec(),
            key_file: auth.key_file.clone(),
            key_file_stamp: Mutex::new(None),
            keys: ArcSwap::from_pointee(KeySet::default()),
            meters: Mutex::new(HashMap::new()),
            store,
            denied,
            counts: Mutex::new(HashMap::new()),
        };
        access.reload(true).map_err(|e| e.to_string())?;
        if let Some(s) = &access.store {
            let rows = s.load()?;
            let mut meters = access.meters.lock().unwrap_or_else(|p| p.into_inner());
            for (id, r) in rows {
                if let Some(m) = meters.get_mut(&id) {
                    m.restore(r);
                }
            }
        }
        Ok(access)
    }

    /// Whether keys are required.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Ids of the keys in force, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.keys.load().by_id.keys().cloned().collect();
        v.sort();
        v
    }

    /// Re-reads the key file when it changed (or always with `force`) and swaps the key set in. Requests in
    /// flight keep the key they were admitted with; meters carry over by id, with the new limits. Returns
    /// whether a new set was installed; an invalid file leaves the old set in force.
    pub fn reload(&self, force: bool) -> Result<bool, ConfigError> {
        let now_stamp = self.key_file.as_deref().and_then(stamp);
        {
            let mut last = self.key_file_stamp.lock().unwrap_or_else(|p| p.into_inner());
            if !force && *last == now_stamp {
                return Ok(false);
            }
            *last = now_stamp;
        }
        let mut entries: Vec<(KeyEntry, StoredHash)> =
            check_entries(Path::new("[[keys]]"), &self.config_keys, &[]).unwrap_or_default();
        if let Some(p) = &self.key_file {
            let from_file = load_key_file(p)?;
            if let Some((e, _)) = from_file.iter().find(|(e, _)| self.config_keys.iter().any(|c| c.id == e.id)) {
                return Err(ConfigError {
                    file: p.clone(),
                    path: "keys".into(),
                    line: None,
                    message: format!("key id `{}` is also defined in the config's [[keys]]", e.id),
                    suggestion: None,
                });
            }
            entries.extend(from_file);
        }
        let mut set = KeySet::default();
        {
            let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
            for (e, h) in entries {
                meters.entry(e.id.clone()).or_insert_with(|| KeyMeter::new(e.limits)).set_limits(e.limits);
                set.by_id.insert(e.id.clone(), Arc::new(ClientKey::new(e, h)));
            }
        }
        self.keys.store(Arc::new(set));
        Ok(true)
    }

    /// Checks the `Authorization` header. The error is the reason and, when the secret named a known key,
    /// its id.
    pub fn authenticate(&self, headers: &HeaderMap, now: Nanos) -> Result<Identity, (DenyReason, Option<String>)> {
        if !self.enabled {
            return Ok(Identity::Anonymous);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or((DenyReason::MissingKey, None))?;
        let set = self.keys.load();
        let key = keys::id_of(presented).and_then(|id| set.by_id.get(id));
        // The same hashing and constant-time comparison whether or not the id exists.
        let ok = match key {
            Some(k) => k.hash.verify(presented),
            None => {
                let _ = keys::dummy_hash().verify(presented);
                false
            }
        };
        let Some(key) = key.filter(|_| ok) else {
            return Err((DenyReason::InvalidKey, None));
        };
        if key.entry.revoked {
            return Err((DenyReason::Revoked, Some(key.entry.id.clone())));
        }
        if key.expires.is_some_and(|e| now >= e) {
            return Err((DenyReason::Expired, Some(key.entry.id.clone())));
        }
        Ok(Identity::Key(key.clone()))
    }

    /// Admits `req` for key `key` (its model is checked by [`admit`]): the meter. Merges the key's
    /// metadata and endpoint tags
    /// into the request. The error is the reason and the advised retry delay.
    pub fn admit(
        self: &Arc<Self>,
        key: &Arc<ClientKey>,
        req: &mut ChatRequest,
        now: Nanos,
    ) -> Result<Grant, (DenyReason, Option<Nanos>)> {
        let estimate = req.info.input_tokens as u64 + req.info.expected_output_tokens.unwrap_or(0) as u64;
        let admission = {
            let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
            let m = meters.entry(key.entry.id.clone()).or_insert_with(|| KeyMeter::new(key.entry.limits));
            m.admit(now, estimate).map_err(|d| (d.reason, Some(d.retry_after)))?
        };
        for (k, v) in &key.metadata {
            match req.info.metadata.iter_mut().find(|(x, _)| x == k) {
                Some(slot) => slot.1 = v.clone(),
                None => req.info.metadata.push((k.clone(), v.clone())),
            }
        }
        req.info.metadata.push(("key".into(), MetaValue::Str(key.entry.id.clone())));
        req.info.required_capabilities.extend(key.required.iter().cloned());
        self.count_key(&key.entry.id, 0);
        Ok(Grant { access: self.clone(), key: key.clone(), admission: Some(admission) })
    }

    fn finish(&self, id: &str, admission: Admission, tokens: u64, cost: f64) {
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = meters.get_mut(id) {
            m.finish(wall_nanos(), admission, tokens, cost);
        }
    }

    /// Counts a denial.
    pub fn count_denied(&self, reason: DenyReason) {
        self.denied[reason.index()].inc();
    }

    /// Counts a request of key `id`: admitted (`which` 0) or denied (1).
    fn count_key(&self, id: &str, which: usize) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        match counts.get_mut(id) {
            Some(c) => c[which] += 1,
            None => {
                let mut c = [0; 2];
                c[which] = 1;
                counts.insert(id.to_string(), c);
            }
        }
    }

    /// Counts a denial of key `id` (a known key: its id is never a client's guess).
    pub fn count_key_denied(&self, id: &str) {
        self.count_key(id, 1);
    }

    /// The figures of every key in force at `now`, sorted by id.
    pub fn snapshot(&self, now: Nanos) -> Vec<KeySnapshot> {
        let set = self.keys.load();
        let p = router_core::Periods::of(now);
        let meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<KeySnapshot> = set
            .by_id
            .values()
            .map(|k| {
                let id = &k.entry.id;
                let m = meters.get(id);
                let spend = m.map(|m| m.spend()).unwrap_or_default();
                let c = counts.get(id).copied().unwrap_or([0; 2]);
                KeySnapshot {
                    id: id.clone(),
                    admitted: c[0],
                    denied: c[1],
                    in_flight: m.map_or(0, |m| m.in_flight()),
                    day_usd: if spend.day == p.day { spend.day_usd } else { 0.0 },
                    month_usd: if spend.month == p.month { spend.month_usd } else { 0.0 },
                    daily_budget_usd: k.entry.limits.daily_budget_usd,
                    monthly_budget_usd: k.entry.limits.monthly_budget_usd,
                    window_tokens: m.map_or(0, |m| m.window_tokens(now)),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Key `id`'s spend record and requests in flight (for tests and `/metrics`-style inspection).
    pub fn usage(&self, id: &str) -> Option<(router_core::SpendRecord, u32)> {
        let meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        meters.get(id).map(|m| (m.spend(), m.in_flight()))
    }

    /// Writes the spend that changed since the last flush to the usage store (a blocking write: call it
    /// from a blocking thread, never on the request path).
    pub fn flush(&self) -> Result<usize, String> {
        let Some(store) = &self.store else { return Ok(0) };
        let rows: Vec<_> = {
            let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
            meters.iter_mut().filter_map(|(id, m)| m.take_dirty().map(|r| (id.clone(), r))).collect()
        };
        store.save(&rows)?;
        Ok(rows.len())
    }
}

impl KeyFigures for Access {
    fn key_figures(&self) -> Vec<KeySnapshot> {
        self.snapshot(wall_nanos())
    }
}

/// An admitted request's hold on its key: the concurrency slot and the reserved tokens. Settled with the
/// request's usage and cost when it ends; dropped unsettled, it frees the slot and charges nothing.
pub struct Grant {
    access: Arc<Access>,
    key: Arc<ClientKey>,
    admission: Option<Admission>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Grant({})", self.key.entry.id)
    }
}

impl Grant {
    /// The value the key's own `metadata` gives field `k` (never the client's).
    pub fn key_metadata(&self, k: &str) -> Option<&MetaValue> {
        self.key.entry.metadata.get(k)
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        &self.key.entry.id
    }

    /// Charges `tokens` (input + output) and `cost_usd` to the key and frees its slot.
    pub fn settle(mut self, tokens: u64, cost_usd: f64) {
        if let Some(a) = self.admission.take() {
            self.access.finish(&self.key.entry.id, a, tokens, cost_usd);
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if let Some(a) = self.admission.take() {
            let reserved = a.reserved_tokens;
            self.access.finish(&self.key.entry.id, a, reserved, 0.0);
        }
    }
}

/// The client's answer to a denial.
pub fn denial_error(reason: DenyReason, retry_after: Option<Nanos>) -> ApiError {
    let (status, kind, code, message) = match reason {
        DenyReason::MissingKey => (
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "missing_api_key",
            "no API key: send `Authorization: Bearer <key>`",
        ),
        DenyReason::InvalidKey => {
            (StatusCode::UNAUTHORIZED, "invalid_request_error", "invalid_api_key", "the API key is not valid")
        }
        DenyReason::Revoked => {
            (StatusCode::UNAUTHORIZED, "invalid_request_error", "key_revoked", "the API key has been revoked")
        }
        DenyReason::Expired => {
            (StatusCode::UNAUTHORIZED, "invalid_request_error", "key_expired", "the API key has expired")
        }
        DenyReason::NotAllowed => (
            StatusCode::FORBIDDEN,
            "permission_error",
            "model_not_allowed",
            "this API key may not use the requested model",
        ),
        DenyReason::Rpm => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rpm_limit_exceeded",
            "this API key's requests-per-minute limit is reached",
        ),
        DenyReason::Tpm => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "tpm_limit_exceeded",
            "this API key's tokens-per-minute limit is reached",
        ),
        DenyReason::Concurrency => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "concurrency_limit_exceeded",
            "this API key has as many requests in flight as it may",
        ),
        DenyReason::DailyBudget => (
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_quota",
            "budget_exceeded",
            "this API key's daily budget is spent; it resets at 00:00 UTC",
        ),
        DenyReason::MonthlyBudget => (
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_quota",
            "budget_exceeded",
            "this API key's monthly budget is spent; it resets on the 1st at 00:00 UTC",
        ),
    };
    let mut e = ApiError::new(status, kind, code, message);
    e.retry_after = retry_after.map(|n| n.div_ceil(1_000_000_000).max(1));
    e
}
