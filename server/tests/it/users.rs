//! Users: the admin API, the users file, and what never leaks.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

pub const PASSWORD: &str = "correct horse battery";

/// Creates a user through the admin API.
pub async fn create_user(server: &TestServer, username: &str, password: &str) {
    let response = server
        .http
        .post(server.admin_url("/admin/v1/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"username": username, "password": password, "email": format!("{username}@example.com")}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// A user's subject, the `sub` of their tokens, as the admin API shows it.
pub async fn subject_of(server: &TestServer, username: &str) -> String {
    let response = admin(
        server,
        reqwest::Method::GET,
        &format!("/admin/v1/users/{username}"),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    user["subject"].as_str().unwrap().to_owned()
}

/// Disables or enables a user through the admin API.
pub async fn set_disabled(server: &TestServer, username: &str, disabled: bool) {
    let action = if disabled { "disable" } else { "enable" };
    let path = format!("/admin/v1/users/{username}/{action}");
    let response = admin(server, reqwest::Method::POST, &path, None).await;
    assert_eq!(response.status(), 200);
}

/// Asserts that `sub` is a user subject: `user:` and 32 lower-case hex digits.
pub fn assert_user_subject(sub: &str) {
    let hex = sub
        .strip_prefix("user:")
        .unwrap_or_else(|| panic!("{sub} is no user subject"));
    assert_eq!(hex.len(), 32, "{sub}");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{sub}"
    );
}

pub async fn admin(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = server
        .http
        .request(method, server.admin_url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// A password grant as `client` (a confidential client registered for password).
pub async fn password_grant(
    server: &TestServer,
    client_id: &str,
    username: &str,
    password: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let secret = secret_of(client_id);
    server
        .post_form("/token", &encode(&form), Some((client_id, &secret)))
        .await
}

async fn users_are_created_listed_disabled_enabled_and_deleted_and_never_show_a_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_user(&server, "alice", PASSWORD).await;
    let listed = admin(&server, reqwest::Method::GET, "/admin/v1/users", None).await;
    assert_eq!(listed.status(), 200);
    let text = listed.text().await.unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains("argon2"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["items"][0]["username"], "alice");
    assert_eq!(body["items"][0]["email"], "alice@example.com");
    assert_eq!(body["items"][0]["disabled"], false);

    let disabled: Value = admin(
        &server,
        reqwest::Method::POST,
        "/admin/v1/users/alice/disable",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(disabled["disabled"], true);
    let enabled: Value = admin(
        &server,
        reqwest::Method::POST,
        "/admin/v1/users/alice/enable",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(enabled["disabled"], false);

    let response = admin(&server, reqwest::Method::DELETE, "/admin/v1/users/alice", None).await;
    assert_eq!(response.status(), 204);
    let response = admin(&server, reqwest::Method::GET, "/admin/v1/users/alice", None).await;
    assert_eq!(response.status(), 404);
    server.stop().await;
}

async fn creating_a_user_twice_is_a_conflict(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_user(&server, "alice", PASSWORD).await;
    let response = admin(
        &server,
        reqwest::Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "alice", "password": "another password"})),
    )
    .await;
    assert_eq!(response.status(), 409);
    server.stop().await;
}

async fn a_short_password_is_refused_without_echoing_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = admin(
        &server,
        reqwest::Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "alice", "password": "hunter2"})),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "password: must be 8 to 1024 characters"
    );
    let response = admin(
        &server,
        reqwest::Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "alice", "password": 12345678})),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_description"], "password: must be a string");
    server.stop().await;
}

async fn a_new_password_replaces_the_old_one_and_revokes_refresh_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    let body: Value = password_grant(&server, "app", "alice", PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let response = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/v1/users/alice/password",
        Some(json!({"password": "a brand new password"})),
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_error(
        password_grant(&server, "app", "alice", PASSWORD, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        password_grant(&server, "app", "alice", "a brand new password", None)
            .await
            .status(),
        200
    );
    assert_error(
        refresh_grant(&server, "app", &refresh, None).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

async fn a_users_file_creates_and_updates_users(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&password_client("app").build()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.yaml");
    std::fs::write(
        &path,
        "users:\n  - username: alice\n    password: wonderland-1\n    name: Alice\n",
    )
    .unwrap();
    let count = gatehouse_server::users::seed_file(server.state(), &path)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        password_grant(&server, "app", "alice", "wonderland-1", None)
            .await
            .status(),
        200
    );
    std::fs::write(
        &path,
        "users:\n  - username: alice\n    password: looking-glass-2\n    disabled: false\n",
    )
    .unwrap();
    gatehouse_server::users::seed_file(server.state(), &path)
        .await
        .unwrap();
    assert_error(
        password_grant(&server, "app", "alice", "wonderland-1", None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        password_grant(&server, "app", "alice", "looking-glass-2", None)
            .await
            .status(),
        200
    );
    server.stop().await;
}

/// A confidential client registered for password and refresh_token.
pub fn password_client(id: &str) -> ClientBuilder {
    client(id).grants(&[
        gatehouse_crds::GrantType::Password,
        gatehouse_crds::GrantType::RefreshToken,
    ])
}

/// A refresh_token grant as `client_id` with its secret.
pub async fn refresh_grant(
    server: &TestServer,
    client_id: &str,
    refresh: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let secret = secret_of(client_id);
    server
        .post_form("/token", &encode(&form), Some((client_id, &secret)))
        .await
}

on_both_backends!(
    users_are_created_listed_disabled_enabled_and_deleted_and_never_show_a_password,
    creating_a_user_twice_is_a_conflict,
    a_short_password_is_refused_without_echoing_it,
    a_new_password_replaces_the_old_one_and_revokes_refresh_tokens,
    a_users_file_creates_and_updates_users,
);
