//! The trash: nothing minibox replaces or deletes is destroyed. It is moved, keeping its path,
//! into `.minibox/trash/<time>/<path>`.
//!
//! The time is that of a *trash session*: everything trashed within [`TRASH_SESSION`] shares one
//! time folder (a round that replaces a hundred files makes one, not a hundred), unless the
//! name is in it already, which starts a new session, so nothing trashed is ever replaced.
//!
//! The trash is kept in bounds by age: time folders older than `--trash-days` (default
//! [`DEFAULT_DAYS`]; 0 keeps everything) are removed when a process opens the box and then at
//! most once a day ([`Trash::expire_daily`]). [`Trash::list`] says what is in it, newest first;
//! putting a file back is `super::restore`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::gate::{name_of, resolve, ResolveError};
use crate::protocol::error::{Error, Result};
use crate::protocol::timestamp::now_ns;
use crate::util::lock;

/// How many days the trash keeps what it holds, unless `--trash-days` says otherwise.
pub const DEFAULT_DAYS: u64 = 30;

/// How often a long-running process looks for expired trash.
const EXPIRY_EVERY: Duration = Duration::from_secs(24 * 3600);

/// The time folders' names: UTC to the nanosecond, so that they sort by time.
const STAMP: &str = "%Y%m%dT%H%M%S%.9fZ";

/// One file in the trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trashed {
    /// Its path in the box when it was trashed.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was trashed, ns since the epoch.
    pub trashed_ns: i64,
    /// Where it is now (inside `.minibox/trash/`).
    pub location: PathBuf,
}

/// How long one trash folder takes what is trashed.
pub const TRASH_SESSION: Duration = Duration::from_secs(2);

/// The trash of one box.
#[derive(Debug)]
pub struct Trash {
    /// `.minibox/trash/`.
    dir: PathBuf,
    /// When the current session began, and its folder.
    session: Mutex<Option<(Instant, PathBuf)>>,
    /// Days to keep trashed items; 0: forever.
    days: AtomicU64,
    /// When expired items were last looked for.
    expired_at: Mutex<Option<Instant>>,
}

impl Trash {
    /// The trash in the metadata folder `meta_dir`.
    pub fn new(meta_dir: &Path) -> Self {
        Trash {
            dir: meta_dir.join("trash"),
            session: Mutex::new(None),
            days: AtomicU64::new(DEFAULT_DAYS),
            expired_at: Mutex::new(None),
        }
    }

    /// Keeps trashed items `days` days (0: forever), and removes those already older.
    pub fn keep_days(&self, days: u64) {
        self.days.store(days, Ordering::Relaxed);
        *lock(&self.expired_at) = None;
        self.expire_daily();
    }

    /// Removes expired items if nobody looked for them in the last day. Cheap otherwise: a
    /// long-running process calls it before each command or round.
    pub fn expire_daily(&self) {
        let mut at = lock(&self.expired_at);
        if at.is_some_and(|t| t.elapsed() < EXPIRY_EVERY) {
            return;
        }
        *at = Some(Instant::now());
        drop(at);
        let removed = self.expire(now_ns());
        if removed > 0 {
            log::info!("removed {removed} expired folder(s) from the trash");
        }
    }

    /// Removes the time folders trashed more than the kept days before `now_ns`; returns how
    /// many. Folders whose name is not a time are left alone.
    pub fn expire(&self, now_ns: i64) -> usize {
        let days = self.days.load(Ordering::Relaxed);
        if days == 0 {
            return 0;
        }
        let limit = now_ns.saturating_sub(
            i64::try_from(days)
                .unwrap_or(i64::MAX / 2)
                .saturating_mul(86_400_000_000_000),
        );
        let mut removed = 0;
        for (dir, trashed_ns) in self.sessions() {
            if trashed_ns < limit && fs::remove_dir_all(&dir).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Every time folder, with its time.
    fn sessions(&self) -> Vec<(PathBuf, i64)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let time = NaiveDateTime::parse_from_str(&name, STAMP).ok()?;
                Some((e.path(), time.and_utc().timestamp_nanos_opt()?))
            })
            .collect()
    }

    /// Every file in the trash, newest first (then by path).
    pub fn list(&self) -> Vec<Trashed> {
        let mut out = Vec::new();
        for (dir, trashed_ns) in self.sessions() {
            let mut stack = vec![dir.clone()];
            while let Some(folder) = stack.pop() {
                let Ok(entries) = fs::read_dir(&folder) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        stack.push(entry.path());
                    } else if !meta.is_file() {
                        continue;
                    } else if let Some(path) = name_of(&dir, &entry.path()) {
                        out.push(Trashed {
                            path,
                            size: meta.len(),
                            trashed_ns,
                            location: entry.path(),
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| b.trashed_ns.cmp(&a.trashed_ns).then(a.path.cmp(&b.path)));
        out
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
            let stamp = chrono::Utc::now().format(STAMP).to_string();
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

#[cfg(test)]
mod tests;
