//! Requirements of the OAuth RFCs, one test per requirement, named after the section that states it.
//! Each runs on both backends through real HTTP.

use gatehouse_crds::GrantType;
use serde_json::Value;

use crate::authorize::{
    Browser, REDIRECT, VERIFIER, authorize_url, code_request, location, query_of,
    register_first_party_implicit_client, s256, setup, sign_in, sign_in_and_allow,
};
use crate::on_both_backends;
use crate::support::*;
use crate::users::{PASSWORD, create_user, password_client, password_grant, refresh_grant, subject_of};

async fn rfc9207_2_a_code_response_carries_the_issuer(backend: Backend) {
    let server = setup(backend).await;
    let url = authorize_url(&server, &code_request("spa", &s256(VERIFIER)));
    let target = sign_in_and_allow(&mut Browser::new(), &server, &url).await;
    let params = query_of(&target);
    assert!(params.contains_key("code"), "{target}");
    assert_eq!(params["iss"], ISSUER);
    server.stop().await;
}

async fn rfc9207_2_an_error_response_carries_the_issuer(backend: Backend) {
    let server = setup(backend).await;
    let challenge = s256(VERIFIER);
    let mut pairs = code_request("spa", &challenge);
    pairs.push(("prompt", "none"));
    let target = location(&Browser::new().get(&authorize_url(&server, &pairs)).await);
    let params = query_of(&target);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["iss"], ISSUER);
    server.stop().await;
}

async fn rfc9207_2_an_implicit_response_carries_the_issuer_in_the_fragment(backend: Backend) {
    let server = setup(backend).await;
    register_first_party_implicit_client(&server, "legacy").await;
    let pairs = [
        ("response_type", "token"),
        ("client_id", "legacy"),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
    ];
    let mut browser = Browser::new();
    let after_login = sign_in(&mut browser, &server, &authorize_url(&server, &pairs), PASSWORD).await;
    let target = location(&browser.get(&server.url(&location(&after_login))).await);
    let (_, fragment) = target.split_once('#').expect("the token travels in the fragment");
    assert!(fragment.contains("access_token="), "{target}");
    assert_eq!(query_of(&target)["iss"], ISSUER);
    server.stop().await;
}

async fn metadata(server: &TestServer) -> Value {
    server.get_json("/.well-known/oauth-authorization-server").await
}

async fn rfc9207_3_metadata_says_authorization_responses_carry_iss(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert_eq!(
        metadata(&server).await["authorization_response_iss_parameter_supported"],
        true
    );
    server.stop().await;
}

async fn rfc8414_2_grant_types_supported_lists_every_grant_implicit_included(backend: Backend) {
    let server = TestServer::start(backend).await;
    let listed = metadata(&server).await["grant_types_supported"].clone();
    for grant in GrantType::ALL {
        assert!(
            listed.as_array().unwrap().contains(&Value::from(grant.as_str())),
            "{grant:?} is supported but discovery lists {listed}"
        );
    }
    server.stop().await;
}

/// A password grant as the confidential client "app" (password and refresh_token): the token response.
async fn signed_in(server: &TestServer) -> Value {
    server.register(&password_client("app").build()).await;
    create_user(server, "alice", PASSWORD).await;
    let response = password_grant(server, "app", "alice", PASSWORD, Some("read write")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn field(body: &Value, name: &str) -> String {
    body[name].as_str().unwrap().to_owned()
}

async fn assert_refresh_is_invalid_grant(server: &TestServer, body: &Value) {
    let response = refresh_grant(server, "app", &field(body, "refresh_token"), None).await;
    assert_error(response, 400, "invalid_grant").await;
}

fn app() -> (&'static str, String) {
    ("app", secret_of("app"))
}

async fn rfc7009_2_a_revoked_refresh_token_is_refused_with_invalid_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = signed_in(&server).await;
    let (id, secret) = app();
    let response = server.revoke(&field(&body, "refresh_token"), (id, &secret)).await;
    assert_eq!(response.status(), 200);
    assert_refresh_is_invalid_grant(&server, &body).await;
    server.stop().await;
}

async fn rfc7009_2_1_revoking_a_refresh_token_revokes_the_access_tokens_of_its_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = signed_in(&server).await;
    let (id, secret) = app();
    let access = field(&body, "access_token");
    assert_eq!(server.introspect(&access, (id, &secret)).await["active"], true);
    server.revoke(&field(&body, "refresh_token"), (id, &secret)).await;
    assert_eq!(
        server.introspect(&access, (id, &secret)).await,
        serde_json::json!({"active": false})
    );
    server.stop().await;
}

async fn rfc7662_2_2_a_live_refresh_token_is_active_and_a_rotated_one_is_not(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = signed_in(&server).await;
    let (id, secret) = app();
    let refresh = field(&body, "refresh_token");
    let answer = server.introspect(&refresh, (id, &secret)).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["client_id"], "app");
    assert_eq!(answer["scope"], "read write");
    assert_eq!(answer["sub"], subject_of(&server, "alice").await.as_str());
    assert!(answer["exp"].as_i64().unwrap() > answer["iat"].as_i64().unwrap());
    let rotated = refresh_grant(&server, "app", &refresh, None).await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(
        server.introspect(&refresh, (id, &secret)).await,
        serde_json::json!({"active": false})
    );
    server.stop().await;
}

async fn rfc7009_2_revoking_everything_of_a_client_covers_its_refresh_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = signed_in(&server).await;
    let response = server
        .http
        .post(server.admin_url("/admin/v1/clients/app/revoke"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["refreshTokensRevoked"], 1);
    assert_refresh_is_invalid_grant(&server, &body).await;
    server.stop().await;
}

async fn rfc6750_2_a_refresh_token_is_no_bearer_token_at_userinfo(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = signed_in(&server).await;
    let response = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(field(&body, "refresh_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_token");
    server.stop().await;
}

async fn rfc7519_4_1_5_a_token_from_a_replica_a_little_ahead_is_active_within_the_leeway(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    server.register(&client("rs").build()).await;
    let minted_at = server.clock.now();
    let token = server.token("billing", &secret_of("billing")).await;
    let rs = ("rs", secret_of("rs"));
    // This replica's clock runs behind the one that minted the token.
    server
        .clock
        .set(minted_at - gatehouse_server::server::DEFAULT_CLOCK_LEEWAY);
    assert_eq!(server.introspect(&token, (rs.0, &rs.1)).await["active"], true);
    server
        .clock
        .set(minted_at - gatehouse_server::server::DEFAULT_CLOCK_LEEWAY - 1);
    assert_eq!(
        server.introspect(&token, (rs.0, &rs.1)).await,
        serde_json::json!({"active": false})
    );
    server.stop().await;
}

on_both_backends!(
    rfc7519_4_1_5_a_token_from_a_replica_a_little_ahead_is_active_within_the_leeway,
    rfc7009_2_a_revoked_refresh_token_is_refused_with_invalid_grant,
    rfc7009_2_1_revoking_a_refresh_token_revokes_the_access_tokens_of_its_grant,
    rfc7662_2_2_a_live_refresh_token_is_active_and_a_rotated_one_is_not,
    rfc7009_2_revoking_everything_of_a_client_covers_its_refresh_tokens,
    rfc6750_2_a_refresh_token_is_no_bearer_token_at_userinfo,
);

on_both_backends!(
    rfc9207_2_a_code_response_carries_the_issuer,
    rfc9207_2_an_error_response_carries_the_issuer,
    rfc9207_2_an_implicit_response_carries_the_issuer_in_the_fragment,
    rfc9207_3_metadata_says_authorization_responses_carry_iss,
    rfc8414_2_grant_types_supported_lists_every_grant_implicit_included,
);
