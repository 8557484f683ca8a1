//! The `gatehouse-server` binary itself: flags, environment, standalone startup, a generated
//! key-encryption key, graceful shutdown on SIGTERM, and a second start that reuses everything.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::on_both_backends;
use crate::support::*;

// The platform's ceiling lets the directory publish exports.* scopes, and the policy publishes the one
// the client asks for: without both, the built-in ceiling grants no such scope.
const MANIFEST: &str = r#"
apiVersion: gatehouse.dev/v1alpha1
kind: ClusterOAuthPolicy
metadata: {name: platform}
spec:
  publishableScopes: ["exports.*"]
---
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthPolicy
metadata: {name: exports, namespace: default}
spec:
  scopes: [{name: exports.write}]
---
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: nightly-export}
spec:
  grantTypes: [client_credentials]
  scopes: [exports.write]
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Binary {
    child: Child,
    public: String,
    admin: String,
}

async fn spawn(dir: &Path, db: &TestDb, backend: Backend) -> Binary {
    let (public_port, admin_port) = (free_port(), free_port());
    let public = format!("http://127.0.0.1:{public_port}");
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse-server"));
    command
        .arg("--clients-dir")
        .arg(dir.join("clients"))
        .args(["--listen", &format!("127.0.0.1:{public_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .args(["--database-url", db.url()])
        .arg("--admin-token-file")
        .arg(dir.join("admin-token"))
        .env("GATEHOUSE_ISSUER", &public)
        .env("GATEHOUSE_SIGNING_ALG", "EdDSA")
        .env("GATEHOUSE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if backend == Backend::Postgres {
        // Only a standalone SQLite server generates its own key-encryption key.
        command.args(["--key-encryption-key", &"ab".repeat(32)]);
    }
    let child = command.spawn().unwrap();
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{public}/readyz")).send().await
            && response.status() == 200
        {
            return Binary { child, public, admin };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gatehouse-server did not become ready on {public}");
}

async fn terminate(mut binary: Binary) {
    let pid = binary.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), binary.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit}");
}

fn generated_secret(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("clients/nightly-export-oauth.secret.yaml")).unwrap();
    let manifest: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    manifest["stringData"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn get_token(binary: &Binary, secret: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/token", binary.public))
        .header("authorization", basic_header("nightly-export.default", secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn jwks_kids(binary: &Binary) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{}/jwks", binary.public))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_binary_serves_a_clients_dir_and_a_second_start_reuses_secret_and_keys(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("clients")).unwrap();
    std::fs::write(dir.path().join("clients/export.yaml"), MANIFEST).unwrap();
    std::fs::write(dir.path().join("admin-token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    let db = TestDb::create(backend).await;

    let first = spawn(dir.path(), &db, backend).await;
    let secret = generated_secret(dir.path());
    let token = get_token(&first, &secret).await;
    assert_eq!(token["scope"], "exports.write");
    let kids = jwks_kids(&first).await;
    assert_eq!(kids.len(), 1);
    let list: Value = reqwest::Client::new()
        .get(format!("{}/admin/v1/clients", first.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["clientId"], "nightly-export.default");
    terminate(first).await;

    let second = spawn(dir.path(), &db, backend).await;
    assert_eq!(generated_secret(dir.path()), secret);
    assert_eq!(jwks_kids(&second).await, kids);
    get_token(&second, &secret).await;
    terminate(second).await;
    if backend == Backend::Sqlite {
        let kek = std::fs::read_to_string(format!("{}.kek", sqlite_path(&db))).unwrap();
        assert!(!kek.trim().is_empty());
    }
}

fn sqlite_path(db: &TestDb) -> String {
    db.url()
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

on_both_backends!(the_binary_serves_a_clients_dir_and_a_second_start_reuses_secret_and_keys);
