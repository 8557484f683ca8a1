//! Storage. One [`Db`] over sqlx's `Any` driver, so each query is written once for both backends:
//! SQLite (the embedded default, in WAL mode) and PostgreSQL (for several replicas). Each backend has its
//! own migrations under `migrations/`. Times are Unix seconds; documents are JSON text.
//!
//! Writes are single statements or short transactions that never wait on the network in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_crds::admin::{ClientOwner, ClientRegistration};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use crate::client::ownership;
use crate::{Error, Result};

mod authz;
mod grants;
mod revocations;
mod users;

pub use authz::{AuthorizationCode, Session};
pub use grants::{FamilyAccess, RefreshToken, Spend};
pub use revocations::POLL_INTERVAL as REVOCATIONS_POLL_INTERVAL;
pub use users::{StoredUser, ThrottleRecord, User};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database the URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: one replica.
    Sqlite,
    /// PostgreSQL (or anything speaking its protocol): any number of replicas.
    Postgres,
}

impl Backend {
    /// The migrations of this backend's schema. [`Db::connect`] runs them all; a test of an upgrade
    /// runs them up to a version (`run_to`), writes rows of that version and then connects.
    pub fn migrations(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The backend a database URL names, by its scheme.
    pub fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::Config(
                "--database-url must start with sqlite: or postgres:".to_owned(),
            ))
        }
    }
}

/// The database handle shared by every handler.
#[derive(Clone, Debug)]
pub struct Db {
    /// Reads (and every statement on PostgreSQL).
    pool: AnyPool,
    /// Writes. On SQLite, one connection: SQLite has one writer at a time, and a second connection
    /// that wants to write waits in SQLite's busy handler, which sleeps 1 ms, 2 ms, 5 ms ... up to
    /// 100 ms between tries. Writers queue for this pool instead, in order, without sleeping. On
    /// PostgreSQL it is the same pool as `pool`.
    writer: AnyPool,
    /// Revoked JWTs and client-wide marks, for introspection without a round trip.
    revocations: Arc<revocations::RevocationView>,
}

/// A signing key as stored: the private half sealed under the key-encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id, the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// Position in the sequence of keys; unique, so two replicas can't both add the next key.
    pub generation: i64,
    /// JWS algorithm name.
    pub alg: String,
    /// Nonce followed by the AES-256-GCM ciphertext of the PKCS#8 document.
    pub encrypted_private_key: Vec<u8>,
    /// The public JWK, as published.
    pub public_jwk: String,
    /// When the key starts signing.
    pub activates_at: i64,
    /// When the key leaves the JWKS: the last token it signed has expired by then.
    pub retire_after: Option<i64>,
    /// When the key was generated.
    pub created_at: i64,
}

/// An opaque access token's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpaqueToken {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Its subject.
    pub subject: String,
    /// Space-separated scopes.
    pub scope: String,
    /// JSON array of audiences.
    pub audience: String,
    /// JSON object of extra claims.
    pub claims: String,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry time.
    pub expires_at: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A statement with its arguments bound, to run on a pool or inside a transaction.
pub(crate) type Statement<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn insert_opaque_token(token: &OpaqueToken) -> Statement<'_> {
    sqlx::query(
        "INSERT INTO opaque_tokens (token_hash, client_id, subject, scope, audience, claims, issued_at, expires_at, revoked) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
    )
    .bind(&token.token_hash)
    .bind(&token.client_id)
    .bind(&token.subject)
    .bind(&token.scope)
    .bind(&token.audience)
    .bind(&token.claims)
    .bind(token.issued_at)
    .bind(token.expires_at)
}

/// Records a revoked JWT, stamped with its revocation's generation.
fn insert_jwt_revocation<'q>(
    jti: &'q str,
    client_id: &'q str,
    expires_at: i64,
    generation: i64,
) -> Statement<'q> {
    sqlx::query(
        "INSERT INTO jwt_revocations (jti, client_id, expires_at, generation) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(jti)
    .bind(client_id)
    .bind(expires_at)
    .bind(generation)
}

/// A SQLite pool whose connections use WAL, NORMAL synchronisation (a committed transaction survives
/// a crash of the process; WAL needs no fsync per commit) and a busy timeout.
async fn sqlite_pool(options: AnyPoolOptions, url: &str) -> Result<AnyPool> {
    let pool = options
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("PRAGMA busy_timeout = 5000")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

impl Db {
    /// Connects, configures the connection (WAL and a busy timeout on SQLite) and migrates.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .min_connections(0);
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let writer = sqlite_pool(options.clone().max_connections(1), url).await?;
                (sqlite_pool(options.max_connections(8), url).await?, writer)
            }
            Backend::Postgres => {
                let pool = options.max_connections(10).connect(url).await?;
                (pool.clone(), pool)
            }
        };
        backend.migrations().run(&writer).await?;
        let db = Self {
            pool,
            writer,
            revocations: Arc::default(),
        };
        db.sync_revocations().await?;
        Ok(db)
    }

    /// Closes every connection (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// A trivial query, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- clients ----

    /// Inserts or replaces a registration and bumps the generation other replicas poll, unless the
    /// registration in place may not be replaced by `doc`'s owner ([`ownership::may_replace`]): then
    /// nothing is written and the registration in place comes back.
    pub async fn upsert_client(
        &self,
        doc: &ClientRegistration,
        now: i64,
    ) -> Result<Option<ClientRegistration>> {
        let mut stored = doc.clone();
        let owner = stored.owner.take();
        let document = serde_json::to_string(&stored)?;
        let mut tx = self.writer.begin().await?;
        // First, so that the generation's row lock orders concurrent client writes on PostgreSQL and
        // the read below sees every write that committed before this one (SQLite has one writer).
        bump_clients_generation(&mut tx).await?;
        if let Some(current) = find_client(&mut tx, &doc.client_id).await?
            && !ownership::may_replace(&current, owner.as_ref())
        {
            return Ok(Some(current));
        }
        sqlx::query(
            "INSERT INTO clients (client_id, document, updated_at, owner_namespace, owner_name, owner_uid) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (client_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at, \
             owner_namespace = excluded.owner_namespace, owner_name = excluded.owner_name, \
             owner_uid = excluded.owner_uid",
        )
        .bind(&doc.client_id)
        .bind(document)
        .bind(now)
        .bind(owner.as_ref().map(|o| o.namespace.clone()))
        .bind(owner.as_ref().map(|o| o.name.clone()))
        .bind(owner.as_ref().map(|o| o.uid.clone()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Deletes a registration if `by` may ([`ownership::may_delete`]; `None`: anyone may); returns
    /// whether one was deleted.
    pub async fn delete_client(&self, client_id: &str, by: Option<ownership::Claimant<'_>>) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        // First, as in `upsert_client`; a transaction that deletes nothing rolls it back.
        bump_clients_generation(&mut tx).await?;
        match find_client(&mut tx, client_id).await? {
            Some(current) if ownership::may_delete(&current, by) => {}
            _ => return Ok(false),
        }
        sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One registration.
    pub async fn get_client(&self, client_id: &str) -> Result<Option<ClientRegistration>> {
        let mut conn = self.pool.acquire().await?;
        find_client(&mut conn, client_id).await
    }

    /// Up to `limit` registrations with a client_id after `after`, ordered by client_id.
    pub async fn list_clients(&self, after: Option<&str>, limit: i64) -> Result<Vec<ClientRegistration>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id > $1 ORDER BY client_id LIMIT $2"
        )))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_document).collect()
    }

    /// Every registration and the generation they were read at.
    pub async fn all_clients(&self) -> Result<(i64, Vec<ClientRegistration>)> {
        let mut tx = self.pool.begin().await?;
        let generation = clients_generation(&mut tx).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id"
        )))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let clients = rows.iter().map(client_document).collect::<Result<_>>()?;
        Ok((generation, clients))
    }

    /// The counter bumped on every client write.
    pub async fn clients_generation(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        clients_generation(&mut conn).await
    }

    // ---- signing keys ----

    /// Every stored signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, generation, alg, encrypted_private_key, public_jwk, activates_at, retire_after, created_at \
             FROM signing_keys ORDER BY generation",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    generation: r.try_get("generation")?,
                    alg: r.try_get("alg")?,
                    encrypted_private_key: r.try_get("encrypted_private_key")?,
                    public_jwk: r.try_get("public_jwk")?,
                    activates_at: r.try_get("activates_at")?,
                    retire_after: r.try_get("retire_after")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Adds a key unless another replica already took its generation; returns whether it was added.
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, generation, alg, encrypted_private_key, public_jwk, activates_at, retire_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(key.generation)
        .bind(&key.alg)
        .bind(key.encrypted_private_key.clone())
        .bind(&key.public_jwk)
        .bind(key.activates_at)
        .bind(key.retire_after)
        .bind(key.created_at)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(inserted > 0)
    }

    /// Records when a key that stopped signing leaves the JWKS.
    pub async fn set_key_retire_after(&self, kid: &str, retire_after: i64) -> Result<()> {
        sqlx::query("UPDATE signing_keys SET retire_after = $1 WHERE kid = $2 AND retire_after IS NULL")
            .bind(retire_after)
            .bind(kid)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Deletes a retired key.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // ---- tokens ----

    /// Stores a new opaque token.
    pub async fn insert_opaque_token(&self, token: &OpaqueToken) -> Result<()> {
        insert_opaque_token(token).execute(&self.writer).await?;
        Ok(())
    }

    /// An opaque token by the hash of its value.
    pub async fn find_opaque_token(&self, token_hash: &str) -> Result<Option<OpaqueToken>> {
        let row = sqlx::query(
            "SELECT token_hash, client_id, subject, scope, audience, claims, issued_at, expires_at, revoked \
             FROM opaque_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(OpaqueToken {
                token_hash: r.try_get("token_hash")?,
                client_id: r.try_get("client_id")?,
                subject: r.try_get("subject")?,
                scope: r.try_get("scope")?,
                audience: r.try_get("audience")?,
                claims: r.try_get("claims")?,
                issued_at: r.try_get("issued_at")?,
                expires_at: r.try_get("expires_at")?,
                revoked: r.try_get::<i64, _>("revoked")? != 0,
            })
        })
        .transpose()
    }

    /// Marks an opaque token revoked.
    pub async fn revoke_opaque_token(&self, token_hash: &str) -> Result<()> {
        sqlx::query("UPDATE opaque_tokens SET revoked = 1 WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records a revoked JWT until it expires.
    pub async fn revoke_jwt(&self, jti: &str, client_id: &str, expires_at: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let generation = revocations::next_generation(&mut tx).await?;
        insert_jwt_revocation(jti, client_id, expires_at, generation)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.revocations.insert_jti(jti.to_owned(), expires_at);
        Ok(())
    }

    /// Revokes everything issued to a client up to `now`: opaque access tokens and refresh tokens are
    /// marked, and a mark makes every JWT issued at or before `now` inactive. Returns how many opaque
    /// access tokens and how many refresh tokens were revoked.
    pub async fn revoke_client_tokens(&self, client_id: &str, now: i64) -> Result<(u64, u64)> {
        let mut tx = self.writer.begin().await?;
        let revoked =
            sqlx::query("UPDATE opaque_tokens SET revoked = 1 WHERE client_id = $1 AND revoked = 0")
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let refresh =
            sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE client_id = $1 AND revoked = 0")
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let generation = revocations::next_generation(&mut tx).await?;
        sqlx::query(
            "INSERT INTO client_revocations (client_id, revoked_before, generation) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id) DO UPDATE SET revoked_before = excluded.revoked_before, \
             generation = excluded.generation",
        )
        .bind(client_id)
        .bind(now)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.revocations.insert_mark(client_id.to_owned(), now);
        Ok((revoked, refresh))
    }

    /// Whether a token issued to `client_id` at `issued_at` is revoked, by a revocation of everything
    /// the client holds or (for a JWT, by its `jti`) of the token itself. This is on the path of every
    /// introspection: the revocation view answers from memory while it is fresh, and otherwise one
    /// round trip does.
    pub async fn is_token_revoked(&self, client_id: &str, issued_at: i64, jti: Option<&str>) -> Result<bool> {
        if let Some(revoked) = self
            .revocations
            .revoked(client_id, issued_at, jti, Instant::now())
        {
            return Ok(revoked);
        }
        let rows = sqlx::query(
            "SELECT revoked_before AS mark FROM client_revocations WHERE client_id = $1 \
             UNION ALL SELECT NULL AS mark FROM jwt_revocations WHERE jti = $2",
        )
        .bind(client_id)
        .bind(jti.unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            match row.try_get::<Option<i64>, _>("mark")? {
                // A revocation of every token the client was issued up to `before`.
                Some(before) if issued_at <= before => return Ok(true),
                Some(_) => {}
                // The JWT itself.
                None => return Ok(true),
            }
        }
        Ok(false)
    }

    /// Deletes expired token records; they are inactive anyway.
    pub async fn purge_expired(&self, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM opaque_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM jwt_revocations WHERE expires_at < $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        self.revocations.prune(now);
        Ok(())
    }
}

async fn bump_clients_generation(conn: &mut sqlx::AnyConnection) -> Result<()> {
    sqlx::query("UPDATE meta SET value = value + 1 WHERE name = 'clients_generation'")
        .execute(conn)
        .await?;
    Ok(())
}

async fn clients_generation(conn: &mut sqlx::AnyConnection) -> Result<i64> {
    let row = sqlx::query("SELECT value FROM meta WHERE name = 'clients_generation'")
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("value")?)
}

/// The columns [`client_document`] reads.
const CLIENT_COLUMNS: &str = "document, owner_namespace, owner_name, owner_uid";

async fn find_client(conn: &mut sqlx::AnyConnection, client_id: &str) -> Result<Option<ClientRegistration>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
    )))
    .bind(client_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| client_document(&r)).transpose()
}

/// A stored registration: the document, with the owner from its columns.
fn client_document(row: &AnyRow) -> Result<ClientRegistration> {
    let text: String = row.try_get("document")?;
    let mut doc: ClientRegistration =
        serde_json::from_str(&text).map_err(|source| Error::StoredDocument {
            what: "client registration".to_owned(),
            source,
        })?;
    let namespace: Option<String> = row.try_get("owner_namespace")?;
    let name: Option<String> = row.try_get("owner_name")?;
    let uid: Option<String> = row.try_get("owner_uid")?;
    doc.owner = match (namespace, name, uid) {
        (Some(namespace), Some(name), Some(uid)) => Some(ClientOwner { namespace, name, uid }),
        _ => None,
    };
    Ok(doc)
}
