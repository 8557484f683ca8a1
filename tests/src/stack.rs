//! The pieces of a running Gatehouse outside a cluster: the workspace binaries as local processes, the
//! operator pointed at a control plane, and the token server configured the way the operator configures
//! it. Used by the end-to-end tests and by `gatehouse-local` (the README's first command).

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{ADMIN_TOKEN, ControlPlane, repo_root};

/// Builds `gatehouse-operator` and `gatehouse-server` (debug) and returns their paths. A no-op when they
/// are up to date.
pub fn build_binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo test` and `cargo run` give this process the variables cargo sets for a package
    // (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...). Build scripts such as ring's watch those with
    // rerun-if-env-changed, so passing them on would rebuild half the tree on every call.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_for_a_package = name == "OUT_DIR"
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_BIN_")
            || name.starts_with("CARGO_CFG_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
            );
        if set_by_cargo_for_a_package {
            command.env_remove(name);
        }
    }
    let status = command
        .args([
            "build",
            "-q",
            "-p",
            "gatehouse-operator",
            "-p",
            "gatehouse-server",
            "--bins",
        ])
        .current_dir(repo_root())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building gatehouse-operator and gatehouse-server failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    Ok((
        target.join("debug/gatehouse-operator"),
        target.join("debug/gatehouse-server"),
    ))
}

/// Polls `f` every 250 ms until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {} s waiting for {what}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How to run the token server as the operator configures it (see [`start_operated_server`]).
pub struct OperatedServer<'a> {
    /// The `gatehouse-server` binary.
    pub bin: &'a Path,
    /// The namespace where the operator generated the server's Secrets.
    pub namespace: &'a str,
    /// The public port; the issuer is `http://127.0.0.1:PORT`.
    pub port: u16,
    /// The admin API's port.
    pub admin_port: u16,
    /// Where the credential files, the SQLite database and `server.log` go.
    pub dir: &'a Path,
    /// `RUST_LOG` for the server.
    pub log_level: &'a str,
    /// How long to wait for the Secrets, and then for `/readyz`.
    pub timeout: Duration,
}

/// Starts the token server as the operator would run it: the admin token and the key-encryption key
/// come from the Secrets the operator generated (`gatehouse-server-admin-token`, `gatehouse-server-kek`),
/// passed as files, and the database is SQLite in `dir`. Returns once `/readyz` answers, with the
/// admin token.
pub async fn start_operated_server(
    kube: &kube::Client,
    server: &OperatedServer<'_>,
) -> anyhow::Result<(Proc, String)> {
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(kube.clone(), server.namespace);
    let secret_value = |name: &'static str, key: &'static str| {
        let secrets = secrets.clone();
        async move {
            eventually(
                &format!("Secret {}/{name}", server.namespace),
                server.timeout,
                || async {
                    let data = secrets.get_opt(name).await.ok()??.data?;
                    String::from_utf8(data.get(key)?.0.clone()).ok()
                },
            )
            .await
        }
    };
    let admin_token = secret_value("gatehouse-server-admin-token", "token").await?;
    let token_file = server.dir.join("admin-token");
    let kek_file = server.dir.join("kek");
    std::fs::write(&token_file, &admin_token)?;
    std::fs::write(&kek_file, secret_value("gatehouse-server-kek", "key").await?)?;
    let issuer = format!("http://127.0.0.1:{}", server.port);
    let proc = Proc::spawn(
        server.bin,
        &[
            format!("--listen=127.0.0.1:{}", server.port),
            format!("--admin-listen=127.0.0.1:{}", server.admin_port),
            format!("--issuer={issuer}"),
            format!(
                "--database-url=sqlite://{}?mode=rwc",
                server.dir.join("gatehouse.db").display()
            ),
            format!("--admin-token-file={}", token_file.display()),
            format!("--key-encryption-key-file={}", kek_file.display()),
        ],
        &[("RUST_LOG", server.log_level.to_owned())],
        server.dir.join("server.log"),
    )?;
    let http = reqwest::Client::new();
    eventually("the token server's /readyz", server.timeout, || async {
        let response = http.get(format!("{issuer}/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await?;
    Ok((proc, admin_token))
}

/// A child process with its output in a log file; killed on drop.
pub struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `bin` with `args` and extra environment `envs`, logging to `log`.
    pub fn spawn(bin: &Path, args: &[String], envs: &[(&str, String)], log: PathBuf) -> anyhow::Result<Proc> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(bin);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Proc { child, log })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process (SIGKILL, as a crash would) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

impl ControlPlane {
    /// A list of `resource` (such as `oauthclients`) as `kubectl get` prints it: the API server's Table
    /// rendering, with the CRD's printer columns. `namespace` None lists all namespaces.
    pub async fn get_table(
        &self,
        group_version: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> anyhow::Result<String> {
        let path = match namespace {
            Some(ns) => format!("/apis/{group_version}/namespaces/{ns}/{resource}?includeObject=Metadata"),
            None => format!("/apis/{group_version}/{resource}?includeObject=Metadata"),
        };
        let table: Value = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()?
            .get(format!("{}{path}", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(render_table(&table, namespace.is_none()))
    }
}

/// Renders a meta.k8s.io/v1 Table like kubectl: upper-case headers, priority-0 columns, aligned.
fn render_table(table: &Value, with_namespace: bool) -> String {
    let empty = Vec::new();
    let definitions = table["columnDefinitions"].as_array().unwrap_or(&empty);
    let shown: Vec<usize> = (0..definitions.len())
        .filter(|&i| definitions[i]["priority"].as_i64().unwrap_or(0) == 0)
        .collect();
    let mut header: Vec<String> = shown
        .iter()
        .map(|&i| definitions[i]["name"].as_str().unwrap_or("").to_uppercase())
        .collect();
    if with_namespace {
        header.insert(0, "NAMESPACE".into());
    }
    let mut rows = vec![header];
    for row in table["rows"].as_array().unwrap_or(&empty) {
        let cells = row["cells"].as_array().unwrap_or(&empty);
        let mut line: Vec<String> = shown
            .iter()
            .map(|&i| match cells.get(i) {
                Some(Value::String(s)) if definitions[i]["type"] == "date" => age(s),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => "<none>".into(),
                Some(other) => other.to_string(),
            })
            .collect();
        if with_namespace {
            line.insert(
                0,
                row["object"]["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
        }
        rows.push(line);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i] + 3))
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A timestamp's age as kubectl prints it: `42s`, `5m`, `3h`, `2d`.
fn age(timestamp: &str) -> String {
    let Ok(then) = timestamp.parse::<jiff::Timestamp>() else {
        return timestamp.to_owned();
    };
    // An age is measured against the wall clock, as kubectl measures it.
    #[allow(clippy::disallowed_methods)]
    let secs = jiff::Timestamp::now()
        .as_second()
        .saturating_sub(then.as_second())
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
