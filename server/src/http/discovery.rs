//! Discovery ([RFC 8414](https://www.rfc-editor.org/rfc/rfc8414)) and the JWK Set. The metadata lists
//! exactly what is implemented: the grants come from [`Grant::ALL`], the endpoints from the router.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use gatehouse_crds::GrantType;

use crate::AppState;
use crate::grant::Grant;

/// The authorization server metadata.
pub fn metadata(state: &AppState) -> Value {
    let issuer = state.config.issuer.trim_end_matches('/');
    // RFC 8414 §2 lists grant types by their RFC 7591 names, `implicit` among them, although the
    // implicit grant is answered at the authorization endpoint rather than the token endpoint.
    let grants: Vec<&str> = Grant::ALL
        .iter()
        .map(|g| g.name())
        .chain([GrantType::Implicit.as_str()])
        .collect();
    json!({
        "issuer": state.config.issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "grant_types_supported": grants,
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": state.clients.all_scopes(),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [state.keys.alg().as_str()],
        "access_token_signing_alg_values_supported": [state.keys.alg().as_str()],
        "authorization_response_iss_parameter_supported": true,
    })
}

/// `GET /.well-known/oauth-authorization-server` and `GET /.well-known/openid-configuration`.
pub async fn well_known(State(state): State<AppState>) -> Json<Value> {
    Json(metadata(&state))
}

/// `GET /jwks`: every published key, including the next one before it signs.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks(state.clock.now())).into_response();
    // Shorter than the lead with which a new key is published.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
