//! The `[[endpoints]]` table of a scenario: what the router knows of an endpoint (price, limits, tier) and
//! how the simulated provider behind it behaves (slots, queue, service times, errors). The schema is
//! `routesim-schema`'s [`EndpointConfig`], shared with the gateway.

pub use routesim_schema::endpoint::{EndpointConfig, ErrorRates};

/// One endpoint as a scenario declares it, with its service-time distributions required.
pub type EndpointSpec = EndpointConfig;
