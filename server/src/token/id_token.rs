//! OpenID Connect ID tokens, issued with the tokens of a grant that includes `openid`
//! ([Core §2](https://openid.net/specs/openid-connect-core-1_0.html#IDToken)).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_crds::admin::ClientRegistration;
use serde_json::json;
use sha2::{Digest, Sha256, Sha512};

use crate::keys::{JwtType, SigningAlg};
use crate::store::User;
use crate::{AppState, Error, Result};

/// `at_hash`: the left half of the hash of the access token, with the hash of the signing algorithm
/// ([Core §3.1.3.6](https://openid.net/specs/openid-connect-core-1_0.html#CodeIDToken)). Pure.
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
        SigningAlg::Es256 | SigningAlg::Rs256 => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Who an ID token is about, and what the grant lets it say.
#[derive(Clone, Copy, Debug)]
pub struct About<'a> {
    /// The user: `sub` is their subject, never their username.
    pub user: &'a User,
    /// The granted scopes: with `profile`, the username goes in `preferred_username`
    /// ([Core §5.1](https://openid.net/specs/openid-connect-core-1_0.html#StandardClaims)).
    pub scopes: &'a [String],
    /// The nonce of the authorization request.
    pub nonce: Option<&'a str>,
    /// When the user signed in.
    pub auth_time: i64,
}

/// Signs an ID token about a user, to `client`, at `now`.
pub fn id_token(
    state: &AppState,
    client: &ClientRegistration,
    about: &About<'_>,
    access_token: &str,
    now: i64,
) -> Result<String> {
    let key = state
        .keys
        .signing_key(now)
        .ok_or(Error::Crypto("no signing key is active"))?;
    let mut claims = json!({
        "iss": state.config.issuer,
        "sub": about.user.subject,
        "aud": client.client_id,
        "azp": client.client_id,
        "exp": now + client.effective.access_token_ttl_seconds,
        "iat": now,
        "auth_time": about.auth_time,
        "at_hash": at_hash(access_token, key.alg),
    });
    if let Some(map) = claims.as_object_mut() {
        if let Some(nonce) = about.nonce {
            map.insert("nonce".to_owned(), json!(nonce));
        }
        if about.scopes.iter().any(|s| s == "profile") {
            map.insert("preferred_username".to_owned(), json!(about.user.username));
        }
    }
    key.sign_jwt(JwtType::IdToken, &claims)
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
