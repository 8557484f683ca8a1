//! Subjects never collide ([RFC 9700 §4.15](https://www.rfc-editor.org/rfc/rfc9700#section-4.15)): a
//! user's tokens carry an opaque `user:` subject that no client_id can equal, and /userinfo answers
//! only for a token issued to a user. Also the upgrade from usernames as subjects.

use std::sync::Arc;

use gatehouse_crds::TokenFormat;
use gatehouse_server::clock::ManualClock;
use gatehouse_server::http::authorize::SESSION_COOKIE;
use gatehouse_server::token::hash;
use serde_json::{Value, json};
use sqlx::AnyPool;

use crate::authorize::{
    Browser, REDIRECT, VERIFIER, authorize_url, code_flow_tokens, code_request, s256, spa, verify_id_token,
};
use crate::keys::verify_independently;
use crate::on_both_backends;
use crate::support::*;
use crate::users::{
    PASSWORD, admin, assert_user_subject, create_user, password_client, password_grant, refresh_grant,
    set_disabled, subject_of,
};

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn userinfo(server: &TestServer, token: &str) -> reqwest::Response {
    server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Asserts that /userinfo refuses `token` with 401 invalid_token (RFC 6750 §3.1); returns the body.
async fn assert_userinfo_refuses(server: &TestServer, token: &str) -> String {
    let response = userinfo(server, token).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
    let body = response.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed["error"], "invalid_token", "{body}");
    body
}

/// A password grant of alice's as `app`; the token response.
async fn sign_in(server: &TestServer, scope: &str) -> Value {
    let response = password_grant(server, "app", "alice", PASSWORD, Some(scope)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn access_of(body: Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

/// A password and refresh client that may ask for `openid profile email`.
fn oidc_password_client(id: &str) -> gatehouse_crds::admin::ClientRegistration {
    let mut c = password_client(id).build();
    c.effective.scopes = scopes(&["openid", "profile", "email", "read"]);
    c
}

async fn rfc9700_4_15_a_client_whose_client_id_is_a_username_cannot_read_that_users_claims(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_user(&server, "alice", PASSWORD).await;
    let alice = subject_of(&server, "alice").await;
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        // The attacker: a client_credentials client named like the user, allowed every OIDC scope,
        // so that nothing but the subject check stands between its token and alice's claims.
        let mut impostor = client("alice").build();
        impostor.effective.scopes = scopes(&["openid", "profile", "email", "read"]);
        impostor.effective.access_token_format = format;
        server.register(&impostor).await;
        let response = server
            .token_response("alice", &secret_of("alice"), Some("openid profile email"))
            .await;
        assert_eq!(response.status(), 200, "{format:?}");
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(body["scope"], "openid profile email");
        // The token is the client's own: its subject is its client_id.
        let claims = server.introspect(token, ("alice", &secret_of("alice"))).await;
        assert_eq!(claims["active"], true, "{claims}");
        assert_eq!(claims["sub"], "alice");

        let refused = assert_userinfo_refuses(&server, token).await;
        assert!(!refused.contains("alice@example.com"), "{refused}");
        assert!(!refused.contains(&alice), "{refused}");
    }
    server.stop().await;
}

async fn a_user_token_at_userinfo_answers_with_the_subject_of_the_id_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut rp = spa("rp");
    rp.effective.scopes = scopes(&["openid", "profile", "email", "read"]);
    server.register(&rp).await;
    create_user(&server, "alice", PASSWORD).await;
    let challenge = s256(VERIFIER);
    let mut pairs = code_request("rp", &challenge);
    pairs[3] = ("scope", "openid profile email");
    let body = code_flow_tokens(&server, "rp", &pairs).await;
    let access = body["access_token"].as_str().unwrap();
    let id_claims = verify_id_token(&server, body["id_token"].as_str().unwrap(), "rp").await;
    let sub = id_claims["sub"].as_str().unwrap().to_owned();
    assert_user_subject(&sub);
    assert_eq!(sub, subject_of(&server, "alice").await);
    assert_eq!(id_claims["preferred_username"], "alice");
    let (_, access_claims) = verify_independently(&server, access).await;
    assert_eq!(access_claims["sub"], sub.as_str());

    let info = userinfo(&server, access).await;
    assert_eq!(info.status(), 200);
    assert_eq!(
        info.json::<Value>().await.unwrap(),
        json!({"sub": sub, "preferred_username": "alice", "email": "alice@example.com"})
    );

    // A refresh keeps the subject in the new ID token and access token.
    let refreshed = server
        .post_form(
            "/token",
            &encode(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ("client_id", "rp"),
            ]),
            None,
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let new_id = verify_id_token(&server, refreshed["id_token"].as_str().unwrap(), "rp").await;
    assert_eq!(new_id["sub"], sub.as_str());
    let (_, new_access) = verify_independently(&server, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(new_access["sub"], sub.as_str());
    server.stop().await;
}

async fn a_client_id_outside_the_crd_pattern_is_refused_by_the_admin_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    for id in [
        "user:0123456789abcdef0123456789abcdef",
        "alice:x",
        "-alice",
        ".alice",
    ] {
        let response = server
            .http
            .put(server.admin_url(&format!("/admin/v1/clients/{id}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&client(id).build())
            .send()
            .await
            .unwrap();
        let description = assert_error(response, 400, "invalid_request").await;
        assert!(description.starts_with("clientId: "), "{id}: {description}");
        let stored = admin(
            &server,
            reqwest::Method::GET,
            &format!("/admin/v1/clients/{id}"),
            None,
        )
        .await;
        assert_eq!(stored.status(), 404, "{id}");
    }
    let colon = server
        .http
        .put(server.admin_url("/admin/v1/clients/alice:x"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&client("alice:x").build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error(colon, 400, "invalid_request").await,
        "clientId: may contain only letters, digits and . _ ~ - (no colon: user subjects are user:...)"
    );
    server.stop().await;
}

async fn a_users_subject_is_stable_across_logins_and_restarts_and_their_refresh_token_keeps_working(
    backend: Backend,
) {
    let mut server = TestServer::start(backend).await;
    server.register(&oidc_password_client("app")).await;
    create_user(&server, "alice", PASSWORD).await;
    let alice = subject_of(&server, "alice").await;
    assert_user_subject(&alice);
    let first = sign_in(&server, "openid read").await;
    let second = sign_in(&server, "openid read").await;
    for body in [&first, &second] {
        let (_, claims) = verify_independently(&server, body["access_token"].as_str().unwrap()).await;
        assert_eq!(claims["sub"], alice.as_str());
    }

    server.restart().await;
    assert_eq!(subject_of(&server, "alice").await, alice);
    let refreshed = refresh_grant(&server, "app", first["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let (_, claims) = verify_independently(&server, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], alice.as_str());
    let introspected = server
        .introspect(
            refreshed["refresh_token"].as_str().unwrap(),
            ("app", &secret_of("app")),
        )
        .await;
    assert_eq!(introspected["sub"], alice.as_str(), "{introspected}");
    let info = userinfo(&server, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.json::<Value>().await.unwrap()["sub"], alice.as_str());
    let third = sign_in(&server, "openid read").await;
    let (_, claims) = verify_independently(&server, third["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], alice.as_str());
    server.stop().await;
}

async fn a_disabled_or_deleted_users_token_is_invalid_at_userinfo_and_a_new_user_of_the_name_is_someone_else(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    server.register(&oidc_password_client("app")).await;
    create_user(&server, "alice", PASSWORD).await;
    let first_alice = subject_of(&server, "alice").await;
    let before = access_of(sign_in(&server, "openid").await);
    assert_eq!(userinfo(&server, &before).await.status(), 200);
    set_disabled(&server, "alice", true).await;
    assert_userinfo_refuses(&server, &before).await;
    set_disabled(&server, "alice", false).await;

    let old = access_of(sign_in(&server, "openid").await);
    let deleted = admin(&server, reqwest::Method::DELETE, "/admin/v1/users/alice", None).await;
    assert_eq!(deleted.status(), 204);
    assert_userinfo_refuses(&server, &old).await;
    create_user(&server, "alice", PASSWORD).await;
    let second_alice = subject_of(&server, "alice").await;
    assert_user_subject(&second_alice);
    assert_ne!(
        second_alice, first_alice,
        "a subject is never given to someone else"
    );
    assert_userinfo_refuses(&server, &old).await;
    let new = access_of(sign_in(&server, "openid").await);
    let info = userinfo(&server, &new).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.json::<Value>().await.unwrap()["sub"], second_alice.as_str());
    server.stop().await;
}

async fn a_user_document_shows_its_subject_and_nobody_can_set_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let chosen = "user:0123456789abcdef0123456789abcdef";
    let refused = admin(
        &server,
        reqwest::Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "mallory", "password": PASSWORD, "subject": chosen})),
    )
    .await;
    let description = assert_error(refused, 400, "invalid_request").await;
    assert!(description.contains("subject"), "{description}");
    let created = admin(
        &server,
        reqwest::Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "mallory", "password": PASSWORD})),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let subject = created["subject"].as_str().unwrap();
    assert_user_subject(subject);
    assert_ne!(subject, chosen);
    let listed: Value = admin(&server, reqwest::Method::GET, "/admin/v1/users", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["subject"], subject);
    server.stop().await;
}

on_both_backends!(
    rfc9700_4_15_a_client_whose_client_id_is_a_username_cannot_read_that_users_claims,
    a_user_token_at_userinfo_answers_with_the_subject_of_the_id_token,
    a_client_id_outside_the_crd_pattern_is_refused_by_the_admin_api,
    a_users_subject_is_stable_across_logins_and_restarts_and_their_refresh_token_keeps_working,
    a_disabled_or_deleted_users_token_is_invalid_at_userinfo_and_a_new_user_of_the_name_is_someone_else,
    a_user_document_shows_its_subject_and_nobody_can_set_it,
);

// ---- the upgrade from usernames as subjects (migration 0007) ----

/// The schema version before user subjects.
const BEFORE_SUBJECTS: i64 = 6;

async fn seed(pool: &AnyPool, sql: &str, binds: &[Bind<'_>]) {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s.to_string()),
            Bind::Int(i) => query.bind(*i),
        };
    }
    query.execute(pool).await.unwrap();
}

enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}
use Bind::{Int, Text};

async fn column(pool: &AnyPool, sql: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A database at version 6 holding what a running server leaves behind, all naming alice by her
/// username: a refresh token and an opaque access token of her grant, a session, a consent, a code;
/// a client_credentials token of a client named `alice`; a refresh token of a user deleted long ago.
async fn upgrading_keeps_every_grant_of_a_user_and_gives_no_clients_token_to_a_user(backend: Backend) {
    let db = TestDb::create(backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let now = clock.now();
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(db.url()).await.unwrap();
    gatehouse_server::store::Backend::of_url(db.url())
        .unwrap()
        .migrations()
        .run_to(BEFORE_SUBJECTS, &pool)
        .await
        .unwrap();
    let phc = gatehouse_server::users::hash_password(PASSWORD).unwrap();
    for username in ["alice", "bob"] {
        seed(
            &pool,
            "INSERT INTO users (username, password_hash, name, email, disabled, created_at, updated_at) \
             VALUES ($1, $2, NULL, $3, 0, $4, $4)",
            &[
                Text(username),
                Text(&phc),
                Text(&format!("{username}@example.com")),
                Int(now),
            ],
        )
        .await;
    }
    let (refresh, users_opaque, clients_opaque, session) = (
        "refresh-of-alice",
        "opaque-of-alice",
        "opaque-of-the-client-alice",
        "session-of-alice",
    );
    for (value, subject) in [(refresh, "alice"), ("refresh-of-carol", "carol")] {
        seed(
            &pool,
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, subject, scope, auth_time, issued_at, \
             expires_at, used, revoked) VALUES ($1, $2, 'app', $3, 'openid profile read', $4, $4, $5, 0, 0)",
            &[Text(&hash(value)), Text(&format!("family-{subject}")), Text(subject), Int(now), Int(now + 3600)],
        )
        .await;
    }
    for (value, client_id) in [(users_opaque, "app"), (clients_opaque, "alice")] {
        seed(
            &pool,
            "INSERT INTO opaque_tokens (token_hash, client_id, subject, scope, audience, claims, issued_at, \
             expires_at, revoked) VALUES ($1, $2, 'alice', 'openid read', $3, '{}', $4, $5, 0)",
            &[
                Text(&hash(value)),
                Text(client_id),
                Text(&json!([AUDIENCE]).to_string()),
                Int(now),
                Int(now + 600),
            ],
        )
        .await;
    }
    seed(
        &pool,
        "INSERT INTO family_access_tokens (jti, family_id, client_id, opaque_hash, expires_at) \
         VALUES ('jti-1', 'family-alice', 'app', $1, $2)",
        &[Text(&hash(users_opaque)), Int(now + 600)],
    )
    .await;
    seed(
        &pool,
        "INSERT INTO sessions (session_hash, username, auth_time, expires_at) VALUES ($1, 'alice', $2, $3)",
        &[Text(&hash(session)), Int(now), Int(now + 3600)],
    )
    .await;
    seed(
        &pool,
        "INSERT INTO consents (username, client_id, scope, granted_at) VALUES ('alice', 'app', 'read', $1)",
        &[Int(now)],
    )
    .await;
    seed(
        &pool,
        "INSERT INTO authorization_codes (code_hash, family_id, client_id, redirect_uri, username, scope, \
         auth_time, expires_at, used) VALUES ($1, 'family-code', 'app', $2, 'alice', 'read', $3, $4, 0)",
        &[
            Text(&hash("code-of-alice")),
            Text(REDIRECT),
            Int(now),
            Int(now + 60),
        ],
    )
    .await;
    pool.close().await;

    let server = TestServer::start_on(db, clock, Options::default()).await;
    server.register(&oidc_password_client("app")).await;
    let mut impostor = client("alice").build();
    impostor.effective.scopes = scopes(&["openid", "read"]);
    server.register(&impostor).await;
    let alice = subject_of(&server, "alice").await;
    let bob = subject_of(&server, "bob").await;
    assert_user_subject(&alice);
    assert_user_subject(&bob);
    assert_ne!(alice, bob);

    // Her refresh token works, and its tokens carry her new subject.
    let refreshed = refresh_grant(&server, "app", refresh, None).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let (_, claims) = verify_independently(&server, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], alice.as_str());
    let id_token = verify_id_token(&server, refreshed["id_token"].as_str().unwrap(), "app").await;
    assert_eq!(id_token["sub"], alice.as_str());
    assert_eq!(id_token["preferred_username"], "alice");
    // Her opaque access token too, at introspection and at /userinfo.
    let introspected = server.introspect(users_opaque, ("app", &secret_of("app"))).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], alice.as_str());
    let info = userinfo(&server, users_opaque).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.json::<Value>().await.unwrap()["sub"], alice.as_str());
    // The client named alice keeps its own subject and reads nothing of hers.
    let own = server
        .introspect(clients_opaque, ("alice", &secret_of("alice")))
        .await;
    assert_eq!(own["active"], true, "{own}");
    assert_eq!(own["sub"], "alice");
    let refused = assert_userinfo_refuses(&server, clients_opaque).await;
    assert!(!refused.contains("alice@example.com"), "{refused}");
    // Her login session still opens /authorize (its consent page names her); the rest point at her.
    let mut browser = Browser::new();
    browser
        .cookies
        .insert(SESSION_COOKIE.to_owned(), session.to_owned());
    let challenge = s256(VERIFIER);
    server.register(&spa("web")).await;
    let page = browser
        .get(&authorize_url(&server, &code_request("web", &challenge)))
        .await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Signed in as alice."), "{page}");

    let pool = AnyPool::connect(&server.db_url).await.unwrap();
    for table in ["sessions", "consents", "authorization_codes"] {
        assert_eq!(
            column(&pool, &format!("SELECT subject FROM {table}")).await,
            vec![alice.clone()],
            "{table}"
        );
    }
    assert_eq!(
        column(
            &pool,
            "SELECT subject FROM refresh_tokens WHERE family_id = 'family-carol'"
        )
        .await,
        vec!["carol".to_owned()],
        "a deleted user's token keeps a username, which no subject equals"
    );
    pool.close().await;
    server.stop().await;
}

on_both_backends!(upgrading_keeps_every_grant_of_a_user_and_gives_no_clients_token_to_a_user);
