//! Random creates, edits, deletes, renames, chmods and touches on both boxes, with peers stopped
//! (SIGTERM or SIGKILL) and restarted at random, while real peers sync every 0.2 s. After every
//! step the boxes must converge, and every version of every file that existed at an earlier step
//! boundary must still be somewhere: in a box (perhaps as a conflict copy), in a trash, or
//! removed by the simulated user itself (when no other copy existed).
//!
//! The operations come from a seeded PRNG; the seed is printed, and `MINIBOX_SEED=n` replays the
//! same operations (the peers' timing is the machine's, so not the same interleaving).

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{set_mtime, trash_md5s, Pair, LIMIT};
use minibox::hash::md5_file;
use testkit::{chmod, Rng};

const STEPS: usize = 25;

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

/// MD5s of every file in a box (conflict copies included).
fn box_md5s(root: &Path) -> Vec<String> {
    testkit::snapshot(root)
        .into_iter()
        .filter(|(_, (dir, ..))| !dir)
        .map(|(path, _)| md5_file(&root.join(path)).unwrap())
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

/// One random user operation on box `who`. Versions it destroys that exist nowhere else are
/// noted in `removed`.
fn operate(rng: &mut Rng, pair: &Pair, who: usize, removed: &mut BTreeSet<String>) {
    let root = pair.dir(who);
    let path = PATHS[rng.below(PATHS.len())];
    let full = root.join(path);
    let op = rng.below(9);
    let is_file = full.is_file();
    let is_dir = full.is_dir();
    // Before destroying a version, note it if this is its last copy.
    let mut note = |files: Vec<std::path::PathBuf>| {
        let everywhere: Vec<String> = box_md5s(pair.dir(0))
            .into_iter()
            .chain(box_md5s(pair.dir(1)))
            .collect();
        for f in files {
            if let Ok(md5) = md5_file(&f) {
                if everywhere.iter().filter(|m| **m == md5).count() <= 1 {
                    removed.insert(md5);
                }
            }
        }
    };
    let content = |rng: &mut Rng, len: usize| testkit::pseudo_random(len, rng.next_u64());
    match op {
        // Create or rewrite a file (sometimes with the same size).
        0 | 1 if !is_dir && parents_ok(root, path) => {
            let len = if is_file && op == 1 {
                fs::metadata(&full).unwrap().len() as usize
            } else {
                1 + rng.below(5000)
            };
            if is_file {
                note(vec![full.clone()]);
            }
            testkit::write(root, path, &content(rng, len));
        }
        // Same size, same mtime to the nanosecond.
        2 if is_file => {
            let len = fs::metadata(&full).unwrap().len() as usize;
            let mtime = common::mtime_ns(&full);
            note(vec![full.clone()]);
            fs::write(&full, content(rng, len)).unwrap();
            set_mtime(&full, mtime);
        }
        3 if is_file => {
            note(vec![full.clone()]);
            fs::remove_file(&full).unwrap();
        }
        // rm -rf
        4 if is_dir => {
            let files: Vec<_> = testkit::snapshot(&full)
                .into_iter()
                .filter(|(_, (d, ..))| !d)
                .map(|(p, _)| full.join(p))
                .collect();
            note(files);
            fs::remove_dir_all(&full).unwrap();
        }
        5 if !is_file && !is_dir && parents_ok(root, path) => {
            fs::create_dir_all(&full).unwrap();
        }
        6 if is_file => chmod(&full, [0o644, 0o600, 0o755, 0o640][rng.below(4)]),
        6 if is_dir => chmod(&full, [0o755, 0o700, 0o750][rng.below(3)]),
        7 if is_file => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let offset = i64::try_from(rng.below(100_000)).unwrap() * 1_000_000;
            set_mtime(&full, i64::try_from(now.as_nanos()).unwrap() - offset);
        }
        // Rename a file to a free name.
        8 if is_file => {
            let to = PATHS[rng.below(PATHS.len())];
            let dest = root.join(to);
            if !dest.exists() && parents_ok(root, to) {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).unwrap();
                }
                fs::rename(&full, &dest).unwrap();
            }
        }
        _ => {}
    }
}

#[test]
fn random_edits_on_both_sides_with_restarts_converge_and_lose_nothing() {
    let seed = std::env::var("MINIBOX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            (now.as_nanos() as u64) | 1
        });
    eprintln!("random sync test: seed {seed} (MINIBOX_SEED={seed} replays the operations)");
    let mut rng = Rng::new(seed);
    let mut pair = Pair::new();
    pair.start();
    let mut history: BTreeSet<String> = BTreeSet::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    for step in 0..STEPS {
        let stopped = (rng.below(4) == 0).then(|| {
            let i = rng.below(2);
            if rng.below(2) == 0 {
                pair.kill(i);
            } else {
                pair.stop(i);
            }
            i
        });
        for _ in 0..2 + rng.below(6) {
            let who = rng.below(2);
            operate(&mut rng, &pair, who, &mut removed);
        }
        if let Some(i) = stopped {
            pair.restart(i);
        }
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
        for md5 in &history {
            assert!(
                kept.contains(md5) || removed.contains(md5),
                "seed {seed} step {step}: version {md5} is in neither box nor trash"
            );
        }
        // A step boundary: every version here must never be lost.
        history.extend(box_md5s(pair.dir(0)));
    }
    pair.stop(0);
    pair.stop(1);
    eprintln!(
        "random sync test: seed {seed}: {STEPS} steps, {} versions tracked",
        history.len()
    );
}
