//! The stat cache: MD5s of files that did not change, so that unchanged files are never read
//! twice. A speed idea, skippable on a first reading: without it every `hash checkall` and every
//! sync round reads every byte of the box (`scripts/bench.sh`, rows `idle-100k` and
//! `edits-1pct`).
//!
//! For every file it hashed, the cache keeps the [`Stamp`] the file had then and the MD5. If
//! the stamp still matches, the file was not touched. An edit that keeps the size and lands in
//! the same second still moves the nanoseconds and the ctime (which no user tool can set back).
//! Keyed by inode, not by name: 48 bytes per file in `.minibox/stat-cache`. The whole stamp must
//! match, so an inode number reused by a new file cannot fool it, and a renamed file (the rename
//! moves its ctime) is read once more.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

pub use super::atomic::write_atomically;
use super::blocks::{digest_blocks, BlockCache};
use super::scan::Stamp;
use crate::protocol::blocks::BY_BLOCKS;
use crate::protocol::md5::{digest_reader_with, Md5};
use crate::protocol::name::META_DIR;

/// What the cache knows of one inode: the rest of the stamp it had when hashed, and the MD5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cached {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    md5: Md5,
}

impl Cached {
    fn matches(&self, stamp: &Stamp) -> bool {
        self.size == stamp.size
            && self.mtime_ns == stamp.mtime_ns
            && self.ctime_ns == stamp.ctime_ns
    }
}

/// The first bytes of a stat-cache file: its format.
const CACHE_MAGIC: &[u8; 8] = b"mbxstat1";
/// Bytes per record: inode, size, mtime, ctime (8 each, little-endian), MD5 (16).
const CACHE_RECORD: usize = 48;

/// The per-box cache of MD5s, keyed by inode and checked against the file's whole [`Stamp`].
/// Shared between threads; saved atomically.
///
/// On disk it is a fixed-size record per file after an 8-byte format tag (see `CACHE_RECORD`):
/// a box of 100,000 files loads in a few milliseconds, where parsing the same facts as JSON took
/// a tenth of a second.
pub struct HashCache {
    /// Where it is saved (`.minibox/stat-cache`).
    file: PathBuf,
    /// inode → (the rest of the stamp when hashed, MD5).
    map: Mutex<HashMap<u64, Cached>>,
    /// Set when something changed since the last save.
    dirty: AtomicBool,
    /// The block lists of big files, beside it (read only when wanted: see `super::blocks`).
    pub blocks: BlockCache,
}

impl HashCache {
    /// Loads the cache of the box at `root`. A missing, unreadable or corrupt cache starts empty:
    /// it is only ever a shortcut.
    pub fn open(root: &Path) -> Self {
        let file = root.join(META_DIR).join("stat-cache");
        let map = fs::read(&file)
            .ok()
            .and_then(|b| decode(&b))
            .unwrap_or_default();
        HashCache {
            file,
            map: Mutex::new(map),
            dirty: AtomicBool::new(false),
            blocks: BlockCache::new(root),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Cached>> {
        // A thread that panicked while holding the lock left a map that is still a valid cache.
        crate::util::lock(&self.map)
    }

    /// The cached MD5 of the file with `stamp`, if it was hashed with exactly that stamp.
    pub fn get(&self, stamp: &Stamp) -> Option<Md5> {
        self.map()
            .get(&stamp.inode)
            .filter(|c| c.matches(stamp))
            .map(|c| c.md5)
    }

    /// Records that the file with `stamp` has MD5 `md5`.
    pub fn put(&self, stamp: Stamp, md5: Md5) {
        let cached = Cached {
            size: stamp.size,
            mtime_ns: stamp.mtime_ns,
            ctime_ns: stamp.ctime_ns,
            md5,
        };
        if self.map().insert(stamp.inode, cached) != Some(cached) {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// The MD5 of the open file `name` whose stamp was `before` when it was opened, from the
    /// cache when the stamp matches, otherwise read, telling `progress` (bytes done, in all) as it
    /// goes. The bytes hashed are that file's, whatever its name leads to by now; the MD5 is
    /// remembered only if the file's own stamp did not move while it was read. A big file's
    /// block list is made in the same read and remembered with it (see `super::blocks`).
    ///
    /// # Errors
    /// If the file cannot be read, or `progress` fails.
    pub fn md5_of_open(
        &self,
        name: &str,
        file: &File,
        before: Stamp,
        progress: &mut dyn FnMut(u64, u64) -> io::Result<()>,
    ) -> io::Result<Md5> {
        if let Some(md5) = self.get(&before) {
            return Ok(md5);
        }
        if before.size >= BY_BLOCKS {
            let block = crate::protocol::blocks::block_size(before.size);
            let mut tell = |done: &[Md5]| progress(done.len() as u64 * block, before.size);
            let (md5, list) = digest_blocks(file, before.size, block, &mut tell)?;
            if Stamp::of(&file.metadata()?) == before {
                self.put(before, md5);
                self.blocks.put(name, before, list.into());
            }
            return Ok(md5);
        }
        let md5 = digest_reader_with(file, &mut |done| progress(done, before.size))?;
        if Stamp::of(&file.metadata()?) == before {
            self.put(before, md5);
        }
        Ok(md5)
    }

    /// Drops the entries of inodes for which `keep` says no (files deleted since: a full scan
    /// of the box knows which inodes are still there).
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        let mut map = self.map();
        let before = map.len();
        map.retain(|inode, _| keep(*inode));
        if map.len() != before {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// How many files the cache knows.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether the cache knows no file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the cache to disk if it changed: to a temporary file first, then renamed over the
    /// old one, so a crash leaves either the old cache or the new one, never half of one.
    ///
    /// # Errors
    /// If `.minibox/` cannot be written.
    pub fn save(&self) -> io::Result<()> {
        self.blocks.save()?;
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let bytes = encode(&self.map());
        write_atomically(&self.file, &bytes)
            .inspect_err(|_| self.dirty.store(true, Ordering::Relaxed))
    }
}

/// The cache file's bytes.
fn encode(map: &HashMap<u64, Cached>) -> Vec<u8> {
    let mut out = Vec::with_capacity(CACHE_MAGIC.len() + map.len() * CACHE_RECORD);
    out.extend_from_slice(CACHE_MAGIC);
    for (inode, c) in map {
        out.extend_from_slice(&inode.to_le_bytes());
        out.extend_from_slice(&c.size.to_le_bytes());
        out.extend_from_slice(&c.mtime_ns.to_le_bytes());
        out.extend_from_slice(&c.ctime_ns.to_le_bytes());
        out.extend_from_slice(&c.md5.0);
    }
    out
}

/// Reads a cache file; `None` if it is not one (another format, or cut short).
fn decode(bytes: &[u8]) -> Option<HashMap<u64, Cached>> {
    let records = bytes.strip_prefix(CACHE_MAGIC.as_slice())?;
    if !records.len().is_multiple_of(CACHE_RECORD) {
        return None;
    }
    let word = |r: &[u8], i: usize| -> [u8; 8] {
        let mut w = [0u8; 8];
        w.copy_from_slice(&r[i * 8..i * 8 + 8]);
        w
    };
    let mut map = HashMap::with_capacity(records.len() / CACHE_RECORD);
    for r in records.chunks_exact(CACHE_RECORD) {
        let mut md5 = [0u8; 16];
        md5.copy_from_slice(&r[32..48]);
        map.insert(
            u64::from_le_bytes(word(r, 0)),
            Cached {
                size: u64::from_le_bytes(word(r, 1)),
                mtime_ns: i64::from_le_bytes(word(r, 2)),
                ctime_ns: i64::from_le_bytes(word(r, 3)),
                md5: Md5(md5),
            },
        );
    }
    Some(map)
}

#[cfg(test)]
mod tests;
