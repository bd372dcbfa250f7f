//! routesim: a discrete-event simulator for multi-LLM gateway routing.
//!
//! The data flow is scenario -> traffic -> engine -> router-core -> provider models -> metrics -> report;
//! see `ARCHITECTURE.md` at the repository root for where each concept lives.

pub mod ab;
pub mod bench;
pub mod dist;
pub mod engine;
pub mod export;
pub mod failure;
pub mod fit_files;
pub mod gen_log;
pub mod import;
pub mod keys;
pub mod logs;
pub mod metrics;
pub mod params;
pub mod peer_gateway;
pub mod progress;
pub mod provider;
pub mod quality;
pub mod replay;
pub mod report;
pub mod results;
pub mod rng;
pub mod scenario;
pub mod setup;
pub mod stats;
pub mod sweep;
pub mod threads;
pub mod traffic;
pub mod tune;
pub mod validate;

pub mod experiment;
pub mod records;
