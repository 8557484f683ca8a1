//! Builders that keep tests short: `OAuthClient::test("billing").public().with_grants(&[..])` instead of
//! a spec literal that names every field. Only built for this crate's tests and with the
//! `test-builders` feature, which the other crates enable for their tests.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::{
    AuthMethod, ClusterOAuthPolicy, ClusterOAuthPolicySpec, Consumer, Duration, ExistingSecretRef, GrantType,
    OAuthClient, OAuthClientSpec, OAuthPolicy, OAuthPolicySpec, ScopeSpec, SecretTemplate,
};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl OAuthClient {
    /// A confidential client_credentials client `name` in namespace `default`, with nothing else set.
    pub fn test(name: &str) -> Self {
        let mut client = OAuthClient::new(
            name,
            OAuthClientSpec {
                client_id: None,
                display_name: None,
                grant_types: vec![GrantType::ClientCredentials],
                redirect_uris: vec![],
                scopes: vec![],
                audience: vec![],
                token_endpoint_auth_method: None,
                first_party: None,
                secret: None,
                existing_secret_ref: None,
                deletion_policy: None,
            },
        );
        client.metadata.namespace = Some("default".to_owned());
        client
    }

    /// In namespace `ns`.
    pub fn in_namespace(mut self, ns: &str) -> Self {
        self.metadata.namespace = Some(ns.to_owned());
        self
    }

    /// Asking for `grants`.
    pub fn with_grants(mut self, grants: &[GrantType]) -> Self {
        self.spec.grant_types = grants.to_vec();
        self
    }

    /// A public client (`tokenEndpointAuthMethod: none`).
    pub fn public(mut self) -> Self {
        self.spec.token_endpoint_auth_method = Some(AuthMethod::None);
        self
    }

    /// Labelled with `pairs`.
    pub fn with_labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.metadata.labels = Some(labels(pairs));
        self
    }

    /// Asking for `scopes`.
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.spec.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// With `uris` as its redirect URIs.
    pub fn with_redirect_uris(mut self, uris: &[&str]) -> Self {
        self.spec.redirect_uris = uris.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Asking for `audience`.
    pub fn with_audience(mut self, audience: &[&str]) -> Self {
        self.spec.audience = audience.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// With `template` as its generated Secret.
    pub fn with_secret(mut self, template: SecretTemplate) -> Self {
        self.spec.secret = Some(template);
        self
    }

    /// Bringing its own Secret `name`.
    pub fn with_existing_secret(mut self, name: &str) -> Self {
        self.spec.existing_secret_ref = Some(ExistingSecretRef {
            name: name.to_owned(),
            client_secret_key: None,
        });
        self
    }
}

impl OAuthPolicy {
    /// A policy `name` in namespace `default` that selects every client and sets nothing.
    pub fn test(name: &str) -> Self {
        let mut policy = OAuthPolicy::new(name, OAuthPolicySpec::default());
        policy.metadata.namespace = Some("default".to_owned());
        policy
    }

    /// In namespace `ns`.
    pub fn in_namespace(mut self, ns: &str) -> Self {
        self.metadata.namespace = Some(ns.to_owned());
        self
    }

    /// With `priority`.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.spec.priority = priority;
        self
    }

    /// Selecting the clients labelled with all of `pairs`.
    pub fn selecting(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.client_selector = Some(LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        });
        self
    }

    /// Setting `accessTokenTTL` to `ttl` (a Go-style duration).
    pub fn with_access_token_ttl(mut self, ttl: &str) -> Self {
        self.spec.access_token_ttl = Some(Duration::new(ttl));
        self
    }

    /// Publishing `audience`.
    pub fn publishing_audience(mut self, audience: &[&str]) -> Self {
        self.spec.audience = Some(audience.iter().map(|a| (*a).to_owned()).collect());
        self
    }

    /// Publishing (and allowing) `scopes`, without descriptions.
    pub fn publishing_scopes(mut self, scopes: &[&str]) -> Self {
        self.spec.scopes = Some(
            scopes
                .iter()
                .map(|s| ScopeSpec {
                    name: (*s).to_owned(),
                    description: None,
                })
                .collect(),
        );
        self
    }

    /// Admitting every client of the namespaces labelled with all of `pairs` as consumers.
    pub fn consumed_by(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.consumers.push(Consumer {
            namespace_selector: LabelSelector {
                match_labels: Some(labels(pairs)),
                match_expressions: None,
            },
            client_selector: None,
        });
        self
    }

    /// Created at Unix time `secs` (ownership of published values goes to the oldest policy).
    pub fn created_at(mut self, secs: i64) -> Self {
        self.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(secs)
            .ok()
            .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
        self
    }
}

impl ClusterOAuthPolicy {
    /// A ClusterOAuthPolicy `name` that selects every namespace and sets nothing.
    pub fn test(name: &str) -> Self {
        ClusterOAuthPolicy::new(name, ClusterOAuthPolicySpec::default())
    }

    /// Selecting the namespaces labelled with all of `pairs`.
    pub fn selecting(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec.namespace_selector = Some(LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        });
        self
    }

    /// With `priority`.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.spec.priority = priority;
        self
    }

    /// Letting the selected namespaces publish audiences and scopes matching `audiences` and `scopes`.
    pub fn publishable(mut self, audiences: &[&str], scopes: &[&str]) -> Self {
        self.spec.publishable_audiences = Some(audiences.iter().map(|a| (*a).to_owned()).collect());
        self.spec.publishable_scopes = Some(scopes.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Allowing exactly `grants`.
    pub fn allowing_grants(mut self, grants: &[GrantType]) -> Self {
        self.spec.allowed_grant_types = Some(grants.to_vec());
        self
    }
}
