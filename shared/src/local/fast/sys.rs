//! Three Linux calls that do in one step what the plain path does in several. Each has a plain
//! fallback, and the box behaves the same either way.
//!
//! - [`open_no_links`]: `openat2` with `RESOLVE_NO_SYMLINKS` refuses a link in *any* part of the
//!   path while it opens it. It saves the `lstat` of every folder on the way, and there is no
//!   moment between check and open in which a folder could be swapped for a link.
//! - [`rename_if_free`]: `renameat2` with `RENAME_NOREPLACE` installs a new name without looking
//!   first; the kernel itself checks that the name is free.
//! - [`created_mode`]: the bits a new file gets from the umask, read once from
//!   `/proc/self/status`, so an install sets bits only when they differ.
//!
//! What they buy shows in `scripts/bench.sh`, rows `first-sync-10k` and `edits-1pct` (system
//! calls per file installed or served; `strace -f -c` counts them).

use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::protocol::message::MODE_MASK;

/// Opens `path` for reading, the kernel refusing a link in any of its parts (`ELOOP`), a FIFO
/// never blocking. `None` where the kernel has no `openat2` (before Linux 5.6, some sandboxes).
pub fn open_no_links(path: &Path) -> Option<io::Result<File>> {
    #[cfg(target_os = "linux")]
    {
        use nix::errno::Errno;
        use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(AT_FDCWD, path, how) {
            Ok(fd) => Some(Ok(File::from(fd))),
            Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) => None,
            Err(e) => Some(Err(io::Error::from(e))),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// Renames `from` to `to` only if nothing is at `to`, in one step of the kernel's. Returns false,
/// having changed nothing, if something is there, a folder on the way is missing or not a
/// folder, or the file system cannot rename that way: the caller then looks.
///
/// # Errors
/// Any other failure of the rename.
pub fn rename_if_free(from: &Path, to: &Path) -> io::Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST | Errno::ENOENT | Errno::ENOTDIR | Errno::EINVAL | Errno::ENOSYS) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (from, to);
        Ok(false)
    }
}

/// The permission bits a file we create gets: `0o666` less the umask (asking the kernel for the
/// umask means setting it, which other threads would see, so it is read from `/proc`). `None`
/// if it cannot be read.
pub fn created_mode() -> Option<u32> {
    static MODE: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let umask = status
            .lines()
            .find_map(|line| line.strip_prefix("Umask:"))?;
        let umask = u32::from_str_radix(umask.trim(), 8).ok()?;
        Some(0o666 & !umask & MODE_MASK)
    })
}

#[cfg(test)]
mod tests;
