//! The canary arm of a request: a stable point in [0, 1) of what the request is hashed by (a client key's
//! id, a user, a request id), salted with the canary policy's name. A request goes to the canary when its
//! point is below the canary's fraction, so raising the fraction only moves requests from the control arm to
//! the canary and lowering it only moves them back.
//!
//! The gateway picks each request's arm with it (`[rollout] canary`), and the simulator's canary runs
//! (`routesim ab --predict`) pick the same arm for the same request id, so a simulated canary splits the
//! traffic exactly as the gateway's log does.

/// The arm of a request under a canary: the gateway's log column `arm` and the simulator's records say it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Arm {
    /// The served policy (the run's policy in the simulator).
    #[default]
    Control,
    /// The canary policy.
    Canary,
}

impl Arm {
    /// Name in logs, records and metrics (`control` / `canary`).
    pub fn name(self) -> &'static str {
        match self {
            Arm::Control => "control",
            Arm::Canary => "canary",
        }
    }

    /// Index among the arms (0 control, 1 canary), as the gateway's router pool orders them.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// FNV-1a's 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The canary hash of one salt (the canary policy's name), its FNV-1a state computed once.
///
/// The point of `value` is FNV-1a over the salt, a `0xff` separator (a byte no UTF-8 text holds, so that
/// no salt and value pair reads as another) and the value, finished with SplitMix64's mixer so that
/// neighbouring values (request ids 41 and 42) spread over [0, 1), and scaled by 2^-64 (its top 53 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CanaryHash {
    /// FNV-1a state after the salt and the separator.
    salted: u64,
}

impl CanaryHash {
    /// The hash salted with `salt`.
    pub fn new(salt: &str) -> Self {
        CanaryHash { salted: fnv1a_step(crate::fnv1a(salt.as_bytes()), 0xff) }
    }

    /// The point in [0, 1) of `value`.
    pub fn point(&self, value: &[u8]) -> f64 {
        finish(value.iter().fold(self.salted, |h, &b| fnv1a_step(h, b)))
    }

    /// The point of a request id, hashed as its decimal text (what the gateway hashes with `by = "request"`),
    /// without allocating: equal to `self.point(id.to_string().as_bytes())`.
    pub fn point_of_id(&self, id: u64) -> f64 {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut n = id;
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.point(&digits[start..])
    }
}

/// The point in [0, 1) of `value` for a canary of policy `salt` ([`CanaryHash`]).
pub fn point(salt: &str, value: &str) -> f64 {
    CanaryHash::new(salt).point(value.as_bytes())
}

#[inline]
fn fnv1a_step(h: u64, b: u8) -> u64 {
    (h ^ b as u64).wrapping_mul(FNV_PRIME)
}

/// SplitMix64's finaliser, then the top 53 bits scaled to [0, 1).
#[inline]
fn finish(mut h: u64) -> f64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash as the gateway computed it before it moved here (gateway/src/rollout.rs, `point`), byte by
    /// byte: the arms of logs already written must not move.
    fn reference(salt: &str, value: &str) -> f64 {
        let mut h = crate::fnv1a(salt.as_bytes());
        for &b in [0xffu8].iter().chain(value.as_bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn points_are_the_gateways_and_an_id_hashes_as_its_decimal_text() {
        let hash = CanaryHash::new("cost");
        for id in [0u64, 1, 9, 10, 41, 42, 999, 1000, 123_456_789, u64::MAX] {
            let text = id.to_string();
            assert_eq!(hash.point_of_id(id), reference("cost", &text), "id {id}");
            assert_eq!(point("cost", &text), reference("cost", &text), "id {id}");
        }
        assert_eq!(point("candidate", "key-7"), reference("candidate", "key-7"));
        assert_eq!(point("", ""), reference("", ""));
    }

    #[test]
    fn points_lie_in_the_unit_interval_and_spread_evenly() {
        let hash = CanaryHash::new("cost");
        let n = 100_000u64;
        let mut below = [0u64; 10];
        for id in 0..n {
            let p = hash.point_of_id(id);
            assert!((0.0..1.0).contains(&p), "{p}");
            below[(p * 10.0) as usize] += 1;
        }
        // Each tenth holds 10,000 +- 5 sigma (sigma = sqrt(n 0.1 0.9) ~ 95).
        for (i, &c) in below.iter().enumerate() {
            assert!(c.abs_diff(n / 10) < 475, "tenth {i}: {c}");
        }
    }

    #[test]
    fn the_salt_changes_the_arms() {
        let (a, b) = (CanaryHash::new("cost"), CanaryHash::new("latency"));
        let same = (0..10_000u64).filter(|&id| (a.point_of_id(id) < 0.5) == (b.point_of_id(id) < 0.5)).count();
        assert!((4_500..5_500).contains(&same), "{same} of 10,000 in the same arm under two salts");
    }
}
