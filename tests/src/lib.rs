//! Helpers for Gatehouse's end-to-end tests.
//!
//! [`ControlPlane`] runs a real kube-apiserver with etcd (built from the Go modules by
//! `tests/control-plane/build.sh`), installs the CRDs from `crds/manifests`, and hands out
//! [`kube::Client`]s. Tests each work in their own namespace ([`ControlPlane::namespace`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod control_plane;
pub mod stack;

pub use control_plane::{ADMIN_TOKEN, ControlPlane};

/// The repository root, for finding manifests, examples and scripts.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A free TCP port on 127.0.0.1. Another process may take it before it is used; callers bind soon.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A short random lower-case suffix for names.
pub fn suffix() -> String {
    gatehouse_crds::random::bytes::<6>()
        .iter()
        .map(|b| char::from(b'a' + b % 26))
        .collect()
}

/// The helm binary: `GATEHOUSE_HELM`, or whatever `tests/services/helm.sh` prints (it builds helm from
/// the Go module proxy on first use and caches it).
pub fn helm() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("GATEHOUSE_HELM") {
        return path.into();
    }
    let script = repo_root().join("tests/services/helm.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running tests/services/helm.sh");
    assert!(out.status.success(), "tests/services/helm.sh failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .last()
        .expect("a path")
        .trim()
        .into()
}

/// The Kubernetes version of tests/control-plane, for offline `helm template` (the chart's kubeVersion
/// check would otherwise compare against helm's built-in default).
pub const KUBE_VERSION: &str = "v1.36.3";

/// Runs helm in the repository root; `helm template` renders for [`KUBE_VERSION`].
pub fn run_helm(args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    if args.first() == Some(&"template") {
        all.extend(["--kube-version", KUBE_VERSION]);
    }
    std::process::Command::new(helm())
        .args(&all)
        .current_dir(repo_root())
        .output()
        .expect("running helm")
}
