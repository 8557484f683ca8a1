//! The operator end to end: the `gatehouse-operator` binary against the real kube-apiserver, with the
//! `gatehouse-server` binary as a local process configured the way the operator configures it (its
//! admin token and key-encryption key are read from the Secrets the operator generated).
//!
//! Each test has its own namespace, operator process(es) and server process; durations are short
//! (resync 2 s) and every wait is a poll with a timeout. A grace period is not waited out: the test
//! moves the operator's clock past it ([`World::advance_operator_clock`]).

mod secrets;

use std::{collections::BTreeMap, future::Future, path::PathBuf, sync::Arc, time::Duration};

use gatehouse_crds::{ClusterOAuthPolicy, OAuthClient, OAuthPolicy};
use gatehouse_tests::{
    ControlPlane, free_port, repo_root, run_helm,
    stack::{self, OperatedServer, Proc, start_operated_server},
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service},
    events::v1::Event as KubeEvent,
};
use kube::{
    Api, Resource,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams},
};
use serde::Deserialize as _;
use serde_json::{Value, json};

mod ceiling;
mod ownership;
mod subjects;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Builds the two binaries once per test process (a no-op when they are up to date).
async fn binaries() -> (PathBuf, PathBuf) {
    static BUILT: tokio::sync::OnceCell<(PathBuf, PathBuf)> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async { stack::build_binaries().expect("build the binaries") })
        .await
        .clone()
}

/// Polls `f` until it returns `Some`, or fails the test after `timeout` naming `what`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    stack::eventually(what, timeout, f).await.unwrap()
}

/// One test's world: a namespace holding the operator's objects and the clients, a server process.
struct World {
    cp: Arc<ControlPlane>,
    kube: kube::Client,
    /// Where the clients are.
    ns: String,
    /// Where the operator keeps the token server's objects and its Lease: `ns`, unless a test moves it.
    operator_ns: String,
    dir: tempfile::TempDir,
    public_port: u16,
    admin_port: u16,
    http: reqwest::Client,
    operators: Vec<Proc>,
    server: Option<Proc>,
    /// The admin API's bearer token, once the server runs.
    admin_token: String,
}

impl World {
    async fn new(prefix: &str) -> World {
        World::on(ControlPlane::shared().await.expect("control plane"), prefix).await
    }

    /// A world on control plane `cp`.
    async fn on(cp: Arc<ControlPlane>, prefix: &str) -> World {
        let ns = cp.namespace(prefix).await.unwrap();
        World {
            kube: cp.client().unwrap(),
            cp,
            operator_ns: ns.clone(),
            ns,
            dir: tempfile::Builder::new()
                .prefix("gatehouse-op-e2e-")
                .tempdir()
                .unwrap(),
            public_port: free_port(),
            admin_port: free_port(),
            http: reqwest::Client::new(),
            operators: Vec::new(),
            server: None,
            admin_token: String::new(),
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.public_port)
    }

    /// Starts an operator process; returns its metrics port.
    async fn start_operator(&mut self, leader_election: bool) -> u16 {
        let ns = self.ns.clone();
        self.start_operator_watching(leader_election, &[ns]).await
    }

    /// Starts an operator process that reconciles the clients of `namespaces`; returns its metrics port.
    async fn start_operator_watching(&mut self, leader_election: bool, namespaces: &[String]) -> u16 {
        let (operator, _) = binaries().await;
        let metrics = free_port();
        let n = self.operators.len();
        let args = vec![
            format!("--namespace={}", self.operator_ns),
            format!("--watch-namespaces={}", namespaces.join(",")),
            format!("--issuer={}", self.issuer()),
            format!("--server-admin-url=http://127.0.0.1:{}", self.admin_port),
            "--resync-interval=2s".into(),
            "--max-backoff=2s".into(),
            format!("--leader-election={leader_election}"),
            "--lease-duration=3s".into(),
            format!("--metrics-listen=127.0.0.1:{metrics}"),
            format!("--clock-offset-file={}", self.clock_offset_file().display()),
        ];
        let envs = [
            ("KUBECONFIG", self.cp.kubeconfig_path().display().to_string()),
            ("RUST_LOG", "info,kube=warn".to_owned()),
            ("POD_NAME", format!("operator-{n}")),
        ];
        let log = self.dir.path().join(format!("operator-{n}.log"));
        self.operators
            .push(Proc::spawn(&operator, &args, &envs, log).unwrap());
        metrics
    }

    /// What `helm template charts/gatehouse` renders for release `release` in the operator's namespace,
    /// with this world's issuer and `values` (each `key=value`, as `--set` takes it).
    fn render_chart(&self, release: &str, values: &[String]) -> Vec<Value> {
        let issuer = format!("server.issuer={}", self.issuer());
        let mut args = vec![
            "template",
            release,
            "charts/gatehouse",
            "--namespace",
            &self.operator_ns,
        ];
        for value in std::iter::once(&issuer).chain(values) {
            args.extend(["--set", value.as_str()]);
        }
        let out = run_helm(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rendered = String::from_utf8(out.stdout).unwrap();
        serde_yaml::Deserializer::from_str(&rendered)
            .map(|doc| Value::deserialize(doc).unwrap())
            .filter(|doc| !doc.is_null())
            .collect()
    }

    /// The operator container's environment exactly as the chart (rendered into `docs`) sets it, with
    /// the Downward API fields resolved as the kubelet would.
    fn chart_env(&self, docs: &[Value], pod_name: &str) -> Vec<(String, String)> {
        let deployment = docs
            .iter()
            .find(|doc| doc["kind"] == "Deployment")
            .expect("the chart renders the operator Deployment");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|var| {
                let name = var["name"].as_str().unwrap().to_owned();
                let value = match (&var["value"], var["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
                    (Value::String(v), _) => v.clone(),
                    (_, Some("metadata.namespace")) => self.operator_ns.clone(),
                    (_, Some("metadata.name")) => pod_name.to_owned(),
                    _ => panic!("the chart sets {name} from a source this test cannot resolve: {var}"),
                };
                (name, value)
            })
            .collect()
    }

    /// Starts an operator process configured exactly as the chart configures the Deployment, watching
    /// this world's namespace.
    async fn start_operator_as_charted(&mut self) {
        let docs = self.render_chart("gh", &[format!("operator.watchNamespaces={{{}}}", self.ns)]);
        let kubeconfig = self.cp.kubeconfig_path();
        self.start_charted_operator(&docs, &kubeconfig).await;
    }

    /// Starts an operator process configured exactly as the chart (rendered into `docs`) configures the
    /// Deployment. Only what cannot hold outside a cluster is replaced: the kubeconfig (`kubeconfig`
    /// instead of the in-cluster service account), the server's admin URL (127.0.0.1 instead of the
    /// Service's DNS name) and the metrics port (a free one, as tests run side by side).
    async fn start_charted_operator(&mut self, docs: &[Value], kubeconfig: &std::path::Path) {
        let (operator, _) = binaries().await;
        let n = self.operators.len();
        let pod_name = format!("gatehouse-operator-{n}");
        let overrides = [
            ("KUBECONFIG", kubeconfig.display().to_string()),
            (
                "GATEHOUSE_OPERATOR_SERVER_ADMIN_URL",
                format!("http://127.0.0.1:{}", self.admin_port),
            ),
            (
                "GATEHOUSE_OPERATOR_METRICS_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
        ];
        let mut env = self.chart_env(docs, &pod_name);
        assert!(
            env.iter()
                .any(|(k, v)| k == "GATEHOUSE_OPERATOR_ISSUER" && *v == self.issuer()),
            "{env:?}"
        );
        env.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        let mut envs: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        envs.extend(overrides.iter().map(|(k, v)| (*k, v.clone())));
        let log = self.dir.path().join(format!("operator-{n}.log"));
        self.operators
            .push(Proc::spawn(&operator, &[], &envs, log).unwrap());
    }

    /// The file the operators started by [`World::start_operator`] read their clock offset from.
    fn clock_offset_file(&self) -> PathBuf {
        self.dir.path().join("operator-clock-offset")
    }

    /// Moves the clock of the operators started by [`World::start_operator`] `by` into the future (the
    /// token server keeps the real time).
    fn advance_operator_clock(&self, by: Duration) {
        std::fs::write(self.clock_offset_file(), by.as_secs().to_string()).unwrap();
    }

    /// The value of `key` in Secret `name` of the test namespace, once it exists.
    async fn secret_value(&self, name: &str, key: &str) -> String {
        let api: Api<Secret> = Api::namespaced(self.kube.clone(), &self.ns);
        eventually(&format!("Secret {name}"), TIMEOUT, || async {
            let s = api.get_opt(name).await.ok()??;
            let v = s.data?.get(key)?.0.clone();
            String::from_utf8(v).ok()
        })
        .await
    }

    /// Starts the token server as the operator would run it: the admin token and KEK come from the
    /// Secrets the operator generated.
    async fn start_server(&mut self) {
        let (_, server) = binaries().await;
        let (server, admin_token) = start_operated_server(
            &self.kube,
            &OperatedServer {
                bin: &server,
                namespace: &self.operator_ns,
                port: self.public_port,
                admin_port: self.admin_port,
                dir: self.dir.path(),
                log_level: "warn",
                timeout: TIMEOUT,
            },
        )
        .await
        .unwrap();
        self.server = Some(server);
        self.admin_token = admin_token;
    }

    fn stop_server(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill();
        }
    }

    fn wipe_database(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.dir.path().join(format!("gatehouse.db{suffix}")));
        }
    }

    /// Server-side applies a manifest (JSON) in the test namespace.
    async fn apply(&self, object: Value) {
        apply_in(&self.kube, &self.ns, object).await;
    }

    fn clients(&self) -> Api<OAuthClient> {
        Api::namespaced(self.kube.clone(), &self.ns)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.kube.clone(), &self.ns)
    }

    /// The (status, reason) of condition `type_` of client `name`.
    async fn condition(&self, name: &str, type_: &str) -> Option<(String, String)> {
        let c = self.clients().get_opt(name).await.ok()??;
        let cond = c.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
        Some((cond.status, cond.reason))
    }

    /// Waits until condition `type_` of client `name` has `status` and `reason`.
    async fn wait_condition(&self, name: &str, type_: &str, status: &str, reason: &str) {
        let want = (status.to_owned(), reason.to_owned());
        let what = format!("{name} {type_}={status} reason={reason}");
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let got = self.condition(name, type_).await;
            if got.as_ref() == Some(&want) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; last {got:?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn wait_ready(&self, name: &str) {
        self.wait_condition(name, "Ready", "True", "Reconciled").await;
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, o) in self.operators.iter().enumerate() {
            let log = o.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            out.push_str(&format!(
                "--- operator {i} (last lines, newest first)\n{}\n",
                tail.join("\n")
            ));
        }
        if let Some(s) = &self.server {
            out.push_str(&format!("--- server\n{}\n", s.log()));
        }
        out
    }

    /// All data of Secret `name`, as strings.
    async fn secret_data(&self, name: &str) -> BTreeMap<String, String> {
        let s = self.secrets().get(name).await.unwrap();
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect()
    }

    /// POSTs a client_credentials token request with HTTP Basic; returns the status and JSON body.
    async fn token(&self, client_id: &str, secret: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/token", self.issuer()))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Validates an access token as a resource server does with a JWT library: the key from
    /// `/jwks` by `kid`, the signature, `typ` (RFC 9068 `at+jwt`), `iss`, `aud` and `exp`.
    async fn validate_with_jwks(&self, token: &str, audience: &str) -> Value {
        use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
        let jwks: JwkSet = self
            .http
            .get(format!("{}/jwks", self.issuer()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let header = decode_header(token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("the token's kid is in /jwks");
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.issuer()]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap_or_else(|e| panic!("the token does not validate against /jwks: {e}"))
            .claims
    }

    /// RFC 7662 introspection with a client's credentials.
    async fn introspect(&self, token: &str, client_id: &str, secret: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/introspect", self.issuer()))
            .basic_auth(client_id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Waits until a token request with these credentials answers `status`.
    async fn wait_token(&self, client_id: &str, secret: &str, status: u16) -> Value {
        let what = format!("a token request of {client_id} to answer {status}");
        eventually(&what, TIMEOUT, || async {
            let (got, body) = self.token(client_id, secret).await;
            (got == status).then_some(body)
        })
        .await
    }
}

/// Server-side applies a manifest (JSON) in namespace `ns` (a ClusterOAuthPolicy: cluster-wide) as
/// `kube`'s user.
async fn apply_in(kube: &kube::Client, ns: &str, object: Value) {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let ar = match kind.as_str() {
        "OAuthClient" => ApiResource::erase::<OAuthClient>(&()),
        "OAuthPolicy" => ApiResource::erase::<OAuthPolicy>(&()),
        "ClusterOAuthPolicy" => ApiResource::erase::<ClusterOAuthPolicy>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        other => panic!("unexpected kind {other}"),
    };
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let api = if kind == "ClusterOAuthPolicy" {
        Api::<DynamicObject>::all_with(kube.clone(), &ar)
    } else {
        Api::<DynamicObject>::namespaced_with(kube.clone(), ns, &ar)
    };
    api.patch(
        &name,
        &PatchParams::apply("e2e-test").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
}

/// The key names of a client's generated Secret: the documented defaults, or the spec's overrides.
fn key_names(client: &OAuthClient) -> BTreeMap<&'static str, String> {
    let keys = client
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.keys.clone())
        .unwrap_or_default();
    [
        ("client_id", keys.client_id),
        ("client_secret", keys.client_secret),
        ("issuer", keys.issuer),
        ("scope", keys.scope),
        ("token_url", keys.token_url),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.unwrap_or_else(|| k.to_owned())))
    .collect()
}

fn client_manifest(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthClient", "metadata": {"name": name}, "spec": spec})
}

fn machine_client(name: &str) -> Value {
    client_manifest(
        name,
        json!({"grantTypes": ["client_credentials"], "scopes": ["read"]}),
    )
}

/// Reads `examples/*.yaml` as JSON documents.
fn examples() -> Vec<Value> {
    let dir = repo_root().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

#[tokio::test]
async fn the_examples_become_ready_with_documented_secrets_and_issue_tokens() {
    let mut w = World::new("op-happy").await;
    w.start_operator_as_charted().await;
    w.start_server().await;
    // The platform team's side: the chart's default ceiling (limited to this test's namespace, as the
    // control plane is shared), and the labels the examples' ClusterOAuthPolicies select.
    let only_here = format!(
        "clusterPolicy.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={}",
        w.ns
    );
    let default_name = format!("gatehouse-default-{}", w.ns);
    let charted = w.render_chart("gh", &[only_here, format!("clusterPolicy.name={default_name}")]);
    let default_policy = charted
        .iter()
        .find(|d| d["kind"] == "ClusterOAuthPolicy")
        .expect("the chart renders a default ClusterOAuthPolicy")
        .clone();
    w.apply(default_policy).await;
    let labels = json!({"metadata": {"labels": {
        "gatehouse.dev/api-products": "inventory", "gatehouse.dev/first-party": "allowed"}}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(w.kube.clone())
        .patch(&w.ns, &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    let docs = examples();
    for doc in &docs {
        w.apply(doc.clone()).await;
    }
    let clients: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "OAuthClient").collect();
    assert!(!clients.is_empty(), "examples/ holds no OAuthClient");
    for doc in &clients {
        let name = doc["metadata"]["name"].as_str().unwrap();
        w.wait_ready(name).await;
        let client = w.clients().get(name).await.unwrap();
        let status = client.status.clone().unwrap();
        assert_eq!(status.client_id.as_deref(), Some(client.client_id().as_str()));
        for type_ in ["SecretSynced", "Registered"] {
            assert_eq!(
                w.condition(name, type_).await,
                Some(("True".into(), "Reconciled".into())),
                "{name} {type_}"
            );
        }
        if client.spec.existing_secret_ref.is_some() {
            continue;
        }
        let secret = w.secrets().get(&client.secret_name()).await.unwrap();
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("OAuthClient", name));
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.uid, client.meta().uid.clone().unwrap());
        let data = w.secret_data(&client.secret_name()).await;
        let k = key_names(&client);
        let mut expected = vec![
            k["client_id"].clone(),
            k["issuer"].clone(),
            k["scope"].clone(),
            k["token_url"].clone(),
        ];
        if !client.spec.is_public() {
            expected.push(k["client_secret"].clone());
        }
        expected.sort();
        let keys: Vec<String> = data.keys().cloned().collect();
        assert_eq!(keys, expected, "{name}");
        assert_eq!(data[&k["client_id"]], client.client_id());
        assert_eq!(data[&k["issuer"]], w.issuer());
        assert_eq!(data[&k["token_url"]], format!("{}/token", w.issuer()));
        let effective = status.effective.unwrap();
        assert_eq!(data[&k["scope"]], effective.default_scopes.join(" "));
        if effective
            .grant_types
            .iter()
            .any(|g| g.as_str() == "client_credentials")
        {
            let body = w
                .wait_token(&data[&k["client_id"]], &data[&k["client_secret"]], 200)
                .await;
            assert_eq!(body["token_type"], "Bearer", "{body}");
            assert_eq!(body["expires_in"], effective.access_token_ttl_seconds, "{body}");
            // The workload's resource server accepts it, through the JWKS and through introspection.
            let token = body["access_token"].as_str().unwrap();
            let audience = effective
                .audience
                .first()
                .cloned()
                .unwrap_or_else(|| client.client_id());
            let claims = w.validate_with_jwks(token, &audience).await;
            assert_eq!(claims["client_id"], client.client_id(), "{claims}");
            // No scope granted (the example asks for one nothing publishes): no `scope` claim.
            let scope = (!effective.default_scopes.is_empty()).then(|| effective.default_scopes.join(" "));
            assert_eq!(
                claims.get("scope").and_then(Value::as_str),
                scope.as_deref(),
                "{claims}"
            );
            let introspected = w
                .introspect(token, &data[&k["client_id"]], &data[&k["client_secret"]])
                .await;
            assert_eq!(introspected["active"], true, "{introspected}");
            assert_eq!(introspected["client_id"], client.client_id(), "{introspected}");
            assert_eq!(introspected["sub"], claims["sub"], "{introspected}");
            assert_eq!(introspected["exp"], claims["exp"], "{introspected}");
        }
    }
    // What the examples' ClusterOAuthPolicies allow this (labelled) namespace.
    let effective = |c: OAuthClient| c.status.unwrap().effective.unwrap();
    let orders = effective(w.clients().get("orders-service").await.unwrap());
    assert_eq!(orders.audience, ["https://inventory.example.com"]);
    assert_eq!(orders.scopes, ["inventory.read", "inventory.write"]);
    let cli = effective(w.clients().get("admin-cli").await.unwrap());
    assert_eq!(
        cli.grant_types,
        [
            gatehouse_crds::GrantType::Password,
            gatehouse_crds::GrantType::RefreshToken
        ]
    );
    assert!(cli.first_party);
    assert!(cli.denials.is_empty(), "{:?}", cli.denials);

    // The bring-your-own client authenticates with the secret from its own Secret.
    if let Some(byo) = clients
        .iter()
        .find(|d| d["spec"]["existingSecretRef"].is_object())
    {
        let name = byo["metadata"]["name"].as_str().unwrap();
        let client = w.clients().get(name).await.unwrap();
        let reference = client.spec.existing_secret_ref.clone().unwrap();
        let key = reference
            .client_secret_key
            .unwrap_or_else(|| "client_secret".into());
        let secret = w.secret_data(&reference.name).await;
        w.wait_token(&client.client_id(), &secret[&key], 200).await;
    }

    // The bundled server's objects, as rendered.
    let deployment: Deployment = Api::namespaced(w.kube.clone(), &w.ns)
        .get("gatehouse-server")
        .await
        .unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.template.spec.unwrap();
    let ports: Vec<i32> = pod.containers[0]
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [8080, 8081]);
    assert!(
        spec.template
            .metadata
            .unwrap()
            .annotations
            .unwrap()
            .contains_key("gatehouse.dev/config-hash")
    );
    let service: Service = Api::namespaced(w.kube.clone(), &w.ns)
        .get("gatehouse-server")
        .await
        .unwrap();
    let svc_ports: Vec<i32> = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(svc_ports, [8080, 8081]);
    let cm: ConfigMap = Api::namespaced(w.kube.clone(), &w.ns)
        .get("gatehouse-server")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["GATEHOUSE_ISSUER"], w.issuer());
    let pvc: PersistentVolumeClaim = Api::namespaced(w.kube.clone(), &w.ns)
        .get("gatehouse-server-data")
        .await
        .unwrap();
    assert_eq!(pvc.spec.unwrap().access_modes.unwrap(), ["ReadWriteOnce"]);
    let kek = w.secret_value("gatehouse-server-kek", "key").await;
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, kek)
            .unwrap()
            .len(),
        32
    );

    // The printer columns, as `kubectl get oauthclients` shows them.
    println!(
        "{}",
        w.cp.get_table("gatehouse.dev/v1alpha1", "oauthclients", Some(&w.ns))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn objects_of_the_bundled_server_deleted_by_hand_come_back_and_generated_secrets_stay() {
    let mut w = World::new("op-server").await;
    w.start_operator(false).await;
    let token = w.secret_value("gatehouse-server-admin-token", "token").await;
    let deployments: Api<Deployment> = Api::namespaced(w.kube.clone(), &w.ns);
    let services: Api<Service> = Api::namespaced(w.kube.clone(), &w.ns);
    eventually("the Deployment", TIMEOUT, || async {
        deployments.get_opt("gatehouse-server").await.ok()?
    })
    .await;
    let uid = deployments.get("gatehouse-server").await.unwrap().metadata.uid;
    deployments
        .delete("gatehouse-server", &DeleteParams::default())
        .await
        .unwrap();
    services
        .delete("gatehouse-server", &DeleteParams::default())
        .await
        .unwrap();
    eventually("a new Deployment", TIMEOUT, || async {
        let d = deployments.get_opt("gatehouse-server").await.ok()??;
        (d.metadata.uid != uid && d.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    eventually("the Service back", TIMEOUT, || async {
        services.get_opt("gatehouse-server").await.ok()?
    })
    .await;
    // A restart of the operator generates nothing new.
    w.operators.pop();
    w.start_operator(false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        w.secret_value("gatehouse-server-admin-token", "token").await,
        token
    );
}

#[tokio::test]
async fn a_restarted_operator_changes_no_secret_byte() {
    let mut w = World::new("op-restart").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(machine_client("steady")).await;
    w.wait_ready("steady").await;
    let before = w.secrets().get("steady-oauth").await.unwrap();
    let status_before = w.clients().get("steady").await.unwrap().status.unwrap();

    w.operators.pop();
    w.start_operator(false).await;
    // The new process is working: it makes a second client ready and resyncs the first.
    w.apply(machine_client("fresh")).await;
    w.wait_ready("fresh").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let after = w.secrets().get("steady-oauth").await.unwrap();
    assert_eq!(
        after.data, before.data,
        "the Secret's data changed across a restart"
    );
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version);
    let status_after = w.clients().get("steady").await.unwrap().status.unwrap();
    assert_eq!(status_after.secret_rotated_at, status_before.secret_rotated_at);
    let data = w.secret_data("steady-oauth").await;
    w.wait_token(&data["client_id"], &data["client_secret"], 200)
        .await;
}

#[tokio::test]
async fn an_existing_secret_ref_waits_for_its_secret_then_follows_its_changes() {
    let mut w = World::new("op-byo").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(client_manifest(
        "byo",
        json!({"grantTypes": ["client_credentials"], "existingSecretRef": {"name": "byo-creds", "clientSecretKey": "secret"}}),
    ))
    .await;
    w.wait_condition("byo", "Ready", "False", "SecretMissing").await;
    w.wait_condition("byo", "SecretSynced", "False", "SecretMissing")
        .await;
    w.wait_condition("byo", "Registered", "False", "WaitingForSecret")
        .await;
    // Strict: nothing was generated in its place.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(w.secrets().get_opt("byo-creds").await.unwrap().is_none());
    assert!(w.secrets().get_opt("byo-oauth").await.unwrap().is_none());

    let secret = |value: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "byo-creds"}, "stringData": {"secret": value}});
    w.apply(secret("first-long-random-value-0123456789")).await;
    w.wait_ready("byo").await;
    let client_id = format!("byo.{}", w.ns);
    w.wait_token(&client_id, "first-long-random-value-0123456789", 200)
        .await;

    w.apply(secret("second-long-random-value-0123456789")).await;
    w.wait_token(&client_id, "second-long-random-value-0123456789", 200)
        .await;
    w.wait_token(&client_id, "first-long-random-value-0123456789", 401)
        .await;
}

#[tokio::test]
async fn rotation_by_annotation_keeps_the_old_secret_working_through_the_grace_period_only() {
    let mut w = World::new("op-rotate").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(client_manifest(
        "rot",
        json!({"grantTypes": ["client_credentials"], "secret": {"rotation": {"period": "720h", "gracePeriod": "1h"}}}),
    ))
    .await;
    w.wait_ready("rot").await;
    let old = w.secret_data("rot-oauth").await;
    let client_id = old["client_id"].clone();
    w.wait_token(&client_id, &old["client_secret"], 200).await;

    let mut annotated = client_manifest(
        "rot",
        json!({"grantTypes": ["client_credentials"], "secret": {"rotation": {"period": "720h", "gracePeriod": "1h"}}}),
    );
    annotated["metadata"]["annotations"] = json!({"gatehouse.dev/rotate": "2026-11-27T10:00:00Z"});
    w.apply(annotated).await;
    let new = eventually("the rotated Secret", TIMEOUT, || async {
        let d = w.secret_data("rot-oauth").await;
        (d["client_secret"] != old["client_secret"]).then_some(d)
    })
    .await;
    assert_eq!(new["previous_client_secret"], old["client_secret"]);
    assert_eq!(new["client_id"], client_id, "the client_id never changes");
    // During the grace period both work.
    w.wait_token(&client_id, &new["client_secret"], 200).await;
    assert_eq!(w.token(&client_id, &old["client_secret"]).await.0, 200);
    let status = w.clients().get("rot").await.unwrap().status.unwrap();
    assert_eq!(status.rotate_annotation.as_deref(), Some("2026-11-27T10:00:00Z"));
    assert!(status.secret_rotated_at.is_some() && status.next_rotation_at.is_some());

    // After it, only the new one; the previous key leaves the Secret. The operator's clock passes the
    // end of the grace period, and it registers the new digest alone: the server, whose clock still
    // reads the grace period, stops accepting the old secret because it is no longer registered.
    w.advance_operator_clock(Duration::from_secs(2 * 3600));
    w.wait_token(&client_id, &old["client_secret"], 401).await;
    assert_eq!(w.token(&client_id, &new["client_secret"]).await.0, 200);
    eventually("previous_client_secret to leave the Secret", TIMEOUT, || async {
        (!w.secret_data("rot-oauth")
            .await
            .contains_key("previous_client_secret"))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_deleted_generated_secret_is_a_rotation_and_the_client_id_stays() {
    let mut w = World::new("op-lost").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(client_manifest(
        "lost",
        json!({"grantTypes": ["client_credentials"], "secret": {"rotation": {"period": "720h", "gracePeriod": "1h"}}}),
    ))
    .await;
    w.wait_ready("lost").await;
    let old = w.secret_data("lost-oauth").await;
    w.secrets()
        .delete("lost-oauth", &DeleteParams::default())
        .await
        .unwrap();
    let new = eventually("a new Secret", TIMEOUT, || async {
        let s = w.secrets().get_opt("lost-oauth").await.ok()??;
        let v = String::from_utf8(s.data?.get("client_secret")?.0.clone()).ok()?;
        (v != old["client_secret"]).then_some(v)
    })
    .await;
    let client_id = old["client_id"].clone();
    assert_eq!(w.secret_data("lost-oauth").await["client_id"], client_id);
    w.wait_token(&client_id, &new, 200).await;
    // Running pods holding the old secret keep working through the grace period, then not (the
    // operator's clock is moved past it, as in the rotation test).
    assert_eq!(w.token(&client_id, &old["client_secret"]).await.0, 200);
    w.advance_operator_clock(Duration::from_secs(2 * 3600));
    w.wait_token(&client_id, &old["client_secret"], 401).await;
    let events: Api<KubeEvent> = Api::namespaced(w.kube.clone(), &w.ns);
    let warned = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| {
            e.reason.as_deref() == Some("SecretRecreated")
                && e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("lost")
        });
    assert!(warned, "no Warning event SecretRecreated for the client");
}

#[tokio::test]
async fn a_policy_change_updates_the_effective_settings_and_the_tokens() {
    let mut w = World::new("op-policy").await;
    w.start_operator(false).await;
    w.start_server().await;
    // The namespace may publish the product's scopes.
    let ceiling = format!("publish-{}", w.ns);
    w.apply(
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "ClusterOAuthPolicy",
        "metadata": {"name": ceiling},
        "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": w.ns}},
                 "publishableScopes": ["read", "write"]}}),
    )
    .await;
    let policy = |ttl: &str| {
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthPolicy", "metadata": {"name": "product"},
               "spec": {"clientSelector": {"matchLabels": {"product": "p"}}, "accessTokenTTL": ttl,
                        "scopes": [{"name": "read"}, {"name": "write"}], "defaultScopes": ["read"]}})
    };
    w.apply(policy("1h")).await;
    let mut manifest = client_manifest(
        "pc",
        json!({"grantTypes": ["client_credentials"], "scopes": ["read", "write", "admin"]}),
    );
    manifest["metadata"]["labels"] = json!({"product": "p"});
    w.apply(manifest).await;
    w.wait_ready("pc").await;
    let status = w.clients().get("pc").await.unwrap().status.unwrap();
    let effective = status.effective.unwrap();
    assert_eq!(effective.access_token_ttl_seconds, 3600);
    assert_eq!(effective.scopes, ["read", "write"]);
    assert_eq!(effective.denied_scopes, ["admin"]);
    assert_eq!(status.applied_policies[0].name, "product");
    let data = w.secret_data("pc-oauth").await;
    let body = w
        .wait_token(&data["client_id"], &data["client_secret"], 200)
        .await;
    assert_eq!(body["expires_in"], 3600);

    w.apply(policy("5m")).await;
    eventually("effective TTL 300", TIMEOUT, || async {
        let s = w.clients().get("pc").await.ok()?.status?;
        (s.effective?.access_token_ttl_seconds == 300).then_some(())
    })
    .await;
    let body = eventually("a token with expires_in 300", TIMEOUT, || async {
        let (code, body) = w.token(&data["client_id"], &data["client_secret"]).await;
        (code == 200 && body["expires_in"] == 300).then_some(body)
    })
    .await;
    assert_eq!(body["token_type"], "Bearer");
    let policies: Api<OAuthPolicy> = Api::namespaced(w.kube.clone(), &w.ns);
    let matched = eventually("matchedClients", TIMEOUT, || async {
        let s = policies.get("product").await.ok()?.status?;
        (!s.matched_clients.is_empty()).then_some(s.matched_clients)
    })
    .await;
    assert_eq!(matched, ["pc"]);

    // A deleted policy reaches the client too, though its last watch event carries no new generation.
    policies.delete("product", &Default::default()).await.unwrap();
    eventually("no OAuthPolicy applied", TIMEOUT, || async {
        let s = w.clients().get("pc").await.ok()?.status?;
        let none = s.applied_policies.iter().all(|a| a.kind == "ClusterOAuthPolicy");
        (none && s.effective?.access_token_ttl_seconds != 300).then_some(())
    })
    .await;
    Api::<ClusterOAuthPolicy>::all(w.kube.clone())
        .delete(&ceiling, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_a_client_removes_its_registration_and_orphan_keeps_it() {
    let mut w = World::new("op-delete").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(machine_client("gone")).await;
    let mut orphan = machine_client("kept");
    orphan["spec"]["deletionPolicy"] = json!("Orphan");
    w.apply(orphan).await;
    w.wait_ready("gone").await;
    w.wait_ready("kept").await;
    let gone = w.secret_data("gone-oauth").await;
    let kept = w.secret_data("kept-oauth").await;
    w.wait_token(&gone["client_id"], &gone["client_secret"], 200)
        .await;
    w.wait_token(&kept["client_id"], &kept["client_secret"], 200)
        .await;
    let finalizers = w
        .clients()
        .get("gone")
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap();
    assert_eq!(finalizers, ["gatehouse.dev/cleanup"]);

    for name in ["gone", "kept"] {
        w.clients().delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["gone", "kept"] {
        eventually(&format!("{name} to be deleted"), TIMEOUT, || async {
            w.clients().get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    assert_eq!(w.token(&gone["client_id"], &gone["client_secret"]).await.0, 401);
    assert_eq!(w.token(&kept["client_id"], &kept["client_secret"]).await.0, 200);
}

#[tokio::test]
async fn deletion_waits_for_an_unreachable_server_and_keeps_the_finalizer() {
    let mut w = World::new("op-delete-down").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(machine_client("pending")).await;
    w.wait_ready("pending").await;
    let data = w.secret_data("pending-oauth").await;
    w.stop_server();
    w.clients()
        .delete("pending", &DeleteParams::default())
        .await
        .unwrap();
    w.wait_condition("pending", "Ready", "False", "Deleting").await;
    w.wait_condition("pending", "Registered", "False", "ServerUnavailable")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        w.clients().get_opt("pending").await.unwrap().is_some(),
        "the finalizer was dropped"
    );

    w.start_server().await;
    eventually("the client to be deleted", TIMEOUT, || async {
        w.clients().get_opt("pending").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(w.token(&data["client_id"], &data["client_secret"]).await.0, 401);
}

#[tokio::test]
async fn a_stopped_server_is_reported_and_a_wiped_one_gets_its_clients_back() {
    let mut w = World::new("op-faults").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(machine_client("sturdy")).await;
    w.wait_ready("sturdy").await;
    let data = w.secret_data("sturdy-oauth").await;

    w.stop_server();
    w.wait_condition("sturdy", "Registered", "False", "ServerUnavailable")
        .await;
    w.wait_condition("sturdy", "Ready", "False", "ServerUnavailable")
        .await;
    w.wait_condition("sturdy", "SecretSynced", "True", "Reconciled")
        .await;

    // Back with its data: recovery.
    w.start_server().await;
    w.wait_ready("sturdy").await;
    w.wait_token(&data["client_id"], &data["client_secret"], 200)
        .await;

    // Back with an empty database: re-registered within a resync, without touching the Secret.
    let before = w.secrets().get("sturdy-oauth").await.unwrap();
    w.stop_server();
    w.wipe_database();
    w.start_server().await;
    w.wait_token(&data["client_id"], &data["client_secret"], 200)
        .await;
    let after = w.secrets().get("sturdy-oauth").await.unwrap();
    assert_eq!(after.data, before.data);
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version);
}

async fn leader_holder(w: &World) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(w.kube.clone(), &w.ns);
    leases
        .get_opt("gatehouse-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

async fn reconciles(http: &reqwest::Client, port: u16) -> Option<u64> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("gatehouse_operator_reconciles_total{controller=\"oauthclient\"}"));
    Some(line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0))
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_when_it_dies() {
    let mut w = World::new("op-leader").await;
    let first = w.start_operator(true).await;
    let holder = eventually("a leader", TIMEOUT, || leader_holder(&w)).await;
    assert!(holder.starts_with("operator-0-"), "{holder}");
    let second = w.start_operator(true).await;
    w.start_server().await;
    w.apply(machine_client("led")).await;
    w.wait_ready("led").await;
    // Give the standby time to do anything it wrongly would.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(reconciles(&w.http, first).await.unwrap() > 0);
    assert_eq!(
        reconciles(&w.http, second).await,
        Some(0),
        "the standby reconciled"
    );
    assert_eq!(leader_holder(&w).await.as_deref(), Some(holder.as_str()));
    // Steady state: one client resynced every 2 s, no reconcile hot loop from our own writes.
    let c1 = reconciles(&w.http, first).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let c2 = reconciles(&w.http, first).await.unwrap();
    assert!(c2 - c1 <= 6, "{} reconciles of one idle client in 4 s", c2 - c1);

    // Kill the leader (no clean release): the standby takes over once the Lease expires.
    w.operators[0].kill();
    let next = eventually("a new leader", TIMEOUT, || async {
        leader_holder(&w).await.filter(|h| h.starts_with("operator-1-"))
    })
    .await;
    assert_ne!(next, holder);
    w.apply(machine_client("after")).await;
    w.wait_ready("after").await;
    assert!(reconciles(&w.http, second).await.unwrap() > 0);
}
