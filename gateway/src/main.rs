//! `routesim-gateway`: see the crate documentation and `gateway/README.md`.

fn main() -> std::process::ExitCode {
    routesim_gateway::cli::main()
}
