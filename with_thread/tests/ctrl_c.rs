//! Ctrl-C and SIGTERM on a terminal, for with_thread: ^C in the middle of a download cancels it
//! (nothing installed, no temporary file), the box goes on and the prompt comes back; SIGTERM at
//! the prompt stops the box and leaves the terminal in the mode it was found in. See
//! `testkit::pty`.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::*;
use testkit::pty::{ctrl_c_cancels_a_download, sigterm_leaves_the_terminal_as_it_was, Download};

/// Far larger than the socket buffers: one pseudo-random MiB, then a hole.
const SIZE: u64 = 64 << 20;

#[test]
fn ctrl_c_cancels_a_download_and_the_box_goes_on() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    fs::create_dir_all(&theirs).unwrap();
    let big = theirs.join("big.bin");
    fs::write(&big, testkit::pseudo_random(1 << 20, 8)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(SIZE)
        .unwrap();
    let server = serve_only(&theirs);
    let peer = server.addr_string();
    ctrl_c_cancels_a_download(&Download {
        bin: BIN,
        args: &[
            "--dir",
            mine.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &peer,
        ],
        into: &mine,
        sender: server.child.id(),
        file: "big.bin",
        size: SIZE,
        prepare: &|| {},
    });
}

#[test]
fn sigterm_at_the_prompt_leaves_the_terminal_as_it_was() {
    let tmp = testkit::tempdir();
    let mine = tmp.path().join("mine");
    let dir = mine.to_str().unwrap();
    let args = ["--dir", dir, "--listen", "127.0.0.1:0", "--peer", NOBODY];
    sigterm_leaves_the_terminal_as_it_was(BIN, &args, dir, "this box:");
}
