//! The download progress bar (`shared/src/shell/mod.rs`): a person at a terminal sees it once a
//! download takes more than a moment; a pipe gets nothing but the result, so a script that reads
//! the client's output never has to skip bars or escape sequences.
//!
//! "More than a moment" (300 ms) must not depend on how fast this machine is. So the test freezes
//! the *server* (SIGSTOP) in the middle of a download of a file far larger than the socket
//! buffers, keeps it frozen for a second, and lets it go on: the download has then certainly
//! lasted longer than the bar's delay, and certainly still has most of its bytes to come.
//!
//! The terminal comes from util-linux `script(1)` (see `testkit::Terminal`).

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use testkit::RunningShell;

/// The downloaded file: far larger than the socket buffers between server and client.
const SIZE: u64 = 64 << 20;

/// A generous bound for each step on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

/// How long the server stays frozen: well past the bar's 300 ms delay.
const PAUSE: Duration = Duration::from_secs(1);

/// The server's box: `big.bin`, one pseudo-random MiB and then a hole (quick to make and read).
fn big_box(root: &Path) {
    let path = root.join("big.bin");
    fs::write(&path, testkit::pseudo_random(1 << 20, 61)).unwrap();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(SIZE).unwrap();
}

/// Freezes the server in the middle of the client's download for [`PAUSE`], then lets it go on.
fn pause_server_midway(s: &Setup, still_going: impl FnMut() -> bool) {
    let frozen =
        testkit::freeze_mid_download(s.server.child.id(), &s.client_box, SIZE, WAIT, still_going);
    assert!(
        frozen,
        "could not freeze the server in the middle of the download"
    );
    // Time passes for the frozen download too: when the next bytes come, it has lasted more
    // than PAUSE.
    std::thread::sleep(PAUSE);
    s.server.signal("CONT");
}

#[test]
fn a_long_download_on_a_terminal_shows_a_progress_bar() {
    let s = Setup::new(big_box);
    let dir = s.client_box.to_str().unwrap().to_string();
    let peer = s.server.addr_string();
    let mut term =
        testkit::Terminal::start(CLIENT, &["--dir", &dir, "--peer", &peer], &[("TZ", "UTC")]);
    assert!(
        term.wait_for(">> ", 1, WAIT),
        "no prompt:\n{}",
        term.shown()
    );
    term.type_keys("download TCP big.bin\r");
    pause_server_midway(&s, || true);
    assert!(
        term.wait_for("verified: MD5 matches", 1, WAIT),
        "the download did not finish:\n{}",
        term.shown()
    );
    assert!(term.wait_for(">> ", 2, WAIT), "{}", term.shown());
    term.type_keys("quit\r");
    let status = term.wait_exit(WAIT);
    let shown = term.shown().to_string();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{shown}");
    // The bar: the file's name, the bar itself, bytes so far of the whole.
    assert!(shown.contains("big.bin ["), "no progress bar:\n{shown}");
    assert!(shown.contains("/64.00 MiB"), "no byte count:\n{shown}");
    assert_eq!(
        fs::metadata(s.client_box.join("big.bin")).unwrap().len(),
        SIZE
    );
}

#[test]
fn a_long_download_on_a_pipe_prints_only_its_result() {
    let s = Setup::new(big_box);
    let dir = s.client_box.to_str().unwrap().to_string();
    let peer = s.server.addr_string();
    let mut client = RunningShell::start(
        CLIENT,
        &["--dir", &dir, "--peer", &peer],
        "download TCP big.bin\n",
        &[("TZ", "UTC")],
    );
    pause_server_midway(&s, || client.running());
    let run = client.finish(SHELL_LIMIT);
    assert_eq!(run.code(), 0, "{run:?}");
    // The table (header and the file's row) and the verdict; nothing else, on either stream.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{:?}", run.stdout);
    assert!(lines[0].starts_with("PATH"), "{:?}", run.stdout);
    assert!(
        lines[1].starts_with("big.bin  64.0 MiB  "),
        "{:?}",
        run.stdout
    );
    assert_eq!(
        lines[2],
        "verified: MD5 matches the other box's, received over TCP"
    );
    assert_eq!(run.stderr, "", "nothing on stderr");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains('\r') && !all.contains('\x1b'),
        "no bar, no escape sequence: {all:?}"
    );
}
