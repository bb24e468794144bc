//! Reusing a scan while the kernel says nothing changed. A scan `lstat`s every file and folder
//! of the box: a fifth of a second for 100,000 files, at least twice per sync round, forever,
//! and almost always for nothing. So a box that serves or syncs keeps its last scan and hands
//! it out again while its [`Watcher`] (inotify) reports no change in any of its folders, for at
//! most [`SCAN_REUSE`]. Shown by `scripts/bench.sh`, rows `idle-100k` and `idle-cpu`.
//!
//! Two threads asking at once share one scan: the second waits for the first's. Both are told
//! how far it is (files and folders read), so that a server can keep its client waiting through
//! a long scan with real progress, whichever thread does the reading.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::watch::Watcher;
use crate::local::scan::{Before, Scanned};
use crate::util::lock;

/// How long a scan may be used again while the watcher reports no change: some changes escape
/// inotify, so a box is read afresh at least this often.
pub const SCAN_REUSE: Duration = Duration::from_secs(60);

/// How often a thread waiting for another's scan looks at how far it is (and whether it is
/// over: a waiting thread polls, as the lock is held for the whole scan).
const WAITING_TICK: Duration = Duration::from_millis(10);

/// A fresh scan, calling its argument with each folder before reading it.
pub type Fresh<'a> = &'a dyn Fn(Before<'_>) -> io::Result<Vec<Scanned>>;

/// Told how many files and folders were read since the caller asked; an error stops the scan.
pub type Tell<'a> = &'a mut dyn FnMut(u64) -> io::Result<()>;

/// The kept scan of one box.
#[derive(Default)]
pub struct Scans {
    state: Mutex<State>,
    /// Files and folders read by every scan of this box so far: what a waiting thread watches.
    read: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Whether to keep scans at all (see [`Scans::keep`]).
    keep: bool,
    /// `None` until the first scan, then `Some(None)` if the kernel gave no watcher.
    watcher: Option<Option<Watcher>>,
    /// The last scan the watcher vouches for, and when it was taken.
    last: Option<(Instant, Arc<Vec<Scanned>>)>,
}

impl Scans {
    /// Keeps scans from now on. For a process that serves the box or syncs it round after round;
    /// a one-shot process would only hold the memory (about 10 MB for 100,000 files).
    pub fn keep(&self) {
        lock(&self.state).keep = true;
    }

    /// The box as it is now: the last scan if nothing changed since, otherwise `fresh`. Two
    /// threads asking at once share one scan. `tell` hears how many files and folders were read
    /// since the call, whichever thread reads them.
    ///
    /// # Errors
    /// Whatever `fresh` or `tell` returns.
    pub fn get(&self, fresh: Fresh<'_>, tell: Tell<'_>) -> io::Result<Arc<Vec<Scanned>>> {
        let start = self.read.load(Ordering::Relaxed);
        let since = || self.read.load(Ordering::Relaxed) - start;
        let mut state = self.wait(&mut || tell(since()))?;
        // Before each folder, what the scan found since the last one joins the shared count.
        let mut counted = 0;
        let mut count = |found: u64| {
            self.read.fetch_add(found - counted, Ordering::Relaxed);
            counted = found;
            tell(since())
        };
        let State {
            keep,
            watcher,
            last,
        } = &mut *state;
        if !*keep {
            return fresh(&mut |_, found| count(found)).map(Arc::new);
        }
        let watcher = watcher.get_or_insert_with(Watcher::new);
        // Whatever is waiting is about the past: take it now, so what comes after is about
        // the scan below.
        let changed = watcher.as_mut().is_none_or(Watcher::changed);
        if let (false, Some((when, scanned))) = (changed, last.as_ref()) {
            if when.elapsed() < SCAN_REUSE {
                return Ok(Arc::clone(scanned));
            }
        }
        *last = None;
        // Each folder is watched before it is read: a change during the scan is not missed.
        let scanned = Arc::new(fresh(&mut |dir, found| {
            if let Some(w) = watcher.as_mut() {
                w.watch(dir);
            }
            count(found)
        })?);
        if watcher.as_ref().is_some_and(|w| !w.is_broken()) {
            *last = Some((Instant::now(), Arc::clone(&scanned)));
        }
        Ok(scanned)
    }

    /// The state, once no other thread is scanning; meanwhile `tell` is called every
    /// [`WAITING_TICK`]. (A poisoned lock is taken as it is: the state is only a cache.)
    fn wait(&self, tell: &mut dyn FnMut() -> io::Result<()>) -> io::Result<MutexGuard<'_, State>> {
        loop {
            match self.state.try_lock() {
                Ok(state) => return Ok(state),
                Err(TryLockError::Poisoned(poisoned)) => return Ok(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => {
                    tell()?;
                    std::thread::sleep(WAITING_TICK);
                }
            }
        }
    }
}
