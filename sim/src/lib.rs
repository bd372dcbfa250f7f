//! routesim: a discrete-event simulator for multi-LLM gateway routing.
//!
//! The data flow is scenario -> traffic -> engine -> router-core -> provider models -> metrics -> report;
//! see `ARCHITECTURE.md` at the repository root for where each concept lives.

pub mod ab;
pub mod dist;
pub mod engine;
pub mod export;
pub mod gen_log;
pub mod import;
pub mod keys;
pub mod live;
pub mod logs;
pub mod metrics;
pub mod provider;
pub mod replay;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod stats;
pub mod sweep;
pub mod traffic;
pub mod tune;
pub mod validate;

pub mod commands;
pub mod experiment;
pub mod records;
