//! TLS termination (`[server] tls = { cert, key }`) with rustls (ring provider), certificates reloadable
//! without a restart.
//!
//! The certificate chain and private key are PEM files. A [`ReloadingCert`] resolver hands rustls the
//! current pair for every handshake; [`ReloadingCert::reload`] re-reads the files (on SIGHUP, or when their
//! modification time changes) and swaps the new pair in atomically: connections already open keep theirs,
//! new handshakes get the new one, and an invalid pair is reported and leaves the old one in force.
//! [`TlsListener`] is an `axum::serve` listener: a background task accepts TCP connections and runs each
//! handshake on its own task (bounded by a timeout), so a slow client never holds up the others.

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// `[server] tls`: the PEM files.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Reads and checks the pair; the error names the file at fault.
pub fn load_pair(files: &TlsFiles) -> Result<CertifiedKey, (PathBuf, String)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| (files.cert.clone(), format!("cannot read a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err((files.cert.clone(), "expected at least one PEM CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| (files.key.clone(), format!("cannot read a PEM private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(certs, key, &provider)
        .map_err(|e| (files.key.clone(), format!("the key does not fit the certificate: {e}")))?;
    Ok(ck)
}

fn stamp(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(&files.cert)?, m(&files.key)?))
}

/// The certificate resolver: the current pair, swapped on reload.
#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    current: ArcSwap<CertifiedKey>,
    stamp: Mutex<Option<(SystemTime, SystemTime)>>,
}

impl ReloadingCert {
    /// Loads the pair.
    pub fn new(files: TlsFiles) -> Result<ReloadingCert, String> {
        let ck = load_pair(&files).map_err(|(f, m)| format!("{}: {m}", f.display()))?;
        let stamp = Mutex::new(stamp(&files));
        Ok(ReloadingCert { files, current: ArcSwap::from_pointee(ck), stamp })
    }

    /// Re-reads the files when they changed (always with `force`); returns whether a new pair is in force.
    pub fn reload(&self, force: bool) -> Result<bool, String> {
        let now = stamp(&self.files);
        {
            let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
            if !force && *last == now {
                return Ok(false);
            }
            *last = now;
        }
        let ck = load_pair(&self.files).map_err(|(f, m)| format!("{}: {m}", f.display()))?;
        self.current.store(Arc::new(ck));
        Ok(true)
    }

    /// The leaf certificate in force (DER).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.current.load().cert[0].clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The rustls server config over `resolver` (HTTP/1.1 over ALPN).
pub fn server_config(resolver: Arc<ReloadingCert>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener yielding TLS streams whose handshake is done.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp`, handshaking with `config`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(256);
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, addr, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The acceptor task never ends while the listener lives; should it, wait forever (the server
            // is being shut down).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
