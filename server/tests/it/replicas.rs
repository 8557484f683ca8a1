//! Several replicas on one database share clients, keys and revocations.

use serde_json::json;

use crate::on_both_backends;
use crate::support::*;

/// Revokes one of billing's tokens at `server`.
async fn revoke(server: &TestServer, token: &str) {
    let response = server.revoke(token, ("billing", &secret_of("billing"))).await;
    assert_eq!(response.status(), 200);
}

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

    // A revocation reaches the replica that made it at once, and the other on its next sync of the
    // revocation view (the server runs one every 250 ms; here the test runs it).
    revoke(&second, &from_first).await;
    assert_eq!(
        second.introspect(&from_first, ("rs", &secret_of("rs"))).await,
        json!({"active": false})
    );
    first.state().db.sync_revocations().await.unwrap();
    assert_eq!(
        first.introspect(&from_first, ("rs", &secret_of("rs"))).await,
        json!({"active": false})
    );

    // So does a revocation of every token of a client, through the admin API.
    let before_mark = second.token("billing", &secret_of("billing")).await;
    assert_eq!(
        second.introspect(&before_mark, ("rs", &secret_of("rs"))).await["active"],
        true
    );
    let response = first
        .http
        .post(first.admin_url("/admin/v1/clients/billing/revoke"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    second.state().db.sync_revocations().await.unwrap();
    assert_eq!(
        second.introspect(&before_mark, ("rs", &secret_of("rs"))).await,
        json!({"active": false})
    );

    // And without the test's help: the server's own poll brings the other replica's revocation in.
    first.clock.advance(1);
    let later = first.token("billing", &secret_of("billing")).await;
    assert_eq!(
        second.introspect(&later, ("rs", &secret_of("rs"))).await["active"],
        true
    );
    revoke(&first, &later).await;
    let mut answer = json!(null);
    for _ in 0..400 {
        answer = second.introspect(&later, ("rs", &secret_of("rs"))).await;
        if answer == json!({"active": false}) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(answer, json!({"active": false}));

    second.stop().await;
    first.stop().await;
}

on_both_backends!(replicas_share_clients_keys_and_revocations_through_the_database);
