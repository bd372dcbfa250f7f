//! The hot path's view of the endpoints: what the shared filter and the scorers read on every decision, one
//! array per quantity, and router-wide bounds that let a decision skip the per-endpoint checks.
//!
//! Everything here is derived from the endpoints' [`Gate`]s and [`EndpointState`]s by the same arithmetic the
//! filter and the scorers did on the state, so it changes no verdict and no score: it only moves that work
//! from every decision (times every endpoint) to the feedback that changed the state (one endpoint).

use super::{EndpointSet, Gate};
use crate::config::PolicyKind;
use crate::model::{EndpointIdx, Nanos};
use crate::state::{Circuit, EndpointState};
use std::cell::Cell;

/// Whether an endpoint passes every check of the filter that depends on neither the request nor the clock:
/// not a batch endpoint, circuit closed, healthy, under its RPM and concurrency limits, and tokens in the
/// window within its TPM. Then, with [`Scoreboard::tpm_room`], `tokens + estimate <= tpm` (saturating, as the
/// filter adds) holds exactly when `estimate <= tpm_room`: with an unlimited TPM both always hold; otherwise
/// `tokens <= tpm < u64::MAX`, so the sum saturates only when it exceeds `tpm`, and `tokens + estimate <= tpm`
/// is `estimate <= tpm - tokens`.
#[inline]
fn ready(g: &Gate, st: &EndpointState) -> bool {
    !g.batch
        & matches!(st.circuit, Circuit::Closed)
        & st.healthy
        & (st.window_requests() < g.rpm)
        & (st.window_tokens() <= g.tpm)
        & (st.in_flight < g.concurrency)
}

/// The largest TPM estimate an endpoint with `tokens` in its window admits under `tpm` (`u64::MAX`: unlimited),
/// provided `tokens <= tpm` (see [`ready`]).
#[inline]
fn tpm_room(tpm: u64, tokens: u64) -> u64 {
    if tpm == u64::MAX { u64::MAX } else { tpm.saturating_sub(tokens) }
}

/// The smallest and the largest of `x` (none NaN; `(inf, -inf)` when empty), two at a time in two interleaved
/// chains whose results are then combined. Which of several equal values is kept can differ from a single
/// scan only for `0.0` against `-0.0`.
#[inline(always)]
pub(crate) fn range(x: &[f64]) -> (f64, f64) {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    let pairs = x.chunks_exact(2);
    let rest = pairs.remainder();
    for p in pairs {
        for j in 0..2 {
            lo[j] = if p[j] < lo[j] { p[j] } else { lo[j] };
            hi[j] = if p[j] > hi[j] { p[j] } else { hi[j] };
        }
    }
    if let [x] = rest {
        lo[0] = if *x < lo[0] { *x } else { lo[0] };
        hi[0] = if *x > hi[0] { *x } else { hi[0] };
    }
    (if lo[1] < lo[0] { lo[1] } else { lo[0] }, if hi[1] > hi[0] { hi[1] } else { hi[0] })
}

/// The range of a set of values (none NaN) after one of them, `old`, is replaced by `new`, from the range
/// `r` before; `None` when that is unknown (`old` held a bound and `new` moves inward from it, or `r` was
/// unknown). Equal values may differ only in the sign of a zero.
#[inline(always)]
fn replaced(r: Option<(f64, f64)>, old: f64, new: f64) -> Option<(f64, f64)> {
    let (lo, hi) = r?;
    if (old == lo && new > lo) || (old == hi && new < hi) {
        return None;
    }
    Some((if new < lo { new } else { lo }, if new > hi { new } else { hi }))
}

/// Which of the scoreboard's score columns (and their ranges) some policy of a router reads. A refresh
/// recomputes only those; the filter's entries (throttling, TPM room, readiness and the bounds) are always
/// kept. Decided once, when the router is built, from the kinds of its policies ([`Reads::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reads {
    /// [`Scoreboard::latency`]: latency and hybrid routing.
    pub(crate) latency: bool,
    /// [`Scoreboard::load`]: hybrid routing.
    pub(crate) load: bool,
    /// [`Scoreboard::quota`]: usage and hybrid routing.
    pub(crate) quota: bool,
    /// [`Scoreboard::ranges`] kept up to date by the refreshes (hybrid routing over all the endpoints reads them
    /// on every decision); without it they are scanned when asked for.
    pub(crate) ranges: bool,
}

impl Reads {
    /// Every column and the ranges.
    pub(crate) const ALL: Reads = Reads { latency: true, load: true, quota: true, ranges: true };

    /// What a router whose policies (the root and its groups) are of `kinds` reads. A kind not named here
    /// reads no score column: its scorer reads the endpoints' state or the prices, which are not refreshed.
    pub(crate) fn of(kinds: impl IntoIterator<Item = PolicyKind>) -> Reads {
        let mut r = Reads { latency: false, load: false, quota: false, ranges: false };
        for kind in kinds {
            match kind {
                PolicyKind::Latency => r.latency = true,
                PolicyKind::Usage => r.quota = true,
                PolicyKind::Hybrid => r = Reads::ALL,
                _ => {}
            }
        }
        r
    }
}

/// Sets a score column's entry to `new`; with `keep_range`, updates the column's known range as [`replaced`] does
/// (an unchanged value, the common case, leaves it as it is).
#[inline(always)]
fn update(entry: &mut f64, range: &Cell<Option<(f64, f64)>>, keep_range: bool, new: f64) {
    if keep_range && new.to_bits() != entry.to_bits() {
        range.set(replaced(range.get(), *entry, new));
    }
    *entry = new;
}

/// What the shared filter and the scorers read of every endpoint on every decision, one array per quantity
/// indexed by endpoint, kept up to date with the endpoints' [`Gate`]s and [`EndpointState`]s; which endpoints
/// are ready (see [`ready`]); and bounds over the ready ones that decide the per-request checks of all of them
/// at once.
///
/// Invariant, after [`Scoreboard::flush`]: every array is current (of the score columns, those in
/// [`Scoreboard::reads`]; the others keep their first values and are never read), and for every ready endpoint `e`,
/// `min_context <= context[e]`, `min_room <= tpm_room[e]` and `max_throttled >= throttled_until[e]`. An
/// endpoint's entries change, and an endpoint becomes ready, only in [`Scoreboard::flush`] or
/// [`Scoreboard::refresh_all`], which fold the values of each ready endpoint they visit into the bounds; the
/// bounds only loosen between the exact recomputations of [`Scoreboard::refresh_all`] (each window tick).
#[derive(Clone, Debug)]
pub(crate) struct Scoreboard {
    /// Until when a 429 keeps the endpoint out of rotation ([`EndpointState::throttled_until`]).
    pub(crate) throttled_until: Vec<Nanos>,
    /// The largest TPM estimate the quota window still admits: `tpm - window tokens`, or `u64::MAX` when the
    /// TPM is unlimited. Meaningful while the endpoint is ready ([`ready`] implies tokens <= tpm).
    pub(crate) tpm_room: Vec<u64>,
    /// Context window in tokens ([`Gate::context`]).
    pub(crate) context: Vec<u64>,
    /// Latency average ([`crate::state::Ema::value`]).
    pub(crate) latency: Vec<f64>,
    /// In-flight requests relative to the concurrency limit ([`Gate::load`]).
    pub(crate) load: Vec<f64>,
    /// Fraction of the quota used in the window ([`Gate::quota_utilisation`]).
    pub(crate) quota: Vec<f64>,
    /// Price per million input tokens ([`Gate::price_in`]).
    pub(crate) price_in: Vec<f64>,
    /// Price per million output tokens ([`Gate::price_out`]).
    pub(crate) price_out: Vec<f64>,
    /// The score columns the router's policies read: the only ones refreshed.
    reads: Reads,
    /// The smallest and largest of `latency`, `load` and `quota` over all endpoints, or `None` when an update
    /// may have removed one of them (then [`Scoreboard::ranges`] scans the array again). Kept only with
    /// [`Reads::ranges`].
    ranges: [Cell<Option<(f64, f64)>>; 3],
    ready: EndpointSet,
    /// Endpoints whose state changed since their entries were computed (feedback that keeps an endpoint's
    /// entries, [`Scoreboard::keeps_entries`], does not add it).
    dirty: EndpointSet,
    /// Endpoints whose entries no window sum and no in-flight count moves, as long as the count stays on one
    /// side of the concurrency limit (see [`Scoreboard::keeps_entries`]): no RPM and no TPM limit (the TPM room
    /// stays unlimited, the quota use 0, and readiness compares the request count only with `u64::MAX`, which
    /// no window of dispatches reaches), on a board that keeps no load column.
    settled: EndpointSet,
    /// The words of an [`EndpointSet`] that can hold one of the endpoints: `ceil(n / 64)`.
    words: usize,
    min_context: u64,
    min_room: u64,
    max_throttled: Nanos,
}

impl Scoreboard {
    /// The scoreboard of endpoints with gates `gates` in states `states`, keeping the score columns `reads`.
    pub(crate) fn new(gates: &[Gate], states: &[EndpointState], reads: Reads) -> Self {
        let n = gates.len();
        let mut b = Scoreboard {
            throttled_until: vec![0; n],
            tpm_room: vec![0; n],
            context: gates.iter().map(|g| g.context).collect(),
            latency: vec![0.0; n],
            load: vec![0.0; n],
            quota: vec![0.0; n],
            price_in: gates.iter().map(|g| g.price_in).collect(),
            price_out: gates.iter().map(|g| g.price_out).collect(),
            reads,
            ranges: Default::default(),
            ready: EndpointSet::default(),
            dirty: EndpointSet::default(),
            settled: EndpointSet::default(),
            words: n.div_ceil(64),
            min_context: u64::MAX,
            min_room: u64::MAX,
            max_throttled: 0,
        };
        if !reads.load {
            for (e, g) in gates.iter().enumerate() {
                let unlimited = g.rpm == u64::MAX && g.tpm == u64::MAX && g.inv_rpm == 0.0 && g.inv_tpm == 0.0;
                b.settled.set(EndpointIdx(e as u16), unlimited);
            }
        }
        b.refresh_all(gates, states);
        b
    }

    /// Whether feedback on `e` leaves its entries as they are, except its latency average (which the caller
    /// sets with [`Scoreboard::set_latency`]): `e` is settled, the feedback moved only its windows, its
    /// in-flight count (from `in_flight` to `now_in_flight`, both on the same side of `concurrency`), its
    /// latency averages and counters, and its circuit was closed before and after (`closed`) and its throttling
    /// unchanged (`throttled_kept`). Readiness, the TPM room, the throttling and the quota use are then what a
    /// refresh would compute again, so the feedback need not [`Scoreboard::touch`] it.
    #[inline(always)]
    pub(crate) fn keeps_entries(
        &self,
        e: EndpointIdx,
        (in_flight, now_in_flight): (u32, u32),
        concurrency: u32,
        closed: bool,
        throttled_kept: bool,
    ) -> bool {
        self.settled.contains(e)
            & closed
            & throttled_kept
            & ((in_flight < concurrency) == (now_in_flight < concurrency))
    }

    /// Sets the latency average of `e` (if the latency column is kept), after feedback that kept its other
    /// entries ([`Scoreboard::keeps_entries`]).
    #[inline(always)]
    pub(crate) fn set_latency(&mut self, e: EndpointIdx, latency: f64) {
        if self.reads.latency {
            update(&mut self.latency[e.get()], &self.ranges[0], self.reads.ranges, latency);
        }
    }

    /// Notes that the state of `e` changed: its entries are brought up to date by the next
    /// [`Scoreboard::flush`].
    #[inline]
    pub(crate) fn touch(&mut self, e: EndpointIdx) {
        debug_assert!(e.get() < self.latency.len(), "a touched endpoint exists");
        self.dirty.insert(e);
    }

    /// Brings the entries of the endpoints touched since the last flush up to date.
    #[inline(always)]
    pub(crate) fn flush(&mut self, gates: &[Gate], states: &[EndpointState]) {
        // Only the words that can hold an endpoint: one for up to 64 endpoints.
        for w in 0..self.words {
            let mut bits = std::mem::take(&mut self.dirty.0[w]);
            while bits != 0 {
                self.refresh(w * 64 + bits.trailing_zeros() as usize, gates, states);
                bits &= bits - 1;
            }
        }
        // Debug builds check that every entry is what a refresh would compute now: that the feedback which did
        // not touch an endpoint ([`Scoreboard::keeps_entries`]) left nothing stale.
        #[cfg(debug_assertions)]
        self.assert_current(gates, states);
    }

    /// Asserts the invariant of [`Scoreboard`] after a flush: every entry (of the columns kept) as a refresh
    /// would compute it, and the bounds hold for every ready endpoint.
    #[cfg(debug_assertions)]
    fn assert_current(&self, gates: &[Gate], states: &[EndpointState]) {
        for (e, (g, st)) in gates.iter().zip(states).enumerate() {
            let ready = ready(g, st);
            let room = tpm_room(g.tpm, st.window_tokens());
            assert_eq!(self.ready.contains(EndpointIdx(e as u16)), ready, "endpoint {e}'s readiness is current");
            assert_eq!(self.throttled_until[e], st.throttled_until, "endpoint {e}'s throttling is current");
            assert_eq!(self.tpm_room[e], room, "endpoint {e}'s TPM room is current");
            let columns = [
                (self.reads.latency, self.latency[e], st.latency.value()),
                (self.reads.load, self.load[e], g.load(st)),
                (self.reads.quota, self.quota[e], g.quota_utilisation(st)),
            ];
            for (k, (kept, entry, fresh)) in columns.into_iter().enumerate() {
                assert!(!kept || entry.to_bits() == fresh.to_bits(), "endpoint {e}'s score column {k} is current");
            }
            if ready {
                assert!(self.min_context <= g.context && self.min_room <= room, "endpoint {e} within the bounds");
                assert!(self.max_throttled >= st.throttled_until, "endpoint {e} within the bounds");
            }
        }
    }

    /// Recomputes every entry and the bounds exactly (after the windows of all endpoints moved).
    pub(crate) fn refresh_all(&mut self, gates: &[Gate], states: &[EndpointState]) {
        self.dirty = EndpointSet::default();
        (self.min_context, self.min_room, self.max_throttled) = (u64::MAX, u64::MAX, 0);
        self.ranges.iter().for_each(|r| r.set(None));
        for e in 0..self.latency.len() {
            self.refresh(e, gates, states);
        }
    }

    /// Recomputes the entries of `e` from its gate and state, by the arithmetic the filter and the scorers
    /// used on them, and folds them into the bounds when `e` is ready. Of the score columns, only those the
    /// router's policies read ([`Reads`]).
    #[inline(always)]
    fn refresh(&mut self, e: usize, gates: &[Gate], states: &[EndpointState]) {
        let (g, st) = (&gates[e], &states[e]);
        let room = tpm_room(g.tpm, st.window_tokens());
        self.throttled_until[e] = st.throttled_until;
        self.tpm_room[e] = room;
        let reads = self.reads;
        if reads.latency {
            update(&mut self.latency[e], &self.ranges[0], reads.ranges, st.latency.value());
        }
        if reads.load {
            update(&mut self.load[e], &self.ranges[1], reads.ranges, g.load(st));
        }
        if reads.quota {
            update(&mut self.quota[e], &self.ranges[2], reads.ranges, g.quota_utilisation(st));
        }
        let ready = ready(g, st);
        self.ready.set(EndpointIdx(e as u16), ready);
        if ready {
            self.min_context = self.min_context.min(g.context);
            self.min_room = self.min_room.min(room);
            self.max_throttled = self.max_throttled.max(st.throttled_until);
        }
    }

    /// The smallest and largest latency average, load and quota use over all endpoints (see [`range`]). The
    /// columns must be among those read ([`Reads`]); the ranges are remembered only with [`Reads::ranges`].
    #[inline]
    pub(crate) fn ranges(&self) -> [(f64, f64); 3] {
        debug_assert!(self.reads.latency && self.reads.load && self.reads.quota, "the columns are kept");
        let columns = [&self.latency, &self.load, &self.quota];
        std::array::from_fn(|k| match self.ranges[k].get() {
            Some(r) => r,
            None => {
                let r = range(columns[k]);
                if self.reads.ranges {
                    self.ranges[k].set(Some(r));
                }
                r
            }
        })
    }

    /// The fast filter for a request with the given token counts at `now`, the endpoints in `exclude` left
    /// out; `capabilities` is whether the request requires any (then every endpoint takes the full filter).
    /// Call it after [`Scoreboard::flush`].
    #[inline]
    pub(crate) fn filter(
        &self,
        exclude: EndpointSet,
        capabilities: bool,
        context_tokens: u64,
        quota_tokens: u64,
        now: Nanos,
    ) -> FastFilter<'_> {
        FastFilter {
            board: self,
            open: if capabilities { EndpointSet::default() } else { self.ready.without(exclude) },
            all: context_tokens <= self.min_context && quota_tokens <= self.min_room && self.max_throttled <= now,
            context_tokens,
            quota_tokens,
            now,
        }
    }
}

/// The common case of the shared filter for one request, held in registers by a loop over targets:
/// [`FastFilter::passes`] is true exactly when the endpoint is ready, not excluded, no capability is required,
/// and the per-request checks of [`super::check`] pass (context window, TPM with the estimate, throttling).
/// Then `check` passes too; when it is false, [`super::Ctx::eligible`] takes the full filter for the verdict and
/// its reason.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastFilter<'a> {
    /// The scoreboard it reads.
    pub(crate) board: &'a Scoreboard,
    /// Ready, not excluded, and no capability required.
    pub(crate) open: EndpointSet,
    /// Every endpoint of `open` passes the per-request checks (by the scoreboard's bounds).
    pub(crate) all: bool,
    context_tokens: u64,
    quota_tokens: u64,
    now: Nanos,
}

impl FastFilter<'_> {
    /// Whether `e` passes the filter's common case.
    #[inline(always)]
    pub(crate) fn passes(&self, e: EndpointIdx) -> bool {
        let open = self.open.contains(e);
        if self.all {
            return open;
        }
        let (i, b) = (e.get(), self.board);
        open & (self.context_tokens <= b.context[i])
            & (self.quota_tokens <= b.tpm_room[i])
            & (b.throttled_until[i] <= self.now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replacing one value of a set keeps the range known, or forgets it, correctly.
    #[test]
    fn replaced_tracks_the_range_or_forgets_it() {
        let values = [0.0, -0.0, 0.5, 1.0, 2.0, 3.0];
        for a in values {
            for b in values {
                for c in values {
                    for new in values {
                        let mut set = [a, b, c];
                        let before = range(&set);
                        let old = set[1];
                        set[1] = new;
                        if let Some((lo, hi)) = replaced(Some(before), old, new) {
                            assert_eq!((lo, hi), range(&set), "{a} {b} {c}, {old} -> {new}");
                        }
                    }
                }
            }
        }
    }

    /// Only an endpoint without RPM and TPM limits (none declared, not even `u64::MAX`, whose reciprocal weighs the
    /// window in the quota use) is settled, and none on a board that keeps the load column; and feedback keeps
    /// its entries only with the circuit closed, the throttling kept and the in-flight count on one side of the
    /// concurrency limit.
    #[test]
    fn only_unlimited_endpoints_without_the_load_column_are_settled() {
        use crate::model::{Endpoint, Limits};
        use crate::state::TrackingConfig;
        let limits = [
            Limits::default(),
            Limits { concurrency: Some(2), context_window: Some(100), ..Limits::default() },
            Limits { rpm: Some(10), ..Limits::default() },
            Limits { tpm: Some(1_000), ..Limits::default() },
            Limits { tpm: Some(u64::MAX), ..Limits::default() },
        ];
        let gates: Vec<Gate> =
            limits.iter().map(|&limits| Gate::new(&Endpoint { limits, ..Endpoint::new("e") })).collect();
        let states = vec![EndpointState::new(&TrackingConfig::default()); gates.len()];
        let latency_only = Reads { latency: true, load: false, quota: true, ranges: false };
        let board = Scoreboard::new(&gates, &states, latency_only);
        let settled: Vec<bool> = (0..gates.len()).map(|e| board.settled.contains(EndpointIdx(e as u16))).collect();
        assert_eq!(settled, [true, true, false, false, false]);
        assert!(Scoreboard::new(&gates, &states, Reads::ALL).settled.is_empty());
        let e = EndpointIdx(1);
        assert!(board.keeps_entries(e, (0, 1), 2, true, true));
        assert!(!board.keeps_entries(e, (1, 2), 2, true, true), "at the concurrency limit");
        assert!(!board.keeps_entries(e, (2, 1), 2, true, true), "below it again");
        assert!(!board.keeps_entries(e, (0, 1), 2, false, true), "a circuit not closed");
        assert!(!board.keeps_entries(e, (0, 1), 2, true, false), "throttled");
        assert!(!board.keeps_entries(EndpointIdx(2), (0, 1), u32::MAX, true, true), "an RPM limit");
    }

    /// The filter's `tokens + estimate <= tpm` (saturating) is `tokens <= tpm` (part of being ready) and
    /// `estimate <= tpm_room`, at the edges too.
    #[test]
    fn tpm_room_decides_as_the_saturating_sum() {
        let edges = [0, 1, 2, 255, 256, 257, 1 << 32, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for tpm in edges {
            for tokens in edges {
                for estimate in edges {
                    assert_eq!(
                        tokens.saturating_add(estimate) <= tpm,
                        tokens <= tpm && estimate <= tpm_room(tpm, tokens),
                        "tpm {tpm}, tokens {tokens}, estimate {estimate}"
                    );
                }
            }
        }
    }
}
