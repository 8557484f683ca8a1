//! The scenarios of issue 7, each one operation as a client or browser performs it. A scenario whose
//! grant the server does not advertise in discovery is reported as not run, never estimated.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::StatusCode;
use hyper::header;

use crate::browser::{self, Browser, Pkce};
use crate::http::{Conn, Response, form};
use crate::load::{Failure, Scenario};
use crate::setup::{Credentials, REDIRECT_URI, SCOPE, Setup, User};

/// Every scenario, in report order.
pub const ALL: [&str; 8] = [
    "client_credentials-jwt",
    "client_credentials-opaque",
    "introspect-jwt",
    "introspect-opaque",
    "refresh-rotation",
    "password",
    "authorization_code-session",
    "login-form",
];

/// Tokens each introspection worker mints before the clock starts and then cycles through.
const TOKENS_PER_WORKER: usize = 16;

async fn post(
    conn: &mut Conn,
    path: &str,
    client: &Credentials,
    body: Bytes,
    step: &str,
) -> Result<Response, Failure> {
    let response = conn
        .post_form(path, &[(header::AUTHORIZATION, &client.basic)], body)
        .await
        .map_err(|e| Failure::transport(step, &e))?;
    if response.status != StatusCode::OK {
        return Err(Failure::status(step, &response));
    }
    Ok(response)
}

fn token_field(response: &Response, field: &str, step: &str) -> Result<String, Failure> {
    let json: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|e| Failure::content(step, format!("not JSON: {e}")))?;
    json[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::content(step, format!("no {field} in the token response")))
}

fn require_access_token(response: &Response, step: &str) -> Result<(), Failure> {
    if response.body_contains(b"\"access_token\"") {
        Ok(())
    } else {
        Err(Failure::content(step, "no access_token in the token response"))
    }
}

fn anyhow_of(failure: Failure) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", failure.key, failure.detail)
}

/// `grant_type=client_credentials`.
pub struct ClientCredentials {
    client: Credentials,
}

impl Scenario for ClientCredentials {
    type Worker = ();

    async fn prepare(&self, _: &mut Conn, _: usize) -> anyhow::Result<()> {
        Ok(())
    }

    async fn step(&self, conn: &mut Conn, _: &mut ()) -> Result<(), Failure> {
        let body = Bytes::from_static(b"grant_type=client_credentials");
        let response = post(conn, "/token", &self.client, body, "token").await?;
        require_access_token(&response, "token")
    }
}

/// Introspection of tokens minted by `subject`, asked by `caller`.
pub struct Introspect {
    caller: Credentials,
    subject: Credentials,
}

impl Scenario for Introspect {
    type Worker = (Vec<Bytes>, usize);

    async fn prepare(&self, conn: &mut Conn, _: usize) -> anyhow::Result<Self::Worker> {
        let mut bodies = Vec::with_capacity(TOKENS_PER_WORKER);
        for _ in 0..TOKENS_PER_WORKER {
            let body = Bytes::from_static(b"grant_type=client_credentials");
            let response = post(conn, "/token", &self.subject, body, "token")
                .await
                .map_err(anyhow_of)?;
            let token = token_field(&response, "access_token", "token").map_err(anyhow_of)?;
            bodies.push(Bytes::from(form(&[("token", &token)])));
        }
        Ok((bodies, 0))
    }

    async fn step(&self, conn: &mut Conn, worker: &mut Self::Worker) -> Result<(), Failure> {
        let (bodies, next) = worker;
        let body = bodies[*next % bodies.len()].clone();
        *next = next.wrapping_add(1);
        let response = post(conn, "/introspect", &self.caller, body, "introspect").await?;
        if response.body_contains(b"\"active\":true") {
            Ok(())
        } else {
            Err(Failure::content("introspect", "the token is not active"))
        }
    }
}

/// `grant_type=password`: argon2id-bound by design.
pub struct Password {
    client: Credentials,
    body: Bytes,
}

impl Password {
    fn new(client: Credentials, user: &User) -> Self {
        let body = form(&[
            ("grant_type", "password"),
            ("username", &user.username),
            ("password", &user.password),
            ("scope", SCOPE),
        ]);
        Self {
            client,
            body: Bytes::from(body),
        }
    }
}

impl Scenario for Password {
    type Worker = ();

    async fn prepare(&self, _: &mut Conn, _: usize) -> anyhow::Result<()> {
        Ok(())
    }

    async fn step(&self, conn: &mut Conn, _: &mut ()) -> Result<(), Failure> {
        let response = post(conn, "/token", &self.client, self.body.clone(), "password").await?;
        require_access_token(&response, "password")
    }
}

/// The user-facing client and user, for the flows that sign in.
struct UserFlow {
    issuer: String,
    client: Credentials,
    user: User,
}

impl UserFlow {
    fn browser_client(&self) -> browser::Client<'_> {
        browser::Client {
            issuer: &self.issuer,
            client_id: &self.client.client_id,
            redirect_uri: REDIRECT_URI,
            scope: SCOPE,
        }
    }

    /// Exchanges a code with its PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
    async fn exchange(&self, conn: &mut Conn, code: &str, pkce: &Pkce) -> Result<Response, Failure> {
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &pkce.verifier),
        ]);
        let response = post(conn, "/token", &self.client, Bytes::from(body), "exchange").await?;
        require_access_token(&response, "exchange")?;
        Ok(response)
    }

    /// Signs in from scratch and returns the code.
    async fn sign_in(&self, conn: &mut Conn, browser: &mut Browser, pkce: &Pkce) -> Result<String, Failure> {
        let state = browser::random_state();
        self.browser_client()
            .authorize(
                conn,
                browser,
                &state,
                pkce,
                &self.user.username,
                &self.user.password,
            )
            .await
    }
}

/// Authorize with an existing session cookie, then exchange the code with PKCE: one flow.
pub struct AuthorizationCode {
    flow: UserFlow,
}

impl Scenario for AuthorizationCode {
    type Worker = Browser;

    async fn prepare(&self, conn: &mut Conn, _: usize) -> anyhow::Result<Browser> {
        let mut browser = Browser::default();
        let pkce = Pkce::new();
        let code = self
            .flow
            .sign_in(conn, &mut browser, &pkce)
            .await
            .map_err(anyhow_of)?;
        self.flow.exchange(conn, &code, &pkce).await.map_err(anyhow_of)?;
        if !browser.has_cookies() {
            bail!("signing in set no session cookie");
        }
        Ok(browser)
    }

    async fn step(&self, conn: &mut Conn, browser: &mut Browser) -> Result<(), Failure> {
        let client = self.flow.browser_client();
        let pkce = Pkce::new();
        let state = browser::random_state();
        let path = client.authorize_path(&state, &pkce);
        let cookie = browser.cookie();
        let headers: Vec<_> = cookie.iter().map(|(n, v)| (n.clone(), *v)).collect();
        let response = conn
            .get(&path, &headers)
            .await
            .map_err(|e| Failure::transport("authorize", &e))?;
        browser.absorb(&response);
        if !response.status.is_redirection() {
            return Err(Failure::status("authorize", &response));
        }
        let location = response
            .location()
            .ok_or_else(|| Failure::content("authorize", "a redirect without Location"))?;
        let code = client.code_from(location, &state)?;
        self.flow.exchange(conn, &code, &pkce).await.map(|_| ())
    }
}

/// A sign-in without a session: authorize, the login form (argon2id), the redirect with a code.
pub struct LoginForm {
    flow: UserFlow,
}

impl Scenario for LoginForm {
    type Worker = ();

    async fn prepare(&self, _: &mut Conn, _: usize) -> anyhow::Result<()> {
        Ok(())
    }

    async fn step(&self, conn: &mut Conn, _: &mut ()) -> Result<(), Failure> {
        let mut browser = Browser::default();
        self.flow
            .sign_in(conn, &mut browser, &Pkce::new())
            .await
            .map(|_| ())
    }
}

/// `grant_type=refresh_token` with rotation: each worker follows its own token family.
pub struct Refresh {
    flow: UserFlow,
    via_password: bool,
}

impl Scenario for Refresh {
    type Worker = String;

    async fn prepare(&self, conn: &mut Conn, _: usize) -> anyhow::Result<String> {
        let response = if self.via_password {
            let body = form(&[
                ("grant_type", "password"),
                ("username", &self.flow.user.username),
                ("password", &self.flow.user.password),
                ("scope", SCOPE),
            ]);
            post(conn, "/token", &self.flow.client, Bytes::from(body), "password")
                .await
                .map_err(anyhow_of)?
        } else {
            let mut browser = Browser::default();
            let pkce = Pkce::new();
            let code = self
                .flow
                .sign_in(conn, &mut browser, &pkce)
                .await
                .map_err(anyhow_of)?;
            self.flow.exchange(conn, &code, &pkce).await.map_err(anyhow_of)?
        };
        token_field(&response, "refresh_token", "initial grant")
            .map_err(anyhow_of)
            .context("the client is registered for refresh_token, so a refresh token is expected")
    }

    async fn step(&self, conn: &mut Conn, current: &mut String) -> Result<(), Failure> {
        let body = form(&[("grant_type", "refresh_token"), ("refresh_token", current)]);
        let response = post(conn, "/token", &self.flow.client, Bytes::from(body), "refresh").await?;
        require_access_token(&response, "refresh")?;
        *current = token_field(&response, "refresh_token", "refresh")?;
        Ok(())
    }
}

/// A scenario ready to run, or the reason it cannot.
pub enum Planned {
    /// client_credentials (JWT or opaque).
    ClientCredentials(Arc<ClientCredentials>),
    /// Introspection.
    Introspect(Arc<Introspect>),
    /// Password grant.
    Password(Arc<Password>),
    /// Refresh rotation.
    Refresh(Arc<Refresh>),
    /// Authorization code with a session.
    AuthorizationCode(Arc<AuthorizationCode>),
    /// Login form.
    LoginForm(Arc<LoginForm>),
    /// Not run, and why.
    NotRun(String),
}

fn not_supported(grant: &str) -> Planned {
    Planned::NotRun(format!("not run: server does not support {grant} yet"))
}

/// The scenario `name` against `setup`.
pub fn plan(name: &str, setup: &Setup) -> anyhow::Result<Planned> {
    let flow = |grant: &str| -> Result<UserFlow, Planned> {
        match (&setup.user, setup.supports(grant)) {
            (Some(user), true) => Ok(UserFlow {
                issuer: setup.issuer.clone(),
                client: setup.user_client.clone(),
                user: user.clone(),
            }),
            _ => Err(not_supported(grant)),
        }
    };
    Ok(match name {
        "client_credentials-jwt" => Planned::ClientCredentials(Arc::new(ClientCredentials {
            client: setup.jwt.clone(),
        })),
        "client_credentials-opaque" => Planned::ClientCredentials(Arc::new(ClientCredentials {
            client: setup.opaque.clone(),
        })),
        "introspect-jwt" => Planned::Introspect(Arc::new(Introspect {
            caller: setup.opaque.clone(),
            subject: setup.jwt.clone(),
        })),
        "introspect-opaque" => Planned::Introspect(Arc::new(Introspect {
            caller: setup.jwt.clone(),
            subject: setup.opaque.clone(),
        })),
        "password" => match flow("password") {
            Ok(flow) => Planned::Password(Arc::new(Password::new(flow.client, &flow.user))),
            Err(not_run) => not_run,
        },
        "refresh-rotation" => {
            if !setup.supports("refresh_token") {
                not_supported("refresh_token")
            } else {
                let via_password = setup.supports("password");
                match flow(if via_password {
                    "password"
                } else {
                    "authorization_code"
                }) {
                    Ok(flow) => Planned::Refresh(Arc::new(Refresh { flow, via_password })),
                    Err(_) => Planned::NotRun(
                        "not run: server supports refresh_token but neither password nor \
                         authorization_code yet, so there is no way to obtain a refresh token"
                            .to_owned(),
                    ),
                }
            }
        }
        "authorization_code-session" => match flow("authorization_code") {
            Ok(flow) => Planned::AuthorizationCode(Arc::new(AuthorizationCode { flow })),
            Err(not_run) => not_run,
        },
        "login-form" => match flow("authorization_code") {
            Ok(flow) => Planned::LoginForm(Arc::new(LoginForm { flow })),
            Err(not_run) => not_run,
        },
        other => bail!("unknown scenario {other:?}; known: {}", ALL.join(", ")),
    })
}
