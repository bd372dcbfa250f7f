//! Starting and stopping a gateway: bind, serve the API, run the health checks, drain on shutdown, flush
//! the request log. Tests and benchmarks start one in-process on `127.0.0.1:0`.

use crate::app::{App, IntoStd};
use crate::config::GatewayConfig;
use crate::shutdown::Trigger;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A gateway serving in the background.
pub struct RunningGateway {
    addr: SocketAddr,
    trigger: Trigger,
    app: Arc<App>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state (metrics, routers), for tests and benchmarks.
    pub fn app(&self) -> &Arc<App> {
        &self.app
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

/// Binds `cfg.listen` and starts serving.
pub async fn start(cfg: GatewayConfig) -> anyhow::Result<RunningGateway> {
    let listener =
        TcpListener::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    start_on(cfg, listener).await
}

/// Starts serving on an already bound listener.
pub async fn start_on(cfg: GatewayConfig, listener: TcpListener) -> anyhow::Result<RunningGateway> {
    let drain_for = cfg.server.shutdown_timeout.into_std();
    let (app, writer) = App::new(cfg)?;
    let app = Arc::new(app);
    let addr = listener.local_addr()?;
    let trigger = Trigger::new();
    let health = crate::health::spawn(app.clone(), trigger.subscribe());
    let routes = crate::api::router(app.clone());
    let t = trigger.clone();
    let a = app.clone();
    let task = tokio::spawn(async move {
        let drain_app = a.clone();
        let t2 = t.clone();
        // TCP_NODELAY: a stream's chunks go out as they come, not held back by Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(listener, routes).with_graceful_shutdown(async move {
            t2.pulled().await;
            drain_app.begin_drain();
        });
        let mut serve = tokio::spawn(async move { serve.await });
        tokio::select! {
            r = &mut serve => r.map_err(|e| anyhow::anyhow!("server: {e}"))??,
            _ = t.pulled() => {
                match tokio::time::timeout(drain_for, &mut serve).await {
                    Ok(r) => r.map_err(|e| anyhow::anyhow!("server: {e}"))??,
                    Err(_) => {
                        tracing::warn!("shutdown timeout reached with requests still in flight: closing them");
                        serve.abort();
                    }
                }
            }
        }
        if let Some(h) = health {
            h.abort();
        }
        a.log.close();
        if let Some(w) = writer {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        Ok(())
    });
    Ok(RunningGateway { addr, trigger, app, task })
}
