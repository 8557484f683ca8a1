use gatehouse_crds::{AuthMethod, GrantType};

use super::*;

const POLICY_AND_CLIENTS: &str = r#"
apiVersion: gatehouse.dev/v1alpha1
kind: ClusterOAuthPolicy
metadata:
  name: platform
spec:
  publishableAudiences: [https://billing.example.com]
  publishableScopes: ["invoices:*"]
---
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthPolicy
metadata:
  name: billing-api
  namespace: team-a
spec:
  scopes:
    - name: invoices:read
    - name: invoices:write
  defaultScopes: [invoices:read]
  audience: [https://billing.example.com]
  accessTokenTTL: 15m
---
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata:
  name: reporting
  namespace: team-a
spec:
  grantTypes: [client_credentials]
---
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata:
  name: spa
  namespace: team-a
spec:
  grantTypes: [authorization_code]
  tokenEndpointAuthMethod: none
  redirectUris: [http://localhost:3000/cb]
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn clients_are_resolved_against_their_policies_and_get_a_generated_secret_once() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "clients.yaml", POLICY_AND_CLIENTS);

    let first = load_dir(dir.path(), "https://issuer").unwrap();
    assert_eq!(
        first.generated,
        vec![dir.path().join("reporting-oauth.secret.yaml")]
    );
    let reporting = &first.registrations[0];
    assert_eq!(reporting.client_id, "reporting.team-a");
    assert_eq!(reporting.source.as_deref(), Some("clients-dir:team-a/reporting"));
    assert_eq!(
        reporting.effective.grant_types,
        vec![GrantType::ClientCredentials]
    );
    assert_eq!(
        reporting.effective.default_scopes,
        vec!["invoices:read".to_owned()]
    );
    assert_eq!(reporting.effective.access_token_ttl_seconds, 900);
    assert_eq!(reporting.secrets.len(), 1);
    let spa = &first.registrations[1];
    assert_eq!(spa.token_endpoint_auth_method, AuthMethod::None);
    assert!(spa.secrets.is_empty());

    let written = std::fs::read_to_string(dir.path().join("reporting-oauth.secret.yaml")).unwrap();
    let manifest: serde_yaml::Value = serde_yaml::from_str(&written).unwrap();
    let data = &manifest["stringData"];
    assert_eq!(data["client_id"].as_str(), Some("reporting.team-a"));
    assert_eq!(data["token_url"].as_str(), Some("https://issuer/token"));
    assert_eq!(data["issuer"].as_str(), Some("https://issuer"));
    assert_eq!(data["scope"].as_str(), Some("invoices:read"));
    let secret = data["client_secret"].as_str().unwrap();
    assert_eq!(reporting.secrets[0].sha256, secret_digest(secret));

    let second = load_dir(dir.path(), "https://issuer").unwrap();
    assert!(second.generated.is_empty());
    assert_eq!(second.registrations[0].secrets, reporting.secrets);
}

#[test]
fn without_a_cluster_policy_a_directory_gets_the_built_in_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let without = POLICY_AND_CLIENTS
        .split_once("---\n")
        .map(|(_, rest)| rest)
        .unwrap();
    write(dir.path(), "clients.yaml", without);
    let loaded = load_dir(dir.path(), "https://issuer").unwrap();
    let reporting = &loaded.registrations[0];
    assert!(reporting.effective.scopes.is_empty());
    assert!(reporting.effective.audience.is_empty());
    let denied: Vec<_> = reporting
        .effective
        .denials
        .iter()
        .map(|d| (d.setting.as_str(), d.value.as_str(), d.by.as_str()))
        .collect();
    assert_eq!(
        denied,
        [
            ("audience", "https://billing.example.com", "built-in ceiling"),
            ("scopes", "invoices:read", "built-in ceiling"),
            ("scopes", "invoices:write", "built-in ceiling"),
        ]
    );
}

#[test]
fn a_secret_in_data_with_a_previous_secret_gives_two_digests() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "client.yml",
        r#"
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: worker}
spec:
  grantTypes: [client_credentials]
  secret:
    name: worker-creds
    keys: {clientSecret: password}
---
apiVersion: v1
kind: Secret
metadata: {name: worker-creds}
data:
  password: Y3VycmVudA==
stringData:
  previous_client_secret: old
"#,
    );
    let loaded = load_dir(dir.path(), "https://issuer").unwrap();
    assert!(loaded.generated.is_empty());
    let worker = &loaded.registrations[0];
    assert_eq!(worker.client_id, "worker.default");
    assert_eq!(
        worker
            .secrets
            .iter()
            .map(|s| s.sha256.clone())
            .collect::<Vec<_>>(),
        vec![secret_digest("current"), secret_digest("old")]
    );
}

#[test]
fn an_existing_secret_ref_whose_secret_is_missing_is_an_error_and_nothing_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "client.yaml",
        r#"
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: byo, namespace: ns}
spec:
  grantTypes: [client_credentials]
  existingSecretRef: {name: provided}
"#,
    );
    let error = load_dir(dir.path(), "https://issuer").unwrap_err().to_string();
    assert!(error.contains("client.yaml"), "{error}");
    assert!(
        error.contains("spec.existingSecretRef: Secret ns/provided is not in"),
        "{error}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn an_invalid_manifest_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        r#"
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: bad}
spec:
  grantTypes: [teleport]
"#,
    );
    let error = load_dir(dir.path(), "https://issuer").unwrap_err().to_string();
    assert!(error.contains("bad.yaml"), "{error}");
    assert!(
        error.contains("document 1 (OAuthClient): spec.grantTypes[0]"),
        "{error}"
    );
}

#[test]
fn a_registration_rule_violation_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        r#"
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: web}
spec:
  grantTypes: [authorization_code]
  tokenEndpointAuthMethod: none
"#,
    );
    let error = load_dir(dir.path(), "https://issuer").unwrap_err().to_string();
    assert!(
        error.contains("OAuthClient default/web: redirectUris:"),
        "{error}"
    );
}

#[test]
fn a_client_id_with_a_colon_is_refused_before_any_secret_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "impostor.yaml",
        r#"
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: impostor, namespace: team-a}
spec:
  clientId: "user:0123456789abcdef0123456789abcdef"
  grantTypes: [client_credentials]
"#,
    );
    let error = load_dir(dir.path(), "https://issuer").unwrap_err().to_string();
    assert!(error.contains("impostor.yaml"), "{error}");
    assert!(
        error.contains(
            "OAuthClient team-a/impostor: spec.clientId: may contain only letters, digits and . _ ~ -"
        ),
        "{error}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no Secret file was written"
    );
}
