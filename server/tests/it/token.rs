//! The token endpoint: client_credentials and every bad input the issue lists.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_crds::GrantType;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::*;

fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&claims).unwrap(),
    )
}

async fn client_credentials_with_basic_returns_a_bearer_jwt_that_is_not_cached(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let response = server
        .token_response("billing", &secret_of("billing"), Some("read write"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "read write");
    assert!(body.get("refresh_token").is_none());
    let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let now = server.clock.now();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "billing");
    assert_eq!(claims["client_id"], "billing");
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 600);
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    server.stop().await;
}

async fn client_secret_post_credentials_work_too(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let secret = secret_of("billing");
    let body = encode(&[
        ("grant_type", "client_credentials"),
        ("client_id", "billing"),
        ("client_secret", &secret),
    ]);
    let response = server.post_form("/token", &body, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "read");
    server.stop().await;
}

async fn no_requested_scope_grants_the_default_scopes(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let body: Value = server
        .token_response("billing", &secret_of("billing"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["scope"], "read");
    server.stop().await;
}

async fn static_claims_are_added_to_the_jwt(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .register(&client("billing").claim("tenant", "acme").build())
        .await;
    let token = server.token("billing", &secret_of("billing")).await;
    let (_, claims) = jwt_parts(&token);
    assert_eq!(claims["tenant"], "acme");
    server.stop().await;
}

async fn a_missing_grant_type_is_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let response = server
        .post_form("/token", "scope=read", Some(("billing", &secret_of("billing"))))
        .await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(description, "missing parameter grant_type");
    server.stop().await;
}

async fn an_unknown_grant_type_is_unsupported_grant_type(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let response = server
        .post_form(
            "/token",
            "grant_type=magic",
            Some(("billing", &secret_of("billing"))),
        )
        .await;
    assert_error(response, 400, "unsupported_grant_type").await;
    server.stop().await;
}

async fn a_repeated_parameter_is_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let response = server
        .post_form(
            "/token",
            "grant_type=client_credentials&scope=read&scope=write",
            Some(("billing", &secret_of("billing"))),
        )
        .await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(description, "parameter scope is repeated");
    server.stop().await;
}

async fn a_json_body_is_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let response = server
        .http
        .post(server.url("/token"))
        .header("authorization", basic_header("billing", &secret_of("billing")))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(
        description,
        "the body must be application/x-www-form-urlencoded, not application/json"
    );
    server.stop().await;
}

async fn a_body_over_the_limit_is_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let padding = "a".repeat(BODY_LIMIT + 1);
    let body = format!("grant_type=client_credentials&pad={padding}");
    let response = server
        .post_form("/token", &body, Some(("billing", &secret_of("billing"))))
        .await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(
        description,
        format!("the request body is larger than {BODY_LIMIT} bytes")
    );
    server.stop().await;
}

async fn basic_credentials_send(server: &TestServer, authorization: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", authorization)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
}

async fn basic_credentials_that_are_not_base64_are_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = basic_credentials_send(&server, "Basic %%%not-base64%%%").await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(description, "malformed Basic credentials: not base64");
    server.stop().await;
}

async fn basic_credentials_without_a_colon_are_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let header = format!("Basic {}", STANDARD.encode("billing"));
    let response = basic_credentials_send(&server, &header).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(description, "malformed Basic credentials: no colon");
    server.stop().await;
}

async fn basic_credentials_that_are_not_utf8_are_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let header = format!("Basic {}", STANDARD.encode([0xc3, 0x28, b':', b'x']));
    let response = basic_credentials_send(&server, &header).await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(description, "malformed Basic credentials: not UTF-8");
    server.stop().await;
}

async fn basic_credentials_are_form_urldecoded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut odd = client("odd.client~1").build();
    odd.secrets[0].sha256 = gatehouse_crds::admin::secret_digest("s3cr%t +:/");
    server.register(&odd).await;
    // basic_header form-urlencodes both parts, as RFC 6749 §2.3.1 requires.
    let response = server.token_response("odd.client~1", "s3cr%t +:/", None).await;
    assert_eq!(response.status(), 200);
    server.stop().await;
}

async fn an_unknown_client_is_invalid_client_with_a_basic_challenge(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server.token_response("nobody", "whatever", None).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="gatehouse""#
    );
    let description = assert_error(response, 401, "invalid_client").await;
    assert_eq!(description, "client authentication failed");
    server.stop().await;
}

async fn a_wrong_secret_is_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let response = server.token_response("billing", "not-the-secret", None).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="gatehouse""#
    );
    let description = assert_error(response, 401, "invalid_client").await;
    assert_eq!(description, "client authentication failed");
    server.stop().await;
}

async fn an_expired_secret_is_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let expires_at = server.clock.now() + 60;
    server
        .register(&client("billing").secret_expiring_at(expires_at).build())
        .await;
    assert_eq!(
        server
            .token_response("billing", &secret_of("billing"), None)
            .await
            .status(),
        200
    );
    server.clock.advance(60);
    let response = server
        .token_response("billing", &secret_of("billing"), None)
        .await;
    assert_error(response, 401, "invalid_client").await;
    server.stop().await;
}

async fn both_basic_and_post_credentials_are_invalid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let secret = secret_of("billing");
    let body = encode(&[
        ("grant_type", "client_credentials"),
        ("client_id", "billing"),
        ("client_secret", &secret),
    ]);
    let response = server
        .post_form("/token", &body, Some(("billing", &secret)))
        .await;
    let description = assert_error(response, 400, "invalid_request").await;
    assert_eq!(
        description,
        "the client authenticated with both Basic and client_secret in the body"
    );
    server.stop().await;
}

async fn a_public_client_asking_for_client_credentials_is_unauthorized_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("spa").public().build()).await;
    let body = encode(&[("grant_type", "client_credentials"), ("client_id", "spa")]);
    let response = server.post_form("/token", &body, None).await;
    assert_error(response, 400, "unauthorized_client").await;
    server.stop().await;
}

async fn a_client_not_registered_for_the_grant_is_unauthorized_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut web = client("web").grants(&[GrantType::AuthorizationCode]).build();
    web.redirect_uris = vec!["https://web.example.com/cb".to_owned()];
    server.register(&web).await;
    let response = server.token_response("web", &secret_of("web"), None).await;
    let description = assert_error(response, 400, "unauthorized_client").await;
    assert_eq!(description, "the client is not registered for client_credentials");
    server.stop().await;
}

async fn a_scope_beyond_the_allowed_ones_is_invalid_scope(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let response = server
        .token_response("billing", &secret_of("billing"), Some("read admin"))
        .await;
    let description = assert_error(response, 400, "invalid_scope").await;
    assert_eq!(description, "the client may not request: admin");
    server.stop().await;
}

async fn no_credentials_at_all_are_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .post_form("/token", "grant_type=client_credentials", None)
        .await;
    assert_error(response, 401, "invalid_client").await;
    server.stop().await;
}

async fn a_deleted_client_can_no_longer_get_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    server.token("billing", &secret_of("billing")).await;
    let response = server
        .http
        .delete(server.admin_url("/admin/v1/clients/billing"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = server
        .token_response("billing", &secret_of("billing"), None)
        .await;
    assert_error(response, 401, "invalid_client").await;
    server.stop().await;
}

async fn an_opaque_token_is_256_random_bits(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").opaque().build()).await;
    let token = server.token("billing", &secret_of("billing")).await;
    assert!(!token.contains('.'));
    assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
    server.stop().await;
}

async fn metrics_count_tokens_by_grant_and_errors_by_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    server.token("billing", &secret_of("billing")).await;
    server.token_response("billing", "wrong", None).await;
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"gatehouse_tokens_issued_total{grant_type="client_credentials"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_oauth_errors_total{error="invalid_client"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_http_request_duration_seconds_bucket"),
        "{text}"
    );
    server.stop().await;
}

async fn discovery_lists_exactly_what_is_implemented(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata = server.get_json(path).await;
        assert_eq!(
            metadata,
            serde_json::json!({
                "issuer": ISSUER,
                "authorization_endpoint": format!("{ISSUER}/authorize"),
                "token_endpoint": format!("{ISSUER}/token"),
                "jwks_uri": format!("{ISSUER}/jwks"),
                "introspection_endpoint": format!("{ISSUER}/introspect"),
                "revocation_endpoint": format!("{ISSUER}/revoke"),
                "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token", "implicit"],
                "response_types_supported": ["code", "token"],
                "response_modes_supported": ["query", "fragment"],
                "code_challenge_methods_supported": ["S256", "plain"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "scopes_supported": ["read", "write"],
                "userinfo_endpoint": format!("{ISSUER}/userinfo"),
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "access_token_signing_alg_values_supported": ["ES256"],
                "authorization_response_iss_parameter_supported": true,
            })
        );
    }
    server.stop().await;
}

async fn health_and_readiness_answer_on_both_listeners(backend: Backend) {
    let server = TestServer::start(backend).await;
    for url in [
        server.url("/healthz"),
        server.url("/readyz"),
        server.admin_url("/healthz"),
        server.admin_url("/readyz"),
    ] {
        let response = server.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }
    server.stop().await;
}

on_both_backends!(
    client_credentials_with_basic_returns_a_bearer_jwt_that_is_not_cached,
    client_secret_post_credentials_work_too,
    no_requested_scope_grants_the_default_scopes,
    static_claims_are_added_to_the_jwt,
    a_missing_grant_type_is_invalid_request,
    an_unknown_grant_type_is_unsupported_grant_type,
    a_repeated_parameter_is_invalid_request,
    a_json_body_is_invalid_request,
    a_body_over_the_limit_is_invalid_request,
    basic_credentials_that_are_not_base64_are_invalid_request,
    basic_credentials_without_a_colon_are_invalid_request,
    basic_credentials_that_are_not_utf8_are_invalid_request,
    basic_credentials_are_form_urldecoded,
    an_unknown_client_is_invalid_client_with_a_basic_challenge,
    a_wrong_secret_is_invalid_client,
    an_expired_secret_is_invalid_client,
    both_basic_and_post_credentials_are_invalid_request,
    a_public_client_asking_for_client_credentials_is_unauthorized_client,
    a_client_not_registered_for_the_grant_is_unauthorized_client,
    a_scope_beyond_the_allowed_ones_is_invalid_scope,
    no_credentials_at_all_are_invalid_client,
    a_deleted_client_can_no_longer_get_tokens,
    an_opaque_token_is_256_random_bits,
    metrics_count_tokens_by_grant_and_errors_by_code,
    discovery_lists_exactly_what_is_implemented,
    health_and_readiness_answer_on_both_listeners,
);
