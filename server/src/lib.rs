//! The Gatehouse token server: an OAuth 2.0 authorization server on axum and sqlx.
//!
//! - [`app`] is the public router (token, introspection, revocation, discovery, JWKS, health, metrics);
//!   [`admin_app`] is the admin router, served on its own listener. Neither binds anything: tests call
//!   them directly, and [`server::start`] serves them.
//! - Handlers share an [`AppState`]: the database, the signing keys, the client registry, the
//!   configuration and the clock (plus metrics).
//! - One module per grant lives under [`grant`]; client authentication, scope decisions and claims
//!   building are pure modules.

pub mod admin;
pub mod admin_users;
pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod clock;
pub mod config;
pub mod db;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod introspect;
pub mod issue;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod params;
pub mod pkce;
pub mod revoke;
pub mod scope;
pub mod server;
pub mod standalone;
pub mod throttle;
pub mod token;
pub mod users;

/// A read guard on an in-memory cache. A panic while the lock was held cannot leave a cache
/// half-written (every write replaces or inserts whole entries), so poisoning is ignored.
pub(crate) fn read_lock<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The write guard that goes with [`read_lock`].
pub(crate) fn write_lock<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

pub use error::{Error, Result};

/// Settings handlers read at request time.
#[derive(Clone)]
pub struct Config {
    /// The issuer identifier (`iss`), also the base of every advertised endpoint.
    pub issuer: String,
    /// Largest accepted body on the public endpoints, in bytes.
    pub body_limit: usize,
    /// The admin API's bearer token; `None` refuses every admin call.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("body_limit", &self.body_limit)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Storage.
    pub db: db::Db,
    /// Signing keys, parsed once.
    pub keys: Arc<keys::KeyStore>,
    /// The client registry, in memory.
    pub clients: Arc<clients::ClientCache>,
    /// Request-time settings.
    pub config: Arc<Config>,
    /// The only source of time.
    pub clock: clock::SharedClock,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(error) = state.db.ping().await {
        tracing::warn!(%error, "not ready: database");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    }
    if state.keys.signing_key(state.clock.now()).is_none() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no signing key").into_response();
    }
    "ok".into_response()
}

fn health() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The public router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/token", post(grant::token))
        .route("/authorize", get(authorize::authorize))
        .route("/login", post(authorize::login))
        .route("/consent", post(authorize::consent))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .route("/jwks", get(discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::well_known),
        )
        .route("/.well-known/openid-configuration", get(discovery::well_known))
        .route("/metrics", get(metrics::metrics))
        .merge(health())
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// The admin router (see [`admin`]).
pub fn admin_app(state: AppState) -> Router {
    let api = Router::new()
        .route("/admin/v1/clients", get(admin::list_clients))
        .route(
            "/admin/v1/clients/{client_id}",
            put(admin::put_client)
                .get(admin::get_client)
                .delete(admin::delete_client),
        )
        .route("/admin/v1/clients/{client_id}/revoke", post(admin::revoke_client))
        .route("/admin/v1/keys", get(admin::list_keys))
        .route("/admin/v1/keys/rotate", post(admin::rotate_keys))
        .route(
            "/admin/v1/users",
            get(admin_users::list_users).post(admin_users::create_user),
        )
        .route(
            "/admin/v1/users/{username}",
            get(admin_users::get_user).delete(admin_users::delete_user),
        )
        .route(
            "/admin/v1/users/{username}/password",
            put(admin_users::set_password),
        )
        .route(
            "/admin/v1/users/{username}/disable",
            post(admin_users::disable_user),
        )
        .route(
            "/admin/v1/users/{username}/enable",
            post(admin_users::enable_user),
        )
        .route_layer(from_fn_with_state(state.clone(), admin::require_token));
    Router::new()
        .merge(api)
        .merge(health())
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}
