//! The workspace as cargo sees it: its crates (each library and binary target of each member) and a package's
//! normal dependencies, read through the `cargo` that runs the tests (offline, from the lock file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One crate of the workspace: a library or binary target of a member package.
#[derive(Debug)]
pub struct Crate {
    /// `package` for a library, `package (bin name)` for a binary.
    pub name: String,
    /// Its root source file (`src/lib.rs`, `src/main.rs`, ...).
    pub root: PathBuf,
}

/// The workspace root: the directory above this package's manifest.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the package lies in the workspace").to_path_buf()
}

/// Runs the `cargo` that runs the tests (or the one on `PATH`) in the workspace root and returns its stdout.
fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(&cargo)
        .args(args)
        .args(["--locked", "--offline"])
        .current_dir(root())
        .output()
        .unwrap_or_else(|error| panic!("running {cargo}: {error}"));
    assert!(output.status.success(), "cargo {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("cargo prints UTF-8")
}

/// Every library and binary crate of every workspace member, in member order.
pub fn crates() -> Vec<Crate> {
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"])).expect("cargo metadata");
    let mut crates = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let package_name = package["name"].as_str().expect("package name");
        for target in package["targets"].as_array().expect("targets") {
            let kinds: Vec<&str> =
                target["kind"].as_array().expect("kinds").iter().filter_map(|kind| kind.as_str()).collect();
            let name = if kinds.iter().any(|kind| matches!(*kind, "lib" | "rlib" | "proc-macro")) {
                package_name.to_string()
            } else if kinds.contains(&"bin") {
                format!("{package_name} (bin {})", target["name"].as_str().expect("target name"))
            } else {
                continue; // tests, examples and benches are no part of the crates' architecture
            };
            crates.push(Crate { name, root: PathBuf::from(target["src_path"].as_str().expect("src_path")) });
        }
    }
    crates
}

/// Every package in `package`'s normal (non-dev, non-build) dependency tree, with extra `cargo tree` flags
/// (features), without `package` itself.
pub fn normal_dependencies(package: &str, flags: &[&str]) -> Vec<String> {
    let mut args = vec!["tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}"];
    args.extend_from_slice(flags);
    let mut names = package_names(&cargo(&args));
    names.retain(|name| name != package);
    names
}

/// The packages in `package`'s normal dependency tree that depend on `dependency` directly.
pub fn direct_dependents(package: &str, dependency: &str) -> Vec<String> {
    let tree = cargo(&[
        "tree", "-p", package, "-e", "normal", "-i", dependency, "--depth", "1", "--prefix", "none", "--format", "{p}",
    ]);
    let mut names = package_names(&tree);
    names.retain(|name| name != dependency);
    names
}

/// Every package (name and version) of a build and the features it is compiled with: `cargo tree` with the
/// given arguments, `--edges` `edges` (plus features), read as `name version -> features`. Two builds compile a
/// shared package once only if it has the same features in both.
pub fn features_of_build(args: &[&str], edges: &str) -> BTreeMap<String, BTreeSet<String>> {
    let edges = format!("{edges},features");
    let mut all = vec!["tree", "-e", edges.as_str(), "--prefix", "none", "--format", "{p}|{f}"];
    all.extend_from_slice(args);
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in cargo(&all).lines() {
        let Some((package, features)) = line.split_once('|') else { continue };
        // `{p}` is `name vX.Y.Z`, then ` (path)` for workspace members; `(*)` marks a repeat.
        let mut words = package.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else { continue };
        let features = features.trim_end_matches(" (*)").trim();
        packages
            .entry(format!("{name} {version}"))
            .or_default()
            .extend(features.split(',').filter(|f| !f.is_empty()).map(str::to_string));
    }
    packages
}

/// The sorted, distinct package names of `cargo tree --prefix none --format {p}` output.
fn package_names(tree: &str) -> Vec<String> {
    let mut names: Vec<String> =
        tree.lines().filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect();
    names.sort();
    names.dedup();
    names
}
