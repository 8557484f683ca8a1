//! Several replicas on one database share clients, keys and revocations.

use serde_json::json;

use crate::on_both_backends;
use crate::support::*;

async fn replicas_share_clients_keys_and_revocations_through_the_database(backend: Backend) {
    let first = TestServer::start(backend).await;
    let second = first.replica().await;

    // A client registered on the first replica reaches the second on its next refresh.
    first.register(&client("billing").build()).await;
    first.register(&client("rs").build()).await;
    second.state().clients.refresh(&second.state().db).await.unwrap();
    let from_second = second.token("billing", &secret_of("billing")).await;
    let from_first = first.token("billing", &secret_of("billing")).await;
    assert_eq!(
        first.introspect(&from_second, ("rs", &secret_of("rs"))).await["active"],
        true
    );
    assert_eq!(
        second.introspect(&from_first, ("rs", &secret_of("rs"))).await["active"],
        true
    );
    assert_eq!(first.jwks().await, second.jwks().await);

    // A key rotated in at once on the first replica is found by the second when a token names it.
    let response = first
        .http
        .post(first.admin_url("/admin/v1/keys/rotate?activate_in=0"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated = first.token("billing", &secret_of("billing")).await;
    assert_eq!(
        second.introspect(&rotated, ("rs", &secret_of("rs"))).await["active"],
        true
    );

    // A revocation on one replica holds on the other.
    let response = second
        .post_form(
            "/revoke",
            &encode(&[("token", &from_first)]),
            Some(("billing", &secret_of("billing"))),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        first.introspect(&from_first, ("rs", &secret_of("rs"))).await,
        json!({"active": false})
    );

    second.stop().await;
    first.stop().await;
}

on_both_backends!(replicas_share_clients_keys_and_revocations_through_the_database);
