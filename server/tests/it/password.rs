//! The password grant and its throttling.

use gatehouse_crds::GrantType;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::*;
use crate::users::{PASSWORD, assert_user_subject, create_user, password_client, password_grant, subject_of};

async fn the_password_grant_issues_a_user_token_and_a_refresh_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    let response = password_grant(&server, "app", "alice", PASSWORD, Some("read write")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
    let claims = server
        .introspect(body["access_token"].as_str().unwrap(), ("app", &secret_of("app")))
        .await;
    assert_eq!(claims["active"], true);
    let sub = claims["sub"].as_str().unwrap();
    assert_user_subject(sub);
    assert_eq!(sub, subject_of(&server, "alice").await);
    assert_eq!(claims["client_id"], "app");
    server.stop().await;
}

async fn password_grant_for_a_client_without_it_is_unauthorized_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    assert_error(
        password_grant(&server, "billing", "alice", PASSWORD, None).await,
        400,
        "unauthorized_client",
    )
    .await;
    server.stop().await;
}

async fn a_wrong_password_and_an_unknown_user_get_the_same_invalid_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    let wrong = assert_error(
        password_grant(&server, "app", "alice", "not the password", None).await,
        400,
        "invalid_grant",
    )
    .await;
    let unknown = assert_error(
        password_grant(&server, "app", "mallory", "not the password", None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(wrong, "the username or password is wrong");
    assert_eq!(unknown, wrong);
    server.stop().await;
}

async fn a_wrong_password_repeated_until_throttled_locks_out_even_the_right_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    for _ in 0..5 {
        let description = assert_error(
            password_grant(&server, "app", "alice", "guess", None).await,
            400,
            "invalid_grant",
        )
        .await;
        assert_eq!(description, "the username or password is wrong");
    }
    let locked = assert_error(
        password_grant(&server, "app", "alice", PASSWORD, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(locked, "too many failed sign-ins; try again later");
    // An unknown user is locked out the same way, so a lockout tells nothing about who exists.
    for _ in 0..5 {
        password_grant(&server, "app", "nobody", "guess", None).await;
    }
    let unknown = assert_error(
        password_grant(&server, "app", "nobody", "guess", None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(unknown, locked);
    server.clock.advance(15 * 60);
    assert_eq!(
        password_grant(&server, "app", "alice", PASSWORD, None)
            .await
            .status(),
        200
    );
    server.stop().await;
}

async fn failures_across_users_throttle_the_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    server.register(&password_client("other").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    for i in 0..20 {
        password_grant(&server, "app", &format!("user{i}"), "guess", None).await;
    }
    let locked = assert_error(
        password_grant(&server, "app", "alice", PASSWORD, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(locked, "too many failed sign-ins; try again later");
    assert_eq!(
        password_grant(&server, "other", "alice", PASSWORD, None)
            .await
            .status(),
        200
    );
    server.stop().await;
}

async fn a_disabled_user_cannot_sign_in(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    let response = server
        .http
        .post(server.admin_url("/admin/v1/users/alice/disable"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_error(
        password_grant(&server, "app", "alice", PASSWORD, None).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

async fn no_refresh_token_for_a_client_without_the_refresh_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .register(&client("app").grants(&[GrantType::Password]).build())
        .await;
    create_user(&server, "alice", PASSWORD).await;
    let body: Value = password_grant(&server, "app", "alice", PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none(), "{body}");
    server.stop().await;
}

async fn a_password_grant_without_a_username_is_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    let body = encode(&[("grant_type", "password"), ("password", PASSWORD)]);
    let description = assert_error(
        server
            .post_form("/token", &body, Some(("app", &secret_of("app"))))
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(description, "missing parameter username");
    server.stop().await;
}

async fn concurrent_wrong_passwords_are_all_counted(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    // Five wrong passwords at once, as from several connections or replicas: each is counted, so
    // the account is locked afterwards. A read-then-write counter loses some of them.
    let attempts = (0..5).map(|_| password_grant(&server, "app", "alice", "guess", None));
    for response in futures::future::join_all(attempts).await {
        assert_error(response, 400, "invalid_grant").await;
    }
    let locked = assert_error(
        password_grant(&server, "app", "alice", PASSWORD, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(locked, "too many failed sign-ins; try again later");
    server.stop().await;
}

on_both_backends!(
    concurrent_wrong_passwords_are_all_counted,
    the_password_grant_issues_a_user_token_and_a_refresh_token,
    password_grant_for_a_client_without_it_is_unauthorized_client,
    a_wrong_password_and_an_unknown_user_get_the_same_invalid_grant,
    a_wrong_password_repeated_until_throttled_locks_out_even_the_right_one,
    failures_across_users_throttle_the_client,
    a_disabled_user_cannot_sign_in,
    no_refresh_token_for_a_client_without_the_refresh_grant,
    a_password_grant_without_a_username_is_invalid_request,
);
