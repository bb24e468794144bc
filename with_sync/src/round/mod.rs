//! One sync round: scan, list, plan, carry out, remember.
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
//! The round holds one TCP connection at a time, from step 1 to step 7 (a second one only after
//! it refused a download whose header contradicts the listing: see [`carry`]), and uses only
//! requests every stage serves, so it can pull from a stage-1 `server`. Nothing here overwrites or deletes a file in
//! place: what is replaced or deleted is moved into `.minibox/trash/`, and a download becomes
//! visible under its name only by an atomic rename of a verified temporary file. A file the user
//! touches while the round runs is left alone (its stamp no longer matches what the plan saw) and
//! reconsidered next round.
//!
//! The round reads in four parts: this file (the sequence), [`local`] (this box as the round
//! sees it), [`peer`] (the peer's box), [`carry`] (the actions, one by one) with [`pipeline`]
//! (the downloads, pipelined, and their installer threads) and [`blocks`] (copies of what this
//! box holds, big files by blocks), and [`summary`] (what it did).

pub mod blocks;
pub mod carry;
pub mod local;
pub mod peer;
pub mod pipeline;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use minibox::ask;
use minibox::local::log::made;
use minibox::local::LocalBox;
use minibox::protocol::error::{Error, Result};
use minibox::util::lock;
use minibox::wire::conn::Connection;

use self::carry::Run;
use self::local::{scan_local, stopped, LocalScan};
use self::peer::{list_peer, Listing, Remote};
use self::summary::Summary;
use crate::plan::{self, Inputs, Plan};
use crate::state::{Book, PeerState};

/// How long a listing may wait for this box's own scan before it is asked for again (the peer
/// drops a connection silent for 10 s).
const RELIST_AFTER: Duration = Duration::from_secs(5);

/// The most failed actions one round says on stderr one by one.
const SAID_FAILURES: usize = 5;

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
    /// Set by [`Syncer::cancel`] for the running round; cleared when the next one begins.
    cancelled: AtomicBool,
    /// The running round's socket, so that `stop` can cut a transfer short.
    live: Mutex<Option<TcpStream>>,
    /// Paths the last round left alone: a path held round after round is logged once.
    held: Mutex<BTreeSet<String>>,
    /// The actions that failed last round, with their errors: each is said on stderr once, not
    /// round after round.
    failing: Mutex<BTreeMap<String, String>>,
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
            cancelled: AtomicBool::new(false),
            live: Mutex::new(None),
            held: Mutex::new(BTreeSet::new()),
            failing: Mutex::new(BTreeMap::new()),
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

    /// Stops: the running round (if any) ends at once, leaving no partial file under a real
    /// name; later rounds do nothing.
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

    /// Ctrl-C on `sync`: the running round ends at once, as a stopped one does (what it
    /// installed stays, the rest is left for the next round), but later rounds run as usual.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(stream) = self.live().as_ref() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Whether the running (or last) round was cancelled.
    pub fn was_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Whether the running round was stopped or cancelled.
    fn cut_short(&self) -> bool {
        self.stopped() || self.was_cancelled()
    }

    fn live(&self) -> MutexGuard<'_, Option<TcpStream>> {
        lock(&self.live)
    }

    /// Runs one full round: pull from the peer (see the module docs).
    ///
    /// # Errors
    /// If the box cannot be scanned, the peer cannot be reached or listed, or the state cannot be
    /// saved. Failed actions do not fail the round: they are counted and retried next round.
    pub fn round(&self) -> Result<Summary> {
        let _one = lock(&self.one_at_a_time);
        self.cancelled.store(false, Ordering::SeqCst);
        if self.stopped() {
            return Err(stopped());
        }
        let mut conn = self.connect()?;
        let result = self.pull(&mut conn);
        // The round's actions were logged as deferred lines: out they go.
        self.local.log.flush();
        *self.live() = None;
        // Hang up only now, with the state saved: the peer's witness takes a clean close to
        // mean that our round is over.
        drop(conn);
        result
    }

    /// Connects to the peer, the connection `stop` can cut.
    fn connect(&self) -> Result<Connection> {
        let conn = ask::connect(&self.local, &self.peer_addr)?;
        *self.live() = conn.stream().try_clone().ok();
        if self.cut_short() {
            conn.shutdown();
        }
        Ok(conn)
    }

    /// The round: look at both boxes, plan, carry out, remember.
    fn pull(&self, conn: &mut Connection) -> Result<Summary> {
        let peer = conn.peer_name().to_string();
        // What the peer last saw of us, taken before we list it (see plan::fold).
        let state = self.book.load(&peer);
        let now = self.book.clock().now();
        let (scan, listing) = self.look(conn, &state)?;
        let remote = Remote::new(listing.received, listing.same, &state.agreed);
        let mut busy = scan.busy.clone();
        busy.extend(listing.busy);
        let mut plan = plan::plan(&Inputs {
            local: &scan.index,
            remote: &remote,
            agreed: &state.agreed,
            seen: state.seen.as_deref(),
            busy: &busy,
            local_name: self.local.name(),
            remote_name: &peer,
        });
        let summary = Summary {
            peer: peer.clone(),
            conflicts: plan.conflicts.len(),
            waiting: plan.waiting,
            ..Summary::default()
        };
        let reconnect = || self.connect();
        let mut run = Run::new(&self.local, &peer, scan.index, summary).reconnecting(&reconnect);
        self.note_held(&plan, &mut run);
        run.carry_out(conn, &plan.actions, &|| self.cut_short());
        self.note_failed(std::mem::take(&mut run.failed));
        // Done with: a download per new file of a large box holds its name; free them before
        // the new agreement copies the names it keeps.
        drop(std::mem::take(&mut plan.actions));
        let agreed = plan.settle(&run.after, &remote, state.seen.as_deref(), now);
        // Let go of the state we read, so that storing the new one does not copy it.
        drop(state);
        self.book
            .store(&peer, agreed)
            .map_err(|e| Error::io(self.book.file_of(&peer), e))?;
        if let Err(e) = self.local.hashes.save() {
            log::warn!("cannot save the stat cache: {e}");
        }
        self.finish(run.summary)
    }

    /// Scans this box while the peer lists its own: both disks are read at once. The scan runs
    /// on a thread of its own; the listing arrives here meanwhile.
    fn look(&self, conn: &mut Connection, state: &PeerState) -> Result<(LocalScan, Listing)> {
        let (scan, listing) = thread::scope(|scope| {
            let scanner = thread::Builder::new()
                .name("scan".into())
                .spawn_scoped(scope, || scan_local(&self.local, &self.stopping));
            let listing = list_peer(conn, &state.agreed);
            let failed = |_| Err(Error::Usage("the scan of this box failed".into()));
            let scan = match scanner {
                Ok(scanner) => scanner.join().unwrap_or_else(failed),
                Err(_) => scan_local(&self.local, &self.stopping),
            };
            (scan, listing)
        });
        let (scan, mut listing, mut listed) = (scan?, listing?, Instant::now());
        // Hashing new files here may have taken long; the peer gives up on a connection silent
        // for 10 s. Rather than find out in the middle of the downloads, ask again.
        if listed.elapsed() > RELIST_AFTER {
            log::info!(
                "this box took long to scan; listing {} again",
                conn.peer_name()
            );
            drop(std::mem::replace(conn, self.connect()?));
            listing = list_peer(conn, &state.agreed)?;
            listed = Instant::now();
        }
        log::debug!("listed {} {:?} ago", conn.peer_name(), listed.elapsed());
        Ok((scan, listing))
    }

    /// Counts the paths the plan left alone; logs each once, not round after round.
    fn note_held(&self, plan: &Plan, run: &mut Run<'_>) {
        let mut before = lock(&self.held);
        for (path, why) in &plan.held {
            run.summary.skipped += 1;
            if !before.contains(path) {
                self.local
                    .log
                    .record(&run.who, &format!("sync hold {path:?}"), why);
            }
        }
        *before = plan.held.iter().map(|(p, _)| p.clone()).collect();
    }

    /// Says on stderr which actions failed (a full disk, a folder this box may not write): the
    /// box's own log may be on that very disk. Each failure once, until it changes or goes away.
    fn note_failed(&self, failed: BTreeMap<String, String>) {
        let mut before = lock(&self.failing);
        let new: Vec<_> = failed
            .iter()
            .filter(|(what, e)| before.get(*what) != Some(*e))
            .collect();
        for (what, e) in new.iter().take(SAID_FAILURES) {
            log::warn!(
                "{what} failed: {e}; the round went on without it, and the next one tries it again"
            );
        }
        if new.len() > SAID_FAILURES {
            let more = new.len() - SAID_FAILURES;
            let log = self.local.log.path().display();
            log::warn!("{more} more actions failed; {log} has every one");
        }
        *before = failed;
    }

    /// Logs the round's summary.
    fn finish(&self, summary: Summary) -> Result<Summary> {
        if summary.changed() || summary.failed > 0 {
            self.local
                .log
                .defer(&made(&summary.peer), "sync round", &summary.text());
        }
        log::info!(target: "with_sync::round", "round done: {}", summary.text());
        if self.cut_short() {
            return Err(stopped());
        }
        Ok(summary)
    }
}
