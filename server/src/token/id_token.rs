//! OpenID Connect ID tokens, issued with the tokens of a grant that includes `openid`
//! ([Core §2](https://openid.net/specs/openid-connect-core-1_0.html#IDToken)).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_crds::admin::ClientRegistration;
use serde_json::json;
use sha2::{Digest, Sha256, Sha512};

use crate::keys::{JwtType, SigningAlg};
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

/// Signs an ID token for `subject`, to `client`, at `now`.
pub fn id_token(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    nonce: Option<&str>,
    auth_time: i64,
    access_token: &str,
    now: i64,
) -> Result<String> {
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
