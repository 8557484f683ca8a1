//! Issuing the tokens of a grant in which a person is present (authorization code, password, refresh).
//! Every such grant starts a family; the access tokens minted within it are recorded, so that
//! revoking the family (a reused refresh token, a replayed code, a disabled user) revokes them too.
//! Refresh tokens are opaque, 256 random bits, stored as SHA-256, and end with the family's absolute
//! lifetime (`refreshTokenTtlSeconds` from the family's start).

use gatehouse_crds::admin::ClientRegistration;
use gatehouse_crds::{GrantType, TokenFormat};

use crate::db::{OpaqueToken, RefreshToken};
use crate::grant::TokenResponse;
use crate::token::{self, Minted};
use crate::{AppState, Result};

/// A new family id.
pub fn new_family_id() -> Result<String> {
    token::random_token()
}

/// Whether the client may hold refresh tokens: it is registered for the refresh_token grant.
pub fn issues_refresh_tokens(client: &ClientRegistration) -> bool {
    client.effective.grant_types.contains(&GrantType::RefreshToken)
}

/// Mints an access token for a user within a family, and records it there.
pub async fn access_token(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    family_id: &str,
) -> Result<Minted> {
    let now = state.clock.now();
    let jti = token::random_token()?;
    let claims = token::build_claims(&state.config.issuer, client, subject, scopes, now, jti.clone());
    let (access, opaque_hash) = match client.effective.access_token_format {
        TokenFormat::Jwt => (token::sign_jwt(state, &claims, now)?, None),
        TokenFormat::Opaque => {
            let access = token::random_token()?;
            let hash = token::token_hash(&access);
            state
                .db
                .insert_opaque_token(&OpaqueToken {
                    token_hash: hash.clone(),
                    client_id: claims.client_id.clone(),
                    subject: claims.sub.clone(),
                    scope: claims.scope.clone().unwrap_or_default(),
                    audience: serde_json::to_string(&claims.aud.to_vec())?,
                    claims: serde_json::to_string(&claims.extra)?,
                    issued_at: claims.iat,
                    expires_at: claims.exp,
                    revoked: false,
                })
                .await?;
            (access, Some(hash))
        }
    };
    state
        .db
        .record_family_access_token(
            family_id,
            &jti,
            &client.client_id,
            opaque_hash.as_deref(),
            claims.exp,
        )
        .await?;
    Ok(Minted {
        token: access,
        expires_in: claims.exp - now,
        scope: claims.scope,
    })
}

/// What a new refresh token continues.
#[derive(Clone, Debug)]
pub struct Family<'a> {
    /// The family id.
    pub id: &'a str,
    /// The user.
    pub subject: &'a str,
    /// The scopes of the original grant, which every refresh token of the family carries.
    pub scope: &'a str,
    /// When the user signed in.
    pub auth_time: i64,
    /// The family's absolute end.
    pub expires_at: i64,
}

/// Stores and returns a new refresh token of a family.
pub async fn refresh_token(
    state: &AppState,
    client: &ClientRegistration,
    family: &Family<'_>,
) -> Result<String> {
    let value = token::random_token()?;
    state
        .db
        .insert_refresh_token(&RefreshToken {
            token_hash: token::token_hash(&value),
            family_id: family.id.to_owned(),
            client_id: client.client_id.clone(),
            subject: family.subject.to_owned(),
            scope: family.scope.to_owned(),
            auth_time: family.auth_time,
            issued_at: state.clock.now(),
            expires_at: family.expires_at,
            used: false,
            revoked: false,
        })
        .await?;
    Ok(value)
}

/// The tokens of a new grant for a user: an access token and, when the client may hold one, a
/// refresh token starting a family that ends `refreshTokenTtlSeconds` from now.
pub async fn new_grant(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    auth_time: i64,
    family_id: &str,
) -> Result<TokenResponse> {
    let minted = access_token(state, client, subject, scopes, family_id).await?;
    let refresh_token = if issues_refresh_tokens(client) {
        let scope = scopes.join(" ");
        let family = Family {
            id: family_id,
            subject,
            scope: &scope,
            auth_time,
            expires_at: state.clock.now() + client.effective.refresh_token_ttl_seconds,
        };
        Some(self::refresh_token(state, client, &family).await?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token,
        id_token: None,
    })
}
