//! Time, as a parameter. Every decision that depends on the time (rotation, grace periods, condition
//! transition times, the leader Lease) reads the [`Clock`] in the [`Context`](crate::Context).
//! [`SystemClock`] is the only place in the operator that reads the system time; clippy's
//! `disallowed-methods` (the workspace's `clippy.toml`) rejects any other.
//!
//! Unit tests drive a [`ManualClock`]. The end-to-end tests run the operator as a process, so they
//! shift its clock from outside with [`OffsetClock`] (the hidden `--clock-offset-file` flag), to end a
//! grace period without waiting for it.

use std::{
    fmt::Debug,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use jiff::{SignedDuration, Timestamp};

/// Where the time comes from.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A clock shared by every reconcile.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place that reads the system time.
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self { now: Mutex::new(now) }
    }

    /// Moves the clock forward by `by` (backwards if negative).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.lock();
        *now = now.saturating_add(by).unwrap_or(*now);
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: Timestamp) {
        *self.lock() = now;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

/// The system time plus the whole seconds written in a file, read again on every call; a missing,
/// empty or unreadable file means no offset. For end-to-end tests only, which cannot reach into the
/// operator's process to set a [`ManualClock`].
#[derive(Debug)]
pub struct OffsetClock {
    /// The file holding the offset, such as `3600`.
    pub file: PathBuf,
}

impl OffsetClock {
    /// The offset the file holds now.
    pub fn offset(&self) -> SignedDuration {
        std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .map_or(SignedDuration::ZERO, SignedDuration::from_secs)
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now();
        now.saturating_add(self.offset()).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(t(0));
        assert_eq!(clock.now(), t(0));
        clock.advance(SignedDuration::from_secs(60));
        assert_eq!(clock.now(), t(60));
        clock.set(t(5));
        assert_eq!(clock.now(), t(5));
    }

    #[test]
    fn an_offset_clock_reads_its_offset_from_the_file_and_none_without_it() {
        let dir = std::env::temp_dir().join(format!("gatehouse-clock-{}", gatehouse_crds::random::id()));
        let clock = OffsetClock {
            file: dir.join("offset"),
        };
        assert_eq!(clock.offset(), SignedDuration::ZERO);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&clock.file, "3600\n").unwrap();
        assert_eq!(clock.offset(), SignedDuration::from_hours(1));
        std::fs::write(&clock.file, "not a number").unwrap();
        assert_eq!(clock.offset(), SignedDuration::ZERO);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
