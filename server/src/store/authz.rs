//! Storage of the interactive flow: sign-in sessions, remembered consent, authorization codes.

use sqlx::Row;

use super::Db;
use crate::Result;

/// A sign-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub username: String,
    /// When they signed in.
    pub auth_time: i64,
}

/// An authorization code's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// Hex SHA-256 of the code.
    pub code_hash: String,
    /// The family its exchange starts.
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect_uri of the request.
    pub redirect_uri: String,
    /// The user.
    pub username: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The PKCE challenge.
    pub code_challenge: Option<String>,
    /// Its method.
    pub code_challenge_method: Option<String>,
    /// When the user signed in.
    pub auth_time: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Whether it was exchanged.
    pub used: bool,
    /// The OpenID Connect nonce.
    pub nonce: Option<String>,
}

impl Db {
    /// Stores a session.
    pub async fn insert_session(&self, session_hash: &str, session: &Session, expires_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (session_hash, username, auth_time, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(session_hash)
        .bind(&session.username)
        .bind(session.auth_time)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A live session by the hash of its cookie.
    pub async fn find_session(&self, session_hash: &str, now: i64) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT username, auth_time FROM sessions WHERE session_hash = $1 AND expires_at > $2",
        )
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Session {
                username: r.try_get("username")?,
                auth_time: r.try_get("auth_time")?,
            })
        })
        .transpose()
    }

    /// Remembers consent to scopes.
    pub async fn insert_consent(
        &self,
        username: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<()> {
        for scope in scopes {
            sqlx::query(
                "INSERT INTO consents (username, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (username, client_id, scope) DO NOTHING",
            )
            .bind(username)
            .bind(client_id)
            .bind(scope)
            .bind(now)
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    /// The scopes a user consented to for a client.
    pub async fn consented_scopes(&self, username: &str, client_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT scope FROM consents WHERE username = $1 AND client_id = $2")
            .bind(username)
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("scope")?))
            .collect()
    }

    /// Stores a code.
    pub async fn insert_code(&self, c: &AuthorizationCode) -> Result<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, family_id, client_id, redirect_uri, username, scope, \
             code_challenge, code_challenge_method, auth_time, expires_at, used, nonce) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)",
        )
        .bind(&c.code_hash)
        .bind(&c.family_id)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.username)
        .bind(&c.scope)
        .bind(c.code_challenge.as_deref())
        .bind(c.code_challenge_method.as_deref())
        .bind(c.auth_time)
        .bind(c.expires_at)
        .bind(c.nonce.as_deref())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A code by hash.
    pub async fn find_code(&self, code_hash: &str) -> Result<Option<AuthorizationCode>> {
        let row = sqlx::query(
            "SELECT code_hash, family_id, client_id, redirect_uri, username, scope, code_challenge, \
             code_challenge_method, auth_time, expires_at, used, nonce FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AuthorizationCode {
                code_hash: r.try_get("code_hash")?,
                family_id: r.try_get("family_id")?,
                client_id: r.try_get("client_id")?,
                redirect_uri: r.try_get("redirect_uri")?,
                username: r.try_get("username")?,
                scope: r.try_get("scope")?,
                code_challenge: r.try_get("code_challenge")?,
                code_challenge_method: r.try_get("code_challenge_method")?,
                auth_time: r.try_get("auth_time")?,
                expires_at: r.try_get("expires_at")?,
                used: r.try_get::<i64, _>("used")? != 0,
                nonce: r.try_get("nonce")?,
            })
        })
        .transpose()
    }
}
