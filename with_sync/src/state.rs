//! What a box remembers about each peer between rounds, in `.minibox/state/<peer>.json`.
//!
//! Two things, both needed by the planner (see [`crate::plan`]):
//!
//! - the **agreed state**: for every path, the version both boxes held when a round of *this*
//!   box last saw them agree, and when;
//! - what the peer **saw** of this box in its last completed round: our server sends the peer
//!   its listing and, when the peer hangs up cleanly, tells the [`Book`] (it is the box's
//!   [`Witness`]).
//!
//! The file is written atomically (a temporary file, then a rename), so a crash leaves the old
//! state or the new one, never a mix; a restart resumes from it. It is rewritten only when it
//! changed, so a quiet round writes nothing. A missing or unreadable file means "first sync":
//! the union of both boxes, which never deletes anything.
//!
//! Times in the state come from one [`Clock`] per box: wall-clock nanoseconds, but never going
//! backwards, so that "this happened after that" comparisons hold even if the system clock is
//! set back.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use minibox::local::cache::write_atomically;
use minibox::protocol::md5::md5_reader;
use minibox::serve::sync_list::Witness;
use minibox::util::lock;
use serde::{Deserialize, Serialize};

use crate::plan::{sorted_map, Agreement, Index, Seen};

/// The format number written in every state file. (Format 1 stored versions as objects; a file
/// of another format is not read, which means a first sync: the union of both boxes.)
const FORMAT: u32 = 2;

/// A clock that never goes backwards: nanoseconds since the epoch, or one more than the last
/// reading if the wall clock is behind it.
#[derive(Debug, Default)]
pub struct Clock {
    /// The last reading.
    last: Mutex<i64>,
}

impl Clock {
    /// A reading later than every earlier one.
    pub fn now(&self) -> i64 {
        let mut last = lock(&self.last);
        *last = (*last + 1).max(minibox::protocol::timestamp::now_ns());
        *last
    }

    /// Makes sure later readings come after `t` (a time loaded from disk).
    pub fn at_least(&self, t: i64) {
        let mut last = lock(&self.last);
        *last = (*last).max(t);
    }
}

/// What a box keeps about one peer (the JSON file's contents).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerState {
    /// The file format.
    #[serde(default)]
    pub format: u32,
    /// The peer's name.
    #[serde(default)]
    pub peer: String,
    /// The agreed state (shared with the plans made from it: see [`crate::plan::Plan::base`]).
    #[serde(default, deserialize_with = "shared_sorted_map")]
    pub agreed: Arc<Agreement>,
    /// What the peer saw of this box in its last completed round.
    #[serde(default)]
    pub seen: Option<Arc<Seen>>,
}

/// [`sorted_map`], shared.
fn shared_sorted_map<'de, D, V>(d: D) -> Result<Arc<BTreeMap<String, V>>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    sorted_map(d).map(Arc::new)
}

impl PeerState {
    /// The latest time mentioned in the state.
    fn latest(&self) -> i64 {
        let agreed = self.agreed.values().map(|a| a.since).max().unwrap_or(0);
        let seen = self.seen.as_ref().map_or(0, |s| s.committed.max(s.listed));
        agreed.max(seen)
    }
}

/// One peer's state in memory.
#[derive(Debug, Default)]
struct Slot {
    /// The state, shared with the round that reads it (not copied: it holds an entry per file).
    state: Arc<PeerState>,
    /// Whether it differs from the file.
    dirty: bool,
}

/// Every peer's state of one box, shared by the sync rounds and the server's threads.
#[derive(Debug)]
pub struct Book {
    /// `.minibox/state/`.
    dir: PathBuf,
    /// The box's clock.
    clock: Clock,
    /// Peer name → state, loaded on first use.
    peers: Mutex<HashMap<String, Slot>>,
}

impl Book {
    /// The book of the box whose metadata folder is `meta_dir` (`.minibox/`).
    pub fn open(meta_dir: &std::path::Path) -> Self {
        Book {
            dir: meta_dir.join("state"),
            clock: Clock::default(),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// The box's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        lock(&self.peers)
    }

    /// Where the state of `peer` is kept. Peer names come from the network: anything but
    /// letters, digits, `-`, `_` and inner dots is escaped as `%XX`, and long names are cut and
    /// made unique with their MD5.
    pub fn file_of(&self, peer: &str) -> PathBuf {
        let mut name = String::new();
        for (i, b) in peer.bytes().enumerate() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        if name.is_empty() {
            name.push_str("%00");
        }
        if name.len() > 100 {
            let digest = md5_reader(peer.as_bytes()).unwrap_or_default();
            name = format!("{}-{digest}", &name[..64]);
        }
        self.dir.join(format!("{name}.json"))
    }

    /// Loads (once) and returns the state kept about `peer`.
    pub fn load(&self, peer: &str) -> Arc<PeerState> {
        let mut peers = self.peers();
        let slot = peers.entry(peer.to_string()).or_insert_with(|| {
            let file = self.file_of(peer);
            let state = match fs::read(&file) {
                Ok(bytes) => match serde_json::from_slice::<PeerState>(&bytes) {
                    Ok(state) if state.format == FORMAT => state,
                    Ok(state) => {
                        log::warn!(
                            "{}: a sync state of format {} (this build reads {FORMAT}); \
                             starting as a first sync",
                            file.display(),
                            state.format
                        );
                        PeerState::default()
                    }
                    Err(e) => {
                        log::warn!(
                            "{}: unreadable sync state ({e}); starting as a first sync",
                            file.display()
                        );
                        PeerState::default()
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => PeerState::default(),
                Err(e) => {
                    log::warn!("{}: {e}; starting as a first sync", file.display());
                    PeerState::default()
                }
            };
            self.clock.at_least(state.latest());
            Slot {
                state: Arc::new(state),
                dirty: false,
            }
        });
        Arc::clone(&slot.state)
    }

    /// Replaces the agreed state for `peer` and writes the file if anything changed. Returns
    /// whether it wrote.
    ///
    /// # Errors
    /// If `.minibox/state/` cannot be written.
    pub fn store(&self, peer: &str, agreed: Arc<Agreement>) -> io::Result<bool> {
        self.load(peer);
        let mut peers = self.peers();
        let slot = peers.entry(peer.to_string()).or_default();
        // A round that changed nothing hands back the very agreement it was given.
        if !Arc::ptr_eq(&slot.state.agreed, &agreed) && slot.state.agreed != agreed {
            // Copies the state only if a round still holds it (drop it before storing).
            Arc::make_mut(&mut slot.state).agreed = agreed;
            slot.dirty = true;
        }
        self.write(peer, slot)
    }

    /// Writes `slot` if it is dirty (called with the lock held, so two writers never race).
    fn write(&self, peer: &str, slot: &mut Slot) -> io::Result<bool> {
        if !slot.dirty {
            return Ok(false);
        }
        if slot.state.format != FORMAT || slot.state.peer != peer {
            let state = Arc::make_mut(&mut slot.state);
            state.format = FORMAT;
            state.peer = peer.to_string();
        }
        let bytes = serde_json::to_vec(&*slot.state).map_err(io::Error::other)?;
        write_atomically(&self.file_of(peer), &bytes)?;
        slot.dirty = false;
        Ok(true)
    }
}

impl Witness for Book {
    fn listing(&self, _peer: &str) -> i64 {
        self.clock.now()
    }

    fn round_over(&self, peer: &str, moment: i64, entries: Index) {
        let committed = self.clock.now();
        self.load(peer);
        let mut peers = self.peers();
        let slot = peers.entry(peer.to_string()).or_default();
        // Only a different listing is worth a write; new times alone are kept in memory.
        let changed = slot
            .state
            .seen
            .as_ref()
            .is_none_or(|s| s.entries != entries);
        Arc::make_mut(&mut slot.state).seen = Some(Arc::new(Seen {
            listed: moment,
            committed,
            entries,
        }));
        slot.dirty |= changed;
        if let Err(e) = self.write(peer, slot) {
            log::warn!("cannot save the sync state for {peer}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Agreed;

    #[test]
    fn the_clock_never_goes_back() {
        let clock = Clock::default();
        clock.at_least(i64::MAX / 2);
        let a = clock.now();
        let b = clock.now();
        assert!(a > i64::MAX / 2 && b > a);
    }

    #[test]
    fn state_survives_a_restart_and_is_written_only_when_it_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let book = Book::open(tmp.path());
        let mut agreed = Agreement::new();
        agreed.insert(
            "a".into(),
            Agreed {
                version: crate::plan::Version::file(
                    minibox::protocol::md5::Md5::of(b"aa"),
                    2,
                    0o644,
                    5,
                ),
                since: 7,
            },
        );
        assert!(book.store("box2", Arc::new(agreed.clone())).unwrap());
        assert!(
            !book.store("box2", Arc::new(agreed.clone())).unwrap(),
            "unchanged: no write"
        );
        book.round_over("box2", 8, Index::new());
        let file = book.file_of("box2");
        let written = fs::metadata(&file).unwrap().modified().unwrap();
        book.round_over("box2", 10, Index::new());
        assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), written);

        let again = Book::open(tmp.path());
        let state = again.load("box2");
        assert_eq!(*state.agreed, agreed);
        assert_eq!(state.seen.as_ref().unwrap().listed, 8);
        assert!(again.clock().now() > 8);
    }

    #[test]
    fn peer_names_make_safe_file_names() {
        let book = Book::open(std::path::Path::new("/m"));
        assert_eq!(book.file_of("box2"), PathBuf::from("/m/state/box2.json"));
        assert_eq!(
            book.file_of("../x/y"),
            PathBuf::from("/m/state/%2E.%2Fx%2Fy.json")
        );
        assert!(book.file_of(&"z".repeat(500)).to_string_lossy().len() < 200);
    }

    #[test]
    fn a_state_of_another_format_means_a_first_sync() {
        let tmp = tempfile::tempdir().unwrap();
        let book = Book::open(tmp.path());
        fs::create_dir_all(tmp.path().join("state")).unwrap();
        // Format 1 kept versions as objects.
        let old = r#"{"format":1,"peer":"p","agreed":{"a":{"kind":"dir","mode":493,"since":5}}}"#;
        fs::write(book.file_of("p"), old).unwrap();
        assert_eq!(*book.load("p"), PeerState::default());
        let other = Book::open(tmp.path());
        fs::write(other.file_of("p"), r#"{"format":9,"peer":"p"}"#).unwrap();
        assert_eq!(*other.load("p"), PeerState::default());
    }

    #[test]
    fn a_corrupt_state_file_means_a_first_sync() {
        let tmp = tempfile::tempdir().unwrap();
        let book = Book::open(tmp.path());
        fs::create_dir_all(tmp.path().join("state")).unwrap();
        fs::write(book.file_of("p"), "{oops").unwrap();
        assert_eq!(*book.load("p"), PeerState::default());
    }
}
