//! A private control plane: etcd and kube-apiserver on free loopback ports, in a temporary directory.
//!
//! The processes are started through a small shell watchdog that kills them when the test process
//! exits, however it exits, so a control plane shared through [`ControlPlane::shared`] (which is never
//! dropped) does not outlive its test binary.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use k8s_openapi::{
    api::{
        core::v1::Namespace,
        rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config,
    api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, Patch, PatchParams, PostParams},
    config::AuthInfo,
};
use serde::Deserialize as _;

/// The bearer token of the test cluster's administrator (group `system:masters`).
pub const ADMIN_TOKEN: &str = "gatehouse-test-admin-token";

/// A running etcd + kube-apiserver pair. Dropping it stops both and removes their files.
pub struct ControlPlane {
    url: String,
    dir: tempfile::TempDir,
    processes: Vec<Child>,
}

static SHARED: tokio::sync::OnceCell<Arc<ControlPlane>> = tokio::sync::OnceCell::const_new();

impl ControlPlane {
    /// One control plane per test process, started on first use. Tests share it and isolate
    /// themselves with [`ControlPlane::namespace`].
    pub async fn shared() -> anyhow::Result<Arc<ControlPlane>> {
        SHARED
            .get_or_try_init(|| async { Self::start().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// Starts a control plane of its own, waits for `/readyz`, installs the Gatehouse CRDs and the
    /// chart's admission policies, and waits until the API server enforces them.
    pub async fn start() -> anyhow::Result<ControlPlane> {
        Self::start_with(true).await
    }

    /// A control plane with the CRDs but without the chart's admission policies: a cluster where the
    /// operator alone stands between a team and another namespace's client_ids.
    pub async fn start_without_admission_policies() -> anyhow::Result<ControlPlane> {
        Self::start_with(false).await
    }

    async fn start_with(admission_policies: bool) -> anyhow::Result<ControlPlane> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new().prefix("gatehouse-cp-").tempdir()?;
        let path = dir.path();
        let (etcd_port, peer_port, api_port) = (crate::free_port(), crate::free_port(), crate::free_port());

        let (sa_private, sa_public) = ec_key_pair_pem()?;
        let sa_key = path.join("sa.key");
        std::fs::write(&sa_key, sa_private)?;
        let sa_pub = path.join("sa.pub");
        std::fs::write(&sa_pub, sa_public)?;
        let tokens = path.join("tokens.csv");
        std::fs::write(&tokens, format!("{ADMIN_TOKEN},admin,admin,system:masters\n"))?;

        let mut processes = Vec::new();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        processes.push(spawn_watched(
            &bin.join("etcd"),
            &[
                "--name=default".into(),
                format!("--data-dir={}", path.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=error".into(),
            ],
            &path.join("etcd.log"),
            path,
        )?);
        processes.push(spawn_watched(
            &bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", path.join("certs").display()),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                format!("--service-account-key-file={}", sa_pub.display()),
                format!("--service-account-signing-key-file={}", sa_key.display()),
                format!("--token-auth-file={}", tokens.display()),
                "--authorization-mode=RBAC".into(),
                "--allow-privileged=true".into(),
                "--disable-admission-plugins=ServiceAccount".into(),
                "--enable-priority-and-fairness=false".into(),
                "--v=0".into(),
            ],
            &path.join("kube-apiserver.log"),
            path,
        )?);

        let started = std::time::Instant::now();
        let mut cp = ControlPlane {
            url: format!("https://127.0.0.1:{api_port}"),
            dir,
            processes,
        };
        cp.write_kubeconfig()?;
        cp.wait_ready().await?;
        let ready = started.elapsed();
        cp.install_crds().await?;
        if admission_policies {
            cp.install_admission_policies().await?;
        }
        eprintln!(
            "control plane at {} ready in {:.1} s, CRDs (and admission policies) in force after {:.1} s",
            cp.url,
            ready.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        Ok(cp)
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig file for this control plane, for kubectl, helm or an operator process.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A new client. Each test makes its own: a client belongs to the Tokio runtime it was made on.
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut config = Config::new(self.url.parse()?);
        config.accept_invalid_certs = true;
        config.auth_info = AuthInfo {
            token: Some(ADMIN_TOKEN.to_owned().into()),
            ..Default::default()
        };
        config.default_namespace = "default".into();
        Ok(Client::try_from(config)?)
    }

    /// A client that acts as `user`, a member of one application team: the user holds only a Role in
    /// `namespace` that reads and writes OAuthClients, OAuthPolicies and Secrets there (created here,
    /// bound through a RoleBinding). Requests go through impersonation, so the API server authorizes
    /// them exactly as it would that user's own.
    pub async fn team_client(&self, namespace: &str, user: &str) -> anyhow::Result<Client> {
        let admin = self.client()?;
        let rule = |groups: &[&str], resources: &[&str]| PolicyRule {
            api_groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
            resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
            verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
                .map(str::to_owned)
                .to_vec(),
            ..Default::default()
        };
        let role = Role {
            metadata: ObjectMeta {
                name: Some(format!("team-{user}")),
                namespace: Some(namespace.to_owned()),
                ..Default::default()
            },
            rules: Some(vec![
                rule(&[gatehouse_crds::GROUP], &["oauthclients", "oauthpolicies"]),
                rule(&[""], &["secrets"]),
            ]),
        };
        let binding = RoleBinding {
            metadata: role.metadata.clone(),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: format!("team-{user}"),
            },
            subjects: Some(vec![Subject {
                kind: "User".into(),
                name: user.to_owned(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                ..Default::default()
            }]),
        };
        let apply = PatchParams::apply("gatehouse-tests").force();
        let name = format!("team-{user}");
        Api::<Role>::namespaced(admin.clone(), namespace)
            .patch(&name, &apply, &Patch::Apply(&role))
            .await?;
        Api::<RoleBinding>::namespaced(admin, namespace)
            .patch(&name, &apply, &Patch::Apply(&binding))
            .await?;

        let mut config = Config::new(self.url.parse()?);
        config.accept_invalid_certs = true;
        config.auth_info = AuthInfo {
            token: Some(ADMIN_TOKEN.to_owned().into()),
            impersonate: Some(user.to_owned()),
            impersonate_groups: Some(vec!["system:authenticated".into()]),
            ..Default::default()
        };
        config.default_namespace = namespace.to_owned();
        Ok(Client::try_from(config)?)
    }

    /// Creates a namespace named `<prefix>-<random>` and returns its name.
    pub async fn namespace(&self, prefix: &str) -> anyhow::Result<String> {
        let name = format!("{prefix}-{}", crate::suffix());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.client()?)
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(name)
    }

    /// The API server's log, for diagnosing a failed test.
    pub fn apiserver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kube-apiserver.log")).unwrap_or_default()
    }

    fn write_kubeconfig(&self) -> anyhow::Result<()> {
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gatehouse-test\n  cluster:\n    server: {url}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\ncontexts:\n- \
             name: gatehouse-test\n  context:\n    cluster: gatehouse-test\n    user: admin\n    namespace: \
             default\ncurrent-context: gatehouse-test\n",
            url = self.url
        );
        std::fs::write(self.kubeconfig_path(), kubeconfig)?;
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let ready = http
                .get(format!("{}/readyz", self.url))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            for (name, p) in ["etcd", "kube-apiserver"].iter().zip(self.processes.iter_mut()) {
                if let Some(status) = p.try_wait()? {
                    let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                        .unwrap_or_default();
                    bail!(
                        "{name} exited ({status}) before the control plane was ready; log tail:\n{}",
                        tail(&log, 20)
                    );
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "kube-apiserver not ready after 120 s; log tail:\n{}",
                    tail(&self.apiserver_log(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn install_crds(&self) -> anyhow::Result<()> {
        let api = Api::<CustomResourceDefinition>::all(self.client()?);
        let dir = crate::repo_root().join("crds/manifests");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(&path)?)
                    .with_context(|| format!("parsing {}", path.display()))?;
                let name = crd.metadata.name.clone().context("CRD without a name")?;
                api.patch(
                    &name,
                    &PatchParams::apply("gatehouse-tests").force(),
                    &Patch::Apply(&crd),
                )
                .await
                .with_context(|| format!("installing {}", path.display()))?;
                names.push(name);
            }
        }
        for name in names {
            let established = kube::runtime::wait::conditions::is_crd_established();
            tokio::time::timeout(
                Duration::from_secs(30),
                kube::runtime::wait::await_condition(api.clone(), &name, established),
            )
            .await
            .with_context(|| format!("CRD {name} not established"))??;
        }
        Ok(())
    }
}

impl ControlPlane {
    /// Applies the chart's admission policies (`charts/gatehouse/files/*.yaml`, the plain YAML the chart
    /// includes as it is), then waits until a dry-run create of an OAuthClient holding another
    /// namespace's client_id is refused: the API server loads new policies asynchronously.
    async fn install_admission_policies(&self) -> anyhow::Result<()> {
        let client = self.client()?;
        let dir = crate::repo_root().join("charts/gatehouse/files");
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let object =
                    DynamicObject::deserialize(doc).with_context(|| format!("parsing {}", path.display()))?;
                let types = object
                    .types
                    .clone()
                    .context("a document without apiVersion and kind")?;
                let (group, version) = types
                    .api_version
                    .rsplit_once('/')
                    .unwrap_or(("", &types.api_version));
                let gvk = GroupVersionKind::gvk(group, version, &types.kind);
                let resource = ApiResource::from_gvk(&gvk);
                let name = object
                    .metadata
                    .name
                    .clone()
                    .context("a document without a name")?;
                Api::<DynamicObject>::all_with(client.clone(), &resource)
                    .patch(
                        &name,
                        &PatchParams::apply("gatehouse-tests").force(),
                        &Patch::Apply(&object),
                    )
                    .await
                    .with_context(|| format!("applying {} from {}", name, path.display()))?;
            }
        }

        let probe: gatehouse_crds::OAuthClient = serde_json::from_value(serde_json::json!({
            "apiVersion": "gatehouse.dev/v1alpha1",
            "kind": "OAuthClient",
            "metadata": {"name": "admission-probe", "namespace": "default"},
            "spec": {"clientId": "probe.another-namespace", "grantTypes": ["client_credentials"]},
        }))?;
        let api = Api::<gatehouse_crds::OAuthClient>::namespaced(client, "default");
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match api.create(&dry_run, &probe).await {
                Err(kube::Error::Api(status)) if status.message.contains("spec.clientId") => return Ok(()),
                Err(e) => return Err(e).context("dry-run create of the admission probe"),
                Ok(_) if tokio::time::Instant::now() > deadline => {
                    bail!("the client-id admission policy was not enforced after 60 s")
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the watchdog shell traps it and stops the program it guards.
        for p in self.processes.iter_mut().rev() {
            let _ = Command::new("kill").arg("-TERM").arg(p.id().to_string()).status();
            let _ = p.wait();
        }
    }
}

/// Where the control-plane binaries are: `GATEHOUSE_CONTROL_PLANE_BIN`, or whatever
/// `tests/control-plane/build.sh` prints (it builds them on first use and caches them).
fn binaries() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("GATEHOUSE_CONTROL_PLANE_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = crate::repo_root().join("tests/control-plane/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("{} failed", script.display());
    }
    let stdout = String::from_utf8(out.stdout)?;
    let dir = stdout.lines().last().context("build.sh printed nothing")?;
    Ok(PathBuf::from(dir.trim()))
}

/// Starts `program` under a shell watchdog: when this test process goes away, the watchdog kills the
/// program, so no apiserver or etcd outlives the tests.
fn spawn_watched(program: &Path, args: &[String], log: &Path, cwd: &Path) -> anyhow::Result<Child> {
    // `stop` asks politely, then insists: a kube-apiserver whose etcd is already gone (both watchdogs
    // fire together when the test process exits) can hang in its shutdown for good, and leaked that
    // way, each one kept its memory (1.4 GiB after a 10,000-client run) until someone noticed.
    let script = r#"
        parent=$1; shift
        "$@" &
        child=$!
        stop() {
            kill $child 2>/dev/null
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 $child 2>/dev/null || return 0; sleep 1; done
            kill -9 $child 2>/dev/null
        }
        trap 'stop; wait $child; exit 0' TERM INT
        while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
        stop
        wait $child
    "#;
    let log = std::fs::File::create(log)?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(child)
}

/// A fresh P-256 key pair for service-account tokens: the private key in PKCS#8 PEM and the public key
/// in SubjectPublicKeyInfo PEM (kube-apiserver reads public keys only from the latter).
fn ec_key_pair_pem() -> anyhow::Result<(String, String)> {
    use aws_lc_rs::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
    };
    // DER prefix of a SubjectPublicKeyInfo for id-ecPublicKey on prime256v1, before the 65-byte point.
    const P256_SPKI_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("bad PKCS#8"))?;
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    Ok((pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", &spki)))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
