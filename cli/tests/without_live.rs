//! A routesim built without the live harness (`cargo test -p routesim --no-default-features`): the live
//! commands still parse and exit with status 2, saying how to build a routesim that has them.

#![cfg(not(feature = "live"))]

use std::process::Command;

#[test]
fn live_commands_say_how_to_build_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let s = "scenarios/quickstart.toml";
    for args in [
        vec!["mock", s],
        vec!["load", s, "--target", "http://127.0.0.1:8080"],
        vec!["live", s, "--policy", "cost"],
        vec!["overhead", s],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_routesim")).args(&args).current_dir(&root).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("built without it") && err.contains("cargo build --release -p routesim"), "{err}");
    }
    // A parse error is still a parse error.
    let out = Command::new(env!("CARGO_BIN_EXE_routesim")).args(["live", s]).current_dir(&root).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--policy"));
}
