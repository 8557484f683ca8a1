//! The tokens of a grant in which a person is present (authorization code, implicit, password,
//! refresh). Every such grant starts a family; the access tokens minted within it are recorded, so
//! that revoking the family (a reused refresh token, a replayed code, a disabled user) revokes them
//! too. Refresh tokens are opaque, 256 random bits, stored as SHA-256, and end with the family's
//! absolute lifetime (`refreshTokenTtlSeconds` from the family's start).

use gatehouse_crds::GrantType;
use gatehouse_crds::admin::ClientRegistration;

use super::{Minted, TokenResponse};
use crate::store::{FamilyAccess, RefreshToken, Spend};
use crate::{AppState, Result};

/// A new family id.
pub fn new_family_id() -> String {
    super::random()
}

/// Whether the client may hold refresh tokens: it is registered for the refresh_token grant.
pub fn issues_refresh_tokens(client: &ClientRegistration) -> bool {
    client.effective.grant_types.contains(&GrantType::RefreshToken)
}

/// An access token minted within a family and not yet handed out: its records are stored by
/// [`store`].
#[derive(Debug)]
pub struct Pending {
    /// The token, for the response.
    pub minted: Minted,
    /// What to store.
    pub record: FamilyAccess,
}

/// Mints an access token for a user within a family at `now`. Touches no database.
pub fn access_token(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    family_id: &str,
    now: i64,
) -> Result<Pending> {
    let prepared = super::prepare(state, client, subject, scopes, now)?;
    Ok(Pending {
        record: FamilyAccess {
            jti: prepared.claims.jti,
            family_id: family_id.to_owned(),
            client_id: client.client_id.clone(),
            opaque: prepared.opaque,
            expires_at: prepared.claims.exp,
        },
        minted: prepared.minted,
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

/// A new refresh token of a family, issued at `now`: its value, and the record to store.
pub fn refresh_token(client: &ClientRegistration, family: &Family<'_>, now: i64) -> (String, RefreshToken) {
    let value = super::random();
    let record = RefreshToken {
        token_hash: super::hash(&value),
        family_id: family.id.to_owned(),
        client_id: client.client_id.clone(),
        subject: family.subject.to_owned(),
        scope: family.scope.to_owned(),
        auth_time: family.auth_time,
        issued_at: now,
        expires_at: family.expires_at,
        used: false,
        revoked: false,
    };
    (value, record)
}

/// Stores a grant's records in one transaction with the spending of `spend`, then builds the
/// response. `None` when `spend` was spent already (a replay or a concurrent exchange).
pub async fn store(
    state: &AppState,
    spend: Spend<'_>,
    pending: Pending,
    refresh: Option<(String, RefreshToken)>,
) -> Result<Option<TokenResponse>> {
    if !state
        .db
        .store_grant(spend, &pending.record, refresh.as_ref().map(|(_, r)| r))
        .await?
    {
        return Ok(None);
    }
    let mut response = TokenResponse::bearer(pending.minted);
    response.refresh_token = refresh.map(|(value, _)| value);
    Ok(Some(response))
}

/// What starts a new family.
#[derive(Clone, Copy, Debug)]
pub struct NewGrant<'a> {
    /// The user.
    pub subject: &'a str,
    /// The granted scopes.
    pub scopes: &'a [String],
    /// When the user signed in.
    pub auth_time: i64,
    /// The family's id.
    pub family_id: &'a str,
}

/// The tokens of a new grant for a user at `now`: an access token and, when the client may hold one,
/// a refresh token starting a family that ends `refreshTokenTtlSeconds` from now. They are stored in
/// one transaction with the spending of `spend`; `None` when that was spent already.
pub async fn new_grant(
    state: &AppState,
    client: &ClientRegistration,
    grant: NewGrant<'_>,
    spend: Spend<'_>,
    now: i64,
) -> Result<Option<TokenResponse>> {
    let pending = access_token(state, client, grant.subject, grant.scopes, grant.family_id, now)?;
    let refresh = issues_refresh_tokens(client).then(|| {
        let scope = grant.scopes.join(" ");
        let family = Family {
            id: grant.family_id,
            subject: grant.subject,
            scope: &scope,
            auth_time: grant.auth_time,
            expires_at: now + client.effective.refresh_token_ttl_seconds,
        };
        refresh_token(client, &family, now)
    });
    store(state, spend, pending, refresh).await
}
