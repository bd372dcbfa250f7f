//! The `routesim` binary: see [`sim::commands`].

fn main() -> std::process::ExitCode {
    sim::commands::main()
}
