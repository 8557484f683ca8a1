//! The grants, one module each, and the token endpoint
//! ([RFC 6749 §3.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.2)) that dispatches to them. The
//! endpoint reads `grant_type` itself, reads the clock once, authenticates the client once, checks
//! that the client is registered for the grant, and calls the grant's `exchange` with that `now`.
//!
//! A new grant is a module here, a [`Grant`] variant and one arm in [`token`]; discovery lists it from
//! [`Grant::ALL`]. A grant whose decision is more than a lookup keeps it in a pure `check` (the code
//! and refresh grants with `now` passed in: "is this code still valid"; client_credentials for its
//! scopes), and the I/O around it in `exchange`. The password grant's decision is the throttled
//! sign-in of [`crate::users::throttle`], itself a pure rule with storage around it. The implicit grant ([`implicit`]) is answered
//! at the authorization endpoint, not here.

pub mod authorization_code;
pub mod client_credentials;
pub mod implicit;
pub mod password;
pub mod refresh_token;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_crds::GrantType;

use crate::AppState;
use crate::client;
use crate::oauth::{ErrorCode, Form, OAuthError};

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
    let now = state.clock.now();
    let presented = client::presented(&form.headers, &form.params)?;
    let client = client::authenticate(&state.clients, presented, now)?;
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
        Grant::ClientCredentials => client_credentials::exchange(&state, &client, &form.params, now).await?,
        Grant::AuthorizationCode => authorization_code::exchange(&state, &client, &form.params, now).await?,
        Grant::Password => password::exchange(&state, &client, &form.params, now).await?,
        Grant::RefreshToken => refresh_token::exchange(&state, &client, &form.params, now).await?,
    };
    state.metrics.token_issued(grant.name());
    Ok(response.into_response())
}
