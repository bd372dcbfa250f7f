//! Client connections: the accept loop, its cap on open connections, the header-read and keep-alive idle
//! timeouts, and the drain at shutdown (see `[connections]` in [`crate::config`]).
//!
//! Each connection is served by hyper's HTTP/1 server on its own task, watched by a small state machine:
//!
//! - *head*: no request in flight. Before the first request, the whole head must arrive within
//!   `header_read_timeout` of the opening (a connection that sends nothing is closed then too); after a
//!   response, the connection may idle for `keep_alive_timeout`, and once a byte of the next head arrives,
//!   the head must be complete within `header_read_timeout` of that byte.
//! - *busy*: a request in flight (from its head until its response body has been sent or dropped). No timer
//!   runs here: the body is bounded by `body_read_timeout` in the handler, the upstream by the attempt
//!   timeouts.
//!
//! At `max_connections`, the accept loop closes the connection idle longest (never a busy one) before it
//! accepts the next; with none idle it waits for one to close, leaving new clients in the kernel's backlog
//! rather than failing with "too many open files".
//!
//! At shutdown the listener is closed, every connection finishes its request in flight and closes, and
//! after `shutdown_timeout` the connections left are dropped: their handlers are dropped too, so each
//! request still in flight ends as a cancelled one (logged, its spend charged), before the log is closed.

use crate::ops::{CloseReason, OpsMetrics};
use axum::Router;
use axum::serve::Listener;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// The limits a listener enforces.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// See `[connections] header_read_timeout`.
    pub header_read: Duration,
    /// See `[connections] keep_alive_timeout`.
    pub keep_alive: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The limits of `cfg`.
    pub fn of(cfg: &crate::config::ConnectionsConfig) -> ConnLimits {
        let d = |x: router_core::Duration| Duration::from_nanos(x.nanos());
        ConnLimits {
            header_read: d(cfg.header_read_timeout),
            keep_alive: d(cfg.keep_alive_timeout),
            max_connections: cfg.connection_cap().max(1),
        }
    }
}

/// One connection's state, shared by its task, its socket wrapper and its requests.
struct Conn {
    /// Requests in flight (head received, response not yet finished).
    in_flight: AtomicUsize,
    /// Requests received so far.
    served: AtomicU64,
    /// Nanoseconds (since the registry's epoch) since which no request has been in flight.
    idle_since: AtomicU64,
    /// Nanoseconds + 1 of the first byte read while idle (0: none yet).
    head_started: AtomicU64,
    /// Wakes the task to close the connection (eviction).
    kill: Notify,
}

impl Conn {
    /// When the connection must close if nothing changes, and why; `None` while a request is in flight.
    fn deadline(&self, limits: &ConnLimits) -> Option<(u64, CloseReason)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ns = |d: Duration| d.as_nanos() as u64;
        let started = self.head_started.load(Ordering::Acquire);
        if started != 0 {
            return Some((started - 1 + ns(limits.header_read), CloseReason::HeaderTimeout));
        }
        let since = self.idle_since.load(Ordering::Acquire);
        if self.served.load(Ordering::Acquire) == 0 {
            Some((since + ns(limits.header_read), CloseReason::HeaderTimeout))
        } else {
            Some((since + ns(limits.keep_alive), CloseReason::KeepAliveTimeout))
        }
    }
}

/// The open connections of one listener.
struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Closes the connection idle longest, if any is idle. Returns whether one was asked to close.
    fn evict_idlest(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let idlest = conns
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire));
        match idlest {
            Some(c) => {
                c.kill.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A request in flight on a connection; its drop (when the response body is done or dropped) makes the
/// connection idle again.
struct InFlight {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl InFlight {
    fn start(conn: Arc<Conn>, registry: Arc<Registry>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.served.fetch_add(1, Ordering::AcqRel);
        conn.head_started.store(0, Ordering::Release);
        InFlight { conn, registry }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.idle_since.store(self.registry.now(), Ordering::Release);
        self.conn.head_started.store(0, Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds the request's [`InFlight`] until it is finished or dropped.
struct Guarded {
    body: axum::body::Body,
    _guard: InFlight,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting the first byte of a request head that arrives while the connection is idle.
struct Watched<T> {
    io: T,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && this.conn.in_flight.load(Ordering::Acquire) == 0
            && this.conn.head_started.load(Ordering::Acquire) == 0
        {
            this.conn.head_started.store(this.registry.now() + 1, Ordering::Release);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` under `limits` until `stop` turns true; then closes the listener, runs
/// `on_stop`, lets the connections finish their requests for at most `drain_for` and drops the rest.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ConnLimits,
    metrics: OpsMetrics,
    mut stop: watch::Receiver<bool>,
    drain_for: Duration,
    on_stop: impl FnOnce() + Send,
) where
    L: Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let registry =
        Arc::new(Registry { epoch: Instant::now(), next_id: AtomicU64::new(0), conns: Mutex::new(HashMap::new()) });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                registry.evict_idlest();
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = stop.wait_for(|s| *s) => break,
                    // Another look for an idle connection (one may have finished its request meanwhile).
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let (io, _addr) = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        metrics.accepted.inc();
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(registry.now()),
            head_started: AtomicU64::new(0),
            kill: Notify::new(),
        });
        registry.conns.lock().unwrap_or_else(|p| p.into_inner()).insert(id, conn.clone());
        let task = serve_one(io, router.clone(), conn, registry.clone(), limits, metrics.clone(), stop.clone());
        let registry = registry.clone();
        let open = metrics.open.clone();
        open.inc();
        tasks.spawn(async move {
            // Dropped with the task (when it ends, or is aborted at the end of the drain).
            let _slot = permit;
            let _gone = OnDrop(Some(move || {
                registry.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                open.dec();
            }));
            task.await;
        });
    }
    drop(listener);
    on_stop();
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(drain_for, drained).await.is_err() {
        tracing::warn!(
            "shutdown timeout reached with {} connection(s) still busy: closing them (their requests are logged as \
             cancelled)",
            tasks.len()
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// Runs a closure when dropped.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

fn serve_one<I>(
    io: I,
    router: Router,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    limits: ConnLimits,
    metrics: OpsMetrics,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watched = Watched { io, conn: conn.clone(), registry: registry.clone() };
    let (c2, r2) = (conn.clone(), registry.clone());
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::start(c2.clone(), r2.clone());
        let mut router = router.clone();
        async move {
            let resp = tower::Service::call(&mut router, req).await.unwrap_or_else(|e: Infallible| match e {});
            Ok::<_, Infallible>(resp.map(|body| Guarded { body, _guard: guard }))
        }
    });
    async move {
        let http = hyper::server::conn::http1::Builder::new();
        let served = http.serve_connection(TokioIo::new(watched), service);
        tokio::pin!(served);
        let mut draining = false;
        loop {
            let wake = match conn.deadline(&limits) {
                Some((at, _)) => registry.epoch + Duration::from_nanos(at),
                // Busy: look again later (the request's end resets the clock).
                None => Instant::now() + limits.header_read.min(limits.keep_alive),
            };
            tokio::select! {
                r = served.as_mut() => {
                    // hyper answers a malformed head (400) or one too large (431) itself: count them with
                    // the gateway's own answers to client mistakes.
                    if let Err(e) = r {
                        if e.is_parse_too_large() {
                            metrics.client_error(431);
                        } else if e.is_parse() {
                            metrics.client_error(400);
                        }
                    }
                    break;
                }
                _ = stop.wait_for(|s| *s), if !draining => {
                    draining = true;
                    served.as_mut().graceful_shutdown();
                }
                _ = conn.kill.notified() => {
                    // Asked while idle; a request that has started since keeps the connection.
                    if conn.in_flight.load(Ordering::Acquire) == 0 {
                        metrics.closed(CloseReason::Evicted);
                        break;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    if let Some((at, why)) = conn.deadline(&limits)
                        && registry.now() >= at
                    {
                        metrics.closed(why);
                        break;
                    }
                }
            }
        }
    }
}
