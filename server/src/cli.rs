//! Command-line flags (each also an environment variable) and the startup that turns them into
//! [`Settings`]: reading the admin token and key-encryption key from files, generating a key-encryption
//! key for standalone SQLite, and setting up logs.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;

use crate::clock::SystemClock;
use crate::keys::{Kek, SigningAlg};
use crate::server::{self, Settings};
use crate::store::Backend;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The Gatehouse OAuth 2.0 token server.
#[derive(Debug, Parser)]
#[command(name = "gatehouse-server", version, about)]
pub struct Args {
    /// Address of the public listener: token, introspection, revocation, discovery, JWKS, metrics.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Address of the admin API listener. Keep it private.
    #[arg(long, env = "GATEHOUSE_ADMIN_LISTEN", default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,

    /// Issuer identifier (`iss`) and base URL of the advertised endpoints.
    #[arg(long, env = "GATEHOUSE_ISSUER", default_value = "http://localhost:8080")]
    pub issuer: String,

    /// Database URL: `sqlite://FILE?mode=rwc` (one replica) or `postgres://...` (any number).
    #[arg(
        long,
        env = "GATEHOUSE_DATABASE_URL",
        default_value = "sqlite://gatehouse.db?mode=rwc"
    )]
    pub database_url: String,

    /// Bearer token of the admin API. Required (or --admin-token-file) unless --clients-dir is set, in
    /// which case the admin API is disabled without one.
    #[arg(long, env = "GATEHOUSE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin API's bearer token.
    #[arg(long, env = "GATEHOUSE_ADMIN_TOKEN_FILE", conflicts_with = "admin_token")]
    pub admin_token_file: Option<PathBuf>,

    /// Key-encryption key for the signing keys at rest: 32 bytes as hex or base64.
    #[arg(long, env = "GATEHOUSE_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<String>,

    /// File holding the key-encryption key. With --clients-dir on SQLite and no key given, one is
    /// generated once into `<database file>.kek`.
    #[arg(
        long,
        env = "GATEHOUSE_KEY_ENCRYPTION_KEY_FILE",
        conflicts_with = "key_encryption_key"
    )]
    pub key_encryption_key_file: Option<PathBuf>,

    /// Algorithm of new signing keys.
    #[arg(long, env = "GATEHOUSE_SIGNING_ALG", value_enum, default_value = "ES256")]
    pub signing_alg: SigningAlg,

    /// How long a signing key signs before the next one takes over, such as `720h`.
    #[arg(long, env = "GATEHOUSE_KEY_ROTATION_PERIOD", default_value = "720h", value_parser = parse_duration)]
    pub key_rotation_period: i64,

    /// Standalone mode: load OAuthClient, OAuthPolicy and Secret manifests from this directory.
    #[arg(long, env = "GATEHOUSE_CLIENTS_DIR")]
    pub clients_dir: Option<PathBuf>,

    /// Users to create or update at startup, from a YAML file such as
    /// `users: [{username: alice, password: ..., email: ...}]` (or `passwordHash` for an argon2id hash).
    #[arg(long, env = "GATEHOUSE_USERS_FILE")]
    pub users_file: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Largest request body on the public endpoints, such as `16KiB` or `16384`.
    #[arg(long, env = "GATEHOUSE_BODY_LIMIT", default_value = "16KiB", value_parser = parse_size)]
    pub body_limit: usize,

    /// How far a token's `iat` or `nbf` may lie ahead of this replica's clock and the token still be
    /// active: the clock skew tolerated between replicas, at most `5m` (`0s` for none).
    #[arg(long, env = "GATEHOUSE_CLOCK_LEEWAY", default_value = "5s", value_parser = parse_leeway)]
    pub clock_leeway: i64,
}

fn parse_duration(text: &str) -> Result<i64, String> {
    let secs = gatehouse_crds::Duration::new(text)
        .as_secs()
        .map_err(|e| e.to_string())?;
    i64::try_from(secs).map_err(|_| "too long".to_owned())
}

fn parse_leeway(text: &str) -> Result<i64, String> {
    if text == "0" || text == "0s" {
        return Ok(0);
    }
    let secs = parse_duration(text)?;
    if secs > 300 {
        return Err("at most 5m: a larger leeway accepts tokens minted for the future".to_owned());
    }
    Ok(secs)
}

fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 16KiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1024,
        "M" | "MiB" => 1024 * 1024,
        other => return Err(format!("unknown size unit {other:?}; use B, KiB or MiB")),
    };
    number
        .checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a positive size"))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn read_trimmed(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.trim().to_owned())
}

/// The SQLite file a `sqlite:` URL names, if it names one.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn standalone_kek(database_url: &str) -> anyhow::Result<[u8; 32]> {
    let Some(db_file) = sqlite_file(database_url) else {
        bail!(
            "--key-encryption-key or --key-encryption-key-file is required unless the database is a SQLite file"
        );
    };
    let mut kek_file = db_file.into_os_string();
    kek_file.push(".kek");
    let kek_file = PathBuf::from(kek_file);
    if kek_file.exists() {
        return Ok(Kek::decode(&read_trimmed(&kek_file)?)?);
    }
    let encoded = Kek::generate_encoded();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&kek_file)
        .with_context(|| format!("creating {}", kek_file.display()))?;
    writeln!(file, "{encoded}").with_context(|| format!("writing {}", kek_file.display()))?;
    tracing::info!(file = %kek_file.display(), "generated a key-encryption key for the signing keys; keep this file with the database");
    Ok(Kek::decode(&encoded)?)
}

impl Args {
    /// Starts the server and serves until SIGINT or SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            listen,
            admin_listen,
            issuer,
            database_url,
            admin_token,
            admin_token_file,
            key_encryption_key,
            key_encryption_key_file,
            signing_alg,
            key_rotation_period,
            clients_dir,
            users_file,
            log_format,
            body_limit,
            clock_leeway,
        } = self;
        init_logging(log_format);
        Backend::of_url(&database_url)?;
        let admin_token = match (admin_token, admin_token_file) {
            (Some(token), _) => Some(token),
            (None, Some(file)) => Some(read_trimmed(&file)?),
            (None, None) => None,
        };
        let admin_token = admin_token.filter(|t| !t.is_empty());
        if admin_token.is_none() {
            if clients_dir.is_none() {
                bail!(
                    "--admin-token or --admin-token-file is required (or run standalone with --clients-dir)"
                );
            }
            tracing::info!("no admin token: the admin API is disabled");
        }
        let key_encryption_key = match (key_encryption_key, key_encryption_key_file) {
            (Some(text), _) => Kek::decode(&text)?,
            (None, Some(file)) => Kek::decode(&read_trimmed(&file)?)?,
            (None, None) if clients_dir.is_some() => standalone_kek(&database_url)?,
            (None, None) => bail!("--key-encryption-key or --key-encryption-key-file is required"),
        };
        let settings = Settings {
            listen,
            admin_listen: admin_token.is_some().then_some(admin_listen),
            issuer: issuer.clone(),
            database_url,
            admin_token,
            key_encryption_key,
            signing_alg,
            key_rotation_period,
            clients_dir,
            body_limit,
            refresh_interval: Duration::from_secs(5),
            clock_leeway,
        };
        let running = server::start(settings, Arc::new(SystemClock)).await?;
        if let Some(file) = &users_file {
            let count = crate::users::seed_file(&running.state, file).await?;
            tracing::info!(users = count, file = %file.display(), "created or updated the users of the users file");
        }
        tracing::info!(
            public = %running.public_addr,
            admin = ?running.admin_addr,
            %issuer,
            "gatehouse-server is serving"
        );
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_contract() {
        let args = Args::try_parse_from(["gatehouse-server", "--admin-token", "t"]).unwrap();
        assert_eq!(args.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(args.admin_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(args.issuer, "http://localhost:8080");
        assert_eq!(args.database_url, "sqlite://gatehouse.db?mode=rwc");
        assert_eq!(args.signing_alg, SigningAlg::Es256);
        assert_eq!(args.key_rotation_period, 720 * 3600);
        assert_eq!(args.body_limit, 16 * 1024);
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn signing_algorithms_use_their_jws_names() {
        for (name, alg) in [
            ("ES256", SigningAlg::Es256),
            ("RS256", SigningAlg::Rs256),
            ("EdDSA", SigningAlg::EdDsa),
        ] {
            let args = Args::try_parse_from(["gatehouse-server", "--signing-alg", name]).unwrap();
            assert_eq!(args.signing_alg, alg);
        }
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("16KiB"), Ok(16_384));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn the_sqlite_file_is_read_from_the_url() {
        assert_eq!(
            sqlite_file("sqlite://gatehouse.db?mode=rwc"),
            Some(PathBuf::from("gatehouse.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/g.db"),
            Some(PathBuf::from("/var/lib/g.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x/y"), None);
    }
}
