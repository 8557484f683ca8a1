//! The refresh token grant ([RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)). A refresh
//! token is bound to its client, may narrow the scope but never widen it, and is rotated on every use
//! (RFC 9700 §4.14.2): the old one is spent, and presenting a spent one again revokes its whole
//! family, since either the client or an attacker holds a copy. The family's absolute lifetime does
//! not move with rotation. A policy may turn rotation off; the token is then reused until the family
//! ends. A refresh of an `openid` grant carries a new ID token.

use gatehouse_crds::admin::ClientRegistration;

use crate::AppState;
use crate::client::AuthenticatedClient;
use crate::oauth::scope::is_scope_token;
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::store::{RefreshToken, Spend};
use crate::token::family::{self, Family};
use crate::token::id_token::About;
use crate::token::{self, TokenResponse};

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

/// Why a presented refresh token is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, expired, revoked, or issued to another client: `invalid_grant`.
    Invalid,
    /// Used before: its whole family must be revoked. `invalid_grant`.
    Reused,
    /// The requested scope is not within the grant: `invalid_scope`.
    Scope(OAuthError),
}

impl From<Refusal> for OAuthError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid => OAuthError::new(ErrorCode::InvalidGrant, INVALID),
            Refusal::Reused => OAuthError::new(ErrorCode::InvalidGrant, REUSED),
            Refusal::Scope(error) => error,
        }
    }
}

/// Whether `stored` may be refreshed by `client` at `now` for `requested` scopes, and with which
/// scopes: the requested ones within the original grant, less any the client's policy no longer
/// allows. Pure.
pub fn check(
    stored: &RefreshToken,
    client: &ClientRegistration,
    requested: Option<&str>,
    now: i64,
) -> Result<Vec<String>, Refusal> {
    if stored.client_id != client.client_id || stored.revoked || now >= stored.expires_at {
        return Err(Refusal::Invalid);
    }
    // The client's policy may have shrunk since the grant.
    let still_allowed: Vec<String> = stored
        .scope
        .split(' ')
        .filter(|s| !s.is_empty() && client.effective.scopes.iter().any(|a| a == s))
        .map(str::to_owned)
        .collect();
    let scopes = narrowed_scopes(requested, &still_allowed).map_err(Refusal::Scope)?;
    if stored.used {
        return Err(Refusal::Reused);
    }
    Ok(scopes)
}

/// Issues new tokens for a refresh token, and rotates it.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.required("refresh_token")?;
    if presented.len() > 512 {
        return Err(Refusal::Invalid.into());
    }
    let hash = token::hash(presented);
    let Some(row) = state.db.find_refresh_token(&hash).await? else {
        return Err(Refusal::Invalid.into());
    };
    let reused = || async {
        state.db.revoke_family(&row.family_id, now).await?;
        tracing::warn!(
            client_id = %row.client_id,
            family = %row.family_id,
            "a used refresh token was presented again; revoked its family"
        );
        Ok::<_, OAuthError>(OAuthError::from(Refusal::Reused))
    };
    let scopes = match check(&row, &client.client, params.get("scope"), now) {
        Ok(scopes) => scopes,
        Err(Refusal::Reused) => return Err(reused().await?),
        Err(refusal) => return Err(refusal.into()),
    };
    let user = match state.db.find_user_by_subject(&row.subject).await? {
        Some(stored) if !stored.user.disabled => stored.user,
        _ => {
            state.db.revoke_family(&row.family_id, now).await?;
            return Err(Refusal::Invalid.into());
        }
    };
    let pending = family::access_token(state, &client.client, &row.subject, &scopes, &row.family_id, now)?;
    // Without rotation (the policy's `refreshTokenRotation: false`) the token stays valid until the
    // family ends, and no new one is issued (RFC 6749 §6: the server MAY issue one). A token spent
    // while rotation was on is still a reuse.
    let (refresh, spend) = if client.client.effective.refresh_token_rotation {
        let family = Family {
            id: &row.family_id,
            subject: &row.subject,
            scope: &row.scope,
            auth_time: row.auth_time,
            expires_at: row.expires_at,
        };
        (
            Some(family::refresh_token(&client.client, &family, now)),
            Spend::RefreshToken(&hash),
        )
    } else {
        (None, Spend::Nothing)
    };
    // Spending the old token and storing the new ones is one transaction. Of two concurrent
    // exchanges of one token only one can spend it; the other is a reuse.
    let Some(mut response) = family::store(state, spend, pending, refresh).await? else {
        return Err(reused().await?);
    };
    // OIDC Core §12.2: a refresh of an `openid` grant returns a new ID token with the original
    // auth_time and no nonce.
    if scopes.iter().any(|s| s == "openid") {
        let about = About {
            user: &user,
            scopes: &scopes,
            nonce: None,
            auth_time: row.auth_time,
        };
        response.id_token = Some(token::id_token::id_token(
            state,
            &client.client,
            &about,
            &response.access_token,
            now,
        )?);
    }
    Ok(response)
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

    fn stored(scope: &str) -> RefreshToken {
        RefreshToken {
            token_hash: "h".to_owned(),
            family_id: "f".to_owned(),
            client_id: "web".to_owned(),
            subject: "user:0123456789abcdef0123456789abcdef".to_owned(),
            scope: scope.to_owned(),
            auth_time: 0,
            issued_at: 0,
            expires_at: 100,
            used: false,
            revoked: false,
        }
    }

    fn client(id: &str, scopes: &[&str]) -> ClientRegistration {
        crate::test_support::registration(id, "none", &["refresh_token"], scopes)
    }

    #[test]
    fn a_live_token_keeps_the_scopes_its_client_still_may_have() {
        let scopes = check(&stored("a b c"), &client("web", &["a", "c"]), None, 99).unwrap();
        assert_eq!(scopes, list(&["a", "c"]));
    }

    #[test]
    fn an_expired_revoked_or_foreign_token_is_invalid() {
        let web = client("web", &["a"]);
        assert_eq!(check(&stored("a"), &web, None, 100), Err(Refusal::Invalid));
        let mut revoked = stored("a");
        revoked.revoked = true;
        assert_eq!(check(&revoked, &web, None, 0), Err(Refusal::Invalid));
        assert_eq!(
            check(&stored("a"), &client("evil", &["a"]), None, 0),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn a_used_token_is_a_reuse_but_a_wider_scope_is_told_first() {
        let mut used = stored("a");
        used.used = true;
        let web = client("web", &["a", "b"]);
        assert_eq!(check(&used, &web, None, 0), Err(Refusal::Reused));
        let Err(Refusal::Scope(error)) = check(&used, &web, Some("b"), 0) else {
            panic!("a wider scope must be refused as invalid_scope");
        };
        assert_eq!(error.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn a_wider_scope_is_invalid_scope() {
        let error = narrowed_scopes(Some("a c"), &list(&["a", "b"])).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidScope);
    }
}
