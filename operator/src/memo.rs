//! What the client controller last wrote for each OAuthClient, so that the watch events of its own
//! writes don't each cost a full reconcile.
//!
//! A reconcile that creates a client writes its Secret, an annotation and the status. Each write comes
//! back as a watch event and used to trigger another full reconcile (a policy list, a Secret read, a
//! Secret apply and a status write), about 22 apiserver requests per client in all. The memo records
//! the `resourceVersion`s a successful reconcile left behind. A reconcile that finds the object at one
//! of them, with its requeue still ahead, has nothing to do and returns at once.
//!
//! A `resourceVersion` only names an object's state, so the memo cannot see changes that live
//! elsewhere: a policy, a ceiling, a namespace's labels, a referenced Secret, a change to the owned
//! Secret. The watch mappers
//! [`invalidate`](Memo::invalidate) the clients such an event concerns, and a reconcile records its
//! result only if no invalidation came while it ran (see [`Ticket`]). The owned Secret's events are
//! recognised by the version the controller applied ([`Memo::is_own_secret`]).
//!
//! The memo is only ever a shortcut: an empty one means full reconciles, as before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A full reconcile runs anyway when its requeue is less than this far away, so a scheduled
/// requeue (rotation, resync) is never skipped.
pub const SLACK: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Entry {
    /// Bumped by every outside trigger for this client.
    invalidations: u64,
    /// The versions the last successful reconcile left behind, and when it asked to run again.
    settled: Option<(Vec<String>, Instant)>,
    /// The Secret's version as this controller last applied it.
    secret_version: Option<String>,
}

/// Proof of which invalidations a reconcile started after.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

/// The per-client memo, keyed like the controller's backoff (`oauthclient/NS/NAME`).
#[derive(Debug, Default)]
pub struct Memo {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Memo {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the client's entry, creating it.
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        f(self.lock().entry(key.to_owned()).or_default())
    }

    /// Runs `f` on the client's entry if there is one: reads and invalidations never create one, so
    /// the events of deleted clients leave nothing behind.
    fn existing<T>(&self, key: &str, f: impl FnOnce(&mut Entry) -> Option<T>) -> Option<T> {
        self.lock().get_mut(key).and_then(f)
    }

    /// If the client at `version` is a state the last successful reconcile produced, and its requeue
    /// is more than [`SLACK`] away: the time left until that requeue.
    pub fn settled(&self, key: &str, version: Option<&str>, now: Instant) -> Option<Duration> {
        let version = version?;
        self.existing(key, |e| {
            let (versions, until) = e.settled.as_ref()?;
            let left = until.checked_duration_since(now)?;
            (left > SLACK && versions.iter().any(|v| v == version)).then_some(left)
        })
    }

    /// Starts a full reconcile: forgets the settled state and returns the ticket [`settle`](Self::settle)
    /// needs.
    pub fn begin(&self, key: &str) -> Ticket {
        self.with(key, |e| {
            e.settled = None;
            Ticket(e.invalidations)
        })
    }

    /// Records a successful reconcile's `versions` and its requeue, unless the client was
    /// invalidated after `ticket` was taken (the reconcile may have read what changed too early).
    pub fn settle(&self, key: &str, ticket: Ticket, versions: Vec<String>, requeue: Duration, now: Instant) {
        self.with(key, |e| {
            if e.invalidations == ticket.0 {
                e.settled = Some((versions, now + requeue));
            }
        });
    }

    /// Something outside the client changed what its reconcile would do.
    pub fn invalidate(&self, key: &str) {
        self.existing(key, |e| {
            e.invalidations = e.invalidations.wrapping_add(1);
            e.settled = None;
            Some(())
        });
    }

    /// Something outside changed what every client of namespace `ns` would do (a policy).
    pub fn invalidate_namespace(&self, ns: &str) {
        let prefix = format!("oauthclient/{ns}/");
        for (_, e) in self.lock().iter_mut().filter(|(k, _)| k.starts_with(&prefix)) {
            e.invalidations = e.invalidations.wrapping_add(1);
            e.settled = None;
        }
    }

    /// Something outside changed what any client may do (a ceiling, a namespace's labels, an API
    /// product consumed across namespaces).
    pub fn invalidate_all(&self) {
        for e in self.lock().values_mut() {
            e.invalidations = e.invalidations.wrapping_add(1);
            e.settled = None;
        }
    }

    /// The controller applied the client's Secret and the API server answered with `version`.
    pub fn secret_applied(&self, key: &str, version: Option<String>) {
        self.with(key, |e| e.secret_version = version);
    }

    /// Whether the owned Secret at `version` is exactly what this controller last applied.
    pub fn is_own_secret(&self, key: &str, version: Option<&str>) -> bool {
        version.is_some()
            && self.existing(key, |e| Some(e.secret_version.as_deref() == version)) == Some(true)
    }

    /// The client is gone.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// How many clients it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "oauthclient/ns/a";
    const MINUTE: Duration = Duration::from_secs(60);

    fn settled_at(memo: &Memo, versions: &[&str], now: Instant) {
        let ticket = memo.begin(K);
        memo.settle(
            K,
            ticket,
            versions.iter().map(|v| (*v).to_owned()).collect(),
            MINUTE,
            now,
        );
    }

    #[test]
    fn a_version_the_last_reconcile_wrote_is_settled_until_the_requeue_is_near() {
        let memo = Memo::default();
        let t0 = Instant::now();
        settled_at(&memo, &["10", "11"], t0);
        assert_eq!(memo.settled(K, Some("11"), t0), Some(MINUTE));
        assert_eq!(memo.settled(K, Some("10"), t0 + MINUTE / 2), Some(MINUTE / 2));
        // Someone else's write, or no version at all: reconcile.
        assert_eq!(memo.settled(K, Some("12"), t0), None);
        assert_eq!(memo.settled(K, None, t0), None);
        // The requeue itself is never skipped.
        assert_eq!(memo.settled(K, Some("11"), t0 + MINUTE - SLACK), None);
        assert_eq!(memo.settled(K, Some("11"), t0 + MINUTE * 2), None);
        // Another client is unknown.
        assert_eq!(memo.settled("oauthclient/ns/b", Some("11"), t0), None);
    }

    #[test]
    fn an_invalidation_clears_the_settled_state_and_one_during_a_reconcile_keeps_it_from_settling() {
        let memo = Memo::default();
        let t0 = Instant::now();
        settled_at(&memo, &["10"], t0);
        memo.invalidate(K);
        assert_eq!(memo.settled(K, Some("10"), t0), None);

        let ticket = memo.begin(K);
        memo.invalidate(K); // a policy changed while the reconcile ran
        memo.settle(K, ticket, vec!["11".into()], MINUTE, t0);
        assert_eq!(memo.settled(K, Some("11"), t0), None);

        settled_at(&memo, &["12"], t0);
        assert_eq!(memo.settled(K, Some("12"), t0), Some(MINUTE));
    }

    #[test]
    fn a_namespace_invalidation_reaches_only_the_clients_of_that_namespace() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let other = "oauthclient/ns-b/a";
        let prefixed = "oauthclient/ns2/a"; // "ns" is a prefix of "ns2", not the same namespace
        for key in [K, other, prefixed] {
            let ticket = memo.begin(key);
            memo.settle(key, ticket, vec!["10".into()], MINUTE, t0);
        }
        memo.invalidate_namespace("ns");
        assert_eq!(memo.settled(K, Some("10"), t0), None);
        assert_eq!(memo.settled(other, Some("10"), t0), Some(MINUTE));
        assert_eq!(memo.settled(prefixed, Some("10"), t0), Some(MINUTE));
    }

    #[test]
    fn invalidating_all_reaches_every_client_and_a_reconcile_running_meanwhile() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let other = "oauthclient/ns-b/a";
        settled_at(&memo, &["10"], t0);
        let ticket = memo.begin(other);
        memo.invalidate_all();
        memo.settle(other, ticket, vec!["11".into()], MINUTE, t0);
        assert_eq!(memo.settled(K, Some("10"), t0), None);
        assert_eq!(memo.settled(other, Some("11"), t0), None);
    }

    #[test]
    fn beginning_a_reconcile_forgets_the_settled_state() {
        let memo = Memo::default();
        let t0 = Instant::now();
        settled_at(&memo, &["10"], t0);
        let _ticket = memo.begin(K);
        assert_eq!(
            memo.settled(K, Some("10"), t0),
            None,
            "a failed reconcile must not leave it settled"
        );
    }

    #[test]
    fn only_the_secret_version_last_applied_is_the_controllers_own() {
        let memo = Memo::default();
        assert!(!memo.is_own_secret(K, Some("5")));
        memo.secret_applied(K, Some("5".into()));
        assert!(memo.is_own_secret(K, Some("5")));
        assert!(
            !memo.is_own_secret(K, Some("6")),
            "an edit or a deletion has a new version"
        );
        assert!(!memo.is_own_secret(K, None));
        memo.forget(K);
        assert!(!memo.is_own_secret(K, Some("5")));
        memo.invalidate(K); // the Secret's deletion by the garbage collector, after the client's
        assert!(memo.is_empty(), "a deleted client's events leave nothing behind");
    }
}
