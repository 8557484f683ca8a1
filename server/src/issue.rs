//! Issuing the tokens of a grant in which a person is present (authorization code, password, refresh).
//! Every such grant starts a family; the access tokens minted within it are recorded, so that
//! revoking the family (a reused refresh token, a replayed code, a disabled user) revokes them too.
//! Refresh tokens are opaque, 256 random bits, stored as SHA-256, and end with the family's absolute
//! lifetime (`refreshTokenTtlSeconds` from the family's start).

use gatehouse_crds::admin::ClientRegistration;
use gatehouse_crds::{GrantType, TokenFormat};

use crate::db::{FamilyAccess, RefreshToken, Spend};
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

/// An access token minted within a family and not yet handed out: its records must be stored first,
/// with [`Db::store_grant`](crate::db::Db::store_grant).
#[derive(Debug)]
pub struct Pending {
    /// The token, for the response.
    pub minted: Minted,
    /// What to store.
    pub record: FamilyAccess,
}

/// Mints an access token for a user within a family. Touches no database.
pub fn access_token(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    family_id: &str,
) -> Result<Pending> {
    let now = state.clock.now();
    let jti = token::random_token()?;
    let claims = token::build_claims(&state.config.issuer, client, subject, scopes, now, jti.clone());
    let (access, opaque) = match client.effective.access_token_format {
        TokenFormat::Jwt => (token::sign_jwt(state, &claims, now)?, None),
        TokenFormat::Opaque => {
            let access = token::random_token()?;
            let record = token::opaque_record(&claims, &access)?;
            (access, Some(record))
        }
    };
    Ok(Pending {
        record: FamilyAccess {
            jti,
            family_id: family_id.to_owned(),
            client_id: client.client_id.clone(),
            opaque,
            expires_at: claims.exp,
        },
        minted: Minted {
            token: access,
            expires_in: claims.exp - now,
            scope: claims.scope,
        },
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

/// A new refresh token of a family: its value, and the record to store.
pub fn refresh_token(
    state: &AppState,
    client: &ClientRegistration,
    family: &Family<'_>,
) -> Result<(String, RefreshToken)> {
    let value = token::random_token()?;
    let record = RefreshToken {
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
    };
    Ok((value, record))
}

/// The tokens of a new grant for a user: an access token and, when the client may hold one, a
/// refresh token starting a family that ends `refreshTokenTtlSeconds` from now. They are stored in
/// one transaction with the spending of `spend`; `None` when that was spent already.
pub async fn new_grant(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    auth_time: i64,
    family_id: &str,
    spend: Spend<'_>,
) -> Result<Option<TokenResponse>> {
    let pending = access_token(state, client, subject, scopes, family_id)?;
    let refresh = if issues_refresh_tokens(client) {
        let scope = scopes.join(" ");
        let family = Family {
            id: family_id,
            subject,
            scope: &scope,
            auth_time,
            expires_at: state.clock.now() + client.effective.refresh_token_ttl_seconds,
        };
        Some(self::refresh_token(state, client, &family)?)
    } else {
        None
    };
    if !state
        .db
        .store_grant(spend, &pending.record, refresh.as_ref().map(|(_, r)| r))
        .await?
    {
        return Ok(None);
    }
    let minted = pending.minted;
    let refresh_token = refresh.map(|(value, _)| value);
    Ok(Some(TokenResponse {
        access_token: minted.token,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token,
        id_token: None,
    }))
}
