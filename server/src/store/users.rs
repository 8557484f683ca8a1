//! Storage of users and of the failed sign-in counters that throttle password guessing.

use sqlx::Row;
use sqlx::any::AnyRow;

use serde::Serialize;

use super::Db;
use crate::Result;

/// A user as the admin API shows it: never the password or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The name signed in with.
    pub username: String,
    /// The `sub` of the user's tokens ([`crate::users::subject`]): given when the user is created,
    /// never changed. Read-only in the admin API.
    pub subject: String,
    /// Display name, the OIDC `name` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The OIDC `email` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A disabled user can't sign in, and their refresh tokens were revoked.
    pub disabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// The failed sign-in counter of one throttle key (see [`crate::users::throttle`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThrottleRecord {
    /// Failures in the current window.
    pub failures: i64,
    /// When the current window started.
    pub window_start: i64,
    /// Until when the key is locked (0 or past: not locked).
    pub locked_until: i64,
}

/// The name the throttle uses.
type Record = ThrottleRecord;

/// A user as stored, with the password hash that never leaves the server.
#[derive(Clone)]
pub struct StoredUser {
    /// The public part.
    pub user: User,
    /// The argon2id PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

fn stored_user(row: &AnyRow) -> Result<StoredUser> {
    Ok(StoredUser {
        user: User {
            username: row.try_get("username")?,
            subject: row.try_get("subject")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        password_hash: row.try_get("password_hash")?,
    })
}

/// The columns that name one user.
#[derive(Clone, Copy)]
enum UniqueColumn {
    Username,
    Subject,
}

const USER_COLUMNS: &str = "username, subject, password_hash, name, email, disabled, created_at, updated_at";

impl Db {
    /// Adds a user; returns `false` when the username is taken.
    pub async fn insert_user(&self, user: &User, password_hash: &str) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO users (username, subject, password_hash, name, email, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username) DO NOTHING",
        )
        .bind(&user.username)
        .bind(&user.subject)
        .bind(password_hash)
        .bind(user.name.as_deref())
        .bind(user.email.as_deref())
        .bind(i64::from(user.disabled))
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(inserted > 0)
    }

    /// A user by name.
    pub async fn find_user(&self, username: &str) -> Result<Option<StoredUser>> {
        self.find_user_by(UniqueColumn::Username, username).await
    }

    /// A user by subject.
    pub async fn find_user_by_subject(&self, subject: &str) -> Result<Option<StoredUser>> {
        self.find_user_by(UniqueColumn::Subject, subject).await
    }

    async fn find_user_by(&self, column: UniqueColumn, value: &str) -> Result<Option<StoredUser>> {
        let column = match column {
            UniqueColumn::Username => "username",
            UniqueColumn::Subject => "subject",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {column} = $1"
        )))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_user).transpose()
    }

    /// Every user, ordered by name.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| stored_user(r).map(|s| s.user)).collect()
    }

    /// Replaces a user's password hash; returns whether the user exists.
    pub async fn set_user_password(&self, username: &str, password_hash: &str, now: i64) -> Result<bool> {
        let updated = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE username = $3")
            .bind(password_hash)
            .bind(now)
            .bind(username)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    /// Sets a user's profile claims; returns whether the user exists.
    pub async fn set_user_profile(
        &self,
        username: &str,
        name: Option<&str>,
        email: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let updated =
            sqlx::query("UPDATE users SET name = $1, email = $2, updated_at = $3 WHERE username = $4")
                .bind(name)
                .bind(email)
                .bind(now)
                .bind(username)
                .execute(&self.writer)
                .await?
                .rows_affected();
        Ok(updated > 0)
    }

    /// Disables or enables a user; returns whether the user exists.
    pub async fn set_user_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<bool> {
        let updated = sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE username = $3")
            .bind(i64::from(disabled))
            .bind(now)
            .bind(username)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    /// Deletes a user; returns the subject of the user it deleted, if one existed.
    pub async fn delete_user(&self, username: &str) -> Result<Option<String>> {
        let row = sqlx::query("DELETE FROM users WHERE username = $1 RETURNING subject")
            .bind(username)
            .fetch_optional(&self.writer)
            .await?;
        row.map(|r| Ok(r.try_get("subject")?)).transpose()
    }

    // ---- throttling ----

    /// The failure counter under `key`.
    pub async fn throttle_record(&self, key: &str) -> Result<Option<Record>> {
        let row = sqlx::query(
            "SELECT failures, window_start, locked_until FROM login_throttle WHERE throttle_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Record {
                failures: r.try_get("failures")?,
                window_start: r.try_get("window_start")?,
                locked_until: r.try_get("locked_until")?,
            })
        })
        .transpose()
    }

    /// Replaces the failure counter under `key` with `next`, but only if it still holds `seen` (`None`:
    /// no counter yet). Returns whether it did: a compare-and-swap, so two replicas counting failures
    /// for the same key at once never lose one.
    pub async fn swap_throttle_record(
        &self,
        key: &str,
        seen: Option<&Record>,
        next: &Record,
    ) -> Result<bool> {
        let sql = if seen.is_some() {
            "UPDATE login_throttle SET failures = $2, window_start = $3, locked_until = $4 \
             WHERE throttle_key = $1 AND failures = $5 AND window_start = $6 AND locked_until = $7"
        } else {
            "INSERT INTO login_throttle (throttle_key, failures, window_start, locked_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (throttle_key) DO NOTHING"
        };
        let mut query = sqlx::query(sql)
            .bind(key)
            .bind(next.failures)
            .bind(next.window_start)
            .bind(next.locked_until);
        if let Some(seen) = seen {
            query = query
                .bind(seen.failures)
                .bind(seen.window_start)
                .bind(seen.locked_until);
        }
        Ok(query.execute(&self.writer).await?.rows_affected() == 1)
    }

    /// Forgets the failure counter under `key`.
    pub async fn clear_throttle_record(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
