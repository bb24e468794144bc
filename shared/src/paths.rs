//! The path gate: the one function that turns a name from the network into a path inside the box.
//!
//! A sync tool writes files named by its peer, so a name is hostile until proven clean. rsync's
//! 2024 advisories were about exactly this (writes outside the destination through symlinks). The
//! rules, from the contract: a name is a relative path with `/` separators, no empty, `.` or `..`
//! parts, no leading `/`, no NUL and no backslash, and a file is only opened if no part of its path
//! inside the box is a symbolic link. Every stage calls [`resolve`] before it touches a file, or
//! [`open_in_box`], which has the kernel apply the same rule while it opens the file.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::META_DIR;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The name was empty.
    Empty,
    /// The name starts with `/`.
    Absolute(String),
    /// The name has an empty, `.` or `..` part.
    BadComponent(String),
    /// The name holds a NUL byte or a backslash.
    BadCharacter(String),
    /// The name points into minibox's own `.minibox/` folder.
    Reserved(String),
    /// A part of the path inside the box is a symbolic link.
    Symlink(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("an empty name is not a file in the box"),
            PathError::Absolute(n) => {
                write!(
                    f,
                    "\"{n}\" is an absolute path; names are relative to the box"
                )
            }
            PathError::BadComponent(n) => write!(
                f,
                "\"{n}\" has an empty, \".\" or \"..\" part; names must stay inside the box"
            ),
            PathError::BadCharacter(n) => write!(
                f,
                "\"{}\" contains a NUL or a backslash, which names in a box may not",
                n.escape_debug()
            ),
            PathError::Reserved(n) => {
                write!(f, "\"{n}\" is inside minibox's own {META_DIR}/ folder")
            }
            PathError::Symlink(n) => {
                write!(
                    f,
                    "\"{n}\" passes through a symbolic link, which minibox does not follow"
                )
            }
        }
    }
}

impl std::error::Error for PathError {}

/// Checks that `name` is a clean relative path, without touching the disk.
///
/// # Errors
/// Returns the first rule the name breaks.
pub fn check_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    if name.contains('\0') || name.contains('\\') {
        return Err(PathError::BadCharacter(name.to_string()));
    }
    if name.starts_with('/') {
        return Err(PathError::Absolute(name.to_string()));
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(PathError::BadComponent(name.to_string()));
    }
    if name == META_DIR || name.starts_with(&format!("{META_DIR}/")) {
        return Err(PathError::Reserved(name.to_string()));
    }
    Ok(())
}

/// Turns `name` into a path inside `root`, refusing any name that could lead out of it.
///
/// Besides [`check_name`], every part of the path that exists is examined with `lstat` (which does
/// not follow links): if any is a symbolic link the name is refused, because opening it would read
/// or write wherever the link points. Parts that do not exist yet are fine (a download creates
/// them).
///
/// # Errors
/// [`PathError`] for a refused name; an `io::Error` only if `lstat` itself fails for a reason other
/// than "not found".
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, ResolveError> {
    resolve_at(root, name).map(|(path, _)| path)
}

/// [`resolve`], also returning what `lstat` said of the last part of the path (`None` if nothing
/// is there), which the check had to look at anyway: a caller about to replace the file needs
/// it too.
///
/// # Errors
/// As [`resolve`].
pub fn resolve_at(
    root: &Path,
    name: &str,
) -> Result<(PathBuf, Option<fs::Metadata>), ResolveError> {
    walk(root, name, true)
}

/// [`resolve`] for a file about to be opened with `O_NOFOLLOW` ([`open_for_reading`]): only the
/// folders on the way are examined, since the kernel itself refuses a link in the last part.
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
) -> Result<(PathBuf, Option<fs::Metadata>), ResolveError> {
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
            // A file where the name needs a folder (`a.txt/b`): nothing further down can exist,
            // and opening the path will say so.
            Ok(meta) if !meta.is_dir() => return Ok((root.join(name), None)),
            Ok(_) => {}
            // Nothing further down can exist either.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((root.join(name), None)),
            Err(e) => return Err(ResolveError::Io(e)),
        }
    }
    Ok((path, None))
}

/// The ways [`resolve`] can fail.
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

/// Opens the file `name` of the box at `root` (a canonical path, as [`crate::local::LocalBox`]
/// keeps it) for reading, as [`open_for_reading`] does, with the whole path gate in the same
/// step where the kernel allows it.
///
/// `openat2` with `RESOLVE_NO_SYMLINKS` refuses a link in *any* part of the path while it
/// resolves it, so there is no moment between a check and the open in which a folder could be
/// swapped for a link: the race `docs/SECURITY.md` lists is closed for everything a box serves.
/// It also saves the `lstat` of each folder, one system call per file served. Where the kernel
/// has no `openat2` (before Linux 5.6, or a sandbox that forbids it) the folders are checked
/// with [`resolve_folders`] first, as before.
///
/// # Errors
/// [`ResolveError::Refused`] for a refused name or a link on the way; otherwise the errors of
/// [`open_for_reading`].
pub fn open_in_box(root: &Path, name: &str) -> Result<(fs::File, fs::Metadata), ResolveError> {
    check_name(name)?;
    #[cfg(target_os = "linux")]
    {
        use nix::errno::Errno;
        use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
        let path = root.join(name);
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(AT_FDCWD, &path, how) {
            Ok(fd) => return regular(fs::File::from(fd), &path).map_err(ResolveError::Io),
            Err(Errno::ELOOP) => return Err(PathError::Symlink(name.to_string()).into()),
            // No openat2 here: check the folders, then open.
            Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) => {}
            Err(e) => return Err(ResolveError::Io(explain(io::Error::from(e), &path))),
        }
    }
    let path = resolve_folders(root, name)?;
    open_for_reading(&path).map_err(ResolveError::Io)
}

/// Opens a file of the box for reading, refusing anything but a regular file, without ever
/// blocking and without following a symbolic link in the last part of the path.
///
/// Two flags do the work. `O_NONBLOCK`: opening a FIFO (named pipe) for reading normally waits
/// until some process opens it for writing, which may be never; a box holding a FIFO must not
/// let a peer freeze the server that way. On a regular file the flag changes nothing. `O_NOFOLLOW`:
/// [`resolve`] checked with `lstat` that no part of the path is a link, but a link could be
/// swapped in between that check and this open; for the last part of the path the kernel now
/// refuses it (with `ELOOP`). A swap of a *folder* higher up stays possible: see
/// `docs/SECURITY.md` ("known limits").
///
/// # Errors
/// The open's own error, or [`io::ErrorKind::InvalidInput`] if what was opened is not a regular
/// file (a folder, a FIFO, a device, a socket).
pub fn open_for_reading(path: &Path) -> io::Result<(fs::File, fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path);
    match opened {
        Ok(file) => regular(file, path),
        Err(e) => Err(explain(e, path)),
    }
}

/// The error for a file that is not a regular one.
fn not_regular(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a regular file", path.display()),
    )
}

/// Some special files cannot be opened at all (a Unix socket: `ENXIO`): say what they are
/// rather than pass on the kernel's puzzling error.
fn explain(e: io::Error, path: &Path) -> io::Error {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() && !m.file_type().is_symlink() => not_regular(path),
        _ => e,
    }
}

/// The opened file and its metadata, if it is a regular file. Looks at what was opened, not at
/// the name again: it cannot be swapped under us now.
fn regular(file: fs::File, path: &Path) -> io::Result<(fs::File, fs::Metadata)> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok((file, meta))
}

/// Turns a path found while scanning the box back into its `/`-separated name. Returns `None` for
/// names that are not valid UTF-8 or would not pass [`check_name`] (such files are skipped, with a
/// log line, rather than offered to a peer that could not ask for them).
pub fn name_of(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut name = String::new();
    for part in rel.components() {
        let part = part.as_os_str().to_str()?;
        if !name.is_empty() {
            name.push('/');
        }
        name.push_str(part);
    }
    check_name(&name).ok().map(|()| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_names_pass() {
        for ok in [
            "a",
            "a.txt",
            "dir/sub/file name.txt",
            "..hidden",
            "a..b",
            "ü/ß.txt",
            ".x",
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn dirty_names_are_refused_with_the_right_reason() {
        assert_eq!(check_name(""), Err(PathError::Empty));
        assert!(matches!(
            check_name("/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
        for bad in ["..", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "./a"] {
            assert!(
                matches!(check_name(bad), Err(PathError::BadComponent(_))),
                "{bad}"
            );
        }
        for bad in ["a\0b", "a\\b", "..\\..\\x", "C:\\x"] {
            assert!(
                matches!(check_name(bad), Err(PathError::BadCharacter(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_name(".minibox/log"),
            Err(PathError::Reserved(_))
        ));
        assert!(matches!(
            check_name(".minibox"),
            Err(PathError::Reserved(_))
        ));
        assert_eq!(check_name(".miniboxes"), Ok(()));
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_parts_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("box");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("real")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("door")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("real/link")).unwrap();

        let refused = |name: &str| {
            matches!(
                resolve(&root, name),
                Err(ResolveError::Refused(PathError::Symlink(_)))
            )
        };
        assert!(refused("door"));
        assert!(refused("door/secret"));
        assert!(refused("door/new/file"));
        assert!(refused("real/link"));
        assert_eq!(
            resolve(&root, "real/new.txt").unwrap(),
            root.join("real/new.txt")
        );
        assert_eq!(
            resolve(&root, "missing/a/b").unwrap(),
            root.join("missing/a/b")
        );
        // A file used as a folder: the name cannot exist, but it is not an error of the gate.
        fs::write(root.join("real/file"), "f").unwrap();
        assert_eq!(
            resolve(&root, "real/file/below").unwrap(),
            root.join("real/file/below")
        );
    }

    #[cfg(unix)]
    #[test]
    fn reading_opens_refuse_fifos_links_and_folders_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("file"), "x").unwrap();
        fs::create_dir(root.join("dir")).unwrap();
        std::os::unix::fs::symlink(root.join("file"), root.join("link")).unwrap();
        let fifo = root.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (_, meta) = open_for_reading(&root.join("file")).unwrap();
        assert_eq!(meta.len(), 1);
        // No writer ever opens the FIFO: a plain open would block this test forever.
        let err = open_for_reading(&fifo).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(open_for_reading(&root.join("dir")).is_err());
        drop(std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap());
        let err = open_for_reading(&root.join("sock")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let err = open_for_reading(&root.join("link")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn opening_in_the_box_refuses_a_link_in_any_part_and_anything_not_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "no").unwrap();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/file"), "yes").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("a/out")).unwrap();
        std::os::unix::fs::symlink(root.join("a/b/file"), root.join("a/link")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("a/fifo"))
            .status()
            .unwrap();
        assert!(made.success());
        let (_, meta) = open_in_box(&root, "a/b/file").unwrap();
        assert_eq!(meta.len(), 3);
        for name in ["a/out/secret", "a/link"] {
            let refused = open_in_box(&root, name).unwrap_err();
            assert!(
                matches!(refused, ResolveError::Refused(PathError::Symlink(_))),
                "{name}: {refused:?}"
            );
        }
        let refused = open_in_box(&root, "../x").unwrap_err();
        assert!(matches!(refused, ResolveError::Refused(_)), "{refused:?}");
        let kind = |name| match open_in_box(&root, name) {
            Err(ResolveError::Io(e)) => e.kind(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(
            kind("a/fifo"),
            io::ErrorKind::InvalidInput,
            "without blocking"
        );
        assert_eq!(kind("a/b"), io::ErrorKind::InvalidInput, "a folder");
        assert_eq!(kind("a/none"), io::ErrorKind::NotFound);
        match open_in_box(&root, "a/b/file/below") {
            Err(ResolveError::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scanned_paths_become_names() {
        let root = Path::new("/box");
        assert_eq!(
            name_of(root, Path::new("/box/a/b c.txt")).as_deref(),
            Some("a/b c.txt")
        );
        assert_eq!(name_of(root, Path::new("/box/a\\b")), None);
        assert_eq!(name_of(root, Path::new("/elsewhere/x")), None);
    }
}
