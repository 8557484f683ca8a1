//! Storage of the interactive flow: sign-in sessions, remembered consent, authorization codes.

use sqlx::Row;

use super::Db;
use crate::Result;

/// A sign-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user's subject.
    pub subject: String,
    /// The user's name, for the consent page (not stored with the session: read from the user).
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
    /// The user's subject.
    pub subject: String,
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
            "INSERT INTO sessions (session_hash, subject, auth_time, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(session_hash)
        .bind(&session.subject)
        .bind(session.auth_time)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A live session of an enabled user, by the hash of its cookie.
    pub async fn find_session(&self, session_hash: &str, now: i64) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.subject, u.username, s.auth_time FROM sessions s JOIN users u ON u.subject = s.subject \
             WHERE s.session_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
        )
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Session {
                subject: r.try_get("subject")?,
                username: r.try_get("username")?,
                auth_time: r.try_get("auth_time")?,
            })
        })
        .transpose()
    }

    /// Remembers a user's consent to scopes.
    pub async fn insert_consent(
        &self,
        subject: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<()> {
        for scope in scopes {
            sqlx::query(
                "INSERT INTO consents (subject, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (subject, client_id, scope) DO NOTHING",
            )
            .bind(subject)
            .bind(client_id)
            .bind(scope)
            .bind(now)
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    /// The scopes a user (by subject) consented to for a client.
    pub async fn consented_scopes(&self, subject: &str, client_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT scope FROM consents WHERE subject = $1 AND client_id = $2")
            .bind(subject)
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
            "INSERT INTO authorization_codes (code_hash, family_id, client_id, redirect_uri, subject, scope, \
             code_challenge, code_challenge_method, auth_time, expires_at, used, nonce) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)",
        )
        .bind(&c.code_hash)
        .bind(&c.family_id)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.subject)
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
            "SELECT code_hash, family_id, client_id, redirect_uri, subject, scope, code_challenge, \
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
                subject: r.try_get("subject")?,
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
