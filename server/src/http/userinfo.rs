//! OpenID Connect's `/userinfo` ([Core §5.3](https://openid.net/specs/openid-connect-core-1_0.html#UserInfo))
//! behind a Bearer token, with RFC 6750 errors. The ID token is issued in [`crate::token::id_token`].
//!
//! It answers only for a token issued to a user, found by the token's subject: a client's own token
//! (client_credentials, `sub` = its client_id) is `invalid_token`, never the claims of a user whose
//! name happens to equal the client_id ([RFC 9700 §4.15](https://www.rfc-editor.org/rfc/rfc9700#section-4.15)).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::oauth::{ErrorCode, OAuthError, no_store};
use crate::users::subject;
use crate::{AppState, token};

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

fn challenge(status: StatusCode, value: &str, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    no_store(&mut response);
    response
}

/// `GET` or `POST /userinfo`: `sub` plus the claims of the granted scopes.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, OAuthError> {
    let Some(presented) = bearer(&headers) else {
        // RFC 6750 §3.1: no error code when the request carried no token.
        return Ok(challenge(
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="gatehouse""#,
            json!({"error": ErrorCode::InvalidRequest, "error_description": "send the access token as Authorization: Bearer"}),
        ));
    };
    let now = state.clock.now();
    let found = token::find(&state, presented, now).await?;
    // Only an access token opens /userinfo (RFC 6750 §2); a refresh token is not one.
    let found = match found {
        token::Found::Refresh(_) => token::Found::Unknown,
        access => access,
    };
    let Some(claims) = token::active_claims(&state, &found, now).await? else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        ));
    };
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let client_id = claims
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(subject) = subject::of_token(sub, client_id) else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token was issued to a client, not to a user",
        ));
    };
    let Some(user) = state
        .db
        .find_user_by_subject(subject)
        .await?
        .filter(|u| !u.user.disabled)
    else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the user no longer exists or is disabled",
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
            &format!(
                r#"Bearer realm="gatehouse", error="{}", scope="openid""#,
                ErrorCode::InsufficientScope.as_str()
            ),
            json!({"error": ErrorCode::InsufficientScope, "error_description": "the token was not granted openid"}),
        ));
    }
    let mut out = Map::new();
    out.insert("sub".to_owned(), json!(user.user.subject));
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
    no_store(&mut response);
    Ok(response)
}
