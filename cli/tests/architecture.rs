//! Architecture checks over the whole workspace (issue 27).
//!
//! - No module cycles: in every crate of the workspace (each library and binary target of each member, found
//!   through `cargo metadata`), at every level of its module tree, the graph of "uses" between sibling modules
//!   has no cycle. A reference to `crate::a::b::C` from inside module `x` is an edge `x -> a` among the crate
//!   root's children, and so on at each level below; references between a module and its ancestors do not
//!   count. See `architecture/module_tree.rs` (what refers to what) and `architecture/cycles.rs` (the graphs).
//! - The simulator library builds without the gateway stack: `sim` has no normal dependency, direct or not, on
//!   axum, hyper, reqwest, rustls, redb, the gateway or the live harness, and tokio only through polars; nor
//!   has the `routesim` binary built with `--no-default-features` (the README's quickstart).
//! - One file format, each section registered once: the schema's list of simulator-only top-level sections,
//!   the scenario's fields and the gateway file's fields agree (no tool lists the other's fields).
//!
//! Run alone with `cargo test -p routesim --test architecture`.

#[path = "architecture/cycles.rs"]
mod cycles;
#[path = "architecture/module_tree.rs"]
mod module_tree;
#[path = "architecture/workspace.rs"]
mod workspace;

use cycles::find_cycles;
use module_tree::{Location, ModuleTree};

/// `file:line` with the file relative to the workspace root.
fn display_location(at: &Location) -> String {
    let root = workspace::root();
    format!("{}:{}", at.file.strip_prefix(&root).unwrap_or(&at.file).display(), at.line)
}

#[test]
fn no_module_cycles_in_any_crate() {
    let read = |path: &std::path::Path| std::fs::read_to_string(path);
    let mut cycles = Vec::new();
    for krate in workspace::crates() {
        let tree = ModuleTree::load(&krate.root, &read).unwrap_or_else(|error| panic!("{}: {error}", krate.name));
        cycles.extend(
            find_cycles(&tree).iter().map(|cycle| format!("{}: {}", krate.name, cycle.describe(&display_location))),
        );
    }
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

/// The gateway's stack: none of it may be in the simulator library's build, nor in the `routesim` binary
/// built without its `live` feature (the quickstart's build).
const GATEWAY_STACK: &[&str] = &[
    "axum",
    "hyper",
    "hyper-util",
    "reqwest",
    "rustls",
    "tokio-rustls",
    "redb",
    "prometheus-client",
    "routesim-gateway",
    "routesim-live",
    "routesim-mock-upstream",
];

#[test]
fn the_simulator_library_builds_without_the_gateway_stack() {
    let found: Vec<String> = workspace::normal_dependencies("sim", &[])
        .into_iter()
        .filter(|name| GATEWAY_STACK.contains(&name.as_str()))
        .collect();
    assert!(found.is_empty(), "sim depends (normal dependencies, directly or not) on {found:?}");
    // tokio is in sim's tree only because polars-core 0.55 depends on it unconditionally (through
    // polars-async); sim itself, and every other crate on that path, must not (the workspace-hack crate
    // only unifies the features of what the build already has).
    let users: Vec<String> = workspace::direct_dependents("sim", "tokio")
        .into_iter()
        .filter(|name| !name.starts_with("polars") && name != "workspace-hack")
        .collect();
    assert!(users.is_empty(), "tokio enters sim's build through {users:?}, not only through polars");
}

#[test]
fn the_quickstart_build_has_no_gateway_stack() {
    let found: Vec<String> = workspace::normal_dependencies("routesim", &["--no-default-features"])
        .into_iter()
        .filter(|name| GATEWAY_STACK.contains(&name.as_str()))
        .collect();
    assert!(found.is_empty(), "`routesim --no-default-features` builds {found:?}");
}

/// The README's two commands (the quickstart, `cargo run -p routesim --no-default-features`, and the tests,
/// `cargo test --workspace`) reuse each other's compiled dependencies: every package the quickstart builds is
/// resolved with the same features in the tests' build (dev-dependencies included), so cargo compiles it
/// once. A difference would rebuild it and every crate above it (polars, then sim); the workspace-hack's
/// hand-written `rustix` line closes the one hakari leaves open.
#[test]
fn the_quickstart_reuses_the_test_builds_dependencies() {
    let quickstart = workspace::features_of_build(&["-p", "routesim", "--no-default-features"], "normal,build");
    let tests = workspace::features_of_build(&["--workspace"], "normal,build,dev");
    let differing: Vec<String> = quickstart
        .iter()
        .filter(|(package, _)| !package.starts_with("routesim "))
        .filter_map(|(package, features)| {
            let theirs = tests.get(package)?;
            (theirs != features).then(|| format!("{package}: quickstart {features:?}, tests {theirs:?}"))
        })
        .collect();
    assert!(quickstart.len() > 100, "the quickstart's build has {} packages: the tree was not read", quickstart.len());
    assert!(differing.is_empty(), "built twice, with other features:\n{}", differing.join("\n"));
}

/// A file is both a scenario and a gateway config. Every top-level field of the scenario is either one the
/// gateway reads too or a simulator section the schema registers (`SIMULATOR_SECTIONS`, which the gateway
/// skips); no registered section is one the gateway reads; and every registered one is a scenario field.
/// A new scenario section that is not registered would make every scenario an invalid gateway config.
#[test]
fn every_top_level_section_is_registered_once() {
    use routesim_schema::SIMULATOR_SECTIONS;
    use routesim_schema::sections::field_names;
    let scenario = field_names::<sim::scenario::Scenario>();
    let gateway = field_names::<routesim_gateway::config::GatewayFile>();
    assert!(scenario.len() > 10 && gateway.len() > 10, "the probe read {scenario:?} and {gateway:?}");
    let unread: Vec<&&str> =
        scenario.iter().filter(|f| !gateway.contains(f) && !SIMULATOR_SECTIONS.contains(f)).collect();
    assert!(
        unread.is_empty(),
        "scenario fields neither read by the gateway nor registered as the simulator's: {unread:?}"
    );
    let both: Vec<&&str> = SIMULATOR_SECTIONS.iter().filter(|f| gateway.contains(f)).collect();
    assert!(both.is_empty(), "registered as the simulator's but read by the gateway: {both:?}");
    let stale: Vec<&&str> = SIMULATOR_SECTIONS.iter().filter(|f| !scenario.contains(f)).collect();
    assert!(stale.is_empty(), "registered as the simulator's but not a scenario field: {stale:?}");
}
