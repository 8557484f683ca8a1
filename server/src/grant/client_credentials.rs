//! The client credentials grant ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)):
//! a confidential client gets an access token for itself. No refresh token
//! ([§4.4.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.4.3)). With JWT access tokens this path
//! touches no database.

use crate::AppState;
use crate::client_auth::AuthenticatedClient;
use crate::grant::TokenResponse;
use crate::oauth::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::{scope, token};

/// Issues the token.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is for confidential clients only",
        ));
    }
    let effective = &client.client.effective;
    let scopes = scope::grant(params.get("scope"), &effective.scopes, &effective.default_scopes)?;
    let minted = token::mint(state, &client.client, &client.client.client_id, &scopes).await?;
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token: None,
        id_token: None,
    })
}
