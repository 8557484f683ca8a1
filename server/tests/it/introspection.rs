//! Introspection (RFC 7662) and revocation (RFC 7009) round trips, for JWTs and opaque tokens.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

/// A resource server: any confidential client may introspect.
async fn with_resource_server(server: &TestServer) -> (String, String) {
    server.register(&client("resource-server").build()).await;
    ("resource-server".to_owned(), secret_of("resource-server"))
}

async fn introspection_without_authentication_is_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let token = server.token("billing", &secret_of("billing")).await;
    let response = server
        .post_form("/introspect", &encode(&[("token", &token)]), None)
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="gatehouse""#
    );
    assert_error(response, 401, "invalid_client").await;
    server.stop().await;
}

async fn introspection_by_a_public_client_is_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("spa").public().build()).await;
    let body = encode(&[("token", "anything"), ("client_id", "spa")]);
    let response = server.post_form("/introspect", &body, None).await;
    assert_error(response, 401, "invalid_client").await;
    server.stop().await;
}

async fn a_jwt_introspects_active_with_its_claims(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server
        .register(&client("billing").claim("tenant", "acme").build())
        .await;
    let token = server.token("billing", &secret_of("billing")).await;
    let info = server.introspect(&token, (&rs.0, &rs.1)).await;
    let now = server.clock.now();
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "billing");
    assert_eq!(info["sub"], "billing");
    assert_eq!(info["scope"], "read");
    assert_eq!(info["aud"], AUDIENCE);
    assert_eq!(info["iss"], ISSUER);
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["exp"], now + 600);
    assert_eq!(info["iat"], now);
    assert_eq!(info["tenant"], "acme");
    server.stop().await;
}

async fn an_opaque_token_introspects_active_with_its_claims(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server
        .register(&client("billing").opaque().claim("tenant", "acme").build())
        .await;
    let token = server.token("billing", &secret_of("billing")).await;
    let info = server.introspect(&token, (&rs.0, &rs.1)).await;
    let now = server.clock.now();
    assert_eq!(
        info,
        json!({
            "active": true, "client_id": "billing", "sub": "billing", "scope": "read", "aud": AUDIENCE,
            "iss": ISSUER, "token_type": "Bearer", "exp": now + 600, "iat": now, "tenant": "acme",
        })
    );
    server.stop().await;
}

async fn an_expired_token_introspects_as_exactly_active_false(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server.register(&client("billing").build()).await;
    server.register(&client("reports").opaque().build()).await;
    let jwt = server.token("billing", &secret_of("billing")).await;
    let opaque = server.token("reports", &secret_of("reports")).await;
    server.clock.advance(599);
    assert_eq!(server.introspect(&jwt, (&rs.0, &rs.1)).await["active"], true);
    assert_eq!(server.introspect(&opaque, (&rs.0, &rs.1)).await["active"], true);
    server.clock.advance(1);
    assert_eq!(
        server.introspect(&jwt, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    assert_eq!(
        server.introspect(&opaque, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    server.stop().await;
}

async fn garbage_and_tampered_tokens_introspect_as_exactly_active_false(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server.register(&client("billing").build()).await;
    let token = server.token("billing", &secret_of("billing")).await;
    // Flip one character in the middle of the signature.
    let mut chars: Vec<char> = token.chars().collect();
    let at = chars.len() - 20;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for candidate in ["garbage", "a.b.c", tampered.as_str(), &"x".repeat(4000)] {
        assert_eq!(
            server.introspect(candidate, (&rs.0, &rs.1)).await,
            json!({"active": false}),
            "{candidate}"
        );
    }
    server.stop().await;
}

async fn a_revoked_jwt_stays_inactive_until_it_expires(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server.register(&client("billing").build()).await;
    let token = server.token("billing", &secret_of("billing")).await;
    let response = server
        .post_form(
            "/revoke",
            &encode(&[("token", &token), ("token_type_hint", "refresh_token")]),
            Some(("billing", &secret_of("billing"))),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        server.introspect(&token, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    server.clock.advance(599);
    assert_eq!(
        server.introspect(&token, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    // The revocation survives a restart: it is in the database, not in memory.
    let mut server = server;
    server.restart().await;
    assert_eq!(
        server.introspect(&token, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    server.stop().await;
}

async fn revoking_an_opaque_token_makes_it_inactive(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server.register(&client("billing").opaque().build()).await;
    let token = server.token("billing", &secret_of("billing")).await;
    let response = server
        .post_form(
            "/revoke",
            &encode(&[("token", &token), ("token_type_hint", "access_token")]),
            Some(("billing", &secret_of("billing"))),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.introspect(&token, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    server.stop().await;
}

async fn revoking_an_unknown_token_is_200(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    for token in ["never-issued", "a.b.c"] {
        let response = server.revoke(token, ("billing", &secret_of("billing"))).await;
        assert_eq!(response.status(), 200, "{token}");
    }
    server.stop().await;
}

async fn a_client_cannot_revoke_another_clients_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server.register(&client("billing").build()).await;
    server.register(&client("mallory").build()).await;
    let token = server.token("billing", &secret_of("billing")).await;
    let response = server
        .post_form(
            "/revoke",
            &encode(&[("token", &token)]),
            Some(("mallory", &secret_of("mallory"))),
        )
        .await;
    let description = assert_error(response, 400, "unauthorized_client").await;
    assert_eq!(description, "the token was not issued to this client");
    assert_eq!(server.introspect(&token, (&rs.0, &rs.1)).await["active"], true);
    server.stop().await;
}

async fn revocation_without_authentication_is_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server.post_form("/revoke", "token=abc", None).await;
    assert_error(response, 401, "invalid_client").await;
    server.stop().await;
}

async fn admin_revoke_all_makes_every_token_of_the_client_inactive(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = with_resource_server(&server).await;
    server.register(&client("billing").build()).await;
    server.register(&client("reports").opaque().build()).await;
    server.register(&client("other").build()).await;
    let jwt = server.token("billing", &secret_of("billing")).await;
    let opaque = server.token("reports", &secret_of("reports")).await;
    let other = server.token("other", &secret_of("other")).await;
    for id in ["billing", "reports"] {
        let response = server
            .http
            .post(server.admin_url(&format!("/admin/v1/clients/{id}/revoke")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["clientId"], id);
    }
    assert_eq!(
        server.introspect(&jwt, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    assert_eq!(
        server.introspect(&opaque, (&rs.0, &rs.1)).await,
        json!({"active": false})
    );
    assert_eq!(server.introspect(&other, (&rs.0, &rs.1)).await["active"], true);
    // Tokens issued after the revocation work again.
    server.clock.advance(1);
    let fresh = server.token("billing", &secret_of("billing")).await;
    assert_eq!(server.introspect(&fresh, (&rs.0, &rs.1)).await["active"], true);
    server.stop().await;
}

on_both_backends!(
    introspection_without_authentication_is_invalid_client,
    introspection_by_a_public_client_is_invalid_client,
    a_jwt_introspects_active_with_its_claims,
    an_opaque_token_introspects_active_with_its_claims,
    an_expired_token_introspects_as_exactly_active_false,
    garbage_and_tampered_tokens_introspect_as_exactly_active_false,
    a_revoked_jwt_stays_inactive_until_it_expires,
    revoking_an_opaque_token_makes_it_inactive,
    revoking_an_unknown_token_is_200,
    a_client_cannot_revoke_another_clients_token,
    revocation_without_authentication_is_invalid_client,
    admin_revoke_all_makes_every_token_of_the_client_inactive,
);
