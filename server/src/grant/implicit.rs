//! The implicit grant ([RFC 6749 §4.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.2)), for
//! clients registered for it: the authorization endpoint hands the access token to the user agent in
//! the redirect's fragment. No refresh token ([§4.2.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.2.2)).
//! The token still belongs to a family, so that revoking the user's grants revokes it too.

use gatehouse_crds::admin::ClientRegistration;

use crate::store::Spend;
use crate::token::Minted;
use crate::token::family;
use crate::{AppState, Result};

/// Issues the access token for a signed-in user (by subject) who approved the request, at `now`.
pub async fn issue(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    now: i64,
) -> Result<Minted> {
    let family_id = family::new_family_id();
    let pending = family::access_token(state, client, subject, scopes, &family_id, now)?;
    // Nothing is spent, so the transaction always stores.
    state
        .db
        .store_grant(Spend::Nothing, &pending.record, None)
        .await?;
    Ok(pending.minted)
}
