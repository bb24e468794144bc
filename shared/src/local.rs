//! The box this process owns: its folder and the state every thread working on it shares.
//!
//! A process has one [`LocalBox`]: the server threads that answer peers and the shell that
//! downloads into the box all go through it, so that they share one lock table (a file being
//! installed by the shell is not served half-written by the server), one hash cache and one
//! activity log. Share it with `Arc`.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::activity::ActivityLog;
use crate::auth::Secret;
use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::hash::HashCache;
use crate::index::{self, Scanned};
use crate::locks::LockTable;
use crate::protocol::Kind;
use crate::serve::Witness;
use crate::watch::Watcher;
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
    /// This process's id, in temporary file names (asked once: each ask is a system call).
    pid: u32,
    /// The shared secret (`--secret-file`), if any: the server demands it of every peer and
    /// every connection this box opens proves it. Set once at start with
    /// [`LocalBox::with_secret`].
    secret: Option<Secret>,
    /// Told what syncing peers have seen of this box (stage 3 only; set once, before serving).
    witness: OnceLock<Arc<dyn Witness>>,
    /// The watcher of the box's folders and the last scan, for [`LocalBox::scan`].
    scans: Mutex<ScanCache>,
    /// The trash session: when it began and its folder (see [`LocalBox::trash_slot`]).
    trash: Mutex<Option<(Instant, PathBuf)>>,
}

/// How long one trash folder takes what is trashed (see [`LocalBox::trash_slot`]).
pub const TRASH_SESSION: Duration = Duration::from_secs(2);

/// How long a scan may be used again while the watcher reports no change: some changes escape
/// inotify (see [`crate::watch`]), and a box is read afresh at least this often.
pub const SCAN_REUSE: Duration = Duration::from_secs(60);

/// The state behind [`LocalBox::scan`].
#[derive(Default)]
struct ScanCache {
    /// Whether to keep scans at all (see [`LocalBox::keep_scans`]).
    keep: bool,
    /// The box's watcher: `None` until the first scan, then `Some(None)` if the kernel gave
    /// none.
    watcher: Option<Option<Watcher>>,
    /// The last scan the watcher vouches for, and when it was taken.
    last: Option<(Instant, Arc<Vec<Scanned>>)>,
}

impl LocalBox {
    /// Opens (creating if needed) the box at `root`, named `name`. Leftover temporary files from a
    /// process that was killed mid-download are removed: they were never installed, so nothing is
    /// lost. Temporary files of a process that is still running (a `with_sync --once` beside a
    /// running peer, say) are left alone.
    ///
    /// # Errors
    /// If the folder cannot be created or is not a folder.
    pub fn open(root: &Path, name: &str) -> Result<Self> {
        fs::create_dir_all(root.join(META_DIR).join("tmp")).map_err(|e| Error::io(root, e))?;
        let root = fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        remove_stale_temp_files(&root.join(META_DIR).join("tmp"));
        Ok(LocalBox {
            hashes: HashCache::open(&root),
            log: ActivityLog::new(&root),
            locks: LockTable::new(),
            root,
            name: name.to_string(),
            tmp_counter: AtomicU64::new(0),
            pid: std::process::id(),
            secret: None,
            witness: OnceLock::new(),
            scans: Mutex::new(ScanCache::default()),
            trash: Mutex::new(None),
        })
    }

    /// Opens the box a binary was given on its command line: `--dir` (created if missing), an
    /// optional `--name` (default: the folder's name) and an optional `--secret-file`. Every
    /// stage's binary starts here.
    ///
    /// # Errors
    /// If the folder cannot be created or the secret file cannot be read or is too short.
    pub fn from_args(dir: &Path, name: Option<&str>, secret_file: Option<&Path>) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = name
            .filter(|n| !n.trim().is_empty())
            .map_or_else(|| crate::default_name(dir), str::to_string);
        let secret = secret_file.map(Secret::from_file).transpose()?;
        Ok(LocalBox::open(dir, &name)?.with_secret(secret))
    }

    /// Gives the box a shared secret (or none). Every stage passes its `--secret-file` here, once,
    /// right after [`LocalBox::open`]; the server side ([`crate::serve`]) and
    /// [`LocalBox::connect`] then use it.
    pub fn with_secret(mut self, secret: Option<Secret>) -> Self {
        self.secret = secret;
        self
    }

    /// The shared secret, if any.
    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// Opens a connection to the peer at `addr` as this box: with this box's name, proving the
    /// shared secret when there is one. Every connection a stage opens should go through here.
    ///
    /// # Errors
    /// See [`Connection::connect_with`].
    pub fn connect(&self, addr: &str) -> Result<Connection> {
        Connection::connect_with(addr, &self.name, self.secret.as_ref())
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
        self.temp_path_in(None)
    }

    /// [`LocalBox::temp_path`], in the subfolder `.minibox/tmp/<lane>/` when a lane is given.
    /// Threads that create many files at once each take a lane: files created in one folder
    /// wait for each other on that folder's lock.
    pub fn temp_path_in(&self, lane: Option<usize>) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.temp_dir(lane).join(format!("{}-{n}.part", self.pid))
    }

    /// The folder of [`LocalBox::temp_path_in`]'s files: `.minibox/tmp/`, or a lane's in it.
    pub fn temp_dir(&self, lane: Option<usize>) -> PathBuf {
        let dir = self.root.join(META_DIR).join("tmp");
        match lane {
            Some(lane) => dir.join(lane.to_string()),
            None => dir,
        }
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

    /// The box as it is now: every regular file and folder, sorted by path (see
    /// [`index::scan`]).
    ///
    /// The last scan is handed out again, without reading the disk, while the kernel reports no
    /// change in any folder of the box (see [`crate::watch`]) and it is younger than
    /// [`SCAN_REUSE`]. Otherwise the box is scanned, every folder watched on the way, and the
    /// stat cache forgets the files that are gone. Two threads asking at once share one scan.
    ///
    /// # Errors
    /// If the box folder itself cannot be read.
    pub fn scan(&self) -> io::Result<Arc<Vec<Scanned>>> {
        let mut cache = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        let ScanCache {
            keep,
            watcher,
            last,
        } = &mut *cache;
        if !*keep {
            return self.scan_now(&mut |_| {}).map(Arc::new);
        }
        let watcher = watcher.get_or_insert_with(Watcher::new);
        // Whatever is waiting is about the past: take it now, so that what comes after is
        // about this scan.
        let changed = watcher.as_mut().map_or(true, Watcher::changed);
        if let (false, Some((when, scanned))) = (changed, last.as_ref()) {
            if when.elapsed() < SCAN_REUSE {
                return Ok(Arc::clone(scanned));
            }
        }
        *last = None;
        let scanned = Arc::new(self.scan_now(&mut |dir| {
            if let Some(w) = watcher.as_mut() {
                w.watch(dir);
            }
        })?);
        if watcher.as_ref().is_some_and(|w| !w.is_broken()) {
            *last = Some((Instant::now(), Arc::clone(&scanned)));
        }
        Ok(scanned)
    }

    /// Makes [`LocalBox::scan`] keep its last scan and watch the box, to use the scan again
    /// while nothing changes. For a process that serves the box, or syncs it round after round;
    /// a one-shot process would only hold the memory (a scan of 100,000 files is about 10 MB).
    pub fn keep_scans(&self) {
        self.scans.lock().unwrap_or_else(|p| p.into_inner()).keep = true;
    }

    /// Scans the box now and lets the stat cache forget the files that are gone.
    fn scan_now(&self, before: &mut dyn FnMut(&Path)) -> io::Result<Vec<Scanned>> {
        let scanned = index::scan_with(&self.root, before)?;
        let files = scanned.iter().filter(|s| s.kind == Kind::File).count();
        if self.hashes.len() > files {
            let live: HashSet<u64> = scanned.iter().map(|s| s.stamp.inode).collect();
            self.hashes.retain(|inode| live.contains(&inode));
        }
        Ok(scanned)
    }

    /// Where the file or folder `name` goes when it is moved to the trash now:
    /// `.minibox/trash/<time>/<name>`, its folders made. The time is the start of a *trash
    /// session*: everything trashed within [`TRASH_SESSION`] shares one time folder (a sync round
    /// that replaces a hundred files makes one, not a hundred), unless the name is already in
    /// it, which starts a new session, so that nothing trashed is ever replaced.
    ///
    /// # Errors
    /// If the folders cannot be made.
    pub fn trash_slot(&self, name: &str) -> Result<PathBuf> {
        let mut session = self.trash.lock().unwrap_or_else(|p| p.into_inner());
        let reuse = session.as_ref().and_then(|(since, dir)| {
            let slot = dir.join(name);
            let free = matches!(fs::symlink_metadata(&slot), Err(e) if e.kind() == io::ErrorKind::NotFound);
            (since.elapsed() < TRASH_SESSION && free).then_some(slot)
        });
        let slot = match reuse {
            Some(slot) => slot,
            None => {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ").to_string();
                let dir = self.root.join(META_DIR).join("trash").join(stamp);
                *session = Some((Instant::now(), dir.clone()));
                dir.join(name)
            }
        };
        if let Some(parent) = slot.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        Ok(slot)
    }

    /// `.minibox/` of this box.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join(META_DIR)
    }
}

/// Removes `*.part` files in `dir` whose owning process (the number before the `-` in the name)
/// no longer runs. Linux shows running processes as `/proc/<pid>`.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // A lane's folder (see `LocalBox::temp_path_in`): the same, one level down.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_stale_temp_files(&entry.path());
            continue;
        }
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let running = owner.is_some_and(|pid| {
            pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
        });
        if !running {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_a_box_removes_only_orphaned_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(META_DIR).join("tmp");
        fs::create_dir_all(&dir).unwrap();
        // pid 1 always runs; a pid beyond the kernel's limit never does.
        fs::write(dir.join("1-0.part"), "alive").unwrap();
        fs::write(dir.join("4294967295-0.part"), "orphan").unwrap();
        fs::write(dir.join("junk"), "junk").unwrap();
        fs::create_dir_all(dir.join("1")).unwrap();
        fs::write(dir.join("1/4294967295-7.part"), "orphan in a lane").unwrap();
        fs::write(dir.join("1/1-7.part"), "alive in a lane").unwrap();
        let local = LocalBox::open(tmp.path(), "t").unwrap();
        assert!(dir.join("1-0.part").exists());
        assert!(!dir.join("4294967295-0.part").exists());
        assert!(!dir.join("junk").exists());
        assert!(dir.join("1/1-7.part").exists());
        assert!(!dir.join("1/4294967295-7.part").exists());
        assert!(local.temp_path_in(Some(2)).starts_with(dir.join("2")));
        assert!(local
            .temp_path()
            .starts_with(local.root().join(META_DIR).join("tmp")));
    }

    #[test]
    fn a_scan_is_used_again_until_the_box_changes() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("sub/deeper")).unwrap();
        fs::write(tmp.path().join("sub/deeper/a.txt"), "a").unwrap();
        let local = LocalBox::open(tmp.path(), "t").unwrap();
        let once = local.scan().unwrap();
        assert!(
            !Arc::ptr_eq(&once, &local.scan().unwrap()),
            "not kept unless asked"
        );
        local.keep_scans();
        let first = local.scan().unwrap();
        assert_eq!(first.len(), 3);
        let again = local.scan().unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "nothing changed: the same scan"
        );

        // A change deep down is seen at once (inotify queues it before the write returns).
        fs::write(local.root().join("sub/deeper/b.txt"), "b").unwrap();
        let after = local.scan().unwrap();
        assert!(!Arc::ptr_eq(&again, &after));
        assert!(after.iter().any(|s| s.path == "sub/deeper/b.txt"));

        // minibox's own files are not the box.
        local.log.record("p", "something", "ok");
        fs::write(local.meta_dir().join("tmp").join("x.part"), "x").unwrap();
        assert!(Arc::ptr_eq(&after, &local.scan().unwrap()));

        // A folder made after the scan is watched from the next one on.
        fs::create_dir(local.root().join("new")).unwrap();
        let with_new = local.scan().unwrap();
        assert!(with_new.iter().any(|s| s.path == "new"));
        fs::write(local.root().join("new/c.txt"), "c").unwrap();
        assert!(local.scan().unwrap().iter().any(|s| s.path == "new/c.txt"));
    }

    #[test]
    fn what_is_trashed_together_shares_a_folder_and_nothing_trashed_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let local = LocalBox::open(tmp.path(), "t").unwrap();
        let a = local.trash_slot("d/a.txt").unwrap();
        fs::write(&a, "first").unwrap();
        let b = local.trash_slot("e/b.txt").unwrap();
        assert_eq!(
            a.parent().unwrap().parent(),
            b.parent().unwrap().parent(),
            "one session"
        );
        assert!(a.ends_with("d/a.txt") && b.parent().unwrap().is_dir());
        // The same name again: a new session, the first copy stays.
        let again = local.trash_slot("d/a.txt").unwrap();
        assert_ne!(again, a);
        assert!(again.ends_with("d/a.txt"));
        assert_eq!(fs::read_to_string(&a).unwrap(), "first");
        assert!(again.starts_with(local.meta_dir().join("trash")));
    }
}
