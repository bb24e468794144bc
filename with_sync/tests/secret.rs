//! `with_sync --secret-file`: two peers that share a secret sync as usual; a peer with another
//! secret, or with none, is refused by the other one round after round, says so once in its
//! log in one clear line, and nothing moves in either direction.

// Test helpers: a failed file operation here is a failed test, so unwrap is the right answer.
#![allow(clippy::unwrap_used)]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{round_failures, Pair, LIMIT};
use testkit::write;

const SECRET: &[u8] = b"the secret both boxes were given, 32+ bytes";

fn secret_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    testkit::chmod(&path, 0o600);
    path
}

fn with_secret(file: &Path) -> Vec<String> {
    vec!["--secret-file".into(), file.display().to_string()]
}

/// The lines of a box's log that record a refused connection.
fn refusals(root: &Path) -> usize {
    fs::read_to_string(root.join(".minibox/log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\tconnection\tdropped: refused"))
        .count()
}

#[test]
fn two_peers_with_the_same_secret_converge() {
    let mut pair = Pair::new();
    let keys = pair.tmp.path().join("keys");
    fs::create_dir_all(&keys).unwrap();
    let file = secret_file(&keys, "secret", SECRET);
    pair.extra = [with_secret(&file), with_secret(&file)];
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "from-one/report.txt", b"for box2's eyes only");
    write(&b, "from-two.txt", b"and this for box1");
    pair.start();
    pair.settle();
    assert_eq!(
        fs::read(b.join("from-one/report.txt")).unwrap(),
        b"for box2's eyes only"
    );
    assert_eq!(
        fs::read(a.join("from-two.txt")).unwrap(),
        b"and this for box1"
    );
    for d in [&a, &b] {
        assert_eq!(refusals(d), 0, "an honest peer was refused");
        assert!(round_failures(d)
            .iter()
            .all(|f| !f.contains("shared secret")));
    }
    pair.stop(0);
    pair.stop(1);
}

/// box1 holds the secret; box2 holds `theirs` (another secret, or none).
fn refused(theirs: Option<&[u8]>, box1_says: &str, box2_says: &str) {
    let mut pair = Pair::new();
    let keys = pair.tmp.path().join("keys");
    fs::create_dir_all(&keys).unwrap();
    pair.extra[0] = with_secret(&secret_file(&keys, "good", SECRET));
    if let Some(bytes) = theirs {
        pair.extra[1] = with_secret(&secret_file(&keys, "other", bytes));
    }
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "private.txt", b"box1's");
    write(&b, "stranger.txt", b"box2's");
    pair.start();
    // box2's rounds are refused by box1's server, each one logged there as it happens.
    assert!(
        testkit::wait_until(LIMIT, || refusals(&a) >= 5),
        "box1 did not refuse box2 again and again:\n{}",
        fs::read_to_string(a.join(".minibox/log")).unwrap_or_default()
    );
    // A few more rounds each way (0.2 s apart), for the refused sides to log again if they did.
    std::thread::sleep(Duration::from_millis(1500));

    for (root, says) in [(&a, box1_says), (&b, box2_says)] {
        let failures = round_failures(root);
        let about_secret: Vec<&String> = failures
            .iter()
            .filter(|f| f.contains("shared secret"))
            .collect();
        assert_eq!(
            about_secret.len(),
            1,
            "{}: one line about the secret, not one per round: {failures:#?}",
            root.display()
        );
        assert!(
            about_secret[0].contains(says),
            "{}: unclear: {}",
            root.display(),
            about_secret[0]
        );
        assert!(failures.windows(2).all(|w| w[0] != w[1]), "{failures:#?}");
    }
    // Nothing moved either way, not even partly.
    assert!(!b.join("private.txt").exists() && !a.join("stranger.txt").exists());
    for root in [&a, &b] {
        let meta = root.join(".minibox");
        for sub in ["tmp", "trash"] {
            let n = fs::read_dir(meta.join(sub)).map_or(0, |d| d.count());
            assert_eq!(n, 0, "{}: .minibox/{sub} is not empty", root.display());
        }
    }
    // Neither was stopped by being refused.
    for i in 0..2 {
        assert!(pair.procs[i].as_mut().unwrap().alive());
    }
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn a_peer_with_another_secret_is_refused_with_one_clear_line_and_nothing_syncs() {
    // Each refuses the other's proof.
    refused(
        Some(b"a different secret, also long enough"),
        "only talks to peers that know its shared secret",
        "only talks to peers that know its shared secret",
    );
}

#[test]
fn a_peer_without_the_secret_is_refused_with_one_clear_line_and_nothing_syncs() {
    // box2 cannot answer box1's challenge; box1 will not talk to a box that asks for nothing.
    refused(
        None,
        "asks for no shared secret",
        "only talks to peers that know its shared secret",
    );
}
