//! Throttling of password guessing ([RFC 6749 §4.3.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.3.2),
//! RFC 9700 §4.1's "rate limits on credential guessing"). Failures are counted per user and per client
//! in a fixed window; too many lock the key for a while. An unknown username is counted like a known
//! one, so a lockout tells nothing about who exists. The rule is pure ([`after_failure`],
//! [`is_locked`]); [`check`] and [`fail`] do the storage around it.

pub use crate::store::ThrottleRecord as Record;
use crate::{AppState, Result};

/// How many failures within how long lock a key, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Failures within the window that lock the key.
    pub max_failures: i64,
    /// The counting window, in seconds.
    pub window: i64,
    /// How long a lockout lasts, in seconds.
    pub lockout: i64,
}

/// Per user: five wrong passwords in 15 minutes lock the account's password sign-in for 15 minutes.
pub const PER_USER: Limit = Limit {
    max_failures: 5,
    window: 900,
    lockout: 900,
};

/// Per client: a client serves many users, so it gets more room before it is locked.
pub const PER_CLIENT: Limit = Limit {
    max_failures: 20,
    window: 900,
    lockout: 900,
};

/// Whether the key is locked at `now`.
pub fn is_locked(record: Option<&Record>, now: i64) -> bool {
    record.is_some_and(|r| now < r.locked_until)
}

/// The counter after one more failure at `now`. Reaching the limit locks the key and starts a new
/// window.
pub fn after_failure(record: Option<Record>, limit: Limit, now: i64) -> Record {
    let (failures, window_start, locked_until) = match record {
        Some(r) if now - r.window_start < limit.window => (r.failures + 1, r.window_start, r.locked_until),
        Some(r) => (1, now, r.locked_until),
        None => (1, now, 0),
    };
    if failures >= limit.max_failures {
        Record {
            failures: 0,
            window_start: now,
            locked_until: now + limit.lockout,
        }
    } else {
        Record {
            failures,
            window_start,
            locked_until,
        }
    }
}

/// The storage key of a user's counter.
pub fn user_key(username: &str) -> String {
    format!("user:{username}")
}

/// The storage key of a client's counter.
pub fn client_key(client_id: &str) -> String {
    format!("client:{client_id}")
}

/// Whether any of the keys is locked at `now`.
pub async fn check(state: &AppState, keys: &[&str], now: i64) -> Result<bool> {
    for key in keys {
        if is_locked(state.db.throttle_record(key).await?.as_ref(), now) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Counts a failure against a key. The counter is read, advanced by [`after_failure`] and written
/// back only if nobody changed it meanwhile; on a conflict the step is redone, so concurrent failures
/// (on one replica or several) are all counted.
pub async fn fail(state: &AppState, key: &str, limit: Limit, now: i64) -> Result<()> {
    const ATTEMPTS: usize = 32;
    for _ in 0..ATTEMPTS {
        let record = state.db.throttle_record(key).await?;
        let next = after_failure(record, limit, now);
        if state.db.swap_throttle_record(key, record.as_ref(), &next).await? {
            if next.locked_until > now && !is_locked(record.as_ref(), now) {
                tracing::warn!(key, "too many failed sign-ins; locked");
            }
            return Ok(());
        }
    }
    // Only a storm of failures on one key gets here, and that key is being counted by the others.
    tracing::warn!(key, "a failed sign-in was not counted: its counter kept changing");
    Ok(())
}

/// The outcome of a throttled sign-in.
#[derive(Debug)]
pub enum SignIn {
    /// The user or the client is locked out; the password was not checked.
    Locked,
    /// Unknown user, wrong password or disabled user; counted against the user and the client.
    Refused,
    /// The password is right; the user's failure counter is cleared.
    User(crate::users::User),
}

/// A password sign-in through `client_id`, as the password grant and the login page do it: refused
/// while either counter is locked, counted on failure, cleared for the user on success.
pub async fn sign_in(
    state: &AppState,
    client_id: &str,
    username: &str,
    password: &str,
    now: i64,
) -> Result<SignIn> {
    let user_key = user_key(username);
    let client_key = client_key(client_id);
    if check(state, &[&user_key, &client_key], now).await? {
        return Ok(SignIn::Locked);
    }
    let Some(user) = crate::users::authenticate(state, username, password).await? else {
        fail(state, &user_key, PER_USER, now).await?;
        fail(state, &client_key, PER_CLIENT, now).await?;
        return Ok(SignIn::Refused);
    };
    state.db.clear_throttle_record(&user_key).await?;
    Ok(SignIn::User(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        max_failures: 3,
        window: 100,
        lockout: 50,
    };

    #[test]
    fn the_limit_of_failures_in_a_window_locks_the_key_for_the_lockout() {
        let mut record = None;
        for _ in 0..2 {
            record = Some(after_failure(record, LIMIT, 1_000));
            assert!(!is_locked(record.as_ref(), 1_000));
        }
        let locked = after_failure(record, LIMIT, 1_010);
        assert!(is_locked(Some(&locked), 1_010));
        assert!(is_locked(Some(&locked), 1_059));
        assert!(!is_locked(Some(&locked), 1_060));
    }

    #[test]
    fn failures_spread_beyond_the_window_never_lock() {
        let mut record = None;
        for i in 0..10 {
            record = Some(after_failure(record, LIMIT, 1_000 + i * 60));
            assert!(!is_locked(record.as_ref(), 1_000 + i * 60), "attempt {i}");
        }
    }

    #[test]
    fn a_failure_during_a_lockout_keeps_it() {
        let locked = Record {
            failures: 0,
            window_start: 1_000,
            locked_until: 1_050,
        };
        let next = after_failure(Some(locked), LIMIT, 1_010);
        assert!(is_locked(Some(&next), 1_040));
    }
}
