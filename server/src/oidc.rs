//! OpenID Connect: the ID token issued with a code whose grant includes `openid`
//! ([Core §2](https://openid.net/specs/openid-connect-core-1_0.html#IDToken)), and `/userinfo`
//! ([Core §5.3](https://openid.net/specs/openid-connect-core-1_0.html#UserInfo)) behind a Bearer token
//! with RFC 6750 errors.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_crds::admin::ClientRegistration;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::keys::SigningAlg;
use crate::oauth::{ErrorCode, OAuthError};
use crate::{AppState, Error, Result, token};

/// `at_hash`: the left half of the hash of the access token, with the hash of the signing algorithm
/// ([Core §3.1.3.6](https://openid.net/specs/openid-connect-core-1_0.html#CodeIDToken)). Pure.
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
        SigningAlg::Es256 | SigningAlg::Rs256 => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Signs an ID token for `subject`, to `client`.
pub fn id_token(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    nonce: Option<&str>,
    auth_time: i64,
    access_token: &str,
) -> Result<String> {
    let now = state.clock.now();
    let key = state
        .keys
        .signing_key(now)
        .ok_or(Error::Crypto("no signing key is active"))?;
    let mut claims = json!({
        "iss": state.config.issuer,
        "sub": subject,
        "aud": client.client_id,
        "azp": client.client_id,
        "exp": now + client.effective.access_token_ttl_seconds,
        "iat": now,
        "auth_time": auth_time,
        "at_hash": at_hash(access_token, key.alg),
    });
    if let (Some(nonce), Some(map)) = (nonce, claims.as_object_mut()) {
        map.insert("nonce".to_owned(), json!(nonce));
    }
    key.sign_jwt(crate::keys::JwtType::IdToken, &claims)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

fn challenge(status: StatusCode, value: &'static str, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    crate::oauth::no_store(&mut response);
    response
}

/// `GET` or `POST /userinfo`: `sub` plus the claims of the granted scopes.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, OAuthError> {
    let Some(presented) = bearer(&headers) else {
        // RFC 6750 §3.1: no error code when the request carried no token.
        return Ok(challenge(
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="gatehouse""#,
            json!({"error": "invalid_request", "error_description": "send the access token as Authorization: Bearer"}),
        ));
    };
    let now = state.clock.now();
    let found = token::find(&state, presented).await?;
    let Some(claims) = token::active_claims(&state, &found, now).await? else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        ));
    };
    let scopes: Vec<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(' ')
        .collect();
    if !scopes.contains(&"openid") {
        return Ok(challenge(
            StatusCode::FORBIDDEN,
            r#"Bearer realm="gatehouse", error="insufficient_scope", scope="openid""#,
            json!({"error": "insufficient_scope", "error_description": "the token was not granted openid"}),
        ));
    }
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let Some(user) = state.db.find_user(subject).await?.filter(|u| !u.user.disabled) else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the user no longer exists",
        ));
    };
    let mut out = Map::new();
    out.insert("sub".to_owned(), json!(user.user.username));
    if scopes.contains(&"profile") {
        out.insert("preferred_username".to_owned(), json!(user.user.username));
        if let Some(name) = &user.user.name {
            out.insert("name".to_owned(), json!(name));
        }
    }
    if scopes.contains(&"email")
        && let Some(email) = &user.user.email
    {
        out.insert("email".to_owned(), json!(email));
    }
    let mut response = Json(Value::Object(out)).into_response();
    crate::oauth::no_store(&mut response);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_sha256() {
        // OpenID Connect Core A.3's example access token and at_hash.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlg::Rs256),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
