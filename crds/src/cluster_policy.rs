//! `ClusterOAuthPolicy`: the ceiling a platform team sets for the namespaces it selects, following
//! cert-manager's `Issuer` / `ClusterIssuer` convention. Application teams write OAuthClients and
//! OAuthPolicies in their namespaces; what those can reach at all is bounded here: the grant types, the
//! audiences and scopes a namespace may publish as an API product, redirect-URI hosts, the longest token
//! lifetimes, token formats and first-party consent skipping.
//!
//! Where no selecting ClusterOAuthPolicy sets a setting, the built-in ceiling ([`BUILT_IN_GRANT_TYPES`]
//! and the defaults documented on each field) applies: no password or implicit grant, no first-party
//! clients, nothing publishable.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{Duration, GrantType, TokenFormat};

/// The grant types a namespace may use when no selecting ClusterOAuthPolicy sets `allowedGrantTypes`.
pub const BUILT_IN_GRANT_TYPES: [GrantType; 3] = [
    GrantType::AuthorizationCode,
    GrantType::ClientCredentials,
    GrantType::RefreshToken,
];

/// The platform team's ceiling for the namespaces it selects. When several select a namespace, the one
/// with the highest `priority` (ties: the name that sorts first) decides each setting it sets.
// Two printcolumns are integers: clippy's duplicated_attributes takes their `type_`s for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "ClusterOAuthPolicy",
    plural = "clusteroauthpolicies",
    singular = "clusteroauthpolicy",
    shortname = "coap",
    category = "gatehouse",
    status = "ClusterOAuthPolicyStatus",
    doc = "The ceiling a platform team sets for the namespaces it selects: grant types, publishable audiences and scopes, redirect hosts, lifetimes, token formats and first-party consent.",
    printcolumn(name = "Priority", type_ = "integer", json_path = ".spec.priority"),
    printcolumn(
        name = "Namespaces",
        type_ = "integer",
        json_path = ".status.matchedNamespaces"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOAuthPolicySpec {
    /// Which namespaces this ceiling applies to, by their labels (for one namespace by name, use the
    /// label `kubernetes.io/metadata.name`). Absent selects every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Decides between ClusterOAuthPolicies that select the same namespace: for each setting, the
    /// highest priority that sets it wins; ties go to the name that sorts first.
    #[serde(default)]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: i32,

    /// The grant types clients in the selected namespaces may use at all. Unset (in every selecting
    /// policy): authorization_code, client_credentials and refresh_token; password and implicit are
    /// off unless a ClusterOAuthPolicy allows them here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 8))]
    pub allowed_grant_types: Option<Vec<GrantType>>,

    /// Whether clients in the selected namespaces may be first-party (skip the consent page), through
    /// their own `firstParty` or an OAuthPolicy's. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_first_party: Option<bool>,

    /// The audiences OAuthPolicies in the selected namespaces may publish as an API product: exact
    /// values, or a prefix ending in `*` (`https://payments.example.com/*`). Default: none. A published
    /// audience belongs to the oldest OAuthPolicy that may publish it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(p, p.matches('^[^*]*[*]?$'))")
            .message("spec.publishableAudiences: a '*' may appear only at the end of a pattern"),
    )]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    pub publishable_audiences: Option<Vec<String>>,

    /// The scopes OAuthPolicies in the selected namespaces may publish: exact values, or a prefix ending
    /// in `*` (`payments.*`). Default: none. The standard OpenID Connect scopes (openid, profile, email,
    /// address, phone, offline_access) need no publishing. A published scope belongs to the oldest
    /// OAuthPolicy that may publish it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(p, p.matches('^[^*]*[*]?$'))")
            .message("spec.publishableScopes: a '*' may appear only at the end of a pattern"),
    )]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub publishable_scopes: Option<Vec<String>>,

    /// The hosts redirect URIs of clients in the selected namespaces may point to: an exact host
    /// (`app.example.com`, `localhost`, `127.0.0.1`) or every subdomain (`*.example.com`, which does not
    /// match `example.com` itself). Other redirect URIs are dropped from the registration. Absent:
    /// unrestricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(h, h.matches('^([*][.])?[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$') || h.matches('^[0-9A-Fa-f:]+$'))")
            .message("spec.redirectUriHosts: each entry must be a host name, an IP address, or '*.' followed by a domain"),
    )]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub redirect_uri_hosts: Option<Vec<String>>,

    /// The longest access-token lifetime; longer ones are clamped to it. Absent: unbounded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "maxAccessTokenTTL"
    )]
    pub max_access_token_ttl: Option<Duration>,

    /// The longest absolute refresh-token lifetime; longer ones are clamped to it. Absent: unbounded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "maxRefreshTokenTTL"
    )]
    pub max_refresh_token_ttl: Option<Duration>,

    /// The longest authorization-code lifetime; longer ones are clamped to it. Absent: unbounded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "maxAuthorizationCodeTTL"
    )]
    pub max_authorization_code_ttl: Option<Duration>,

    /// The access-token formats clients in the selected namespaces may use. A client whose policy asks
    /// for another gets the first one listed. Absent: every format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("size(self) > 0")
            .message("spec.allowedTokenFormats: list at least one format, or leave it out to allow all"),
    )]
    #[schemars(length(max = 2))]
    pub allowed_token_formats: Option<Vec<TokenFormat>>,
}

/// What the operator observed for a ClusterOAuthPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOAuthPolicyStatus {
    /// How many namespaces the policy selects (of those the operator watches).
    #[serde(default)]
    pub matched_namespaces: i64,
    /// Ready, following the Kubernetes API conventions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Whether `value` matches `pattern`: equal, or, for a pattern ending in `*`, starting with the rest.
pub fn pattern_matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// Whether `host` is allowed by the entry `allowed`: equal (ignoring case), or a subdomain of the domain
/// after `*.`.
pub fn host_matches(allowed: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let allowed = allowed.to_ascii_lowercase();
    match allowed.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => host == allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exactly_or_by_prefix_before_a_trailing_star() {
        assert!(pattern_matches("payments.read", "payments.read"));
        assert!(!pattern_matches("payments.read", "payments.readwrite"));
        assert!(pattern_matches("payments.*", "payments.admin"));
        assert!(!pattern_matches("payments.*", "payment.admin"));
        assert!(pattern_matches("*", "anything"));
    }

    #[test]
    fn a_wildcard_host_matches_subdomains_only() {
        assert!(host_matches("app.example.com", "APP.example.com"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "evil-example.com"));
        assert!(!host_matches("app.example.com", "app.example.com.evil.io"));
    }
}
