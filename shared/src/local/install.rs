//! Installing a downloaded file, atomically.
//!
//! A download is never written under its real name while bytes arrive. It goes to a
//! [`TempFile`] in `.minibox/tmp/` (same file system, so the last step can be a rename), is
//! verified, gets the source's mtime and permission bits, and only then is renamed into place;
//! a file of that name goes to the trash first. A rename is atomic: a reader sees the old file
//! or the new one, never a mix, and a process killed at any point leaves at worst a stray
//! temporary file, removed at the next start.

use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fast::sink::{DirectSink, LARGE};
use super::fast::sys::{created_mode, rename_if_free};
use super::gate::{open_in_box, resolve, resolve_at, resolve_folders};
use super::local_box::LocalBox;
use super::scan::Stamp;
use super::sink::{HashingSink, Sink};
use super::trash::gate_error;
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::IDLE_TIMEOUT;
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, MODE_MASK};

/// A temporary file in `.minibox/tmp/`, removed on drop unless it was installed.
pub struct TempFile {
    /// Where it is.
    path: PathBuf,
    /// The open file; `None` once installed.
    file: Option<File>,
    /// Its permission bits, as far as we know them (see `fast::sys::created_mode`).
    mode: Option<u32>,
}

impl TempFile {
    /// Creates a fresh temporary file in `local`'s `.minibox/tmp/`, or in a lane of it (see
    /// [`LocalBox::temp_path_in`]).
    ///
    /// # Errors
    /// If it cannot be created.
    pub fn create(local: &LocalBox, lane: Option<usize>) -> Result<Self> {
        let path = local.temp_path_in(lane);
        let open = || OpenOptions::new().write(true).create_new(true).open(&path);
        // The folder is made when the box is opened; a lane's only when it is missing.
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| open()),
            other => other,
        };
        let file = file.map_err(|e| Error::io(&path, e))?;
        Ok(TempFile {
            path,
            file: Some(file),
            mode: created_mode(),
        })
    }

    /// Takes over the file at `path`, open as `file`, as a temporary file (an assembled
    /// download: see [`super::partial`]).
    pub fn adopt(path: PathBuf, file: File) -> Self {
        TempFile {
            path,
            file: Some(file),
            mode: None,
        }
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("the file is open until the TempFile is installed or dropped")
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A sink for the `size` bytes to come (see [`super::sink`]): the plain one, or, for a
    /// large file, the fast one (speed, skippable: `fast::sink`).
    ///
    /// # Errors
    /// If a large file's hasher thread cannot start.
    pub fn sink(&mut self, size: u64) -> io::Result<Box<dyn Sink + '_>> {
        let path = self.path.clone();
        sink_for(self.file(), &path, size)
    }
}

/// A sink for the `size` bytes to come into `file`, which lives at `path`: the plain one, or,
/// for a large file, the fast one (speed, skippable: `fast::sink`).
///
/// # Errors
/// If a large file's hasher thread cannot start.
pub fn sink_for<'f>(file: &'f File, path: &Path, size: u64) -> io::Result<Box<dyn Sink + 'f>> {
    if size >= LARGE {
        return Ok(Box::new(DirectSink::new(file, path)?));
    }
    Ok(Box::new(HashingSink::new(file, size)))
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The time `ns` after the epoch (before it, for negative values).
pub fn system_time(ns: i64) -> SystemTime {
    let abs = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH - abs
    }
}

/// Installs a verified temporary file as `entry.path`, replacing whatever file is there: see
/// [`install_over`].
///
/// # Errors
/// As [`install_over`].
pub fn install(local: &LocalBox, tmp: TempFile, entry: &Entry) -> Result<Option<Stamp>> {
    install_over(local, tmp, entry, |_| Ok(()))
}

/// Installs a verified temporary file as `entry.path`: gives it its mtime and bits, takes the
/// file's write lock, lets `expect` look at what stands at the destination now (nothing, or its
/// metadata: a sync round checks it is the version it planned to replace), moves a file there
/// to the trash, and renames the new one into place. A known `entry.md5` goes into the stat
/// cache under the installed file's stamp, which is returned.
///
/// # Errors
/// [`Error::LocalChange`] with `expect`'s sentence if it said no; a refused name (a link
/// appeared on the way), a folder at the name, or a disk error. The temporary file is removed
/// in every failure case.
pub fn install_over(
    local: &LocalBox,
    mut tmp: TempFile,
    entry: &Entry,
    expect: impl Fn(Option<&fs::Metadata>) -> std::result::Result<(), String>,
) -> Result<Option<Stamp>> {
    let (name, mode) = (&entry.path, entry.mode & MODE_MASK);
    let path = tmp.path.clone();
    let io_err = |e| Error::io(&path, e);
    // Bits only where the umask did not already give them (most files are 0o644).
    if tmp.mode != Some(mode) {
        tmp.file()
            .set_permissions(Permissions::from_mode(mode))
            .map_err(io_err)?;
    }
    let times = FileTimes::new().set_modified(system_time(entry.mtime_ns));
    tmp.file().set_times(times).map_err(io_err)?;
    let busy = || Error::Timeout(format!("{name} stayed busy; nothing was installed"));
    let _guard = local.locks.write(name, IDLE_TIMEOUT).ok_or_else(busy)?;
    // Most installs put a new name into a folder that is there: rename without replacing, the
    // kernel checking that the name is free. Otherwise look, and replace.
    let placed = expect(None).is_ok() && place_new(local, &tmp.path, name)?;
    if !placed {
        if let Some(stamp) = keep_identical(local, entry, mode, &expect) {
            return Ok(Some(stamp));
        }
        replace(local, &tmp.path, name, &expect)?;
    }
    let file = tmp.file.take();
    installed_stamp(local, file, entry, mode)
}

/// Renames `from` to `name` if nothing is there; false if something is (or the kernel cannot
/// tell).
fn place_new(local: &LocalBox, from: &Path, name: &str) -> Result<bool> {
    let dest =
        resolve_folders(local.root(), name).map_err(|e| gate_error(local.root(), name, e))?;
    rename_if_free(from, &dest).map_err(|e| Error::io(&dest, e))
}

/// When the file at `entry.path` already holds `entry`'s bytes (and `expect` agrees it may be
/// replaced): gives it `entry`'s mtime and bits where they differ, and returns its stamp. `None`
/// when the file differs, or cannot be looked at: the caller replaces it.
fn keep_identical(
    local: &LocalBox,
    entry: &Entry,
    mode: u32,
    expect: &impl Fn(Option<&fs::Metadata>) -> std::result::Result<(), String>,
) -> Option<Stamp> {
    let wanted = entry.md5.as_deref()?.parse::<Md5>().ok()?;
    let (file, meta) = open_in_box(local.root(), &entry.path).ok()?;
    if meta.len() != entry.size || expect(Some(&meta)).is_err() {
        return None;
    }
    let md5 = local
        .hashes
        .md5_of_open(&entry.path, &file, Stamp::of(&meta), &mut |_, _| Ok(()))
        .ok()?;
    if md5 != wanted {
        return None;
    }
    if meta.permissions().mode() & MODE_MASK != mode {
        file.set_permissions(Permissions::from_mode(mode)).ok()?;
    }
    if Stamp::of(&meta).mtime_ns != entry.mtime_ns {
        let times = FileTimes::new().set_modified(system_time(entry.mtime_ns));
        file.set_times(times).ok()?;
    }
    let stamp = Stamp::of(&file.metadata().ok()?);
    local.hashes.put(stamp, md5);
    Some(stamp)
}

/// Renames `from` to `name`, moving what is there to the trash, if `expect` agrees.
fn replace(
    local: &LocalBox,
    from: &Path,
    name: &str,
    expect: &impl Fn(Option<&fs::Metadata>) -> std::result::Result<(), String>,
) -> Result<()> {
    let (dest, there) =
        resolve_at(local.root(), name).map_err(|e| gate_error(local.root(), name, e))?;
    expect(there.as_ref()).map_err(Error::LocalChange)?;
    match there {
        Some(meta) if meta.is_dir() => {
            return Err(Error::Usage(format!(
                "{name} is a folder here; nothing was installed"
            )))
        }
        Some(_) => {
            local.trash.take(local.root(), name)?;
        }
        None => {}
    }
    // The folder is there unless the name is new at more than one level: then make it.
    let renamed = match fs::rename(from, &dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => dest
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::rename(from, &dest)),
        other => other,
    };
    renamed.map_err(|e| Error::io(&dest, e))
}

/// The installed file's stamp (asked of the open file: the inode we wrote, whatever the name
/// leads to by now), its bits set if the umask foretold them wrongly, its MD5 remembered.
fn installed_stamp(
    local: &LocalBox,
    file: Option<File>,
    entry: &Entry,
    mode: u32,
) -> Result<Option<Stamp>> {
    let mut meta = file.as_ref().and_then(|f| f.metadata().ok());
    if let (Some(f), Some(m)) = (&file, &meta) {
        // A folder's default ACL, say, decided the bits instead of the umask.
        if m.permissions().mode() & MODE_MASK != mode {
            let at = || local.root().join(&entry.path);
            f.set_permissions(Permissions::from_mode(mode))
                .map_err(|e| Error::io(at(), e))?;
            meta = f.metadata().ok();
        }
    }
    let stamp = meta.map(|m| Stamp::of(&m));
    let md5 = entry.md5.as_deref().and_then(|m| m.parse::<Md5>().ok());
    if let (Some(md5), Some(stamp)) = (md5, stamp) {
        if stamp.size == entry.size {
            local.hashes.put(stamp, md5);
        }
    }
    Ok(stamp)
}

/// Resolves `name` for writing through the path gate.
///
/// # Errors
/// [`Error::Path`] if refused.
pub fn resolve_for_write(local: &LocalBox, name: &str) -> Result<PathBuf> {
    resolve(local.root(), name).map_err(|e| gate_error(local.root(), name, e))
}

#[cfg(test)]
mod tests;
