//! Stages speak one protocol: a stage-1 `client` queries and downloads from a `with_thread` box
//! (over TCP and over UDP, which the threaded box serves through its one shared UDP socket), and
//! a `with_thread` shell does the same from a stage-1 `server`.
//!
//! The stage-1 binaries belong to another crate, so they are found next to this test's
//! executable (`testkit::sibling_bin`, which builds them with cargo if needed).

// Test helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use testkit::{md5_of, Proc};

const INPUT: &str = "index longlist\nindex regex \\.txt$\nhash checkall\ndownload TCP notes.txt\ndownload TCP sub/data.bin\n";

fn fill(dir: &std::path::Path) -> Vec<u8> {
    testkit::write(dir, "notes.txt", b"stage two serves stage one\n");
    let data = testkit::pseudo_random(700 * 1024, 3);
    testkit::write(dir, "sub/data.bin", &data);
    data
}

/// The answers to [`INPUT`], whoever served them.
fn check_answers(run: &testkit::ShellRun, data: &[u8], into: &std::path::Path) {
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 5, "{run:?}");
    assert!(lines.iter().all(|l| l["ok"] == true), "{run:?}");
    assert_eq!(lines[0]["files"].as_array().unwrap().len(), 2);
    assert_eq!(lines[1]["files"][0]["path"], "notes.txt");
    assert_eq!(lines[1]["files"].as_array().unwrap().len(), 1);
    let sums = lines[2]["files"].as_array().unwrap();
    assert!(sums
        .iter()
        .any(|f| f["path"] == "sub/data.bin" && f["md5"] == md5_of(data).as_str()));
    assert_eq!(lines[4]["file"]["md5"], md5_of(data).as_str());
    assert_eq!(std::fs::read(into.join("sub/data.bin")).unwrap(), data);
    assert_eq!(
        std::fs::read(into.join("notes.txt")).unwrap(),
        b"stage two serves stage one\n"
    );
}

#[test]
fn a_stage1_client_works_against_a_with_thread_box() {
    let (s_tmp, c_tmp) = (testkit::tempdir(), testkit::tempdir());
    let data = fill(s_tmp.path());
    let server = serve_only(s_tmp.path());
    let client = testkit::sibling_bin("before_thread", "client");
    let run = testkit::run_shell(
        path_str(&client),
        &[
            "--dir",
            path_str(c_tmp.path()),
            "--peer",
            &server.addr_string(),
            "--json",
        ],
        INPUT,
        LIMIT,
    );
    check_answers(&run, &data, c_tmp.path());
}

#[test]
fn a_with_thread_shell_works_against_a_stage1_server() {
    let (s_tmp, c_tmp) = (testkit::tempdir(), testkit::tempdir());
    let data = fill(s_tmp.path());
    let server_bin = testkit::sibling_bin("before_thread", "server");
    let server = Proc::start(
        path_str(&server_bin),
        &["--dir", path_str(s_tmp.path()), "--listen", "127.0.0.1:0"],
    );
    let run = run_json(c_tmp.path(), &server.addr_string(), INPUT);
    check_answers(&run, &data, c_tmp.path());
}

#[test]
fn a_stage1_client_downloads_over_udp_from_a_with_thread_box() {
    let (s_tmp, c_tmp) = (testkit::tempdir(), testkit::tempdir());
    let data = fill(s_tmp.path());
    let big = s_tmp.path().join("sub/data.bin");
    testkit::chmod(&big, 0o640);
    testkit::set_mtime(&big, 1_700_000_000_123_456_789);
    let server = serve_only(s_tmp.path());
    let client = testkit::sibling_bin("before_thread", "client");
    let run = testkit::run_shell(
        path_str(&client),
        &[
            "--dir",
            path_str(c_tmp.path()),
            "--peer",
            &server.addr_string(),
            "--json",
        ],
        "download UDP sub/data.bin\ndownload udp notes.txt\n",
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{run:?}");
    for line in &lines {
        assert_eq!(line["ok"], true, "{line}");
        assert_eq!(line["transport"], "udp", "{line}");
        assert_eq!(line["verified"], true, "{line}");
    }
    assert_eq!(lines[0]["file"]["md5"], md5_of(&data).as_str());
    // Bytes, permission bits and mtime to the nanosecond, as the threaded box has them.
    let want = testkit::snapshot(s_tmp.path());
    let got = testkit::snapshot(c_tmp.path());
    for name in ["sub/data.bin", "notes.txt"] {
        assert!(
            got[name] == want[name],
            "{name}: bytes, mode or mtime differ"
        );
    }
    // The threaded box logged the transfer as one over UDP.
    log_until(s_tmp.path(), |log| {
        log.contains("download udp \"sub/data.bin\"\tok")
    });
}
