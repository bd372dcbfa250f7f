//! Validation of the simulator against queueing theory.

pub mod theory;
