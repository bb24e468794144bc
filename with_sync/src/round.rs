//! One sync round, carried out.
//!
//! ```text
//!  this box                                              the peer
//!  ────────                                              ────────
//!  1. connect ─────────────── hello ───────────────────▶ (its server)
//!  2. load the agreed state and what the peer
//!     last saw of us (.minibox/state/PEER.json)
//!  3. ask for the listing ─── sync list, the digest ───▶ its scan (kept while inotify
//!     of each folder as we      of each folder we         reports no change) + its stat
//!     believe the peer has it   believe it has            cache; the folders that differ
//!     ◀──────────── entries of changed folders, ────────
//!                   the names of the same ones, end
//!     and meanwhile, on a second thread: scan this box;
//!     MD5s from the stat cache (only new or touched
//!     files are read)
//!  4. plan: (local, remote, agreed) → actions            (pure: crate::plan)
//!  5. carry out, in order, each after checking that
//!     the file is still the version the plan saw:
//!       conflict renames, deletions → trash,
//!       folder removals → trash, new folders,
//!       downloads, pipelined ─ download PATH × 32 ahead ─▶
//!         ◀────────────── header, bytes, MD5 ──────────
//!         (verified, the planned version? then, on an
//!          installer thread: temp file, mtime + bits,
//!          old file → trash, rename)
//!       permission bits and mtimes
//!  6. store the new agreed state (only if it changed)
//!  7. hang up ──────────────── (clean close) ──────────▶ its witness: "the peer saw this listing"
//! ```
//!
//! The round holds one TCP connection from step 1 to step 7 and uses only requests every stage
//! serves, so it can pull from a stage-1 `server`. Nothing here overwrites or deletes a file in
//! place: what is replaced or deleted is moved into `.minibox/trash/`, and a download becomes
//! visible under its name only by an atomic rename of a verified temporary file. A file the user
//! touches while the round runs is left alone (its stamp no longer matches what the plan saw) and
//! reconsidered next round.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File, FileTimes};
use std::io;
use std::net::TcpStream;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use minibox::conn::Connection;
use minibox::error::{Error, Result};
use minibox::hash::{digest_file, Md5, Stamp};
use minibox::index::{split_parent, FolderSums, Scanned, MODE_MASK};
use minibox::local::LocalBox;
use minibox::protocol::{Entry, FolderSum, Kind, MAX_KNOWN};
use minibox::shell::output::human_size;
use minibox::transfer::{self, resolve_for_write, Body};
use minibox::IDLE_TIMEOUT;
use serde_json::{json, Value};

use crate::plan::{self, Action, Agreement, Index, Inputs, Side, Version};
use crate::state::Book;

/// This box as a round sees it.
#[derive(Debug, Default)]
pub struct LocalScan {
    /// Every file and folder with its version.
    pub index: Index,
    /// Files that changed while they were being hashed, or could not be read: left alone.
    pub busy: BTreeSet<String>,
}

/// Scans the box and finds every file's MD5, from the stat cache when the file's stamp (size,
/// mtime to the ns, ctime, inode) is the one it was hashed with, by reading it otherwise. A file
/// whose stamp moves while it is read is in the middle of being written: it goes to `busy`.
///
/// # Errors
/// If the box folder cannot be read, or `stop` is set.
pub fn scan_local(local: &LocalBox, stop: &AtomicBool) -> Result<LocalScan> {
    let scanned = local.scan().map_err(|e| Error::io(local.root(), e))?;
    // A box that keeps its scans shares this one; otherwise it is ours, and its names move
    // into the index instead of being copied.
    let (owned, shared) = match Arc::try_unwrap(scanned) {
        Ok(owned) => (owned, None),
        Err(shared) => (Vec::new(), Some(shared)),
    };
    let count = shared.as_ref().map_or(owned.len(), |s| s.len());
    let mut items = Vec::with_capacity(count);
    let mut busy = BTreeSet::new();
    let all = owned
        .into_iter()
        .map(Cow::Owned)
        .chain(shared.iter().flat_map(|s| s.iter().map(Cow::Borrowed)));
    for item in all {
        if stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        let version = match item.kind {
            Kind::Dir => Some(item.version(None)),
            Kind::File => local
                .hashes
                .get(&item.stamp)
                .or_else(|| hash_stable(local, &item))
                .map(|md5| item.version(Some(md5))),
        };
        let path = match item {
            Cow::Owned(item) => item.path,
            Cow::Borrowed(item) => item.path.clone(),
        };
        match version {
            Some(v) => items.push((path, v)),
            None => {
                busy.insert(path);
            }
        }
    }
    // The scan is sorted: collecting it builds the map in one pass, its nodes full.
    Ok(LocalScan {
        index: items.into_iter().collect(),
        busy,
    })
}

/// Reads a file's MD5 and remembers it, if the file still has its scanned stamp afterwards.
fn hash_stable(local: &LocalBox, item: &Scanned) -> Option<Md5> {
    let name = &item.path;
    let path = resolve_for_write(local, name).ok()?;
    let md5 = digest_file(&path)
        .inspect_err(|e| log::info!("cannot read {name}: {e}; left alone this round"))
        .ok()?;
    let after = Stamp::of(&fs::symlink_metadata(&path).ok()?);
    if after != item.stamp {
        log::info!("{name} changed while it was read; left alone this round");
        return None;
    }
    local.hashes.put(after, md5);
    Some(md5)
}

/// The digest of every folder as the peer held it when both last agreed (see
/// [`minibox::index::FolderSums`]): a listing then carries only the folders that changed there
/// since. Nothing on a first sync, or for a box with more folders than a request may name.
fn known_folders(agreed: &Agreement) -> Vec<FolderSum> {
    if agreed.is_empty() {
        return Vec::new();
    }
    let sums = FolderSums::of(agreed.iter().map(|(path, a)| (path, &a.version)));
    if sums.len() > MAX_KNOWN {
        return Vec::new();
    }
    sums.into_iter()
        .map(|(folder, md5)| FolderSum { folder, md5 })
        .collect()
}

/// How long a listing may wait for this box's own scan before it is asked for again (the peer
/// drops a connection silent for [`IDLE_TIMEOUT`]).
const RELIST_AFTER: Duration = Duration::from_secs(5);

/// The peer's box as its listing showed it.
struct Listing {
    /// The entries it sent, with their versions.
    received: Vec<(String, Version)>,
    /// The folders it said are as we knew them.
    same: Vec<String>,
    /// Files it listed without an MD5 (it could not read them): left alone.
    busy: BTreeSet<String>,
}

/// Asks the peer for its listing, telling it the folders we believe we know (see
/// [`known_folders`]).
fn list_peer(conn: &mut Connection, agreed: &Agreement) -> Result<Listing> {
    let mut received = Vec::new();
    let mut busy = BTreeSet::new();
    let same = transfer::sync_list(conn, known_folders(agreed), &mut |entry| {
        match Version::of_entry(&entry) {
            Some(v) => received.push((entry.path, v)),
            // Listed without an MD5: the peer could not read it. Leave it alone.
            None => {
                busy.insert(entry.path);
            }
        }
    })?;
    Ok(Listing {
        received,
        same,
        busy,
    })
}

/// The peer's whole box, as the planner reads it: the entries it sent, and, for the folders it
/// said are as we knew them, their agreed versions, read from the agreement itself. (A copy of
/// those would be a second agreement's worth of memory: for a box of 100,000 files in sync,
/// a dozen megabytes to say "the same".)
#[derive(Debug)]
struct Remote<'a> {
    /// What the peer sent.
    received: Index,
    /// The folders it said are the same.
    same: HashSet<String>,
    /// What both agreed on.
    agreed: &'a Agreement,
}

impl<'a> Remote<'a> {
    fn new(received: Vec<(String, Version)>, same: Vec<String>, agreed: &'a Agreement) -> Self {
        Remote {
            received: received.into_iter().collect(),
            same: same.into_iter().collect(),
            agreed,
        }
    }

    /// Whether `path` is in a folder the peer said is the same.
    fn known(&self, path: &str) -> bool {
        !self.same.is_empty() && self.same.contains(split_parent(path).0)
    }
}

impl Side for Remote<'_> {
    fn items(&self) -> Box<dyn Iterator<Item = (&str, &Version)> + '_> {
        let sent = self.received.iter().map(|(k, v)| (k.as_str(), v));
        let known = self
            .agreed
            .iter()
            .filter(|(k, _)| self.known(k))
            .map(|(k, a)| (k.as_str(), &a.version));
        let none = std::iter::empty::<(&str, &())>;
        // Both in path order: merge. What the peer sent wins over what we believed (a peer
        // should not send a folder it said is the same, but if it does, the entry counts).
        Box::new(
            plan::walk(sent, known, none(), none())
                .filter_map(|(path, sent, known, _, _)| Some((path, sent.or(known)?))),
        )
    }

    fn version(&self, path: &str) -> Option<&Version> {
        self.received.get(path).or_else(|| {
            self.known(path)
                .then(|| self.agreed.get(path).map(|a| &a.version))
                .flatten()
        })
    }
}

fn stopped() -> Error {
    Error::Usage("the round was stopped".into())
}

/// What a round did, for the shell, `--once` and the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The peer's name.
    pub peer: String,
    /// Files downloaded (conflict copies included).
    pub downloaded: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Files moved to the trash because the peer deleted them (or to make room for a folder).
    pub deleted: usize,
    /// Folders made.
    pub folders_made: usize,
    /// Empty folders moved to the trash.
    pub folders_removed: usize,
    /// Conflicts found (each keeps both versions).
    pub conflicts: usize,
    /// Files and folders whose permission bits or mtime were set, no data moved.
    pub metadata: usize,
    /// Actions put off to the next round (a file changed during the round, the peer's file
    /// changed since it was listed, a busy path).
    pub skipped: usize,
    /// Actions that failed.
    pub failed: usize,
    /// The first few failures, one sentence each.
    pub errors: Vec<String>,
}

impl Summary {
    /// Whether the round changed anything here.
    pub fn changed(&self) -> bool {
        self.downloaded + self.deleted + self.folders_made + self.folders_removed + self.metadata
            > 0
    }

    /// One line for people.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        let mut count = |n: usize, one: &str, many: &str| {
            if n > 0 {
                parts.push(format!("{n} {}", if n == 1 { one } else { many }));
            }
        };
        count(self.downloaded, "downloaded", "downloaded");
        count(self.deleted, "deleted", "deleted");
        count(self.folders_made, "folder made", "folders made");
        count(self.folders_removed, "folder removed", "folders removed");
        count(self.conflicts, "conflict", "conflicts");
        count(
            self.metadata,
            "permission/mtime update",
            "permission/mtime updates",
        );
        count(
            self.skipped,
            "put off to the next round",
            "put off to the next round",
        );
        count(self.failed, "failed", "failed");
        let mut text = if parts.is_empty() {
            format!("synced with {}: already in sync", self.peer)
        } else {
            format!("synced with {}: {}", self.peer, parts.join(", "))
        };
        if self.bytes > 0 {
            text.push_str(&format!(" ({} received)", human_size(self.bytes)));
        }
        for e in &self.errors {
            text.push_str(&format!("\n  error: {e}"));
        }
        text
    }

    /// The JSON object for `--json` (under `"sync"`).
    pub fn json(&self) -> Value {
        json!({
            "peer": self.peer,
            "downloaded": self.downloaded,
            "bytes": self.bytes,
            "deleted": self.deleted,
            "folders_made": self.folders_made,
            "folders_removed": self.folders_removed,
            "conflicts": self.conflicts,
            "metadata": self.metadata,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": self.errors,
        })
    }
}

/// Runs rounds against one peer, one at a time (the background loop and the shell's `sync`
/// share it). Can be stopped from another thread, even in the middle of a transfer.
pub struct Syncer {
    /// This box.
    local: Arc<LocalBox>,
    /// The per-peer sync state.
    book: Arc<Book>,
    /// The peer's address.
    peer_addr: String,
    /// Held for the whole of a round.
    one_at_a_time: Mutex<()>,
    /// Set by [`Syncer::stop`].
    stopping: AtomicBool,
    /// The running round's socket, so that `stop` can cut a transfer short.
    live: Mutex<Option<TcpStream>>,
    /// Paths the last round left alone: a path held round after round is logged once.
    held: Mutex<BTreeSet<String>>,
}

impl Syncer {
    /// A syncer for `local`, pulling from the peer at `peer_addr`.
    pub fn new(local: Arc<LocalBox>, book: Arc<Book>, peer_addr: impl Into<String>) -> Self {
        Syncer {
            local,
            book,
            peer_addr: peer_addr.into(),
            one_at_a_time: Mutex::new(()),
            stopping: AtomicBool::new(false),
            live: Mutex::new(None),
            held: Mutex::new(BTreeSet::new()),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> &str {
        &self.peer_addr
    }

    /// The box.
    pub fn local(&self) -> &LocalBox {
        &self.local
    }

    /// Stops: the running round (if any) ends at once, leaving no partial file under a real name;
    /// later rounds do nothing.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(stream) = self.live().as_ref() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Whether [`Syncer::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn live(&self) -> MutexGuard<'_, Option<TcpStream>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one full round: pull from the peer, see the module docs.
    ///
    /// # Errors
    /// If the box cannot be scanned, the peer cannot be reached or listed, or the state cannot be
    /// saved. Failed actions do not fail the round: they are counted in the summary and retried
    /// next round.
    pub fn round(&self) -> Result<Summary> {
        let _one = self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        if self.stopped() {
            return Err(stopped());
        }
        let mut conn = self.connect()?;
        let result = self.pull(&mut conn);
        // The round's actions were logged as deferred lines: out they go.
        self.local.log.flush();
        *self.live() = None;
        // Hang up only now, with the state saved: the peer's witness takes a clean close to mean
        // that our round is over.
        drop(conn);
        result
    }

    /// Connects to the peer, the connection `stop` can cut.
    fn connect(&self) -> Result<Connection> {
        let conn = self.local.connect(&self.peer_addr)?;
        *self.live() = conn.stream().try_clone().ok();
        if self.stopped() {
            conn.shutdown();
        }
        Ok(conn)
    }

    fn pull(&self, conn: &mut Connection) -> Result<Summary> {
        let peer = conn.peer_name().to_string();
        // What the peer last saw of us, taken before we list it (see plan::fold).
        let state = self.book.load(&peer);
        let now = self.book.clock().now();
        // Scan this box while the peer lists its own: both disks are read at once. The scan
        // runs on a thread of its own; the listing arrives here meanwhile.
        let (scan, listing) = thread::scope(|scope| {
            let scanner = thread::Builder::new()
                .name("scan".into())
                .spawn_scoped(scope, || scan_local(&self.local, &self.stopping));
            let listing = list_peer(conn, &state.agreed);
            let scan = match scanner {
                Ok(scanner) => scanner
                    .join()
                    .unwrap_or_else(|_| Err(Error::Usage("the scan of this box failed".into()))),
                Err(_) => scan_local(&self.local, &self.stopping),
            };
            (scan, listing)
        });
        let scan = scan?;
        let (mut listing, mut listed) = (listing?, Instant::now());
        // Hashing new files here may have taken long; the peer gives up on a connection silent
        // for 10 s. Rather than find out in the middle of the downloads, ask again.
        if listed.elapsed() > RELIST_AFTER {
            log::info!("this box took long to scan; listing {peer} again");
            drop(std::mem::replace(conn, self.connect()?));
            listing = list_peer(conn, &state.agreed)?;
            listed = Instant::now();
        }
        log::debug!("listed {peer} {:?} ago", listed.elapsed());
        let remote = Remote::new(listing.received, listing.same, &state.agreed);
        let mut busy = scan.busy.clone();
        busy.extend(listing.busy);
        let plan = plan::plan(&Inputs {
            local: &scan.index,
            remote: &remote,
            agreed: &state.agreed,
            seen: state.seen.as_deref(),
            busy: &busy,
            local_name: self.local.name(),
            remote_name: &peer,
        });
        let mut run = Run {
            local: &self.local,
            peer: &peer,
            after: scan.index,
            new_folders: Vec::new(),
            network_down: None,
            summary: Summary {
                peer: peer.clone(),
                conflicts: plan.conflicts.len(),
                ..Summary::default()
            },
        };
        {
            let mut before = self.held.lock().unwrap_or_else(|p| p.into_inner());
            for (path, why) in &plan.held {
                run.summary.skipped += 1;
                if !before.contains(path) {
                    self.local
                        .log
                        .record(&peer, &format!("sync hold {path:?}"), why);
                }
            }
            *before = plan.held.iter().map(|(p, _)| p.clone()).collect();
        }
        let mut rest = plan.actions.as_slice();
        while let Some(first) = rest.first() {
            if self.stopped() {
                break;
            }
            // Downloads come as one phase of the plan: fetch them as one pipelined batch.
            let batch = match first {
                Action::Download { .. } => rest
                    .iter()
                    .position(|a| !matches!(a, Action::Download { .. }))
                    .unwrap_or(rest.len()),
                _ => 0,
            };
            if batch > 0 {
                run.download_all(conn, &rest[..batch]);
                rest = &rest[batch..];
            } else {
                run.carry(conn, first);
                rest = &rest[1..];
            }
        }
        run.finish_folders();
        let agreed = plan.settle(&run.after, &remote, state.seen.as_deref(), now);
        // Let go of the state we read, so that storing the new one does not copy it.
        drop(state);
        self.book
            .store(&peer, agreed)
            .map_err(|e| Error::io(self.book.file_of(&peer), e))?;
        if let Err(e) = self.local.hashes.save() {
            log::warn!("cannot save the stat cache: {e}");
        }
        let summary = run.summary;
        if summary.changed() || summary.failed > 0 {
            self.local.log.defer(&peer, "sync round", &summary.text());
        }
        log::info!(target: "with_sync::round", "round done: {}", summary.text());
        if self.stopped() {
            return Err(stopped());
        }
        Ok(summary)
    }
}

/// How many fetched files go to an installer at once. Handing files over one by one costs a
/// wake-up of the installer (and of this thread, when it waits) per file: with 10,000 small files
/// those wake-ups were a sixth of the system calls of a first sync. A batch is sent when full,
/// or when no more replies are waiting on the socket (so an installer is never kept waiting for
/// files that are already here).
const INSTALL_BATCH: usize = 16;

/// How many batches may wait for each installer (small files in memory, so at most 8 MiB, large
/// ones as open temporary files): more than a folder's worth of files, so that while one
/// installer works through a folder the receiver can already feed the other the next one.
const INSTALL_QUEUE: usize = 128 / INSTALL_BATCH;

/// Installer threads per batch of downloads (see [`Run::download_all`]).
const INSTALLERS: usize = 2;

/// Which installer thread installs which file: the one that owns its folder. Folders are dealt
/// out in turn as they first appear; the peer sends files sorted by path, so one folder's files
/// come together, and dealing them in turn keeps both installers equally busy (a hash of the
/// folder's name gave one of them 57 of 100 folders, and runs of several in a row).
struct Owners<'a> {
    /// Each folder seen so far, and its installer.
    of: HashMap<&'a str, usize>,
    /// How many installers there are.
    installers: usize,
}

impl<'a> Owners<'a> {
    fn new(installers: usize) -> Self {
        Owners {
            of: HashMap::new(),
            installers: installers.max(1),
        }
    }

    /// The installer of `path`'s folder.
    fn of(&mut self, path: &'a str) -> usize {
        let next = self.of.len() % self.installers;
        *self.of.entry(split_parent(path).0).or_insert(next)
    }
}

/// A fetched file on its way to an installer.
struct Job<'a> {
    /// Its download action.
    action: &'a Action,
    /// What came back.
    fetched: Result<(Body, Entry)>,
    /// What the round believes stands at the destination now (read when the file came in: no
    /// other action of the batch touches that name).
    planned: Option<Version>,
}

/// How an install went, for the round's books.
struct Installed<'a> {
    /// The action.
    action: &'a Action,
    /// How it ended.
    step: Result<Step>,
    /// The name and version the box now holds, if it installed.
    holds: Option<(String, Version)>,
    /// Why the connection is no longer usable, if this reply showed it.
    broke: Option<String>,
}

/// Installs a fetched file if it is the version the plan decided on and the file it replaces
/// here is still the one the plan saw (on an installer thread, which writes its temporary files
/// in its own `lane`).
fn install<'a>(local: &LocalBox, peer: &str, job: Job<'a>, lane: Option<usize>) -> Installed<'a> {
    let action = job.action;
    let mut out = Installed {
        action,
        step: Ok(Step::Logged),
        holds: None,
        broke: None,
    };
    let Action::Download { path, to, version } = action else {
        out.step = Ok(Step::Skipped("not a download".into()));
        return out;
    };
    let (body, entry) = match job.fetched {
        Ok(got) => got,
        // The peer answered: the file went or changed since it was listed. Next round.
        Err(Error::Remote { message, .. }) => {
            out.step = Ok(Step::Skipped(message));
            return out;
        }
        // The bytes did not match what the peer vouched for (a fault or a lie), or the name was
        // refused: nothing was installed and the connection is still in step; the round
        // counts it as failed.
        Err(e @ (Error::Verify(_) | Error::Path(_))) => {
            out.step = Err(e);
            return out;
        }
        // Anything else leaves the connection unusable.
        Err(e) => {
            out.broke = Some(e.to_string());
            out.step = Err(e);
            return out;
        }
    };
    // Install only the version the plan decided on.
    let got = entry.md5.as_deref().and_then(|m| m.parse::<Md5>().ok());
    if got != version.md5 || entry.size != version.size {
        out.step = Ok(Step::Skipped(format!(
            "{path} changed on {peer} since it was listed; the next round takes the new version"
        )));
        return out;
    }
    let installed = Version::file(
        version.md5.unwrap_or_default(),
        entry.size,
        entry.mode & MODE_MASK,
        entry.mtime_ns,
    );
    let entry = Entry {
        path: to.to_string(),
        ..entry
    };
    let tmp = match body.into_temp_in(local, lane) {
        Ok(tmp) => tmp,
        Err(e) => {
            out.step = Err(e);
            return out;
        }
    };
    // The transfer took time: under the file's lock, look again at what is there.
    let planned = job.planned.as_ref();
    let checked = transfer::install_over(local, tmp, &entry, |there| {
        as_planned(local, to, planned, there)
    });
    out.step = match checked {
        Ok(_) => {
            out.holds = Some((to.to_string(), installed));
            Ok(Step::Done(if to == path {
                format!("ok {} bytes", entry.size)
            } else {
                format!("ok: {peer}'s version kept as {to:?}")
            }))
        }
        Err(Error::LocalChange(why)) => Ok(Step::Skipped(why)),
        Err(e) => Err(e),
    };
    out
}

/// Sends a batch of jobs to an installer's queue; if that installer is gone (it can only have
/// panicked), installs them on this thread and books each result with `book`.
fn hand_over<'a>(
    queue: &crossbeam_channel::Sender<Vec<Job<'a>>>,
    batch: Vec<Job<'a>>,
    book: &mut dyn FnMut(Installed<'a>),
    local: &LocalBox,
    peer: &str,
) {
    if let Err(back) = queue.send(batch) {
        for job in back.into_inner() {
            book(install(local, peer, job, None));
        }
    }
}

/// How one action ended.
enum Step {
    /// Done; the log line's outcome.
    Done(String),
    /// Put off to the next round, and why.
    Skipped(String),
    /// Already logged and counted (a download carried out through its batch).
    Logged,
}

/// Whether what is at `path` on disk (`disk`, from `lstat`) is what the round believes is there
/// (`planned`): nothing, a folder, or a file of that version. A file is that version if the stat
/// cache vouches for its stamp with the version's MD5: every file of the scan was hashed or
/// looked up under its stamp, and every file the round writes is recorded under its new one; a
/// file a user touched since has a stamp the cache has never seen. Returns why not.
fn as_planned(
    local: &LocalBox,
    path: &str,
    planned: Option<&Version>,
    disk: Option<&fs::Metadata>,
) -> std::result::Result<(), String> {
    match (planned, disk) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(format!("{path} appeared here during the round")),
        (Some(_), None) => Err(format!("{path} was removed here during the round")),
        (Some(v), Some(meta)) if v.is_dir() && meta.is_dir() => Ok(()),
        (Some(v), Some(meta))
            if !v.is_dir() && meta.is_file() && local.hashes.get(&Stamp::of(meta)) == v.md5 =>
        {
            Ok(())
        }
        _ => Err(format!("{path} changed here during the round")),
    }
}

/// A round in progress: what it believes the box holds now, updated action by action.
struct Run<'a> {
    /// This box.
    local: &'a LocalBox,
    /// The peer's name.
    peer: &'a str,
    /// This box as the round left it so far (the plan's view plus what succeeded). A file on
    /// disk is still the version listed here if the stat cache vouches for its stamp with the
    /// version's MD5 (every file of the scan was hashed or looked up under its stamp, and every
    /// file the round writes is recorded under its new one).
    after: Index,
    /// Folders made this round whose own bits would stop us from filling them (no `rwx` for
    /// their owner), with the bits they get at the end of the round.
    new_folders: Vec<(String, u32)>,
    /// Set when the connection broke: the remaining downloads are put off.
    network_down: Option<String>,
    /// The counts so far.
    summary: Summary,
}

impl Run<'_> {
    /// Carries out one action, logs it and counts it.
    fn carry(&mut self, conn: &mut Connection, action: &Action) {
        let step = self.step(conn, action);
        self.finish(action, step);
    }

    /// Logs and counts how an action ended.
    fn finish(&mut self, action: &Action, step: Result<Step>) {
        let what = describe(action);
        match step {
            Ok(Step::Done(outcome)) => {
                self.count(action);
                self.local.log.defer(self.peer, &what, &outcome);
            }
            Ok(Step::Logged) => {}
            Ok(Step::Skipped(why)) => {
                self.summary.skipped += 1;
                self.local
                    .log
                    .defer(self.peer, &what, &format!("put off: {why}"));
            }
            Err(e) => {
                self.summary.failed += 1;
                if self.summary.errors.len() < 5 {
                    self.summary.errors.push(format!("{what}: {e}"));
                }
                self.local
                    .log
                    .defer(self.peer, &what, &format!("failed: {e}"));
            }
        }
    }

    fn count(&mut self, action: &Action) {
        let s = &mut self.summary;
        match action {
            Action::Rename { .. } => {}
            Action::Delete { .. } => s.deleted += 1,
            Action::RemoveDir { .. } => s.folders_removed += 1,
            Action::MakeDir { .. } => s.folders_made += 1,
            Action::Download { version, .. } => {
                s.downloaded += 1;
                s.bytes += version.size;
            }
            Action::SetMeta { .. } => s.metadata += 1,
        }
    }

    fn step(&mut self, conn: &mut Connection, action: &Action) -> Result<Step> {
        match action {
            Action::Rename { from, to, version } => self.rename(from, to, version),
            Action::Delete { path, .. } => {
                if let Err(why) = self.still_here(path) {
                    return Ok(Step::Skipped(why));
                }
                let _lock = lock(self.local, path)?;
                let to = transfer::move_to_trash(self.local, path)?;
                self.forget(path);
                Ok(Step::Done(format!("ok: moved to {}", self.shown(&to))))
            }
            Action::RemoveDir { path } => {
                if let Err(why) = self.still_here(path) {
                    return Ok(Step::Skipped(why));
                }
                let dir = resolve_for_write(self.local, path)?;
                let empty = fs::read_dir(&dir)
                    .map_err(|e| Error::io(&dir, e))?
                    .next()
                    .is_none();
                if !empty {
                    return Ok(Step::Skipped(format!("{path} is not empty here")));
                }
                let to = transfer::move_to_trash(self.local, path)?;
                self.forget(path);
                Ok(Step::Done(format!("ok: moved to {}", self.shown(&to))))
            }
            Action::MakeDir { path, mode } => {
                if let Err(why) = self.still_here(path) {
                    return Ok(Step::Skipped(why));
                }
                let dir = resolve_for_write(self.local, path)?;
                // The folder gets its own bits at once (the peer may list us at any moment, and
                // must not take a default mode for a choice), unless they would stop us from
                // filling it: those are set at the end of the round.
                let fillable = mode & 0o700 == 0o700;
                let now = if fillable { *mode } else { 0o700 };
                fs::DirBuilder::new()
                    .mode(now)
                    .create(&dir)
                    .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(now)))
                    .map_err(|e| Error::io(&dir, e))?;
                self.after.insert(path.clone(), Version::dir(now));
                if !fillable {
                    self.new_folders.push((path.clone(), *mode));
                }
                Ok(Step::Done("ok".into()))
            }
            Action::Download { .. } => {
                self.download_all(conn, std::slice::from_ref(action));
                Ok(Step::Logged)
            }
            Action::SetMeta {
                path,
                mode,
                mtime_ns,
                ..
            } => self.set_meta(path, *mode, *mtime_ns),
        }
    }

    /// Checks that `path` on disk is what the round believes is there (see [`as_planned`]).
    /// Returns why not.
    fn still_here(&self, path: &str) -> std::result::Result<(), String> {
        let disk = resolve_for_write(self.local, path)
            .map_err(|e| e.to_string())
            .and_then(|p| match fs::symlink_metadata(&p) {
                Ok(meta) => Ok(Some(meta)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{path}: {e}")),
            })?;
        as_planned(self.local, path, self.after.get(path), disk.as_ref())
    }

    fn forget(&mut self, path: &str) {
        self.after.remove(path);
    }

    /// Records that the file `path` now holds `version`, with the stamp it has on disk, and
    /// tells the hash cache so that the next scan does not read it again. The cache entry is
    /// only made if the file is still the one the round wrote (same inode and size).
    fn now_holds(&mut self, path: &str, version: Version, inode: Option<u64>) {
        let stamp = resolve_for_write(self.local, path)
            .ok()
            .and_then(|p| fs::symlink_metadata(p).ok())
            .map(|m| Stamp::of(&m));
        if let (Some(stamp), Some(md5)) = (stamp, version.md5) {
            if inode.map_or(true, |i| i == stamp.inode) && stamp.size == version.size {
                self.local.hashes.put(stamp, md5);
            }
        }
        self.after.insert(path.to_string(), version);
    }

    /// Our version of `from` lost a conflict: it becomes the conflict copy `to`.
    fn rename(&mut self, from: &str, to: &str, version: &Version) -> Result<Step> {
        if let Err(why) = self.still_here(from).and_then(|()| self.still_here(to)) {
            return Ok(Step::Skipped(why));
        }
        let _a = lock(self.local, from)?;
        let _b = lock(self.local, to)?;
        let src = resolve_for_write(self.local, from)?;
        let dst = resolve_for_write(self.local, to)?;
        let inode = fs::symlink_metadata(&src).ok().map(|m| Stamp::of(&m).inode);
        fs::rename(&src, &dst).map_err(|e| Error::io(&src, e))?;
        self.forget(from);
        self.now_holds(to, version.clone(), inode);
        Ok(Step::Done(format!("ok: our version kept as {to:?}")))
    }

    /// Fetches the files of a run of download actions over one pipelined batch (see
    /// [`transfer::fetch_many`]) and installs each as it comes in.
    ///
    /// This thread only receives: it reads each reply, checks its MD5, and hands the verified
    /// file to one of [`INSTALLERS`] installer threads, which write it (small files arrive in
    /// memory), give it its mtime and bits, and rename it into place. Creating and renaming
    /// files is most of the work for a batch of small files, and a file system does it for
    /// several folders at once: on two cores, receiving and two installers overlap. Each file
    /// is still installed only if it is the planned version and what it replaces is what the
    /// plan saw; the results come back here, to the round's books.
    fn download_all(&mut self, conn: &mut Connection, actions: &[Action]) {
        let mut wanted = Vec::with_capacity(actions.len());
        for action in actions {
            let Action::Download { to, .. } = action else {
                continue;
            };
            let put_off = if let Some(why) = &self.network_down {
                Some(format!("the connection broke: {why}"))
            } else if self.after.get(to).is_some_and(Version::is_dir) {
                Some(format!("{to} is still a folder here"))
            } else {
                None
            };
            match put_off {
                Some(why) => self.finish(action, Ok(Step::Skipped(why))),
                None => wanted.push(action),
            }
        }
        let names: Vec<&str> = wanted
            .iter()
            .map(|a| match a {
                Action::Download { path, .. } => path.as_str(),
                other => other.target(),
            })
            .collect();
        let (local, peer) = (self.local, self.peer);
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Vec<Installed<'_>>>();
        let reported = thread::scope(|scope| {
            // One queue per installer, each fed the files of the folders it owns: two threads
            // creating files in one folder wait for each other on its lock, in two they do not.
            let mut queues = Vec::with_capacity(INSTALLERS);
            for n in 0..INSTALLERS {
                // Bounded: a slow disk makes the receiver wait, rather than pile up files.
                let (jobs_tx, jobs) = crossbeam_channel::bounded::<Vec<Job<'_>>>(INSTALL_QUEUE);
                let done = done_tx.clone();
                let spawned = thread::Builder::new()
                    .name(format!("install-{n}"))
                    .spawn_scoped(scope, move || {
                        for batch in jobs {
                            let results = batch
                                .into_iter()
                                .map(|job| install(local, peer, job, Some(n)))
                                .collect();
                            let _ = done.send(results);
                        }
                    });
                match spawned {
                    Ok(_) => queues.push((jobs_tx, Vec::with_capacity(INSTALL_BATCH))),
                    Err(e) => log::warn!("no installer thread ({e})"),
                }
            }
            drop(done_tx);
            let mut owners = Owners::new(queues.len());
            let reported = transfer::fetch_many(conn, local, &names, &mut |i, fetched, more| {
                let action = wanted[i];
                let planned = self.after.get(action.target()).cloned();
                let job = Job {
                    action,
                    fetched,
                    planned,
                };
                match queues.get_mut(owners.of(action.target())) {
                    Some((_, pending)) => pending.push(job),
                    // No installer thread: install here.
                    None => {
                        let result = install(local, peer, job, None);
                        self.book_install(result);
                    }
                }
                // Full batches go now; the rest when no reply is waiting (or at the end).
                for (queue, pending) in &mut queues {
                    if pending.len() >= INSTALL_BATCH || (!more && !pending.is_empty()) {
                        let batch = std::mem::replace(pending, Vec::with_capacity(INSTALL_BATCH));
                        hand_over(queue, batch, &mut |r| self.book_install(r), local, peer);
                    }
                }
                for results in done_rx.try_iter() {
                    results.into_iter().for_each(|r| self.book_install(r));
                }
            });
            for (queue, pending) in queues {
                if !pending.is_empty() {
                    hand_over(&queue, pending, &mut |r| self.book_install(r), local, peer);
                }
            }
            // The installers finish what they were given, then the channel closes.
            for results in done_rx.iter() {
                results.into_iter().for_each(|r| self.book_install(r));
            }
            reported
        });
        // The lanes' temporary folders are empty again: leave `.minibox/tmp/` as it was.
        for lane in 0..INSTALLERS {
            let _ = std::fs::remove_dir(local.temp_dir(Some(lane)));
        }
        for action in &wanted[reported..] {
            let why = self.network_down.clone().unwrap_or_default();
            self.finish(
                action,
                Ok(Step::Skipped(format!("the connection broke: {why}"))),
            );
        }
    }

    /// Records how an install ended: the log line, the counts, what the box holds now.
    fn book_install(&mut self, result: Installed<'_>) {
        if let Some(why) = result.broke {
            self.network_down.get_or_insert(why);
        }
        if let Some((path, version)) = result.holds {
            self.after.insert(path, version);
        }
        self.finish(result.action, result.step);
    }

    fn set_meta(&mut self, path: &str, mode: Option<u32>, mtime_ns: Option<i64>) -> Result<Step> {
        if let Err(why) = self.still_here(path) {
            return Ok(Step::Skipped(why));
        }
        let _lock = lock(self.local, path)?;
        let target = resolve_for_write(self.local, path)?;
        let mut done = Vec::new();
        if let Some(mode) = mode {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode & MODE_MASK))
                .map_err(|e| Error::io(&target, e))?;
            done.push(format!("bits {mode:03o}"));
        }
        if let Some(mtime) = mtime_ns {
            File::open(&target)
                .and_then(|f| {
                    f.set_times(FileTimes::new().set_modified(transfer::system_time(mtime)))
                })
                .map_err(|e| Error::io(&target, e))?;
            done.push(format!("mtime {}", minibox::timestamp::rfc3339(mtime)));
        }
        if let Some(mut v) = self.after.get(path).cloned() {
            v.mode = mode.unwrap_or(v.mode);
            v.mtime_ns = mtime_ns.unwrap_or(v.mtime_ns);
            let inode = fs::symlink_metadata(&target)
                .ok()
                .map(|m| Stamp::of(&m).inode);
            self.now_holds(path, v, inode);
        }
        Ok(Step::Done(format!("ok: {}", done.join(", "))))
    }

    /// Gives the read-only folders made this round their own permission bits, deepest first (a
    /// read-only folder can only be filled before it becomes read-only).
    fn finish_folders(&mut self) {
        let mut folders = std::mem::take(&mut self.new_folders);
        folders.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
        for (path, mode) in folders {
            let what = format!("sync folder bits {path:?}");
            let result = resolve_for_write(self.local, &path).and_then(|dir| {
                fs::set_permissions(&dir, fs::Permissions::from_mode(mode & MODE_MASK))
                    .map_err(|e| Error::io(&dir, e))
            });
            match result {
                Ok(()) => {
                    self.after.insert(path, Version::dir(mode));
                }
                Err(e) => {
                    self.summary.failed += 1;
                    self.local
                        .log
                        .defer(self.peer, &what, &format!("failed: {e}"));
                }
            }
        }
    }

    /// A path inside the box, shown relative to it.
    fn shown(&self, path: &Path) -> String {
        path.strip_prefix(self.local.root())
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Takes `path`'s write lock, so that our own server never sends it half-moved.
fn lock<'l>(local: &'l LocalBox, path: &str) -> Result<minibox::locks::WriteGuard<'l>> {
    local
        .locks
        .write(path, IDLE_TIMEOUT)
        .ok_or_else(|| Error::Timeout(format!("{path} stayed busy")))
}

/// The log line's "what" for an action.
fn describe(action: &Action) -> String {
    match action {
        Action::Rename { from, .. } => format!("sync conflict {from:?}"),
        Action::Delete { path, .. } => format!("sync delete {path:?}"),
        Action::RemoveDir { path } => format!("sync remove folder {path:?}"),
        Action::MakeDir { path, .. } => format!("sync make folder {path:?}"),
        Action::Download { path, to, .. } if path == to => format!("sync download {path:?}"),
        Action::Download { path, .. } => format!("sync conflict {path:?}"),
        Action::SetMeta { path, .. } => format!("sync set bits/mtime {path:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Agreed;

    fn file(label: &str) -> Version {
        Version::file(Md5::of(label.as_bytes()), label.len() as u64, 0o644, 1)
    }

    #[test]
    fn folders_are_dealt_to_the_installers_in_turn_and_stay_with_theirs() {
        let names: Vec<String> = (0..100)
            .flat_map(|d| (0..3).map(move |f| format!("d{d:04}/f{f}")))
            .chain(["top.txt".to_string(), "d0000/late".to_string()])
            .collect();
        let mut owners = Owners::new(2);
        let got: Vec<usize> = names.iter().map(|n| owners.of(n)).collect();
        for (name, owner) in names.iter().zip(&got) {
            let folder = split_parent(name).0;
            let want = match folder.strip_prefix('d') {
                Some(n) => n.parse::<usize>().unwrap() % 2,
                None => 100 % 2,
            };
            assert_eq!(*owner, want, "{name}");
        }
        let per: Vec<usize> = (0..2)
            .map(|i| got.iter().filter(|&&o| o == i).count())
            .collect();
        assert_eq!(per, [152, 150]);
        assert_eq!(
            Owners::new(0).of("a/b"),
            0,
            "no installers: this thread's lane"
        );
    }

    #[test]
    fn the_peers_index_is_what_it_sent_plus_the_folders_it_said_are_the_same() {
        let agreed: Agreement = [
            ("a", Version::dir(0o755)),
            ("a/x", file("ax")),
            ("a/y", file("ay")),
            ("b", Version::dir(0o755)),
            ("b/z", file("bz")),
            ("top", file("top")),
        ]
        .into_iter()
        .map(|(p, v)| {
            (
                p.to_string(),
                Agreed {
                    version: v,
                    since: 1,
                },
            )
        })
        .collect();
        // The top folder and b/ are the same; a/ changed: a/y edited, a/new added, a/x gone.
        let received = vec![
            ("a/new".to_string(), file("new")),
            ("a/y".to_string(), file("ay2")),
            // Said to be the same, sent anyway: what was sent counts.
            ("b/z".to_string(), file("bz2")),
        ];
        let same = vec!["".to_string(), "b".to_string()];
        let remote = Remote::new(received, same, &agreed);
        let got: Vec<(&str, &Version)> = remote.items().collect();
        let (ay2, new, bz2, top) = (file("ay2"), file("new"), file("bz2"), file("top"));
        let dir = Version::dir(0o755);
        let want = [
            ("a", &dir),
            ("a/new", &new),
            ("a/y", &ay2),
            ("b", &dir),
            ("b/z", &bz2),
            ("top", &top),
        ];
        assert_eq!(got, want);
        for (path, version) in want {
            assert_eq!(remote.version(path), Some(version), "{path}");
        }
        assert_eq!(remote.version("a/x"), None, "gone from a changed folder");
        assert_eq!(remote.version("nothing"), None);
        let nothing_known = Remote::new(Vec::new(), Vec::new(), &agreed);
        assert_eq!(nothing_known.items().count(), 0);
    }
}
