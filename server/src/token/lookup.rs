//! Reading a presented token back, for introspection and revocation: a JWT is checked for signature,
//! type and issuer; an opaque access token or a refresh token is looked up by its hash. [`active_claims`] then decides whether it
//! is active at `now` ([RFC 7662 §2.2](https://www.rfc-editor.org/rfc/rfc7662#section-2.2)).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::claims::{AccessClaims, Audience};
use crate::store::{OpaqueToken, RefreshToken};
use crate::{AppState, Result};

/// What a presented token turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A JWT with a valid signature from one of our published keys and our issuer.
    Jwt(AccessClaims),
    /// An opaque access token we issued.
    Opaque(OpaqueToken),
    /// A refresh token we issued ([RFC 7009 §2](https://www.rfc-editor.org/rfc/rfc7009#section-2)
    /// requires that it can be revoked; RFC 7662 that it can be introspected).
    Refresh(RefreshToken),
    /// Nothing we issued.
    Unknown,
}

impl Found {
    /// The client the token was issued to.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Found::Jwt(c) => Some(&c.client_id),
            Found::Opaque(t) => Some(&t.client_id),
            Found::Refresh(t) => Some(&t.client_id),
            Found::Unknown => None,
        }
    }
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    kid: String,
    typ: Option<String>,
}

/// Looks a token up: a JWT is checked for signature, type and issuer (not expiry); anything else is
/// looked up by hash, as an opaque access token and then as a refresh token. `token_type_hint` is not
/// consulted: every kind is looked for, which [RFC 7009 §2.1](https://www.rfc-editor.org/rfc/rfc7009#section-2.1)
/// allows.
pub async fn find(state: &AppState, token: &str, now: i64) -> Result<Found> {
    if token.split('.').count() == 3 {
        if let Some(claims) = verify_jwt(state, token, now).await? {
            return Ok(Found::Jwt(claims));
        }
        return Ok(Found::Unknown);
    }
    if token.len() > 512 {
        return Ok(Found::Unknown);
    }
    let hash = super::hash(token);
    if let Some(row) = state.db.find_opaque_token(&hash).await? {
        return Ok(Found::Opaque(row));
    }
    match state.db.find_refresh_token(&hash).await? {
        Some(row) => Ok(Found::Refresh(row)),
        None => Ok(Found::Unknown),
    }
}

async fn verify_jwt(state: &AppState, token: &str, now: i64) -> Result<Option<AccessClaims>> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let Some(header) = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice::<JwtHeader>(&h).ok())
    else {
        return Ok(None);
    };
    if !header.typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
        return Ok(None);
    }
    let key = match state.keys.find(&header.kid, now) {
        Some(key) => key,
        None => {
            // Another replica may have added a key since the last reload.
            state.keys.reload_for_unknown_kid(&state.db, now).await?;
            match state.keys.find(&header.kid, now) {
                Some(key) => key,
                None => return Ok(None),
            }
        }
    };
    if key.alg.as_str() != header.alg {
        return Ok(None);
    }
    let Ok(signature) = URL_SAFE_NO_PAD.decode(sig_b64) else {
        return Ok(None);
    };
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    if !key.verify(&token.as_bytes()[..signing_input_len], &signature) {
        return Ok(None);
    }
    let Some(claims) = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|p| serde_json::from_slice::<AccessClaims>(&p).ok())
    else {
        return Ok(None);
    };
    if claims.iss != state.config.issuer {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// Introspection's view of a token at `now`: its claims if it is active, `None` otherwise
/// ([RFC 7662 §2.2](https://www.rfc-editor.org/rfc/rfc7662#section-2.2)).
pub async fn active_claims(state: &AppState, found: &Found, now: i64) -> Result<Option<Map<String, Value>>> {
    let (client_id, iat, exp, nbf) = match found {
        Found::Unknown => return Ok(None),
        Found::Jwt(c) => (&c.client_id, c.iat, c.exp, c.nbf),
        Found::Opaque(t) => (&t.client_id, t.issued_at, t.expires_at, None),
        Found::Refresh(t) => (&t.client_id, t.issued_at, t.expires_at, None),
    };
    // Another replica's clock may run a little ahead: `iat` and `nbf` get the configured leeway
    // (RFC 7519 §4.1.5); `exp` gets none.
    let ahead = now.saturating_add(state.config.clock_leeway);
    if now >= exp || iat > ahead || nbf.is_some_and(|nbf| nbf > ahead) {
        return Ok(None);
    }
    if state.clients.get(client_id).is_none() {
        return Ok(None);
    }
    let jti = match found {
        Found::Jwt(claims) => Some(claims.jti.as_str()),
        _ => None,
    };
    if state.db.is_token_revoked(client_id, iat, jti).await? {
        return Ok(None);
    }
    let mut out = Map::new();
    let mut token_type = "Bearer";
    match found {
        Found::Jwt(claims) => {
            if let Value::Object(map) = serde_json::to_value(claims)? {
                out.extend(map);
            }
        }
        Found::Opaque(t) => {
            if t.revoked {
                return Ok(None);
            }
            if let Ok(Value::Object(extra)) = serde_json::from_str::<Value>(&t.claims) {
                out.extend(extra);
            }
            let audience: Vec<String> = serde_json::from_str(&t.audience).unwrap_or_default();
            out.insert("iss".to_owned(), json!(state.config.issuer));
            out.insert("sub".to_owned(), json!(t.subject));
            out.insert(
                "aud".to_owned(),
                serde_json::to_value(Audience::from_list(audience))?,
            );
            out.insert("exp".to_owned(), json!(t.expires_at));
            out.insert("iat".to_owned(), json!(t.issued_at));
            out.insert("client_id".to_owned(), json!(t.client_id));
            if !t.scope.is_empty() {
                out.insert("scope".to_owned(), json!(t.scope));
            }
        }
        Found::Refresh(t) => {
            // A rotated refresh token can never be used again; a revoked one neither.
            if t.revoked || t.used {
                return Ok(None);
            }
            token_type = "refresh_token";
            out.insert("iss".to_owned(), json!(state.config.issuer));
            out.insert("sub".to_owned(), json!(t.subject));
            out.insert("exp".to_owned(), json!(t.expires_at));
            out.insert("iat".to_owned(), json!(t.issued_at));
            out.insert("client_id".to_owned(), json!(t.client_id));
            if !t.scope.is_empty() {
                out.insert("scope".to_owned(), json!(t.scope));
            }
        }
        Found::Unknown => return Ok(None),
    }
    out.insert("active".to_owned(), Value::Bool(true));
    out.insert("token_type".to_owned(), json!(token_type));
    Ok(Some(out))
}
