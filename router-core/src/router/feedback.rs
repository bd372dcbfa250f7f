//! Feedback from the caller: attempts sent and their outcomes, health checks, an upstream's refused
//! credentials, and the batch deadline.

use super::Router;
use crate::model::{EndpointIdx, Nanos, Outcome, Price, RequestInfo};
use crate::state::Circuit;

impl Router {
    /// Records that an attempt of `req` was sent to `ep` at `now`: one request and the request's
    /// [`TrackingConfig::tpm_estimate`] tokens in the endpoint's quota window, the same count the quota filter
    /// used to admit it; with LiteLLM compat tracking, one attempt in the endpoint's calendar-minute counter.
    #[inline]
    pub fn on_dispatch(&mut self, ep: EndpointIdx, req: &RequestInfo, now: Nanos) {
        let (Some(st), Some(gate)) = (self.states.get_mut(ep.get()), self.gates.get(ep.get())) else { return };
        let in_flight = st.in_flight;
        st.on_dispatch(self.tracking.tpm_estimate(req), now, &self.tracking.circuit);
        if self.compat.is_some() {
            st.compat.record_dispatch(now);
        }
        // A dispatch moves the windows and the in-flight count, and a circuit that is not closed; it leaves a
        // closed circuit closed.
        let closed = matches!(st.circuit, Circuit::Closed);
        if !self.board.keeps_entries(ep, (in_flight, st.in_flight), gate.concurrency, closed, true) {
            self.board.touch(ep);
        }
    }

    /// Records the outcome of an attempt of `req` on `ep` at `now`: latency averages, quota usage (output tokens
    /// beyond the TPM estimate counted at dispatch), error rate, spend, throttling on 429, the circuit breaker and
    /// the response cache.
    pub fn on_result(&mut self, ep: EndpointIdx, req: &RequestInfo, outcome: &Outcome, now: Nanos) {
        let Some(gate) = self.gates.get(ep.get()) else { return };
        // The gate's copy of the prices: one hot line, not the endpoint's description.
        let price = Price { input_per_mtok: gate.price_in, output_per_mtok: gate.price_out };
        let cost = price.cost(outcome.input_tokens, outcome.output_tokens);
        let extra = self.tracking.tpm_beyond_estimate(req, outcome.output_tokens);
        let concurrency = gate.concurrency;
        let st = &mut self.states[ep.get()];
        let (throttled_before, in_flight) = (st.throttled_until, st.in_flight);
        let closed_before = matches!(st.circuit, Circuit::Closed);
        st.on_result(outcome, cost, extra, now, &self.tracking);
        if self.emulates {
            self.on_result_emulated(ep, req, outcome, now, throttled_before);
            self.board.touch(ep);
        } else {
            // A result moves the windows, the in-flight count, the averages and counters, and may open or close
            // the circuit or throttle the endpoint.
            let st = &self.states[ep.get()];
            let closed = closed_before & matches!(st.circuit, Circuit::Closed);
            let kept = st.throttled_until == throttled_before;
            if self.board.keeps_entries(ep, (in_flight, st.in_flight), concurrency, closed, kept) {
                self.board.set_latency(ep, st.latency.value());
            } else {
                self.board.touch(ep);
            }
        }
        if outcome.is_success()
            && let (Some(cache), Some(key)) = (&mut self.cache, req.cache_key)
        {
            cache.insert(key, now);
        }
    }

    /// What [`Router::on_result`] does besides the endpoint's own state for a router that emulates another
    /// gateway (LiteLLM's latency groups and cooldowns, Portkey's stateless targets): out of line, so that the
    /// router's own feedback keeps a small frame. `throttled_before` is the endpoint's throttling before this
    /// outcome.
    #[inline(never)]
    fn on_result_emulated(
        &mut self,
        ep: EndpointIdx,
        req: &RequestInfo,
        outcome: &Outcome,
        now: Nanos,
        throttled_before: Nanos,
    ) {
        if let Some(c) = &self.compat {
            let g = c.latency_group_of[ep.get()];
            if let Some((members, ttl)) = c.latency_groups.get(g as usize) {
                // LiteLLM's group map expires `ttl` after its last write: the next write starts afresh.
                let last = members.iter().filter_map(|m| self.states[m.get()].compat.latency_written).max();
                if last.is_some_and(|t| now >= t.saturating_add(*ttl)) {
                    for m in members {
                        self.states[m.get()].compat.clear_latencies();
                    }
                }
            }
            self.states[ep.get()].compat.record(outcome, req.streaming, c.samples, now);
        }
        if self.target_retry.is_some() {
            // Portkey keeps no state between requests: a 429's Retry-After does not keep the target out.
            self.states[ep.get()].throttled_until = throttled_before;
        }
        if let Some(cd) = &self.cooldown {
            let st = &mut self.states[ep.get()];
            // LiteLLM reads no Retry-After for routing: only a cooldown keeps the deployment out.
            st.throttled_until = throttled_before;
            if let Some(class) = outcome.error
                && cd.should_cool(st, class, now)
            {
                st.throttled_until = st.throttled_until.max(now.saturating_add(cd.time));
            }
        }
    }

    /// Opens `ep`'s circuit at `now` for the breaker's cooldown, whatever its error counts (see
    /// [`EndpointState::open_circuit`]): the gateway calls it when an upstream refuses its credentials, which
    /// every later request would meet too. After the cooldown a half-open probe tests the endpoint as usual.
    pub fn open_circuit(&mut self, ep: EndpointIdx, now: Nanos) {
        if let Some(st) = self.states.get_mut(ep.get()) {
            st.open_circuit(now, &self.tracking.circuit);
            self.board.touch(ep);
        }
    }

    /// Records a health-check result for `ep`.
    pub fn on_health(&mut self, ep: EndpointIdx, healthy: bool, _now: Nanos) {
        if let Some(st) = self.states.get_mut(ep.get()) {
            st.healthy = healthy;
            self.board.touch(ep);
        }
    }

    /// Releases the open batch if its deadline passed: `Some((batch, size))`.
    pub fn poll_batch(&mut self, now: Nanos) -> Option<(u64, u32)> {
        self.batcher.as_mut()?.poll(now)
    }
}
