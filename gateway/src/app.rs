//! The gateway's shared state: the routers, the upstream client, metrics, the request log, the response
//! store and the batches, built once from a [`GatewayConfig`].

use crate::batch::Batches;
use crate::cache::ResponseStore;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::reqlog::{LogWriter, RequestLog};
use crate::routing::RouterPool;
use crate::upstream::Upstreams;
use router_core::{Endpoint, Nanos, Timeouts};
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
    /// Metrics.
    pub metrics: Metrics,
    /// The request log.
    pub log: RequestLog,
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
    /// Per-endpoint timeouts: the policy's, else the upstream's (attempt) or `[client]`'s.
    pub timeouts: Vec<Timeouts>,
    /// The policy routing each rollout arm (`[0]` control, `[1]` canary).
    pub policy_names: Vec<String>,
    /// The shadow policies, in `[rollout] shadow` order.
    pub shadow_names: Vec<String>,
    /// The wall clock when the gateway started (the log's `time_unix_s` is relative to it).
    pub started_wall: SystemTime,
    next_id: AtomicU64,
    draining: AtomicBool,
}

impl App {
    /// Builds the state; opens the request log when one is configured.
    pub fn new(cfg: GatewayConfig) -> anyhow::Result<(App, Option<LogWriter>)> {
        let routers = RouterPool::with_rollout(&cfg.router, cfg.server.router_shards, &cfg.rollout)
            .map_err(|e| anyhow::anyhow!("{}: field `{}`: {}", cfg.file.display(), e.path, e.message))?;
        let endpoints = cfg.router.endpoints.clone();
        let ids: Vec<String> = endpoints.iter().map(|e| e.id.clone()).collect();
        let shadow_names: Vec<String> = cfg.rollout.shadows.iter().map(|c| c.policy.name.clone()).collect();
        let metrics = Metrics::with_shadows(&ids, &shadow_names);
        let policy_names: Vec<String> =
            (0..1 + cfg.rollout.canary.is_some() as usize).map(|a| routers.policy_name(a)).collect();
        if let Some(c) = &cfg.rollout.canary {
            metrics.rollout.canary_fraction.set(c.fraction);
        }
        let upstreams = Upstreams::new(cfg.upstreams.clone(), cfg.server.connect_timeout.into_std())?;
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
        let policy = routers.with(0, |r| r.timeouts());
        let nanos = |d: Option<router_core::Duration>| d.map(|d| d.nanos()).filter(|&n| n > 0);
        let timeouts = cfg
            .upstreams
            .iter()
            .map(|u| {
                policy.or(Timeouts {
                    attempt: nanos(u.timeout).or(nanos(cfg.client.timeout)),
                    ttft: nanos(cfg.client.ttft_timeout),
                })
            })
            .collect();
        let cache =
            cfg.router.policy.cache.map(|c| {
                ResponseStore::new(c.capacity, CACHE_MAX_BYTES, std::time::Duration::from_nanos(c.ttl.nanos()))
            });
        let access = crate::auth::Access::new(&cfg.auth, &cfg.keys, metrics.denied.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let tls = match &cfg.server.tls {
            Some(files) => Some(std::sync::Arc::new(
                crate::tls::ReloadingCert::new(files.clone()).map_err(|e| anyhow::anyhow!("{e}"))?,
            )),
            None => None,
        };
        let shards = routers.len();
        let models = routers.with(0, |r| {
            crate::models::ModelTable::new(r, &cfg.router.policy, &cfg.router.groups, &endpoints, &cfg.upstreams)
        });
        Ok((
            App {
                routers,
                upstreams,
                metrics,
                log,
                cache,
                access: std::sync::Arc::new(access),
                tls,
                batches: Batches::new(shards),
                endpoints,
                models,
                timeouts,
                policy_names,
                shadow_names,
                started_wall: SystemTime::now(),
                next_id: AtomicU64::new(1),
                draining: AtomicBool::new(false),
                cfg,
            },
            writer,
        ))
    }

    /// A new request id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
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
        self.metrics.endpoints.iter().any(|e| e.healthy.get() == 1)
    }
}

/// Converts router-core durations to std ones.
pub trait IntoStd {
    /// As a `std::time::Duration`.
    fn into_std(self) -> std::time::Duration;
}

impl IntoStd for router_core::Duration {
    fn into_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos())
    }
}
