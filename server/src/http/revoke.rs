//! Token revocation ([RFC 7009](https://www.rfc-editor.org/rfc/rfc7009)). A client revokes its own
//! tokens: a confidential client authenticates, a public one names its client_id (§2.1). An unknown or
//! already invalid token still gets 200 (§2.2). `token_type_hint` is accepted but not trusted: every
//! kind of token is looked for. A token issued to another client is refused with
//! `unauthorized_client`, as §2.1 requires ("the request is refused and the client is informed").
//! A revoked JWT is remembered by `jti` until it expires. A revoked refresh token takes its whole grant
//! with it: the family's refresh tokens and the access tokens issued within it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::oauth::{ErrorCode, Form, OAuthError, no_store};
use crate::token::Found;
use crate::{AppState, client, token};

/// `POST /revoke`.
pub async fn revoke(State(state): State<AppState>, form: Form) -> Result<Response, OAuthError> {
    let presented = client::presented(&form.headers, &form.params)?;
    let now = state.clock.now();
    let caller = client::authenticate(&state.clients, presented, now)?;
    let token = form.params.required("token")?;
    let found = token::find(&state, token, now).await?;
    if let Some(owner) = found.client_id()
        && owner != caller.client.client_id
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        ));
    }
    match &found {
        Found::Jwt(claims) if claims.exp > now => {
            state
                .db
                .revoke_jwt(&claims.jti, &claims.client_id, claims.exp)
                .await?;
        }
        Found::Opaque(row) if !row.revoked => state.db.revoke_opaque_token(&row.token_hash).await?,
        // RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the access tokens of its
        // grant. The whole family goes: its refresh tokens and every access token issued within it.
        Found::Refresh(row) if !row.revoked => state.db.revoke_family(&row.family_id, now).await?,
        _ => {}
    }
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    Ok(response)
}
