//! A small file system for a test: a `tmpfs` of a few MiB mounted on a fresh folder, to see what
//! a box does when the disk is full, and grown later to see it recover.
//!
//! Mounting needs root (CI runs as root). Elsewhere [`SmallDisk::mount`] says why it could not,
//! and the test prints that reason and skips: a test that cannot set its scene up proves nothing
//! either way, so it must say so rather than pass quietly.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TempDir;

/// A `tmpfs` mounted on a folder of its own; unmounted (and the folder removed) on drop.
pub struct SmallDisk {
    /// Where it is mounted.
    path: PathBuf,
    /// The folder holding the mount point; removed after the unmount.
    _holder: TempDir,
}

impl SmallDisk {
    /// Mounts a `tmpfs` of `bytes` on a fresh folder.
    ///
    /// # Errors
    /// Why it could not be mounted (not root, no `mount`, a sandbox that forbids it).
    pub fn mount(bytes: u64) -> Result<SmallDisk, String> {
        let holder = crate::tempdir();
        let path = holder.path().join("disk");
        std::fs::create_dir(&path).map_err(|e| format!("cannot make a mount point: {e}"))?;
        let size = format!("size={bytes}");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "minibox-test"])
            .arg(&path))?;
        Ok(SmallDisk {
            path,
            _holder: holder,
        })
    }

    /// The mounted folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the file system `bytes` in all: space is freed.
    ///
    /// # Panics
    /// If it cannot be remounted.
    pub fn grow(&self, bytes: u64) {
        let size = format!("remount,size={bytes}");
        let grown = run(Command::new("mount").args(["-o", &size]).arg(&self.path));
        if let Err(e) = grown {
            panic!("cannot grow the small disk: {e}");
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process of the test that still holds a file there must not keep it mounted.
        let _ = run(Command::new("umount").arg("-l").arg(&self.path));
    }
}

/// Runs a command; its stderr is the error.
fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    Err(format!("{cmd:?} failed: {}", why.trim()))
}
