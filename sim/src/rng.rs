//! Keyed random streams: every random draw of a run is tied to what it describes.
//!
//! A stream's state is derived from `(seed, replication, stream, a, b)` by [`key`], so a draw never depends
//! on the order in which other draws happened. This is what gives common random numbers across policies
//! (replication `r` of every policy sees the same arrivals, the same request attributes and the same
//! provider luck for the same attempt) and results that do not depend on the thread count.

use rand::{SeedableRng, TryRng};
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};
use router_core::keyed_rand::mix64;
use std::convert::Infallible;

/// What a random stream describes; part of its key so that different kinds of draws never share a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Stream {
    /// Inter-arrival times and thinning of the arrival process (one sequential stream per replication).
    Arrivals = 1,
    /// The attributes of one request (class, token counts, flags), keyed by request id.
    RequestAttrs = 2,
    /// A provider's luck for one attempt (error, service times), keyed by request id, attempt and endpoint.
    Service = 3,
    /// The completion time of one released batch, keyed by batch number.
    Batch = 4,
    /// The modulating Markov chain of MMPP bursts (one sequential stream per replication).
    Modulation = 5,
    /// The candidate sampler of `routesim tune` (one sequential stream per tuning run).
    Tune = 6,
    /// Which rows of a replayed log a replication keeps (keyed by row).
    LogSample = 7,
    /// Which client key (`[[keys]]`) a request carries, keyed by request id.
    ClientKey = 8,
    /// A request's latent difficulty `d_r` in the quality model, keyed by request id.
    QualityDifficulty = 9,
    /// The router-visible noise on a request's difficulty estimate (`[quality] router_auc`), keyed by request
    /// id.
    QualityEstimate = 10,
    /// Whether an endpoint answers a request acceptably: one uniform keyed by request id and the hash of the
    /// endpoint's id string ([`crate::quality::endpoint_key`]), so that it does not depend on the endpoint's
    /// index.
    QualityOutcome = 11,
    /// A cascade verifier's verdict on an endpoint's answer, keyed by request id and endpoint id hash.
    QualityVerifier = 12,
}

/// The 64-bit key of the stream `(seed, replication, stream, a, b)`; `a` and `b` are what the stream
/// describes (request id, attempt, endpoint, ...). Distinct tuples give unrelated keys.
#[inline]
pub fn key(seed: u64, replication: u32, stream: Stream, a: u64, b: u64) -> u64 {
    StreamBase::new(seed, replication, stream).key(a, b)
}

/// The `(seed, replication, stream)` part of a key, computed once per run: [`StreamBase::key`] then costs two
/// mixing rounds per request instead of five.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamBase(u64);

impl StreamBase {
    /// The base of `stream` in replication `replication` under `seed`.
    pub fn new(seed: u64, replication: u32, stream: Stream) -> Self {
        let mut h = mix64(seed ^ 0x7265_706c_6963_6174);
        h = mix64(h ^ replication as u64);
        StreamBase(mix64(h ^ stream as u64))
    }

    /// The key of the stream describing `(a, b)`.
    #[inline]
    pub fn key(self, a: u64, b: u64) -> u64 {
        mix64(mix64(self.0 ^ a) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

/// A short random stream for a handful of draws (one request's attributes, one attempt's luck).
///
/// SplitMix64 seeded with the stream's [`key`]: creating one costs a few instructions, which matters because
/// a run creates one per request and per attempt.
#[derive(Clone, Debug)]
pub struct KeyedRng(SplitMix64);

impl KeyedRng {
    /// The stream with this key.
    #[inline]
    pub fn new(key: u64) -> Self {
        KeyedRng(SplitMix64::seed_from_u64(key))
    }

    /// A uniform draw in `[0, 1)` with 53 bits of precision.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        unit(rand::Rng::next_u64(&mut self.0))
    }
}

impl TryRng for KeyedRng {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0.try_next_u32()
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0.try_next_u64()
    }

    #[inline]
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.try_fill_bytes(dst)
    }
}

/// A long sequential stream (the arrival process), Xoshiro256++ seeded from the stream's [`key`].
pub fn sequential(key: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(key)
}

/// Maps 64 random bits to a uniform `f64` in `[0, 1)`.
#[inline]
pub fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn keys_differ_in_every_component() {
        let base = key(1, 0, Stream::Service, 7, 3);
        assert_ne!(base, key(2, 0, Stream::Service, 7, 3));
        assert_ne!(base, key(1, 1, Stream::Service, 7, 3));
        assert_ne!(base, key(1, 0, Stream::RequestAttrs, 7, 3));
        assert_ne!(base, key(1, 0, Stream::Service, 8, 3));
        assert_ne!(base, key(1, 0, Stream::Service, 7, 4));
        // a and b are not interchangeable.
        assert_ne!(key(1, 0, Stream::Service, 3, 7), key(1, 0, Stream::Service, 7, 3));
    }

    #[test]
    fn the_same_key_replays_the_same_stream() {
        let mut a = KeyedRng::new(42);
        let mut b = KeyedRng::new(42);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(KeyedRng::new(42).next_u64(), KeyedRng::new(43).next_u64());
    }

    #[test]
    fn unit_draws_are_uniform_in_the_unit_interval() {
        let mut r = KeyedRng::new(9);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            sum += u;
        }
        // Mean 0.5, standard error 1/sqrt(12 n) ~ 0.0009: five of them is far from flaky.
        assert!((sum / n as f64 - 0.5).abs() < 0.0045, "mean {}", sum / n as f64);
    }
}
