//! LiteLLM compat tracking: which outcomes feed [`crate::state::CompatState`], where its calendar minutes start,
//! and the latency strategy's placeholders written before each choice.

use super::Router;
use crate::model::{EndpointIdx, Nanos, RequestInfo};
use crate::policy::{EndpointSet, check};

/// How outcomes feed the LiteLLM compat state.
#[derive(Debug)]
pub(super) struct CompatTracking {
    /// Latency list size.
    pub(super) samples: usize,
    /// Per endpoint: the latency group (index into `latency_groups`) it belongs to, or `u16::MAX`.
    pub(super) latency_group_of: Vec<u16>,
    /// Endpoints of each `litellm-latency` policy and the ttl of their lists.
    pub(super) latency_groups: Vec<(Vec<EndpointIdx>, Nanos)>,
}

impl Router {
    /// Puts time 0 `origin` into its calendar minute for the LiteLLM compat counters (usage per minute, the
    /// cooldown's failure rate this minute), before the first request: LiteLLM keys them by the UTC minute, so a
    /// simulation of a gateway run that started 37 s into a minute must roll its minutes 23 s in, not at 60 s.
    /// `origin` is taken modulo a minute; 0 (the default) starts time 0 on a minute.
    pub fn set_calendar_origin(&mut self, origin: Nanos) {
        for st in &mut self.states {
            st.compat.set_calendar_origin(origin);
        }
    }

    /// LiteLLM's latency strategy, on a pick while its group's map exists (written within `ttl`), writes the
    /// placeholder `[0]` into the map for every healthy deployment without an entry; it stays in that
    /// deployment's list (see [`crate::state::CompatState::add_placeholder`]). Done before every choice, for
    /// every latency group: a member with an entry is left alone, so only the first pick after the map appears
    /// (or after the member becomes healthy) changes anything.
    pub(super) fn latency_placeholders(&mut self, req: &RequestInfo, now: Nanos) {
        let groups = self.compat.as_ref().map_or(0, |c| c.latency_groups.len());
        for g in 0..groups {
            let Some((members, ttl)) =
                self.compat.as_ref().map(|c| (c.latency_groups[g].0.len(), c.latency_groups[g].1))
            else {
                return;
            };
            let member = |r: &Router, k: usize| r.compat.as_ref().map(|c| c.latency_groups[g].0[k]);
            let last = (0..members)
                .filter_map(|k| member(self, k))
                .filter_map(|m| self.states[m.get()].compat.latency_written)
                .max();
            if last.is_none_or(|t| now >= t.saturating_add(ttl)) {
                continue;
            }
            for k in 0..members {
                let Some(m) = member(self, k) else { continue };
                if self.states[m.get()].compat.latencies().is_empty()
                    && check(&self.endpoints, &self.states, &self.tracking, EndpointSet::default(), m, req, now).is_ok()
                {
                    self.states[m.get()].compat.add_placeholder();
                    self.board.touch(m);
                }
            }
        }
    }
}
