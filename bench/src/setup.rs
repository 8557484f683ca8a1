//! Before any load: read the server's discovery document to learn which grants it implements, register
//! the benchmark's clients through the admin API, and create the end user the user-facing grants sign
//! in as. Everything here goes through the same public interfaces the operator and users use.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use gatehouse_crds::admin::{ClientRegistration, SecretDigest, secret_digest};
use gatehouse_crds::{AuthMethod, EffectiveSettings, GrantType, TokenFormat};
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use rand::RngCore as _;

use crate::http::{Conn, basic_auth};

/// The scope every benchmark client asks for.
pub const SCOPE: &str = "read";
/// The redirect URI of the user-facing client. Nothing listens there: the flow stops at the redirect.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// A registered confidential client.
#[derive(Clone)]
pub struct Credentials {
    /// The client_id.
    pub client_id: String,
    /// `Authorization: Basic ...` for it.
    pub basic: HeaderValue,
}

/// An end user of the user-facing grants.
#[derive(Clone)]
pub struct User {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// What the scenarios share.
pub struct Setup {
    /// The server's issuer URL.
    pub issuer: String,
    /// `grant_types_supported` from discovery.
    pub grants: Vec<String>,
    /// client_credentials, JWT access tokens.
    pub jwt: Credentials,
    /// client_credentials, opaque access tokens.
    pub opaque: Credentials,
    /// authorization_code, password and refresh_token; first-party, so no consent page.
    pub user_client: Credentials,
    /// The end user, when a user-facing grant is supported.
    pub user: Option<User>,
}

impl Setup {
    /// Whether discovery lists `grant`.
    pub fn supports(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn settings(grants: Vec<GrantType>, format: TokenFormat) -> EffectiveSettings {
    EffectiveSettings {
        grant_types: grants,
        denied_grant_types: Vec::new(),
        scopes: vec![SCOPE.to_owned()],
        denied_scopes: Vec::new(),
        default_scopes: vec![SCOPE.to_owned()],
        scope_descriptions: BTreeMap::new(),
        audience: vec!["bench-api".to_owned()],
        redirect_uris: Vec::new(),
        access_token_ttl_seconds: 3600,
        refresh_token_ttl_seconds: 24 * 3600,
        authorization_code_ttl_seconds: 60,
        access_token_format: format,
        require_pkce: true,
        allow_plain_pkce: false,
        refresh_token_rotation: true,
        first_party: true,
        claims: BTreeMap::new(),
        denials: Vec::new(),
    }
}

async fn admin_send(
    conn: &mut Conn,
    token: &HeaderValue,
    method: Method,
    path: &str,
    json: &serde_json::Value,
) -> anyhow::Result<crate::http::Response> {
    let body = bytes::Bytes::from(serde_json::to_vec(json)?);
    let headers = [(header::AUTHORIZATION, token)];
    conn.send(method, path, &headers, Some(("application/json", body)))
        .await
}

async fn register(
    conn: &mut Conn,
    token: &HeaderValue,
    client_id: &str,
    settings: EffectiveSettings,
    redirect_uris: Vec<String>,
) -> anyhow::Result<Credentials> {
    let secret = random_hex(32);
    let doc = ClientRegistration {
        client_id: client_id.to_owned(),
        source: Some("gatehouse-bench".to_owned()),
        owner: None,
        display_name: Some(format!("benchmark client {client_id}")),
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris,
        effective: settings,
        secrets: vec![SecretDigest {
            sha256: secret_digest(&secret),
            expires_at: None,
        }],
    };
    let path = format!("{}/clients/{client_id}", gatehouse_crds::admin::PREFIX);
    let response = admin_send(conn, token, Method::PUT, &path, &serde_json::to_value(&doc)?).await?;
    if response.status != StatusCode::OK {
        bail!(
            "PUT {path}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    Ok(Credentials {
        client_id: client_id.to_owned(),
        basic: basic_auth(client_id, &secret)?,
    })
}

/// Creates the benchmark's end user with `POST /admin/v1/users` (the user-facing grants' admin route).
/// If the server's route or document changes, this function is the one place to adapt.
async fn create_user(conn: &mut Conn, token: &HeaderValue, suffix: &str) -> anyhow::Result<User> {
    let user = User {
        username: format!("bench-user-{suffix}"),
        password: random_hex(16),
    };
    let path = format!("{}/users", gatehouse_crds::admin::PREFIX);
    let doc = serde_json::json!({"username": user.username, "password": user.password});
    let response = admin_send(conn, token, Method::POST, &path, &doc).await?;
    if !response.status.is_success() {
        bail!(
            "creating the benchmark user: POST {path} answered {} {}; the user-facing grants are \
             advertised, so the admin API should accept users (adapt bench/src/setup.rs create_user \
             if its route changed)",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    Ok(user)
}

impl Setup {
    /// Reads discovery, registers the clients, and creates the user if a user-facing grant is
    /// supported.
    pub async fn new(addr: SocketAddr, admin_addr: SocketAddr, admin_token: &str) -> anyhow::Result<Self> {
        let mut public = Conn::connect(addr).await?;
        let response = public.get("/.well-known/oauth-authorization-server", &[]).await?;
        if response.status != StatusCode::OK {
            bail!("discovery answered {}", response.status);
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&response.body).context("parsing the discovery document")?;
        let issuer = metadata["issuer"]
            .as_str()
            .context("discovery has no issuer")?
            .to_owned();
        let grants: Vec<String> = metadata["grant_types_supported"]
            .as_array()
            .context("discovery has no grant_types_supported")?
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect();

        let token = HeaderValue::from_str(&format!("Bearer {admin_token}"))?;
        let mut admin = Conn::connect(admin_addr).await?;
        let suffix = random_hex(4);
        let jwt = register(
            &mut admin,
            &token,
            &format!("bench-jwt-{suffix}"),
            settings(vec![GrantType::ClientCredentials], TokenFormat::Jwt),
            Vec::new(),
        )
        .await?;
        let opaque = register(
            &mut admin,
            &token,
            &format!("bench-opaque-{suffix}"),
            settings(vec![GrantType::ClientCredentials], TokenFormat::Opaque),
            Vec::new(),
        )
        .await?;
        let user_client = register(
            &mut admin,
            &token,
            &format!("bench-user-{suffix}"),
            settings(
                vec![
                    GrantType::AuthorizationCode,
                    GrantType::Password,
                    GrantType::RefreshToken,
                ],
                TokenFormat::Jwt,
            ),
            vec![REDIRECT_URI.to_owned()],
        )
        .await?;
        let mut setup = Self {
            issuer,
            grants,
            jwt,
            opaque,
            user_client,
            user: None,
        };
        if setup.supports("password") || setup.supports("authorization_code") {
            setup.user = Some(create_user(&mut admin, &token, &suffix).await?);
        }
        Ok(setup)
    }
}
