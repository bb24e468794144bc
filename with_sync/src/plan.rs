//! The sync planner: a pure function from what the two boxes hold, and what they last agreed on,
//! to the list of things this box must do.
//!
//! A round of stage 3 is *pull-only*: this box reads the peer's index and changes only itself. The
//! peer does the same in its own rounds. For the two to converge without ever talking about it,
//! each must decide every path the same way the other would, from the same facts. Those facts are
//! three versions of each path:
//!
//! - **local**: what this box holds now;
//! - **remote**: what the peer holds now (its listing);
//! - **base**: what both held the last time they were seen to agree.
//!
//! Comparing local and remote alone cannot tell a file created on one side from a file deleted on
//! the other: both look like "here but not there". The base can: a file that is in the base and
//! missing on one side was deleted there; a file missing from the base is new. That is the
//! three-way comparison of Unison and of `git merge`.
//!
//! ## The decision table
//!
//! For a path, a side has *changed* if its version differs from the base (for a folder: if the
//! folder itself differs, or anything below it is new or changed on that side).
//!
//! | local | remote | decision |
//! |---|---|---|
//! | unchanged | unchanged | nothing |
//! | unchanged | changed | take the remote version: download, delete, make or remove a folder, or only set permission bits or mtime when the contents are the same |
//! | changed | unchanged | nothing: the peer will pull it |
//! | changed | changed, same contents | nothing to move; permission bits and mtime merged field by field |
//! | deleted | changed | the change wins: download it again |
//! | changed | deleted | the change wins: keep it (the peer will pull it) |
//! | deleted | deleted | nothing; forget the path |
//! | changed | changed, different contents | conflict |
//!
//! A conflict keeps both versions. The newer mtime keeps the name (equal mtimes: the larger MD5);
//! the other is kept under a *conflict copy* name, [`conflict_name`]:
//! `report.conflict-box2-20261125-101500.txt` holds box2's losing version of `report.txt`, whose
//! mtime was 10:15:00 UTC. Both peers compute the same winner and the same name from the same two
//! versions, so each ends with exactly one copy: the loser's box renames its file, the winner's
//! box downloads the loser's version under the conflict name. A folder beats a file of the same
//! name (it may hold other files); the file becomes the conflict copy.
//!
//! ## Where the base comes from
//!
//! The base is the stored *agreed state* for this peer ([`Agreed`]: what both held at the end of
//! an earlier round), refined by what the peer was last seen to see of us ([`Seen`], told by our
//! server: see [`minibox::serve::sync_list::Witness`]). Both matter because agreement is learnt one side at
//! a time: when box1 pulls a new file from box2, box1 knows both now hold it, but box2 does not
//! know yet. Without [`fold`], a delete or an edit box1 makes before box2's next round would be
//! read by box2 as "new on my side" and by box1 as "deleted on my side", and each would wait for
//! the other forever. The fold uses the peer's last completed round: what the peer saw of us and
//! still holds, it agreed on; what it saw missing here and still holds, it considers its own.
//!
//! A file the peer deleted, paired with a file the peer made with the same contents, is a
//! rename: one local rename, no bytes (see [`renames`]).
//!
//! The planner decides; [`crate::round`] carries the actions out, checking before each one that
//! the file is still the version the plan saw.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minibox::ask::pipeline::IN_MEMORY;
use serde::{Deserialize, Serialize};

pub mod renames;

/// One version of a path, and a whole box as the planner sees it (path → version): defined in
/// the shared crate, because the server's side of a listing computes them too.
pub use minibox::protocol::sync::{Index, Version};

/// One remembered agreement: both boxes held `version` at the moment `since` (on this box's
/// clock, see [`crate::state::Clock`]). Stored as `[version, since]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(Version, i64)", into = "(Version, i64)")]
pub struct Agreed {
    /// The version both held.
    pub version: Version,
    /// When the agreement was observed.
    pub since: i64,
}

impl From<(Version, i64)> for Agreed {
    fn from((version, since): (Version, i64)) -> Self {
        Agreed { version, since }
    }
}

impl From<Agreed> for (Version, i64) {
    fn from(a: Agreed) -> Self {
        (a.version, a.since)
    }
}

/// The agreed state with one peer: path → agreement.
pub type Agreement = BTreeMap<String, Agreed>;

/// Nothing: for [`walk`] when there are fewer than four maps to walk.
static NOTHING: BTreeMap<String, ()> = BTreeMap::new();

/// An empty index (what a peer that saw nothing saw).
static NO_INDEX: Index = BTreeMap::new();

/// A box as the planner reads it: every path with its version, in path order, and the version
/// at one path. This box's [`Index`] is one; the peer's box is often another kind: what its
/// listing sent, over what both agreed on for the folders it said are unchanged (see
/// `with_sync::round`), which would cost a copy of the whole agreement to make into an index.
pub trait Side: std::fmt::Debug {
    /// Every path and its version, in path order.
    fn items(&self) -> Box<dyn Iterator<Item = (&str, &Version)> + '_>;
    /// The version at `path`, if any.
    fn version(&self, path: &str) -> Option<&Version>;
}

impl Side for Index {
    fn items(&self) -> Box<dyn Iterator<Item = (&str, &Version)> + '_> {
        Box::new(entries(self))
    }

    fn version(&self, path: &str) -> Option<&Version> {
        self.get(path)
    }
}

/// A map's entries as (path, value), in path order.
fn entries<V>(map: &BTreeMap<String, V>) -> impl Iterator<Item = (&str, &V)> {
    map.iter().map(|(k, v)| (k.as_str(), v))
}

/// One path of [`walk`], with what each of the four holds there.
pub(crate) type Walked<'m, A, B, C, D> = (
    &'m str,
    Option<&'m A>,
    Option<&'m B>,
    Option<&'m C>,
    Option<&'m D>,
);

/// Walks four boxes' worth of (path, value), each in path order, together: for every path in
/// any of them, what each one holds there.
///
/// Every input here is sorted by path already, so this costs a few string comparisons per path,
/// where looking each path up in each map costs a few dozen: for a box of 100,000 files, the
/// difference between a round that plans in milliseconds and one that plans in a tenth of a
/// second.
pub(crate) fn walk<'m, A: 'm, B: 'm, C: 'm, D: 'm>(
    a: impl Iterator<Item = (&'m str, &'m A)>,
    b: impl Iterator<Item = (&'m str, &'m B)>,
    c: impl Iterator<Item = (&'m str, &'m C)>,
    d: impl Iterator<Item = (&'m str, &'m D)>,
) -> impl Iterator<Item = Walked<'m, A, B, C, D>> {
    let (mut a, mut b, mut c, mut d) = (a.peekable(), b.peekable(), c.peekable(), d.peekable());
    std::iter::from_fn(move || {
        let key: &'m str = [
            a.peek().map(|e| e.0),
            b.peek().map(|e| e.0),
            c.peek().map(|e| e.0),
            d.peek().map(|e| e.0),
        ]
        .into_iter()
        .flatten()
        .min()?;
        Some((
            key,
            a.next_if(|e| e.0 == key).map(|e| e.1),
            b.next_if(|e| e.0 == key).map(|e| e.1),
            c.next_if(|e| e.0 == key).map(|e| e.1),
            d.next_if(|e| e.0 == key).map(|e| e.1),
        ))
    })
}

/// `base` with `changes` applied (`None`: the path is forgotten), shared as it is when there
/// are none: in a quiet round nothing about the agreement changes, and nothing is copied.
fn with_changes(base: &Arc<Agreement>, changes: Vec<(&str, Option<Agreed>)>) -> Arc<Agreement> {
    if changes.is_empty() {
        return Arc::clone(base);
    }
    let mut out = (**base).clone();
    for (path, change) in changes {
        match change {
            Some(a) => out.insert(path.to_string(), a),
            None => out.remove(path),
        };
    }
    Arc::new(out)
}

/// What the peer saw of this box in its last completed round (told by our server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// When our server sent the listing (our clock).
    pub listed: i64,
    /// When the connection that carried it ended cleanly, i.e. the peer's round was over.
    pub committed: i64,
    /// What the listing showed.
    #[serde(deserialize_with = "sorted_map")]
    pub entries: Index,
}

/// Everything the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// This box now.
    pub local: &'a Index,
    /// The peer now.
    pub remote: &'a dyn Side,
    /// The stored agreed state for this peer.
    pub agreed: &'a Arc<Agreement>,
    /// The peer's last completed look at us, if our server saw one.
    pub seen: Option<&'a Seen>,
    /// Paths to leave alone this round, with everything below them (a local file that changed
    /// while it was being hashed, a remote file listed without an MD5).
    pub busy: &'a BTreeSet<String>,
    /// This box's name (for conflict copies of its versions).
    pub local_name: &'a str,
    /// The peer's name (for conflict copies of its versions).
    pub remote_name: &'a str,
}

/// One thing to do to this box. Paths are relative to the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Rename the local file `from`, which lost a conflict, to its conflict copy name `to`.
    Rename {
        /// The losing file.
        from: String,
        /// Its conflict copy name (free on both sides).
        to: String,
        /// The version the plan expects at `from`.
        version: Version,
    },
    /// Move the local file `path` to the trash.
    Delete {
        /// The file.
        path: String,
        /// The version the plan expects there.
        version: Version,
    },
    /// Move the local folder `path`, which must be empty by then, to the trash.
    RemoveDir {
        /// The folder.
        path: String,
    },
    /// Make the folder `path` with its permission bits (bits that would keep its owner from
    /// writing into it are set at the end of the round, once it is filled).
    MakeDir {
        /// The folder.
        path: String,
        /// Its final permission bits.
        mode: u32,
    },
    /// Fetch the peer's file `path` and install it here as `to` (`path` itself, or the conflict
    /// copy name of the peer's losing version).
    Download {
        /// The name on the peer.
        path: Arc<str>,
        /// The name here: one string with `path` when they are the same (a round may plan a
        /// download per file of a large box; its names are not copied twice).
        to: Arc<str>,
        /// The version the plan decided on: anything else that arrives is not installed.
        version: Version,
    },
    /// Rename the local file `from` to `to` and give it the peer's mtime and bits: the peer
    /// renamed (or moved) a file, and this box has its contents already (see [`renames`]).
    Move {
        /// The file here, which the peer deleted.
        from: String,
        /// The name the peer gave it.
        to: String,
        /// The peer's version at `to` (the same contents as ours at `from`).
        version: Version,
    },
    /// Set the permission bits and/or mtime of the local file or folder `path`; no data moves.
    SetMeta {
        /// The file or folder.
        path: String,
        /// The version the plan expects there.
        version: Version,
        /// New permission bits, if they change.
        mode: Option<u32>,
        /// New mtime, if it changes (files only).
        mtime_ns: Option<i64>,
    },
}

impl Action {
    /// A download of the peer's `path` (version `version`), to `to` here, or to `path` itself.
    pub fn download(path: &str, to: Option<Arc<str>>, version: &Version) -> Action {
        let path: Arc<str> = path.into();
        Action::Download {
            to: to.unwrap_or_else(|| Arc::clone(&path)),
            path,
            version: version.clone(),
        }
    }

    /// The path this action changes here.
    pub fn target(&self) -> &str {
        match self {
            Action::Rename { from, .. } => from,
            Action::Delete { path, .. }
            | Action::RemoveDir { path }
            | Action::MakeDir { path, .. }
            | Action::SetMeta { path, .. } => path,
            Action::Download { to, .. } => to,
            Action::Move { to, .. } => to,
        }
    }
}

/// A round's plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// What to do, in the order to do it: conflict renames, deletions of files, new folders
    /// (shallowest first), the peer's renames, removals of folders (deepest first), downloads
    /// (small files first),
    /// then permission bits and mtimes (deepest first).
    pub actions: Vec<Action>,
    /// Paths in conflict this round (one entry per conflict, named by the contested path).
    pub conflicts: Vec<String>,
    /// Paths left alone this round, and why.
    pub held: Vec<(String, String)>,
    /// Paths changed here only: nothing to do here, the peer takes them in its own round.
    pub waiting: usize,
    /// The base the decisions were made against (the agreed state after [`fold`]; the stored
    /// one itself when the fold changed nothing).
    pub base: Arc<Agreement>,
    /// Busy paths (see [`Inputs::busy`]), widened to folders that cannot be read.
    skip: BTreeSet<String>,
}

/// The conflict copy name of the version of `path` whose box is `loser_peer` and whose mtime is
/// `loser_mtime_ns`: the stem, `.conflict-PEER-YYYYMMDD-HHMMSS` (UTC), an optional `-tag`, then
/// the extension, in the same folder. `report.txt` → `report.conflict-box2-20261125-101500.txt`.
///
/// Every shell reads this format back with `minibox::local::conflicts::parse` (the `conflicts`
/// command): change both together; `tests/conflict_names.rs` round-trips one through the other.
pub fn conflict_name(
    path: &str,
    loser_peer: &str,
    loser_mtime_ns: i64,
    tag: Option<&str>,
) -> String {
    let (folder, file) = match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    };
    // `.bashrc` has no extension; `a.tar.gz` keeps `.gz`.
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => file.split_at(i),
        _ => (file, ""),
    };
    let when = minibox::protocol::timestamp::utc(loser_mtime_ns).format("%Y%m%d-%H%M%S");
    let tag = tag.map(|t| format!("-{t}")).unwrap_or_default();
    format!(
        "{folder}{stem}.conflict-{}-{when}{tag}{ext}",
        name_part(loser_peer)
    )
}

/// A peer name made safe to put in a file name (it comes from the network).
fn name_part(peer: &str) -> String {
    let cleaned: String = peer
        .chars()
        .take(64)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "peer".to_string()
    } else {
        cleaned
    }
}

/// Refines the stored agreement with the peer's last completed round (`seen`), for the paths
/// where that round is newer than what is stored:
///
/// 1. the peer saw version V here and holds V now: it agreed on V (it recorded V too);
/// 2. the peer saw the path missing here: whatever it holds there now, it holds as its own (new
///    or changed), not as something we both had; so there is no base for the path;
/// 3. the peer saw the version we hold now, as a change from the base, and holds something else:
///    it either changed the path again after taking ours, or kept its own; both sides would each
///    think only they changed it, so there is no base, and the symmetric rules for "changed on
///    both sides" settle it.
///
/// The remote index must have been listed *after* `seen` was committed, which the round ensures
/// by taking `seen` before it asks for the listing.
pub fn fold(
    agreed: &Arc<Agreement>,
    seen: Option<&Seen>,
    local: &Index,
    remote: &dyn Side,
) -> Arc<Agreement> {
    let Some(seen) = seen else {
        return Arc::clone(agreed);
    };
    let mut changes = Vec::new();
    let all = walk(
        entries(agreed),
        entries(&seen.entries),
        entries(local),
        remote.items(),
    );
    for (path, a, saw, l, r) in all {
        // 1: what it saw here and holds now, it agreed on (if that is newer than what we keep).
        if let Some(v) = saw {
            let newer = a.is_none_or(|a| seen.committed > a.since);
            let same = a.is_some_and(|a| a.version == *v);
            if newer && !same && r == Some(v) {
                let version = v.clone();
                changes.push((
                    path,
                    Some(Agreed {
                        version,
                        since: seen.committed,
                    }),
                ));
                continue;
            }
        }
        // 2 and 3, for agreements older than its look.
        let Some(a) = a.filter(|a| seen.listed > a.since) else {
            continue;
        };
        let contradicted = match saw {
            None => true,
            Some(saw) => l == Some(saw) && a.version != *saw && r != Some(saw),
        };
        if contradicted {
            changes.push((path, None));
        }
    }
    with_changes(agreed, changes)
}

/// Which paths are new or changed on one side: present there and different from the base. A
/// folder counts as changed when anything below it does, so this returns every such path and
/// all of its ancestors.
fn dirty_tree<'s>(side: &'s dyn Side, base: &'s Agreement) -> BTreeSet<&'s str> {
    let mut dirty = BTreeSet::new();
    let all = walk(
        side.items(),
        entries(base),
        entries(&NOTHING),
        entries(&NOTHING),
    );
    for (path, version, a, _, _) in all {
        let Some(version) = version else {
            continue;
        };
        if a.map(|a| &a.version) != Some(version) {
            let mut p = path;
            loop {
                if !dirty.insert(p) {
                    break; // its ancestors are in already
                }
                match p.rfind('/') {
                    Some(i) => p = &p[..i],
                    None => break,
                }
            }
        }
    }
    dirty
}

/// Whether `path` or a folder above it is in `set`.
fn under(set: &BTreeSet<String>, path: &str) -> bool {
    let mut p = path;
    loop {
        if set.contains(p) {
            return true;
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => return false,
        }
    }
}

/// How many folders deep a path is (for ordering).
fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// Where a download goes in the round's order: small files first, in path order (they come
/// back in memory and are installed by folder), then larger ones, smallest first. When space is
/// short, as many files as fit get it, and the one that does not fit fails last, not first.
fn download_rank(action: &Action) -> u64 {
    match action {
        Action::Download { version, .. } if version.size > IN_MEMORY => version.size,
        _ => 0,
    }
}

/// The plan being built: actions by phase, each tagged with the path whose decision made it
/// (borrowed from the inputs: a tag per action must not cost a copy of every path).
#[derive(Default)]
struct Builder<'p> {
    renames: Vec<(&'p str, Action)>,
    deletes: Vec<(&'p str, Action)>,
    rmdirs: Vec<(&'p str, Action)>,
    mkdirs: Vec<(&'p str, Action)>,
    downloads: Vec<(&'p str, Action)>,
    metas: Vec<(&'p str, Action)>,
    conflicts: Vec<String>,
    held: Vec<(String, String)>,
    waiting: usize,
    /// Conflict copy names this round creates here; their own decisions are dropped.
    claimed: BTreeSet<String>,
    /// Files the peer deleted that are unchanged here, and files new on the peer that are not
    /// here: a pair of them with the same contents is a rename (see [`renames`]).
    gone: BTreeSet<&'p str>,
    came: BTreeSet<&'p str>,
}

impl Builder<'_> {
    /// The actions in the order a round carries them out: conflict renames, deletions, new
    /// folders (shallowest first), the peer's renames (into folders made, out of folders about to
    /// go), folder removals (deepest first), downloads (small files first, see
    /// [`download_rank`]), then bits and mtimes (deepest first). Conflict copies made by renaming
    /// claim their names: whatever that name's own decision was (typically "download the copy the
    /// peer made"), the rename does it.
    fn in_order(&mut self) -> Vec<Action> {
        let claimed = std::mem::take(&mut self.claimed);
        let keep = |list: Vec<(&str, Action)>| -> Vec<Action> {
            list.into_iter()
                .filter(|(owner, _)| !claimed.contains(*owner))
                .map(|(_, action)| action)
                .collect()
        };
        let mut rmdirs = keep(std::mem::take(&mut self.rmdirs));
        rmdirs.sort_by_key(|a| std::cmp::Reverse(depth(a.target())));
        let mut mkdirs = keep(std::mem::take(&mut self.mkdirs));
        mkdirs.sort_by_key(|a| depth(a.target()));
        let mut metas = keep(std::mem::take(&mut self.metas));
        metas.sort_by_key(|a| std::cmp::Reverse(depth(a.target())));
        let (moves, deletes, mut downloads) = renames::pair(
            keep(std::mem::take(&mut self.deletes)),
            keep(std::mem::take(&mut self.downloads)),
            &self.gone,
            &self.came,
        );
        downloads.sort_by_key(download_rank);
        let mut actions = keep(std::mem::take(&mut self.renames));
        actions.extend(deletes);
        actions.extend(mkdirs);
        actions.extend(moves);
        actions.extend(rmdirs);
        actions.extend(downloads);
        actions.extend(metas);
        actions
    }
}

/// Plans one round. Pure: same inputs, same plan.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let base = fold(inputs.agreed, inputs.seen, inputs.local, inputs.remote);
    // A folder we cannot read (or the peer cannot) lists as empty: its files would look deleted.
    // Leave such folders, and everything below them, alone.
    let mut skip = inputs.busy.clone();
    for (path, v) in entries(inputs.local).chain(inputs.remote.items()) {
        if v.is_dir() && v.mode & 0o500 != 0o500 {
            skip.insert(path.to_string());
        }
    }
    let dirty_local = dirty_tree(inputs.local, &base);
    let dirty_remote = dirty_tree(inputs.remote, &base);

    let mut b = Builder::default();
    let all = walk(
        entries(inputs.local),
        inputs.remote.items(),
        entries(&base),
        entries(&NOTHING),
    );
    for (path, l, r, a, _) in all {
        if under(&skip, path) {
            if l != r {
                b.held.push((path.to_string(), "busy or unreadable".into()));
            }
            continue;
        }
        let a = a.map(|a| &a.version);
        let changed = |v: Option<&Version>, dirty: &BTreeSet<&str>| match v {
            None => a.is_some(),
            Some(v) if v.is_dir() => Some(v) != a || dirty.contains(path),
            Some(v) => Some(v) != a,
        };
        let local_changed = changed(l, &dirty_local);
        let remote_changed = changed(r, &dirty_remote);
        match (local_changed, remote_changed) {
            (false, false) => {}
            // Counted if the path itself changed (not only something below a folder).
            (true, false) => b.waiting += usize::from(l != a),
            (false, true) => take_remote(&mut b, path, l, r, a),
            (true, true) => both_changed(&mut b, inputs, path, l, r, a),
        }
    }

    let actions = b.in_order();
    Plan {
        actions,
        conflicts: b.conflicts,
        held: b.held,
        waiting: b.waiting,
        base,
        skip,
    }
}

/// Only the peer changed `path`: make this box hold the remote version.
fn take_remote<'p>(
    b: &mut Builder<'p>,
    path: &'p str,
    l: Option<&Version>,
    r: Option<&Version>,
    a: Option<&Version>,
) {
    let owner = || path;
    // First clear what stands in the way.
    match (l, r) {
        (Some(l), Some(r)) if l.same_content(r) => {
            if let Some(action) = merge_meta(path, l, r, a) {
                b.metas.push((owner(), action));
            }
            return;
        }
        (Some(l), _) if l.is_dir() => b.rmdirs.push((
            owner(),
            Action::RemoveDir {
                path: path.to_string(),
            },
        )),
        (Some(l), None) => {
            b.gone.insert(owner());
            b.deletes.push((
                owner(),
                Action::Delete {
                    path: path.to_string(),
                    version: l.clone(),
                },
            ));
        }
        (Some(l), Some(r)) if r.is_dir() => b.deletes.push((
            owner(),
            Action::Delete {
                path: path.to_string(),
                version: l.clone(),
            },
        )),
        // A file replaced by a file: the download moves the old one to the trash. Or nothing
        // here yet.
        _ => {}
    }
    match r {
        None => {}
        Some(r) if r.is_dir() => b.mkdirs.push((
            owner(),
            Action::MakeDir {
                path: path.to_string(),
                mode: r.mode,
            },
        )),
        Some(r) => {
            if l.is_none() {
                b.came.insert(owner());
            }
            b.downloads.push((owner(), Action::download(path, None, r)));
        }
    }
}

/// Both sides changed `path` since the base.
fn both_changed<'p>(
    b: &mut Builder<'p>,
    inputs: &Inputs<'_>,
    path: &'p str,
    l: Option<&Version>,
    r: Option<&Version>,
    a: Option<&Version>,
) {
    match (l, r) {
        // Deleted on both: nothing to do (the agreed state forgets it).
        (None, None) => {}
        // Deleted here, changed there: the change wins.
        (None, Some(_)) => take_remote(b, path, l, r, a),
        // Changed here, deleted there: the change wins; the peer will pull it.
        (Some(_), None) => {}
        (Some(l), Some(r)) if l.same_content(r) => {
            if let Some(action) = merge_meta(path, l, r, a) {
                b.metas.push((path, action));
            }
        }
        (Some(l), Some(r)) => {
            // Different contents: a conflict. A folder beats a file; between files the newer
            // mtime wins, then the larger MD5. Both peers compare the same two versions.
            let local_wins = match (l.is_dir(), r.is_dir()) {
                (true, _) => true,
                (false, true) => false,
                (false, false) => (l.mtime_ns, &l.md5) > (r.mtime_ns, &r.md5),
            };
            b.conflicts.push(path.to_string());
            if local_wins {
                keep_remote_loser(b, inputs, path, r);
            } else {
                give_way(b, inputs, path, l, r);
            }
        }
    }
}

/// Finds the conflict copy name for `loser`: the plain name, or, if something else is already
/// there on either side, the name tagged with the start of the loser's MD5. Returns the name and
/// whether this box already holds the loser's contents under it.
fn copy_name(
    inputs: &Inputs<'_>,
    path: &str,
    loser: &Version,
    loser_peer: &str,
) -> Option<(String, bool)> {
    let tag = loser.md5.map(|m| m.to_string()[..8].to_string());
    let found = [None, tag.as_deref()].into_iter().find_map(|tag| {
        let name = conflict_name(path, loser_peer, loser.mtime_ns, tag);
        let l = inputs.local.get(&name);
        let r = inputs.remote.version(&name);
        let free = |v: Option<&Version>| v.is_none_or(|v| v.same_content(loser));
        (free(l) && free(r)).then(|| (name, l.is_some()))
    });
    found
}

/// This box won the conflict on `path`: keep ours, and keep the peer's version `r` as a
/// conflict copy (named after the peer).
fn keep_remote_loser<'p>(b: &mut Builder<'p>, inputs: &Inputs<'_>, path: &'p str, r: &Version) {
    match copy_name(inputs, path, r, inputs.remote_name) {
        None => b
            .held
            .push((path.into(), "no free name for the conflict copy".into())),
        // Already have it; or the peer has it under that name and its own decision fetches it.
        Some((name, have)) if have || inputs.remote.version(&name).is_some() => {}
        Some((name, _)) => {
            b.claimed.insert(name.clone());
            b.downloads
                .push((path, Action::download(path, Some(name.into()), r)));
        }
    }
}

/// The peer won the conflict on `path`: our version `l` becomes a conflict copy (named after
/// us) and the peer's version `r` takes the name.
fn give_way<'p>(b: &mut Builder<'p>, inputs: &Inputs<'_>, path: &'p str, l: &Version, r: &Version) {
    let Some((name, have)) = copy_name(inputs, path, l, inputs.local_name) else {
        b.held
            .push((path.into(), "no free name for the conflict copy".into()));
        return;
    };
    let owner = path;
    if have {
        // The copy exists already: ours can go to the trash.
        b.deletes.push((
            owner,
            Action::Delete {
                path: path.to_string(),
                version: l.clone(),
            },
        ));
    } else {
        b.claimed.insert(name.clone());
        b.renames.push((
            owner,
            Action::Rename {
                from: path.to_string(),
                to: name,
                version: l.clone(),
            },
        ));
    }
    if r.is_dir() {
        b.mkdirs.push((
            owner,
            Action::MakeDir {
                path: path.to_string(),
                mode: r.mode,
            },
        ));
    } else {
        b.downloads.push((owner, Action::download(path, None, r)));
    }
}

/// Same contents on both sides, different permission bits or mtime: merges them field by field.
/// A field only one side changed since the base takes that side's value. A field both changed
/// (or with no base) takes a value both peers pick alike: the larger mtime; the permission bits
/// of the version with the larger mtime (then the larger bits). Returns the change to make here.
fn merge_meta(path: &str, l: &Version, r: &Version, a: Option<&Version>) -> Option<Action> {
    let a = a.filter(|a| a.same_content(l));
    let mode = if l.mode == r.mode || a.is_some_and(|a| a.mode == r.mode) {
        None
    } else if a.is_some_and(|a| a.mode == l.mode) || (r.mtime_ns, r.mode) > (l.mtime_ns, l.mode) {
        Some(r.mode)
    } else {
        None
    };
    let mtime_ns =
        if l.is_dir() || l.mtime_ns == r.mtime_ns || a.is_some_and(|a| a.mtime_ns == r.mtime_ns) {
            None
        } else if a.is_some_and(|a| a.mtime_ns == l.mtime_ns) || r.mtime_ns > l.mtime_ns {
            Some(r.mtime_ns)
        } else {
            None
        };
    (mode.is_some() || mtime_ns.is_some()).then(|| Action::SetMeta {
        path: path.to_string(),
        version: l.clone(),
        mode,
        mtime_ns,
    })
}

impl Plan {
    /// Whether the plan leaves `path` alone because it (or a folder above it) is busy.
    pub fn skips(&self, path: &str) -> bool {
        under(&self.skip, path)
    }

    /// The agreed state to store after the round. `local_after` is this box as the round left it
    /// (the plan's actions that succeeded, applied to the local index); `remote` is the listing
    /// the plan used; `now` is when that listing was asked for.
    ///
    /// A path both boxes now hold alike is agreed (its old agreement is kept, with its time, if
    /// it is the same version: so a quiet round changes nothing). A path neither holds is
    /// forgotten. Any other path keeps its base: the difference is still to be settled, by this
    /// box's next round or by the peer's.
    pub fn settle(
        &self,
        local_after: &Index,
        remote: &dyn Side,
        seen: Option<&Seen>,
        now: i64,
    ) -> Arc<Agreement> {
        let seen_entries = seen.map_or(&NO_INDEX, |s| &s.entries);
        let mut changes = Vec::new();
        let all = walk(
            entries(local_after),
            remote.items(),
            entries(&self.base),
            entries(seen_entries),
        );
        for (path, l, r, old, saw) in all {
            let agreed = match (l, r) {
                _ if self.skips(path) => continue,
                (None, None) => None,
                (Some(l), Some(r)) if l == r => {
                    // Re-date an old agreement the peer's last look contradicts, so that the
                    // fold does not undo it next round.
                    let peer_agrees = seen.is_none() || saw == Some(r);
                    match old {
                        Some(old) if old.version == *r && peer_agrees => continue,
                        _ => Some(Agreed {
                            version: r.clone(),
                            since: now,
                        }),
                    }
                }
                _ => continue,
            };
            if agreed.as_ref() != old {
                changes.push((path, agreed));
            }
        }
        with_changes(&self.base, changes)
    }
}

/// Applies the plan's actions to `local` as if each succeeded, with the remote's versions for
/// downloads: what this box will hold after a round in which nothing went wrong. The round does
/// the same action by action with what really happened; tests use this to simulate peers.
pub fn apply(actions: &[Action], local: &Index) -> Index {
    let mut out = local.clone();
    for action in actions {
        apply_one(action, &mut out, None);
    }
    out
}

/// Applies one action that succeeded to `index`. For a download, `installed` is the version that
/// was installed (the planned one if `None`).
pub fn apply_one(action: &Action, index: &mut Index, installed: Option<&Version>) {
    match action {
        Action::Rename { from, to, .. } => {
            if let Some(v) = index.remove(from) {
                index.insert(to.clone(), v);
            }
        }
        Action::Delete { path, .. } | Action::RemoveDir { path } => {
            index.remove(path);
        }
        Action::MakeDir { path, mode } => {
            index.insert(path.clone(), Version::dir(*mode));
        }
        Action::Download { to, version, .. } => {
            index.insert(to.to_string(), installed.unwrap_or(version).clone());
        }
        Action::Move { from, to, version } => {
            index.remove(from);
            index.insert(to.clone(), version.clone());
        }
        Action::SetMeta {
            path,
            mode,
            mtime_ns,
            ..
        } => {
            if let Some(v) = index.get_mut(path) {
                if let Some(mode) = mode {
                    v.mode = *mode;
                }
                if let Some(mtime) = mtime_ns {
                    v.mtime_ns = *mtime;
                }
            }
        }
    }
}

/// Reads a JSON object into a map built in one go. A map read entry by entry grows by splitting
/// nodes, which leaves them half full: twice the memory for a box of 100,000 files. Read as a
/// list and then built, every node is full.
///
/// # Errors
/// If the value is not an object of the right values.
pub fn sorted_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Entries<V> {
        type Value = Vec<(String, V)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of paths")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let entries = d.deserialize_map(Entries(std::marker::PhantomData))?;
    Ok(entries.into_iter().collect())
}

#[cfg(test)]
mod tests;
