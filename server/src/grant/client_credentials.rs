//! The client credentials grant ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)):
//! a confidential client gets an access token for itself. No refresh token
//! ([§4.4.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.4.3)). With JWT access tokens this path
//! touches no database.

use crate::AppState;
use crate::client::AuthenticatedClient;
use crate::oauth::{ErrorCode, OAuthError, Params, scope};
use crate::token::{self, TokenResponse};

/// The scopes `client` gets for the `requested` ones, or why it gets none. Pure.
pub fn check(client: &AuthenticatedClient, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is for confidential clients only",
        ));
    }
    let effective = &client.client.effective;
    scope::grant(requested, &effective.scopes, &effective.default_scopes)
}

/// Issues the token.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let scopes = check(client, params.get("scope"))?;
    let minted = token::mint(state, &client.client, &client.client.client_id, &scopes, now).await?;
    Ok(TokenResponse::bearer(minted))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gatehouse_crds::AuthMethod;

    use super::*;
    use crate::test_support::registration;

    fn client(method: AuthMethod) -> AuthenticatedClient {
        AuthenticatedClient {
            client: Arc::new(registration(
                "svc",
                "client_secret_basic",
                &["client_credentials"],
                &["read", "write"],
            )),
            method,
        }
    }

    #[test]
    fn a_public_client_is_unauthorized_for_client_credentials() {
        let error = check(&client(AuthMethod::None), None).unwrap_err();
        assert_eq!(error.code, ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn a_confidential_client_gets_the_scopes_it_asks_for_within_its_policy() {
        let scopes = check(&client(AuthMethod::ClientSecretBasic), Some("write")).unwrap();
        assert_eq!(scopes, vec!["write".to_owned()]);
        let error = check(&client(AuthMethod::ClientSecretBasic), Some("admin")).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidScope);
    }
}
