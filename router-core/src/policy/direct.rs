//! The direct decision: a root policy whose targets are all endpoints and that scores each by one figure
//! (latency routing without a slow threshold, least outstanding, cost and oracle), decided straight from the
//! scoreboard and the fast filter, without a selection context, candidates, a journal or a call per layer.
//!
//! It makes the general path's choice with the general path's draws: the same candidates in the same order (the
//! targets the fast filter passes; an excluded target is counted as the full filter counts it), the same
//! scores (the same figures), and the same selector ([`select::within_of`] is [`select::within`] on plain
//! numbers). When the fast filter's bounds do not settle every target (a limit near, a circuit not closed, a
//! required capability), it declines and the general path decides. Debug builds decide both ways and compare
//! (see `Router::select`), and a property test pins it (`router/decide.rs`).

use super::{EndpointSet, FastFilter, Target, WeightedTarget, Why, select};
use crate::config::{PolicyKind, PolicySpec};
use crate::keyed_rand::KeyedRand;
use crate::model::{EndpointIdx, Price, RequestInfo};
use crate::state::EndpointState;

/// What a direct root scores its endpoints by (lower is better).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Score {
    /// The latency average, the lowest at random among ties (`latency` without a buffer).
    LowestLatency,
    /// The latency average, at random among those within `buffer` (not 0) of the lowest (`latency`).
    Latency { buffer: f64 },
    /// The requests in flight, ties at random (`least-outstanding`).
    InFlight,
    /// The request's expected cost, ties at random (`cost`, `oracle`).
    Cost { default_output: u32 },
}

/// A root policy decided directly (see the module's documentation), with its scratch.
#[derive(Clone, Debug)]
pub(crate) struct Direct {
    /// The root's targets, in order.
    targets: Vec<EndpointIdx>,
    /// The same, as a set.
    set: EndpointSet,
    score: Score,
    /// The candidates of one decision and their scores, by position (as long as the targets).
    eps: Vec<EndpointIdx>,
    scores: Vec<f64>,
}

/// A direct decision: the pick (`None`: no target is eligible) and the filter's counts of why targets were
/// not candidates.
pub(crate) type Decided = (Option<EndpointIdx>, [u32; 6]);

impl Direct {
    /// The direct form of root policy `spec` with compiled `targets` (with `default_output` tokens assumed
    /// when a request does not say), or `None` when it must take the general path: another kind, a slow
    /// threshold, or a group among the targets.
    pub(crate) fn of(spec: &PolicySpec, targets: &[WeightedTarget], default_output: u32) -> Option<Direct> {
        let score = match spec.kind {
            PolicyKind::Latency if spec.slow_threshold.is_none() => match spec.buffer.unwrap_or(0.0) {
                0.0 => Score::LowestLatency,
                buffer => Score::Latency { buffer },
            },
            PolicyKind::LeastOutstanding => Score::InFlight,
            PolicyKind::Cost | PolicyKind::Oracle => Score::Cost { default_output },
            _ => return None,
        };
        let targets = targets
            .iter()
            .map(|t| match t.target {
                Target::Endpoint(e) => Some(e),
                Target::Policy(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let mut set = EndpointSet::default();
        targets.iter().for_each(|&e| set.insert(e));
        let n = targets.len();
        Some(Direct { targets, set, score, eps: vec![EndpointIdx(0); n], scores: vec![0.0; n] })
    }

    /// Decides `req` when the fast filter settles every target: each is either open (and, by the bounds,
    /// passes every per-request check) or excluded. `None` when it does not (the general path decides).
    #[inline(always)]
    pub(crate) fn select(
        &mut self,
        fast: &FastFilter<'_>,
        states: &[EndpointState],
        exclude: EndpointSet,
        req: &RequestInfo,
        rand: KeyedRand,
    ) -> Option<Decided> {
        if !fast.all || !self.set.without(fast.open).without(exclude).is_empty() {
            return None;
        }
        let board = fast.board;
        // One loop per kind of score, each with the figure inlined.
        match self.score {
            // Without a buffer the selector reads each latency once (twice for ties, which are rare among
            // averages): read them in place. With one it reads them three times: score them into the array.
            Score::LowestLatency => self.pick::<true>(fast, exclude, 0.0, rand, |i| board.latency[i]),
            Score::Latency { buffer } => self.pick::<false>(fast, exclude, buffer, rand, |i| board.latency[i]),
            // In-flight counts tie often, and a cost takes a division: score each once.
            Score::InFlight => self.pick::<false>(fast, exclude, 0.0, rand, |i| states[i].in_flight as f64),
            Score::Cost { default_output } => self.pick::<false>(fast, exclude, 0.0, rand, |i| {
                Price { input_per_mtok: board.price_in[i], output_per_mtok: board.price_out[i] }
                    .expected_cost(req, default_output)
            }),
        }
    }

    /// Scores the open targets by `score` (of an endpoint's index) and picks one within `buffer` of the best
    /// ([`select::within_of`]). Written by position (the arrays are as long as the targets), not pushed. With
    /// `IN_PLACE` and every target open, the selector reads each figure where it is (through `score`) instead of
    /// from an array of them: the same numbers, without writing the array, for figures cheap to read again.
    #[inline(always)]
    fn pick<const IN_PLACE: bool>(
        &mut self,
        fast: &FastFilter<'_>,
        exclude: EndpointSet,
        buffer: f64,
        mut rand: KeyedRand,
        score: impl Fn(usize) -> f64,
    ) -> Option<Decided> {
        let mut why = [0u32; 6];
        let targets = &self.targets[..];
        let scores = &mut self.scores[..targets.len()];
        if self.set.without(fast.open).is_empty() {
            // Every target open (the common case): the candidates are the targets.
            let chosen = if IN_PLACE {
                select::within_of(&Figures { targets, score: &score }, buffer, &mut rand)
            } else {
                for (s, e) in scores.iter_mut().zip(targets) {
                    *s = score(e.get());
                }
                select::within_of(&*scores, buffer, &mut rand)
            };
            return Some((chosen.map(|k| targets[k]), why));
        }
        let eps = &mut self.eps[..targets.len()];
        let mut n = 0;
        for &e in targets {
            if !fast.open.contains(e) {
                // Excluded (it is not open, and the caller's check leaves no other reason).
                debug_assert!(exclude.contains(e));
                why[Why::Excluded as usize] += 1;
                continue;
            }
            eps[n] = e;
            scores[n] = score(e.get());
            n += 1;
        }
        let chosen = select::within_of(&scores[..n], buffer, &mut rand);
        Some((chosen.map(|k| eps[k]), why))
    }
}

/// The figures of `targets` by position, computed by `score` (of an endpoint's index) each time the selector
/// reads one: the same numbers, in the same order, as an array of them.
struct Figures<'a, F> {
    targets: &'a [EndpointIdx],
    score: &'a F,
}

impl<F: Fn(usize) -> f64> select::Scores for Figures<'_, F> {
    #[inline(always)]
    fn count(&self) -> usize {
        self.targets.len()
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        (self.score)(self.targets[i].get())
    }
}
