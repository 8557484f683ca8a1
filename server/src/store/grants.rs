//! Storage of what a person's grant leaves behind: refresh tokens and their families, and the access
//! tokens issued within a family so that revoking the family reaches them too.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, OpaqueToken, Statement, insert_jwt_revocation, revocations};
use crate::Result;

/// An access token issued within a family: remembered so that revoking the family reaches it, and,
/// when it is opaque, the token's own record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyAccess {
    /// The token's `jti`.
    pub jti: String,
    /// The family.
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The record of an opaque token; `None` for a JWT.
    pub opaque: Option<OpaqueToken>,
    /// Its expiry.
    pub expires_at: i64,
}

/// What a grant spends before its new tokens are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend<'a> {
    /// Nothing: a new grant from a password, or from a session (implicit).
    Nothing,
    /// An authorization code, by the hash of its value.
    Code(&'a str),
    /// A refresh token, by the hash of its value.
    RefreshToken(&'a str),
}

fn insert_refresh_token(t: &RefreshToken) -> Statement<'_> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, subject, scope, auth_time, issued_at, \
         expires_at, used, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&t.token_hash)
    .bind(&t.family_id)
    .bind(&t.client_id)
    .bind(&t.subject)
    .bind(&t.scope)
    .bind(t.auth_time)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .bind(i64::from(t.used))
    .bind(i64::from(t.revoked))
}

fn record_family_access(a: &FamilyAccess) -> Statement<'_> {
    sqlx::query(
        "INSERT INTO family_access_tokens (jti, family_id, client_id, opaque_hash, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&a.jti)
    .bind(&a.family_id)
    .bind(&a.client_id)
    .bind(a.opaque.as_ref().map(|o| o.token_hash.as_str()))
    .bind(a.expires_at)
}

fn spend(spend: Spend<'_>) -> Option<Statement<'_>> {
    match spend {
        Spend::Nothing => None,
        Spend::Code(hash) => Some(
            sqlx::query("UPDATE authorization_codes SET used = 1 WHERE code_hash = $1 AND used = 0")
                .bind(hash),
        ),
        Spend::RefreshToken(hash) => Some(
            sqlx::query(
                "UPDATE refresh_tokens SET used = 1 WHERE token_hash = $1 AND used = 0 AND revoked = 0",
            )
            .bind(hash),
        ),
    }
}

/// A refresh token's record. Only the SHA-256 of the token is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The family: every token descended from one grant.
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user's subject.
    pub subject: String,
    /// Space-separated scopes of the original grant.
    pub scope: String,
    /// When the user signed in.
    pub auth_time: i64,
    /// Issue time.
    pub issued_at: i64,
    /// The family's absolute end.
    pub expires_at: i64,
    /// Whether it was exchanged already.
    pub used: bool,
    /// Whether it was revoked.
    pub revoked: bool,
}

fn refresh_token(r: &AnyRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: r.try_get("token_hash")?,
        family_id: r.try_get("family_id")?,
        client_id: r.try_get("client_id")?,
        subject: r.try_get("subject")?,
        scope: r.try_get("scope")?,
        auth_time: r.try_get("auth_time")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        used: r.try_get::<i64, _>("used")? != 0,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
    })
}

impl Db {
    /// Spends a code or refresh token and stores nothing else; `false` when it was spent or revoked
    /// already.
    pub async fn spend(&self, spend: Spend<'_>) -> Result<bool> {
        match self::spend(spend) {
            Some(statement) => Ok(statement.execute(&self.writer).await?.rows_affected() > 0),
            None => Ok(true),
        }
    }

    /// Spends `spend` and stores a grant's new tokens, in one transaction: a crash between the two
    /// can neither spend a refresh token without storing its successor nor leave both usable, and
    /// PostgreSQL syncs one commit instead of three. Returns `false`, and stores nothing, when the
    /// code or refresh token was spent or revoked already (a concurrent exchange won).
    pub async fn store_grant(
        &self,
        spend: Spend<'_>,
        access: &FamilyAccess,
        refresh: Option<&RefreshToken>,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        if let Some(statement) = self::spend(spend)
            && statement.execute(&mut *tx).await?.rows_affected() == 0
        {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(opaque) = &access.opaque {
            super::insert_opaque_token(opaque).execute(&mut *tx).await?;
        }
        record_family_access(access).execute(&mut *tx).await?;
        if let Some(refresh) = refresh {
            insert_refresh_token(refresh).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A refresh token by the hash of its value.
    pub async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        let row = sqlx::query(
            "SELECT token_hash, family_id, client_id, subject, scope, auth_time, issued_at, expires_at, used, revoked \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refresh_token).transpose()
    }

    /// Revokes a whole family: its refresh tokens, and the access tokens issued within it (a JWT by
    /// its `jti`, an opaque token by its record).
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT jti, client_id, opaque_hash, expires_at FROM family_access_tokens \
             WHERE family_id = $1 AND expires_at > $2",
        )
        .bind(family_id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        // One revocation: a family revoked with no JWT in it only makes the other replicas' next poll
        // read nothing new.
        let generation = revocations::next_generation(&mut tx).await?;
        let mut revoked_jwts = Vec::new();
        for row in &rows {
            let opaque_hash: Option<String> = row.try_get("opaque_hash")?;
            if let Some(hash) = opaque_hash {
                sqlx::query("UPDATE opaque_tokens SET revoked = 1 WHERE token_hash = $1")
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            } else {
                let jti: String = row.try_get("jti")?;
                let expires_at: i64 = row.try_get("expires_at")?;
                let client_id: String = row.try_get("client_id")?;
                insert_jwt_revocation(&jti, &client_id, expires_at, generation)
                    .execute(&mut *tx)
                    .await?;
                revoked_jwts.push((jti, expires_at));
            }
        }
        tx.commit().await?;
        for (jti, expires_at) in revoked_jwts {
            self.revocations.insert_jti(jti, expires_at);
        }
        Ok(())
    }

    /// The families holding a live refresh token of a user, for revoking them when the user is
    /// disabled, deleted or given a new password.
    pub async fn user_families(&self, subject: &str) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT DISTINCT family_id FROM refresh_tokens WHERE subject = $1 AND revoked = 0")
                .bind(subject)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("family_id")?))
            .collect()
    }

    /// Deletes what can no longer be used: refresh-token and family records whose absolute lifetime
    /// ended, expired sign-in sessions, authorization codes an hour past their expiry (until then a
    /// replayed code is still recognised as a replay), and failure counters a day past their window
    /// and lockout.
    pub async fn purge_expired_grants(&self, now: i64) -> Result<()> {
        const CODE_REPLAY_MEMORY: i64 = 3600;
        const THROTTLE_MEMORY: i64 = 24 * 3600;
        for (sql, before) in [
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            ("DELETE FROM family_access_tokens WHERE expires_at < $1", now),
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            (
                "DELETE FROM authorization_codes WHERE expires_at < $1",
                now - CODE_REPLAY_MEMORY,
            ),
            (
                "DELETE FROM login_throttle WHERE locked_until < $1 AND window_start < $1",
                now - THROTTLE_MEMORY,
            ),
        ] {
            sqlx::query(sql).bind(before).execute(&self.writer).await?;
        }
        Ok(())
    }
}
