//! The three layers: the ceiling of ClusterOAuthPolicies, API products admitting consumers across
//! namespaces, and the client's request. The attack of issue 13 (a team granting itself another
//! team's audience, scopes, the password grant and first-party consent) is the first test.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::super::*;
use crate::{ClusterOAuthPolicy, Duration};

type Labels = BTreeMap<String, BTreeMap<String, String>>;

fn namespaces(entries: &[(&str, &[(&str, &str)])]) -> Labels {
    entries
        .iter()
        .map(|(ns, pairs)| {
            let labels = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            ((*ns).to_owned(), labels)
        })
        .collect()
}

fn run(
    client: &OAuthClient,
    policies: &[OAuthPolicy],
    ceilings: &[ClusterOAuthPolicy],
    labels: &Labels,
) -> Resolution {
    resolve(
        client,
        &Cluster {
            policies,
            cluster_policies: ceilings,
            namespace_labels: labels,
        },
    )
    .unwrap()
}

fn denial(setting: &str, value: &str, by: &str, message: &str) -> Denial {
    Denial {
        setting: setting.into(),
        value: value.into(),
        by: by.into(),
        message: message.into(),
    }
}

/// The intruder: a client in `evil` asking for payments' audience and admin scope, the password
/// grant and first-party consent.
fn intruder() -> OAuthClient {
    let mut c = OAuthClient::test("thief")
        .in_namespace("evil")
        .with_grants(&[GrantType::ClientCredentials, GrantType::Password])
        .with_audience(&["https://payments.example.com"])
        .with_scopes(&["payments.admin", "openid"]);
    c.spec.first_party = Some(true);
    c
}

/// The platform's default (every namespace, nothing publishable) and the payments team's allowance.
fn platform() -> Vec<ClusterOAuthPolicy> {
    vec![
        ClusterOAuthPolicy::test("gatehouse-default")
            .with_priority(-100)
            .publishable(&[], &[]),
        ClusterOAuthPolicy::test("payments")
            .selecting(&[("team", "payments")])
            .publishable(&["https://payments.example.com"], &["payments.*"]),
    ]
}

fn payments_api() -> OAuthPolicy {
    OAuthPolicy::test("payments-api")
        .in_namespace("payments")
        .publishing_audience(&["https://payments.example.com"])
        .publishing_scopes(&["payments.read", "payments.admin"])
        .consumed_by(&[("kubernetes.io/metadata.name", "shop")])
        .created_at(1_000)
}

fn cluster_labels() -> Labels {
    namespaces(&[
        (
            "payments",
            &[("team", "payments"), ("kubernetes.io/metadata.name", "payments")],
        ),
        ("shop", &[("kubernetes.io/metadata.name", "shop")]),
        ("evil", &[("kubernetes.io/metadata.name", "evil")]),
    ])
}

#[test]
fn with_nothing_set_a_client_gets_neither_audience_nor_product_scope_nor_password_nor_first_party() {
    let r = run(&intruder(), &[], &[], &Labels::new());
    let e = &r.effective;
    assert_eq!(e.grant_types, [GrantType::ClientCredentials]);
    assert_eq!(e.denied_grant_types, [GrantType::Password]);
    assert!(e.audience.is_empty(), "tokens carry the client_id as aud");
    assert_eq!(
        e.scopes,
        ["openid"],
        "standard OpenID Connect scopes need no product"
    );
    assert_eq!(e.denied_scopes, ["payments.admin"]);
    assert!(!e.first_party);
    assert_eq!(
        e.denials,
        [
            denial(
                "grantTypes",
                "password",
                BUILT_IN_CEILING,
                "the password grant is not allowed in namespace evil"
            ),
            denial(
                "audience",
                "https://payments.example.com",
                BUILT_IN_CEILING,
                "no OAuthPolicy that admits this client publishes audience https://payments.example.com"
            ),
            denial(
                "scopes",
                "payments.admin",
                BUILT_IN_CEILING,
                "no OAuthPolicy that admits this client publishes scope payments.admin"
            ),
            denial(
                "firstParty",
                "true",
                BUILT_IN_CEILING,
                "first-party clients (which skip the consent page) are not allowed in namespace evil"
            ),
        ]
    );
    assert!(r.applied.is_empty());
}

#[test]
fn a_product_admits_only_the_consumers_it_lists() {
    let policies = [payments_api()];
    let labels = cluster_labels();
    let evil = run(&intruder(), &policies, &platform(), &labels);
    assert!(evil.effective.audience.is_empty());
    assert_eq!(evil.effective.scopes, ["openid"]);
    let by_product: Vec<_> = evil
        .effective
        .denials
        .iter()
        .filter(|d| d.setting == "audience" || d.setting == "scopes")
        .map(|d| (d.value.as_str(), d.by.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        by_product,
        [
            (
                "https://payments.example.com",
                "OAuthPolicy/payments/payments-api",
                "audience https://payments.example.com is published by OAuthPolicy/payments/payments-api, which does not admit this client"
            ),
            (
                "payments.admin",
                "OAuthPolicy/payments/payments-api",
                "scope payments.admin is published by OAuthPolicy/payments/payments-api, which does not admit this client"
            ),
        ]
    );
    let ceiling_denials: Vec<_> = evil
        .effective
        .denials
        .iter()
        .filter(|d| d.setting == "grantTypes" || d.setting == "firstParty")
        .map(|d| d.by.as_str())
        .collect();
    assert_eq!(
        ceiling_denials,
        [BUILT_IN_CEILING, BUILT_IN_CEILING],
        "gatehouse-default sets neither allowedGrantTypes nor allowFirstParty"
    );

    let shop = OAuthClient::test("checkout")
        .in_namespace("shop")
        .with_audience(&["https://payments.example.com"])
        .with_scopes(&["payments.read"]);
    let r = run(&shop, &policies, &platform(), &labels);
    assert_eq!(r.effective.audience, ["https://payments.example.com"]);
    assert_eq!(r.effective.scopes, ["payments.read"]);
    assert!(r.effective.denials.is_empty(), "{:?}", r.effective.denials);
    let product = &r.applied[0];
    assert_eq!(
        (
            product.kind.as_str(),
            product.namespace.as_deref(),
            product.name.as_str()
        ),
        ("OAuthPolicy", Some("payments"), "payments-api")
    );
    assert_eq!(product.decided, ["audience", "scopes"]);
    assert_eq!(r.applied[1].name, "gatehouse-default");
    assert_eq!(r.applied[1].kind, "ClusterOAuthPolicy");
}

#[test]
fn a_consumer_gets_a_foreign_audience_only_by_asking_and_none_of_the_products_other_settings() {
    let product = payments_api().with_access_token_ttl("1m");
    let shop = OAuthClient::test("checkout").in_namespace("shop");
    let r = run(&shop, &[product], &platform(), &cluster_labels());
    assert!(r.effective.audience.is_empty());
    assert!(r.effective.scopes.is_empty());
    assert_eq!(r.effective.access_token_ttl_seconds, DEFAULT_ACCESS_TOKEN_TTL);
    assert!(
        r.applied
            .iter()
            .all(|a| a.namespace.as_deref() != Some("payments"))
    );
}

#[test]
fn a_consumer_client_selector_narrows_the_admission() {
    let mut product = payments_api();
    product.spec.consumers[0].client_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([("payments".into(), "yes".into())])),
        match_expressions: None,
    });
    let asking = |labels: &[(&str, &str)]| {
        OAuthClient::test("checkout")
            .in_namespace("shop")
            .with_labels(labels)
            .with_audience(&["https://payments.example.com"])
    };
    let policies = [product];
    let labels = cluster_labels();
    let admitted = run(&asking(&[("payments", "yes")]), &policies, &platform(), &labels);
    assert_eq!(admitted.effective.audience, ["https://payments.example.com"]);
    let other = run(&asking(&[]), &policies, &platform(), &labels);
    assert!(other.effective.audience.is_empty());
    assert_eq!(other.effective.denials[0].by, "OAuthPolicy/payments/payments-api");
}

#[test]
fn a_namespace_cannot_publish_what_its_ceiling_does_not_list() {
    let squat = OAuthPolicy::test("squat")
        .in_namespace("evil")
        .publishing_audience(&["https://payments.example.com"])
        .publishing_scopes(&["payments.admin", "openid"])
        .created_at(1);
    let policies = [squat.clone()];
    let labels = cluster_labels();
    let r = run(&intruder(), &policies, &platform(), &labels);
    assert!(r.effective.audience.is_empty());
    assert_eq!(r.effective.scopes, ["openid"]);
    let expected = [
        denial(
            "audience",
            "https://payments.example.com",
            "ClusterOAuthPolicy/gatehouse-default",
            "namespace evil may not publish audience https://payments.example.com: it is not in the publishableAudiences of its ceiling",
        ),
        denial(
            "scopes",
            "payments.admin",
            "ClusterOAuthPolicy/gatehouse-default",
            "namespace evil may not publish scope payments.admin: it is not in the publishableScopes of its ceiling",
        ),
    ];
    let published: Vec<_> = r
        .effective
        .denials
        .iter()
        .filter(|d| d.setting == "audience" || d.setting == "scopes")
        .cloned()
        .collect();
    assert_eq!(published, expected);
    let cluster = Cluster {
        policies: &policies,
        cluster_policies: &platform(),
        namespace_labels: &labels,
    };
    assert_eq!(cluster.unpublished(&squat).unwrap(), expected);
}

#[test]
fn the_oldest_publisher_owns_an_audience_whatever_the_input_order() {
    let everywhere = [ClusterOAuthPolicy::test("open").publishable(&["*"], &["*"])];
    let owner = payments_api();
    let late = OAuthPolicy::test("squat")
        .in_namespace("evil")
        .publishing_audience(&["https://payments.example.com"])
        .created_at(2_000);
    let client = OAuthClient::test("thief").in_namespace("evil");
    let labels = cluster_labels();
    let forward = run(&client, &[owner.clone(), late.clone()], &everywhere, &labels);
    let backward = run(&client, &[late.clone(), owner.clone()], &everywhere, &labels);
    assert_eq!(forward, backward);
    assert!(forward.effective.audience.is_empty());
    assert_eq!(
        forward.effective.denials,
        [denial(
            "audience",
            "https://payments.example.com",
            "OAuthPolicy/payments/payments-api",
            "audience https://payments.example.com belongs to OAuthPolicy/payments/payments-api, which published it first"
        )]
    );
    // A second policy of the owner's namespace publishes it too.
    let sibling = OAuthPolicy::test("payments-internal")
        .in_namespace("payments")
        .publishing_audience(&["https://payments.example.com"])
        .created_at(3_000);
    let teller = OAuthClient::test("teller").in_namespace("payments");
    let r = run(&teller, &[owner, late, sibling], &everywhere, &labels);
    assert_eq!(r.effective.audience, ["https://payments.example.com"]);
}

#[test]
fn a_platform_policy_for_a_labelled_namespace_allows_password_and_first_party() {
    let mut ceilings = platform();
    let mut trusted = ClusterOAuthPolicy::test("trusted-first-party")
        .selecting(&[("gatehouse.dev/first-party", "allowed")])
        .with_priority(10)
        .allowing_grants(&[GrantType::Password, GrantType::RefreshToken]);
    trusted.spec.allow_first_party = Some(true);
    ceilings.push(trusted);
    let mut cli = OAuthClient::test("admin-cli")
        .in_namespace("tools")
        .with_grants(&[
            GrantType::Password,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ]);
    cli.spec.first_party = Some(true);
    let labels = namespaces(&[("tools", &[("gatehouse.dev/first-party", "allowed")])]);
    let r = run(&cli, &[], &ceilings, &labels);
    assert_eq!(
        r.effective.grant_types,
        [GrantType::Password, GrantType::RefreshToken]
    );
    assert!(r.effective.first_party);
    assert_eq!(
        r.effective.denials,
        [denial(
            "grantTypes",
            "client_credentials",
            "ClusterOAuthPolicy/trusted-first-party",
            "the client_credentials grant is not allowed in namespace tools"
        )]
    );
    let ceiling: Vec<_> = r
        .applied
        .iter()
        .map(|a| (a.name.as_str(), a.decided.clone()))
        .collect();
    assert_eq!(
        ceiling,
        [
            (
                "trusted-first-party",
                vec!["allowedGrantTypes".to_owned(), "allowFirstParty".to_owned()]
            ),
            (
                "gatehouse-default",
                vec!["publishableAudiences".to_owned(), "publishableScopes".to_owned()]
            )
        ]
    );
    // The same client elsewhere gets neither.
    let elsewhere = run(&cli.clone().in_namespace("other"), &[], &ceilings, &labels);
    assert!(!elsewhere.effective.first_party);
    assert_eq!(elsewhere.effective.denied_grant_types, [GrantType::Password]);
}

#[test]
fn a_policy_can_switch_first_party_off_but_not_on_beyond_the_ceiling() {
    let mut client = OAuthClient::test("app").in_namespace("team-a");
    client.spec.first_party = Some(true);
    let mut allow = ClusterOAuthPolicy::test("allow");
    allow.spec.allow_first_party = Some(true);
    let mut off = OAuthPolicy::test("consent").in_namespace("team-a");
    off.spec.first_party = Some(false);
    let r = run(&client, &[off], std::slice::from_ref(&allow), &Labels::new());
    assert!(
        !r.effective.first_party,
        "the policy's false wins over the client's true"
    );
    let mut on = OAuthPolicy::test("skip").in_namespace("team-a");
    on.spec.first_party = Some(true);
    client.spec.first_party = None;
    let r = run(&client, &[on], &[], &Labels::new());
    assert!(!r.effective.first_party);
    assert_eq!(r.effective.denials[0].setting, "firstParty");
}

#[test]
fn redirect_uris_outside_the_allowed_hosts_are_not_registered() {
    let mut hosts = ClusterOAuthPolicy::test("hosts");
    hosts.spec.redirect_uri_hosts = Some(vec!["*.example.com".into(), "localhost".into()]);
    let ceilings = [hosts];
    let web = OAuthClient::test("web")
        .in_namespace("team-a")
        .with_grants(&[GrantType::AuthorizationCode])
        .with_redirect_uris(&[
            "https://app.example.com/cb",
            "http://localhost:3000/cb",
            "https://attacker.io/cb",
        ]);
    let r = run(&web, &[], &ceilings, &Labels::new());
    assert_eq!(
        r.effective.redirect_uris,
        ["https://app.example.com/cb", "http://localhost:3000/cb"]
    );
    assert_eq!(
        r.effective.denials,
        [denial(
            "redirectUris",
            "https://attacker.io/cb",
            "ClusterOAuthPolicy/hosts",
            "host attacker.io is not in redirectUriHosts"
        )]
    );
    let stranded = web.with_redirect_uris(&["https://attacker.io/cb"]);
    let r = run(&stranded, &[], &ceilings, &Labels::new());
    assert!(r.effective.redirect_uris.is_empty());
    assert!(r.effective.grant_types.is_empty());
    assert_eq!(r.effective.denied_grant_types, [GrantType::AuthorizationCode]);
}

#[test]
fn lifetimes_are_clamped_and_a_disallowed_format_falls_back() {
    let mut cap = ClusterOAuthPolicy::test("cap");
    cap.spec.max_access_token_ttl = Some(Duration::new("15m"));
    cap.spec.max_authorization_code_ttl = Some(Duration::new("30s"));
    cap.spec.allowed_token_formats = Some(vec![TokenFormat::Jwt]);
    let mut long = OAuthPolicy::test("long")
        .in_namespace("team-a")
        .with_access_token_ttl("2h");
    long.spec.access_token_format = Some(TokenFormat::Opaque);
    let client = OAuthClient::test("c").in_namespace("team-a");
    let r = run(&client, &[long], &[cap], &Labels::new());
    assert_eq!(r.effective.access_token_ttl_seconds, 900);
    assert_eq!(r.effective.authorization_code_ttl_seconds, 30);
    assert_eq!(r.effective.refresh_token_ttl_seconds, DEFAULT_REFRESH_TOKEN_TTL);
    assert_eq!(r.effective.access_token_format, TokenFormat::Jwt);
    assert_eq!(
        r.effective.denials,
        [
            denial(
                "accessTokenTTL",
                "7200s",
                "ClusterOAuthPolicy/cap",
                "clamped to 900s by maxAccessTokenTTL"
            ),
            denial(
                "authorizationCodeTTL",
                "60s",
                "ClusterOAuthPolicy/cap",
                "clamped to 30s by maxAuthorizationCodeTTL"
            ),
            denial(
                "accessTokenFormat",
                "opaque",
                "ClusterOAuthPolicy/cap",
                "not in allowedTokenFormats; jwt is used instead"
            ),
        ]
    );
}

#[test]
fn the_highest_priority_cluster_policy_decides_each_setting_it_sets() {
    let mut low = ClusterOAuthPolicy::test("low").publishable(&["https://a.example.com"], &[]);
    low.spec.max_access_token_ttl = Some(Duration::new("1m"));
    let high = ClusterOAuthPolicy::test("high")
        .with_priority(5)
        .publishable(&["https://b.example.com"], &[]);
    let product = OAuthPolicy::test("api")
        .in_namespace("team-a")
        .publishing_audience(&["https://a.example.com", "https://b.example.com"]);
    let client = OAuthClient::test("c").in_namespace("team-a");
    let r = run(&client, &[product], &[low, high], &Labels::new());
    assert_eq!(r.effective.audience, ["https://b.example.com"]);
    assert_eq!(r.effective.access_token_ttl_seconds, 60);
    assert_eq!(r.effective.denials[0].by, "ClusterOAuthPolicy/high");
    let cluster: Vec<_> = r
        .applied
        .iter()
        .filter(|a| a.kind == "ClusterOAuthPolicy")
        .map(|a| (a.name.as_str(), a.decided.clone(), a.overridden.clone()))
        .collect();
    assert_eq!(
        cluster,
        [
            (
                "high",
                vec!["publishableAudiences".to_owned(), "publishableScopes".to_owned()],
                vec![]
            ),
            (
                "low",
                vec!["maxAccessTokenTTL".to_owned()],
                vec!["publishableAudiences".to_owned(), "publishableScopes".to_owned()]
            ),
        ]
    );
}
