//! LiteLLM's router strategies (BerriAI/litellm, `litellm/router_strategy/`), reproduced exactly.
//!
//! Each type names the file and the commit it follows. What LiteLLM keeps in its router cache lives in
//! [`crate::state::CompatState`]: usage per calendar minute (successes, failures, tokens of successes), the
//! latency lists and their last write. The targets of these policies are endpoints (LiteLLM deployments of one
//! model group); the router rejects a group as a target. The shared filter still applies (LiteLLM's "healthy
//! deployments" are those not cooling down, see [`crate::config::CooldownConfig`]).
//!
//! One difference is structural: LiteLLM keeps its usage maps as dictionaries in first-use order and breaks
//! some ties by that order; here the order is the policy's target order (the `model_list` order).

use super::{first_min, within_relative};
use crate::model::{EndpointIdx, Nanos, RequestInfo};
use crate::policy::{Ctx, Policy, Target, WeightedTarget};

/// The endpoint of an endpoint target (the router only builds these policies over endpoints).
#[inline]
fn endpoint(t: &WeightedTarget) -> Option<EndpointIdx> {
    match t.target {
        Target::Endpoint(e) => Some(e),
        Target::Policy(_) => None,
    }
}

/// LiteLLM `least-busy` (`litellm/router_strategy/least_busy.py` as LiteLLM 1.110.2 ships it, the version
/// `scripts/peers` pins).
///
/// LiteLLM counts, per deployment, the attempts in flight (from its pre-call hook to its success or failure
/// callback) plus the picks it has reserved for calls not yet sent (a pick is reserved when chosen and turns
/// into an in-flight attempt when the call starts), and takes the **first** deployment with the lowest sum
/// among the **healthy** ones (those not cooling down), in the order the router lists them. Here a pick is
/// sent at once, so that sum is the endpoint's attempts in flight; the shared filter stands for LiteLLM's
/// healthy list.
///
/// Older LiteLLM (up to commit 00e06b8, which routesim followed before) counted only attempts in flight,
/// took the minimum over every deployment it had counted, cooling down or not, and when that one was not
/// healthy picked a healthy deployment uniformly at random instead of the next least busy.
#[derive(Debug)]
pub struct LeastBusy {
    targets: Vec<WeightedTarget>,
}

impl LeastBusy {
    /// Least-busy over endpoint `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        LeastBusy { targets }
    }
}

impl Policy for LeastBusy {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| cands.iter_mut().for_each(|c| c.score = ctx.state(c.ep).in_flight as f64),
            |cands, _| first_min(cands),
        )
    }
}

/// LiteLLM `usage-based-routing-v2` (`litellm/router_strategy/lowest_tpm_rpm_v2.py` as LiteLLM 1.110.2 ships it,
/// the version `scripts/peers` pins).
///
/// The deployment with the fewest tokens (input + output of successful calls) in the current UTC minute, ties
/// uniformly at random, skipping one for which `tokens + input tokens > tpm` or, from 1.110.2's
/// `_return_potential_deployments`, `attempts + 1 >= rpm`: its `rpm` counter is the calls of this minute counted
/// by the strategy's pre-call check (`async_pre_call_check` increments `{id}:{model}:rpm:{HH-MM}` before each
/// call, so failures count), here [`crate::state::CompatState::minute_dispatches`]. The `>=` lets a deployment
/// take `rpm - 1` calls a minute. With none left LiteLLM raises a 429 ("No deployments available"); here the
/// policy chooses none. The pre-call check's own 429 (the counter past `rpm` after its increment) needs picks
/// raced between selection and call, which routesim's at-once dispatch never makes. The shared quota filter
/// still applies (its sliding minute allows `rpm`, so the calendar-minute check binds first within a minute).
///
/// Commit 005df01 (which routesim followed before) compared a key it never stored (`rpm_dict[item]` keyed
/// `id:rpm:minute`, `item` the id), so it had no RPM check in the selection.
#[derive(Debug)]
pub struct UsageV2 {
    targets: Vec<WeightedTarget>,
}

impl UsageV2 {
    /// Usage-based routing v2 over endpoint `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        UsageV2 { targets }
    }
}

impl Policy for UsageV2 {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let (now, input) = (ctx.now, req.input_tokens as u64);
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                for c in cands.iter_mut() {
                    let compat = &ctx.state(c.ep).compat;
                    let (_, _, tokens) = compat.minute_counts(now);
                    let calls = compat.minute_dispatches(now);
                    let g = &ctx.gates[c.ep.get()];
                    let over = tokens.saturating_add(input) > g.tpm || calls.saturating_add(1) >= g.rpm;
                    c.score = if over { f64::INFINITY } else { tokens as f64 };
                }
            },
            |cands, rand| within_relative(cands, 0.0, rand),
        )
    }
}

/// Whether LiteLLM's per-minute check (`item_tpm + input_tokens > tpm or item_rpm + 1 > rpm`, on the successes
/// of the current minute) keeps a deployment out, as `lowest_latency.py` and `lowest_cost.py` make it.
#[inline]
fn over_minute_limits(ctx: &Ctx<'_>, e: EndpointIdx, input: u64, now: Nanos) -> bool {
    let (successes, _, tokens) = ctx.state(e).compat.minute_counts(now);
    let g = &ctx.gates[e.get()];
    tokens.saturating_add(input) > g.tpm || successes.saturating_add(1) > g.rpm
}

/// LiteLLM `latency-based-routing` (`litellm/router_strategy/lowest_latency.py` as LiteLLM 1.110.2 ships it, the
/// version `scripts/peers` pins).
///
/// - After each success LiteLLM appends the call's latency **per output token** (seconds / completion tokens)
///   to the deployment's list, and for a streamed call its time to first token (seconds) to a second list; a
///   timeout appends a penalty of 1000. A full list (`samples`, default 10) drops its oldest entry: a sliding
///   window of the last `samples`. (Commit 015b945 and the releases before the window, up to the 1.5x series,
///   kept the first `samples - 1` entries and replaced the last, and divided the TTFT by the completion tokens
///   and its sum by the latency list's length.)
/// - A deployment's score is the mean of its latency list; for a streamed request, the mean of its TTFT list
///   when it has one. A deployment with no list scores 0, so new deployments are tried first. Once the group's
///   map exists, LiteLLM writes a placeholder list `[0]` into it for every healthy deployment without one, and
///   that 0 stays in the mean until the window slides past it (the router adds it at the next write).
/// - Deployments over their `rpm`/`tpm` this minute (successes counted) are skipped; among the rest, one is
///   chosen uniformly among those within `buffer x best` of the best (LiteLLM `lowest_latency_buffer`).
/// - The group's lists expire `ttl` (default 1 h) after the last write to any of them; the router clears them
///   at the next write.
#[derive(Debug)]
pub struct Latency {
    targets: Vec<WeightedTarget>,
    buffer: f64,
    ttl: Nanos,
}

impl Latency {
    /// Latency routing over endpoint `targets`.
    pub fn new(targets: Vec<WeightedTarget>, buffer: f64, ttl: Nanos) -> Self {
        Latency { targets, buffer, ttl }
    }

    /// Whether the group's lists have expired at `now`.
    fn expired(&self, ctx: &Ctx<'_>) -> bool {
        let last = self.targets.iter().filter_map(endpoint).filter_map(|e| ctx.state(e).compat.latency_written).max();
        last.is_none_or(|t| ctx.now >= t.saturating_add(self.ttl))
    }
}

impl Policy for Latency {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let expired = self.expired(ctx);
        let (now, input, streaming, buffer) = (ctx.now, req.input_tokens as u64, req.streaming, self.buffer);
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                for c in cands.iter_mut() {
                    if over_minute_limits(ctx, c.ep, input, now) {
                        c.score = f64::INFINITY;
                        continue;
                    }
                    let st = &ctx.state(c.ep).compat;
                    let lat = st.latencies();
                    c.score = if expired || lat.is_empty() {
                        0.0
                    } else if streaming && !st.ttfts().is_empty() {
                        st.ttfts().iter().sum::<f64>() / st.ttfts().len() as f64
                    } else {
                        lat.iter().sum::<f64>() / lat.len() as f64
                    };
                }
            },
            |cands, rand| within_relative(cands, buffer, rand),
        )
    }
}

/// LiteLLM `cost-based-routing` (`litellm/router_strategy/lowest_cost.py`, commit 03a79b6).
///
/// The deployment with the lowest `input_cost_per_token + output_cost_per_token` (whatever the request's token
/// counts), skipping those over their `rpm`/`tpm` this minute (successes counted); ties go to the first in
/// order (a stable sort).
#[derive(Debug)]
pub struct Cost {
    targets: Vec<WeightedTarget>,
}

impl Cost {
    /// Cost routing over endpoint `targets`.
    pub fn new(targets: Vec<WeightedTarget>) -> Self {
        Cost { targets }
    }
}

impl Policy for Cost {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let (now, input) = (ctx.now, req.input_tokens as u64);
        ctx.pick(
            &self.targets,
            req,
            |ctx, cands| {
                for c in cands.iter_mut() {
                    let g = &ctx.gates[c.ep.get()];
                    c.score = if over_minute_limits(ctx, c.ep, input, now) {
                        f64::INFINITY
                    } else {
                        (g.price_in + g.price_out) * 1e-6
                    };
                }
            },
            |cands, _| first_min(cands),
        )
    }
}
