//! `OAuthPolicy`: the Kubernetes form of an API product. It bounds what the clients it selects in its
//! namespace may do and sets their token lifetimes, format and claims. The audiences and scopes it sets
//! it *publishes*: clients of its own namespace get them through `clientSelector`, clients of other
//! namespaces only through `consumers`, and only what the namespace's ClusterOAuthPolicy lets it
//! publish.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{Duration, GrantType};

/// Limits and token settings for the OAuthClients it selects in its namespace, and the API product (the
/// audiences and scopes it publishes) for those and for the consumers it lists. When several policies of
/// a namespace select a client, the one with the highest `priority` decides each setting it sets.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "OAuthPolicy",
    plural = "oauthpolicies",
    singular = "oauthpolicy",
    shortname = "oap",
    category = "gatehouse",
    namespaced,
    status = "OAuthPolicyStatus",
    doc = "Token settings and limits for the OAuthClients it selects: the Kubernetes form of an API product.",
    printcolumn(name = "Priority", type_ = "integer", json_path = ".spec.priority"),
    printcolumn(name = "Clients", type_ = "string", json_path = ".status.matchedClients"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = Rule::new("!has(self.defaultScopes) || !has(self.scopes) || self.defaultScopes.all(d, self.scopes.exists(s, s.name == d))")
        .message("spec.defaultScopes must each be listed in spec.scopes")
        .field_path(".defaultScopes"),
)]
#[serde(rename_all = "camelCase")]
pub struct OAuthPolicySpec {
    /// Which OAuthClients in this namespace the policy applies to. Empty selects every client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_selector: Option<LabelSelector>,

    /// Decides between overlapping policies: the highest priority wins each setting; ties go to the
    /// policy whose name sorts first.
    #[serde(default)]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: i32,

    /// The grant types selected clients may use. Unset allows what the client asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 8))]
    pub allowed_grant_types: Option<Vec<GrantType>>,

    /// The scopes selected clients may request, each with the description shown on the consent page;
    /// this policy publishes them to its consumers too. Scopes other than the standard OpenID Connect
    /// ones (openid, profile, email, address, phone, offline_access) are published only if the
    /// namespace's ClusterOAuthPolicy lists them in `publishableScopes`, and each belongs to the oldest
    /// OAuthPolicy publishing it. Unset allows only the standard OpenID Connect scopes, plus what
    /// other products publish to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))")
            .message("spec.scopes: scope names must be unique"),
    )]
    #[schemars(length(max = 64))]
    pub scopes: Option<Vec<ScopeSpec>>,

    /// The scopes granted when a token request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub default_scopes: Option<Vec<String>>,

    /// Audiences (`aud`) this policy publishes: put in the access tokens of the clients it selects
    /// (unless a client names its own), and available to the clients `consumers` admits that ask for
    /// them. Only audiences the namespace's ClusterOAuthPolicy lists in `publishableAudiences` are
    /// published, and each belongs to the oldest OAuthPolicy publishing it; `status.denials` shows the
    /// rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 16), inner(length(min = 1, max = 256)))]
    pub audience: Option<Vec<String>>,

    /// Clients of other namespaces this policy admits as consumers of its audiences and scopes (not of
    /// its other settings, which apply only to its own namespace's clients). Clients of the policy's
    /// own namespace are admitted by `clientSelector` instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub consumers: Vec<Consumer>,

    /// Lifetime of access tokens. Default `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "accessTokenTTL")]
    pub access_token_ttl: Option<Duration>,

    /// Absolute lifetime of a refresh-token family, counted from the original grant. Default `720h`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "refreshTokenTTL")]
    pub refresh_token_ttl: Option<Duration>,

    /// Lifetime of authorization codes. Default `60s`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "authorizationCodeTTL"
    )]
    pub authorization_code_ttl: Option<Duration>,

    /// `jwt` (RFC 9068, validated offline through the JWKS) or `opaque` (validated by introspection).
    /// Default `jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_format: Option<TokenFormat>,

    /// Require PKCE for the authorization-code grant, and refuse the `plain` method. Public clients always
    /// need PKCE.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "requirePKCE")]
    pub require_pkce: Option<bool>,

    /// Rotate refresh tokens on every use, revoking the family when an old one is replayed (RFC 9700).
    /// Default `true`. With `false`, a refresh returns no new refresh token and the client keeps using
    /// the one it has until the grant's absolute lifetime (`refreshTokenTTL`) ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_rotation: Option<bool>,

    /// `true` makes the selected clients first-party (their users skip the consent page), `false` makes
    /// them ask for consent whatever the client's own `firstParty` says; unset leaves it to the client.
    /// Only where the namespace's ClusterOAuthPolicy sets `allowFirstParty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_party: Option<bool>,

    /// Static claims added to every access token of the selected clients. Registered claims (iss, sub,
    /// aud, exp, iat, nbf, jti, client_id, scope) cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(
        validation = Rule::new("!self.exists(k, k in ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'auth_time', 'acr'])")
            .message("spec.claims may not set a registered claim (iss, sub, aud, exp, iat, nbf, jti, client_id, scope, auth_time, acr)"),
    )]
    #[schemars(extend("maxProperties" = 32))]
    pub claims: BTreeMap<String, String>,
}

/// Clients of other namespaces admitted as consumers of an API product.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    /// The namespaces whose clients are admitted, by their labels (`kubernetes.io/metadata.name` names
    /// one). Required; `{}` admits every namespace.
    pub namespace_selector: LabelSelector,
    /// Which clients of those namespaces are admitted. Absent admits every client there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_selector: Option<LabelSelector>,
}

/// One scope a policy allows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSpec {
    /// The scope token, as requested in `scope` (RFC 6749 §3.3).
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[\x21\x23-\x5B\x5D-\x7E]+$"))]
    pub name: String,
    /// What the scope grants, shown on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
}

/// The format of access tokens.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// A signed JWT per RFC 9068.
    #[default]
    Jwt,
    /// A random reference token, validated by introspection.
    Opaque,
}

/// What the operator observed for a policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthPolicyStatus {
    /// Names of the OAuthClients this policy selects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched_clients: Vec<String>,
    /// Clients whose settings come from a higher-priority policy for at least one field this policy sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overridden_for: Vec<String>,
    /// The audiences and scopes this policy sets but does not publish, and why (the namespace's ceiling
    /// does not allow them, or an older OAuthPolicy elsewhere owns them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denials: Vec<crate::resolve::Denial>,
    /// Ready, following the Kubernetes API conventions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
