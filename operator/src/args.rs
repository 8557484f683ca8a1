//! Command-line flags. Every flag can also be set from the environment (`GATEHOUSE_OPERATOR_*`), which
//! is how the Helm chart fills them.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Parser;

use crate::{Config, Database, ServerConfig};

/// Reconciles OAuthClient and OAuthPolicy into Secrets and registrations on the Gatehouse token server.
#[derive(Parser, Debug)]
#[command(name = "gatehouse-operator", version)]
pub struct Args {
    /// Namespace of the bundled token server, its Secrets and the leader Lease. Defaults to the pod's
    /// namespace (POD_NAMESPACE), else gatehouse-system.
    #[arg(long, env = "GATEHOUSE_OPERATOR_NAMESPACE")]
    namespace: Option<String>,

    /// Comma-separated namespaces whose OAuthClients and OAuthPolicies are reconciled; empty means all.
    #[arg(
        long,
        env = "GATEHOUSE_OPERATOR_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    watch_namespaces: Vec<String>,

    /// Container image of the bundled token server.
    #[arg(
        long,
        env = "GATEHOUSE_OPERATOR_SERVER_IMAGE",
        default_value = "ghcr.io/gatehouse/gatehouse-server:latest"
    )]
    server_image: String,

    /// Replicas of the token server (forced to 1 with SQLite).
    #[arg(long, env = "GATEHOUSE_OPERATOR_SERVER_REPLICAS", default_value_t = 1)]
    server_replicas: i32,

    /// The token server's database: sqlite (one replica, on a PersistentVolumeClaim) or postgres.
    #[arg(long, env = "GATEHOUSE_OPERATOR_DATABASE", value_enum, default_value_t = Database::Sqlite)]
    database: Database,

    /// With --database postgres: the Secret (in --namespace) whose key `url` holds the connection URL.
    #[arg(long, env = "GATEHOUSE_OPERATOR_POSTGRES_SECRET")]
    postgres_secret: Option<String>,

    /// The token server's issuer URL. Defaults to http://gatehouse-server.<namespace>.svc:8080.
    #[arg(long, env = "GATEHOUSE_OPERATOR_ISSUER")]
    issuer: Option<String>,

    /// JWT signing algorithm of the token server: ES256, RS256 or EdDSA.
    #[arg(long, env = "GATEHOUSE_OPERATOR_SIGNING_ALG", default_value = "ES256")]
    signing_alg: String,

    /// How often the token server rotates its signing key (Go-style duration).
    #[arg(long, env = "GATEHOUSE_OPERATOR_KEY_ROTATION_PERIOD", default_value = "720h")]
    key_rotation_period: String,

    /// Base URL of the token server's admin API. Defaults to http://gatehouse-server.<namespace>.svc:8081.
    #[arg(long, env = "GATEHOUSE_OPERATOR_SERVER_ADMIN_URL")]
    server_admin_url: Option<String>,

    /// How often every client is checked against the token server without a change (e.g. 5m, 30s).
    #[arg(long, env = "GATEHOUSE_OPERATOR_RESYNC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    resync_interval: Duration,

    /// Upper bound of the retry backoff after a failed reconcile.
    #[arg(long, env = "GATEHOUSE_OPERATOR_MAX_BACKOFF", default_value = "30s", value_parser = parse_duration)]
    max_backoff: Duration,

    /// Reconciles that may run at once per controller. Unbounded, a burst of thousands of new clients
    /// started thousands of reconciles whose requests raced each other (and were retried).
    #[arg(long, env = "GATEHOUSE_OPERATOR_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,

    /// Take the `gatehouse-operator` Lease before reconciling, so that extra replicas are hot standbys.
    #[arg(long, env = "GATEHOUSE_OPERATOR_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,

    /// How long the Lease stays valid without renewal; a standby takes over after it.
    #[arg(long, env = "GATEHOUSE_OPERATOR_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,

    /// Address serving /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "GATEHOUSE_OPERATOR_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    metrics_listen: SocketAddr,

    /// End-to-end tests only: a file holding whole seconds to add to the system time, read on every
    /// clock read, so that a test can end a grace period without waiting for it. Hidden from --help.
    #[arg(long, env = "GATEHOUSE_OPERATOR_CLOCK_OFFSET_FILE", hide = true)]
    clock_offset_file: Option<PathBuf>,
}

impl Args {
    /// Connects to the cluster and runs the operator until SIGTERM or Ctrl-C.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            namespace,
            watch_namespaces,
            server_image,
            server_replicas,
            database,
            postgres_secret,
            issuer,
            signing_alg,
            key_rotation_period,
            server_admin_url,
            resync_interval,
            max_backoff,
            concurrency,
            leader_election,
            lease_duration,
            metrics_listen,
            clock_offset_file,
        } = self;
        let namespace = namespace
            .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "gatehouse-system".to_owned());
        let config = Config {
            server: ServerConfig {
                image: server_image,
                replicas: server_replicas,
                database,
                postgres_secret,
                issuer: issuer.unwrap_or_else(|| format!("http://gatehouse-server.{namespace}.svc:8080")),
                signing_alg,
                key_rotation_period,
            },
            server_admin_url: server_admin_url
                .unwrap_or_else(|| format!("http://gatehouse-server.{namespace}.svc:8081")),
            watch_namespaces: watch_namespaces
                .into_iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            namespace,
            resync_interval,
            max_backoff,
            concurrency,
            leader_election,
            lease_duration,
            identity: crate::leader::default_identity(),
            metrics_listen: Some(metrics_listen),
            clock_offset_file,
        };
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API")?;
        crate::run(config, client, shutdown_signal()).await?;
        Ok(())
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    gatehouse_crds::Duration::new(text)
        .as_secs()
        .map(Duration::from_secs)
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
