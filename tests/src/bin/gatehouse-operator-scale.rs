//! `gatehouse-operator-scale`: the operator at scale on the real control plane (issue 7), run by
//! `bench/operator-scale.sh` with release binaries.
//!
//! 1. Idle apply-to-Secret latency: one OAuthClient at a time is created, and the time until its Secret
//!    exists is taken, `--samples` times (p50, p99, max).
//! 2. For each N of `--clients`: N OAuthClients are created in a fresh namespace; the time from the
//!    first create until every one is Ready (Ready needs its Secret and its registration at the
//!    server) is taken, then the Secrets and the server's registrations are counted, the operator's
//!    and the server's peak RSS (VmHWM) are read, and the apiserver requests the operator made are
//!    counted from the apiserver's `apiserver_request_total`, minus the requests this tool made.
//!
//! The operator runs with its production defaults (resync 5 m, backoff up to 30 s, leader election on).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::TryStreamExt as _;
use gatehouse_crds::{OAuthClient, OAuthPolicy};
use gatehouse_tests::{
    ControlPlane, free_port,
    stack::{OperatedServer, Proc, start_operated_server},
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, ResourceExt as _};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(name = "gatehouse-operator-scale")]
struct Args {
    /// Directory holding the gatehouse-operator and gatehouse-server binaries.
    #[arg(long)]
    bin_dir: std::path::PathBuf,
    /// Client counts, one scale run each, in order.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    clients: Vec<usize>,
    /// Single-client apply-to-Secret samples.
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Concurrent creates.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// OAuthPolicies in each scale run's namespace, applied before the clients, each selecting every
    /// client (as a platform team's defaults would). 0 runs the clients without policies.
    #[arg(long, default_value_t = 1)]
    policies: usize,
    /// Give up on a scale run after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

const SYSTEM_NAMESPACE: &str = "gatehouse-system";

/// Requests this tool sends to the apiserver, subtracted from the apiserver's count.
static OWN_REQUESTS: AtomicU64 = AtomicU64::new(0);

fn own_request() {
    OWN_REQUESTS.fetch_add(1, Ordering::Relaxed);
}

fn machine_client(name: &str) -> anyhow::Result<OAuthClient> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "OAuthClient",
        "metadata": {"name": name},
        "spec": {"grantTypes": ["client_credentials"], "scopes": ["read"]}
    }))?)
}

fn default_policy(name: &str, priority: usize) -> anyhow::Result<OAuthPolicy> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "OAuthPolicy",
        "metadata": {"name": name},
        "spec": {
            "clientSelector": {},
            "priority": priority,
            "scopes": [{"name": "read"}, {"name": "write"}],
            "defaultScopes": ["read"],
            "audience": ["https://api.example.com"],
            "accessTokenTTL": "10m"
        }
    }))?)
}

async fn create_namespace(kube: &kube::Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(kube.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    own_request();
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

/// The apiserver's total of `apiserver_request_total` (every request it has answered).
async fn apiserver_requests(kube: &kube::Client) -> anyhow::Result<f64> {
    own_request();
    let text = kube
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Peak resident set size of a process, in MiB (`VmHWM`).
fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

fn is_ready(client: &OAuthClient) -> bool {
    client.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

struct Stack {
    _cp: ControlPlane,
    kube: kube::Client,
    operator: Proc,
    server: Proc,
    admin_url: String,
    admin_token: String,
    _dir: tempfile::TempDir,
}

async fn start(args: &Args) -> anyhow::Result<Stack> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start().await?;
    let kube = cp.client()?;
    create_namespace(&kube, SYSTEM_NAMESPACE).await?;
    let (public, admin) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{public}");
    let admin_url = format!("http://127.0.0.1:{admin}");
    let operator = Proc::spawn(
        &args.bin_dir.join("gatehouse-operator"),
        &[
            format!("--namespace={SYSTEM_NAMESPACE}"),
            format!("--issuer={issuer}"),
            format!("--server-admin-url={admin_url}"),
            format!("--metrics-listen=127.0.0.1:{}", free_port()),
        ],
        &[
            ("KUBECONFIG", cp.kubeconfig_path().display().to_string()),
            ("RUST_LOG", "warn".into()),
            ("POD_NAME", "gatehouse-operator-scale".into()),
        ],
        dir.path().join("operator.log"),
    )?;
    let (server, admin_token) = start_operated_server(
        &kube,
        &OperatedServer {
            bin: &args.bin_dir.join("gatehouse-server"),
            namespace: SYSTEM_NAMESPACE,
            port: public,
            admin_port: admin,
            dir: dir.path(),
            log_level: "warn",
            timeout: Duration::from_secs(120),
        },
    )
    .await?;
    Ok(Stack {
        _cp: cp,
        kube,
        operator,
        server,
        admin_url,
        admin_token,
        _dir: dir,
    })
}

/// One idle apply-to-Secret sample: milliseconds from the create call until it answered, until the
/// operator's finalizer was on the client, and until the Secret existed.
struct Sample {
    created: f64,
    finalized: f64,
    secret: f64,
}

/// Idle apply-to-Secret samples, sorted by the time to the Secret.
async fn single_client_latency(stack: &Stack, samples: usize) -> anyhow::Result<Vec<Sample>> {
    let ns = "single";
    create_namespace(&stack.kube, ns).await?;
    let clients: Api<OAuthClient> = Api::namespaced(stack.kube.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(stack.kube.clone(), ns);
    let ms = |started: Instant| started.elapsed().as_secs_f64() * 1000.0;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        // Idle: the operator has nothing else to do between samples.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let name = format!("single-{i}");
        let started = Instant::now();
        own_request();
        clients
            .create(&PostParams::default(), &machine_client(&name)?)
            .await?;
        let created = ms(started);
        let mut finalized = None;
        let secret = format!("{name}-oauth");
        loop {
            if finalized.is_none() {
                own_request();
                if clients
                    .get(&name)
                    .await?
                    .finalizers()
                    .iter()
                    .any(|f| f.starts_with("gatehouse.dev/"))
                {
                    finalized = Some(ms(started));
                }
            }
            own_request();
            if secrets.get_opt(&secret).await?.is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("no Secret {secret} after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let secret = ms(started);
        latencies.push(Sample {
            created,
            finalized: finalized.unwrap_or(secret),
            secret,
        });
    }
    latencies.sort_by(|a, b| a.secret.total_cmp(&b.secret));
    Ok(latencies)
}

struct ScaleRun {
    clients: usize,
    created_in: f64,
    ready_in: f64,
    secrets: usize,
    registrations: usize,
    operator_requests_per_client: f64,
    operator_peak_mib: f64,
    server_peak_mib: f64,
}

/// The number of registrations at the server, by paging through the admin API.
async fn registrations(stack: &Stack) -> anyhow::Result<usize> {
    let http = reqwest::Client::new();
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{}/admin/v1/clients?limit=1000", stack.admin_url);
        if let Some(token) = &token {
            url.push_str(&format!("&continue={token}"));
        }
        let page: serde_json::Value = http
            .get(&url)
            .bearer_auth(&stack.admin_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        count += page["items"]
            .as_array()
            .context("no items in the client list")?
            .len();
        match page["continue"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(count),
        }
    }
}

async fn scale_run(
    stack: &Stack,
    n: usize,
    policies: usize,
    concurrency: usize,
    timeout: Duration,
) -> anyhow::Result<ScaleRun> {
    let ns = format!("scale-{n}");
    create_namespace(&stack.kube, &ns).await?;
    let policy_api: Api<OAuthPolicy> = Api::namespaced(stack.kube.clone(), &ns);
    for i in 0..policies {
        own_request();
        policy_api
            .create(
                &PostParams::default(),
                &default_policy(&format!("defaults-{i}"), i)?,
            )
            .await?;
    }
    let before = apiserver_requests(&stack.kube).await?;
    let own_before = OWN_REQUESTS.load(Ordering::Relaxed);
    let clients: Api<OAuthClient> = Api::namespaced(stack.kube.clone(), &ns);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (clients, next) = (clients.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return anyhow::Ok(());
                }
                own_request();
                clients
                    .create(&PostParams::default(), &machine_client(&format!("c{i:05}"))?)
                    .await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let created_in = started.elapsed().as_secs_f64();
    // Ready is followed through one watch (a list, then changes), not by listing N objects over and
    // over: at 10,000 clients repeated lists cost the apiserver more than the operator does.
    own_request();
    own_request();
    let mut ready = std::collections::HashSet::new();
    let events = watcher::watcher(clients.clone(), watcher::Config::default()).applied_objects();
    let mut events = std::pin::pin!(events);
    let deadline = tokio::time::Instant::now() + timeout.saturating_sub(started.elapsed());
    while ready.len() < n {
        match tokio::time::timeout_at(deadline, events.try_next()).await {
            Ok(Ok(Some(client))) => {
                if is_ready(&client) {
                    ready.insert(client.name_any());
                } else {
                    ready.remove(&client.name_any());
                }
            }
            Ok(Ok(None)) => bail!("the watch of OAuthClients ended"),
            Ok(Err(e)) => bail!("watching OAuthClients: {e}"),
            Err(_) => bail!("{} of {n} Ready after {} s", ready.len(), timeout.as_secs()),
        }
    }
    let ready_in = started.elapsed().as_secs_f64();
    let after = apiserver_requests(&stack.kube).await?;
    let own = OWN_REQUESTS.load(Ordering::Relaxed) - own_before;
    let secrets: Api<Secret> = Api::namespaced(stack.kube.clone(), &ns);
    own_request();
    let secrets = secrets.list_metadata(&ListParams::default()).await?.items.len();
    Ok(ScaleRun {
        clients: n,
        created_in,
        ready_in,
        secrets,
        registrations: registrations(stack).await?,
        operator_requests_per_client: (after - before - own as f64) / n as f64,
        operator_peak_mib: peak_rss_mib(stack.operator.pid())?,
        server_peak_mib: peak_rss_mib(stack.server.pid())?,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    eprintln!("starting the control plane, the operator and the server");
    let stack = start(&args).await?;

    eprintln!("single-client apply-to-Secret, {} samples", args.samples);
    let samples = single_client_latency(&stack, args.samples).await?;
    let latencies: Vec<f64> = samples.iter().map(|s| s.secret).collect();
    println!(
        "| single-client apply-to-Secret (idle, {} samples) | ms |",
        latencies.len()
    );
    println!("|---|---:|");
    for (label, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        println!("| {label} | {:.1} |", percentile(&latencies, p));
    }
    if let Some(slowest) = samples.last() {
        println!(
            "\nThe slowest sample: the create call answered after {:.1} ms, the operator's finalizer was on \
             the client after {:.1} ms, the Secret existed after {:.1} ms.",
            slowest.created, slowest.finalized, slowest.secret
        );
    }
    println!();
    println!(
        "Each run's namespace holds {} OAuthPolicy(s) selecting every client.\n",
        args.policies
    );
    println!(
        "| clients | all created (s) | all Ready (s) | Secrets | registrations | apiserver requests by the operator per client | operator peak RSS (MiB) | server peak RSS (MiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &args.clients {
        eprintln!("creating {n} OAuthClients");
        let run = scale_run(
            &stack,
            n,
            args.policies,
            args.concurrency,
            Duration::from_secs(args.timeout),
        )
        .await?;
        println!(
            "| {} | {:.1} | {:.1} | {} | {} | {:.2} | {:.1} | {:.1} |",
            run.clients,
            run.created_in,
            run.ready_in,
            run.secrets,
            run.registrations,
            run.operator_requests_per_client,
            run.operator_peak_mib,
            run.server_peak_mib
        );
    }
    Ok(())
}
