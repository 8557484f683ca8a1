//! Signing keys: tokens verified by an independent JWT library against /jwks, rotation with overlap,
//! every algorithm, and a restart that keeps clients and keys.

use gatehouse_server::keys::SigningAlg;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

/// Verifies an access token with the `jsonwebtoken` crate against the server's current JWKS, checking
/// typ, kid, iss, aud and exp. Returns the kid and the claims.
pub async fn verify_independently(server: &TestServer, token: &str) -> (String, Value) {
    verify_jwt(server, token, "at+jwt", AUDIENCE).await
}

/// Verifies a JWT of type `typ` for `audience` as [`verify_independently`] does.
pub async fn verify_jwt(server: &TestServer, token: &str, typ: &str, audience: &str) -> (String, Value) {
    let jwks: JwkSet = server
        .http
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some(typ));
    let kid = header.kid.clone().unwrap();
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in /jwks"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[server.issuer()]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = decode::<Value>(token, &key, &validation).unwrap();
    (kid, data.claims)
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_token_verifies_with_an_independent_jwt_library_against_the_jwks(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let token = server.token("billing", &secret_of("billing")).await;
    let (kid, claims) = verify_independently(&server, &token).await;
    assert_eq!(claims["client_id"], "billing");
    let jwks = server.jwks().await;
    assert_eq!(kids(&jwks), vec![kid]);
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none(), "the private key must never be published");
    server.stop().await;
}

async fn rs256_and_eddsa_tokens_verify_too(backend: Backend) {
    for (alg, kty) in [(SigningAlg::Rs256, "RSA"), (SigningAlg::EdDsa, "OKP")] {
        let options = Options {
            signing_alg: alg,
            ..Options::default()
        };
        let server = TestServer::start_with(backend, options).await;
        server.register(&client("billing").build()).await;
        let token = server.token("billing", &secret_of("billing")).await;
        let (_, claims) = verify_independently(&server, &token).await;
        assert_eq!(claims["sub"], "billing");
        let jwks = server.jwks().await;
        assert_eq!(jwks["keys"][0]["kty"], kty);
        assert_eq!(jwks["keys"][0]["alg"], alg.as_str());
        server.stop().await;
    }
}

async fn a_rotated_key_is_published_before_it_signs_and_old_tokens_still_verify(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let before = server.token("billing", &secret_of("billing")).await;
    let (old_kid, _) = verify_independently(&server, &before).await;

    let rotated: Value = server
        .http
        .post(server.admin_url("/admin/v1/keys/rotate?activate_in=60"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    // Published, but not yet signing.
    assert_eq!(kids(&server.jwks().await), vec![old_kid.clone(), new_kid.clone()]);
    let still_old = server.token("billing", &secret_of("billing")).await;
    assert_eq!(verify_independently(&server, &still_old).await.0, old_kid);

    server.clock.advance(60);
    let after = server.token("billing", &secret_of("billing")).await;
    assert_eq!(verify_independently(&server, &after).await.0, new_kid);
    // Tokens signed before the switch still verify against the JWKS, and introspect active.
    assert_eq!(verify_independently(&server, &before).await.0, old_kid);
    assert_eq!(kids(&server.jwks().await), vec![old_kid, new_kid]);
    server.register(&client("rs").build()).await;
    assert_eq!(
        server.introspect(&before, ("rs", &secret_of("rs"))).await["active"],
        true
    );
    server.stop().await;
}

async fn scheduled_rotation_publishes_the_next_key_a_lead_ahead_and_retires_the_old_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let state = server.state().clone();
    let schedule = state.keys.schedule();
    let first = kids(&server.jwks().await);
    assert_eq!(first.len(), 1);

    // Just before the lead: nothing new.
    server.clock.advance(KEY_ROTATION_PERIOD - schedule.lead - 1);
    state
        .keys
        .maintain(&state.db, server.clock.now(), 600)
        .await
        .unwrap();
    assert_eq!(kids(&server.jwks().await), first);
    let old_token = server.token("billing", &secret_of("billing")).await;

    // At the lead: the next key is published but does not sign.
    server.clock.advance(1);
    state
        .keys
        .maintain(&state.db, server.clock.now(), 600)
        .await
        .unwrap();
    let both = kids(&server.jwks().await);
    assert_eq!(both.len(), 2);
    assert_eq!(both[0], first[0]);
    let token = server.token("billing", &secret_of("billing")).await;
    assert_eq!(verify_independently(&server, &token).await.0, first[0]);

    // At the end of the period the new key signs; the old one stays for the token lifetime.
    server.clock.advance(schedule.lead);
    state
        .keys
        .maintain(&state.db, server.clock.now(), 600)
        .await
        .unwrap();
    let token = server.token("billing", &secret_of("billing")).await;
    assert_eq!(verify_independently(&server, &token).await.0, both[1]);
    assert_eq!(kids(&server.jwks().await), both);
    assert_eq!(
        server
            .introspect(&old_token, ("billing", &secret_of("billing")))
            .await["active"],
        false
    );

    server.clock.advance(600);
    state
        .keys
        .maintain(&state.db, server.clock.now(), 600)
        .await
        .unwrap();
    state
        .keys
        .maintain(&state.db, server.clock.now(), 600)
        .await
        .unwrap();
    assert_eq!(kids(&server.jwks().await), vec![both[1].clone()]);
    server.stop().await;
}

async fn a_restart_on_the_same_database_keeps_clients_and_keys(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    server.register(&client("reports").opaque().build()).await;
    let jwt = server.token("billing", &secret_of("billing")).await;
    let opaque = server.token("reports", &secret_of("reports")).await;
    let (kid, _) = verify_independently(&server, &jwt).await;

    server.restart().await;

    assert_eq!(kids(&server.jwks().await), vec![kid.clone()]);
    assert_eq!(verify_independently(&server, &jwt).await.0, kid);
    let again = server.token("billing", &secret_of("billing")).await;
    assert_eq!(verify_independently(&server, &again).await.0, kid);
    let info = server
        .introspect(&opaque, ("billing", &secret_of("billing")))
        .await;
    assert_eq!(info["active"], json!(true));
    assert_eq!(info["client_id"], "reports");
    server.stop().await;
}

on_both_backends!(
    the_token_verifies_with_an_independent_jwt_library_against_the_jwks,
    rs256_and_eddsa_tokens_verify_too,
    a_rotated_key_is_published_before_it_signs_and_old_tokens_still_verify,
    scheduled_rotation_publishes_the_next_key_a_lead_ahead_and_retires_the_old_one,
    a_restart_on_the_same_database_keeps_clients_and_keys,
);
