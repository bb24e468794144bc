//! The activity log: one line per request served, request made and sync action, in
//! `.minibox/log`.
//!
//! The assignment minibox comes from asks each box to keep a history of what it did, so that a
//! user can see who asked for what. Lines are appended under a mutex, so that lines from
//! different threads never interleave. Failing to log never fails a request: a warning goes to
//! stderr instead.
//!
//! A line is normally written at once. In a burst (a server answering a client's pipelined
//! batch of downloads, a sync round installing thousands of files) the lines are
//! [`ActivityLog::defer`]red and go out together at the next [`ActivityLog::flush`] (the server
//! flushes when it flushes its replies, a round when it ends): one system call for many lines,
//! and lines still in time order.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::protocol::name::META_DIR;
use crate::util::lock;

/// Deferred lines are written anyway once this many bytes wait.
const DEFER_MAX: usize = 64 * 1024;

/// The append-only log of one box.
#[derive(Debug)]
pub struct ActivityLog {
    /// Where the lines go.
    path: PathBuf,
    /// The open file (lazily; `None` until the first write or after a failure) and the lines
    /// not written yet.
    state: Mutex<(Option<File>, Vec<u8>)>,
}

impl ActivityLog {
    /// The log of the box at `root` (`root/.minibox/log`).
    pub fn new(root: &Path) -> Self {
        ActivityLog {
            path: root.join(META_DIR).join("log"),
            state: Mutex::new((None, Vec::new())),
        }
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `time<TAB>peer<TAB>what<TAB>outcome`, now (with any deferred lines before it).
    pub fn record(&self, peer: &str, what: &str, outcome: &str) {
        self.add(peer, what, outcome, true);
    }

    /// Appends a line as [`ActivityLog::record`] does, but writes it only at the next
    /// [`ActivityLog::flush`] or [`ActivityLog::record`] (or once many lines wait).
    pub fn defer(&self, peer: &str, what: &str, outcome: &str) {
        self.add(peer, what, outcome, false);
    }

    /// Writes the deferred lines.
    pub fn flush(&self) {
        let mut state = lock(&self.state);
        self.write_out(&mut state);
    }

    fn add(&self, peer: &str, what: &str, outcome: &str, now: bool) {
        let time = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f%:z");
        // Every field may hold words from the network (a peer's name, a path it asked for):
        // `field` keeps each on its one line and bounds its length.
        let line = format!(
            "{time}\t{}\t{}\t{}\n",
            field(peer),
            field(what),
            field(outcome)
        );
        let mut state = lock(&self.state);
        state.1.extend_from_slice(line.as_bytes());
        if now || state.1.len() >= DEFER_MAX {
            self.write_out(&mut state);
        }
    }

    /// Writes what waits, with one `write` call (the file is opened in append mode, so every
    /// call lands whole at the end).
    fn write_out(&self, state: &mut (Option<File>, Vec<u8>)) {
        let (slot, pending) = state;
        if pending.is_empty() {
            return;
        }
        if slot.is_none() {
            let opened =
                fs::create_dir_all(self.path.parent().unwrap_or(Path::new("."))).and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                });
            match opened {
                Ok(f) => *slot = Some(f),
                Err(e) => {
                    log::warn!("cannot open {}: {e}", self.path.display());
                    pending.clear();
                    return;
                }
            }
        }
        if let Some(f) = slot.as_mut() {
            if let Err(e) = f.write_all(pending) {
                log::warn!("cannot write {}: {e}", self.path.display());
                *slot = None;
            }
        }
        pending.clear();
    }
}

impl Drop for ActivityLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The longest field written to the log, in characters; longer ones are cut with `…`.
pub const MAX_FIELD: usize = 512;

/// Makes `text` safe for one field of one log line: control characters (tab, newline, …) are
/// escaped, so a hostile name cannot start a forged line or shift the columns, and the length is
/// capped, so a peer cannot fill the disk by sending 4 MiB names.
pub fn field(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_FIELD));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_FIELD {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
