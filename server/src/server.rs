//! Serving: opens the database, loads clients and keys, binds the two listeners and runs the periodic
//! refresh that keeps replicas in step (clients, keys, rotation, purging expired records).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_crds::resolve::DEFAULT_ACCESS_TOKEN_TTL;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::registry::ClientCache;
use crate::clock::SharedClock;
use crate::keys::{Kek, KeyStore, Schedule, SigningAlg};
use crate::metrics::Metrics;
use crate::store::Db;
use crate::{AppState, Config, Error, Result, admin_app, app, standalone};

/// Everything [`start`] needs, already resolved from flags and files.
#[derive(Clone)]
pub struct Settings {
    /// Public listener.
    pub listen: SocketAddr,
    /// Admin listener; `None` disables the admin API.
    pub admin_listen: Option<SocketAddr>,
    /// Issuer identifier.
    pub issuer: String,
    /// sqlx database URL.
    pub database_url: String,
    /// Admin bearer token.
    pub admin_token: Option<String>,
    /// Key-encryption key.
    pub key_encryption_key: [u8; 32],
    /// Signing algorithm for new keys.
    pub signing_alg: SigningAlg,
    /// Rotation period of signing keys, in seconds.
    pub key_rotation_period: i64,
    /// Standalone mode: the manifests directory.
    pub clients_dir: Option<PathBuf>,
    /// Public body limit, in bytes.
    pub body_limit: usize,
    /// How often clients and keys are re-read from the database.
    pub refresh_interval: Duration,
    /// How far in the future a token's `iat` or `nbf` may lie and the token still be active, in
    /// seconds: the clock skew tolerated between replicas (RFC 7519 §4.1.5 allows "some small leeway").
    pub clock_leeway: i64,
}

/// The default [`Settings::clock_leeway`], in seconds.
pub const DEFAULT_CLOCK_LEEWAY: i64 = 5;

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The admin token and the key-encryption key never reach a log.
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("issuer", &self.issuer)
            .field("database_url", &"<redacted>")
            .field("signing_alg", &self.signing_alg)
            .field("key_rotation_period", &self.key_rotation_period)
            .field("clients_dir", &self.clients_dir)
            .field("body_limit", &self.body_limit)
            .field("clock_leeway", &self.clock_leeway)
            .finish_non_exhaustive()
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Where the public listener is bound.
    pub public_addr: SocketAddr,
    /// Where the admin listener is bound, if enabled.
    pub admin_addr: Option<SocketAddr>,
    /// The shared state, for tests and diagnostics.
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops serving, waits for in-flight requests, and closes the database.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.state.db.close().await;
    }
}

/// Registers the clients of a clients directory, and deletes those it registered before that are
/// gone from it.
pub async fn sync_clients_dir(state: &AppState, dir: &std::path::Path) -> Result<usize> {
    let loaded = standalone::load_dir(dir, &state.config.issuer)?;
    let now = state.clock.now();
    let mut wanted = std::collections::HashSet::new();
    for registration in &loaded.registrations {
        wanted.insert(registration.client_id.clone());
        if state.clients.get(&registration.client_id).as_deref() != Some(registration)
            && let Some(current) = state.db.upsert_client(registration, now).await?
        {
            return Err(Error::Config(format!(
                "{}: {}",
                dir.display(),
                crate::client::ownership::conflict_description(&current, None)
            )));
        }
    }
    let (_, existing) = state.db.all_clients().await?;
    for stale in existing.iter().filter(|c| {
        c.source
            .as_deref()
            .is_some_and(|s| s.starts_with(standalone::SOURCE_PREFIX))
            && !wanted.contains(&c.client_id)
    }) {
        tracing::info!(client_id = %stale.client_id, "client removed from the clients directory; deleting it");
        state.db.delete_client(&stale.client_id, None).await?;
    }
    state.clients.reload(&state.db).await?;
    Ok(loaded.registrations.len())
}

/// Deletes every expired record: tokens, grants, sessions, codes and stale failure counters. Run by
/// each replica on every [`PURGE_EVERY`]th refresh (every five minutes at the 5 s refresh interval);
/// the deletes are idempotent, so replicas need no coordination.
pub async fn purge(state: &AppState) -> Result<()> {
    let now = state.clock.now();
    state.db.purge_expired(now).await?;
    state.db.purge_expired_grants(now).await
}

/// How many refreshes apart the purges run.
pub const PURGE_EVERY: u64 = 60;

async fn maintain(state: &AppState) -> Result<()> {
    state.clients.refresh(&state.db).await?;
    let max_ttl = state.clients.max_access_token_ttl(DEFAULT_ACCESS_TOKEN_TTL);
    state.keys.maintain(&state.db, state.clock.now(), max_ttl).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Listen {
        addr: addr.to_string(),
        source,
    })
}

fn serve(listener: TcpListener, router: axum::Router, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            tracing::error!(%error, "listener failed");
        }
    })
}

/// Reads other replicas' revocations into this replica's view, every
/// [`crate::store::REVOCATIONS_POLL_INTERVAL`]. A failure is logged once, when the polls start failing;
/// meanwhile introspection asks the database.
fn poll_revocations(db: Db, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(crate::store::REVOCATIONS_POLL_INTERVAL) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            match db.sync_revocations().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("reading revocations from the database works again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "reading revocations from the database failed; introspection asks the database until it works again");
                }
                Err(_) => {}
            }
        }
    })
}

/// Opens the database, loads everything, binds both listeners and starts serving.
pub async fn start(settings: Settings, clock: SharedClock) -> Result<Running> {
    let Settings {
        listen,
        admin_listen,
        issuer,
        database_url,
        admin_token,
        key_encryption_key,
        signing_alg,
        key_rotation_period,
        clients_dir,
        body_limit,
        refresh_interval,
        clock_leeway,
    } = settings;
    let db = Db::connect(&database_url).await?;
    let keys = KeyStore::new(
        Kek::new(&key_encryption_key)?,
        signing_alg,
        Schedule::for_period(key_rotation_period),
    );
    let clients = ClientCache::load(&db).await?;
    let state = AppState {
        db,
        keys: Arc::new(keys),
        clients: Arc::new(clients),
        config: Arc::new(Config {
            issuer,
            body_limit,
            admin_token,
            clock_leeway,
        }),
        clock,
        metrics: Arc::new(Metrics::default()),
        hasher: Arc::default(),
    };
    if let Some(dir) = &clients_dir {
        let count = sync_clients_dir(&state, dir).await?;
        tracing::info!(clients = count, dir = %dir.display(), "registered the clients of the clients directory");
    }
    maintain(&state).await?;

    let (shutdown, receiver) = watch::channel(false);
    let public = bind(listen).await?;
    let public_addr = public.local_addr().map_err(|source| Error::Listen {
        addr: listen.to_string(),
        source,
    })?;
    let mut tasks = vec![serve(public, app(state.clone()), receiver.clone())];
    let mut admin_addr = None;
    if let Some(addr) = admin_listen {
        let listener = bind(addr).await?;
        admin_addr = Some(listener.local_addr().map_err(|source| Error::Listen {
            addr: addr.to_string(),
            source,
        })?);
        tasks.push(serve(listener, admin_app(state.clone()), receiver.clone()));
    }

    tasks.push(poll_revocations(state.db.clone(), receiver.clone()));

    let background_state = state.clone();
    let mut stop = receiver;
    tasks.push(tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(refresh_interval) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            ticks += 1;
            if let Err(error) = maintain(&background_state).await {
                tracing::warn!(%error, "refreshing clients and keys failed");
            }
            if ticks.is_multiple_of(PURGE_EVERY)
                && let Err(error) = purge(&background_state).await
            {
                tracing::warn!(%error, "purging expired records failed");
            }
        }
    }));

    Ok(Running {
        public_addr,
        admin_addr,
        state,
        shutdown,
        tasks,
    })
}
