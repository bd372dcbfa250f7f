//! Starting and stopping a gateway: bind, serve the API (over TLS when `[server] tls` is set), run the
//! health checks and the upkeep task (key file, certificate and configuration reloads on change or SIGHUP,
//! usage store flushes), drain on shutdown, flush the usage store and the request log. Tests and benchmarks start one
//! in-process on `127.0.0.1:0`.

use crate::app::{App, Live};
use crate::config::GatewayConfig;
use crate::duration::IntoStd;
use crate::shutdown::Trigger;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A gateway serving in the background.
pub struct RunningGateway {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    trigger: Trigger,
    live: Arc<Live>,
    tls: bool,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the separate `/metrics` listener (`[metrics] listen`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `http://ADDR`, or `https://ADDR` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// The configuration generation in force (metrics, routers), for tests and benchmarks.
    pub fn app(&self) -> Arc<App> {
        self.live.load()
    }

    /// Reloads the configuration file now (as SIGHUP does): see [`Live::reload_config`].
    pub fn reload_config(&self) -> Result<bool, String> {
        self.live.reload_config(true)
    }

    /// Begins the drain (as SIGTERM does); [`RunningGateway::wait`] returns when it is over.
    pub fn shutdown(&self) {
        self.trigger.pull();
    }

    /// The trigger, to pull from elsewhere (a signal handler).
    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }

    /// Waits until the server has drained and the log is flushed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.map_err(|e| anyhow::anyhow!("the server task failed: {e}"))?
    }
}

/// Binds `cfg.listen` and starts serving. Refuses an anonymous gateway on a non-loopback address
/// (see [`GatewayConfig::check_exposure`]).
pub async fn start(cfg: GatewayConfig) -> anyhow::Result<RunningGateway> {
    cfg.check_exposure().map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener =
        TcpListener::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    start_on(cfg, listener).await
}

/// Starts serving on an already bound listener.
pub async fn start_on(cfg: GatewayConfig, listener: TcpListener) -> anyhow::Result<RunningGateway> {
    let drain_for = cfg.server.shutdown_timeout.into_std();
    let metrics_listener = match cfg.metrics_listen {
        Some(a) => Some(
            TcpListener::bind(a).await.map_err(|e| anyhow::anyhow!("cannot listen on {a} ([metrics] listen): {e}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let (app, writer) = App::new(cfg)?;
    let app = Arc::new(app);
    let live = Arc::new(Live::new(app.clone()));
    let addr = listener.local_addr()?;
    let trigger = Trigger::new();
    let health = crate::health::spawn(live.clone(), trigger.subscribe());
    let routes = crate::api::router(live.clone());
    let upkeep = spawn_upkeep(live.clone(), trigger.subscribe());
    let tls = app.tls.clone().map(crate::tls::server_config);
    let is_tls = tls.is_some();
    let t = trigger.clone();
    let a = app.clone();
    let limits = crate::conn::ConnLimits::of(&app.cfg.connections);
    let conn_metrics = app.metrics.ops.clone();
    // The `/metrics` listener: the same connection limits, stopped with the API's listener.
    let metrics_task = metrics_listener.map(|l| {
        let routes = crate::api::metrics_router(live.clone());
        let (stop, m) = (trigger.subscribe(), conn_metrics.clone());
        tokio::spawn(crate::conn::serve(l, routes, limits, m, stop, std::time::Duration::from_secs(1), || {}))
    });
    let drain_live = live.clone();
    let task = tokio::spawn(async move {
        // Every generation shares the drain flag: the one in force sets it.
        let on_stop = move || drain_live.load().begin_drain();
        let stop = t.subscribe();
        match tls {
            None => {
                // TCP_NODELAY: a stream's chunks go out as they come, not held back by Nagle's algorithm.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                crate::conn::serve(listener, routes, limits, conn_metrics, stop, drain_for, on_stop).await;
            }
            Some(config) => {
                let listener = crate::tls::TlsListener::new(listener, config)?;
                crate::conn::serve(listener, routes, limits, conn_metrics, stop, drain_for, on_stop).await;
            }
        }
        // Aborted tasks are dropped by the runtime later; awaiting them makes sure they are gone (with
        // their handles on the configuration and the usage store) before `wait` returns, so a gateway
        // restarted in the same process finds the store unlocked.
        if let Some(h) = health {
            h.abort();
            let _ = h.await;
        }
        if let Some(m) = metrics_task {
            let _ = m.await;
        }
        upkeep.abort();
        let _ = upkeep.await;
        let access = a.access.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || access.flush()).await {
            tracing::warn!("{e}");
        }
        a.log.close();
        if let Some(w) = writer {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        Ok(())
    });
    Ok(RunningGateway { addr, metrics_addr, trigger, live, tls: is_tls, task })
}

/// The upkeep task: every `[auth] reload_interval` (and at once on SIGHUP) reloads the key file, the TLS
/// certificate and the configuration's endpoints, policies, groups and rollout if they changed; every
/// `[auth] flush_interval` writes changed spend to the usage store, on a blocking thread. Reload failures
/// are logged and leave what is in force.
fn spawn_upkeep(live: Arc<Live>, mut stop: tokio::sync::watch::Receiver<bool>) -> JoinHandle<()> {
    let app = live.load();
    let reload_every = app.cfg.auth.reload_interval.into_std();
    let flush_every = app.cfg.auth.flush_interval.into_std();
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let tick = if reload_every.is_zero() { flush_every } else { reload_every.min(flush_every) };
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_reload = std::time::Instant::now();
        let mut last_flush = std::time::Instant::now();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            let forced = tokio::select! {
                _ = interval.tick() => false,
                _ = hangup => true,
                _ = stop.wait_for(|s| *s) => return,
            };
            if forced || (!reload_every.is_zero() && last_reload.elapsed() >= reload_every) {
                last_reload = std::time::Instant::now();
                reload(&app, forced);
                // Built off the request path, on a blocking thread; errors are logged and counted there.
                let l = live.clone();
                let _ = tokio::task::spawn_blocking(move || l.reload_config(forced)).await;
            }
            if last_flush.elapsed() >= flush_every {
                last_flush = std::time::Instant::now();
                let access = app.access.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || access.flush()).await {
                    tracing::warn!("{e}");
                }
            }
        }
    })
}

/// Reloads the key file and the certificate (when changed, or always with `force`).
pub fn reload(app: &App, force: bool) {
    match app.access.reload(force) {
        Ok(true) => tracing::info!("client keys reloaded: {} key(s)", app.access.key_ids().len()),
        Ok(false) => {}
        Err(e) => tracing::warn!("client keys not reloaded (the previous keys stay in force): {e}"),
    }
    if let Some(tls) = &app.tls {
        match tls.reload(force) {
            Ok(true) => tracing::info!("TLS certificate reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!("TLS certificate not reloaded (the previous one stays in force): {e}"),
        }
    }
}
