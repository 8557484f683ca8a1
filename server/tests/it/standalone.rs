//! Standalone mode: the server serves tokens for the clients of a YAML directory, generating a Secret
//! once and reusing it.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::*;

const MANIFESTS: &str = r#"
apiVersion: gatehouse.dev/v1alpha1
kind: ClusterOAuthPolicy
metadata: {name: platform}
spec:
  publishableAudiences: [https://api.example.com]
  publishableScopes: ["orders:*"]
---
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthPolicy
metadata: {name: orders-api, namespace: shop}
spec:
  scopes: [{name: orders:read}, {name: orders:write}]
  defaultScopes: [orders:read]
  audience: [https://api.example.com]
  accessTokenTTL: 5m
---
apiVersion: gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: checkout, namespace: shop}
spec:
  grantTypes: [client_credentials]
"#;

fn generated_secret(dir: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("checkout-oauth.secret.yaml")).unwrap();
    let manifest: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let data = &manifest["stringData"];
    (
        data["client_id"].as_str().unwrap().to_owned(),
        data["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn a_clients_dir_is_served_and_its_generated_secret_is_reused_after_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.yaml"), MANIFESTS).unwrap();
    let options = Options {
        clients_dir: Some(dir.path().to_owned()),
        ..Options::default()
    };
    let mut server = TestServer::start_with(backend, options).await;
    let (client_id, secret) = generated_secret(dir.path());
    assert_eq!(client_id, "checkout.shop");
    let response = server.token_response(&client_id, &secret, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "orders:read");
    assert_eq!(body["expires_in"], 300);
    let (_, claims) =
        crate::keys::verify_independently(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "checkout.shop");

    server.restart().await;
    assert_eq!(generated_secret(dir.path()), (client_id.clone(), secret.clone()));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    assert_eq!(
        server.token_response(&client_id, &secret, None).await.status(),
        200
    );
    server.stop().await;
}

async fn a_client_removed_from_the_clients_dir_is_deregistered_on_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.yaml"), MANIFESTS).unwrap();
    let options = Options {
        clients_dir: Some(dir.path().to_owned()),
        ..Options::default()
    };
    let mut server = TestServer::start_with(backend, options).await;
    server.register(&client("from-admin-api").build()).await;
    let (client_id, secret) = generated_secret(dir.path());
    std::fs::remove_file(dir.path().join("shop.yaml")).unwrap();
    server.restart().await;
    let response = server.token_response(&client_id, &secret, None).await;
    assert_error(response, 401, "invalid_client").await;
    // Clients registered through the admin API are not the directory's to remove.
    assert_eq!(
        server
            .token_response("from-admin-api", &secret_of("from-admin-api"), None)
            .await
            .status(),
        200
    );
    server.stop().await;
}

on_both_backends!(
    a_clients_dir_is_served_and_its_generated_secret_is_reused_after_a_restart,
    a_client_removed_from_the_clients_dir_is_deregistered_on_restart,
);
