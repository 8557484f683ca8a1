//! The claims of an access token, built by a pure function of the client, the subject, the scopes and
//! `now` ([RFC 9068 §2.2](https://www.rfc-editor.org/rfc/rfc9068#section-2.2)).

use std::collections::BTreeMap;

use gatehouse_crds::admin::ClientRegistration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Claims a policy's static claims may not replace.
pub const REGISTERED_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "auth_time",
    "acr",
];

/// The claims of an access token ([RFC 9068 §2.2](https://www.rfc-editor.org/rfc/rfc9068#section-2.2)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the client_id for client_credentials, the user's subject (`user:...`, never the
    /// username) otherwise; the two never collide ([`crate::users::subject`]).
    pub sub: String,
    /// Audiences.
    pub aud: Audience,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique id.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Space-separated scopes; absent when none were granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Static claims from the client's policy.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `aud`: one string or several ([RFC 7519 §4.1.3](https://www.rfc-editor.org/rfc/rfc7519#section-4.1.3)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// As a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a.clone()],
            Audience::Many(list) => list.clone(),
        }
    }

    pub(crate) fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 {
            Audience::One(list.remove(0))
        } else {
            Audience::Many(list)
        }
    }
}

/// Builds an access token's claims. `aud` is the client's effective audience, or the client_id when
/// the policy names none (RFC 9068 requires an audience; the client_id is one no resource server
/// accepts by accident). Static claims never replace a registered claim.
pub fn build_claims(
    issuer: &str,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    now: i64,
    jti: String,
) -> AccessClaims {
    let effective = &client.effective;
    let audience = if effective.audience.is_empty() {
        vec![client.client_id.clone()]
    } else {
        effective.audience.clone()
    };
    let extra = effective
        .claims
        .iter()
        .filter(|(k, _)| !REGISTERED_CLAIMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    AccessClaims {
        iss: issuer.to_owned(),
        sub: subject.to_owned(),
        aud: Audience::from_list(audience),
        exp: now + effective.access_token_ttl_seconds,
        iat: now,
        nbf: Some(now),
        jti,
        client_id: client.client_id.clone(),
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        extra,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::registration;

    fn client(audience: &[&str], claims: &[(&str, &str)]) -> ClientRegistration {
        let mut client = registration(
            "billing",
            "client_secret_basic",
            &["client_credentials"],
            &["read"],
        );
        client.effective.audience = audience.iter().map(|a| (*a).to_owned()).collect();
        client.effective.claims = claims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        client
    }

    #[test]
    fn claims_carry_every_rfc9068_claim() {
        let claims = build_claims(
            "https://issuer",
            &client(&["api"], &[]),
            "billing",
            &["read".to_owned()],
            1_000,
            "j1".to_owned(),
        );
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value,
            json!({
                "iss": "https://issuer", "sub": "billing", "aud": "api", "exp": 1_600, "iat": 1_000,
                "nbf": 1_000, "jti": "j1", "client_id": "billing", "scope": "read"
            })
        );
    }

    #[test]
    fn the_audience_defaults_to_the_client_id() {
        let claims = build_claims("i", &client(&[], &[]), "billing", &[], 0, "j".to_owned());
        assert_eq!(claims.aud, Audience::One("billing".to_owned()));
        assert_eq!(claims.scope, None);
    }

    #[test]
    fn several_audiences_become_an_array() {
        let claims = build_claims("i", &client(&["a", "b"], &[]), "s", &[], 0, "j".to_owned());
        assert_eq!(serde_json::to_value(&claims.aud).unwrap(), json!(["a", "b"]));
    }

    #[test]
    fn static_claims_are_added_but_never_replace_registered_ones() {
        let claims = build_claims(
            "i",
            &client(&[], &[("tenant", "acme"), ("sub", "evil"), ("exp", "0")]),
            "billing",
            &[],
            0,
            "j".to_owned(),
        );
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(value["tenant"], "acme");
        assert_eq!(value["sub"], "billing");
        assert_eq!(value["exp"], 600);
    }
}
