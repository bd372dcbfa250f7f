//! Client keys: the `[[keys]]` entries (in the config or a key file), their secrets and how a presented
//! secret is checked.
//!
//! A secret looks like `rsk-<id>.<64 hex digits>` (256 random bits from the OS). The file stores only
//! `hash = "sha256:<salt hex>:<digest hex>"`, the SHA-256 of a random per-key 16-byte salt followed by the
//! secret. A presented secret names its key by id (so one hash is computed, not one per key); its digest is
//! compared with the stored one in constant time (`subtle`), and a secret naming no key is hashed and
//! compared against a dummy all the same, so timing tells nothing about which ids exist.

use router_core::access::{civil_from_days, days_from_civil};
use router_core::{KeyLimits, MetaValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// Prefix of every secret.
pub const SECRET_PREFIX: &str = "rsk-";

/// One `[[keys]]` entry as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Unique id (letters, digits, `_` and `-`; at most 64): shown in logs and metrics, never secret.
    pub id: String,
    /// `sha256:<salt hex>:<digest hex>`, as `routesim-gateway keys new` writes it.
    pub hash: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Models the key may request (`model` of the body); a trailing `*` matches a prefix. Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Endpoint tags the key is confined to: its requests go only to endpoints carrying every tag listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_tags: Vec<String>,
    /// Routing metadata added to every request of the key (`team`, `plan`, ...), overriding the client's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, MetaValue>,
    /// Limits and budgets.
    #[serde(default, skip_serializing_if = "KeyLimits::is_unlimited")]
    pub limits: KeyLimits,
    /// Expiry (a TOML date-time or date; UTC when no offset is given). Absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<toml::value::Datetime>,
    /// A revoked key is refused (`disabled` is accepted as an alias).
    #[serde(default, alias = "disabled", skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
    /// When the key was made (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<toml::value::Datetime>,
    /// Simulator only (the share of a scenario's traffic the key carries): accepted and ignored.
    #[serde(default, skip_serializing)]
    pub share: Option<serde::de::IgnoredAny>,
    /// Simulator only (the traffic classes the key carries): accepted and ignored.
    #[serde(default, skip_serializing)]
    pub classes: Option<serde::de::IgnoredAny>,
}

/// A key file: `[[keys]]` entries only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The keys.
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

/// A parsed stored hash.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredHash(<sha256>)")
    }
}

impl StoredHash {
    /// Parses `sha256:<salt hex>:<digest hex>`; the error says what was expected.
    pub fn parse(s: &str) -> Result<StoredHash, String> {
        let expected = "expected \"sha256:<salt hex>:<64 hex digits>\" as written by `routesim-gateway keys new`";
        let mut parts = s.split(':');
        let (Some("sha256"), Some(salt), Some(digest), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(expected.into());
        };
        let salt = from_hex(salt).filter(|s| s.len() >= 8).ok_or_else(|| format!("{expected} (bad salt)"))?;
        let digest: [u8; 32] =
            from_hex(digest).and_then(|d| d.try_into().ok()).ok_or_else(|| format!("{expected} (bad digest)"))?;
        Ok(StoredHash { salt, digest })
    }

    /// The hash of `secret` with a fresh random salt.
    pub fn new(secret: &str) -> StoredHash {
        let salt = random_bytes::<16>().to_vec();
        let digest = digest(&salt, secret);
        StoredHash { salt, digest }
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        format!("sha256:{}:{}", to_hex(&self.salt), to_hex(&self.digest))
    }

    /// Whether `secret` hashes to this digest, compared in constant time.
    pub fn verify(&self, secret: &str) -> bool {
        digest(&self.salt, secret).ct_eq(&self.digest).into()
    }
}

fn digest(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(salt);
    ctx.update(secret.as_bytes());
    ctx.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).expect("the operating system's random source failed");
    b
}

/// Lower-case hex.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// A new secret for key `id`: `rsk-<id>.<64 hex digits>`.
pub fn new_secret(id: &str) -> String {
    format!("{SECRET_PREFIX}{id}.{}", to_hex(&random_bytes::<32>()))
}

/// The key id a presented secret names, if it has the secret's shape.
pub fn id_of(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix(SECRET_PREFIX)?;
    let (id, random) = rest.rsplit_once('.')?;
    (valid_id(id) && random.len() == 64).then_some(id)
}

/// Whether `id` is a valid key id.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Whether model `m` is allowed by the patterns (empty: any; `prefix*` matches a prefix).
pub fn model_allowed(patterns: &[String], m: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => m.starts_with(prefix),
            None => p == m,
        })
}

/// A TOML date-time (or date) as nanoseconds since the Unix epoch (UTC when it has no offset).
pub fn datetime_nanos(d: &toml::value::Datetime) -> Option<u64> {
    let date = d.date?;
    let days = days_from_civil(date.year as i64, date.month as u32, date.day as u32);
    let mut secs = days * 86_400;
    if let Some(t) = d.time {
        secs += t.hour as i64 * 3600 + t.minute as i64 * 60 + t.second.unwrap_or(0) as i64;
    }
    if let Some(toml::value::Offset::Custom { minutes }) = d.offset {
        secs -= minutes as i64 * 60;
    }
    u64::try_from(secs).ok().map(|s| s.saturating_mul(1_000_000_000))
}

/// The UTC date-time of `nanos` since the epoch, as a TOML date-time.
pub fn nanos_datetime(nanos: u64) -> toml::value::Datetime {
    let secs = nanos / 1_000_000_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    toml::value::Datetime {
        date: Some(toml::value::Date { year: y as u16, month: m as u8, day: d as u8 }),
        time: Some(toml::value::Time {
            hour: (s / 3600) as u8,
            minute: (s / 60 % 60) as u8,
            second: Some((s % 60) as u8),
            nanosecond: None,
        }),
        offset: Some(toml::value::Offset::Z),
    }
}

/// A dummy hash, compared against when a secret names no key (constant work either way).
pub fn dummy_hash() -> &'static StoredHash {
    static DUMMY: std::sync::OnceLock<StoredHash> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| StoredHash { salt: random_bytes::<16>().to_vec(), digest: random_bytes::<32>() })
}

/// Checks entry `e` (at `path`, e.g. `keys[2]`); the error is a field path and what was expected.
pub fn check_entry(path: &str, e: &KeyEntry) -> Result<StoredHash, (String, String)> {
    if !valid_id(&e.id) {
        return Err((format!("{path}.id"), format!("expected 1 to 64 letters, digits, `_` or `-`, found {:?}", e.id)));
    }
    let hash = StoredHash::parse(&e.hash).map_err(|m| (format!("{path}.hash"), m))?;
    e.limits.validate().map_err(|(f, m)| (format!("{path}.limits.{f}"), m))?;
    if let Some(x) = &e.expires
        && datetime_nanos(x).is_none()
    {
        return Err((format!("{path}.expires"), format!("expected a date or date-time after 1970, found {x}")));
    }
    if let Some(i) = e.endpoint_tags.iter().position(|t| t.is_empty()) {
        return Err((format!("{path}.endpoint_tags[{i}]"), "expected a non-empty tag".into()));
    }
    if let Some(i) = e.models.iter().position(|t| t.is_empty()) {
        return Err((format!("{path}.models[{i}]"), "expected a model name or `prefix*`".into()));
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_verifies_against_its_salted_hash_only() {
        let s = new_secret("team-a");
        assert_eq!(id_of(&s), Some("team-a"));
        let h = StoredHash::new(&s);
        let again = StoredHash::parse(&h.encode()).unwrap();
        assert!(again.verify(&s));
        let mut wrong = s.clone();
        wrong.pop();
        wrong.push(if s.ends_with('0') { '1' } else { '0' });
        assert!(!again.verify(&wrong));
        // Same secret, different salt: different stored digest.
        assert_ne!(StoredHash::new(&s).encode(), h.encode());
        assert!(!h.encode().contains(s.rsplit_once('.').unwrap().1), "the hash never holds the secret");
    }

    #[test]
    fn malformed_hashes_and_ids_are_named() {
        assert!(StoredHash::parse("plain-secret").is_err());
        assert!(StoredHash::parse("sha256:zz:00").is_err());
        assert!(id_of("sk-abc").is_none());
        assert!(id_of(&format!("rsk-a.b.{}", "0".repeat(64))).is_none(), "ids hold no dots");
        assert!(!valid_id("has space"));
    }

    #[test]
    fn models_and_dates() {
        let p = vec!["gpt-4o*".to_string(), "auto".to_string()];
        assert!(model_allowed(&p, "gpt-4o-mini") && model_allowed(&p, "auto") && !model_allowed(&p, "claude"));
        assert!(model_allowed(&[], "anything"));
        let d: toml::value::Datetime = "2024-02-29T12:00:00Z".parse().unwrap();
        assert_eq!(datetime_nanos(&d), Some(1_709_208_000_000_000_000));
        assert_eq!(nanos_datetime(1_709_208_000_000_000_000).to_string(), "2024-02-29T12:00:00Z");
        let local: toml::value::Datetime = "2024-02-29T14:00:00+02:00".parse().unwrap();
        assert_eq!(datetime_nanos(&local), Some(1_709_208_000_000_000_000));
    }
}
