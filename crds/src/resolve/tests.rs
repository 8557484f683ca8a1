use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::{AuthMethod, ClusterOAuthPolicy, Duration, OAuthPolicySpec, ScopeSpec};

mod ceiling;

/// A ceiling that lets every namespace publish anything, for the tests about OAuthPolicy precedence.
fn open_ceiling() -> Vec<ClusterOAuthPolicy> {
    vec![ClusterOAuthPolicy::test("open").publishable(&["*"], &["*"])]
}

/// Resolves `client` against `policies` under [`open_ceiling`].
fn open(client: &OAuthClient, policies: &[OAuthPolicy]) -> Result<Resolution> {
    let ceilings = open_ceiling();
    resolve(
        client,
        &Cluster {
            policies,
            cluster_policies: &ceilings,
            ..Cluster::default()
        },
    )
}

fn client(grants: &[GrantType], labels: &[(&str, &str)]) -> OAuthClient {
    OAuthClient::test("billing")
        .in_namespace("team-a")
        .with_grants(grants)
        .with_labels(labels)
}

fn policy(name: &str, priority: i32, spec: OAuthPolicySpec) -> OAuthPolicy {
    OAuthPolicy {
        spec: OAuthPolicySpec { priority, ..spec },
        ..OAuthPolicy::test(name).in_namespace("team-a")
    }
}

fn scopes(names: &[&str]) -> Option<Vec<ScopeSpec>> {
    Some(
        names
            .iter()
            .map(|n| ScopeSpec {
                name: n.to_string(),
                description: Some(format!("{n} access")),
            })
            .collect(),
    )
}

#[test]
fn without_policies_the_client_gets_safe_defaults() {
    let r = resolve(&client(&[GrantType::ClientCredentials], &[]), &Cluster::default()).unwrap();
    assert_eq!(r.effective.grant_types, vec![GrantType::ClientCredentials]);
    assert_eq!(r.effective.access_token_ttl_seconds, DEFAULT_ACCESS_TOKEN_TTL);
    assert_eq!(r.effective.refresh_token_ttl_seconds, DEFAULT_REFRESH_TOKEN_TTL);
    assert_eq!(r.effective.authorization_code_ttl_seconds, 60);
    assert_eq!(r.effective.access_token_format, TokenFormat::Jwt);
    assert!(!r.effective.require_pkce);
    assert!(r.effective.refresh_token_rotation);
    assert!(r.applied.is_empty());
    assert!(r.effective.denials.is_empty());
}

#[test]
fn the_highest_priority_policy_decides_each_setting_it_sets() {
    let low = policy(
        "low",
        1,
        OAuthPolicySpec {
            access_token_ttl: Some(Duration::new("10m")),
            audience: Some(vec!["low-api".into()]),
            ..Default::default()
        },
    );
    let high = policy(
        "high",
        10,
        OAuthPolicySpec {
            access_token_ttl: Some(Duration::new("5m")),
            ..Default::default()
        },
    );
    let r = open(&client(&[GrantType::ClientCredentials], &[]), &[low, high]).unwrap();
    assert_eq!(r.effective.access_token_ttl_seconds, 300);
    assert_eq!(r.effective.audience, vec!["low-api".to_string()]);
    assert_eq!(r.applied[0].name, "high");
    assert_eq!(r.applied[0].kind, "OAuthPolicy");
    assert_eq!(r.applied[0].namespace.as_deref(), Some("team-a"));
    assert_eq!(
        (r.applied[2].kind.as_str(), r.applied[2].name.as_str()),
        ("ClusterOAuthPolicy", "open")
    );
    assert_eq!(r.applied[0].decided, vec!["accessTokenTTL".to_string()]);
    assert_eq!(r.applied[1].name, "low");
    assert_eq!(r.applied[1].decided, vec!["audience".to_string()]);
    assert_eq!(r.applied[1].overridden, vec!["accessTokenTTL".to_string()]);
}

#[test]
fn equal_priorities_are_broken_by_name_whatever_the_input_order() {
    let a = policy(
        "a",
        5,
        OAuthPolicySpec {
            access_token_ttl: Some(Duration::new("1m")),
            ..Default::default()
        },
    );
    let b = policy(
        "b",
        5,
        OAuthPolicySpec {
            access_token_ttl: Some(Duration::new("2m")),
            ..Default::default()
        },
    );
    let c = client(&[GrantType::ClientCredentials], &[]);
    let forward = open(&c, &[a.clone(), b.clone()]).unwrap();
    let backward = open(&c, &[b, a]).unwrap();
    assert_eq!(forward, backward);
    assert_eq!(forward.effective.access_token_ttl_seconds, 60);
}

#[test]
fn policies_bound_grants_and_scopes_and_report_what_they_deny() {
    let p = policy(
        "api",
        0,
        OAuthPolicySpec {
            allowed_grant_types: Some(vec![GrantType::ClientCredentials]),
            scopes: scopes(&["read", "write"]),
            default_scopes: Some(vec!["read".into()]),
            ..Default::default()
        },
    );
    let mut c = client(&[GrantType::ClientCredentials, GrantType::Password], &[]);
    c.spec.scopes = vec!["read".into(), "admin".into()];
    let r = open(&c, &[p]).unwrap();
    assert_eq!(r.effective.grant_types, vec![GrantType::ClientCredentials]);
    assert_eq!(r.effective.denied_grant_types, vec![GrantType::Password]);
    assert_eq!(r.effective.scopes, vec!["read".to_string()]);
    assert_eq!(r.effective.denied_scopes, vec!["admin".to_string()]);
    assert_eq!(
        r.effective.denials,
        vec![
            Denial {
                setting: "grantTypes".into(),
                value: "password".into(),
                by: BUILT_IN_CEILING.into(),
                message: "the password grant is not allowed in namespace team-a".into(),
            },
            Denial {
                setting: "scopes".into(),
                value: "admin".into(),
                by: "OAuthPolicy/team-a/api".into(),
                message: "scope admin is not in the scopes of OAuthPolicy/team-a/api".into(),
            },
        ]
    );
    assert_eq!(r.effective.default_scopes, vec!["read".to_string()]);
    assert_eq!(
        r.effective.scope_descriptions.get("read").map(String::as_str),
        Some("read access")
    );
}

#[test]
fn a_client_without_scopes_gets_every_scope_the_policy_allows() {
    let p = policy(
        "api",
        0,
        OAuthPolicySpec {
            scopes: scopes(&["read", "write"]),
            ..Default::default()
        },
    );
    let r = open(&client(&[GrantType::ClientCredentials], &[]), &[p]).unwrap();
    assert_eq!(r.effective.scopes, vec!["read".to_string(), "write".to_string()]);
    assert_eq!(r.effective.default_scopes, r.effective.scopes);
}

#[test]
fn only_policies_in_the_namespace_whose_selector_matches_apply() {
    let selected = policy(
        "selected",
        0,
        OAuthPolicySpec {
            client_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("tier".into(), "backend".into())])),
                ..Default::default()
            }),
            access_token_ttl: Some(Duration::new("2m")),
            ..Default::default()
        },
    );
    let mut elsewhere = policy(
        "elsewhere",
        100,
        OAuthPolicySpec {
            access_token_ttl: Some(Duration::new("9m")),
            ..Default::default()
        },
    );
    elsewhere.metadata.namespace = Some("team-b".into());
    let backend = open(
        &client(&[GrantType::ClientCredentials], &[("tier", "backend")]),
        &[selected.clone(), elsewhere.clone()],
    )
    .unwrap();
    assert_eq!(backend.effective.access_token_ttl_seconds, 120);
    assert_eq!(backend.applied.len(), 2, "the selecting policy and the ceiling");
    let frontend = open(
        &client(&[GrantType::ClientCredentials], &[("tier", "frontend")]),
        &[selected, elsewhere],
    )
    .unwrap();
    assert_eq!(
        frontend.effective.access_token_ttl_seconds,
        DEFAULT_ACCESS_TOKEN_TTL
    );
    assert_eq!(frontend.applied.len(), 1, "only the ceiling");
}

#[test]
fn public_clients_always_require_pkce_and_policies_can_forbid_plain() {
    let mut c = client(&[GrantType::AuthorizationCode], &[]);
    c.spec.token_endpoint_auth_method = Some(AuthMethod::None);
    let r = resolve(&c, &Cluster::default()).unwrap();
    assert!(r.effective.require_pkce);
    assert!(r.effective.allow_plain_pkce);

    let strict = policy(
        "strict",
        0,
        OAuthPolicySpec {
            require_pkce: Some(true),
            ..Default::default()
        },
    );
    let r = open(&client(&[GrantType::AuthorizationCode], &[]), &[strict]).unwrap();
    assert!(r.effective.require_pkce);
    assert!(!r.effective.allow_plain_pkce);
}

#[test]
fn claims_merge_key_by_key_with_the_higher_priority_value_winning() {
    let low = policy(
        "low",
        0,
        OAuthPolicySpec {
            claims: BTreeMap::from([("tier".into(), "free".into()), ("team".into(), "a".into())]),
            ..Default::default()
        },
    );
    let high = policy(
        "high",
        1,
        OAuthPolicySpec {
            claims: BTreeMap::from([("tier".into(), "gold".into())]),
            ..Default::default()
        },
    );
    let r = open(&client(&[GrantType::ClientCredentials], &[]), &[low, high]).unwrap();
    assert_eq!(r.effective.claims.get("tier").map(String::as_str), Some("gold"));
    assert_eq!(r.effective.claims.get("team").map(String::as_str), Some("a"));
    assert_eq!(r.applied[1].decided, vec!["claims".to_string()]);
    assert_eq!(r.applied[1].overridden, vec!["claims".to_string()]);
}

#[test]
fn a_malformed_duration_is_an_error_not_a_default() {
    let p = policy(
        "bad",
        0,
        OAuthPolicySpec {
            access_token_ttl: Some(Duration::new("soon")),
            ..Default::default()
        },
    );
    let err = open(&client(&[GrantType::ClientCredentials], &[]), &[p]).unwrap_err();
    assert!(matches!(err, Error::InvalidDuration(d) if d == "soon"));
}
