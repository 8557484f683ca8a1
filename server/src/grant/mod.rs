//! The token endpoint ([RFC 6749 §3.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.2)). It reads
//! `grant_type` itself, authenticates the client once, checks that the client is registered for the
//! grant, and dispatches to the grant's module. A new grant is a module here, a [`Grant`] variant and
//! one arm in [`token`]; discovery lists it from [`Grant::ALL`].

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_crds::GrantType;
use serde::Serialize;

use crate::AppState;
use crate::client_auth;
use crate::oauth::{ErrorCode, OAuthError, no_store};
use crate::params::Form;

/// The grants the token endpoint implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    /// [RFC 6749 §4.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1).
    AuthorizationCode,
    /// [RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4).
    ClientCredentials,
    /// [RFC 6749 §4.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.3).
    Password,
    /// [RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6).
    RefreshToken,
}

impl Grant {
    /// Every implemented grant, in the order discovery lists them.
    pub const ALL: [Grant; 4] = [
        Grant::AuthorizationCode,
        Grant::Password,
        Grant::ClientCredentials,
        Grant::RefreshToken,
    ];

    /// The `grant_type` value.
    pub fn name(self) -> &'static str {
        self.registered_as().as_str()
    }

    /// The grant a client must be registered for to use this one.
    pub fn registered_as(self) -> GrantType {
        match self {
            Grant::AuthorizationCode => GrantType::AuthorizationCode,
            Grant::ClientCredentials => GrantType::ClientCredentials,
            Grant::Password => GrantType::Password,
            Grant::RefreshToken => GrantType::RefreshToken,
        }
    }

    /// The grant a `grant_type` value names, if implemented.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }
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

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        no_store(&mut response);
        response
    }
}

/// `POST /token`.
pub async fn token(State(state): State<AppState>, form: Form) -> Result<Response, OAuthError> {
    let grant_type = form.params.required("grant_type")?;
    let grant = Grant::from_name(grant_type).ok_or_else(|| {
        let supported: Vec<&str> = Grant::ALL.iter().map(|g| g.name()).collect();
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "unsupported grant_type; this server supports: {}",
                supported.join(", ")
            ),
        )
    })?;
    let presented = client_auth::presented(&form.headers, &form.params)?;
    let client = client_auth::authenticate(&state.clients, presented, state.clock.now())?;
    if !client
        .client
        .effective
        .grant_types
        .contains(&grant.registered_as())
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("the client is not registered for {}", grant.name()),
        ));
    }
    let response = match grant {
        Grant::ClientCredentials => client_credentials::exchange(&state, &client, &form.params).await?,
        Grant::AuthorizationCode => authorization_code::exchange(&state, &client, &form.params).await?,
        Grant::Password => password::exchange(&state, &client, &form.params).await?,
        Grant::RefreshToken => refresh_token::exchange(&state, &client, &form.params).await?,
    };
    state.metrics.token_issued(grant.name());
    Ok(response.into_response())
}
