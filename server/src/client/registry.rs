//! The in-memory client registry. Token requests look clients up here, never in the database. The cache
//! is replaced on every admin write, and replicas poll a generation counter to notice other replicas'
//! writes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use gatehouse_crds::admin::{ClientRegistration, SecretDigest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Result;
use crate::store::Db;

#[derive(Default)]
struct Snapshot {
    generation: i64,
    clients: HashMap<String, Arc<ClientRegistration>>,
}

/// Registered clients, keyed by client_id.
#[derive(Default)]
pub struct ClientCache {
    snapshot: RwLock<Snapshot>,
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCache")
            .field("clients", &self.len())
            .finish()
    }
}

impl ClientCache {
    /// Loads every client from the database.
    pub async fn load(db: &Db) -> Result<Self> {
        let cache = Self::default();
        cache.reload(db).await?;
        Ok(cache)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        crate::sync::read_lock(&self.snapshot)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        crate::sync::write_lock(&self.snapshot)
    }

    /// Replaces the cache with what the database holds.
    pub async fn reload(&self, db: &Db) -> Result<()> {
        let (generation, clients) = db.all_clients().await?;
        let clients = clients
            .into_iter()
            .map(|c| (c.client_id.clone(), Arc::new(c)))
            .collect();
        *self.write() = Snapshot { generation, clients };
        Ok(())
    }

    /// Reloads if a writer (this replica or another) changed the clients since the last load.
    pub async fn refresh(&self, db: &Db) -> Result<()> {
        let generation = self.read().generation;
        if db.clients_generation().await? != generation {
            self.reload(db).await?;
        }
        Ok(())
    }

    /// Puts a registration this replica just stored.
    pub fn insert(&self, client: ClientRegistration) {
        self.write()
            .clients
            .insert(client.client_id.clone(), Arc::new(client));
    }

    /// Drops a registration this replica just deleted.
    pub fn remove(&self, client_id: &str) {
        self.write().clients.remove(client_id);
    }

    /// A client by id.
    pub fn get(&self, client_id: &str) -> Option<Arc<ClientRegistration>> {
        self.read().clients.get(client_id).cloned()
    }

    /// How many clients are registered.
    pub fn len(&self) -> usize {
        self.read().clients.len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The longest access-token lifetime of any client, at least `floor`. A signing key stays
    /// published this long after it stopped signing.
    pub fn max_access_token_ttl(&self, floor: i64) -> i64 {
        self.read()
            .clients
            .values()
            .map(|c| c.effective.access_token_ttl_seconds)
            .fold(floor, i64::max)
    }

    /// Every scope any client may request, sorted, for discovery.
    pub fn all_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .read()
            .clients
            .values()
            .flat_map(|c| c.effective.scopes.iter().cloned())
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }
}

/// Whether `presented` is one of the client's secrets that has not expired at `now`. Compares SHA-256
/// digests in constant time and checks every stored digest, so timing doesn't tell which one matched.
pub fn secret_matches(secrets: &[SecretDigest], presented: &str, now: i64) -> bool {
    let digest = Sha256::digest(presented.as_bytes());
    let mut matched = subtle::Choice::from(0);
    for stored in secrets {
        let Ok(stored_bytes) = hex::decode(&stored.sha256) else {
            continue;
        };
        let live = stored.expires_at.is_none_or(|expires_at| now < expires_at);
        let equal = stored_bytes.as_slice().ct_eq(digest.as_slice());
        matched |= equal & subtle::Choice::from(u8::from(live));
    }
    matched.into()
}

#[cfg(test)]
mod tests {
    use gatehouse_crds::admin::secret_digest;

    use super::*;

    fn digest(secret: &str, expires_at: Option<i64>) -> SecretDigest {
        SecretDigest {
            sha256: secret_digest(secret),
            expires_at,
        }
    }

    #[test]
    fn the_current_and_the_previous_secret_both_work_during_a_grace_period() {
        let secrets = [digest("new", None), digest("old", Some(2_000))];
        assert!(secret_matches(&secrets, "new", 1_000));
        assert!(secret_matches(&secrets, "old", 1_000));
        assert!(!secret_matches(&secrets, "other", 1_000));
    }

    #[test]
    fn an_expired_secret_is_refused() {
        let secrets = [digest("old", Some(2_000))];
        assert!(!secret_matches(&secrets, "old", 2_000));
        assert!(!secret_matches(&secrets, "old", 3_000));
    }

    #[test]
    fn a_client_without_secrets_matches_nothing() {
        assert!(!secret_matches(&[], "", 0));
    }
}
