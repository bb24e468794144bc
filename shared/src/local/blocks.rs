//! The block cache: the block list of every big file this box hashed, so that an unchanged
//! file is never read again to learn its blocks (`docs/blocks.md`).
//!
//! Like the stat cache ([`super::cache`]) it is keyed by inode and checked against the file's
//! whole [`Stamp`], and it is kept beside it in a file of its own, `.minibox/block-cache`. A
//! block list is longer than the stat cache's 48 bytes (16 bytes per block: 16 KiB for a 1 GiB
//! file), so the file is read only when a block list is wanted: a round with nothing big to move
//! never loads it. Each list also keeps the file's name, so that a download can look for the
//! blocks it needs in any file of the box whose list is here.
//!
//! [`digest_blocks`] reads a file once for both its MD5 and its block list, the two MD5s on two
//! cores, so the block list costs no more time than the MD5 alone.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::atomic::write_atomically;
use super::fast::sink::BackgroundHasher;
use super::scan::Stamp;
use crate::protocol::blocks::{BlockHasher, BlockList};
use crate::protocol::md5::Md5;
use crate::protocol::name::META_DIR;

/// One cached block list: which file, with which stamp, and its blocks.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The file's name in the box when it was hashed.
    pub path: String,
    /// Its stamp then.
    pub stamp: Stamp,
    /// Its blocks.
    pub list: Arc<BlockList>,
}

/// The first bytes of a block-cache file: its format.
const MAGIC: &[u8; 8] = b"mbxblks1";

/// The per-box block cache (see the module docs). Shared between threads; saved atomically.
pub struct BlockCache {
    /// The box folder.
    root: PathBuf,
    /// Where it is saved (`.minibox/block-cache`).
    file: PathBuf,
    /// inode → list; `None` until first used.
    map: Mutex<Option<HashMap<u64, Listed>>>,
    /// Set when something changed since the last save.
    dirty: AtomicBool,
}

impl BlockCache {
    /// The block cache of the box at `root`; nothing is read yet.
    pub fn new(root: &Path) -> Self {
        BlockCache {
            root: root.to_path_buf(),
            file: root.join(META_DIR).join("block-cache"),
            map: Mutex::new(None),
            dirty: AtomicBool::new(false),
        }
    }

    /// Runs `f` on the map, loading it first if this is its first use. A missing or corrupt
    /// file starts empty: the cache is only ever a shortcut.
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<u64, Listed>) -> T) -> T {
        let mut map = crate::util::lock(&self.map);
        let map = map.get_or_insert_with(|| {
            fs::read(&self.file)
                .ok()
                .and_then(|b| decode(&b))
                .unwrap_or_default()
        });
        f(map)
    }

    /// The block list of the file with `stamp`, if it was hashed with exactly that stamp.
    pub fn get(&self, stamp: &Stamp) -> Option<Arc<BlockList>> {
        self.with(|map| {
            map.get(&stamp.inode)
                .filter(|l| l.stamp == *stamp)
                .map(|l| Arc::clone(&l.list))
        })
    }

    /// Records that the file `path` with `stamp` has the blocks of `list`.
    pub fn put(&self, path: &str, stamp: Stamp, list: Arc<BlockList>) {
        let path = path.to_string();
        self.with(|map| map.insert(stamp.inode, Listed { path, stamp, list }));
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Every list the cache holds (some may be stale: check a file's stamp before using it).
    pub fn lists(&self) -> Vec<Listed> {
        self.with(|map| map.values().cloned().collect())
    }

    /// Writes the cache to disk if it changed, without the lists of files that are no longer
    /// at their name with their stamp.
    ///
    /// # Errors
    /// If `.minibox/` cannot be written.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let bytes = self.with(|map| {
            let at = |l: &Listed| fs::symlink_metadata(self.root.join(&l.path)).ok();
            map.retain(|_, l| at(l).is_some_and(|m| Stamp::of(&m) == l.stamp));
            encode(map)
        });
        write_atomically(&self.file, &bytes)
            .inspect_err(|_| self.dirty.store(true, Ordering::Relaxed))
    }
}

/// The cache file's bytes: after the format tag, per list its inode, size, mtime and ctime (8
/// bytes each), the name's length and the block count (4 each), the name, the MD5s.
fn encode(map: &HashMap<u64, Listed>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for l in map.values() {
        let s = &l.stamp;
        out.extend_from_slice(&s.inode.to_le_bytes());
        out.extend_from_slice(&s.size.to_le_bytes());
        out.extend_from_slice(&s.mtime_ns.to_le_bytes());
        out.extend_from_slice(&s.ctime_ns.to_le_bytes());
        out.extend_from_slice(&(l.path.len() as u32).to_le_bytes());
        out.extend_from_slice(&(l.list.len() as u32).to_le_bytes());
        out.extend_from_slice(l.path.as_bytes());
        l.list.md5s.iter().for_each(|m| out.extend_from_slice(&m.0));
    }
    out
}

/// Reads a cache file; `None` if it is not one (another format, cut short, a list whose count
/// does not fit its size).
fn decode(bytes: &[u8]) -> Option<HashMap<u64, Listed>> {
    let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let mut map = HashMap::new();
    while !rest.is_empty() {
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
            rest = tail;
            Some(head)
        };
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let half = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize;
        let (inode, size) = (word(take(8)?), word(take(8)?));
        let (mtime, ctime) = (word(take(8)?) as i64, word(take(8)?) as i64);
        let (name_len, count) = (half(take(4)?), half(take(4)?));
        let path = String::from_utf8(take(name_len)?.to_vec()).ok()?;
        let md5s = take(count.checked_mul(16)?)?
            .chunks_exact(16)
            .map(|c| Md5(c.try_into().unwrap_or_default()))
            .collect();
        let list = Arc::new(BlockList::new(size, md5s)?);
        let stamp = Stamp {
            size,
            mtime_ns: mtime,
            ctime_ns: ctime,
            inode,
        };
        map.insert(inode, Listed { path, stamp, list });
    }
    Some(map)
}

/// Reads `file` (of `size` bytes, as its stamp said) once and returns its MD5 and its list of
/// blocks of `block` bytes (the protocol's size for it is `block_size(size)`), telling
/// `progress` the blocks closed so far as it goes. The block MD5s are computed
/// here, the whole file's on a second thread ([`BackgroundHasher`]): two MD5s per byte in the
/// time of one.
///
/// # Errors
/// If the file cannot be read, or `progress` fails.
pub fn digest_blocks(
    mut file: &File,
    size: u64,
    block: u64,
    progress: &mut dyn FnMut(&[Md5]) -> io::Result<()>,
) -> io::Result<(Md5, BlockList)> {
    let whole = BackgroundHasher::start(2)?;
    let mut blocks = BlockHasher::new(block);
    let mut end = false;
    while !end {
        let mut buf = whole.buffer();
        while !buf.is_full() {
            match file.read(buf.spare()) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => buf.filled(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        blocks.update(buf.data());
        whole.submit(buf);
        progress(blocks.done())?;
    }
    let md5s = blocks.finish();
    if md5s.len() as u64 != size.div_ceil(block.max(1)) {
        return Err(io::Error::other("the file changed size while it was read"));
    }
    let list = BlockList {
        size,
        block_size: block,
        md5s,
    };
    Ok((whole.finish(), list))
}

#[cfg(test)]
mod tests;
