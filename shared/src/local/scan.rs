//! Scanning a box: what is in it, as the index and the wire describe it.
//!
//! A scan walks the box folder and makes one [`Scanned`] per regular file and folder: its
//! `/`-separated name, permission bits and [`Stamp`] (size, mtime to the nanosecond, ctime,
//! inode). Left out on purpose, each with a log line: minibox's own `.minibox/` folder, symbolic
//! links (following them could leave the box), special files, and names that are not clean
//! UTF-8 paths (a peer could not ask for them). A folder that cannot be read is skipped.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::gate::name_of;
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, Kind, MODE_MASK};
use crate::protocol::name::META_DIR;
use crate::protocol::sync::Version;

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status-change time, ns: moves on any write, chmod or rename, and no tool sets it back.
    pub ctime_ns: i64,
    /// Inode number: a file replaced by another gets a new one.
    pub inode: u64,
}

impl Stamp {
    /// The stamp of a file as `lstat` (or `fstat`) saw it.
    pub fn of(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000) + n;
        Stamp {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }
}

/// One scanned file or folder. Kept small (no MIME type, no MD5): a box of 100,000 files is
/// scanned into 100,000 of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Path in the box, `/`-separated.
    pub path: String,
    /// File or folder.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Its identity on disk.
    pub stamp: Stamp,
}

impl Scanned {
    /// The item as the wire and the shell see it (with its MIME type; no MD5).
    pub fn entry(&self) -> Entry {
        let dir = self.kind == Kind::Dir;
        Entry {
            path: self.path.clone(),
            kind: self.kind,
            size: if dir { 0 } else { self.stamp.size },
            mtime_ns: self.stamp.mtime_ns,
            mode: self.mode,
            mime: if dir {
                "inode/directory".into()
            } else {
                mime_of(&self.path)
            },
            md5: None,
        }
    }

    /// Stage 3: the item's version for sync, given the file's MD5 (`None` for a folder).
    pub fn version(&self, md5: Option<Md5>) -> Version {
        match (self.kind, md5) {
            (Kind::File, Some(md5)) => {
                Version::file(md5, self.stamp.size, self.mode, self.stamp.mtime_ns)
            }
            _ => Version::dir(self.mode),
        }
    }
}

/// The entry for `name` from its metadata.
pub fn entry_of(name: &str, meta: &Metadata) -> Entry {
    scanned_of(name.to_string(), meta).entry()
}

fn scanned_of(path: String, meta: &Metadata) -> Scanned {
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let mode = meta.permissions().mode() & MODE_MASK;
    Scanned {
        path,
        kind,
        mode,
        stamp: Stamp::of(meta),
    }
}

/// The MIME type guessed from a name's extension (`application/octet-stream` when unknown).
pub fn mime_of(name: &str) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// Called with each folder before it is read, and the files and folders found so far.
pub type Before<'a> = &'a mut dyn FnMut(&Path, u64) -> io::Result<()>;

/// `MINIBOX_SLOW_DISK_MS=N` makes every folder take N ms more to read: a slow or cold disk,
/// for the tests that show a server keeping its client waiting through a long scan
/// (`before_thread/tests/slow_scan.rs`).
fn slow_disk() -> Option<std::time::Duration> {
    let ms = std::env::var("MINIBOX_SLOW_DISK_MS")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::Duration::from_millis(ms))
}

/// Scans the box at `root`: every regular file and folder below it, sorted by name.
///
/// # Errors
/// Only if `root` itself cannot be read; trouble further down is logged and skipped.
pub fn scan(root: &Path) -> io::Result<Vec<Scanned>> {
    scan_with(root, &mut |_, _| Ok(()))
}

/// [`scan`], calling `before` with each folder just before it is read and the number of files
/// and folders found so far: a watcher starts watching the folder there (see `fast::scans`), and
/// a server tells a waiting client how far it is (see `crate::serve::keep_alive`).
///
/// # Errors
/// As [`scan`], or what `before` returns (the scan stops there).
pub fn scan_with(root: &Path, before: Before<'_>) -> io::Result<Vec<Scanned>> {
    let pause = slow_disk();
    let mut out = Vec::new();
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        before(&dir, out.len() as u64)?;
        if let Some(pause) = pause {
            std::thread::sleep(pause);
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if dir == root => return Err(e),
            Err(e) => {
                log::warn!("skipping folder {}: {e}", dir.display());
                continue;
            }
        };
        for dirent in entries {
            if let Some(item) = look_at(root, &dir, dirent) {
                if item.kind == Kind::Dir {
                    pending.push(root.join(&item.path));
                }
                out.push(item);
            }
        }
    }
    out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// One entry of a folder, if it belongs in the index. Its metadata comes from `fstatat` on the
/// open folder (`DirEntry::metadata`), which looks at a link itself, never where it points.
fn look_at(root: &Path, dir: &Path, dirent: io::Result<fs::DirEntry>) -> Option<Scanned> {
    let dirent = dirent
        .inspect_err(|e| log::warn!("skipping an entry of {}: {e}", dir.display()))
        .ok()?;
    let path = dirent.path();
    if dir == root && dirent.file_name() == META_DIR {
        return None;
    }
    let meta = dirent
        .metadata()
        .inspect_err(|e| log::warn!("skipping {}: {e}", path.display()))
        .ok()?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_dir() {
        let what = if ft.is_symlink() {
            "symbolic link"
        } else {
            "special file"
        };
        log::info!("skipping {what} {}", path.display());
        return None;
    }
    let Some(name) = name_of(root, &path) else {
        log::warn!(
            "skipping {}: its name cannot be shared safely",
            path.display()
        );
        return None;
    };
    Some(scanned_of(name, &meta))
}

#[cfg(test)]
mod tests;
