//! The lock helpers of the in-memory caches (clients, keys, revocations).

/// A read guard on an in-memory cache. A panic while the lock was held cannot leave a cache
/// half-written (every write replaces or inserts whole entries), so poisoning is ignored.
pub fn read_lock<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The write guard that goes with [`read_lock`].
pub fn write_lock<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
