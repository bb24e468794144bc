//! This box as a round sees it: its scan with every file's MD5, and the check, before every
//! action, that a file on disk is still the version the round believes is there.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use minibox::local::locks::WriteGuard;
use minibox::local::scan::Stamp;
use minibox::local::LocalBox;
use minibox::protocol::error::{Error, Result};
use minibox::protocol::message::Kind;
use minibox::IDLE_TIMEOUT;

use crate::plan::{Index, Version};

/// This box as a round sees it.
#[derive(Debug, Default)]
pub struct LocalScan {
    /// Every file and folder with its version.
    pub index: Index,
    /// Files that changed while they were being hashed, or could not be read: left alone.
    pub busy: BTreeSet<String>,
}

/// Scans the box and finds every file's MD5: from the stat cache when the file's stamp is the
/// one it was hashed with, by reading it otherwise (see [`LocalBox::md5_of`]).
///
/// # Errors
/// If the box folder cannot be read, or `stop` is set.
pub fn scan_local(local: &LocalBox, stop: &AtomicBool) -> Result<LocalScan> {
    let scanned = local.scan().map_err(|e| Error::io(local.root(), e))?;
    // A box that keeps its scans shares this one; otherwise it is ours, and its names move
    // into the index instead of being copied (100,000 names, for a large box).
    let (owned, shared) = match Arc::try_unwrap(scanned) {
        Ok(owned) => (owned, None),
        Err(shared) => (Vec::new(), Some(shared)),
    };
    let mut items = Vec::with_capacity(shared.as_ref().map_or(owned.len(), |s| s.len()));
    let all = owned.into_iter().map(Cow::Owned);
    let all = all.chain(shared.iter().flat_map(|s| s.iter().map(Cow::Borrowed)));
    let mut busy = BTreeSet::new();
    // A long hash stops too when the process stops.
    let mut watch = |_, _| match stop.load(Ordering::Relaxed) {
        true => Err(io::Error::other("stopped")),
        false => Ok(()),
    };
    for item in all {
        if stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        let version = match item.kind {
            Kind::Dir => Some(item.version(None)),
            Kind::File => local
                .md5_of(&item, &mut watch)
                .map(|md5| item.version(Some(md5))),
        };
        let path = match item {
            Cow::Owned(item) => item.path,
            Cow::Borrowed(item) => item.path.clone(),
        };
        match version {
            Some(v) => items.push((path, v)),
            None => {
                busy.insert(path);
            }
        }
    }
    // The scan is sorted: collecting it builds the map in one pass, its nodes full.
    Ok(LocalScan {
        index: items.into_iter().collect(),
        busy,
    })
}

/// The error of a round stopped from another thread.
pub fn stopped() -> Error {
    Error::Usage("the round was stopped".into())
}

/// Whether what is at `path` on disk (`disk`, from `lstat`) is what the round believes is there
/// (`planned`): nothing, a folder, or a file of that version. A file is that version if the stat
/// cache vouches for its stamp with the version's MD5: every file of the scan was hashed or
/// looked up under its stamp, and every file the round writes is recorded under its new one; a
/// file a user touched since has a stamp the cache has never seen. Returns why not.
///
/// # Errors
/// One sentence: why the file is not what the round believes.
pub fn as_planned(
    local: &LocalBox,
    path: &str,
    planned: Option<&Version>,
    disk: Option<&fs::Metadata>,
) -> std::result::Result<(), String> {
    match (planned, disk) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(format!("{path} appeared here during the round")),
        (Some(_), None) => Err(format!("{path} was removed here during the round")),
        (Some(v), Some(meta)) if v.is_dir() && meta.is_dir() => Ok(()),
        (Some(v), Some(meta))
            if !v.is_dir() && meta.is_file() && local.hashes.get(&Stamp::of(meta)) == v.md5 =>
        {
            Ok(())
        }
        _ => Err(format!("{path} changed here during the round")),
    }
}

/// Takes `path`'s write lock, so that our own server never sends it half-moved.
///
/// # Errors
/// [`Error::Timeout`] if it stays busy.
pub fn lock<'l>(local: &'l LocalBox, path: &str) -> Result<WriteGuard<'l>> {
    let busy = || Error::Timeout(format!("{path} stayed busy"));
    local.locks.write(path, IDLE_TIMEOUT).ok_or_else(busy)
}

/// What `lstat` says is at `path` now (`None`: nothing), through the path gate.
///
/// # Errors
/// A refused name or an `lstat` that failed, as one sentence.
pub fn on_disk(local: &LocalBox, path: &str) -> std::result::Result<Option<fs::Metadata>, String> {
    let at = minibox::local::install::resolve_for_write(local, path).map_err(|e| e.to_string())?;
    match fs::symlink_metadata(&at) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{path}: {e}")),
    }
}
