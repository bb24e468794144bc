//! The trash and the conflict copies as a person uses them, on two real peers: `trash list`
//! shows what a round replaced, `trash restore PATH` puts it back and the peer then gets it like
//! any edit; `conflicts` lists the copies a conflict left, with the path each is a copy of; and
//! `--trash-days` keeps the trash in bounds. The shell commands are typed into a stage-1 `client`
//! on a pipe, in JSON (they are local: the same in every stage's shell).

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use common::{Pair, LIMIT};
use serde_json::Value;
use testkit::{closed_addr, run_shell, write};

/// Runs `commands` in a stage-1 client's shell on `dir` (JSON mode); its JSON lines.
fn shell(dir: &Path, commands: &str, extra: &[&str]) -> Vec<Value> {
    let client = testkit::sibling_bin("before_thread", "client");
    let peer = closed_addr().to_string();
    let mut args = vec!["--dir", dir.to_str().unwrap(), "--peer", &peer, "--json"];
    args.extend_from_slice(extra);
    let run = run_shell(client.to_str().unwrap(), &args, commands, LIMIT);
    assert_eq!(run.code(), 0, "{run:?}");
    run.json_lines()
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn a_file_restored_from_the_trash_comes_back_on_both_sides() {
    let mut pair = Pair::new();
    write(&pair.dirs[0], "notes/a.txt", b"first version");
    pair.start();
    pair.settle();
    // Box 2 edits the file; box 1 takes the edit and trashes its old version.
    write(&pair.dirs[1], "notes/a.txt", b"second version, longer");
    let second = || read(&pair.dirs[0], "notes/a.txt").starts_with("second");
    assert!(testkit::wait_until(LIMIT, second));
    // Both sides must have seen each other with the edit first: a change made before the peer's
    // next round is a conflict by design (see the chapter's limits), not an edit.
    pair.settle();
    let lines = shell(
        &pair.dirs[0],
        "trash list\ntrash restore notes/a.txt\n",
        &[],
    );
    let trash = lines[0]["trash"].as_array().unwrap();
    assert_eq!(trash.len(), 1, "{lines:?}");
    assert_eq!(trash[0]["path"], "notes/a.txt");
    assert_eq!(trash[0]["size"], 13);
    assert!(trash[0]["trashed"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[1]["restored"]["path"], "notes/a.txt", "{lines:?}");
    assert_eq!(read(&pair.dirs[0], "notes/a.txt"), "first version");
    // The restored file is an edit like any other: box 2 pulls it.
    assert!(
        testkit::wait_until(LIMIT, || read(&pair.dirs[1], "notes/a.txt")
            == "first version"),
        "the restored version did not reach the peer:\n{}",
        pair.diff()
    );
    pair.settle();
    // What the restore replaced is in the trash, newest first.
    let lines = shell(&pair.dirs[0], "trash list\n", &[]);
    let sizes: Vec<u64> = lines[0]["trash"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["size"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sizes[0], 22,
        "the second version went to the trash: {lines:?}"
    );
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn conflicts_lists_each_copy_with_the_path_it_is_a_copy_of() {
    let mut pair = Pair::new();
    write(&pair.dirs[0], "report.txt", b"base");
    pair.start();
    pair.settle();
    pair.stop(0);
    pair.stop(1);
    write(&pair.dirs[0], "report.txt", b"box1 edit");
    write(&pair.dirs[1], "report.txt", b"box2's edit");
    pair.restart(0);
    pair.restart(1);
    pair.settle();
    for dir in &pair.dirs {
        let lines = shell(dir, "conflicts\n", &[]);
        let copies = lines[0]["conflicts"].as_array().unwrap();
        assert_eq!(copies.len(), 1, "{lines:?}");
        let copy = &copies[0];
        assert_eq!(copy["original"], "report.txt");
        let path = copy["path"].as_str().unwrap();
        assert!(path.starts_with("report.conflict-") && path.ends_with(".txt"));
        assert!(path.contains(copy["peer"].as_str().unwrap()));
        assert!(dir.join(path).is_file());
    }
    let text = run_shell(
        testkit::sibling_bin("before_thread", "client")
            .to_str()
            .unwrap(),
        &[
            "--dir",
            pair.dirs[0].to_str().unwrap(),
            "--peer",
            &closed_addr().to_string(),
        ],
        "conflicts\n",
        LIMIT,
    );
    assert!(text.stdout.starts_with("CONFLICT COPY"), "{}", text.stdout);
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn the_trash_keeps_what_it_holds_for_trash_days() {
    let tmp = testkit::tempdir();
    let dir = tmp.path().join("box");
    write(
        &dir,
        ".minibox/trash/20200101T000000.000000000Z/old.txt",
        b"old",
    );
    let recent = chrono_like_now();
    write(&dir, &format!(".minibox/trash/{recent}/new.txt"), b"new");
    let listed = |extra: &[&str]| -> Vec<String> {
        let lines = shell(&dir, "trash list\n", extra);
        let items = lines[0]["trash"].as_array().unwrap().clone();
        items
            .iter()
            .map(|t| t["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        listed(&["--trash-days", "0"]),
        ["new.txt", "old.txt"],
        "0 keeps everything"
    );
    assert_eq!(
        listed(&[]),
        ["new.txt"],
        "the default 30 days removed the old one at start"
    );
    assert!(!dir
        .join(".minibox/trash/20200101T000000.000000000Z")
        .exists());
}

/// A trash folder name for a moment a minute ago, in the trash's format.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y%m%dT%H%M%S.000000000Z"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
