//! Set-up shared by the CLI's integration test files (each file is its own crate and includes this module
//! with `mod common;`).

#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};

/// The workspace root (scenarios, sample logs and scripts are found from it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A fresh, empty scratch directory `routesim-SUITE-NAME-PID` under the system's temporary directory:
/// `suite` names the test file, `name` the test, the process id keeps concurrent runs apart.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("routesim-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `routesim fit --log LOG --out OUT`, asserts it succeeded and returns what it printed.
pub fn fit(log: &Path, out: &Path) -> String {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_routesim"))
        .args(["fit", "--log"])
        .arg(log)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8_lossy(&run.stdout).into_owned()
}
