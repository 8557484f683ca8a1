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
