//! Policy resolution: from an OAuthClient and the OAuthPolicies in its namespace to the settings the
//! token server enforces. Pure and deterministic; the operator and the standalone server both call it.
//!
//! Precedence: the policies that select the client are ordered by `priority` (highest first), then by
//! name. For each setting, the first policy in that order that sets it decides. Static claims merge key
//! by key under the same rule. The client's own lists are then bounded by what the deciding policy
//! allows.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{Error, GrantType, OAuthClient, OAuthPolicy, Result, TokenFormat, selector};

/// Default access-token lifetime: one hour.
pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 3600;
/// Default absolute refresh-token lifetime: 30 days.
pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 30 * 24 * 3600;
/// Default authorization-code lifetime: 60 seconds (RFC 6749 §4.1.2 recommends at most ten minutes).
pub const DEFAULT_AUTHORIZATION_CODE_TTL: i64 = 60;

/// The settings the token server enforces for one client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveSettings {
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Grant types the client asked for that its policy does not allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_grant_types: Vec<GrantType>,
    /// Scopes the client may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes the client asked for that its policy does not allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_scopes: Vec<String>,
    /// Scopes granted when a request names none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Descriptions of the scopes, for the consent page.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope_descriptions: BTreeMap<String, String>,
    /// Audiences (`aud`) of access tokens.
    #[serde(default)]
    pub audience: Vec<String>,
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
}

/// A policy that selects a client, and the settings it decided.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPolicy {
    /// The OAuthPolicy's name.
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

/// The outcome of [`resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The enforced settings.
    pub effective: EffectiveSettings,
    /// The selecting policies, highest priority first.
    pub applied: Vec<AppliedPolicy>,
}

/// Works out `client`'s effective settings from `policies` (any policies; only those in the client's
/// namespace whose selector matches its labels apply).
pub fn resolve(client: &OAuthClient, policies: &[OAuthPolicy]) -> Result<Resolution> {
    let namespace = client.metadata.namespace.as_deref();
    let labels = client.metadata.labels.clone().unwrap_or_default();
    let mut selecting = Vec::new();
    for policy in policies {
        if policy.metadata.namespace.as_deref() != namespace {
            continue;
        }
        if selector::matches(policy.spec.client_selector.as_ref(), &labels)? {
            selecting.push(policy);
        }
    }
    selecting.sort_by(|a, b| {
        b.spec
            .priority
            .cmp(&a.spec.priority)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });

    let mut applied: Vec<AppliedPolicy> = selecting
        .iter()
        .map(|p| AppliedPolicy {
            name: p.metadata.name.clone().unwrap_or_default(),
            priority: p.spec.priority,
            decided: Vec::new(),
            overridden: Vec::new(),
        })
        .collect();

    // For each setting, the first selecting policy that sets it decides; the others are overridden.
    macro_rules! decide {
        ($field:literal, $get:expr) => {{
            let mut winner = None;
            for (i, policy) in selecting.iter().enumerate() {
                if let Some(value) = $get(&policy.spec) {
                    if winner.is_none() {
                        applied[i].decided.push($field.to_owned());
                        winner = Some(value);
                    } else {
                        applied[i].overridden.push($field.to_owned());
                    }
                }
            }
            winner
        }};
    }

    let spec = &client.spec;
    let allowed_grants = decide!("allowedGrantTypes", |p: &crate::OAuthPolicySpec| p
        .allowed_grant_types
        .clone());
    let allowed_scopes = decide!("scopes", |p: &crate::OAuthPolicySpec| p.scopes.clone());
    let default_scopes = decide!("defaultScopes", |p: &crate::OAuthPolicySpec| p
        .default_scopes
        .clone());
    let audience = decide!("audience", |p: &crate::OAuthPolicySpec| p.audience.clone());
    let access_ttl = decide!("accessTokenTTL", |p: &crate::OAuthPolicySpec| p
        .access_token_ttl
        .clone());
    let refresh_ttl = decide!("refreshTokenTTL", |p: &crate::OAuthPolicySpec| p
        .refresh_token_ttl
        .clone());
    let code_ttl = decide!("authorizationCodeTTL", |p: &crate::OAuthPolicySpec| p
        .authorization_code_ttl
        .clone());
    let format = decide!("accessTokenFormat", |p: &crate::OAuthPolicySpec| p
        .access_token_format);
    let require_pkce = decide!("requirePKCE", |p: &crate::OAuthPolicySpec| p.require_pkce);
    let rotation = decide!("refreshTokenRotation", |p: &crate::OAuthPolicySpec| p
        .refresh_token_rotation);
    let first_party = decide!("firstParty", |p: &crate::OAuthPolicySpec| p.first_party);

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

    let requested: BTreeSet<GrantType> = spec.grant_types.iter().copied().collect();
    let (grant_types, denied_grant_types) = match &allowed_grants {
        Some(allowed) => requested.iter().copied().partition(|g| allowed.contains(g)),
        None => (requested.into_iter().collect(), Vec::new()),
    };

    let mut scope_descriptions = BTreeMap::new();
    let (scopes, denied_scopes) = match &allowed_scopes {
        Some(allowed) => {
            for s in allowed {
                if let Some(d) = &s.description {
                    scope_descriptions.insert(s.name.clone(), d.clone());
                }
            }
            if spec.scopes.is_empty() {
                (allowed.iter().map(|s| s.name.clone()).collect(), Vec::new())
            } else {
                spec.scopes
                    .iter()
                    .cloned()
                    .partition(|s| allowed.iter().any(|a| &a.name == s))
            }
        }
        None => (spec.scopes.clone(), Vec::new()),
    };
    let scopes: Vec<String> = dedup(scopes);
    let default_scopes = match default_scopes {
        Some(defaults) => defaults.into_iter().filter(|d| scopes.contains(d)).collect(),
        None => scopes.clone(),
    };

    let public = spec.is_public();
    let policy_requires_pkce = require_pkce.unwrap_or(false);
    let effective = EffectiveSettings {
        grant_types,
        denied_grant_types,
        scopes,
        denied_scopes,
        default_scopes,
        scope_descriptions,
        audience: audience.unwrap_or_else(|| spec.audience.clone()),
        access_token_ttl_seconds: seconds(access_ttl, DEFAULT_ACCESS_TOKEN_TTL)?,
        refresh_token_ttl_seconds: seconds(refresh_ttl, DEFAULT_REFRESH_TOKEN_TTL)?,
        authorization_code_ttl_seconds: seconds(code_ttl, DEFAULT_AUTHORIZATION_CODE_TTL)?,
        access_token_format: format.unwrap_or_default(),
        require_pkce: public || policy_requires_pkce,
        allow_plain_pkce: !policy_requires_pkce,
        refresh_token_rotation: rotation.unwrap_or(true),
        first_party: spec.first_party.unwrap_or(false) || first_party.unwrap_or(false),
        claims,
    };
    Ok(Resolution { effective, applied })
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
