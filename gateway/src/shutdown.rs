//! Shutdown: SIGTERM or Ctrl-C starts a drain. The listener stops accepting, `/readyz` fails, held batches
//! are released, in-flight requests (streams included) run to completion for at most
//! `[server] shutdown_timeout`, then the request log is flushed and the process exits.

use tokio::sync::watch;

/// Resolves at the first SIGTERM or SIGINT.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A shutdown trigger shared by the server and its background tasks.
#[derive(Clone, Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

impl Trigger {
    /// A trigger not yet pulled.
    pub fn new() -> Trigger {
        Trigger { tx: watch::channel(false).0 }
    }

    /// Pulls it: the drain begins.
    pub fn pull(&self) {
        self.tx.send_replace(true);
    }

    /// A receiver that turns true when the trigger is pulled.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Resolves once the trigger is pulled.
    pub async fn pulled(&self) {
        let mut rx = self.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger::new()
    }
}
