//! Knowing that a box did not change, without looking at every file: Linux's inotify.
//!
//! A scan of a box `lstat`s every file and folder in it: a fifth of a second for 100,000 files.
//! A box that syncs is scanned at least twice per round (once for its own round, once to answer
//! its peer's), every few seconds, forever, and almost always nothing has changed. So a box asks
//! the kernel to tell it about changes instead: an *inotify* watch on a folder reports every
//! file created, deleted, renamed, written to or chmodded in it. A [`Watcher`] watches every
//! folder of the box; as long as it has reported nothing, the last scan is still the truth and
//! can be used again ([`super::scans`]).
//!
//! Three things make the shortcut safe rather than hopeful:
//!
//! - a folder is watched *before* it is read, so a change made while the scan runs is reported
//!   and the next scan does not trust this one;
//! - anything unexpected counts as a change: an event queue that overflowed, a read error, a
//!   folder that could not be watched (the per-user limit of watches); the watcher then says
//!   "changed" every time and every scan is a real one;
//! - some changes are invisible to inotify (a file written through a memory mapping, a change
//!   made by another machine on a network file system), so a scan is trusted for at most
//!   [`super::scans::SCAN_REUSE`] anyway.
//!
//! minibox's own `.minibox/` folder is not watched: writing the log or a temporary file is not
//! a change to the box (installing a file is: the rename into its folder is reported).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// The events that mean "the folder's contents or an item's metadata changed".
fn interesting() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

/// An inotify instance watching the folders of one box.
pub struct Watcher {
    /// The kernel's queue of events, read without blocking.
    inotify: Inotify,
    /// Set when a folder could not be watched or the queue failed: from then on every question
    /// is answered "changed".
    broken: bool,
}

impl Watcher {
    /// A watcher, if the kernel gives us one (not on every system, and a user may have only so
    /// many).
    pub fn new() -> Option<Watcher> {
        Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .inspect_err(|e| log::info!("no inotify ({e}): every scan reads the whole box"))
            .ok()
            .map(|inotify| Watcher {
                inotify,
                broken: false,
            })
    }

    /// Watches the folder `dir` (watching it again is harmless). Returns false, and from then on
    /// reports every question as a change, if it cannot.
    pub fn watch(&mut self, dir: &Path) -> bool {
        if self.broken {
            return false;
        }
        match self
            .inotify
            .add_watch(dir.as_os_str().as_bytes(), interesting())
        {
            Ok(_) => true,
            // The folder went between being listed and being watched: its parent's watch has
            // reported that already.
            Err(Errno::ENOENT | Errno::ENOTDIR) => true,
            Err(e) => {
                log::info!(
                    "cannot watch {} ({e}); scans will read the whole box",
                    dir.display()
                );
                self.broken = true;
                false
            }
        }
    }

    /// Whether anything changed since the last call (or since the watches were set). Takes every
    /// event waiting, so the next call answers for what happens after this one.
    pub fn changed(&mut self) -> bool {
        let mut changed = self.broken;
        loop {
            match self.inotify.read_events() {
                Ok(events) if events.is_empty() => break,
                // Any event is a change; the kernel's "I lost some" (IN_Q_OVERFLOW) too.
                Ok(_) => changed = true,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    log::info!("reading inotify events: {e}; scans will read the whole box");
                    self.broken = true;
                    return true;
                }
            }
        }
        changed
    }

    /// Whether the watcher can no longer be trusted (see [`Watcher::watch`]).
    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

#[cfg(test)]
mod tests;
