//! `with_thread --secret-file` on the asking side: the shell of a box that knows the secret
//! proves it to the peer it asks (and makes the peer prove it back), so its commands work; a
//! shell with another secret, or none, gets one clear error per command and nothing; a shell
//! with a secret refuses a peer that asks for none. (`tests/hostile.rs` attacks the serving side
//! of a box with a secret.)

// Test helpers: a failed file operation here is a failed test, so unwrap is the right answer.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use testkit::{md5_of, Proc, ShellRun};

const SECRET: &[u8] = b"with_thread's shared secret, 32+ bytes long";

fn secret_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    testkit::chmod(&path, 0o600);
    path
}

/// A box that only serves, with or without a secret.
fn serving(dir: &Path, secret: Option<&Path>) -> Proc {
    let mut args = vec!["--dir", path_str(dir), "--listen", "127.0.0.1:0"];
    args.extend(["--peer", NOBODY]);
    if let Some(s) = secret {
        args.extend(["--secret-file", path_str(s)]);
    }
    Proc::start(BIN, &args)
}

/// A with_thread shell in JSON mode over `input`, with or without a secret.
fn shell(dir: &Path, peer: &str, secret: Option<&Path>, input: &str) -> ShellRun {
    let mut args = vec!["--dir", path_str(dir), "--listen", "127.0.0.1:0"];
    args.extend(["--peer", peer, "--json"]);
    if let Some(s) = secret {
        args.extend(["--secret-file", path_str(s)]);
    }
    testkit::run_shell(BIN, &args, input, LIMIT)
}

#[test]
fn the_shell_authenticates_to_a_box_that_wants_the_secret() {
    let tmp = testkit::tempdir();
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let good = secret_file(&keys, "good", SECRET);
    let wrong = secret_file(&keys, "wrong", b"another secret that is long enough");
    let served = tmp.path().join("served");
    testkit::write(&served, "doc.txt", b"for friends only");
    let server = serving(&served, Some(&good));
    let peer = server.addr_string();

    let mine = tmp.path().join("mine");
    the_same_secret_lists_hashes_and_downloads(&mine, &peer, &good, &served);
    another_secret_or_none_gets_one_error_per_command(tmp.path(), &peer, &wrong);
    // The server refused them, and says so in its log, and goes on serving.
    log_until(&served, |l| l.matches("dropped: refused").count() >= 4);
    let run = shell(&mine, &peer, Some(&good), "hash verify doc.txt\n");
    assert_eq!(run.code(), 0, "{run:?}");

    a_shell_with_a_secret_refuses_a_box_that_asks_for_none(tmp.path(), &good);
}

/// The same secret: listing, hash and download all work, and the server refused nothing.
fn the_same_secret_lists_hashes_and_downloads(mine: &Path, peer: &str, good: &Path, served: &Path) {
    let run = shell(
        mine,
        peer,
        Some(good),
        "index longlist\nhash verify doc.txt\ndownload TCP doc.txt\n",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert_eq!(lines[0]["files"][0]["path"], "doc.txt");
    assert_eq!(lines[1]["files"][0]["md5"], md5_of(b"for friends only"));
    assert_eq!(lines[2]["verified"], true);
    assert_eq!(
        std::fs::read(mine.join("doc.txt")).unwrap(),
        b"for friends only"
    );
    let log = log_until(served, |l| l.contains("download tcp \"doc.txt\"\tok"));
    assert!(!log.contains("refused"), "{log}");
}

/// Another secret, or none: one clear error per command, nothing downloaded.
fn another_secret_or_none_gets_one_error_per_command(tmp: &Path, peer: &str, wrong: &Path) {
    for (name, secret) in [("wrong", Some(wrong)), ("none", None)] {
        let stranger = tmp.join(format!("stranger-{name}"));
        let run = shell(
            &stranger,
            peer,
            secret,
            "index longlist\ndownload TCP doc.txt\n",
        );
        assert_eq!(run.code(), 1, "{name}: {run:?}");
        let lines = run.json_lines();
        assert_eq!(lines.len(), 2, "{name}: one answer per command: {run:?}");
        for line in &lines {
            assert_eq!(line["ok"], false, "{name}: {line}");
            let error = line["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("only talks to peers that know its shared secret"),
                "{name}: {error}"
            );
        }
        assert!(!stranger.join("doc.txt").exists(), "{name}: downloaded");
    }
}

/// A shell with a secret does not talk to a box that asks for none.
fn a_shell_with_a_secret_refuses_a_box_that_asks_for_none(tmp: &Path, good: &Path) {
    let open = tmp.join("open");
    testkit::write(&open, "doc.txt", b"open to all");
    let plain = serving(&open, None);
    let other = tmp.join("other");
    let run = shell(
        &other,
        &plain.addr_string(),
        Some(good),
        "download TCP doc.txt\n",
    );
    assert_eq!(run.code(), 1, "{run:?}");
    let error = run.json_lines()[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("asks for no shared secret"), "{error}");
    assert!(!other.join("doc.txt").exists());
}
