//! The client's credentials Secret as workloads read it: its key names (the spec's overrides, else the
//! documented defaults) and the data under them. Two writers share this layout, the operator (a Secret
//! in the cluster) and the standalone server (a Secret manifest next to the clients), so a workload
//! mounts the same keys either way. Pure.

use std::collections::BTreeMap;

use crate::{OAuthClient, SecretKeys};

/// Default key of the client_id.
pub const CLIENT_ID: &str = "client_id";
/// Default key of the current client secret.
pub const CLIENT_SECRET: &str = "client_secret";
/// Default key of the secret being rotated out, present during a grace period only.
pub const PREVIOUS_CLIENT_SECRET: &str = "previous_client_secret";
/// Default key of the token endpoint URL.
pub const TOKEN_URL: &str = "token_url";
/// Default key of the issuer URL.
pub const ISSUER: &str = "issuer";
/// Default key of the space-separated default scopes.
pub const SCOPE: &str = "scope";

/// The shortest client secret accepted, in bytes. A floor on length, not a measure of entropy: 32 random
/// bytes hold 256 bits, and even 32 hex digits hold 128, the least [RFC 6749 §10.10] allows for a
/// credential an attacker could guess. The server keeps a fast SHA-256 of each secret, not a slow KDF
/// (see the architecture's performance notes), so a short secret would be cheap to search. Generated
/// secrets are 32 random bytes, 43 characters of base64url.
///
/// [RFC 6749 §10.10]: https://www.rfc-editor.org/rfc/rfc6749#section-10.10
pub const MIN_SECRET_BYTES: usize = 32;

/// Whether `secret` is long enough to be a client secret (see [`MIN_SECRET_BYTES`]).
pub fn long_enough(secret: &str) -> bool {
    secret.len() >= MIN_SECRET_BYTES
}

/// The key names of a client's credentials Secret, with the spec's overrides applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyNames {
    /// Holds the client_id.
    pub client_id: String,
    /// Holds the current secret.
    pub client_secret: String,
    /// Holds the secret being rotated out, during a grace period.
    pub previous_client_secret: String,
    /// Holds the token endpoint URL.
    pub token_url: String,
    /// Holds the issuer.
    pub issuer: String,
    /// Holds the space-separated default scopes.
    pub scope: String,
}

impl Default for KeyNames {
    /// The documented names.
    fn default() -> Self {
        Self::from_spec(None)
    }
}

impl KeyNames {
    /// The key names for `keys` (a spec's `secret.keys`), each defaulting to its documented name.
    pub fn from_spec(keys: Option<&SecretKeys>) -> Self {
        let pick = |f: fn(&SecretKeys) -> Option<&String>, default: &str| {
            keys.and_then(f).cloned().unwrap_or_else(|| default.to_owned())
        };
        Self {
            client_id: pick(|k| k.client_id.as_ref(), CLIENT_ID),
            client_secret: pick(|k| k.client_secret.as_ref(), CLIENT_SECRET),
            previous_client_secret: pick(|k| k.previous_client_secret.as_ref(), PREVIOUS_CLIENT_SECRET),
            token_url: pick(|k| k.token_url.as_ref(), TOKEN_URL),
            issuer: pick(|k| k.issuer.as_ref(), ISSUER),
            scope: pick(|k| k.scope.as_ref(), SCOPE),
        }
    }

    /// The key names of `client`'s Secret: `spec.secret.keys`, and for a Secret the platform team
    /// brings, `spec.existingSecretRef.clientSecretKey` as the client-secret key.
    pub fn of(client: &OAuthClient) -> Self {
        let mut names = Self::from_spec(client.spec.secret.as_ref().and_then(|s| s.keys.as_ref()));
        if let Some(key) = client
            .spec
            .existing_secret_ref
            .as_ref()
            .and_then(|r| r.client_secret_key.clone())
        {
            names.client_secret = key;
        }
        names
    }

    /// The Secret's data: every value of `credentials` under its key name. The client-secret keys are
    /// present only when there is a value for them.
    pub fn data(&self, credentials: &Credentials<'_>) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        data.insert(self.client_id.clone(), credentials.client_id.to_owned());
        if let Some(secret) = credentials.secret {
            data.insert(self.client_secret.clone(), secret.to_owned());
        }
        if let Some(previous) = credentials.previous {
            data.insert(self.previous_client_secret.clone(), previous.to_owned());
        }
        data.insert(self.token_url.clone(), token_url(credentials.issuer));
        data.insert(self.issuer.clone(), credentials.issuer.to_owned());
        data.insert(self.scope.clone(), credentials.scopes.join(" "));
        data
    }
}

/// What a credentials Secret tells a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The OAuth client_id.
    pub client_id: &'a str,
    /// The current secret; absent for a public client.
    pub secret: Option<&'a str>,
    /// The secret being rotated out, during a grace period only.
    pub previous: Option<&'a str>,
    /// The issuer URL.
    pub issuer: &'a str,
    /// The default scopes.
    pub scopes: &'a [String],
}

/// The token endpoint of `issuer`.
pub fn token_url(issuer: &str) -> String {
    format!("{}/token", issuer.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExistingSecretRef, SecretTemplate};

    #[test]
    fn the_data_holds_the_documented_keys_and_the_token_url_of_the_issuer() {
        let scopes = vec!["read".to_owned(), "write".to_owned()];
        let data = KeyNames::default().data(&Credentials {
            client_id: "billing.team-a",
            secret: Some("s3cret"),
            previous: None,
            issuer: "https://auth.example.com/",
            scopes: &scopes,
        });
        assert_eq!(
            data,
            BTreeMap::from([
                ("client_id".to_owned(), "billing.team-a".to_owned()),
                ("client_secret".to_owned(), "s3cret".to_owned()),
                ("issuer".to_owned(), "https://auth.example.com/".to_owned()),
                ("scope".to_owned(), "read write".to_owned()),
                (
                    "token_url".to_owned(),
                    "https://auth.example.com/token".to_owned()
                ),
            ])
        );
    }

    #[test]
    fn a_secret_needs_32_bytes_and_a_generated_one_has_them() {
        assert!(!long_enough(&"x".repeat(31)));
        assert!(long_enough(&"x".repeat(32)));
        assert!(long_enough(&crate::random::token()));
    }

    #[test]
    fn key_names_come_from_the_spec_and_an_existing_secret_names_its_own_secret_key() {
        let mut client = OAuthClient::test("billing");
        client.spec.secret = Some(SecretTemplate {
            keys: Some(SecretKeys {
                client_id: Some("ID".into()),
                scope: Some("SCOPES".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let names = KeyNames::of(&client);
        assert_eq!((names.client_id.as_str(), names.scope.as_str()), ("ID", "SCOPES"));
        assert_eq!(names.client_secret, CLIENT_SECRET);

        let mut byo = OAuthClient::test("byo");
        byo.spec.existing_secret_ref = Some(ExistingSecretRef {
            name: "mine".into(),
            client_secret_key: Some("password".into()),
        });
        assert_eq!(KeyNames::of(&byo).client_secret, "password");
    }
}
