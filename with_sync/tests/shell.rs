//! The shell's `sync` command, as a person uses it: with_sync on a terminal (it runs the shell
//! only then), `sync` typed at the prompt, the round's summary printed, in words and with
//! `--json` as one line of JSON.
//!
//! Both boxes run with an hour between background rounds, so the only round after the first one
//! (which every with_sync runs at start) is the one the test types. The terminal comes from
//! util-linux `script(1)` (see `testkit::Terminal`); where it is missing the test says so and
//! passes without running.

// Test helpers: a failed file operation here is a failed test, so unwrap is the right answer.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{bin, LIMIT};
use testkit::{Proc, Terminal};

/// A box that only serves: its own rounds pull from a port nobody listens on, once an hour.
fn serve_only(dir: &Path) -> Proc {
    Proc::start(
        bin(),
        &common::hourly(dir.to_str().unwrap(), common::NOBODY),
    )
}

/// with_sync on a terminal, pulling from `peer`, once its first background round is over (so
/// that what the test adds to the peer afterwards is left for the typed `sync`).
fn on_a_terminal(dir: &Path, peer: &str, json: bool) -> Terminal {
    let mut args = common::hourly(dir.to_str().unwrap(), peer).to_vec();
    if json {
        args.push("--json");
    }
    // Round reports on stderr, which is the terminal too.
    let env = [("RUST_LOG", "with_sync=info"), ("TZ", "UTC")];
    let mut term = Terminal::start(bin(), &args, &env);
    assert!(
        term.wait_for("round done", 1, LIMIT),
        "the first round did not finish:\n{}",
        term.shown()
    );
    term
}

/// The JSON lines the terminal showed, in order (prompts, echoes and log lines left out).
fn json_lines(shown: &str) -> Vec<serde_json::Value> {
    shown
        .lines()
        .filter_map(|l| l.find("{\"ok\"").map(|at| l[at..].trim_end()))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[test]
fn sync_typed_in_the_shell_runs_a_round_and_prints_its_summary() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    testkit::write(&theirs, "first.txt", b"there from the start");
    let peer = serve_only(&theirs);
    let peer_addr = peer.addr_string();

    // In words.
    let mut term = on_a_terminal(&mine, &peer_addr, false);
    assert!(
        term.wait_for(">> ", 1, LIMIT),
        "no prompt:\n{}",
        term.shown()
    );
    assert!(mine.join("first.txt").exists(), "the first round pulled");
    let bytes = testkit::pseudo_random(3000, 5);
    testkit::write(&theirs, "notes/new.bin", &bytes);
    term.type_keys("sync\r");
    assert!(
        term.wait_for("synced with theirs: 1 downloaded, 1 folder made", 1, LIMIT),
        "no summary of the round:\n{}",
        term.shown()
    );
    assert!(term.wait_for(">> ", 2, LIMIT), "{}", term.shown());
    assert_eq!(std::fs::read(mine.join("notes/new.bin")).unwrap(), bytes);
    term.type_keys("sync\r");
    assert!(
        term.wait_for("synced with theirs: already in sync", 1, LIMIT),
        "{}",
        term.shown()
    );
    assert!(term.wait_for(">> ", 3, LIMIT), "{}", term.shown());
    term.type_keys("quit\r");
    let status = term.wait_exit(LIMIT).expect("the shell ends on quit");
    assert!(status.success(), "{status:?}\n{}", term.shown());

    // With --json: one line per command.
    let mut term = on_a_terminal(&mine, &peer_addr, true);
    testkit::write(&theirs, "more.txt", b"0123456789");
    std::fs::remove_file(theirs.join("first.txt")).unwrap();
    term.type_keys("sync\r");
    assert!(
        term.wait_for("\"ok\"", 1, LIMIT),
        "no answer:\n{}",
        term.shown()
    );
    term.type_keys("sync\r");
    assert!(term.wait_for("\"ok\"", 2, LIMIT), "{}", term.shown());
    term.type_keys("quit\r");
    let status = term.wait_exit(LIMIT).expect("the shell ends on quit");
    assert!(status.success(), "{status:?}\n{}", term.shown());
    let lines = json_lines(term.shown());
    assert_eq!(lines.len(), 2, "{}", term.shown());
    let first = &lines[0];
    assert_eq!(first["ok"], true, "{first}");
    let sync = &first["sync"];
    assert_eq!(sync["peer"], "theirs", "{first}");
    assert_eq!(sync["downloaded"], 1, "{first}");
    assert_eq!(sync["bytes"], 10, "{first}");
    assert_eq!(sync["deleted"], 1, "{first}");
    assert_eq!(sync["failed"], 0, "{first}");
    assert_eq!(lines[1]["sync"]["downloaded"], 0, "{}", lines[1]);
    assert_eq!(lines[1]["sync"]["deleted"], 0, "{}", lines[1]);
    assert!(!mine.join("first.txt").exists(), "the delete reached mine");
    assert_eq!(std::fs::read(mine.join("more.txt")).unwrap(), b"0123456789");
}

#[test]
fn sync_in_the_shell_says_so_when_the_peer_is_down_and_the_shell_goes_on() {
    let tmp = testkit::tempdir();
    let mine = tmp.path().join("mine");
    let down = testkit::closed_addr().to_string();
    let env = [("TZ", "UTC")];
    let args = [
        "--dir",
        mine.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--peer",
        &down,
        "--interval",
        "3600",
        "--json",
    ];
    let mut term = Terminal::start(bin(), &args, &env);
    term.type_keys("sync\r");
    assert!(term.wait_for("\"ok\"", 1, LIMIT), "{}", term.shown());
    term.type_keys("help\r");
    assert!(term.wait_for("\"ok\"", 2, LIMIT), "{}", term.shown());
    term.type_keys("quit\r");
    let status = term.wait_exit(LIMIT).expect("the shell ends on quit");
    assert_eq!(status.code(), Some(1), "a failed command: exit status 1");
    let lines = json_lines(term.shown());
    assert_eq!(lines.len(), 2, "{}", term.shown());
    assert_eq!(lines[0]["ok"], false, "{}", lines[0]);
    let error = lines[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("cannot reach the peer"), "{error}");
    assert_eq!(lines[1]["ok"], true, "the shell went on: {}", lines[1]);
}

#[test]
fn a_round_says_what_it_did_above_the_prompt_and_status_tells_the_last_and_next_round() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    testkit::write(&theirs, "a.txt", b"from theirs");
    testkit::write(&theirs, "x.txt", b"their x");
    testkit::write(&mine, "x.txt", b"my own x");
    let peer = serve_only(&theirs);
    let addr = peer.addr_string();
    let args = common::hourly(mine.to_str().unwrap(), &addr);
    // No RUST_LOG: a person at the terminal sees the shell's own lines, no log prefixes.
    let mut term = Terminal::start(bin(), &args, &[("TZ", "UTC")]);
    assert!(
        term.wait_for("!! conflict: x.txt changed in both boxes; ", 1, LIMIT),
        "the first round did not say what it did:\n{}",
        term.shown()
    );
    assert!(
        term.shown()
            .contains("] synced with theirs: 2 downloaded, 1 conflict"),
        "{}",
        term.shown()
    );
    term.type_keys("status\r");
    assert!(
        term.wait_for("next round: in ", 1, LIMIT),
        "{}",
        term.shown()
    );
    term.type_keys("conflicts\r");
    assert!(term.wait_for("COPY OF", 1, LIMIT), "{}", term.shown());
    term.type_keys("quit\r");
    let status = term.wait_exit(LIMIT).expect("the shell ends on quit");
    let shown = term.shown().to_string();
    assert!(status.success(), "{status:?}\n{shown}");
    assert!(
        shown.contains(&format!("peer: {}", peer.addr_string())),
        "{shown}"
    );
    assert!(shown.contains("last round: "), "{shown}");
    assert!(shown.contains("(every 3600 s)"), "{shown}");
    assert!(
        !shown.contains("WARN") && !shown.contains("INFO"),
        "no log lines: {shown}"
    );
}
