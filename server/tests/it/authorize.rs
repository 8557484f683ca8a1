//! The authorization endpoint, the login and consent pages, and the code exchange, driven like a
//! browser: cookies kept by hand, forms posted with their hidden fields, redirects followed by hand.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_crds::GrantType;
use gatehouse_crds::admin::ClientRegistration;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::on_both_backends;
use crate::support::*;
use crate::users::{PASSWORD, create_user, set_disabled, subject_of};

pub const REDIRECT: &str = "http://localhost:3000/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A public client registered for authorization_code and refresh_token.
pub fn spa(id: &str) -> ClientRegistration {
    client(id)
        .public()
        .grants(&[GrantType::AuthorizationCode, GrantType::RefreshToken])
        .build()
}

/// A confidential client registered for authorization_code.
pub fn web_app(id: &str) -> ClientRegistration {
    let mut c = client(id).grants(&[GrantType::AuthorizationCode]).build();
    c.redirect_uris = vec![REDIRECT.to_owned()];
    c
}

/// Registers `id` as a public, first-party client (no consent page) for the implicit grant.
pub async fn register_first_party_implicit_client(server: &TestServer, id: &str) {
    let mut legacy = client(id).public().grants(&[GrantType::Implicit]).build();
    legacy.effective.first_party = true;
    server.register(&legacy).await;
}

/// A browser: cookies by hand, no automatic redirects.
pub struct Browser {
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }
}

/// The value of a hidden field of a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

pub fn authorize_url(server: &TestServer, pairs: &[(&str, &str)]) -> String {
    format!("{}?{}", server.url("/authorize"), encode(pairs))
}

pub fn code_request<'a>(client_id: &'a str, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "read write"),
        ("state", "xyz 123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

pub fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "expected a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once(['?', '#']).map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Signs in on the login page the authorize URL shows; returns where the login redirected to.
pub async fn sign_in(
    browser: &mut Browser,
    server: &TestServer,
    url: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(url).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<form method=\"post\" action=\"/login\">"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let request = hidden(&page, "request");
    browser
        .post(
            &server.url("/login"),
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("username", "alice"),
                ("password", password),
            ],
        )
        .await
}

/// Signs in as alice and allows on the consent page. Returns where the server sends the browser.
pub async fn sign_in_and_allow(browser: &mut Browser, server: &TestServer, url: &str) -> String {
    let after_login = sign_in(browser, server, url, PASSWORD).await;
    let back = location(&after_login);
    let consent = browser.get(&server.url(&back)).await;
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    assert!(page.contains("action=\"/consent\""), "{page}");
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
    location(&done)
}

/// The whole flow up to the redirect back with a code: login, consent. Returns the code.
pub async fn get_code(browser: &mut Browser, server: &TestServer, url: &str) -> String {
    let target = sign_in_and_allow(browser, server, url).await;
    assert!(target.starts_with(REDIRECT), "{target}");
    let params = query_of(&target);
    assert_eq!(params["state"], "xyz 123");
    params["code"].clone()
}

pub async fn exchange(
    server: &TestServer,
    client_id: &str,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    server.post_form("/token", &encode(&form), None).await
}

/// Signs in as alice at `/authorize` with `pairs`, allows, and exchanges the code for `client_id` with
/// [`VERIFIER`]; returns the token response.
pub async fn code_flow_tokens(server: &TestServer, client_id: &str, pairs: &[(&str, &str)]) -> Value {
    let code = get_code(&mut Browser::new(), server, &authorize_url(server, pairs)).await;
    exchange(server, client_id, &code, Some(VERIFIER))
        .await
        .json()
        .await
        .unwrap()
}

/// Verifies an ID token against the server's JWKS (typ JWT, iss, aud = `audience`, exp); returns its
/// claims.
pub async fn verify_id_token(server: &TestServer, id_token: &str, audience: &str) -> Value {
    crate::keys::verify_jwt(server, id_token, "JWT", audience).await.1
}

pub async fn setup(backend: Backend) -> TestServer {
    let server = TestServer::start(backend).await;
    server.register(&spa("spa")).await;
    create_user(&server, "alice", PASSWORD).await;
    server
}

async fn the_code_flow_signs_in_consents_and_exchanges_the_code_with_pkce(backend: Backend) {
    let server = setup(backend).await;
    let mut browser = Browser::new();
    let challenge = s256(VERIFIER);
    let url = authorize_url(&server, &code_request("spa", &challenge));
    let first = browser.get(&url).await;
    assert_eq!(first.headers()["x-frame-options"], "DENY");
    let csp = first.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Browsers apply form-action to the redirects after a submit: the client's origin must be in it.
    assert!(csp.contains("form-action 'self' http://localhost:3000"), "{csp}");
    let csrf_cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf_cookie.contains("HttpOnly")
            && csrf_cookie.contains("SameSite=Lax")
            && csrf_cookie.contains("Secure"),
        "{csrf_cookie}"
    );
    let mut browser = Browser::new();
    let code = get_code(&mut browser, &server, &url).await;
    let response = exchange(&server, "spa", &code, Some(VERIFIER)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "read write");
    let refresh = body["refresh_token"].as_str().unwrap();
    // Refresh as the public client.
    let response = server
        .post_form(
            "/token",
            &encode(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "spa"),
            ]),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    // Consent is remembered: the next request goes straight back with a code.
    let again = browser.get(&url).await;
    assert!(location(&again).starts_with(&format!("{REDIRECT}?code=")));
    server.stop().await;
}

async fn near_miss_redirect_uris_get_an_error_page_and_no_redirect(backend: Backend) {
    let server = setup(backend).await;
    let challenge = s256(VERIFIER);
    for bad in [
        "http://localhost:3000/cb/",
        "http://localhost:3001/cb",
        "http://localhost:3000/CB",
        "http://localhost:3000/cb?x=1",
        "https://evil.example/cb",
    ] {
        let mut pairs = code_request("spa", &challenge);
        pairs[2] = ("redirect_uri", bad);
        let response = Browser::new().get(&authorize_url(&server, &pairs)).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert!(response.headers().get("location").is_none(), "{bad}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("the redirect_uri is not registered for this client"),
            "{page}"
        );
    }
    let mut pairs = code_request("nobody", &challenge);
    pairs.truncate(3);
    let response = Browser::new().get(&authorize_url(&server, &pairs)).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    server.stop().await;
}

async fn a_missing_or_wrong_pkce_verifier_is_invalid_grant(backend: Backend) {
    let server = setup(backend).await;
    let url = authorize_url(&server, &code_request("spa", &s256(VERIFIER)));
    let code = get_code(&mut Browser::new(), &server, &url).await;
    let missing = assert_error(exchange(&server, "spa", &code, None).await, 400, "invalid_grant").await;
    assert_eq!(
        missing,
        "the code_verifier is missing or does not match the code_challenge"
    );
    let wrong = "A".repeat(43);
    assert_error(
        exchange(&server, "spa", &code, Some(&wrong)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        exchange(&server, "spa", &code, Some(VERIFIER)).await.status(),
        200
    );
    server.stop().await;
}

async fn a_public_client_without_pkce_or_with_plain_where_s256_is_required_is_redirected_invalid_request(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let mut strict = spa("strict");
    strict.effective.require_pkce = true;
    strict.effective.allow_plain_pkce = false;
    server.register(&strict).await;
    let mut pairs = code_request("strict", VERIFIER);
    pairs[6] = ("code_challenge_method", "plain");
    let target = location(&Browser::new().get(&authorize_url(&server, &pairs)).await);
    let params = query_of(&target);
    assert!(target.starts_with(REDIRECT));
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(
        params["error_description"],
        "this client must use code_challenge_method=S256"
    );
    assert_eq!(params["state"], "xyz 123");
    pairs.truncate(5);
    let params = query_of(&location(
        &Browser::new().get(&authorize_url(&server, &pairs)).await,
    ));
    assert_eq!(params["error"], "invalid_request");
    server.stop().await;
}

/// A server with the confidential web app `web` and alice, and the token request that exchanges a
/// code alice's browser got for it.
async fn web_app_code_exchange(backend: Backend) -> (TestServer, String, String) {
    let server = TestServer::start(backend).await;
    server.register(&web_app("web")).await;
    create_user(&server, "alice", PASSWORD).await;
    let url = authorize_url(&server, &code_request("web", &s256(VERIFIER)));
    let code = get_code(&mut Browser::new(), &server, &url).await;
    let form = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    (server, form, secret_of("web"))
}

async fn a_code_used_twice_is_refused_and_the_tokens_issued_from_it_are_revoked(backend: Backend) {
    let (server, form, secret) = web_app_code_exchange(backend).await;
    let first = server.post_form("/token", &form, Some(("web", &secret))).await;
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    let description = assert_error(
        server.post_form("/token", &form, Some(("web", &secret))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        description,
        "the authorization code was already used; the tokens issued from it are revoked"
    );
    let introspected = server
        .introspect(body["access_token"].as_str().unwrap(), ("web", &secret))
        .await;
    assert_eq!(introspected, serde_json::json!({"active": false}));
    server.stop().await;
}

/// The code is spent in the transaction that stores the tokens: of concurrent exchanges exactly one
/// gets tokens, and the replays revoke them.
async fn concurrent_exchanges_of_one_code_issue_exactly_one_set_of_tokens(backend: Backend) {
    let (server, form, secret) = web_app_code_exchange(backend).await;
    let responses =
        futures::future::join_all((0..8).map(|_| server.post_form("/token", &form, Some(("web", &secret)))))
            .await;
    let winner = the_only_success(responses).await;
    let introspected = server
        .introspect(winner["access_token"].as_str().unwrap(), ("web", &secret))
        .await;
    assert_eq!(introspected, serde_json::json!({"active": false}));
    server.stop().await;
}

/// A code presented while its user is disabled gets no tokens, and is spent: enabling the user again
/// does not revive it.
async fn a_code_of_a_disabled_user_is_refused_and_stays_spent(backend: Backend) {
    let (server, form, secret) = web_app_code_exchange(backend).await;
    set_disabled(&server, "alice", true).await;
    let description = assert_error(
        server.post_form("/token", &form, Some(("web", &secret))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(description, "the authorization code is invalid or expired");
    set_disabled(&server, "alice", false).await;
    let description = assert_error(
        server.post_form("/token", &form, Some(("web", &secret))).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        description,
        "the authorization code was already used; the tokens issued from it are revoked"
    );
    server.stop().await;
}

async fn a_code_used_by_another_client_is_invalid_grant(backend: Backend) {
    let server = setup(backend).await;
    server.register(&spa("other")).await;
    let url = authorize_url(&server, &code_request("spa", &s256(VERIFIER)));
    let code = get_code(&mut Browser::new(), &server, &url).await;
    let description = assert_error(
        exchange(&server, "other", &code, Some(VERIFIER)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(description, "the authorization code is invalid or expired");
    server.stop().await;
}

async fn an_expired_code_is_invalid_grant(backend: Backend) {
    let server = setup(backend).await;
    let url = authorize_url(&server, &code_request("spa", &s256(VERIFIER)));
    let code = get_code(&mut Browser::new(), &server, &url).await;
    server.clock.advance(60);
    assert_error(
        exchange(&server, "spa", &code, Some(VERIFIER)).await,
        400,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

async fn a_login_post_without_its_csrf_token_is_forbidden(backend: Backend) {
    let server = setup(backend).await;
    let mut browser = Browser::new();
    let url = authorize_url(&server, &code_request("spa", &s256(VERIFIER)));
    let page = browser.get(&url).await.text().await.unwrap();
    let request = hidden(&page, "request");
    for csrf in [None, Some("forged-token-value-forged-token-value-forge")] {
        let mut form = vec![
            ("request", request.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let response = browser.post(&server.url("/login"), &form).await;
        assert_eq!(response.status(), 403);
        assert!(response.headers().get("location").is_none());
        assert!(!browser.cookies.contains_key("gatehouse_session"));
    }
    server.stop().await;
}

async fn a_tampered_session_cookie_is_no_session(backend: Backend) {
    let server = setup(backend).await;
    let mut browser = Browser::new();
    let url = authorize_url(&server, &code_request("spa", &s256(VERIFIER)));
    get_code(&mut browser, &server, &url).await;
    let session = browser.cookies["gatehouse_session"].clone();
    let mut tampered = session.into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    browser.cookies.insert(
        "gatehouse_session".to_owned(),
        String::from_utf8(tampered).unwrap(),
    );
    let page = browser.get(&url).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("action=\"/login\""));
    server.stop().await;
}

async fn prompt_none_without_a_session_redirects_login_required(backend: Backend) {
    let server = setup(backend).await;
    let challenge = s256(VERIFIER);
    let mut pairs = code_request("spa", &challenge);
    pairs.push(("prompt", "none"));
    let target = location(&Browser::new().get(&authorize_url(&server, &pairs)).await);
    assert!(target.starts_with(REDIRECT));
    let params = query_of(&target);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "xyz 123");
    server.stop().await;
}

async fn prompt_login_asks_again_even_with_a_session(backend: Backend) {
    let server = setup(backend).await;
    let mut browser = Browser::new();
    let challenge = s256(VERIFIER);
    let url = authorize_url(&server, &code_request("spa", &challenge));
    get_code(&mut browser, &server, &url).await;
    let mut pairs = code_request("spa", &challenge);
    pairs.push(("prompt", "login"));
    let page = browser.get(&authorize_url(&server, &pairs)).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("action=\"/login\""));
    server.stop().await;
}

async fn a_wrong_password_on_the_login_page_shows_the_form_again(backend: Backend) {
    let server = setup(backend).await;
    let url = authorize_url(&server, &code_request("spa", &s256(VERIFIER)));
    let response = sign_in(&mut Browser::new(), &server, &url, "wrong password").await;
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The username or password is wrong.")
    );
    server.stop().await;
}

async fn implicit_is_only_for_clients_registered_for_it_and_puts_the_token_in_the_fragment(backend: Backend) {
    let server = setup(backend).await;
    register_first_party_implicit_client(&server, "legacy").await;
    let pairs = [
        ("response_type", "token"),
        ("client_id", "spa"),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
    ];
    let params = query_of(&location(
        &Browser::new().get(&authorize_url(&server, &pairs)).await,
    ));
    assert_eq!(params["error"], "unauthorized_client");
    let mut browser = Browser::new();
    let mut pairs = pairs;
    pairs[1] = ("client_id", "legacy");
    let url = authorize_url(&server, &pairs);
    let after_login = sign_in(&mut browser, &server, &url, PASSWORD).await;
    let back = location(&after_login);
    // First-party: no consent page.
    let target = location(&browser.get(&server.url(&back)).await);
    assert!(
        target.starts_with(&format!("{REDIRECT}#access_token=")),
        "{target}"
    );
    let params = query_of(&target);
    assert_eq!(params["token_type"], "Bearer");
    assert_eq!(params["state"], "s");
    assert!(!params.contains_key("refresh_token"));
    server.stop().await;
}

on_both_backends!(
    the_code_flow_signs_in_consents_and_exchanges_the_code_with_pkce,
    near_miss_redirect_uris_get_an_error_page_and_no_redirect,
    a_missing_or_wrong_pkce_verifier_is_invalid_grant,
    a_public_client_without_pkce_or_with_plain_where_s256_is_required_is_redirected_invalid_request,
    a_code_used_twice_is_refused_and_the_tokens_issued_from_it_are_revoked,
    concurrent_exchanges_of_one_code_issue_exactly_one_set_of_tokens,
    a_code_of_a_disabled_user_is_refused_and_stays_spent,
    a_code_used_by_another_client_is_invalid_grant,
    an_expired_code_is_invalid_grant,
    a_login_post_without_its_csrf_token_is_forbidden,
    a_tampered_session_cookie_is_no_session,
    prompt_none_without_a_session_redirects_login_required,
    prompt_login_asks_again_even_with_a_session,
    a_wrong_password_on_the_login_page_shows_the_form_again,
    implicit_is_only_for_clients_registered_for_it_and_puts_the_token_in_the_fragment,
);

async fn openid_issues_a_signed_id_token_and_userinfo_answers_for_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut app = spa("rp");
    app.effective.scopes = vec!["openid".to_owned(), "email".to_owned(), "read".to_owned()];
    server.register(&app).await;
    create_user(&server, "alice", PASSWORD).await;
    let challenge = s256(VERIFIER);
    let mut pairs = code_request("rp", &challenge);
    pairs[3] = ("scope", "openid email");
    pairs.push(("nonce", "n-0S6_WzA2Mj"));
    let body = code_flow_tokens(&server, "rp", &pairs).await;
    let access = body["access_token"].as_str().unwrap();
    let claims = verify_id_token(&server, body["id_token"].as_str().unwrap(), "rp").await;
    let alice = subject_of(&server, "alice").await;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], alice.as_str());
    assert!(
        claims.get("preferred_username").is_none(),
        "no profile scope: {claims}"
    );
    assert_eq!(claims["aud"], "rp");
    assert_eq!(claims["azp"], "rp");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["auth_time"], server.clock.now());
    let digest = Sha256::digest(access.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));

    let info = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(
        info,
        serde_json::json!({"sub": alice, "email": "alice@example.com"})
    );

    let none = server.http.get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], r#"Bearer realm="gatehouse""#);
    let bad = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    server.stop().await;
}

on_both_backends!(openid_issues_a_signed_id_token_and_userinfo_answers_for_it);
