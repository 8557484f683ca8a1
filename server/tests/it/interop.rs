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

    use crate::authorize::{Browser, REDIRECT, hidden, sign_in, spa};
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
    let mut browser = Browser::new();
    let after_login = sign_in(&mut browser, &server, url.as_str(), PASSWORD).await;
    let back = after_login.headers()["location"].to_str().unwrap().to_owned();
    let page = browser.get(&server.url(&back)).await.text().await.unwrap();
    let done = browser
        .post(
            &server.url("/consent"),
            &[
                ("csrf", &hidden(&page, "csrf")),
                ("request", &hidden(&page, "request")),
                ("decision", "allow"),
            ],
        )
        .await;
    let target = oauth2::url::Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
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
