//! `OAuthClient`: one OAuth client, its credentials Secret and how it rotates.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{Duration, resolve::EffectiveSettings};

/// An OAuth 2.0 client. The operator resolves its effective settings from the OAuthPolicies that select
/// it, writes its credentials into a Secret, and registers it with the token server.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "OAuthClient",
    plural = "oauthclients",
    singular = "oauthclient",
    shortname = "oac",
    category = "gatehouse",
    namespaced,
    status = "OAuthClientStatus",
    doc = "An OAuth 2.0 client whose credentials the Gatehouse operator keeps in a Secret.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "ClientID", type_ = "string", json_path = ".status.clientId"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".status.secretName"),
    printcolumn(name = "Reason", type_ = "string", priority = 1, json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 247").message("metadata.name must be at most 247 characters, so that the Secret name <name>-oauth stays within 253"),
)]
#[x_kube(
    validation = Rule::new("!(has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod == 'none') || !self.grantTypes.exists(g, g == 'client_credentials' || g == 'password')")
        .message("spec.grantTypes: a public client (tokenEndpointAuthMethod: none) may not use client_credentials or password")
        .field_path(".grantTypes"),
    validation = Rule::new("!self.grantTypes.exists(g, g == 'authorization_code' || g == 'implicit') || (has(self.redirectUris) && size(self.redirectUris) > 0)")
        .message("spec.redirectUris: authorization_code and implicit need at least one redirect URI")
        .field_path(".redirectUris"),
    validation = Rule::new("!(has(self.existingSecretRef) && has(self.secret))")
        .message("spec.existingSecretRef and spec.secret are mutually exclusive: bring your own Secret or let the operator generate one")
        .field_path(".existingSecretRef"),
    validation = Rule::new("!(has(self.existingSecretRef) && has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod == 'none')")
        .message("spec.existingSecretRef: a public client (tokenEndpointAuthMethod: none) has no secret to bring")
        .field_path(".existingSecretRef"),
    validation = Rule::new("has(self.clientId) == has(oldSelf.clientId) && (!has(self.clientId) || self.clientId == oldSelf.clientId)")
        .message("spec.clientId is immutable")
        .field_path(".clientId"),
    validation = Rule::new("has(self.tokenEndpointAuthMethod) == has(oldSelf.tokenEndpointAuthMethod) && (!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == oldSelf.tokenEndpointAuthMethod)")
        .message("spec.tokenEndpointAuthMethod is immutable: a confidential client cannot become public or the other way round; create a new client")
        .field_path(".tokenEndpointAuthMethod"),
)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClientSpec {
    /// The OAuth client_id. Defaults to `<name>.<namespace>`. Immutable once set, so that a deleted Secret
    /// or a new operator never changes the identity a workload authenticates with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::admin::CLIENT_ID_PATTERN))]
    pub client_id: Option<String>,

    /// A human-readable name shown on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,

    /// The grant types the client asks for. Its OAuthPolicies may allow fewer; `status.effective` shows
    /// the grants actually enforced.
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(min = 1, max = 8))]
    pub grant_types: Vec<GrantType>,

    /// Redirect URIs for authorization_code and implicit, matched exactly. Each must be absolute, without a
    /// fragment, and https unless the host is localhost or a loopback address. Only those whose host the
    /// namespace's ClusterOAuthPolicy allows (`redirectUriHosts`) are registered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(u, isURL(u) && url(u).getScheme() != '' && !u.contains('#'))")
            .message("spec.redirectUris: each redirect URI must be an absolute URL without a fragment"),
        validation = Rule::new("self.all(u, !isURL(u) || url(u).getScheme() == 'https' || (url(u).getScheme() == 'http' && url(u).getHostname() in ['localhost', '127.0.0.1', '::1']))")
            .message("spec.redirectUris: a redirect URI must use https unless its host is localhost or a loopback address"),
    )]
    #[schemars(length(max = 32), inner(length(min = 1, max = 2048)))]
    pub redirect_uris: Vec<String>,

    /// The scopes the client asks for. Empty means every scope the deciding OAuthPolicy of its namespace
    /// lists. Standard OpenID Connect scopes are always available; any other scope only if an
    /// OAuthPolicy that admits the client publishes it (`status.effective.denials` shows the rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 128), regex(pattern = r"^[\x21\x23-\x5B\x5D-\x7E]+$"))
    )]
    pub scopes: Vec<String>,

    /// Audiences (`aud`) the client asks for. Each is granted only if an OAuthPolicy that admits the
    /// client (its own namespace's by `clientSelector`, another's by `consumers`) publishes it. Empty
    /// means the audience of the deciding OAuthPolicy of its namespace; with none, tokens carry the
    /// client_id as `aud`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 16), inner(length(min = 1, max = 256)))]
    pub audience: Vec<String>,

    /// How the client authenticates at the token endpoint. `none` makes it a public client (a browser or
    /// native app), which always uses PKCE and never gets a secret. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<AuthMethod>,

    /// A first-party client skips the consent page; its users have already agreed to its use. A
    /// selecting OAuthPolicy's `firstParty` overrides it, and it takes effect only where the namespace's
    /// ClusterOAuthPolicy sets `allowFirstParty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_party: Option<bool>,

    /// The Secret the operator generates for this client: its name, metadata, key names and rotation.
    /// Mutually exclusive with `existingSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretTemplate>,

    /// Bring your own credentials: a Secret in the client's namespace that holds the client secret. The
    /// operator waits while it is missing and never generates a replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_secret_ref: Option<ExistingSecretRef>,

    /// What happens to the registration on the token server when this object is deleted: `Delete`
    /// (default) removes it, `Orphan` leaves it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// An OAuth 2.0 grant type ([RFC 6749 §1.3](https://www.rfc-editor.org/rfc/rfc6749#section-1.3)).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, schemars::JsonSchema,
)]
pub enum GrantType {
    /// Authorization code, with PKCE ([RFC 6749 §4.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1)).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// Implicit ([RFC 6749 §4.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.2)).
    #[serde(rename = "implicit")]
    Implicit,
    /// Resource owner password credentials ([RFC 6749 §4.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.3)).
    #[serde(rename = "password")]
    Password,
    /// Client credentials ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)).
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// Refresh token ([RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)).
    #[serde(rename = "refresh_token")]
    RefreshToken,
}

impl GrantType {
    /// Every grant type, in the order discovery lists them.
    pub const ALL: [GrantType; 5] = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::Password,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
    ];

    /// The wire name, as in a token request's `grant_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Implicit => "implicit",
            GrantType::Password => "password",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
        }
    }
}

/// Client authentication at the token endpoint ([RFC 6749 §2.3](https://www.rfc-editor.org/rfc/rfc6749#section-2.3)).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded client_id and secret.
    #[default]
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
    /// A public client: no secret; PKCE is always required.
    #[serde(rename = "none")]
    None,
}

impl AuthMethod {
    /// The wire name, as in discovery's `token_endpoint_auth_methods_supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

/// What deleting an OAuthClient does to its registration on the token server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum DeletionPolicy {
    /// Deregister the client; its tokens stop being issued.
    #[default]
    Delete,
    /// Leave the registration on the server.
    Orphan,
}

/// The Secret the operator generates and owns for a client.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// The Secret's name. Defaults to `<client name>-oauth`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,

    /// Extra labels on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Extra annotations on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// The key names inside the Secret, for workloads that expect other names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<SecretKeys>,

    /// Automatic rotation of the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// Key names inside the generated Secret. Each defaults to the name shown.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    /// Key holding the client_id. Default `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub client_id: Option<String>,
    /// Key holding the current client secret. Default `client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub client_secret: Option<String>,
    /// Key holding the secret being rotated out, present only during a grace period. Default
    /// `previous_client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub previous_client_secret: Option<String>,
    /// Key holding the token endpoint URL. Default `token_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub token_url: Option<String>,
    /// Key holding the issuer URL. Default `issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub issuer: Option<String>,
    /// Key holding the space-separated default scopes. Default `scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub scope: Option<String>,
}

/// Rotation of a generated client secret. The annotation `gatehouse.dev/rotate` forces a rotation
/// whenever its value changes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.gracePeriod) || !self.gracePeriod.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || !self.period.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.gracePeriod) < duration(self.period)")
        .message("spec.secret.rotation.gracePeriod must be shorter than spec.secret.rotation.period")
        .field_path(".gracePeriod"),
)]
pub struct Rotation {
    /// How often the secret is replaced, for example `720h`.
    pub period: Duration,
    /// How long the previous secret keeps working after a rotation. Default `1h`; must be shorter than
    /// `period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Duration>,
}

/// A Secret the platform team provides, holding the client secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExistingSecretRef {
    /// The Secret's name, in the client's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the client secret. Default `client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub client_secret_key: Option<String>,
}

/// What the operator observed and did for a client.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClientStatus {
    /// The client_id registered with the token server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The Secret holding the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Ready, SecretSynced and Registered, following the Kubernetes API conventions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The policies that decided something for this client: its namespace's OAuthPolicies (highest
    /// priority first), the API products of other namespaces that admit it, then the
    /// ClusterOAuthPolicies that select its namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_policies: Vec<crate::AppliedPolicy>,
    /// The settings actually enforced, after policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<EffectiveSettings>,
    /// When the current secret was generated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_rotated_at: Option<String>,
    /// When the next scheduled rotation happens (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_at: Option<String>,
    /// The last value of the `gatehouse.dev/rotate` annotation that was acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_annotation: Option<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl OAuthClientSpec {
    /// The authentication method, with its default applied.
    pub fn auth_method(&self) -> AuthMethod {
        self.token_endpoint_auth_method.unwrap_or_default()
    }

    /// Whether this is a public client (`tokenEndpointAuthMethod: none`).
    pub fn is_public(&self) -> bool {
        self.auth_method() == AuthMethod::None
    }
}

impl OAuthClient {
    /// The client_id: `spec.clientId`, or `<name>.<namespace>`.
    pub fn client_id(&self) -> String {
        if let Some(id) = &self.spec.client_id {
            return id.clone();
        }
        let name = self.metadata.name.as_deref().unwrap_or_default();
        match self.metadata.namespace.as_deref() {
            Some(ns) => format!("{name}.{ns}"),
            None => name.to_owned(),
        }
    }

    /// The name of the generated Secret: `spec.secret.name`, or `<name>-oauth`.
    pub fn secret_name(&self) -> String {
        if let Some(existing) = &self.spec.existing_secret_ref {
            return existing.name.clone();
        }
        self.spec
            .secret
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| format!("{}-oauth", self.metadata.name.as_deref().unwrap_or_default()))
    }
}
