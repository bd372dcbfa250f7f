//! Keyed, stateless randomness: a random draw is a pure function of what it is for.
//!
//! The router never owns a sequential random generator. Each random choice is derived from
//! (router seed, request id, purpose), so a request gets the same draw whatever happened before it: two
//! simulated policies see common random numbers, and a production decision can be replayed from a log.

/// SplitMix64 finaliser: a fast, well-mixed bijection on `u64`.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of the router's keyed draws in replication `replication` of a simulation with master seed `seed`.
///
/// Replication 0 keeps `seed` itself (a gateway, which has no replications, uses its configured seed as is);
/// every later replication gets a seed of its own, so that request `i` of replication `r` does not make the same
/// random pick (shuffle, weighted, power of two choices, jitter) as request `i` of replication 0. Every policy of
/// one replication gets the same seed: policies still see common random numbers within a replication. The
/// seeds of later replications are below 2^63, so that a gateway config (TOML integers are signed) can hold them.
#[inline]
pub fn replication_seed(seed: u64, replication: u32) -> u64 {
    if replication == 0 { seed } else { mix64(seed ^ mix64(0x7265_706c_6963_6174 ^ u64::from(replication))) >> 1 }
}

/// The step between consecutive positions of a [`KeyedRand`] sequence (the golden ratio, as SplitMix64).
const STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// A short sequence of random numbers keyed by (seed, request id, salt).
///
/// The key is hashed only when a draw needs it: most decisions draw nothing (a unique best candidate, no
/// jitter), and [`KeyedRand::below`] with one choice moves along the sequence without hashing. The numbers are
/// those of hashing the key at once: draw `k` (from 1) is `mix64(key + k x STEP)`.
#[derive(Clone, Copy, Debug)]
pub struct KeyedRand {
    seed: u64,
    request_id: u64,
    salt: u64,
    /// The position in the sequence once keyed; before that, the number of draws skipped so far.
    state: u64,
    keyed: bool,
}

impl KeyedRand {
    /// A sequence for one decision about one request.
    #[inline]
    pub fn new(seed: u64, request_id: u64, salt: u64) -> Self {
        KeyedRand { seed, request_id, salt, state: 0, keyed: false }
    }

    /// Hashes the key, keeping the draws skipped so far.
    #[cold]
    #[inline(never)]
    fn key(&mut self) {
        let start = mix64(self.seed ^ mix64(self.request_id ^ mix64(self.salt)));
        self.state = start.wrapping_add(self.state.wrapping_mul(STEP));
        self.keyed = true;
    }

    /// Moves one draw along the sequence without drawing (the draw's value would not be used).
    #[inline]
    fn skip(&mut self) {
        self.state = self.state.wrapping_add(if self.keyed { STEP } else { 1 });
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        if !self.keyed {
            self.key();
        }
        self.state = self.state.wrapping_add(STEP);
        mix64(self.state)
    }

    /// A uniform draw in `[0, 1)` with 53 bits of precision.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform index in `0..n` (n > 0), by Lemire's multiply-shift (bias below 2^-32 for n < 2^32). With
    /// `n = 1` the answer is 0 whatever the draw, so it only moves along the sequence.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        if n == 1 {
            self.skip();
            return 0;
        }
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_draws_and_different_keys_differ() {
        let mut a = KeyedRand::new(1, 42, 7);
        let mut b = KeyedRand::new(1, 42, 7);
        assert_eq!(a.next_u64(), b.next_u64());
        let c = KeyedRand::new(1, 43, 7).next_u64();
        let d = KeyedRand::new(2, 42, 7).next_u64();
        let e = KeyedRand::new(1, 42, 8).next_u64();
        let base = KeyedRand::new(1, 42, 7).next_u64();
        assert!(c != base && d != base && e != base);
    }

    #[test]
    fn replications_get_their_own_seeds_and_replication_zero_keeps_the_seed() {
        assert_eq!(replication_seed(5, 0), 5);
        let seeds: std::collections::BTreeSet<u64> = (0..1000).map(|r| replication_seed(5, r)).collect();
        assert_eq!(seeds.len(), 1000);
        assert_ne!(replication_seed(5, 1), replication_seed(6, 1));
        assert!((1..1000).all(|r| replication_seed(u64::MAX, r) <= i64::MAX as u64));
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut counts = [0u32; 5];
        for id in 0..50_000 {
            counts[KeyedRand::new(9, id, 0).below(5)] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    /// The sequence is that of hashing the key at once (`mix64(key + k x STEP)` for draw `k`), whether or not
    /// earlier draws were skipped by `below(1)`, before or after the key was hashed.
    #[test]
    fn lazy_keying_and_skipped_draws_keep_the_sequence() {
        let eager = |seed: u64, id: u64, salt: u64, k: u64| {
            mix64(mix64(seed ^ mix64(id ^ mix64(salt))).wrapping_add((k + 1).wrapping_mul(STEP)))
        };
        for (seed, id, salt) in [(0, 0, 0), (7, 42, 0x100), (u64::MAX, 3, 9)] {
            // Draw k of the sequence, reached after k skips (unkeyed) or k draws.
            for k in 0..5 {
                let mut skipped = KeyedRand::new(seed, id, salt);
                let mut drawn = KeyedRand::new(seed, id, salt);
                for _ in 0..k {
                    assert_eq!(skipped.below(1), 0);
                    drawn.next_u64();
                }
                let want = eager(seed, id, salt, k);
                assert_eq!(skipped.next_u64(), want, "after {k} skips");
                assert_eq!(drawn.next_u64(), want, "after {k} draws");
                // A skip after keying moves one step too.
                skipped.below(1);
                assert_eq!(skipped.next_u64(), eager(seed, id, salt, k + 2));
            }
        }
    }

    #[test]
    fn unit_is_in_range() {
        let mut r = KeyedRand::new(0, 0, 0);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
