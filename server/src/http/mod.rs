//! The HTTP edge: the public router ([`app`]: token, authorization, userinfo, introspection,
//! revocation, discovery, JWKS, health, metrics) and the admin router ([`admin_app`]), served on its
//! own listener. Handlers parse, call into [`crate::grant`], [`crate::token`] and [`crate::client`], and
//! shape the response; the rules live there.

pub mod admin;
pub mod authorize;
pub mod discovery;
pub mod introspect;
pub mod metrics;
pub mod revoke;
pub mod userinfo;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::{AppState, grant};

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
        .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
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
    use admin::users;
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
        .route("/admin/v1/users", get(users::list_users).post(users::create_user))
        .route(
            "/admin/v1/users/{username}",
            get(users::get_user).delete(users::delete_user),
        )
        .route("/admin/v1/users/{username}/password", put(users::set_password))
        .route("/admin/v1/users/{username}/disable", post(users::disable_user))
        .route("/admin/v1/users/{username}/enable", post(users::enable_user))
        .route_layer(from_fn_with_state(state.clone(), admin::require_token));
    Router::new()
        .merge(api)
        .merge(health())
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}
