//! Every token the server issues, and the one path that issues them.
//!
//! - [`claims`]: an access token's claims, built by a pure function.
//! - [`prepare`] is the one mint: an access token as an RFC 9068 JWT (signed with the in-memory key,
//!   written nowhere) or as an opaque reference (256 random bits, of which only the SHA-256 is stored,
//!   with the claims it stands for). [`mint`] stores the opaque row at once (client_credentials);
//!   [`family`] stores it with the grant's other records in one transaction.
//! - [`family`]: the tokens of a grant in which a person is present, with their refresh tokens.
//! - [`id_token`]: OpenID Connect ID tokens. [`lookup`]: reading a presented token back.
//! - [`random`] and [`hash`]: the random values and digests of every token, code and session.

pub mod claims;
pub mod family;
pub mod id_token;
pub mod lookup;

use axum::Json;
use axum::response::{IntoResponse, Response};
use gatehouse_crds::TokenFormat;
use gatehouse_crds::admin::ClientRegistration;
use serde::Serialize;

pub use claims::{AccessClaims, Audience, REGISTERED_CLAIMS, build_claims};
pub use lookup::{Found, active_claims, find};

use crate::oauth::no_store;
use crate::store::OpaqueToken;
use crate::{AppState, Error, Result};

/// 256 random bits, base64url without padding: opaque tokens, refresh tokens, codes, family and
/// session ids.
pub fn random() -> String {
    gatehouse_crds::random::token()
}

/// Hex SHA-256 of a token, the key it is stored under (the same digest the admin API uses for client
/// secrets).
pub fn hash(token: &str) -> String {
    gatehouse_crds::admin::secret_digest(token)
}

/// A freshly minted access token.
#[derive(Clone, Debug)]
pub struct Minted {
    /// The token itself.
    pub token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: Option<String>,
}

/// An access token minted and not yet handed out.
#[derive(Debug)]
pub struct Prepared {
    /// The token, for the response.
    pub minted: Minted,
    /// Its claims.
    pub claims: AccessClaims,
    /// The row an opaque token needs stored before it is handed out; `None` for a JWT.
    pub opaque: Option<OpaqueToken>,
}

/// Mints an access token for `client` at `now`, in the format its policy asks for. Touches no
/// database: an opaque token's row comes back in [`Prepared::opaque`].
pub fn prepare(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    now: i64,
) -> Result<Prepared> {
    let jti = gatehouse_crds::random::id();
    let claims = build_claims(&state.config.issuer, client, subject, scopes, now, jti);
    let (token, opaque) = match client.effective.access_token_format {
        TokenFormat::Jwt => (sign_jwt(state, &claims, now)?, None),
        TokenFormat::Opaque => {
            let token = random();
            let row = opaque_record(&claims, &token)?;
            (token, Some(row))
        }
    };
    Ok(Prepared {
        minted: Minted {
            token,
            expires_in: claims.exp - now,
            scope: claims.scope.clone(),
        },
        claims,
        opaque,
    })
}

/// Mints an access token that belongs to no family (client_credentials), storing an opaque token's
/// row before it is handed out.
pub async fn mint(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    now: i64,
) -> Result<Minted> {
    let prepared = prepare(state, client, subject, scopes, now)?;
    if let Some(row) = &prepared.opaque {
        state.db.insert_opaque_token(row).await?;
    }
    Ok(prepared.minted)
}

/// The stored record of opaque token `token` standing for `claims`.
pub fn opaque_record(claims: &AccessClaims, token: &str) -> Result<OpaqueToken> {
    Ok(OpaqueToken {
        token_hash: hash(token),
        client_id: claims.client_id.clone(),
        subject: claims.sub.clone(),
        scope: claims.scope.clone().unwrap_or_default(),
        audience: serde_json::to_string(&claims.aud.to_vec())?,
        claims: serde_json::to_string(&claims.extra)?,
        issued_at: claims.iat,
        expires_at: claims.exp,
        revoked: false,
    })
}

/// Signs claims as an RFC 9068 JWT with the key that signs at `now`.
pub fn sign_jwt(state: &AppState, claims: &AccessClaims, now: i64) -> Result<String> {
    let key = state
        .keys
        .signing_key(now)
        .ok_or(Error::Crypto("no signing key is active"))?;
    key.sign_jwt(crate::keys::JwtType::AccessToken, claims)
}

/// A successful token response ([RFC 6749 §5.1](https://www.rfc-editor.org/rfc/rfc6749#section-5.1)).
#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A refresh token, for the grants that issue one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An OpenID Connect ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// The response carrying `minted` as a Bearer token
    /// ([RFC 6750 §4](https://www.rfc-editor.org/rfc/rfc6750#section-4)), with no refresh or ID token.
    pub fn bearer(minted: Minted) -> Self {
        Self {
            access_token: minted.token,
            token_type: "Bearer",
            expires_in: minted.expires_in,
            scope: minted.scope,
            refresh_token: None,
            id_token: None,
        }
    }
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        no_store(&mut response);
        response
    }
}
