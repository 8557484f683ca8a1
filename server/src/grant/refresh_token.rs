//! The refresh token grant ([RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)). A refresh
//! token is bound to its client, may narrow the scope but never widen it, and is rotated on every use
//! (RFC 9700 §4.14.2): the old one is spent, and presenting a spent one again revokes its whole
//! family, since either the client or an attacker holds a copy. The family's absolute lifetime does
//! not move with rotation. A policy may turn rotation off; the token is then reused until the family
//! ends. A refresh of an `openid` grant carries a new ID token.

use crate::client_auth::AuthenticatedClient;
use crate::db::Spend;
use crate::grant::TokenResponse;
use crate::issue::{self, Family};
use crate::oauth::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::scope::is_scope_token;
use crate::{AppState, oidc, token};

/// The description of a refresh token that is unknown, expired, revoked or another client's.
pub const INVALID: &str = "the refresh token is invalid, expired or revoked";
/// The description of a reused refresh token.
pub const REUSED: &str = "the refresh token was already used; every token of its grant is now revoked";

/// The scopes of a refresh: the requested ones, each within the original grant, or the original
/// grant itself ([RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)). Pure.
pub fn narrowed_scopes(requested: Option<&str>, original: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(original.to_vec());
    };
    let mut granted: Vec<String> = Vec::new();
    for token in requested.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(token) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope must be space-separated scope tokens (RFC 6749 §3.3)",
            ));
        }
        if !original.iter().any(|o| o == token) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "a refresh may narrow the scope of the original grant but never widen it",
            ));
        }
        if !granted.iter().any(|g| g == token) {
            granted.push(token.to_owned());
        }
    }
    if granted.is_empty() {
        return Ok(original.to_vec());
    }
    Ok(granted)
}

/// Issues new tokens for a refresh token, and rotates it.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.required("refresh_token")?;
    let invalid = || OAuthError::new(ErrorCode::InvalidGrant, INVALID);
    if presented.len() > 512 {
        return Err(invalid());
    }
    let now = state.clock.now();
    let hash = token::token_hash(presented);
    let Some(row) = state.db.find_refresh_token(&hash).await? else {
        return Err(invalid());
    };
    if row.client_id != client.client.client_id || row.revoked || now >= row.expires_at {
        return Err(invalid());
    }
    let original: Vec<String> = row
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // The client's policy may have shrunk since the grant.
    let still_allowed: Vec<String> = original
        .iter()
        .filter(|s| client.client.effective.scopes.contains(s))
        .cloned()
        .collect();
    let scopes = narrowed_scopes(params.get("scope"), &still_allowed)?;
    // Without rotation (the policy's `refreshTokenRotation: false`) the token stays valid until the
    // family ends, and no new one is issued (RFC 6749 §6: the server MAY issue one). A token spent
    // while rotation was on is still a reuse.
    let rotate = client.client.effective.refresh_token_rotation;
    let reused = || async {
        state.db.revoke_family(&row.family_id, now).await?;
        tracing::warn!(
            client_id = %row.client_id,
            family = %row.family_id,
            "a used refresh token was presented again; revoked its family"
        );
        Ok::<_, OAuthError>(OAuthError::new(ErrorCode::InvalidGrant, REUSED))
    };
    if row.used {
        return Err(reused().await?);
    }
    match state.db.find_user(&row.subject).await? {
        Some(user) if !user.user.disabled => {}
        _ => {
            state.db.revoke_family(&row.family_id, now).await?;
            return Err(invalid());
        }
    }
    let pending = issue::access_token(state, &client.client, &row.subject, &scopes, &row.family_id)?;
    let family = Family {
        id: &row.family_id,
        subject: &row.subject,
        scope: &row.scope,
        auth_time: row.auth_time,
        expires_at: row.expires_at,
    };
    let (refresh, spend) = if rotate {
        (
            Some(issue::refresh_token(state, &client.client, &family)?),
            Spend::RefreshToken(&hash),
        )
    } else {
        (None, Spend::Nothing)
    };
    // Spending the old token and storing the new ones is one transaction. Of two concurrent
    // exchanges of one token only one can spend it; the other is a reuse.
    if !state
        .db
        .store_grant(spend, &pending.record, refresh.as_ref().map(|(_, r)| r))
        .await?
    {
        return Err(reused().await?);
    }
    let minted = pending.minted;
    let refresh_token = refresh.map(|(value, _)| value);
    // OIDC Core §12.2: a refresh of an `openid` grant returns a new ID token with the original
    // auth_time and no nonce.
    let id_token = if scopes.iter().any(|s| s == "openid") {
        Some(oidc::id_token(
            state,
            &client.client,
            &row.subject,
            None,
            row.auth_time,
            &minted.token,
        )?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token,
        id_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_scope_keeps_the_original_grant() {
        assert_eq!(
            narrowed_scopes(None, &list(&["a", "b"])).unwrap(),
            list(&["a", "b"])
        );
    }

    #[test]
    fn a_narrower_scope_is_granted() {
        assert_eq!(
            narrowed_scopes(Some("b"), &list(&["a", "b"])).unwrap(),
            list(&["b"])
        );
    }

    #[test]
    fn a_wider_scope_is_invalid_scope() {
        let error = narrowed_scopes(Some("a c"), &list(&["a", "b"])).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidScope);
    }
}
