//! One reader/writer lock per file.
//!
//! Several peers may read a file at once (two clients downloading it), but a file being installed
//! must be neither read nor installed by anyone else until the rename is done, and a download of
//! one file must never make a download of *another* file wait. So the lock is per name, not one
//! for the whole box: a table from name to "n readers" or "one writer", guarded by a mutex, with a
//! condition variable that wakes the waiters when a lock is released. Entries disappear as soon as
//! nobody holds them, so the table stays as small as the number of busy files.
//!
//! Writers go first: once a writer waits for a file, new readers of that file wait behind it.
//! Installs are short (a rename), reads can be long (sending a big file), and many clients may
//! read one file back to back; without this rule an install could wait forever.
//!
//! Every wait is bounded: a caller that cannot get its lock in time gets `None` and reports the
//! file as busy, rather than hanging forever behind a stuck transfer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::util::lock;

/// Who holds one file's lock, and who waits to write it. Absent from the table means all zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    /// Readers holding the lock.
    readers: usize,
    /// Whether a writer holds it.
    writer: bool,
    /// Writers waiting for it. While one waits, new readers wait too (see [`LockTable::read`]).
    writers_waiting: usize,
}

impl Held {
    fn is_free(self) -> bool {
        self == Held::default()
    }
}

/// The per-file lock table of one box. Share it with `Arc`.
#[derive(Debug, Default)]
pub struct LockTable {
    /// name → who holds it. Absent means free.
    held: Mutex<HashMap<String, Held>>,
    /// Signalled whenever a lock is released or a writer gives up waiting.
    released: Condvar,
    /// Threads waiting on `released` (changed and read only with `held` locked). A release
    /// wakes nobody when nobody waits: waking is a system call, and most releases have no
    /// waiter.
    sleepers: AtomicUsize,
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
        // The map stays consistent even if a holder panicked: every change is made under the
        // mutex in a few plain assignments that cannot panic.
        lock(&self.held)
    }

    /// Waits up to `timeout` for a shared lock on `name`.
    ///
    /// A reader waits not only while a writer holds the file but also while one *waits* for it.
    /// Without that, clients downloading a popular file one after another, each overlapping the
    /// previous one, would keep the reader count above zero forever and an install of that file
    /// would never get its turn (writer starvation).
    pub fn read(&self, name: &str, timeout: Duration) -> Option<ReadGuard<'_>> {
        let (mut table, got) = self.wait_for(self.table(), name, timeout, |h| {
            !h.writer && h.writers_waiting == 0
        });
        if got {
            table.entry(name.to_string()).or_default().readers += 1;
        } else {
            tidy(&mut table, name);
        }
        got.then(|| ReadGuard {
            table: self,
            name: name.to_string(),
        })
    }

    /// Waits up to `timeout` for the exclusive lock on `name`.
    pub fn write(&self, name: &str, timeout: Duration) -> Option<WriteGuard<'_>> {
        let mut table = self.table();
        table.entry(name.to_string()).or_default().writers_waiting += 1;
        let (mut table, got) = self.wait_for(table, name, timeout, |h| !h.writer && h.readers == 0);
        let held = table.entry(name.to_string()).or_default();
        held.writers_waiting -= 1;
        if got {
            held.writer = true;
        } else {
            tidy(&mut table, name);
            drop(table);
            // Readers held back by our waiting may go now.
            self.released.notify_all();
        }
        got.then(|| WriteGuard {
            table: self,
            name: name.to_string(),
        })
    }

    /// How many files are locked or waited for right now (for tests and diagnostics).
    pub fn busy(&self) -> usize {
        self.table().len()
    }

    /// Waits on the condition variable until `ready` holds for `name`'s state, or `timeout`
    /// passes. Takes the table's guard and hands it back, as `Condvar::wait_timeout` does.
    fn wait_for<'t>(
        &'t self,
        mut table: MutexGuard<'t, HashMap<String, Held>>,
        name: &str,
        timeout: Duration,
        ready: impl Fn(Held) -> bool,
    ) -> (MutexGuard<'t, HashMap<String, Held>>, bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(table.get(name).copied().unwrap_or_default()) {
                return (table, true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (table, false);
            }
            self.sleepers.fetch_add(1, Ordering::Relaxed);
            table = self
                .released
                .wait_timeout(table, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn release_read(&self, name: &str) {
        let mut table = self.table();
        if let Some(held) = table.get_mut(name) {
            held.readers = held.readers.saturating_sub(1);
        }
        self.tidy_and_wake(table, name);
    }

    fn release_write(&self, name: &str) {
        let mut table = self.table();
        if let Some(held) = table.get_mut(name) {
            held.writer = false;
        }
        self.tidy_and_wake(table, name);
    }

    /// After a release: forgets a free entry and wakes the waiters, if there are any.
    fn tidy_and_wake(&self, mut table: MutexGuard<'_, HashMap<String, Held>>, name: &str) {
        tidy(&mut table, name);
        // Read under the lock: a waiter counts itself in before it sleeps, with the lock held.
        let waiting = self.sleepers.load(Ordering::Relaxed) > 0;
        drop(table);
        if waiting {
            self.released.notify_all();
        }
    }
}

/// Forgets `name`'s entry once nobody holds or waits for it, so the table stays small.
fn tidy(table: &mut HashMap<String, Held>, name: &str) {
    if table.get(name).is_some_and(|h| h.is_free()) {
        table.remove(name);
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
mod tests;
