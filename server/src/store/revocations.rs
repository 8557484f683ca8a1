//! The revocation view: every revoked JWT and every client-wide revocation mark, in memory, so that
//! introspection can tell whether a token is revoked without a database round trip.
//!
//! - This replica's own revocations enter the view when they commit, so on one replica (and on
//!   SQLite, which has one) a revocation holds at once.
//! - Other replicas' revocations arrive through [`Db::sync_revocations`], which the server runs every
//!   [`POLL_INTERVAL`]. Each revoking transaction takes the next value of the `revocations_generation`
//!   counter and stamps its rows with it, so a sync reads only what the view has not seen. RFC 7009
//!   §2.2 allows for such a propagation delay between servers.
//! - If no sync has succeeded for [`FRESH_FOR`] (the database is unreachable, or nothing polls), the
//!   view declines to answer and [`Db::is_token_revoked`] asks the database. A revocation made on
//!   another replica is therefore never missed for longer than that.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sqlx::Row;

use super::Db;
use crate::Result;

/// How often the server reads other replicas' revocations.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long after its last successful sync the view is trusted.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Snapshot {
    /// The counter's value at the last sync; rows up to it are in the view.
    generation: i64,
    /// When the last successful sync started. `None`: never synced.
    synced_at: Option<Instant>,
    /// Revoked JWTs: jti to expiry.
    jtis: HashMap<String, i64>,
    /// Client-wide marks: client_id to the last issue time they revoke.
    marks: HashMap<String, i64>,
}

/// What one sync read.
pub(crate) struct Delta {
    /// The counter's value, read before the rows.
    pub generation: i64,
    /// Whether the rows are everything (the view is replaced) or only what is newer (merged).
    pub full: bool,
    pub jtis: Vec<(String, i64)>,
    pub marks: Vec<(String, i64)>,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct RevocationView {
    snapshot: RwLock<Snapshot>,
}

impl std::fmt::Debug for RevocationView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.read();
        f.debug_struct("RevocationView")
            .field("generation", &s.generation)
            .field("jtis", &s.jtis.len())
            .field("marks", &s.marks.len())
            .finish()
    }
}

impl RevocationView {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        crate::sync::read_lock(&self.snapshot)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        crate::sync::write_lock(&self.snapshot)
    }

    /// Whether a token issued to `client_id` at `issued_at` (a JWT with its `jti`) is revoked, as of
    /// `at`; `None` if the view is not fresh enough to say.
    pub fn revoked(&self, client_id: &str, issued_at: i64, jti: Option<&str>, at: Instant) -> Option<bool> {
        let s = self.read();
        let fresh = s
            .synced_at
            .is_some_and(|synced| at.saturating_duration_since(synced) < FRESH_FOR);
        if !fresh {
            return None;
        }
        let marked = s.marks.get(client_id).is_some_and(|before| issued_at <= *before);
        Some(marked || jti.is_some_and(|jti| s.jtis.contains_key(jti)))
    }

    /// The counter's value at the last sync; `None` before the first.
    pub fn seen(&self) -> Option<i64> {
        let s = self.read();
        s.synced_at.map(|_| s.generation)
    }

    /// A JWT revocation this replica committed.
    pub fn insert_jti(&self, jti: String, expires_at: i64) {
        self.write().jtis.insert(jti, expires_at);
    }

    /// A client-wide mark this replica committed.
    pub fn insert_mark(&self, client_id: String, revoked_before: i64) {
        self.write().marks.insert(client_id, revoked_before);
    }

    /// Takes in what a sync that started at `started` read.
    pub fn apply(&self, delta: Delta, started: Instant) {
        let mut s = self.write();
        if delta.full {
            s.jtis.clear();
            s.marks.clear();
            s.generation = delta.generation;
        } else {
            s.generation = s.generation.max(delta.generation);
        }
        s.jtis.extend(delta.jtis);
        s.marks.extend(delta.marks);
        s.synced_at = Some(s.synced_at.map_or(started, |at| at.max(started)));
    }

    /// Forgets JWT revocations whose token has expired by `now`: it is inactive anyway.
    pub fn prune(&self, now: i64) {
        self.write().jtis.retain(|_, expires_at| *expires_at >= now);
    }
}

/// Takes the next value of the revocation counter, inside the revoking transaction. On PostgreSQL
/// the row lock serialises revoking transactions, so they commit in the counter's order and a sync
/// that read value `g` sees every row stamped up to `g`.
pub(super) async fn next_generation(conn: &mut sqlx::AnyConnection) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE meta SET value = value + 1 WHERE name = 'revocations_generation' RETURNING value",
    )
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("value")?)
}

impl Db {
    /// Reads the revocations this replica's view has not seen: all of them on the first call (or if
    /// the counter went back, as after a restored backup), else the rows newer than the view.
    pub async fn sync_revocations(&self) -> Result<()> {
        let started = Instant::now();
        let row = sqlx::query("SELECT value FROM meta WHERE name = 'revocations_generation'")
            .fetch_one(&self.pool)
            .await?;
        let generation: i64 = row.try_get("value")?;
        let seen = self.revocations.seen();
        let full = seen.is_none_or(|seen| generation < seen);
        // Rows stamped after this; -1 reads them all (the counter starts at 0).
        let since = match seen {
            Some(seen) if !full => seen,
            _ => -1,
        };
        let mut delta = Delta {
            generation,
            full,
            jtis: Vec::new(),
            marks: Vec::new(),
        };
        if generation > since {
            let jtis = sqlx::query("SELECT jti, expires_at FROM jwt_revocations WHERE generation > $1")
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
            for row in &jtis {
                delta.jtis.push((row.try_get("jti")?, row.try_get("expires_at")?));
            }
            let marks =
                sqlx::query("SELECT client_id, revoked_before FROM client_revocations WHERE generation > $1")
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?;
            for row in &marks {
                delta
                    .marks
                    .push((row.try_get("client_id")?, row.try_get("revoked_before")?));
            }
        }
        self.revocations.apply(delta, started);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(jtis: &[(&str, i64)], marks: &[(&str, i64)], at: Instant) -> RevocationView {
        let view = RevocationView::default();
        view.apply(
            Delta {
                generation: 3,
                full: true,
                jtis: jtis.iter().map(|(j, e)| ((*j).to_owned(), *e)).collect(),
                marks: marks.iter().map(|(c, b)| ((*c).to_owned(), *b)).collect(),
            },
            at,
        );
        view
    }

    #[test]
    fn a_view_that_never_synced_declines_to_answer() {
        let view = RevocationView::default();
        view.insert_jti("j1".to_owned(), 100);
        assert_eq!(view.revoked("billing", 10, Some("j1"), Instant::now()), None);
    }

    #[test]
    fn a_fresh_view_knows_revoked_jtis_and_client_marks() {
        let now = Instant::now();
        let view = synced(&[("j1", 100)], &[("billing", 50)], now);
        assert_eq!(view.revoked("other", 10, Some("j1"), now), Some(true));
        assert_eq!(view.revoked("other", 10, Some("j2"), now), Some(false));
        // The mark revokes what was issued up to and including its time, and nothing later.
        assert_eq!(view.revoked("billing", 50, None, now), Some(true));
        assert_eq!(view.revoked("billing", 51, None, now), Some(false));
        assert_eq!(view.revoked("billing", 51, Some("j2"), now), Some(false));
    }

    #[test]
    fn the_view_goes_stale_when_syncs_stop() {
        let synced_at = Instant::now();
        let view = synced(&[("j1", 100)], &[], synced_at);
        let later = synced_at + FRESH_FOR;
        assert_eq!(view.revoked("billing", 10, Some("j1"), later), None);
        // A sync brings it back.
        view.apply(
            Delta {
                generation: 3,
                full: false,
                jtis: Vec::new(),
                marks: Vec::new(),
            },
            later,
        );
        assert_eq!(view.revoked("billing", 10, Some("j1"), later), Some(true));
    }

    #[test]
    fn local_revocations_count_at_once_and_a_delta_merges() {
        let now = Instant::now();
        let view = synced(&[("j1", 100)], &[], now);
        view.insert_jti("j2".to_owned(), 100);
        view.insert_mark("billing".to_owned(), 40);
        view.apply(
            Delta {
                generation: 5,
                full: false,
                jtis: vec![("j3".to_owned(), 100)],
                marks: Vec::new(),
            },
            now,
        );
        for jti in ["j1", "j2", "j3"] {
            assert_eq!(view.revoked("x", 10, Some(jti), now), Some(true), "{jti}");
        }
        assert_eq!(view.revoked("billing", 40, None, now), Some(true));
        assert_eq!(view.seen(), Some(5));
        // A delta older than what the view holds never moves the generation back.
        view.apply(
            Delta {
                generation: 4,
                full: false,
                jtis: Vec::new(),
                marks: Vec::new(),
            },
            now,
        );
        assert_eq!(view.seen(), Some(5));
    }

    #[test]
    fn a_full_load_replaces_and_prune_forgets_expired_tokens() {
        let now = Instant::now();
        let view = synced(&[("j1", 100), ("j2", 200)], &[("billing", 50)], now);
        view.prune(150);
        assert_eq!(view.revoked("x", 10, Some("j1"), now), Some(false));
        assert_eq!(view.revoked("x", 10, Some("j2"), now), Some(true));
        view.apply(
            Delta {
                generation: 1,
                full: true,
                jtis: Vec::new(),
                marks: Vec::new(),
            },
            now,
        );
        assert_eq!(view.revoked("x", 10, Some("j2"), now), Some(false));
        assert_eq!(view.revoked("billing", 10, None, now), Some(false));
        assert_eq!(view.seen(), Some(1));
    }
}
