//! Reusing a scan while the kernel says nothing changed. A scan `lstat`s every file and folder
//! of the box: a fifth of a second for 100,000 files, at least twice per sync round, forever,
//! and almost always for nothing. So a box that serves or syncs keeps its last scan and hands
//! it out again while its [`Watcher`] (inotify) reports no change in any of its folders, for at
//! most [`SCAN_REUSE`]. Shown by `scripts/bench.sh`, rows `idle-100k` and `idle-cpu`.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::watch::Watcher;
use crate::local::scan::Scanned;
use crate::util::lock;

/// How long a scan may be used again while the watcher reports no change: some changes escape
/// inotify, so a box is read afresh at least this often.
pub const SCAN_REUSE: Duration = Duration::from_secs(60);

/// A fresh scan, calling its argument with each folder before reading it.
pub type Fresh<'a> = &'a dyn Fn(&mut dyn FnMut(&Path)) -> io::Result<Vec<Scanned>>;

/// The kept scan of one box.
#[derive(Default)]
pub struct Scans(Mutex<State>);

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
        lock(&self.0).keep = true;
    }

    /// The box as it is now: the last scan if nothing changed since, otherwise `fresh`. Two
    /// threads asking at once share one scan.
    ///
    /// # Errors
    /// Whatever `fresh` returns.
    pub fn get(&self, fresh: Fresh<'_>) -> io::Result<Arc<Vec<Scanned>>> {
        let mut state = lock(&self.0);
        let State {
            keep,
            watcher,
            last,
        } = &mut *state;
        if !*keep {
            return fresh(&mut |_| {}).map(Arc::new);
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
        let scanned = Arc::new(fresh(&mut |dir| {
            if let Some(w) = watcher.as_mut() {
                w.watch(dir);
            }
        })?);
        if watcher.as_ref().is_some_and(|w| !w.is_broken()) {
            *last = Some((Instant::now(), Arc::clone(&scanned)));
        }
        Ok(scanned)
    }
}
