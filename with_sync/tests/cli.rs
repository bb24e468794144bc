//! The command line: `--once` (against a stage-1 server too), `--json`, `--help`, bad arguments.

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{bin, set_mtime, LIMIT};
use testkit::{chmod, run_shell, write, Proc};

#[test]
fn once_pulls_a_whole_box_from_a_stage_1_server() {
    let tmp = testkit::tempdir();
    let served = tmp.path().join("served");
    let mine = tmp.path().join("mine");
    fill_served_and_mine(&served, &mine);

    let server_bin = testkit::sibling_bin("before_thread", "server");
    let server = Proc::start(
        server_bin.to_str().unwrap(),
        &["--dir", served.to_str().unwrap(), "--listen", "127.0.0.1:0"],
    );
    let run = run_shell(
        bin(),
        &[
            "--dir",
            mine.to_str().unwrap(),
            "--peer",
            &server.addr_string(),
            "--once",
            "--json",
        ],
        "",
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "one JSON line: {}", run.stdout);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["sync"]["downloaded"], 2);
    assert_eq!(lines[0]["sync"]["folders_made"], 3);
    assert_eq!(lines[0]["sync"]["failed"], 0);

    let mut want = testkit::snapshot(&served);
    want.insert(
        "local-only.txt".into(),
        testkit::snapshot(&mine)["local-only.txt"].clone(),
    );
    assert_eq!(
        testkit::snapshot(&mine),
        want,
        "the whole box, with mtimes and bits"
    );
    a_second_round_has_nothing_to_do(&mine, &server);
}

/// The served box: a file with an exact mtime, a nested file with its own bits, an empty folder;
/// the local box: one file of its own.
fn fill_served_and_mine(served: &Path, mine: &Path) {
    write(served, "a.txt", b"alpha");
    write(
        served,
        "sub/deeper/b.bin",
        &testkit::pseudo_random(300_000, 9),
    );
    chmod(&served.join("sub/deeper/b.bin"), 0o640);
    set_mtime(&served.join("a.txt"), 1_700_000_000_987_654_321);
    fs::create_dir_all(served.join("empty")).unwrap();
    write(mine, "local-only.txt", b"stays");
}

/// A second round has nothing to do, and says so; and honestly: the stage-1 server never pulls,
/// so this box's own file is still waiting for it.
fn a_second_round_has_nothing_to_do(mine: &Path, server: &Proc) {
    let again = run_shell(
        bin(),
        &[
            "--dir",
            mine.to_str().unwrap(),
            "--peer",
            &server.addr_string(),
            "--once",
        ],
        "",
        LIMIT,
    );
    assert_eq!(again.code(), 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("nothing to pull; served has yet to pull 1 change made here"),
        "{}",
        again.stdout
    );
}

#[test]
fn once_against_an_unreachable_peer_fails_with_one_sentence() {
    let tmp = testkit::tempdir();
    let port = testkit::free_port();
    let run = run_shell(
        bin(),
        &[
            "--dir",
            tmp.path().to_str().unwrap(),
            "--peer",
            &format!("127.0.0.1:{port}"),
            "--once",
            "--json",
        ],
        "",
        LIMIT,
    );
    assert_ne!(run.code(), 0);
    let lines = run.json_lines();
    assert_eq!(lines[0]["ok"], false);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the peer"),
        "{}",
        run.stdout
    );
}

#[test]
fn help_mentions_fractional_intervals_and_bad_arguments_exit_2() {
    let help = run_shell(bin(), &["--help"], "", LIMIT);
    assert_eq!(help.code(), 0);
    for word in ["--interval", "0.2", "--once", "--name", "--json"] {
        assert!(help.stdout.contains(word), "{word} missing from --help");
    }
    let version = run_shell(bin(), &["--version"], "", LIMIT);
    assert_eq!(version.code(), 0);
    for args in [
        vec!["--dir", "/tmp/x", "--peer", "127.0.0.1:1"], // no --listen, no --once
        vec![
            "--dir",
            "/tmp/x",
            "--peer",
            "p",
            "--once",
            "--interval",
            "0",
        ],
        vec![
            "--dir",
            "/tmp/x",
            "--peer",
            "p",
            "--once",
            "--interval",
            "soon",
        ],
        vec!["--peer", "p", "--once"],
    ] {
        let run = run_shell(bin(), &args, "", Duration::from_secs(20));
        assert_eq!(run.code(), 2, "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty());
    }
}
