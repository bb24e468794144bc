//! MD5 by streaming, and the cache that spares re-hashing files that did not change.
//!
//! Both peers compute MD5s: the sender to say what it sent, the receiver to check what it got.
//! Hashing reads every byte, so it is the cost floor of a transfer; [`md5_file`] streams through a
//! large buffer so memory stays flat whatever the file size.
//!
//! Reading a whole box to answer `hash checkall` or to start a sync round would be slow, so each
//! box keeps a [`HashCache`] in `.minibox/hashes.json`: for every file, the *stamp* it had when it
//! was hashed (size, mtime to the nanosecond, ctime, inode) and the MD5. If the stamp still
//! matches, the file has not been touched and the cached MD5 is right. An edit that keeps the size
//! and lands in the same second still changes the nanoseconds and the ctime (which no user tool
//! can set back), so it is still seen.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::META_DIR;

/// Buffer size for streaming file data: large enough that system calls cost nothing next to
/// hashing, small enough to stay in cache.
pub const BUF_SIZE: usize = 256 * 1024;

/// A running MD5.
#[derive(Clone, Default)]
pub struct Hasher(Md5);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Hasher(Md5::new())
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The lowercase hex digest.
    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// MD5 of everything `reader` yields.
///
/// # Errors
/// Whatever the reader returns.
pub fn md5_reader<R: Read>(mut reader: R) -> io::Result<String> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// MD5 of a regular file's contents. The file is opened with
/// [`crate::paths::open_for_reading`], so a FIFO or a final symbolic link is refused at once
/// instead of blocking or being followed.
///
/// # Errors
/// If the file cannot be opened or read, or is not a regular file.
pub fn md5_file(path: &Path) -> io::Result<String> {
    md5_reader(crate::paths::open_for_reading(path)?.0)
}

/// Files at least this large are hashed on a second thread while the caller moves the bytes
/// (see [`BackgroundHasher`]); below it, a thread costs more than it saves.
pub const BACKGROUND_MIN: u64 = 4 * 1024 * 1024;

/// An MD5 computed on a thread of its own, fed with buffers.
///
/// Receiving a file means three jobs per buffer: read it from the socket, write it to disk, hash
/// it. The first two are system calls, the third is pure CPU, and on a machine with two cores
/// they can run side by side: the caller does the I/O and hands each filled buffer over a channel
/// to the hasher thread, which hands it back empty. A fixed set of buffers circulates, so memory
/// stays flat and a slow hasher makes the reader wait instead of piling up data.
pub struct BackgroundHasher {
    /// Filled buffers on their way to the hasher; dropping it tells the hasher to finish.
    full: Option<crossbeam_channel::Sender<Vec<u8>>>,
    /// Buffers the hasher is done with.
    empty: crossbeam_channel::Receiver<Vec<u8>>,
    /// The hasher thread; it returns the digest.
    thread: Option<std::thread::JoinHandle<String>>,
}

impl BackgroundHasher {
    /// Starts the hasher thread with `buffers` buffers of [`BUF_SIZE`] bytes.
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn start(buffers: usize) -> io::Result<Self> {
        let (full_tx, full_rx) = crossbeam_channel::bounded::<Vec<u8>>(buffers);
        let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(buffers);
        for _ in 0..buffers {
            let _ = empty_tx.send(vec![0u8; BUF_SIZE]);
        }
        let thread = std::thread::Builder::new()
            .name("md5".into())
            .spawn(move || {
                let mut hasher = Hasher::new();
                for buf in full_rx {
                    hasher.update(&buf);
                    // Never block here: if the owner has gone, or handed in a buffer of its
                    // own, the spare is simply freed.
                    let _ = empty_tx.try_send(buf);
                }
                hasher.finish()
            })?;
        Ok(BackgroundHasher {
            full: Some(full_tx),
            empty: empty_rx,
            thread: Some(thread),
        })
    }

    /// An empty buffer of [`BUF_SIZE`] bytes to fill (waits while all are with the hasher).
    pub fn buffer(&self) -> Vec<u8> {
        let mut buf = self.empty.recv().unwrap_or_default();
        buf.resize(BUF_SIZE, 0);
        buf
    }

    /// Hands over a buffer whose length is the number of valid bytes.
    pub fn submit(&self, buf: Vec<u8>) {
        if let Some(full) = &self.full {
            let _ = full.send(buf);
        }
    }

    /// Waits for the hasher to finish and returns the lowercase hex MD5 of everything submitted.
    ///
    /// # Panics
    /// If the hasher thread panicked (it only hashes bytes; it cannot).
    pub fn finish(mut self) -> String {
        self.full = None;
        self.thread
            .take()
            .map(|t| t.join().expect("the md5 thread only hashes bytes"))
            .unwrap_or_default()
    }
}

impl Drop for BackgroundHasher {
    fn drop(&mut self) {
        // Abandoned mid-way (an error): close the channel and join, so no thread outlives us.
        self.full = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status-change time, ns since the epoch: moves on any write, chmod or rename.
    pub ctime_ns: i64,
    /// Inode number: a file replaced by another gets a new one.
    pub inode: u64,
}

impl Stamp {
    /// The stamp of a file as `lstat` sees it now.
    pub fn of(meta: &Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            size: meta.len(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
            inode: meta.ino(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    stamp: Stamp,
    md5: String,
}

/// The per-box cache of MD5s, keyed by relative name and checked against the file's [`Stamp`].
/// Shared between threads; saved atomically.
pub struct HashCache {
    /// Where it is saved (`.minibox/hashes.json`).
    file: PathBuf,
    /// name → (stamp when hashed, MD5).
    map: Mutex<HashMap<String, Cached>>,
    /// Set when something changed since the last save.
    dirty: AtomicBool,
}

impl HashCache {
    /// Loads the cache of the box at `root`. A missing or unreadable cache starts empty: it is
    /// only ever a shortcut.
    pub fn open(root: &Path) -> Self {
        let file = root.join(META_DIR).join("hashes.json");
        let map = fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        HashCache {
            file,
            map: Mutex::new(map),
            dirty: AtomicBool::new(false),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A thread that panicked while holding the lock left a map that is still a valid cache.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached MD5 of `name`, if the file still has the stamp it had when hashed.
    pub fn get(&self, name: &str, stamp: &Stamp) -> Option<String> {
        self.map()
            .get(name)
            .filter(|c| c.stamp == *stamp)
            .map(|c| c.md5.clone())
    }

    /// Records that the file `name` with `stamp` has MD5 `md5`.
    pub fn put(&self, name: &str, stamp: Stamp, md5: String) {
        self.map().insert(name.to_string(), Cached { stamp, md5 });
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The MD5 of the file `name` at `path`, from the cache when the stamp matches, otherwise
    /// read and remembered. If the file changes while it is read, the result is not remembered.
    ///
    /// # Errors
    /// If the file cannot be read.
    pub fn md5(&self, name: &str, path: &Path) -> io::Result<String> {
        let before = Stamp::of(&fs::symlink_metadata(path)?);
        if let Some(md5) = self.get(name, &before) {
            return Ok(md5);
        }
        let md5 = md5_file(path)?;
        if Stamp::of(&fs::symlink_metadata(path)?) == before {
            self.put(name, before, md5.clone());
        }
        Ok(md5)
    }

    /// Drops entries whose names are not in `keep` (files deleted since).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut map = self.map();
        let before = map.len();
        map.retain(|name, _| keep(name));
        if map.len() != before {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Writes the cache to disk if it changed: to a temporary file first, then renamed over the
    /// old one, so a crash leaves either the old cache or the new one, never half of one.
    ///
    /// # Errors
    /// If `.minibox/` cannot be written.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&*self.map()).map_err(io::Error::other)?;
        write_atomically(&self.file, &bytes)
            .inspect_err(|_| self.dirty.store(true, Ordering::Relaxed))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so readers
/// see the old contents or the new, never a mix.
///
/// # Errors
/// If the folder cannot be created or written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // Unique per call, not only per process: two server threads saving the hash cache at once
    // must not write into the same temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            md5_reader(&b""[..]).unwrap(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            md5_reader(&b"The quick brown fox jumps over the lazy dog"[..]).unwrap(),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        let big = vec![7u8; BUF_SIZE * 3 + 5];
        let mut h = Hasher::new();
        h.update(&big);
        assert_eq!(md5_reader(big.as_slice()).unwrap(), h.finish());
    }

    #[test]
    fn the_background_hasher_agrees_with_the_plain_one() {
        let data = vec![42u8; BUF_SIZE * 5 + 17];
        let bg = BackgroundHasher::start(3).unwrap();
        for chunk in data.chunks(BUF_SIZE / 2 + 1) {
            let mut buf = bg.buffer();
            buf.truncate(chunk.len());
            buf.copy_from_slice(chunk);
            bg.submit(buf);
        }
        assert_eq!(bg.finish(), md5_reader(data.as_slice()).unwrap());
        // Dropped half-way: no hang, no leak.
        let bg = BackgroundHasher::start(2).unwrap();
        bg.submit(vec![1, 2, 3]);
        drop(bg);
    }

    #[test]
    fn the_cache_notices_a_same_size_edit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "aaaa").unwrap();
        let cache = HashCache::open(tmp.path());
        let first = cache.md5("f", &path).unwrap();
        assert_eq!(cache.md5("f", &path).unwrap(), first, "served from cache");
        fs::write(&path, "bbbb").unwrap();
        let second = cache.md5("f", &path).unwrap();
        assert_ne!(first, second);
        assert_eq!(second, md5_file(&path).unwrap());
    }

    #[test]
    fn the_cache_survives_a_save_and_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "data").unwrap();
        let cache = HashCache::open(tmp.path());
        let md5 = cache.md5("f", &path).unwrap();
        cache.save().unwrap();
        let stamp = Stamp::of(&fs::symlink_metadata(&path).unwrap());
        assert_eq!(HashCache::open(tmp.path()).get("f", &stamp), Some(md5));
        // A corrupt cache file is ignored, not fatal.
        fs::write(tmp.path().join(META_DIR).join("hashes.json"), "{not json").unwrap();
        assert_eq!(HashCache::open(tmp.path()).get("f", &stamp), None);
    }
}
