//! MD5 by streaming, and the stat cache that spares re-hashing files that did not change.
//!
//! Both peers compute MD5s: the sender to say what it sent, the receiver to check what it got.
//! Hashing reads every byte, so it is the cost floor of a transfer; [`md5_file`] streams through a
//! large buffer so memory stays flat whatever the file size. In memory an MD5 is an [`Md5`]: its
//! 16 bytes, not the 32-character text the wire and the shell show, because a box of 100,000
//! files holds several of them per file.
//!
//! Reading a whole box to answer `hash checkall` or to start a sync round would be slow, so each
//! box keeps a [`HashCache`] in `.minibox/stat-cache`: for every file it hashed, the *stamp* the
//! file had then (size, mtime to the nanosecond, ctime, inode) and the MD5. If a file's stamp
//! still matches, it has not been touched and the cached MD5 is right. An edit that keeps the size
//! and lands in the same second still changes the nanoseconds and the ctime (which no user tool
//! can set back), so it is still seen.
//!
//! The cache is keyed by inode number, not by name, so it holds no names at all: 48 bytes per
//! file, where names and hex digests took three times that. The whole stamp must still match, so
//! an inode number freed by a deleted file and given to a new one cannot fool it (the new file
//! has its own ctime), and a renamed file, whose ctime the rename moves, is read once more.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use md5::Digest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::META_DIR;

/// Buffer size for streaming file data: large enough that system calls cost nothing next to
/// hashing, small enough to stay in cache.
pub const BUF_SIZE: usize = 256 * 1024;

/// An MD5 digest: 16 bytes. Shown, sent and stored as 32 lowercase hex digits; ordered like
/// that text.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Md5(pub [u8; 16]);

impl Md5 {
    /// The MD5 of `bytes`.
    pub fn of(bytes: &[u8]) -> Md5 {
        let mut h = Hasher::new();
        h.update(bytes);
        h.digest()
    }
}

impl fmt::Display for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5({self})")
    }
}

/// Why a text is not an MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotMd5(pub String);

impl fmt::Display for NotMd5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not an MD5 (32 hex digits)",
            crate::activity::field(&self.0)
        )
    }
}

impl std::error::Error for NotMd5 {}

impl FromStr for Md5 {
    type Err = NotMd5;

    /// Reads 32 hex digits (either case).
    fn from_str(text: &str) -> Result<Self, NotMd5> {
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return Err(NotMd5(text.to_string()));
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
                _ => return Err(NotMd5(text.to_string())),
            }
        }
        Ok(Md5(out))
    }
}

impl Serialize for Md5 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Md5 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A running MD5.
#[derive(Clone, Default)]
pub struct Hasher(md5::Md5);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Hasher(md5::Md5::new())
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The digest.
    pub fn digest(self) -> Md5 {
        Md5(self.0.finalize().into())
    }
    /// The lowercase hex digest.
    pub fn finish(self) -> String {
        self.digest().to_string()
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
pub fn digest_reader<R: Read>(reader: R) -> io::Result<Md5> {
    digest_reader_with(reader, &mut |_| Ok(()))
}

/// [`digest_reader`], telling `progress` the bytes hashed so far after each buffer (a server
/// uses it to tell its client, during a long hash, that it is still there). An error from
/// `progress` stops the hashing.
///
/// # Errors
/// Whatever the reader or `progress` returns.
pub fn digest_reader_with<R: Read>(
    mut reader: R,
    progress: &mut dyn FnMut(u64) -> io::Result<()>,
) -> io::Result<Md5> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.digest()),
            Ok(n) => {
                hasher.update(&buf[..n]);
                done += n as u64;
                progress(done)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// MD5 of everything `reader` yields, as lowercase hex.
///
/// # Errors
/// Whatever the reader returns.
pub fn md5_reader<R: Read>(reader: R) -> io::Result<String> {
    digest_reader(reader).map(|d| d.to_string())
}

/// MD5 of a regular file's contents. The file is opened with
/// [`crate::paths::open_for_reading`], so a FIFO or a final symbolic link is refused at once
/// instead of blocking or being followed.
///
/// # Errors
/// If the file cannot be opened or read, or is not a regular file.
pub fn digest_file(path: &Path) -> io::Result<Md5> {
    digest_reader(crate::paths::open_for_reading(path)?.0)
}

/// [`digest_file`] as lowercase hex.
///
/// # Errors
/// As [`digest_file`].
pub fn md5_file(path: &Path) -> io::Result<String> {
    digest_file(path).map(|d| d.to_string())
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
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Cached>> {
        // A thread that panicked while holding the lock left a map that is still a valid cache.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
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

    /// The MD5 of the file at `path`, from the cache when its stamp matches, otherwise read and
    /// remembered. If the file changes while it is read, the result is not remembered.
    ///
    /// # Errors
    /// If the file cannot be read.
    pub fn md5(&self, path: &Path) -> io::Result<Md5> {
        self.md5_with(path, &mut |_, _| Ok(()))
    }

    /// [`HashCache::md5`], telling `progress` (bytes done, bytes in all) how a long read goes.
    ///
    /// # Errors
    /// If the file cannot be read, or `progress` fails.
    pub fn md5_with(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64) -> io::Result<()>,
    ) -> io::Result<Md5> {
        if let Some(md5) = self.get(&Stamp::of(&fs::symlink_metadata(path)?)) {
            return Ok(md5);
        }
        let (file, meta) = crate::paths::open_for_reading(path)?;
        self.md5_of_open(&file, Stamp::of(&meta), progress)
    }

    /// [`HashCache::md5_with`] for a file already open, whose stamp was `before` when it was
    /// opened: the bytes hashed are that file's whatever its name leads to by now, and the MD5
    /// is remembered only if the file's own stamp did not move while it was read.
    ///
    /// # Errors
    /// If the file cannot be read, or `progress` fails.
    pub fn md5_of_open(
        &self,
        file: &File,
        before: Stamp,
        progress: &mut dyn FnMut(u64, u64) -> io::Result<()>,
    ) -> io::Result<Md5> {
        if let Some(md5) = self.get(&before) {
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
    if records.len() % CACHE_RECORD != 0 {
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
        assert_eq!(Md5::of(&big), digest_reader(big.as_slice()).unwrap());
    }

    #[test]
    fn md5s_read_and_print_as_hex_and_order_like_their_text() {
        let text = "9e107d9d372bb6826bd81d3542a419d6";
        let md5: Md5 = text.parse().unwrap();
        assert_eq!(md5.to_string(), text);
        assert_eq!(
            "9E107D9D372BB6826BD81D3542A419D6".parse::<Md5>().unwrap(),
            md5
        );
        assert_eq!(serde_json::to_string(&md5).unwrap(), format!("\"{text}\""));
        assert_eq!(
            serde_json::from_str::<Md5>(&format!("\"{text}\"")).unwrap(),
            md5
        );
        for bad in [
            "",
            "9e10",
            "9e107d9d372bb6826bd81d3542a419dz",
            &format!("{text}0"),
        ] {
            assert!(bad.parse::<Md5>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Md5>("\"nope\"").is_err());
        let (a, b) = (Md5::of(b"a"), Md5::of(b"b"));
        assert_eq!(a < b, a.to_string() < b.to_string());
    }

    #[test]
    fn the_cache_notices_a_same_size_edit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "aaaa").unwrap();
        let cache = HashCache::open(tmp.path());
        let first = cache.md5(&path).unwrap();
        let stamp = Stamp::of(&fs::symlink_metadata(&path).unwrap());
        assert_eq!(cache.get(&stamp), Some(first), "remembered");
        fs::write(&path, "bbbb").unwrap();
        let edited = Stamp::of(&fs::symlink_metadata(&path).unwrap());
        assert_eq!(edited.inode, stamp.inode, "the same inode");
        assert_eq!(
            cache.get(&edited),
            None,
            "the new stamp is not the cached one"
        );
        let second = cache.md5(&path).unwrap();
        assert_ne!(first, second);
        assert_eq!(second, digest_file(&path).unwrap());
    }

    #[test]
    fn the_cache_follows_a_renamed_file_and_forgets_deleted_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::write(&a, "data").unwrap();
        let cache = HashCache::open(tmp.path());
        let md5 = cache.md5(&a).unwrap();
        fs::rename(&a, &b).unwrap();
        // A rename moves the ctime: the cache sees a new stamp, so the file is read again (and
        // remembered under its new stamp), but the entry is the same inode's, not a second one.
        assert_eq!(cache.md5(&b).unwrap(), md5);
        assert_eq!(cache.len(), 1);
        cache.retain(|_| false);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_survives_a_save_and_reload_and_shrugs_off_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "data").unwrap();
        let cache = HashCache::open(tmp.path());
        let md5 = cache.md5(&path).unwrap();
        cache.save().unwrap();
        let stamp = Stamp::of(&fs::symlink_metadata(&path).unwrap());
        assert_eq!(HashCache::open(tmp.path()).get(&stamp), Some(md5));
        let file = tmp.path().join(META_DIR).join("stat-cache");
        let saved = fs::metadata(&file).unwrap().modified().unwrap();
        cache.put(stamp, md5);
        cache.save().unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().modified().unwrap(),
            saved,
            "nothing new: not written again"
        );
        // A corrupt or cut cache file is ignored, not fatal.
        let bytes = fs::read(&file).unwrap();
        fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(HashCache::open(tmp.path()).get(&stamp), None);
        fs::write(&file, "{not a cache").unwrap();
        assert_eq!(HashCache::open(tmp.path()).get(&stamp), None);
    }
}
