//! Password hashing: argon2id at OWASP's minimum cost (19 MiB, two passes, one lane), run on the
//! blocking pool by a bounded [`Hasher`]. Pure of storage.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{Error, Result};

/// argon2id memory cost in KiB (OWASP's minimum).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;
/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest password accepted (hashing is the cost, not the length, but keep bodies sane).
pub const MAX_PASSWORD_LEN: usize = 1024;

fn hasher() -> Result<Argon2<'static>> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, None)
        .map_err(|_| Error::Crypto("argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password as an argon2id PHC string with a random 128-bit salt.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&gatehouse_crds::random::bytes::<16>())
        .map_err(|_| Error::Crypto("argon2 salt"))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| Error::Crypto("argon2 hashing"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a PHC string. The parameters are read from the string.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Runs argon2 computations on the blocking pool, at most one per CPU at a time. Each takes 19 MiB
/// and a core's worth of work; without a bound, a burst of sign-ins (or of guesses) would queue
/// unbounded blocking threads and memory, and slow every request behind them. One lives in
/// [`crate::AppState`].
pub struct Hasher {
    permits: tokio::sync::Semaphore,
    decoy: OnceLock<Option<String>>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Hasher {
    /// A hasher running at most `concurrency` computations at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: tokio::sync::Semaphore::new(concurrency.max(1)),
            decoy: OnceLock::new(),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free. `None` if it panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }

    /// A hash to verify against when the user does not exist, so that an unknown username takes as
    /// long as a wrong password. Computed on first use.
    pub(crate) fn decoy(&self) -> Option<&str> {
        self.decoy
            .get_or_init(|| hash_password("decoy password for unknown users").ok())
            .as_deref()
    }
}
