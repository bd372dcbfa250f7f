//! Provider models: slots, queues, service times, errors, quotas and faults per endpoint.
//!
//! [`spec`] is what a scenario declares, [`model`] the runtime state the engine drives, [`fault`] the
//! scheduled faults. Providers know nothing of routing; the engine owns time and events.

pub mod fault;
pub mod model;
pub mod spec;

pub use fault::{FaultKind, FaultSpec};
pub use model::{Admission, Provider, Service, Waiting};
pub use spec::{EndpointSpec, ErrorRates};
