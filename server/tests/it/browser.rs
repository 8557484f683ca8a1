//! A real browser: Debian's Chromium, headless, driven over WebDriver (chromedriver, `fantoccini`).
//! It opens a client's authorization URL, signs in on the login page, allows on the consent page and
//! lands on the client's redirect URI with a code, which the test exchanges with the PKCE verifier.
//! `tests/services/chromium.sh` installs both from Debian's packages; `GATEHOUSE_CHROMIUM` and
//! `GATEHOUSE_CHROMEDRIVER` point elsewhere.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::authorize::{authorize_url, s256};
use crate::on_both_backends;
use crate::support::*;
use crate::users::{PASSWORD, create_user, subject_of};

const VERIFIER: &str = "browser-test-verifier-0123456789-0123456789-abcdefghij";

fn tool(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run `bash tests/services/chromium.sh` (or set {var})"
    );
    path
}

/// chromedriver on a free port, and a WebDriver session with headless Chromium in a fresh profile.
struct Driver {
    process: tokio::process::Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        let chromium = tool("GATEHOUSE_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("GATEHOUSE_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(response) = http.get(format!("{webdriver}/status")).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver did not become ready on {webdriver}");
        let profile = tempfile::tempdir().unwrap();
        // The closed network refuses Chromium's background connections; these flags stop it trying.
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": chromium, "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .unwrap();
        Self {
            process,
            client,
            _profile: profile,
        }
    }

    async fn stop(mut self) {
        self.client.close().await.unwrap();
        let _ = self.process.kill().await;
    }
}

/// The client's side of the redirect: a page at `/cb` on its own port.
async fn redirect_target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::get(|| async { axum::response::Html("<h1>back at the client</h1>") }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/cb")
}

async fn chromium_signs_in_consents_and_brings_back_a_code_that_exchanges_with_pkce(backend: Backend) {
    let server = TestServer::start_with(backend, Options::own_issuer()).await;
    let redirect = redirect_target().await;
    let mut app = client("browser-app")
        .public()
        .grants(&[
            gatehouse_crds::GrantType::AuthorizationCode,
            gatehouse_crds::GrantType::RefreshToken,
        ])
        .build();
    app.redirect_uris = vec![redirect.clone()];
    app.display_name = Some("Browser App".to_owned());
    app.effective.scopes = vec!["openid".to_owned(), "read".to_owned()];
    server.register(&app).await;
    create_user(&server, "alice", PASSWORD).await;
    let challenge = s256(VERIFIER);
    let url = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", "browser-app"),
            ("redirect_uri", &redirect),
            ("scope", "openid read"),
            ("state", "state from the browser"),
            ("nonce", "n-browser"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );

    let driver = Driver::start().await;
    let browser = &driver.client;
    browser.goto(&url).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Sign in");
    browser
        .find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let allow = browser
        .wait()
        .for_element(Locator::Css("button[name=decision][value=allow]"))
        .await
        .unwrap();
    let consent = browser.source().await.unwrap();
    assert!(consent.contains("Browser App asks to:"), "{consent}");
    assert!(consent.contains("Signed in as alice."), "{consent}");
    allow.click().await.unwrap();

    // Wait (a bounded poll, not a timing check) for the browser to follow the redirect.
    let mut landed = browser.current_url().await.unwrap();
    for _ in 0..400 {
        if landed.as_str().starts_with(&redirect) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        landed = browser.current_url().await.unwrap();
    }
    assert!(
        landed.as_str().starts_with(&redirect),
        "the browser stayed at {landed}"
    );
    assert_eq!(
        browser
            .find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "back at the client"
    );
    let params: HashMap<String, String> = landed.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "state from the browser");
    let code = params["code"].clone();
    driver.stop().await;

    let token = server
        .post_form(
            "/token",
            &encode(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("client_id", "browser-app"),
                ("code_verifier", VERIFIER),
            ]),
            None,
        )
        .await;
    assert_eq!(token.status(), 200);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid read");
    assert!(body["refresh_token"].is_string(), "{body}");
    let (_, claims) =
        crate::keys::verify_independently(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], subject_of(&server, "alice").await.as_str());
    assert!(body["id_token"].is_string(), "{body}");
    server.stop().await;
}

on_both_backends!(chromium_signs_in_consents_and_brings_back_a_code_that_exchanges_with_pkce);
