//! The authorization code grant's token request
//! ([RFC 6749 §4.1.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3)). A code is single-use,
//! lives `authorizationCodeTtlSeconds` (60 s by default), and is bound to the client, the
//! redirect_uri and the PKCE verifier ([RFC 7636 §4.6](https://www.rfc-editor.org/rfc/rfc7636#section-4.6)).
//! A code presented a second time is refused and every token issued from it is revoked
//! ([§10.5](https://www.rfc-editor.org/rfc/rfc6749#section-10.5)).

use crate::client_auth::AuthenticatedClient;
use crate::db::Spend;
use crate::grant::TokenResponse;
use crate::oauth::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::pkce::{self, Method};
use crate::{AppState, issue, oidc, token};

/// The description of an unknown, expired or another client's code.
pub const INVALID: &str = "the authorization code is invalid or expired";
/// The description of a replayed code.
pub const REPLAYED: &str = "the authorization code was already used; the tokens issued from it are revoked";
/// The description of a PKCE failure.
pub const BAD_VERIFIER: &str = "the code_verifier is missing or does not match the code_challenge";

/// Exchanges a code for tokens.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = params.required("code")?;
    let redirect_uri = params.required("redirect_uri")?;
    let invalid = || OAuthError::new(ErrorCode::InvalidGrant, INVALID);
    if code.len() > 512 {
        return Err(invalid());
    }
    let now = state.clock.now();
    let hash = token::token_hash(code);
    let Some(row) = state.db.find_code(&hash).await? else {
        return Err(invalid());
    };
    if row.client_id != client.client.client_id {
        return Err(invalid());
    }
    if row.used {
        state.db.revoke_family(&row.family_id, now).await?;
        tracing::warn!(client_id = %row.client_id, "an authorization code was presented twice; revoked its tokens");
        return Err(OAuthError::new(ErrorCode::InvalidGrant, REPLAYED));
    }
    if now >= row.expires_at {
        return Err(invalid());
    }
    if row.redirect_uri != redirect_uri {
        return Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "redirect_uri differs from the one of the authorization request",
        ));
    }
    let verifier = params.get("code_verifier");
    let pkce_ok = match (&row.code_challenge, &row.code_challenge_method, verifier) {
        (Some(challenge), Some(method), Some(verifier)) => {
            Method::from_name(method).is_some_and(|m| pkce::verify(verifier, challenge, m))
        }
        // A verifier for a code issued without a challenge is a downgrade attempt (RFC 9700 §4.8.2).
        (None, _, None) => true,
        _ => false,
    };
    if !pkce_ok {
        return Err(OAuthError::new(ErrorCode::InvalidGrant, BAD_VERIFIER));
    }
    match state.db.find_user(&row.username).await? {
        Some(user) if !user.user.disabled => {}
        _ => {
            state.db.spend(Spend::Code(&hash)).await?;
            return Err(invalid());
        }
    }
    let scopes: Vec<String> = row
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // The code is spent in the transaction that stores the tokens: of two concurrent exchanges one
    // wins, and the other is a replay.
    let Some(mut response) = issue::new_grant(
        state,
        &client.client,
        &row.username,
        &scopes,
        row.auth_time,
        &row.family_id,
        Spend::Code(&hash),
    )
    .await?
    else {
        state.db.revoke_family(&row.family_id, now).await?;
        return Err(OAuthError::new(ErrorCode::InvalidGrant, REPLAYED));
    };
    if scopes.iter().any(|s| s == "openid") {
        response.id_token = Some(oidc::id_token(
            state,
            &client.client,
            &row.username,
            row.nonce.as_deref(),
            row.auth_time,
            &response.access_token,
        )?);
    }
    Ok(response)
}
