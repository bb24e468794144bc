//! Ctrl-C and SIGTERM on a terminal, for the interactive with_sync: ^C in the middle of a
//! download typed at the prompt cancels it (nothing installed, no temporary file) and the prompt
//! comes back; SIGTERM at the prompt stops the box and leaves the terminal in the mode it was
//! found in. See `testkit::pty`.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{bin, LIMIT};
use testkit::pty::{ctrl_c_cancels_a_download, sigterm_leaves_the_terminal_as_it_was, Download};
use testkit::Proc;

/// Far larger than the socket buffers: one pseudo-random MiB, then a hole.
const SIZE: u64 = 64 << 20;

#[test]
fn ctrl_c_cancels_a_download_typed_at_the_prompt() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    fs::create_dir_all(&theirs).unwrap();
    // The peer syncs with nobody; our own box's rounds come once an hour, after the first.
    let server = Proc::start(
        bin(),
        &common::hourly(theirs.to_str().unwrap(), common::NOBODY),
    );
    let peer = server.addr_string();
    let args = common::hourly(mine.to_str().unwrap(), &peer);
    // Let our box's first round pass (it pulls nothing), then give the peer its big file.
    let prepare = || {
        assert!(served_a_sync_list(&theirs), "no first round");
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
        bin: bin(),
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
    let args = common::hourly(dir, common::NOBODY);
    sigterm_leaves_the_terminal_as_it_was(bin(), &args, dir, "this box:");
}

/// Waits (up to `LIMIT`) until the box in `theirs` has served a sync listing, i.e. its peer's
/// first round has begun.
fn served_a_sync_list(theirs: &Path) -> bool {
    let log = theirs.join(".minibox/log");
    testkit::wait_until(LIMIT, || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("sync list"))
    })
}

/// A box that only serves `theirs`, and `mine` on a terminal pulling from it once its first
/// round is over; then the peer gets a big file.
fn a_big_file_to_pull(theirs: &Path, mine: &Path) -> (Proc, testkit::Terminal) {
    fs::create_dir_all(theirs).unwrap();
    let server = Proc::start(
        bin(),
        &common::hourly(theirs.to_str().unwrap(), common::NOBODY),
    );
    let peer = server.addr_string();
    let args = common::hourly(mine.to_str().unwrap(), &peer);
    let mut term = testkit::Terminal::start(bin(), &args, &[("TZ", "UTC")]);
    assert!(term.wait_for(">> ", 1, LIMIT), "{}", term.shown());
    assert!(served_a_sync_list(theirs), "no first round");
    let big = theirs.join("big.bin");
    // Random through and through: a big file by blocks copies a block it has seen already
    // (zeros, say) instead of asking the peer, and the round must need the frozen peer.
    fs::write(&big, testkit::pseudo_random(SIZE as usize, 10)).unwrap();
    (server, term)
}

#[test]
fn ctrl_c_cuts_a_sync_round_short_and_the_next_one_finishes_it() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    let (server, mut term) = a_big_file_to_pull(&theirs, &mine);
    term.type_keys("sync\r");
    let frozen = testkit::freeze_mid_download(server.child.id(), &mine, SIZE, LIMIT, || true);
    assert!(
        frozen,
        "could not catch the round midway:\n{}",
        term.shown()
    );
    term.type_keys("\x03");
    let cancelled = term.wait_for("cancelled: the round was cut short", 1, LIMIT);
    server.signal("CONT");
    assert!(
        cancelled,
        "^C did not cut the round short:\n{}",
        term.shown()
    );
    assert!(term.wait_for(">> ", 2, LIMIT), "{}", term.shown());
    assert!(
        !mine.join("big.bin").exists(),
        "nothing under the real name"
    );
    let part = |f: &std::path::PathBuf| f.extension().is_some_and(|x| x == "part");
    let clean = || {
        !testkit::files_under(&mine.join(".minibox/tmp"))
            .iter()
            .any(part)
    };
    assert!(
        testkit::wait_until(Duration::from_secs(10), clean),
        "a temporary file is left"
    );
    // The next round takes the file.
    term.type_keys("sync\r");
    assert!(
        term.wait_for("synced with theirs: 1 downloaded", 1, LIMIT),
        "{}",
        term.shown()
    );
    assert!(term.wait_for(">> ", 3, LIMIT), "{}", term.shown());
    term.type_keys("quit\r");
    assert!(
        term.wait_exit(LIMIT).is_some_and(|s| s.success()),
        "{}",
        term.shown()
    );
    assert_eq!(fs::metadata(mine.join("big.bin")).unwrap().len(), SIZE);
}
