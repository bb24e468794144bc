//! Stage 3: what sync compares. A [`Version`] is one path's content and metadata as both
//! boxes see it; an [`Index`] is a whole box of them; [`FolderSums`] digest each folder, so that
//! two boxes find out which folders they disagree about without sending each other everything.
//! Both peers must compute these alike, which is why they live with the protocol.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::md5::{Hasher, Md5};
use super::message::{Entry, Kind, MODE_MASK};

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
/// differs (see [`crate::protocol::message::Request::SyncList`]). Both sides must compute the
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

#[cfg(test)]
mod tests;
