//! Ctrl-C and SIGTERM on a terminal, for the stage-1 client: ^C in the middle of a download
//! cancels it (nothing installed, no temporary file) and the prompt comes back; SIGTERM at the
//! prompt leaves the terminal in the mode it was found in. See `testkit::pty`.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::*;
use testkit::pty::{ctrl_c_cancels_a_download, sigterm_leaves_the_terminal_as_it_was, Download};

/// Far larger than the socket buffers: one pseudo-random MiB, then a hole.
const SIZE: u64 = 64 << 20;

fn big_box(root: &std::path::Path) {
    let path = root.join("big.bin");
    fs::write(&path, testkit::pseudo_random(1 << 20, 7)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(SIZE)
        .unwrap();
}

#[test]
fn ctrl_c_cancels_a_download_and_the_prompt_comes_back() {
    let s = Setup::new(big_box);
    let (dir, peer) = (s.client_box.to_str().unwrap(), s.server.addr_string());
    ctrl_c_cancels_a_download(&Download {
        bin: CLIENT,
        args: &["--dir", dir, "--peer", &peer],
        into: &s.client_box,
        sender: s.server.child.id(),
        file: "big.bin",
        size: SIZE,
        prepare: &|| {},
    });
}

#[test]
fn sigterm_at_the_prompt_leaves_the_terminal_as_it_was() {
    let s = Setup::new(sample_box);
    let (dir, peer) = (s.client_box.to_str().unwrap(), s.server.addr_string());
    sigterm_leaves_the_terminal_as_it_was(
        CLIENT,
        &["--dir", dir, "--peer", &peer],
        dir,
        "this box:",
    );
}
