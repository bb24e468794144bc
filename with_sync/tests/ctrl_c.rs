//! Ctrl-C and SIGTERM on a terminal, for the interactive with_sync: ^C in the middle of a
//! download typed at the prompt cancels it (nothing installed, no temporary file) and the prompt
//! comes back; SIGTERM at the prompt stops the box and leaves the terminal in the mode it was
//! found in. See `testkit::pty`.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::time::Duration;

use testkit::pty::{ctrl_c_cancels_a_download, sigterm_leaves_the_terminal_as_it_was, Download};
use testkit::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_with_sync");

/// Far larger than the socket buffers: one pseudo-random MiB, then a hole.
const SIZE: u64 = 64 << 20;

#[test]
fn ctrl_c_cancels_a_download_typed_at_the_prompt() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    fs::create_dir_all(&theirs).unwrap();
    // The peer syncs with nobody; our own box's rounds come once an hour, after the first.
    let server = Proc::start(
        BIN,
        &[
            "--dir",
            theirs.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "127.0.0.1:9",
            "--interval",
            "3600",
        ],
    );
    let peer = server.addr_string();
    let args = [
        "--dir",
        mine.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--peer",
        &peer,
        "--interval",
        "3600",
    ];
    // Let our box's first round pass (it pulls nothing), then give the peer its big file.
    let first_round =
        || fs::read_to_string(theirs.join(".minibox/log")).is_ok_and(|l| l.contains("sync list"));
    let prepare = || {
        assert!(
            testkit::wait_until(Duration::from_secs(60), first_round),
            "no first round"
        );
        let big = theirs.join("big.bin");
        fs::write(&big, testkit::pseudo_random(1 << 20, 9)).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&big)
            .unwrap()
            .set_len(SIZE)
            .unwrap();
    };
    ctrl_c_cancels_a_download(&Download {
        bin: BIN,
        args: &args,
        into: &mine,
        sender: server.child.id(),
        file: "big.bin",
        size: SIZE,
        prepare: &prepare,
    });
}

#[test]
fn sigterm_at_the_prompt_leaves_the_terminal_as_it_was() {
    let tmp = testkit::tempdir();
    let mine = tmp.path().join("mine");
    let dir = mine.to_str().unwrap();
    let args = [
        "--dir",
        dir,
        "--listen",
        "127.0.0.1:0",
        "--peer",
        "127.0.0.1:9",
        "--interval",
        "3600",
    ];
    sigterm_leaves_the_terminal_as_it_was(BIN, &args, dir, "this box:");
}
