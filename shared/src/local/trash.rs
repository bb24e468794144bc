//! The trash: nothing minibox replaces or deletes is destroyed. It is moved, keeping its path,
//! into `.minibox/trash/<time>/<path>`.
//!
//! The time is that of a *trash session*: everything trashed within [`TRASH_SESSION`] shares one
//! time folder (a round that replaces a hundred files makes one, not a hundred), unless the
//! name is in it already, which starts a new session, so nothing trashed is ever replaced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::gate::{resolve, ResolveError};
use crate::protocol::error::{Error, Result};
use crate::util::lock;

/// How long one trash folder takes what is trashed.
pub const TRASH_SESSION: Duration = Duration::from_secs(2);

/// The trash of one box.
#[derive(Debug)]
pub struct Trash {
    /// `.minibox/trash/`.
    dir: PathBuf,
    /// When the current session began, and its folder.
    session: Mutex<Option<(Instant, PathBuf)>>,
}

impl Trash {
    /// The trash in the metadata folder `meta_dir`.
    pub fn new(meta_dir: &Path) -> Self {
        Trash {
            dir: meta_dir.join("trash"),
            session: Mutex::new(None),
        }
    }

    /// Where `name` goes when it is trashed now; its folders are made.
    ///
    /// # Errors
    /// If the folders cannot be made.
    pub fn slot(&self, name: &str) -> Result<PathBuf> {
        let mut session = lock(&self.session);
        let free = |slot: &Path| matches!(fs::symlink_metadata(slot), Err(e) if e.kind() == io::ErrorKind::NotFound);
        let reuse = session.as_ref().and_then(|(since, dir)| {
            let slot = dir.join(name);
            (since.elapsed() < TRASH_SESSION && free(&slot)).then_some(slot)
        });
        let slot = reuse.unwrap_or_else(|| {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ").to_string();
            let dir = self.dir.join(stamp);
            *session = Some((Instant::now(), dir.clone()));
            dir.join(name)
        });
        if let Some(parent) = slot.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        Ok(slot)
    }

    /// Moves the file or folder `name` of the box at `root` into the trash; returns where.
    ///
    /// # Errors
    /// If the name is refused or the move fails.
    pub fn take(&self, root: &Path, name: &str) -> Result<PathBuf> {
        let from = resolve(root, name).map_err(|e| gate_error(root, name, e))?;
        let to = self.slot(name)?;
        fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
        Ok(to)
    }
}

/// The error for `name` when the path gate refused it or could not look.
pub fn gate_error(root: &Path, name: &str, e: ResolveError) -> Error {
    match e {
        ResolveError::Refused(p) => Error::Path(p),
        ResolveError::Io(e) => Error::io(root.join(name), e),
    }
}
