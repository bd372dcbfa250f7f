//! The Kubernetes manifests (`deploy/kubernetes/`) validated offline against the Kubernetes API schemas, strictly
//! (unknown fields rejected), with `kubernetes-validate` 1.37.0 (installed by `scripts/peers/install.sh`, which
//! ships the schemas of Kubernetes 1.25 to 1.37). The sweep Job uses `backoffLimitPerIndex`, beta and on by
//! default from Kubernetes 1.29: the manifests must pass every version from 1.29 to 1.37, and 1.27's schema
//! must reject that field (which shows the check reads it).

mod peers;

use std::path::PathBuf;
use std::process::{Command, Output};

fn validate(version: &str, files: &[PathBuf]) -> Output {
    let venv_bin = peers::peers().python.parent().expect("the venv's bin folder").to_path_buf();
    Command::new(venv_bin.join("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", version])
        .args(files)
        .output()
        .expect("run kubernetes-validate")
}

fn manifests() -> Vec<PathBuf> {
    let dir = peers::repo_root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifest under {}", dir.display());
    files
}

#[test]
fn kubernetes_manifests_validate_strictly_against_every_supported_version() {
    let files = manifests();
    for minor in 29..=37 {
        let version = format!("1.{minor}.0");
        let out = validate(&version, &files);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && !text.contains("ERROR"), "Kubernetes {version}:\n{text}");
        // Every resource of every file was checked (a file the tool cannot read passes silently otherwise).
        let checked = text.matches(" passed for resource ").count();
        assert!(checked >= 3, "Kubernetes {version}: only {checked} resources validated:\n{text}");
    }
}

#[test]
fn a_kubernetes_older_than_1_29_rejects_the_per_index_backoff_limit() {
    let out = validate("1.27.0", &manifests());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "1.27 accepted the manifests:\n{text}");
    assert!(text.contains("backoffLimitPerIndex"), "{text}");
}
