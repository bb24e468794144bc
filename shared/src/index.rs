//! The index: what is in a box, and the filters the shell applies to it.
//!
//! A scan walks the box folder recursively and makes one [`Entry`] per regular file and folder:
//! its `/`-separated name, size, mtime to the nanosecond, permission bits and a MIME type guessed
//! from the name. Three things are left out on purpose, each with a log line where it matters:
//! minibox's own `.minibox/` folder, symbolic links (following them could leave the box) and names
//! that are not clean UTF-8 paths (a peer could not ask for them). A folder that cannot be read is
//! reported and skipped; the scan goes on.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::hash::{Hasher, Md5, Stamp};
use crate::paths;
use crate::protocol::{Entry, Filter, Kind};
use crate::META_DIR;

/// The permission bits minibox keeps and syncs: `rwx` for user, group and other. Setuid, setgid
/// and sticky bits are never carried over.
pub const MODE_MASK: u32 = 0o777;

/// One scanned item: a regular file or folder of the box as `lstat` saw it. It is kept small
/// (no MIME type, no MD5): a box of 100,000 files is scanned into 100,000 of these, and a server
/// keeps its last scan (see [`crate::local::LocalBox::scan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Path relative to the box, `/`-separated.
    pub path: String,
    /// File or folder.
    pub kind: Kind,
    /// Permission bits (`rwx` for user, group, other).
    pub mode: u32,
    /// The item's identity on disk (size, mtime, ctime, inode).
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
                "inode/directory".to_string()
            } else {
                mime_of(&self.path)
            },
            md5: None,
        }
    }

    /// The item's version for sync, given the file's MD5 (`None` for a folder).
    pub fn version(&self, md5: Option<Md5>) -> Version {
        match (self.kind, md5) {
            (Kind::File, Some(md5)) => {
                Version::file(md5, self.stamp.size, self.mode, self.stamp.mtime_ns)
            }
            _ => Version::dir(self.mode),
        }
    }
}

/// Builds the entry for `name` from its metadata.
pub fn entry_of(name: &str, meta: &Metadata) -> Entry {
    scanned_of(name.to_string(), meta).entry()
}

fn scanned_of(path: String, meta: &Metadata) -> Scanned {
    Scanned {
        path,
        kind: if meta.is_dir() { Kind::Dir } else { Kind::File },
        mode: meta.permissions().mode() & MODE_MASK,
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

/// Scans the box at `root`: every regular file and folder below it, sorted by name.
///
/// Each folder is read once, and each item is looked at with `fstatat` relative to the open
/// folder (what `DirEntry::metadata` does), not through its whole path: the kernel then walks
/// one name per item, not the path from the root again.
///
/// # Errors
/// Only if `root` itself cannot be read; trouble further down is logged and skipped.
pub fn scan(root: &Path) -> io::Result<Vec<Scanned>> {
    scan_with(root, &mut |_| {})
}

/// [`scan`], calling `before` with each folder (the box's top folder first) just before it is
/// read: a [`crate::watch::Watcher`] starts watching it there, so that no change made during the
/// scan goes unnoticed.
///
/// # Errors
/// As [`scan`].
pub fn scan_with(root: &Path, before: &mut dyn FnMut(&Path)) -> io::Result<Vec<Scanned>> {
    let mut out = Vec::new();
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut first = true;
    while let Some(dir) = pending.pop() {
        before(&dir);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if first => return Err(e),
            Err(e) => {
                log::warn!("skipping folder {}: {e}", dir.display());
                continue;
            }
        };
        first = false;
        for dirent in entries {
            let dirent = match dirent {
                Ok(d) => d,
                Err(e) => {
                    log::warn!("skipping an entry of {}: {e}", dir.display());
                    continue;
                }
            };
            if dir == root && dirent.file_name() == META_DIR {
                continue;
            }
            // Looks at the link itself, never where it points.
            let meta = match dirent.metadata() {
                Ok(m) => m,
                Err(e) => {
                    log::warn!("skipping {}: {e}", dirent.path().display());
                    continue;
                }
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                log::info!("skipping symbolic link {}", dirent.path().display());
                continue;
            }
            if !ft.is_file() && !ft.is_dir() {
                log::info!("skipping special file {}", dirent.path().display());
                continue;
            }
            let path = dirent.path();
            let Some(name) = paths::name_of(root, &path) else {
                log::warn!(
                    "skipping {}: its name cannot be shared safely",
                    path.display()
                );
                continue;
            };
            if ft.is_dir() {
                pending.push(path);
            }
            out.push(scanned_of(name, &meta));
        }
    }
    out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// One version of a path, as sync compares it between the boxes and remembers it as agreed: an
/// [`Entry`] without its name, MIME type and folder mtime, and with the MD5 as 16 bytes.
///
/// Stored (in a box's sync state) as the array `[kind, md5, size, mode, mtime_ns]`: a state
/// holds one per file, and an array is half the bytes of an object and much faster to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "VersionRepr", into = "VersionRepr")]
pub struct Version {
    /// File or folder.
    pub kind: Kind,
    /// MD5 of a file's contents; `None` for a folder.
    pub md5: Option<Md5>,
    /// Size in bytes (0 for a folder).
    pub size: u64,
    /// Permission bits (`rwx` for user, group, other).
    pub mode: u32,
    /// Last modification, ns since the epoch (0 for a folder: a folder's mtime moves whenever
    /// anything inside it changes, so it is not synced).
    pub mtime_ns: i64,
}

/// How a [`Version`] is stored: `[kind, md5, size, mode, mtime_ns]`.
#[derive(Serialize, Deserialize)]
struct VersionRepr(Kind, Option<Md5>, u64, u32, i64);

impl From<VersionRepr> for Version {
    fn from(VersionRepr(kind, md5, size, mode, mtime_ns): VersionRepr) -> Self {
        Version {
            kind,
            md5,
            size,
            mode,
            mtime_ns,
        }
    }
}

impl From<Version> for VersionRepr {
    fn from(v: Version) -> Self {
        VersionRepr(v.kind, v.md5, v.size, v.mode, v.mtime_ns)
    }
}

impl Version {
    /// A file version.
    pub fn file(md5: Md5, size: u64, mode: u32, mtime_ns: i64) -> Self {
        Version {
            kind: Kind::File,
            md5: Some(md5),
            size,
            mode,
            mtime_ns,
        }
    }

    /// A folder version.
    pub fn dir(mode: u32) -> Self {
        Version {
            kind: Kind::Dir,
            md5: None,
            size: 0,
            mode,
            mtime_ns: 0,
        }
    }

    /// The version an index entry describes; `None` for a file whose MD5 is unknown or not an
    /// MD5 (it cannot be compared, so a round leaves it alone). Only the `rwx` bits are kept:
    /// sync never sets setuid, setgid or sticky bits, whatever a peer announces.
    pub fn of_entry(entry: &Entry) -> Option<Self> {
        let mode = entry.mode & MODE_MASK;
        match entry.kind {
            Kind::Dir => Some(Version::dir(mode)),
            Kind::File => entry
                .md5
                .as_deref()
                .and_then(|m| m.parse::<Md5>().ok())
                .map(|md5| Version::file(md5, entry.size, mode, entry.mtime_ns)),
        }
    }

    /// Whether this is a folder.
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// Same kind and, for files, the same bytes (permission bits and mtime aside).
    pub fn same_content(&self, other: &Version) -> bool {
        self.kind == other.kind && self.md5 == other.md5 && self.size == other.size
    }

    /// Feeds this version of the item called `name` (its last path part) to a folder digest, in
    /// the one byte form both peers use (see [`FolderSums`]).
    fn digest_into(&self, name: &str, h: &mut Hasher) {
        h.update(name.as_bytes());
        h.update(&[0, if self.is_dir() { b'd' } else { b'f' }]);
        h.update(&self.size.to_le_bytes());
        h.update(&self.mtime_ns.to_le_bytes());
        h.update(&self.mode.to_le_bytes());
        h.update(&self.md5.unwrap_or_default().0);
    }
}

/// A whole box as sync sees it: path → version, in path order.
pub type Index = BTreeMap<String, Version>;

/// The folder a path is directly in (`""` for the top of the box), and its last part.
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// One digest per folder of a box, over what is directly inside it (names and versions).
///
/// This is how two boxes find out which folders they would disagree about without sending each
/// other their whole listings: a sync round tells the peer the digest of each folder as it
/// believes the peer has it, and the peer sends the entries of only the folders whose digest
/// differs (see `known` in [`crate::protocol::Request::List`]). Both sides must compute the
/// digests alike: items are fed in path order, each as its name, a NUL, its kind, size, mtime,
/// permission bits and MD5 in fixed-width little-endian form.
#[derive(Default)]
pub struct FolderSums {
    /// Folder → running digest of its items so far.
    sums: HashMap<String, Hasher>,
}

impl FolderSums {
    /// Digests for a box with only its top folder so far.
    pub fn new() -> Self {
        let mut sums = HashMap::new();
        sums.insert(String::new(), Hasher::new());
        FolderSums { sums }
    }

    /// Adds the item at `path`. Items must come in path order (a folder before what is in it).
    pub fn add(&mut self, path: &str, version: &Version) {
        if version.is_dir() {
            self.sums.entry(path.to_string()).or_default();
        }
        let (folder, name) = split_parent(path);
        if let Some(h) = self.sums.get_mut(folder) {
            version.digest_into(name, h);
        }
    }

    /// Adds a file at `path` whose version is not known (it could not be read): its folder's
    /// digest then matches no digest a peer computes, so the folder is always listed in full.
    pub fn add_unknown(&mut self, path: &str) {
        let (folder, name) = split_parent(path);
        if let Some(h) = self.sums.get_mut(folder) {
            h.update(name.as_bytes());
            h.update(&[0, b'?']);
        }
    }

    /// Every folder's digest.
    pub fn finish(self) -> HashMap<String, Md5> {
        self.sums
            .into_iter()
            .map(|(folder, h)| (folder, h.digest()))
            .collect()
    }

    /// The digests of a box given as (path, version) in path order (an [`Index`]'s iterator).
    pub fn of<'a>(
        items: impl IntoIterator<Item = (&'a String, &'a Version)>,
    ) -> HashMap<String, Md5> {
        let mut sums = FolderSums::new();
        for (path, version) in items {
            sums.add(path, version);
        }
        sums.finish()
    }
}

/// A [`Filter`] made ready to test entries (the regex compiled once).
#[derive(Debug)]
pub enum Matcher {
    /// Everything matches.
    All,
    /// mtime within `[start, end]` ns.
    Modified(i64, i64),
    /// Name matches.
    Regex(Regex),
}

impl Matcher {
    /// Prepares `filter`.
    ///
    /// # Errors
    /// A sentence saying why the regular expression is invalid.
    pub fn new(filter: &Filter) -> Result<Self, String> {
        Ok(match filter {
            Filter::All => Matcher::All,
            Filter::Modified { start_ns, end_ns } => Matcher::Modified(*start_ns, *end_ns),
            Filter::Regex { pattern } => Matcher::Regex(compile(pattern)?),
        })
    }

    /// Whether `entry` passes.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Modified(start, end) => (*start..=*end).contains(&entry.mtime_ns),
            Matcher::Regex(re) => re.is_match(&entry.path),
        }
    }
}

/// Compiles a user's regular expression, with a size limit so that a hostile pattern cannot eat
/// the server's memory.
///
/// # Errors
/// A sentence saying why the pattern is invalid.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            // The regex crate ends its message with `error: <what>`; keep only the what.
            let last = detail.lines().last().unwrap_or("invalid").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            format!("\"{pattern}\" is not a valid regular expression ({last})")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_scan_lists_files_and_folders_and_skips_links_and_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::create_dir_all(root.join(META_DIR)).unwrap();
        fs::write(root.join(META_DIR).join("log"), "x").unwrap();
        fs::write(root.join("a/b/deep file.txt"), "hello").unwrap();
        fs::write(root.join("top.json"), "{}").unwrap();
        fs::set_permissions(root.join("top.json"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("/etc", root.join("link")).unwrap();

        let names: Vec<(String, Kind)> = scan(root)
            .unwrap()
            .into_iter()
            .map(|s| (s.path, s.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), Kind::Dir),
                ("a/b".into(), Kind::Dir),
                ("a/b/deep file.txt".into(), Kind::File),
                ("empty".into(), Kind::Dir),
                ("top.json".into(), Kind::File),
            ]
        );
        let all = scan(root).unwrap();
        let top = all.iter().find(|s| s.path == "top.json").unwrap().entry();
        assert_eq!(top.mode, 0o755, "setuid is not kept");
        assert_eq!(top.mime, "application/json");
        assert_eq!(all[2].entry().size, 5);
        assert_eq!(all[2].entry().mime, "text/plain");
        assert_eq!(all[0].entry().mime, "inode/directory");
    }

    #[test]
    fn filters() {
        let e = |path: &str, mtime_ns| Entry {
            path: path.into(),
            kind: Kind::File,
            size: 0,
            mtime_ns,
            mode: 0o644,
            mime: mime_of(path),
            md5: None,
        };
        let m = Matcher::new(&Filter::Modified {
            start_ns: 10,
            end_ns: 20,
        })
        .unwrap();
        assert!(m.matches(&e("a", 10)) && m.matches(&e("a", 20)));
        assert!(!m.matches(&e("a", 9)) && !m.matches(&e("a", 21)));
        let m = Matcher::new(&Filter::Regex {
            pattern: r"\.txt$".into(),
        })
        .unwrap();
        assert!(m.matches(&e("dir/x.txt", 0)));
        assert!(!m.matches(&e("x.txt.bak", 0)));
        let err = Matcher::new(&Filter::Regex {
            pattern: "(".into(),
        })
        .unwrap_err();
        assert!(err.contains("not a valid regular expression"), "{err}");
        assert!(err.ends_with("(unclosed group)"), "{err}");
        assert_eq!(mime_of("noext"), "application/octet-stream");
    }

    #[test]
    fn folder_digests_change_only_where_the_change_is() {
        let file =
            |s: &str, mtime| Version::file(Md5::of(s.as_bytes()), s.len() as u64, 0o644, mtime);
        let mut index = Index::new();
        index.insert("a".into(), Version::dir(0o755));
        index.insert("a/x.txt".into(), file("x", 1));
        index.insert("a/y.txt".into(), file("y", 2));
        index.insert("b".into(), Version::dir(0o755));
        index.insert("empty".into(), Version::dir(0o700));
        index.insert("top.txt".into(), file("t", 3));
        let before = FolderSums::of(&index);
        let folders: BTreeSet<&str> = before.keys().map(String::as_str).collect();
        assert_eq!(folders, BTreeSet::from(["", "a", "b", "empty"]));
        assert_ne!(before["b"], before["a"]);
        assert_eq!(before["b"], Hasher::new().digest(), "an empty folder");

        // An edit in a/: only a/ differs. A new bit on a/ itself: only the top differs.
        let mut edited = index.clone();
        edited.insert("a/y.txt".into(), file("y2", 2));
        let after = FolderSums::of(&edited);
        let differ = |x: &HashMap<String, Md5>| -> Vec<String> {
            let mut d: Vec<String> = before
                .keys()
                .filter(|k| x.get(*k) != before.get(*k))
                .cloned()
                .collect();
            d.sort();
            d
        };
        assert_eq!(differ(&after), ["a"]);
        let mut chmodded = index.clone();
        chmodded.insert("a".into(), Version::dir(0o700));
        assert_eq!(differ(&FolderSums::of(&chmodded)), [""]);
        // The same facts give the same digests, however they were obtained.
        let round_trip: Index =
            serde_json::from_str(&serde_json::to_string(&index).unwrap()).unwrap();
        assert_eq!(FolderSums::of(&round_trip), before);
    }
}
