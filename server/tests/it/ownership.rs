//! Client-id ownership at the admin API: only the OAuthClient that holds a client_id replaces or
//! deletes its registration, so that a team can't take over another namespace's client.

use gatehouse_crds::admin::{ClientOwner, ClientRegistration};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::*;

const ID: &str = "orders-service.demo";

fn owner(namespace: &str, name: &str, uid: &str) -> ClientOwner {
    ClientOwner {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
    }
}

/// `ID` owned by `owner`, authenticated by `secret`.
fn owned(owner: Option<ClientOwner>, secret: &str) -> ClientRegistration {
    let mut doc = client(ID).build();
    doc.source = owner.as_ref().map(ClientOwner::key);
    doc.owner = owner;
    doc.secrets[0].sha256 = gatehouse_crds::admin::secret_digest(secret);
    doc
}

async fn put(server: &TestServer, doc: &ClientRegistration) -> reqwest::Response {
    server
        .http
        .put(server.admin_url(&format!("/admin/v1/clients/{}", doc.client_id)))
        .bearer_auth(ADMIN_TOKEN)
        .json(doc)
        .send()
        .await
        .unwrap()
}

async fn delete(server: &TestServer, query: &str) -> reqwest::Response {
    server
        .http
        .delete(server.admin_url(&format!("/admin/v1/clients/{ID}{query}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

async fn stored(server: &TestServer) -> Option<ClientRegistration> {
    let response = server
        .http
        .get(server.admin_url(&format!("/admin/v1/clients/{ID}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    if response.status() == 404 {
        return None;
    }
    Some(response.json().await.unwrap())
}

/// Asserts a 409 `client_id_conflict` naming `holder` (`None`: no owner) and returns its description.
async fn assert_conflict(response: reqwest::Response, holder: Option<(&str, &str)>) -> String {
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "client_id_conflict", "{body}");
    let expected = holder.map_or(
        Value::Null,
        |(namespace, name)| serde_json::json!({"namespace": namespace, "name": name}),
    );
    assert_eq!(body["owner"], expected, "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

async fn a_registration_from_another_namespace_is_409_and_the_victim_keeps_working(backend: Backend) {
    let server = TestServer::start(backend).await;
    let victim = owned(Some(owner("demo", "orders-service", "u1")), "victim-secret");
    assert_eq!(put(&server, &victim).await.status(), 200);
    server.token(ID, "victim-secret").await;

    let intruder = owned(Some(owner("evil", "orders-service", "u9")), "intruder-secret");
    let description = assert_conflict(put(&server, &intruder).await, Some(("demo", "orders-service"))).await;
    assert_eq!(
        description,
        "client_id orders-service.demo is registered by OAuthClient demo/orders-service"
    );
    // Same namespace, another name: also not the holder.
    let sibling = owned(Some(owner("demo", "other", "u8")), "intruder-secret");
    assert_conflict(put(&server, &sibling).await, Some(("demo", "orders-service"))).await;

    server.token(ID, "victim-secret").await;
    let refused = server.token_response(ID, "intruder-secret", None).await;
    assert_error(refused, 401, "invalid_client").await;
    assert_eq!(stored(&server).await, Some(victim));
    server.stop().await;
}

async fn a_delete_by_another_owner_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let victim = owned(Some(owner("demo", "orders-service", "u1")), "victim-secret");
    assert_eq!(put(&server, &victim).await.status(), 200);

    let response = delete(&server, "?namespace=evil&name=orders-service").await;
    assert_eq!(response.status(), 204);
    server.token(ID, "victim-secret").await;
    assert_eq!(stored(&server).await, Some(victim.clone()));
    // Another replica (or a restart) reads the same.
    let replica = server.replica().await;
    replica.token(ID, "victim-secret").await;
    replica.stop().await;

    let half = delete(&server, "?namespace=evil").await;
    assert_error(half, 400, "invalid_request").await;

    let response = delete(&server, "?namespace=demo&name=orders-service").await;
    assert_eq!(response.status(), 204);
    assert_eq!(stored(&server).await, None);
    let gone = server.token_response(ID, "victim-secret", None).await;
    assert_error(gone, 401, "invalid_client").await;
    server.stop().await;
}

async fn an_oauth_client_created_again_under_its_name_keeps_its_client_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = owned(Some(owner("demo", "orders-service", "u1")), "first-secret");
    assert_eq!(put(&server, &first).await.status(), 200);
    // Deleted with deletionPolicy: Orphan and created again: a new uid, the registration still there.
    let again = owned(Some(owner("demo", "orders-service", "u2")), "second-secret");
    assert_eq!(put(&server, &again).await.status(), 200);
    assert_eq!(stored(&server).await.unwrap().owner.unwrap().uid, "u2");
    server.token(ID, "second-secret").await;
    server.stop().await;
}

async fn an_ownerless_registration_is_adopted_only_by_the_oauth_client_its_source_names(backend: Backend) {
    let server = TestServer::start(backend).await;
    // As the operator registered clients before owners existed: a source, no owner.
    let mut legacy = owned(None, "victim-secret");
    legacy.source = Some("demo/orders-service".to_owned());
    assert_eq!(put(&server, &legacy).await.status(), 200);

    let intruder = owned(Some(owner("evil", "orders-service", "u9")), "intruder-secret");
    let description = assert_conflict(put(&server, &intruder).await, None).await;
    assert_eq!(
        description,
        "client_id orders-service.demo is registered without an owner, from demo/orders-service; only that OAuthClient may adopt it"
    );
    let response = delete(&server, "?namespace=evil&name=orders-service").await;
    assert_eq!(response.status(), 204);
    server.token(ID, "victim-secret").await;

    let adopter = owned(Some(owner("demo", "orders-service", "u1")), "victim-secret");
    assert_eq!(put(&server, &adopter).await.status(), 200);
    assert_eq!(stored(&server).await, Some(adopter));
    server.token(ID, "victim-secret").await;
    server.stop().await;
}

async fn without_an_owner_the_admin_token_deletes_but_does_not_replace_an_owned_registration(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let victim = owned(Some(owner("demo", "orders-service", "u1")), "victim-secret");
    assert_eq!(put(&server, &victim).await.status(), 200);
    let description = assert_conflict(
        put(&server, &owned(None, "other-secret")).await,
        Some(("demo", "orders-service")),
    )
    .await;
    assert!(description.ends_with("delete it first to register it without an owner"));
    server.token(ID, "victim-secret").await;

    assert_eq!(delete(&server, "").await.status(), 204);
    assert_eq!(stored(&server).await, None);
    assert_eq!(put(&server, &owned(None, "other-secret")).await.status(), 200);
    server.token(ID, "other-secret").await;
    server.stop().await;
}

on_both_backends!(
    a_registration_from_another_namespace_is_409_and_the_victim_keeps_working,
    a_delete_by_another_owner_changes_nothing,
    an_oauth_client_created_again_under_its_name_keeps_its_client_id,
    an_ownerless_registration_is_adopted_only_by_the_oauth_client_its_source_names,
    without_an_owner_the_admin_token_deletes_but_does_not_replace_an_owned_registration,
);
