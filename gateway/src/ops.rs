//! Operational metrics beside the request metrics of [`crate::metrics`]: client connections (open,
//! closed by a limit), client errors by status, and the process's own resources.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};

/// Why the gateway closed a client connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The request head did not arrive within `header_read_timeout`.
    HeaderTimeout,
    /// The connection sat idle between requests past `keep_alive_timeout`.
    KeepAliveTimeout,
    /// Closed, idle, to make room under `max_connections`.
    Evicted,
}

impl CloseReason {
    /// Every reason, in a fixed order.
    pub const ALL: [CloseReason; 3] = [CloseReason::HeaderTimeout, CloseReason::KeepAliveTimeout, CloseReason::Evicted];

    /// Label value.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::KeepAliveTimeout => "keep_alive_timeout",
            CloseReason::Evicted => "evicted",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

/// The statuses of the gateway's own answers to a client's mistake, counted by
/// `routesim_gateway_client_errors_total{status}`.
pub const CLIENT_ERROR_STATUSES: [u16; 6] = [400, 404, 405, 408, 413, 431];

/// The final statuses of failed requests (see [`crate::metrics::Status`]), labels of
/// `routesim_gateway_failed_request_duration_seconds{status}`.
pub const FAILED_STATUSES: [&str; 6] = ["rate_limited", "server", "timeout", "other", "rejected", "cancelled"];

/// Connection, client-error and process series.
#[derive(Clone, Debug)]
pub struct OpsMetrics {
    /// Client connections open now.
    pub open: Gauge,
    /// Client connections accepted.
    pub accepted: Counter,
    /// Connections closed by the gateway, by [`CloseReason`] (index: position in [`CloseReason::ALL`]).
    pub closed: [Counter; 3],
    /// Request bodies that did not arrive within `body_read_timeout` (answered 408).
    pub body_timeouts: Counter,
    /// The gateway's answers to client mistakes, by status (index: position in [`CLIENT_ERROR_STATUSES`]).
    pub client_errors: [Counter; 6],
    /// End-to-end latency of failed requests, by final status (index: position in [`FAILED_STATUSES`]).
    pub failed_latency: [prometheus_client::metrics::histogram::Histogram; 6],
    /// The access state whose keys `/metrics` reports (set once it is built).
    pub access: Arc<OnceLock<Arc<dyn KeyFigures>>>,
}

impl OpsMetrics {
    /// Registers the series in `r`, each present (at zero) from the start.
    pub fn register(r: &mut Registry) -> OpsMetrics {
        let open = Gauge::default();
        r.register("routesim_gateway_connections", "Client connections open", open.clone());
        let accepted = Counter::default();
        r.register("routesim_gateway_connections_accepted", "Client connections accepted", accepted.clone());
        let closed_f = Family::<ReasonLabel, Counter>::default();
        r.register(
            "routesim_gateway_connections_closed",
            "Client connections closed by the gateway's limits, by reason",
            closed_f.clone(),
        );
        let closed = CloseReason::ALL.map(|c| closed_f.get_or_create(&ReasonLabel { reason: c.name() }).clone());
        let body_timeouts = Counter::default();
        r.register(
            "routesim_gateway_body_read_timeouts",
            "Request bodies not received within body_read_timeout (408)",
            body_timeouts.clone(),
        );
        let client_f = Family::<StatusLabel, Counter>::default();
        r.register(
            "routesim_gateway_client_errors",
            "The gateway's answers to client mistakes (malformed or oversized requests, unknown routes), by status",
            client_f.clone(),
        );
        let client_errors = CLIENT_ERROR_STATUSES.map(|s| {
            let status = match s {
                400 => "400",
                404 => "404",
                405 => "405",
                408 => "408",
                413 => "413",
                _ => "431",
            };
            client_f.get_or_create(&StatusLabel { status }).clone()
        });
        let failed_f = Family::<StatusLabel, prometheus_client::metrics::histogram::Histogram>::new_with_constructor(
            failed_buckets as fn() -> prometheus_client::metrics::histogram::Histogram,
        );
        r.register(
            "routesim_gateway_failed_request_duration_seconds",
            "End-to-end latency of failed requests, by final status",
            failed_f.clone(),
        );
        let failed_latency = FAILED_STATUSES.map(|status| failed_f.get_or_create(&StatusLabel { status }).clone());
        let build = Family::<BuildLabel, Gauge>::default();
        r.register("routesim_gateway_build_info", "The gateway's version (value 1)", build.clone());
        build.get_or_create(&BuildLabel { version: env!("CARGO_PKG_VERSION") }).set(1);
        let access = Arc::new(OnceLock::new());
        r.register_collector(Box::new(KeyCollector { access: access.clone() }));
        r.register_collector(Box::new(ProcessCollector { started: std::time::SystemTime::now() }));
        OpsMetrics { open, accepted, closed, body_timeouts, client_errors, failed_latency, access }
    }

    /// Observes the latency of a request that ended with failed status `status` (a name of
    /// [`FAILED_STATUSES`]; others are ignored).
    pub fn failed(&self, status: &str, seconds: f64) {
        if let Some(i) = FAILED_STATUSES.iter().position(|&s| s == status) {
            self.failed_latency[i].observe(seconds);
        }
    }

    /// Counts a client error answered with `status` (other statuses are not counted here).
    pub fn client_error(&self, status: u16) {
        if let Some(i) = CLIENT_ERROR_STATUSES.iter().position(|&s| s == status) {
            self.client_errors[i].inc();
        }
    }

    /// Counts a connection closed for `reason`.
    pub fn closed(&self, reason: CloseReason) {
        let i = CloseReason::ALL.iter().position(|&c| c == reason).unwrap_or(0);
        self.closed[i].inc();
    }
}

fn failed_buckets() -> prometheus_client::metrics::histogram::Histogram {
    // 1 ms .. ~ 524 s, doubling (as the success histograms).
    prometheus_client::metrics::histogram::Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 20,
    ))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyOutcomeLabel {
    key: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyPeriodLabel {
    key: String,
    period: &'static str,
}

/// The client keys' figures at each scrape ([`crate::auth::Access`] gives them).
pub trait KeyFigures: std::fmt::Debug + Send + Sync {
    /// The figures of every key in force now, sorted by id.
    fn key_figures(&self) -> Vec<KeySnapshot>;
}

/// One key's figures for `/metrics`: requests, spend in the current UTC day and month, budgets, load.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySnapshot {
    /// The key's id.
    pub id: String,
    /// Requests admitted since start.
    pub admitted: u64,
    /// Requests denied since start (by a limit, a budget, the model list, revocation or expiry).
    pub denied: u64,
    /// Requests in flight.
    pub in_flight: u32,
    /// Spend today (UTC), USD.
    pub day_usd: f64,
    /// Spend this month (UTC), USD.
    pub month_usd: f64,
    /// The daily budget, if any.
    pub daily_budget_usd: Option<f64>,
    /// The monthly budget, if any.
    pub monthly_budget_usd: Option<f64>,
    /// Tokens in the TPM window now (reserved and used).
    pub window_tokens: u64,
}

/// Per-key series, read from the access state at each scrape (keys come and go with reloads): requests
/// admitted and denied, spend and budget left in the current UTC day and month, requests in flight and
/// tokens in the TPM window. Every key in force has every series (zero included) from the start.
#[derive(Debug)]
struct KeyCollector {
    access: Arc<OnceLock<Arc<dyn KeyFigures>>>,
}

impl Collector for KeyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(access) = self.access.get() else { return Ok(()) };
        let keys = access.key_figures();
        let label = |id: &str| KeyLabel { key: id.to_string() };
        {
            let mut e = encoder.encode_descriptor(
                "routesim_gateway_key_requests",
                "Requests per client key, admitted or denied",
                None,
                MetricType::Counter,
            )?;
            for k in &keys {
                for (outcome, n) in [("admitted", k.admitted), ("denied", k.denied)] {
                    ConstCounter::new(n).encode(e.encode_family(&KeyOutcomeLabel { key: k.id.clone(), outcome })?)?;
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "routesim_gateway_key_spend_usd",
                "Spend per client key in the current UTC day and month, USD",
                None,
                MetricType::Gauge,
            )?;
            for k in &keys {
                for (period, v) in [("day", k.day_usd), ("month", k.month_usd)] {
                    ConstGauge::new(v).encode(e.encode_family(&KeyPeriodLabel { key: k.id.clone(), period })?)?;
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "routesim_gateway_key_budget_remaining_usd",
                "Budget left per client key in the current UTC day and month, USD (keys with a budget)",
                None,
                MetricType::Gauge,
            )?;
            for k in &keys {
                for (period, b, v) in
                    [("day", k.daily_budget_usd, k.day_usd), ("month", k.monthly_budget_usd, k.month_usd)]
                {
                    if let Some(b) = b {
                        let left = (b - v).max(0.0);
                        ConstGauge::new(left)
                            .encode(e.encode_family(&KeyPeriodLabel { key: k.id.clone(), period })?)?;
                    }
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "routesim_gateway_key_in_flight",
                "Requests in flight per client key",
                None,
                MetricType::Gauge,
            )?;
            for k in &keys {
                ConstGauge::new(k.in_flight as i64).encode(e.encode_family(&label(&k.id))?)?;
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "routesim_gateway_key_tpm_window_tokens",
                "Tokens in each client key's TPM window (reserved and used)",
                None,
                MetricType::Gauge,
            )?;
            for k in &keys {
                ConstGauge::new(k.window_tokens as i64).encode(e.encode_family(&label(&k.id))?)?;
            }
        }
        Ok(())
    }
}

/// The process's own resources, read at each scrape (Linux `/proc`; elsewhere only the start time and the
/// descriptor limit): `process_open_fds`, `process_max_fds`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_cpu_seconds_total`, `process_start_time_seconds`.
#[derive(Debug)]
struct ProcessCollector {
    started: std::time::SystemTime,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut gauge = |name: &str, help: &str, v: f64| -> Result<(), std::fmt::Error> {
            let e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(e)
        };
        if let Some(n) = open_fds() {
            gauge("process_open_fds", "Open file descriptors", n as f64)?;
        }
        if let Some(n) = open_files_limit() {
            gauge("process_max_fds", "Soft limit on open file descriptors", n as f64)?;
        }
        if let Some((vm, rss)) = memory() {
            gauge("process_virtual_memory_bytes", "Virtual memory size, bytes", vm as f64)?;
            gauge("process_resident_memory_bytes", "Resident memory size, bytes", rss as f64)?;
        }
        let start = self.started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        gauge("process_start_time_seconds", "Start time of the process, seconds since the Unix epoch", start)?;
        if let Some(cpu) = cpu_seconds() {
            let e = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time, seconds",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(e)?;
        }
        Ok(())
    }
}

/// Open file descriptors of this process (Linux).
pub fn open_fds() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64)
}

/// Page size in bytes.
fn page_size() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf reads a constant of the system.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            return n as u64;
        }
    }
    4096
}

/// (virtual, resident) memory in bytes (Linux).
fn memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut it = text.split_whitespace().map(|x| x.parse::<u64>().ok());
    let (vm, rss) = (it.next()??, it.next()??);
    Some((vm * page_size(), rss * page_size()))
}

/// User plus system CPU seconds (Linux).
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime) = (f.get(11)?.parse::<f64>().ok()?, f.get(12)?.parse::<f64>().ok()?);
    #[cfg(unix)]
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    #[cfg(not(unix))]
    let ticks = 100.0;
    (ticks > 0.0).then(|| (utime + stime) / ticks)
}

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`), when the platform has one.
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct it is given and reads nothing else.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        if rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
            // `rlim_t` is u64 on Linux but not on every Unix.
            #[allow(clippy::unnecessary_cast)]
            return Some(lim.rlim_cur as u64);
        }
        None
    }
    #[cfg(not(unix))]
    {
        None
    }
}
