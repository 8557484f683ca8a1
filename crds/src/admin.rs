//! Documents of the token server's admin API. The operator (and the standalone loader) send a
//! [`ClientRegistration`] per client; the server stores it as is. Secrets never travel: only their
//! SHA-256 digests do.
//!
//! A registration made for an OAuthClient names its [`ClientOwner`]. The server lets only that owner
//! (by namespace and name) replace or delete the registration, so that an OAuthClient in one namespace
//! can't take over a client_id held by another.

use kube::ResourceExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{AuthMethod, EffectiveSettings, GrantType, OAuthClient, resolve::Resolution};

/// Prefix of every admin route.
pub const PREFIX: &str = "/admin/v1";
/// Page size used when listing clients if the caller names none.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// Everything the token server needs to know about one client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientRegistration {
    /// The OAuth client_id.
    pub client_id: String,
    /// Where the client was declared, such as `team-a/billing`, for logs and audits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The OAuthClient that holds this client_id. Only it may replace or delete the registration;
    /// `None` for registrations made without a cluster (standalone mode, a person with the admin
    /// token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ClientOwner>,
    /// Shown on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// How the client authenticates.
    pub token_endpoint_auth_method: AuthMethod,
    /// Registered redirect URIs, matched exactly: the client's, less those its ceiling does not allow.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The settings the server enforces, as resolved from policies.
    pub effective: EffectiveSettings,
    /// Digests of the secrets that authenticate the client. Two during a rotation's grace period.
    #[serde(default)]
    pub secrets: Vec<SecretDigest>,
}

/// The OAuthClient a registration belongs to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientOwner {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid. Recorded, not compared: an OAuthClient deleted and created again under the same name
    /// gets a new uid and keeps its client_id.
    pub uid: String,
}

impl ClientOwner {
    /// The owner `client` would be: `None` unless its metadata has a namespace, a name and a uid (a
    /// manifest read from a file has no uid).
    pub fn of(client: &OAuthClient) -> Option<Self> {
        let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
        Some(Self {
            namespace: non_empty(client.namespace())?,
            name: non_empty(Some(client.name_any()))?,
            uid: non_empty(client.uid())?,
        })
    }

    /// Whether `other` is the same OAuthClient, or one created again in its place: the same namespace
    /// and name, whatever the uid.
    pub fn same_object(&self, other: &ClientOwner) -> bool {
        self.namespace == other.namespace && self.name == other.name
    }

    /// `namespace/name`, the form [`ClientRegistration::source`] takes for an OAuthClient.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The digest of one client secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretDigest {
    /// Lower-case hex SHA-256 of the secret's UTF-8 bytes.
    pub sha256: String,
    /// Unix time after which this secret stops working (the end of a rotation's grace period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// One page of registrations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClientList {
    /// The registrations on this page, ordered by client_id.
    pub items: Vec<ClientRegistration>,
    /// Pass as `continue` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#continue: Option<String>,
}

/// A field of an admin document that is invalid, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The JSON path of the field, such as `effective.accessTokenTtlSeconds`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Hex SHA-256 of a client secret, as stored by the server and sent by the operator.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl ClientRegistration {
    /// The registration of `client` with the settings `resolution` worked out for it, authenticated by
    /// `secrets`. `source` says where the client was declared (see [`ClientRegistration::source`]); the
    /// owner is `client` itself when it has a uid (see [`ClientOwner::of`]).
    pub fn of(
        client: &OAuthClient,
        resolution: &Resolution,
        source: String,
        secrets: Vec<SecretDigest>,
    ) -> Self {
        Self {
            client_id: client.client_id(),
            source: Some(source),
            owner: ClientOwner::of(client),
            display_name: client.spec.display_name.clone(),
            token_endpoint_auth_method: client.spec.auth_method(),
            redirect_uris: resolution.effective.redirect_uris.clone(),
            effective: resolution.effective.clone(),
            secrets,
        }
    }

    /// Checks the rules the server relies on. The CRD schema already enforces most of them in a
    /// cluster; the admin API checks again because it is also reachable without one.
    pub fn validate(&self) -> Result<(), FieldError> {
        check_client_id(&self.client_id).map_err(|why| field_error("clientId", why))?;
        if let Some(owner) = &self.owner {
            for (field, value) in [
                ("owner.namespace", &owner.namespace),
                ("owner.name", &owner.name),
                ("owner.uid", &owner.uid),
            ] {
                if value.is_empty() || value.len() > 253 {
                    return Err(field_error(field, "must be 1 to 253 characters"));
                }
            }
        }
        let public = self.token_endpoint_auth_method == AuthMethod::None;
        let e = &self.effective;
        if public && !self.secrets.is_empty() {
            return Err(field_error(
                "secrets",
                "a public client (tokenEndpointAuthMethod: none) has no secrets",
            ));
        }
        if public
            && e.grant_types
                .iter()
                .any(|g| matches!(g, GrantType::ClientCredentials | GrantType::Password))
        {
            return Err(field_error(
                "effective.grantTypes",
                "a public client may not use client_credentials or password",
            ));
        }
        let redirecting = e
            .grant_types
            .iter()
            .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::Implicit));
        if redirecting && self.redirect_uris.is_empty() {
            return Err(field_error(
                "redirectUris",
                "authorization_code and implicit need at least one redirect URI",
            ));
        }
        for (i, uri) in self.redirect_uris.iter().enumerate() {
            if let Err(why) = check_redirect_uri(uri) {
                return Err(field_error(format!("redirectUris[{i}]"), why));
            }
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if s.sha256.len() != 64
                || !s
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(field_error(
                    format!("secrets[{i}].sha256"),
                    "must be 64 lower-case hex digits",
                ));
            }
        }
        for (field, value) in [
            ("effective.accessTokenTtlSeconds", e.access_token_ttl_seconds),
            ("effective.refreshTokenTtlSeconds", e.refresh_token_ttl_seconds),
            (
                "effective.authorizationCodeTtlSeconds",
                e.authorization_code_ttl_seconds,
            ),
        ] {
            if value <= 0 {
                return Err(field_error(field, "must be a positive number of seconds"));
            }
        }
        for (i, scope) in e.scopes.iter().enumerate() {
            if scope.is_empty()
                || !scope
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err(field_error(
                    format!("effective.scopes[{i}]"),
                    "is not a valid scope token (RFC 6749 §3.3)",
                ));
            }
        }
        for (i, scope) in e.default_scopes.iter().enumerate() {
            if !e.scopes.contains(scope) {
                return Err(field_error(
                    format!("effective.defaultScopes[{i}]"),
                    "must be one of effective.scopes",
                ));
            }
        }
        Ok(())
    }
}

/// The CRD's pattern for `spec.clientId`, which [`check_client_id`] enforces outside a cluster. It has
/// no `:`, so that no client_id can equal a user's subject (`user:...`,
/// [RFC 9700 §4.15](https://www.rfc-editor.org/rfc/rfc9700#section-4.15)).
pub const CLIENT_ID_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._~-]*$";

/// The client_id rule of the CRD: 1 to 253 characters matching [`CLIENT_ID_PATTERN`].
pub fn check_client_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 253 {
        return Err("must be 1 to 253 characters");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
    {
        return Err("may contain only letters, digits and . _ ~ - (no colon: user subjects are user:...)");
    }
    Ok(())
}

/// The redirect-URI rule of the CRD: absolute, no fragment, https unless the host is loopback.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.contains('#') {
        return Err("must not contain a fragment");
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err("must be an absolute URL");
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err("must have a host");
    }
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "localhost" | "127.0.0.1" | "::1") => Ok(()),
        "http" => Err("must use https unless the host is localhost or a loopback address"),
        _ => Err("must use https (or http on localhost)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_carries_the_client_its_resolution_and_its_secrets() {
        let client = crate::OAuthClient::test("spa")
            .in_namespace("team-a")
            .public()
            .with_grants(&[GrantType::AuthorizationCode])
            .with_redirect_uris(&["http://localhost:3000/cb"]);
        let resolution = crate::resolve(&client, &crate::Cluster::default()).unwrap();
        let registration = ClientRegistration::of(&client, &resolution, "team-a/spa".into(), Vec::new());
        assert_eq!(
            registration,
            ClientRegistration {
                client_id: "spa.team-a".into(),
                source: Some("team-a/spa".into()),
                owner: None,
                display_name: None,
                token_endpoint_auth_method: AuthMethod::None,
                redirect_uris: vec!["http://localhost:3000/cb".into()],
                effective: resolution.effective.clone(),
                secrets: Vec::new(),
            }
        );
        assert_eq!(registration.validate(), Ok(()));
    }

    #[test]
    fn the_owner_of_a_registration_is_the_oauth_client_it_was_made_for() {
        let mut client = crate::OAuthClient::test("billing").in_namespace("team-a");
        assert_eq!(
            ClientOwner::of(&client),
            None,
            "a manifest without a uid has no owner"
        );
        client.metadata.uid = Some("u-1".into());
        let resolution = crate::resolve(&client, &crate::Cluster::default()).unwrap();
        let registration = ClientRegistration::of(&client, &resolution, "team-a/billing".into(), Vec::new());
        let owner = registration.owner.clone().unwrap();
        assert_eq!(
            owner,
            ClientOwner {
                namespace: "team-a".into(),
                name: "billing".into(),
                uid: "u-1".into()
            }
        );
        assert_eq!(owner.key(), "team-a/billing");
        let recreated = ClientOwner {
            uid: "u-2".into(),
            ..owner.clone()
        };
        assert!(owner.same_object(&recreated));
        let intruder = ClientOwner {
            namespace: "evil".into(),
            ..owner.clone()
        };
        assert!(!owner.same_object(&intruder));
        let json = serde_json::to_value(&registration).unwrap();
        assert_eq!(
            json["owner"],
            serde_json::json!({"namespace": "team-a", "name": "billing", "uid": "u-1"})
        );
    }

    #[test]
    fn an_owner_with_an_empty_field_is_invalid() {
        let client = crate::OAuthClient::test("billing").in_namespace("team-a");
        let resolution = crate::resolve(&client, &crate::Cluster::default()).unwrap();
        let mut registration =
            ClientRegistration::of(&client, &resolution, "team-a/billing".into(), Vec::new());
        registration.owner = Some(ClientOwner {
            namespace: "team-a".into(),
            name: "billing".into(),
            uid: String::new(),
        });
        assert_eq!(
            registration.validate().unwrap_err().to_string(),
            "owner.uid: must be 1 to 253 characters"
        );
    }

    #[test]
    fn secret_digest_is_lower_case_hex_sha256() {
        assert_eq!(
            secret_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn client_ids_follow_the_crd_pattern_and_never_hold_a_colon() {
        assert_eq!(CLIENT_ID_PATTERN, r"^[A-Za-z0-9][A-Za-z0-9._~-]*$");
        for id in ["billing", "orders-service.demo", "a", "A1._~-", &"x".repeat(253)] {
            assert_eq!(check_client_id(id), Ok(()), "{id}");
        }
        assert_eq!(check_client_id(""), Err("must be 1 to 253 characters"));
        assert_eq!(
            check_client_id(&"x".repeat(254)),
            Err("must be 1 to 253 characters")
        );
        for id in ["-billing", ".billing", "~a", "_a"] {
            assert_eq!(
                check_client_id(id),
                Err("must start with a letter or a digit"),
                "{id}"
            );
        }
        for id in ["user:0123", "a:b", "a b", "a/b", "caf\u{e9}"] {
            assert!(
                check_client_id(id).unwrap_err().starts_with("may contain only"),
                "{id}"
            );
        }
    }

    #[test]
    fn redirect_uris_follow_the_crd_rule() {
        assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("http://localhost:8080/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]:9000/cb").is_ok());
        assert_eq!(
            check_redirect_uri("http://app.example.com/cb"),
            Err("must use https unless the host is localhost or a loopback address")
        );
        assert_eq!(
            check_redirect_uri("https://app.example.com/cb#x"),
            Err("must not contain a fragment")
        );
        assert_eq!(check_redirect_uri("/cb"), Err("must be an absolute URL"));
    }
}
