//! Token introspection ([RFC 7662](https://www.rfc-editor.org/rfc/rfc7662)). The caller must
//! authenticate as a confidential client (§2.1); any registered one may ask, as resource servers are
//! clients too. An inactive, unknown or malformed token gets exactly `{"active":false}` (§2.2).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::oauth::{Form, OAuthError, no_store};
use crate::{AppState, client, token};

/// `POST /introspect`.
pub async fn introspect(State(state): State<AppState>, form: Form) -> Result<Response, OAuthError> {
    let presented = client::presented(&form.headers, &form.params)?;
    let now = state.clock.now();
    let caller = client::authenticate(&state.clients, presented, now)?;
    if caller.is_public() {
        return Err(OAuthError::invalid_client(
            "introspection requires a confidential client",
        ));
    }
    let token = form.params.required("token")?;
    let found = token::find(&state, token, now).await?;
    let body = match token::active_claims(&state, &found, now).await? {
        Some(claims) => serde_json::Value::Object(claims),
        None => json!({"active": false}),
    };
    let mut response = Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}
