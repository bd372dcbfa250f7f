//! The real peers (LiteLLM from PyPI, the Portkey gateway from npm), installed pinned and cached by
//! `scripts/peers/install.sh` the first time a test asks for them. Shared by the compatibility tests
//! (`mod peers;` in a test file). Nothing here skips: a peer that cannot be installed fails the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the installed peers are.
#[derive(Debug, Clone)]
pub struct Peers {
    /// The python of a venv with `litellm` (and `kubernetes-validate`) at the pinned versions.
    pub python: PathBuf,
    /// The installed `@portkey-ai/gateway` package (its `build/start-server.js`).
    pub portkey_dir: PathBuf,
}

/// The repository root (the folder above `sim/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim/ has a parent").to_path_buf()
}

/// Installs the peers once per test process (idempotent and cached across runs) and says where they are.
pub fn peers() -> &'static Peers {
    static PEERS: OnceLock<Peers> = OnceLock::new();
    PEERS.get_or_init(|| {
        let script = repo_root().join("scripts/peers/install.sh");
        let out = Command::new("bash").arg(&script).output().expect("run scripts/peers/install.sh");
        assert!(
            out.status.success(),
            "scripts/peers/install.sh failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("install.sh prints UTF-8");
        let var = |name: &str| -> PathBuf {
            let prefix = format!("export {name}='");
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("install.sh did not print {name}:\n{text}"));
            PathBuf::from(line.trim_end_matches('\''))
        };
        let peers = Peers { python: var("ROUTESIM_PEERS_PYTHON"), portkey_dir: var("ROUTESIM_PORTKEY_DIR") };
        assert!(peers.python.exists(), "no python at {}", peers.python.display());
        assert!(
            peers.portkey_dir.join("build/start-server.js").exists(),
            "no Portkey gateway at {}",
            peers.portkey_dir.display()
        );
        peers
    })
}
