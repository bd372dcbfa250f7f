//! routesim-gateway: router-core's policies serving real OpenAI-compatible traffic on tokio.
//!
//! A request flows `api` (HTTP, bad input) -> `admission` (who asks, what the key may do) -> `request` (body
//! and routing metadata) -> `routing` (decide, attempts with timeouts, backoff and fallbacks, feedback to
//! router-core) -> `upstream` (the pooled rustls client, error classes, usage) and back, streaming passed
//! through chunk by chunk. `app` assembles one configuration generation from the parts the other modules
//! own (`router_pool`: the routers and their clock; `upstream`, `metrics`, `reqlog`, `cache`, `batch`,
//! `auth`, `models`, `tls`) and none of those imports it. Beside it: `metrics` (Prometheus), `reqlog` (JSONL
//! in routesim's generic schema, off the request path), `cache` (response bodies), `batch` (deferrable
//! requests), `health` (scheduled checks), `shutdown` (drain on SIGTERM), `server` (start and stop),
//! `config` (the TOML file), `duration` (router-core durations as std ones), `auth` (client keys, per-key limits and budgets,
//! the usage store, `keys` commands), `tls` (TLS termination with reloadable certificates), `conn` (the accept
//! loop: connection cap, header-read and keep-alive timeouts, the drain), `ops` (per-key, connection,
//! client-error and process metrics), `feedback` (`POST /v1/feedback`: clients rate answers into the log). The mock upstream of the tests is crate `routesim-mock-upstream`; the
//! load generator and the overhead benchmark are in `routesim-live`.

#![warn(missing_docs)]

pub mod admission;
pub mod answer;
pub mod api;
pub mod app;
pub mod auth;
pub mod batch;
pub mod cache;
pub mod cli;
pub mod config;
pub mod conn;
pub mod duration;
pub mod error;
pub mod feedback;
pub mod health;
pub mod metrics;
pub mod models;
pub mod ops;
pub mod reqlog;
pub mod request;
pub mod rollout;
pub mod router_pool;
pub mod routing;
pub mod server;
pub mod shutdown;
pub mod tls;
pub mod upstream;
pub mod verifier;

pub use config::{ConfigError, GatewayConfig};
pub use server::{RunningGateway, start, start_on};
