//! What every handler gets: the [`AppState`] (storage, keys, the client registry, request-time
//! settings, the clock, metrics and the password hasher).

use std::sync::Arc;

use axum::extract::FromRef;

use crate::client::ClientCache;
use crate::clock::SharedClock;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::oauth::params::BodyLimit;
use crate::password::Hasher;
use crate::store::Db;

/// Settings handlers read at request time.
#[derive(Clone)]
pub struct Config {
    /// The issuer identifier (`iss`), also the base of every advertised endpoint.
    pub issuer: String,
    /// Largest accepted body on the public endpoints, in bytes.
    pub body_limit: usize,
    /// The admin API's bearer token; `None` refuses every admin call.
    pub admin_token: Option<String>,
    /// Seconds a token's `iat` or `nbf` may lie ahead of this replica's clock.
    pub clock_leeway: i64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("body_limit", &self.body_limit)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("clock_leeway", &self.clock_leeway)
            .finish()
    }
}

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Storage.
    pub db: Db,
    /// Signing keys, parsed once.
    pub keys: Arc<KeyStore>,
    /// The client registry, in memory.
    pub clients: Arc<ClientCache>,
    /// Request-time settings.
    pub config: Arc<Config>,
    /// The only source of time.
    pub clock: SharedClock,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The bounded pool that verifies and hashes passwords.
    pub hasher: Arc<Hasher>,
}

impl FromRef<AppState> for BodyLimit {
    fn from_ref(state: &AppState) -> Self {
        BodyLimit(state.config.body_limit)
    }
}
