//! Users: the people who sign in on the login page and with the password grant. Passwords are hashed
//! with argon2id at OWASP's minimum cost (19 MiB, two passes, one lane) and never stored, logged or
//! returned. Users come from the admin API ([`crate::http::admin::users`]) or from a file written by hand
//! (`--users-file`, see [`UsersFile`]).

use std::path::Path;

use argon2::password_hash::PasswordHash;
use serde::Deserialize;

pub mod subject;
pub mod throttle;

pub use crate::password::{
    ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM, Hasher, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN,
    hash_password, verify_password,
};

pub use crate::store::User;
use crate::{AppState, Error, Result};

/// Checks a sign-in off the async threads. Returns the user when the password is right and the user
/// is enabled; an unknown user costs one hash verification all the same.
pub async fn authenticate(state: &AppState, username: &str, password: &str) -> Result<Option<User>> {
    let stored = state.db.find_user(username).await?;
    let phc = match &stored {
        Some(s) => Some(s.password_hash.clone()),
        None => state.hasher.decoy().map(str::to_owned),
    };
    let password = password.to_owned();
    let matches = state
        .hasher
        .run(move || phc.is_some_and(|phc| verify_password(&phc, &password)))
        .await
        .unwrap_or(false);
    Ok(stored.filter(|s| matches && !s.user.disabled).map(|s| s.user))
}

/// Checks a username: 1 to 128 printable characters, no spaces or colons.
pub fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.len() > 128 {
        return Err("username: must be 1 to 128 characters".to_owned());
    }
    if !username
        .chars()
        .all(|c| !c.is_control() && !c.is_whitespace() && c != ':')
    {
        return Err("username: may not contain spaces, control characters or colons".to_owned());
    }
    Ok(())
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        return Err(format!(
            "password: must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

/// Revokes every refresh-token family of a user, by subject (and the access tokens issued within
/// them).
pub async fn revoke_user_grants(state: &AppState, subject: &str) -> Result<usize> {
    let now = state.clock.now();
    let families = state.db.user_families(subject).await?;
    for family in &families {
        state.db.revoke_family(family, now).await?;
    }
    Ok(families.len())
}

/// The `--users-file` format, meant to be written by hand and kept in a Secret:
///
/// ```yaml
/// users:
///   - username: alice
///     password: correct horse battery staple   # or passwordHash: $argon2id$v=19$...
///     name: Alice Example
///     email: alice@example.com
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// The users.
    pub users: Vec<UserEntry>,
}

/// One user of a [`UsersFile`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserEntry {
    /// The name signed in with.
    pub username: String,
    /// The password in plain text.
    #[serde(default)]
    pub password: Option<String>,
    /// An argon2id PHC string, instead of `password`.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the user is disabled.
    #[serde(default)]
    pub disabled: bool,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Parses and checks a users file. Errors name the entry, never a password.
pub fn parse_users_file(text: &str) -> Result<UsersFile, String> {
    let file: UsersFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    for (i, entry) in file.users.iter().enumerate() {
        check_username(&entry.username).map_err(|e| format!("users[{i}].{e}"))?;
        if !seen.insert(entry.username.as_str()) {
            return Err(format!("users[{i}].username: {} appears twice", entry.username));
        }
        match (&entry.password, &entry.password_hash) {
            (Some(password), None) => check_password(password).map_err(|e| format!("users[{i}].{e}"))?,
            (None, Some(phc)) => {
                let ok = PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str() == "argon2id");
                if !ok {
                    return Err(format!("users[{i}].passwordHash: not an argon2id PHC string"));
                }
            }
            _ => {
                return Err(format!(
                    "users[{i}]: set exactly one of password and passwordHash"
                ));
            }
        }
    }
    Ok(file)
}

/// Creates or updates the users of a users file: a new user is added; an existing one gets the file's
/// password (when it no longer verifies), profile and disabled flag. Users not in the file are left
/// alone.
pub async fn seed_file(state: &AppState, path: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let file = parse_users_file(&text).map_err(|message| Error::Manifest {
        path: path.to_owned(),
        message,
    })?;
    let now = state.clock.now();
    for entry in &file.users {
        let existing = state.db.find_user(&entry.username).await?;
        let current = existing.as_ref().map(|s| s.password_hash.as_str());
        let new_hash = match (&entry.password, &entry.password_hash) {
            (_, Some(phc)) if current != Some(phc.as_str()) => Some(phc.clone()),
            (Some(password), _) if !current.is_some_and(|c| verify_password(c, password)) => {
                Some(hash_password(password)?)
            }
            _ => None,
        };
        match existing {
            None => {
                let user = User {
                    username: entry.username.clone(),
                    subject: subject::new(),
                    name: entry.name.clone(),
                    email: entry.email.clone(),
                    disabled: entry.disabled,
                    created_at: now,
                    updated_at: now,
                };
                let hash = match new_hash {
                    Some(hash) => hash,
                    None => return Err(Error::Crypto("no password for a new user")),
                };
                state.db.insert_user(&user, &hash).await?;
            }
            Some(stored) => {
                if let Some(hash) = new_hash {
                    state.db.set_user_password(&entry.username, &hash, now).await?;
                    revoke_user_grants(state, &stored.user.subject).await?;
                }
                if stored.user.name != entry.name || stored.user.email != entry.email {
                    state
                        .db
                        .set_user_profile(
                            &entry.username,
                            entry.name.as_deref(),
                            entry.email.as_deref(),
                            now,
                        )
                        .await?;
                }
                if stored.user.disabled != entry.disabled {
                    state
                        .db
                        .set_user_disabled(&entry.username, entry.disabled, now)
                        .await?;
                    if entry.disabled {
                        revoke_user_grants(state, &stored.user.subject).await?;
                    }
                }
            }
        }
    }
    Ok(file.users.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_the_owasp_minimum_and_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsE"));
        assert_ne!(phc, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn a_malformed_hash_verifies_nothing() {
        assert!(!verify_password("not a hash", ""));
    }

    #[test]
    fn a_users_file_takes_a_password_or_a_hash() {
        let phc = hash_password("another secret").unwrap();
        let text = format!(
            "users:\n  - username: alice\n    password: wonderland1\n    email: alice@example.com\n  - username: bob\n    passwordHash: '{phc}'\n"
        );
        let file = parse_users_file(&text).unwrap();
        assert_eq!(file.users.len(), 2);
        assert_eq!(file.users[0].email.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn a_users_file_error_names_the_entry_and_not_the_password() {
        let error = parse_users_file("users:\n  - username: alice\n    password: short\n").unwrap_err();
        assert_eq!(error, "users[0].password: must be 8 to 1024 characters");
        let error = parse_users_file("users:\n  - username: alice\n").unwrap_err();
        assert_eq!(error, "users[0]: set exactly one of password and passwordHash");
        let error =
            parse_users_file("users:\n  - username: a\n    passwordHash: '$2b$10$abc'\n").unwrap_err();
        assert_eq!(error, "users[0].passwordHash: not an argon2id PHC string");
    }

    #[test]
    fn usernames_may_not_hold_spaces_or_colons() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("a b").is_err());
        assert!(check_username("a:b").is_err());
        assert!(check_username("").is_err());
    }
}
