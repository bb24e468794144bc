//! The activity log: one line per request served, request made and sync action, in
//! `.minibox/log`.
//!
//! The assignment minibox comes from asks each box to keep a history of what it did, so that a
//! user can see who asked for what. Lines are appended under a mutex, so that lines from
//! different threads never interleave. Failing to log never fails a request: a warning goes to
//! stderr instead.
//!
//! A line is `time<TAB>who<TAB>what<TAB>outcome`, the time in UTC. `who` says which way the
//! request went: `<- box1` for a request this box **served** to the peer named box1, `-> box1`
//! (or `-> 127.0.0.1:60001`) for one it **made**, and for what a sync round did with what it
//! got ([`served`], [`made`]).
//!
//! A line is normally written at once. In a burst (a server answering a client's pipelined
//! batch of downloads, a sync round installing thousands of files) the lines are
//! [`ActivityLog::defer`]red and go out together at the next [`ActivityLog::flush`] (the server
//! flushes when it flushes its replies, a round when it ends): one system call for many lines,
//! and lines still in time order.
//!
//! The log stays bounded. Two boxes in sync ask each other for a listing every few seconds,
//! and each answer is the same line as the last: a line identical to the one before it (but for
//! the time) is counted, not written, and the count goes out as one line when a different line
//! comes, when the process ends, or once an hour ([`SUMMARY_EVERY`]). And once the file passes
//! its limit ([`MAX_BYTES`]) it is renamed `log.1` (replacing the one before) and a new `log`
//! begins.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::name::META_DIR;
use crate::util::lock;

/// Deferred lines are written anyway once this many bytes wait.
const DEFER_MAX: usize = 64 * 1024;

/// Past this size the log is renamed `log.1` and a new one begins.
pub const MAX_BYTES: u64 = 8 << 20;

/// A run of identical lines is summed up at least this often.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(3600);

/// The `who` of a request this box served to the peer `name`.
pub fn served(name: &str) -> String {
    format!("<- {name}")
}

/// The `who` of a request this box made to `peer` (a name or an address), and of what a sync
/// round did with the answers.
pub fn made(peer: &str) -> String {
    format!("-> {peer}")
}

/// A run of lines identical to the last one written.
#[derive(Debug)]
struct Repeats {
    /// The last line written, without its time.
    line: String,
    /// How many identical ones came since, not written.
    count: u64,
    /// When the first of them came (UTC text), and when the run began (for [`SUMMARY_EVERY`]).
    since: Option<(String, Instant)>,
}

/// What the mutex guards.
#[derive(Debug, Default)]
struct State {
    /// The open file (lazily; `None` until the first write or after a failure).
    file: Option<File>,
    /// Its size, as far as we wrote it.
    size: u64,
    /// Lines not written yet.
    pending: Vec<u8>,
    /// The run of identical lines, if any.
    repeats: Option<Repeats>,
}

/// The append-only log of one box.
#[derive(Debug)]
pub struct ActivityLog {
    /// Where the lines go.
    path: PathBuf,
    /// The size past which it rotates.
    limit: u64,
    /// The file, the lines waiting, the run of repeats.
    state: Mutex<State>,
}

impl ActivityLog {
    /// The log of the box at `root` (`root/.minibox/log`).
    pub fn new(root: &Path) -> Self {
        Self::with_limit(root, MAX_BYTES)
    }

    /// [`ActivityLog::new`] rotating past `limit` bytes (tests use small ones).
    pub fn with_limit(root: &Path, limit: u64) -> Self {
        ActivityLog {
            path: root.join(META_DIR).join("log"),
            limit,
            state: Mutex::new(State::default()),
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
        let time = utc_now();
        // Every field may hold words from the network (a peer's name, a path it asked for):
        // `field` keeps each on its one line and bounds its length.
        let line = format!("{}\t{}\t{}", field(peer), field(what), field(outcome));
        let mut state = lock(&self.state);
        if let Some(run) = state.repeats.as_mut().filter(|r| r.line == line) {
            run.count += 1;
            let (_, began) = run
                .since
                .get_or_insert_with(|| (time.clone(), Instant::now()));
            if began.elapsed() < SUMMARY_EVERY {
                return;
            }
        }
        Self::sum_up(&mut state);
        if !matches!(&state.repeats, Some(r) if r.line == line) {
            let text = format!("{time}\t{line}\n");
            state.pending.extend_from_slice(text.as_bytes());
            state.repeats = Some(Repeats {
                line,
                count: 0,
                since: None,
            });
        }
        if now || state.pending.len() >= DEFER_MAX {
            self.write_out(&mut state);
        }
    }

    /// Puts the count of a run of identical lines in the pending lines, and starts counting
    /// again.
    fn sum_up(state: &mut State) {
        let Some(run) = state.repeats.as_mut().filter(|r| r.count > 0) else {
            return;
        };
        let first = run.since.take().map(|(first, _)| first).unwrap_or_default();
        let (n, s) = (run.count, if run.count == 1 { "" } else { "s" });
        let text = format!(
            "{}\t{} (the same {n} more time{s} since {first})\n",
            utc_now(),
            run.line
        );
        run.count = 0;
        state.pending.extend_from_slice(text.as_bytes());
    }

    /// Writes what waits, with one `write` call (the file is opened in append mode, so every
    /// call lands whole at the end); rotates the file first if it would pass its limit.
    fn write_out(&self, state: &mut State) {
        if state.pending.is_empty() {
            return;
        }
        if state.file.is_some() && state.size + state.pending.len() as u64 > self.limit {
            state.file = None;
            let old = self.path.with_file_name("log.1");
            if let Err(e) = fs::rename(&self.path, &old) {
                log::warn!("cannot rotate {}: {e}", self.path.display());
            }
        }
        if state.file.is_none() {
            match self.open() {
                Ok((f, size)) => (state.file, state.size) = (Some(f), size),
                Err(e) => {
                    log::warn!("cannot open {}: {e}", self.path.display());
                    state.pending.clear();
                    return;
                }
            }
        }
        if let Some(f) = state.file.as_mut() {
            match f.write_all(&state.pending) {
                Ok(()) => state.size += state.pending.len() as u64,
                Err(e) => {
                    log::warn!("cannot write {}: {e}", self.path.display());
                    state.file = None;
                }
            }
        }
        state.pending.clear();
    }

    /// Opens the log for appending; returns it with its size.
    fn open(&self) -> std::io::Result<(File, u64)> {
        fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))?;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let size = f.metadata()?.len();
        Ok((f, size))
    }
}

/// Now, in UTC, to the millisecond.
fn utc_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Drop for ActivityLog {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        Self::sum_up(&mut state);
        self.write_out(&mut state);
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
