//! The gateway's shared state: the routers, the upstream client, metrics, the request log, the response
//! store and the batches, built from a [`GatewayConfig`].
//!
//! An [`App`] is one generation of the configuration: a request takes the current one when it arrives
//! and keeps it to its end (every attempt, retry and the log row use that generation's endpoints and
//! routers). [`Live`] holds the current generation and swaps in the next one when `[[endpoints]]`,
//! `[[policies]]`, `[[groups]]` or `[rollout]` are reloaded: the next generation is built and validated
//! off the request path, its routers adopt the state of the endpoints they keep (see
//! `router_core::Router::adopt_state`), and only then is it swapped in, atomically. What spans
//! generations (metrics, the request log, client keys, TLS, request ids, the drain) is shared.

use crate::batch::{BatchHost, Batches};
use crate::cache::ResponseStore;
use crate::config::GatewayConfig;
use crate::duration::IntoStd;
use crate::metrics::Metrics;
use crate::reqlog::{LogWriter, RequestLog};
use crate::router_pool::RouterPool;
use crate::upstream::Upstreams;
use router_core::{Endpoint, Nanos, Timeouts};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

/// Most bytes of response bodies the cache keeps (router-core bounds the number of keys).
const CACHE_MAX_BYTES: usize = 256 << 20;

/// Everything a request handler needs, shared behind an `Arc`.
pub struct App {
    /// The validated configuration.
    pub cfg: GatewayConfig,
    /// The routers (one per shard) and the monotonic clock.
    pub routers: RouterPool,
    /// The upstream client.
    pub upstreams: Upstreams,
    /// Metrics (shared by every generation).
    pub metrics: Arc<Metrics>,
    /// This generation's per-endpoint series, in endpoint order.
    pub ep_metrics: Vec<crate::metrics::EndpointMetrics>,
    /// This generation's request counters per rollout arm (`[0]` control, `[1]` canary).
    pub arm_metrics: Vec<prometheus_client::metrics::counter::Counter>,
    /// This generation's per-shadow series, in `[rollout] shadow` order.
    pub shadow_metrics: Vec<crate::rollout::ShadowMetrics>,
    /// The configuration generation (1 at start, +1 per reload applied).
    pub generation: u64,
    /// The request log (shared by every generation).
    pub log: Arc<RequestLog>,
    /// Bodies of cached responses, when the policy has a cache.
    pub cache: Option<ResponseStore>,
    /// Client keys, their meters and the usage store.
    pub access: std::sync::Arc<crate::auth::Access>,
    /// The TLS certificate in force, when TLS is on.
    pub tls: Option<std::sync::Arc<crate::tls::ReloadingCert>>,
    /// Deferrable requests held for a batch.
    pub batches: Batches,
    /// The endpoints, in index order.
    pub endpoints: Vec<Endpoint>,
    /// What a request's `model` names (see [`crate::models`]).
    pub models: crate::models::ModelTable,
    /// Per-endpoint timeouts of the control arm: its policy's, else the upstream's (attempt) or `[client]`'s.
    pub timeouts: Vec<Timeouts>,
    /// The same for the canary arm, from the canary policy's own timeouts (empty without a canary).
    pub canary_timeouts: Vec<Timeouts>,
    /// The policy routing each rollout arm (`[0]` control, `[1]` canary).
    pub policy_names: Vec<String>,
    /// The shadow policies, in `[rollout] shadow` order.
    pub shadow_names: Vec<String>,
    /// The wall clock when the gateway started (the log's `time_unix_s` is relative to it).
    pub started_wall: SystemTime,
    next_id: Arc<AtomicU64>,
    draining: Arc<AtomicBool>,
}

impl App {
    /// Builds the state; opens the request log when one is configured.
    pub fn new(cfg: GatewayConfig) -> anyhow::Result<(App, Option<LogWriter>)> {
        let ids: Vec<String> = cfg.router.endpoints.iter().map(|e| e.id.clone()).collect();
        let metrics = Arc::new(Metrics::new(&ids));
        let (log, writer) = match &cfg.request_log.path {
            Some(p) => {
                let (log, w) = RequestLog::open(
                    p,
                    cfg.request_log.max_bytes,
                    cfg.request_log.keep,
                    cfg.request_log.channel,
                    metrics.log_written.clone(),
                    metrics.log_dropped.clone(),
                )
                .map_err(|e| anyhow::anyhow!("cannot open the request log {}: {e}", p.display()))?;
                (log, Some(w))
            }
            None => (RequestLog::disabled(), None),
        };
        let access = Arc::new(
            crate::auth::Access::new(&cfg.auth, &cfg.keys, metrics.denied.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        // The per-key series of `/metrics` read the key set (and its meters) when scraped.
        let _ = metrics.ops.access.set(access.clone());
        let tls = match &cfg.server.tls {
            Some(files) => Some(std::sync::Arc::new(
                crate::tls::ReloadingCert::new(files.clone()).map_err(|e| anyhow::anyhow!("{e}"))?,
            )),
            None => None,
        };
        let routers = RouterPool::with_rollout(&cfg.router, cfg.server.router_shards, &cfg.rollout)
            .map_err(|e| anyhow::anyhow!("{}: field `{}`: {}", cfg.file.display(), e.path, e.message))?;
        let shared = Shared {
            metrics,
            access,
            tls,
            started_wall: SystemTime::now(),
            // A restart continues the log's ids (see `reqlog::LeftOff`).
            next_id: Arc::new(AtomicU64::new(log.left_off().last_id.map_or(1, |id| id.saturating_add(1)))),
            draining: Arc::new(AtomicBool::new(false)),
            log: Arc::new(log),
        };
        Ok((App::build(cfg, routers, shared, 1)?, writer))
    }

    /// The next generation: `cfg`'s endpoints, policies, groups and rollout with everything else of this
    /// one; its routers adopt what this generation's routers learned about the endpoints they keep.
    pub fn next_generation(&self, cfg: GatewayConfig) -> anyhow::Result<App> {
        let routers = self
            .routers
            .successor(&cfg.router, &cfg.rollout)
            .map_err(|e| anyhow::anyhow!("{}: field `{}`: {}", cfg.file.display(), e.path, e.message))?;
        let shared = Shared {
            metrics: self.metrics.clone(),
            log: self.log.clone(),
            access: self.access.clone(),
            tls: self.tls.clone(),
            started_wall: self.started_wall,
            next_id: self.next_id.clone(),
            draining: self.draining.clone(),
        };
        App::build(cfg, routers, shared, self.generation + 1)
    }

    fn build(cfg: GatewayConfig, routers: RouterPool, shared: Shared, generation: u64) -> anyhow::Result<App> {
        let Shared { metrics, log, access, tls, started_wall, next_id, draining } = shared;
        let endpoints = cfg.router.endpoints.clone();
        let ids: Vec<String> = endpoints.iter().map(|e| e.id.clone()).collect();
        let ep_metrics = metrics.endpoint_series(&ids);
        for (i, m) in ep_metrics.iter().enumerate() {
            let st = routers.with(0, |r| {
                let s = r.state(router_core::EndpointIdx(i as u16));
                (s.healthy, s.circuit)
            });
            m.healthy.set(st.0 as i64);
            m.circuit.set(match st.1 {
                router_core::state::Circuit::Closed => 0,
                router_core::state::Circuit::Open { .. } => 1,
                router_core::state::Circuit::HalfOpen { .. } => 2,
            });
        }
        let shadow_names: Vec<String> = cfg.rollout.shadows.iter().map(|c| c.policy.name.clone()).collect();
        let shadow_metrics = metrics.rollout.shadow_series(&shadow_names, &ids);
        metrics.rollout.set_current(shadow_metrics.clone(), cfg.rollout.canary.as_ref().map_or(0.0, |c| c.fraction));
        let policy_names: Vec<String> =
            (0..1 + cfg.rollout.canary.is_some() as usize).map(|a| routers.policy_name(a)).collect();
        let arm_metrics = metrics.rollout.arm_series(&policy_names);
        let canary_kind = cfg.rollout.canary.as_ref().map(|c| c.router.policy.kind);
        for (name, kind) in policy_names.iter().zip(std::iter::once(cfg.router.policy.kind).chain(canary_kind)) {
            if kind == router_core::PolicyKind::Cascade {
                metrics.quality.cascade_policy(name);
            }
        }
        let upstreams = Upstreams::new(cfg.upstreams.clone(), cfg.server.connect_timeout.into_std())?;
        let nanos = |d: Option<router_core::Duration>| d.map(|d| d.nanos()).filter(|&n| n > 0);
        // Each arm's attempts time out by its own policy's timeouts (as that policy would once promoted, and as
        // the simulator's canary runs model them), else the upstream's or `[client]`'s.
        let arm_timeouts = |arm: usize| -> Vec<Timeouts> {
            let policy = routers.with_arm(arm, 0, |r| r.timeouts());
            cfg.upstreams
                .iter()
                .map(|u| {
                    policy.or(Timeouts {
                        attempt: nanos(u.timeout).or(nanos(cfg.client.timeout)),
                        ttft: nanos(cfg.client.ttft_timeout),
                    })
                })
                .collect()
        };
        let timeouts = arm_timeouts(0);
        let canary_timeouts = if cfg.rollout.canary.is_some() { arm_timeouts(1) } else { Vec::new() };
        let cache =
            cfg.router.policy.cache.map(|c| {
                ResponseStore::new(c.capacity, CACHE_MAX_BYTES, std::time::Duration::from_nanos(c.ttl.nanos()))
            });
        let shards = routers.len();
        let models = routers.with(0, |r| {
            crate::models::ModelTable::new(r, &cfg.router.policy, &cfg.router.groups, &endpoints, &cfg.upstreams)
        });
        Ok(App {
            routers,
            upstreams,
            metrics,
            ep_metrics,
            arm_metrics,
            shadow_metrics,
            generation,
            log,
            cache,
            access,
            tls,
            batches: Batches::new(shards),
            endpoints,
            models,
            timeouts,
            canary_timeouts,
            policy_names,
            shadow_names,
            started_wall,
            next_id,
            draining,
            cfg,
        })
    }

    /// The timeouts of an attempt on endpoint `ep` for a request of arm `arm` (0 control, 1 canary).
    pub fn attempt_timeouts(&self, arm: usize, ep: usize) -> Timeouts {
        if arm == 1 && !self.canary_timeouts.is_empty() { self.canary_timeouts[ep] } else { self.timeouts[ep] }
    }

    /// A new request id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes later ids from [`App::next_id`] greater than `id` (an id a trusted client gave).
    pub fn skip_ids_to(&self, id: u64) {
        self.next_id.fetch_max(id.saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a policy serving requests (the served one or the canary) is a cascade: it verifies each answer
    /// before it answers, so it cannot stream.
    pub fn serves_cascade(&self) -> bool {
        let canary = self.cfg.rollout.canary.as_ref().map(|c| c.router.policy.kind);
        std::iter::once(self.cfg.router.policy.kind).chain(canary).any(|k| k == router_core::PolicyKind::Cascade)
    }

    /// Nanoseconds on the gateway's monotonic clock.
    pub fn now(&self) -> Nanos {
        self.routers.now()
    }

    /// Whether SIGTERM (or a shutdown) has begun the drain.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Begins the drain: `/readyz` fails from now on and held batches are released at once.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.batches.release_all(self);
    }

    /// Whether at least one endpoint passed its last health check.
    pub fn any_healthy(&self) -> bool {
        self.ep_metrics.iter().any(|e| e.healthy.get() == 1)
    }
}

impl BatchHost for App {
    fn batches(&self) -> &Batches {
        &self.batches
    }

    fn routers(&self) -> &RouterPool {
        &self.routers
    }

    fn count_released_batch(&self) {
        self.metrics.batches.inc();
    }
}

/// What every generation shares.
struct Shared {
    metrics: Arc<Metrics>,
    log: Arc<RequestLog>,
    access: Arc<crate::auth::Access>,
    tls: Option<Arc<crate::tls::ReloadingCert>>,
    started_wall: SystemTime,
    next_id: Arc<AtomicU64>,
    draining: Arc<AtomicBool>,
}

/// The generation in force, swapped atomically by a configuration reload.
pub struct Live {
    current: arc_swap::ArcSwap<App>,
    /// The config file's text the current generation was built from (`None`: it could not be read, as for
    /// a configuration parsed from a string).
    last_text: std::sync::Mutex<Option<String>>,
}

impl Live {
    /// Holds `app` as the first generation.
    pub fn new(app: Arc<App>) -> Live {
        let last_text = std::fs::read_to_string(&app.cfg.file).ok();
        Live { current: arc_swap::ArcSwap::new(app), last_text: std::sync::Mutex::new(last_text) }
    }

    /// The generation in force now: a request keeps the one it got to its end.
    pub fn load(&self) -> Arc<App> {
        self.current.load_full()
    }

    /// Re-reads the config file and, when it changed (always with `force`), applies its `[[endpoints]]`,
    /// `[[policies]]`, `[[groups]]` and `[rollout]`: the next generation is built and validated here, off
    /// the request path, then swapped in. An invalid file is an error and the running generation stays.
    /// Returns whether a new generation is in force. Other sections are read but need a restart (client
    /// keys and TLS certificates have their own reload).
    pub fn reload_config(&self, force: bool) -> Result<bool, String> {
        let mut last = self.last_text.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.load();
        let file = old.cfg.file.clone();
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: cannot read: {e}", file.display()));
        let text = match text {
            Ok(t) => t,
            // A file that was never readable is not watched (a configuration given as a string).
            Err(_) if last.is_none() && !force => return Ok(false),
            Err(e) => return Err(self.failed(&old, e)),
        };
        if !force && last.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        *last = Some(text.clone());
        let parsed = GatewayConfig::parse(&file, &text, old.cfg.policy_arg.as_deref(), &|k| std::env::var(k).ok())
            .map_err(|e| self.failed(&old, e.to_string()))?;
        let mut cfg = old.cfg.clone();
        cfg.router = parsed.router;
        cfg.upstreams = parsed.upstreams;
        cfg.rollout = parsed.rollout;
        let next = old.next_generation(cfg).map_err(|e| self.failed(&old, e.to_string()))?;
        let generation = next.generation;
        self.current.store(Arc::new(next));
        old.metrics.rollout.reloaded(true, generation);
        tracing::info!(generation, "configuration reloaded (endpoints, policies, groups, rollout)");
        Ok(true)
    }

    fn failed(&self, old: &App, e: String) -> String {
        old.metrics.rollout.reloaded(false, old.generation);
        tracing::warn!("configuration not reloaded (generation {} stays in force): {e}", old.generation);
        e
    }
}
