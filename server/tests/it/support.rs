//! Test harness: a real server on 127.0.0.1:0 with a manual clock, on a fresh SQLite file or a fresh
//! PostgreSQL database, and helpers to talk to it over HTTP.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_crds::admin::{ClientRegistration, SecretDigest, secret_digest};
use gatehouse_crds::{AuthMethod, EffectiveSettings, GrantType, TokenFormat};
use gatehouse_server::clock::ManualClock;
use gatehouse_server::keys::SigningAlg;
use gatehouse_server::server::{Running, Settings, start};
use serde_json::Value;
use sqlx::Connection as _;

pub use gatehouse_server::clock::Clock;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const ISSUER: &str = "https://gatehouse.test";
pub const AUDIENCE: &str = "https://api.example.com";
pub const BODY_LIMIT: usize = 16 * 1024;
pub const KEY_ROTATION_PERIOD: i64 = 30 * 24 * 3600;

/// Generates `sqlite` and `postgres` tests from an `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        )*
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed afterwards.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

fn postgres_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://gatehouse:gatehouse@127.0.0.1:55432/postgres".to_owned())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).unwrap();
    hex::encode(buf)
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("gatehouse.db").display());
                TestDb::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("gh_{}", random_hex(8));
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin_url} is required for the postgres tests (tests/services/postgres.sh starts it): {e}")
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let base = admin_url.rsplit_once('/').unwrap().0;
                let url = format!("{base}/{name}");
                TestDb::Postgres { admin_url, name, url }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name, .. } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Knobs of a test server.
#[derive(Clone)]
pub struct Options {
    pub signing_alg: SigningAlg,
    pub clients_dir: Option<PathBuf>,
    /// Listen on this port, with `http://127.0.0.1:<port>` as the issuer: a server whose issuer is its
    /// own address, as clients that run discovery or a browser need. `None`: any port, [`ISSUER`].
    pub own_issuer_port: Option<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            signing_alg: SigningAlg::Es256,
            clients_dir: None,
            own_issuer_port: None,
        }
    }
}

impl Options {
    /// A server whose issuer is its own address, on a port that was free a moment ago.
    pub fn own_issuer() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            own_issuer_port: Some(port),
            ..Self::default()
        }
    }
}

pub struct TestServer {
    running: Option<Running>,
    /// The database this server owns; `None` for a replica, whose database belongs to the server it
    /// was started from.
    _db: Option<TestDb>,
    pub db_url: String,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub options: Options,
}

fn settings(db_url: &str, options: &Options) -> Settings {
    let (listen, issuer) = match options.own_issuer_port {
        Some(port) => (
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            format!("http://127.0.0.1:{port}"),
        ),
        None => ("127.0.0.1:0".parse().unwrap(), ISSUER.to_owned()),
    };
    Settings {
        listen,
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        issuer,
        database_url: db_url.to_owned(),
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        key_encryption_key: [42u8; 32],
        signing_alg: options.signing_alg,
        key_rotation_period: KEY_ROTATION_PERIOD,
        clients_dir: options.clients_dir.clone(),
        body_limit: BODY_LIMIT,
        // The tests drive time themselves; the periodic refresh stays out of the way.
        refresh_interval: Duration::from_secs(3600),
        clock_leeway: gatehouse_server::server::DEFAULT_CLOCK_LEEWAY,
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Self {
        let db = TestDb::create(backend).await;
        Self::start_on(db, Arc::new(ManualClock::starting_now()), options).await
    }

    /// A server on a database the test prepared, such as one at an older schema version.
    pub async fn start_on(db: TestDb, clock: Arc<ManualClock>, options: Options) -> Self {
        let running = start(settings(db.url(), &options), clock.clone()).await.unwrap();
        Self {
            running: Some(running),
            db_url: db.url().to_owned(),
            _db: Some(db),
            clock,
            http: reqwest::Client::new(),
            options,
        }
    }

    /// Stops the server and starts a new one on the same database, clock and options.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        let running = start(settings(&self.db_url, &self.options), self.clock.clone())
            .await
            .unwrap();
        self.running = Some(running);
    }

    /// A second server on the same database, clock and options: another replica. It shares nothing
    /// with the first but the database, which stays owned by the first.
    pub async fn replica(&self) -> TestServer {
        let running = start(settings(&self.db_url, &self.options), self.clock.clone())
            .await
            .unwrap();
        TestServer {
            running: Some(running),
            _db: None,
            db_url: self.db_url.clone(),
            clock: self.clock.clone(),
            http: reqwest::Client::new(),
            options: self.options.clone(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().public_addr)
    }

    /// The issuer the server signs with.
    pub fn issuer(&self) -> String {
        self.state().config.issuer.clone()
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().admin_addr.unwrap())
    }

    pub fn state(&self) -> &gatehouse_server::AppState {
        &self.running().state
    }

    pub async fn register(&self, client: &ClientRegistration) {
        let response = self
            .http
            .put(self.admin_url(&format!("/admin/v1/clients/{}", client.client_id)))
            .bearer_auth(ADMIN_TOKEN)
            .json(client)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// POSTs a raw form body to a public endpoint.
    pub async fn post_form(&self, path: &str, body: &str, basic: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some((id, secret)) = basic {
            request = request.header("authorization", basic_header(id, secret));
        }
        request.send().await.unwrap()
    }

    /// A client_credentials request with Basic credentials.
    pub async fn token_response(&self, id: &str, secret: &str, scope: Option<&str>) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.post_form("/token", &encode(&form), Some((id, secret))).await
    }

    /// The access token of a successful client_credentials request.
    pub async fn token(&self, id: &str, secret: &str) -> String {
        let response = self.token_response(id, secret, None).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Introspects `token` as the client `(id, secret)`.
    pub async fn introspect(&self, token: &str, as_client: (&str, &str)) -> Value {
        let response = self
            .post_form("/introspect", &encode(&[("token", token)]), Some(as_client))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Revokes `token` (RFC 7009) as the client `(id, secret)`.
    pub async fn revoke(&self, token: &str, as_client: (&str, &str)) -> reqwest::Response {
        self.post_form("/revoke", &encode(&[("token", token)]), Some(as_client))
            .await
    }

    /// `GET path` on the public listener, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn jwks(&self) -> Value {
        self.get_json("/jwks").await
    }
}

/// `Authorization: Basic` per RFC 6749 §2.3.1.
pub fn basic_header(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Asserts an OAuth error response and returns its description.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    body["error_description"].as_str().unwrap_or_default().to_owned()
}

/// Of concurrent exchanges of one code or refresh token: the body of the only one that succeeded.
/// Every other must be `invalid_grant`.
pub async fn the_only_success(responses: Vec<reqwest::Response>) -> Value {
    let mut winners = Vec::new();
    for response in responses {
        if response.status() == 200 {
            winners.push(response.json::<Value>().await.unwrap());
        } else {
            assert_error(response, 400, "invalid_grant").await;
        }
    }
    assert_eq!(winners.len(), 1, "exactly one exchange may spend it");
    winners.remove(0)
}

/// A confidential client_credentials client, built up by the methods below.
pub struct ClientBuilder(ClientRegistration);

pub fn client(id: &str) -> ClientBuilder {
    ClientBuilder(ClientRegistration {
        client_id: id.to_owned(),
        source: Some("tests".to_owned()),
        owner: None,
        display_name: None,
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: Vec::new(),
        effective: EffectiveSettings {
            grant_types: vec![GrantType::ClientCredentials],
            denied_grant_types: Vec::new(),
            scopes: vec!["read".to_owned(), "write".to_owned()],
            denied_scopes: Vec::new(),
            default_scopes: vec!["read".to_owned()],
            scope_descriptions: Default::default(),
            audience: vec![AUDIENCE.to_owned()],
            redirect_uris: Vec::new(),
            access_token_ttl_seconds: 600,
            refresh_token_ttl_seconds: 3600,
            authorization_code_ttl_seconds: 60,
            access_token_format: TokenFormat::Jwt,
            require_pkce: false,
            allow_plain_pkce: true,
            refresh_token_rotation: true,
            first_party: false,
            claims: Default::default(),
            denials: Vec::new(),
        },
        secrets: vec![SecretDigest {
            sha256: secret_digest(&format!("{id}-secret")),
            expires_at: None,
        }],
    })
}

impl ClientBuilder {
    pub fn opaque(mut self) -> Self {
        self.0.effective.access_token_format = TokenFormat::Opaque;
        self
    }

    pub fn public(mut self) -> Self {
        self.0.token_endpoint_auth_method = AuthMethod::None;
        self.0.secrets.clear();
        self.0.effective.grant_types = vec![GrantType::AuthorizationCode];
        self.0.redirect_uris = vec!["http://localhost:3000/cb".to_owned()];
        self
    }

    pub fn grants(mut self, grants: &[GrantType]) -> Self {
        self.0.effective.grant_types = grants.to_vec();
        self
    }

    pub fn secret_expiring_at(mut self, expires_at: i64) -> Self {
        for s in &mut self.0.secrets {
            s.expires_at = Some(expires_at);
        }
        self
    }

    pub fn claim(mut self, key: &str, value: &str) -> Self {
        self.0.effective.claims.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn build(self) -> ClientRegistration {
        self.0
    }
}

/// The secret [`client`] registers for `id`.
pub fn secret_of(id: &str) -> String {
    format!("{id}-secret")
}
