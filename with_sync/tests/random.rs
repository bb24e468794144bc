//! Random creates, edits, deletes, renames, chmods and touches on both boxes, with peers stopped
//! (SIGTERM or SIGKILL) and restarted at random, while real peers sync every 0.2 s. After every
//! step the boxes must converge, and no version may be lost.
//!
//! "No version lost" is checked for every version the test ever saw in a box, which covers every
//! version that existed at a round boundary. The test looks at both boxes just before and just
//! after each user operation, with short random pauses between operations so that rounds land
//! in between (it counts the rounds that finished during the operations and demands some). Between
//! two user operations only sync changes the boxes, and sync makes copies of versions that exist
//! and moves what it replaces into a trash; so a version present at any round boundary is one
//! the test saw at one of those looks. At each settled step boundary every version seen so far
//! must be in a box (perhaps as a conflict copy) or in a trash, unless the simulated user itself
//! destroyed its last copy (noted when it did).
//!
//! The operations come from a seeded PRNG. The seed is fixed, so every run makes the same
//! operations (the peers' timing is the machine's, so not the same interleaving);
//! `MINIBOX_SEED=n` picks another, and a failure prints the seed it ran with.

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{trash_md5s, Pair, LIMIT};

use testkit::{md5_of, Rng};

const STEPS: usize = 25;

/// The seed when `MINIBOX_SEED` does not name one.
const DEFAULT_SEED: u64 = 0x6d69_6e69_626f_7833;

/// Paths the operations pick from: few, so that they collide (the same file edited on both
/// sides, a file where the other side has a folder).
const PATHS: [&str; 9] = [
    "a.txt",
    "b",
    "d/c.txt",
    "d/e/f.md",
    "d/e",
    "g/h.bin",
    "g",
    "d/a.txt",
    "top/mid/low/x",
];

/// Prints the seed if the test fails, whatever panicked (an assertion here, or a helper).
struct SeedOnFailure(u64);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "random sync test FAILED with seed {0}; MINIBOX_SEED={0} replays its operations",
                self.0
            );
        }
    }
}

/// How many copies of each version both boxes hold (conflict copies included), read while the
/// peers may be moving files about.
fn versions(pair: &Pair) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in 0..2 {
        for (_, (dir, bytes, ..)) in testkit::snapshot_live(pair.dir(i)) {
            if !dir {
                *out.entry(md5_of(&bytes)).or_default() += 1;
            }
        }
    }
    out
}

/// The versions in a settled box, read strictly.
fn box_md5s(root: &Path) -> BTreeSet<String> {
    testkit::snapshot(root)
        .into_values()
        .filter(|(dir, ..)| !dir)
        .map(|(_, bytes, ..)| md5_of(&bytes))
        .collect()
}

/// Whether no part of `path`'s parents is a file.
fn parents_ok(root: &Path, path: &str) -> bool {
    let mut p = Path::new(path);
    while let Some(parent) = p.parent() {
        if parent.as_os_str().is_empty() {
            return true;
        }
        if root.join(parent).is_file() {
            return false;
        }
        p = parent;
    }
    true
}

/// Every regular file below `dir` (the peers may be changing it: what vanishes is skipped).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    testkit::snapshot_live(dir)
        .into_iter()
        .filter(|(_, (d, ..))| !d)
        .map(|(p, _)| dir.join(p))
        .collect()
}

fn write_file(root: &Path, path: &str, bytes: &[u8]) {
    let full = root.join(path);
    // A peer may be changing the folders around it: a failed write is an operation not made.
    if let Some(parent) = full.parent() {
        let _ = fs::create_dir_all(parent);
    }
    let _ = fs::write(&full, bytes);
}

fn set_mtime(path: &Path, ns: i64) {
    let Ok(ns) = u64::try_from(ns) else { return };
    let time = UNIX_EPOCH + Duration::from_nanos(ns);
    if let Ok(f) = fs::File::options().write(true).open(path) {
        let _ = f.set_times(fs::FileTimes::new().set_modified(time));
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
}

/// One random user operation on box `who`. The peers keep running meanwhile, so a file seen a
/// moment ago may be gone (moved to a trash, replaced by a folder): every step tolerates that and
/// simply does less. Returns the versions it destroyed (the MD5 of each file it overwrote or
/// removed, read just before).
fn operate(rng: &mut Rng, pair: &Pair, who: usize) -> Vec<String> {
    let root = pair.dir(who);
    let path = PATHS[rng.below(PATHS.len())];
    let full = root.join(path);
    let op = rng.below(9);
    let is_file = full.is_file();
    let is_dir = full.is_dir();
    let mut destroyed = Vec::new();
    match op {
        // Create or rewrite a file (sometimes with the same size).
        0 | 1 if !is_dir && parents_ok(root, path) => {
            let len = match (is_file && op == 1).then(|| len_of(&full)).flatten() {
                Some(len) => len,
                None => 1 + rng.below(5000),
            };
            if is_file {
                doomed(&mut destroyed, std::slice::from_ref(&full));
            }
            write_file(root, path, &content(rng, len));
        }
        // Same size, same mtime to the nanosecond.
        2 if is_file => rewrite_keeping_size_and_mtime(rng, &full, &mut destroyed),
        3 if is_file => {
            doomed(&mut destroyed, std::slice::from_ref(&full));
            let _ = fs::remove_file(&full);
        }
        // rm -rf
        4 if is_dir => {
            doomed(&mut destroyed, &files_below(&full));
            let _ = fs::remove_dir_all(&full);
        }
        5 if !is_file && !is_dir && parents_ok(root, path) => {
            let _ = fs::create_dir_all(&full);
        }
        6 if is_file => chmod(&full, [0o644, 0o600, 0o755, 0o640][rng.below(4)]),
        6 if is_dir => chmod(&full, [0o755, 0o700, 0o750][rng.below(3)]),
        7 if is_file => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let offset = i64::try_from(rng.below(100_000)).unwrap() * 1_000_000;
            set_mtime(&full, i64::try_from(now.as_nanos()).unwrap() - offset);
        }
        // Rename a file to a free name.
        8 if is_file => rename_to_a_free_name(rng, root, &full),
        _ => {}
    }
    destroyed
}

/// Notes in `destroyed` the MD5 of each of `files` (those that can still be read).
fn doomed(destroyed: &mut Vec<String>, files: &[PathBuf]) {
    for f in files {
        if let Ok(bytes) = fs::read(f) {
            destroyed.push(md5_of(&bytes));
        }
    }
}

/// `len` pseudo-random bytes from the next seed of `rng`.
fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    testkit::pseudo_random(len, rng.next_u64())
}

/// The size of the file at `p`, if it can be read.
fn len_of(p: &Path) -> Option<usize> {
    fs::metadata(p).map(|m| m.len() as usize).ok()
}

/// Rewrites the file at `full` with new bytes of the same size and the same mtime to the
/// nanosecond, noting the version it destroys.
fn rewrite_keeping_size_and_mtime(rng: &mut Rng, full: &Path, destroyed: &mut Vec<String>) {
    if let (Some(len), Ok(meta)) = (len_of(full), fs::symlink_metadata(full)) {
        use std::os::unix::fs::MetadataExt;
        let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        doomed(destroyed, &[full.to_path_buf()]);
        if fs::write(full, content(rng, len)).is_ok() {
            set_mtime(full, mtime);
        }
    }
}

/// Renames the file at `full` to a random path of [`PATHS`], if that one is free.
fn rename_to_a_free_name(rng: &mut Rng, root: &Path, full: &Path) {
    let to = PATHS[rng.below(PATHS.len())];
    let dest = root.join(to);
    if !dest.exists() && parents_ok(root, to) {
        if let Some(parent) = dest.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let _ = fs::rename(full, &dest);
    }
}

/// Rounds finished so far by each running peer (a restarted peer counts from zero again).
fn rounds(pair: &Pair) -> [usize; 2] {
    [pair.rounds(0), pair.rounds(1)]
}

#[test]
fn random_edits_on_both_sides_with_restarts_converge_and_lose_nothing() {
    let seed = std::env::var("MINIBOX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let _report = SeedOnFailure(seed);
    eprintln!("random sync test: seed {seed} (MINIBOX_SEED=n picks another)");
    let mut rng = Rng::new(seed);
    let mut pair = Pair::new();
    pair.start();
    // Every version seen in a box; the versions whose last copy the user destroyed.
    let mut history: BTreeSet<String> = BTreeSet::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let (mut operations, mut rounds_during_operations) = (0usize, 0usize);
    for step in 0..STEPS {
        let stopped = maybe_stop_a_peer(&mut rng, &mut pair);
        let marks = rounds(&pair);
        for _ in 0..2 + rng.below(6) {
            operate_and_track_versions(&mut rng, &pair, &mut history, &mut removed);
            operations += 1;
            // A pause now and then, long enough for a round (0.2 s) to land between operations.
            std::thread::sleep(Duration::from_millis(80 * rng.below(4) as u64));
        }
        let now = rounds(&pair);
        rounds_during_operations += (0..2).map(|i| now[i] - marks[i]).sum::<usize>();
        if let Some(i) = stopped {
            pair.restart(i);
        }
        converged_and_no_version_lost(&pair, seed, step, &mut history, &removed);
    }
    pair.stop(0);
    pair.stop(1);
    eprintln!(
        "random sync test: seed {seed}: {STEPS} steps, {operations} operations, \
         {rounds_during_operations} rounds finished between them, {} versions tracked \
         ({} destroyed by the user)",
        history.len(),
        removed.len()
    );
    // Without rounds in between, the operations would only ever meet settled boxes.
    assert!(
        rounds_during_operations > 0,
        "no round finished while the operations were made"
    );
}

/// One time in four, stops a random peer (SIGKILL or SIGTERM); returns which.
fn maybe_stop_a_peer(rng: &mut Rng, pair: &mut Pair) -> Option<usize> {
    (rng.below(4) == 0).then(|| {
        let i = rng.below(2);
        if rng.below(2) == 0 {
            pair.kill(i);
        } else {
            pair.stop(i);
        }
        i
    })
}

/// One random operation on a random box, with the versions seen just before and just after it
/// added to `history`, and those whose last copy it destroyed to `removed`.
fn operate_and_track_versions(
    rng: &mut Rng,
    pair: &Pair,
    history: &mut BTreeSet<String>,
    removed: &mut BTreeSet<String>,
) {
    let who = rng.below(2);
    let before = versions(pair);
    history.extend(before.keys().cloned());
    let destroyed = operate(rng, pair, who);
    // A destroyed version is lost for good (by the user's own hand) if no copy of it
    // was left in either box.
    let mut gone: BTreeMap<&String, usize> = BTreeMap::new();
    for md5 in &destroyed {
        *gone.entry(md5).or_default() += 1;
    }
    for (md5, n) in gone {
        if before.get(md5).copied().unwrap_or(0) <= n {
            removed.insert(md5.clone());
        }
    }
    history.extend(versions(pair).into_keys());
}

/// The boxes converge, and every version in `history` is in a box or a trash, or in `removed`;
/// then the settled box's versions join `history`.
fn converged_and_no_version_lost(
    pair: &Pair,
    seed: u64,
    step: usize,
    history: &mut BTreeSet<String>,
    removed: &BTreeSet<String>,
) {
    assert!(
        pair.wait_converged(LIMIT),
        "seed {seed} step {step}: the boxes did not converge:\n{}",
        pair.diff()
    );
    pair.settle();
    let kept: BTreeSet<String> = box_md5s(pair.dir(0))
        .into_iter()
        .chain(trash_md5s(pair.dir(0)))
        .chain(trash_md5s(pair.dir(1)))
        .collect();
    for md5 in history.iter() {
        assert!(
            kept.contains(md5) || removed.contains(md5),
            "seed {seed} step {step}: version {md5} is in neither box nor trash"
        );
    }
    history.extend(box_md5s(pair.dir(0)));
}
