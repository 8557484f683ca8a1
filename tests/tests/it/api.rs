//! The gatehouse.dev/v1alpha1 API as the real API server enforces it: the CRDs install, valid
//! manifests round-trip, and every schema and CEL rule rejects bad input with a message naming the field.

use gatehouse_crds::{OAuthClient, OAuthPolicy};
use gatehouse_tests::{ControlPlane, repo_root};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::{
    Api, Resource,
    api::{ApiResource, DynamicObject, PostParams},
};
use serde_json::{Value, json};

/// Creates `object` (a full manifest as JSON) in `ns` and returns the API server's answer.
async fn create(ns: &str, object: Value) -> Result<DynamicObject, kube::Error> {
    let cp = ControlPlane::shared().await.expect("control plane");
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let ar = match kind.as_str() {
        "OAuthClient" => ApiResource::erase::<OAuthClient>(&()),
        "OAuthPolicy" => ApiResource::erase::<OAuthPolicy>(&()),
        "Secret" => ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
        "ClusterOAuthPolicy" => ApiResource::erase::<gatehouse_crds::ClusterOAuthPolicy>(&()),
        other => panic!("unexpected kind {other}"),
    };
    let mut obj: DynamicObject = serde_json::from_value(object).unwrap();
    let api = if kind == "ClusterOAuthPolicy" {
        // Cluster-scoped, in a shared control plane: a name of this test's own, and a dry run, so that
        // nothing outlives the test or reaches another test's namespaces.
        obj.metadata.name = obj.metadata.name.map(|n| format!("{n}-{ns}"));
        let api = Api::<DynamicObject>::all_with(cp.client().unwrap(), &ar);
        return api
            .create(
                &PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &obj,
            )
            .await;
    } else {
        Api::<DynamicObject>::namespaced_with(cp.client().unwrap(), ns, &ar)
    };
    api.create(&PostParams::default(), &obj).await
}

/// The message of the API server's refusal; panics if the object was accepted.
async fn rejection(object: Value) -> String {
    let cp = ControlPlane::shared().await.expect("control plane");
    let ns = cp.namespace("api").await.unwrap();
    match create(&ns, object).await {
        Ok(_) => panic!("the API server accepted an invalid manifest"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "expected 422 Invalid, got {status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

fn client(spec: Value) -> Value {
    json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthClient", "metadata": {"name": "c"}, "spec": spec})
}

fn policy(spec: Value) -> Value {
    json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthPolicy", "metadata": {"name": "p"}, "spec": spec})
}

fn assert_mentions(message: &str, expected: &[&str]) {
    for part in expected {
        assert!(
            message.contains(part),
            "message {message:?} does not mention {part:?}"
        );
    }
}

#[tokio::test]
async fn the_crds_install_and_are_established_with_short_names_and_printer_columns() {
    let cp = ControlPlane::shared().await.unwrap();
    let crds = Api::<CustomResourceDefinition>::all(cp.client().unwrap());
    let client = crds.get("oauthclients.gatehouse.dev").await.unwrap();
    assert_eq!(client.spec.names.short_names, Some(vec!["oac".to_string()]));
    let columns: Vec<String> = client.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    for column in ["Ready", "ClientID", "Secret", "Age"] {
        assert!(
            columns.contains(&column.to_string()),
            "missing printer column {column}"
        );
    }
    assert!(
        client.spec.versions[0]
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let policy = crds.get("oauthpolicies.gatehouse.dev").await.unwrap();
    assert_eq!(policy.spec.names.short_names, Some(vec!["oap".to_string()]));
}

/// Every property in a schema, with its path.
fn properties<'a>(path: &str, schema: &'a JSONSchemaProps, out: &mut Vec<(String, &'a JSONSchemaProps)>) {
    for (name, prop) in schema.properties.iter().flatten() {
        let p = format!("{path}.{name}");
        out.push((p.clone(), prop));
        properties(&p, prop, out);
        if let Some(items) = prop.items.as_ref().and_then(|i| match i {
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => {
                Some(s.as_ref())
            }
            _ => None,
        }) {
            properties(&format!("{p}[]"), items, out);
        }
    }
}

#[tokio::test]
async fn every_field_of_the_served_schema_carries_a_description() {
    let cp = ControlPlane::shared().await.unwrap();
    let crds = Api::<CustomResourceDefinition>::all(cp.client().unwrap());
    for name in [
        "oauthclients.gatehouse.dev",
        "oauthpolicies.gatehouse.dev",
        "clusteroauthpolicies.gatehouse.dev",
    ] {
        let crd = crds.get(name).await.unwrap();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        let mut all = Vec::new();
        properties("", schema, &mut all);
        assert!(
            all.len() > 20,
            "{name}: suspiciously few properties ({})",
            all.len()
        );
        let missing: Vec<&String> = all
            .iter()
            .filter(|(path, p)| {
                // metadata and the fields of Kubernetes' own types (LabelSelector, Condition) are
                // documented upstream.
                !path.starts_with(".metadata")
                    && !path.contains("Selector.")
                    && !path.starts_with(".status.conditions[]")
                    && p.description.as_deref().is_none_or(str::is_empty)
            })
            .map(|(path, _)| path)
            .collect();
        assert!(
            missing.is_empty(),
            "{name}: fields without a description: {missing:?}"
        );
    }
}

#[tokio::test]
async fn every_example_is_accepted_and_reads_back_equal() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("examples").await.unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let created = create(&ns, value.clone())
                .await
                .unwrap_or_else(|e| panic!("{} was refused: {e}", path.display()));
            let created = serde_json::to_value(&created).unwrap();
            // Equal in the API's own types: the API server may add defaults the schema declares
            // (such as priority: 0), which the types read as the same value.
            match value["kind"].as_str() {
                Some("OAuthClient") => assert_eq!(
                    serde_json::from_value::<gatehouse_crds::OAuthClientSpec>(created["spec"].clone())
                        .unwrap(),
                    serde_json::from_value::<gatehouse_crds::OAuthClientSpec>(value["spec"].clone()).unwrap(),
                    "{}: spec differs",
                    path.display()
                ),
                Some("ClusterOAuthPolicy") => assert_eq!(
                    serde_json::from_value::<gatehouse_crds::ClusterOAuthPolicySpec>(created["spec"].clone())
                        .unwrap(),
                    serde_json::from_value::<gatehouse_crds::ClusterOAuthPolicySpec>(value["spec"].clone())
                        .unwrap(),
                    "{}: spec differs",
                    path.display()
                ),
                Some("OAuthPolicy") => assert_eq!(
                    serde_json::from_value::<gatehouse_crds::OAuthPolicySpec>(created["spec"].clone())
                        .unwrap(),
                    serde_json::from_value::<gatehouse_crds::OAuthPolicySpec>(value["spec"].clone()).unwrap(),
                    "{}: spec differs",
                    path.display()
                ),
                _ => {
                    // A Secret's stringData is stored as base64 data.
                    for (key, sent) in value["stringData"].as_object().unwrap() {
                        use base64::Engine as _;
                        let stored = created["data"][key].as_str().unwrap();
                        let decoded = base64::engine::general_purpose::STANDARD.decode(stored).unwrap();
                        assert_eq!(Some(std::str::from_utf8(&decoded).unwrap()), sent.as_str());
                    }
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 9, "expected every example document, saw {seen}");

    // And the typed view reads back what the typed API would write.
    let api = Api::<OAuthClient>::namespaced(cp.client().unwrap(), &ns);
    let backend = api.get("orders-service").await.unwrap();
    assert_eq!(
        backend.spec.grant_types,
        vec![gatehouse_crds::GrantType::ClientCredentials]
    );
    assert_eq!(backend.meta().namespace.as_deref(), Some(ns.as_str()));
}

// --- OAuthClient rules -------------------------------------------------------------------------

#[tokio::test]
async fn a_relative_redirect_uri_is_rejected() {
    let msg = rejection(client(
        json!({"grantTypes": ["authorization_code"], "redirectUris": ["/callback"]}),
    ))
    .await;
    assert_mentions(
        &msg,
        &["spec.redirectUris", "must be an absolute URL without a fragment"],
    );
}

#[tokio::test]
async fn a_redirect_uri_with_a_fragment_is_rejected() {
    let msg = rejection(client(
        json!({"grantTypes": ["authorization_code"], "redirectUris": ["https://app.example.com/cb#frag"]}),
    ))
    .await;
    assert_mentions(&msg, &["spec.redirectUris", "without a fragment"]);
}

#[tokio::test]
async fn a_plain_http_redirect_uri_off_loopback_is_rejected() {
    let msg = rejection(client(
        json!({"grantTypes": ["authorization_code"], "redirectUris": ["http://app.example.com/cb"]}),
    ))
    .await;
    assert_mentions(
        &msg,
        &[
            "spec.redirectUris",
            "must use https unless its host is localhost or a loopback",
        ],
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_rejected() {
    let msg = rejection(client(
        json!({"grantTypes": ["client_credentials", "magic_link"]}),
    ))
    .await;
    assert_mentions(&msg, &["spec.grantTypes[1]", "Unsupported value: \"magic_link\""]);
}

#[tokio::test]
async fn a_duplicated_grant_type_is_rejected() {
    let msg = rejection(client(
        json!({"grantTypes": ["client_credentials", "client_credentials"]}),
    ))
    .await;
    assert_mentions(&msg, &["spec.grantTypes[1]", "Duplicate value"]);
}

#[tokio::test]
async fn a_client_without_grant_types_is_rejected() {
    let msg = rejection(client(json!({"grantTypes": []}))).await;
    assert_mentions(&msg, &["spec.grantTypes"]);
}

#[tokio::test]
async fn a_public_client_may_not_hold_client_credentials() {
    let msg = rejection(client(
        json!({"grantTypes": ["client_credentials"], "tokenEndpointAuthMethod": "none"}),
    ))
    .await;
    assert_mentions(
        &msg,
        &[
            "spec.grantTypes",
            "a public client (tokenEndpointAuthMethod: none) may not use client_credentials or password",
        ],
    );
}

#[tokio::test]
async fn a_public_client_may_not_hold_password() {
    let msg = rejection(client(
        json!({"grantTypes": ["password"], "tokenEndpointAuthMethod": "none"}),
    ))
    .await;
    assert_mentions(
        &msg,
        &["spec.grantTypes", "may not use client_credentials or password"],
    );
}

#[tokio::test]
async fn authorization_code_needs_a_redirect_uri() {
    let msg = rejection(client(json!({"grantTypes": ["authorization_code"]}))).await;
    assert_mentions(
        &msg,
        &[
            "spec.redirectUris",
            "authorization_code and implicit need at least one redirect URI",
        ],
    );
}

#[tokio::test]
async fn implicit_needs_a_redirect_uri() {
    let msg = rejection(client(json!({"grantTypes": ["implicit"], "redirectUris": []}))).await;
    assert_mentions(&msg, &["spec.redirectUris", "need at least one redirect URI"]);
}

#[tokio::test]
async fn a_malformed_rotation_period_is_rejected() {
    let msg = rejection(client(
        json!({"grantTypes": ["client_credentials"], "secret": {"rotation": {"period": "monthly"}}}),
    ))
    .await;
    assert_mentions(
        &msg,
        &["spec.secret.rotation.period", "must be a positive duration"],
    );
}

#[tokio::test]
async fn a_zero_rotation_period_is_rejected() {
    let msg = rejection(client(
        json!({"grantTypes": ["client_credentials"], "secret": {"rotation": {"period": "0s"}}}),
    ))
    .await;
    assert_mentions(
        &msg,
        &["spec.secret.rotation.period", "must be a positive duration"],
    );
}

#[tokio::test]
async fn a_grace_period_not_shorter_than_the_period_is_rejected() {
    let msg = rejection(client(json!({
        "grantTypes": ["client_credentials"],
        "secret": {"rotation": {"period": "1h", "gracePeriod": "90m"}}
    })))
    .await;
    assert_mentions(
        &msg,
        &[
            "spec.secret.rotation.gracePeriod",
            "must be shorter than spec.secret.rotation.period",
        ],
    );
}

#[tokio::test]
async fn existing_secret_ref_and_a_generated_secret_template_are_exclusive() {
    let msg = rejection(client(json!({
        "grantTypes": ["client_credentials"],
        "existingSecretRef": {"name": "mine"},
        "secret": {"name": "generated"}
    })))
    .await;
    assert_mentions(&msg, &["spec.existingSecretRef", "mutually exclusive"]);
}

#[tokio::test]
async fn the_client_id_is_immutable() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("immutable").await.unwrap();
    create(
        &ns,
        client(json!({"grantTypes": ["client_credentials"], "clientId": format!("billing.{ns}")})),
    )
    .await
    .unwrap();
    let api = Api::<OAuthClient>::namespaced(cp.client().unwrap(), &ns);
    let mut c = api.get("c").await.unwrap();
    c.spec.client_id = Some(format!("billing-2.{ns}"));
    let err = api.replace("c", &PostParams::default(), &c).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("unexpected error {err}")
    };
    assert_eq!(status.code, 422);
    assert_mentions(&status.message, &["spec.clientId", "spec.clientId is immutable"]);

    // Removing it is a change too.
    let mut c = api.get("c").await.unwrap();
    c.spec.client_id = None;
    let err = api.replace("c", &PostParams::default(), &c).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.message.contains("spec.clientId is immutable")));
}

#[tokio::test]
async fn the_token_endpoint_auth_method_is_immutable() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("immutable").await.unwrap();
    create(
        &ns,
        client(
            json!({"grantTypes": ["authorization_code"], "redirectUris": ["https://a.example.com/cb"],
                      "tokenEndpointAuthMethod": "client_secret_basic"}),
        ),
    )
    .await
    .unwrap();
    let api = Api::<OAuthClient>::namespaced(cp.client().unwrap(), &ns);
    let mut c = api.get("c").await.unwrap();
    c.spec.token_endpoint_auth_method = Some(gatehouse_crds::AuthMethod::None);
    let err = api.replace("c", &PostParams::default(), &c).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.message.contains("spec.tokenEndpointAuthMethod is immutable")),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_name_too_long_for_its_secret_is_rejected() {
    let mut manifest = client(json!({"grantTypes": ["client_credentials"]}));
    manifest["metadata"]["name"] = json!("a".repeat(250));
    let msg = rejection(manifest).await;
    assert_mentions(&msg, &["metadata.name must be at most 247 characters"]);
}

// --- OAuthPolicy rules -------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_access_token_ttl_is_rejected() {
    let msg = rejection(policy(json!({"accessTokenTTL": "soon"}))).await;
    assert_mentions(&msg, &["spec.accessTokenTTL", "must be a positive duration"]);
}

#[tokio::test]
async fn a_zero_refresh_token_ttl_is_rejected() {
    let msg = rejection(policy(json!({"refreshTokenTTL": "0m"}))).await;
    assert_mentions(&msg, &["spec.refreshTokenTTL", "must be a positive duration"]);
}

#[tokio::test]
async fn an_unknown_allowed_grant_type_is_rejected() {
    let msg = rejection(policy(json!({"allowedGrantTypes": ["telepathy"]}))).await;
    assert_mentions(&msg, &["spec.allowedGrantTypes[0]", "Unsupported value"]);
}

#[tokio::test]
async fn a_default_scope_outside_the_allowed_scopes_is_rejected() {
    let msg = rejection(policy(
        json!({"scopes": [{"name": "read"}], "defaultScopes": ["write"]}),
    ))
    .await;
    assert_mentions(
        &msg,
        &["spec.defaultScopes", "must each be listed in spec.scopes"],
    );
}

fn cluster_policy(spec: Value) -> Value {
    json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "ClusterOAuthPolicy", "metadata": {"name": "c"}, "spec": spec})
}

#[tokio::test]
async fn a_publishable_pattern_with_an_inner_star_is_rejected() {
    let msg = rejection(cluster_policy(
        json!({"publishableAudiences": ["https://*.example.com"]}),
    ))
    .await;
    assert_mentions(
        &msg,
        &[
            "spec.publishableAudiences",
            "'*' may appear only at the end of a pattern",
        ],
    );
    let msg = rejection(cluster_policy(json!({"publishableScopes": ["pay*ments.*"]}))).await;
    assert_mentions(
        &msg,
        &["spec.publishableScopes", "'*' may appear only at the end"],
    );
}

#[tokio::test]
async fn a_redirect_host_that_is_not_a_host_is_rejected() {
    let msg = rejection(cluster_policy(
        json!({"redirectUriHosts": ["https://app.example.com/"]}),
    ))
    .await;
    assert_mentions(&msg, &["spec.redirectUriHosts", "must be a host name"]);
}

#[tokio::test]
async fn an_empty_list_of_token_formats_is_rejected() {
    let msg = rejection(cluster_policy(json!({"allowedTokenFormats": []}))).await;
    assert_mentions(&msg, &["spec.allowedTokenFormats", "list at least one format"]);
}

#[tokio::test]
async fn duplicate_scope_names_are_rejected() {
    let msg = rejection(policy(json!({"scopes": [{"name": "read"}, {"name": "read"}]}))).await;
    assert_mentions(&msg, &["spec.scopes", "scope names must be unique"]);
}

#[tokio::test]
async fn a_static_claim_may_not_override_a_registered_claim() {
    let msg = rejection(policy(json!({"claims": {"sub": "root"}}))).await;
    assert_mentions(&msg, &["spec.claims", "may not set a registered claim"]);
}

#[tokio::test]
async fn an_unknown_token_format_is_rejected() {
    let msg = rejection(policy(json!({"accessTokenFormat": "saml"}))).await;
    assert_mentions(&msg, &["spec.accessTokenFormat", "Unsupported value: \"saml\""]);
}

#[tokio::test]
async fn a_priority_out_of_range_is_rejected() {
    let msg = rejection(policy(json!({"priority": 5000}))).await;
    assert_mentions(&msg, &["spec.priority", "less than or equal to 1000"]);
}
