//! The activity log: one line per request served, request made and sync action, in
//! `.minibox/log`.
//!
//! The assignment minibox comes from asks each box to keep a history of what it did, so that a
//! user can see who asked for what. Lines are appended with a single `write` each, under a mutex,
//! so that lines from different threads never interleave. Failing to log never fails a request: a
//! warning goes to stderr instead.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::META_DIR;

/// The append-only log of one box.
#[derive(Debug)]
pub struct ActivityLog {
    /// Where the lines go.
    path: PathBuf,
    /// Open lazily; `None` until the first line or after a failure.
    file: Mutex<Option<File>>,
}

impl ActivityLog {
    /// The log of the box at `root` (`root/.minibox/log`).
    pub fn new(root: &Path) -> Self {
        ActivityLog {
            path: root.join(META_DIR).join("log"),
            file: Mutex::new(None),
        }
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `time<TAB>peer<TAB>what<TAB>outcome`.
    pub fn record(&self, peer: &str, what: &str, outcome: &str) {
        let time = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f%:z");
        // Every field may hold words from the network (a peer's name, a path it asked for):
        // `field` keeps each on its one line and bounds its length.
        let line = format!(
            "{time}\t{}\t{}\t{}\n",
            field(peer),
            field(what),
            field(outcome)
        );
        let mut slot = self.file.lock().unwrap_or_else(|p| p.into_inner());
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
                    return;
                }
            }
        }
        if let Some(f) = slot.as_mut() {
            if let Err(e) = f.write_all(line.as_bytes()) {
                log::warn!("cannot write {}: {e}", self.path.display());
                *slot = None;
            }
        }
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
mod tests {
    use super::*;

    #[test]
    fn fields_cannot_forge_lines_or_grow_without_bound() {
        assert_eq!(field("box2"), "box2");
        assert_eq!(field("a\tb\nFORGED\r"), "a\\tb\\nFORGED\\r");
        let long = field(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_FIELD + 1);
    }

    #[test]
    fn lines_are_appended_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(ActivityLog::new(tmp.path()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        log.record(&format!("peer{t}"), &format!("download a{i}"), "ok");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 200);
        assert!(text
            .lines()
            .all(|l| l.split('\t').count() == 4 && l.ends_with("ok")));
    }
}
