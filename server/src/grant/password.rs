//! The resource owner password credentials grant
//! ([RFC 6749 §4.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.3)), for clients registered for
//! it (the dispatcher checks that; public clients can't be). Failures are throttled per user and per
//! client ([§4.3.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.3.2)); an unknown user, a wrong
//! password, a disabled user and a lockout are all `invalid_grant`, and an unknown user is counted
//! like a known one, so nothing tells who exists.

use crate::AppState;
use crate::client::AuthenticatedClient;
use crate::oauth::{ErrorCode, OAuthError, Params, scope};
use crate::store::Spend;
use crate::token::TokenResponse;
use crate::token::family::{self, NewGrant};
use crate::users::throttle::{self, SignIn};

/// The description of every failed sign-in.
pub const WRONG_CREDENTIALS: &str = "the username or password is wrong";
/// The description of a locked-out sign-in.
pub const LOCKED: &str = "too many failed sign-ins; try again later";

/// Issues the tokens.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let username = params.required("username")?;
    let password = params.required("password")?;
    let effective = &client.client.effective;
    let scopes = scope::grant(params.get("scope"), &effective.scopes, &effective.default_scopes)?;
    let user = match throttle::sign_in(state, &client.client.client_id, username, password, now).await? {
        SignIn::Locked => return Err(OAuthError::new(ErrorCode::InvalidGrant, LOCKED)),
        SignIn::Refused => return Err(OAuthError::new(ErrorCode::InvalidGrant, WRONG_CREDENTIALS)),
        SignIn::User(user) => user,
    };
    // `now` was read when the request arrived, before the argon2 queue: the token's lifetime counts
    // from then, so under load `expires_in` errs long by the queue's wait, never short.
    let family_id = family::new_family_id();
    let grant = NewGrant {
        subject: &user.subject,
        scopes: &scopes,
        auth_time: now,
        family_id: &family_id,
    };
    match family::new_grant(state, &client.client, grant, Spend::Nothing, now).await? {
        Some(response) => Ok(response),
        // Only a code or a refresh token can have been spent already.
        None => Err(OAuthError::server_error()),
    }
}
