//! Refresh tokens: rotation, reuse detection, scope, client binding, absolute lifetime.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::*;
use crate::users::{PASSWORD, create_user, password_client, password_grant, refresh_grant};

async fn sign_in(server: &TestServer, client_id: &str) -> Value {
    create_user(server, "alice", PASSWORD).await;
    let response = password_grant(server, client_id, "alice", PASSWORD, Some("read write")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn refresh_of(body: &Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn a_refresh_token_rotates_on_every_use(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    let first = sign_in(&server, "app").await;
    let response = refresh_grant(&server, "app", &refresh_of(&first), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Value = response.json().await.unwrap();
    assert_ne!(refresh_of(&second), refresh_of(&first));
    assert_eq!(second["scope"], "read write");
    let third: Value = refresh_grant(&server, "app", &refresh_of(&second), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(third["access_token"].is_string());
    server.stop().await;
}

async fn a_reused_refresh_token_revokes_the_whole_family(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").opaque().build()).await;
    let first = sign_in(&server, "app").await;
    let second: Value = refresh_grant(&server, "app", &refresh_of(&first), None)
        .await
        .json()
        .await
        .unwrap();
    let description = assert_error(
        refresh_grant(&server, "app", &refresh_of(&first), None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        description,
        "the refresh token was already used; every token of its grant is now revoked"
    );
    // The newest refresh token of the family and its access tokens are dead too.
    assert_error(
        refresh_grant(&server, "app", &refresh_of(&second), None).await,
        400,
        "invalid_grant",
    )
    .await;
    let creds = ("app", secret_of("app"));
    for body in [&first, &second] {
        let introspected = server
            .introspect(body["access_token"].as_str().unwrap(), (creds.0, &creds.1))
            .await;
        assert_eq!(introspected, serde_json::json!({"active": false}));
    }
    server.stop().await;
}

async fn a_reused_refresh_token_revokes_the_jwt_access_tokens_of_the_family(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    let first = sign_in(&server, "app").await;
    refresh_grant(&server, "app", &refresh_of(&first), None).await;
    refresh_grant(&server, "app", &refresh_of(&first), None).await;
    let introspected = server
        .introspect(
            first["access_token"].as_str().unwrap(),
            ("app", &secret_of("app")),
        )
        .await;
    assert_eq!(introspected, serde_json::json!({"active": false}));
    server.stop().await;
}

async fn a_wider_scope_on_refresh_is_invalid_scope_and_a_narrower_one_is_granted(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    let first: Value = password_grant(&server, "app", "alice", PASSWORD, Some("read"))
        .await
        .json()
        .await
        .unwrap();
    let description = assert_error(
        refresh_grant(&server, "app", &refresh_of(&first), Some("read write")).await,
        400,
        "invalid_scope",
    )
    .await;
    assert_eq!(
        description,
        "a refresh may narrow the scope of the original grant but never widen it"
    );
    // The refused request did not spend the token.
    let narrowed: Value = sign_in_again_and_narrow(&server).await;
    assert_eq!(narrowed["scope"], "write");
    let same: Value = refresh_grant(&server, "app", &refresh_of(&first), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(same["scope"], "read");
    server.stop().await;
}

async fn sign_in_again_and_narrow(server: &TestServer) -> Value {
    let both: Value = password_grant(server, "app", "alice", PASSWORD, Some("read write"))
        .await
        .json()
        .await
        .unwrap();
    let narrowed: Value = refresh_grant(server, "app", &refresh_of(&both), Some("write"))
        .await
        .json()
        .await
        .unwrap();
    // The rotated token still carries the original grant.
    let widened_back: Value = refresh_grant(server, "app", &refresh_of(&narrowed), Some("read write"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(widened_back["scope"], "read write");
    narrowed
}

async fn a_refresh_token_is_bound_to_its_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    server.register(&password_client("other").build()).await;
    let first = sign_in(&server, "app").await;
    let description = assert_error(
        refresh_grant(&server, "other", &refresh_of(&first), None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(description, "the refresh token is invalid, expired or revoked");
    assert_eq!(
        refresh_grant(&server, "app", &refresh_of(&first), None)
            .await
            .status(),
        200
    );
    server.stop().await;
}

async fn a_refresh_token_family_ends_at_its_absolute_lifetime(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    let mut body = sign_in(&server, "app").await;
    // refreshTokenTtlSeconds is 3600: rotating every 20 minutes does not extend it.
    for _ in 0..2 {
        server.clock.advance(1200);
        body = refresh_grant(&server, "app", &refresh_of(&body), None)
            .await
            .json()
            .await
            .unwrap();
    }
    server.clock.advance(1200);
    assert_error(
        refresh_grant(&server, "app", &refresh_of(&body), None).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

async fn an_unknown_refresh_token_is_invalid_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    assert_error(
        refresh_grant(&server, "app", "not-a-refresh-token", None).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

async fn disabling_a_user_revokes_their_refresh_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    let first = sign_in(&server, "app").await;
    server
        .http
        .post(server.admin_url("/admin/v1/users/alice/disable"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(
        refresh_grant(&server, "app", &refresh_of(&first), None).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

async fn without_rotation_the_refresh_token_is_reused_and_no_new_one_is_issued(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut registration = password_client("app").build();
    registration.effective.refresh_token_rotation = false;
    server.register(&registration).await;
    let first = sign_in(&server, "app").await;
    let refresh = refresh_of(&first);
    for _ in 0..3 {
        let response = refresh_grant(&server, "app", &refresh, None).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body["access_token"].is_string());
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
    // The family's absolute lifetime (3600 s) still ends it.
    server.clock.advance(3600);
    assert_error(
        refresh_grant(&server, "app", &refresh, None).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

async fn turning_rotation_off_does_not_revive_a_spent_refresh_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut registration = password_client("app").build();
    server.register(&registration).await;
    let first = sign_in(&server, "app").await;
    let second: Value = refresh_grant(&server, "app", &refresh_of(&first), None)
        .await
        .json()
        .await
        .unwrap();
    registration.effective.refresh_token_rotation = false;
    server.register(&registration).await;
    assert_error(
        refresh_grant(&server, "app", &refresh_of(&first), None).await,
        400,
        "invalid_grant",
    )
    .await;
    // Reuse revoked the family, the newest token included.
    assert_error(
        refresh_grant(&server, "app", &refresh_of(&second), None).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

/// Spending a refresh token and storing its successor is one transaction: of concurrent exchanges
/// of one token exactly one succeeds, every other is a reuse, and the reuse revokes what the winner
/// was given (its tokens were stored, and recorded in the family, in the same transaction).
async fn concurrent_exchanges_of_one_refresh_token_issue_exactly_one_successor(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").opaque().build()).await;
    let first = sign_in(&server, "app").await;
    let token = refresh_of(&first);
    let responses =
        futures::future::join_all((0..8).map(|_| refresh_grant(&server, "app", &token, None))).await;
    let winner = &the_only_success(responses).await;
    assert_error(
        refresh_grant(&server, "app", &refresh_of(winner), None).await,
        400,
        "invalid_grant",
    )
    .await;
    let secret = secret_of("app");
    let introspected = server
        .introspect(winner["access_token"].as_str().unwrap(), ("app", &secret))
        .await;
    assert_eq!(introspected, serde_json::json!({"active": false}));
    server.stop().await;
}

on_both_backends!(
    concurrent_exchanges_of_one_refresh_token_issue_exactly_one_successor,
    a_refresh_token_rotates_on_every_use,
    a_reused_refresh_token_revokes_the_whole_family,
    a_reused_refresh_token_revokes_the_jwt_access_tokens_of_the_family,
    a_wider_scope_on_refresh_is_invalid_scope_and_a_narrower_one_is_granted,
    a_refresh_token_is_bound_to_its_client,
    a_refresh_token_family_ends_at_its_absolute_lifetime,
    an_unknown_refresh_token_is_invalid_grant,
    disabling_a_user_revokes_their_refresh_tokens,
    without_rotation_the_refresh_token_is_reused_and_no_new_one_is_issued,
    turning_rotation_off_does_not_revive_a_spent_refresh_token,
);
