//! Policy resolution: from an OAuthClient and what the cluster holds (every OAuthPolicy the caller can
//! see, the ClusterOAuthPolicies, the namespaces' labels) to the settings the token server enforces.
//! Pure and deterministic; the operator and the standalone server both call it.
//!
//! Three layers, intersected:
//! - **The client's request**: its grant types, scopes, audience, redirect URIs and `firstParty`.
//! - **Its namespace's OAuthPolicies** and the **API products that admit it.** The policies of its
//!   namespace whose `clientSelector` matches are ordered by `priority` (highest first), then by name;
//!   for each setting the first that sets it decides (static claims merge key by key under the same
//!   rule). Audiences and scopes are *published*: a policy of another namespace adds them only when one
//!   of its `consumers` admits the client, and only for what the client asks for by name. A policy
//!   publishes a value only if its namespace's ceiling lists it as publishable and no older policy of
//!   another namespace publishes it (the oldest, by creationTimestamp then namespace/name, owns it).
//!   Standard OpenID Connect scopes need no publishing.
//! - **The ceiling** of the client's namespace: the ClusterOAuthPolicies whose `namespaceSelector`
//!   matches its labels, ordered and deciding setting by setting like OAuthPolicies, over the built-in
//!   ceiling (no password, implicit or first-party; nothing publishable).
//!
//! Everything asked for and not granted, and every lifetime clamped, is a [`Denial`] naming the
//! policy (or the built-in ceiling) responsible.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    ClusterOAuthPolicy, ClusterOAuthPolicySpec, Error, GrantType, OAuthClient, OAuthPolicy, OAuthPolicySpec,
    Result, ScopeSpec, TokenFormat,
    cluster_policy::{BUILT_IN_GRANT_TYPES, host_matches, pattern_matches},
    selector,
};

/// Default access-token lifetime: one hour.
pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 3600;
/// Default absolute refresh-token lifetime: 30 days.
pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 30 * 24 * 3600;
/// Default authorization-code lifetime: 60 seconds (RFC 6749 §4.1.2 recommends at most ten minutes).
pub const DEFAULT_AUTHORIZATION_CODE_TTL: i64 = 60;
/// The scopes of OpenID Connect Core §5.4 and §11, which any client may request without a product
/// publishing them.
pub const STANDARD_SCOPES: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];
/// The `by` of a denial that no ClusterOAuthPolicy decided.
pub const BUILT_IN_CEILING: &str = "built-in ceiling";

/// The settings the token server enforces for one client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveSettings {
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Grant types the client asked for that it may not use (`denials` says why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_grant_types: Vec<GrantType>,
    /// Scopes the client may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes the client asked for that it may not request (`denials` says why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_scopes: Vec<String>,
    /// Scopes granted when a request names none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Descriptions of the scopes, for the consent page.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope_descriptions: BTreeMap<String, String>,
    /// Audiences (`aud`) of access tokens; empty means the client_id.
    #[serde(default)]
    pub audience: Vec<String>,
    /// The redirect URIs registered: the client's, less those whose host the ceiling does not allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_seconds: i64,
    /// Absolute refresh-token lifetime in seconds.
    pub refresh_token_ttl_seconds: i64,
    /// Authorization-code lifetime in seconds.
    pub authorization_code_ttl_seconds: i64,
    /// Access-token format.
    pub access_token_format: TokenFormat,
    /// Whether the authorization-code grant requires PKCE.
    #[serde(rename = "requirePKCE")]
    pub require_pkce: bool,
    /// Whether the PKCE `plain` method is accepted.
    #[serde(rename = "allowPlainPKCE")]
    pub allow_plain_pkce: bool,
    /// Whether refresh tokens rotate on use.
    pub refresh_token_rotation: bool,
    /// Whether the consent page is skipped.
    pub first_party: bool,
    /// Static claims added to access tokens.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// What the client asked for and did not get (or got less of), and which policy decided so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denials: Vec<Denial>,
}

/// One value asked for and not granted, or a lifetime clamped.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    /// The setting, as the spec names it: `grantTypes`, `scopes`, `audience`, `redirectUris`,
    /// `firstParty`, `accessTokenTTL`, `refreshTokenTTL`, `authorizationCodeTTL`, `accessTokenFormat`.
    pub setting: String,
    /// The value denied, such as `password` or `https://payments.example.com`.
    pub value: String,
    /// Who decided: `ClusterOAuthPolicy/<name>`, `OAuthPolicy/<namespace>/<name>` or `built-in ceiling`.
    pub by: String,
    /// Why.
    pub message: String,
}

/// A policy that decided something for a client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPolicy {
    /// `OAuthPolicy` or `ClusterOAuthPolicy`.
    #[serde(default = "oauth_policy_kind")]
    pub kind: String,
    /// The OAuthPolicy's namespace; absent for a ClusterOAuthPolicy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The policy's name.
    pub name: String,
    /// Its priority.
    pub priority: i32,
    /// The settings this policy decided for the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decided: Vec<String>,
    /// Settings this policy sets that a higher-priority policy decided instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overridden: Vec<String>,
}

fn oauth_policy_kind() -> String {
    "OAuthPolicy".to_owned()
}

/// The outcome of [`resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The enforced settings.
    pub effective: EffectiveSettings,
    /// The policies that decided something, in the order of [`crate::OAuthClientStatus::applied_policies`].
    pub applied: Vec<AppliedPolicy>,
}

static NO_NAMESPACES: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// What resolution reads besides the client: everything the caller can see.
#[derive(Clone, Copy, Debug)]
pub struct Cluster<'a> {
    /// OAuthPolicies of every namespace the caller sees (others' publish only to consumers they admit).
    pub policies: &'a [OAuthPolicy],
    /// Every ClusterOAuthPolicy.
    pub cluster_policies: &'a [ClusterOAuthPolicy],
    /// Each namespace's labels, for `namespaceSelector`s; a namespace missing here has none.
    pub namespace_labels: &'a BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for Cluster<'_> {
    fn default() -> Self {
        Self {
            policies: &[],
            cluster_policies: &[],
            namespace_labels: &NO_NAMESPACES,
        }
    }
}

/// An audience or a scope, as a policy publishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Published {
    Audience,
    Scope,
}

impl Published {
    fn setting(self) -> &'static str {
        match self {
            Published::Audience => "audience",
            Published::Scope => "scopes",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Published::Audience => "audience",
            Published::Scope => "scope",
        }
    }

    fn listed_by(self, spec: &OAuthPolicySpec, value: &str) -> bool {
        match self {
            Published::Audience => spec.audience.iter().flatten().any(|a| a == value),
            Published::Scope => spec.scopes.iter().flatten().any(|s| s.name == value),
        }
    }
}

/// A setting the ceiling decided, and who decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound<T> {
    /// The value in force.
    pub value: T,
    /// `ClusterOAuthPolicy/<name>`, or [`BUILT_IN_CEILING`].
    pub by: String,
}

/// The ceiling of one namespace, setting by setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceiling {
    /// Grant types allowed at all.
    pub grant_types: Bound<Vec<GrantType>>,
    /// Whether clients may be first-party.
    pub allow_first_party: Bound<bool>,
    /// Audience patterns the namespace may publish.
    pub publishable_audiences: Bound<Vec<String>>,
    /// Scope patterns the namespace may publish.
    pub publishable_scopes: Bound<Vec<String>>,
    /// Allowed redirect hosts; `None` is unrestricted.
    pub redirect_uri_hosts: Bound<Option<Vec<String>>>,
    /// Longest access-token lifetime in seconds.
    pub max_access_token_ttl: Bound<Option<i64>>,
    /// Longest refresh-token lifetime in seconds.
    pub max_refresh_token_ttl: Bound<Option<i64>>,
    /// Longest authorization-code lifetime in seconds.
    pub max_authorization_code_ttl: Bound<Option<i64>>,
    /// Allowed token formats; `None` is every format.
    pub allowed_token_formats: Bound<Option<Vec<TokenFormat>>>,
    /// The selecting ClusterOAuthPolicies, highest priority first, with what each decided.
    pub applied: Vec<AppliedPolicy>,
}

impl Ceiling {
    fn publishable(&self, kind: Published) -> &Bound<Vec<String>> {
        match kind {
            Published::Audience => &self.publishable_audiences,
            Published::Scope => &self.publishable_scopes,
        }
    }
}

fn policy_ref(policy: &OAuthPolicy) -> String {
    format!(
        "OAuthPolicy/{}/{}",
        policy.metadata.namespace.as_deref().unwrap_or_default(),
        policy.metadata.name.as_deref().unwrap_or_default()
    )
}

fn cluster_policy_ref(policy: &ClusterOAuthPolicy) -> String {
    format!(
        "ClusterOAuthPolicy/{}",
        policy.metadata.name.as_deref().unwrap_or_default()
    )
}

fn applied_entry(
    kind: &str,
    namespace: Option<String>,
    name: Option<String>,
    priority: i32,
) -> AppliedPolicy {
    AppliedPolicy {
        kind: kind.to_owned(),
        namespace,
        name: name.unwrap_or_default(),
        priority,
        decided: Vec::new(),
        overridden: Vec::new(),
    }
}

/// `selecting` in precedence order (highest priority first, then by name), and an applied entry for each.
fn in_precedence<'p, P: kube::Resource>(
    mut selecting: Vec<&'p P>,
    kind: &str,
    priority: fn(&P) -> i32,
) -> (Vec<&'p P>, Vec<AppliedPolicy>) {
    selecting.sort_by(|a, b| {
        priority(b)
            .cmp(&priority(a))
            .then_with(|| a.meta().name.cmp(&b.meta().name))
    });
    let applied = selecting
        .iter()
        .map(|p| {
            applied_entry(
                kind,
                p.meta().namespace.clone(),
                p.meta().name.clone(),
                priority(p),
            )
        })
        .collect();
    (selecting, applied)
}

/// For one setting, the first of `selecting` (already in precedence order) that sets it decides; the
/// others that set it are overridden. Returns the index of the decider and its value.
fn decide<P, T>(
    selecting: &[&P],
    applied: &mut [AppliedPolicy],
    field: &str,
    get: impl Fn(&P) -> Option<T>,
) -> Option<(usize, T)> {
    let mut winner = None;
    for (i, policy) in selecting.iter().enumerate() {
        if let Some(value) = get(policy) {
            if winner.is_none() {
                applied[i].decided.push(field.to_owned());
                winner = Some((i, value));
            } else {
                applied[i].overridden.push(field.to_owned());
            }
        }
    }
    winner
}

impl<'a> Cluster<'a> {
    /// A cluster of `policies` only: no ClusterOAuthPolicy, no namespace labels.
    pub fn with_policies(policies: &'a [OAuthPolicy]) -> Self {
        Self {
            policies,
            ..Self::default()
        }
    }

    fn labels(&self, namespace: &str) -> &BTreeMap<String, String> {
        self.namespace_labels.get(namespace).unwrap_or(&NO_LABELS)
    }

    /// The ceiling of `namespace`.
    pub fn ceiling(&self, namespace: &str) -> Result<Ceiling> {
        let labels = self.labels(namespace);
        let mut selecting = Vec::new();
        for policy in self.cluster_policies {
            if selector::matches(policy.spec.namespace_selector.as_ref(), labels)? {
                selecting.push(policy);
            }
        }
        let (selecting, mut applied) = in_precedence(selecting, "ClusterOAuthPolicy", |p| p.spec.priority);
        let by = |winner: Option<usize>| match winner {
            Some(i) => cluster_policy_ref(selecting[i]),
            None => BUILT_IN_CEILING.to_owned(),
        };
        type Spec = ClusterOAuthPolicySpec;
        let grants = decide(&selecting, &mut applied, "allowedGrantTypes", |p| {
            p.spec.allowed_grant_types.clone()
        });
        let first_party = decide(&selecting, &mut applied, "allowFirstParty", |p| {
            p.spec.allow_first_party
        });
        let audiences = decide(&selecting, &mut applied, "publishableAudiences", |p| {
            p.spec.publishable_audiences.clone()
        });
        let scopes = decide(&selecting, &mut applied, "publishableScopes", |p| {
            p.spec.publishable_scopes.clone()
        });
        let hosts = decide(&selecting, &mut applied, "redirectUriHosts", |p| {
            p.spec.redirect_uri_hosts.clone()
        });
        let ttl = |applied: &mut [AppliedPolicy], field: &str, get: fn(&Spec) -> Option<&crate::Duration>| {
            decide(&selecting, applied, field, |p| get(&p.spec).cloned())
        };
        let access = ttl(&mut applied, "maxAccessTokenTTL", |s| {
            s.max_access_token_ttl.as_ref()
        });
        let refresh = ttl(&mut applied, "maxRefreshTokenTTL", |s| {
            s.max_refresh_token_ttl.as_ref()
        });
        let code = ttl(&mut applied, "maxAuthorizationCodeTTL", |s| {
            s.max_authorization_code_ttl.as_ref()
        });
        let formats = decide(&selecting, &mut applied, "allowedTokenFormats", |p| {
            p.spec.allowed_token_formats.clone()
        });
        let secs = |d: Option<(usize, crate::Duration)>| -> Result<Bound<Option<i64>>> {
            Ok(Bound {
                by: by(d.as_ref().map(|(i, _)| *i)),
                value: d.map(|(_, d)| seconds(Some(d), 0)).transpose()?,
            })
        };
        Ok(Ceiling {
            grant_types: Bound {
                by: by(grants.as_ref().map(|(i, _)| *i)),
                value: grants.map_or_else(|| BUILT_IN_GRANT_TYPES.to_vec(), |(_, g)| g),
            },
            allow_first_party: Bound {
                by: by(first_party.map(|(i, _)| i)),
                value: first_party.is_some_and(|(_, v)| v),
            },
            publishable_audiences: Bound {
                by: by(audiences.as_ref().map(|(i, _)| *i)),
                value: audiences.map(|(_, v)| v).unwrap_or_default(),
            },
            publishable_scopes: Bound {
                by: by(scopes.as_ref().map(|(i, _)| *i)),
                value: scopes.map(|(_, v)| v).unwrap_or_default(),
            },
            redirect_uri_hosts: Bound {
                by: by(hosts.as_ref().map(|(i, _)| *i)),
                value: hosts.map(|(_, v)| v),
            },
            max_access_token_ttl: secs(access)?,
            max_refresh_token_ttl: secs(refresh)?,
            max_authorization_code_ttl: secs(code)?,
            allowed_token_formats: Bound {
                by: by(formats.as_ref().map(|(i, _)| *i)),
                value: formats.map(|(_, v)| v),
            },
            applied,
        })
    }

    /// Whether `policy`'s namespace may publish `value` as `kind` at all.
    fn may_publish(&self, policy: &OAuthPolicy, kind: Published, value: &str) -> Result<bool> {
        let ceiling = self.ceiling(policy.metadata.namespace.as_deref().unwrap_or_default())?;
        Ok(ceiling
            .publishable(kind)
            .value
            .iter()
            .any(|p| pattern_matches(p, value)))
    }

    /// The policy that owns `value`: the oldest (creationTimestamp, then namespace/name) of those that
    /// list it and may publish it.
    fn owner(&self, kind: Published, value: &str) -> Result<Option<&'a OAuthPolicy>> {
        let mut owner: Option<&OAuthPolicy> = None;
        for policy in self.policies {
            if !kind.listed_by(&policy.spec, value) || !self.may_publish(policy, kind, value)? {
                continue;
            }
            let age = |p: &OAuthPolicy| {
                (
                    p.metadata.creation_timestamp.clone(),
                    p.metadata.namespace.clone(),
                    p.metadata.name.clone(),
                )
            };
            if owner.is_none_or(|o| age(policy) < age(o)) {
                owner = Some(policy);
            }
        }
        Ok(owner)
    }

    /// Whether `policy` publishes `value`, or the denial saying why not.
    fn publication(&self, policy: &OAuthPolicy, kind: Published, value: &str) -> Result<Option<Denial>> {
        if kind == Published::Scope && STANDARD_SCOPES.contains(&value) {
            return Ok(None);
        }
        let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
        if !self.may_publish(policy, kind, value)? {
            let ceiling = self.ceiling(namespace)?;
            let field = match kind {
                Published::Audience => "publishableAudiences",
                Published::Scope => "publishableScopes",
            };
            return Ok(Some(Denial {
                setting: kind.setting().to_owned(),
                value: value.to_owned(),
                by: ceiling.publishable(kind).by.clone(),
                message: format!(
                    "namespace {namespace} may not publish {} {value}: it is not in the {field} of its ceiling",
                    kind.noun()
                ),
            }));
        }
        match self.owner(kind, value)? {
            Some(owner) if owner.metadata.namespace.as_deref() != Some(namespace) => Ok(Some(Denial {
                setting: kind.setting().to_owned(),
                value: value.to_owned(),
                by: policy_ref(owner),
                message: format!(
                    "{} {value} belongs to {}, which published it first",
                    kind.noun(),
                    policy_ref(owner)
                ),
            })),
            _ => Ok(None),
        }
    }

    /// The audiences and scopes `policy` sets but does not publish, and why.
    pub fn unpublished(&self, policy: &OAuthPolicy) -> Result<Vec<Denial>> {
        let mut denials = Vec::new();
        for audience in policy.spec.audience.iter().flatten() {
            denials.extend(self.publication(policy, Published::Audience, audience)?);
        }
        for scope in policy.spec.scopes.iter().flatten() {
            denials.extend(self.publication(policy, Published::Scope, &scope.name)?);
        }
        Ok(denials)
    }

    /// Whether `policy` admits `client` to its audiences and scopes: by `clientSelector` in its own
    /// namespace, by `consumers` in any other.
    pub fn admits(&self, policy: &OAuthPolicy, client: &OAuthClient) -> Result<bool> {
        let labels = client.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
        let namespace = client.metadata.namespace.as_deref().unwrap_or_default();
        if policy.metadata.namespace.as_deref() == Some(namespace) {
            return selector::matches(policy.spec.client_selector.as_ref(), labels);
        }
        for consumer in &policy.spec.consumers {
            if selector::matches(Some(&consumer.namespace_selector), self.labels(namespace))?
                && selector::matches(consumer.client_selector.as_ref(), labels)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Works out `client`'s effective settings from what `cluster` holds.
pub fn resolve(client: &OAuthClient, cluster: &Cluster<'_>) -> Result<Resolution> {
    let namespace = client.metadata.namespace.as_deref().unwrap_or_default();
    let labels = client.metadata.labels.clone().unwrap_or_default();
    let mut selecting = Vec::new();
    for policy in cluster.policies {
        if policy.metadata.namespace.as_deref() == Some(namespace)
            && selector::matches(policy.spec.client_selector.as_ref(), &labels)?
        {
            selecting.push(policy);
        }
    }
    let (selecting, mut applied) = in_precedence(selecting, "OAuthPolicy", |p| p.spec.priority);
    let own = &selecting;

    let allowed_grants = decide(own, &mut applied, "allowedGrantTypes", |p| {
        p.spec.allowed_grant_types.clone()
    });
    let allowed_scopes = decide(own, &mut applied, "scopes", |p| p.spec.scopes.clone());
    let default_scopes = decide(own, &mut applied, "defaultScopes", |p| {
        p.spec.default_scopes.clone()
    });
    let own_audience = decide(own, &mut applied, "audience", |p| p.spec.audience.clone());
    let access_ttl = decide(own, &mut applied, "accessTokenTTL", |p| {
        p.spec.access_token_ttl.clone()
    });
    let refresh_ttl = decide(own, &mut applied, "refreshTokenTTL", |p| {
        p.spec.refresh_token_ttl.clone()
    });
    let code_ttl = decide(own, &mut applied, "authorizationCodeTTL", |p| {
        p.spec.authorization_code_ttl.clone()
    });
    let format = decide(own, &mut applied, "accessTokenFormat", |p| {
        p.spec.access_token_format
    });
    let require_pkce = decide(own, &mut applied, "requirePKCE", |p| p.spec.require_pkce);
    let rotation = decide(own, &mut applied, "refreshTokenRotation", |p| {
        p.spec.refresh_token_rotation
    });
    let first_party = decide(own, &mut applied, "firstParty", |p| p.spec.first_party);

    let mut claims = BTreeMap::new();
    for (i, policy) in selecting.iter().enumerate() {
        let mut won = false;
        let mut lost = false;
        for (key, value) in &policy.spec.claims {
            if claims.contains_key(key) {
                lost = true;
            } else {
                claims.insert(key.clone(), value.clone());
                won = true;
            }
        }
        if won {
            applied[i].decided.push("claims".to_owned());
        }
        if lost {
            applied[i].overridden.push("claims".to_owned());
        }
    }

    let ceiling = cluster.ceiling(namespace)?;
    let spec = &client.spec;
    let mut denials = Vec::new();
    let deny = |denials: &mut Vec<Denial>, setting: &str, value: &str, by: &str, message: String| {
        denials.push(Denial {
            setting: setting.to_owned(),
            value: value.to_owned(),
            by: by.to_owned(),
            message,
        });
    };

    // Redirect URIs, then grant types (a redirecting grant needs a redirect URI left).
    let mut redirect_uris = Vec::new();
    for uri in &spec.redirect_uris {
        let host = uri_host(uri);
        match &ceiling.redirect_uri_hosts.value {
            Some(hosts) if !hosts.iter().any(|h| host_matches(h, host)) => deny(
                &mut denials,
                "redirectUris",
                uri,
                &ceiling.redirect_uri_hosts.by,
                format!("host {host} is not in redirectUriHosts"),
            ),
            _ => redirect_uris.push(uri.clone()),
        }
    }
    let requested: BTreeSet<GrantType> = spec.grant_types.iter().copied().collect();
    let mut grant_types = Vec::new();
    for grant in requested {
        let name = grant.as_str();
        if !ceiling.grant_types.value.contains(&grant) {
            deny(
                &mut denials,
                "grantTypes",
                name,
                &ceiling.grant_types.by,
                format!("the {name} grant is not allowed in namespace {namespace}"),
            );
        } else if let Some((i, _)) = allowed_grants.as_ref().filter(|(_, a)| !a.contains(&grant)) {
            deny(
                &mut denials,
                "grantTypes",
                name,
                &policy_ref(selecting[*i]),
                format!("the {name} grant is not in allowedGrantTypes"),
            );
        } else if matches!(grant, GrantType::AuthorizationCode | GrantType::Implicit)
            && redirect_uris.is_empty()
            && !spec.redirect_uris.is_empty()
        {
            deny(
                &mut denials,
                "grantTypes",
                name,
                &ceiling.redirect_uri_hosts.by,
                format!("the {name} grant needs a redirect URI, and no host of the client's is allowed"),
            );
        } else {
            grant_types.push(grant);
        }
    }

    // The API products that admit the client: its namespace's deciding policy, and every policy of
    // another namespace whose consumers include it.
    let mut foreign = Vec::new();
    for policy in cluster.policies {
        if policy.metadata.namespace.as_deref() != Some(namespace)
            && (policy.spec.audience.is_some() || policy.spec.scopes.is_some())
            && cluster.admits(policy, client)?
        {
            foreign.push(policy);
        }
    }
    foreign.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut foreign_applied: Vec<AppliedPolicy> = foreign
        .iter()
        .map(|p| {
            applied_entry(
                "OAuthPolicy",
                p.metadata.namespace.clone(),
                p.metadata.name.clone(),
                p.spec.priority,
            )
        })
        .collect();
    let mark = |foreign_applied: &mut Vec<AppliedPolicy>, product: &OAuthPolicy, setting: &str| {
        if let Some(i) = foreign.iter().position(|p| std::ptr::eq(*p, product)) {
            let decided = &mut foreign_applied[i].decided;
            if !decided.iter().any(|d| d == setting) {
                decided.push(setting.to_owned());
            }
        }
    };
    let why_not = |kind: Published, value: &str, refused: Option<Denial>, own: Option<&OAuthPolicy>| {
        unoffered(cluster, &ceiling, namespace, kind, value, refused, own)
    };

    // Audience: what the client names, else its namespace's deciding policy's.
    let audience_policy = own_audience.as_ref().map(|(i, _)| selecting[*i]);
    let mut audience = Vec::new();
    if spec.audience.is_empty() {
        if let Some((i, values)) = &own_audience {
            for value in values {
                match cluster.publication(selecting[*i], Published::Audience, value)? {
                    None => audience.push(value.clone()),
                    Some(denial) => denials.push(denial),
                }
            }
        }
    } else {
        for value in &spec.audience {
            let products = audience_policy.into_iter().chain(foreign.iter().copied());
            match offer(cluster, products, Published::Audience, value)? {
                Ok(product) => {
                    mark(&mut foreign_applied, product, "audience");
                    audience.push(value.clone());
                }
                Err(refused) => denials.push(why_not(Published::Audience, value, refused, audience_policy)?),
            }
        }
    }
    let audience = dedup(audience);

    // Scopes: what the client names, else everything its namespace's deciding policy lists. Standard
    // OpenID Connect scopes need no product, only the deciding policy's consent if it lists scopes.
    let scopes_policy = allowed_scopes.as_ref().map(|(i, _)| selecting[*i]);
    let own_scopes: &[ScopeSpec] = allowed_scopes.as_ref().map_or(&[], |(_, list)| list.as_slice());
    let mut scope_descriptions = BTreeMap::new();
    let mut describe = |list: &[ScopeSpec], name: &str| {
        if let Some(d) = list
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.description.clone())
        {
            scope_descriptions.entry(name.to_owned()).or_insert(d);
        }
    };
    let wanted: Vec<String> = if spec.scopes.is_empty() {
        own_scopes.iter().map(|s| s.name.clone()).collect()
    } else {
        spec.scopes.clone()
    };
    let mut scopes = Vec::new();
    for value in dedup(wanted) {
        if STANDARD_SCOPES.contains(&value.as_str()) {
            match scopes_policy {
                Some(policy) if !own_scopes.iter().any(|s| s.name == value) => {
                    denials.push(why_not(Published::Scope, &value, None, Some(policy))?);
                }
                _ => {
                    describe(own_scopes, &value);
                    scopes.push(value);
                }
            }
            continue;
        }
        let products = scopes_policy.into_iter().chain(foreign.iter().copied());
        match offer(cluster, products, Published::Scope, &value)? {
            Ok(product) => {
                mark(&mut foreign_applied, product, "scopes");
                describe(product.spec.scopes.as_deref().unwrap_or_default(), &value);
                scopes.push(value);
            }
            Err(refused) => denials.push(why_not(Published::Scope, &value, refused, scopes_policy)?),
        }
    }
    let default_scopes = match default_scopes {
        Some((_, defaults)) => defaults.into_iter().filter(|d| scopes.contains(d)).collect(),
        None => scopes.clone(),
    };

    // First party: the deciding policy's word, else the client's; only where the ceiling allows it.
    let wants_first_party = first_party.map_or(spec.first_party.unwrap_or(false), |(_, v)| v);
    let first_party = wants_first_party && ceiling.allow_first_party.value;
    if wants_first_party && !first_party {
        deny(
            &mut denials,
            "firstParty",
            "true",
            &ceiling.allow_first_party.by,
            format!(
                "first-party clients (which skip the consent page) are not allowed in namespace {namespace}"
            ),
        );
    }

    // Lifetimes, clamped to the ceiling.
    let mut clamp = |setting: &str, value: i64, max: &Bound<Option<i64>>, field: &str| match max.value {
        Some(max_value) if value > max_value => {
            deny(
                &mut denials,
                setting,
                &format!("{value}s"),
                &max.by,
                format!("clamped to {max_value}s by {field}"),
            );
            max_value
        }
        _ => value,
    };
    let access_token_ttl_seconds = clamp(
        "accessTokenTTL",
        seconds(access_ttl.map(|(_, d)| d), DEFAULT_ACCESS_TOKEN_TTL)?,
        &ceiling.max_access_token_ttl,
        "maxAccessTokenTTL",
    );
    let refresh_token_ttl_seconds = clamp(
        "refreshTokenTTL",
        seconds(refresh_ttl.map(|(_, d)| d), DEFAULT_REFRESH_TOKEN_TTL)?,
        &ceiling.max_refresh_token_ttl,
        "maxRefreshTokenTTL",
    );
    let authorization_code_ttl_seconds = clamp(
        "authorizationCodeTTL",
        seconds(code_ttl.map(|(_, d)| d), DEFAULT_AUTHORIZATION_CODE_TTL)?,
        &ceiling.max_authorization_code_ttl,
        "maxAuthorizationCodeTTL",
    );

    let mut access_token_format = format.map(|(_, f)| f).unwrap_or_default();
    if let Some(allowed) = &ceiling.allowed_token_formats.value
        && !allowed.contains(&access_token_format)
        && let Some(first) = allowed.first()
    {
        let name = |f: TokenFormat| match f {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        };
        deny(
            &mut denials,
            "accessTokenFormat",
            name(access_token_format),
            &ceiling.allowed_token_formats.by,
            format!("not in allowedTokenFormats; {} is used instead", name(*first)),
        );
        access_token_format = *first;
    }

    let denied = |setting: &str| -> Vec<String> {
        denials
            .iter()
            .filter(|d| d.setting == setting)
            .map(|d| d.value.clone())
            .collect()
    };
    let denied_scopes = denied("scopes");
    let denied_grant_types = GrantType::ALL
        .into_iter()
        .filter(|g| denied("grantTypes").iter().any(|d| d == g.as_str()))
        .collect();
    let public = spec.is_public();
    let policy_requires_pkce = require_pkce.is_some_and(|(_, v)| v);
    let effective = EffectiveSettings {
        grant_types,
        denied_grant_types,
        scopes,
        denied_scopes,
        default_scopes,
        scope_descriptions,
        audience,
        redirect_uris,
        access_token_ttl_seconds,
        refresh_token_ttl_seconds,
        authorization_code_ttl_seconds,
        access_token_format,
        require_pkce: public || policy_requires_pkce,
        allow_plain_pkce: !policy_requires_pkce,
        refresh_token_rotation: rotation.is_none_or(|(_, v)| v),
        first_party,
        claims,
        denials,
    };
    applied.extend(foreign_applied.into_iter().filter(|a| !a.decided.is_empty()));
    applied.extend(ceiling.applied);
    Ok(Resolution { effective, applied })
}

/// The first of `products` that lists `value` and may publish it; else the first refusal, if any
/// product listed it.
fn offer<'a>(
    cluster: &Cluster<'_>,
    products: impl Iterator<Item = &'a OAuthPolicy>,
    kind: Published,
    value: &str,
) -> Result<Result<&'a OAuthPolicy, Option<Denial>>> {
    let mut refused = None;
    for product in products {
        if !kind.listed_by(&product.spec, value) {
            continue;
        }
        match cluster.publication(product, kind, value)? {
            None => return Ok(Ok(product)),
            Some(denial) => {
                refused.get_or_insert(denial);
            }
        }
    }
    Ok(Err(refused))
}

/// Why no product that admits the client offers `value`: the refusal of one that lists it; else the
/// owner in another namespace, which does not admit the client; else the client's own deciding policy,
/// which does not list it; else the ceiling, under which nothing admitting the client publishes it.
fn unoffered(
    cluster: &Cluster<'_>,
    ceiling: &Ceiling,
    namespace: &str,
    kind: Published,
    value: &str,
    refused: Option<Denial>,
    own: Option<&OAuthPolicy>,
) -> Result<Denial> {
    if let Some(denial) = refused {
        return Ok(denial);
    }
    let denial = |by: String, message: String| Denial {
        setting: kind.setting().to_owned(),
        value: value.to_owned(),
        by,
        message,
    };
    let noun = kind.noun();
    if let Some(owner) = cluster
        .owner(kind, value)?
        .filter(|o| o.metadata.namespace.as_deref() != Some(namespace))
    {
        let owner = policy_ref(owner);
        let message = format!("{noun} {value} is published by {owner}, which does not admit this client");
        return Ok(denial(owner, message));
    }
    if let Some(own) = own {
        let own = policy_ref(own);
        let message = format!("{noun} {value} is not in the {} of {own}", kind.setting());
        return Ok(denial(own, message));
    }
    let message = format!("no OAuthPolicy that admits this client publishes {noun} {value}");
    Ok(denial(ceiling.publishable(kind).by.clone(), message))
}

/// The host of an absolute URL, without port or brackets; empty if there is none.
fn uri_host(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    }
}

fn seconds(value: Option<crate::Duration>, default: i64) -> Result<i64> {
    match value {
        None => Ok(default),
        Some(d) => {
            let secs = d.as_secs()?;
            i64::try_from(secs).map_err(|_| Error::InvalidDuration(d.0.clone()))
        }
    }
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.into_iter().filter(|s| seen.insert(s.clone())).collect()
}

#[cfg(test)]
mod tests;
