//! State adoption across a configuration reload: a new router takes over what the old one learned.

use super::Router;
use crate::model::EndpointIdx;
use crate::state::Circuit;

impl Router {
    /// Takes over what `old` learned about the endpoints both routers know (matched by id), so that a
    /// configuration reload does not reset it: with the same tracking configuration, the whole state
    /// (latency and TTFT averages, quota and error windows, circuit, throttling, health, counters, LiteLLM
    /// state) except the attempts and half-open probes in flight, which finish on `old`; with another tracking configuration,
    /// whose averages and windows measure differently, only the circuit, throttling, health and
    /// consecutive failures. Returns how many endpoints carried over.
    pub fn adopt_state(&mut self, old: &Router) -> usize {
        let same_tracking = self.tracking == old.tracking;
        let mut carried = 0;
        for i in 0..self.endpoints.len() {
            let Some(j) = old.endpoint_index(&self.endpoints[i].id) else { continue };
            let from = &old.states[j.get()];
            let st = &mut self.states[i];
            if same_tracking {
                let (track_peak, track_ttft) = (st.track_peak, st.track_ttft);
                *st = from.clone();
                st.track_peak = track_peak;
                st.track_ttft = track_ttft;
                st.in_flight = 0;
            } else {
                st.circuit = from.circuit;
                st.throttled_until = from.throttled_until;
                st.healthy = from.healthy;
                st.consecutive_failures = from.consecutive_failures;
            }
            // Probes in flight report to `old`: the new router lets its own probes through.
            if let Circuit::HalfOpen { .. } = st.circuit {
                st.circuit = Circuit::HalfOpen { probes: 0 };
            }
            self.board.touch(EndpointIdx(i as u16));
            carried += 1;
        }
        carried
    }
}
