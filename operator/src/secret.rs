//! The generated client Secret: its metadata and rotation annotations around the shared layout of
//! [`gatehouse_crds::credentials`], and how the current secret is read back. Rendering is pure; only
//! [`generate`] draws randomness.
//!
//! The Secret is also where the operator remembers which digests the token server accepts for the
//! client ([`ACCEPTED_DIGESTS`]): whoever can read that annotation can read the secrets themselves,
//! whereas OAuthClients are readable by a much wider audience. The OAuthClient carries no digest.

use std::collections::BTreeMap;

use gatehouse_crds::{
    OAuthClient,
    admin::{SecretDigest, secret_digest},
    credentials::{Credentials, KeyNames},
};
use jiff::Timestamp;
use k8s_openapi::{
    ByteString,
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};

/// Annotation on the Secret: when its current secret was generated (RFC 3339).
pub const ROTATED_AT: &str = "gatehouse.dev/rotated-at";
/// Annotation on the Secret: the `gatehouse.dev/rotate` value its current secret was generated for.
pub const ROTATE_HANDLED: &str = "gatehouse.dev/rotate-handled";
/// Annotation on the OAuthClient that forces a rotation when its value changes.
pub const ROTATE: &str = "gatehouse.dev/rotate";
/// Annotation on the generated Secret: the SHA-256 digests the token server is to accept for the client,
/// each rotated-out one with the end of its grace period (JSON [`SecretDigest`]s). It changes in the
/// same write as the secrets, and it is what lets the secret of a deleted Secret, or one rotated out
/// twice within a grace period, keep working to the end of its grace after a restart.
pub const ACCEPTED_DIGESTS: &str = "gatehouse.dev/accepted-digests";
/// Annotation on the OAuthClient where earlier operators remembered the registered digests. Readable
/// by everyone who can read OAuthClients, so it is read once more to migrate, and then removed.
pub const LEGACY_REGISTERED_DIGESTS: &str = "gatehouse.dev/registered-digests";
/// Label on every generated Secret: the name of its OAuthClient. The operator watches only Secrets that
/// carry it ([`WATCH_SELECTOR`]); a team may put it on a Secret it brings (`existingSecretRef`) for
/// the operator to react to a change at once instead of at the next resync.
pub const CLIENT_LABEL: &str = "gatehouse.dev/client";
/// The label selector of the operator's Secret watch: Secrets with a [`CLIENT_LABEL`].
pub const WATCH_SELECTOR: &str = CLIENT_LABEL;
/// The managed-by label value.
pub const MANAGED_BY: &str = "gatehouse-operator";

/// Everything a generated Secret holds: the credentials workloads read, and the rotation state in its
/// annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents<'a> {
    /// The data, under the key names of [`KeyNames::of`].
    pub credentials: Credentials<'a>,
    /// When the current secret was generated.
    pub rotated_at: Option<Timestamp>,
    /// The rotate annotation value acted on.
    pub rotate_handled: Option<&'a str>,
    /// The digests the token server is to accept ([`ACCEPTED_DIGESTS`]); none for a public client.
    pub accepted: &'a [SecretDigest],
}

/// Renders the Secret for `client`, owned by it with `controller: true`.
pub fn render(client: &OAuthClient, owner: OwnerReference, contents: &Contents<'_>) -> Secret {
    let template = client.spec.secret.clone().unwrap_or_default();
    let data: BTreeMap<String, ByteString> = KeyNames::of(client)
        .data(&contents.credentials)
        .into_iter()
        .map(|(k, v)| (k, ByteString(v.into_bytes())))
        .collect();

    let mut labels = template.labels.clone();
    labels.insert("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned());
    labels.insert(
        CLIENT_LABEL.to_owned(),
        client.metadata.name.clone().unwrap_or_default(),
    );
    let mut annotations = template.annotations.clone();
    if let Some(at) = contents.rotated_at {
        annotations.insert(ROTATED_AT.to_owned(), at.to_string());
    }
    if let Some(handled) = contents.rotate_handled {
        annotations.insert(ROTATE_HANDLED.to_owned(), handled.to_owned());
    }
    if !contents.accepted.is_empty() {
        // A Vec of two plain structs always serialises.
        let json = serde_json::to_string(contents.accepted).unwrap_or_default();
        annotations.insert(ACCEPTED_DIGESTS.to_owned(), json);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(client.secret_name()),
            namespace: client.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Default::default()
    }
}

/// The digests a generated Secret says the server accepts ([`ACCEPTED_DIGESTS`]), if it says.
pub fn accepted(secret: &Secret) -> Option<Vec<SecretDigest>> {
    digests_in(secret.metadata.annotations.as_ref()?, ACCEPTED_DIGESTS)
}

/// The digests under annotation `key` of `annotations`, if it is there and well-formed.
pub fn digests_in(annotations: &BTreeMap<String, String>, key: &str) -> Option<Vec<SecretDigest>> {
    serde_json::from_str(annotations.get(key)?).ok()
}

/// A string value of `secret` under `key`, if present and UTF-8.
pub fn value<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|v| std::str::from_utf8(&v.0).ok())
        .filter(|v| !v.is_empty())
}

/// The current secret held by a generated Secret: the value under the client-secret key, or, if the key
/// names changed, whichever value matches the digest registered as current.
pub fn current(secret: &Secret, keys: &KeyNames, remembered: &[SecretDigest]) -> Option<String> {
    if let Some(v) = value(secret, &keys.client_secret) {
        return Some(v.to_owned());
    }
    let current = remembered.iter().find(|d| d.expires_at.is_none())?;
    secret
        .data
        .as_ref()?
        .values()
        .filter_map(|v| std::str::from_utf8(&v.0).ok())
        .find(|v| secret_digest(v) == current.sha256)
        .map(str::to_owned)
}

/// A new client secret: 256 random bits, base64url without padding.
pub fn generate() -> String {
    gatehouse_crds::random::token()
}

#[cfg(test)]
mod tests {
    use gatehouse_crds::{SecretKeys, SecretTemplate};

    use super::*;

    fn client(template: Option<SecretTemplate>) -> OAuthClient {
        let mut c = OAuthClient::test("billing").in_namespace("team-a");
        c.spec.secret = template;
        c
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "gatehouse.dev/v1alpha1".into(),
            kind: "OAuthClient".into(),
            name: "billing".into(),
            uid: "u-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn text(s: &Secret, k: &str) -> String {
        value(s, k).unwrap().to_owned()
    }

    #[test]
    fn secret_holds_the_documented_keys_and_is_owned_by_its_client() {
        let c = client(None);
        let scopes = vec!["read".to_owned(), "write".to_owned()];
        let s = render(
            &c,
            owner(),
            &Contents {
                credentials: Credentials {
                    client_id: "billing.team-a",
                    secret: Some("s3cret"),
                    previous: None,
                    issuer: "https://auth.example.com/",
                    scopes: &scopes,
                },
                rotated_at: Some(Timestamp::from_second(0).unwrap()),
                rotate_handled: None,
                accepted: &[],
            },
        );
        assert_eq!(s.metadata.name.as_deref(), Some("billing-oauth"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("team-a"));
        let keys: Vec<_> = s.data.as_ref().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["client_id", "client_secret", "issuer", "scope", "token_url"]
        );
        assert_eq!(text(&s, "client_id"), "billing.team-a");
        assert_eq!(text(&s, "client_secret"), "s3cret");
        assert_eq!(text(&s, "token_url"), "https://auth.example.com/token");
        assert_eq!(text(&s, "scope"), "read write");
        assert_eq!(s.metadata.owner_references.unwrap()[0].controller, Some(true));
        assert_eq!(
            s.metadata.annotations.unwrap()[ROTATED_AT],
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(s.metadata.labels.unwrap()[CLIENT_LABEL], "billing");
    }

    #[test]
    fn key_names_labels_and_annotations_come_from_the_spec() {
        let template = SecretTemplate {
            name: Some("creds".into()),
            labels: [("team".to_owned(), "a".to_owned())].into(),
            annotations: [("note".to_owned(), "x".to_owned())].into(),
            keys: Some(SecretKeys {
                client_id: Some("ID".into()),
                client_secret: Some("SECRET".into()),
                previous_client_secret: Some("OLD".into()),
                ..Default::default()
            }),
            rotation: None,
        };
        let c = client(Some(template));
        let digests = [SecretDigest {
            sha256: secret_digest("new"),
            expires_at: None,
        }];
        let s = render(
            &c,
            owner(),
            &Contents {
                credentials: Credentials {
                    client_id: "id",
                    secret: Some("new"),
                    previous: Some("old"),
                    issuer: "http://i",
                    scopes: &[],
                },
                rotated_at: None,
                rotate_handled: Some("v2"),
                accepted: &digests,
            },
        );
        assert_eq!(s.metadata.name.as_deref(), Some("creds"));
        assert_eq!(text(&s, "ID"), "id");
        assert_eq!(text(&s, "SECRET"), "new");
        assert_eq!(text(&s, "OLD"), "old");
        assert_eq!(s.metadata.labels.as_ref().unwrap()["team"], "a");
        let annotations = s.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["note"], "x");
        assert_eq!(annotations[ROTATE_HANDLED], "v2");
        assert!(!annotations.contains_key(ROTATED_AT));
        assert_eq!(accepted(&s), Some(digests.to_vec()));
    }

    #[test]
    fn a_public_client_secret_has_no_client_secret_key() {
        let s = render(
            &client(None),
            owner(),
            &Contents {
                credentials: Credentials {
                    client_id: "id",
                    secret: None,
                    previous: None,
                    issuer: "http://i",
                    scopes: &[],
                },
                rotated_at: None,
                rotate_handled: None,
                accepted: &[],
            },
        );
        assert_eq!(accepted(&s), None, "a public client has no digests");
        assert!(!s.data.unwrap().contains_key("client_secret"));
    }

    #[test]
    fn the_current_secret_is_found_again_after_the_key_was_renamed() {
        let s = Secret {
            data: Some([("renamed".to_owned(), ByteString(b"abc".to_vec()))].into()),
            ..Default::default()
        };
        let keys = KeyNames::default();
        let remembered = [SecretDigest {
            sha256: secret_digest("abc"),
            expires_at: None,
        }];
        assert_eq!(current(&s, &keys, &remembered).as_deref(), Some("abc"));
        assert_eq!(current(&s, &keys, &[]), None);
    }

    #[test]
    fn generated_secrets_are_256_bit_base64url() {
        let a = generate();
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, generate());
    }
}
