//! Health checks on a schedule: every `[health] interval`, `GET {base_url}{health_path}` on each upstream
//! (with its key); a 2xx is healthy, anything else (or no answer within `health_timeout`) is not. Results
//! feed router-core's `on_health` (an unhealthy endpoint is filtered out until it passes again) and the
//! `routesim_gateway_endpoint_healthy` gauge.

use crate::app::{App, Live};
use crate::duration::IntoStd;
use router_core::EndpointIdx;
use std::sync::Arc;
use tokio::sync::watch;

/// Checks every endpoint once, concurrently.
pub async fn check_all(app: &App) {
    let timeout = app.cfg.server.health_timeout.into_std();
    let checks = (0..app.endpoints.len()).map(|i| async move {
        let ok = match app.upstreams.health(i, timeout).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        (i, ok)
    });
    for (i, ok) in futures_util::future::join_all(checks).await {
        let now = app.now();
        app.routers.each(|_, _, r| r.on_health(EndpointIdx(i as u16), ok, now));
        app.routers.each_shadow(|_, _, r| r.on_health(EndpointIdx(i as u16), ok, now));
        app.ep_metrics[i].healthy.set(ok as i64);
        if !ok {
            tracing::warn!(endpoint = %app.endpoints[i].id, "health check failed");
        }
    }
}

/// Runs the checks until `stop` turns true; `None` when the interval is zero (checks disabled).
pub fn spawn(live: Arc<Live>, mut stop: watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
    let every = live.load().cfg.health.interval.into_std();
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopped = tokio::select! {
                _ = tick.tick() => false,
                r = stop.wait_for(|s| *s) => { drop(r); true }
            };
            if stopped {
                break;
            }
            // The generation in force now (a reload changes the endpoints).
            let app = live.load();
            tokio::select! {
                _ = check_all(&app) => {}
                r = stop.wait_for(|s| *s) => { drop(r); break }
            }
        }
    }))
}
