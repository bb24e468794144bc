//! A download by blocks that survives being cut off (`docs/blocks.md`).
//!
//! The new version of a big file is assembled in `.minibox/partial/<key>` (the key: the MD5 of
//! the file's name), and `<key>.blocks` beside it lists the blocks already written there and
//! verified, each with its MD5. When the connection breaks or the process is killed, both stay;
//! the next download of that name, in this process or after a restart, keeps every listed block
//! whose MD5 is still the one wanted at that place, and fetches only the rest.
//!
//! A block is listed only once it is written (see [`Partial::save`]), so the list never vouches
//! for bytes that are not in the file; and the whole file is checked against its MD5 before it is
//! installed whatever the list says. A partial download is worked on by one download at a time
//! (an exclusive `flock`), and one left alone for a day is removed when a box opens
//! ([`remove_stale`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::fcntl::{Flock, FlockArg};

use crate::protocol::blocks::BlockList;
use crate::protocol::error::{Error, Result};
use crate::protocol::md5::Md5;

/// How long a partial download no one works on is kept.
pub const KEEP_PARTIAL: Duration = Duration::from_secs(24 * 3600);

/// The first bytes of a list of verified blocks, then the block size (8 bytes).
const MAGIC: &[u8; 8] = b"mbxpart1";

/// Bytes per listed block: its number (4) and its MD5 (16).
const RECORD: usize = 20;

/// One partial download, held by this process (see the module docs).
pub struct Partial {
    /// The file being assembled.
    data: PathBuf,
    /// The list of verified blocks beside it.
    sidecar: PathBuf,
    /// The file, locked for us.
    file: Flock<File>,
    /// The list, open for appending.
    log: File,
    /// What the file holds, verified, at each block (by number).
    held: Vec<Option<Md5>>,
    /// Blocks verified but not listed yet, with where they end in the file.
    pending: Vec<(u32, Md5, u64)>,
}

/// Where the partial download of `name` lives in `dir` (a box's `.minibox/partial/`).
fn data_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(Md5::of(name.as_bytes()).to_string())
}

/// Whether a partial download of `name` waits in `dir` to be resumed.
pub fn exists(dir: &Path, name: &str) -> bool {
    data_path(dir, name).with_extension("blocks").exists()
}

impl Partial {
    /// Takes up the partial download of `name` in `dir` (a box's `.minibox/partial/`) into
    /// blocks like `list`'s: the blocks listed earlier if the block size is the same, otherwise a
    /// fresh start.
    ///
    /// # Errors
    /// [`Error::Timeout`] if another download is working on it; a disk error.
    pub fn open(dir: &Path, name: &str, list: &BlockList) -> Result<Partial> {
        let data = data_path(dir, name);
        let sidecar = data.with_extension("blocks");
        let io_err = |e| Error::io(&data, e);
        fs::create_dir_all(dir).map_err(io_err)?;
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data)
            .map_err(io_err)?;
        let file = Flock::lock(opened, FlockArg::LockExclusiveNonblock).map_err(|_| {
            Error::Timeout(format!("{name} is being downloaded already; try again"))
        })?;
        let len = file.metadata().map_err(io_err)?.len();
        let held = read_list(&sidecar, list, len);
        let log =
            start_list(&sidecar, list.block_size, &held).map_err(|e| Error::io(&sidecar, e))?;
        Ok(Partial {
            data,
            sidecar,
            file,
            log,
            held,
            pending: Vec::new(),
        })
    }

    /// The MD5 of what the file holds, verified, at block `i`.
    pub fn holds(&self, i: usize) -> Option<Md5> {
        self.held.get(i).copied().flatten()
    }

    /// The file being assembled.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.data
    }

    /// Notes that block `i`, ending at byte `end`, is in the file with MD5 `md5` (listed by the
    /// next [`Partial::save`] that knows it is written).
    pub fn verified(&mut self, i: usize, md5: Md5, end: u64) {
        if let Some(slot) = self.held.get_mut(i) {
            *slot = Some(md5);
            self.pending.push((i as u32, md5, end));
        }
    }

    /// Lists the verified blocks that lie before byte `written`: those are in the file.
    ///
    /// # Errors
    /// If the list cannot be written.
    pub fn save(&mut self, written: u64) -> io::Result<()> {
        let mut out = Vec::new();
        self.pending.retain(|&(i, md5, end)| {
            let due = end <= written;
            if due {
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&md5.0);
            }
            !due
        });
        if out.is_empty() {
            return Ok(());
        }
        self.log.write_all(&out)
    }

    /// The assembled file, moved to `to` (a temporary file's path, to install it from); the
    /// list goes.
    ///
    /// # Errors
    /// A disk error (the partial download is removed then).
    pub fn into_file(self, to: &Path) -> Result<File> {
        let Partial {
            data,
            sidecar,
            file,
            ..
        } = self;
        // Moved out of `partial/` while still locked: no other download can open it by its
        // partial name any more once we let go.
        let moved = fs::rename(&data, to);
        let _ = fs::remove_file(&sidecar);
        if let Err(e) = moved {
            let _ = fs::remove_file(&data);
            return Err(Error::io(&data, e));
        }
        file.unlock().map_err(|(_, e)| Error::io(to, e.into()))
    }

    /// Gives up the partial download: both files go.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.sidecar);
        let _ = fs::remove_file(&self.data);
    }
}

/// The blocks a list says the file holds, kept only where the list is for this block size and
/// the block lies inside the file's `len` bytes.
fn read_list(sidecar: &Path, list: &BlockList, len: u64) -> Vec<Option<Md5>> {
    let mut held = vec![None; list.len()];
    let Ok(bytes) = fs::read(sidecar) else {
        return held;
    };
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return held;
    };
    let (size, records) = rest.split_at(rest.len().min(8));
    if size != list.block_size.to_le_bytes() {
        return held;
    }
    for r in records.chunks_exact(RECORD) {
        let i = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
        let md5 = Md5(r[4..RECORD].try_into().unwrap_or_default());
        if i < held.len() && list.range(i).end <= len {
            held[i] = Some(md5);
        }
    }
    held
}

/// Writes the list afresh (its header and the blocks still held) and opens it for appending.
fn start_list(sidecar: &Path, block_size: u64, held: &[Option<Md5>]) -> io::Result<File> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&block_size.to_le_bytes());
    for (i, md5) in held.iter().enumerate() {
        if let Some(md5) = md5 {
            bytes.extend_from_slice(&(i as u32).to_le_bytes());
            bytes.extend_from_slice(&md5.0);
        }
    }
    // Whole or not at all (written aside, then renamed), but not forced to the disk: the list is
    // a shortcut, and a list lost in a power cut only costs its blocks again.
    let name = sidecar
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let aside = sidecar.with_file_name(format!(".{}.new", name.unwrap_or_default()));
    fs::write(&aside, &bytes)?;
    fs::rename(&aside, sidecar)?;
    OpenOptions::new().append(true).open(sidecar)
}

/// Removes the partial downloads in `dir` that no one has written to for [`KEEP_PARTIAL`].
pub fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let modified = entry.metadata().and_then(|m| m.modified());
        let age = modified.map(|t| now.duration_since(t).unwrap_or_default());
        if age.is_ok_and(|age| age > KEEP_PARTIAL) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests;
