//! The resource owner password credentials grant
//! ([RFC 6749 §4.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.3)), for clients registered for
//! it (the dispatcher checks that; public clients can't be). Failures are throttled per user and per
//! client ([§4.3.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.3.2)); an unknown user, a wrong
//! password, a disabled user and a lockout are all `invalid_grant`, and an unknown user is counted
//! like a known one, so nothing tells who exists.

use crate::client_auth::AuthenticatedClient;
use crate::db::Spend;
use crate::grant::TokenResponse;
use crate::oauth::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::throttle::{self, SignIn};
use crate::{AppState, issue, scope};

/// The description of every failed sign-in.
pub const WRONG_CREDENTIALS: &str = "the username or password is wrong";
/// The description of a locked-out sign-in.
pub const LOCKED: &str = "too many failed sign-ins; try again later";

/// Issues the tokens.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let username = params.required("username")?;
    let password = params.required("password")?;
    let effective = &client.client.effective;
    let scopes = scope::grant(params.get("scope"), &effective.scopes, &effective.default_scopes)?;
    let now = state.clock.now();
    let user = match throttle::sign_in(state, &client.client.client_id, username, password, now).await? {
        SignIn::Locked => return Err(OAuthError::new(ErrorCode::InvalidGrant, LOCKED)),
        SignIn::Refused => return Err(OAuthError::new(ErrorCode::InvalidGrant, WRONG_CREDENTIALS)),
        SignIn::User(user) => user,
    };
    let family = issue::new_family_id()?;
    match issue::new_grant(
        state,
        &client.client,
        &user.username,
        &scopes,
        now,
        &family,
        Spend::Nothing,
    )
    .await?
    {
        Some(response) => Ok(response),
        // Only a code or a refresh token can have been spent already.
        None => Err(OAuthError::server_error()),
    }
}
