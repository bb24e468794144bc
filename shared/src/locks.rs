//! One reader/writer lock per file.
//!
//! Several peers may read a file at once (two clients downloading it), but a file being installed
//! must be neither read nor installed by anyone else until the rename is done, and a download of
//! one file must never make a download of *another* file wait. So the lock is per name, not one
//! for the whole box: a table from name to "n readers" or "one writer", guarded by a mutex, with a
//! condition variable that wakes the waiters when a lock is released. Entries disappear as soon as
//! nobody holds them, so the table stays as small as the number of busy files.
//!
//! Every wait is bounded: a caller that cannot get its lock in time gets `None` and reports the
//! file as busy, rather than hanging forever behind a stuck transfer.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Readers(usize),
    Writer,
}

/// The per-file lock table of one box. Share it with `Arc`.
#[derive(Debug, Default)]
pub struct LockTable {
    /// name → who holds it. Absent means free.
    held: Mutex<HashMap<String, Held>>,
    /// Signalled whenever a lock is released.
    released: Condvar,
}

/// Proof of a shared (read) lock on one file; released on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct ReadGuard<'a> {
    table: &'a LockTable,
    name: String,
}

/// Proof of the exclusive (write) lock on one file; released on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct WriteGuard<'a> {
    table: &'a LockTable,
    name: String,
}

impl LockTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        // The map stays consistent even if a holder panicked: every change is a single insert or
        // remove.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout` for a shared lock on `name`.
    pub fn read(&self, name: &str, timeout: Duration) -> Option<ReadGuard<'_>> {
        self.acquire(name, timeout, |held| match held {
            None => Some(Held::Readers(1)),
            Some(Held::Readers(n)) => Some(Held::Readers(n + 1)),
            Some(Held::Writer) => None,
        })
        .then(|| ReadGuard {
            table: self,
            name: name.to_string(),
        })
    }

    /// Waits up to `timeout` for the exclusive lock on `name`.
    pub fn write(&self, name: &str, timeout: Duration) -> Option<WriteGuard<'_>> {
        self.acquire(name, timeout, |held| match held {
            None => Some(Held::Writer),
            Some(_) => None,
        })
        .then(|| WriteGuard {
            table: self,
            name: name.to_string(),
        })
    }

    /// How many files are locked right now (for tests and diagnostics).
    pub fn busy(&self) -> usize {
        self.table().len()
    }

    fn acquire(
        &self,
        name: &str,
        timeout: Duration,
        next: impl Fn(Option<Held>) -> Option<Held>,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut table = self.table();
        loop {
            if let Some(new) = next(table.get(name).copied()) {
                table.insert(name.to_string(), new);
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            table = self
                .released
                .wait_timeout(table, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn release_read(&self, name: &str) {
        let mut table = self.table();
        match table.get(name).copied() {
            Some(Held::Readers(n)) if n > 1 => {
                table.insert(name.to_string(), Held::Readers(n - 1));
            }
            _ => {
                table.remove(name);
            }
        }
        drop(table);
        self.released.notify_all();
    }

    fn release_write(&self, name: &str) {
        self.table().remove(name);
        self.released.notify_all();
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.table.release_read(&self.name);
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.table.release_write(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const SHORT: Duration = Duration::from_millis(50);

    #[test]
    fn readers_share_writers_exclude() {
        let t = LockTable::new();
        let r1 = t.read("a", SHORT).unwrap();
        let r2 = t.read("a", SHORT).unwrap();
        assert!(t.write("a", SHORT).is_none(), "readers keep a writer out");
        drop(r1);
        assert!(t.write("a", SHORT).is_none(), "one reader is enough");
        drop(r2);
        let w = t.write("a", SHORT).unwrap();
        assert!(t.read("a", SHORT).is_none(), "a writer keeps readers out");
        assert!(t.write("a", SHORT).is_none(), "and other writers");
        assert!(
            t.write("b", SHORT).is_some(),
            "other files are never blocked"
        );
        drop(w);
        assert_eq!(t.busy(), 0, "released locks leave no trace");
    }

    #[test]
    fn a_waiter_gets_the_lock_when_it_is_released() {
        let t = Arc::new(LockTable::new());
        let w = t.write("f", SHORT).unwrap();
        let t2 = Arc::clone(&t);
        let waiter = std::thread::spawn(move || t2.read("f", Duration::from_secs(5)).is_some());
        std::thread::sleep(Duration::from_millis(30));
        drop(w);
        assert!(waiter.join().unwrap());
    }
}
