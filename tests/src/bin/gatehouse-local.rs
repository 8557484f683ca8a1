//! `gatehouse-local`: the whole system on one machine, for a first look (the README's first command,
//! through `examples/quickstart.sh`). A private kube-apiserver with the CRDs, the operator and the token
//! server on SQLite as local processes, `examples/` applied, and a working token request printed.
//!
//! It runs until Ctrl-C; `--exit` stops after the demonstration (CI uses that).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use gatehouse_crds::OAuthClient;
use gatehouse_tests::{
    ControlPlane, repo_root,
    stack::{OperatedServer, Proc, eventually, start_operated_server},
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::Value;

/// Runs Gatehouse locally on its embedded default (SQLite) against a private control plane.
#[derive(Parser, Debug)]
#[command(name = "gatehouse-local")]
struct Args {
    /// Port of the token server's public listener (the admin API listens on the next port).
    #[arg(long, env = "GATEHOUSE_LOCAL_PORT", default_value_t = 8080)]
    port: u16,
    /// Where the token server keeps its SQLite database and the processes their logs.
    #[arg(long, env = "GATEHOUSE_LOCAL_DIR", default_value = ".gatehouse")]
    dir: std::path::PathBuf,
    /// Namespace the examples are applied to.
    #[arg(long, default_value = "demo")]
    namespace: String,
    /// Stop after printing the demonstration instead of running until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

const SYSTEM_NAMESPACE: &str = "gatehouse-system";
const TIMEOUT: Duration = Duration::from_secs(120);

fn step(started: Instant, what: &str) {
    eprintln!("[{:>5.1}s] {what}", started.elapsed().as_secs_f64());
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args {
        port,
        dir,
        namespace,
        exit,
    } = Args::parse();
    let started = Instant::now();
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let issuer = format!("http://127.0.0.1:{port}");
    let admin = format!("127.0.0.1:{}", port + 1);

    // examples/quickstart.sh builds all three binaries into the same directory.
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("no directory for the executable")?
        .to_path_buf();
    let (operator_bin, server_bin) = (
        bin_dir.join("gatehouse-operator"),
        bin_dir.join("gatehouse-server"),
    );
    for bin in [&operator_bin, &server_bin] {
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: run examples/quickstart.sh, which builds it",
            bin.display()
        );
    }

    step(
        started,
        "starting a private kube-apiserver and etcd, installing the CRDs",
    );
    let cp = ControlPlane::start().await?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::copy(cp.kubeconfig_path(), &kubeconfig)?;
    let kube = cp.client()?;
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    for ns in [SYSTEM_NAMESPACE, namespace.as_str()] {
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces.create(&PostParams::default(), &object).await?;
    }

    step(
        started,
        "starting the operator (it renders the token server's Deployment and generates its Secrets)",
    );
    let _operator = Proc::spawn(
        &operator_bin,
        &[
            format!("--namespace={SYSTEM_NAMESPACE}"),
            format!("--issuer={issuer}"),
            format!("--server-admin-url=http://{admin}"),
            "--resync-interval=30s".into(),
            format!("--metrics-listen=127.0.0.1:{}", port + 2),
        ],
        &[
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("RUST_LOG", "info,kube=warn".into()),
            ("POD_NAME", "gatehouse-local".into()),
        ],
        dir.join("operator.log"),
    )?;

    step(
        started,
        &format!(
            "starting the token server on {issuer} (SQLite at {})",
            dir.join("gatehouse.db").display()
        ),
    );
    let (_server, _admin_token) = start_operated_server(
        &kube,
        &OperatedServer {
            bin: &server_bin,
            namespace: SYSTEM_NAMESPACE,
            port,
            admin_port: port + 1,
            dir: &dir,
            log_level: "info",
            timeout: TIMEOUT,
        },
    )
    .await?;

    step(started, &format!("applying examples/ to namespace {namespace}"));
    apply_examples(&kube, &namespace).await?;

    let clients: Api<OAuthClient> = Api::namespaced(kube.clone(), &namespace);
    let ready = |c: &OAuthClient| {
        c.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    eventually("every example OAuthClient to become Ready", TIMEOUT, || async {
        let list = clients.list(&Default::default()).await.ok()?;
        list.items.iter().all(ready).then_some(())
    })
    .await?;
    let client = clients.get("orders-service").await?;
    let secret_name = client
        .status
        .as_ref()
        .and_then(|s| s.secret_name.clone())
        .context("no secret name in status")?;
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), &namespace);
    let data = secrets
        .get(&secret_name)
        .await?
        .data
        .context("the client Secret has no data")?;
    let value = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    let (client_id, client_secret, token_url) =
        (value("client_id"), value("client_secret"), value("token_url"));

    step(started, "ready\n");
    println!(
        "$ kubectl --kubeconfig {} get oauthclients -n {namespace}",
        kubeconfig.display()
    );
    println!(
        "{}\n",
        cp.get_table("gatehouse.dev/v1alpha1", "oauthclients", Some(&namespace))
            .await?
    );
    println!(
        "The credentials of orders-service are in Secret {namespace}/{secret_name}. A workload asks for a token:\n"
    );
    println!("$ curl -s -u '{client_id}:{client_secret}' -d grant_type=client_credentials {token_url}");
    let response: Value = reqwest::Client::new()
        .post(&token_url)
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .json()
        .await?;
    println!("{}\n", serde_json::to_string_pretty(&response)?);
    if let Some(jwt) = response["access_token"].as_str() {
        use base64::Engine as _;
        if let Some(claims) = jwt.split('.').nth(1) {
            let claims: Value =
                serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims)?)?;
            println!(
                "Its claims (verify it against {issuer}/jwks, or introspect it at {issuer}/introspect):"
            );
            println!("{}\n", serde_json::to_string_pretty(&claims)?);
        }
    }
    anyhow::ensure!(
        response["access_token"].is_string(),
        "the token request failed: {response}"
    );

    println!(
        "Logs: {}/operator.log and {}/server.log. Discovery: {issuer}/.well-known/oauth-authorization-server",
        dir.display(),
        dir.display()
    );
    if exit {
        return Ok(());
    }
    println!("Running until Ctrl-C.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Server-side applies every document of every YAML file in examples/ to `namespace`.
async fn apply_examples(kube: &kube::Client, namespace: &str) -> anyhow::Result<()> {
    let mut paths: Vec<_> = std::fs::read_dir(repo_root().join("examples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    // As the platform team would: the labels the examples' ClusterOAuthPolicies select.
    let labels = serde_json::json!({"metadata": {"labels": {
        "gatehouse.dev/api-products": "inventory", "gatehouse.dev/first-party": "allowed"}}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(kube.clone())
        .patch(namespace, &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .with_context(|| format!("labelling namespace {namespace}"))?;
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)?;
            let ar = match value["kind"].as_str() {
                Some("OAuthClient") => ApiResource::erase::<OAuthClient>(&()),
                Some("OAuthPolicy") => ApiResource::erase::<gatehouse_crds::OAuthPolicy>(&()),
                Some("ClusterOAuthPolicy") => ApiResource::erase::<gatehouse_crds::ClusterOAuthPolicy>(&()),
                Some("Secret") => ApiResource::erase::<Secret>(&()),
                other => anyhow::bail!("{}: unexpected kind {other:?}", path.display()),
            };
            let cluster_scoped = value["kind"] == "ClusterOAuthPolicy";
            let object: DynamicObject = serde_json::from_value(value)?;
            let name = object
                .metadata
                .name
                .clone()
                .context("a document without a name")?;
            let api = if cluster_scoped {
                Api::<DynamicObject>::all_with(kube.clone(), &ar)
            } else {
                Api::<DynamicObject>::namespaced_with(kube.clone(), namespace, &ar)
            };
            api.patch(
                &name,
                &PatchParams::apply("gatehouse-local").force(),
                &Patch::Apply(&object),
            )
            .await
            .with_context(|| format!("applying {}", path.display()))?;
            println!(
                "applied {} {name} from {}",
                object.types.map(|t| t.kind).unwrap_or_default(),
                path.file_name().and_then(|f| f.to_str()).unwrap_or("")
            );
        }
    }
    Ok(())
}
