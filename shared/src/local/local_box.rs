//! The box this process owns, and the state its threads share: one per-file lock table (a file
//! being installed is never served half-written), one stat cache, one activity log, one trash.
//! Share it with `Arc`.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::auth::Secret;
use super::cache::HashCache;
use super::fast::scans::{Scans, Tell};
use super::gate::open_in_box;
use super::inflight::InFlight;
use super::locks::LockTable;
use super::log::ActivityLog;
use super::partial;
use super::scan::{scan_with, Before, Scanned, Stamp};
use super::trash::Trash;
use crate::protocol::error::{Error, Result};
use crate::protocol::md5::Md5;
use crate::protocol::message::Kind;
use crate::protocol::name::META_DIR;

/// A progress report: bytes done so far, bytes in all. An error stops the work.
pub type HashProgress<'a> = &'a mut dyn FnMut(u64, u64) -> io::Result<()>;

/// One box and its shared state.
pub struct LocalBox {
    /// The box folder (absolute).
    root: PathBuf,
    /// This box's name, told to peers in the handshake.
    name: String,
    /// Per-file locks (stage 2).
    pub locks: LockTable,
    /// The downloads in flight (stage 3: a round and the shell want one file at most once).
    pub inflight: InFlight,
    /// MD5s of files whose stamp has not changed.
    pub hashes: HashCache,
    /// `.minibox/log`.
    pub log: ActivityLog,
    /// `.minibox/trash/`.
    pub trash: Trash,
    /// Numbers temporary files uniquely within this process.
    tmp_counter: AtomicU64,
    /// This process's id, in temporary file names.
    pid: u32,
    /// The shared secret (`--secret-file`), if any: demanded of every peer, proved to every one.
    secret: Option<Secret>,
    /// The last scan, kept while nothing changes (see `fast::scans`).
    scans: Scans,
}

impl LocalBox {
    /// Opens (creating if needed) the box at `root`, named `name`. Leftover temporary files of
    /// a process killed mid-download are removed: they were never installed, so nothing is lost.
    /// Partial downloads by blocks stay to be resumed, unless no one touched them for a day.
    ///
    /// # Errors
    /// If the folder cannot be created or is not a folder.
    pub fn open(root: &Path, name: &str) -> Result<Self> {
        fs::create_dir_all(root.join(META_DIR).join("tmp")).map_err(|e| Error::io(root, e))?;
        let root = fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        remove_stale_temp_files(&root.join(META_DIR).join("tmp"));
        partial::remove_stale(&root.join(META_DIR).join("partial"));
        Ok(LocalBox {
            hashes: HashCache::open(&root),
            log: ActivityLog::new(&root),
            trash: Trash::new(&root.join(META_DIR)),
            locks: LockTable::new(),
            inflight: InFlight::new(),
            root,
            name: name.to_string(),
            tmp_counter: AtomicU64::new(0),
            pid: std::process::id(),
            secret: None,
            scans: Scans::default(),
        })
    }

    /// Opens the box a binary was given: `--dir` (created if missing), an optional `--name`
    /// (default: the folder's name) and an optional `--secret-file`.
    ///
    /// # Errors
    /// If the folder cannot be created, or the secret file cannot be read or is too short.
    pub fn from_args(dir: &Path, name: Option<&str>, secret_file: Option<&Path>) -> Result<Self> {
        if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            return Err(Error::Usage(format!(
                "{} is a file; --dir takes a folder (made if missing)",
                dir.display()
            )));
        }
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = name
            .filter(|n| !n.trim().is_empty())
            .map_or_else(|| default_name(dir), str::to_string);
        let secret = secret_file.map(Secret::from_file).transpose()?;
        Ok(LocalBox::open(dir, &name)?.with_secret(secret))
    }

    /// Gives the box a shared secret (or none), once, right after [`LocalBox::open`].
    pub fn with_secret(mut self, secret: Option<Secret>) -> Self {
        self.secret = secret;
        self
    }

    /// The shared secret, if any.
    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// The box folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This box's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `.minibox/` of this box.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join(META_DIR)
    }

    /// A fresh path for a temporary file in `.minibox/tmp/` (on the box's file system, so that
    /// installing it is a rename, which is atomic), or in `.minibox/tmp/<lane>/`: threads that
    /// create many files at once each take a lane (files created in one folder wait for each
    /// other on its lock).
    pub fn temp_path_in(&self, lane: Option<usize>) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.temp_dir(lane).join(format!("{}-{n}.part", self.pid))
    }

    /// `.minibox/partial/`: downloads by blocks in progress (see [`partial`]).
    pub fn partial_dir(&self) -> PathBuf {
        self.root.join(META_DIR).join("partial")
    }

    /// The folder of [`LocalBox::temp_path_in`]'s files.
    pub fn temp_dir(&self, lane: Option<usize>) -> PathBuf {
        let dir = self.root.join(META_DIR).join("tmp");
        lane.map_or_else(|| dir.clone(), |lane| dir.join(lane.to_string()))
    }

    /// The box as it is now: every regular file and folder, sorted by path. The stat cache
    /// forgets the files that are gone.
    ///
    /// # Errors
    /// If the box folder itself cannot be read.
    pub fn scan(&self) -> io::Result<Arc<Vec<Scanned>>> {
        self.scan_telling(&mut |_| Ok(()))
    }

    /// [`LocalBox::scan`], telling `tell` how many files and folders were read so far (by this
    /// thread's scan, or by the one it waits for).
    ///
    /// # Errors
    /// If the box folder itself cannot be read, or `tell` fails (the scan stops).
    pub fn scan_telling(&self, tell: Tell<'_>) -> io::Result<Arc<Vec<Scanned>>> {
        let fresh = |watch: Before<'_>| {
            let scanned = scan_with(&self.root, watch)?;
            let files = scanned.iter().filter(|s| s.kind == Kind::File).count();
            if self.hashes.len() > files {
                let live: HashSet<u64> = scanned.iter().map(|s| s.stamp.inode).collect();
                self.hashes.retain(|inode| live.contains(&inode));
            }
            Ok(scanned)
        };
        self.scans.get(&fresh, tell)
    }

    /// Makes [`LocalBox::scan`] keep its last scan while nothing changes (a process that serves
    /// the box, or syncs it round after round).
    pub fn keep_scans(&self) {
        self.scans.keep();
    }

    /// The MD5 of a scanned file: from the stat cache if its stamp is the scanned one, otherwise
    /// read now. `None` if it cannot be read or is not the scanned version any more (it is being
    /// written: whoever asked leaves it alone for now).
    pub fn md5_of(&self, item: &Scanned, progress: HashProgress<'_>) -> Option<Md5> {
        if let Some(md5) = self.hashes.get(&item.stamp) {
            return Some(md5);
        }
        let name = &item.path;
        let (file, meta) = open_in_box(&self.root, name)
            .inspect_err(|e| log::info!("cannot read {name}: {e}; left alone"))
            .ok()?;
        if Stamp::of(&meta) == item.stamp {
            let md5 = self
                .hashes
                .md5_of_open(name, &file, item.stamp, progress)
                .ok()?;
            // Remembered only if the file held still while it was read.
            if self.hashes.get(&item.stamp) == Some(md5) {
                return Some(md5);
            }
        }
        log::info!("{name} changed since it was scanned; left alone");
        None
    }
}

/// The name a box goes by when it does not get one: its folder's name.
pub fn default_name(dir: &Path) -> String {
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    name.filter(|n| !n.is_empty())
        .unwrap_or_else(|| "box".to_string())
}

/// Removes `*.part` files (in `dir` and its lanes) whose owning process (the number before the
/// `-`) no longer runs; Linux shows running processes as `/proc/<pid>`.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_stale_temp_files(&entry.path());
            continue;
        }
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let running = owner.is_some_and(|pid| {
            pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
        });
        if !running {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests;
