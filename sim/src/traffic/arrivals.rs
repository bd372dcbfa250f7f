//! The arrival source: the next request's arrival time and attributes, generated lazily so that memory does
//! not grow with the run length.
//!
//! Times come from one sequential stream per replication (thinning of a Poisson process at the envelope
//! rate); the MMPP chain from another; each request's attributes from a stream keyed by its id. Nothing here
//! depends on routing, so every policy of a replication sees exactly the same requests.

use super::TrafficModel;
use crate::dist::Sampler;
use crate::rng::{self, KeyedRng, Stream, StreamBase, key};
use rand::Rng;
use rand_distr::{Distribution, Exp1};
use rand_xoshiro::Xoshiro256PlusPlus;
use router_core::keyed_rand::mix64;
use router_core::{Nanos, secs_to_nanos};

/// When arrivals stop: at a time, after a count, or whichever comes first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    /// No arrival at or after this time.
    pub until: Option<Nanos>,
    /// At most this many requests.
    pub max_requests: Option<u64>,
}

/// One arriving request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    /// Request id: 0, 1, 2, ... in arrival order.
    pub id: u64,
    /// Arrival time.
    pub at: Nanos,
    /// Task class index.
    pub class: u16,
    /// Request template index (class and metadata): the class for synthetic traffic, a class and metadata
    /// combination in a replayed log.
    pub template: u32,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Completion tokens the provider will generate.
    pub output_tokens: u32,
    /// Whether the request announces its output length to the router.
    pub expected_output: bool,
    /// Whether it may be deferred to a batch endpoint.
    pub deferrable: bool,
    /// Cache key when it repeats an earlier prompt exactly.
    pub cache_key: Option<u64>,
}

/// Arrivals never go beyond a century of simulated time (guards a profile that falls to zero for good).
const HORIZON: Nanos = 100 * 365 * 86_400 * 1_000_000_000;

/// Generates the arrivals of one replication, in time order.
pub struct ArrivalSource<'m> {
    model: &'m TrafficModel,
    attrs: StreamBase,
    limit: Limit,
    times: Xoshiro256PlusPlus,
    modulation: Xoshiro256PlusPlus,
    now: Nanos,
    next_id: u64,
    burst_state: usize,
    burst_until: Nanos,
    mean_gap_s: f64,
    /// The rate of the profile and spikes (not the bursts) at every time in `rate_from..=rate_until` (an empty
    /// span until the first thinning): it changes only on ramps and at spike edges, not at every candidate.
    rate: f64,
    rate_from: Nanos,
    rate_until: Nanos,
    done: bool,
    /// The token counts of every request when nothing about a request is random (see [`fixed_tokens`]).
    fixed: Option<(u32, u32)>,
}

/// The input and output token counts of every request when the model has one class with constant token
/// counts, never deferrable and never repeated: then no draw of a request's keyed stream decides anything (the
/// class draw has one outcome, the constants draw nothing, the flags are not drawn), so the stream need not be
/// made.
fn fixed_tokens(model: &TrafficModel) -> Option<(u32, u32)> {
    let [c] = model.classes.as_slice() else { return None };
    match (&c.input, &c.output) {
        (Sampler::Constant(i), Sampler::Constant(o)) if c.deferrable <= 0.0 && c.repeat <= 0.0 => {
            Some((tokens(*i), tokens(*o)))
        }
        _ => None,
    }
}

impl<'m> ArrivalSource<'m> {
    /// The arrivals of replication `replication` under `seed`.
    pub fn new(model: &'m TrafficModel, seed: u64, replication: u32, limit: Limit) -> Self {
        let mut modulation = rng::sequential(key(seed, replication, Stream::Modulation, 0, 0));
        let burst_until = match &model.config().bursts {
            Some(b) => sojourn(&mut modulation, b.states[0].mean_duration.as_secs_f64()),
            None => Nanos::MAX,
        };
        ArrivalSource {
            model,
            attrs: StreamBase::new(seed, replication, Stream::RequestAttrs),
            limit,
            times: rng::sequential(key(seed, replication, Stream::Arrivals, 0, 0)),
            modulation,
            now: 0,
            next_id: 0,
            burst_state: 0,
            burst_until,
            mean_gap_s: 1.0 / model.rate_max,
            rate: 0.0,
            rate_from: 1,
            rate_until: 0,
            done: false,
            fixed: fixed_tokens(model),
        }
    }

    /// The next arrival, or `None` once the limit is reached.
    #[allow(clippy::should_implement_trait)]
    #[inline(always)]
    pub fn next(&mut self) -> Option<Arrival> {
        if self.done || self.limit.max_requests.is_some_and(|n| self.next_id >= n) {
            self.done = true;
            return None;
        }
        loop {
            let gap: f64 = Exp1.sample(&mut self.times);
            self.now = self.now.saturating_add(secs_to_nanos(gap * self.mean_gap_s));
            if self.limit.until.is_some_and(|u| self.now >= u) || self.now >= HORIZON {
                self.done = true;
                return None;
            }
            if self.model.constant {
                break;
            }
            // Thinning: accept with probability rate(t) / envelope.
            if !(self.rate_from..=self.rate_until).contains(&self.now) {
                (self.rate, self.rate_from, self.rate_until) = self.model.rate_span(self.now);
            }
            let rate = self.rate * self.burst_factor();
            if rng::unit(self.times.next_u64()) * self.model.rate_max < rate {
                break;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        Some(self.attributes(id))
    }

    /// Requests generated so far.
    pub fn generated(&self) -> u64 {
        self.next_id
    }

    /// The MMPP factor at the current time, advancing the chain to it.
    #[inline]
    fn burst_factor(&mut self) -> f64 {
        if self.model.config().bursts.is_none() {
            return 1.0;
        }
        self.advance_bursts()
    }

    /// [`ArrivalSource::burst_factor`] with bursts declared.
    fn advance_bursts(&mut self) -> f64 {
        let Some(b) = &self.model.config().bursts else { return 1.0 };
        while self.burst_until <= self.now {
            self.burst_state = (self.burst_state + 1) % b.states.len();
            let d = sojourn(&mut self.modulation, b.states[self.burst_state].mean_duration.as_secs_f64());
            self.burst_until = self.burst_until.saturating_add(d);
        }
        b.states[self.burst_state].factor
    }

    #[inline(always)]
    fn attributes(&self, id: u64) -> Arrival {
        if let Some((input_tokens, output_tokens)) = self.fixed {
            let c = &self.model.classes[0];
            return Arrival {
                id,
                at: self.now,
                class: 0,
                template: 0,
                input_tokens,
                output_tokens,
                expected_output: c.output_known,
                deferrable: false,
                cache_key: None,
            };
        }
        let mut r = KeyedRng::new(self.attrs.key(id, 0));
        let cum = &self.model.cum_weights;
        let u = r.unit();
        let class = cum.partition_point(|&c| c <= u).min(cum.len() - 1);
        let c = &self.model.classes[class];
        let input_tokens = tokens(c.input.sample(&mut r));
        let output_tokens = tokens(c.output.sample(&mut r));
        let deferrable = c.deferrable > 0.0 && r.unit() < c.deferrable;
        let cache_key = (c.repeat > 0.0 && r.unit() < c.repeat).then(|| {
            let prompt = r.next_u64() % c.distinct;
            mix64(((class as u64) << 48) ^ prompt)
        });
        Arrival {
            id,
            at: self.now,
            class: class as u16,
            template: class as u32,
            input_tokens,
            output_tokens,
            expected_output: c.output_known,
            deferrable,
            cache_key,
        }
    }
}

/// A token count from a draw: rounded, at least 1, at most `u32::MAX`.
#[inline]
fn tokens(x: f64) -> u32 {
    round(x).clamp(1.0, u32::MAX as f64) as u32
}

/// `x.round()` (halves away from zero), without the library call that `f64::round` is on baseline x86-64 (no
/// SSE4.1 `roundsd`) for the draws it sees: for `0 < x < 2^52` the truncation `x as i64` and the fraction
/// `x - trunc` are exact, so rounding up exactly when the fraction is at least one half is `round`.
#[inline]
fn round(x: f64) -> f64 {
    if x > 0.0 && x < 4_503_599_627_370_496.0 {
        let t = x as i64 as f64;
        // Without a branch: whether a draw rounds up is a coin toss no predictor guesses.
        t + f64::from(u8::from(x - t >= 0.5))
    } else {
        x.round()
    }
}

fn sojourn(rng: &mut Xoshiro256PlusPlus, mean_s: f64) -> Nanos {
    let e: f64 = Exp1.sample(rng);
    secs_to_nanos(e * mean_s).max(1)
}

#[cfg(test)]
mod tests {
    use super::super::TrafficModel;
    use super::super::tests::config;
    use super::*;

    const TWO_CLASSES: &str = r#"
rate = 50.0
[[classes]]
name = "chat"
weight = 3
input_tokens = { dist = "lognormal", median = 500, sigma = 0.5 }
output_tokens = { dist = "constant", value = 200 }
repeat = 0.5
distinct_prompts = 10
[[classes]]
name = "batch"
weight = 1
input_tokens = { dist = "constant", value = 2000 }
output_tokens = { dist = "constant", value = 800 }
deferrable = 1.0
"#;

    fn collect(text: &str, seed: u64, rep: u32, limit: Limit) -> Vec<Arrival> {
        let m = TrafficModel::new(&config(text)).expect("valid");
        let mut s = ArrivalSource::new(&m, seed, rep, limit);
        std::iter::from_fn(|| s.next()).collect()
    }

    #[test]
    fn constant_rate_gives_poisson_counts_and_class_mix() {
        let a = collect(TWO_CLASSES, 1, 0, Limit { until: Some(secs_to_nanos(2000.0)), max_requests: None });
        // Poisson(100_000): sd 316; 5 sd.
        assert!((a.len() as i64 - 100_000).abs() < 1600, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at && w[1].id == w[0].id + 1));
        let chat = a.iter().filter(|x| x.class == 0).count() as f64 / a.len() as f64;
        assert!((chat - 0.75).abs() < 0.01, "{chat}");
        // Class attributes: batch requests are all deferrable, chat repeats half the time from 10 prompts.
        assert!(
            a.iter().filter(|x| x.class == 1).all(|x| x.deferrable && x.input_tokens == 2000 && x.cache_key.is_none())
        );
        let chats: Vec<_> = a.iter().filter(|x| x.class == 0).collect();
        let repeats = chats.iter().filter(|x| x.cache_key.is_some()).count() as f64 / chats.len() as f64;
        assert!((repeats - 0.5).abs() < 0.01, "{repeats}");
        let mut keys: Vec<u64> = chats.iter().filter_map(|x| x.cache_key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 10);
    }

    #[test]
    fn constant_attributes_skip_the_keyed_stream_and_give_the_same_arrivals() {
        let one = "rate = 5.0\n[[classes]]\nname = \"r\"\ninput_tokens = { dist = \"constant\", value = 2.5 }\n\
                   output_tokens = { dist = \"constant\", value = 7 }\noutput_known = true\n";
        let m = TrafficModel::new(&config(one)).expect("valid");
        let limit = Limit { until: None, max_requests: Some(5_000) };
        let mut short = ArrivalSource::new(&m, 3, 1, limit);
        assert_eq!(short.fixed, Some((3, 7)));
        let mut keyed = ArrivalSource::new(&m, 3, 1, limit);
        keyed.fixed = None;
        let (a, b): (Vec<_>, Vec<_>) =
            (std::iter::from_fn(|| short.next()).collect(), std::iter::from_fn(|| keyed.next()).collect());
        assert_eq!(a.len(), 5_000);
        assert_eq!(a, b);
        // Anything random about a request takes the keyed stream.
        let two = TrafficModel::new(&config(TWO_CLASSES)).expect("valid");
        assert_eq!(ArrivalSource::new(&two, 3, 1, limit).fixed, None);
        let repeated = format!("{one}repeat = 0.5\ndistinct_prompts = 3\n");
        assert_eq!(ArrivalSource::new(&TrafficModel::new(&config(&repeated)).expect("valid"), 3, 1, limit).fixed, None);
    }

    #[test]
    fn token_rounding_is_f64_round() {
        let mut r = KeyedRng::new(5);
        let tricky =
            [0.0, -0.0, 0.49999999999999994, 0.5, 1.5, 2.5, 1e15 + 0.5, 4_503_599_627_370_495.5, 4.5e15, -0.5, -2.5];
        let random = (0..100_000).map(|i| r.unit() * 10f64.powi(i % 12));
        for x in tricky.into_iter().chain(random).chain([f64::NAN, f64::INFINITY]) {
            assert_eq!(round(x).to_bits(), x.round().to_bits(), "{x}");
        }
    }

    #[test]
    fn request_count_limit_and_determinism() {
        let limit = Limit { until: None, max_requests: Some(1000) };
        let a = collect(TWO_CLASSES, 7, 2, limit);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, collect(TWO_CLASSES, 7, 2, limit));
        assert_ne!(a, collect(TWO_CLASSES, 7, 3, limit));
        assert_ne!(a, collect(TWO_CLASSES, 8, 2, limit));
    }

    #[test]
    fn attributes_depend_only_on_the_request_id() {
        // The same request id has the same attributes whatever the arrival process (here: another rate).
        let limit = Limit { until: None, max_requests: Some(500) };
        let a = collect(TWO_CLASSES, 3, 0, limit);
        let b = collect(&TWO_CLASSES.replace("rate = 50.0", "rate = 5.0"), 3, 0, limit);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.class, x.input_tokens, x.output_tokens, x.cache_key),
                (y.class, y.input_tokens, y.output_tokens, y.cache_key)
            );
            assert_ne!(x.at, y.at);
        }
    }

    #[test]
    fn thinning_follows_the_profile_and_bursts_add_load() {
        let text = TWO_CLASSES.replace(
            "rate = 50.0",
            "rate = 50.0\nprofile = { kind = \"points\", points = [[\"0s\", 1.0], [\"1000s\", 1.0], [\"1000.001s\", 0.2]] }",
        );
        let a = collect(&text, 1, 0, Limit { until: Some(secs_to_nanos(2000.0)), max_requests: None });
        let first = a.iter().filter(|x| x.at < secs_to_nanos(1000.0)).count() as f64;
        let second = (a.len() as f64) - first;
        // 50 000 then 10 000 expected.
        assert!((first - 50_000.0).abs() < 1200.0 && (second - 10_000.0).abs() < 600.0, "{first} {second}");

        let bursty = TWO_CLASSES.replace(
            "rate = 50.0",
            "rate = 10.0\n[bursts]\nstates = [{ factor = 1.0, mean_duration = \"90s\" }, { factor = 5.0, mean_duration = \"10s\" }]",
        );
        let a = collect(&bursty, 1, 0, Limit { until: Some(secs_to_nanos(200_000.0)), max_requests: None });
        // Time-average factor: 0.9 x 1 + 0.1 x 5 = 1.4 -> 14 req/s on average. Over 2000 on/off cycles the
        // fraction of time in the burst state has a standard deviation of about 0.003, i.e. 0.13 req/s;
        // allow 4 standard deviations.
        let rate = a.len() as f64 / 200_000.0;
        assert!((rate - 14.0).abs() < 0.5, "{rate}");
    }
}
