//! The path gate on disk: a name that passed [`check_name`] becomes a path inside the box only
//! if no part of it is a symbolic link (opening it would read or write wherever the link
//! points). Every request that touches a file goes through [`resolve`] or [`open_in_box`].

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use super::fast;
use crate::protocol::md5::{digest_reader, Md5};
use crate::protocol::name::{check_name, PathError};

/// The ways the gate can fail.
#[derive(Debug)]
pub enum ResolveError {
    /// The name was refused.
    Refused(PathError),
    /// The disk could not be examined.
    Io(io::Error),
}

impl From<PathError> for ResolveError {
    fn from(e: PathError) -> Self {
        ResolveError::Refused(e)
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Refused(e) => e.fmt(f),
            ResolveError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Turns `name` into a path inside `root`, looking at every part that exists with `lstat`
/// (which does not follow links). Parts that do not exist yet are fine: a download makes them.
///
/// # Errors
/// A refused name, or an `lstat` that failed for a reason other than "not found".
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, ResolveError> {
    walk(root, name, true).map(|(path, _)| path)
}

/// [`resolve`], also returning what `lstat` said of the last part (`None`: nothing there),
/// which a caller about to replace the file needs too.
///
/// # Errors
/// As [`resolve`].
pub fn resolve_at(root: &Path, name: &str) -> Result<(PathBuf, Option<Metadata>), ResolveError> {
    walk(root, name, true)
}

/// [`resolve`] of the folders on the way only, for a file then opened with `O_NOFOLLOW`
/// (the kernel refuses a link in the last part itself).
///
/// # Errors
/// As [`resolve`].
pub fn resolve_folders(root: &Path, name: &str) -> Result<PathBuf, ResolveError> {
    walk(root, name, false).map(|(path, _)| path)
}

fn walk(
    root: &Path,
    name: &str,
    last_too: bool,
) -> Result<(PathBuf, Option<Metadata>), ResolveError> {
    check_name(name)?;
    let mut path = root.to_path_buf();
    let mut parts = name.split('/').peekable();
    while let Some(part) = parts.next() {
        path.push(part);
        let last = parts.peek().is_none();
        if last && !last_too {
            break;
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(PathError::Symlink(name.to_string()).into())
            }
            Ok(meta) if last => return Ok((path, Some(meta))),
            // A file where a folder should be, or nothing: nothing further down can exist.
            Ok(meta) if !meta.is_dir() => return Ok((root.join(name), None)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((root.join(name), None)),
            Err(e) => return Err(ResolveError::Io(e)),
        }
    }
    Ok((path, None))
}

/// Opens the file `name` of the box at `root` (canonical) for reading, refusing a link in any
/// part of its path and anything but a regular file.
///
/// # Errors
/// [`ResolveError::Refused`] for a refused name or a link on the way; otherwise the errors of
/// [`open_for_reading`].
pub fn open_in_box(root: &Path, name: &str) -> Result<(File, Metadata), ResolveError> {
    check_name(name)?;
    let path = root.join(name);
    // Speed and safety, skippable: where the kernel can refuse links while it opens, it does the
    // whole gate in that one step (`fast::sys::open_no_links`).
    if let Some(opened) = fast::sys::open_no_links(&path) {
        return match opened {
            Ok(file) => regular(file, &path).map_err(ResolveError::Io),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                Err(PathError::Symlink(name.to_string()).into())
            }
            Err(e) => Err(ResolveError::Io(explain(e, &path))),
        };
    }
    let path = resolve_folders(root, name)?;
    open_for_reading(&path).map_err(ResolveError::Io)
}

/// Opens a file for reading without blocking and without following a link in its last part,
/// and only if it is a regular file. `O_NONBLOCK`: opening a FIFO would otherwise wait for a
/// writer, maybe forever (in stage 1, freezing the whole server). `O_NOFOLLOW`: a link swapped in
/// after [`resolve`] looked is refused by the kernel (`ELOOP`).
///
/// # Errors
/// The open's error, or [`io::ErrorKind::InvalidInput`] for anything but a regular file.
pub fn open_for_reading(path: &Path) -> io::Result<(File, Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY;
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(file) => regular(file, path),
        Err(e) => Err(explain(e, path)),
    }
}

fn not_regular(path: &Path) -> io::Error {
    let why = format!("{} is not a regular file", path.display());
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// Some special files cannot be opened at all (a socket: `ENXIO`): say what they are instead.
fn explain(e: io::Error, path: &Path) -> io::Error {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() && !m.file_type().is_symlink() => not_regular(path),
        _ => e,
    }
}

/// The opened file and its metadata, if it is a regular file (asked of what was opened, which
/// cannot be swapped under us, not of the name).
fn regular(file: File, path: &Path) -> io::Result<(File, Metadata)> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok((file, meta))
}

/// Turns a path found while scanning the box back into its name; `None` for names that are not
/// UTF-8 or would not pass [`check_name`] (a peer could not ask for them).
pub fn name_of(root: &Path, path: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = path
        .strip_prefix(root)
        .ok()?
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    let name = parts?.join("/");
    check_name(&name).ok().map(|()| name)
}

/// MD5 of a regular file's contents, opened with [`open_for_reading`].
///
/// # Errors
/// If the file cannot be opened or read, or is not a regular file.
pub fn digest_file(path: &Path) -> io::Result<Md5> {
    digest_reader(open_for_reading(path)?.0)
}

#[cfg(test)]
mod tests;
