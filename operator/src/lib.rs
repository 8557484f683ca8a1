//! The Gatehouse operator: reconciles `OAuthClient` and `OAuthPolicy` into client Secrets and
//! registrations on the token server, and keeps the bundled token server itself deployed.
//!
//! [`run`] is the whole operator; the binary's [`Args`] only turn flags into a [`Config`]. Controllers run
//! only while this replica holds the leader Lease (see [`leader`]).

pub mod admin;
mod args;
pub mod client;
pub mod clock;
pub mod cluster_policy;
pub mod conditions;
pub mod leader;
pub mod memo;
pub mod metrics;
pub mod policy;
pub mod rotation;
pub mod secret;
pub mod server_deployment;
pub mod view;

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

pub use args::Args;
use futures::FutureExt as _;
use kube::{
    Api,
    runtime::events::{Recorder, Reporter},
};
use tracing::info;

pub use crate::server_deployment::{Database, ServerConfig};
use crate::{admin::AdminClient, metrics::Metrics};

/// The field manager of every server-side apply, and the events' reporting controller.
pub const MANAGER: &str = "gatehouse-operator";

/// Everything the operator needs to know, from its flags.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespace of the bundled token server, the admin-token Secret and the leader Lease.
    pub namespace: String,
    /// Namespaces whose OAuthClients and OAuthPolicies are reconciled; empty means all.
    pub watch_namespaces: Vec<String>,
    /// How the bundled token server is deployed.
    pub server: ServerConfig,
    /// Base URL of the token server's admin API.
    pub server_admin_url: String,
    /// How often every client is checked against the server, even without a change.
    pub resync_interval: Duration,
    /// Upper bound of the retry backoff after a failed reconcile.
    pub max_backoff: Duration,
    /// Reconciles that may run at once per controller.
    pub concurrency: u16,
    /// Whether to take a Lease before reconciling.
    pub leader_election: bool,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// This replica's identity in the Lease and in Events.
    pub identity: String,
    /// Where to serve /metrics, /healthz and /readyz; `None` serves nothing.
    pub metrics_listen: Option<SocketAddr>,
    /// End-to-end tests only: a file whose whole seconds shift the operator's clock (see
    /// [`clock::OffsetClock`]). `None` runs on the system clock.
    pub clock_offset_file: Option<PathBuf>,
}

/// Errors of the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object came back from the API without a field the operator relies on.
    #[error("object has no {0}")]
    MissingField(&'static str),
    /// Listing OAuthPolicies failed.
    #[error("listing OAuthPolicies: {0}")]
    ListPolicies(#[source] kube::Error),
    /// Reading a client's Namespace (for its client-id allowance) failed.
    #[error("reading the Namespace: {0}")]
    ReadNamespace(#[source] kube::Error),
    /// The watch caches of ceilings, namespaces and policies did not fill in time.
    #[error("the caches of ClusterOAuthPolicies, Namespaces and OAuthPolicies are not ready")]
    ViewNotReady,
    /// Listing OAuthClients failed.
    #[error("listing OAuthClients: {0}")]
    ListClients(#[source] kube::Error),
    /// Reading a Secret failed.
    #[error("reading Secret {name}: {source}")]
    ReadSecret {
        /// The Secret.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing a client's Secret failed.
    #[error("applying Secret {name}: {source}")]
    ApplySecret {
        /// The Secret.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing an object's status failed.
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    /// Writing an annotation on an OAuthClient failed.
    #[error("writing annotations: {0}")]
    WriteAnnotations(#[source] kube::Error),
    /// The token server did not take the registration.
    #[error("registering client {client_id}: {source}")]
    RegisterClient {
        /// The client.
        client_id: String,
        /// Why.
        #[source]
        source: admin::AdminError,
    },
    /// The token server's registration of a client could not be read.
    #[error("reading the registration of client {client_id}: {source}")]
    ReadRegistration {
        /// The client.
        client_id: String,
        /// Why.
        #[source]
        source: admin::AdminError,
    },
    /// The token server did not remove the registration.
    #[error("deregistering client {client_id}: {source}")]
    DeregisterClient {
        /// The client.
        client_id: String,
        /// Why.
        #[source]
        source: admin::AdminError,
    },
    /// Adding or removing the finalizer, or the reconcile inside it, failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Applying an object of the bundled server failed.
    #[error("applying {kind} {name}: {source}")]
    ApplyServerObject {
        /// Object kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Reading or writing the leader Lease failed.
    #[error("leader lease: {0}")]
    Lease(#[source] kube::Error),
    /// Another replica took the Lease while this one was leading.
    #[error("lost the leader lease")]
    LostLeadership,
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The admin client could not be built.
    #[error("admin client: {0}")]
    AdminClient(#[source] admin::AdminError),
    /// The metrics listener could not be bound.
    #[error("metrics listener: {0}")]
    Metrics(#[source] std::io::Error),
    /// JSON encoding failed.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result type of the operator.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shared by every reconcile.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// Who publishes Events.
    pub reporter: Reporter,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The operator's configuration.
    pub config: Arc<Config>,
    /// The token server's admin API.
    pub admin: AdminClient,
    /// What the client controller last wrote (see [`memo`]).
    pub memo: memo::Memo,
    /// Ceilings, namespace labels and every watched namespace's OAuthPolicies (see [`view`]).
    pub view: view::View,
    /// The time every decision reads (see [`clock`]).
    pub clock: clock::SharedClock,
    backoff: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context for `config`, talking to the cluster through `client` and reading the time from `clock`.
    pub fn new(
        config: Arc<Config>,
        client: kube::Client,
        metrics: Arc<Metrics>,
        clock: clock::SharedClock,
    ) -> Result<Self> {
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), &config.namespace);
        let admin = AdminClient::new(&config.server_admin_url, secrets).map_err(Error::AdminClient)?;
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: Some(config.identity.clone()),
        };
        let view = view::View::new(&config.scopes());
        Ok(Self {
            client,
            reporter,
            metrics,
            config,
            admin,
            memo: memo::Memo::default(),
            view,
            clock,
            backoff: Mutex::default(),
        })
    }

    /// A recorder for one Event. Each is new: a long-lived `Recorder` keeps every Event it published
    /// for six minutes, to count repeats as a series, and scans them all on every publish. With one
    /// Event or two per client that was O(N) memory and O(N²) time while N clients were created, and
    /// this operator publishes only transitions, which seldom repeat.
    pub fn recorder(&self) -> Recorder {
        Recorder::new(self.client.clone(), self.reporter.clone())
    }

    /// The next retry delay for `key`: doubling from one second up to `max_backoff`.
    pub fn next_backoff(&self, key: String) -> Duration {
        let mut map = self
            .backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let failures = map.entry(key).or_insert(0);
        *failures = failures.saturating_add(1);
        backoff_delay(*failures, self.config.max_backoff)
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn reset_backoff(&self, key: &str) {
        self.backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

/// The retry delay after `failures` consecutive failures: 1 s, 2 s, 4 s, ... capped at `max`.
pub fn backoff_delay(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(max)
}

/// Runs the operator until `shutdown` resolves or leadership is lost: serves metrics, waits for the
/// leader Lease (if enabled), then runs the server-deployment loop and the controllers.
pub async fn run(
    config: Config,
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if config.server.database == Database::Postgres && config.server.postgres_secret.is_none() {
        return Err(Error::InvalidConfig(
            "--database postgres needs --postgres-secret".into(),
        ));
    }
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());
    let shutdown = shutdown.shared();
    if let Some(addr) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(Error::Metrics)?;
        info!(addr = %listener.local_addr().map_err(Error::Metrics)?, "serving metrics");
        tokio::spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));
    }
    let clock: clock::SharedClock = match &config.clock_offset_file {
        Some(file) => Arc::new(clock::OffsetClock { file: file.clone() }),
        None => Arc::new(clock::SystemClock),
    };
    let ctx = Arc::new(Context::new(
        config.clone(),
        client.clone(),
        metrics.clone(),
        clock.clone(),
    )?);
    let work = async move {
        let server = server_deployment::run(ctx.clone());
        let controllers = run_controllers(ctx.clone());
        tokio::join!(server, controllers);
        Ok(())
    };
    if config.leader_election {
        leader::lead(client, config, metrics, clock, shutdown, work).await
    } else {
        metrics.set_leader(true);
        tokio::select! {
            r = work => r,
            () = shutdown => Ok(()),
        }
    }
}

impl Config {
    /// The namespaces reconciled, one `Api` scope each: `[None]` for all of them.
    pub fn scopes(&self) -> Vec<Option<String>> {
        if self.watch_namespaces.is_empty() {
            vec![None]
        } else {
            self.watch_namespaces.iter().cloned().map(Some).collect()
        }
    }
}

async fn run_controllers(ctx: Arc<Context>) {
    let mut tasks = vec![
        view::run(ctx.clone()).boxed(),
        cluster_policy::run(ctx.clone()).boxed(),
    ];
    for ns in ctx.config.scopes() {
        tasks.push(client::run(ctx.clone(), ns.clone()).boxed());
        tasks.push(policy::run(ctx.clone(), ns).boxed());
    }
    futures::future::join_all(tasks).await;
}

/// An `Api` over `ns`, or over every namespace.
pub(crate) fn scoped_api<K>(client: &kube::Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_the_cap() {
        let cap = Duration::from_secs(30);
        let delays: Vec<u64> = (1..=7).map(|n| backoff_delay(n, cap).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff_delay(u32::MAX, cap), cap);
    }
}
