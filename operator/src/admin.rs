//! Client of the token server's admin API. Only digests travel; the bearer token is read from the
//! `gatehouse-server-admin-token` Secret the operator generated, and re-read when the server refuses it.

use std::time::Duration;

use gatehouse_crds::admin::{ClientOwner, ClientRegistration, PREFIX};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use reqwest::StatusCode;
use tokio::sync::RwLock;

use crate::server_deployment::{ADMIN_TOKEN_KEY, ADMIN_TOKEN_SECRET};

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The server could not be reached, timed out, or answered with a 5xx: retry later.
    #[error("token server unavailable: {0}")]
    Unavailable(String),
    /// The server refused the request; retrying the same request will not help.
    #[error("token server refused the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// Another OAuthClient holds the client_id (409): the server kept its registration.
    #[error("the token server refused the registration: {0}")]
    Conflict(String),
    /// The admin token could not be read from its Secret.
    #[error("admin token unavailable: {0}")]
    Token(String),
}

/// Talks to one token server's admin API.
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    secrets: Api<Secret>,
    token: RwLock<Option<String>>,
}

impl AdminClient {
    /// A client for the admin API at `base` (such as `http://gatehouse-server.ns.svc:8081`), reading its
    /// token through `secrets` (the operator namespace's Secrets).
    pub fn new(base: &str, secrets: Api<Secret>) -> Result<Self, AdminError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secrets,
            token: RwLock::new(None),
        })
    }

    async fn token(&self) -> Result<String, AdminError> {
        if let Some(t) = self.token.read().await.clone() {
            return Ok(t);
        }
        let secret = self
            .secrets
            .get_opt(ADMIN_TOKEN_SECRET)
            .await
            .map_err(|e| AdminError::Token(e.to_string()))?
            .ok_or_else(|| AdminError::Token(format!("Secret {ADMIN_TOKEN_SECRET} does not exist yet")))?;
        let token = crate::secret::value(&secret, ADMIN_TOKEN_KEY)
            .ok_or_else(|| {
                AdminError::Token(format!(
                    "Secret {ADMIN_TOKEN_SECRET} has no key {ADMIN_TOKEN_KEY}"
                ))
            })?
            .trim()
            .to_owned();
        *self.token.write().await = Some(token.clone());
        Ok(token)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base)
    }

    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AdminError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let response = build(&self.http)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| AdminError::Unavailable(error_chain(&e)))?;
            if response.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                // The token Secret may have been replaced; read it again once.
                *self.token.write().await = None;
                continue;
            }
            return Ok(response);
        }
        Err(AdminError::Rejected {
            status: 401,
            message: "admin token refused".into(),
        })
    }

    /// Creates or replaces a registration.
    pub async fn put(&self, registration: &ClientRegistration) -> Result<(), AdminError> {
        let url = self.url(&format!("/clients/{}", registration.client_id));
        let response = self.send(|h| h.put(&url).json(registration)).await?;
        check(response).await.map(drop)
    }

    /// The registration of `client_id`, or `None` if the server has none.
    pub async fn get(&self, client_id: &str) -> Result<Option<ClientRegistration>, AdminError> {
        let url = self.url(&format!("/clients/{client_id}"));
        let response = self.send(|h| h.get(&url)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response).await?;
        response
            .json()
            .await
            .map(Some)
            .map_err(|e| AdminError::Unavailable(format!("unreadable registration: {e}")))
    }

    /// Removes the registration of `client_id` if `owner` holds it; removing a missing one, or one
    /// another OAuthClient holds, succeeds and changes nothing.
    pub async fn delete(&self, client_id: &str, owner: &ClientOwner) -> Result<(), AdminError> {
        let url = self.url(&format!("/clients/{client_id}"));
        let query = [("namespace", &owner.namespace), ("name", &owner.name)];
        let response = self.send(|h| h.delete(&url).query(&query)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        check(response).await.map(drop)
    }
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response, AdminError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = body.chars().take(512).collect::<String>();
    if status == StatusCode::CONFLICT {
        let description = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error_description"].as_str().map(str::to_owned))
            .unwrap_or(message);
        Err(AdminError::Conflict(description))
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(AdminError::Unavailable(format!("{status}: {message}")))
    } else {
        Err(AdminError::Rejected {
            status: status.as_u16(),
            message,
        })
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
