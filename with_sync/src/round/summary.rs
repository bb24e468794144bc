//! What a round did: how each action ended, one log line each, and the summary the shell,
//! `--once` and the log show.

use minibox::protocol::error::Error;
use minibox::shell::output::human_size;
use serde_json::{json, Value};

use crate::plan::Action;

/// How one action ended.
pub enum Step {
    /// Done; the log line's outcome.
    Done(String),
    /// Put off to the next round, and why.
    Skipped(String),
    /// Already logged and counted (a download carried out through its batch).
    Logged,
}

/// The log line's "what" for an action.
pub fn describe(action: &Action) -> String {
    match action {
        Action::Rename { from, .. } => format!("sync conflict {from:?}"),
        Action::Delete { path, .. } => format!("sync delete {path:?}"),
        Action::RemoveDir { path } => format!("sync remove folder {path:?}"),
        Action::MakeDir { path, .. } => format!("sync make folder {path:?}"),
        Action::Download { path, to, .. } if path == to => format!("sync download {path:?}"),
        Action::Download { path, .. } => format!("sync conflict {path:?}"),
        Action::SetMeta { path, .. } => format!("sync set bits/mtime {path:?}"),
        Action::Move { from, to, .. } => format!("sync rename {from:?} -> {to:?}"),
    }
}

/// What a round did, for the shell, `--once` and the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The peer's name.
    pub peer: String,
    /// Files downloaded (conflict copies included).
    pub downloaded: usize,
    /// File bytes received from the peer.
    pub bytes: u64,
    /// File bytes that arrived here without crossing the wire: copied from this box (whole
    /// files or blocks), kept from a partial download, or renamed.
    pub reused: u64,
    /// Files renamed (or moved) as the peer renamed them.
    pub moved: usize,
    /// Files moved to the trash because the peer deleted them (or to make room for a folder).
    pub deleted: usize,
    /// Folders made.
    pub folders_made: usize,
    /// Empty folders moved to the trash.
    pub folders_removed: usize,
    /// Conflicts found (each keeps both versions).
    pub conflicts: usize,
    /// Changes made here that the peer has not pulled yet (it takes them in its own round).
    pub waiting: usize,
    /// Files and folders whose permission bits or mtime were set, no data moved.
    pub metadata: usize,
    /// Actions put off to the next round (a file changed during the round, the peer's file
    /// changed since it was listed, a busy path).
    pub skipped: usize,
    /// Actions that failed.
    pub failed: usize,
    /// The first few failures, one sentence each.
    pub errors: Vec<String>,
}

impl Summary {
    /// Whether the round changed anything here.
    pub fn changed(&self) -> bool {
        self.downloaded
            + self.moved
            + self.deleted
            + self.folders_made
            + self.folders_removed
            + self.metadata
            > 0
    }

    /// One line for people.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        let mut count = |n: usize, one: &str, many: &str| {
            if n > 0 {
                parts.push(format!("{n} {}", if n == 1 { one } else { many }));
            }
        };
        count(self.downloaded, "downloaded", "downloaded");
        count(self.moved, "renamed", "renamed");
        count(self.deleted, "deleted", "deleted");
        count(self.folders_made, "folder made", "folders made");
        count(self.folders_removed, "folder removed", "folders removed");
        count(self.conflicts, "conflict", "conflicts");
        count(
            self.metadata,
            "permission/mtime update",
            "permission/mtime updates",
        );
        count(
            self.skipped,
            "put off to the next round",
            "put off to the next round",
        );
        count(self.failed, "failed", "failed");
        let peer = &self.peer;
        let mut text = match (parts.is_empty(), self.waiting) {
            (true, 0) => format!("synced with {peer}: already in sync"),
            (true, _) => format!("synced with {peer}: nothing to pull"),
            (false, _) => format!("synced with {peer}: {}", parts.join(", ")),
        };
        match (self.bytes, self.reused) {
            (0, 0) => {}
            (got, 0) => text.push_str(&format!(" ({} received)", human_size(got))),
            (got, kept) => text.push_str(&format!(
                " ({} received, {} taken from this box)",
                human_size(got),
                human_size(kept)
            )),
        }
        if self.waiting > 0 {
            let n = self.waiting;
            let s = if n == 1 { "" } else { "s" };
            text.push_str(&format!(
                "; {peer} has yet to pull {n} change{s} made here (it does in its own round)"
            ));
        }
        for e in &self.errors {
            text.push_str(&format!("\n  error: {e}"));
        }
        text
    }

    /// The JSON object for `--json` (under `"sync"`).
    pub fn json(&self) -> Value {
        json!({
            "peer": self.peer,
            "downloaded": self.downloaded,
            "bytes": self.bytes,
            "reused": self.reused,
            "moved": self.moved,
            "deleted": self.deleted,
            "folders_made": self.folders_made,
            "folders_removed": self.folders_removed,
            "conflicts": self.conflicts,
            "waiting": self.waiting,
            "metadata": self.metadata,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": self.errors,
        })
    }
}

impl Summary {
    /// Counts an action that was carried out.
    pub fn count(&mut self, action: &Action) {
        match action {
            Action::Rename { .. } => {}
            Action::Delete { .. } => self.deleted += 1,
            Action::RemoveDir { .. } => self.folders_removed += 1,
            Action::MakeDir { .. } => self.folders_made += 1,
            // The bytes are counted where they moved (see `Summary::tally`).
            Action::Download { .. } => self.downloaded += 1,
            Action::SetMeta { .. } => self.metadata += 1,
            Action::Move { version, .. } => {
                self.moved += 1;
                self.reused += version.size;
            }
        }
    }

    /// Counts the file bytes of a download: `received` from the peer, `reused` from this box.
    pub fn tally(&mut self, received: u64, reused: u64) {
        self.bytes += received;
        self.reused += reused;
    }

    /// Counts a failed action, keeping the first few sentences.
    pub fn note_failure(&mut self, what: &str, e: &Error) {
        self.failed += 1;
        if self.errors.len() < 5 {
            self.errors.push(format!("{what}: {e}"));
        }
    }
}
