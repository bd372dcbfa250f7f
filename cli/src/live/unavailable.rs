//! The live commands in a routesim built without the cargo feature `live`: each says so and how to build a
//! routesim that has them (exit status 2, as for invalid input).

use super::{LiveArgs, LoadArgs, MockArgs, OverheadArgs};
use sim::failure::Failure;

/// The error of `routesim <command>` without the live harness.
fn unavailable(command: &str) -> Failure {
    Failure::Invalid(format!(
        "`routesim {command}` needs the live harness (mock providers, load generator, gateway), and this routesim \
         was built without it (`--no-default-features`); build it with the default features, e.g. `cargo build \
         --release -p routesim` (or `--features live`)"
    ))
}

/// `routesim mock` without the live harness: an error.
pub fn run_mock(_: &MockArgs) -> Result<(), Failure> {
    Err(unavailable("mock"))
}

/// `routesim load` without the live harness: an error.
pub fn run_load(_: &LoadArgs) -> Result<(), Failure> {
    Err(unavailable("load"))
}

/// `routesim live` without the live harness: an error.
pub fn run_live(_: &LiveArgs) -> Result<(), Failure> {
    Err(unavailable("live"))
}

/// `routesim overhead` without the live harness: an error.
pub fn run_overhead(_: &OverheadArgs) -> Result<(), Failure> {
    Err(unavailable("overhead"))
}
