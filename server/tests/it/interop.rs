//! A real OAuth client library (the `oauth2` crate) against the server.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};

use crate::keys::verify_independently;
use crate::on_both_backends;
use crate::support::*;

fn http_client() -> oauth2::reqwest::Client {
    oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn the_oauth2_crate_gets_a_token_with_basic_and_with_post_credentials(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let http = http_client();
    for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
        let oauth = BasicClient::new(ClientId::new("billing".to_owned()))
            .set_client_secret(ClientSecret::new(secret_of("billing")))
            .set_auth_type(auth_type.clone())
            .set_token_uri(TokenUrl::new(server.url("/token")).unwrap());
        let token = oauth
            .exchange_client_credentials()
            .add_scope(Scope::new("write".to_owned()))
            .request_async(&http)
            .await
            .unwrap();
        assert_eq!(token.token_type(), &oauth2::basic::BasicTokenType::Bearer);
        assert_eq!(token.expires_in(), Some(std::time::Duration::from_secs(600)));
        assert_eq!(token.scopes(), Some(&vec![Scope::new("write".to_owned())]));
        assert!(token.refresh_token().is_none());
        let (_, claims) = verify_independently(&server, token.access_token().secret()).await;
        assert_eq!(claims["scope"], "write", "{auth_type:?}");
    }
    server.stop().await;
}

async fn the_oauth2_crate_sees_invalid_client_for_a_wrong_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&client("billing").build()).await;
    let oauth = BasicClient::new(ClientId::new("billing".to_owned()))
        .set_client_secret(ClientSecret::new("wrong".to_owned()))
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap());
    let error = oauth
        .exchange_client_credentials()
        .request_async(&http_client())
        .await
        .unwrap_err();
    match error {
        RequestTokenError::ServerResponse(response) => {
            assert_eq!(response.error(), &BasicErrorResponseType::InvalidClient);
        }
        other => panic!("expected an invalid_client response, got {other:?}"),
    }
    server.stop().await;
}

on_both_backends!(
    the_oauth2_crate_gets_a_token_with_basic_and_with_post_credentials,
    the_oauth2_crate_sees_invalid_client_for_a_wrong_secret,
);

async fn the_oauth2_crate_drives_the_code_flow_with_pkce_and_rotates_the_refresh_token(backend: Backend) {
    use oauth2::{AuthUrl, AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl};

    use crate::authorize::{Browser, REDIRECT, sign_in_and_allow, spa};
    use crate::users::{PASSWORD, create_user};

    let server = TestServer::start(backend).await;
    server.register(&spa("spa")).await;
    create_user(&server, "alice", PASSWORD).await;
    let oauth = BasicClient::new(ClientId::new("spa".to_owned()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(server.url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let done = sign_in_and_allow(&mut Browser::new(), &server, url.as_str()).await;
    let target = oauth2::url::Url::parse(&done).unwrap();
    let params: std::collections::HashMap<String, String> = target.query_pairs().into_owned().collect();
    assert_eq!(&params["state"], csrf.secret());
    let token = oauth
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http_client())
        .await
        .unwrap();
    assert_eq!(token.scopes(), Some(&vec![Scope::new("read".to_owned())]));
    let first_refresh = token.refresh_token().unwrap().clone();
    let refreshed = oauth
        .exchange_refresh_token(&first_refresh)
        .request_async(&http_client())
        .await
        .unwrap();
    let second_refresh = refreshed.refresh_token().unwrap();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    let reused = oauth
        .exchange_refresh_token(&first_refresh)
        .request_async(&http_client())
        .await
        .unwrap_err();
    match reused {
        RequestTokenError::ServerResponse(response) => {
            assert_eq!(response.error(), &BasicErrorResponseType::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    server.stop().await;
}

on_both_backends!(the_oauth2_crate_drives_the_code_flow_with_pkce_and_rotates_the_refresh_token);

/// The `openidconnect` crate as a relying party: discovery, the code flow with PKCE and a nonce,
/// the ID token verified by the crate (signature through the JWKS, iss, aud, exp, nonce, at_hash),
/// then a refresh whose new ID token it verifies again (OIDC Core §12.2: same sub and auth_time).
async fn the_openidconnect_crate_verifies_the_id_token_of_the_code_flow_and_of_a_refresh(backend: Backend) {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse as _,
        PkceCodeChallenge, RedirectUrl, Scope, TokenResponse as _,
    };

    use crate::authorize::{Browser, REDIRECT, sign_in_and_allow, spa};
    use crate::users::{PASSWORD, create_user, subject_of};

    let server = TestServer::start_with(backend, Options::own_issuer()).await;
    let mut rp = spa("rp");
    rp.effective.scopes = vec![
        "openid".to_owned(),
        "profile".to_owned(),
        "email".to_owned(),
        "read".to_owned(),
    ];
    server.register(&rp).await;
    create_user(&server, "alice", PASSWORD).await;

    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer()).unwrap(), &http)
        .await
        .unwrap();
    let oidc = CoreClient::from_provider_metadata(metadata, ClientId::new("rp".to_owned()), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    let done = sign_in_and_allow(&mut Browser::new(), &server, url.as_str()).await;
    let target = openidconnect::url::Url::parse(&done).unwrap();
    let params: std::collections::HashMap<String, String> = target.query_pairs().into_owned().collect();
    assert_eq!(&params["state"], csrf.secret());

    let token = oidc
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = token.id_token().expect("an id_token for the openid scope");
    let id_verifier = oidc.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    // The opaque subject, not the username, which comes as preferred_username with `profile`.
    let alice = subject_of(&server, "alice").await;
    assert_eq!(claims.subject().as_str(), alice);
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert_eq!(claims.issuer().as_str(), server.issuer());
    assert_eq!(claims.authorized_party().map(|p| p.as_str()), Some("rp"));
    let auth_time = claims.auth_time().expect("auth_time");
    let expected_hash = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));

    // A wrong nonce is refused by the crate: the check above is a real one.
    assert!(
        id_token
            .claims(&id_verifier, &Nonce::new("other".to_owned()))
            .is_err()
    );

    server.clock.advance(120);
    let refreshed = oidc
        .exchange_refresh_token(token.refresh_token().unwrap())
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret()
    );
    let new_id_token = refreshed.id_token().expect("a new id_token on refresh");
    let new_claims = new_id_token
        .claims(&id_verifier, |nonce: Option<&Nonce>| match nonce {
            None => Ok(()),
            Some(_) => Err("a refreshed ID token carries no nonce".to_owned()),
        })
        .unwrap();
    assert_eq!(new_claims.subject().as_str(), alice);
    assert_eq!(new_claims.auth_time(), Some(auth_time));
    assert!(new_claims.issue_time() > claims.issue_time());
    server.stop().await;
}

on_both_backends!(the_openidconnect_crate_verifies_the_id_token_of_the_code_flow_and_of_a_refresh);
