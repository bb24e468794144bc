//! What this box already holds of a file it is about to receive (`docs/blocks.md`): where each
//! block of the new version comes from, and whole copies.
//!
//! For each block of the new version, in this order of preference:
//!
//! 1. the partial download of the file already holds it, verified ([`super::partial`]): kept;
//! 2. a file of this box holds a block with the same MD5 and length: this file's own old
//!    version, or any file whose block list the block cache knows: copied from there;
//! 3. an earlier block of the new version has the same MD5 and is written by then: copied from
//!    the partial file itself (a block repeated inside a file crosses the wire once);
//! 4. otherwise it comes from the peer.
//!
//! A file copied from must still have the stamp its block list was made with (checked when it
//! is opened, and again at the end of the download); the whole new file is checked against its
//! MD5 in any case before it is installed.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::Arc;

use super::blocks::digest_blocks;
use super::gate::open_in_box;
use super::install::TempFile;
use super::local_box::LocalBox;
use super::scan::Stamp;
use super::sink::BUFFER;
use crate::protocol::blocks::{block_size, BlockList};
use crate::protocol::error::{Error, Result};
use crate::protocol::md5::Md5;

/// Where one block of the new version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The peer.
    Peer,
    /// The partial file itself, at this offset (the block kept there, or an earlier copy).
    Partial(u64),
    /// File number `.0` of the candidates, at offset `.1`.
    File(usize, u64),
}

/// A file of this box blocks may be copied from: its name and the stamp its list was made with.
#[derive(Debug)]
pub struct Candidate {
    /// Its name in the box.
    pub name: String,
    /// Its stamp when its block list was made.
    pub stamp: Stamp,
    /// Its blocks.
    pub list: Arc<BlockList>,
    /// The open file, once a block is copied from it.
    file: Option<File>,
}

impl Candidate {
    /// The file, opened on first use; an error if it is no longer the version listed.
    ///
    /// # Errors
    /// If it cannot be opened or changed since its list was made.
    pub fn open(&mut self, local: &LocalBox) -> io::Result<&File> {
        if self.file.is_none() {
            let (file, meta) = open_in_box(local.root(), &self.name)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if Stamp::of(&meta) != self.stamp {
                return Err(changed_here(&self.name));
            }
            self.file = Some(file);
        }
        self.file.as_ref().ok_or_else(|| changed_here(&self.name))
    }

    /// Whether the file, if it was copied from, still has its stamp.
    pub fn held_still(&self) -> bool {
        self.file
            .as_ref()
            .is_none_or(|f| f.metadata().is_ok_and(|m| Stamp::of(&m) == self.stamp))
    }
}

fn changed_here(name: &str) -> io::Error {
    io::Error::other(format!(
        "{name} changed here while blocks were copied from it"
    ))
}

/// Plans where each block of `list` comes from (see the module docs): `held(i)` is what the
/// partial file holds, verified, at block `i`; `candidates` are in order of preference.
pub fn plan(
    list: &BlockList,
    held: &dyn Fn(usize) -> Option<Md5>,
    candidates: &[Candidate],
) -> Vec<Source> {
    let mut here: HashMap<(Md5, u64), (usize, u64)> = HashMap::new();
    for (f, c) in candidates.iter().enumerate() {
        for (j, md5) in c.list.md5s.iter().enumerate() {
            let r = c.list.range(j);
            here.entry((*md5, r.end - r.start)).or_insert((f, r.start));
        }
    }
    let mut earlier: HashMap<(Md5, u64), u64> = HashMap::new();
    let mut sources = Vec::with_capacity(list.len());
    for (i, md5) in list.md5s.iter().enumerate() {
        let r = list.range(i);
        let key = (*md5, r.end - r.start);
        // An earlier block of the new file is on disk once the sink has moved a buffer past it.
        let written = |start: u64| start + key.1 + BUFFER as u64 <= r.start;
        let source = if held(i) == Some(*md5) {
            Source::Partial(r.start)
        } else if let Some(&(f, at)) = here.get(&key) {
            Source::File(f, at)
        } else {
            match earlier.get(&key) {
                Some(&at) if written(at) => Source::Partial(at),
                _ => Source::Peer,
            }
        };
        earlier.entry(key).or_insert(r.start);
        sources.push(source);
    }
    sources
}

/// The files of this box that may hold blocks like `list`'s: the file at `to` first (its list
/// made now if the cache does not have it), then every file whose list the block cache has for
/// this block size.
pub fn candidates(local: &LocalBox, to: &str, list: &BlockList) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(own) = own_version(local, to, list.block_size) {
        out.push(own);
    }
    for l in local.hashes.blocks.lists() {
        if l.path != to && l.list.block_size == list.block_size && !l.list.is_empty() {
            out.push(Candidate {
                name: l.path,
                stamp: l.stamp,
                list: l.list,
                file: None,
            });
        }
    }
    out
}

/// The file at `to`, with its blocks of `block` bytes: from the block cache, or read now (and
/// then remembered, when `block` is the protocol's size for it).
fn own_version(local: &LocalBox, to: &str, block: u64) -> Option<Candidate> {
    let (file, meta) = open_in_box(local.root(), to).ok()?;
    let stamp = Stamp::of(&meta);
    if stamp.size == 0 {
        return None;
    }
    let cached = local.hashes.blocks.get(&stamp);
    let list = match cached.filter(|l| l.block_size == block) {
        Some(list) => list,
        None => {
            let (md5, list) = digest_blocks(&file, stamp.size, block, &mut |_| Ok(())).ok()?;
            let list = Arc::new(list);
            let still = file.metadata().is_ok_and(|m| Stamp::of(&m) == stamp);
            if still && block == block_size(stamp.size) {
                local.hashes.put(stamp, md5);
                local.hashes.blocks.put(to, stamp, Arc::clone(&list));
            }
            list
        }
    };
    Some(Candidate {
        name: to.to_string(),
        stamp,
        list,
        file: Some(file),
    })
}

/// A copy of this box's file `from`, whose MD5 must be `md5` (as the stat cache knows it under
/// the file's stamp), in a temporary file (in `lane`'s folder): a version already here costs no
/// bytes from the peer. The kernel copies where it can (`copy_file_range`, behind `io::copy`).
///
/// # Errors
/// [`Error::LocalChange`] if `from` is not that version (or changes while it is copied); a disk
/// error.
pub fn copy_whole(local: &LocalBox, from: &str, md5: Md5, lane: Option<usize>) -> Result<TempFile> {
    let changed = || Error::LocalChange(format!("{from} changed here; it was not copied"));
    let (mut file, meta) = open_in_box(local.root(), from).map_err(|_| changed())?;
    let stamp = Stamp::of(&meta);
    if local.hashes.get(&stamp) != Some(md5) {
        return Err(changed());
    }
    let mut tmp = TempFile::create(local, lane)?;
    let path = tmp.path().to_path_buf();
    io::copy(&mut file, tmp.file()).map_err(|e| Error::io(path, e))?;
    if !file.metadata().is_ok_and(|m| Stamp::of(&m) == stamp) {
        return Err(changed());
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests;
