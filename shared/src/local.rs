//! The box this process owns: its folder and the state every thread working on it shares.
//!
//! A process has one [`LocalBox`]: the server threads that answer peers and the shell that
//! downloads into the box all go through it, so that they share one lock table (a file being
//! installed by the shell is not served half-written by the server), one hash cache and one
//! activity log. Share it with `Arc`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::activity::ActivityLog;
use crate::error::{Error, Result};
use crate::hash::HashCache;
use crate::locks::LockTable;
use crate::serve::Witness;
use crate::META_DIR;

/// One box and its shared state.
pub struct LocalBox {
    /// The box folder (absolute).
    root: PathBuf,
    /// This box's name, told to peers in the handshake.
    name: String,
    /// Per-file locks.
    pub locks: LockTable,
    /// MD5s of files whose stamp has not changed.
    pub hashes: HashCache,
    /// `.minibox/log`.
    pub log: ActivityLog,
    /// Numbers temporary files uniquely within this process.
    tmp_counter: AtomicU64,
    /// Told what syncing peers have seen of this box (stage 3 only; set once, before serving).
    witness: OnceLock<Arc<dyn Witness>>,
}

impl LocalBox {
    /// Opens (creating if needed) the box at `root`, named `name`. Leftover temporary files from a
    /// process that was killed mid-download are removed: they were never installed, so nothing is
    /// lost.
    ///
    /// # Errors
    /// If the folder cannot be created or is not a folder.
    pub fn open(root: &Path, name: &str) -> Result<Self> {
        fs::create_dir_all(root.join(META_DIR).join("tmp")).map_err(|e| Error::io(root, e))?;
        let root = fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        if let Ok(stale) = fs::read_dir(root.join(META_DIR).join("tmp")) {
            for entry in stale.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(LocalBox {
            hashes: HashCache::open(&root),
            log: ActivityLog::new(&root),
            locks: LockTable::new(),
            root,
            name: name.to_string(),
            tmp_counter: AtomicU64::new(0),
            witness: OnceLock::new(),
        })
    }

    /// The box folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This box's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fresh path for a temporary file inside `.minibox/tmp/`: on the same file system as the
    /// box, so that installing it is a rename, which is atomic.
    pub fn temp_path(&self) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(META_DIR)
            .join("tmp")
            .join(format!("{}-{n}.part", std::process::id()))
    }

    /// Registers the [`Witness`] the server tells about sync listings. Only the first call counts;
    /// call it before the server starts. Returns false if one was already set.
    pub fn set_witness(&self, witness: Arc<dyn Witness>) -> bool {
        self.witness.set(witness).is_ok()
    }

    /// The registered [`Witness`], if any.
    pub fn witness(&self) -> Option<&Arc<dyn Witness>> {
        self.witness.get()
    }

    /// `.minibox/` of this box.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join(META_DIR)
    }
}
