//! The admin API: bearer token, upsert, get, list with pagination, delete, and field-naming errors.

use gatehouse_crds::admin::ClientList;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::*;

async fn admin_calls_without_a_token_are_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .get(server.admin_url("/admin/v1/clients"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    server.stop().await;
}

async fn admin_calls_with_a_wrong_token_are_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .put(server.admin_url("/admin/v1/clients/billing"))
        .bearer_auth("not-the-admin-token")
        .json(&client("billing").build())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "the admin token is wrong");
    let stored = server
        .http
        .get(server.admin_url("/admin/v1/clients/billing"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 404);
    server.stop().await;
}

async fn a_client_round_trips_through_put_get_and_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let doc = client("billing").claim("tenant", "acme").build();
    let url = server.admin_url("/admin/v1/clients/billing");
    let response = server
        .http
        .put(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stored: gatehouse_crds::admin::ClientRegistration = response.json().await.unwrap();
    assert_eq!(stored, doc);

    let fetched: gatehouse_crds::admin::ClientRegistration = server
        .http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, doc);

    for _ in 0..2 {
        let response = server
            .http
            .delete(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    let response = server
        .http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    server.stop().await;
}

async fn listing_pages_through_clients_in_client_id_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    for id in ["c", "a", "e", "b", "d"] {
        server.register(&client(id).build()).await;
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = server.admin_url("/admin/v1/clients?limit=2");
        if let Some(token) = &next {
            url.push_str(&format!("&continue={token}"));
        }
        let page: ClientList = server
            .http
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|c| c.client_id.clone()));
        next = page.r#continue;
        if next.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);
    server.stop().await;
}

async fn put_json(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    server
        .http
        .put(server.admin_url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn an_admin_document_with_an_invalid_field_is_400_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut doc = serde_json::to_value(client("billing").build()).unwrap();
    doc["effective"]["accessTokenTtlSeconds"] = Value::from(0);
    let response = put_json(&server, "/admin/v1/clients/billing", &doc).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(
        description,
        "effective.accessTokenTtlSeconds: must be a positive number of seconds"
    );

    let mut doc = serde_json::to_value(client("billing").build()).unwrap();
    doc["secrets"][0]["sha256"] = Value::from("not-hex");
    let response = put_json(&server, "/admin/v1/clients/billing", &doc).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(description, "secrets[0].sha256: must be 64 lower-case hex digits");
    server.stop().await;
}

async fn an_admin_document_with_a_wrongly_typed_or_unknown_field_is_400_naming_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut doc = serde_json::to_value(client("billing").build()).unwrap();
    doc["effective"]["grantTypes"] = serde_json::json!(["teleportation"]);
    let response = put_json(&server, "/admin/v1/clients/billing", &doc).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert!(
        description.starts_with("effective.grantTypes[0]: unknown variant `teleportation`"),
        "{description}"
    );

    let mut doc = serde_json::to_value(client("billing").build()).unwrap();
    doc["colour"] = Value::from("blue");
    let response = put_json(&server, "/admin/v1/clients/billing", &doc).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert!(description.contains("unknown field `colour`"), "{description}");
    server.stop().await;
}

async fn an_admin_document_setting_a_registered_claim_is_400(backend: Backend) {
    let server = TestServer::start(backend).await;
    let doc = serde_json::to_value(client("billing").claim("sub", "root").build()).unwrap();
    let response = put_json(&server, "/admin/v1/clients/billing", &doc).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(
        description,
        "effective.claims.sub: is a registered claim and cannot be set"
    );
    server.stop().await;
}

async fn the_client_id_in_the_path_must_match_the_document(backend: Backend) {
    let server = TestServer::start(backend).await;
    let doc = serde_json::to_value(client("billing").build()).unwrap();
    let response = put_json(&server, "/admin/v1/clients/other", &doc).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(description, "clientId: must equal the client_id in the path");
    server.stop().await;
}

on_both_backends!(
    admin_calls_without_a_token_are_401,
    admin_calls_with_a_wrong_token_are_401,
    a_client_round_trips_through_put_get_and_delete,
    listing_pages_through_clients_in_client_id_order,
    an_admin_document_with_an_invalid_field_is_400_naming_the_field,
    an_admin_document_with_a_wrongly_typed_or_unknown_field_is_400_naming_it,
    an_admin_document_setting_a_registered_claim_is_400,
    the_client_id_in_the_path_must_match_the_document,
);
